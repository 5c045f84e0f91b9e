//! The store: `trait Store`, one method per atomic operation, and the backend-neutral types it
//! speaks (the submodules here, one concern each). A backend is a folder implementing the trait
//! (`sqlite/`: SQLite through rusqlite, with its own migrations); `open` picks it. No database
//! type escapes its backend, and the conformance suite (tests/it/conformance/) is written once
//! against the trait and run against every backend.
//!
//! The rules every backend keeps:
//! - Every write method is one transaction: a decision and everything it implies land together
//!   or not at all. Read methods see one consistent state.
//! - Policy is not the store's: what a run's outcome means, which running jobs to rescue, when a
//!   breaker opens, what an alert says are decided by pure code (`crate::domain`, the app) and
//!   handed in as data, or as a callback the store calls inside its transaction (`Triage`).
//! - Times are epoch milliseconds, UTC. Every `now` given to a store comes from its `now()`, so
//!   a backend on a database server compares times by the server's clock.
//! - Fences: a write on behalf of a run or a lease states its holder (job, worker, attempt) and
//!   is refused, writing nothing, when the holder lost it.

mod approval;
mod branches;
mod breaker;
mod ci;
mod copy;
mod finalize;
mod holds;
mod intake;
mod jobs;
mod listing;
mod logs;
mod merge;
mod metrics;
mod outbox;
pub mod postgres;
mod preflight;
mod retention;
mod runs;
pub mod sql;
pub mod sqlite;
mod usage;

pub use approval::*;
pub use branches::*;
pub use breaker::*;
pub use ci::*;
pub use copy::*;
pub use finalize::*;
pub use holds::*;
pub use intake::*;
pub use jobs::*;
pub use listing::*;
pub use logs::*;
pub use merge::*;
pub use metrics::*;
pub use outbox::*;
pub use preflight::*;
pub use retention::*;
pub use runs::*;
pub use usage::*;

use anyhow::Result;

pub use crate::config::Location;

use crate::domain::breaker::Breaker;
use crate::domain::states::{JobState, MessageKind, OutboxState};
use crate::procfs::Proc;

