//! `orch finalize`: a run's verdict turned into the job's next state, through the real binary and
//! the stand-in agent (enqueue → claim → run → finalize), with the circuit breaker, the auth gate,
//! the outbox and auto-commit.

use crate::support;

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{git, Out, World};

/// A logged-in world whose retries are due at once and whose breaker is out of the way unless a
/// test sets it. Alerts are on (to a Telegram nobody listens at), so they are queued.
fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_TELEGRAM_CHAT_ID", "-100")
        .set("ORCH_TELEGRAM_BOT_TOKEN", "123:abc")
        .set("ORCH_TELEGRAM_API_URL", "http://127.0.0.1:9");
    w.set("ORCH_RETRY_BASE_SECONDS", "0");
    w.set("ORCH_RATE_LIMIT_BACKOFF_SECONDS", "0");
    w.set("ORCH_BREAKER_THRESHOLD", "100");
    w
}

/// config.toml with top-level `extra` and project `web` with `project` lines in its table.
fn config(w: &World, extra: &str, project: &str) {
    w.raw_config(&format!(
        "{extra}\n[projects.web]\nworkdir = \"{}\"\n{project}\n",
        w.path("work/web").display()
    ));
}

/// Enqueue `task` and claim it as w1; returns the job id.
fn claimed(w: &World, task: &str) -> i64 {
    let job = w.enqueue(task);
    assert_eq!(claim(w, "w1"), job);
    job
}

fn status_json(w: &World) -> Value {
    w.orch(&["status", "--json"]).ok().json()
}

fn claim(w: &World, worker: &str) -> i64 {
    let doc = w.orch(&["claim", "--worker", worker, "--json"]).ok().json();
    doc["job_id"].as_i64().unwrap()
}

/// Run `job` as `worker` with the stand-in agent in `mode`; returns the run id.
fn run(w: &World, job: i64, worker: &str, mode: &str) -> i64 {
    let doc = w
        .orch(&["run", &job.to_string(), "--worker", worker, "--json"])
        .env("FAKE_CLAUDE_MODE", mode)
        .ok()
        .json();
    doc["run_id"].as_i64().unwrap()
}

fn finalize(w: &World, job: i64, code: i32) -> Value {
    w.orch(&["finalize", &job.to_string(), "--json"])
        .status(code)
        .json()
}

/// Claim the next job as w1, run it in `mode`, finalize it expecting `code`.
fn cycle(w: &World, mode: &str, code: i32) -> Value {
    let job = claim(w, "w1");
    run(w, job, "w1", mode);
    finalize(w, job, code)
}

fn query<T: rusqlite::types::FromSql>(w: &World, sql: &str) -> T {
    w.sql(sql, [])
}

/// Alert kinds in the outbox, oldest first.
fn alerts(w: &World) -> Vec<String> {
    let db = w.db();
    let mut stmt = db
        .prepare("SELECT alert_kind FROM outbox WHERE kind = 'alert' ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A job's state, attempt and history length, as the store reads them.
fn job_row(w: &World, job: i64) -> (String, i64, i64) {
    let store = w.store();
    let found = store.job(job).unwrap().expect("the job");
    let history = store.history(job).unwrap().len() as i64;
    (found.state.to_string(), found.attempt, history)
}

/// A git repository in the project's workdir with one commit and its own identity.
fn git_repo(w: &World) -> std::path::PathBuf {
    let dir = w.path("work/web");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["config", "user.name", "Repo Owner"]);
    git(&dir, &["config", "user.email", "owner@example.org"]);
    std::fs::write(dir.join("README"), "web\n").unwrap();
    git(&dir, &["add", "README"]);
    git(&dir, &["commit", "-q", "-m", "initial"]);
    dir
}

#[test]
fn a_task_walks_all_six_stages() {
    let w = world();
    config(
        &w,
        "",
        "[projects.web.forge]\nkind = \"github\"\nrepo = \"o/r\"\n",
    );
    let first = w
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "T-1",
            "--issue",
            "7",
            "--json",
        ])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap();
    let stages = orch::config::DEFAULT_STAGES;
    let mut job = first;
    for (at, stage) in stages.iter().enumerate() {
        assert_eq!(claim(&w, "w1"), job, "stage {stage}");
        let run_id = run(&w, job, "w1", "ok");
        let last = at == stages.len() - 1;
        let doc = finalize(&w, job, 0);
        assert_eq!(doc["job_id"], job);
        assert_eq!(doc["run_id"], run_id);
        assert_eq!(doc["result_ok"], true);
        assert_eq!(doc["class"], "ok");
        assert_eq!(doc["attempt"], 1);
        assert_eq!(doc["retry_at"], Value::Null);
        assert_eq!(doc["already_finalized"], false);
        assert_eq!(doc["comment_queued"], true);
        assert_eq!(job_row(&w, job).0, "done");
        if last {
            assert_eq!(doc["decision"], "completed");
            assert_eq!(doc["next_job_id"], Value::Null);
        } else {
            assert_eq!(doc["decision"], "advanced");
            assert_eq!(doc["next_stage"], stages[at + 1]);
            let next = doc["next_job_id"].as_i64().unwrap();
            let shown = w.orch(&["show", &next.to_string(), "--json"]).ok().json();
            assert_eq!(shown["job"]["stage"], stages[at + 1]);
            assert_eq!(shown["job"]["state"], "queued");
            assert_eq!(shown["job"]["attempt"], 0);
            job = next;
        }
    }
    assert_eq!(
        query::<String>(&w, "SELECT state FROM tasks WHERE key = 'T-1'"),
        "complete"
    );
    assert_eq!(
        query::<i64>(&w, "SELECT count(*) FROM jobs WHERE state = 'done'"),
        6
    );
    // One usage comment per ok stage, with the run's usage; no alert.
    assert_eq!(
        query::<i64>(&w, "SELECT count(*) FROM outbox WHERE kind = 'comment'"),
        6
    );
    let payload: String = query(
        &w,
        "SELECT payload FROM outbox WHERE kind = 'comment' ORDER BY id LIMIT 1",
    );
    let comment: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(comment["stage"], "analyst");
    assert_eq!(comment["issue"], 7);
    assert_eq!(comment["verdict"], "ok");
    assert_eq!(comment["cost_usd"], 0.0123);
    assert_eq!(comment["turns"], 2);
    assert!(alerts(&w).is_empty());
    // The verdict sits beside the untouched exit code.
    let (ok, exit, usage): (bool, i64, String) = w
        .db()
        .query_row(
            "SELECT result_ok, exit_code, usage_json FROM agent_runs WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(ok);
    assert_eq!(exit, 0);
    assert!(usage.contains("\"cost_usd\":0.0123"), "{usage}");
    // Nothing left to claim.
    w.orch(&["claim", "--worker", "w1"]).status(3);
}

