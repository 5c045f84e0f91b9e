//! The SQLite backend: rusqlite (bundled), one connection per process. `Sqlite::open` applies
//! the pragmas (WAL, synchronous=FULL, busy_timeout, foreign_keys) and the migrations; the
//! submodules hold the queries, one concern each, as functions over a transaction or a
//! connection. Every write runs in one `BEGIN IMMEDIATE` transaction (`Sqlite::write`): a
//! deferred transaction that upgrades to a write gets SQLITE_BUSY at once and ignores the busy
//! timeout. Rows are read by column name.

mod approval;
mod branches;
mod breaker;
mod budget;
mod ci;
mod copy;
mod finalize;
mod holds;
mod intake;
mod jobs;
mod listing;
mod logs;
mod metrics;
mod outbox;
mod preflight;
mod retention;
mod runs;
mod usage;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::sql::{Backend, Db};
use super::*;
use crate::domain::breaker::Breaker;
use crate::domain::states::{JobState, MessageKind, OutboxState};
use crate::procfs::Proc;
use crate::{exit, fsx};

/// Forward migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_preflight.sql"),
    include_str!("migrations/0003_outbox.sql"),
    include_str!("migrations/0004_breaker.sql"),
    include_str!("migrations/0005_one_agent.sql"),
    include_str!("migrations/0006_per_host.sql"),
    include_str!("migrations/0007_limits.sql"),
    include_str!("migrations/0008_pull_requests.sql"),
    include_str!("migrations/0009_retention.sql"),
    include_str!("migrations/0010_agents.sql"),
    include_str!("migrations/0011_priced_runs.sql"),
    include_str!("migrations/0012_intake.sql"),
    include_str!("migrations/0013_run_logs.sql"),
];

/// How often a write waiting for another process's lock looks again, until `busy_timeout_ms`.
/// SQLite's own handler sleeps longer the longer it has waited, up to 100 ms at a time, and so
/// sleeps through the moments a lock is let go between short transactions: a prune lets it go
/// between batches for as long as each batch held it.
const BUSY_POLL_MS: u64 = 2;

/// The busy handler: look again every `BUSY_POLL_MS` until the timeout (the handler's user
/// data) has passed; then the write fails with SQLITE_BUSY, as with SQLite's own.
unsafe extern "C" fn poll_busy(
    timeout_ms: *mut std::ffi::c_void,
    count: std::ffi::c_int,
) -> std::ffi::c_int {
    let waited_ms = u64::try_from(count)
        .unwrap_or(0)
        .saturating_mul(BUSY_POLL_MS);
    if waited_ms >= timeout_ms.addr() as u64 {
        return 0;
    }
    std::thread::sleep(Duration::from_millis(BUSY_POLL_MS));
    1
}

/// SQLite's own: a commit that leaves the WAL longer than this many pages checkpoints it.
const DEFAULT_AUTOCHECKPOINT: i64 = 1000;

pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    busy_timeout_ms: u64,
}

impl Sqlite {
    /// Open (creating it, private to its owner, when missing) and migrate the database. Workers
    /// started at once on a database that does not exist yet create and migrate it together: a
    /// lock one of them meets on the way (switching the new file to WAL, say, which SQLite may
    /// refuse at once rather than wait) is waited out like any other, up to `busy_timeout_ms`.
    pub fn open(path: &Path, options: &Options) -> Result<Sqlite> {
        let started = std::time::Instant::now();
        loop {
            match Sqlite::open_once(path, options) {
                Err(err)
                    if is_busy(&err)
                        && started.elapsed() < Duration::from_millis(options.busy_timeout_ms) =>
                {
                    std::thread::sleep(Duration::from_millis(BUSY_POLL_MS));
                }
                opened => return opened,
            }
        }
    }

