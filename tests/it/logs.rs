//! `orch logs`: a run's log rendered for a person, as JSON Lines, or raw; logs written by the
//! stand-in agent through real `orch claim` + `orch run`, and fixture logs put in their place.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::World;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name)
}

/// A logged-in world (the stand-in agent is `claude`).
fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    // The stand-in reports how long it really took; a fixed figure keeps the rendering exact.
    w.set("FAKE_CLAUDE_DURATION_MS", "1234");
    w
}

/// Enqueue `task`, claim it and run the stand-in agent in `mode`; returns (job, run, log path).
fn ran(w: &World, task: &str, mode: &str) -> (i64, i64, PathBuf) {
    let job = w.enqueue(task);
    let claimed = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(claimed["job_id"], job);
    let run = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", mode)
        .ok()
        .json();
    (
        job,
        run["run_id"].as_i64().unwrap(),
        PathBuf::from(run["log_path"].as_str().unwrap()),
    )
}

/// Put a log in place of the one the run wrote.
fn replace_log(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn lines_json(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

#[test]
fn a_run_of_the_stand_in_agent_reads_as_a_story() {
    let w = world();
    let (job, run, _) = ran(&w, "T-1", "ok");
    let out = w.orch(&["logs", &job.to_string()]).ok();
    let text = &out.stdout;
    assert!(
        !text.contains('\u{1b}'),
        "no colour through a pipe:\n{text}"
    );
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!("run {run} of job {job}: web T-1, stage analyst, attempt 1/3, worker w1")
    );
    for expected in [
        "  init    claude-sonnet-4-5, session fake-",
        "  text    Looking at the task.",
        "  tool    Bash  git status",
        "  ok      On branch main  (+1 line)",
        "  result  success  Done: the stage is complete.",
        "verdict   ok  success result: Done: the stage is complete.  ($0.0123, 2 turns)",
        "usage     $0.0123 · 2 turns · tokens 120 in, 30 out, 2000 cache read, 500 cache write · 1.2 s (API 987 ms) · claude-sonnet-4-5",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.contains("started ") && text.contains("exit 0 after"),
        "{text}"
    );
}

#[test]
fn json_lines_one_event_each_then_the_verdict() {
    let w = world();
    let (job, run, _) = ran(&w, "T-1", "error");
    let out = w.orch(&["logs", &job.to_string(), "--json"]).ok();
    let events = lines_json(&out.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run",
            "init",
            "text",
            "tool_use",
            "tool_result",
            "result",
            "verdict"
        ]
    );
    assert_eq!(events[0]["run"]["run_id"], run);
    assert_eq!(events[0]["run"]["exit_code"], 1);
    assert_eq!(events[0]["job"]["task"], "T-1");
    assert_eq!(events[3]["name"], "Bash");
    assert_eq!(events[3]["input"], "git status");
    assert_eq!(events[4]["text"], "On branch main");
    assert_eq!(events[4]["more_lines"], 1);
    assert_eq!(events[5]["is_error"], true);
    let verdict = &events[6]["verdict"];
    assert_eq!(verdict["class"], "agent_error");
    assert_eq!(verdict["exit_code"], 1);
    assert_eq!(verdict["usage"]["cost_usd"], 0.0123);
}

#[test]
fn raw_is_the_stored_bytes() {
    let w = world();
    let (job, _, log) = ran(&w, "T-1", "ok");
    let out = w.orch(&["logs", &job.to_string(), "--raw"]).ok();
    assert_eq!(out.stdout.as_bytes(), std::fs::read(&log).unwrap());
    let fixture_bytes = std::fs::read(fixture("auth-stderr.log")).unwrap();
    replace_log(&log, &fixture_bytes);
    let out = w.orch(&["logs", &job.to_string(), "--raw"]).ok();
    assert_eq!(out.stdout.as_bytes(), fixture_bytes);
    w.orch(&["logs", &job.to_string(), "--raw", "--json"])
        .status(2);
}