#[test]
fn exit_0_with_an_empty_log_is_not_done() {
    let w = world();
    let job = w.enqueue("T-1");
    for attempt in 1..=2 {
        let doc = cycle(&w, "empty", 20);
        assert_eq!(doc["decision"], "requeued");
        assert_eq!(doc["result_ok"], false);
        assert_eq!(doc["class"], "empty");
        assert_eq!(doc["attempt"], attempt);
        assert_eq!(doc["next_job_id"], Value::Null);
        assert!(doc["retry_at"].as_i64().is_some());
        assert_eq!(doc["comment_queued"], false);
        assert_eq!(job_row(&w, job).0, "queued");
        // The silent failure is heard of at once, on every such run.
        assert_eq!(alerts(&w).len(), attempt as usize);
    }
    let doc = cycle(&w, "empty", 21);
    assert_eq!(doc["decision"], "failed");
    assert_eq!(doc["attempt"], 3);
    assert_eq!(doc["retry_at"], Value::Null);
    assert_eq!(
        alerts(&w),
        [
            "silent_failure",
            "silent_failure",
            "silent_failure",
            "failed"
        ]
    );
    assert_eq!(job_row(&w, job).0, "failed");
    assert_eq!(
        query::<String>(&w, "SELECT state FROM tasks WHERE key = 'T-1'"),
        "failed"
    );
    // exit_code stays what the agent returned; no comment for a failed run.
    assert_eq!(
        query::<i64>(
            &w,
            "SELECT count(*) FROM agent_runs WHERE exit_code = 0 AND result_ok = 0"
        ),
        3
    );
    assert_eq!(
        query::<i64>(&w, "SELECT count(*) FROM outbox WHERE kind = 'comment'"),
        0
    );
    let payload: String = query(&w, "SELECT payload FROM outbox WHERE alert_kind = 'failed'");
    let alert: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(alert["job_id"], job);
    assert_eq!(alert["class"], "empty");
    assert_eq!(alert["attempt"], 3);
    // A history line says why.
    let shown = w.orch(&["show", &job.to_string()]).ok();
    assert!(
        shown
            .stdout
            .contains("empty, failed for good after attempt 3/3"),
        "{}",
        shown.stdout
    );
}

