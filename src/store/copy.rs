//! Copying a whole queue between databases (`orch db copy`): what the store's copy operations
//! take and return.

use super::sql::Value;

/// A table a copy carries, and how its rows are read in order.
#[derive(Debug, Clone, Copy)]
pub struct CopyTable {
    pub name: &'static str,
    /// None: read in pages by `key`; else the columns its rows are ordered by, read whole.
    pub order: Option<&'static str>,
    /// The integer key a paged table is read in order of (`id`: an identity column).
    pub key: &'static str,
    /// Rows per page when fewer than the copy's own (a table of big rows).
    pub page: Option<i64>,
    /// Kept by triggers from the other tables (counters, the usage rollup): the source's rows
    /// replace what the triggers made as the copy went.
    pub derived: bool,
}

impl CopyTable {
    pub const fn paged(name: &'static str) -> CopyTable {
        CopyTable::paged_by(name, "id", None)
    }

    pub const fn paged_by(name: &'static str, key: &'static str, page: Option<i64>) -> CopyTable {
        CopyTable {
            name,
            order: None,
            key,
            page,
            derived: false,
        }
    }

    pub const fn whole(name: &'static str, order: &'static str) -> CopyTable {
        CopyTable {
            name,
            order: Some(order),
            key: "",
            page: None,
            derived: false,
        }
    }

    pub const fn derived(name: &'static str, order: &'static str) -> CopyTable {
        CopyTable {
            name,
            order: Some(order),
            key: "",
            page: None,
            derived: true,
        }
    }
}

/// Rows of a table, by column name.
#[derive(Debug, Clone, Default)]
pub struct TableRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl TableRows {
    /// The `key` of the last row (where the next page starts), for a paged table.
    pub fn last_key(&self, key: &str) -> Option<i64> {
        let at = self.columns.iter().position(|c| c == key)?;
        match self.rows.last()?.get(at)? {
            Value::Integer(id) => Some(*id),
            _ => None,
        }
    }
}
