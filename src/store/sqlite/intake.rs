//! Intake: the issues a sync took in (`intake_issues`), their tasks, and the withdrawal of the
//! queued jobs of issues that left the list.

use std::collections::HashSet;

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Transaction};

use super::jobs;
use crate::domain::states::JobState;
use crate::store::{IntakeSync, IntakeSynced, IntakeTask, NewTask};

pub(super) fn sync_intake(tx: &Transaction, sync: &IntakeSync) -> Result<IntakeSynced> {
    let mut synced = IntakeSynced::default();
    for issue in sync.issues {
        if taken_in(tx, sync.project, issue.number)? {
            synced.known += 1;
            continue;
        }
        // A task already there for the issue (enqueued by hand, by number or key, in any
        // state) is the issue's task: nothing is made, whatever state it is in.
        if let Some(key) = task_for(tx, sync.project, issue.number, &issue.key)? {
            remember(tx, sync, issue.number, &key)?;
            synced.known += 1;
            continue;
        }
        let enqueued = jobs::enqueue(
            tx,
            &NewTask {
                project: sync.project,
                key: &issue.key,
                title: Some(&issue.title),
                body: Some(&issue.body),
                issue: u64::try_from(issue.number).ok(),
                stage: sync.stage,
                priority: sync.priority,
                max_attempts: sync.max_attempts,
                actor: sync.actor,
            },
            sync.now,
        )?;
        remember(tx, sync, issue.number, &issue.key)?;
        if enqueued.created {
            synced.created.push(IntakeTask {
                issue: issue.number,
                task: issue.key.clone(),
                job_id: enqueued.job_id,
            });
        }
    }
    let open: HashSet<i64> = sync.issues.iter().map(|i| i.number).collect();
    for gone in waiting_jobs(tx, sync.project)?
        .into_iter()
        .filter(|t| !open.contains(&t.issue))
    {
        let reason = format!(
            "issue #{} was closed or lost the intake label (sync)",
            gone.issue
        );
        jobs::cancel_for(tx, gone.job_id, sync.actor, &reason, sync.now)?;
        synced.cancelled.push(gone);
    }
    Ok(synced)
}

fn taken_in(tx: &Transaction, project: &str, issue: i64) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM intake_issues WHERE project = ?1 AND issue = ?2")?
        .exists(params![project, issue])?)
}

/// The key of a task of the project for this issue, or under this key however spelled.
fn task_for(tx: &Transaction, project: &str, issue: i64, key: &str) -> Result<Option<String>> {
    let by_issue = tx
        .prepare_cached(
            "SELECT key FROM tasks WHERE project = ?1 AND issue = ?2 ORDER BY id LIMIT 1",
        )?
        .query_row(params![project, issue], |row| row.get(0))
        .optional()?;
    if by_issue.is_some() {
        return Ok(by_issue);
    }
    Ok(tx
        .prepare_cached(
            "SELECT key FROM tasks WHERE project = ?1 AND lower(trim(key)) = lower(trim(?2))
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![project, key], |row| row.get(0))
        .optional()?)
}

fn remember(tx: &Transaction, sync: &IntakeSync, issue: i64, key: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO intake_issues (project, issue, task, taken_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project, issue) DO NOTHING",
    )?
    .execute(params![sync.project, issue, key, sync.now])?;
    Ok(())
}

/// The project's jobs not running yet (queued, or waiting for budget) of tasks taken in from an
/// issue: what a sync withdraws when the issue leaves the list. A running job finishes its run.
fn waiting_jobs(tx: &Transaction, project: &str) -> Result<Vec<IntakeTask>> {
    let mut stmt = tx.prepare_cached(
        "SELECT j.id AS job_id, t.key AS task, i.issue AS issue
         FROM jobs j JOIN tasks t ON t.id = j.task_id
              JOIN intake_issues i ON i.project = t.project AND i.task = t.key
         WHERE j.project = ?1 AND j.state IN (?2, ?3)
         ORDER BY j.id",
    )?;
    let rows = stmt.query_map(
        params![project, JobState::Queued, JobState::OverBudget],
        |row| {
            Ok(IntakeTask {
                issue: row.get("issue")?,
                task: row.get("task")?,
                job_id: row.get("job_id")?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
