//! Approvals: a job in `awaiting_approval` made due, or cancelled with its previous stage
//! queued again carrying the reviewer's note.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::jobs;
use crate::domain::states::JobState;
use crate::exit;
use crate::store::{Job, Rejection, Reviewed};

/// The job, if it waits for approval; a usage error (exit 2) naming its state otherwise.
fn waiting(tx: &Transaction, job_id: i64) -> Result<Job> {
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
    tx: &Transaction,
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

pub(super) fn reject(tx: &Transaction, rejection: &Rejection) -> Result<Reviewed> {
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

pub(super) fn review_note(conn: &Connection, job_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT review_note FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub(super) fn take_comment(
    tx: &Transaction,
    project: &str,
    comment_id: i64,
    now: i64,
) -> Result<bool> {
    let taken = tx
        .prepare_cached(
            "INSERT INTO approval_comments (project, comment_id, taken_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, comment_id) DO NOTHING",
        )?
        .execute(params![project, comment_id, now])?;
    Ok(taken == 1)
}
