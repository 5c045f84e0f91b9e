//! Finding jobs and tasks for people: `orch jobs` and `orch show TASK`.

use serde::Serialize;

use crate::domain::states::{JobState, TaskState};

/// Which jobs to list; None matches anything.
#[derive(Debug, Default)]
pub struct JobFilter<'a> {
    /// Empty: the live states (`JobState::LIVE`).
    pub states: Vec<JobState>,
    pub project: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub task: Option<&'a str>,
    pub limit: i64,
}

impl JobFilter<'_> {
    /// The states to list, in order.
    pub fn states(&self) -> &[JobState] {
        if self.states.is_empty() {
            JobState::LIVE
        } else {
            &self.states
        }
    }
}

/// A task as `orch show TASK` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub task_id: i64,
    pub project: String,
    pub key: String,
    pub title: String,
    pub issue: Option<i64>,
    pub state: TaskState,
    pub created_at: i64,
    pub updated_at: i64,
}
