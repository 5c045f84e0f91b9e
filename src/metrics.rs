//! The queue's state as Prometheus metrics, in the text exposition format 0.0.4 that
//! node_exporter's textfile collector reads.
//!
//! Each family is one entry of `FAMILIES`: a name, a type, a help text and the function that
//! reads its samples. Series a dashboard or an alert expects (every job state of every stage,
//! every verdict class, every outbox state, every configured project) are present at zero, so
//! they do not vanish while nothing happens.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::domain::breaker::State as BreakerState;
use crate::domain::states::{JobState, MessageKind, OutboxState};
use crate::domain::verdict::CLASSES;
use crate::store::{MetricsFacts, Store, UsageTotals};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Counter,
    Gauge,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        }
    }
}

/// One metric family with its samples, ready to print.
#[derive(Debug, Clone, Serialize)]
pub struct Family {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: Type,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub labels: BTreeMap<&'static str, String>,
    pub value: f64,
}

impl Sample {
    fn new(labels: &[(&'static str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        }
    }
}

/// Everything the families are made from, read in one snapshot of the database.
pub struct Snapshot<'a> {
    pub config: &'a Config,
    pub now_ms: i64,
    pub facts: MetricsFacts,
}

impl Snapshot<'_> {
    /// Read everything in one snapshot of the store, so the families agree with each other.
    /// Preflight verdicts and gates are this host's.
    pub fn read<'a>(store: &dyn Store, config: &'a Config, now_ms: i64) -> Result<Snapshot<'a>> {
        Ok(Snapshot {
            config,
            now_ms,
            facts: store.metrics(&config.host(), now_ms)?,
        })
    }
}

struct Spec {
    name: &'static str,
    kind: Type,
    help: &'static str,
    samples: fn(&Snapshot) -> Vec<Sample>,
}

/// Every family, in the order they are printed. Adding one is adding an entry here (and, when
/// it needs data, a query in `store/metrics.rs`).
const FAMILIES: &[Spec] = &[
    Spec {
        name: "orch_breaker_state",
        kind: Type::Gauge,
        help: "1 for the state each agent's circuit breaker is in now (closed, open, half_open), 0 for the others.",
        samples: breaker_state,
    },
    Spec {
        name: "orch_breaker_consecutive_failures",
        kind: Type::Gauge,
        help: "Consecutive transient failures counted by each agent's circuit breaker.",
        samples: breaker_failures,
    },
    Spec {
        name: "orch_jobs",
        kind: Type::Gauge,
        help: "Jobs by project, pipeline stage and state.",
        samples: jobs,
    },
    Spec {
        name: "orch_runs_total",
        kind: Type::Counter,
        help: "Agent runs by verdict class (unjudged: not finalized yet).",
        samples: runs,
    },
    Spec {
        name: "orch_retries_total",
        kind: Type::Counter,
        help: "Times a running job went back to the queue to be tried again (transient failure, expired lease).",
        samples: retries,
    },
    Spec {
        name: "orch_cost_usd_total",
        kind: Type::Counter,
        help: "Agent cost in US dollars by project, as the agent reported it or a price table estimated it; runs of unknown cost add nothing (orch usage counts them).",
        samples: cost,
    },
    Spec {
        name: "orch_tokens_total",
        kind: Type::Counter,
        help: "Agent tokens by project and kind (input, output, cache_read, cache_write).",
        samples: tokens,
    },
    Spec {
        name: "orch_preflight_ok",
        kind: Type::Gauge,
        help: "1 when the agent's cached preflight verdict passed, 0 when it failed.",
        samples: preflight_ok,
    },
    Spec {
        name: "orch_preflight_age_seconds",
        kind: Type::Gauge,
        help: "Age of the agent's cached preflight verdict.",
        samples: preflight_age,
    },
    Spec {
        name: "orch_auth_gate_held",
        kind: Type::Gauge,
        help: "1 while a run's auth failure holds the agent's gate shut (until re-login or orch reset-cache).",
        samples: auth_gate,
    },
    Spec {
        name: "orch_usage_hold_seconds",
        kind: Type::Gauge,
        help: "Seconds until the agent's usage hold on this host lifts (its usage limit resets); 0 when not held.",
        samples: usage_hold,
    },
    Spec {
        name: "orch_resumed_runs_total",
        kind: Type::Counter,
        help: "Runs that continued the session of an earlier run cut short (timeout, stall, turn or usage limit, lost lease).",
        samples: resumed,
    },
    Spec {
        name: "orch_cost_today_usd",
        kind: Type::Gauge,
        help: "What each project's runs finalized today (UTC) cost, in US dollars.",
        samples: cost_today,
    },
    Spec {
        name: "orch_budget_per_day_usd",
        kind: Type::Gauge,
        help: "Each project's daily budget (max_cost_usd_per_day), for projects that have one.",
        samples: budget_per_day,
    },
    Spec {
        name: "orch_outbox_messages",
        kind: Type::Gauge,
        help: "Outbox messages (Telegram alerts, forge comments) by kind and state; dead ones gave up.",
        samples: outbox,
    },
    Spec {
        name: "orch_outbox_oldest_pending_age_seconds",
        kind: Type::Gauge,
        help: "Age of the oldest message waiting in the outbox (0 when none waits).",
        samples: outbox_oldest,
    },
    Spec {
        name: "orch_oldest_queued_age_seconds",
        kind: Type::Gauge,
        help: "How long the longest-waiting due job has waited for a worker (0 when none is due).",
        samples: oldest_queued,
    },
    Spec {
        name: "orch_worktrees",
        kind: Type::Gauge,
        help: "Task worktrees kept on this host, by project.",
        samples: worktree_count,
    },
    Spec {
        name: "orch_worktree_bytes",
        kind: Type::Gauge,
        help: "Disk used by the task worktrees on this host, by project, as last measured (after each run).",
        samples: worktree_bytes,
    },
    Spec {
        name: "orch_project_held",
        kind: Type::Gauge,
        help: "1 while a project is held on a host (its workdir is missing there), 0 for configured projects not held on this host.",
        samples: project_held,
    },
    Spec {
        name: "orch_last_prune_timestamp_seconds",
        kind: Type::Gauge,
        help: "When the fleet's prune of finished tasks last completed, in seconds since the epoch (0: never).",
        samples: last_prune,
    },
];

