//! `orch usage`: the cost report, grouped as asked, as a table, JSON or CSV. Days are UTC.

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::cli::UsageArgs;
use crate::domain::usage::{self, Dim, Line, Sums};
use crate::exit;
use crate::output::{self, Table};
use crate::store::{UsageKey, UsageQuery};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &UsageArgs) -> Result<u8> {
    if args.csv && ctx.json() {
        return Err(exit::usage("--csv and --json: choose one"));
    }
    let day = |flag: &str, value: &Option<String>| -> Result<Option<i64>> {
        value
            .as_deref()
            .map(|text| usage::parse_day(text).map_err(|why| exit::usage(format!("{flag}: {why}"))))
            .transpose()
    };
    let query = UsageQuery {
        since_day: day("--since", &args.since)?,
        until_day: day("--until", &args.until)?,
        by: usage::parse_dims(&args.by).map_err(|why| exit::usage(format!("--by: {why}")))?,
    };
    let store = ctx.store()?;
    let rows = store.usage(&query)?;
    let (lines, total) = usage::fold(rows.into_iter().map(|row| {
        let key = row
            .key
            .into_iter()
            .map(|key| match key {
                UsageKey::Text(text) => text,
                UsageKey::Day(day) => usage::format_day(day),
            })
            .collect();
        (key, row.class, row.sums)
    }));
    let day_text = |day: Option<i64>| day.map(usage::format_day);
    if ctx.json() {
        output::json(&json!({
            "since": day_text(query.since_day),
            "until": day_text(query.until_day),
            "timezone": "UTC",
            "by": query.by,
            "rows": lines.iter().map(|line| line_json(&query.by, line)).collect::<Vec<_>>(),
            "total": line_json(&[], &total),
        }))?;
    } else if args.csv {
        output::line(csv(&query.by, &lines).trim_end())?;
    } else {
        output::line(table(ctx, &query, &lines, &total))?;
    }
    Ok(exit::OK)
}

/// The sums as the report's columns, named as in JSON and CSV, in the order CSV lists them. A
/// cost no run of the group reported is null (an empty CSV cell), never 0.
fn columns(s: &Sums) -> [(&'static str, Value); 9] {
    [
        ("runs", s.runs.into()),
        ("cost_usd", s.known_cost().into()),
        ("runs_cost_unknown", s.unpriced_runs().into()),
        ("input_tokens", s.input_tokens.into()),
        ("output_tokens", s.output_tokens.into()),
        ("cache_read_tokens", s.cache_read_tokens.into()),
        ("cache_write_tokens", s.cache_write_tokens.into()),
        ("turns", s.turns.into()),
        ("wall_ms", s.wall_ms.into()),
    ]
}

fn line_json(by: &[Dim], line: &Line) -> Value {
    let mut object = Map::new();
    for (dim, value) in by.iter().zip(&line.key) {
        object.insert(dim.name().to_string(), Value::from(value.as_str()));
    }
    object.extend(
        columns(&line.sums)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    object.insert("classes".to_string(), json!(line.classes));
    Value::Object(object)
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv(by: &[Dim], lines: &[Line]) -> String {
    let classes: BTreeSet<&str> = lines
        .iter()
        .flat_map(|line| line.classes.keys().map(String::as_str))
        .collect();
    let mut header: Vec<String> = by.iter().map(|d| d.name().to_string()).collect();
    header.extend(columns(&Sums::default()).map(|(name, _)| name.to_string()));
    header.extend(classes.iter().map(|c| format!("class_{c}")));
    let mut out = header
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for line in lines {
        let mut cells: Vec<String> = line.key.iter().map(|k| field(k)).collect();
        cells.extend(columns(&line.sums).map(|(_, value)| match value {
            Value::Null => String::new(),
            value => value.to_string(),
        }));
        cells.extend(
            classes
                .iter()
                .map(|c| line.classes.get(*c).copied().unwrap_or(0).to_string()),
        );
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn table(ctx: &Ctx, query: &UsageQuery, lines: &[Line], total: &Line) -> String {
    let paint = ctx.paint();
    let upper: Vec<String> = query
        .by
        .iter()
        .map(|d| d.name().to_ascii_uppercase())
        .collect();
    let mut header: Vec<&str> = upper.iter().map(String::as_str).collect();
    header.extend([
        "RUNS",
        "COST",
        "INPUT",
        "OUTPUT",
        "CACHE READ",
        "CACHE WRITE",
        "TURNS",
        "WALL",
        "CLASSES",
    ]);
    let mut table = Table::new(&header);
    let cells = |key: Vec<String>, line: &Line| -> Vec<String> {
        let s = &line.sums;
        let classes: Vec<String> = line
            .classes
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let mut cells: Vec<String> = key
            .iter()
            .map(|k| output::printable(k).into_owned())
            .collect();
        cells.extend([
            s.runs.to_string(),
            cost_cell(s),
            s.input_tokens.to_string(),
            s.output_tokens.to_string(),
            s.cache_read_tokens.to_string(),
            s.cache_write_tokens.to_string(),
            s.turns.to_string(),
            output::span(s.wall_ms),
            classes.join(", "),
        ]);
        cells
    };
    for line in lines {
        table.row(cells(line.key.clone(), line));
    }
    if lines.is_empty() {
        return "no runs in that time".to_string();
    }
    let mut key = vec![String::new(); query.by.len()];
    key[0] = "total".to_string();
    table.row(cells(key, total));
    let mut out = table.render(paint);
    let bounds = match (query.since_day, query.until_day) {
        (None, None) => String::new(),
        (since, until) => format!(
            ", from {} to {}",
            since.map_or("the first".into(), usage::format_day),
            until.map_or("the last".into(), usage::format_day)
        ),
    };
    out.push_str(&format!("\ndays are UTC days of each run's start{bounds}"));
    if total.sums.unpriced_runs() > 0 {
        out.push_str(&format!(
            "\ncost unknown for {} of {} runs (a kind that reports none and has no price table, a \
             run without a result, or one not finalized yet): — is an unknown cost, + a sum \
             without theirs",
            total.sums.unpriced_runs(),
            total.sums.runs
        ));
    }
    out
}

/// "$1.23"; "$1.23+" when some of the runs' cost is unknown; "—" when none is known.
fn cost_cell(s: &Sums) -> String {
    match s.known_cost() {
        None => "—".to_string(),
        Some(cost) if s.unpriced_runs() > 0 => format!("${cost:.2}+"),
        Some(cost) => format!("${cost:.2}"),
    }
}
