//! Intake: the forge's open issues that carry a project's label become tasks (`orch sync`, and
//! `orch tick` once per interval across the fleet), through the real binary against the forge
//! stand-in on 127.0.0.1 speaking Gitea and GitHub.

use crate::support;

use serde_json::Value;
use support::forge::Forge as StandIn;
use support::http::Reply;
use support::World;

const TOKEN: &str = "forge-INTAKE-token-77d1e0";
const REPO: &str = "team/web";

/// A world whose project `web` takes in issues labelled `orch` from a stand-in of `kind`, with
/// `project` keys added to its table.
fn intake_world(kind: &str, project: &str) -> (World, StandIn) {
    let mut w = World::new();
    w.set("ORCH_FORGE_TOKEN", TOKEN)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "2");
    let forge = StandIn::start(TOKEN);
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nintake = true\n{project}\n\
         [projects.web.forge]\nkind = \"{kind}\"\nurl = \"{}\"\nrepo = \"{REPO}\"\n",
        w.path("work/web").display(),
        forge.url()
    ));
    (w, forge)
}

fn sync(w: &World) -> Value {
    w.orch(&["sync", "--json"]).ok().json()["projects"][0].clone()
}

fn keys(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap().to_string())
        .collect()
}

/// The GET requests for the issue list the forge has seen.
fn list_requests(forge: &StandIn) -> Vec<String> {
    forge
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/issues?"))
        .map(|r| r.path)
        .collect()
}

fn task_count(w: &World) -> i64 {
    w.sql("SELECT count(*) FROM tasks", [])
}

