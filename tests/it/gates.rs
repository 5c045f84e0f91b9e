//! Gates between stages: the CI gate (the next stage waits for green CI on the gated stage's
//! pushed commit), through the real binary with real git (a bare repository as the remote) and
//! the forge stand-in reporting commit statuses.

use crate::support;

use serde_json::Value;
use support::forge::Forge as StandIn;
use support::World;

const TOKEN: &str = "forge-GATES-token-2b7c41";
const REPO: &str = "team/web";

/// A repository world (see `pull_requests::repo_world`) whose pipeline is developer → reviewer,
/// the developer stage gated by CI (the default), its project on a Gitea stand-in; `top` and
/// `project` keys added.
fn gated_world(top: &str, project: &str) -> (World, StandIn) {
    let mut w = crate::pull_requests::repo_world();
    let argv = w.path("argv");
    w.set("ORCH_FORGE_TOKEN", TOKEN)
        .set("FAKE_CLAUDE_ARGV", argv)
        .set("ORCH_CI_GRACE_SECONDS", "3600")
        .set("ORCH_CI_POLL_SECONDS", "0");
    let forge = StandIn::start(TOKEN);
    w.raw_config(&format!(
        "{top}\n[pipeline]\nstages = [\"developer\", \"reviewer\"]\n\n\
         [projects.web]\nworkdir = \"{}\"\n{project}\n\
         [projects.web.forge]\nkind = \"gitea\"\nurl = \"{}\"\nrepo = \"{REPO}\"\n",
        w.path("work/web").display(),
        forge.url()
    ));
    (w, forge)
}

/// Queue task T-1 of project web.
fn enqueue_t1(w: &World) {
    w.orch(&[
        "enqueue",
        "--project=web",
        "--task=T-1",
        "--title=Add a check",
    ])
    .ok();
}

