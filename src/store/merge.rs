//! Merging a task's pull request after its last stage: the outbox message finalize queues, and
//! how its delivery settles the task (`Store::settle_merge`).

use serde::{Deserialize, Serialize};

use super::NewAlert;

/// Merge the task's pull request once CI is green on its branch (`merge = "after_last_stage"`).
/// Stored whole as the message's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewMerge {
    pub project: String,
    pub task: String,
    pub task_id: i64,
}

/// How a merge message ended for its task, written with the message's end.
#[derive(Debug, Clone)]
pub struct MergeSettled {
    pub task_id: i64,
    /// Merged (the task completes), or not: the reason the task fails with.
    pub merged: bool,
    pub reason: String,
    /// Raised when the task fails (alerts on).
    pub alert: Option<Box<NewAlert>>,
}
