//! `orch tick` end to end, its per-worker lock, the recovery of unfinalized runs, and `orch demo`.
use crate::support;

use support::World;

fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_RETRY_BASE_SECONDS", "0");
    w
}

#[test]
fn a_tick_claims_runs_and_finalizes_one_job() {
    let w = world();
    let job = w.enqueue("T-1");
    let out = w.orch(&["tick", "--worker", "w1", "--json"]).ok();
    let doc = out.json();
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["notify", "preflight", "claim", "run", "finalize", "stop"],
        "{doc}"
    );
    assert_eq!(doc["steps"][2]["job_id"].as_i64(), Some(job));
    assert_eq!(doc["steps"][4]["outcome"]["decision"], "advanced");
    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(shown["job"]["state"], "done");
    // The next stage is queued; a second tick takes it, a third with --max-jobs finishes more.
    w.orch(&["tick", "--worker", "w1"]).ok();
    w.orch(&["tick", "--worker", "w1", "--max-jobs", "10"]).ok();
    let state: String = w.sql("SELECT state FROM tasks", []);
    assert_eq!(state, "complete");
    let out = w.orch(&["tick", "--worker", "w1"]).status(3);
    assert!(out.stdout.contains("no eligible job"), "{}", out.stdout);
}

#[test]
fn a_failed_run_stops_the_tick_with_finalizes_status() {
    let mut w = world();
    w.set("FAKE_CLAUDE_MODE", "empty");
    w.enqueue("T-1");
    w.orch(&["tick", "--worker", "w1"]).status(20);
    w.set("FAKE_CLAUDE_MODE", "auth");
    w.orch(&["tick", "--worker", "w1"]).status(22);
    // The gate now holds: preflight stops the next tick with 11 before any claim.
    w.orch(&["tick", "--worker", "w1"]).status(11);
}

#[test]
fn overlapping_ticks_one_works_the_other_exits_3() {
    let mut w = world();
    w.set("FAKE_CLAUDE_SLEEP", "1.5");
    w.enqueue("T-1");
    w.enqueue("T-2");
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        w.path("work/web").display()
    ));
    let first = w.orch(&["tick", "--worker", "same"]).spawn();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let second = w.orch(&["tick", "--worker", "same"]).status(3);
    assert!(
        second
            .stderr
            .contains("another tick for worker same is running"),
        "{}",
        second.stderr
    );
    let first = support::Out::of(first);
    assert_eq!(first.code, 0, "{first:?}");
    // Another worker is not blocked by that lock.
    w.orch(&["tick", "--worker", "other"]).ok();
}

