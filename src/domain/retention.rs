//! Retention: what is old enough to remove, what must be left alone, and how big each step of
//! the removal may be. `orch prune` (app/prune.rs) gathers the facts and the store applies the
//! bounds this module computes; nothing here touches a database or a file.

use std::time::Duration;

/// The longest a run can go on writing its log: the longest run timeout a stage may have (a
/// week) and the longest kill grace after it (an hour). A run that has not ended and started
/// longer ago than this has no supervisor left: its log is not being written.
pub const LONGEST_RUN_MS: i64 = (7 * 24 + 1) * 3_600_000;

/// How long the fleet's prune turn is held beyond the work it plans to do, so that a pruner
/// that died lets the turn go.
pub const TURN_MARGIN_MS: i64 = 10 * 60_000;

/// The name of the fleet's shared prune turn (`Store::take_turn`).
pub const PRUNE_TURN: &str = "prune";

/// The bounds of one prune, computed once at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Tasks that finished (were last updated) before this are removed.
    pub finished_before: i64,
    /// A task one of whose runs has not ended and started at or after this may still be writing
    /// that run's log: it is kept.
    pub open_runs_since: i64,
}

/// The bounds for removing what finished longer than `older_than_ms` before `now`.
pub fn cutoffs(now: i64, older_than_ms: i64) -> Cutoffs {
    Cutoffs {
        finished_before: now.saturating_sub(older_than_ms.max(0)),
        open_runs_since: now.saturating_sub(LONGEST_RUN_MS),
    }
}

/// `--older-than`: a whole number with a unit, `s`, `m` (minutes), `h`, `d` or `w`
/// ("90d", "36h"); milliseconds. The error says what was expected.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit_ms: i64 = match unit.trim() {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => 0,
    };
    let amount: i64 = digits.parse().unwrap_or(-1);
    match amount.checked_mul(unit_ms) {
        Some(ms) if amount >= 0 && unit_ms > 0 => Ok(ms),
        _ => Err(format!(
            "expected a whole number and a unit (s, m, h, d or w), e.g. 90d or 36h; got {text:?}"
        )),
    }
}

/// Whether the fleet's turn at a housekeeping job is due: it was last done `every_ms` or longer
/// ago (or never), and nobody holds it now.
pub fn turn_due(
    last_done_at: Option<i64>,
    held_until: Option<i64>,
    every_ms: i64,
    now: i64,
) -> bool {
    let done_long_ago = last_done_at.is_none_or(|at| at <= now.saturating_sub(every_ms));
    let free = held_until.is_none_or(|until| until <= now);
    done_long_ago && free
}

/// A log file orch names for a run: `job-J-run-R.log`. Prune removes nothing else from the log
/// directory, whatever a row says.
pub fn is_run_log_name(name: &str) -> bool {
    run_log_ids(name).is_some()
}

/// The job and run ids a run log's name holds (`job-J-run-R.log`).
pub fn run_log_ids(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_prefix("job-")?.strip_suffix(".log")?;
    let (job, run) = rest.split_once("-run-")?;
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    Some((number(job)?, number(run)?))
}

/// A task key or project name usable as one directory name under an orch-owned root: one
/// normal path component, nothing that climbs out or hides.
pub fn is_plain_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

/// How much each step of a prune takes (tasks in a batch, pages handed back), so that each
/// step's transaction holds the write lock for about `target`: the size shrinks at once after a
/// slow step and grows by half after a fast one. Between steps the pruner pauses as long as the
/// step took, so a claim waiting for the lock gets it.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    pub size: i64,
    pub max: i64,
    pub target: Duration,
}

impl Pacer {
    /// Tasks per batch at first (a task is some six jobs with their history and runs).
    pub const TASKS: (i64, i64) = (50, 2000);
    /// Free pages handed back per step at first, and at most.
    pub const PAGES: (i64, i64) = (256, 65_536);

