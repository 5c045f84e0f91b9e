//! Intake: the issues a sync took in (`intake_issues`), their tasks, and the withdrawal of the
//! queued jobs of issues that left the list.

use std::collections::HashSet;

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::Result;

use super::{jobs, outbox};
use crate::domain::states::{JobState, MessageKind, OutboxState, PrState, TaskState};
use crate::store::{
    IntakeSync, IntakeSynced, IntakeTask, LabelChange, LabelSweep, Message, NewIssueLabel, NewTask,
};

pub(super) fn sync_intake(tx: &Db, sync: &IntakeSync) -> Result<IntakeSynced> {
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

fn taken_in(tx: &Db, project: &str, issue: i64) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM intake_issues WHERE project = ?1 AND issue = ?2")?
        .exists(params![project, issue])?)
}

/// The key of a task of the project for this issue, or under this key however spelled.
fn task_for(tx: &Db, project: &str, issue: i64, key: &str) -> Result<Option<String>> {
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

fn remember(tx: &Db, sync: &IntakeSync, issue: i64, key: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO intake_issues (project, issue, task, taken_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project, issue) DO NOTHING",
    )?
    .execute(params![sync.project, issue, key, sync.now])?;
    Ok(())
}

/// The project's jobs not running yet (queued, or waiting for budget) of tasks taken in from an
/// issue: what a sync withdraws when the issue leaves the list. A running job finishes its run.
fn waiting_jobs(tx: &Db, project: &str) -> Result<Vec<IntakeTask>> {
    // The states are written into the statement: the partial indexes jobs_queue and
    // jobs_over_budget match, and a sync reads the queue, not every job ever made.
    let one_state = |state: JobState| {
        format!(
            "SELECT j.id AS job_id, t.key AS task, i.issue AS issue
             FROM jobs j JOIN tasks t ON t.id = j.task_id
                  JOIN intake_issues i ON i.project = t.project AND i.task = t.key
             WHERE j.project = ?1 AND j.state = '{state}'"
        )
    };
    let mut stmt = tx.prepare_cached(&format!(
        "{} UNION ALL {} UNION ALL {} ORDER BY job_id",
        one_state(JobState::Queued),
        one_state(JobState::OverBudget),
        one_state(JobState::AwaitingApproval)
    ))?;
    let rows = stmt.query_map(params![project], |row| {
        Ok(IntakeTask {
            issue: row.get("issue")?,
            task: row.get("task")?,
            job_id: row.get("job_id")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// A task with an issue, as the label sweep sees it.
struct Labelled {
    task_id: i64,
    key: String,
    issue: i64,
    state: TaskState,
    live_job: Option<JobState>,
    pr_state: Option<PrState>,
    issue_label: Option<String>,
}

pub(super) fn sweep_issue_labels(tx: &Db, sweep: &LabelSweep) -> Result<Vec<LabelChange>> {
    // The live tasks, then the finished ones since `since`: two walks of tasks_labelled, so a
    // sweep reads what changed, not every task with an issue the project ever had.
    let mut stmt = tx.prepare_cached(
        "SELECT t.id, t.key, t.issue, t.state, t.pr_status, t.issue_label,
                (SELECT j.state FROM jobs j WHERE j.task_id = t.id AND j.state IN (?4, ?5, ?6, ?10)
                 ORDER BY j.id LIMIT 1) AS live_job
         FROM tasks t INDEXED BY tasks_labelled
         WHERE t.project = ?1 AND t.issue IS NOT NULL AND t.state = ?2
         UNION ALL
         SELECT t.id, t.key, t.issue, t.state, t.pr_status, t.issue_label, NULL AS live_job
         FROM tasks t INDEXED BY tasks_labelled
         WHERE t.project = ?1 AND t.issue IS NOT NULL AND ?3 IS NOT NULL
           AND t.state IN (?7, ?8, ?9) AND t.updated_at >= ?3",
    )?;
    let rows = stmt.query_map(
        params![
            sweep.project,
            TaskState::Active,
            sweep.since,
            JobState::Queued,
            JobState::Running,
            JobState::OverBudget,
            TaskState::Complete,
            TaskState::Failed,
            TaskState::Cancelled,
            JobState::AwaitingApproval
        ],
        |row| {
            Ok(Labelled {
                task_id: row.get("id")?,
                key: row.get("key")?,
                issue: row.get("issue")?,
                state: row.get("state")?,
                live_job: row.get("live_job")?,
                pr_state: row.get("pr_status")?,
                issue_label: row.get("issue_label")?,
            })
        },
    )?;
    let tasks: Vec<Labelled> = rows.collect::<crate::store::sql::Result<_>>()?;
    let mut changes = Vec::new();
    for task in tasks.into_iter().filter(|t| t.issue > 0) {
        let wanted = (sweep.rule)(task.state, task.live_job, task.pr_state);
        let was = task.issue_label.as_deref();
        // Never asked and nothing to ask: an issue orch never labelled stays as it is.
        if was.unwrap_or_default() == wanted.unwrap_or_default() {
            continue;
        }
        tx.prepare_cached("UPDATE tasks SET issue_label = ?2 WHERE id = ?1")?
            .execute(params![task.task_id, wanted.unwrap_or_default()])?;
        if !label_waiting(tx, sweep.project, &task.key)? {
            let message = Message::IssueLabel(NewIssueLabel {
                project: sweep.project.to_string(),
                task: task.key.clone(),
                task_id: task.task_id,
                issue: task.issue,
            });
            outbox::queue(tx, &message, sweep.now)?;
        }
        changes.push(LabelChange {
            task: task.key,
            issue: task.issue,
            label: wanted.map(str::to_string),
        });
    }
    Ok(changes)
}

/// Whether a label message of the task waits to be delivered (pending, not yet claimed).
fn label_waiting(tx: &Db, project: &str, task: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT 1 FROM outbox WHERE kind = '{kind}' AND project = ?1 AND task = ?2 AND state = ?3",
            kind = MessageKind::IssueLabel
        ))?
        .exists(params![project, task, OutboxState::Pending])?)
}
