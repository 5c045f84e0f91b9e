//! agent_runs: one row per launch of the agent. `exit_code` is written once, when the process
//! ends, exactly as it returned; the verdict (`result_ok`, `class`) is stored beside it.

use serde::Serialize;

use super::Job;
use crate::domain::decide::Decision;
use crate::procfs::{Place, Proc};

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: i64,
    pub job_id: i64,
    pub attempt: i64,
    pub worker: String,
    pub agent: String,
    pub agent_version: Option<String>,
    pub pid: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub launch_error: Option<String>,
    pub log_path: Option<String>,
    pub log_bytes: i64,
    pub log_truncated: bool,
    pub result_ok: Option<bool>,
    pub class: Option<String>,
    pub reason: Option<String>,
    pub usage: Option<serde_json::Value>,
    pub decision: Option<Decision>,
    pub finalized_at: Option<i64>,
    /// What finalize decided besides `decision`: the next stage's job, or when a retry is due.
    pub next_job_id: Option<i64>,
    pub retry_at: Option<i64>,
    /// The commit auto-commit made after this ok run.
    pub commit_sha: Option<String>,
    /// Where the run's processes live (`host`, `boot_id`, `pid_ns`).
    pub host: Option<String>,
    pub boot_id: Option<String>,
    pub pid_ns: Option<String>,
    /// The orch process that watched the agent, with its start time (clock ticks since boot).
    pub supervisor_pid: Option<i64>,
    pub supervisor_start: Option<i64>,
    /// The agent's start time; `pid` is the agent's and its process group's id.
    pub agent_start: Option<i64>,
    /// Whose launch failure it was: agent, task, project or checkout.
    pub launch_kind: Option<String>,
    /// Orch ended the run because its log stopped growing (`idle_timeout_seconds`).
    pub stalled: bool,
    /// The agent session this run continued (`--resume`), when it did.
    pub resumed_session: Option<String>,
    /// What the run cost, as its log said (set at finalize; budgets sum it).
    pub cost_usd: Option<f64>,
    /// The commit of the task's branch pushed after this run, or why the push failed.
    pub pushed_sha: Option<String>,
    pub push_error: Option<String>,
    /// The kind of agent that ran (`claude`, `codex`, `gemini`): whose rules read its log. None
    /// for runs made before kinds were recorded (they were Claude Code's).
    pub agent_kind: Option<String>,
}

impl Run {
    /// Where the run's processes live, when it recorded it.
    pub fn place(&self) -> Option<Place> {
        Some(Place {
            host: self.host.clone()?,
            boot_id: self.boot_id.clone(),
            pid_ns: self.pid_ns.clone(),
        })
    }

    /// The agent as recorded: the leader of the run's process group.
    pub fn agent_process(&self) -> Option<Proc> {
        proc_of(self.pid, self.agent_start)
    }
}

/// A recorded pid and start time, when both are there.
pub(crate) fn proc_of(pid: Option<i64>, start: Option<i64>) -> Option<Proc> {
    Some(Proc {
        pid: i32::try_from(pid?).ok()?,
        start: u64::try_from(start?).ok()?,
    })
}

/// What `start_run` needs to check the lease and open a run row.
pub struct NewRun<'a> {
    /// The log's path, from the new run's id.
    pub log_path: &'a dyn Fn(i64) -> String,
    pub job_id: i64,
    pub worker: &'a str,
    pub agent: &'a str,
    /// The profile's kind, by name: whose rules read the run's log.
    pub agent_kind: &'a str,
    pub agent_version: Option<&'a str>,
    /// The lease granted from `now`: starting a run renews it, so the first heartbeat has a full
    /// lease to come in.
    pub lease_ms: i64,
    /// Where the run's processes live, and the orch process that will watch the agent.
    pub place: &'a Place,
    pub supervisor: Option<Proc>,
    /// The agent session the run continues (`--resume`), if it does.
    pub resumed_session: Option<&'a str>,
    pub now: i64,
}

/// The run row just opened, and the job as it stood when it was opened.
pub struct StartedRun {
    pub run_id: i64,
    pub job: Job,
    pub log_path: String,
}

/// How a run ended, written once over the row `start_run` opened.
#[derive(Debug, Default)]
pub struct RunEnd<'a> {
    pub pid: Option<u32>,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Ended by orch because its log stopped growing.
    pub stalled: bool,
    pub interrupted: bool,
    /// The session it was to continue was gone, and the run started afresh: it resumed nothing.
    pub resume_failed: bool,
    pub launch_error: Option<&'a str>,
    /// Whose launch failure it was (`LaunchKind::as_str`).
    pub launch_kind: Option<&'a str>,
    pub log_bytes: u64,
    pub log_truncated: bool,
    /// Drop the agent's cached preflight verdict in the same transaction: the run showed it is
    /// stale (the agent could not start, or is not authenticated). A held auth gate stays held.
    pub drop_preflight_cache: bool,
    /// The log to keep in the database (`Store::run_log`), for a run closed while it ran
    /// (cancelled, or rescued): no finalize will keep it.
    pub log: Option<super::StoredLog>,
}

/// The result an earlier run left for the next stage's prompt (`{previous_result}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousResult {
    /// The result text stored at finalize (capped; empty when the run gave none).
    Text(String),
    /// A run finalized before orch stored result texts: only its log has it.
    Log(String),
}
