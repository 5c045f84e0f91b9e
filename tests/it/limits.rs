//! Limits: permission modes, usage limits held per host and agent, the idle timeout, resumed
//! sessions and budgets, over the real binary with the stand-in agent.

use crate::support;

use serde_json::Value;
use support::{now_ms, World};

/// A world whose alerts have somewhere to go (queued in the outbox), with retries due at once.
fn world() -> World {
    let mut w = World::new();
    w.login(30 * 24 * 3_600_000);
    w.set("ORCH_TELEGRAM_CHAT_ID", "-100")
        .set("ORCH_TELEGRAM_BOT_TOKEN", "123:abc")
        .set("ORCH_TELEGRAM_API_URL", "http://127.0.0.1:9")
        .set("ORCH_RETRY_BASE_SECONDS", "0")
        .set("ORCH_RATE_LIMIT_BACKOFF_SECONDS", "0");
    let got = w.path("got.txt");
    w.set("FAKE_CLAUDE_GOT", got);
    w
}

fn claim(w: &World) -> i64 {
    w.orch(&["claim", "--worker", "w1", "--json"]).ok().json()["job_id"]
        .as_i64()
        .unwrap()
}

fn run(w: &World, job: i64, mode: &str) -> Value {
    w.orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", mode)
        .ok()
        .json()
}

fn finalize(w: &World, job: i64, code: i32) -> Value {
    w.orch(&["finalize", &job.to_string(), "--json"])
        .status(code)
        .json()
}