#[test]
fn a_fixture_log_shows_tools_results_and_side_lines() {
    let w = world();
    let (job, _, log) = ran(&w, "T-1", "ok");
    replace_log(&log, &std::fs::read(fixture("ok-stream.jsonl")).unwrap());
    let text = w.orch(&["logs", &job.to_string()]).ok().stdout;
    for expected in [
        "  tool    Bash  grep -rn 401 logs/access.log | head",
        "  ok      GET /api 401 Unauthorized  (+5 lines)",
        "  tool    Edit  src/auth.py",
        "  ok      The file src/auth.py has been updated.",
        "  ·       rate_limit_event",
        "verdict   ok  success result: Done: the 401 handler is fixed.  ($0.0731, 4 turns)",
        "tokens 1520 in, 2310 out, 120400 cache read, 8200 cache write · 1 min 33 s (API 1 min 20 s) · claude-haiku-4-5, claude-sonnet-4-5",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    replace_log(&log, &std::fs::read(fixture("auth-stderr.log")).unwrap());
    let text = w.orch(&["logs", &job.to_string()]).ok().stdout;
    assert!(
        text.contains("  ~       Error: Invalid API key - Please run /login"),
        "{text}"
    );
    assert!(text.contains("verdict   auth  not authenticated"), "{text}");

    replace_log(&log, &std::fs::read(fixture("truncated.jsonl")).unwrap());
    let text = w.orch(&["logs", &job.to_string()]).ok().stdout;
    assert!(text.contains("verdict   no_result"), "{text}");
}

#[test]
fn text_from_the_log_cannot_drive_the_terminal() {
    let w = world();
    let (job, _, log) = ran(&w, "T-1", "ok");
    let hostile = concat!(
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"\u001b]0;owned\u0007\u001b[2Jhello"}]}}"#,
        "\n\x1b[31mstderr in red\x1b[0m\n",
    );
    replace_log(&log, hostile.as_bytes());
    let text = w
        .orch(&["logs", &job.to_string(), "--color", "never"])
        .ok()
        .stdout;
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\u{fffd}[2Jhello"), "{text}");
    assert!(text.contains("\u{fffd}[31mstderr in red"), "{text}");
}