#[test]
fn a_run_left_unfinalized_is_finalized_by_the_next_tick() {
    let w = world();
    let job = w.enqueue("T-1").to_string();
    w.orch(&["claim", "--worker", "w1"]).ok();
    w.orch(&["run", &job, "--worker", "w1"]).ok();
    // orch died here, before finalize: the next tick of this worker finalizes the run first.
    let doc = w.orch(&["tick", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(doc["steps"][1]["step"], "recover", "{doc}");
    assert_eq!(doc["steps"][1]["outcome"]["decision"], "advanced");
    let shown = w.orch(&["show", &job, "--json"]).ok().json();
    assert_eq!(shown["job"]["state"], "done");
    assert_eq!(
        shown["runs"].as_array().unwrap().len(),
        1,
        "the stage was not run again"
    );
}

#[test]
fn the_demo_walks_all_stages_and_leaves_nothing_behind() {
    let w = World::new();
    let tmp = w.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = w
        .orch(&["demo", "--color", "never"])
        .env("TMPDIR", &tmp)
        // The demo must not use the caller's agents, database or config.
        .env("ORCH_CLAUDE_BIN", "/nonexistent/claude")
        .env("ORCH_CODEX_BIN", "/nonexistent/codex")
        .env("ORCH_DB", "/nonexistent/orch.db")
        .ok();
    for stage in [
        "analyst",
        "architect",
        "developer",
        "reviewer",
        "tester",
        "deployer",
    ] {
        assert!(
            out.stdout.contains(&format!("stage {stage}")),
            "{stage} missing:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("agent_error → will retry"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ok → completed"), "{}", out.stdout);
    assert!(out.stdout.contains("| Cost | $0.0123 |"), "{}", out.stdout);
    // Two agents, one stage on the second: each passes its own preflight and runs its stages.
    for agent in ["claude", "codex"] {
        assert!(
            out.stdout
                .contains(&format!("preflight pass (agent {agent}, checked)")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains("stage reviewer (agent codex), attempt 1/3"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("stage tester (agent claude)"),
        "{}",
        out.stdout
    );
    // Codex reports no cost: the demo's price table estimates it, and says so.
    assert!(
        out.stdout.contains("| Cost | ~$0.0028 (estimated) |"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the demo left files behind"
    );
    assert!(
        !w.path("state/orch.db").exists(),
        "the demo touched the caller's database"
    );
}

#[test]
fn the_demo_keeps_its_directory_when_asked() {
    let w = World::new();
    let dir = w.path("demo");
    w.orch(&["demo", "--dir", dir.to_str().unwrap()]).ok();
    assert!(dir.join("state/orch.db").exists());
    // The task's branch, pushed to the demo's remote after each stage.
    let log = std::process::Command::new("git")
        .args([
            "-C",
            dir.join("remote.git").to_str().unwrap(),
            "log",
            "--oneline",
            "feature/DEMO-1-add-a-health-check-endpoint",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.contains("deployer(demo-worker): auto-commit from deployer"),
        "{log}"
    );
    assert_eq!(
        log.lines().count(),
        7,
        "six stages and the first commit: {log}"
    );
    // Its worktree went with the task's end.
    let left: Vec<_> = std::fs::read_dir(dir.join("state/worktrees/demo"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let out = w.orch(&["demo", "--dir", dir.to_str().unwrap()]).status(1);
    assert!(out.stderr.contains("is not empty"), "{}", out.stderr);
}

#[test]
fn every_line_and_flag_of_the_demo_is_true() {
    let w = World::new();
    let tmp = w.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // --json is one JSON document.
    let doc = w.orch(&["demo", "--json"]).env("TMPDIR", &tmp).ok().json();
    assert_eq!(doc["task_state"], "complete");
    assert_eq!(doc["kept"], false);
    assert!(doc["steps"].as_array().unwrap().len() > 10, "{doc}");
    assert_eq!(doc["comments"].as_array().unwrap().len(), 6);
    // One pull request, opened after the first push and updated through the six stages: its
    // body's table has every run, the architect's failed first attempt among them.
    let pull = &doc["pull_request"];
    assert_eq!(pull["number"], 1, "{doc}");
    assert_eq!(pull["head"], "feature/DEMO-1-add-a-health-check-endpoint");
    assert_eq!(pull["base"], "main");
    assert_eq!(pull["state"], "open");
    let body = pull["body"].as_str().unwrap();
    assert!(body.starts_with("Closes #1\n"), "{body}");
    for row in [
        "| analyst | 1 | ok |",
        "| architect | 1 | agent_error |",
        "| deployer | 1 | ok |",
    ] {
        assert!(body.contains(row), "{row} missing:\n{body}");
    }
    assert_eq!(doc["comments_posted"], 6);
    // Without --keep it says the directory is gone, and points at no path.
    let out = w.orch(&["demo"]).env("TMPDIR", &tmp).ok();
    let last = out.stdout.trim_end().lines().last().unwrap().to_string();
    assert!(
        last.contains("was removed") && last.contains("--keep"),
        "{last}"
    );
    // With --keep, the commands it prints work as printed.
    let out = w.orch(&["demo", "--keep"]).env("TMPDIR", &tmp).ok();
    let commands: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("orch --config"))
        .map(|l| l.trim().trim_start_matches("orch "))
        .collect();
    assert_eq!(commands.len(), 3, "{}", out.stdout);
    for command in commands {
        let args: Vec<&str> = command.split(' ').collect();
        let shown = w.orch(&args).ok();
        assert!(!shown.stdout.is_empty(), "{command}");
    }
    // --db and --config are refused, not ignored; --set reaches the demo's configuration.
    let out = w.orch(&["demo", "--db", "/tmp/x.db"]).status(2);
    assert!(
        out.stderr.contains("leave out --db and --config"),
        "{}",
        out.stderr
    );
    let out = w
        .orch(&["demo", "--set", "auth_expiry_skew_seconds=86400"])
        .env("TMPDIR", &tmp)
        .status(1);
    assert!(
        out.stdout.contains("preflight") || out.stderr.contains("not complete"),
        "{}",
        out.stderr
    );
}
