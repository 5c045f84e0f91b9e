//! What `orch metrics` reads: totals over the whole database, read together in one snapshot so
//! the families agree with each other.

use super::{BreakerRow, OutboxSummary, ProjectHold, StateCount, WorktreeUsage};

/// Runs with one verdict class; `class` is None for runs not judged yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCount {
    pub class: Option<String>,
    pub count: i64,
}

/// What one project's runs cost and used, summed over the usage every judged run recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTotals {
    pub project: String,
    pub cost_usd: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
}

/// One agent's cached preflight verdict on a host, and whether a run holds its auth gate there.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightRow {
    pub agent: String,
    /// None when no verdict is cached (only the gate is held).
    pub ok: Option<bool>,
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub gate_held: bool,
    /// Until when the agent's usage hold stands, if it does.
    pub usage_until: Option<i64>,
    /// Why the agent is held for refusing its command line, if it is.
    pub invocation_reason: Option<String>,
}

/// Everything the metrics are made from, read in one snapshot of the database.
#[derive(Debug)]
pub struct MetricsFacts {
    pub job_counts: Vec<StateCount>,
    pub run_classes: Vec<ClassCount>,
    /// Times a job went from running back to the queue: an attempt that will be retried (a
    /// transient failure, an expired lease). An operator's `orch retry` of a failed job is not
    /// one: it starts the attempts afresh.
    pub requeues: i64,
    /// Cost and tokens by project, from each finalized run's usage (the rollup: pruned runs
    /// included); runs without usage, or with usage that is not valid JSON, count as zero, and
    /// so does a negative figure (a counter never goes down).
    pub usage: Vec<UsageTotals>,
    /// The host's preflight verdicts and gates, by agent.
    pub preflight: Vec<PreflightRow>,
    pub outbox: OutboxSummary,
    /// When the longest-waiting queued job became due (`run_after` ≤ now), if any job is due.
    /// A job waiting out a retry delay is not waiting for a worker yet.
    pub oldest_due_queued: Option<i64>,
    pub breakers: Vec<BreakerRow>,
    /// Runs that continued an earlier session (`--resume`).
    pub resumed_runs: i64,
    /// What each project's runs finalized today (UTC) cost, for projects with such runs.
    pub cost_today: Vec<(String, f64)>,
    /// The host's task worktrees by project, with their size as last measured.
    pub worktrees: Vec<WorktreeUsage>,
    /// Projects held on a host (their workdir is missing there).
    pub holds: Vec<ProjectHold>,
    /// When the fleet's prune last finished, if ever.
    pub last_prune_at: Option<i64>,
}