#[test]
fn a_large_log_is_streamed_in_bounded_memory() {
    let w = world();
    let (job, _, log) = ran(&w, "T-1", "ok");
    let ok = std::fs::read(fixture("ok-stream.jsonl")).unwrap();
    let mut file = std::fs::File::create(&log).unwrap();
    // 64 MiB of tool results, each line too long to show, then an ordinary successful run.
    let filler = "x".repeat(8 << 20);
    for _ in 0..8 {
        writeln!(
            file,
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","content":"{filler}"}}]}}}}"#
        )
        .unwrap();
    }
    file.write_all(&ok).unwrap();
    drop(file);
    // With its data segment (heap included) capped at 32 MiB, orch cannot hold the log whole.
    let capped = |extra: &[&str]| {
        let mut command = w.command("sh");
        command
            .arg("-c")
            .arg(r#"ulimit -d 32768 && exec "$@""#)
            .arg("sh")
            .arg(support::ORCH)
            .args(["logs", &job.to_string()])
            .args(extra);
        support::Out::from(command.output().unwrap())
    };
    let out = capped(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let skipped = out
        .stdout
        .lines()
        .filter(|l| l.contains("user line of 8.4 MB not shown (orch logs --raw has it)"))
        .count();
    assert_eq!(skipped, 8, "{}", out.stdout);
    assert!(out.stdout.contains("verdict   ok"), "{}", out.stdout);
    let raw = capped(&["--raw"]);
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    assert_eq!(
        raw.stdout.len() as u64,
        std::fs::metadata(&log).unwrap().len()
    );
}

#[test]
fn which_run_and_when_there_is_none() {
    let w = world();
    let (job, first, log) = ran(&w, "T-1", "error");
    // Let the lease run out: the next claim rescues the job and takes it again, attempt 2.
    w.db()
        .execute("UPDATE jobs SET lease_expires_at = 0 WHERE id = ?1", [job])
        .unwrap();
    let claimed = w.orch(&["claim", "--worker", "w2", "--json"]).ok().json();
    assert_eq!(
        (claimed["job_id"].as_i64(), claimed["attempt"].as_i64()),
        (Some(job), Some(2))
    );
    let second = w
        .orch(&["run", &job.to_string(), "--worker", "w2", "--json"])
        .ok()
        .json()["run_id"]
        .as_i64()
        .unwrap();
    assert_ne!(first, second);

    let latest = lines_json(&w.orch(&["logs", &job.to_string(), "--json"]).ok().stdout);
    assert_eq!(latest[0]["run"]["run_id"], second);
    assert_eq!(latest.last().unwrap()["verdict"]["class"], "ok");
    let older = w
        .orch(&["logs", &job.to_string(), "--run", &first.to_string()])
        .ok()
        .stdout;
    assert!(
        older.starts_with(&format!("run {first} of job {job}")),
        "{older}"
    );
    assert!(older.contains("agent_error"), "{older}");

    let other = w.enqueue("T-2");
    let out = w.orch(&["logs", &other.to_string()]).status(3);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("has no run yet"), "{}", out.stderr);
    let out = w
        .orch(&["logs", &other.to_string(), "--run", &first.to_string()])
        .status(2);
    assert!(out.stderr.contains("not a run of job"), "{}", out.stderr);
    let out = w
        .orch(&["logs", &job.to_string(), "--run", "999"])
        .status(2);
    assert!(
        out.stderr
            .contains(&format!("its runs are {first}, {second}")),
        "{}",
        out.stderr
    );
    w.orch(&["logs", "424242"]).status(2);

    std::fs::remove_file(&log).unwrap();
    let out = w
        .orch(&["logs", &job.to_string(), "--run", &first.to_string()])
        .status(1);
    assert!(
        out.stderr.contains("opening the log of run"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_run_still_going_or_never_started_has_no_verdict() {
    let w = world();
    let (job, run, _) = ran(&w, "T-1", "ok");
    w.db()
        .execute(
            "UPDATE agent_runs SET ended_at = NULL, exit_code = NULL WHERE id = ?1",
            [run],
        )
        .unwrap();
    let text = w.orch(&["logs", &job.to_string()]).ok().stdout;
    assert!(text.contains("still running"), "{text}");
    assert!(
        text.contains("the run has not ended: no verdict yet"),
        "{text}"
    );
    assert!(!text.contains("verdict   "), "{text}");

    let w = world();
    let other = w.enqueue("T-2");
    w.orch(&["claim", "--worker", "w1"]).ok();
    w.orch(&["run", &other.to_string(), "--worker", "w1"])
        .env("ORCH_CLAUDE_BIN", w.path("no-such-agent"))
        .ok();
    let text = w.orch(&["logs", &other.to_string()]).ok().stdout;
    assert!(
        text.contains("the agent never started: cannot start the agent"),
        "{text}"
    );
    assert!(!text.contains("verdict   "), "{text}");
    let events = lines_json(&w.orch(&["logs", &other.to_string(), "--json"]).ok().stdout);
    assert_eq!(events.len(), 1);
    assert!(events[0]["run"]["launch_error"].is_string());
}

/// Finalize `job`'s run (which keeps a copy of its log in the database): the next stage's job.
fn finalize(w: &World, job: i64) -> i64 {
    let out = w
        .orch(&["finalize", &job.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(out["decision"], "advanced", "{out}");
    out["next_job_id"].as_i64().unwrap()
}

#[test]
fn a_finalized_runs_log_is_shown_from_the_database_once_its_file_is_gone() {
    let w = world();
    let (job, _, path) = ran(&w, "T-1", "ok");
    finalize(&w, job);
    let from_file = w.orch(&["logs", &job.to_string()]).ok().stdout;
    let json = w.orch(&["logs", &job.to_string(), "--json"]).ok().stdout;
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"]["from"], "file", "{first}");
    let raw = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = w.orch(&["logs", &job.to_string()]).ok();
    assert!(
        out.stdout.contains("the copy in the database"),
        "{}",
        out.stdout
    );
    // The same story and verdict as from the file: only the header's log line differs.
    let story = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with("log "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(story(&out.stdout), story(&from_file));
    assert!(out.stdout.contains("verdict   ok"), "{}", out.stdout);
    let stored = w.orch(&["logs", &job.to_string(), "--raw"]).ok();
    assert_eq!(stored.stdout.as_bytes(), raw.as_slice());
    // A run that ran on another host is read from the copy even where a file has its name.
    std::fs::write(&path, b"not this host's log\n").unwrap();
    w.db()
        .execute("UPDATE agent_runs SET host = 'elsewhere'", [])
        .unwrap();
    let elsewhere = w.orch(&["logs", &job.to_string(), "--raw"]).ok();
    assert_eq!(elsewhere.stdout.as_bytes(), raw.as_slice());
}

#[test]
fn a_log_longer_than_log_store_max_bytes_keeps_its_tail_from_a_whole_line() {
    let mut w = world();
    w.set("FAKE_CLAUDE_BULK", "200000");
    w.set("ORCH_LOG_STORE_MAX_BYTES", "4096");
    let (job, _, path) = ran(&w, "T-1", "ok");
    let next = finalize(&w, job);
    w.orch(&["cancel", &next.to_string()]).ok();
    let raw = std::fs::read(&path).unwrap();
    assert!(raw.len() > 100_000, "a long log: {}", raw.len());
    std::fs::remove_file(&path).unwrap();
    let stored = w.orch(&["logs", &job.to_string(), "--raw"]).ok().stdout;
    assert!(
        stored.len() <= 4096 && !stored.is_empty(),
        "{}",
        stored.len()
    );
    assert!(raw.ends_with(stored.as_bytes()), "the tail of the log");
    let before = raw[raw.len() - stored.len() - 1];
    assert_eq!(before, b'\n', "the tail starts at a whole line");
    // The result line is at the end: the verdict is the same.
    let out = w.orch(&["logs", &job.to_string()]).ok().stdout;
    assert!(out.contains("kept (log_store_max_bytes)"), "{out}");
    let json = w.orch(&["logs", &job.to_string(), "--json"]).ok().stdout;
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"]["from"], "database", "{first}");
    assert_eq!(first["log"]["bytes"], raw.len() as i64);
    assert_eq!(first["log"]["kept_from"], (raw.len() - stored.len()) as i64);
    assert!(out.contains("verdict   ok"), "{out}");
    // Without a copy (none kept: 0) and without the file, the error names the file.
    let (other, _, other_path) = ran(&w, "T-2", "ok");
    w.orch(&["finalize", &other.to_string()])
        .env("ORCH_LOG_STORE_MAX_BYTES", "0")
        .ok();
    std::fs::remove_file(&other_path).unwrap();
    let gone = w.orch(&["logs", &other.to_string()]).status(1);
    assert!(
        gone.stderr.contains("opening the log of run") && gone.stderr.contains("No such file"),
        "{}",
        gone.stderr
    );
    // A run of another host without a copy: read it there.
    w.db()
        .execute(
            "UPDATE agent_runs SET host = 'build-2' WHERE job_id = ?1",
            [other],
        )
        .unwrap();
    let there = w.orch(&["logs", &other.to_string()]).status(1);
    assert!(
        there.stderr.contains("is on build-2") && there.stderr.contains("keeps no copy"),
        "{}",
        there.stderr
    );
}
