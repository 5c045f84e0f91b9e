//! Intake: a project's labelled open issues taken in as tasks, and the tasks of issues that left
//! the list withdrawn (`Store::sync_intake`).

use serde::{Deserialize, Serialize};

use crate::domain::states::{JobState, PrState, TaskState};

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

/// Give a task's issue the state label its task calls for: an outbox message. Its delivery
/// reads the label from the task then (`Task::issue_label`), so a message late or retried never
/// puts back a label older than the last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewIssueLabel {
    pub project: String,
    pub task: String,
    pub task_id: i64,
    pub issue: i64,
}

/// Which label a task's issue should carry, by its state, its live job's and its pull
/// request's (`domain::intake::state_label`).
pub type LabelRule = fn(TaskState, Option<JobState>, Option<PrState>) -> Option<&'static str>;

/// One look at a project's tasks with an issue: the live ones, and the finished ones updated at
/// or after `since` (None: the live ones only, as when the labels were just switched on).
#[derive(Debug, Clone, Copy)]
pub struct LabelSweep<'a> {
    pub project: &'a str,
    pub since: Option<i64>,
    pub rule: LabelRule,
    pub now: i64,
}

/// A task whose issue's label changed (`label` None: no state label).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LabelChange {
    pub task: String,
    pub issue: i64,
    pub label: Option<String>,
}
