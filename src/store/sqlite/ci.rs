//! The CI gate: a job held behind the forge's verdict on a commit (`ci_gates`), and settling it.

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::Result;

use super::{jobs, outbox};
use crate::domain::states::{JobState, OutboxState, PrState, TaskState};
use crate::store::{
    CiGate, Finish, GateOutcome, GateRow, GateSettle, GateSettled, MergeSettled, Message,
};

/// Hold `job_id` behind CI on `gate.sha`.
pub(super) fn hold(tx: &Db, job_id: i64, task_id: i64, gate: &CiGate, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ci_gates (job_id, task_id, gated_stage, sha, since) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![job_id, task_id, gate.gated_stage, gate.sha, now])?;
    Ok(())
}

pub(super) fn gates(conn: &Db, limit: i64) -> Result<Vec<GateRow>> {
    gates_where(conn, "", params![limit])
}

/// Whether a gate was not looked at since `due`.
pub(super) fn any_due(conn: &Db, due: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM ci_gates WHERE coalesce(checked_at, 0) <= ?1)",
        )?
        .query_row([due], |row| row.get(0))?)
}

/// The gates not looked at since `due`, at most `limit`, oldest first, marked looked at `now`.
pub(super) fn take(tx: &Db, limit: i64, now: i64, due: i64) -> Result<Vec<GateRow>> {
    let taken = gates_where(
        tx,
        "WHERE coalesce(g.checked_at, 0) <= ?2",
        params![limit, due],
    )?;
    let mut mark = tx.prepare_cached("UPDATE ci_gates SET checked_at = ?2 WHERE job_id = ?1")?;
    for gate in &taken {
        mark.execute(params![gate.job_id, now])?;
    }
    Ok(taken)
}

/// The gates `filter` keeps (`?1` is the limit), oldest first.
fn gates_where(
    conn: &Db,
    filter: &str,
    values: impl crate::store::sql::Params,
) -> Result<Vec<GateRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.job_id, g.task_id, t.key, j.project, j.stage, g.gated_stage, g.sha, g.since,
                t.pushed_sha, t.ci_fixes, j.priority, j.max_attempts
         FROM ci_gates g JOIN jobs j ON j.id = g.job_id JOIN tasks t ON t.id = g.task_id
         {filter} ORDER BY g.since, g.job_id LIMIT ?1"
    ))?;
    let rows = stmt.query_map(values, |row| {
        Ok(GateRow {
            job_id: row.get("job_id")?,
            task_id: row.get("task_id")?,
            task: row.get("key")?,
            project: row.get("project")?,
            stage: row.get("stage")?,
            gated_stage: row.get("gated_stage")?,
            sha: row.get("sha")?,
            since: row.get("since")?,
            pushed_sha: row.get("pushed_sha")?,
            ci_fixes: row.get("ci_fixes")?,
            priority: row.get("priority")?,
            max_attempts: row.get("max_attempts")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn failures(conn: &Db, job_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT ci_failures FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub(super) fn settle(tx: &Db, settle: &GateSettle) -> Result<Option<GateSettled>> {
    let gate: Option<(i64, String)> = tx
        .prepare_cached("SELECT task_id, gated_stage FROM ci_gates WHERE job_id = ?1")?
        .query_row([settle.job_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((task_id, gated_stage)) = gate else {
        return Ok(None);
    };
    let job = jobs::existing(tx, settle.job_id)?;
    let now = settle.now;
    // A job approved or not yet: its gate holds either way (the claim passes over it).
    if !matches!(job.state, JobState::Queued | JobState::AwaitingApproval) {
        release(tx, settle.job_id)?;
        return Ok(None);
    }
    let mut settled = GateSettled { fix_job_id: None };
    match settle.outcome {
        GateOutcome::Wait => {
            tx.prepare_cached("UPDATE ci_gates SET checked_at = ?2 WHERE job_id = ?1")?
                .execute(params![settle.job_id, now])?;
        }
        GateOutcome::Pass { note } => {
            release(tx, settle.job_id)?;
            // Due now if queued; a job awaiting approval keeps its wait's start (approvers'
            // comments are read from it, and its alert and age count from it).
            tx.prepare_cached(
                "UPDATE jobs SET run_after = ?2, updated_at = ?2 WHERE id = ?1 AND state = 'queued'",
            )?
            .execute(params![settle.job_id, now])?;
            jobs::record(
                tx,
                settle.job_id,
                Some(job.state),
                job.state,
                settle.actor,
                note,
                now,
            )?;
        }
        GateOutcome::Fix { failures, reason } => {
            jobs::cancel_for(tx, settle.job_id, settle.actor, reason, now)?;
            let fix = jobs::insert_job(
                tx,
                &jobs::JobSpec {
                    task_id,
                    stage: &gated_stage,
                    priority: job.priority,
                    max_attempts: u64::try_from(job.max_attempts).unwrap_or(1),
                    actor: settle.actor,
                    reason,
                    state: JobState::Queued,
                },
                now,
            )?;
            tx.prepare_cached("UPDATE jobs SET ci_failures = ?2 WHERE id = ?1")?
                .execute(params![fix, failures])?;
            tx.prepare_cached("UPDATE tasks SET ci_fixes = ci_fixes + 1 WHERE id = ?1")?
                .execute([task_id])?;
            settled.fix_job_id = Some(fix);
        }
        GateOutcome::Fail { reason, alert } => {
            release(tx, settle.job_id)?;
            tx.prepare_cached(
                "UPDATE jobs SET state = ?2, last_class = 'ci_failed', last_reason = ?3,
                        updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![settle.job_id, JobState::Failed, reason, now])?;
            jobs::record(
                tx,
                settle.job_id,
                Some(job.state),
                JobState::Failed,
                settle.actor,
                reason,
                now,
            )?;
            jobs::settle_task(tx, task_id, TaskState::Failed, now)?;
            if let Some(alert) = alert {
                outbox::queue(tx, &Message::Alert(alert.as_ref().clone()), now)?;
            }
        }
    }
    Ok(Some(settled))
}

fn release(tx: &Db, job_id: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM ci_gates WHERE job_id = ?1")?
        .execute([job_id])?;
    Ok(())
}

pub(super) fn settle_merge(
    tx: &Db,
    message_id: i64,
    claimer: &str,
    settled: &MergeSettled,
    now: i64,
) -> Result<Option<OutboxState>> {
    let state = outbox::finish(tx, message_id, claimer, &Finish::Sent, now)?;
    if state.is_none() {
        return Ok(None);
    }
    let (task_state, pr_state) = match settled.merged {
        true => (TaskState::Complete, Some(PrState::Merged)),
        false => (TaskState::Failed, None),
    };
    tx.prepare_cached(
        "UPDATE tasks SET state = ?2, pr_status = coalesce(?3, pr_status), updated_at = ?4
         WHERE id = ?1 AND state = ?5",
    )?
    .execute(params![
        settled.task_id,
        task_state,
        pr_state,
        now,
        TaskState::Active
    ])?;
    // What became of the merge, in the history of the task's last job (its last stage's).
    let last: Option<(i64, JobState)> = tx
        .prepare_cached("SELECT id, state FROM jobs WHERE task_id = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([settled.task_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((job_id, state)) = last {
        jobs::record(
            tx,
            job_id,
            Some(state),
            state,
            "merge",
            &settled.reason,
            now,
        )?;
    }
    if let Some(alert) = &settled.alert {
        outbox::queue(tx, &Message::Alert(alert.as_ref().clone()), now)?;
    }
    Ok(state)
}
