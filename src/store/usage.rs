//! The cost report's query and rows (`orch usage`).

use crate::domain::usage::{Dim, Sums};

/// Runs that started on a UTC day from `since_day` to `until_day` (inclusive; None: no bound),
/// grouped by `by`.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub since_day: Option<i64>,
    pub until_day: Option<i64>,
    pub by: Vec<Dim>,
}

/// One group and class of the report: the value of each dimension asked for, in the order
/// asked (a day as its UTC day number), the class, and what those runs summed to. Rows come
/// sorted by key, then class.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub key: Vec<UsageKey>,
    pub class: String,
    pub sums: Sums,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UsageKey {
    Text(String),
    Day(i64),
}
