//! The CI gate in the store: the job after a gated stage waits (`ci_gates`) until the tick
//! settles its gate with what the forge's checks said (`Store::settle_ci_gate`).

use serde::Serialize;

use super::NewAlert;

/// The gate a stage's next job waits behind: CI on the commit the gated stage left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiGate {
    pub sha: String,
    pub gated_stage: String,
}

/// A job waiting behind a CI gate, with what the tick needs to settle it.
#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    pub job_id: i64,
    pub task_id: i64,
    pub task: String,
    pub project: String,
    /// The waiting job's stage (the one after the gated stage).
    pub stage: String,
    pub gated_stage: String,
    pub sha: String,
    /// When the gate was set (the gated stage's finalize).
    pub since: i64,
    /// The task's last pushed commit: CI reports on `sha` only once it is pushed.
    pub pushed_sha: Option<String>,
    /// Re-runs of the gated stage for red CI so far.
    pub ci_fixes: i64,
    pub priority: i64,
    pub max_attempts: i64,
}

/// How a gate is settled.
#[derive(Debug, Clone)]
pub enum GateOutcome {
    /// Not yet: note when it was looked at.
    Wait,
    /// The waiting job is due now; the note goes in its history.
    Pass { note: String },
    /// The waiting job is cancelled and the gated stage queued again with `failures` for its
    /// prompt (`{ci_failures}`), the task's fixes counted.
    Fix { failures: String, reason: String },
    /// The waiting job fails, and its task; the alert is queued when there is one (alerts on).
    Fail {
        reason: String,
        alert: Option<Box<NewAlert>>,
    },
}

/// A gate settled by the tick.
#[derive(Debug, Clone)]
pub struct GateSettle<'a> {
    pub job_id: i64,
    pub outcome: &'a GateOutcome,
    pub actor: &'a str,
    pub now: i64,
}

/// What settling a gate did: the job queued for the gated stage again (a fix), if any. None
/// when the gate was gone (another process settled it, or the job was cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GateSettled {
    pub fix_job_id: Option<i64>,
}
