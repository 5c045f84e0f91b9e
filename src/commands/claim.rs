use anyhow::Result;
use serde_json::json;

use crate::app::claim;
use crate::cli::ClaimArgs;
use crate::exit;
use crate::output;
use crate::store::Job;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ClaimArgs) -> Result<u8> {
    // The gate first: an agent that is missing or logged out would only fail the job it took.
    // Each agent's preflight is asked before any job is touched; one that fails keeps its own
    // stages' jobs out (and, when nothing else can be claimed, its exit status, 10, 11 or 13, is
    // the claim's, its reason on stderr). The circuit breakers are asked inside the claim (exit
    // 12 when every one is open).
    if let Some(agent) = &args.agent {
        crate::commands::agent_arg(ctx, agent)?;
    }
    if let Some(project) = &args.project {
        crate::commands::project_arg(ctx, project)?;
    }
    let mut store = ctx.store()?;
    let agents =
        claim::agents_in_scope(&ctx.config, args.project.as_deref(), args.agent.as_deref())?;
    let gated = claim::gate(&ctx.config, &mut *store, &agents)?;
    let held = gated.stop();
    let passing: Vec<&str> = gated.passing.iter().map(|(agent, _)| *agent).collect();
    if passing.is_empty() {
        return match held {
            Some((code, why)) => Err(exit::coded(code, why)),
            None => {
                crate::diag!(
                    "orch: agent {} runs no stage of the pipeline",
                    args.agent.as_deref().unwrap_or_default()
                );
                Ok(exit::NOTHING_TO_DO)
            }
        };
    }
    let claimed = claim::claim(
        ctx,
        &mut *store,
        &args.worker,
        &passing,
        args.project.as_deref(),
    )?;
    match (&claimed.job, held) {
        (Some(job), _) => {
            print(ctx, job, claimed.agent.as_deref(), claimed.probe)?;
            Ok(exit::OK)
        }
        (None, Some((code, why))) => Err(exit::coded(code, why)),
        (None, None) => Ok(exit::NOTHING_TO_DO),
    }
}

fn print(ctx: &Ctx, job: &Job, agent: Option<&str>, probe: bool) -> Result<()> {
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
        "agent": agent,
        "breaker_probe": probe,
    }))
}