    fn open_once(path: &Path, options: &Options) -> Result<Sqlite> {
        let busy_timeout_ms = options.busy_timeout_ms;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsx::ensure_private_dir(dir, "database directory")?;
        }
        let created = !path.exists();
        if created {
            // SQLite gives its -wal and -shm files the database file's mode, so 0600 here keeps
            // all three private.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .or_else(|err| match err.kind() {
                    std::io::ErrorKind::AlreadyExists => OpenOptions::new().read(true).open(path),
                    _ => Err(err),
                })
                .with_context(|| format!("creating the database {}", path.display()))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|err| explain(err, path, busy_timeout_ms))
            .with_context(|| format!("opening the database {}", path.display()))?;
        let mut store = Sqlite {
            conn,
            path: path.to_path_buf(),
            busy_timeout_ms,
        };
        // The busy handler first: workers started at once on a new database create it together,
        // and every statement from here may meet another's lock.
        store.wait_when_busy().map_err(|err| store.context(err))?;
        if created {
            // Only a database with no tables yet can take this mode (before WAL, too): pruning
            // then gives freed pages back to the file system a few at a time, instead of a
            // VACUUM that rewrites the whole file under the write lock.
            store
                .conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
                .map_err(|err| store.context(err.into()))?;
        }
        store.configure().map_err(|err| store.context(err))?;
        store.migrate(options.host)?;
        Ok(store)
    }

    /// Wait for another process's lock (`poll_busy`) rather than fail at once.
    fn wait_when_busy(&self) -> Result<()> {
        // SAFETY: the handle is this connection's, open for as long as the handler may be
        // called; the user data is the timeout as a number, never dereferenced.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_busy_handler(
                self.conn.handle(),
                Some(poll_busy),
                std::ptr::without_provenance_mut(self.busy_timeout_ms as usize),
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            anyhow::bail!("could not set the busy handler (SQLite error {rc})");
        }
        Ok(())
    }

    fn configure(&self) -> Result<()> {
        // journal_mode answers with a row; the others are silent.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!("could not switch the database to WAL mode (it is in {mode} mode)");
        }
        self.conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )?;
        Ok(())
    }

    fn migrate(&mut self, host: &str) -> Result<()> {
        let known = MIGRATIONS.len() as i64;
        let version = self.user_version()?;
        if version > known {
            return Err(self.newer_schema(version));
        }
        if version == known {
            return Ok(());
        }
        let path = self.path.clone();
        // A migration may rebuild a table (SQLite cannot change a CHECK in place), which needs
        // foreign keys off; the pragma is ignored inside a transaction, so it goes around it,
        // and the keys are checked before they are turned back on.
        self.conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        let migrated = self.write_raw(|tx| {
            // Another process may have migrated while we waited for the lock.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if version > known {
                anyhow::bail!("the schema changed under us to version {version}");
            }
            // What a migration may need to know about the process applying it (0006 files the
            // per-host rows already there under this host).
            tx.execute_batch("CREATE TEMP TABLE migration_context (host TEXT NOT NULL)")?;
            tx.execute(
                "INSERT INTO temp.migration_context (host) VALUES (?1)",
                [host],
            )?;
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(sql).with_context(|| {
                    format!("applying migration {} to {}", index + 1, path.display())
                })?;
            }
            tx.execute_batch("DROP TABLE temp.migration_context")?;
            tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
            let broken: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                    row.get(0)
                })?;
            anyhow::ensure!(
                broken == 0,
                "migrating {} would break {broken} foreign key reference(s); nothing was changed",
                path.display()
            );
            Ok(())
        });
        self.conn.execute_batch("PRAGMA foreign_keys = ON")?;
        migrated
    }

    fn user_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|err| self.context(err.into()))
    }

    fn newer_schema(&self, version: i64) -> anyhow::Error {
        exit::config(format!(
            "the database {} has schema version {version}, written by a newer orch (this one knows up to {}); \
             it was not modified: upgrade orch or point --db elsewhere",
            self.path.display(),
            MIGRATIONS.len()
        ))
    }

    /// Run `f` inside one `BEGIN IMMEDIATE` transaction: committed when it returns Ok, rolled
    /// back otherwise. The write lock is taken up front, so the busy timeout applies to it.
    fn write_raw<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        let value = f(&tx).map_err(|err| with_hint(err, &self.path, self.busy_timeout_ms))?;
        tx.commit()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        Ok(value)
    }

    fn autocheckpoint(&self, pages: i64) -> Result<()> {
        self.conn
            .query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |_| {
                Ok(())
            })
            .map_err(|err| self.context(err.into()))
    }

    fn context(&self, err: anyhow::Error) -> anyhow::Error {
        with_hint(err, &self.path, self.busy_timeout_ms)
    }
}