#[test]
fn sync_twice_makes_one_task_per_labelled_issue_on_every_forge_over_every_page() {
    // Gitea pages by 50 (no Link header: a full page means there may be more), GitHub by 100
    // (following Link's rel="next"), and lists pull requests among issues.
    for (kind, count, pages) in [("gitea", 120, 3), ("github", 150, 2)] {
        let (w, forge) = intake_world(kind, "");
        let numbers = forge.open_issues(REPO, count, &["orch", "bug"]);
        let other = forge.open_issue(REPO, "Not for orch", "", &["bug"]);
        forge.open_pull(REPO, "feature/x", "main", "A pull request");
        forge.close_issue(REPO, numbers[0]);

        let first = sync(&w);
        assert_eq!(first["listed"], count - 1, "{kind}");
        assert_eq!(
            first["created"].as_array().unwrap().len(),
            count - 1,
            "{kind}"
        );
        assert_eq!(first["known"], 0);
        assert_eq!(
            list_requests(&forge).len(),
            pages,
            "{kind}: {:?}",
            list_requests(&forge)
        );
        for request in list_requests(&forge) {
            assert!(
                request.contains("state=open") && request.contains("labels=orch"),
                "{request}"
            );
            if kind == "gitea" {
                assert!(
                    request.contains("type=issues") && request.contains("limit=50"),
                    "{request}"
                );
            } else {
                assert!(request.contains("per_page=100"), "{request}");
            }
        }
        let second = w.orch(&["sync"]).ok();
        assert!(second.stdout.contains("0 new task(s)"), "{}", second.stdout);
        assert_eq!(task_count(&w), count as i64 - 1, "{kind}");

        // The task: key from the template, the issue's title, body and number, queued at the
        // pipeline's first stage.
        let n = numbers[1];
        let show = w.orch(&["show", &format!("WEB-{n}"), "--json"]).ok().json();
        let text = show.to_string();
        assert!(
            text.contains("Issue 1") && text.contains(&format!("\"issue\":{n}")),
            "{text}"
        );
        let (body, state, stage): (String, String, String) = {
            let db = w.db();
            db.query_row(
                "SELECT t.body, j.state, j.stage FROM tasks t JOIN jobs j ON j.task_id = t.id WHERE t.key = ?1",
                [format!("WEB-{n}")],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(
            (body.as_str(), state.as_str(), stage.as_str()),
            ("Body 1", "queued", "analyst")
        );
        let none: i64 = w.sql(
            "SELECT count(*) FROM tasks WHERE issue IN (?1, ?2)",
            [other, numbers[0]],
        );
        assert_eq!(
            none, 0,
            "{kind}: an unlabelled or closed issue is not taken in"
        );
    }
}

#[test]
fn a_closed_or_unlabelled_issue_cancels_its_queued_job_but_not_a_running_one() {
    let (w, forge) = intake_world("gitea", "task_key = \"{repo}-{number}\"");
    w.login(24 * 3_600_000);
    let numbers = forge.open_issues(REPO, 3, &["orch"]);
    assert_eq!(keys(&sync(&w)["created"]), ["web-1", "web-2", "web-3"]);
    // The first task's job is running (claimed), the others queued.
    let claimed = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(claimed["task"], "web-1", "{claimed}");

    forge.close_issue(REPO, numbers[0]);
    forge.close_issue(REPO, numbers[1]);
    forge.set_labels(REPO, numbers[2], &["wontfix"]);
    let report = sync(&w);
    assert_eq!(keys(&report["cancelled"]), ["web-2", "web-3"], "{report}");
    let states: Vec<(String, String)> = {
        let db = w.db();
        let mut stmt = db
            .prepare(
                "SELECT t.key, j.state FROM jobs j JOIN tasks t ON t.id = j.task_id ORDER BY t.key",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let expected = [
        ("web-1", "running"),
        ("web-2", "cancelled"),
        ("web-3", "cancelled"),
    ];
    assert_eq!(
        states,
        expected
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .to_vec()
    );
    let reason: String = w.sql(
        "SELECT h.reason FROM job_history h JOIN jobs j ON j.id = h.job_id JOIN tasks t ON t.id = j.task_id
         WHERE t.key = 'web-2' AND h.to_state = 'cancelled'",
        [],
    );
    assert!(
        reason.contains("issue #2") && reason.contains("sync"),
        "{reason}"
    );
    // Labelled again: the task is not made a second time (it exists, cancelled).
    forge.set_labels(REPO, numbers[2], &["orch"]);
    let again = sync(&w);
    assert_eq!(again["created"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(task_count(&w), 3);
}

#[test]
fn a_task_that_exists_in_any_state_is_never_made_again() {
    let (w, forge) = intake_world("github", "");
    let numbers = forge.open_issues(REPO, 3, &["orch"]);
    // By hand: one under the template's key (spelled otherwise), one under another key for the
    // issue's number, cancelled.
    w.orch(&["enqueue", "--project", "web", "--task", " web-1 "])
        .ok();
    let issue = format!("--issue={}", numbers[1]);
    let hand = [
        "enqueue",
        "--project=web",
        "--task=HOTFIX",
        &issue,
        "--json",
    ];
    let job = w.orch(&hand).ok().json()["job_id"].as_i64().unwrap();
    w.orch(&["cancel", &job.to_string()]).ok();
    let report = sync(&w);
    assert_eq!(keys(&report["created"]), ["WEB-3"], "{report}");
    assert_eq!(report["known"], 2);
    assert_eq!(task_count(&w), 3);
}

#[test]
fn a_refused_token_is_a_configuration_error_naming_its_variable() {
    let (mut w, forge) = intake_world("gitea", "");
    forge.open_issues(REPO, 2, &["orch"]);
    w.set("ORCH_FORGE_TOKEN", "wrong-token-5c1d");
    let out = w.orch(&["sync"]).status(78);
    assert!(out.stderr.contains("ORCH_FORGE_TOKEN"), "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-token-5c1d") && !out.stdout.contains("wrong-token-5c1d"));
    assert_eq!(task_count(&w), 0);
    // No token at all: the same exit, saying how to give one.
    w.unset("ORCH_FORGE_TOKEN");
    let out = w.orch(&["sync"]).status(78);
    assert!(out.stderr.contains("ORCH_FORGE_TOKEN"), "{}", out.stderr);
}

#[test]
fn rate_limits_failures_and_hangs_write_nothing_and_say_why() {
    let (w, forge) = intake_world("github", "");
    forge.open_issues(REPO, 150, &["orch"]);
    let reset = support::now_ms() / 1000 + 120;
    let faults = [
        Reply::Full(
            429,
            vec![("Retry-After", "30".to_string())],
            "{}".to_string(),
        ),
        support::forge::rate_limit_spent(reset),
        Reply::Status(500, r#"{"message":"boom"}"#.to_string()),
    ];
    for (fault, said) in faults
        .into_iter()
        .zip(["waits 30 s", "rate limit exceeded", "500"])
    {
        forge.faults([fault]);
        let out = w.orch(&["sync", "--json"]).status(14);
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
        assert_eq!(task_count(&w), 0);
    }
    // The first page answered, the second failed (no answer in time): nothing of the first is
    // taken in.
    forge.faults_after(1, [Reply::Hang]);
    let out = w.orch(&["sync"]).status(14);
    assert!(
        out.stderr.contains("page 2") && out.stderr.contains("no answer within"),
        "{}",
        out.stderr
    );
    assert_eq!(task_count(&w), 0);
    // The forge back: everything.
    let ok = sync(&w);
    assert_eq!(ok["created"].as_array().unwrap().len(), 150);
}

#[test]
fn tick_syncs_once_per_interval_and_waits_out_a_rate_limit() {
    let (w, forge) = intake_world("gitea", "");
    forge.open_issues(REPO, 2, &["orch"]);
    // No credentials: the tick syncs, then stops at preflight (exit 11) without running a job.
    let tick = |worker: &str| {
        w.orch(&["tick", "--worker", worker, "--json"])
            .status(11)
            .json()
    };
    let first = tick("w1");
    let step = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "sync")
        .cloned()
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(step["report"]["created"].as_array().unwrap().len(), 2);
    tick("w2");
    assert_eq!(
        list_requests(&forge).len(),
        1,
        "the interval has not passed"
    );
    assert_eq!(task_count(&w), 2);
    // Every tick, and a rate limit longer than the interval holds the next sync back.
    let mut w = w;
    w.set("ORCH_SYNC_INTERVAL_SECONDS", "0");
    let tick = |worker: &str| w.orch(&["tick", "--worker", worker]).status(11);
    tick("w1");
    assert_eq!(list_requests(&forge).len(), 2);
    forge.faults([Reply::Full(
        429,
        vec![("Retry-After", "600".to_string())],
        "{}".to_string(),
    )]);
    let limited = tick("w1");
    assert!(
        limited.stderr.contains("rate limited"),
        "{}",
        limited.stderr
    );
    assert_eq!(list_requests(&forge).len(), 3);
    tick("w2");
    assert_eq!(
        list_requests(&forge).len(),
        3,
        "the rate limit is waited out"
    );
}

#[test]
fn a_fleet_of_three_workers_syncs_once_per_interval_and_makes_one_task_per_issue() {
    let (w, forge) = intake_world("gitea", "");
    forge.open_issues(REPO, 60, &["orch"]);
    // A slow forge: the three ticks overlap while one of them syncs.
    forge.server.delay(std::time::Duration::from_millis(150));
    let children: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|worker| w.orch(&["tick", "--worker", worker]).spawn())
        .collect();
    for child in children {
        let out = support::Out::of(child);
        assert_eq!(out.code, 11, "{}", out.stderr);
    }
    let pages = list_requests(&forge);
    assert_eq!(pages.len(), 2, "one sync of two pages: {pages:?}");
    assert_eq!(task_count(&w), 60);
    let jobs: i64 = w.sql("SELECT count(*) FROM jobs", []);
    assert_eq!(jobs, 60);
}

/// The issue's labels, sorted.
fn issue_labels(forge: &StandIn, number: i64) -> Vec<String> {
    let mut labels = forge.issue(REPO, number).unwrap().labels;
    labels.sort();
    labels
}

/// How many labels orch made in the repository.
fn labels_made(forge: &StandIn) -> usize {
    forge
        .server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path.ends_with("/labels") && !r.path.contains("/issues/")
        })
        .count()
}

#[test]
fn issues_carry_the_state_label_of_their_task_and_missing_labels_are_made_once() {
    for kind in ["gitea", "github"] {
        let (mut w, forge) = intake_world(kind, "issue_labels = true");
        let text = std::fs::read_to_string(w.path("config.toml")).unwrap();
        w.raw_config(&format!("[pipeline]\nstages = [\"developer\"]\n\n{text}"));
        w.login(24 * 3_600_000);
        w.set("ORCH_RETRY_BASE_SECONDS", "0");
        let [done, failed, cancelled]: [i64; 3] = forge
            .open_issues(REPO, 3, &["orch", "bug"])
            .try_into()
            .unwrap();
        w.orch(&["sync"]).ok();
        w.orch(&["notify"]).ok();
        for n in [done, failed, cancelled] {
            assert_eq!(
                issue_labels(&forge, n),
                ["bug", "orch", "orch:queued"],
                "{kind} #{n}"
            );
        }
        let state_labels: Vec<String> = forge
            .labels(REPO)
            .into_iter()
            .filter(|l| l.starts_with("orch:"))
            .collect();
        assert_eq!(state_labels.len(), 5, "{kind}: {state_labels:?}");
        assert_eq!(labels_made(&forge), 5, "{kind}");

        // Running, then done; failed; cancelled (no state label left).
        let claimed = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
        assert_eq!(claimed["task"], format!("WEB-{done}"));
        let unrelated = forge.open_issue(REPO, "By hand", "", &["bug"]);
        let issue = format!("--issue={unrelated}");
        w.orch(&["enqueue", "--project=web", "--task=HAND", &issue])
            .ok();
        w.orch(&["notify"]).ok();
        assert_eq!(
            issue_labels(&forge, done),
            ["bug", "orch", "orch:running"],
            "{kind}"
        );
        let job = claimed["job_id"].as_i64().unwrap().to_string();
        w.orch(&["run", &job, "--worker", "w1"]).ok();
        w.orch(&["finalize", &job]).ok();
        w.orch(&["tick", "--worker", "w2"])
            .env("FAKE_CLAUDE_MODE", "denied")
            .status(21);
        let id: i64 = w.sql(
            "SELECT j.id FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE t.key = ?1",
            [format!("WEB-{cancelled}")],
        );
        let id = id.to_string();
        w.orch(&["cancel", &id]).ok();
        w.orch(&["notify"]).ok();
        assert_eq!(
            issue_labels(&forge, done),
            ["bug", "orch", "orch:done"],
            "{kind}"
        );
        assert_eq!(
            issue_labels(&forge, failed),
            ["bug", "orch", "orch:failed"],
            "{kind}"
        );
        assert_eq!(issue_labels(&forge, cancelled), ["bug", "orch"], "{kind}");
        assert_eq!(labels_made(&forge), 5, "{kind}: made once");
        // The task enqueued by hand for an issue is labelled too (its project keeps labels).
        assert_eq!(
            issue_labels(&forge, unrelated),
            ["bug", "orch:queued"],
            "{kind}"
        );
        // Nothing changed: nothing queued, nothing sent.
        let before = forge.server.requests().len();
        w.orch(&["notify"]).ok();
        assert_eq!(forge.server.requests().len(), before, "{kind}");
    }
}