/// What the stand-in agent got on each run: "mode=… allowed=… disallowed=… budget=… resume=…".
fn got(w: &World) -> Vec<String> {
    std::fs::read_to_string(w.path("got.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Alert kinds in the outbox, oldest first.
pub(crate) fn alerts(w: &World) -> Vec<(String, String)> {
    let db = w.db();
    let mut stmt = db
        .prepare(
            "SELECT alert_kind, json_extract(payload, '$.reason') FROM outbox
             WHERE kind = 'alert' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

pub(crate) fn kinds(w: &World) -> Vec<String> {
    alerts(w).into_iter().map(|(kind, _)| kind).collect()
}

pub(crate) fn job_state(w: &World, job: i64) -> (String, i64, i64) {
    let db = w.db();
    db.query_row(
        "SELECT state, attempt, run_after FROM jobs WHERE id = ?1",
        [job],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .unwrap()
}

#[test]
fn each_stage_gets_its_permission_mode_and_the_settings_reach_the_agent() {
    let w = world();
    w.config(
        "[stages.developer]\nallowed_tools = [\"Bash(cargo test:*)\", \"Edit\"]\n\
         disallowed_tools = [\"WebFetch\"]\nmax_budget_usd = 2.5\n",
    );
    // analyst (plan), then its next stage architect (plan), then developer (acceptEdits).
    let job = w.enqueue("T-1");
    for stage in ["analyst", "architect", "developer"] {
        let claimed = claim(&w);
        run(&w, claimed, "ok");
        finalize(&w, claimed, 0);
        let shown = w
            .orch(&["show", &claimed.to_string(), "--json"])
            .ok()
            .json();
        assert_eq!(shown["job"]["stage"], stage);
    }
    assert!(job > 0);
    assert_eq!(
        got(&w),
        [
            "mode=plan allowed= disallowed= budget= resume=",
            "mode=plan allowed= disallowed= budget= resume=",
            "mode=acceptEdits allowed=Bash(cargo test:*),Edit disallowed=WebFetch budget=2.5 resume=",
        ]
    );
    // A stage may choose another mode; a name Claude Code does not know is refused with a hint.
    w.config("[stages.developer]\npermission_mode = \"dontAsk\"\n");
    let dry = w
        .orch(&["run", &job.to_string(), "--dry-run", "--json"])
        .ok()
        .json();
    let argv: Vec<&str> = dry["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        argv.windows(2).any(|w| w == ["--permission-mode", "plan"]),
        "{argv:?}"
    );
    w.config("[stages.developer]\npermission_mode = \"acceptEdit\"\n");
    let err = w.orch(&["status"]).status(78).stderr;
    assert!(err.contains("permission_mode"), "{err}");
    assert!(err.contains("acceptEdits"), "{err}");
}

#[test]
fn a_denied_tool_fails_the_job_for_good_with_an_alert_naming_the_setting() {
    let w = world();
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    run(&w, job, "denied");
    let doc = finalize(&w, job, 21);
    assert_eq!(doc["class"], "permission_denied");
    assert_eq!(doc["decision"], "failed");
    let reason = doc["reason"].as_str().unwrap();
    assert!(reason.contains("Edit: src/main.rs"), "{reason}");
    assert!(reason.contains("Bash: cargo test"), "{reason}");
    let alerts = alerts(&w);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0, "failed");
    assert!(
        alerts[0]
            .1
            .contains("[stages.analyst] permission_mode (now plan) or allowed_tools"),
        "{}",
        alerts[0].1
    );
    assert_eq!(job_state(&w, job).0, "failed");
}

#[test]
fn a_usage_limit_holds_the_agent_until_it_resets_then_claims_resume_by_themselves() {
    let mut w = world();
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 3\n",
        w.path("work/web").display()
    ));
    w.set("FAKE_CLAUDE_RESETS_IN", "7200");
    let a = w.enqueue("T-1");
    let b = w.enqueue("T-2");
    let c = w.enqueue("T-3");
    assert_eq!(claim(&w), a);
    assert_eq!(claim(&w), b);
    let before = now_ms();
    run(&w, a, "usage_limit");
    run(&w, b, "usage_limit");
    let doc = finalize(&w, a, 20);
    assert_eq!(doc["class"], "usage_limit");
    assert_eq!(doc["decision"], "requeued");
    let doc_b = finalize(&w, b, 20);
    assert_eq!(doc_b["class"], "usage_limit");
    // Due at the reset (plus at most a minute's spread), the attempt given back.
    let (state, attempt, due) = job_state(&w, a);
    assert_eq!((state.as_str(), attempt), ("queued", 0));
    let reset = (before / 1000 + 7200) * 1000;
    assert!(
        due >= reset - 2000 && due <= reset + 62_000,
        "due {due}, reset {reset}"
    );
    // One alert for the hold, saying when it lifts, not one per job.
    assert_eq!(kinds(&w), ["usage_limit"]);
    assert!(alerts(&w)[0].1.contains("UTC"), "{:?}", alerts(&w));
    // Claims for the agent are held: exit 13, nothing claimed, though T-3 is due.
    let out = w.orch(&["claim", "--worker", "w2"]).status(13);
    assert!(out.stderr.contains("usage limit"), "{}", out.stderr);
    let out = w.orch(&["preflight", "--explain"]).status(13);
    let text = out.stdout;
    assert!(text.contains("the limit resets"), "{text}");
    assert!(text.contains("UTC"), "{text}");
    let out = w.orch(&["tick", "--worker", "w2"]).status(13);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("usage limit"),
        "{out:?}"
    );
    assert_eq!(job_state(&w, c).0, "queued");
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["agent_holds"][0]["hold"], "usage");
    // Two hours on, the hold is gone and the jobs are due: claimed with no command in between.
    w.set("ORCH_CLOCK_AHEAD_SECONDS", "7300");
    w.orch(&["preflight"]).ok();
    let mut claimed = vec![claim(&w), claim(&w), claim(&w)];
    claimed.sort();
    assert_eq!(claimed, [a, b, c]);
    assert_eq!(kinds(&w), ["usage_limit"]);
}

#[test]
fn a_stalled_run_is_ended_while_a_chatty_long_run_is_not() {
    let w = world();
    w.config("idle_timeout_seconds = 2\nkill_grace_seconds = 1\n");
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    let out = run(&w, job, "stall");
    assert_eq!(out["stalled"], true);
    assert_eq!(out["timed_out"], false);
    let doc = finalize(&w, job, 20);
    assert_eq!(doc["class"], "stalled");
    assert_eq!(doc["decision"], "requeued");
    // Longer than the idle timeout, but never silent that long.
    assert_eq!(claim(&w), job);
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", "chatty")
        .env("FAKE_CLAUDE_SLEEP", "3.5")
        .env("FAKE_CLAUDE_TICK", "0.1")
        .ok()
        .json();
    assert_eq!(out["stalled"], false);
    assert_eq!(finalize(&w, job, 0)["class"], "ok");
}

#[test]
fn a_timed_out_run_is_continued_by_the_next_attempt_in_the_same_workdir() {
    let w = world();
    w.config("[stages.analyst]\ntimeout_seconds = 1\n");
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    let first = run(&w, job, "stall");
    assert_eq!(first["timed_out"], true);
    assert_eq!(finalize(&w, job, 20)["class"], "timeout");
    let session: String = w.sql(
        "SELECT json_extract(usage_json, '$.session_id') FROM agent_runs WHERE id = ?1",
        [first["run_id"].as_i64().unwrap()],
    );
    assert!(session.starts_with("fake-"), "{session}");
    assert_eq!(claim(&w), job);
    let second = run(&w, job, "ok");
    assert_eq!(second["resumed_session"], session.as_str());
    assert_eq!(finalize(&w, job, 0)["class"], "ok");
    let runs = got(&w);
    assert_eq!(
        runs[1],
        format!("mode=plan allowed= disallowed= budget= resume={session}")
    );
    // The continuation prompt, not the stage's, and the session kept its id.
    let log = std::fs::read_to_string(second["log_path"].as_str().unwrap()).unwrap();
    assert!(
        log.contains(&format!("\"session_id\":\"{session}\"")),
        "{log}"
    );
    let shown = w.orch(&["show", &job.to_string()]).ok().stdout;
    let run_id = second["run_id"].as_i64().unwrap();
    let first_id = first["run_id"].as_i64().unwrap();
    assert!(
        shown.contains(&format!(
            "run {run_id} continued session {session} of run {first_id}"
        )),
        "{shown}"
    );
}

#[test]
fn a_session_the_agent_no_longer_has_falls_back_to_a_fresh_start_in_the_same_attempt() {
    let w = world();
    w.config("[stages.analyst]\ntimeout_seconds = 1\n");
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    run(&w, job, "stall");
    finalize(&w, job, 20);
    // The agent lost its sessions.
    std::fs::remove_dir_all(w.path("home/.fake-claude")).unwrap();
    assert_eq!(claim(&w), job);
    let second = run(&w, job, "ok");
    assert_eq!(second["resumed_session"], Value::Null);
    let doc = finalize(&w, job, 0);
    assert_eq!(doc["class"], "ok");
    assert_eq!(doc["attempt"], 2);
    let runs = got(&w);
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs[1].contains("resume=fake-"), "{runs:?}");
    assert!(runs[2].ends_with("resume="), "{runs:?}");
    let resumed: Option<String> = w.sql(
        "SELECT resumed_session FROM agent_runs WHERE id = ?1",
        [second["run_id"].as_i64().unwrap()],
    );
    assert_eq!(resumed, None);
}

