//! Retention: pruning finished tasks in batches, the files they leave for their hosts to remove,
//! the fleet's shared housekeeping turns, and the database's own size.

use serde::Serialize;

use crate::domain::retention::Cutoffs;
use crate::domain::states::{OutboxState, TaskState};

/// One batch of a prune: the finished tasks after `after`, oldest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct PruneBatch<'a> {
    /// The task states that count as finished (`TaskState::FINISHED`).
    pub finished: &'a [TaskState],
    pub cutoffs: Cutoffs,
    /// Where the previous batch stopped; None for the oldest.
    pub after: Option<TaskCursor>,
    pub limit: i64,
    /// This host: the files of runs recorded without a host are filed under it.
    pub host: &'a str,
    pub now: i64,
}

/// A place in the walk over finished tasks, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskCursor {
    pub updated_at: i64,
    pub task_id: i64,
}

/// What a batch removed (or, previewed, would remove).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PrunedBatch {
    pub tasks: i64,
    pub jobs: i64,
    pub history: i64,
    pub runs: i64,
    /// The copies of those runs' logs kept in the database (`run_logs`).
    pub logs: i64,
    /// Delivered outbox messages of the batch's jobs.
    pub outbox: i64,
    /// Files the removed rows named, queued in the trash for the host each is on (a preview
    /// lists them without queueing).
    pub files: Vec<TrashItem>,
    /// Where to go on from; None when no finished task is left after this batch.
    pub next: Option<TaskCursor>,
}

/// A file or directory a pruned row named, for its host to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrashItem {
    /// Its row in the trash; 0 in a preview.
    pub id: i64,
    pub host: String,
    pub kind: TrashKind,
    /// A log: its path as the run recorded it. A worktree: `project/task`, under the host's
    /// worktree directory.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrashKind {
    Log,
    Worktree,
}

impl TrashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrashKind::Log => "log",
            TrashKind::Worktree => "worktree",
        }
    }

    pub fn from_name(name: &str) -> Option<TrashKind> {
        match name {
            "log" => Some(TrashKind::Log),
            "worktree" => Some(TrashKind::Worktree),
            _ => None,
        }
    }
}

/// One step of the sweep over delivered outbox messages left without a job (see
/// `Store::sweep_outbox`).
#[derive(Debug, Clone, Copy)]
pub struct OutboxSweep {
    /// Folded messages are swept first, then sent ones.
    pub state: OutboxState,
    /// Only messages delivered before this.
    pub before: i64,
    /// Where the previous step stopped (due time, id); None from the oldest.
    pub after: Option<(i64, i64)>,
    pub limit: i64,
    /// Count, removing nothing.
    pub dry_run: bool,
}

/// What a sweep step removed (or would), and where the next goes on from (None: done).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub messages: i64,
    pub next: Option<(i64, i64)>,
}

/// A housekeeping job one process of the fleet does at a time, at most every `every_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub name: &'a str,
    /// Who takes it (a worker, a host and pid): only the holder's `end_turn` lets it go early.
    pub holder: &'a str,
    pub every_ms: i64,
    /// How long the turn is held at most: a holder that dies lets it go when this runs out.
    pub hold_ms: i64,
    pub now: i64,
}

/// The database's own size, in its pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Storage {
    pub page_size: i64,
    pub pages: i64,
    /// Pages free for reuse inside the file.
    pub free_pages: i64,
    /// Whether free pages can be handed back to the file system a few at a time
    /// (`incremental_vacuum`), or only by rewriting the whole file.
    pub incremental: bool,
}

impl Storage {
    pub fn bytes(&self) -> i64 {
        self.page_size * self.pages
    }
}
