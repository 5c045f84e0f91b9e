use anyhow::Result;
use serde_json::json;

use crate::cli::ClaimArgs;
use crate::config;
use crate::exit;
use crate::output;
use crate::preflight;
use crate::store::{now_ms, Claim, ClaimRequest, Job, Store};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ClaimArgs) -> Result<u8> {
    // The gate first: an agent that is missing or logged out would only fail the job it took.
    // A failure exits 10 or 11 with the reason on stderr, before any job is touched. The
    // circuit breaker is asked inside the claim (exit 12).
    crate::commands::agent_arg(ctx, &args.agent)?;
    let mut store = ctx.store()?;
    preflight::require(&ctx.config, &mut store, &args.agent)?;
    let claim = claim(
        ctx,
        &mut store,
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

/// Take the next eligible job for `worker` to run with `agent`, unless the agent's circuit
/// breaker is open (an error carrying exit 12). Shared by `claim` and `tick`, on the caller's
/// connection (a second one per job cost a tenth of a tick); the preflight gate is the caller's.
pub fn claim(
    ctx: &Ctx,
    store: &mut Store,
    worker: &str,
    agent: &str,
    only_project: Option<&str>,
) -> Result<Claim> {
    config::require_worker(worker)?;
    let projects: Vec<(&str, u32)> = match only_project {
        Some(name) => {
            let project = crate::commands::project_arg(ctx, name)?;
            vec![(project.name.as_str(), project.max_running)]
        }
        None => ctx
            .config
            .projects
            .values()
            .map(|p| (p.name.as_str(), p.max_running))
            .collect(),
    };
    let claim = store.claim(&ClaimRequest {
        worker,
        agent,
        projects,
        lease_ms: ctx.config.millis(config::LEASE_SECONDS),
        now: now_ms(),
    })?;
    for r in &claim.rescued {
        crate::diag!(
            "orch: job {} lease of {} expired: {}",
            r.job_id,
            r.worker.as_deref().unwrap_or("?"),
            r.state
        );
    }
    if let Some(job) = claim.job.as_ref().filter(|_| claim.probe) {
        crate::diag!(
            "orch: job {} is the probe of agent {agent}'s half-open circuit breaker",
            job.job_id
        );
    }
    Ok(claim)
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