impl Backend for Sqlite {
    fn now(&self) -> Result<i64> {
        Ok(now_ms())
    }

    fn write<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.write_raw(|tx| f(&Db::sqlite(tx)))
    }

    /// `write`, for a step of a bulk job (a prune's batch): its commit leaves checkpointing the
    /// WAL to `checkpoint`, between steps. A checkpoint at commit copies every page the step
    /// logged into the database file before the step returns, and the step would take that long
    /// again before its pacing notices.
    fn bulk_write<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.autocheckpoint(0)?;
        let result = self.write(f);
        self.autocheckpoint(DEFAULT_AUTOCHECKPOINT)?;
        result
    }

    /// Run `f`'s queries inside one read transaction: they all see the same snapshot of the
    /// database, whatever other processes commit meanwhile (WAL keeps readers and writers apart).
    fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        let value = f(&Db::sqlite(&tx)).map_err(|err| self.context(err))?;
        tx.commit()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        Ok(value)
    }

    fn get<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        f(&Db::sqlite(&self.conn)).map_err(|err| self.context(err))
    }

    fn rolled_back<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction()?;
        let value = f(&Db::sqlite(&tx)).map_err(|err| self.context(err))?;
        tx.rollback()?;
        Ok(value)
    }

    fn checkpoint(&mut self) -> Result<()> {
        // Busy (another checkpoint at work) is no failure: that one does the job.
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|err| self.context(err.into()))
    }
}

impl<B: Backend> Store for B {
    fn now(&self) -> Result<i64> {
        Backend::now(self)
    }

    fn enqueue(&mut self, new: &NewTask, now: i64) -> Result<Enqueued> {
        self.write(|tx| jobs::enqueue(tx, new, now))
    }

    fn claim(&mut self, request: &ClaimRequest) -> Result<Claim> {
        if let Some(claim) = jobs::claim_at_once(self, request)? {
            return Ok(claim);
        }
        self.write(|tx| jobs::claim(tx, request))
    }

    fn rescue(&mut self, host: &str, now: i64, triage: Triage) -> Result<Vec<Rescued>> {
        // Most ticks find nothing: a read, not the write lock.
        if self
            .get(|conn| jobs::rescue_candidates(conn, host, now))?
            .is_empty()
        {
            return Ok(Vec::new());
        }
        self.write(|tx| jobs::rescue(tx, host, now, triage))
    }