#[test]
fn no_result_and_an_is_error_result_are_retried() {
    let w = world();
    w.enqueue("T-1");
    let doc = cycle(&w, "noresult", 20);
    assert_eq!(doc["class"], "no_result");
    assert_eq!(alerts(&w), ["silent_failure"]);
    let doc = cycle(&w, "error", 20);
    assert_eq!(doc["class"], "agent_error");
    assert_eq!(doc["result_ok"], false);
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("Tool execution failed"),
        "{doc}"
    );
    // exit 1 with an error result is no silent failure.
    assert_eq!(alerts(&w), ["silent_failure"]);
    // A success result with a non-zero exit code is not done either; the code stays 3.
    let doc = cycle(&w, "exit:3", 21);
    assert_eq!(doc["class"], "exit_mismatch");
    let run = doc["run_id"].as_i64().unwrap();
    assert_eq!(
        query::<i64>(
            &w,
            &format!("SELECT exit_code FROM agent_runs WHERE id = {run}")
        ),
        3
    );
    // The human line.
    let shown = w.orch(&["finalize", &doc["job_id"].to_string()]).status(21);
    assert!(
        shown.stdout.contains("exit_mismatch → failed")
            && shown.stdout.contains("already finalized"),
        "{}",
        shown.stdout
    );
}

#[test]
fn max_turns_without_resume_fails_at_once_and_does_not_count_for_the_breaker() {
    let mut w = world();
    w.set("ORCH_BREAKER_THRESHOLD", "1");
    // Without a session to continue, another attempt would start over and run out the same way.
    config(&w, "[stages.analyst]\nresume = false\n", "");
    let job = w.enqueue("T-1");
    let doc = cycle(&w, "max_turns", 21);
    assert_eq!(doc["decision"], "failed");
    assert_eq!(doc["class"], "max_turns");
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["breaker"], Value::Null);
    assert_eq!(alerts(&w), ["failed"]);
    assert_eq!(job_row(&w, job).0, "failed");
    let status = status_json(&w);
    assert_eq!(status["breakers"], serde_json::json!([]));
    w.enqueue("T-2");
    claim(&w, "w1");
}

