use anyhow::Result;
use serde_json::json;

use crate::app::claim::claim;
use crate::app::preflight;
use crate::cli::ClaimArgs;
use crate::exit;
use crate::output;
use crate::store::Job;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ClaimArgs) -> Result<u8> {
    // The gate first: an agent that is missing or logged out would only fail the job it took.
    // A failure exits 10 or 11 with the reason on stderr, before any job is touched. The
    // circuit breaker is asked inside the claim (exit 12).
    crate::commands::agent_arg(ctx, &args.agent)?;
    if let Some(project) = &args.project {
        crate::commands::project_arg(ctx, project)?;
    }
    let mut store = ctx.store()?;
    preflight::require(&ctx.config, &mut *store, &args.agent)?;
    let claim = claim(
        ctx,
        &mut *store,
        &args.worker,
        &args.agent,
        args.project.as_deref(),
    )?;
    match &claim.job {
        Some(job) => {
            print(ctx, job, claim.probe)?;
            Ok(exit::OK)
        }
        None => Ok(exit::NOTHING_TO_DO),
    }
}

fn print(ctx: &Ctx, job: &Job, probe: bool) -> Result<()> {
    if !ctx.json() {
        return output::line(job.job_id.to_string());
    }
    let workdir = ctx
        .config
        .project(&job.project)
        .map(|p| p.workdir.clone())
        .ok();
    output::json(&json!({
        "job_id": job.job_id,
        "task": job.task,
        "title": job.title,
        "project": job.project,
        "stage": job.stage,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at,
        "workdir": workdir,
        "breaker_probe": probe,
    }))
}
