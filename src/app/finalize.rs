//! Finalize: turn a run's verdict into the job's next state.
//!
//! `finalize_job` judges the run's log (by its agent's kind), commits the workdir after an ok run
//! when the project asks for it, then decides with `decide` — pure, from data — and writes
//! everything the decision implies in one `BEGIN IMMEDIATE` transaction: the run's verdict, the
//! job's transition and history, the next stage's job or the task's completion, outbox alerts
//! and the usage comment, the agent's circuit breaker and its auth gate.
//!
//! Guards: only a run that ended (or failed to launch) is finalized, only while its worker still
//! holds the job's lease for the run's attempt, and only once: a finalized run reports the
//! decision stored on it. Two finalizers of one run are serialized by an advisory lock on its
//! log, so the auto-commit and the decision happen once.
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

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::agent::{self, Agent};
use crate::app::preflight;
use crate::config::{self, Config};
use crate::domain::breaker::{self, Change};
pub use crate::domain::decide::{
    decide, retry_delay_ms, Decision, Facts, Judged, LaunchKind, Plan, Retry,
};
use crate::domain::verdict::{Kind, Verdict};
use crate::exit;
use crate::notify;
use crate::output;
use crate::store::{
    hold_auth_gate, hold_project, insert_job, job_in, move_held_job, now_ms, queue_alert,
    queue_comment, record_breaker, record_run_verdict, run_in, settle_task, AlertKind, BreakerRun,
    Job, JobMove, JobSpec, LeaseHolder, NewAlert, NewComment, Run, RunVerdict, Store,
};
use crate::vcs::git::{self, Committed};

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
}

/// Finalize `job_id`'s latest run, or `run_id` (which must be the job's). `actor` is recorded
/// in the job's history. Err when the run cannot be finalized (still going, not the current
/// lease holder's, no such job or run) or orch itself fails; nothing is written then.
pub fn finalize_job(
    config: &Config,
    store: &mut Store,
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
    check_held(&job, &run, now_ms())?;
    // A second finalizer of this run waits here for the first, then reports its decision.
    let _lock = lock_log(&run)?;
    let run = store
        .run(run.run_id)?
        .ok_or_else(|| anyhow!("run {} vanished", run.run_id))?;
    if run.finalized_at.is_some() {
        return earlier(store, &run);
    }
    let next_stage = next_stage(config, &job)?;
    let judgement = judge(agent::of_profile(config, &run.agent), &run)?;
    let commit = match config.projects.get(&job.project) {
        Some(project) if project.auto_commit && judgement.judged.kind() == Kind::Ok => {
            Some(git::auto_commit(&git::CommitRequest {
                workdir: &project.workdir,
                message: &git::commit_message(&job.stage, &run.worker, run.run_id),
                author: project.commit_author.as_deref(),
                timeout: config.seconds(config::GIT_TIMEOUT_SECONDS),
                hooks: config.flag(config::GIT_HOOKS),
            }))
        }
        _ => None,
    };
    let creds = match judgement.judged.kind() {
        Kind::Gate => preflight::creds_fingerprint(config, &run.agent).unwrap_or_else(|err| {
            crate::diag!(
                "orch: warning: the auth gate will wait for any credentials file: {err:#}"
            );
            None
        }),
        _ => None,
    };
    let inputs = Inputs {
        config,
        run: &run,
        judgement: &judgement,
        commit,
        creds: creds.as_ref(),
        next_stage: next_stage.as_deref(),
        retry: crate::app::finalize::retry_policy(config),
        breaker: breaker_policy(config),
        max_attempts: config.count(config::MAX_ATTEMPTS).max(1),
        jitter: random_unit(),
        actor,
        now: now_ms(),
    };
    match store.write(|tx| apply(tx, &inputs))? {
        Applied::Now(outcome) => Ok(outcome),
        Applied::Earlier => {
            let run = store
                .run(run.run_id)?
                .ok_or_else(|| anyhow!("run {} vanished", run.run_id))?;
            earlier(store, &run)
        }
    }
}

