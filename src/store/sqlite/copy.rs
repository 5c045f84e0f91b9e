//! Copying a whole queue from one database to another (`orch db copy`), either backend to either:
//! every table read in pages by its key and written by column name, each value made the kind
//! the target's column holds. The counters and the rollup (`DERIVED`) are kept by triggers as
//! rows arrive; the copy replaces what those made with the source's rows, which also count what
//! was pruned there.

use anyhow::Result;

use crate::store::sql::{Db, Kind, Value};
use crate::store::{CopyTable, TableRows};

/// Every table, parents before children, and how each is read in order.
pub const TABLES: &[CopyTable] = &[
    CopyTable::paged("tasks"),
    CopyTable::paged("jobs"),
    CopyTable::paged("job_history"),
    CopyTable::paged("agent_runs"),
    // Up to `log_store_max_bytes` each before compression: a few at a time.
    CopyTable::paged_by("run_logs", "run_id", Some(16)),
    CopyTable::paged("outbox"),
    CopyTable::whole("breakers", "agent"),
    CopyTable::whole("project_holds", "project, host"),
    CopyTable::whole("preflight_cache", "host, agent"),
    CopyTable::whole("auth_gate", "host, agent"),
    CopyTable::whole("project_days", "project, day"),
    CopyTable::whole("usage_holds", "host, agent"),
    CopyTable::whole("maintenance", "name"),
    CopyTable::paged("trash"),
    CopyTable::whole("pruned_branches", "project, key"),
    CopyTable::whole("invocation_holds", "host, agent"),
    CopyTable::whole("intake_issues", "project, issue"),
    CopyTable::whole("ci_gates", "job_id"),
    CopyTable::whole("approval_comments", "project, comment_id"),
    CopyTable::derived("job_counts", "project, stage, state"),
    CopyTable::derived("job_moves", "from_state, to_state"),
    CopyTable::derived("outbox_counts", "kind, state"),
    CopyTable::derived(
        "usage_rollup",
        "task, day, project, stage, agent, worker, class",
    ),
    CopyTable::derived("run_counts", "name"),
];

/// The table of that name in `TABLES` (the names are orch's own, never a user's).
fn table(name: &str) -> Result<&'static CopyTable> {
    TABLES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| anyhow::anyhow!("no table {name} to copy"))
}

/// The table's columns and the kind each holds.
fn columns(db: &Db, name: &str) -> Result<Vec<(String, Kind)>> {
    let kind = |declared: &str| {
        let declared = declared.to_ascii_lowercase();
        if declared.contains("int") {
            Kind::Integer
        } else if declared.contains("real") || declared.contains("double") {
            Kind::Real
        } else if declared.contains("blob") || declared.contains("bytea") {
            Kind::Blob
        } else {
            Kind::Text
        }
    };
    let sql = if db.is_postgres() {
        "SELECT column_name AS name, data_type AS type FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position"
    } else {
        "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid"
    };
    let columns = db
        .prepare(sql)?
        .query_map([name], |row| {
            let (name, declared): (String, String) = (row.get("name")?, row.get("type")?);
            Ok((name, kind(&declared)))
        })?
        .collect::<crate::store::sql::Result<Vec<_>>>()?;
    anyhow::ensure!(!columns.is_empty(), "the database has no table {name}");
    Ok(columns)
}

pub(super) fn count(db: &Db, name: &str) -> Result<i64> {
    let table = table(name)?;
    Ok(
        db.query_row(&format!("SELECT count(*) FROM {}", table.name), (), |row| {
            row.get(0)
        })?,
    )
}

/// At most `limit` rows of the table after key `after` (a paged table), or all of it.
pub(super) fn rows(db: &Db, name: &str, after: i64, limit: i64) -> Result<TableRows> {
    let table = table(name)?;
    let columns = columns(db, table.name)?;
    let list = columns
        .iter()
        .map(|(c, _)| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let read = |row: &crate::store::sql::Row| {
        (0..columns.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<crate::store::sql::Result<Vec<Value>>>()
    };
    let rows = match table.order {
        None => db
            .prepare(&format!(
                "SELECT {list} FROM {0} WHERE {1} > ?1 ORDER BY {1} LIMIT ?2",
                table.name, table.key
            ))?
            .query_map([after, limit], read)?
            .collect::<crate::store::sql::Result<Vec<_>>>()?,
        // A table of a few rows a key (agents, hosts, projects, days), read whole.
        Some(order) => db
            .prepare(&format!(
                "SELECT {list} FROM {} ORDER BY {order}",
                table.name
            ))?
            .query_map((), read)?
            .collect::<crate::store::sql::Result<Vec<_>>>()?,
    };
    Ok(TableRows {
        columns: columns.into_iter().map(|(c, _)| c).collect(),
        rows,
    })
}

/// Write `rows` into the table, each value the kind of the target's column; a derived table's
/// rows replace what its triggers made.
pub(super) fn insert(db: &Db, name: &str, rows: &TableRows, first: bool) -> Result<()> {
    let table = table(name)?;
    if table.derived && first {
        db.execute(&format!("DELETE FROM {}", table.name), ())?;
    }
    let target = columns(db, table.name)?;
    let kinds: Vec<Kind> = rows
        .columns
        .iter()
        .map(|c| {
            target
                .iter()
                .find(|(t, _)| t == c)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| anyhow::anyhow!("the target's {} has no column {c}", table.name))
        })
        .collect::<Result<_>>()?;
    let marks = (1..=rows.columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        table.name,
        rows.columns.join(", ")
    );
    let mut stmt = db.prepare(&sql)?;
    for row in &rows.rows {
        let values: Vec<Value> = row
            .iter()
            .zip(&kinds)
            .map(|(value, kind)| as_kind(value, *kind))
            .collect();
        stmt.execute(values.as_slice())?;
    }
    Ok(())
}

/// After a copy: ids made from here on follow the copied ones (PostgreSQL's identity
/// sequences; SQLite takes the largest id by itself).
pub(super) fn finish(db: &Db) -> Result<()> {
    if !db.is_postgres() {
        return Ok(());
    }
    for table in TABLES.iter().filter(|t| t.order.is_none() && t.key == "id") {
        db.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce(max(id), 0) + 1, false) FROM {0}",
                table.name
            ),
            (),
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// A value as the kind a column holds: a null typed for it, an integer where a real goes.
fn as_kind(value: &Value, kind: Kind) -> Value {
    match (value, kind) {
        (Value::Null(_), kind) => Value::Null(kind),
        (Value::Integer(n), Kind::Real) => Value::Real(*n as f64),
        (value, _) => value.clone(),
    }
}