/// How far ahead of this machine's clock orch's runs (`clock_ahead_seconds`), in milliseconds.
static CLOCK_AHEAD_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Run orch's clock `ms` ahead of the machine's, for this process (`clock_ahead_seconds`: a
/// drill's way to see what happens once a usage limit resets or a retry comes due).
pub fn set_clock_ahead(ms: i64) {
    CLOCK_AHEAD_MS.store(ms.max(0), std::sync::atomic::Ordering::Relaxed);
}

/// How far ahead `clock_ahead_seconds` runs orch's clock, in milliseconds.
pub(crate) fn clock_ahead_ms() -> i64 {
    CLOCK_AHEAD_MS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch, UTC, by this machine's clock (run ahead by
/// `clock_ahead_seconds`): the SQLite backend's clock, and the time orch shows things relative to.
pub fn now_ms() -> i64 {
    chrono::Utc::now()
        .timestamp_millis()
        .saturating_add(CLOCK_AHEAD_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Where the store is and how to open it.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The database: a file (SQLite) or a URL (PostgreSQL).
    pub location: &'a Location,
    /// How long a write waits for another process's lock before it gives up.
    pub busy_timeout_ms: u64,
    /// This machine's name (`Config::host`): a migration that keys facts by host files the
    /// existing ones under it.
    pub host: &'a str,
}

/// Open (creating and migrating it when needed) the store at `options.location`.
pub fn open(options: &Options) -> Result<Box<dyn Store>> {
    Ok(match options.location {
        Location::File(path) => Box::new(sqlite::Sqlite::open(path, options)?),
        Location::Url(url) => Box::new(postgres::Postgres::open(url, options)?),
    })
}

/// Every operation orch performs on its database. Writes take `&mut self` and are one
/// transaction each; reads take `&self`.
pub trait Store: Send {
    /// The clock every `now` passed to this store must come from.
    fn now(&self) -> Result<i64>;

    // Tasks and jobs.

    /// Queue `new.stage`'s job for the task (project, key), creating or updating the task; when
    /// the task already has a live job, change nothing and return that job (`created: false`).
    fn enqueue(&mut self, new: &NewTask, now: i64) -> Result<Enqueued>;

    /// Ask the agent's circuit breaker, take back the running jobs `request.triage` picks, hold or
    /// release projects, then take the best eligible job (highest priority, then earliest
    /// `run_after`, then lowest id; due; at a pipeline stage; of a project not held and below its
    /// `max_running`) for `request.worker`: one transaction, one winner. An open breaker is an
    /// error carrying exit 12, and nothing is written; a half-open one lets this claim through
    /// as its only probe.
    fn claim(&mut self, request: &ClaimRequest) -> Result<Claim>;

    /// Take back the running jobs `triage` picks among the candidates (expired or future-dated
    /// leases, and the open runs on `host`): requeued with the attempt counted, or failed when
    /// the attempts are spent (`Rescue::to_state`), their open runs closed.
    fn rescue(&mut self, host: &str, now: i64, triage: Triage) -> Result<Vec<Rescued>>;

    /// Extend the holder's lease to `now + lease_ms` while its run `run_id` is open. False when
    /// it holds it no more (the job was cancelled, finalized or rescued, maybe claimed again,
    /// or the run was closed): nothing is written.
    fn heartbeat(
        &mut self,
        holder: &LeaseHolder,
        run_id: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<bool>;

    /// Take in a project's labelled open issues (`sync.issues`, the whole list the forge gave):
    /// queue a task at `sync.stage` for each issue never taken in before that no task of the
    /// project stands for yet (by issue number, or by key however spelled, in any state), and
    /// cancel the jobs not running yet (queued, over budget) of the tasks taken in whose issue
    /// is not in the list (closed, or its label removed), each with the reason in its history.
    /// One transaction; a second sync of the same list writes nothing.
    fn sync_intake(&mut self, sync: &IntakeSync) -> Result<IntakeSynced>;

    /// Compare the state label each task of `sweep` calls for (`sweep.rule`) with the one its
    /// issue was last given, and for each that differs record the new one on the task and queue
    /// an `issue_label` message (unless one for the task is waiting: it will carry the new
    /// label). One transaction.
    fn sweep_issue_labels(&mut self, sweep: &LabelSweep) -> Result<Vec<LabelChange>>;

    /// Let a job awaiting approval run: queued and due now, `note` in its history. A job in
    /// any other state is a usage error.
    fn approve(
        &mut self,
        job_id: i64,
        actor: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<Reviewed>;

    /// Send a job awaiting approval back: cancelled, and `rejection.stage` queued again with
    /// the note for its prompt (`{review_note}`). A job in any other state is a usage error.
    fn reject(&mut self, rejection: &Rejection) -> Result<Reviewed>;

    /// Alert, once each, the jobs awaiting approval since before `alerts.waiting_since`. Returns
    /// their ids. One transaction.
    fn alert_waiting_approvals(&mut self, alerts: &ApprovalAlerts) -> Result<Vec<i64>>;

    /// Take comment `comment_id` of the project's forge as a command, once: true the first time,
    /// false ever after (writing nothing).
    fn take_comment(&mut self, project: &str, comment_id: i64, now: i64) -> Result<bool>;

    /// The reviewer's note a job sent back by a rejection carries, if it is one.
    fn review_note(&self, job_id: i64) -> Result<Option<String>>;

    /// Record a merge message as sent and settle its task: complete (its pull request merged)
    /// or failed with `settled.reason` (and the alert queued), in one transaction. None when
    /// `claimer` no longer held the claim.
    fn settle_merge(
        &mut self,
        message_id: i64,
        claimer: &str,
        settled: &MergeSettled,
        now: i64,
    ) -> Result<Option<OutboxState>>;

    /// The jobs waiting behind a CI gate, oldest gate first.
    fn ci_gates(&self, limit: i64) -> Result<Vec<GateRow>>;

    /// Take the CI gates due a look (none since `now - every_ms`), at most `limit`, oldest first,
    /// marking them looked at `now` in the same transaction: of the workers sharing the store,
    /// one looks at each gate per interval. Writes nothing when none is due.
    fn take_ci_gates(&mut self, limit: i64, now: i64, every_ms: i64) -> Result<Vec<GateRow>>;

    /// Settle a job's CI gate as `settle.outcome` says, in one transaction. None, writing
    /// nothing, when the job has no gate any more or is no longer queued (its gate is dropped).
    fn settle_ci_gate(&mut self, settle: &GateSettle) -> Result<Option<GateSettled>>;

    /// The failing checks a job re-running its stage for red CI carries, if it is one.
    fn ci_failures(&self, job_id: i64) -> Result<Option<String>>;

    /// Cancel a queued or running job. A running job's open run (of its current attempt) is
    /// closed in the same transaction, decided `cancelled`; its agent is the caller's to stop.
    fn cancel(&mut self, job_id: i64, actor: &str, now: i64) -> Result<Cancelled>;

    /// Put a failed or cancelled job back in the queue, attempts reset; with `stage`, at that
    /// stage (a queued job may be moved too). Refused while the task has another live job.
    fn retry(&mut self, job_id: i64, stage: Option<&str>, actor: &str, now: i64)
        -> Result<Retried>;

    /// Make a queued job due now instead of at its retry time, attempts kept. Returns when it
    /// was due.
    fn make_due(&mut self, job_id: i64, actor: &str, now: i64) -> Result<i64>;

    /// Add to the budget that holds a job in `over_budget` (its task's, its project's for the
    /// day, or both) and put it back in the queue when its budgets allow. A job in any other
    /// state is a usage error.
    fn raise_budget(&mut self, raise: &BudgetRaise) -> Result<Raised>;

    // Runs.

    /// Open a run for `new.job_id` if `new.worker` holds its live lease and the current attempt
    /// has no open or unfinalized run, renewing the lease. A refusal writes nothing.
    fn start_run(&mut self, new: &NewRun) -> Result<StartedRun>;

    /// Call `start` (which starts the agent) while holding the write lock, and record on the run
    /// the process it returns, in the same transaction. When the lock cannot be had `start` is
    /// not called and the error is returned: see `<dyn Store>::start_agent`.
    fn record_agent_start(
        &mut self,
        run_id: i64,
        start: &mut dyn FnMut() -> Option<Proc>,
    ) -> Result<()>;

    /// Record how the run ended, once (an ended run is refused), and drop the agent's cached
    /// preflight verdict on the run's host when `end` says so.
    fn end_run(&mut self, run_id: i64, end: &RunEnd) -> Result<()>;

    /// Take the run's finalize lock (see `FinalizeLock`).
    fn lock_finalize(&mut self, lock: &FinalizeLock) -> Result<Locked>;

    /// Release the run's finalize lock if `holder` has it.
    fn unlock_finalize(&mut self, run_id: i64, holder: &str) -> Result<()>;

    /// Write a finalize decision whole (see `FinalizePlan`), or nothing when its guard fails.
    fn apply_finalize(&mut self, plan: &FinalizePlan) -> Result<Applied>;

    // The outbox.

    /// Queue a message, due at once. Returns its id.
    fn queue(&mut self, message: &Message, now: i64) -> Result<i64>;

    /// Claim the next due message this process may deliver (pending and due, or claimed by a
    /// sender whose claim ran out), applying the alert dedup window. None when nothing is due.
    fn claim_message(&mut self, request: &ClaimMessage) -> Result<Option<Claimed>>;

    /// Record how a delivery attempt ended. Returns the message's state afterwards, or None when
    /// `claimer` no longer held the claim (a success is recorded anyway: it did go out).
    fn finish_message(
        &mut self,
        id: i64,
        claimer: &str,
        finish: &Finish,
        now: i64,
    ) -> Result<Option<OutboxState>>;

    /// Note on pending messages of `kind` why they are not being delivered, without counting an
    /// attempt. Returns how many wait.
    fn note_waiting(&mut self, kind: MessageKind, why: &str) -> Result<i64>;

    /// Give every dead message another round of attempts, due now. Returns how many.
    fn retry_dead(&mut self, now: i64) -> Result<usize>;

    // Preflight, per host.

    /// The agent's cached verdict and auth gate on `host`, whichever exist.
    fn preflight_state(&self, host: &str, agent: &str) -> Result<PreflightState>;

    /// Store (or replace) the agent's verdict on `host`.
    fn save_preflight(&mut self, host: &str, agent: &str, verdict: &CachedVerdict) -> Result<()>;

    /// Hold the agent's auth gate on `gate.host` and drop its cached verdict there. A gate
    /// already held for the same credentials file is kept as it was. Returns whether the gate
    /// was newly held. (`gate.alert` is `apply_finalize`'s business, not queued here.)
    fn hold_auth_gate(&mut self, gate: &GateHold, now: i64) -> Result<bool>;

    /// Release the agent's gate on `host` because its credentials file changed: only the gate
    /// that was read (`held_since`), not one held again since. Returns whether it was released.
    fn release_auth_gate(&mut self, host: &str, agent: &str, held_since: i64) -> Result<bool>;

    /// Release the agent's invocation hold on `host` because its settings changed: only the hold
    /// that was read (`held_since`). Returns whether it was released.
    fn release_invocation_hold(&mut self, host: &str, agent: &str, held_since: i64)
        -> Result<bool>;

    /// Drop cached verdicts, release auth gates and lift usage and invocation holds on `host`,
    /// one agent's or all.
    fn reset_preflight(&mut self, host: &str, agent: Option<&str>) -> Result<Reset>;

    /// Every host with an auth gate held or a usage hold standing at `now`, by name: what a
    /// fleet's status lists besides this host's.
    fn held_hosts(&self, now: i64) -> Result<Vec<String>>;

    /// The agent version the cached verdict on `host` recorded, if there is one.
    fn cached_agent_version(&self, host: &str, agent: &str) -> Result<Option<String>>;

    // Circuit breakers.

    /// Every agent's breaker that has a row, by agent name, with its probe's liveness at `now`.
    fn breakers(&self, now: i64) -> Result<Vec<BreakerRow>>;

    /// The agent's breaker; closed when it has no row.
    fn breaker(&self, agent: &str) -> Result<Breaker>;

    /// Close one agent's breaker, or every one, forgetting its count. Returns how many were
    /// open or half-open.
    fn close_breakers(&mut self, agent: Option<&str>) -> Result<usize>;

    // Reads.

    fn job(&self, job_id: i64) -> Result<Option<Job>>;
    fn task_body(&self, task_id: i64) -> Result<String>;
    fn history(&self, job_id: i64) -> Result<Vec<HistoryEntry>>;
    fn runs_for_job(&self, job_id: i64) -> Result<Vec<Run>>;
    fn run(&self, run_id: i64) -> Result<Option<Run>>;
    /// The copy of the run's log kept at its finalize (`FinalizePlan::log`), if there is one.
    fn run_log(&self, run_id: i64) -> Result<Option<StoredLog>>;
    /// Whether the run was closed (finalized) already: by a cancel or a rescue, while it ran.
    fn run_closed(&self, run_id: i64) -> Result<bool>;
    /// What the last run judged ok of `task_id`'s `stage` left for the next stage's prompt.
    fn last_ok_result(&self, task_id: i64, stage: &str) -> Result<Option<PreviousResult>>;
    /// Runs awaiting finalize (see `Unfinalized`), oldest first; only `worker`'s when given.
    fn unfinalized_runs(&self, worker: Option<&str>, limit: i64) -> Result<Vec<Unfinalized>>;
    /// Jobs by project, state and stage.
    fn state_counts(&self) -> Result<Vec<StateCount>>;
    /// Jobs in `state`, running ones by lease expiry, others by when they are due.
    fn jobs_in_state(&self, state: JobState, limit: i64) -> Result<Vec<Job>>;
    /// Live jobs at a stage not in `stages` (never claimed), oldest first.
    fn stranded_jobs(&self, stages: &[&str], limit: i64) -> Result<Vec<Job>>;
    /// Queued jobs waiting for a retry time after `now`, soonest first.
    fn pending_retries(&self, now: i64, limit: i64) -> Result<Vec<Job>>;
    /// Jobs matching `filter`, at most `filter.limit` of each state: running by lease expiry,
    /// queued by when they are due, finished ones newest first.
    fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>>;
    /// Every task with this key (one per project at most), by project.
    fn tasks_by_key(&self, key: &str) -> Result<Vec<Task>>;
    /// A task's jobs in the order they were made.
    fn jobs_of_task(&self, task_id: i64) -> Result<Vec<Job>>;
    /// Every project hold, by project and host.
    fn project_holds(&self) -> Result<Vec<ProjectHold>>;
    /// Each of `projects`' spending since `day_start` and its jobs waiting for budget.
    fn project_spends(&self, projects: &[&str], day_start: i64) -> Result<Vec<ProjectSpend>>;
    /// The outbox at `now`, listing at most `limit` waiting and dead messages.
    fn outbox_summary(&self, now: i64, limit: i64) -> Result<OutboxSummary>;
    /// Usage comments in the outbox, oldest first, with their message ids.
    fn comments(&self) -> Result<Vec<(i64, NewComment)>>;
    /// Everything `orch metrics` shows, read in one snapshot; preflight rows of `host`.
    fn metrics(&self, host: &str, now: i64) -> Result<MetricsFacts>;

    // Branches, worktrees and pull requests (see `branches`).

    /// A task with its branch, worktree and pull request.
    fn task(&self, task_id: i64) -> Result<Option<Task>>;

    /// Record the branch (and its base and remote) a task's first run chose. A task that has a
    /// branch keeps it, whatever is asked; a name another task of the project has is refused.
    fn claim_branch(&mut self, claim: &BranchClaim) -> Result<BranchClaimed>;

    /// Record the worktree made for a task on a host (replacing one recorded elsewhere).
    fn record_worktree(&mut self, record: &WorktreeRecord) -> Result<()>;

    /// Record a push, the worktree's size or removal, and queue the pull-request message and
    /// the alert the update carries, in one transaction.
    fn record_branch(&mut self, update: &BranchUpdate) -> Result<BranchRecorded>;

    /// Tasks whose branch has a commit `host` made and has not pushed, oldest first.
    fn unpushed_branches(&self, host: &str, limit: i64) -> Result<Vec<Task>>;

    /// Tasks with a worktree on `host`.
    fn worktrees(&self, host: &str) -> Result<Vec<Task>>;

    /// The worktrees `host` keeps, by project, with their size as last measured.
    fn worktree_usage(&self, host: &str) -> Result<Vec<WorktreeUsage>>;

    /// What a task's pull request is made from: the task and its finalized runs.
    fn pull_request_facts(&self, task_id: i64) -> Result<Option<PullRequestFacts>>;

    /// Record a pull-request message as sent and the pull request it opened, adopted or saw on
    /// its task, in one transaction. A task that has a pull request keeps its number (one per
    /// task, ever); its state and URL are updated. None when `claimer` no longer held the claim.
    fn settle_pull_request(
        &mut self,
        message_id: i64,
        claimer: &str,
        settled: &PullRequestSettled,
        now: i64,
    ) -> Result<Option<OutboxState>>;
    // Retention and the cost report.

    /// Remove one batch of finished tasks (`batch.finished`) that finished before the cutoff,
    /// oldest first, with their jobs, history, runs (and the logs kept of them) and delivered
    /// outbox messages, queueing the
    /// files their runs left (logs, worktrees) in the trash of the host each is on. A task with
    /// a live job, or with a run that has not ended and started at or after
    /// `cutoffs.open_runs_since` (its log may still be written), is passed over. Counts, the
    /// usage rollup, pending and dead messages are left as they are. One transaction.
    fn prune_batch(&mut self, batch: &PruneBatch) -> Result<PrunedBatch>;

    /// What `prune_batch` would remove, removing nothing.
    fn preview_prune(&self, batch: &PruneBatch) -> Result<PrunedBatch>;

    /// One step of the sweep over delivered outbox messages (sent, or folded into one that was
    /// sent) delivered before `sweep.before` whose job is gone or that belong to none: at most
    /// `limit` of `sweep.state`, after the cursor. A message others are folded into stays until
    /// they are gone. One transaction (with `dry_run`, a read that removes nothing).
    fn sweep_outbox(&mut self, sweep: &OutboxSweep) -> Result<Swept>;

    /// The files waiting in `host`'s trash, oldest first.
    fn trash(&self, host: &str, limit: i64) -> Result<Vec<TrashItem>>;

    /// Forget trash items (removed, or not removable).
    fn empty_trash(&mut self, ids: &[i64]) -> Result<()>;

    /// Whether a row that exists now names the item's file, which is then not the pruned task's
    /// any more: a run with that log (ids used again after a prune removed the newest rows), or
    /// a task with a worktree there on the item's host (its key, or one that makes the same
    /// directory, queued again).
    fn trash_in_use(&self, item: &TrashItem) -> Result<bool>;

    /// The database's size and free pages.
    fn storage(&self) -> Result<Storage>;

    /// Bring the database file up to date with what was written, without holding up writers.
    /// The prune's own writes leave this to it, between its batches, so that no batch holds the
    /// write lock for it (SQLite: a passive WAL checkpoint).
    fn checkpoint(&mut self) -> Result<()>;

    /// Hand at most `pages` free pages back to the file system, in one short transaction (a no-op
    /// unless `storage().incremental`). Returns the free pages left.
    fn release_pages(&mut self, pages: i64) -> Result<i64>;

    /// Take the fleet's turn at `turn.name` if it is due (`domain::retention::turn_due`): one
    /// holder across every process and host. False, writing nothing, when it is not.
    fn take_turn(&mut self, turn: &Turn) -> Result<bool>;

    /// Let the turn go if `holder` holds it; with `done`, record `now` as when it was last done
    /// (whoever holds it).
    fn end_turn(&mut self, name: &str, holder: &str, done: bool, now: i64) -> Result<()>;

    /// When the turn was last done, if ever.
    fn turn_done_at(&self, name: &str) -> Result<Option<i64>>;

    // Copying a whole queue (`orch db copy`).

    /// Every table a copy carries, parents first.
    fn copy_tables(&self) -> &'static [CopyTable];

    /// How many rows the table holds.
    fn copy_count(&self, table: &str) -> Result<i64>;

    /// At most `limit` rows of a paged table after id `after`, or all of another.
    fn copy_rows(&self, table: &str, after: i64, limit: i64) -> Result<TableRows>;

    /// Write rows read from another database into the table, in one transaction; `first`, the
    /// first batch of the table (a derived table's rows replace what its triggers made).
    fn copy_insert(&mut self, table: &str, rows: &TableRows, first: bool) -> Result<()>;

    /// After a copy: new ids follow the copied ones.
    fn copy_finish(&mut self) -> Result<()>;

    /// The cost report: the usage rollup (every finalized run, pruned or not) and the runs not
    /// finalized yet (class `domain::usage::UNJUDGED`), together.
    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>>;
}

impl dyn Store + '_ {
    /// Start the agent with `start` while holding the write lock, and record the process it
    /// reports (its pid, also its process group's id, and start time) on the run in the same
    /// transaction. Waiting for the lock after the agent started would leave it working unknown
    /// to a rescue for as long as other processes hold the lock; this way only the commit lies
    /// between the two. When the lock cannot be had, the agent is started anyway and the error
    /// returned beside it (the run then lacks its agent's record).
    pub fn start_agent<T>(
        &mut self,
        run_id: i64,
        start: impl FnOnce() -> (T, Option<Proc>),
    ) -> (T, Result<()>) {
        let mut start = Some(start);
        let mut started = None;
        let recorded = self.record_agent_start(run_id, &mut || {
            let (value, agent) = (start.take().expect("started once"))();
            started = Some(value);
            agent
        });
        match (started, start) {
            (Some(value), _) => (value, recorded),
            (None, Some(start)) => (start().0, recorded),
            (None, None) => unreachable!("the agent is started inside the transaction or after it"),
        }
    }
}
