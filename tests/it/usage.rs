//! `orch usage`, the cost report, over the real binary: its groupings and formats, its UTC days,
//! and the same answer before and after a prune.

use crate::support;

use serde_json::Value;
use support::World;

const DAY: i64 = 86_400_000;
/// 2026-03-01 00:00 UTC.
const MARCH_1: i64 = 20_513 * DAY;
const HOUR: i64 = 3_600_000;

fn world() -> World {
    let mut w = World::new();
    w.login(24 * HOUR);
    w.config("[pipeline]\nstages = [\"analyst\", \"developer\"]");
    w.set("ORCH_PRUNE_INTERVAL_HOURS", "0");
    w.set("ORCH_RETRY_BASE_SECONDS", "0");
    w
}

/// Claim the next job as `worker` and run it with the agent's `env`, its run dated
/// `started_at`; finalize it unless `finalize` is false. The run's id.
fn run_at(w: &World, worker: &str, started_at: i64, env: &[(&str, &str)], finalize: bool) -> i64 {
    let claimed = w.orch(&["claim", "--worker", worker, "--json"]).ok().json();
    let job = claimed["job_id"].as_i64().unwrap().to_string();
    let mut run = w.orch(&["run", &job, "--worker", worker, "--json"]);
    for (key, value) in env {
        run = run.env(key, value);
    }
    let run_id = run.ok().json()["run_id"].as_i64().unwrap();
    // Dated before finalize counts it: the rollup files a run under the UTC day it started.
    w.db()
        .execute(
            "UPDATE agent_runs SET started_at = ?2 WHERE id = ?1",
            [run_id, started_at],
        )
        .unwrap();
    if finalize {
        let out = w.orch(&["finalize", &job]).run();
        assert!([0, 20].contains(&out.code), "{}", out.stderr);
    }
    run_id
}

/// Two days of work. 2026-03-01: T-1's two stages by w1, $0.10 each. 2026-03-02, 23:30 UTC
/// (March 3rd in Tokyo): T-2's first stage failing once then passing, and its second stage, by
/// w2 at $0.25 a run; and a run of `T,3 "x"` still unjudged.
fn history(w: &World) {
    let cheap = [("FAKE_CLAUDE_COST", "0.10")];
    let dear = [("FAKE_CLAUDE_COST", "0.25")];
    w.enqueue("T-1");
    run_at(w, "w1", MARCH_1 + HOUR, &cheap, true);
    run_at(w, "w1", MARCH_1 + 2 * HOUR, &cheap, true);
    w.enqueue("T-2");
    let late = MARCH_1 + DAY + 23 * HOUR + 30 * 60_000;
    let failing = [("FAKE_CLAUDE_COST", "0.25"), ("FAKE_CLAUDE_MODE", "error")];
    run_at(w, "w2", late, &failing, true);
    run_at(w, "w2", late + 60_000, &dear, true);
    run_at(w, "w2", late + 120_000, &dear, true);
    w.enqueue("T,3 \"x\"");
    run_at(w, "w2", late + 180_000, &dear, false);
}

fn usage(w: &World, args: &[&str]) -> String {
    let mut all = vec!["usage"];
    all.extend_from_slice(args);
    w.orch(&all).ok().stdout
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().unwrap()
}

