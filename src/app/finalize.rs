//! Finalize: turn a run's verdict into the job's next state.
//!
//! `finalize_job` judges the run's log (by its agent's kind), commits the workdir after an ok run
//! when the project asks for it, then decides with `decide` — pure, from data — and spells out
//! everything the decision implies as a `FinalizePlan`, which the store writes in one
//! transaction (`Store::apply_finalize`): the run's verdict and result text, the job's
//! transition and history, the next stage's job or the task's completion, outbox alerts and the
//! usage comment, the agent's circuit breaker and its auth gate.
//!
//! Guards: only a run that ended (or failed to launch) is finalized, only while its worker still
//! holds the job's lease for the run's attempt, and only once: a finalized run reports the
//! decision stored on it. The store checks the lease and the "once" inside its transaction. Two
//! finalizers of one run are serialized by the run's finalize lock, held in the store (so
//! finalizers on different hosts see it), so the auto-commit and the decision happen once.
//!
//! What each outcome means:
//! - ok: the job is done; the next stage's job is queued (attempt 1), or the task is complete.
//! - transient classes: requeued after an exponential backoff with jitter while attempts remain,
//!   else failed for good with an alert. `empty` or `no_result` with exit 0 alerts at once.
//! - a launch failure is judged by whose it is (`LaunchKind`). The agent's (binary missing or
//!   broken) is transient: it counts toward the job's attempts and the breaker (every job would
//!   fail the same way), and the run already dropped the preflight verdict so the next claim
//!   checks the agent afresh. The task's (a prompt too long for one argument, or holding a NUL
//!   byte) fails that job for good, leaving the breaker alone. The project's (workdir missing)
//!   puts the job back with its attempt given back and holds the project on that host: claims
//!   there skip it until the workdir is back, and other projects carry on.
//! - an interrupted run (SIGINT/SIGTERM to `orch run`, or orch failing while it watched) without
//!   an ok result is transient and counts its attempt, but not toward the breaker: the agent was
//!   stopped, it did not fail.
//! - permanent classes fail at once, with an alert.
//! - auth: back in the queue with the attempt given back, the agent's preflight verdict dropped
//!   and its auth gate held until the credentials file changes (one alert per gate).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::agent::{self, Agent};
use crate::app::preflight;
use crate::app::run::PREVIOUS_RESULT_MAX_BYTES;
use crate::config::{self, Config};
use crate::domain::breaker::{self, Change};
pub use crate::domain::decide::{
    decide, retry_delay_ms, Decision, Facts, Judged, LaunchKind, Plan, Retry,
};
use crate::domain::prompt;
use crate::domain::rescue::Whereabouts;
use crate::domain::states::{JobState, TaskState};
use crate::domain::verdict::{Class, Ending, Kind, Verdict};
use crate::exit;
use crate::notify;
use crate::output;
use crate::procfs::{self, Liveness, Place, Proc};
use crate::store::{
    AlertKind, AlertRoute, Applied, BreakerUpdate, CiGate, CredsFingerprint, Effects, FinalizeLock,
    FinalizePlan, GateHold, InvocationHoldRequest, Job, JobMove, Locked, NewAlert, NewComment,
    NextJob, ProjectHoldRequest, Run, RunVerdict, Store, StoredLog, UsageHoldRequest,
};
use crate::vcs::git::Committed;

/// The retry backoff's settings.
pub fn retry_policy(config: &Config) -> Retry {
    Retry {
        base_ms: config.millis(config::RETRY_BASE_SECONDS),
        max_ms: config.millis(config::RETRY_MAX_SECONDS),
        rate_limit_min_ms: config.millis(config::RATE_LIMIT_BACKOFF_SECONDS),
    }
}

/// The circuit breaker's settings.
pub fn breaker_policy(config: &Config) -> breaker::Policy {
    breaker::Policy {
        threshold: i64::try_from(config.count(config::BREAKER_THRESHOLD)).unwrap_or(i64::MAX),
        cooldown_ms: config.millis(config::BREAKER_COOLDOWN_SECONDS),
        max_cooldown_ms: breaker::MAX_COOLDOWN_MS,
    }
}

