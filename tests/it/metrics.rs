//! `orch metrics`: Prometheus text exposition, read back by a small parser of the format.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use support::{now_ms, World};

/// One sample: its family, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// What the parser read: each family's type and help, and the samples in order.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
            .value
    }

    fn family(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parse the text exposition format 0.0.4 strictly: one HELP and one TYPE line per family, both
/// before its samples; every sample belongs to a declared family whose samples stand together;
/// label values with their escapes; no series twice; the text ends with a newline.
fn parse(text: &str) -> Exposition {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut exposition = Exposition::default();
    let mut current: Option<String> = None;
    let mut finished = BTreeSet::new();
    let mut series = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", index + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_metric_name(name), "{at}: bad family name");
            match keyword {
                "HELP" => {
                    assert!(!value.is_empty(), "{at}: empty help");
                    let fresh = exposition.helps.insert(name.to_string(), value.to_string());
                    assert!(fresh.is_none(), "{at}: a second HELP for {name}");
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&value),
                        "{at}: unknown type"
                    );
                    let fresh = exposition.types.insert(name.to_string(), value.to_string());
                    assert!(fresh.is_none(), "{at}: a second TYPE line for {name}");
                    if let Some(previous) = current.replace(name.to_string()) {
                        finished.insert(previous);
                    }
                }
                _ => panic!("{at}: unknown comment keyword"),
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "{at}: blank line");
        let sample = parse_sample(line, &at);
        assert!(
            exposition.types.contains_key(&sample.name),
            "{at}: family {} has no TYPE line before it",
            sample.name
        );
        assert!(
            !finished.contains(&sample.name),
            "{at}: samples of {} are not together",
            sample.name
        );
        assert_eq!(current.as_deref(), Some(sample.name.as_str()), "{at}");
        let key = format!("{}{:?}", sample.name, sample.labels);
        assert!(series.insert(key), "{at}: the same series twice");
        exposition.samples.push(sample);
    }
    for name in exposition.types.keys() {
        assert!(exposition.helps.contains_key(name), "{name} has no HELP");
    }
    exposition
}

fn parse_sample(line: &str, at: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("{at}: no value"));
    let name = &line[..name_end];
    assert!(is_metric_name(name), "{at}: bad metric name");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let (start, c) = chars
                .next()
                .unwrap_or_else(|| panic!("{at}: unclosed labels"));
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            let eq = inner[start..]
                .find("=\"")
                .unwrap_or_else(|| panic!("{at}: label without =\""))
                + start;
            let label = &inner[start..eq];
            assert!(
                is_metric_name(label) && !label.contains(':'),
                "{at}: bad label name {label:?}"
            );
            while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                chars.next();
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("{at}: bad escape {other:?}"),
                    },
                    Some((_, c)) => value.push(c),
                    None => panic!("{at}: unclosed label value"),
                }
            }
            assert!(
                labels.insert(label.to_string(), value).is_none(),
                "{at}: label {label} twice"
            );
            match chars.peek() {
                Some((_, ',')) => {
                    chars.next();
                }
                Some((_, '}')) => {}
                other => panic!("{at}: expected , or }} after a label, got {other:?}"),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("{at}: no space before the value"));
    assert!(!value.contains(' '), "{at}: orch writes no timestamps");
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number
            .parse()
            .unwrap_or_else(|_| panic!("{at}: value {number:?} is not a number")),
    };
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

#[test]
fn the_parser_rejects_what_prometheus_would() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1.5\n";
    let parsed = parse(ok);
    assert_eq!(parsed.samples[0].labels["x"], "q\"\\\n");
    for bad in [
        "a 1\n",                                                                // no TYPE
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",                   // TYPE twice
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                              // series twice
        "# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n",                            // unclosed
        "# HELP a A.\n# TYPE a gauge\na one\n",                                 // not a number
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\nb 1\na 1\n", // apart
    ] {
        let result = std::panic::catch_unwind(|| parse(bad));
        assert!(result.is_err(), "accepted {bad:?}");
    }
}