/// The name of every family `orch metrics` exports.
pub fn family_names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|spec| spec.name)
}

const UNJUDGED: &str = "unjudged";

/// Every family with its samples.
pub fn families(snapshot: &Snapshot) -> Vec<Family> {
    FAMILIES
        .iter()
        .map(|spec| {
            let mut samples = (spec.samples)(snapshot);
            samples.sort_by(|a, b| a.labels.cmp(&b.labels));
            Family {
                name: spec.name,
                kind: spec.kind,
                help: spec.help,
                samples,
            }
        })
        .collect()
}

fn jobs(snap: &Snapshot) -> Vec<Sample> {
    let counts: BTreeMap<(&str, &str, &str), i64> = snap
        .facts
        .job_counts
        .iter()
        .map(|c| {
            (
                (c.project.as_str(), c.stage.as_str(), c.state.as_str()),
                c.count,
            )
        })
        .collect();
    // Every configured project × stage × state is there at zero, and whatever else has jobs.
    let projects: BTreeSet<&str> = snap
        .config
        .projects
        .keys()
        .map(String::as_str)
        .chain(counts.keys().map(|(project, _, _)| *project))
        .collect();
    let stages: BTreeSet<&str> = snap
        .config
        .stages
        .iter()
        .map(String::as_str)
        .chain(counts.keys().map(|(_, stage, _)| *stage))
        .collect();
    let states: BTreeSet<&str> = JobState::NAMES
        .iter()
        .copied()
        .chain(counts.keys().map(|(_, _, state)| *state))
        .collect();
    let mut samples = Vec::new();
    for project in &projects {
        for stage in &stages {
            for state in &states {
                let n = counts
                    .get(&(*project, *stage, *state))
                    .copied()
                    .unwrap_or(0);
                let labels = [("project", *project), ("stage", *stage), ("state", *state)];
                samples.push(Sample::new(&labels, n as f64));
            }
        }
    }
    samples
}

fn runs(snap: &Snapshot) -> Vec<Sample> {
    let mut counts: BTreeMap<&str, i64> = CLASSES
        .iter()
        .map(|(_, name, _)| (*name, 0))
        .chain([(UNJUDGED, 0)])
        .collect();
    for row in &snap.facts.run_classes {
        *counts
            .entry(row.class.as_deref().unwrap_or(UNJUDGED))
            .or_default() += row.count;
    }
    counts
        .iter()
        .map(|(class, n)| Sample::new(&[("class", class)], *n as f64))
        .collect()
}