#[test]
fn auth_gates_the_agent_without_consuming_the_attempt() {
    let w = world();
    config(&w, "", "max_running = 2");
    let a = w.enqueue("T-1");
    let b = w.enqueue("T-2");
    assert_eq!(claim(&w, "w1"), a);
    assert_eq!(claim(&w, "w2"), b);
    let run_a = run(&w, a, "w1", "auth");
    run(&w, b, "w2", "auth");
    let doc = finalize(&w, a, 22);
    assert_eq!(doc["decision"], "gated");
    assert_eq!(doc["class"], "auth");
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["gate_held"], true);
    let doc = finalize(&w, b, 22);
    assert_eq!(doc["gate_held"], false, "the gate is held already");
    // Both back in the queue, attempts given back; one alert for the gate, not one per job.
    assert_eq!(job_row(&w, a).0, "queued");
    assert_eq!(job_row(&w, a).1, 0);
    assert_eq!(job_row(&w, b).1, 0);
    assert_eq!(alerts(&w), ["auth_gate"]);
    // Claims stay gated, tick after tick, with the run that showed it.
    for _ in 0..3 {
        let out = w.orch(&["claim", "--worker", "w1"]).status(11);
        assert!(
            out.stderr
                .contains(&format!("auth failure seen in run {run_a}")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(job_row(&w, a).1, 0);
    // Logging in again changes the credentials file: the gate opens by itself.
    std::thread::sleep(Duration::from_millis(20));
    w.login(48 * 3_600_000);
    assert_eq!(claim(&w, "w1"), a);
    assert_eq!(job_row(&w, a).1, 1, "the same attempt again");
    run(&w, a, "w1", "ok");
    let doc = finalize(&w, a, 0);
    assert_eq!(doc["decision"], "advanced");
    assert_eq!(doc["attempt"], 1);
    // Two runs of attempt 1, the first one not counted.
    assert_eq!(
        query::<i64>(
            &w,
            &format!("SELECT count(*) FROM agent_runs WHERE job_id = {a} AND attempt = 1")
        ),
        2
    );
}

#[test]
fn auth_failures_never_open_the_breaker() {
    let mut w = world();
    w.set("ORCH_BREAKER_THRESHOLD", "2");
    w.enqueue("T-1");
    for _ in 0..3 {
        let doc = cycle(&w, "auth", 22);
        assert_eq!(doc["breaker"], Value::Null);
        w.orch(&["claim", "--worker", "w1"]).status(11);
        // An operator who fixed the login otherwise releases the gate.
        w.orch(&["reset-cache"]).ok();
    }
    let status = status_json(&w);
    assert_eq!(status["breakers"], serde_json::json!([]));
    assert_eq!(alerts(&w), ["auth_gate", "auth_gate", "auth_gate"]);
    let doc = cycle(&w, "ok", 0);
    assert_eq!(doc["attempt"], 1, "three auth failures consumed no attempt");
}

/// Open the breaker of agent claude with `n` transient failures of task T-0 (threshold n).
fn open_breaker(w: &mut World, n: usize) -> i64 {
    w.set("ORCH_BREAKER_THRESHOLD", n.to_string());
    w.set("ORCH_MAX_ATTEMPTS", "10");
    let job = w.enqueue("T-0");
    for at in 1..=n {
        let doc = cycle(w, "error", 20);
        let change = if at == n { "opened" } else { "null" };
        assert_eq!(doc["breaker"].to_string().trim_matches('"'), change);
    }
    job
}

/// Move the breaker's clock: its cooldown has passed.
fn cool_down(w: &World, by_ms: i64) {
    w.db()
        .execute("UPDATE breakers SET opened_at = opened_at - ?1", [by_ms])
        .unwrap();
}

#[test]
fn three_transient_failures_open_the_breaker_and_a_probe_closes_it() {
    let mut w = world();
    let job = open_breaker(&mut w, 3);
    assert_eq!(alerts(&w), ["breaker_open"]);
    let payload: String = query(
        &w,
        "SELECT payload FROM outbox WHERE alert_kind = 'breaker_open'",
    );
    assert!(
        payload.contains("after 3 transient failures in a row"),
        "{payload}"
    );

    // While open, claim exits 12 and touches no job.
    let before = job_row(&w, job);
    let out = w.orch(&["claim", "--worker", "w1"]).status(12);
    assert!(
        out.stderr
            .contains("circuit breaker for agent claude is open after 3 transient failures"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert_eq!(job_row(&w, job), before);

    let status = status_json(&w);
    let breaker = &status["breakers"][0];
    assert_eq!(breaker["agent"], "claude");
    assert_eq!(breaker["state"], "open");
    assert_eq!(breaker["consecutive_failures"], 3);
    assert_eq!(breaker["last_class"], "agent_error");
    assert_eq!(breaker["cooldown_seconds"], 600);
    let text = w.orch(&["status"]).ok().stdout;
    assert!(text.contains("breaker claude: open since"), "{text}");
    assert!(text.contains("orch reset-cache --breaker"), "{text}");

    // After the cooldown it is half-open: one claim goes through as the probe.
    cool_down(&w, 600_000);
    let doc = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(doc["job_id"], job);
    assert_eq!(doc["breaker_probe"], true);
    let status = status_json(&w);
    assert_eq!(status["breakers"][0]["state"], "half_open");
    assert_eq!(status["breakers"][0]["probe_job_id"], job);
    // The probe is out: the next claim waits.
    w.enqueue("T-9");
    let out = w.orch(&["claim", "--worker", "w2"]).status(12);
    assert!(
        out.stderr.contains("half-open and its probe (job"),
        "{}",
        out.stderr
    );

    run(&w, job, "w1", "ok");
    let doc = finalize(&w, job, 0);
    assert_eq!(doc["breaker"], "closed");
    let status = status_json(&w);
    // A quiet breaker (closed, no failures counted) is shown by neither text nor JSON.
    assert_eq!(status["breakers"], serde_json::json!([]));
    let text = w.orch(&["status"]).ok().stdout;
    assert!(
        !text.contains("breaker claude"),
        "a quiet breaker is not shown: {text}"
    );
    claim(&w, "w2");
}

#[test]
fn a_failed_probe_reopens_with_the_cooldown_doubled() {
    let mut w = world();
    let job = open_breaker(&mut w, 2);
    cool_down(&w, 600_000);
    assert_eq!(claim(&w, "w1"), job);
    run(&w, job, "w1", "rate_limit");
    let doc = finalize(&w, job, 20);
    assert_eq!(doc["class"], "rate_limit");
    assert_eq!(doc["breaker"], "reopened");
    assert_eq!(alerts(&w), ["breaker_open", "breaker_open"]);
    assert_eq!(
        query::<i64>(&w, "SELECT cooldown_ms FROM breakers"),
        1_200_000
    );
    let status = status_json(&w);
    assert_eq!(status["breakers"][0]["state"], "open");
    assert_eq!(status["breakers"][0]["cooldown_seconds"], 1200);
    // The old cooldown is not enough any more.
    cool_down(&w, 600_000);
    w.orch(&["claim", "--worker", "w1"]).status(12);
    cool_down(&w, 600_000);
    let doc = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(doc["breaker_probe"], true);
    // A probe whose lease runs out frees the slot: the breaker never stays stuck.
    w.db()
        .execute(
            "UPDATE jobs SET lease_expires_at = 0 WHERE state = 'running'",
            [],
        )
        .unwrap();
    let doc = w.orch(&["claim", "--worker", "w2", "--json"]).ok().json();
    assert_eq!(doc["breaker_probe"], true);
    assert_eq!(
        doc["job_id"], job,
        "rescued and claimed again as the new probe"
    );
}

#[test]
fn two_racing_claimers_get_one_probe() {
    let mut w = world();
    open_breaker(&mut w, 1);
    config(&w, "", "max_running = 8");
    for n in 1..=4 {
        w.enqueue(&format!("T-{n}"));
    }
    // Every claimer's preflight is cached first, so they race on the claim itself.
    w.orch(&["preflight"]).ok();
    cool_down(&w, 600_000);
    let children: Vec<Child> = (1..=4)
        .map(|n| {
            w.orch(&["claim", "--worker", &format!("w{n}"), "--json"])
                .spawn()
        })
        .collect();
    let outs: Vec<Out> = children.into_iter().map(Out::of).collect();
    let codes: Vec<i32> = outs.iter().map(|o| o.code).collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{outs:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 12).count(), 3, "{outs:?}");
    let winner = outs.iter().find(|o| o.code == 0).unwrap().json();
    assert_eq!(winner["breaker_probe"], true);
    assert_eq!(
        query::<i64>(&w, "SELECT count(*) FROM jobs WHERE state = 'running'"),
        1
    );
}

#[test]
fn reset_cache_breaker_closes_it() {
    let mut w = world();
    open_breaker(&mut w, 1);
    w.orch(&["claim", "--worker", "w1"]).status(12);
    let out = w.orch(&["reset-cache", "--json"]).ok().json();
    assert_eq!(out["breakers_closed"], Value::Null);
    w.orch(&["claim", "--worker", "w1"]).status(12);
    let out = w
        .orch(&["reset-cache", "--breaker", "--agent", "claude", "--json"])
        .ok()
        .json();
    assert_eq!(out["breakers_closed"], 1);
    let doc = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(doc["breaker_probe"], false);
    let text = w.orch(&["reset-cache", "--breaker"]).ok().stdout;
    assert!(text.contains("closed 0 open circuit breakers"), "{text}");
}

#[test]
fn finalizing_twice_changes_nothing_and_prints_the_earlier_decision() {
    let w = world();
    let job = w.enqueue("T-1");
    let first = cycle(&w, "ok", 0);
    let history = job_row(&w, job);
    let jobs: i64 = query(&w, "SELECT count(*) FROM jobs");
    let outbox: i64 = query(&w, "SELECT count(*) FROM outbox");
    let again = finalize(&w, job, 0);
    assert_eq!(again["already_finalized"], true);
    for field in [
        "job_id",
        "run_id",
        "result_ok",
        "class",
        "decision",
        "next_job_id",
        "next_stage",
        "attempt",
    ] {
        assert_eq!(again[field], first[field], "{field}");
    }
    assert_eq!(job_row(&w, job), history);
    assert_eq!(query::<i64>(&w, "SELECT count(*) FROM jobs"), jobs);
    assert_eq!(query::<i64>(&w, "SELECT count(*) FROM outbox"), outbox);

    // A requeued run reports the same retry time again.
    let next = first["next_job_id"].as_i64().unwrap();
    let requeued = cycle(&w, "error", 20);
    let again = w
        .orch(&[
            "finalize",
            &next.to_string(),
            "--run",
            &requeued["run_id"].to_string(),
            "--json",
        ])
        .status(20)
        .json();
    assert_eq!(again["retry_at"], requeued["retry_at"]);
    assert_eq!(again["already_finalized"], true);

    // A run of another job, and jobs or runs that do not exist, are usage errors.
    w.orch(&[
        "finalize",
        &next.to_string(),
        "--run",
        &first["run_id"].to_string(),
    ])
    .status(2);
    w.orch(&["finalize", "999"]).status(2);
    w.orch(&["finalize", &job.to_string(), "--run", "999"])
        .status(2);
}

#[test]
fn racing_finalizers_make_one_decision_and_one_commit() {
    let w = world();
    let repo = git_repo(&w);
    // In the workdir itself: the commits land on its checked-out branch.
    config(&w, "", "auto_commit = true\nworktrees = false");
    for round in 1..=3 {
        let job = w.enqueue(&format!("T-{round}"));
        assert_eq!(claim(&w, "w1"), job);
        w.orch(&["run", &job.to_string(), "--worker", "w1"])
            .env("FAKE_CLAUDE_TOUCH", format!("out-{round}.txt"))
            .ok();
        let children: Vec<Child> = (0..3)
            .map(|_| w.orch(&["finalize", &job.to_string(), "--json"]).spawn())
            .collect();
        let docs: Vec<Value> = children
            .into_iter()
            .map(|c| {
                let out = Out::of(c);
                assert_eq!(out.code, 0, "{out:?}");
                out.json()
            })
            .collect();
        let fresh = docs
            .iter()
            .filter(|d| d["already_finalized"] == false)
            .count();
        assert_eq!(fresh, 1, "{docs:?}");
        let next = &docs[0]["next_job_id"];
        assert!(next.as_i64().is_some());
        assert!(docs
            .iter()
            .all(|d| d["next_job_id"] == *next && d["decision"] == "advanced"));
        assert_eq!(
            query::<i64>(
                &w,
                &format!("SELECT count(*) FROM jobs WHERE task_id = {round}")
            ),
            2,
            "one next-stage job"
        );
        w.orch(&["cancel", &next.to_string()]).ok();
    }
    let log = git(&repo, &["log", "--format=%s"]);
    assert_eq!(log.lines().count(), 4, "{log}");
    assert_eq!(
        query::<i64>(&w, "SELECT count(*) FROM outbox WHERE kind = 'comment'"),
        0,
        "no forge configured"
    );
}

#[test]
fn auto_commit_records_message_author_and_content() {
    let w = world();
    let repo = git_repo(&w);
    config(
        &w,
        "",
        "auto_commit = true\nworktrees = false\ncommit_author = \"orch bot <bot@example.org>\"",
    );
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w, "host-1"), job);
    let run_id = w
        .orch(&["run", &job.to_string(), "--worker", "host-1", "--json"])
        .env("FAKE_CLAUDE_TOUCH", "notes/out.txt")
        .ok()
        .json()["run_id"]
        .as_i64()
        .unwrap();
    let doc = finalize(&w, job, 0);
    assert_eq!(doc["commit"]["status"], "committed");
    let sha = doc["commit"]["sha"].as_str().unwrap().to_string();
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]).trim(), sha);
    let head = git(&repo, &["log", "-1", "--format=%s%n%an <%ae>%n%cn <%ce>"]);
    assert_eq!(
        head,
        format!(
            "analyst(host-1): auto-commit from analyst run_id={run_id}\norch bot <bot@example.org>\nRepo Owner <owner@example.org>\n"
        )
    );
    assert_eq!(
        git(&repo, &["show", "HEAD:notes/out.txt"]),
        format!("analyst run {run_id}\n")
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert_eq!(
        query::<String>(
            &w,
            &format!("SELECT commit_sha FROM agent_runs WHERE id = {run_id}")
        ),
        sha
    );
    let shown = w.orch(&["show", &job.to_string()]).ok().stdout;
    assert!(
        shown.contains(&format!("auto-commit {}", &sha[..12])),
        "{shown}"
    );

    // An ok run that changed nothing commits nothing.
    let next = doc["next_job_id"].as_i64().unwrap();
    assert_eq!(claim(&w, "host-1"), next);
    run(&w, next, "host-1", "ok");
    let doc = finalize(&w, next, 0);
    assert_eq!(doc["commit"]["status"], "no_changes");
    assert_eq!(git(&repo, &["log", "--format=%s"]).lines().count(), 2);

    // A failed run commits nothing, even with changes lying around.
    std::fs::write(repo.join("stray.txt"), "x").unwrap();
    let third = doc["next_job_id"].as_i64().unwrap();
    assert_eq!(claim(&w, "host-1"), third);
    run(&w, third, "host-1", "error");
    let doc = finalize(&w, third, 20);
    assert_eq!(doc["commit"], Value::Null);
    assert_eq!(git(&repo, &["log", "--format=%s"]).lines().count(), 2);
}

