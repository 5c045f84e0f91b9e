//! agent_runs: one row per launch of the agent. `exit_code` is written once, when the process
//! ends, exactly as it returned; the verdict (`result_ok`, `class`) is stored beside it.

use crate::store::sql::{params, Db, OptionalExtension, Row};
use anyhow::{bail, Result};

use super::{jobs, preflight};
use crate::domain::decide::Decision;
use crate::domain::states::JobState;
use crate::procfs::Proc;
use crate::store::{no_job, LeaseHolder, NewRun, PreviousResult, Run, RunEnd, StartedRun};

/// A run, every column named as `Run` names it.
const RUN_SELECT: &str =
    "SELECT id AS run_id, job_id, attempt, worker, agent, agent_version, pid, \
     started_at, ended_at, duration_ms, exit_code, signal, timed_out, interrupted, launch_error, \
     log_path, log_bytes, log_truncated, result_ok, class, reason, usage_json, decision, \
     finalized_at, next_job_id, retry_at, commit_sha, host, boot_id, pid_ns, supervisor_pid, \
     supervisor_start, agent_start, launch_kind, stalled, resumed_session, cost_usd, pushed_sha, \
     push_error, agent_kind FROM agent_runs";

fn run_from_row(row: &Row) -> crate::store::sql::Result<Run> {
    let usage: Option<String> = row.get("usage_json")?;
    Ok(Run {
        run_id: row.get("run_id")?,
        job_id: row.get("job_id")?,
        attempt: row.get("attempt")?,
        worker: row.get("worker")?,
        agent: row.get("agent")?,
        agent_version: row.get("agent_version")?,
        pid: row.get("pid")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        duration_ms: row.get("duration_ms")?,
        exit_code: row.get("exit_code")?,
        signal: row.get("signal")?,
        timed_out: row.get("timed_out")?,
        interrupted: row.get("interrupted")?,
        launch_error: row.get("launch_error")?,
        log_path: row.get("log_path")?,
        log_bytes: row.get("log_bytes")?,
        log_truncated: row.get("log_truncated")?,
        result_ok: row.get("result_ok")?,
        class: row.get("class")?,
        reason: row.get("reason")?,
        usage: usage.and_then(|u| serde_json::from_str(&u).ok()),
        decision: row.get("decision")?,
        finalized_at: row.get("finalized_at")?,
        next_job_id: row.get("next_job_id")?,
        retry_at: row.get("retry_at")?,
        commit_sha: row.get("commit_sha")?,
        host: row.get("host")?,
        boot_id: row.get("boot_id")?,
        pid_ns: row.get("pid_ns")?,
        supervisor_pid: row.get("supervisor_pid")?,
        supervisor_start: row.get("supervisor_start")?,
        agent_start: row.get("agent_start")?,
        launch_kind: row.get("launch_kind")?,
        stalled: row.get("stalled")?,
        resumed_session: row.get("resumed_session")?,
        cost_usd: row.get("cost_usd")?,
        pushed_sha: row.get("pushed_sha")?,
        push_error: row.get("push_error")?,
        agent_kind: row.get("agent_kind")?,
    })
}

pub(super) fn of_job(conn: &Db, job_id: i64) -> Result<Vec<Run>> {
    let mut stmt = conn.prepare_cached(&format!("{RUN_SELECT} WHERE job_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([job_id], run_from_row)?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn run(conn: &Db, run_id: i64) -> Result<Option<Run>> {
    Ok(conn
        .prepare_cached(&format!("{RUN_SELECT} WHERE id = ?1"))?
        .query_row([run_id], run_from_row)
        .optional()?)
}

/// The open run of a job's `attempt` (not ended, not finalized), if there is one.
pub(super) fn open_run(conn: &Db, job_id: i64, attempt: i64) -> Result<Option<Run>> {
    Ok(conn
        .prepare_cached(&format!(
            "{RUN_SELECT} WHERE job_id = ?1 AND attempt = ?2
               AND ended_at IS NULL AND finalized_at IS NULL ORDER BY id DESC LIMIT 1"
        ))?
        .query_row(params![job_id, attempt], run_from_row)
        .optional()?)
}

pub(super) fn closed(conn: &Db, run_id: i64) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT finalized_at IS NOT NULL AS closed FROM agent_runs WHERE id = ?1",
            [run_id],
            |row| row.get("closed"),
        )
        .optional()?
        .unwrap_or(false))
}