/// A world with two projects (`api` never runs), three jobs of `web`: one rescued from an
/// expired lease and queued again, one run by the stand-in agent and judged ok with usage, one
/// due two minutes ago; the claude preflight cached and a dead alert in the outbox.
fn busy_world() -> World {
    let w = World::new();
    std::fs::create_dir_all(w.path("work/api")).unwrap();
    w.config(&format!(
        "[projects.api]\nworkdir = \"{}\"",
        w.path("work/api").display()
    ));
    w.login(24 * 3_600_000);
    let rescued = w.enqueue("T-1");
    let ran = w.enqueue("T-2");
    let waiting = w.enqueue("T-3");
    // The lease runs out: the next claim rescues the job and takes the next one.
    let first = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(first["job_id"], rescued);
    w.expire_leases();
    let second = w.orch(&["claim", "--worker", "w2", "--json"]).ok().json();
    assert_eq!(second["job_id"], ran);
    let run = w
        .orch(&["run", &ran.to_string(), "--worker", "w2", "--json"])
        .ok()
        .json();
    let db = w.db();
    // What finalize records, in one statement: the verdict's class, its Usage as JSON, and
    // when (which puts the run in the usage rollup).
    db.execute(
        "UPDATE agent_runs SET class = 'ok', result_ok = 1, usage_json = ?2, finalized_at = ?3
         WHERE id = ?1",
        rusqlite::params![
            run["run_id"].as_i64().unwrap(),
            r#"{"cost_usd":0.5,"input_tokens":100,"output_tokens":20,"cache_read_tokens":1000,"cache_write_tokens":50,"turns":2,"models":[]}"#,
            now_ms()
        ],
    )
    .unwrap();
    db.execute(
        "UPDATE jobs SET run_after = ?2 WHERE id = ?1",
        rusqlite::params![waiting, now_ms() - 120_000],
    )
    .unwrap();
    db.execute(
        "INSERT INTO outbox (kind, alert_kind, dedup_key, payload, state, attempts, next_attempt_at, created_at)
         VALUES ('alert', 'run_failed', 'k', '{}', 'dead', 20, 0, 0)",
        [],
    )
    .unwrap();
    w
}