fn retries(snap: &Snapshot) -> Vec<Sample> {
    vec![Sample::new(&[], snap.facts.requeues as f64)]
}

/// Usage totals of every configured project (zero without runs) and every project with runs.
fn usage(snap: &Snapshot) -> Vec<UsageTotals> {
    let mut by_project: BTreeMap<&str, UsageTotals> = snap
        .config
        .projects
        .keys()
        .map(|name| {
            let zero = UsageTotals {
                project: name.clone(),
                ..Default::default()
            };
            (name.as_str(), zero)
        })
        .collect();
    for totals in &snap.facts.usage {
        by_project.insert(&totals.project, totals.clone());
    }
    by_project.into_values().collect()
}

fn cost(snap: &Snapshot) -> Vec<Sample> {
    usage(snap)
        .iter()
        .map(|u| Sample::new(&[("project", &u.project)], u.cost_usd))
        .collect()
}

fn tokens(snap: &Snapshot) -> Vec<Sample> {
    let mut samples = Vec::new();
    for u in usage(snap) {
        for (kind, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_tokens),
            ("cache_write", u.cache_write_tokens),
        ] {
            samples.push(Sample::new(
                &[("project", &u.project), ("kind", kind)],
                n as f64,
            ));
        }
    }
    samples
}

fn breaker_state(snap: &Snapshot) -> Vec<Sample> {
    let mut samples = Vec::new();
    for row in &snap.facts.breakers {
        let now = row.breaker.effective(snap.now_ms);
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            samples.push(Sample::new(
                &[("agent", &row.agent), ("state", state.as_str())],
                f64::from(u8::from(state == now)),
            ));
        }
    }
    samples
}

fn breaker_failures(snap: &Snapshot) -> Vec<Sample> {
    snap.facts
        .breakers
        .iter()
        .map(|row| {
            Sample::new(
                &[("agent", &row.agent)],
                row.breaker.consecutive_failures as f64,
            )
        })
        .collect()
}

fn preflight_ok(snap: &Snapshot) -> Vec<Sample> {
    snap.facts
        .preflight
        .iter()
        .filter_map(|row| {
            let ok = row.ok?;
            Some(Sample::new(
                &[("agent", &row.agent)],
                f64::from(u8::from(ok)),
            ))
        })
        .collect()
}

fn preflight_age(snap: &Snapshot) -> Vec<Sample> {
    snap.facts
        .preflight
        .iter()
        .filter_map(|row| {
            let age = seconds_since(row.created_at?, snap.now_ms);
            Some(Sample::new(&[("agent", &row.agent)], age))
        })
        .collect()
}

fn auth_gate(snap: &Snapshot) -> Vec<Sample> {
    snap.facts
        .preflight
        .iter()
        .map(|row| Sample::new(&[("agent", &row.agent)], f64::from(u8::from(row.gate_held))))
        .collect()
}

fn usage_hold(snap: &Snapshot) -> Vec<Sample> {
    snap.facts
        .preflight
        .iter()
        .map(|row| {
            let left = row.usage_until.map_or(0.0, |until| {
                ((until - snap.now_ms).max(0) as f64 / 1000.0).ceil()
            });
            Sample::new(&[("agent", &row.agent)], left)
        })
        .collect()
}

fn resumed(snap: &Snapshot) -> Vec<Sample> {
    vec![Sample::new(&[], snap.facts.resumed_runs as f64)]
}

/// Every configured project (zero without runs today) and every project with runs today.
fn cost_today(snap: &Snapshot) -> Vec<Sample> {
    let mut by_project: BTreeMap<&str, f64> = snap
        .config
        .projects
        .keys()
        .map(|name| (name.as_str(), 0.0))
        .collect();
    for (project, spent) in &snap.facts.cost_today {
        by_project.insert(project, *spent);
    }
    by_project
        .iter()
        .map(|(project, spent)| Sample::new(&[("project", project)], *spent))
        .collect()
}

fn budget_per_day(snap: &Snapshot) -> Vec<Sample> {
    snap.config
        .projects
        .values()
        .filter_map(|p| {
            let limit = p.max_cost_usd_per_day?;
            Some(Sample::new(&[("project", &p.name)], limit))
        })
        .collect()
}

