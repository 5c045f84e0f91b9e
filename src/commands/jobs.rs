//! `orch jobs`: the jobs to look at, with the ids every other command takes.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use crate::cli::JobsArgs;
use crate::commands::{project_arg, stage_arg, state_arg};
use crate::domain::states::JobState;
use crate::exit;
use crate::output::{self, Table};
use crate::store::{now_ms, Job, JobFilter};
use crate::Ctx;

/// The CI gates `orch jobs` looks at to tell a held job from a due one.
const GATES_SHOWN: i64 = 1000;

pub fn run(ctx: &Ctx, args: &JobsArgs) -> Result<u8> {
    for state in &args.state {
        state_arg(state)?;
    }
    if let Some(project) = &args.project {
        project_arg(ctx, project)?;
    }
    if let Some(stage) = &args.stage {
        stage_arg(ctx, stage)?;
    }
    let store = ctx.store()?;
    let jobs = store.list_jobs(&JobFilter {
        // Checked by `state_arg` above.
        states: args
            .state
            .iter()
            .filter_map(|name| JobState::from_name(name))
            .collect(),
        project: args.project.as_deref(),
        stage: args.stage.as_deref(),
        task: args.task.as_deref(),
        limit: args.limit,
    })?;
    let now = now_ms();
    // Jobs held behind CI (queued, but not due whatever run_after says), with the commit.
    let gated: BTreeMap<i64, String> = store
        .ci_gates(GATES_SHOWN)?
        .into_iter()
        .map(|gate| (gate.job_id, gate.sha))
        .collect();
    if ctx.json() {
        let rows: Vec<_> = jobs
            .iter()
            .map(|job| row_json(job, now, gated.get(&job.job_id)))
            .collect();
        output::json(&json!({ "jobs": rows }))?;
        return Ok(exit::OK);
    }
    if jobs.is_empty() {
        let what = if args.state.is_empty() {
            "no live jobs (queued or running); `--state done` and the like list others"
        } else {
            "no jobs match"
        };
        output::line(what)?;
        return Ok(exit::OK);
    }
    let paint = ctx.paint();
    let mut table = Table::new(&[
        "JOB",
        "PROJECT",
        "TASK",
        "STAGE",
        "STATE",
        "ATTEMPT",
        "DUE / LEASE",
        "LAST",
    ]);
    for job in &jobs {
        table.row(vec![
            job.job_id.to_string(),
            job.project.clone(),
            job.task.clone(),
            job.stage.clone(),
            paint.state(job.state.as_str()),
            format!("{}/{}", job.attempt, job.max_attempts),
            match gated.get(&job.job_id) {
                Some(sha) => format!("waits for CI on {}", output::clip(sha, 12)),
                None => due_or_lease(job, now),
            },
            job.last_class
                .as_deref()
                .map_or_else(|| paint.dim("·"), |class| super::paint_class(paint, class)),
        ]);
    }
    output::line(table.render(paint))?;
    Ok(exit::OK)
}

/// When a queued job is due, who holds a running one and until when, when a finished one ended.
fn due_or_lease(job: &Job, now: i64) -> String {
    match (job.state, &job.lease_owner, job.lease_expires_at) {
        (JobState::Queued, _, _) if job.run_after > now => {
            format!("due {}", output::relative(job.run_after, now))
        }
        (JobState::Queued, _, _) => "due now".to_string(),
        (JobState::Running, Some(owner), Some(expires)) => {
            format!("{owner}, lease {}", output::relative(expires, now))
        }
        _ => output::relative(job.updated_at, now),
    }
}

fn row_json(job: &Job, now: i64, ci_gate: Option<&String>) -> serde_json::Value {
    json!({
        "job_id": job.job_id,
        "project": job.project,
        "task": job.task,
        "title": job.title,
        "stage": job.stage,
        "state": job.state,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "run_after": job.run_after,
        "due": job.state == JobState::Queued && job.run_after <= now && ci_gate.is_none(),
        "ci_gate": ci_gate,
        "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at,
        "last_class": job.last_class,
        "last_reason": job.last_reason,
        "updated_at": job.updated_at,
    })
}
