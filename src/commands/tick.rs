use anyhow::Result;
use serde_json::{json, Value};

use crate::app::tick::{self, Event};
use crate::cli::TickArgs;
use crate::exit;
use crate::output::{self, Paint};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &TickArgs) -> Result<u8> {
    if let Some(agent) = &args.agent {
        crate::commands::agent_arg(ctx, agent)?;
    }
    if let Some(project) = &args.project {
        crate::commands::project_arg(ctx, project)?;
    }
    let Some(lock) = tick::lock(ctx, &args.worker)? else {
        crate::diag!(
            "orch: another tick for worker {} is running; this one does nothing",
            args.worker
        );
        return Ok(exit::NOTHING_TO_DO);
    };
    let request = tick::Request {
        worker: &args.worker,
        agent: args.agent.as_deref(),
        project: args.project.as_deref(),
        max_jobs: args.max_jobs,
        live_status: !ctx.json() && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let mut steps: Vec<Value> = Vec::new();
    let mut printed = Ok(());
    let code = tick::tick(ctx, &request, &mut |event| {
        let step = describe(&event);
        if !ctx.json() && printed.is_ok() {
            if let Some(text) = step.get("text").and_then(Value::as_str) {
                printed = output::line(text);
            }
        }
        steps.push(step);
    })?;
    printed?;
    drop(lock);
    if ctx.json() {
        output::json(&json!({ "worker": args.worker, "exit": code, "steps": steps }))?;
    }
    Ok(code)
}

/// One step as JSON, with a `text` line for people (`orch demo --json` uses it too).
pub(crate) fn describe(event: &Event) -> Value {
    match event {
        Event::Delivered(report) => json!({
            "step": "notify", "report": report,
            "text": format!("notify: {} sent, {} failed, {} deferred, {} pending", report.sent, report.failed, report.deferred, report.pending),
        }),
        Event::Rescued(rescued) => json!({
            "step": "rescue", "job_id": rescued.job_id, "state": rescued.state,
            "worker": rescued.worker, "reason": rescued.reason,
            "text": format!("rescue: job {} → {}: {}", rescued.job_id, rescued.state, rescued.reason),
        }),
        Event::Recovered(outcome) => json!({
            "step": "recover", "outcome": outcome,
            "text": format!("recover: run {} of job {} → {}", outcome.run_id, outcome.job_id, outcome.decision.as_str()),
        }),
        Event::Pushed(report) => json!({
            "step": "push", "branch": report,
            "text": match &report.push_error {
                None => format!("push: task {} branch {} pushed", report.task, report.branch),
                Some(error) => format!("push: task {} branch {} failed: {error}", report.task, report.branch),
            },
        }),
        Event::Pruned(report) => json!({
            "step": "prune", "report": report,
            "text": format!("prune: {}", super::prune::describe(report, crate::store::now_ms()).join("; ")),
        }),
        Event::Gated(report) => json!({
            "step": "ci", "report": report,
            "text": format!("ci: job {} ({} {}): {}", report.job_id, report.project, report.task, report.reason),
        }),
        Event::Synced(report) => json!({
            "step": "sync", "report": report,
            "text": format!("sync: {}", super::sync::describe(report)),
        }),
        Event::Preflight(verdict) => json!({
            "step": "preflight", "agent": verdict.agent, "ok": verdict.ok, "cached": verdict.cached,
            "text": format!("preflight: {} pass ({})", verdict.agent, if verdict.cached { "cached" } else { "checked" }),
        }),
        Event::AgentHeld { agent, code, why } => json!({
            "step": "preflight", "agent": agent, "ok": false, "exit": code, "reason": why,
            "text": format!("preflight: {agent} held, its stages wait (exit {code}): {why}"),
        }),
        Event::Claimed(job) => json!({
            "step": "claim", "job_id": job.job_id, "task": job.task, "project": job.project,
            "stage": job.stage, "attempt": job.attempt,
            "text": format!("claim: job {} {} {} stage {}, attempt {}/{}", job.job_id, job.project, job.task, job.stage, job.attempt, job.max_attempts),
        }),
        Event::Ran(run) => json!({
            "step": "run", "run": run,
            "text": format!("run: {}", super::run::summary(Paint { color: false }, run)),
        }),
        Event::Finalized(outcome) => json!({
            "step": "finalize", "outcome": outcome,
            "text": format!("finalize: {} → {}", outcome.class, outcome.decision.as_str()),
        }),
        Event::Stopped(code, why) => json!({
            "step": "stop", "exit": code, "reason": why,
            "text": format!("stop: {why} (exit {code})"),
        }),
    }
}