/// What finalize did, or had done earlier. `--json` prints it as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub job_id: i64,
    pub run_id: i64,
    /// None when there was no log to judge (a launch failure) or the lease rescue decided.
    pub result_ok: Option<bool>,
    pub class: String,
    pub reason: String,
    pub decision: Decision,
    pub next_job_id: Option<i64>,
    pub next_stage: Option<String>,
    pub retry_at: Option<i64>,
    /// The run's attempt (1-based).
    pub attempt: i64,
    pub max_attempts: i64,
    /// The run had been finalized before: nothing was changed, this is the earlier decision.
    pub already_finalized: bool,
    /// The auto-commit after an ok run, when the project asks for one.
    pub commit: Option<Committed>,
    /// The agent's circuit breaker, when this run changed its state.
    pub breaker: Option<Change>,
    /// This run held the agent's auth gate (it was not held already).
    pub gate_held: bool,
    /// Alerts queued in the outbox (kinds).
    pub alerts: Vec<AlertKind>,
    pub comment_queued: bool,
    /// The task's branch after this decision: pushed, its pull request's message queued, its
    /// worktree removed (None for a task without a branch).
    pub branch: Option<crate::app::branches::BranchReport>,
}

/// Finalize `job_id`'s latest run, or `run_id` (which must be the job's). `actor` is recorded
/// in the job's history. Err when the run cannot be finalized (still going, not the current
/// lease holder's, no such job or run) or orch itself fails; nothing is written then.
pub fn finalize_job(
    config: &Config,
    store: &mut dyn Store,
    job_id: i64,
    run_id: Option<i64>,
    actor: &str,
) -> Result<Outcome> {
    let run = pick_run(store, job_id, run_id)?;
    if run.finalized_at.is_some() {
        return earlier(store, &run);
    }
    let job = store
        .job(job_id)?
        .ok_or_else(|| crate::store::no_job(job_id))?;
    check_held(&job, &run, store.now()?)?;
    // A second finalizer of this run, on this host or another, waits here for the first, then
    // reports its decision.
    let me = Finalizer::current(config);
    if !lock(config, store, run.run_id, &me)? {
        return earlier(store, &reread(store, run.run_id)?);
    }
    let finalized = finalize_locked(config, store, run.run_id, actor);
    if finalized.is_err() {
        // A finalized run's lock went with its decision; otherwise let the next one try.
        if let Err(err) = store.unlock_finalize(run.run_id, &me.token) {
            crate::diag!(
                "orch: warning: run {}: could not release its finalize lock (it runs out by itself): {err:#}",
                run.run_id
            );
        }
    }
    finalized
}

/// Judge the run, auto-commit, decide and apply, holding the run's finalize lock.
fn finalize_locked(
    config: &Config,
    store: &mut dyn Store,
    run_id: i64,
    actor: &str,
) -> Result<Outcome> {
    let run = reread(store, run_id)?;
    if run.finalized_at.is_some() {
        return earlier(store, &run);
    }
    let job = store
        .job(run.job_id)?
        .ok_or_else(|| anyhow!("job {} vanished", run.job_id))?;
    check_held(&job, &run, store.now()?)?;
    let next_stage = next_stage(config, &job)?;
    let mut judgement = judge(agent::of_run(config, &run), &run)?;
    let here = config.host();
    // The gate is held on the run's host and watches that host's credentials file, which only
    // a finalizer on that host can see; the same goes for the invocation hold's settings.
    let gate_host = run.host.clone().unwrap_or_else(|| here.clone());
    if gate_host == here {
        confirm_auth(config, &run.agent, &mut judgement);
    }
    if let Some(verdict) = judgement.verdict.as_mut() {
        config.price(&run.agent, &mut verdict.usage);
    }
    // In the task's worktree (its branch) or, with auto-commit, in the workdir.
    let (commit, branch_head) = match judgement.judged.kind() {
        Kind::Ok => crate::app::branches::commit(config, store, &job, &run),
        _ => (None, None),
    };
    let auth = judgement.judged == Judged::Log(Class::Auth);
    let creds = match auth {
        true if gate_host == here => preflight::creds_fingerprint(config, &run.agent)
            .unwrap_or_else(|err| {
                crate::diag!(
                    "orch: warning: the auth gate will wait for any credentials file: {err:#}"
                );
                None
            }),
        true => {
            crate::diag!(
                "orch: warning: run {} ran on {gate_host}, not here: its auth gate there will wait for any credentials file",
                run.run_id
            );
            None
        }
        false => None,
    };
    let invocation_inputs = (judgement.judged == Judged::Log(Class::InvocationError))
        .then(|| preflight::invocation_inputs(config, &run.agent))
        .transpose()?;
    let ci_sha = ci_sha(
        config,
        &*store,
        &job,
        next_stage.is_some(),
        branch_head.as_deref(),
    )?;
    let inputs = Inputs {
        config,
        run: &run,
        job: &job,
        judgement: &judgement,
        commit,
        branch_head,
        creds,
        invocation_inputs,
        gate_host,
        next_stage: next_stage.as_deref(),
        ci_sha,
        retry: crate::app::finalize::retry_policy(config),
        breaker: breaker_policy(config),
        max_attempts: config.count(config::MAX_ATTEMPTS).max(1),
        jitter: random_unit(),
        actor,
        now: store.now()?,
    };
    let mut plan = plan(&inputs)?;
    plan.log = kept_log(config, &run, &here);
    match store.apply_finalize(&plan)? {
        Applied::Done(effects) => {
            let mut outcome = outcome(&inputs, &plan, effects);
            // The decision is written: pushing the branch and the rest never undo it.
            outcome.branch = crate::app::branches::after_finalize(
                config,
                store,
                &job,
                run.run_id,
                outcome.decision,
            )
            .unwrap_or_else(|err| {
                crate::diag!(
                    "orch: warning: job {}: the task's branch was not pushed (the next tick tries \
                     again): {err:#}",
                    job.job_id
                );
                None
            });
            Ok(outcome)
        }
        Applied::Finalized(run) => earlier(store, &run),
        Applied::NotHeld { job, run } => {
            check_held(&job, &run, inputs.now)?;
            bail!(
                "job {} is no longer held by run {}'s lease",
                job.job_id,
                run.run_id
            )
        }
    }
}