    fn heartbeat(
        &mut self,
        holder: &LeaseHolder,
        run_id: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| jobs::renew_lease(tx, holder, Some(run_id), lease_ms, now))
    }

    fn sync_intake(&mut self, sync: &IntakeSync) -> Result<IntakeSynced> {
        self.write(|tx| intake::sync_intake(tx, sync))
    }

    fn approve(
        &mut self,
        job_id: i64,
        actor: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<Reviewed> {
        self.write(|tx| approval::approve(tx, job_id, actor, note, now))
    }

    fn reject(&mut self, rejection: &Rejection) -> Result<Reviewed> {
        self.write(|tx| approval::reject(tx, rejection))
    }

    fn alert_waiting_approvals(&mut self, alerts: &ApprovalAlerts) -> Result<Vec<i64>> {
        // Most ticks find none: a read, not the write lock.
        if !self.get(|conn| approval::any_to_alert(conn, alerts.waiting_since))? {
            return Ok(Vec::new());
        }
        self.write(|tx| approval::alert_waiting(tx, alerts))
    }

    fn take_comment(&mut self, project: &str, comment_id: i64, now: i64) -> Result<bool> {
        self.write(|tx| approval::take_comment(tx, project, comment_id, now))
    }

    fn review_note(&self, job_id: i64) -> Result<Option<String>> {
        self.get(|conn| approval::review_note(conn, job_id))
    }

    fn settle_merge(
        &mut self,
        message_id: i64,
        claimer: &str,
        settled: &MergeSettled,
        now: i64,
    ) -> Result<Option<OutboxState>> {
        self.write(|tx| ci::settle_merge(tx, message_id, claimer, settled, now))
    }

    fn ci_gates(&self, limit: i64) -> Result<Vec<GateRow>> {
        self.get(|conn| ci::gates(conn, limit))
    }

    fn take_ci_gates(&mut self, limit: i64, now: i64, every_ms: i64) -> Result<Vec<GateRow>> {
        let due = now.saturating_sub(every_ms);
        // Most ticks find none due: a read, not the write lock.
        if !self.get(|conn| ci::any_due(conn, due))? {
            return Ok(Vec::new());
        }
        self.write(|tx| ci::take(tx, limit, now, due))
    }

    fn settle_ci_gate(&mut self, settle: &GateSettle) -> Result<Option<GateSettled>> {
        self.write(|tx| ci::settle(tx, settle))
    }

    fn ci_failures(&self, job_id: i64) -> Result<Option<String>> {
        self.get(|conn| ci::failures(conn, job_id))
    }

    fn sweep_issue_labels(&mut self, sweep: &LabelSweep) -> Result<Vec<LabelChange>> {
        self.write(|tx| intake::sweep_issue_labels(tx, sweep))
    }

    fn cancel(&mut self, job_id: i64, actor: &str, now: i64) -> Result<Cancelled> {
        self.write(|tx| jobs::cancel(tx, job_id, actor, now))
    }

    fn retry(
        &mut self,
        job_id: i64,
        stage: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<Retried> {
        self.write(|tx| jobs::retry(tx, job_id, stage, actor, now))
    }

    fn make_due(&mut self, job_id: i64, actor: &str, now: i64) -> Result<i64> {
        self.write(|tx| jobs::make_due(tx, job_id, actor, now))
    }

    fn raise_budget(&mut self, raise: &BudgetRaise) -> Result<Raised> {
        self.write(|tx| budget::raise(tx, raise))
    }

    fn start_run(&mut self, new: &NewRun) -> Result<StartedRun> {
        self.write(|tx| runs::start(tx, new))
    }

    fn record_agent_start(
        &mut self,
        run_id: i64,
        start: &mut dyn FnMut() -> Option<Proc>,
    ) -> Result<()> {
        self.write(|tx| match start() {
            Some(agent) => runs::record_agent(tx, run_id, agent),
            None => Ok(()),
        })
    }

    fn end_run(&mut self, run_id: i64, end: &RunEnd) -> Result<()> {
        self.write(|tx| runs::end(tx, run_id, end))
    }

    fn lock_finalize(&mut self, lock: &FinalizeLock) -> Result<Locked> {
        self.write(|tx| finalize::lock(tx, lock))
    }

    fn unlock_finalize(&mut self, run_id: i64, holder: &str) -> Result<()> {
        self.write(|tx| finalize::unlock(tx, run_id, holder))
    }

    fn apply_finalize(&mut self, plan: &FinalizePlan) -> Result<Applied> {
        self.write(|tx| finalize::apply(tx, plan))
    }

    fn queue(&mut self, message: &Message, now: i64) -> Result<i64> {
        self.write(|tx| outbox::queue(tx, message, now))
    }

    fn claim_message(&mut self, request: &ClaimMessage) -> Result<Option<Claimed>> {
        self.write(|tx| outbox::claim(tx, request))
    }

    fn finish_message(
        &mut self,
        id: i64,
        claimer: &str,
        finish: &Finish,
        now: i64,
    ) -> Result<Option<OutboxState>> {
        self.write(|tx| outbox::finish(tx, id, claimer, finish, now))
    }

    fn note_waiting(&mut self, kind: MessageKind, why: &str) -> Result<i64> {
        self.write(|tx| outbox::note_waiting(tx, kind, why))
    }

    fn retry_dead(&mut self, now: i64) -> Result<usize> {
        self.write(|tx| outbox::retry_dead(tx, now))
    }

    fn preflight_state(&self, host: &str, agent: &str) -> Result<PreflightState> {
        self.get(|conn| preflight::state(conn, host, agent))
    }

    fn save_preflight(&mut self, host: &str, agent: &str, verdict: &CachedVerdict) -> Result<()> {
        self.write(|tx| preflight::save(tx, host, agent, verdict))
    }

    fn hold_auth_gate(&mut self, gate: &GateHold, now: i64) -> Result<bool> {
        self.write(|tx| preflight::hold_gate(tx, gate, now))
    }

    fn release_auth_gate(&mut self, host: &str, agent: &str, held_since: i64) -> Result<bool> {
        self.write(|tx| preflight::release_gate(tx, host, agent, held_since))
    }

    fn release_invocation_hold(
        &mut self,
        host: &str,
        agent: &str,
        held_since: i64,
    ) -> Result<bool> {
        self.write(|tx| preflight::release_invocation(tx, host, agent, held_since))
    }

    fn reset_preflight(&mut self, host: &str, agent: Option<&str>) -> Result<Reset> {
        self.write(|tx| preflight::reset(tx, host, agent))
    }

    fn held_hosts(&self, now: i64) -> Result<Vec<String>> {
        self.get(|db| preflight::held_hosts(db, now))
    }

    fn cached_agent_version(&self, host: &str, agent: &str) -> Result<Option<String>> {
        self.get(|conn| preflight::cached_agent_version(conn, host, agent))
    }

    fn breakers(&self, now: i64) -> Result<Vec<BreakerRow>> {
        self.get(|conn| breaker::rows(conn, None, now))
    }

    fn breaker(&self, agent: &str) -> Result<Breaker> {
        self.get(|conn| breaker::of(conn, agent))
    }

    fn close_breakers(&mut self, agent: Option<&str>) -> Result<usize> {
        self.write(|tx| breaker::close(tx, agent))
    }

    fn job(&self, job_id: i64) -> Result<Option<Job>> {
        self.get(|conn| jobs::job(conn, job_id))
    }

    fn task_body(&self, task_id: i64) -> Result<String> {
        self.get(|conn| listing::task_body(conn, task_id))
    }

    fn history(&self, job_id: i64) -> Result<Vec<HistoryEntry>> {
        self.get(|conn| listing::history(conn, job_id))
    }

    fn runs_for_job(&self, job_id: i64) -> Result<Vec<Run>> {
        self.get(|conn| runs::of_job(conn, job_id))
    }

    fn run(&self, run_id: i64) -> Result<Option<Run>> {
        self.get(|conn| runs::run(conn, run_id))
    }

    fn run_log(&self, run_id: i64) -> Result<Option<StoredLog>> {
        self.get(|conn| logs::get(conn, run_id))
    }

    fn run_closed(&self, run_id: i64) -> Result<bool> {
        self.get(|conn| runs::closed(conn, run_id))
    }

    fn last_ok_result(&self, task_id: i64, stage: &str) -> Result<Option<PreviousResult>> {
        self.get(|conn| runs::last_ok_result(conn, task_id, stage))
    }

    fn unfinalized_runs(&self, worker: Option<&str>, limit: i64) -> Result<Vec<Unfinalized>> {
        self.get(|conn| finalize::unfinalized(conn, worker, limit))
    }

    fn state_counts(&self) -> Result<Vec<StateCount>> {
        self.get(listing::state_counts)
    }

    fn jobs_in_state(&self, state: JobState, limit: i64) -> Result<Vec<Job>> {
        self.get(|conn| listing::jobs_in_state(conn, state, limit))
    }

    fn stranded_jobs(&self, stages: &[&str], limit: i64) -> Result<Vec<Job>> {
        self.get(|conn| listing::stranded(conn, stages, limit))
    }

    fn pending_retries(&self, now: i64, limit: i64) -> Result<Vec<Job>> {
        self.get(|conn| listing::pending_retries(conn, now, limit))
    }

    fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.get(|conn| listing::list_jobs(conn, filter))
    }

    fn tasks_by_key(&self, key: &str) -> Result<Vec<Task>> {
        self.get(|conn| listing::tasks_by_key(conn, key))
    }

    fn jobs_of_task(&self, task_id: i64) -> Result<Vec<Job>> {
        self.get(|conn| listing::jobs_of_task(conn, task_id))
    }

    fn project_holds(&self) -> Result<Vec<ProjectHold>> {
        self.get(holds::all)
    }

    fn project_spends(&self, projects: &[&str], day_start: i64) -> Result<Vec<ProjectSpend>> {
        self.get(|conn| budget::spends(conn, projects, day_start))
    }

    fn outbox_summary(&self, now: i64, limit: i64) -> Result<OutboxSummary> {
        self.read(|conn| outbox::summary(conn, now, limit))
    }

    fn comments(&self) -> Result<Vec<(i64, NewComment)>> {
        self.get(outbox::comments)
    }

    fn metrics(&self, host: &str, now: i64) -> Result<MetricsFacts> {
        self.read(|conn| metrics::facts(conn, host, now))
    }

    fn task(&self, task_id: i64) -> Result<Option<Task>> {
        self.get(|conn| branches::task(conn, task_id))
    }

    fn claim_branch(&mut self, claim: &BranchClaim) -> Result<BranchClaimed> {
        self.write(|tx| branches::claim_branch(tx, claim))
    }

    fn record_worktree(&mut self, record: &WorktreeRecord) -> Result<()> {
        self.write(|tx| branches::record_worktree(tx, record))
    }

    fn record_branch(&mut self, update: &BranchUpdate) -> Result<BranchRecorded> {
        self.write(|tx| branches::record_branch(tx, update))
    }

    fn unpushed_branches(&self, host: &str, limit: i64) -> Result<Vec<Task>> {
        self.get(|conn| branches::unpushed(conn, host, limit))
    }

    fn worktrees(&self, host: &str) -> Result<Vec<Task>> {
        self.get(|conn| branches::worktrees(conn, host))
    }

    fn worktree_usage(&self, host: &str) -> Result<Vec<WorktreeUsage>> {
        self.get(|conn| branches::usage(conn, host))
    }

    fn pull_request_facts(&self, task_id: i64) -> Result<Option<PullRequestFacts>> {
        self.read(|conn| branches::facts(conn, task_id))
    }

    fn settle_pull_request(
        &mut self,
        message_id: i64,
        claimer: &str,
        settled: &PullRequestSettled,
        now: i64,
    ) -> Result<Option<OutboxState>> {
        self.write(|tx| branches::settle_pull_request(tx, message_id, claimer, settled, now))
    }

    fn prune_batch(&mut self, batch: &PruneBatch) -> Result<PrunedBatch> {
        self.bulk_write(|tx| retention::prune(tx, batch))
    }

    fn preview_prune(&self, batch: &PruneBatch) -> Result<PrunedBatch> {
        self.read(|conn| retention::preview(conn, batch))
    }

    fn sweep_outbox(&mut self, sweep: &OutboxSweep) -> Result<Swept> {
        if sweep.dry_run {
            // A transaction that is rolled back is the one way to share the statement: it
            // removes nothing either way, and a read does not take the write lock.
            return self.rolled_back(|tx| retention::sweep_outbox(tx, sweep));
        }
        self.bulk_write(|tx| retention::sweep_outbox(tx, sweep))
    }

    fn trash(&self, host: &str, limit: i64) -> Result<Vec<TrashItem>> {
        self.get(|conn| retention::trash(conn, host, limit))
    }

    fn empty_trash(&mut self, ids: &[i64]) -> Result<()> {
        self.bulk_write(|tx| retention::empty_trash(tx, ids))
    }

    fn trash_in_use(&self, item: &TrashItem) -> Result<bool> {
        self.get(|conn| retention::trash_in_use(conn, item))
    }

    fn storage(&self) -> Result<Storage> {
        self.get(retention::storage)
    }

    fn release_pages(&mut self, pages: i64) -> Result<i64> {
        self.bulk_write(|tx| retention::release_pages(tx, pages))
    }

    fn checkpoint(&mut self) -> Result<()> {
        Backend::checkpoint(self)
    }

    fn take_turn(&mut self, turn: &Turn) -> Result<bool> {
        // Most ticks find it is not due: a read, not the write lock.
        if !self.get(|conn| retention::turn_is_due(conn, turn))? {
            return Ok(false);
        }
        self.write(|tx| retention::take_turn(tx, turn))
    }

    fn end_turn(&mut self, name: &str, holder: &str, done: bool, now: i64) -> Result<()> {
        self.write(|tx| retention::end_turn(tx, name, holder, done, now))
    }

    fn turn_done_at(&self, name: &str) -> Result<Option<i64>> {
        self.get(|conn| retention::turn_done_at(conn, name))
    }

    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>> {
        self.read(|conn| usage::report(conn, query))
    }

    fn copy_tables(&self) -> &'static [CopyTable] {
        copy::TABLES
    }

    fn copy_count(&self, table: &str) -> Result<i64> {
        self.get(|db| copy::count(db, table))
    }

    fn copy_rows(&self, table: &str, after: i64, limit: i64) -> Result<TableRows> {
        self.read(|db| copy::rows(db, table, after, limit))
    }

    fn copy_insert(&mut self, table: &str, rows: &TableRows, first: bool) -> Result<()> {
        self.bulk_write(|db| copy::insert(db, table, rows, first))
    }

    fn copy_finish(&mut self) -> Result<()> {
        self.write(copy::finish)
    }
}

