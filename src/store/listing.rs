//! Finding jobs and tasks for people: `orch jobs` and `orch show TASK`.

use serde::Serialize;

use crate::domain::states::{JobState, PrState, TaskState};

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

/// A task as `orch show TASK` prints it, with its branch, worktree and pull request (see the
/// store's `branches` module; all None for a task that never had a branch).
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
    pub branch: Option<String>,
    pub base_branch: Option<String>,
    pub base_sha: Option<String>,
    pub remote_url: Option<String>,
    pub worktree: Option<String>,
    pub worktree_host: Option<String>,
    pub worktree_bytes: Option<i64>,
    pub head_sha: Option<String>,
    pub pushed_sha: Option<String>,
    pub pushed_at: Option<i64>,
    pub push_error: Option<String>,
    pub pr_number: Option<i64>,
    pub pr_url: Option<String>,
    pub pr_state: Option<PrState>,
    pub pr_synced_at: Option<i64>,
    /// The state label orch last asked the issue to carry ("" none; None never asked).
    pub issue_label: Option<String>,
}

impl Task {
    /// A commit on the branch waits to be pushed.
    pub fn push_due(&self) -> bool {
        self.head_sha.is_some() && self.head_sha != self.pushed_sha
    }
}