fn outbox(snap: &Snapshot) -> Vec<Sample> {
    let mut counts: BTreeMap<(&str, &str), i64> = MessageKind::NAMES
        .iter()
        .flat_map(|kind| {
            OutboxState::NAMES
                .iter()
                .map(move |state| ((*kind, *state), 0))
        })
        .collect();
    for count in &snap.facts.outbox.counts {
        *counts
            .entry((count.kind.as_str(), count.state.as_str()))
            .or_default() += count.count;
    }
    counts
        .iter()
        .map(|((kind, state), n)| Sample::new(&[("kind", kind), ("state", state)], *n as f64))
        .collect()
}

fn outbox_oldest(snap: &Snapshot) -> Vec<Sample> {
    let age = snap
        .facts
        .outbox
        .oldest_pending_at
        .map_or(0.0, |at| seconds_since(at, snap.now_ms));
    vec![Sample::new(&[], age)]
}

fn oldest_queued(snap: &Snapshot) -> Vec<Sample> {
    let age = snap
        .facts
        .oldest_due_queued
        .map_or(0.0, |at| seconds_since(at, snap.now_ms));
    vec![Sample::new(&[], age)]
}

/// Every configured project (zero without worktrees) and every project with worktrees here:
/// (project, worktrees, bytes).
fn worktree_usage(snap: &Snapshot) -> BTreeMap<String, (i64, i64)> {
    let mut by_project: BTreeMap<String, (i64, i64)> = snap
        .config
        .projects
        .keys()
        .map(|name| (name.clone(), (0, 0)))
        .collect();
    for usage in &snap.facts.worktrees {
        by_project.insert(usage.project.clone(), (usage.worktrees, usage.bytes));
    }
    by_project
}

fn worktree_count(snap: &Snapshot) -> Vec<Sample> {
    worktree_usage(snap)
        .iter()
        .map(|(project, (n, _))| Sample::new(&[("project", project)], *n as f64))
        .collect()
}

fn worktree_bytes(snap: &Snapshot) -> Vec<Sample> {
    worktree_usage(snap)
        .iter()
        .map(|(project, (_, bytes))| Sample::new(&[("project", project)], *bytes as f64))
        .collect()
}

fn project_held(snap: &Snapshot) -> Vec<Sample> {
    let here = snap.config.host();
    let mut held: BTreeMap<(&str, &str), f64> = snap
        .config
        .projects
        .keys()
        .map(|project| ((project.as_str(), here.as_str()), 0.0))
        .collect();
    for hold in &snap.facts.holds {
        held.insert((&hold.project, &hold.host), 1.0);
    }
    held.iter()
        .map(|((project, host), v)| Sample::new(&[("project", project), ("host", host)], *v))
        .collect()
}

fn last_prune(snap: &Snapshot) -> Vec<Sample> {
    let at = snap
        .facts
        .last_prune_at
        .map_or(0.0, |at| (at / 1000) as f64);
    vec![Sample::new(&[], at)]
}

/// Whole seconds from `at_ms` to `now_ms`, never negative (clocks of two hosts may disagree).
fn seconds_since(at_ms: i64, now_ms: i64) -> f64 {
    ((now_ms - at_ms).max(0) / 1000) as f64
}

/// The families in the text exposition format 0.0.4: `# HELP` and `# TYPE` once per family,
/// then its samples.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.name());
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {}", value(sample.value));
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus reads it: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_escaped_labels() {
        let families = vec![Family {
            name: "orch_x_total",
            kind: Type::Counter,
            help: "A back\\slash\nand a line.",
            samples: vec![
                Sample::new(&[("project", "a\"b\\c\nd")], 3.0),
                Sample::new(&[], 0.25),
            ],
        }];
        assert_eq!(
            render(&families),
            "# HELP orch_x_total A back\\\\slash\\nand a line.\n\
             # TYPE orch_x_total counter\n\
             orch_x_total{project=\"a\\\"b\\\\c\\nd\"} 3\n\
             orch_x_total 0.25\n"
        );
    }

    #[test]
    fn special_values() {
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(1e3), "1000");
        assert_eq!(value(0.0123), "0.0123");
    }

    #[test]
    fn family_names_are_unique_and_valid() {
        let mut seen = BTreeSet::new();
        for spec in FAMILIES {
            assert!(seen.insert(spec.name), "{} twice", spec.name);
            assert!(spec.name.starts_with("orch_"));
            assert!(spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            assert_eq!(spec.kind == Type::Counter, spec.name.ends_with("_total"));
        }
    }
}
