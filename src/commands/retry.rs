use anyhow::Result;
use serde_json::json;

use crate::cli::JobArg;
use crate::exit;
use crate::output;
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &JobArg) -> Result<u8> {
    let was = ctx.store()?.retry(args.job, &ctx.operator(), now_ms())?;
    if ctx.json() {
        output::json(&json!({ "job_id": args.job, "state": "queued", "was": was }))?;
    } else {
        output::line(format!(
            "job {} queued again (was {was}), attempts reset",
            args.job
        ))?;
    }
    Ok(exit::OK)
}
