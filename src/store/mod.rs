//! Everything SQL. `Store::open` applies the pragmas and migrations; the submodules hold the
//! queries, one concern each. Every write runs in a `BEGIN IMMEDIATE` transaction through
//! `Store::write`, so a decision and everything it implies land together or not at all.

mod breaker;
mod finalize;
mod holds;
mod jobs;
mod listing;
mod metrics;
mod outbox;
mod preflight;
mod runs;

pub use breaker::*;
pub use finalize::*;
pub use holds::*;
pub use jobs::*;
pub use listing::*;
pub use metrics::*;
pub use outbox::*;
pub use preflight::*;
pub use runs::*;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::{exit, fsx};

/// Forward migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_preflight.sql"),
    include_str!("migrations/0003_outbox.sql"),
    include_str!("migrations/0004_breaker.sql"),
    include_str!("migrations/0005_one_agent.sql"),
];

pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_timeout_ms: u64,
}

/// Milliseconds since the Unix epoch, UTC: the only time format the database holds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Open (creating it, private to its owner, when missing) and migrate the database.
    pub fn open(path: &Path, busy_timeout_ms: u64) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsx::ensure_private_dir(dir, "database directory")?;
        }
        if !path.exists() {
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
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            busy_timeout_ms,
        };
        store.configure().map_err(|err| store.context(err))?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(Duration::from_millis(self.busy_timeout_ms))?;
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

    fn migrate(&mut self) -> Result<()> {
        let known = MIGRATIONS.len() as i64;
        let version = self.user_version()?;
        if version > known {
            return Err(self.newer_schema(version));
        }
        if version == known {
            return Ok(());
        }
        let path = self.path.clone();
        self.write(|tx| {
            // Another process may have migrated while we waited for the lock.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if version > known {
                anyhow::bail!("the schema changed under us to version {version}");
            }
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(sql).with_context(|| {
                    format!("applying migration {} to {}", index + 1, path.display())
                })?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
            Ok(())
        })
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
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        let value = f(&tx).map_err(|err| with_hint(err, &self.path, self.busy_timeout_ms))?;
        tx.commit()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        Ok(value)
    }

    /// Run `f`'s queries inside one read transaction: they all see the same snapshot of the
    /// database, whatever other processes commit meanwhile (WAL keeps readers and writers apart).
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        let value = f(self).map_err(|err| self.context(err))?;
        tx.commit()
            .map_err(|err| explain(err, &self.path, self.busy_timeout_ms))?;
        Ok(value)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn context(&self, err: anyhow::Error) -> anyhow::Error {
        with_hint(err, &self.path, self.busy_timeout_ms)
    }
}

/// A fresh database in a temporary directory (unit tests); the directory goes with the guard.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("orch.db"), 1000).unwrap();
    (dir, store)
}

/// Turn an SQLite failure somewhere in `err` into a message an operator can act on.
fn with_hint(err: anyhow::Error, path: &Path, busy_timeout_ms: u64) -> anyhow::Error {
    let sqlite = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<rusqlite::Error>())
        .and_then(|e| e.sqlite_error_code());
    match sqlite.and_then(|code| friendly(code, path, busy_timeout_ms)) {
        Some(message) => err.context(message),
        None => err,
    }
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
