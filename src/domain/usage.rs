//! The cost report's vocabulary: what it groups by, its UTC days, and how rows of one group and
//! class are folded into one line with a count per class.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use chrono::NaiveDate;
use serde::Serialize;

/// A day as the rollup keys it: days since 1970-01-01, UTC.
pub const DAY_MS: i64 = 86_400_000;

/// The class of runs not finalized yet (the same word `orch metrics` uses).
pub const UNJUDGED: &str = "unjudged";

/// What `orch usage --by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dim {
    Project,
    Task,
    Stage,
    Day,
    Agent,
    Worker,
}

impl Dim {
    pub const ALL: &'static [Dim] = &[
        Dim::Project,
        Dim::Stage,
        Dim::Task,
        Dim::Day,
        Dim::Agent,
        Dim::Worker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dim::Project => "project",
            Dim::Task => "task",
            Dim::Stage => "stage",
            Dim::Day => "day",
            Dim::Agent => "agent",
            Dim::Worker => "worker",
        }
    }

    pub fn from_name(name: &str) -> Option<Dim> {
        Dim::ALL.iter().copied().find(|d| d.name() == name)
    }
}

/// `--by` as given (each value may hold several names, comma-separated), in the order given,
/// without repeats; a task is named within its project, so `task` brings `project` in before
/// it. Empty: by project.
pub fn parse_dims(values: &[String]) -> Result<Vec<Dim>, String> {
    let mut dims = Vec::new();
    for name in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        let dim = Dim::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Dim::ALL.iter().map(|d| d.name()).collect();
            format!("unknown grouping {name:?} (expected {})", names.join(", "))
        })?;
        if dim == Dim::Task && !dims.contains(&Dim::Project) {
            dims.push(Dim::Project);
        }
        if !dims.contains(&dim) {
            dims.push(dim);
        }
    }
    if dims.is_empty() {
        dims.push(Dim::Project);
    }
    Ok(dims)
}

/// `YYYY-MM-DD` as a UTC day number.
pub fn parse_day(text: &str) -> Result<i64, String> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("expected a date as YYYY-MM-DD (UTC), got {text:?}"))?;
    Ok((date - epoch()).num_days())
}

/// A UTC day number as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    epoch()
        .checked_add_signed(chrono::Duration::days(day))
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The UTC day an epoch-millisecond time falls on.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

/// What runs cost and did, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sums {
    pub runs: i64,
    /// The runs whose cost is known (their log, or a price table, gave one): `cost_usd` is theirs.
    /// The others' cost is unknown, never 0.
    pub priced_runs: i64,
    pub cost_usd: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub turns: i64,
    pub wall_ms: i64,
}

impl Sums {
    /// The cost as a report shows it: None when no run's cost is known.
    pub fn known_cost(&self) -> Option<f64> {
        (self.priced_runs > 0 || self.runs == 0).then_some(self.cost_usd)
    }

    /// Runs whose cost is unknown.
    pub fn unpriced_runs(&self) -> i64 {
        self.runs - self.priced_runs
    }
}

impl AddAssign for Sums {
    fn add_assign(&mut self, other: Sums) {
        self.runs += other.runs;
        self.priced_runs += other.priced_runs;
        self.cost_usd += other.cost_usd;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.turns += other.turns;
        self.wall_ms += other.wall_ms;
    }
}

/// One group of the report: its key (one value per dimension, in the order asked), what its
/// runs summed to, and how many runs ended in each class.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub key: Vec<String>,
    pub sums: Sums,
    pub classes: BTreeMap<String, i64>,
}

/// Fold rows of (group key, class, sums), sorted by key, into one line per key; and the total.
pub fn fold(rows: impl IntoIterator<Item = (Vec<String>, String, Sums)>) -> (Vec<Line>, Line) {
    let mut lines: Vec<Line> = Vec::new();
    let mut total = Line {
        key: Vec::new(),
        sums: Sums::default(),
        classes: BTreeMap::new(),
    };
    for (key, class, sums) in rows {
        match lines.last_mut() {
            Some(line) if line.key == key => {
                line.sums += sums;
                *line.classes.entry(class.clone()).or_default() += sums.runs;
            }
            _ => lines.push(Line {
                key,
                sums,
                classes: BTreeMap::from([(class.clone(), sums.runs)]),
            }),
        }
        total.sums += sums;
        *total.classes.entry(class).or_default() += sums.runs;
    }
    (lines, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_are_parsed_in_order_and_task_brings_its_project() {
        let dims = |v: &[&str]| parse_dims(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(dims(&[]), Ok(vec![Dim::Project]));
        assert_eq!(dims(&["day,project"]), Ok(vec![Dim::Day, Dim::Project]));
        assert_eq!(
            dims(&["task", "day"]),
            Ok(vec![Dim::Project, Dim::Task, Dim::Day])
        );
        assert_eq!(dims(&["stage", "stage"]), Ok(vec![Dim::Stage]));
        assert!(dims(&["projet"])
            .unwrap_err()
            .contains("project, stage, task"));
    }

    #[test]
    fn days_are_utc_day_numbers() {
        assert_eq!(parse_day("1970-01-02"), Ok(1));
        assert_eq!(format_day(20_000), "2024-10-04");
        assert_eq!(parse_day(&format_day(20_000)), Ok(20_000));
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(-1), -1);
        assert!(parse_day("2024-13-01").is_err());
        assert!(parse_day("yesterday").unwrap_err().contains("UTC"));
    }

    #[test]
    fn rows_fold_into_lines_with_class_counts() {
        let sums = |runs, cost| Sums {
            runs,
            cost_usd: cost,
            ..Sums::default()
        };
        let k = |s: &str| vec![s.to_string()];
        let (lines, total) = fold([
            (k("a"), "ok".to_string(), sums(2, 1.0)),
            (k("a"), "timeout".to_string(), sums(1, 0.5)),
            (k("b"), "ok".to_string(), sums(3, 2.0)),
        ]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].sums.runs, 3);
        assert_eq!(
            lines[0].classes,
            BTreeMap::from([("ok".into(), 2), ("timeout".into(), 1)])
        );
        assert_eq!(total.sums.runs, 6);
        assert_eq!(total.sums.cost_usd, 3.5);
        assert_eq!(total.classes["ok"], 5);
    }
}
