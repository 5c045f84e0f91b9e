//! Budgets: how much a task may cost over all its runs, and a project in one day (UTC). Pure: the
//! store sums what was spent and asks here.

use serde::Serialize;

const DAY_MS: i64 = 24 * 3_600_000;

/// A project's budgets, from its configuration; None is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Budget {
    pub per_task_usd: Option<f64>,
    pub per_day_usd: Option<f64>,
}

impl Budget {
    pub fn is_set(&self) -> bool {
        self.per_task_usd.is_some() || self.per_day_usd.is_some()
    }
}

/// Whether `spent` has reached `limit` raised by `extra`: a run is not started then (its cost
/// is only known once it ends, so the check is before it). No limit is never reached.
pub fn reached(spent: f64, limit: Option<f64>, extra: f64) -> bool {
    limit.is_some_and(|limit| spent >= limit + extra.max(0.0))
}

/// The first millisecond of the UTC day `now` is in: a project's daily budget counts the runs
/// finalized since.
pub fn day_start(now: i64) -> i64 {
    now - now.rem_euclid(DAY_MS)
}

/// "$1.2345": costs are shown to the hundredth of a cent, as agents report them.
pub fn dollars(usd: f64) -> String {
    format!("${usd:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_reached_at_its_limit_plus_what_was_added() {
        assert!(!reached(100.0, None, 0.0));
        assert!(!reached(4.99, Some(5.0), 0.0));
        assert!(reached(5.0, Some(5.0), 0.0));
        assert!(!reached(5.0, Some(5.0), 1.0));
        assert!(reached(6.5, Some(5.0), 1.0));
        // What was added never lowers it.
        assert!(!reached(4.0, Some(5.0), -3.0));
    }

    #[test]
    fn days_start_at_utc_midnight() {
        let noon = 1_795_953_600_000; // 2026-11-29 12:00 UTC
        assert_eq!(day_start(noon), 1_795_910_400_000);
        assert_eq!(day_start(1_795_910_400_000), 1_795_910_400_000);
        assert_eq!(day_start(1_795_910_399_999), 1_795_910_400_000 - DAY_MS);
    }
}
