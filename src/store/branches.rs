//! A task's branch, worktree and pull request, as the store keeps them on the task: what the
//! branch operations take and return. The git work is the app's (`app::branches`, `vcs`); the
//! store records what came of it, one transaction each, and never lets a task have a second
//! branch or a second pull request.

use serde::{Deserialize, Serialize};

use super::{NewAlert, Task};
use crate::domain::states::PrState;

/// Record the branch a task's first run chose (`Store::claim_branch`).
#[derive(Debug, Clone)]
pub struct BranchClaim<'a> {
    pub task_id: i64,
    pub branch: &'a str,
    pub base_branch: &'a str,
    /// The remote's URL in the main clone; None: it has no such remote (the branch stays local).
    pub remote_url: Option<&'a str>,
    pub now: i64,
}

/// What a branch claim found.
#[derive(Debug, Clone)]
pub enum BranchClaimed {
    /// The task as it stands, with its branch: the one claimed now, or the one it had already
    /// (which always wins: a task never gets a second branch).
    Task(Box<Task>),
    /// Another task of the project has that branch: choose another name.
    Taken { by_task: String },
}

/// A worktree made for a task on a host (`Store::record_worktree`).
#[derive(Debug, Clone)]
pub struct WorktreeRecord<'a> {
    pub task_id: i64,
    pub host: &'a str,
    pub path: &'a str,
    /// The commit the branch started from; kept when the task has one already.
    pub base_sha: &'a str,
    pub now: i64,
}

/// How a push of a task's branch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed { sha: String },
    Failed { error: String },
}

/// What became of a task's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorktreeChange {
    Unchanged,
    /// Measured: this many bytes on disk.
    Measured(i64),
    /// Removed (the task finished): the branch stays.
    Removed,
}

/// The branch work after a finalize, or a tick's retry of a push, written in one transaction
/// (`Store::record_branch`).
#[derive(Debug, Clone)]
pub struct BranchUpdate {
    pub task_id: i64,
    /// The run whose commit the push carried: the push's outcome is recorded on it too.
    pub run_id: Option<i64>,
    pub push: Option<PushOutcome>,
    pub worktree: WorktreeChange,
    /// Queue this, unless the task's branch has never been pushed or the task has such a message
    /// waiting already (the one waiting renders the task as it will stand then).
    pub pull_request: Option<NewPullRequest>,
    /// Queued as it is (a push that failed).
    pub alert: Option<NewAlert>,
    pub now: i64,
}

/// What `record_branch` did besides recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchRecorded {
    /// The pull-request message queued, if one was.
    pub pull_request_queued: Option<i64>,
}

/// The outbox message that opens (or adopts) a task's pull request and brings its body up to
/// date. It names the task only: the title, body and branch are read when it is delivered, so a
/// message that waited while the forge was down still says what the task is by then. Stored
/// whole as the message's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewPullRequest {
    pub project: String,
    pub task: String,
    pub task_id: i64,
}

/// The pull request a delivery opened, adopted or looked at: stored on the task by
/// `Store::settle_pull_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSettled {
    pub task_id: i64,
    pub number: i64,
    pub url: String,
    pub state: PrState,
}

/// One finalized run of a task, for its pull request's table of stages.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRun {
    pub run_id: i64,
    pub stage: String,
    pub attempt: i64,
    pub class: Option<String>,
    pub decision: Option<String>,
    /// The verdict's usage, as JSON (`usage_json`).
    pub usage_json: Option<String>,
    pub commit_sha: Option<String>,
}

/// Everything a pull request's title and body are made from.
#[derive(Debug, Clone)]
pub struct PullRequestFacts {
    pub task: Task,
    pub runs: Vec<StageRun>,
}

/// The worktrees a host keeps for one project, and their size as last measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorktreeUsage {
    pub project: String,
    pub worktrees: i64,
    pub bytes: i64,
}

/// Why `enqueue` created nothing for a task key that names a task already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Refused {
    /// The task is complete: its branch and pull request are done with.
    Complete,
    /// The task has an open pull request: `orch retry` a failed job to go on with it.
    PullRequestOpen { number: i64, url: String },
    /// Another task of the project has this key, spelled otherwise (case, spaces).
    SpelledLike { key: String },
    /// A task with this key (or one spelled like it) finished and was pruned: its branch and
    /// pull request stay its own.
    Pruned {
        key: String,
        branch: String,
        pull_request: Option<i64>,
        url: Option<String>,
    },
}

impl Refused {
    /// What `orch enqueue` says.
    pub fn explain(&self, key: &str) -> String {
        match self {
            Refused::Complete => format!(
                "task {key} is complete: it keeps its branch and pull request, and is not queued again"
            ),
            Refused::PullRequestOpen { number, url } => format!(
                "task {key} has an open pull request, #{number} ({url}): it is not queued again \
                 (`orch retry JOB` goes on with a failed job of it)"
            ),
            Refused::SpelledLike { key: other } => format!(
                "task {key} is spelled like task {other}, which exists: use that key (a task never \
                 gets a second branch)"
            ),
            Refused::Pruned {
                key: pruned,
                branch,
                pull_request,
                url,
            } => {
                let pull = match (pull_request, url) {
                    (Some(number), Some(url)) => format!(" and pull request #{number} ({url})"),
                    (Some(number), None) => format!(" and pull request #{number}"),
                    _ => String::new(),
                };
                format!(
                    "task {pruned} finished and was pruned; its branch {branch}{pull} stay its \
                     own: queue the work under a new key (a task never gets a second branch)"
                )
            }
        }
    }
}
