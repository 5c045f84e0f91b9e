//! `orch db copy`: a whole queue from one database into an empty one, either backend to either
//! (how one host's SQLite queue becomes a fleet's PostgreSQL one). Each table is read in pages
//! from the source and written by column name into the target, parents before children; the
//! counters and the rollup are the source's. Then every table's rows are counted on both sides.

use anyhow::Result;

use crate::exit;
use crate::store::{self, CopyTable, Location, Options, Store};

/// Rows read and written per transaction.
const PAGE: i64 = 2_000;

/// A table copied and its rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub rows: i64,
}

/// Copy the queue at `from` into `to`, which must hold none. `options` says how to open both
/// (its location is not read).
pub fn copy(from: &Location, to: &Location, options: &Options) -> Result<Vec<Copied>> {
    if let Location::File(path) = from {
        // Opening a file that is not there would make an empty queue of it.
        if !path.exists() {
            return Err(exit::usage(format!(
                "--from {}: no such database",
                path.display()
            )));
        }
    }
    let open = |location: &Location| {
        store::open(&Options {
            location,
            ..*options
        })
    };
    let source = open(from)?;
    let mut target = open(to)?;
    let tables = source.copy_tables();
    for table in tables.iter().filter(|t| !t.derived) {
        let rows = target.copy_count(table.name)?;
        if rows > 0 {
            return Err(exit::usage(format!(
                "--to {to}: the database holds {rows} row(s) of {}; orch db copy fills an empty \
                 database only (nothing was written)",
                table.name
            )));
        }
    }
    for table in tables {
        copy_table(&*source, &mut *target, table)?;
    }
    target.copy_finish()?;
    let mut copied = Vec::new();
    for table in tables {
        let (had, has) = (
            source.copy_count(table.name)?,
            target.copy_count(table.name)?,
        );
        anyhow::ensure!(
            had == has,
            "{} holds {had} row(s) in {from} but {has} in {to} after the copy: was a worker \
             writing to the source? Stop them, empty the target and copy again",
            table.name
        );
        copied.push(Copied {
            table: table.name,
            rows: has,
        });
    }
    Ok(copied)
}

fn copy_table(source: &dyn Store, target: &mut dyn Store, table: &CopyTable) -> Result<()> {
    let paged = table.order.is_none();
    let page = table.page.unwrap_or(PAGE).min(PAGE);
    let mut after = 0;
    let mut first = true;
    loop {
        let rows = source.copy_rows(table.name, after, page)?;
        if rows.rows.is_empty() && !first {
            return Ok(());
        }
        target.copy_insert(table.name, &rows, first)?;
        first = false;
        match rows.last_key(table.key) {
            Some(last) if paged && rows.rows.len() as i64 == page => after = last,
            _ => return Ok(()),
        }
    }
}
