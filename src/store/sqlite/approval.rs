//! Approvals: a job in `awaiting_approval` made due, or cancelled with its previous stage
//! queued again carrying the reviewer's note.

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::Result;

use super::{jobs, outbox};
use crate::domain::states::JobState;
use crate::exit;
use crate::store::{ApprovalAlerts, Job, Message, Rejection, Reviewed};

/// The job, if it waits for approval; a usage error (exit 2) naming its state otherwise.
fn waiting(tx: &Db, job_id: i64) -> Result<Job> {
    let job = jobs::existing(tx, job_id)?;
    if job.state != JobState::AwaitingApproval {
        return Err(exit::usage(format!(
            "job {job_id} is {}; only a job awaiting approval can be approved or rejected",
            job.state
        )));
    }
    Ok(job)
}

pub(super) fn approve(
    tx: &Db,
    job_id: i64,
    actor: &str,
    note: Option<&str>,
    now: i64,
) -> Result<Reviewed> {
    let job = waiting(tx, job_id)?;
    tx.prepare_cached("UPDATE jobs SET state = ?2, run_after = ?3, updated_at = ?3 WHERE id = ?1")?
        .execute(params![job_id, JobState::Queued, now])?;
    let reason = match note {
        Some(note) if !note.trim().is_empty() => format!("approved: {note}"),
        _ => "approved".to_string(),
    };
    jobs::record(
        tx,
        job_id,
        Some(JobState::AwaitingApproval),
        JobState::Queued,
        actor,
        &reason,
        now,
    )?;
    Ok(Reviewed {
        job_id,
        task: job.task,
        project: job.project,
        stage: job.stage,
        sent_back: None,
    })
}

pub(super) fn reject(tx: &Db, rejection: &Rejection) -> Result<Reviewed> {
    let job = waiting(tx, rejection.job_id)?;
    let reason = format!(
        "rejected, {} runs again: {}",
        rejection.stage, rejection.note
    );
    jobs::cancel_for(tx, job.job_id, rejection.actor, &reason, rejection.now)?;
    let again = jobs::insert_job(
        tx,
        &jobs::JobSpec {
            task_id: job.task_id,
            stage: rejection.stage,
            priority: job.priority,
            max_attempts: u64::try_from(job.max_attempts).unwrap_or(1),
            actor: rejection.actor,
            reason: &reason,
            state: JobState::Queued,
        },
        rejection.now,
    )?;
    tx.prepare_cached("UPDATE jobs SET review_note = ?2 WHERE id = ?1")?
        .execute(params![again, rejection.note])?;
    Ok(Reviewed {
        job_id: job.job_id,
        task: job.task,
        project: job.project,
        stage: job.stage,
        sent_back: Some(again),
    })
}

pub(super) fn review_note(conn: &Db, job_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT review_note FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub(super) fn take_comment(tx: &Db, project: &str, comment_id: i64, now: i64) -> Result<bool> {
    let taken = tx
        .prepare_cached(
            "INSERT INTO approval_comments (project, comment_id, taken_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, comment_id) DO NOTHING",
        )?
        .execute(params![project, comment_id, now])?;
    Ok(taken == 1)
}

/// The waiting approvals not alerted yet that began before `since` (the state is written into
/// the statement: the partial index jobs_awaiting_approval matches).
const TO_ALERT: &str = "FROM jobs WHERE state = 'awaiting_approval' AND updated_at < ?1
                        AND approval_alerted_at IS NULL";

pub(super) fn any_to_alert(conn: &Db, since: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!("SELECT 1 {TO_ALERT}"))?
        .exists([since])?)
}

pub(super) fn alert_waiting(tx: &Db, alerts: &ApprovalAlerts) -> Result<Vec<i64>> {
    let ids: Vec<i64> = tx
        .prepare_cached(&format!("SELECT id {TO_ALERT} ORDER BY updated_at, id"))?
        .query_map([alerts.waiting_since], |row| row.get(0))?
        .collect::<crate::store::sql::Result<_>>()?;
    for &id in &ids {
        let job = jobs::existing(tx, id)?;
        tx.prepare_cached("UPDATE jobs SET approval_alerted_at = ?2 WHERE id = ?1")?
            .execute(params![id, alerts.now])?;
        match (alerts.alert)(&job) {
            Some(alert) => {
                outbox::queue(tx, &Message::Alert(alert), alerts.now)?;
            }
            None => jobs::record(
                tx,
                id,
                Some(job.state),
                job.state,
                "tick",
                "waits for approval longer than approval_alert_seconds (alerts are off)",
                alerts.now,
            )?,
        }
    }
    Ok(ids)
}
