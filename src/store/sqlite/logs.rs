//! The runs' logs kept in the database (`run_logs`, compressed): written at finalize, read by
//! `orch logs` where the file is not, removed with their runs by a prune.

use anyhow::Result;

use crate::store::sql::{params, Db, OptionalExtension};
use crate::store::StoredLog;

/// Keep `log` as run `run_id`'s (replacing a copy stored before).
pub(super) fn save(tx: &Db, run_id: i64, log: &StoredLog, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO run_logs (run_id, bytes, kept_from, encoding, data, stored_at)
         VALUES (?1, ?2, ?3, 'gzip', ?4, ?5)
         ON CONFLICT (run_id) DO UPDATE SET bytes = excluded.bytes,
                kept_from = excluded.kept_from, encoding = excluded.encoding,
                data = excluded.data, stored_at = excluded.stored_at",
    )?
    .execute(params![run_id, log.bytes, log.kept_from, log.data, now])?;
    Ok(())
}

pub(super) fn get(conn: &Db, run_id: i64) -> Result<Option<StoredLog>> {
    Ok(conn
        .prepare_cached("SELECT bytes, kept_from, data FROM run_logs WHERE run_id = ?1")?
        .query_row([run_id], |row| {
            Ok(StoredLog {
                bytes: row.get("bytes")?,
                kept_from: row.get("kept_from")?,
                data: row.get("data")?,
            })
        })
        .optional()?)
}
