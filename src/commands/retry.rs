use anyhow::Result;
use serde_json::json;

use crate::cli::RetryArgs;
use crate::domain::states::JobState;
use crate::exit;
use crate::output;
use crate::store::Retried;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &RetryArgs) -> Result<u8> {
    if let Some(stage) = &args.stage {
        crate::commands::stage_arg(ctx, stage)?;
    }
    let mut store = ctx.store()?;
    let queued = store
        .job(args.job)?
        .is_some_and(|job| job.state == JobState::Queued);
    if args.now && queued && args.stage.is_none() {
        let now = store.now()?;
        let due = store.make_due(args.job, &ctx.operator(), now)?;
        if ctx.json() {
            output::json(
                &json!({ "job_id": args.job, "state": JobState::Queued, "was_due": due }),
            )?;
        } else {
            output::line(format!(
                "job {} is due now (it was due {}); its attempts are kept",
                args.job,
                output::relative(due, now)
            ))?;
        }
        return Ok(exit::OK);
    }
    let now = store.now()?;
    let Retried { was, was_stage } =
        store.retry(args.job, args.stage.as_deref(), &ctx.operator(), now)?;
    let stage = args.stage.clone().unwrap_or_else(|| was_stage.clone());
    if ctx.json() {
        output::json(&json!({
            "job_id": args.job, "state": JobState::Queued, "was": was, "stage": stage, "was_stage": was_stage,
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