/// Turn an SQLite failure somewhere in `err` into a message an operator can act on.
fn with_hint(err: anyhow::Error, path: &Path, busy_timeout_ms: u64) -> anyhow::Error {
    let sqlite = super::sql::Error::find(&err, super::sql::Error::sqlite)
        .and_then(|e| e.sqlite_error_code());
    match sqlite.and_then(|code| friendly(code, path, busy_timeout_ms)) {
        Some(message) => err.context(message),
        None => err,
    }
}

/// Whether `err` is SQLite's "busy" or "locked".
fn is_busy(err: &anyhow::Error) -> bool {
    super::sql::Error::find(err, super::sql::Error::sqlite)
        .and_then(|e| e.sqlite_error_code())
        .is_some_and(|code| matches!(code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn explain(err: rusqlite::Error, path: &Path, busy_timeout_ms: u64) -> anyhow::Error {
    let message = err
        .sqlite_error_code()
        .and_then(|code| friendly(code, path, busy_timeout_ms));
    match message {
        Some(message) => anyhow::Error::new(err).context(message),
        None => anyhow::Error::new(err),
    }
}

fn friendly(code: ErrorCode, path: &Path, busy_timeout_ms: u64) -> Option<String> {
    let path = path.display();
    Some(match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => format!(
            "database is busy: another process held {path} longer than busy_timeout_ms ({busy_timeout_ms} ms); nothing was written"
        ),
        ErrorCode::ReadOnly => format!("database {path} is read-only (check the file's and its directory's permissions); nothing was written"),
        ErrorCode::NotADatabase => format!("{path} is not an SQLite database"),
        ErrorCode::DatabaseCorrupt => format!("the database {path} is corrupt"),
        ErrorCode::DiskFull => format!("the disk holding {path} is full; nothing was written"),
        ErrorCode::CannotOpen => format!("cannot open the database {path} (does its directory exist and is it writable?)"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
