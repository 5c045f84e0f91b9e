//! `orch validate-log` over the fixtures in tests/fixtures/logs/: one per class and per format,
//! built from what Claude Code 2.1.197 prints.

use crate::support;

use std::path::PathBuf;

use support::World;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name)
        .display()
        .to_string()
}

/// Judge a fixture with extra flags; assert the exit status and the class; return the JSON.
fn judge(world: &World, name: &str, flags: &[&str], code: i32, class: &str) -> serde_json::Value {
    let path = fixture(name);
    let mut args = vec!["validate-log", path.as_str(), "--json"];
    args.extend_from_slice(flags);
    let out = world.orch(&args).status(code);
    let verdict = out.json();
    assert_eq!(verdict["class"], class, "{name} {flags:?}: {verdict:#}");
    assert_eq!(verdict["ok"], class == "ok", "{name}");
    verdict
}

#[test]
fn successful_runs_in_every_format() {
    let world = World::new();
    for name in [
        "ok-stream.jsonl",
        "ok-crlf.jsonl",
        "ok-object.json",
        "ok-verbose-array.json",
        "ok-pretty-array.json",
        "ok-with-stderr.jsonl",
        "cut-mid-file.jsonl",
    ] {
        let v = judge(&world, name, &[], 0, "ok");
        assert_eq!(v["kind"], "ok");
        assert_eq!(v["transient"], false);
        assert_eq!(v["subtype"], "success");
        assert_eq!(v["is_error"], false);
        assert_eq!(v["result_excerpt"], "Done: the 401 handler is fixed.");
        let usage = &v["usage"];
        assert_eq!(usage["cost_usd"], 0.0731, "{name}");
        assert_eq!(usage["input_tokens"], 1520);
        assert_eq!(usage["output_tokens"], 2310);
        assert_eq!(usage["cache_read_tokens"], 120400);
        assert_eq!(usage["cache_write_tokens"], 8200);
        assert_eq!(usage["turns"], 4);
        assert_eq!(usage["duration_ms"], 93125);
        assert_eq!(usage["session_id"], "0b6c7a52-9d1e-4c3b-8f61-2a4e5d7c9b10");
        assert_eq!(
            usage["models"],
            serde_json::json!(["claude-haiku-4-5", "claude-sonnet-4-5"])
        );
    }
}

#[test]
fn a_transcript_full_of_401_and_unauthorized_is_ok() {
    let world = World::new();
    // The tool output in this log says 401, 429, "invalid api key", "OAuth token has expired",
    // "You've hit your limit" and "overloaded_error"; informational lines follow the result.
    let text = std::fs::read_to_string(fixture("ok-stream.jsonl")).unwrap();
    assert!(text.contains("401 Unauthorized") && text.contains("Not logged in"));
    assert!(text
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .contains("\"system\""));
    judge(&world, "ok-stream.jsonl", &["--exit-code", "0"], 0, "ok");
}

#[test]
fn auth_failures_are_a_gate() {
    let world = World::new();
    for name in [
        "auth-logged-out.jsonl",
        "auth-expired-token.jsonl",
        "auth-api-error-status.jsonl",
        "auth-stderr.log",
        "auth-verbose-array.json",
        "auth-retry-hang.jsonl",
    ] {
        let v = judge(&world, name, &[], 22, "auth");
        assert_eq!(v["kind"], "gate");
        assert_eq!(v["transient"], false);
    }
    // 2.1.197 exits 1 when logged out; other versions exit 0 with the same result
    judge(
        &world,
        "auth-logged-out.jsonl",
        &["--exit-code", "1"],
        22,
        "auth",
    );
    let v = judge(
        &world,
        "auth-logged-out.jsonl",
        &["--exit-code", "0"],
        22,
        "auth",
    );
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["is_error"], true);
    assert_eq!(v["subtype"], "success");
    // auth found in the log wins over the timeout that ended a hung run
    judge(
        &world,
        "auth-retry-hang.jsonl",
        &["--timed-out"],
        22,
        "auth",
    );
}

#[test]
fn limits_are_transient() {
    let world = World::new();
    for name in [
        "rate-limit.jsonl",
        "rate-limit-429.jsonl",
        "overloaded-529.json",
    ] {
        let v = judge(&world, name, &["--exit-code", "1"], 20, "rate_limit");
        assert_eq!(v["kind"], "transient");
        assert_eq!(v["transient"], true);
    }
}

#[test]
fn configured_limits_are_permanent() {
    let world = World::new();
    let v = judge(
        &world,
        "max-turns.jsonl",
        &["--exit-code", "1"],
        21,
        "max_turns",
    );
    assert_eq!(v["kind"], "permanent");
    assert_eq!(v["transient"], false);
    assert_eq!(v["usage"]["turns"], 25);
    let v = judge(&world, "max-budget.jsonl", &[], 21, "max_budget");
    assert_eq!(v["usage"]["cost_usd"], 5.0021);
    // a configured limit is what ended the run even when the timeout fired too
    judge(&world, "max-turns.jsonl", &["--timed-out"], 21, "max_turns");
}

