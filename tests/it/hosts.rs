//! Several hosts on one queue (`ORCH_HOST` names each): what describes one machine (its preflight
//! verdict, its auth gate) is kept per host; what a later stage or a second finalizer needs is
//! in the database, not in a file of the host that wrote it.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::World;

fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_RETRY_BASE_SECONDS", "0");
    w
}

fn preflight_on(w: &World, host: &str, code: i32) -> Value {
    w.orch(&["preflight", "--json"])
        .env("ORCH_HOST", host)
        .status(code)
        .json()
}

#[test]
fn two_hosts_keep_their_own_verdict_and_gate() {
    let w = world();
    assert_eq!(preflight_on(&w, "a", 0)["cached"], false);
    // On host b an agent turns out not to be logged in: b's gate is held.
    let job = w.enqueue("T-1").to_string();
    w.orch(&["claim", "--worker", "wb", "--json"])
        .env("ORCH_HOST", "b")
        .ok();
    w.orch(&["run", &job, "--worker", "wb", "--json"])
        .env("ORCH_HOST", "b")
        .env("FAKE_CLAUDE_MODE", "auth")
        .ok();
    let doc = w
        .orch(&["finalize", &job, "--json"])
        .env("ORCH_HOST", "b")
        .status(22)
        .json();
    assert_eq!(doc["gate_held"], true);
    let gated = w.orch(&["preflight"]).env("ORCH_HOST", "b").status(11);
    assert!(
        gated.stdout.contains("auth failure seen in run"),
        "{}",
        gated.stdout
    );
    // Host a's binary and login are not b's: its verdict stands, served from its cache.
    let verdict = preflight_on(&w, "a", 0);
    assert_eq!(verdict["cached"], true, "{verdict}");
    let claimed = w
        .orch(&["claim", "--worker", "wa", "--json"])
        .env("ORCH_HOST", "a")
        .ok()
        .json();
    assert_eq!(
        claimed["job_id"].to_string(),
        job,
        "a claims what b may not"
    );
    // Each host's reset is its own.
    let reset = w
        .orch(&["reset-cache", "--json"])
        .env("ORCH_HOST", "a")
        .ok()
        .json();
    assert_eq!(
        (
            reset["gates_released"].as_i64(),
            reset["verdicts_dropped"].as_i64()
        ),
        (Some(0), Some(1))
    );
    preflight_on(&w, "b", 11);
    let reset = w
        .orch(&["reset-cache", "--json"])
        .env("ORCH_HOST", "b")
        .ok()
        .json();
    assert_eq!(reset["gates_released"], 1);
    preflight_on(&w, "b", 0);
}

#[test]
fn the_next_stage_reads_the_previous_result_from_the_database() {
    let mut w = world();
    w.set("FAKE_CLAUDE_ARGV", w.path("argv"));
    let (job, run) = ran(&w);
    let next = w.orch(&["finalize", &job, "--json"]).ok().json()["next_job_id"].to_string();
    // The analyst's log stays on the host that ran it; the next stage runs elsewhere.
    std::fs::remove_file(run["log_path"].as_str().unwrap()).unwrap();
    w.orch(&["claim", "--worker", "w2"])
        .env("ORCH_HOST", "other")
        .ok();
    let out = w
        .orch(&["run", &next, "--worker", "w2", "--json"])
        .env("ORCH_HOST", "other")
        .ok();
    assert!(!out.stderr.contains("cannot read"), "{}", out.stderr);
    let argv = std::fs::read(w.path("argv")).unwrap();
    let prompt = String::from_utf8_lossy(&argv);
    assert!(
        prompt.contains("previous stage (empty when there is none):\nDone: the stage is complete."),
        "{prompt}"
    );
}

/// The finalize lock's holder as orch writes it: a process on `host` (this boot and pid
/// namespace), pid `pid` started at `start`.
fn holder(host: &str, pid: i64, start: i64) -> String {
    serde_json::json!({
        "host": host,
        "boot_id": orch::procfs::boot_id(),
        "pid_ns": orch::procfs::pid_namespace(),
        "pid": pid,
        "start": start,
    })
    .to_string()
}

/// Enqueue, claim and run a job (ok): its id and `orch run --json`'s answer.
fn ran(w: &World) -> (String, Value) {
    let job = w.enqueue("T-1").to_string();
    w.orch(&["claim", "--worker", "w1"]).ok();
    let run = w
        .orch(&["run", &job, "--worker", "w1", "--json"])
        .ok()
        .json();
    (job, run)
}

fn run_id(run: &Value) -> i64 {
    run["run_id"].as_i64().unwrap()
}

fn lock_run(w: &World, run_id: i64, holder: &str, until: i64) {
    let changed = w
        .db()
        .execute(
            "UPDATE agent_runs SET finalizing_by = ?2, finalizing_until = ?3 WHERE id = ?1",
            rusqlite::params![run_id, holder, until],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn a_finalize_lock_left_by_a_finalizer_that_died_here_is_taken_over() {
    let w = world();
    let (job, run) = ran(&w);
    let run_id = run_id(&run);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = i64::from(gone.id());
    gone.wait().unwrap();
    // Held for half a minute by a process of this host that is no more.
    lock_run(
        &w,
        run_id,
        &holder(&w.host(), pid, 1),
        support::now_ms() + 30_000,
    );
    let started = Instant::now();
    let doc = w.orch(&["finalize", &job, "--json"]).ok().json();
    assert_eq!(
        (doc["decision"].as_str(), doc["already_finalized"].as_bool()),
        (Some("advanced"), Some(false))
    );
    assert!(started.elapsed() < Duration::from_secs(20), "it waited");
}

#[test]
fn a_finalize_lock_held_on_another_host_is_waited_for() {
    let w = world();
    let (job, run) = ran(&w);
    let run_id = run_id(&run);
    // Another host's finalizer cannot be seen from here: its lock holds until it runs out.
    let until = support::now_ms() + 1500;
    lock_run(&w, run_id, &holder("elsewhere", 1, 1), until);
    let doc = w.orch(&["finalize", &job, "--json"]).ok().json();
    assert_eq!(doc["already_finalized"], false);
    assert!(support::now_ms() >= until, "finalized while the lock held");
    let finalized_at: i64 = w.sql(
        "SELECT finalized_at FROM agent_runs WHERE id = ?1",
        [run_id],
    );
    assert!(finalized_at >= until);
    // The lock went with the decision.
    let left: Option<String> = w.sql(
        "SELECT finalizing_by FROM agent_runs WHERE id = ?1",
        [run_id],
    );
    assert_eq!(left, None);
}
