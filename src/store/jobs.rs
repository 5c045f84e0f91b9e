//! Tasks, jobs, their history and the claim: what the store's job operations take and return.

use serde::Serialize;

use crate::domain::budget::Budget;
use crate::domain::rescue::{Candidate, Rescue};
use crate::domain::states::JobState;
use crate::exit;

/// A job id that names no job: a wrong argument (exit 2), whichever command was given it.
pub fn no_job(job_id: i64) -> anyhow::Error {
    exit::usage(format!("no job {job_id}"))
}

/// A job with its task's key, title and issue.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub job_id: i64,
    pub task_id: i64,
    pub task: String,
    pub title: String,
    pub issue: Option<i64>,
    pub project: String,
    pub stage: String,
    pub state: JobState,
    pub priority: i64,
    pub attempt: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_class: Option<String>,
    pub last_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Job {
    /// Running under `worker`'s lease for `attempt`: what finalize and the heartbeat insist on.
    pub fn held_by(&self, worker: &str, attempt: i64) -> bool {
        self.state == JobState::Running
            && self.lease_owner.as_deref() == Some(worker)
            && self.attempt == attempt
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub from_state: Option<JobState>,
    pub to_state: JobState,
    pub actor: String,
    pub reason: String,
}

pub struct NewTask<'a> {
    pub project: &'a str,
    pub key: &'a str,
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub issue: Option<u64>,
    pub stage: &'a str,
    pub priority: i64,
    pub max_attempts: u64,
    pub actor: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Enqueued {
    pub job_id: i64,
    pub task: String,
    pub project: String,
    pub stage: String,
    pub created: bool,
    /// The live job's state when `created` is false.
    pub state: JobState,
    /// Why nothing was created for a task that has no live job (complete, an open pull
    /// request, a key spelled like another's).
    pub refused: Option<super::Refused>,
}

pub struct ClaimRequest<'a> {
    pub worker: &'a str,
    /// Projects that may be claimed from, each with the stages whose jobs may be claimed and the
    /// agent that runs each: its circuit breaker gates the claim of those jobs.
    pub projects: Vec<ClaimProject<'a>>,
    pub lease_ms: i64,
    /// The longest backoff a queued job may wait (`Retry::longest_ms`): a job due further ahead
    /// than that was dated by a clock that ran ahead, and is due now.
    pub longest_backoff_ms: i64,
    /// This host's name: the claim holds and releases its projects under it.
    pub host: &'a str,
    /// The first millisecond of today (UTC): a project's daily budget counts runs since.
    pub day_start: i64,
    /// Which of the running jobs a rescue looks at to take back (see `crate::domain::rescue`); it ends
    /// their process groups before it answers.
    pub triage: Triage<'a>,
    pub now: i64,
}

/// Decides, inside a transaction, which running jobs to take back: see `crate::domain::rescue`.
/// The store calls it with the candidates it read and writes what it returns, in the same
/// transaction, so a supervisor cannot renew its lease between the look and the decision.
pub type Triage<'a> = &'a dyn Fn(&[Candidate]) -> Vec<Rescue>;

/// A project a claim may take a job from.
#[derive(Debug, Clone)]
pub struct ClaimProject<'a> {
    pub name: &'a str,
    pub max_running: u32,
    /// Why the project cannot run a job on this host now (its workdir is missing, its main clone
    /// has no commit: `app::branches::not_ready`): the claim skips it and holds it, alerting once.
    pub held: Option<String>,
    /// A job of a task, or of the project today, that spent its budget is not run: the claim
    /// moves it to `over_budget` (alerting once), and back to the queue once the budget allows
    /// (raised, or a new day).
    pub budget: Budget,
    /// The pipeline's stages this claim may take the project's jobs at, with their agents: a job
    /// at any other stage is not claimed (it could not be finalized, or another agent runs it).
    pub stages: Vec<ClaimStage<'a>>,
}

/// A stage a claim may take jobs at, and the agent profile that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimStage<'a> {
    pub stage: &'a str,
    pub agent: &'a str,
}

impl<'a> ClaimStage<'a> {
    /// Every stage of `stages`, run by `agent`.
    pub fn all(stages: &[&'a str], agent: &'a str) -> Vec<ClaimStage<'a>> {
        stages
            .iter()
            .map(|stage| ClaimStage { stage, agent })
            .collect()
    }
}

/// An operator's `orch retry JOB --raise-budget USD`: more for the job's task, and for its
/// project today when that is what holds the job.
#[derive(Debug, Clone)]
pub struct BudgetRaise<'a> {
    pub job_id: i64,
    pub usd: f64,
    /// The job's project's budgets, as configured now.
    pub budget: Budget,
    pub day_start: i64,
    pub actor: &'a str,
    pub now: i64,
}

/// What a raise did.
#[derive(Debug, Clone, Serialize)]
pub struct Raised {
    pub job_id: i64,
    pub task: String,
    pub project: String,
    /// The task's runs' cost, its budget and what was added to it (this raise included).
    pub task_spent_usd: f64,
    pub task_budget_usd: Option<f64>,
    pub task_extra_usd: f64,
    /// The project's cost today, its daily budget and what was added to it today.
    pub day_spent_usd: f64,
    pub day_budget_usd: Option<f64>,
    pub day_extra_usd: f64,
    /// The job went back to the queue; false when the budget is still spent.
    pub released: bool,
}

/// A project's spending, for `status` and `metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectSpend {
    pub project: String,
    /// What its runs finalized today (UTC) cost.
    pub today_usd: f64,
    /// What was added to its daily budget today.
    pub today_extra_usd: f64,
    /// Its jobs waiting in `over_budget`.
    pub over_budget: i64,
}

/// What a claim did.
#[derive(Debug)]
pub struct Claim {
    pub job: Option<Job>,
    /// Jobs whose expired leases were rescued on the way.
    pub rescued: Vec<Rescued>,
    /// The claim went through a half-open circuit breaker: its run decides whether it closes.
    pub probe: bool,
    /// The agent profile that runs the claimed job's stage.
    pub agent: Option<String>,
    /// The agents whose open circuit breaker kept their stages out of this claim, with why.
    pub refused: Vec<(String, String)>,
}

/// A running job taken back from its worker: its lease ran out, or its orch on this host is gone
/// or stopped.
#[derive(Debug, Serialize)]
pub struct Rescued {
    pub job_id: i64,
    pub worker: Option<String>,
    pub state: JobState,
    /// The history line: why, and that the attempt counted.
    pub reason: String,
}

/// What `cancel` did: the state the job was in, and the run it closed (whose agent, if on this
/// host, the caller stops).
#[derive(Debug)]
pub struct Cancelled {
    pub was: JobState,
    pub run: Option<super::Run>,
}

/// What `retry` did: the state and stage the job was in.
#[derive(Debug)]
pub struct Retried {
    pub was: JobState,
    pub was_stage: String,
}

#[derive(Debug, Serialize)]
pub struct StateCount {
    pub project: String,
    pub state: JobState,
    pub stage: String,
    pub count: i64,
}

/// Who holds a running job's lease: a worker, for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct LeaseHolder<'a> {
    pub job_id: i64,
    pub worker: &'a str,
    pub attempt: i64,
}