/// The run's log to keep in the database, when this host has it: see `keep_log`.
fn kept_log(config: &Config, run: &Run, here: &str) -> Option<StoredLog> {
    if run.launch_error.is_some() || run.host.as_deref().is_some_and(|h| h != here) {
        return None;
    }
    let path = run.log_path.as_deref().map(Path::new)?;
    keep_log(config.count(config::LOG_STORE_MAX_BYTES), path, run.run_id)
}

/// Run `run_id`'s log at `path` as the database keeps it: its last `cap` bytes, compressed.
/// None when `cap` is 0 or the file is gone; a log that cannot be read is left out with a
/// warning, never failing the step that keeps it (the file itself stays where it is).
pub fn keep_log(cap: u64, path: &Path, run_id: i64) -> Option<StoredLog> {
    if cap == 0 {
        return None;
    }
    let read = || -> std::io::Result<StoredLog> {
        let file = std::fs::File::open(path)?;
        let bytes = file.metadata()?.len();
        StoredLog::compress(std::io::BufReader::new(file), bytes, cap)
    };
    match read() {
        Ok(log) => Some(log),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            crate::diag!(
                "orch: warning: run {run_id}: its log is not kept in the database ({}): {err}",
                path.display()
            );
            None
        }
    }
}

fn reread(store: &dyn Store, run_id: i64) -> Result<Run> {
    store
        .run(run_id)?
        .ok_or_else(|| anyhow!("run {run_id} vanished"))
}

/// Who holds a finalize lock: this process, by its place, pid and start time, so a finalizer on
/// the same host can tell a holder that died (its lock is taken over at once) from one at work.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Finalizer {
    host: String,
    boot_id: Option<String>,
    pid_ns: Option<String>,
    pid: i32,
    start: u64,
    #[serde(skip)]
    token: String,
}

impl Finalizer {
    fn current(config: &Config) -> Finalizer {
        let place = Place::current(config.host());
        let process = procfs::this_process().unwrap_or(Proc {
            pid: std::process::id() as i32,
            start: 0,
        });
        let mut me = Finalizer {
            host: place.host,
            boot_id: place.boot_id,
            pid_ns: place.pid_ns,
            pid: process.pid,
            start: process.start,
            token: String::new(),
        };
        me.token = serde_json::to_string(&me).unwrap_or_default();
        me
    }

    /// Whether the lock's `holder` is a process of this host that is gone.
    fn gone(holder: &str, here: &Place) -> bool {
        let Ok(holder) = serde_json::from_str::<Finalizer>(holder) else {
            return false;
        };
        let place = Place {
            host: holder.host,
            boot_id: holder.boot_id,
            pid_ns: holder.pid_ns,
        };
        match place.whereabouts(here) {
            Whereabouts::Here => {
                let process = Proc {
                    pid: holder.pid,
                    start: holder.start,
                };
                procfs::liveness(process) == Liveness::Gone
            }
            Whereabouts::EarlierBoot => true,
            Whereabouts::Elsewhere => false,
        }
    }
}

