//! What finalize hands the store: a plan, decided by pure code (`domain::decide` and
//! `app::finalize`) before the transaction, that `Store::apply_finalize` writes whole inside one,
//! under a guard; the lock that keeps two finalizers of one run from judging and committing it
//! twice; and the runs that still await finalize.

use serde::Serialize;

use super::{
    AlertKind, CredsFingerprint, InvocationHoldRequest, Job, NewAlert, NewComment, Run,
    UsageHoldRequest,
};
use crate::domain::breaker::{opened_reason, Breaker, Change, Event, Policy};
use crate::domain::decide::Decision;
use crate::domain::states::{JobState, TaskState};

/// Everything one finalize writes. The store checks the guard inside its transaction — the run
/// is not finalized yet and its worker still holds the job's lease for the run's attempt — and
/// writes nothing when it fails (`Applied::Finalized`, `Applied::NotHeld`). The job facts the plan
/// was decided from (attempt, max attempts, stage, project) cannot change while that holds.
#[derive(Debug, Clone)]
pub struct FinalizePlan {
    pub run_id: i64,
    pub job_id: i64,
    pub worker: String,
    pub attempt: i64,
    pub agent: String,
    /// What is stored on the run. `exit_code` is never written here.
    pub verdict: RunVerdict,
    /// Where the job goes; the verdict's class and reason are kept on it as its last.
    pub job: JobMove,
    /// The next stage's job, queued at attempt 0 and due now.
    pub next_job: Option<NextJob>,
    /// The task's state once no job of it is live (complete or failed).
    pub task: Option<TaskState>,
    /// Hold the project on a host (its workdir is missing there); the first hold alerts.
    pub hold_project: Option<ProjectHoldRequest>,
    /// Hold the agent's auth gate on the run's host, dropping its cached verdict there; the
    /// alert goes out only when the gate was not held already for the same credentials file.
    pub gate: Option<GateHold>,
    /// Hold the agent on the run's host until its usage limit resets; the alert goes out only
    /// when it was not held already.
    pub usage_hold: Option<UsageHoldRequest>,
    /// Hold the agent on the run's host because it refused how orch called it, dropping its
    /// cached verdict there; the alert goes out only when it was not held already under the same
    /// settings.
    pub invocation_hold: Option<InvocationHoldRequest>,
    /// The run's effect on its agent's circuit breaker: the store reads the breaker inside the
    /// transaction and applies `Breaker::record` to it.
    pub breaker: BreakerUpdate,
    /// Alerts the decision raises, in order.
    pub alerts: Vec<NewAlert>,
    /// Whether alerts are queued, or noted in the job's history because they have nowhere to go.
    pub alerts_to: AlertRoute,
    /// The usage comment for the task's issue.
    pub comment: Option<NewComment>,
    /// The commit the task's branch is at after this (ok) run, when it moved: recorded on the
    /// task, so a push is due until one succeeds, even if orch dies right after the decision.
    pub branch_head: Option<String>,
    /// Merge the task's pull request (its last stage succeeded, `merge = "after_last_stage"`):
    /// the task stays active until the merge is confirmed (`Store::settle_merge`).
    pub merge: Option<super::NewMerge>,
    /// The run's log to keep in the database (`Store::run_log`), when this host has it.
    pub log: Option<super::StoredLog>,
    /// Who the job's history records.
    pub actor: String,
    pub now: i64,
}

impl FinalizePlan {
    /// The alerts the plan raises, in order, once the store knows whether the gate and the usage
    /// hold were newly held and how the breaker changed: the plan's own, the gate's, the usage
    /// hold's, the breaker's (its reason from `domain::breaker::opened_reason`). Each goes where
    /// `alerts_to` says.
    pub fn raised(&self, held: Held, breaker: &Breaker, change: Change) -> Vec<NewAlert> {
        let gate = self
            .gate
            .as_ref()
            .and_then(|gate| gate.alert.clone())
            .filter(|_| held.gate);
        let usage = self
            .usage_hold
            .as_ref()
            .map(|hold| hold.alert.clone())
            .filter(|_| held.usage);
        let invocation = self
            .invocation_hold
            .as_ref()
            .map(|hold| hold.alert.clone())
            .filter(|_| held.invocation);
        let opened =
            opened_reason(&self.agent, breaker, change, &self.verdict.class).map(|why| NewAlert {
                reason: why,
                ..self.breaker.alert.clone()
            });
        self.alerts
            .iter()
            .cloned()
            .chain(gate)
            .chain(usage)
            .chain(invocation)
            .chain(opened)
            .collect()
    }
}

/// Which of a plan's holds the store took anew (not held already).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub gate: bool,
    pub usage: bool,
    pub invocation: bool,
}

/// The verdict and decision stored on a run.
#[derive(Debug, Clone)]
pub struct RunVerdict {
    /// None when there was no log to judge (a launch failure).
    pub result_ok: Option<bool>,
    pub class: String,
    pub reason: String,
    pub usage_json: Option<String>,
    /// The agent's result text, capped, for the next stage's prompt; None when there was no log.
    pub result_text: Option<String>,
    pub decision: Decision,
    /// When a requeued job is due again.
    pub retry_at: Option<i64>,
    /// The commit auto-commit made after this ok run.
    pub commit_sha: Option<String>,
    /// What the run cost, as its log said: budgets sum it.
    pub cost_usd: Option<f64>,
}

