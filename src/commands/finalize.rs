//! `orch finalize JOB [--run RUN]`: judge the run, move the job on, and exit with the decision's
//! status (0 advanced or completed, 20 requeued, 21 failed, 22 gated).

use anyhow::Result;

use crate::app::finalize::{self, Decision, Judged, LaunchKind, Outcome};
use crate::cli::FinalizeArgs;
use crate::domain::breaker::Change;
use crate::output::{self, Paint};
use crate::store::now_ms;
use crate::vcs::git::Committed;
use crate::Ctx;

/// Who finalize is recorded as in job history.
const ACTOR: &str = "finalize";

pub fn run(ctx: &Ctx, args: &FinalizeArgs) -> Result<u8> {
    let mut store = ctx.store()?;
    let outcome = finalize::finalize_job(&ctx.config, &mut *store, args.job, args.run, ACTOR)?;
    if ctx.json() {
        output::json(&outcome)?;
    } else {
        output::line(human(&outcome, ctx.paint(), now_ms()))?;
    }
    Ok(outcome.decision.exit_status())
}

/// "job 5 run 7: ok → advanced: architect queued as job 6", then a line per side effect.
fn human(outcome: &Outcome, paint: Paint, now: i64) -> String {
    let decision = outcome.decision.as_str();
    let decision = match outcome.decision {
        Decision::Advanced | Decision::Completed => paint.pass(decision),
        Decision::Requeued => paint.warn(decision),
        Decision::Failed | Decision::Gated | Decision::Cancelled => paint.fail(decision),
    };
    let workdir_missing = Judged::LaunchError(LaunchKind::Project).name();
    let what = match outcome.decision {
        Decision::Advanced => format!(
            "{} queued as job {}",
            outcome.next_stage.as_deref().unwrap_or("the next stage"),
            outcome
                .next_job_id
                .map_or("?".to_string(), |id| id.to_string())
        ),
        Decision::Completed => "the task is complete".to_string(),
        Decision::Requeued if outcome.class == workdir_missing => {
            "back in the queue, attempt not counted; claims on that host skip the project until \
             its workdir is back"
                .to_string()
        }
        Decision::Requeued => format!(
            "retry {}, attempt {}/{} used",
            outcome
                .retry_at
                .map_or("now".to_string(), |at| output::when(at, now)),
            outcome.attempt,
            outcome.max_attempts
        ),
        Decision::Failed => format!(
            "failed for good (attempt {}/{})",
            outcome.attempt, outcome.max_attempts
        ),
        Decision::Gated => "back in the queue, attempt not counted; claims wait until the agent \
                            logs in again (or `orch reset-cache`)"
            .to_string(),
        Decision::Cancelled => "cancelled by an operator while it ran".to_string(),
    };
    let mut out = vec![format!(
        "job {} run {}: {} → {decision}: {what}",
        outcome.job_id, outcome.run_id, outcome.class
    )];
    if outcome.already_finalized {
        out.push(paint.dim("already finalized earlier: nothing changed"));
    }
    if !outcome.reason.is_empty() {
        out.push(format!("  {}", outcome.reason));
    }
    match &outcome.commit {
        Some(Committed::Committed { sha }) => out.push(format!("  auto-commit {sha}")),
        Some(Committed::NoChanges) => out.push("  auto-commit: no changes".to_string()),
        Some(Committed::NotARepository) => {
            out.push("  auto-commit: the workdir is not a git repository".to_string())
        }
        Some(Committed::Failed { error }) => {
            out.push(format!("  {}: {error}", paint.fail("auto-commit failed")))
        }
        None => {}
    }
    match outcome.breaker {
        Some(Change::Opened) => out.push(format!("  {}", paint.fail("circuit breaker opened"))),
        Some(Change::Reopened) => out.push(format!(
            "  {}",
            paint.fail("circuit breaker opened again (probe failed, cooldown doubled)")
        )),
        Some(Change::Closed) => out.push(format!("  {}", paint.pass("circuit breaker closed"))),
        Some(Change::None) | None => {}
    }
    if outcome.gate_held {
        out.push(
            "  auth gate held: preflight fails until the credentials file changes".to_string(),
        );
    }
    if !outcome.alerts.is_empty() {
        let kinds: Vec<&str> = outcome.alerts.iter().map(|k| k.as_str()).collect();
        out.push(format!("  alert queued: {}", kinds.join(", ")));
    }
    if outcome.comment_queued {
        out.push("  usage comment queued".to_string());
    }
    out.join("\n")
}