#[test]
fn a_failed_commit_is_recorded_and_alerted_and_the_verdict_stands() {
    let w = world();
    let repo = git_repo(&w);
    let hook = repo.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho 'hook says no' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The operator asked for the repository's hooks.
    config(&w, "git_hooks = true", "auto_commit = true");
    let job = claimed(&w, "T-1");
    w.orch(&["run", &job.to_string(), "--worker", "w1"])
        .env("FAKE_CLAUDE_TOUCH", "out.txt")
        .ok();
    let doc = finalize(&w, job, 0);
    assert_eq!(doc["decision"], "advanced");
    assert_eq!(doc["result_ok"], true);
    assert_eq!(doc["commit"]["status"], "failed");
    assert!(
        doc["commit"]["error"]
            .as_str()
            .unwrap()
            .contains("hook says no"),
        "{doc}"
    );
    assert_eq!(alerts(&w), ["commit_failed"]);
    let history = w.orch(&["show", &job.to_string()]).ok().stdout;
    assert!(history.contains("auto-commit failed"), "{history}");
    assert_eq!(git(&repo, &["log", "--format=%s"]).lines().count(), 1);
    // The same with no repository at all: nothing to commit, nothing alerted.
    std::fs::remove_dir_all(repo.join(".git")).unwrap();
    let next = doc["next_job_id"].as_i64().unwrap();
    assert_eq!(claim(&w, "w1"), next);
    run(&w, next, "w1", "ok");
    let doc = finalize(&w, next, 0);
    assert_eq!(doc["commit"]["status"], "not_a_repository");
    assert_eq!(alerts(&w), ["commit_failed"]);
}