/// The run to finalize: `run_id` (which must be `job_id`'s), else the job's latest.
fn pick_run(store: &Store, job_id: i64, run_id: Option<i64>) -> Result<Run> {
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
    let held = job.state == "running"
        && job.lease_owner.as_deref() == Some(run.worker.as_str())
        && job.attempt == run.attempt;
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
        let holder = match (&job.lease_owner, job.state.as_str()) {
            (Some(owner), "running") => {
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
fn earlier(store: &Store, run: &Run) -> Result<Outcome> {
    let name = run.decision.as_deref().unwrap_or("");
    let decision = Decision::from_name(name).ok_or_else(|| {
        anyhow!(
            "run {} was finalized with an unknown decision {name:?}",
            run.run_id
        )
    })?;
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
    })
}

/// Hold an exclusive advisory lock on the run's log while finalizing it, so a second finalizer
/// of the same run waits and then finds the decision made. No log, no lock: without a log there
/// is no ok verdict, hence no commit, and the transaction's own guard keeps the decision single.
fn lock_log(run: &Run) -> Result<Option<File>> {
    let Some(path) = run.log_path.as_deref() else {
        return Ok(None);
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(_) => return Ok(None),
    };
    loop {
        // SAFETY: flock(2) on a descriptor this function owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(Some(file));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(anyhow::Error::new(err).context(format!("locking the run's log {path}")));
        }
    }
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
    let path = run.log_path.as_deref().map(Path::new);
    // A log in a directory others may write in may not be the agent's: it is not judged.
    if let Some(dir) = path.and_then(Path::parent).filter(|dir| dir.exists()) {
        crate::fsx::check_private_dir(dir, "log directory")?;
    }
    let read = match path {
        Some(path) => agent.judge_path(path, exit_code, run.timed_out),
        None => Err(std::io::ErrorKind::NotFound.into()),
    };
    let (verdict, missing) = match read {
        Ok(verdict) => (verdict, false),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (agent.judge(&mut &b""[..], exit_code, run.timed_out)?, true)
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

/// Everything the transaction needs, gathered before it.
struct Inputs<'a> {
    config: &'a Config,
    run: &'a Run,
    judgement: &'a Judgement,
    commit: Option<Committed>,
    creds: Option<&'a crate::agent::CredsFingerprint>,
    next_stage: Option<&'a str>,
    retry: Retry,
    breaker: breaker::Policy,
    /// For the next stage's job.
    max_attempts: u64,
    jitter: f64,
    actor: &'a str,
    now: i64,
}

enum Applied {
    Now(Outcome),
    /// Another finalizer got there first.
    Earlier,
}

/// The one transaction: decide from the job as it stands inside it, and write everything.
fn apply(tx: &rusqlite::Transaction, inputs: &Inputs) -> Result<Applied> {
    let Inputs {
        run,
        judgement,
        now,
        actor,
        ..
    } = *inputs;
    let current = run_in(tx, run.run_id)?.ok_or_else(|| anyhow!("run {} vanished", run.run_id))?;
    if current.finalized_at.is_some() {
        return Ok(Applied::Earlier);
    }
    let job = job_in(tx, run.job_id)?.ok_or_else(|| anyhow!("job {} vanished", run.job_id))?;
    check_held(&job, &current, now)?;
    let judged = judgement.judged;
    let plan = decide(
        &Facts {
            judged,
            exit_code: run.exit_code,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            next_stage: inputs.next_stage,
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
            "done",
            format!(
                "ok, advanced to {}: {reason}{commit_note}",
                inputs.next_stage.unwrap_or("?")
            ),
        ),
        Decision::Completed => ("done", format!("ok, task complete: {reason}{commit_note}")),
        Decision::Requeued if plan.hold_project => (
            "queued",
            format!(
                "{class}: attempt not counted; claims on {host} skip project {} until its workdir \
                 is back: {reason}",
                job.project
            ),
        ),
        Decision::Requeued => (
            "queued",
            format!(
                "{class}, retry in {} s (attempt {}/{} used): {reason}",
                (plan.retry_at.unwrap_or(now) - now) / 1000,
                job.attempt,
                job.max_attempts
            ),
        ),
        Decision::Failed => (
            "failed",
            match judged.kind() {
                Kind::Permanent => format!("{class} is permanent, failed for good: {reason}"),
                _ => format!(
                    "{class}, failed for good after attempt {}/{}: {reason}",
                    job.attempt, job.max_attempts
                ),
            },
        ),
        Decision::Gated => (
            "queued",
            format!(
                "{class}: the agent is not authenticated; attempt not counted, claims wait for its \
                 login: {reason}"
            ),
        ),
        Decision::Cancelled => bail!("finalize never decides to cancel"),
    };
    let holder = LeaseHolder {
        job_id: job.job_id,
        worker: &run.worker,
        attempt: run.attempt,
    };
    let moved = move_held_job(
        tx,
        &holder,
        &JobMove {
            to,
            run_after: plan.retry_at,
            refund_attempt: plan.refund_attempt,
            class,
            reason,
            history: &why,
            actor,
        },
        now,
    )?;
    if !moved {
        bail!(
            "job {} is no longer held by run {}'s lease",
            job.job_id,
            run.run_id
        );
    }
    let next_job_id = match (plan.decision, inputs.next_stage) {
        (Decision::Advanced, Some(stage)) => {
            let reason = format!(
                "advanced from {} (job {}, run {})",
                job.stage, job.job_id, run.run_id
            );
            Some(insert_job(
                tx,
                &JobSpec {
                    task_id: job.task_id,
                    stage,
                    priority: job.priority,
                    max_attempts: inputs.max_attempts,
                    actor,
                    reason: &reason,
                },
                now,
            )?)
        }
        _ => None,
    };
    match plan.decision {
        Decision::Completed => settle_task(tx, job.task_id, "complete", now)?,
        Decision::Failed => settle_task(tx, job.task_id, "failed", now)?,
        _ => {}
    }
    let verdict = judgement.verdict.as_ref();
    let usage_json = verdict
        .map(|v| serde_json::to_string(&v.usage))
        .transpose()?;
    let commit_sha = match &inputs.commit {
        Some(Committed::Committed { sha }) => Some(sha.as_str()),
        _ => None,
    };
    let recorded = record_run_verdict(
        tx,
        run.run_id,
        &RunVerdict {
            result_ok: judgement.result_ok,
            class,
            reason,
            usage_json: usage_json.as_deref(),
            decision: plan.decision.as_str(),
            next_job_id,
            retry_at: plan
                .retry_at
                .filter(|_| plan.decision == Decision::Requeued),
            commit_sha,
        },
        now,
    )?;
    if !recorded {
        bail!("run {} was finalized meanwhile", run.run_id);
    }

    let mut alerts = Vec::new();
    // Alerts queued by the helpers that decide them (a project hold alerts once).
    let mut held_alerts = Vec::new();
    let job_alert = |kind| NewAlert {
        agent: Some(run.agent.clone()),
        run_id: Some(run.run_id),
        ..NewAlert::for_job(kind, &job, class, reason)
    };
    if plan.silent_failure {
        alerts.push(job_alert(AlertKind::SilentFailure));
    }
    if plan.failed_alert {
        alerts.push(job_alert(AlertKind::Failed));
    }
    if let Some(Committed::Failed { error }) = &inputs.commit {
        // The alert's reason is what went wrong with the commit, not the (ok) verdict's.
        alerts.push(NewAlert {
            dedup_key: job.project.clone(),
            reason: format!("auto-commit failed: {error}"),
            ..job_alert(AlertKind::CommitFailed)
        });
    }
    if plan.hold_project && hold_project(tx, &job.project, host, reason, now)? {
        held_alerts.push(AlertKind::ProjectHeld);
    }
    let gate_held =
        plan.hold_gate && hold_auth_gate(tx, &run.agent, run.run_id, reason, inputs.creds, now)?;
    if gate_held {
        alerts.push(NewAlert {
            dedup_key: run.agent.clone(),
            ..job_alert(AlertKind::AuthGate)
        });
    }
    let (breaker, change) = record_breaker(
        tx,
        &BreakerRun {
            agent: &run.agent,
            run_id: run.run_id,
            job_id: job.job_id,
            worker: &run.worker,
            attempt: run.attempt,
        },
        plan.breaker,
        class,
        &inputs.breaker,
        now,
    )?;
    if matches!(change, Change::Opened | Change::Reopened) {
        let again = if change == Change::Reopened {
            "its probe failed, so it opened again with the cooldown doubled"
        } else {
            "it opened"
        };
        let why = format!(
            "circuit breaker for agent {}: {again} after {} transient failure{} in a row (last: {class}); \
             claims wait {} s for a probe",
            run.agent,
            breaker.consecutive_failures,
            if breaker.consecutive_failures == 1 { "" } else { "s" },
            breaker.cooldown_ms / 1000
        );
        alerts.push(NewAlert {
            dedup_key: run.agent.clone(),
            reason: why,
            ..job_alert(AlertKind::BreakerOpen)
        });
    }
    // An alert with nowhere to go is not queued to wait for ever: the job's history says what it
    // would have said (and `orch status` says alerts are off).
    let alerts_off = notify::alerts_switch(inputs.config);
    for alert in &alerts {
        if alerts_off.on {
            queue_alert(tx, alert, now)?;
        } else {
            let note = format!(
                "alert not sent ({}: alerts are off: {}): {}",
                alert.kind.as_str(),
                alerts_off.detail,
                alert.reason
            );
            crate::store::record(tx, job.job_id, Some(to), to, "orch", &note, now)?;
        }
    }
    let comment_queued =
        plan.comment && notify::wants_comment(inputs.config, &job.project, job.issue);
    if comment_queued {
        let usage = verdict.map(|v| v.usage.clone()).unwrap_or_default();
        queue_comment(
            tx,
            &NewComment {
                project: job.project.clone(),
                task: job.task.clone(),
                issue: job.issue.unwrap_or_default(),
                job_id: job.job_id,
                run_id: run.run_id,
                stage: job.stage.clone(),
                verdict: class.to_string(),
                attempt: job.attempt,
                max_attempts: Some(job.max_attempts),
                cost_usd: usage.cost_usd,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cache_read_tokens: usage.cache_read_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                turns: usage.turns,
                duration_ms: usage.duration_ms,
                models: usage.models,
            },
            now,
        )?;
    }
    Ok(Applied::Now(Outcome {
        job_id: job.job_id,
        run_id: run.run_id,
        result_ok: judgement.result_ok,
        class: class.to_string(),
        reason: reason.to_string(),
        decision: plan.decision,
        next_job_id,
        next_stage: next_job_id.and(inputs.next_stage.map(str::to_string)),
        retry_at: plan
            .retry_at
            .filter(|_| plan.decision == Decision::Requeued),
        attempt: run.attempt,
        max_attempts: job.max_attempts,
        already_finalized: false,
        commit: inputs.commit.clone(),
        breaker: (change != Change::None).then_some(change),
        gate_held,
        alerts: alerts.iter().map(|a| a.kind).chain(held_alerts).collect(),
        comment_queued,
    }))
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
