//! What finalize writes, inside its one `BEGIN IMMEDIATE` transaction (`crate::app::finalize`
//! composes these with `insert_job`, `queue_alert`, `hold_auth_gate` and `record_breaker`), and
//! the runs that still await it.

use anyhow::Result;
use rusqlite::{params, Transaction};
use serde::Serialize;

use super::{record, LeaseHolder, Store};

/// The verdict and decision stored on a run. `exit_code` is never written here.
pub struct RunVerdict<'a> {
    /// None when there was no log to judge (a launch failure).
    pub result_ok: Option<bool>,
    pub class: &'a str,
    pub reason: &'a str,
    pub usage_json: Option<&'a str>,
    pub decision: &'a str,
    pub next_job_id: Option<i64>,
    pub retry_at: Option<i64>,
    pub commit_sha: Option<&'a str>,
}

/// Store the verdict on a run not yet finalized. False when it already was (nothing written).
pub fn record_run_verdict(
    tx: &Transaction,
    run_id: i64,
    verdict: &RunVerdict,
    now: i64,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE agent_runs SET result_ok = ?2, class = ?3, reason = ?4, usage_json = ?5,
                    decision = ?6, next_job_id = ?7, retry_at = ?8, commit_sha = ?9, finalized_at = ?10
             WHERE id = ?1 AND finalized_at IS NULL",
        )?
        .execute(params![
            run_id,
            verdict.result_ok,
            verdict.class,
            verdict.reason,
            verdict.usage_json,
            verdict.decision,
            verdict.next_job_id,
            verdict.retry_at,
            verdict.commit_sha,
            now
        ])?;
    Ok(changed == 1)
}

/// Where a held job goes after its run's verdict.
pub struct JobMove<'a> {
    /// queued, done or failed.
    pub to: &'a str,
    /// When a queued job is due again.
    pub run_after: Option<i64>,
    /// Give back the attempt the claim took (the run did not count).
    pub refund_attempt: bool,
    /// The verdict's class and reason, kept on the job as its last.
    pub class: &'a str,
    pub reason: &'a str,
    /// The history line: what was decided and why.
    pub history: &'a str,
    pub actor: &'a str,
}

/// Move the job out of `running`, only while `holder` still holds it (same worker and attempt),
/// releasing the lease and recording the transition. False when it holds it no more (nothing
/// written).
pub fn move_held_job(
    tx: &Transaction,
    holder: &LeaseHolder,
    to: &JobMove,
    now: i64,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?4, run_after = coalesce(?5, run_after),
                    attempt = attempt - ?6, lease_owner = NULL, lease_expires_at = NULL,
                    last_class = ?7, last_reason = ?8, updated_at = ?9
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3",
        )?
        .execute(params![
            holder.job_id,
            holder.worker,
            holder.attempt,
            to.to,
            to.run_after,
            i64::from(to.refund_attempt),
            to.class,
            to.reason,
            now
        ])?;
    if changed != 1 {
        return Ok(false);
    }
    record(
        tx,
        holder.job_id,
        Some("running"),
        to.to,
        to.actor,
        to.history,
        now,
    )?;
    Ok(true)
}

/// What closes a job's open runs: the decision someone else made for the run's attempt.
pub struct RunClose<'a> {
    pub job_id: i64,
    pub attempt: i64,
    /// What happened to the run (`lease_expired`, `orch_gone`, `cancelled`, …).
    pub class: &'a str,
    /// requeued, failed or cancelled.
    pub decision: &'a str,
    pub reason: &'a str,
}

/// Close the run rows of `close.attempt` that were never finalized, because a rescue or a cancel
/// decided for them (their orch died, lost the database, or was told to stop). The run carries
/// the decision, so finalizing it later prints that instead of judging a job no longer held; its
/// orch, if alive, may still record how the agent ended.
pub fn close_open_runs(tx: &Transaction, close: &RunClose, now: i64) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "UPDATE agent_runs SET class = ?3, reason = ?5, decision = ?4,
                    retry_at = CASE WHEN ?4 = 'requeued' THEN ?6 END, finalized_at = ?6
             WHERE job_id = ?1 AND attempt = ?2 AND finalized_at IS NULL",
        )?
        .execute(params![
            close.job_id,
            close.attempt,
            close.class,
            close.decision,
            close.reason,
            now
        ])?)
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

impl Store {
    /// Runs awaiting finalize (see `Unfinalized`), oldest first; only `worker`'s when given.
    pub fn unfinalized_runs(&self, worker: Option<&str>, limit: i64) -> Result<Vec<Unfinalized>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT r.id, r.job_id, r.worker, r.agent, r.attempt, r.ended_at, r.launch_error IS NOT NULL,
                    j.lease_expires_at
             FROM agent_runs r JOIN jobs j ON j.id = r.job_id
             WHERE r.finalized_at IS NULL AND (r.ended_at IS NOT NULL OR r.launch_error IS NOT NULL)
               AND j.state = 'running' AND j.lease_owner = r.worker AND j.attempt = r.attempt
               AND (?1 IS NULL OR r.worker = ?1)
             ORDER BY r.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![worker, limit], |row| {
            Ok(Unfinalized {
                run_id: row.get(0)?,
                job_id: row.get(1)?,
                worker: row.get(2)?,
                agent: row.get(3)?,
                attempt: row.get(4)?,
                ended_at: row.get(5)?,
                launch_error: row.get(6)?,
                lease_expires_at: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