#[test]
fn a_run_still_going_is_refused_then_an_interrupted_run_is_retried() {
    let mut w = world();
    w.set("FAKE_CLAUDE_PIDS", w.path("pids"));
    let job = claimed(&w, "T-1");
    let child = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", "hang")
        .spawn();
    let until = Instant::now() + Duration::from_secs(10);
    // The agent and its grandchild: its signal traps are set.
    let started = || {
        std::fs::read_to_string(w.path("pids"))
            .unwrap_or_default()
            .lines()
            .count()
            == 2
    };
    while !started() {
        assert!(Instant::now() < until, "the agent never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = w.orch(&["finalize", &job.to_string()]).status(1);
    assert!(out.stderr.contains("is still going"), "{}", out.stderr);
    assert_eq!(job_row(&w, job).0, "running");
    // SAFETY: a plain kill(2) of the orch process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let ran = Out::of(child);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.json()["interrupted"], true);
    let doc = finalize(&w, job, 20);
    assert_eq!(doc["class"], "interrupted");
    assert_eq!(doc["decision"], "requeued");
    assert_eq!(doc["breaker"], Value::Null);
    let status = status_json(&w);
    assert_eq!(
        status["breakers"],
        serde_json::json!([]),
        "an interruption is no failure of the agent"
    );
}

#[test]
fn only_the_current_lease_holders_run_is_finalized() {
    let w = world();
    let job = claimed(&w, "T-1");
    run(&w, job, "w1", "ok");
    // Taken over by hand: no orch command moves a lease without closing the run.
    w.db()
        .execute("UPDATE jobs SET lease_owner = 'w2'", [])
        .unwrap();
    let out = w.orch(&["finalize", &job.to_string()]).status(1);
    assert!(
        out.stderr
            .contains("only the run of the current lease holder is finalized"),
        "{}",
        out.stderr
    );
    assert_eq!(
        query::<Option<i64>>(&w, "SELECT finalized_at FROM agent_runs"),
        None
    );
    w.orch(&["finalize", "1"]).status(1);
    let no_run = w.enqueue("T-2");
    let out = w.orch(&["finalize", &no_run.to_string()]).status(1);
    assert!(
        out.stderr.contains("has no run to finalize"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_rescued_jobs_open_run_carries_the_rescue_decision() {
    let w = world();
    let job = claimed(&w, "T-1");
    // orch died mid-run: the run row was opened and never ended.
    w.db()
        .execute(
            "INSERT INTO agent_runs (job_id, attempt, worker, agent, started_at) VALUES (?1, 1, 'w1', 'claude', 1)",
            [job],
        )
        .unwrap();
    let out = w.orch(&["finalize", &job.to_string()]).status(1);
    assert!(out.stderr.contains("is still going"), "{}", out.stderr);
    w.db()
        .execute("UPDATE jobs SET lease_expires_at = 1", [])
        .unwrap();
    assert_eq!(claim(&w, "w2"), job, "rescued, then claimed again");
    let doc = w
        .orch(&["finalize", &job.to_string(), "--run", "1", "--json"])
        .status(20)
        .json();
    assert_eq!(doc["already_finalized"], true);
    assert_eq!(doc["class"], "lease_expired");
    assert_eq!(doc["decision"], "requeued");
    // The new attempt's run is finalized as usual.
    run(&w, job, "w2", "ok");
    let doc = finalize(&w, job, 0);
    assert_eq!(doc["attempt"], 2);
    let shown = w.orch(&["show", &job.to_string()]).ok().stdout;
    assert!(shown.contains("lease_expired  requeued"), "{shown}");

    // A rescue that fails a job for good alerts like finalize does.
    let mut w = world();
    w.set("ORCH_MAX_ATTEMPTS", "1");
    let job = claimed(&w, "T-1");
    w.db()
        .execute("UPDATE jobs SET lease_expires_at = 1", [])
        .unwrap();
    w.orch(&["claim", "--worker", "w2"]).status(3);
    assert_eq!(job_row(&w, job).0, "failed");
    assert_eq!(alerts(&w), ["failed"]);
}

#[test]
fn a_launch_failure_is_transient_and_counts() {
    let mut w = world();
    w.set("ORCH_BREAKER_THRESHOLD", "1");
    let job = claimed(&w, "T-1");
    w.orch(&["run", &job.to_string(), "--worker", "w1"])
        .env("ORCH_CLAUDE_BIN", w.path("missing-claude"))
        .ok();
    let doc = finalize(&w, job, 20);
    assert_eq!(doc["class"], "launch_error");
    assert_eq!(doc["result_ok"], Value::Null);
    assert_eq!(doc["decision"], "requeued");
    assert_eq!(doc["breaker"], "opened");
    assert!(
        doc["reason"].as_str().unwrap().contains("not started"),
        "{doc}"
    );
}

#[test]
fn unfinalized_runs_are_listed_for_tick() {
    let w = world();
    let job = claimed(&w, "T-1");
    let run_id = run(&w, job, "w1", "ok");
    let store = w.store();
    let pending = store.unfinalized_runs(None, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].run_id, pending[0].job_id), (run_id, job));
    assert_eq!(pending[0].worker, "w1");
    assert!(store.unfinalized_runs(Some("w2"), 10).unwrap().is_empty());
    finalize(&w, job, 0);
    assert!(store.unfinalized_runs(None, 10).unwrap().is_empty());
}

/// Projects `web` and `api` (each with its workdir), a one-stage pipeline, the breaker at 3.
fn two_projects() -> World {
    let mut w = world();
    w.set("ORCH_BREAKER_THRESHOLD", "3");
    std::fs::create_dir_all(w.path("work/api")).unwrap();
    w.raw_config(&format!(
        "[pipeline]\nstages = [\"build\"]\n\n[projects.web]\nworkdir = \"{}\"\n\n[projects.api]\nworkdir = \"{}\"\n",
        w.path("work/web").display(),
        w.path("work/api").display()
    ));
    w
}

fn enqueue_in(w: &World, project: &str, task: &str) -> i64 {
    w.orch(&["enqueue", "--project", project, "--task", task, "--json"])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap()
}

fn tick(w: &World, code: i32) -> Value {
    w.orch(&["tick", "--worker", "w1", "--json"])
        .status(code)
        .json()
}

fn breaker_state(w: &World) -> Option<String> {
    w.db()
        .query_row(
            "SELECT state FROM breakers WHERE agent = 'claude'",
            [],
            |row| row.get(0),
        )
        .ok()
}

#[test]
fn tasks_whose_prompt_cannot_be_passed_fail_alone_and_leave_the_breaker_closed() {
    let w = two_projects();
    // Queued before orch refused such bodies at enqueue: too long for one argument, or with a NUL.
    let bodies = [
        "x".repeat(200 * 1024),
        "fix\0it".to_string(),
        "y".repeat(200 * 1024),
    ];
    for (n, body) in bodies.iter().enumerate() {
        let job = enqueue_in(&w, "web", &format!("T-{n}"));
        w.db()
            .execute(
                "UPDATE tasks SET body = ?1 WHERE id = (SELECT task_id FROM jobs WHERE id = ?2)",
                rusqlite::params![body, job],
            )
            .unwrap();
        let steps = tick(&w, 21)["steps"].clone();
        let finalized = steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "finalize")
            .unwrap_or_else(|| panic!("{steps}"));
        assert_eq!(finalized["outcome"]["class"], "bad_prompt", "{steps}");
        assert_eq!(finalized["outcome"]["decision"], "failed");
        assert_eq!(finalized["outcome"]["breaker"], Value::Null);
    }
    assert_eq!(
        breaker_state(&w),
        None,
        "no failure of the agent was counted"
    );
    assert_eq!(alerts(&w), ["failed", "failed", "failed"]);
    // Another task runs as ever.
    enqueue_in(&w, "api", "A-1");
    tick(&w, 0);
}

#[test]
fn a_missing_workdir_holds_its_project_once_and_the_others_run() {
    let w = two_projects();
    let web: Vec<i64> = (0..3)
        .map(|n| enqueue_in(&w, "web", &format!("W-{n}")))
        .collect();
    enqueue_in(&w, "api", "A-1");
    std::fs::remove_dir(w.path("work/web")).unwrap();
    let out = w.orch(&["tick", "--worker", "w1"]).ok();
    assert!(
        out.stderr.contains("project web is held on this host"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("claim: job 4 api A-1"),
        "{}",
        out.stdout
    );
    w.orch(&["tick", "--worker", "w1"]).status(3);
    w.orch(&["tick", "--worker", "w1"]).status(3);
    assert_eq!(alerts(&w), ["project_held"], "one alert per hold");
    let holds = status_json(&w)["holds"].clone();
    assert_eq!(holds[0]["project"], "web", "{holds}");
    assert!(
        holds[0]["reason"].as_str().unwrap().contains("work/web"),
        "{holds}"
    );
    let text = w.orch(&["status"]).ok().stdout;
    assert!(text.contains("project web held on"), "{text}");

    // The workdir vanishes between claim and run, three times over: the job goes back with its
    // attempt given back, and the agent's breaker hears nothing of it.
    for _ in 0..3 {
        std::fs::create_dir(w.path("work/web")).unwrap();
        let job = claim(&w, "w1");
        assert!(web.contains(&job), "{job}");
        std::fs::remove_dir(w.path("work/web")).unwrap();
        w.orch(&["run", &job.to_string(), "--worker", "w1"]).ok();
        let doc = finalize(&w, job, 20);
        assert_eq!(doc["class"], "workdir_missing");
        assert_eq!(doc["decision"], "requeued");
        assert_eq!(job_row(&w, job).1, 0, "the attempt was given back");
    }
    assert_eq!(breaker_state(&w), None);
    assert_eq!(status_json(&w)["holds"][0]["project"], "web");
    // Back in place: the hold is released by the next claim, and the job runs.
    std::fs::create_dir(w.path("work/web")).unwrap();
    tick(&w, 0);
    assert_eq!(status_json(&w)["holds"], serde_json::json!([]));
}