#[test]
fn resume_can_be_turned_off_per_stage() {
    let w = world();
    w.config("[stages.analyst]\ntimeout_seconds = 1\nresume = false\n");
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    run(&w, job, "stall");
    finalize(&w, job, 20);
    assert_eq!(claim(&w), job);
    run(&w, job, "ok");
    assert!(got(&w).iter().all(|line| line.ends_with("resume=")));
}

#[test]
fn a_task_over_its_budget_waits_while_other_tasks_keep_running() {
    let mut w = world();
    w.set("FAKE_CLAUDE_COST", "0.75");
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_cost_usd = 1\n",
        w.path("work/web").display()
    ));
    let a = w.enqueue("T-1");
    assert_eq!(claim(&w), a);
    run(&w, a, "error");
    finalize(&w, a, 20);
    // $0.75 spent: one more run may start, and takes it to $1.50.
    assert_eq!(claim(&w), a);
    run(&w, a, "error");
    finalize(&w, a, 20);
    let b = w.enqueue("T-2");
    // T-1 is over budget: the claim passes it over for T-2.
    assert_eq!(claim(&w), b);
    assert_eq!(job_state(&w, a).0, "over_budget");
    assert_eq!(job_state(&w, a).1, 2, "the attempt is not counted");
    assert_eq!(kinds(&w), ["over_budget"]);
    // Later claims leave it waiting, without another alert.
    run(&w, b, "ok");
    finalize(&w, b, 0);
    claim(&w);
    assert_eq!(job_state(&w, a).0, "over_budget");
    assert_eq!(kinds(&w), ["over_budget"]);
    let listed = w.orch(&["jobs", "--state", "over_budget"]).ok().stdout;
    assert!(listed.contains("T-1"), "{listed}");
    let status = w.orch(&["status"]).ok().stdout;
    assert!(status.contains("1 job waiting for budget"), "{status}");
    // Raising it by less than what is spent over keeps it waiting; enough releases it.
    let raised = w
        .orch(&["retry", &a.to_string(), "--raise-budget", "0.25", "--json"])
        .ok()
        .json();
    assert_eq!(raised["released"], false);
    let raised = w
        .orch(&["retry", &a.to_string(), "--raise-budget", "1", "--json"])
        .ok()
        .json();
    assert_eq!(raised["released"], true);
    assert_eq!(job_state(&w, a).0, "queued");
    // A job not waiting for budget is not raised.
    w.orch(&["retry", &a.to_string(), "--raise-budget", "1"])
        .status(2);
}

