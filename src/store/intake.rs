//! Intake: a project's labelled open issues taken in as tasks, and the tasks of issues that left
//! the list withdrawn (`Store::sync_intake`).

use serde::Serialize;

/// One open issue that carries the project's intake label, as its task would hold it.
#[derive(Debug, Clone)]
pub struct IntakeIssue {
    pub number: i64,
    /// The task key (`task_key` of the issue).
    pub key: String,
    pub title: String,
    pub body: String,
}

/// A sync of one project: every open labelled issue the forge listed, the whole list.
#[derive(Debug, Clone)]
pub struct IntakeSync<'a> {
    pub project: &'a str,
    pub issues: &'a [IntakeIssue],
    /// The pipeline's first stage: where a new task starts.
    pub stage: &'a str,
    pub priority: i64,
    pub max_attempts: u64,
    pub actor: &'a str,
    pub now: i64,
}

/// An issue's task, as a sync made or withdrew it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IntakeTask {
    pub issue: i64,
    pub task: String,
    pub job_id: i64,
}

/// What a sync wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IntakeSynced {
    /// Tasks made for issues seen for the first time.
    pub created: Vec<IntakeTask>,
    /// Queued jobs cancelled because their issue was closed or lost the label.
    pub cancelled: Vec<IntakeTask>,
    /// Issues listed that already had a task (this sync's or an earlier one's, or one enqueued
    /// by hand for the issue or under its key).
    pub known: usize,
}
