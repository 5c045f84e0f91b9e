use anyhow::Result;
use serde_json::json;

use crate::cli::RetryArgs;
use crate::exit;
use crate::output;
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &RetryArgs) -> Result<u8> {
    let config = &ctx.config;
    if let Some(stage) = &args.stage {
        if !config.stages.contains(stage) {
            return Err(exit::usage(format!(
                "--stage {stage:?}: not a stage of the pipeline ({})",
                config.stages.join(", ")
            )));
        }
    }
    let (was, was_stage) =
        ctx.store()?
            .retry(args.job, args.stage.as_deref(), &ctx.operator(), now_ms())?;
    let stage = args.stage.clone().unwrap_or_else(|| was_stage.clone());
    if ctx.json() {
        output::json(&json!({
            "job_id": args.job, "state": "queued", "was": was, "stage": stage, "was_stage": was_stage,
        }))?;
    } else {
        let moved = if stage == was_stage {
            String::new()
        } else {
            format!(", moved from stage {was_stage} to {stage}")
        };
        output::line(format!(
            "job {} queued again at stage {stage} (was {was}{moved}), attempts reset",
            args.job
        ))?;
    }
    Ok(exit::OK)
}
