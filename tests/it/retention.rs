//! Retention over the real binary: `orch prune` (what it removes, what it leaves, its dry run,
//! its files on this host and others), the tick's shared prune turn, and the counts and totals
//! that outlive a prune.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orch::store::{ClaimMessage, Finish, Message, NewComment};
use serde_json::Value;
use support::{now_ms, World};

const DAY: i64 = 86_400_000;

/// A world with a two-stage pipeline, the agent logged in, and the tick's own prune off (the
/// tests that want it turn it on).
fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.config("[pipeline]\nstages = [\"analyst\", \"developer\"]");
    w.set("ORCH_PRUNE_INTERVAL_HOURS", "0");
    w
}

/// Queue task `key` and tick until it is complete; its job ids.
fn complete(w: &World, key: &str) -> Vec<i64> {
    w.enqueue(key);
    w.orch(&["tick", "--worker", "w1", "--max-jobs", "10"]).ok();
    let state: String = w.sql("SELECT state FROM tasks WHERE key = ?1", [key]);
    assert_eq!(state, "complete", "{key}");
    jobs_of(w, key)
}

fn jobs_of(w: &World, key: &str) -> Vec<i64> {
    let db = w.db();
    let mut stmt = db
        .prepare("SELECT j.id FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE t.key = ?1 ORDER BY j.id")
        .unwrap();
    stmt.query_map([key], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The log files task `key`'s runs wrote.
fn logs_of(w: &World, key: &str) -> Vec<PathBuf> {
    let db = w.db();
    let mut stmt = db
        .prepare(
            "SELECT r.log_path FROM agent_runs r JOIN jobs j ON j.id = r.job_id
             JOIN tasks t ON t.id = j.task_id WHERE t.key = ?1 ORDER BY r.id",
        )
        .unwrap();
    stmt.query_map([key], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|path| PathBuf::from(path.unwrap()))
        .collect()
}

/// Make task `key` look finished `days` days ago.
fn age(w: &World, key: &str, days: i64) {
    w.db()
        .execute(
            "UPDATE tasks SET updated_at = updated_at - ?2 WHERE key = ?1",
            rusqlite::params![key, days * DAY],
        )
        .unwrap();
}

/// Record a worktree as left on `host` (None: the one `orch` runs on) for task `key`, at
/// `worktrees/web/KEY` beside the database: what a crash between a task's end and its clean-up
/// leaves.
fn left_worktree(w: &World, key: &str, host: Option<&str>) {
    let path = w.path("state/worktrees/web").join(key);
    w.db()
        .execute(
            "UPDATE tasks SET worktree = ?2, worktree_host = ?3 WHERE key = ?1",
            rusqlite::params![key, path.display().to_string(), host],
        )
        .unwrap();
}

fn prune(w: &World, args: &[&str]) -> Value {
    let mut all = vec!["prune", "--json"];
    all.extend_from_slice(args);
    w.orch(&all).ok().json()
}

fn steps(out: &Value) -> Vec<&str> {
    out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

/// What `orch status --json` and `orch metrics --json` say about totals, without the parts that
/// move with the clock.
fn totals(w: &World) -> (Value, Value, Vec<Value>) {
    let status = w.orch(&["status", "--json"]).ok().json();
    let metrics = w.orch(&["metrics", "--json"]).ok().json();
    let families = metrics["families"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["name"].as_str().unwrap().ends_with("_seconds"))
        .cloned()
        .collect();
    (status["totals"].clone(), status["counts"].clone(), families)
}

#[test]
fn prune_removes_old_finished_tasks_with_their_logs_and_leaves_the_rest() {
    let w = world();
    let old = complete(&w, "T-old");
    let cancelled = w.enqueue("T-cancelled");
    w.orch(&["cancel", &cancelled.to_string()]).ok();
    let recent = complete(&w, "T-recent");
    let live = w.enqueue("T-live");
    age(&w, "T-old", 100);
    age(&w, "T-cancelled", 91);
    // A message about the old task still waiting to go out, and one delivered.
    let mut store = w.store();
    let comment = |job_id| {
        Message::Comment(NewComment {
            project: "web".into(),
            task: "T-old".into(),
            issue: 1,
            job_id,
            run_id: 1,
            stage: "analyst".into(),
            verdict: "ok".into(),
            ..NewComment::default()
        })
    };
    let now = now_ms();
    let sent = store.queue(&comment(old[0]), now - 100 * DAY).unwrap();
    let claim = ClaimMessage {
        claimer: "test",
        now: now - 100 * DAY,
        claim_ms: 60_000,
        dedup_ms: 0,
        alerts: true,
        comments: true,
        skip_projects: &[],
    };
    assert_eq!(store.claim_message(&claim).unwrap().unwrap().id, sent);
    store
        .finish_message(sent, "test", &Finish::Sent, now - 100 * DAY)
        .unwrap();
    store.queue(&comment(old[1]), now - 100 * DAY).unwrap();
    let old_logs = logs_of(&w, "T-old");
    assert_eq!(old_logs.len(), 2);
    assert!(old_logs.iter().all(|log| log.is_file()));
    let before = totals(&w);

    let dry = prune(&w, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (dry["tasks"].as_i64(), dry["jobs"].as_i64()),
        (Some(2), Some(3))
    );
    assert_eq!(dry["log_files"], 2);
    let bytes: u64 = old_logs.iter().map(|l| l.metadata().unwrap().len()).sum();
    assert_eq!(dry["log_bytes"].as_u64(), Some(bytes));
    assert!(
        old_logs.iter().all(|log| log.is_file()),
        "a dry run removes nothing"
    );
    let text = w.orch(&["prune", "--dry-run"]).ok().stdout;
    assert!(
        text.starts_with("would remove 2 task(s) finished before"),
        "{text}"
    );

    let done = prune(&w, &[]);
    assert_eq!(
        (
            done["tasks"].as_i64(),
            done["jobs"].as_i64(),
            done["runs"].as_i64()
        ),
        (Some(2), Some(3), Some(2))
    );
    assert_eq!(
        (done["log_files"].as_i64(), done["outbox"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(done["complete"], true);
    assert!(done["bytes_freed"].as_u64().unwrap() >= bytes, "{done}");
    assert!(old_logs.iter().all(|log| !log.exists()), "{old_logs:?}");
    for job in old.iter().chain([&cancelled]) {
        w.orch(&["show", &job.to_string()]).status(2);
    }
    // The recent and the live task, their logs, and the message still to go out are there.
    for job in recent.iter().chain([&live]) {
        w.orch(&["show", &job.to_string()]).ok();
    }
    assert!(logs_of(&w, "T-recent").iter().all(|log| log.is_file()));
    let pending: i64 = w.sql("SELECT count(*) FROM outbox WHERE state = 'pending'", []);
    assert_eq!(pending, 1);
    let listed = w.orch(&["jobs", "--state", "done", "--json"]).ok().json();
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        2,
        "T-recent's two jobs"
    );
    // Status and metrics count what was there: finished work stays counted.
    assert_eq!(totals(&w), before);
    // Nothing is left to remove; the periodic prune is recorded as done.
    assert_eq!(prune(&w, &[])["tasks"], 0);
    let done_at: Option<i64> = w.sql(
        "SELECT last_done_at FROM maintenance WHERE name = 'prune'",
        [],
    );
    assert!(done_at.is_some());
}

#[test]
fn prune_leaves_what_is_not_its_own() {
    let w = world();
    complete(&w, "T-1");
    age(&w, "T-1", 100);
    let logs = logs_of(&w, "T-1");
    // One log has been replaced by a link to a file orch did not make, the other moved out of
    // the log directory (its row names a path elsewhere).
    let outside = w.path("precious.txt");
    std::fs::write(&outside, "keep me").unwrap();
    std::fs::remove_file(&logs[0]).unwrap();
    std::os::unix::fs::symlink(&outside, &logs[0]).unwrap();
    let elsewhere = w.path("work/web/job-1-run-2.log");
    std::fs::rename(&logs[1], &elsewhere).unwrap();
    w.db()
        .execute(
            "UPDATE agent_runs SET log_path = ?1 WHERE log_path = ?2",
            rusqlite::params![
                elsewhere.display().to_string(),
                logs[1].display().to_string()
            ],
        )
        .unwrap();
    let out = w.orch(&["prune", "--json"]).ok();
    assert_eq!(out.json()["tasks"], 1);
    assert_eq!(out.json()["log_files"], 0);
    for why in ["it is not a regular file", "not in the log directory"] {
        assert!(out.stderr.contains(why), "{}", out.stderr);
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    assert!(elsewhere.is_file() && std::fs::symlink_metadata(&logs[0]).is_ok());
}

#[test]
fn files_in_a_directory_others_may_write_wait_until_it_is_orchs_again() {
    use std::os::unix::fs::PermissionsExt;
    let w = world();
    complete(&w, "T-1");
    age(&w, "T-1", 100);
    let logs = logs_of(&w, "T-1");
    let dir = logs[0].parent().unwrap().to_path_buf();
    let mode = |m| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
    mode(0o777);
    let out = w.orch(&["prune", "--json"]).ok();
    assert_eq!(
        (
            out.json()["tasks"].as_i64(),
            out.json()["log_files"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert!(
        out.stderr.contains("orch: prune: leaving the files in"),
        "{}",
        out.stderr
    );
    assert!(logs.iter().all(|log| log.is_file()));
    let waiting: i64 = w.sql("SELECT count(*) FROM trash WHERE kind = 'log'", []);
    assert_eq!(waiting, 2, "kept for when the directory is orch's again");
    mode(0o700);
    let out = w.orch(&["prune", "--json"]).ok();
    assert_eq!(
        (
            out.json()["tasks"].as_i64(),
            out.json()["log_files"].as_i64()
        ),
        (Some(0), Some(2))
    );
    assert!(logs.iter().all(|log| !log.exists()));
}

#[test]
fn a_task_whose_run_may_still_write_its_log_is_left_until_the_run_ends() {
    let mut w = world();
    w.set("ORCH_LEASE_SECONDS", "600");
    let job = w.enqueue("T-1");
    w.orch(&["claim", "--worker", "w1"]).ok();
    let child = w
        .orch(&["run", &job.to_string(), "--worker", "w1"])
        .env("FAKE_CLAUDE_SLEEP", "2")
        .spawn();
    let until = Instant::now() + Duration::from_secs(10);
    while w.calls().iter().all(|c| !c.starts_with("run")) {
        assert!(Instant::now() < until, "the agent never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Cancelled from another host: the task is finished, its run closed, but its agent (which
    // only its own host can stop) still writes the log.
    w.orch(&["cancel", &job.to_string()])
        .env("ORCH_HOST", "elsewhere")
        .ok();
    let log = logs_of(&w, "T-1").remove(0);
    let kept = prune(&w, &["--older-than", "0s"]);
    assert_eq!(kept["tasks"], 0);
    assert!(log.is_file());
    let out = support::Out::of(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let gone = prune(&w, &["--older-than", "0s"]);
    assert_eq!(
        (gone["tasks"].as_i64(), gone["log_files"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(!log.exists());
}

#[test]
fn another_hosts_files_are_left_to_it() {
    let mut w = world();
    w.set("ORCH_HOST", "h1");
    complete(&w, "T-1");
    age(&w, "T-1", 100);
    left_worktree(&w, "T-1", Some("h1"));
    let logs = logs_of(&w, "T-1");
    let pruned = w
        .orch(&["prune", "--json"])
        .env("ORCH_HOST", "h2")
        .ok()
        .json();
    assert_eq!(
        (
            pruned["tasks"].as_i64(),
            pruned["log_files"].as_i64(),
            pruned["files_elsewhere"].as_i64()
        ),
        (Some(1), Some(0), Some(3)),
        "two logs and a worktree, h1's"
    );
    assert!(logs.iter().all(|log| log.is_file()), "h2 leaves h1's logs");
    // h1's next tick takes its trash out, whatever else it does.
    w.orch(&["tick", "--worker", "w1"]).status(3);
    assert!(logs.iter().all(|log| !log.exists()));
    let left: i64 = w.sql("SELECT count(*) FROM trash", []);
    assert_eq!(left, 0);
}

#[test]
fn a_worktree_of_a_pruned_task_is_removed() {
    let w = world();
    complete(&w, "T-1");
    complete(&w, "T-2");
    age(&w, "T-1", 100);
    let tree = w.path("state/worktrees/web");
    for task in ["T-1", "T-2"] {
        left_worktree(&w, task, None);
        std::fs::create_dir_all(tree.join(task).join("src")).unwrap();
        std::fs::write(tree.join(task).join("src/main.rs"), "fn main() {}").unwrap();
    }
    let pruned = prune(&w, &[]);
    assert_eq!(pruned["worktrees"], 1);
    assert!(!tree.join("T-1").exists());
    assert!(
        tree.join("T-2/src/main.rs").is_file(),
        "a kept task's worktree stays"
    );
}

#[test]
fn the_tick_prunes_once_per_interval_for_every_worker() {
    let mut w = world();
    complete(&w, "T-1");
    complete(&w, "T-2");
    age(&w, "T-1", 100);
    w.set("ORCH_PRUNE_INTERVAL_HOURS", "24");
    w.set("ORCH_RETENTION_DAYS", "30");
    let first = w
        .orch(&["tick", "--worker", "w1", "--json"])
        .status(3)
        .json();
    assert_eq!(
        steps(&first),
        ["notify", "prune", "preflight", "stop"],
        "{first}"
    );
    let report = &first["steps"][1]["report"];
    assert_eq!(
        (report["tasks"].as_i64(), report["complete"].as_bool()),
        (Some(1), Some(true))
    );
    // Another worker, a moment later: not due.
    age(&w, "T-2", 100);
    let second = w
        .orch(&["tick", "--worker", "w2", "--json"])
        .status(3)
        .json();
    assert_eq!(steps(&second), ["notify", "preflight", "stop"]);
    assert_eq!(jobs_of(&w, "T-2").len(), 2);
    // A day later it is due again, for whichever worker comes first.
    w.db()
        .execute(
            "UPDATE maintenance SET last_done_at = last_done_at - ?1",
            [25 * 3_600_000_i64],
        )
        .unwrap();
    let third = w
        .orch(&["tick", "--worker", "w2", "--json"])
        .status(3)
        .json();
    assert_eq!(third["steps"][1]["report"]["tasks"], 1, "{third}");
    assert!(jobs_of(&w, "T-2").is_empty());
    let text = w.orch(&["tick", "--worker", "w1"]).status(3).stdout;
    assert!(!text.contains("prune"), "{text}");
}

#[test]
fn older_than_needs_a_unit() {
    let w = world();
    for bad in ["90", "5x", "-1d", "1.5d"] {
        let out = w.orch(&["prune", &format!("--older-than={bad}")]).status(2);
        assert!(
            out.stderr
                .starts_with("orch: error: --older-than: expected a whole number and a unit"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_new_database_gives_freed_space_back() {
    let w = world();
    let body = w.path("body.txt");
    std::fs::write(&body, "x".repeat(60_000)).unwrap();
    for i in 0..40 {
        let key = format!("T-{i}");
        let mut cmd = w.orch(&["enqueue", "--project", "web", "--task", &key, "--json"]);
        cmd.command.arg("--body-file").arg(&body);
        let job = cmd.ok().json()["job_id"].as_i64().unwrap();
        w.orch(&["cancel", &job.to_string()]).ok();
    }
    let db = w.path("state/orch.db");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    // Every change checkpointed into the file, so its size is the database's.
    w.db()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let full = size(&db);
    let pruned = prune(&w, &["--older-than", "0s"]);
    assert_eq!(pruned["tasks"], 40);
    assert_eq!(pruned["database"]["incremental"], true);
    let (before, after) = (
        pruned["database"]["bytes_before"].as_i64().unwrap(),
        pruned["database"]["bytes_after"].as_i64().unwrap(),
    );
    assert!(after < before / 4, "{before} → {after}");
    w.db()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    assert!(
        size(&db) < full / 4,
        "the file shrank: {full} → {}",
        size(&db)
    );
}

#[test]
fn files_agents_left_in_their_temporary_directory_go_after_the_retention() {
    let w = world();
    let tmp = w.path("state/logs/agent-tmp/gemini");
    std::fs::create_dir_all(&tmp).unwrap();
    for dir in [w.path("state/logs/agent-tmp"), tmp.clone()] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
    }
    let old = tmp.join("gemini-client-error-old.json");
    let new = tmp.join("gemini-client-error-new.json");
    for file in [&old, &new] {
        std::fs::write(file, "{\"prompt\": \"the task's text\"}").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(100 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let pruned = prune(&w, &[]);
    assert_eq!(pruned["agent_files"], 1, "{pruned}");
    assert!(!old.exists());
    assert!(new.exists(), "a recent report stays");
}

#[test]
fn a_prune_removes_the_copies_of_logs_the_database_keeps() {
    let w = world();
    complete(&w, "T-1");
    complete(&w, "T-2");
    age(&w, "T-1", 100);
    let kept = |key: &str| -> i64 {
        w.sql(
            "SELECT count(*) FROM run_logs l JOIN agent_runs r ON r.id = l.run_id
             JOIN jobs j ON j.id = r.job_id JOIN tasks t ON t.id = j.task_id WHERE t.key = ?1",
            [key],
        )
    };
    assert_eq!((kept("T-1"), kept("T-2")), (2, 2), "one per finalized run");
    let dry = prune(&w, &["--dry-run"]);
    assert_eq!(
        (dry["runs"].as_i64(), dry["logs"].as_i64()),
        (Some(2), Some(2))
    );
    let text = w.orch(&["prune", "--dry-run"]).ok().stdout;
    assert!(
        text.contains("2 run(s) (2 with a log kept in the database)"),
        "{text}"
    );
    let out = prune(&w, &[]);
    assert_eq!(out["tasks"], 1);
    assert_eq!(out["logs"], 2, "the report counts the copies it removed");
    let left: i64 = w.sql("SELECT count(*) FROM run_logs", []);
    assert_eq!(
        (left, kept("T-2")),
        (2, 2),
        "T-1's copies went with its runs"
    );
}