#[test]
fn a_project_over_its_daily_budget_waits_for_the_next_day() {
    let mut w = world();
    w.set("FAKE_CLAUDE_COST", "2");
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_cost_usd_per_day = 1.5\nmax_running = 3\n",
        w.path("work/web").display()
    ));
    let a = w.enqueue("T-1");
    let b = w.enqueue("T-2");
    let c = w.enqueue("T-3");
    assert_eq!(claim(&w), a);
    run(&w, a, "ok");
    finalize(&w, a, 0);
    // $2 spent today: nothing more starts; every queued job waits, with one alert.
    w.orch(&["claim", "--worker", "w1"]).status(3);
    for job in [b, c] {
        assert_eq!(job_state(&w, job).0, "over_budget");
    }
    assert_eq!(kinds(&w), ["over_budget"]);
    let metrics = w.orch(&["metrics"]).ok().stdout;
    assert!(
        metrics.contains("orch_cost_today_usd{project=\"web\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("orch_budget_per_day_usd{project=\"web\"} 1.5"),
        "{metrics}"
    );
    // Tomorrow the jobs go back to the queue by themselves.
    w.set("ORCH_CLOCK_AHEAD_SECONDS", "86400");
    let next = claim(&w);
    assert!(next != a, "{next}");
    assert_eq!(kinds(&w), ["over_budget"]);
}

#[test]
fn a_turn_limit_is_another_attempt_that_continues_the_session() {
    let w = world();
    let job = w.enqueue("T-1");
    assert_eq!(claim(&w), job);
    run(&w, job, "max_turns");
    let doc = finalize(&w, job, 20);
    assert_eq!(
        (doc["class"].as_str(), doc["decision"].as_str()),
        (Some("max_turns"), Some("requeued"))
    );
    assert_eq!(claim(&w), job);
    let second = run(&w, job, "ok");
    assert!(
        second["resumed_session"]
            .as_str()
            .is_some_and(|s| s.starts_with("fake-")),
        "{second}"
    );
    assert_eq!(finalize(&w, job, 0)["class"], "ok");
}
