use anyhow::Result;
use serde_json::json;

use crate::cli::RetryArgs;
use crate::exit;
use crate::output;
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &RetryArgs) -> Result<u8> {
    if let Some(stage) = &args.stage {
        crate::commands::stage_arg(ctx, stage)?;
    }
    let mut store = ctx.store()?;
    let queued = store
        .job(args.job)?
        .is_some_and(|job| job.state == "queued");
    if args.now && queued && args.stage.is_none() {
        let due = store.make_due(args.job, &ctx.operator(), now_ms())?;
        if ctx.json() {
            output::json(&json!({ "job_id": args.job, "state": "queued", "was_due": due }))?;
        } else {
            output::line(format!(
                "job {} is due now (it was due {}); its attempts are kept",
                args.job,
                output::relative(due, now_ms())
            ))?;
        }
        return Ok(exit::OK);
    }
    let (was, was_stage) =
        store.retry(args.job, args.stage.as_deref(), &ctx.operator(), now_ms())?;
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