/// One tick; its exit status and JSON.
fn tick(w: &World) -> (i32, Value) {
    let out = w
        .orch(&["tick", "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_TOUCH", "notes.md")
        .run();
    assert!(
        [0, 3, 20, 21].contains(&out.code),
        "tick exit {}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    (out.code, out.json())
}

/// The task's jobs: (stage, state), oldest first.
fn jobs(w: &World) -> Vec<(String, String)> {
    let db = w.db();
    let mut stmt = db
        .prepare("SELECT stage, state FROM jobs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The commit the developer stage left, pushed.
fn pushed(w: &World) -> String {
    let (head, pushed): (String, Option<String>) = {
        let db = w.db();
        db.query_row("SELECT head_sha, pushed_sha FROM tasks", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(
        pushed.as_deref(),
        Some(head.as_str()),
        "the commit is pushed"
    );
    head
}

/// Every run's argv, as the stand-in agent saw them.
fn prompts(w: &World) -> Vec<String> {
    std::fs::read_to_string(w.path("argv"))
        .unwrap_or_default()
        .split("\0\0")
        .map(str::to_string)
        .filter(|run| !run.is_empty())
        .collect()
}

#[test]
fn ci_pending_then_green_makes_the_next_stage_due() {
    let (w, forge) = gated_world("", "");
    enqueue_t1(&w);
    let (code, _) = tick(&w);
    assert_eq!(code, 0);
    let sha = pushed(&w);
    assert_eq!(
        jobs(&w),
        pairs(&[("developer", "done"), ("reviewer", "queued")])
    );
    let waiting: i64 = w.sql("SELECT count(*) FROM ci_gates", []);
    assert_eq!(waiting, 1);

    // Pending: nothing to claim, the gate looked at again next tick.
    forge.set_status(REPO, &sha, "ci/build", "pending", "building");
    let (code, _) = tick(&w);
    assert_eq!(code, 3, "the reviewer waits for CI");
    assert_eq!(prompts(&w).len(), 1);
    // A job held behind CI is not a due job waiting for a worker.
    let listed = w.orch(&["jobs", "--json"]).ok().json();
    let held = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["stage"] == "reviewer")
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(
        (&held["due"], held["ci_gate"].as_str()),
        (&Value::Bool(false), Some(sha.as_str())),
        "{held}"
    );
    let text = w.orch(&["jobs"]).ok().stdout;
    assert!(text.contains("waits for CI on"), "{text}");
    let metrics = w
        .orch(&["metrics", "--json"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "600")
        .ok()
        .json();
    let oldest = metrics["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "orch_oldest_queued_age_seconds")
        .unwrap_or_else(|| panic!("{metrics}"))["samples"][0]["value"]
        .as_f64();
    assert_eq!(oldest, Some(0.0), "{metrics}");

    // Green: due, and run in the same tick.
    forge.set_status(REPO, &sha, "ci/build", "success", "built");
    let (code, json) = tick(&w);
    assert_eq!(code, 0, "{json}");
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "ci")
        .cloned()
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(step["report"]["outcome"], "passed");
    assert_eq!(
        jobs(&w),
        pairs(&[("developer", "done"), ("reviewer", "done")])
    );
    let history: String = w.sql(
        "SELECT group_concat(reason, ' | ') FROM job_history WHERE job_id = 2",
        [],
    );
    assert!(
        history.contains("waits for CI") && history.contains("CI is green"),
        "{history}"
    );
}

#[test]
fn red_ci_sends_the_developer_back_with_the_failing_check_in_its_prompt() {
    let (w, forge) = gated_world("", "");
    enqueue_t1(&w);
    tick(&w);
    let sha = pushed(&w);
    forge.set_status(
        REPO,
        &sha,
        "ci/lint",
        "failure",
        "unused import in notes.md",
    );
    forge.set_status(REPO, &sha, "ci/build", "success", "built");
    let (code, json) = tick(&w);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        jobs(&w),
        pairs(&[
            ("developer", "done"),
            ("reviewer", "cancelled"),
            ("developer", "done"),
            ("reviewer", "queued"),
        ])
    );
    let runs = prompts(&w);
    assert_eq!(runs.len(), 2);
    assert!(!runs[0].contains("ci/lint"));
    assert!(
        runs[1].contains("- ci/lint failed: unused import in notes.md (http://ci.invalid/ci/lint)"),
        "{}",
        runs[1]
    );
    assert!(!runs[1].contains("ci/build failed"));
    let fixes: i64 = w.sql("SELECT ci_fixes FROM tasks", []);
    assert_eq!(fixes, 1);
    // The fix is gated again, on its own commit.
    let new_sha = pushed(&w);
    assert_ne!(new_sha, sha);
    let gate: String = w.sql("SELECT sha FROM ci_gates", []);
    assert_eq!(gate, new_sha);
}

#[test]
fn red_ci_with_no_fix_left_fails_the_task_with_an_alert() {
    let telegram = support::http::Server::start();
    let top = format!(
        "telegram_api_url = \"{}\"\ntelegram_chat_id = \"42\"\nci_max_fixes = 1\n",
        telegram.url
    );
    let (mut w, forge) = gated_world(&top, "");
    w.set("ORCH_TELEGRAM_BOT_TOKEN", "123:telegram-token");
    enqueue_t1(&w);
    tick(&w);
    forge.set_status(REPO, &pushed(&w), "ci/test", "failure", "3 failed");
    tick(&w);
    forge.set_status(REPO, &pushed(&w), "ci/test", "failure", "still 1 failed");
    let (code, _) = tick(&w);
    assert_eq!(code, 3);
    let last = jobs(&w).pop().unwrap();
    assert_eq!(last, ("reviewer".to_string(), "failed".to_string()));
    let (task, class): (String, String) = {
        let db = w.db();
        db.query_row(
            "SELECT t.state, j.last_class FROM tasks t JOIN jobs j ON j.task_id = t.id
             ORDER BY j.id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!((task.as_str(), class.as_str()), ("failed", "ci_failed"));
    w.orch(&["notify"]).ok();
    let sent: Vec<String> = telegram.requests().iter().map(|r| r.body.clone()).collect();
    assert!(
        sent.iter()
            .any(|b| b.contains("CI gate") && b.contains("ci/test")),
        "{sent:?}"
    );
}

#[test]
fn no_ci_within_the_grace_passes_with_a_note_or_fails_when_required() {
    for (missing, state) in [("pass", "done"), ("fail", "failed")] {
        let (mut w, _forge) = gated_world(&format!("ci_missing = \"{missing}\""), "");
        w.set("ORCH_CI_GRACE_SECONDS", "0");
        enqueue_t1(&w);
        tick(&w);
        tick(&w);
        let last = jobs(&w).pop().unwrap();
        assert_eq!(
            last,
            ("reviewer".to_string(), state.to_string()),
            "{missing}"
        );
        let history: String = w.sql(
            "SELECT group_concat(reason, ' | ') FROM job_history WHERE job_id = 2",
            [],
        );
        assert!(history.contains("no CI reported"), "{missing}: {history}");
    }
}

#[test]
fn a_stage_without_the_gate_or_a_project_without_a_forge_is_not_held() {
    let (w, _forge) = gated_world("[stages.developer]\nci_gate = false\n", "");
    enqueue_t1(&w);
    let (code, _) = tick(&w);
    assert_eq!(code, 0);
    let gates: i64 = w.sql("SELECT count(*) FROM ci_gates", []);
    assert_eq!(gates, 0);
    let (code, _) = tick(&w);
    assert_eq!(code, 0, "the reviewer runs at once");
}

/// A world (no git, no forge) whose pipeline is analyst → developer, the developer stage
/// waiting for approval.
fn approval_world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    let argv = w.path("argv");
    w.set("FAKE_CLAUDE_ARGV", argv);
    w.config(
        "[pipeline]\nstages = [\"analyst\", \"developer\"]\n\n[stages.developer]\napprove = true\n",
    );
    w
}

fn plain_tick(w: &World) -> i32 {
    w.orch(&["tick", "--worker", "w1"]).run().code
}

#[test]
fn a_stage_waits_for_approval_and_runs_once_approved() {
    let w = approval_world();
    enqueue_t1(&w);
    assert_eq!(plain_tick(&w), 0);
    assert_eq!(
        jobs(&w),
        pairs(&[("analyst", "done"), ("developer", "awaiting_approval")])
    );
    assert_eq!(plain_tick(&w), 3, "nothing to claim while it waits");
    let listed = w
        .orch(&["jobs", "--state", "awaiting_approval", "--json"])
        .ok()
        .stdout;
    assert!(listed.contains("\"awaiting_approval\""), "{listed}");
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["awaiting_approval"][0]["job_id"], 2, "{status}");
    assert_eq!(status["awaiting_approval"][0]["stage"], "developer");
    let text = w.orch(&["status"]).ok().stdout;
    assert!(
        text.contains("APPROVAL") && text.contains("web T-1"),
        "{text}"
    );
    // Approving a job that does not wait is refused.
    w.orch(&["approve", "1"]).status(2);
    let out = w.orch(&["approve", "T-1", "--note", "looks right"]).ok();
    assert!(out.stdout.contains("approved job 2"), "{}", out.stdout);
    let reason: String = w.sql(
        "SELECT reason FROM job_history WHERE job_id = 2 ORDER BY id DESC LIMIT 1",
        [],
    );
    assert!(reason.contains("approved: looks right"), "{reason}");
    assert_eq!(plain_tick(&w), 0);
    assert_eq!(
        jobs(&w),
        pairs(&[("analyst", "done"), ("developer", "done")])
    );
}

#[test]
fn a_rejection_sends_the_previous_stage_back_with_the_note_in_its_prompt() {
    let w = approval_world();
    enqueue_t1(&w);
    plain_tick(&w);
    w.orch(&["reject", "T-1"]).status(2);
    let out = w
        .orch(&["reject", "2", "--note", "Use the v2 API, not v1."])
        .ok();
    assert!(out.stdout.contains("rejected job 2"), "{}", out.stdout);
    assert_eq!(
        jobs(&w),
        pairs(&[
            ("analyst", "done"),
            ("developer", "cancelled"),
            ("analyst", "queued"),
        ])
    );
    assert_eq!(plain_tick(&w), 0);
    let runs = prompts(&w);
    assert_eq!(runs.len(), 2);
    assert!(!runs[0].contains("v2 API"));
    assert!(
        runs[1].contains("A reviewer sent this stage back")
            && runs[1].contains("Use the v2 API, not v1."),
        "{}",
        runs[1]
    );
    // The next developer job waits for approval again.
    assert_eq!(
        jobs(&w).pop().unwrap(),
        ("developer".to_string(), "awaiting_approval".to_string())
    );
}

#[test]
fn approvers_comments_approve_and_reject_and_nobody_elses_do_anything() {
    let mut w = approval_world();
    w.set("ORCH_FORGE_TOKEN", TOKEN);
    let forge = StandIn::start(TOKEN);
    w.raw_config(&format!(
        "[pipeline]\nstages = [\"analyst\", \"developer\"]\n\n[stages.developer]\napprove = true\n\n\
         [projects.web]\nworkdir = \"{}\"\nintake = true\napprovers = [\"alice\"]\n\n\
         [projects.web.forge]\nkind = \"github\"\nurl = \"{}\"\nrepo = \"{REPO}\"\n",
        w.path("work/web").display(),
        forge.url()
    ));
    let issue = forge.open_issue(REPO, "Add a health check", "", &["orch"]);
    w.orch(&["sync"]).ok();
    assert_eq!(plain_tick(&w), 0);
    assert_eq!(jobs(&w).pop().unwrap().1, "awaiting_approval");
    let sync = |w: &World| w.orch(&["sync", "--json"]).ok().json();

    // Not an approver, not the exact form, edited after the fact: nothing.
    forge.comment_as(REPO, issue, "mallory", "/orch approve");
    forge.comment_as(REPO, issue, "alice", "/orch approve now please");
    let edited = forge.comment_as(REPO, issue, "alice", "/orch reject typo");
    forge.edit_comment(REPO, issue, edited, "/orch approve");
    let report = sync(&w);
    assert!(
        report["projects"][0]["reviews"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{report}"
    );
    assert_eq!(jobs(&w).pop().unwrap().1, "awaiting_approval");

    // alice rejects: the analyst again, her note in its prompt.
    forge.comment_as(
        REPO,
        issue,
        "alice",
        "/orch reject Check the v2 endpoint first.",
    );
    let report = sync(&w);
    assert_eq!(
        report["projects"][0]["reviews"][0]["sent_back"], 3,
        "{report}"
    );
    let actor: String = w.sql(
        "SELECT actor FROM job_history WHERE job_id = 3 ORDER BY id LIMIT 1",
        [],
    );
    assert_eq!(actor, "forge:alice");
    assert_eq!(plain_tick(&w), 0);
    assert!(prompts(&w)[1].contains("Check the v2 endpoint first."));
    assert_eq!(jobs(&w).pop().unwrap().1, "awaiting_approval");
    // Her rejection is not read again for the new wait; her approval is.
    sync(&w);
    assert_eq!(jobs(&w).pop().unwrap().1, "awaiting_approval");
    forge.comment_as(REPO, issue, "alice", "/orch approve");
    sync(&w);
    assert_eq!(jobs(&w).pop().unwrap().1, "queued");
    assert_eq!(plain_tick(&w), 0);
    assert_eq!(jobs(&w).pop().unwrap().1, "done");
}

#[test]
fn an_approval_waiting_too_long_is_alerted_once() {
    let mut w = approval_world();
    let telegram = support::http::Server::start();
    let text = std::fs::read_to_string(w.path("config.toml")).unwrap();
    w.raw_config(&format!(
        "telegram_api_url = \"{}\"\ntelegram_chat_id = \"42\"\napproval_alert_seconds = 3600\n{text}",
        telegram.url
    ));
    w.set("ORCH_TELEGRAM_BOT_TOKEN", "123:telegram-token");
    enqueue_t1(&w);
    assert_eq!(plain_tick(&w), 0);
    assert_eq!(plain_tick(&w), 3);
    w.orch(&["notify"]).ok();
    assert!(telegram.requests().is_empty(), "not waiting long yet");
    // Two hours later, by orch's clock: one alert, however many ticks.
    w.set("ORCH_CLOCK_AHEAD_SECONDS", "7200");
    for _ in 0..3 {
        assert_eq!(plain_tick(&w), 3);
        w.orch(&["notify"]).ok();
    }
    let sent: Vec<String> = telegram.requests().iter().map(|r| r.body.clone()).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("waits for approval") && sent[0].contains("T-1"),
        "{sent:?}"
    );
}

/// The task's state and the history of its last job.
fn task_end(w: &World) -> (String, String) {
    let db = w.db();
    db.query_row(
        "SELECT t.state, (SELECT group_concat(reason, ' | ') FROM job_history
                          WHERE job_id = (SELECT max(id) FROM jobs))
         FROM tasks t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A merging world: T-1 through developer (CI green) and reviewer, its pull request open,
/// waiting for the merge; the reviewer's pushed commit.
fn merge_ready(w: &World, forge: &StandIn) -> String {
    enqueue_t1(w);
    tick(w);
    forge.set_status(REPO, &pushed(w), "ci/build", "success", "built");
    let (code, _) = tick(w);
    assert_eq!(code, 0);
    w.orch(&["notify"]).ok();
    assert_eq!(forge.pulls(REPO).len(), 1);
    let (state, _) = task_end(w);
    assert_eq!(state, "active", "waits for the merge");
    pushed(w)
}

#[test]
fn the_pull_request_is_merged_once_ci_is_green_and_only_then_the_task_completes() {
    let (w, forge) = gated_world("", "merge = \"after_last_stage\"\nmerge_style = \"squash\"");
    let head = merge_ready(&w, &forge);
    forge.set_status(REPO, &head, "ci/build", "pending", "building");
    w.orch(&["notify"]).ok();
    assert!(!forge.pulls(REPO)[0].merged, "CI is still running");
    assert_eq!(task_end(&w).0, "active");
    forge.set_status(REPO, &head, "ci/build", "success", "built");
    // The message waits its turn (half a minute) without counting an attempt: run it now.
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "60")
        .ok();
    let pull = &forge.pulls(REPO)[0];
    assert!(pull.merged && pull.state == "closed", "{pull:?}");
    let merge = forge
        .server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/merge"))
        .unwrap();
    assert_eq!(merge.json()["Do"], "squash");
    assert_eq!(
        merge.json()["head_commit_id"],
        head.as_str(),
        "only the head CI passed"
    );
    let (state, history) = task_end(&w);
    assert_eq!(state, "complete");
    assert!(history.contains("merged (squash)"), "{history}");
    let shown = w.orch(&["show", "--json", "--", "T-1"]).ok().json();
    assert_eq!(shown["task"]["pr_state"], "merged", "{shown}");
}

#[test]
fn a_merge_conflict_fails_the_task_with_an_alert_naming_it() {
    let telegram = support::http::Server::start();
    let top = format!(
        "telegram_api_url = \"{}\"\ntelegram_chat_id = \"42\"\n",
        telegram.url
    );
    let (mut w, forge) = gated_world(&top, "merge = \"after_last_stage\"");
    w.set("ORCH_TELEGRAM_BOT_TOKEN", "123:telegram-token");
    let head = merge_ready(&w, &forge);
    forge.set_status(REPO, &head, "ci/build", "success", "built");
    forge.conflict(REPO, forge.pulls(REPO)[0].number);
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "60")
        .ok();
    assert!(!forge.pulls(REPO)[0].merged);
    let (state, history) = task_end(&w);
    assert_eq!(state, "failed");
    assert!(
        history.contains("not merged") && history.contains("Merge conflict"),
        "{history}"
    );
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "60")
        .ok();
    let sent: Vec<String> = telegram.requests().iter().map(|r| r.body.clone()).collect();
    assert!(
        sent.iter().any(|b| b.contains("Merge conflict")),
        "{sent:?}"
    );
}

#[test]
fn a_pull_request_merged_already_completes_the_task_without_a_second_merge() {
    let (w, forge) = gated_world("", "merge = \"after_last_stage\"");
    let head = merge_ready(&w, &forge);
    forge.set_status(REPO, &head, "ci/build", "success", "built");
    // A person merged it first (or orch's own merge answered and the answer was lost).
    forge.close_pull(REPO, forge.pulls(REPO)[0].number, true);
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "60")
        .ok();
    let (state, history) = task_end(&w);
    assert_eq!(state, "complete", "{history}");
    assert!(history.contains("merged already"), "{history}");
    assert!(
        !forge
            .server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/merge")),
        "no second merge"
    );
}

#[test]
fn workers_sharing_the_database_look_at_a_gate_once_an_interval() {
    let (mut w, forge) = gated_world("", "");
    enqueue_t1(&w);
    assert_eq!(tick(&w).0, 0);
    let sha = pushed(&w);
    forge.set_status(REPO, &sha, "ci/build", "pending", "building");
    w.set("ORCH_CI_POLL_SECONDS", "300");
    let looks = || {
        forge
            .server
            .requests()
            .iter()
            .filter(|r| r.path.contains(&format!("commits/{sha}/status")))
            .count()
    };
    let before = looks();
    // Three workers tick at once, then each once more: one look at the gate in all.
    let ticks: Vec<_> = (1..=3)
        .map(|n| {
            w.orch(&["tick", "--worker", &format!("w{n}"), "--json"])
                .spawn()
        })
        .collect();
    for child in ticks {
        let out = support::Out::of(child);
        assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    }
    for n in 1..=3 {
        w.orch(&["tick", "--worker", &format!("w{n}")]).status(3);
    }
    assert_eq!(looks() - before, 1, "one look per interval, whoever ticks");
    // The interval over: looked at again.
    w.orch(&["tick", "--worker", "w1"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "301")
        .status(3);
    assert_eq!(looks() - before, 2);
}

#[test]
fn a_merge_that_never_gets_its_pull_request_fails_after_the_ci_timeout() {
    let (w, forge) = gated_world("", "merge = \"after_last_stage\"");
    merge_ready(&w, &forge);
    // As if its pull request's message had gone dead: the task has none.
    w.db()
        .execute("UPDATE tasks SET pr_number = NULL", [])
        .unwrap();
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "60")
        .ok();
    assert_eq!(
        task_end(&w).0,
        "active",
        "it waits, within ci_timeout_seconds"
    );
    w.orch(&["notify"])
        .env("ORCH_CLOCK_AHEAD_SECONDS", "3700")
        .ok();
    let (state, history) = task_end(&w);
    assert_eq!(state, "failed", "{history}");
    assert!(history.contains("never opened"), "{history}");
}