/// Where a held job goes after its run's verdict.
#[derive(Debug, Clone)]
pub struct JobMove {
    /// queued, done or failed.
    pub to: JobState,
    /// When a queued job is due again.
    pub run_after: Option<i64>,
    /// Give back the attempt the claim took (the run did not count).
    pub refund_attempt: bool,
    /// The history line: what was decided and why.
    pub history: String,
}

/// A job to queue for the next stage of the same task.
#[derive(Debug, Clone)]
pub struct NextJob {
    pub stage: String,
    pub priority: i64,
    pub max_attempts: u64,
    /// The history line of its creation.
    pub reason: String,
    /// It waits behind CI on the gated stage's commit (`[stages.NAME] ci_gate`).
    pub ci_gate: Option<super::CiGate>,
    /// It waits for a person (`[stages.NAME] approve`): made `awaiting_approval`.
    pub approval: bool,
}

/// A project to hold on a host.
#[derive(Debug, Clone)]
pub struct ProjectHoldRequest {
    pub project: String,
    pub host: String,
    pub reason: String,
}

/// An auth gate to hold on a host for an agent, because run `run_id` showed the agent is not
/// authenticated there. `creds` is that host's credentials file as it is now (None when missing
/// or unknown): the gate opens when it changes.
#[derive(Debug, Clone)]
pub struct GateHold {
    pub host: String,
    pub agent: String,
    pub run_id: i64,
    pub reason: String,
    pub creds: Option<CredsFingerprint>,
    /// Raised (through `alerts_to`) when the gate is newly held.
    pub alert: Option<NewAlert>,
}

/// A finalized run's effect on its agent's breaker.
#[derive(Debug, Clone)]
pub struct BreakerUpdate {
    pub event: Event,
    pub policy: Policy,
    /// Raised (through `alerts_to`) when the breaker opens, its reason from
    /// `domain::breaker::opened_reason`.
    pub alert: NewAlert,
}

/// What becomes of the alerts a decision raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertRoute {
    Queue,
    /// Alerts are off (`detail` says why): each is recorded in the job's history instead, not
    /// queued to wait for ever.
    Note {
        detail: String,
    },
}

impl AlertRoute {
    /// The history line that stands for `alert`, or None when it is queued.
    pub fn note(&self, alert: &NewAlert) -> Option<String> {
        match self {
            AlertRoute::Queue => None,
            AlertRoute::Note { detail } => Some(format!(
                "alert not sent ({}: alerts are off: {detail}): {}",
                alert.kind.as_str(),
                alert.reason
            )),
        }
    }
}

/// What `apply_finalize` did.
#[derive(Debug)]
pub enum Applied {
    Done(Effects),
    /// The run was finalized already (by another finalizer, a rescue or a cancel): nothing was
    /// written; this is the run as stored, with its decision.
    Finalized(Box<Run>),
    /// The run's worker no longer holds the job for the run's attempt: nothing was written.
    NotHeld {
        job: Box<Job>,
        run: Box<Run>,
    },
}

/// What the plan's conditional parts came to.
#[derive(Debug, Clone)]
pub struct Effects {
    pub next_job_id: Option<i64>,
    /// The project was newly held (its alert queued).
    pub project_held: bool,
    /// The gate was newly held (not held already for the same file).
    pub gate_held: bool,
    /// The usage hold was newly taken (the agent was not held already).
    pub usage_held: bool,
    /// The invocation hold was newly taken (not held already under the same settings).
    pub invocation_held: bool,
    /// The breaker after the run, and what changed.
    pub breaker: Breaker,
    pub change: Change,
    /// The kinds of the alerts raised, queued or noted, in order: the plan's, the gate's, the
    /// usage hold's, the invocation hold's, the breaker's, then the project hold's.
    pub alerts: Vec<AlertKind>,
}

/// Taking a run's finalize lock. Judging the log and auto-committing happen before the
/// transaction, so two finalizers of one run are kept apart by this lock: the second waits for
/// the first and then finds the decision made. It lives in the store, so finalizers on
/// different hosts see it too.
#[derive(Debug, Clone, Copy)]
pub struct FinalizeLock<'a> {
    pub run_id: i64,
    /// Who takes it: unique to the process (its place, pid and start time).
    pub holder: &'a str,
    /// Until when it holds: a holder that dies without unlocking leaves it to run out.
    pub until: i64,
    /// Take it over from this holder even before it runs out: the caller saw it is gone.
    pub take_from: Option<&'a str>,
    pub now: i64,
}

/// What a lock attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    Taken,
    /// Another holder has it until `until`.
    Held {
        holder: String,
        until: i64,
    },
    /// The run is finalized: there is nothing left to lock for.
    Finalized,
}

/// A run that ended (or never started) and was not finalized, while its job is still held by
/// the run's worker and attempt: orch died between `run` and `finalize`. `tick` finalizes these
/// before it claims, so a verdict is not lost to the lease rescue.
#[derive(Debug, Clone, Serialize)]
pub struct Unfinalized {
    pub run_id: i64,
    pub job_id: i64,
    pub worker: String,
    pub agent: String,
    pub attempt: i64,
    /// None for a launch failure recorded without an end (never in practice: both are set).
    pub ended_at: Option<i64>,
    pub launch_error: bool,
    pub lease_expires_at: Option<i64>,
}