    /// A pacer starting at `first`, never above `max`.
    pub fn new((first, max): (i64, i64), target: Duration) -> Pacer {
        Pacer {
            size: first,
            max,
            target,
        }
    }

    /// After a step of `self.size` took `took`: the next size.
    pub fn next(&mut self, took: Duration) -> i64 {
        let target = self.target.as_secs_f64().max(1e-6);
        let took = took.as_secs_f64();
        let size = self.size as f64;
        let next = if took > target {
            // Down to the target at once: a slow step is what the pacing is there to prevent.
            size * (target / took) * 0.9
        } else if took < target / 2.0 {
            size * 1.5
        } else {
            size
        };
        self.size = (next as i64).clamp(1, self.max);
        self.size
    }

    /// The pause after a step that took `took`: as long again, at most a second.
    pub fn pause(took: Duration) -> Duration {
        took.min(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_a_unit() {
        assert_eq!(parse_age("90d"), Ok(90 * 86_400_000));
        assert_eq!(parse_age("36h"), Ok(36 * 3_600_000));
        assert_eq!(parse_age("15m"), Ok(15 * 60_000));
        assert_eq!(parse_age("0s"), Ok(0));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400_000));
        for bad in [
            "",
            "90",
            "d",
            "-1d",
            "1.5d",
            "1y",
            "99999999999999999d",
            "1 d x",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
        assert!(parse_age("9x").unwrap_err().contains("e.g. 90d"));
    }

    #[test]
    fn cutoffs_keep_runs_that_may_still_write() {
        let now = 1_000 * 86_400_000;
        let c = cutoffs(now, 90 * 86_400_000);
        assert_eq!(c.finished_before, now - 90 * 86_400_000);
        assert_eq!(c.open_runs_since, now - LONGEST_RUN_MS);
        assert_eq!(cutoffs(now, -5).finished_before, now);
    }

    #[test]
    fn a_turn_is_due_when_done_long_ago_and_free() {
        let hour = 3_600_000;
        let now = 100 * hour;
        assert!(turn_due(None, None, 24 * hour, now));
        assert!(turn_due(Some(now - 24 * hour), None, 24 * hour, now));
        assert!(!turn_due(Some(now - 23 * hour), None, 24 * hour, now));
        assert!(!turn_due(None, Some(now + 1), 24 * hour, now), "held");
        assert!(
            turn_due(None, Some(now), 24 * hour, now),
            "its holder's time ran out"
        );
    }

    #[test]
    fn only_run_log_names_are_removable() {
        assert!(is_run_log_name("job-12-run-345.log"));
        for bad in [
            "job-12-run-345.log.bak",
            "tick-w1.lock",
            "job--run-1.log",
            "job-1-run-.log",
            "job-a-run-1.log",
            "../job-1-run-1.log",
            "job-1-run-1-run-2.log",
        ] {
            assert!(!is_run_log_name(bad), "{bad}");
        }
    }

    #[test]
    fn plain_components_do_not_climb() {
        assert!(is_plain_component("ORCH-44"));
        for bad in ["", ".", "..", ".git", "a/b", "a\\b", "x\0"] {
            assert!(!is_plain_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_pacer_shrinks_at_once_and_grows_slowly() {
        let mut pacer = Pacer::new(Pacer::TASKS, Duration::from_millis(50));
        assert_eq!(pacer.size, 50);
        assert_eq!(pacer.next(Duration::from_millis(10)), 75);
        assert_eq!(pacer.next(Duration::from_millis(40)), 75, "near the target");
        assert_eq!(pacer.next(Duration::from_millis(150)), 22);
        for _ in 0..100 {
            pacer.next(Duration::from_millis(1));
        }
        assert_eq!(pacer.size, Pacer::TASKS.1);
        pacer.size = 1;
        assert_eq!(pacer.next(Duration::from_secs(10)), 1, "never below one");
        assert_eq!(Pacer::pause(Duration::from_secs(5)), Duration::from_secs(1));
    }
}