/// Take the run's finalize lock, waiting for another holder to finish. Its length covers the
/// judging and the slowest auto-commit (six git commands, each within `git_timeout_seconds`).
/// False when the run got finalized meanwhile.
fn lock(config: &Config, store: &mut dyn Store, run_id: i64, me: &Finalizer) -> Result<bool> {
    let length_ms = config
        .millis(config::GIT_TIMEOUT_SECONDS)
        .saturating_mul(6)
        .saturating_add(60_000);
    let here = Place::current(config.host());
    let mut take_from: Option<String> = None;
    let mut pause = Duration::from_millis(20);
    loop {
        let now = store.now()?;
        let locked = store.lock_finalize(&FinalizeLock {
            run_id,
            holder: &me.token,
            until: now.saturating_add(length_ms),
            take_from: take_from.as_deref(),
            now,
        })?;
        match locked {
            Locked::Taken => return Ok(true),
            Locked::Finalized => return Ok(false),
            Locked::Held { holder, .. } if Finalizer::gone(&holder, &here) => {
                take_from = Some(holder);
            }
            Locked::Held { .. } => {
                take_from = None;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// The run to finalize: `run_id` (which must be `job_id`'s), else the job's latest.
fn pick_run(store: &dyn Store, job_id: i64, run_id: Option<i64>) -> Result<Run> {
    match run_id {
        Some(run_id) => {
            let run = store
                .run(run_id)?
                .ok_or_else(|| exit::usage(format!("no run {run_id}")))?;
            if run.job_id != job_id {
                return Err(exit::usage(format!(
                    "run {run_id} is a run of job {}, not of job {job_id}",
                    run.job_id
                )));
            }
            Ok(run)
        }
        None => {
            if store.job(job_id)?.is_none() {
                return Err(crate::store::no_job(job_id));
            }
            store.runs_for_job(job_id)?.pop().ok_or_else(|| {
                anyhow!("job {job_id} has no run to finalize: run it first (`orch run {job_id} --worker W`)")
            })
        }
    }
}

/// Refuse a run still going, and a run whose job its worker no longer holds for its attempt.
fn check_held(job: &Job, run: &Run, now: i64) -> Result<()> {
    let held = job.held_by(&run.worker, run.attempt);
    let ended = run.ended_at.is_some() || run.launch_error.is_some();
    if !ended {
        if held {
            let rescue = job.lease_expires_at.map_or(String::new(), |at| {
                format!(
                    "; if its orch died, the lease runs out {} and the job is rescued",
                    output::relative(at, now)
                )
            });
            bail!(
                "run {} of job {} is still going (worker {}, started {}): finalize it once it has ended{rescue}",
                run.run_id,
                job.job_id,
                run.worker,
                output::relative(run.started_at, now)
            );
        }
        bail!(
            "run {} of job {} never ended and its job has moved on ({}): there is nothing to finalize",
            run.run_id,
            job.job_id,
            job.state
        );
    }
    if !held {
        let holder = match (&job.lease_owner, job.state) {
            (Some(owner), JobState::Running) => {
                format!("running, leased to {owner} for attempt {}", job.attempt)
            }
            (_, state) => state.to_string(),
        };
        bail!(
            "job {} is {holder}: only the run of the current lease holder is finalized, and run {} \
             was {}'s attempt {}",
            job.job_id,
            run.run_id,
            run.worker,
            run.attempt
        );
    }
    Ok(())
}

/// The decision stored on a finalized run, reported again.
fn earlier(store: &dyn Store, run: &Run) -> Result<Outcome> {
    let decision = run
        .decision
        .ok_or_else(|| anyhow!("run {} was finalized without a decision", run.run_id))?;
    let job = store.job(run.job_id)?;
    let next_stage = match run.next_job_id {
        Some(next) => store.job(next)?.map(|j| j.stage),
        None => None,
    };
    Ok(Outcome {
        job_id: run.job_id,
        run_id: run.run_id,
        result_ok: run.result_ok,
        class: run.class.clone().unwrap_or_default(),
        reason: run.reason.clone().unwrap_or_default(),
        decision,
        next_job_id: run.next_job_id,
        next_stage,
        retry_at: run.retry_at,
        attempt: run.attempt,
        max_attempts: job.map_or(0, |j| j.max_attempts),
        already_finalized: true,
        commit: run
            .commit_sha
            .clone()
            .map(|sha| Committed::Committed { sha }),
        breaker: None,
        gate_held: false,
        alerts: Vec::new(),
        comment_queued: false,
        branch: None,
    })
}

/// The verdict on a run, from its log (or from the run itself when it never started).
#[derive(Debug, Clone)]
pub struct Judgement {
    pub judged: Judged,
    pub result_ok: Option<bool>,
    pub reason: String,
    pub verdict: Option<Verdict>,
}

/// Judge the run: a launch failure needs no log; otherwise the log with the run's exit code and
/// timeout. A log that is missing is judged as empty: nothing proves the agent succeeded.
pub fn judge(agent: &dyn Agent, run: &Run) -> Result<Judgement> {
    if let Some(error) = &run.launch_error {
        return Ok(Judgement {
            judged: Judged::LaunchError(LaunchKind::from_name(run.launch_kind.as_deref())),
            result_ok: None,
            reason: format!("the agent was not started: {error}"),
            verdict: None,
        });
    }
    let exit_code = run.exit_code.and_then(|c| i32::try_from(c).ok());
    let ending = Ending::new(exit_code, run.timed_out, run.stalled).at(run.ended_at);
    let path = run.log_path.as_deref().map(Path::new);
    // A log in a directory others may write in may not be the agent's: it is not judged.
    if let Some(dir) = path.and_then(Path::parent).filter(|dir| dir.exists()) {
        crate::fsx::check_private_dir(dir, "log directory")?;
    }
    let read = match path {
        Some(path) => agent.judge_path(path, ending),
        None => Err(std::io::ErrorKind::NotFound.into()),
    };
    let (verdict, missing) = match read {
        Ok(verdict) => (verdict, false),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (agent.judge(&mut &b""[..], ending)?, true)
        }
        Err(err) => {
            let shown = path.map_or(String::new(), |p| p.display().to_string());
            return Err(anyhow::Error::new(err).context(format!("reading the run's log {shown}")));
        }
    };
    let mut reason = verdict.reason.clone();
    if missing {
        reason = format!("the log is missing; {reason}");
    }
    let judged = if run.interrupted && verdict.kind == Kind::Transient {
        reason = format!("interrupted; {reason}");
        Judged::Interrupted
    } else {
        Judged::Log(verdict.class)
    };
    Ok(Judgement {
        judged,
        result_ok: Some(verdict.ok),
        reason,
        verdict: Some(verdict),
    })
}

/// An `auth` verdict the agent's own words leave in doubt (Gemini fails the same way offline as
/// logged out: it validates its Google login online at every start) holds the gate only when the
/// offline check agrees; when the login passes it, the run is a transient failure instead, and
/// the reason says why.
fn confirm_auth(config: &Config, agent: &str, judgement: &mut Judgement) {
    let unconfirmed = judgement
        .verdict
        .as_ref()
        .is_some_and(|v| v.auth_unconfirmed);
    if judgement.judged != Judged::Log(Class::Auth) || !unconfirmed {
        return;
    }
    match preflight::login_passes(config, agent) {
        Ok(Some(login)) => {
            judgement.judged = Judged::Log(Class::AgentError);
            judgement.reason = format!(
                "taken as transient, not auth: the agent could not validate its login, which it \
                 does online at every start, but the login passes orch's offline check ({login}); \
                 offline, a good login fails this way too: {}",
                judgement.reason
            );
        }
        Ok(None) => {}
        Err(err) => crate::diag!("orch: warning: cannot check agent {agent}'s login: {err:#}"),
    }
}

/// The stage after the job's; a stage no longer in the pipeline is a configuration error (the
/// job stays as it is until the pipeline names it again or its lease runs out).
fn next_stage(config: &Config, job: &Job) -> Result<Option<String>> {
    config.check_stage(&job.stage).with_context(|| {
        format!(
            "job {} is at stage {:?}, which the pipeline no longer has; cannot finalize it",
            job.job_id, job.stage
        )
    })?;
    Ok(config.next_stage(&job.stage).map(str::to_string))
}

/// A number in [0, 1) that differs between processes and calls, for the backoff's jitter.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let bits = RandomState::new().hash_one((nanos, std::process::id()));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything the plan is made from, gathered before the transaction.
struct Inputs<'a> {
    config: &'a Config,
    run: &'a Run,
    /// The job as it stood once the lock was taken: the store's guard keeps what the plan uses
    /// of it (attempt, max attempts, stage, project) as it is.
    job: &'a Job,
    judgement: &'a Judgement,
    commit: Option<Committed>,
    /// Where the task's branch is after the commit, when it moved.
    branch_head: Option<String>,
    creds: Option<CredsFingerprint>,
    /// The fingerprint of the settings a refused command line came from (`invocation_error`).
    invocation_inputs: Option<String>,
    /// The run's host: where its auth gate, usage or invocation hold is held.
    gate_host: String,
    next_stage: Option<&'a str>,
    /// The commit CI must pass before the next stage runs (the stage is gated, its task has a
    /// branch on a forge).
    ci_sha: Option<String>,
    retry: Retry,
    breaker: breaker::Policy,
    /// For the next stage's job.
    max_attempts: u64,
    jitter: f64,
    actor: &'a str,
    now: i64,
}

/// The commit the next stage's job waits for green CI on: the gated stage's commit (or the
/// branch's head, when the run changed nothing), when the stage is gated, a stage follows it,
/// and the task's branch goes to a forge.
fn ci_sha(
    config: &Config,
    store: &dyn Store,
    job: &Job,
    has_next: bool,
    branch_head: Option<&str>,
) -> Result<Option<String>> {
    let gated = config.stage(&job.stage).ci_gate == Some(true);
    let on_forge = config
        .projects
        .get(&job.project)
        .is_some_and(|p| p.opens_pull_requests());
    if !(gated && has_next && on_forge) {
        return Ok(None);
    }
    Ok(match branch_head {
        Some(head) => Some(head.to_string()),
        None => store.task(job.task_id)?.and_then(|t| t.head_sha),
    })
}

/// Decide (`decide`, pure) and spell out everything the decision implies, for the store to
/// write in one transaction.
fn plan(inputs: &Inputs) -> Result<FinalizePlan> {
    let Inputs {
        run,
        job,
        judgement,
        now,
        actor,
        ..
    } = *inputs;
    let judged = judgement.judged;
    let verdict = judgement.verdict.as_ref();
    let stage = inputs.config.stage(&job.stage);
    let plan = decide(
        &Facts {
            judged,
            exit_code: run.exit_code,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            next_stage: inputs.next_stage,
            resets_at: verdict
                .and_then(|v| v.usage.rate_limit.as_ref())
                .and_then(|limit| limit.resets_at),
            resumable: stage.resume.unwrap_or(true)
                && verdict.is_some_and(|v| v.usage.session_id.is_some()),
        },
        &inputs.retry,
        inputs.jitter,
        now,
    );
    let class = judged.name();
    let reason = judgement.reason.as_str();
    let commit_note = match &inputs.commit {
        None => String::new(),
        Some(Committed::Committed { sha }) => format!("; auto-commit {}", short(sha)),
        Some(Committed::NoChanges) => "; auto-commit: no changes".to_string(),
        Some(Committed::NotARepository) => {
            "; auto-commit: the workdir is not a git repository".to_string()
        }
        Some(Committed::Failed { error }) => format!("; auto-commit failed: {error}"),
    };
    let host = run.host.as_deref().unwrap_or("its host");
    let (to, why) = match plan.decision {
        Decision::Advanced => (
            JobState::Done,
            format!(
                "ok, advanced to {}: {reason}{commit_note}",
                inputs.next_stage.unwrap_or("?")
            ),
        ),
        Decision::Completed => (
            JobState::Done,
            format!("ok, task complete: {reason}{commit_note}"),
        ),
        Decision::Requeued if plan.hold_usage.is_some() => (
            JobState::Queued,
            format!(
                "{class}: attempt not counted; due again {} (after the reset, spread), claims for \
                 agent {} on {host} wait until {}: {reason}",
                output::stamp(plan.retry_at.unwrap_or(now)),
                run.agent,
                output::stamp(plan.hold_usage.unwrap_or(now))
            ),
        ),
        Decision::Requeued if plan.hold_project => (
            JobState::Queued,
            format!(
                "{class}: attempt not counted; claims on {host} skip project {} until its workdir \
                 is back: {reason}",
                job.project
            ),
        ),
        Decision::Requeued => (
            JobState::Queued,
            format!(
                "{class}, retry in {} s (attempt {}/{} used): {reason}",
                (plan.retry_at.unwrap_or(now) - now) / 1000,
                job.attempt,
                job.max_attempts
            ),
        ),
        Decision::Failed => (
            JobState::Failed,
            match judged.kind() {
                Kind::Permanent => format!("{class} is permanent, failed for good: {reason}"),
                _ => format!(
                    "{class}, failed for good after attempt {}/{}: {reason}",
                    job.attempt, job.max_attempts
                ),
            },
        ),
        Decision::Gated if plan.hold_invocation => (
            JobState::Queued,
            format!(
                "{class}: the agent refused its command line; attempt not counted, claims for \
                 agent {} on {host} wait until its settings change: {reason}",
                run.agent
            ),
        ),
        Decision::Gated => (
            JobState::Queued,
            format!(
                "{class}: the agent is not authenticated; attempt not counted, claims wait for its \
                 login: {reason}"
            ),
        ),
        Decision::Cancelled => bail!("finalize never decides to cancel"),
    };
    let next_job = match (plan.decision, inputs.next_stage) {
        (Decision::Advanced, Some(stage)) => Some(NextJob {
            stage: stage.to_string(),
            priority: job.priority,
            max_attempts: inputs.max_attempts,
            reason: match &inputs.ci_sha {
                None => format!(
                    "advanced from {} (job {}, run {})",
                    job.stage, job.job_id, run.run_id
                ),
                Some(sha) => format!(
                    "advanced from {} (job {}, run {}); waits for CI on {}",
                    job.stage,
                    job.job_id,
                    run.run_id,
                    crate::output::clip(sha, 12)
                ),
            },
            ci_gate: inputs.ci_sha.as_ref().map(|sha| CiGate {
                sha: sha.clone(),
                gated_stage: job.stage.clone(),
            }),
            approval: inputs.config.stage(stage).approve == Some(true),
        }),
        _ => None,
    };
    let task = match plan.decision {
        Decision::Completed => Some(TaskState::Complete),
        Decision::Failed => Some(TaskState::Failed),
        _ => None,
    };
    let usage_json = verdict
        .map(|v| serde_json::to_string(&v.usage))
        .transpose()?;
    // What the next stage's `{previous_result}` reads: the result of an ok run, cut to fit a
    // prompt.
    let result_text = verdict.map(|v| match v.ok {
        true => prompt::cap(
            v.result_text.clone().unwrap_or_default(),
            PREVIOUS_RESULT_MAX_BYTES,
        ),
        false => String::new(),
    });
    let commit_sha = match &inputs.commit {
        Some(Committed::Committed { sha }) => Some(sha.clone()),
        _ => None,
    };
    let job_alert = |kind| NewAlert {
        agent: Some(run.agent.clone()),
        run_id: Some(run.run_id),
        ..NewAlert::for_job(kind, job, class, reason)
    };
    let mut alerts = Vec::new();
    if plan.silent_failure {
        alerts.push(job_alert(AlertKind::SilentFailure));
    }
    if plan.failed_alert {
        let mut alert = job_alert(AlertKind::Failed);
        if judged == Judged::Log(Class::PermissionDenied) {
            // What to change, since a denial fails the same way at every attempt.
            alert.reason = format!(
                "{reason}; to allow it, change [stages.{}] permission_mode (now {}) or \
                 allowed_tools in the config",
                job.stage,
                stage
                    .permission_mode
                    .map_or("default", |mode| mode.as_str())
            );
        }
        alerts.push(alert);
    }
    if let Some(Committed::Failed { error }) = &inputs.commit {
        // The alert's reason is what went wrong with the commit, not the (ok) verdict's.
        alerts.push(NewAlert {
            dedup_key: job.project.clone(),
            reason: format!("auto-commit failed: {error}"),
            ..job_alert(AlertKind::CommitFailed)
        });
    }
    let gate = plan.hold_gate.then(|| GateHold {
        host: inputs.gate_host.clone(),
        agent: run.agent.clone(),
        run_id: run.run_id,
        reason: reason.to_string(),
        creds: inputs.creds.clone(),
        alert: Some(NewAlert {
            dedup_key: run.agent.clone(),
            ..job_alert(AlertKind::AuthGate)
        }),
    });
    let usage_hold = plan.hold_usage.map(|until| {
        let which = verdict
            .and_then(|v| v.usage.rate_limit.as_ref())
            .and_then(|limit| limit.limit_type.clone())
            .unwrap_or_else(|| "usage".to_string());
        UsageHoldRequest {
            host: inputs.gate_host.clone(),
            agent: run.agent.clone(),
            until,
            run_id: run.run_id,
            reason: reason.to_string(),
            alert: NewAlert {
                dedup_key: format!("{}@{}", run.agent, inputs.gate_host),
                reason: format!(
                    "agent {} is over its account's {which} limit: claims for it on {} wait \
                     until {}, then resume by themselves (run {}: {reason})",
                    run.agent,
                    inputs.gate_host,
                    output::stamp(until),
                    run.run_id
                ),
                ..job_alert(AlertKind::UsageLimit)
            },
        }
    });
    let invocation_hold = plan.hold_invocation.then(|| {
        let fix = verdict
            .and_then(|v| v.fix.as_deref())
            .unwrap_or(crate::agent::judging::FIX_OPTIONS);
        let names = [
            ("agent", run.agent.as_str()),
            ("stage", job.stage.as_str()),
            ("project", job.project.as_str()),
        ];
        let fix = prompt::substitute(fix, &names);
        InvocationHoldRequest {
            host: inputs.gate_host.clone(),
            agent: run.agent.clone(),
            run_id: run.run_id,
            reason: reason.to_string(),
            fix: fix.clone(),
            inputs: inputs.invocation_inputs.clone().unwrap_or_default(),
            // The fix first: an alert keeps one line of 300 characters; the reason is the run's.
            alert: NewAlert {
                dedup_key: format!("{}@{}", run.agent, inputs.gate_host),
                reason: format!(
                    "agent {} refused its command line on {} (run {}); its claims there wait for \
                     this: {fix}",
                    run.agent, inputs.gate_host, run.run_id
                ),
                ..job_alert(AlertKind::InvocationError)
            },
        }
    });
    // An alert with nowhere to go is not queued to wait for ever: the job's history says what it
    // would have said (and `orch status` says alerts are off).
    let alerts_off = notify::alerts_switch(inputs.config);
    let alerts_to = match alerts_off.on {
        true => AlertRoute::Queue,
        false => AlertRoute::Note {
            detail: alerts_off.detail,
        },
    };
    let comment = (plan.comment && notify::wants_comment(inputs.config, &job.project, job.issue))
        .then(|| {
            let usage = verdict.map(|v| v.usage.clone()).unwrap_or_default();
            NewComment {
                project: job.project.clone(),
                task: job.task.clone(),
                task_id: job.task_id,
                issue: job.issue.unwrap_or_default(),
                job_id: job.job_id,
                run_id: run.run_id,
                stage: job.stage.clone(),
                verdict: class.to_string(),
                attempt: job.attempt,
                max_attempts: Some(job.max_attempts),
                cost_usd: usage.cost_usd,
                cost_estimated: usage.cost_estimated,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cache_read_tokens: usage.cache_read_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                turns: usage.turns,
                duration_ms: usage.duration_ms,
                models: usage.models,
            }
        });
    let retry_at = plan
        .retry_at
        .filter(|_| plan.decision == Decision::Requeued);
    // With `merge = "after_last_stage"`, the last stage's success completes the task only once
    // its pull request is merged: the merge message settles it.
    let merge = (plan.decision == Decision::Completed)
        .then(|| inputs.config.projects.get(&job.project))
        .flatten()
        .filter(|p| p.merge_after_last_stage && p.opens_pull_requests())
        .map(|_| crate::store::NewMerge {
            project: job.project.clone(),
            task: job.task.clone(),
            task_id: job.task_id,
        });
    let task = match merge {
        Some(_) => None,
        None => task,
    };
    Ok(FinalizePlan {
        run_id: run.run_id,
        job_id: job.job_id,
        worker: run.worker.clone(),
        attempt: run.attempt,
        agent: run.agent.clone(),
        verdict: RunVerdict {
            result_ok: judgement.result_ok,
            class: class.to_string(),
            reason: reason.to_string(),
            usage_json,
            result_text,
            decision: plan.decision,
            retry_at,
            commit_sha,
            cost_usd: verdict.and_then(|v| v.usage.cost_usd),
        },
        job: JobMove {
            to,
            run_after: plan.retry_at,
            refund_attempt: plan.refund_attempt,
            history: why,
        },
        next_job,
        task,
        hold_project: plan.hold_project.then(|| ProjectHoldRequest {
            project: job.project.clone(),
            host: host.to_string(),
            reason: reason.to_string(),
        }),
        gate,
        usage_hold,
        invocation_hold,
        breaker: BreakerUpdate {
            event: plan.breaker,
            policy: inputs.breaker,
            // The reason is the breaker's, filled in once the store knows how it changed.
            alert: NewAlert {
                dedup_key: run.agent.clone(),
                ..job_alert(AlertKind::BreakerOpen)
            },
        },
        alerts,
        alerts_to,
        comment,
        branch_head: inputs.branch_head.clone(),
        merge,
        log: None,
        actor: actor.to_string(),
        now,
    })
}

/// What finalize did, from the plan and what the store made of its conditional parts.
fn outcome(inputs: &Inputs, plan: &FinalizePlan, effects: Effects) -> Outcome {
    Outcome {
        job_id: plan.job_id,
        run_id: plan.run_id,
        result_ok: plan.verdict.result_ok,
        class: plan.verdict.class.clone(),
        reason: plan.verdict.reason.clone(),
        decision: plan.verdict.decision,
        next_job_id: effects.next_job_id,
        next_stage: effects
            .next_job_id
            .and(plan.next_job.as_ref().map(|next| next.stage.clone())),
        retry_at: plan.verdict.retry_at,
        attempt: plan.attempt,
        max_attempts: inputs.job.max_attempts,
        already_finalized: false,
        commit: inputs.commit.clone(),
        breaker: (effects.change != Change::None).then_some(effects.change),
        gate_held: effects.gate_held,
        alerts: effects.alerts,
        comment_queued: plan.comment.is_some(),
        branch: None,
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_spread_over_the_unit_interval() {
        let draws: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let distinct = draws
            .iter()
            .map(|d| d.to_bits())
            .collect::<std::collections::HashSet<_>>();
        assert!(distinct.len() > 32);
    }
}