#[test]
fn agent_errors_whatever_the_exit_code() {
    let world = World::new();
    let v = judge(
        &world,
        "agent-error.jsonl",
        &["--exit-code", "1"],
        20,
        "agent_error",
    );
    assert_eq!(v["subtype"], "error_during_execution");
    assert!(v["reason"].as_str().unwrap().contains("permission denied"));
    // exit 0 with an is_error result is still a failure
    judge(
        &world,
        "agent-error.jsonl",
        &["--exit-code", "0"],
        20,
        "agent_error",
    );
    judge(&world, "agent-error.jsonl", &["--timed-out"], 20, "timeout");
}

#[test]
fn logs_without_a_result() {
    let world = World::new();
    let v = judge(&world, "empty.log", &["--exit-code", "0"], 20, "empty");
    assert_eq!(v["reason"], "the log is empty");
    judge(&world, "whitespace.log", &[], 20, "empty");
    let v = judge(
        &world,
        "no-result.jsonl",
        &["--exit-code", "0"],
        20,
        "no_result",
    );
    assert_eq!(
        v["usage"]["session_id"],
        "0b6c7a52-9d1e-4c3b-8f61-2a4e5d7c9b10"
    );
    let v = judge(&world, "truncated.jsonl", &[], 20, "no_result");
    assert!(v["reason"].as_str().unwrap().contains("cut short"));
    let v = judge(&world, "garbage.bin", &[], 20, "no_result");
    assert!(v["reason"].as_str().unwrap().contains("binary"));
}

#[test]
fn timeouts() {
    let world = World::new();
    let v = judge(&world, "empty.log", &["--timed-out"], 20, "timeout");
    assert_eq!(v["timed_out"], true);
    judge(&world, "no-result.jsonl", &["--timed-out"], 20, "timeout");
    judge(&world, "truncated.jsonl", &["--timed-out"], 20, "timeout");
    // a run that printed its success result and then hung is done
    judge(
        &world,
        "ok-stream.jsonl",
        &["--timed-out", "--exit-code", "143"],
        0,
        "ok",
    );
}

#[test]
fn success_result_with_a_non_zero_exit_code() {
    let world = World::new();
    let v = judge(
        &world,
        "ok-stream.jsonl",
        &["--exit-code", "1"],
        20,
        "exit_mismatch",
    );
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["transient"], true);
    assert_eq!(v["usage"]["cost_usd"], 0.0731);
}

#[test]
fn reads_standard_input() {
    let world = World::new();
    let log = std::fs::read(fixture("auth-logged-out.jsonl")).unwrap();
    let out = world
        .orch(&["validate-log", "-", "--json"])
        .stdin(log)
        .status(22);
    assert_eq!(out.json()["class"], "auth");
    let out = world.orch(&["validate-log", "-"]).stdin("").status(20);
    assert!(out.stdout.starts_with("empty"), "{}", out.stdout);
}

#[test]
fn one_line_for_a_person() {
    let world = World::new();
    let out = world
        .orch(&["validate-log", &fixture("ok-stream.jsonl")])
        .status(0);
    assert_eq!(
        out.stdout,
        "ok  success result: Done: the 401 handler is fixed.  ($0.0731, 4 turns)\n"
    );
    let out = world
        .orch(&["validate-log", &fixture("max-turns.jsonl")])
        .status(21);
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(out.stdout.starts_with("max_turns  "), "{}", out.stdout);
    assert!(out.stdout.contains("($0.4011, 25 turns)"), "{}", out.stdout);
}

#[test]
fn a_missing_log_is_a_usage_error() {
    let world = World::new();
    let out = world
        .orch(&[
            "validate-log",
            &world.path("nope.log").display().to_string(),
        ])
        .status(2);
    assert!(out.stderr.contains("no such log"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = world
        .orch(&["validate-log", &world.root().display().to_string()])
        .status(1);
    assert!(
        out.stderr.starts_with("orch: error: reading the log"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_large_log_in_bounded_memory() {
    // 64 MiB of transcript whose lines are longer than the read buffer, then the result: the
    // reader must stream through them (the benchmark covers 1 GiB and peak memory).
    let world = World::new();
    let path = world.path("big.jsonl");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let text = "401 unauthorized ".repeat(150_000);
        let line = format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","content":"{text}"}}]}}}}"#
        );
        while file.get_ref().metadata().unwrap().len() < 64 << 20 {
            writeln!(file, "{line}").unwrap();
            file.flush().unwrap();
        }
        let ok = std::fs::read_to_string(fixture("ok-object.json")).unwrap();
        write!(file, "{ok}").unwrap();
    }
    let out = world
        .orch(&["validate-log", &path.display().to_string(), "--json"])
        .status(0);
    assert_eq!(out.json()["class"], "ok");
}