#[test]
fn usage_groups_runs_by_project_and_utc_day() {
    let mut w = world();
    history(&w);
    // The machine's clock zone does not move a day.
    w.set("TZ", "Asia/Tokyo");
    let doc: Value = serde_json::from_str(&usage(&w, &["--by", "project,day", "--json"])).unwrap();
    assert_eq!(doc["timezone"], "UTC");
    assert_eq!(doc["by"], serde_json::json!(["project", "day"]));
    let days = rows(&doc);
    assert_eq!(days.len(), 2, "{doc}");
    assert_eq!(
        (days[0]["project"].as_str(), days[0]["day"].as_str()),
        (Some("web"), Some("2026-03-01"))
    );
    assert_eq!(days[0]["runs"], 2);
    assert!((days[0]["cost_usd"].as_f64().unwrap() - 0.20).abs() < 1e-9);
    assert_eq!(
        (
            days[0]["input_tokens"].as_i64(),
            days[0]["output_tokens"].as_i64()
        ),
        (Some(240), Some(60))
    );
    assert_eq!(
        (
            days[0]["cache_read_tokens"].as_i64(),
            days[0]["cache_write_tokens"].as_i64()
        ),
        (Some(4000), Some(1000))
    );
    assert_eq!(days[0]["turns"], 4);
    assert_eq!(days[0]["classes"], serde_json::json!({"ok": 2}));
    assert_eq!(days[1]["day"], "2026-03-02");
    assert_eq!(days[1]["runs"], 4);
    assert!((days[1]["cost_usd"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    let classes = days[1]["classes"].as_object().unwrap();
    assert_eq!(
        (classes["ok"].as_i64(), classes["unjudged"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        classes.values().map(|n| n.as_i64().unwrap()).sum::<i64>(),
        4
    );
    assert_eq!(doc["total"]["runs"], 6);
    assert!(doc["total"]["wall_ms"].as_i64().unwrap() >= 0);

    // --since and --until take UTC days and include both.
    let one_day: Value = serde_json::from_str(&usage(
        &w,
        &["--since", "2026-03-02", "--until", "2026-03-02", "--json"],
    ))
    .unwrap();
    assert_eq!(one_day["total"]["runs"], 4);
    let none: Value =
        serde_json::from_str(&usage(&w, &["--until", "2026-02-28", "--json"])).unwrap();
    assert_eq!(none["total"]["runs"], 0);

    // By task (within its project), by who ran them.
    let tasks: Value = serde_json::from_str(&usage(&w, &["--by", "task", "--json"])).unwrap();
    let keys: Vec<(&str, &str, i64)> = rows(&tasks)
        .iter()
        .map(|r| {
            (
                r["project"].as_str().unwrap(),
                r["task"].as_str().unwrap(),
                r["runs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("web", "T,3 \"x\"", 1),
            ("web", "T-1", 2),
            ("web", "T-2", 3)
        ]
    );
    let who: Value = serde_json::from_str(&usage(
        &w,
        &["--by", "worker", "--by", "agent,stage", "--json"],
    ))
    .unwrap();
    let keys: Vec<String> = rows(&who)
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["worker"], r["agent"], r["stage"], r["runs"]
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            "\"w1\" \"claude\" \"analyst\" 1",
            "\"w1\" \"claude\" \"developer\" 1",
            "\"w2\" \"claude\" \"analyst\" 3",
            "\"w2\" \"claude\" \"developer\" 1",
        ]
    );
}

#[test]
fn usage_prints_a_table_and_csv() {
    let w = world();
    history(&w);
    let table = usage(&w, &["--by", "day"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("DAY") && lines[0].contains("COST") && lines[0].ends_with("CLASSES"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("2026-03-01")
            && lines[1].contains("$0.20")
            && lines[1].ends_with("ok 2"),
        "{table}"
    );
    // A day with runs of unknown cost (an agent error, a run not finalized) sums what is known,
    // and says so.
    assert!(
        lines[2].starts_with("2026-03-02") && lines[2].contains("$0.75+"),
        "{table}"
    );
    assert!(lines[3].starts_with("total"), "{table}");
    assert_eq!(lines[4], "days are UTC days of each run's start", "{table}");
    assert!(
        lines[5].starts_with("cost unknown for 1 of 6 runs"),
        "{table}"
    );

    let csv = usage(&w, &["--by", "task", "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        header[..11],
        [
            "project",
            "task",
            "runs",
            "cost_usd",
            "runs_cost_unknown",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "turns",
            "wall_ms"
        ]
    );
    let mut classes = header[11..].to_vec();
    classes.sort();
    assert_eq!(classes.len(), 3, "{csv}");
    assert!(
        classes.contains(&"class_ok") && classes.contains(&"class_unjudged"),
        "{csv}"
    );
    // A key with a comma and quotes is quoted, its quotes doubled; a cost no run gave is empty.
    assert!(
        lines[1].starts_with("web,\"T,3 \"\"x\"\"\",1,,1,0,0,0,0,0,"),
        "{csv}"
    );
    let t1: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(
        t1[..10],
        ["web", "T-1", "2", "0.2", "0", "240", "60", "4000", "1000", "4"]
    );
    let ok = header.iter().position(|h| *h == "class_ok").unwrap();
    assert_eq!(t1[ok], "2");
}

#[test]
fn the_report_is_the_same_before_and_after_a_prune() {
    let w = world();
    history(&w);
    let reports = |w: &World| -> Vec<String> {
        [
            vec!["--json"],
            vec!["--by", "project,day", "--csv"],
            vec!["--by", "task,stage,day,agent,worker", "--json"],
            vec!["--by", "day", "--since", "2026-03-02"],
            vec!["--by", "worker"],
        ]
        .iter()
        .map(|args| usage(w, args))
        .collect()
    };
    let before = reports(&w);
    let pruned = w
        .orch(&["prune", "--older-than", "0s", "--json"])
        .ok()
        .json();
    assert_eq!(pruned["tasks"], 2, "T-1 and T-2; T,3 is live");
    let runs: i64 = w.sql("SELECT count(*) FROM agent_runs", []);
    assert_eq!(runs, 1, "only the live task's run is left");
    assert_eq!(reports(&w), before);
}

#[test]
fn bad_dates_and_groupings_are_usage_errors() {
    let w = world();
    for (args, says) in [
        (
            vec!["--since", "2026-13-01"],
            "--since: expected a date as YYYY-MM-DD (UTC)",
        ),
        (
            vec!["--until", "yesterday"],
            "--until: expected a date as YYYY-MM-DD (UTC)",
        ),
        (vec!["--by", "colour"], "--by: unknown grouping \"colour\""),
        (vec!["--csv", "--json"], "--csv and --json: choose one"),
    ] {
        let mut all = vec!["usage"];
        all.extend(args);
        let out = w.orch(&all).status(2);
        assert!(
            out.stderr.starts_with(&format!("orch: error: {says}")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(usage(&w, &[]).trim(), "no runs in that time");
}