pub(super) fn start(tx: &Db, new: &NewRun) -> Result<StartedRun> {
    let Some(job) = jobs::job(tx, new.job_id)? else {
        return Err(no_job(new.job_id));
    };
    let id = job.job_id;
    if job.state != JobState::Running {
        bail!(
            "job {id} is {}, not running: only a claimed job can be run",
            job.state
        );
    }
    if job.lease_owner.as_deref() != Some(new.worker) {
        bail!(
            "job {id} is leased to {}, not {}: only the lease holder may run it",
            job.lease_owner.as_deref().unwrap_or("nobody"),
            new.worker
        );
    }
    if job.lease_expires_at.is_none_or(|at| at <= new.now) {
        bail!(
            "the lease of {} on job {id} has run out: claim it again",
            new.worker
        );
    }
    // A finalized run of this attempt number did not count (finalize gave the attempt back
    // after an auth failure): the attempt may run again.
    let earlier: Option<(i64, Option<i64>)> = tx
        .query_row(
            "SELECT id, ended_at FROM agent_runs WHERE job_id = ?1 AND attempt = ?2 AND finalized_at IS NULL
             ORDER BY id DESC LIMIT 1",
            params![id, job.attempt],
            |row| Ok((row.get("id")?, row.get("ended_at")?)),
        )
        .optional()?;
    match earlier {
        Some((run_id, None)) => bail!(
            "attempt {} of job {id} is already running as run {run_id} (or its orch died: \
             the lease will run out and the job be rescued)",
            job.attempt
        ),
        Some((run_id, Some(_))) => bail!(
            "attempt {} of job {id} already ran as run {run_id}: finalize it before the next attempt",
            job.attempt
        ),
        None => {}
    }
    let holder = LeaseHolder {
        job_id: id,
        worker: new.worker,
        attempt: job.attempt,
    };
    jobs::renew_lease(tx, &holder, None, new.lease_ms, new.now)?;
    let supervisor = new.supervisor;
    let run_id: i64 = tx.query_row(
        "INSERT INTO agent_runs (job_id, attempt, worker, agent, agent_version, started_at,
                                 host, boot_id, pid_ns, supervisor_pid, supervisor_start,
                                 resumed_session, agent_kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
        params![
            id,
            job.attempt,
            new.worker,
            new.agent,
            new.agent_version,
            new.now,
            new.place.host,
            new.place.boot_id,
            new.place.pid_ns,
            supervisor.map(|p| p.pid),
            supervisor.map(|p| p.start as i64),
            new.resumed_session,
            new.agent_kind,
        ],
        |row| row.get("id"),
    )?;
    let log_path = (new.log_path)(run_id);
    tx.execute(
        "UPDATE agent_runs SET log_path = ?2 WHERE id = ?1",
        params![run_id, log_path],
    )?;
    Ok(StartedRun {
        run_id,
        job,
        log_path,
    })
}

/// The agent's process on the run: its pid (also its process group's id) and start time.
pub(super) fn record_agent(tx: &Db, run_id: i64, agent: Proc) -> Result<()> {
    tx.execute(
        "UPDATE agent_runs SET pid = ?2, agent_start = ?3 WHERE id = ?1",
        params![run_id, agent.pid, agent.start as i64],
    )?;
    Ok(())
}

pub(super) fn end(tx: &Db, run_id: i64, end: &RunEnd) -> Result<()> {
    let ended: Option<(String, Option<String>)> = tx
        .query_row(
            "UPDATE agent_runs SET pid = coalesce(?2, pid), ended_at = ?3, duration_ms = ?4,
                    exit_code = ?5, signal = ?6, timed_out = ?7, interrupted = ?8,
                    launch_error = ?9, log_bytes = ?10, log_truncated = ?11, launch_kind = ?12,
                    stalled = ?13,
                    resumed_session = CASE WHEN ?14 <> 0 THEN NULL ELSE resumed_session END
             WHERE id = ?1 AND ended_at IS NULL AND exit_code IS NULL RETURNING agent, host",
            params![
                run_id,
                end.pid,
                end.ended_at,
                end.duration_ms,
                end.exit_code,
                end.signal,
                end.timed_out,
                end.interrupted,
                end.launch_error,
                end.log_bytes as i64,
                end.log_truncated,
                end.launch_kind,
                end.stalled,
                end.resume_failed,
            ],
            |row| Ok((row.get("agent")?, row.get("host")?)),
        )
        .optional()?;
    let Some((agent, host)) = ended else {
        bail!("run {run_id} was already ended; its record was left as it was");
    };
    if let Some(log) = &end.log {
        super::logs::save(tx, run_id, log, end.ended_at)?;
    }
    if end.drop_preflight_cache {
        // The verdict it showed stale is the one of the host it ran on. A run recorded before
        // runs kept their host drops the agent's verdict everywhere.
        preflight::drop_cache(tx, host.as_deref(), Some(&agent))?;
    }
    Ok(())
}

/// What closes a job's open runs: the decision someone else made for the run's attempt.
pub(super) struct RunClose<'a> {
    pub job_id: i64,
    pub attempt: i64,
    /// What happened to the run (`lease_expired`, `orch_gone`, `cancelled`, …).
    pub class: &'a str,
    /// requeued, failed or cancelled.
    pub decision: Decision,
    /// When a requeued job is due again.
    pub retry_at: Option<i64>,
    pub reason: &'a str,
}

/// Close the run rows of `close.attempt` that were never finalized, because a rescue or a cancel
/// decided for them (their orch died, lost the database, or was told to stop). The run carries
/// the decision, so finalizing it later prints that instead of judging a job no longer held; its
/// orch, if alive, may still record how the agent ended.
pub(super) fn close_open(tx: &Db, close: &RunClose, now: i64) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "UPDATE agent_runs SET class = ?3, reason = ?5, decision = ?4, retry_at = ?6,
                    finalized_at = ?7, finalizing_by = NULL, finalizing_until = NULL
             WHERE job_id = ?1 AND attempt = ?2 AND finalized_at IS NULL",
        )?
        .execute(params![
            close.job_id,
            close.attempt,
            close.class,
            close.decision,
            close.reason,
            close.retry_at,
            now
        ])?)
}

pub(super) fn last_ok_result(
    conn: &Db,
    task_id: i64,
    stage: &str,
) -> Result<Option<PreviousResult>> {
    let found: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT r.result_text AS result_text, r.log_path AS log_path
             FROM agent_runs r JOIN jobs j ON j.id = r.job_id
             WHERE j.task_id = ?1 AND j.stage = ?2 AND r.result_ok = 1
               AND (r.result_text IS NOT NULL OR r.log_path IS NOT NULL)
             ORDER BY r.id DESC LIMIT 1",
        )?
        .query_row(params![task_id, stage], |row| {
            Ok((row.get("result_text")?, row.get("log_path")?))
        })
        .optional()?;
    Ok(match found {
        Some((Some(text), _)) => Some(PreviousResult::Text(text)),
        Some((None, Some(log))) => Some(PreviousResult::Log(log)),
        _ => None,
    })
}