#[test]
fn metrics_describe_the_queue() {
    let w = busy_world();
    let out = w.orch(&["metrics"]).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let m = parse(&out.stdout);
    let families: Vec<&str> = m.types.keys().map(String::as_str).collect();
    for family in [
        "orch_jobs",
        "orch_runs_total",
        "orch_retries_total",
        "orch_cost_usd_total",
        "orch_tokens_total",
        "orch_preflight_ok",
        "orch_preflight_age_seconds",
        "orch_auth_gate_held",
        "orch_outbox_messages",
        "orch_outbox_oldest_pending_age_seconds",
        "orch_oldest_queued_age_seconds",
    ] {
        assert!(families.contains(&family), "{family} missing: {families:?}");
    }
    for (name, kind) in &m.types {
        let counter = name.ends_with("_total");
        assert_eq!(kind == "counter", counter, "{name} is a {kind}");
    }

    let jobs = |state| {
        m.value(
            "orch_jobs",
            &[("project", "web"), ("stage", "analyst"), ("state", state)],
        )
    };
    assert_eq!(
        (jobs("queued"), jobs("running"), jobs("done")),
        (2.0, 1.0, 0.0)
    );
    // Every state of every stage of every project is there, at zero when empty.
    assert_eq!(m.family("orch_jobs").len(), 2 * 6 * 7);
    assert_eq!(
        m.value(
            "orch_jobs",
            &[("project", "web"), ("stage", "tester"), ("state", "failed")]
        ),
        0.0
    );

    assert_eq!(m.value("orch_runs_total", &[("class", "ok")]), 1.0);
    assert_eq!(m.value("orch_runs_total", &[("class", "unjudged")]), 0.0);
    assert_eq!(m.value("orch_runs_total", &[("class", "rate_limit")]), 0.0);
    assert_eq!(m.value("orch_retries_total", &[]), 1.0);

    assert_eq!(m.value("orch_cost_usd_total", &[("project", "web")]), 0.5);
    assert_eq!(m.value("orch_cost_usd_total", &[("project", "api")]), 0.0);
    let tokens = |kind| m.value("orch_tokens_total", &[("project", "web"), ("kind", kind)]);
    assert_eq!(
        [
            tokens("input"),
            tokens("output"),
            tokens("cache_read"),
            tokens("cache_write")
        ],
        [100.0, 20.0, 1000.0, 50.0]
    );
    assert_eq!(
        m.value(
            "orch_tokens_total",
            &[("project", "api"), ("kind", "input")]
        ),
        0.0
    );

    assert_eq!(m.value("orch_preflight_ok", &[("agent", "claude")]), 1.0);
    let age = m.value("orch_preflight_age_seconds", &[("agent", "claude")]);
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(m.value("orch_auth_gate_held", &[("agent", "claude")]), 0.0);

    assert_eq!(
        m.value(
            "orch_outbox_messages",
            &[("kind", "alert"), ("state", "dead")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "orch_outbox_messages",
            &[("kind", "comment"), ("state", "pending")]
        ),
        0.0
    );
    assert_eq!(m.value("orch_outbox_oldest_pending_age_seconds", &[]), 0.0);
    let oldest = m.value("orch_oldest_queued_age_seconds", &[]);
    assert!((119.0..180.0).contains(&oldest), "{oldest}");
}

#[test]
fn an_empty_database_has_every_family_at_zero() {
    let w = World::new();
    let m = parse(&w.orch(&["metrics"]).ok().stdout);
    assert_eq!(m.value("orch_retries_total", &[]), 0.0);
    assert_eq!(m.value("orch_cost_usd_total", &[("project", "web")]), 0.0);
    assert_eq!(m.value("orch_oldest_queued_age_seconds", &[]), 0.0);
    // No verdict cached: no preflight series rather than a made-up one.
    assert!(m.family("orch_preflight_ok").is_empty());
    assert!(m.types.contains_key("orch_preflight_ok"));
}

#[test]
fn out_writes_the_file_atomically_and_says_nothing() {
    let w = busy_world();
    let dir = w.path("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("orch.prom");
    std::fs::write(&file, "old").unwrap();
    let out = w.orch(&["metrics", "--out", file.to_str().unwrap()]).ok();
    assert_eq!(out.stdout, "");
    let written = std::fs::read_to_string(&file).unwrap();
    let m = parse(&written);
    assert_eq!(m.value("orch_retries_total", &[]), 1.0);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "node_exporter runs as another user");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "the temporary file is renamed away");

    let summary = w
        .orch(&["metrics", "--out", file.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(summary["families"], m.types.len());
    assert_eq!(summary["samples"], m.samples.len());

    let missing = w.path("no/such/dir/orch.prom");
    let out = w
        .orch(&["metrics", "--out", missing.to_str().unwrap()])
        .status(1);
    assert!(out.stderr.contains("orch.prom"), "{}", out.stderr);
}

#[test]
fn json_holds_the_same_families() {
    let w = busy_world();
    let text = parse(&w.orch(&["metrics"]).ok().stdout);
    let json = w.orch(&["metrics", "--json"]).ok().json();
    let families = json["families"].as_array().unwrap();
    assert_eq!(families.len(), text.types.len());
    for family in families {
        let name = family["name"].as_str().unwrap();
        assert_eq!(family["type"], text.types[name].as_str());
        let samples = family["samples"].as_array().unwrap();
        assert_eq!(samples.len(), text.family(name).len(), "{name}");
    }
    let retries = families
        .iter()
        .find(|f| f["name"] == "orch_retries_total")
        .unwrap();
    assert_eq!(retries["samples"][0]["value"], 1.0);
    assert_eq!(retries["samples"][0]["labels"], serde_json::json!({}));
}

#[test]
fn the_breaker_state_is_exported() {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_RETRY_BASE_SECONDS", "0")
        .set("ORCH_MAX_ATTEMPTS", "9")
        .set("FAKE_CLAUDE_MODE", "empty");
    w.enqueue("T-1");
    for _ in 0..3 {
        w.orch(&["tick", "--worker", "w1"]).status(20);
    }
    w.orch(&["tick", "--worker", "w1"]).status(12);
    let m = parse(&w.orch(&["metrics"]).ok().stdout);
    assert_eq!(
        m.value(
            "orch_breaker_state",
            &[("agent", "claude"), ("state", "open")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "orch_breaker_state",
            &[("agent", "claude"), ("state", "closed")]
        ),
        0.0
    );
    assert_eq!(
        m.value("orch_breaker_consecutive_failures", &[("agent", "claude")]),
        3.0
    );
    assert_eq!(m.types["orch_breaker_state"], "gauge");
}

/// PromQL's own words: the functions, aggregations and keywords the dashboard may use.
const PROMQL: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "bottomk",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "clamp_min",
    "clamp_max",
    "time",
    "vector",
    "scalar",
    "abs",
];

/// `text` without what `open` … `close` enclose (string literals, label matchers, ranges).
fn without_enclosed(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        if c == open && (open != close || depth == 0) {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The metric names an expression (or a variable's `label_values(METRIC, LABEL)` query) reads,
/// and the label names its groupings (`by (…)`, `without (…)`, `label_values`' second argument)
/// use.
fn promql_names(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let bare = without_enclosed(expr, '"', '"');
    let bare = without_enclosed(&bare, '{', '}');
    let bare = without_enclosed(&bare, '[', ']');
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (at, c) in bare.char_indices().chain([(bare.len(), ' ')]) {
        let in_word = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (in_word, start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                words.push((from, &bare[from..at]));
                start = None;
            }
            _ => {}
        }
    }
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut grouping = false;
    let mut values_of = 0;
    for (at, word) in words {
        let next = bare[at + word.len()..].trim_start();
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if ["by", "without", "on", "ignoring"].contains(&word) {
            grouping = true;
            continue;
        }
        if word == "label_values" {
            values_of = 1;
            continue;
        }
        if grouping || values_of == 2 {
            labels.insert(word.to_string());
            grouping &= !next.starts_with(')');
            continue;
        }
        if values_of == 1 {
            metrics.insert(word.to_string());
            values_of = 2;
            continue;
        }
        if !PROMQL.contains(&word) {
            metrics.insert(word.to_string());
        }
    }
    (metrics, labels)
}

#[test]
fn promql_names_finds_metrics_and_grouping_labels() {
    let (metrics, labels) = promql_names(
        r#"1 - sum by (project, kind) (increase(orch_x_total{a="b{c}", d=~"$v"}[1d])) / clamp_min(orch_y, 1)"#,
    );
    assert_eq!(
        metrics,
        BTreeSet::from(["orch_x_total".into(), "orch_y".into()])
    );
    assert_eq!(labels, BTreeSet::from(["project".into(), "kind".into()]));
    let (metrics, labels) = promql_names("label_values(orch_jobs, project)");
    assert_eq!((metrics.len(), labels.len()), (1, 1));
}

/// Every string under `key` anywhere in `value` (the panels' `expr`, the variables' `query`).
fn strings_under<'a>(value: &'a serde_json::Value, key: &str, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if k == key => out.push(s),
                    _ => strings_under(v, key, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

/// The Grafana dashboard in contrib/ reads only families `orch metrics` exports, groups them
/// only by labels they have, and shows what an operator watches: the queue by state and
/// project, run classes, cost per project, breakers and holds, the outbox, the oldest job.
#[test]
fn the_grafana_dashboard_reads_only_what_orch_exports() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana/orch.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let w = busy_world();
    w.db()
        .execute_batch(
            "INSERT INTO breakers (agent, state, updated_at) VALUES ('claude', 'open', 0);
             INSERT INTO project_holds (project, host, reason, since) VALUES ('web', 'h', 'gone', 0);",
        )
        .unwrap();
    let exported = w.orch(&["metrics", "--json"]).ok().json();
    let mut labels_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for family in exported["families"].as_array().unwrap() {
        let labels = labels_of
            .entry(family["name"].as_str().unwrap().to_string())
            .or_default();
        for sample in family["samples"].as_array().unwrap() {
            labels.extend(sample["labels"].as_object().unwrap().keys().cloned());
        }
    }
    let mut exprs = Vec::new();
    strings_under(&dashboard["panels"], "expr", &mut exprs);
    strings_under(&dashboard["templating"], "query", &mut exprs);
    exprs.retain(|e| *e != "prometheus");
    assert!(exprs.len() >= 15, "{exprs:?}");
    let mut shown = BTreeSet::new();
    for expr in &exprs {
        let (metrics, labels) = promql_names(expr);
        assert!(!metrics.is_empty(), "{expr} reads no metric");
        for metric in &metrics {
            let known = labels_of.get(metric);
            assert!(known.is_some(), "{expr}: orch exports no family {metric}");
            for label in &labels {
                assert!(
                    metrics.iter().any(|m| labels_of[m].contains(label)),
                    "{expr}: no family it reads has the label {label}"
                );
            }
        }
        shown.extend(metrics);
    }
    for family in [
        "orch_jobs",
        "orch_runs_total",
        "orch_cost_usd_total",
        "orch_breaker_state",
        "orch_project_held",
        "orch_outbox_messages",
        "orch_oldest_queued_age_seconds",
    ] {
        assert!(
            shown.contains(family),
            "the dashboard does not show {family}"
        );
    }
}
