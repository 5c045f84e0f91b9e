//! A worktree and a branch per task, pushed, one pull request per task: through the real binary,
//! with real git everywhere — a bare repository as the remote (a file path, or served over HTTP
//! by `git http-backend` behind Basic auth), the project's main clone, the tasks' worktrees — and
//! the forge stand-in on 127.0.0.1 speaking Gitea and GitHub.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::forge::Forge as StandIn;
use support::git_http::GitHttp;
use support::http::Server;
use support::{git, World};

const TOKEN: &str = "forge-PUSH-token-5f3c9a";
const REPO: &str = "team/web";

/// Whether `git rev-parse --verify` finds `rev` in `dir`.
fn has(dir: &Path, rev: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", rev])
        .output()
        .unwrap()
        .status
        .success()
}

/// A logged-in world whose project `web` is the main clone (work/web) of the bare repository
/// remote/web.git, which has one commit on main; retries are due at once.
pub(crate) fn repo_world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_RETRY_BASE_SECONDS", "0")
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "2")
        .set("ORCH_NOTIFY_RETRY_BASE_SECONDS", "0")
        .set("ORCH_GIT_TIMEOUT_SECONDS", "30")
        // The stand-in forge runs no CI: the gate after the developer stage opens at once.
        .set("ORCH_CI_GRACE_SECONDS", "0")
        .set("ORCH_CI_POLL_SECONDS", "0");
    let remote = w.path("remote");
    std::fs::create_dir_all(&remote).unwrap();
    git(&remote, &["init", "-q", "--bare", "-b", "main", "web.git"]);
    let main = w.path("work/web");
    git(
        w.root(),
        &[
            "clone",
            "-q",
            remote.join("web.git").to_str().unwrap(),
            main.to_str().unwrap(),
        ],
    );
    std::fs::write(main.join("README.md"), "# web\n").unwrap();
    git(&main, &["add", "README.md"]);
    git(&main, &["commit", "-q", "-m", "first"]);
    git(&main, &["push", "-q", "origin", "main"]);
    git(&main, &["remote", "set-head", "origin", "main"]);
    w
}

/// The remote served over HTTP as a forge serves git (a push wants Basic auth with `token`), and
/// the main clone's origin pointed at it: the bare repository's path and the server.
fn serve_over_http(w: &World, token: &str) -> (PathBuf, GitHttp) {
    let served = w.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let remote = w.path("remote/web.git");
    git(
        &served,
        &["clone", "-q", "--bare", remote.to_str().unwrap(), "web.git"],
    );
    let server = GitHttp::start(&served, "oauth2", token);
    let url = server.repo_url("web.git");
    git(&w.path("work/web"), &["remote", "set-url", "origin", &url]);
    (served.join("web.git"), server)
}

/// config.toml: `top` settings, then project web (its main clone) with `project` keys and, when
/// `forge` is given, a forge table.
fn config(w: &World, top: &str, project: &str, forge: Option<(&str, &str)>) {
    let forge = forge.map_or(String::new(), |(kind, url)| {
        format!("\n[projects.web.forge]\nkind = \"{kind}\"\nurl = \"{url}\"\nrepo = \"{REPO}\"\n")
    });
    w.raw_config(&format!(
        "{top}\n[projects.web]\nworkdir = \"{}\"\n{project}\n{forge}",
        w.path("work/web").display()
    ));
}

/// A repository world holding the forge token, its project on a forge stand-in of `kind` with
/// `top` settings and `project` keys.
fn forge_world(kind: &str, top: &str, project: &str) -> (World, StandIn) {
    let mut w = repo_world();
    w.set("ORCH_FORGE_TOKEN", TOKEN);
    let forge = StandIn::start(TOKEN);
    config(&w, top, project, Some((kind, forge.url())));
    (w, forge)
}

fn enqueue(w: &World, task: &str, title: &str, issue: Option<i64>) -> Value {
    // `--task=` and `--title=`: a key or title may start with a hyphen.
    let task = format!("--task={task}");
    let title = format!("--title={title}");
    let mut args = vec!["enqueue", "--project", "web", &task, &title, "--json"];
    let issue = issue.map(|n| n.to_string());
    if let Some(n) = &issue {
        args.extend(["--issue", n.as_str()]);
    }
    w.orch(&args).ok().json()
}

/// One tick as `worker`, the agent touching `notes.md` (a change to commit); its JSON.
fn tick(w: &World, worker: &str) -> Value {
    let out = w
        .orch(&["tick", "--worker", worker, "--json"])
        .env("FAKE_CLAUDE_TOUCH", "notes.md")
        .run();
    assert!(
        [0, 3, 20, 21].contains(&out.code),
        "tick exited {}: {}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    out.json()
}

/// Ticks until one finds nothing to do.
fn drain(w: &World) {
    for _ in 0..40 {
        if tick(w, "w1")["exit"] == 3 {
            return;
        }
    }
    panic!("the queue did not drain");
}

fn task(w: &World, key: &str) -> Value {
    w.orch(&["show", "--json", "--", key]).ok().json()["task"].clone()
}

fn step<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
}

fn branches(remote: &Path) -> Vec<String> {
    git(
        remote,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
    )
    .lines()
    .filter(|b| *b != "main")
    .map(str::to_string)
    .collect()
}

#[test]
fn two_tasks_of_one_project_run_at_once_in_two_worktrees() {
    let mut w = repo_world();
    config(&w, "", "max_running = 2", None);
    let env = w.path("agent-env");
    w.set("FAKE_CLAUDE_ENV", &env)
        .set("FAKE_CLAUDE_SLEEP", "1.5");
    enqueue(&w, "T-1", "First task", None);
    enqueue(&w, "T-2", "Second task", None);
    let ticks: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|worker| {
            w.orch(&["tick", "--worker", worker, "--json"])
                .env("FAKE_CLAUDE_TOUCH", format!("{worker}.md"))
                .spawn()
        })
        .collect();
    for child in ticks {
        let out = support::Out::of(child);
        assert_eq!(out.code, 0, "{out:?}");
    }
    // Both agents ran at the same time.
    let db = w.db();
    let spans: Vec<(i64, i64)> = db
        .prepare("SELECT started_at, ended_at FROM agent_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(spans.len(), 2);
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "the runs did not overlap: {spans:?}"
    );
    // Each in its own worktree, on its own branch, under the worktree directory.
    let env = std::fs::read_to_string(&env).unwrap();
    let mut dirs: Vec<&str> = env
        .split('\0')
        .filter_map(|v| v.strip_prefix("PWD="))
        .collect();
    dirs.sort();
    let root = w.path("state/worktrees/web");
    assert_eq!(
        dirs,
        [
            root.join("T-1").to_str().unwrap(),
            root.join("T-2").to_str().unwrap()
        ]
    );
    let main = w.path("work/web");
    let mut workers = Vec::new();
    for (key, title) in [("T-1", "first-task"), ("T-2", "second-task")] {
        let branch = format!("feature/{key}-{title}");
        assert_eq!(task(&w, key)["branch"], branch.as_str());
        // Only the work of the worker that ran it: w1.md or w2.md, not both.
        let files = git(&main, &["ls-tree", "--name-only", &branch]);
        let mine: Vec<&str> = files.lines().filter(|f| *f != "README.md").collect();
        assert_eq!(mine.len(), 1, "{branch}: {files}");
        workers.push(mine[0].to_string());
    }
    workers.sort();
    assert_eq!(workers, ["w1.md", "w2.md"]);
    // The main clone's own checkout is untouched.
    assert_eq!(git(&main, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&main, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );

    // With worktrees = false the project runs one task at a time, whatever max_running says.
    config(&w, "", "max_running = 2\nworktrees = false", None);
    enqueue(&w, "T-3", "Third", None);
    enqueue(&w, "T-4", "Fourth", None);
    let first = w.orch(&["claim", "--worker", "w1"]).ok();
    assert!(!first.stdout.trim().is_empty());
    w.orch(&["claim", "--worker", "w2"]).status(3);
}

#[test]
fn branch_names_from_hostile_titles_and_keys_are_valid_and_stay_inside() {
    let w = repo_world();
    config(&w, "", "", None);
    let long = "word ".repeat(60);
    let cases = [
        ("T-1", "../../x"),
        ("T-2", "-f"),
        ("T-3", "Ünïcödé: café 🚀 日本"),
        ("T-4", long.as_str()),
        ("../../x", "@{-1} ~^:?*[\\ a..b .lock"),
        ("-f", "--force"),
    ];
    for (key, title) in cases {
        enqueue(&w, key, title, None);
    }
    drain(&w);
    let main = w.path("work/web");
    let root = w.path("state/worktrees");
    let mut seen = Vec::new();
    for (key, _) in cases {
        let branch = task(&w, key)["branch"].as_str().unwrap().to_string();
        let ok = Command::new("git")
            .args(["check-ref-format", "--branch", &branch])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "{key}: {branch:?} is no valid branch");
        assert!(branch.starts_with("feature/"), "{branch}");
        assert!(branch.is_ascii() && !branch.contains(".."), "{branch}");
        assert!(has(&main, &format!("refs/heads/{branch}")), "{branch}");
        seen.push(branch);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        cases.len(),
        "every task its own branch: {seen:?}"
    );
    assert!(seen.contains(&"feature/T-1-x".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"feature/T-3-unicode-cafe".to_string()),
        "{seen:?}"
    );
    assert!(seen.iter().any(|b| b.starts_with("feature/x-")), "{seen:?}");
    // Nothing was made outside the worktree directory, and it holds only orch's own.
    for outside in ["x", "state/x", "work/x", "-f"] {
        assert!(!w.path(outside).exists(), "{outside} exists");
    }
    let made: Vec<String> = std::fs::read_dir(root.join("web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(made.is_empty(), "finished tasks keep no worktree: {made:?}");
}

#[test]
fn a_push_that_fails_is_recorded_alerted_and_retried_by_the_next_tick() {
    let mut w = repo_world();
    let telegram = Server::start();
    w.set("ORCH_TELEGRAM_API_URL", &telegram.url)
        .set("ORCH_TELEGRAM_CHAT_ID", "-1")
        .set("ORCH_TELEGRAM_BOT_TOKEN", "1:tg")
        .set("ORCH_FORGE_TOKEN", TOKEN);
    let (served, server) = serve_over_http(&w, TOKEN);
    let forge = StandIn::start(TOKEN);
    config(&w, "", "", Some(("gitea", forge.url())));
    enqueue(&w, "T-1", "Push me", None);

    server.down(true);
    let doc = tick(&w, "w1");
    let finalized = step(&doc, "finalize").unwrap();
    // The verdict stands: the stage advanced.
    assert_eq!(finalized["outcome"]["decision"], "advanced", "{doc}");
    let branch = &finalized["outcome"]["branch"];
    assert!(
        branch["push_error"].as_str().unwrap().contains("503"),
        "{branch}"
    );
    assert!(branch["pushed"].is_null());
    // Recorded on the run and the task, alerted.
    let job = w.orch(&["show", "1", "--json"]).ok().json();
    let error = job["runs"][0]["push_error"].as_str().unwrap();
    assert!(error.contains("git push"), "{error}");
    assert!(job["task"]["push_error"].is_string());
    let alerts: i64 = w.sql(
        "SELECT count(*) FROM outbox WHERE alert_kind = 'push_failed'",
        [],
    );
    assert_eq!(alerts, 1);
    let shown = w.orch(&["show", "1"]).ok().stdout;
    assert!(
        shown.contains("push failed, the next tick tries again"),
        "{shown}"
    );
    assert!(!has(&served, "refs/heads/feature/T-1-push-me"));
    // No pull request while the branch is not on the remote.
    let pr_messages: i64 = w.sql(
        "SELECT count(*) FROM outbox WHERE kind = 'pull_request'",
        [],
    );
    assert_eq!(pr_messages, 0);

    // Up again: the next tick pushes first, then goes on with the next stage.
    server.down(false);
    let doc = tick(&w, "w1");
    let pushed = step(&doc, "push").expect("a push step");
    assert_eq!(pushed["branch"]["task"], "T-1");
    assert!(pushed["branch"]["push_error"].is_null(), "{pushed}");
    assert!(has(&served, "refs/heads/feature/T-1-push-me"));
    let job = w.orch(&["show", "1", "--json"]).ok().json();
    assert!(job["runs"][0]["push_error"].is_null(), "{job}");
    assert!(job["runs"][0]["pushed_sha"].is_string(), "{job}");
    assert!(job["task"]["push_error"].is_null());
    let pr_messages: i64 = w.sql(
        "SELECT count(*) FROM outbox WHERE kind = 'pull_request'",
        [],
    );
    assert!(pr_messages >= 1);
}

#[test]
fn the_pull_request_is_opened_once_when_the_forge_comes_back_and_kept_up_to_date() {
    for kind in ["gitea", "github"] {
        let (w, forge) = forge_world(kind, "", "pr_draft = true");
        enqueue(&w, "T-1", "Add a health check", Some(7));
        forge.down(true);
        for _ in 0..3 {
            tick(&w, "w1");
        }
        assert!(forge.pulls(REPO).is_empty());
        let (state, error): (String, String) = w
            .db()
            .query_row(
                "SELECT state, last_error FROM outbox WHERE kind = 'pull_request'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(state, "pending", "{kind}");
        assert!(error.contains("503"), "{kind}: {error}");
        assert_eq!(task(&w, "T-1")["pr_number"], Value::Null);

        forge.down(false);
        drain(&w);
        let pulls = forge.pulls(REPO);
        assert_eq!(
            pulls.len(),
            1,
            "{kind}: exactly one pull request: {pulls:?}"
        );
        let pull = &pulls[0];
        assert_eq!(pull.head, "feature/T-1-add-a-health-check");
        assert_eq!(pull.base, "main");
        assert_eq!(pull.title, "T-1: Add a health check");
        assert_eq!(pull.draft, kind == "github", "{kind}");
        assert!(pull.body.starts_with("Closes #7\n"), "{}", pull.body);
        for stage in orch::config::DEFAULT_STAGES {
            assert!(
                pull.body.contains(&format!("| {stage} | 1 | ok |")),
                "{stage}: {}",
                pull.body
            );
        }
        let shown = task(&w, "T-1");
        assert_eq!(shown["pr_number"], pull.number);
        assert_eq!(shown["pr_state"], "open");
        assert!(shown["pr_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/pull/{}", pull.number)));
        let text = w.orch(&["show", "T-1"]).ok().stdout;
        assert!(
            text.contains(&format!(
                "pull      #{} open http://forge.invalid/{REPO}/pull/{}",
                pull.number, pull.number
            )),
            "{text}"
        );
        assert!(
            text.contains("branch    feature/T-1-add-a-health-check from main (pushed"),
            "{text}"
        );
        // The pull request is merged by a person: orch records that, and never opens another.
        forge.close_pull(REPO, pull.number, true);
        w.orch(&["retry", "6", "--stage", "deployer"]).status(1);
        let out = w
            .orch(&["enqueue", "--project", "web", "--task", "T-1", "--json"])
            .ok()
            .json();
        assert_eq!(out["created"], false);
        assert_eq!(out["refused"]["why"], "complete");
        assert_eq!(forge.pulls(REPO).len(), 1);
    }
}

#[test]
fn an_open_pull_request_from_the_branch_is_adopted() {
    for kind in ["gitea", "github"] {
        let mut w = repo_world();
        w.set("ORCH_FORGE_TOKEN", TOKEN);
        let forge = StandIn::start(TOKEN);
        // Filler, so a Gitea lookup must page.
        for n in 0..60 {
            forge.open_pull(REPO, &format!("other/{n}"), "main", "someone else's");
        }
        let theirs = forge.open_pull(REPO, "feature/T-1-adopt-me", "main", "Opened by a person");
        config(&w, "", "", Some((kind, forge.url())));
        enqueue(&w, "T-1", "Adopt me", None);
        tick(&w, "w1");
        tick(&w, "w1");
        let mine: Vec<_> = forge
            .pulls(REPO)
            .into_iter()
            .filter(|p| p.head == "feature/T-1-adopt-me")
            .collect();
        assert_eq!(mine.len(), 1, "{kind}: {mine:?}");
        assert_eq!(mine[0].number, theirs);
        assert_eq!(
            mine[0].title, "Opened by a person",
            "a person's title stays"
        );
        assert!(
            mine[0].body.contains("| analyst | 1 | ok |"),
            "{}",
            mine[0].body
        );
        assert_eq!(task(&w, "T-1")["pr_number"], theirs, "{kind}");
        // Looked up first: orch never asked to open one.
        let creates = forge
            .server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
            .count();
        assert_eq!(creates, 0, "{kind}");
    }
}

#[test]
fn a_finished_task_or_one_with_an_open_pull_request_is_not_queued_again() {
    let (mut w, forge) = forge_world("gitea", "[pipeline]\nstages = [\"only\"]\n", "");
    enqueue(&w, "T-1", "Done soon", None);
    drain(&w);
    assert_eq!(task(&w, "T-1")["state"], "complete");
    let jobs = |w: &World| -> i64 { w.sql("SELECT count(*) FROM jobs", []) };
    let before = jobs(&w);
    for args in [
        &["--task", "T-1"][..],
        &["--task", "T-1", "--stage", "only", "--title", "Again"],
        &["--task", "t-1"],
        &["--task= T-1 "],
    ] {
        let mut full = vec!["enqueue", "--project", "web"];
        full.extend_from_slice(args);
        full.push("--json");
        let doc = w.orch(&full).ok().json();
        assert_eq!(doc["created"], false, "{args:?}: {doc}");
        assert!(doc["refused"]["why"].is_string(), "{args:?}: {doc}");
        let text = w.orch(&full[..full.len() - 1]).ok().stdout;
        assert!(text.contains("nothing queued"), "{text}");
    }
    assert_eq!(jobs(&w), before, "nothing was queued");
    assert_eq!(forge.pulls(REPO).len(), 1);
    assert_eq!(
        branches(&w.path("remote/web.git")),
        ["feature/T-1-done-soon"]
    );

    // A task that failed for good with its pull request open: enqueue says so (retry goes on).
    let script = w.path("script");
    std::fs::write(&script, "denied\n").unwrap();
    w.set("FAKE_CLAUDE_SCRIPT", &script);
    config(
        &w,
        "[pipeline]\nstages = [\"one\", \"two\"]\n",
        "",
        Some(("gitea", forge.url())),
    );
    enqueue(&w, "T-2", "Fails later", None);
    std::fs::write(&script, "ok\ndenied\n").unwrap();
    drain(&w);
    assert_eq!(task(&w, "T-2")["state"], "failed");
    assert_eq!(task(&w, "T-2")["pr_state"], "open");
    let doc = w
        .orch(&["enqueue", "--project", "web", "--task", "T-2", "--json"])
        .ok()
        .json();
    assert_eq!(doc["refused"]["why"], "pull_request_open", "{doc}");
    let failed: i64 = w.sql("SELECT max(id) FROM jobs WHERE state = 'failed'", []);
    w.orch(&["retry", &failed.to_string()]).ok();
    drain(&w);
    assert_eq!(task(&w, "T-2")["state"], "complete");
    assert_eq!(forge.pulls(REPO).len(), 2, "still one per task");
}

#[test]
fn usage_comments_go_where_the_reviewer_looks() {
    for (on, want) in [("pr", "pr"), ("issue", "issue"), ("both", "both")] {
        let mut w = repo_world();
        w.set("ORCH_FORGE_TOKEN", TOKEN);
        let forge = StandIn::start(TOKEN);
        let issue = forge.open_issue(REPO, "Health", "", &[]);
        config(
            &w,
            "[pipeline]\nstages = [\"one\", \"two\"]\n",
            &format!("usage_comments = \"{on}\""),
            Some(("github", forge.url())),
        );
        enqueue(&w, "T-1", "Comments", Some(issue));
        drain(&w);
        let pull = forge.pulls(REPO)[0].number;
        let on_issue = forge.issue(REPO, issue).map_or(0, |i| i.comments.len());
        let on_pull = forge.issue(REPO, pull).map_or(0, |i| i.comments.len());
        match want {
            // The first stage's comment went to the issue (no pull request yet), the second's
            // to the pull request.
            "pr" => assert_eq!((on_issue, on_pull), (1, 1), "{on}"),
            "issue" => assert_eq!((on_issue, on_pull), (2, 0), "{on}"),
            _ => assert_eq!((on_issue, on_pull), (2, 1), "{on}"),
        }
    }
}

#[test]
fn status_and_metrics_show_the_disk_the_worktrees_use() {
    let w = repo_world();
    config(&w, "", "", None);
    enqueue(&w, "T-1", "Big", None);
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_TOUCH", "notes.md")
        .ok();
    let path = w.path("state/worktrees/web/T-1");
    assert!(path.is_dir());
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["worktrees"]["count"], 1, "{status}");
    let bytes = status["worktrees"]["bytes"].as_i64().unwrap();
    assert!(bytes > 4096, "{status}");
    let text = w.orch(&["status"]).ok().stdout;
    assert!(text.contains("worktrees on "), "{text}");
    let metrics = w.orch(&["metrics"]).ok().stdout;
    assert!(
        metrics.contains("orch_worktrees{project=\"web\"} 1"),
        "{metrics}"
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with("orch_worktree_bytes{project=\"web\"}"))
        .unwrap();
    assert_eq!(
        line,
        format!("orch_worktree_bytes{{project=\"web\"}} {bytes}")
    );
}

#[test]
fn prune_worktrees_removes_what_a_crash_left_and_keeps_live_ones() {
    let w = repo_world();
    config(&w, "[pipeline]\nstages = [\"one\", \"two\"]\n", "", None);
    enqueue(&w, "LIVE-1", "Still going", None);
    enqueue(&w, "DONE-1", "Finished", None);
    // Both get their worktree; LIVE-1 stays at stage two.
    tick(&w, "w1");
    tick(&w, "w1");
    let root = w.path("state/worktrees/web");
    assert!(root.join("LIVE-1").is_dir() && root.join("DONE-1").is_dir());
    // DONE-1 finished while its orch died before the clean-up: as if.
    w.db()
        .execute(
            "UPDATE tasks SET state = 'complete' WHERE key = 'DONE-1'",
            [],
        )
        .unwrap();
    w.db()
        .execute(
            "UPDATE jobs SET state = 'done' WHERE task_id = (SELECT id FROM tasks WHERE key = 'DONE-1')",
            [],
        )
        .unwrap();
    // And a worktree no task has (a crash between making it and recording it).
    let main = w.path("work/web");
    git(
        &main,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "stray",
            root.join("stray").to_str().unwrap(),
        ],
    );
    // Something in the directory that is no worktree: left alone.
    std::fs::create_dir_all(root.join("notes")).unwrap();

    let dry = w
        .orch(&["prune-worktrees", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["worktrees"].as_array().unwrap().len(), 2, "{dry}");
    assert!(root.join("DONE-1").is_dir() && root.join("stray").is_dir());
    let doc = w.orch(&["prune-worktrees", "--json"]).ok().json();
    let why: Vec<&str> = doc["worktrees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["why"].as_str().unwrap())
        .collect();
    assert_eq!(
        why,
        [
            "task DONE-1 is complete",
            "no live task of the project has it"
        ],
        "{doc}"
    );
    assert!(!root.join("DONE-1").exists() && !root.join("stray").exists());
    assert!(root.join("LIVE-1").is_dir() && root.join("notes").is_dir());
    assert!(
        has(&main, "refs/heads/feature/DONE-1-finished"),
        "the branch stays"
    );
    assert_eq!(task(&w, "DONE-1")["worktree"], Value::Null);
    let again = w.orch(&["prune-worktrees"]).ok().stdout;
    assert!(again.contains("nothing to prune"), "{again}");
}

/// Every process's argv and environment, read while `running` says so; the texts holding
/// `needle`, and how many processes looked like orch's git push.
fn sample_processes(needle: &str, running: &std::sync::atomic::AtomicBool) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    let mut pushes = 0;
    while running.load(std::sync::atomic::Ordering::SeqCst) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            break;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            for file in ["cmdline", "environ"] {
                let Ok(bytes) = std::fs::read(entry.path().join(file)) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
                if file == "cmdline"
                    && text.contains(" push ")
                    && text.contains("refs/heads/feature/")
                {
                    pushes += 1;
                }
                if text.contains(needle) {
                    found.push(format!("/proc/{}/{file}: {text}", name.to_string_lossy()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (found, pushes)
}

#[test]
fn the_token_goes_to_git_through_askpass_and_nowhere_else() {
    // A token of its own: the sampler reads every process, other tests' too.
    const SECRET: &str = "forge-ASKPASS-only-token-8e21d7";
    let mut w = repo_world();
    // From a file: a variable would sit in orch's environment block until it scrubs it.
    let token_file = w.path("forge.token");
    support::write_private(&token_file, format!("{SECRET}\n").as_bytes());
    w.set("ORCH_FORGE_TOKEN_FILE", &token_file);
    let (served, server) = serve_over_http(&w, SECRET);
    let main = w.path("work/web");
    let forge = StandIn::start(SECRET);
    config(&w, "git_hooks = true", "", Some(("gitea", forge.url())));
    // What a steered agent could plant: hooks, a hooks path, a credential helper and a URL
    // rewrite in the shared config — each records what it sees.
    let planted = w.path("planted.txt");
    let script = format!(
        "#!/bin/sh\n{{ echo \"== $0\"; env; for p in $PPID $(ps -o ppid= -p $PPID); do \
         tr '\\0' '\\n' </proc/$p/environ 2>/dev/null; tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null; \
         echo; done; cat; }} >>{}\n",
        planted.display()
    );
    for hook in [
        "pre-commit",
        "post-commit",
        "pre-push",
        "reference-transaction",
    ] {
        let path = main.join(".git/hooks").join(hook);
        std::fs::write(&path, &script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let helper = w.path("helper.sh");
    std::fs::write(&helper, &script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    git(
        &main,
        &["config", "credential.helper", helper.to_str().unwrap()],
    );
    git(
        &main,
        &[
            "config",
            "url.http://127.0.0.1:9/.pushInsteadOf",
            &format!("{}/", server.url),
        ],
    );
    server.delay_pushes(Duration::from_millis(700));
    enqueue(&w, "T-1", "Secret work", None);

    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let running = std::sync::Arc::clone(&running);
        std::thread::spawn(move || sample_processes(SECRET, &running))
    };
    let started = Instant::now();
    let out = w
        .orch(&["tick", "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_TOUCH", "notes.md")
        .ok();
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let (found, pushes) = sampler.join().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(pushes > 0, "the sampler never saw the push running");
    assert!(
        found.is_empty(),
        "the token in a process's argv or environment: {found:?}"
    );

    // The push reached the server with the token, as Basic auth, and nowhere else.
    let doc = out.json();
    let branch = &step(&doc, "finalize").unwrap()["outcome"]["branch"];
    assert!(branch["push_error"].is_null(), "{branch}");
    assert!(has(&served, "refs/heads/feature/T-1-secret-work"));
    let pushed: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.is_push() && s.method == "POST")
        .collect();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert!(pushed[0]
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Basic "));
    // Nothing planted saw it (the push runs none of them), nor holds it anywhere.
    let seen = std::fs::read_to_string(&planted).unwrap_or_default();
    assert!(
        seen.contains("pre-commit"),
        "the commit hooks ran (git_hooks = true): {seen}"
    );
    assert!(!seen.contains("hooks/pre-push"), "pre-push ran: {seen}");
    assert!(
        !seen.contains(SECRET),
        "a planted program saw the token:\n{seen}"
    );
    for text in [
        std::fs::read_to_string(main.join(".git/config")).unwrap(),
        out.stdout.clone(),
        out.stderr.clone(),
        support::dump_db(&w),
    ] {
        assert!(!text.contains(SECRET), "the token in:\n{text}");
    }
    for entry in std::fs::read_dir(w.path("state/logs")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(SECRET), "the token in a log:\n{text}");
    }
    let push_dir = w.path("state/worktrees/.push");
    let left: Vec<PathBuf> = std::fs::read_dir(&push_dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the push's own repository stays: {left:?}");

    // A remote on another host than the forge's gets no token: orch offers none, and git, asking
    // for one, gets nothing.
    let elsewhere = format!(
        "http://localhost:{}/web.git",
        server.url.rsplit(':').next().unwrap()
    );
    git(&main, &["remote", "set-url", "origin", &elsewhere]);
    w.db()
        .execute("UPDATE tasks SET remote_url = ?1", [&elsewhere])
        .unwrap();
    let doc = tick(&w, "w1");
    let branch = &step(&doc, "finalize").unwrap()["outcome"]["branch"];
    let error = branch["push_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{doc}");
    assert!(!error.contains(SECRET));
    let authorized = server
        .seen()
        .into_iter()
        .filter(|s| s.is_push() && s.authorization.is_some())
        .count();
    assert_eq!(
        authorized, 2,
        "only the first push's two requests carried the token"
    );
}

#[test]
fn kill_9_during_the_push_then_the_next_tick_finishes_with_one_branch_and_one_pr() {
    let mut w = repo_world();
    w.set("ORCH_FORGE_TOKEN", TOKEN);
    let (served, server) = serve_over_http(&w, TOKEN);
    let forge = StandIn::start(TOKEN);
    // One stage: the push that is killed is the task's last; only the tick's retry can do it.
    config(
        &w,
        "[pipeline]\nstages = [\"only\"]\n",
        "",
        Some(("gitea", forge.url())),
    );
    enqueue(&w, "T-1", "Killed", None);
    server.delay_pushes(Duration::from_secs(3));
    let child = w
        .orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_TOUCH", "notes.md")
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.push_in_flight() {
        assert!(Instant::now() < deadline, "no push reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = support::Out::of(child);
    server.delay_pushes(Duration::ZERO);
    // What the killed push left in flight ends before the next tick looks.
    while server.push_in_flight() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next tick, and that one only: nothing left to claim, the push done, the PR opened.
    let doc = tick(&w, "w1");
    assert_eq!(doc["exit"], 3, "{doc}");
    assert!(step(&doc, "push").is_some(), "{doc}");
    assert_eq!(branches(&served), ["feature/T-1-killed"]);
    assert_eq!(task(&w, "T-1")["state"], "complete");
    let head = git(&w.path("work/web"), &["rev-parse", "feature/T-1-killed"]);
    assert_eq!(git(&served, &["rev-parse", "feature/T-1-killed"]), head);
    assert_eq!(forge.pulls(REPO).len(), 1);
    // The finished task's worktree went with the push that the kill had left to do.
    assert_eq!(task(&w, "T-1")["worktree"], Value::Null);
    assert!(!w.path("state/worktrees/web/T-1").exists());
}

#[test]
fn kill_9_during_the_pull_requests_creation_then_one_pr() {
    let (w, forge) = forge_world("github", "[pipeline]\nstages = [\"one\", \"two\"]\n", "");
    enqueue(&w, "T-1", "Created once", None);
    tick(&w, "w1");
    // The forge makes the pull request, and its answer never comes: orch is killed waiting.
    forge.hang_after("POST", "/pulls");
    let child = w
        .orch(&["notify"])
        .env("ORCH_HTTP_TIMEOUT_SECONDS", "30")
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while forge.pulls(REPO).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pull request was never created"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = support::Out::of(child);
    assert_eq!(task(&w, "T-1")["pr_number"], Value::Null, "never recorded");
    // The killed sender's claim runs out (as if long ago), and the next tick delivers again.
    w.db()
        .execute(
            "UPDATE outbox SET claim_expires_at = ?1 WHERE state = 'sending'",
            [support::now_ms() - 1],
        )
        .unwrap();
    drain(&w);
    let pulls = forge.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(task(&w, "T-1")["pr_number"], pulls[0].number);
    assert!(
        pulls[0].body.contains("| two | 1 | ok |"),
        "{}",
        pulls[0].body
    );
}

#[test]
fn a_prune_waits_for_the_pull_request_then_keeps_the_key_and_removes_a_left_worktree() {
    let (mut w, forge) = forge_world("gitea", "[pipeline]\nstages = [\"one\"]\n", "");
    w.set("ORCH_HOST", "h1");
    enqueue(&w, "T-1", "Prune me", None);
    forge.down(true);
    tick(&w, "w1");
    assert_eq!(task(&w, "T-1")["state"], "complete");
    let prune = |w: &World| {
        w.orch(&["prune", "--older-than", "0s", "--json"])
            .ok()
            .json()
    };
    let pruned = prune(&w);
    assert_eq!(
        pruned["tasks"], 0,
        "its pull request is still to open: {pruned}"
    );
    forge.down(false);
    drain(&w);
    let outbox: Vec<(String, String, String)> = w
        .db()
        .prepare("SELECT kind, state, coalesce(last_error, '') FROM outbox")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(forge.pulls(REPO).len(), 1, "{outbox:?}");

    // A worktree a crash left on this host, recorded on the task: a real worktree of the clone.
    let left = w.path("state/worktrees/web/T-1");
    git(
        &w.path("work/web"),
        &["worktree", "add", "--detach", left.to_str().unwrap()],
    );
    w.db()
        .execute(
            "UPDATE tasks SET worktree = ?1, worktree_host = 'h1' WHERE key = 'T-1'",
            [left.display().to_string()],
        )
        .unwrap();
    let pruned = prune(&w);
    assert_eq!(
        (pruned["tasks"].as_i64(), pruned["worktrees"].as_i64()),
        (Some(1), Some(1)),
        "{pruned}"
    );
    assert!(!left.exists());
    let listed = git(&w.path("work/web"), &["worktree", "list", "--porcelain"]);
    assert!(!listed.contains("T-1"), "the clone forgot it: {listed}");

    // Its key, however spelled, is not queued again: one branch and one pull request, ever.
    for key in ["T-1", "t-1"] {
        let text = w
            .orch(&["enqueue", "--project", "web", "--task", key])
            .ok()
            .stdout;
        assert!(
            text.contains("was pruned") && text.contains("nothing queued"),
            "{text}"
        );
        let doc = w
            .orch(&["enqueue", "--project", "web", "--task", key, "--json"])
            .ok()
            .json();
        assert_eq!(
            (&doc["created"], &doc["refused"]["why"], &doc["job_id"]),
            (&Value::Bool(false), &Value::from("pruned"), &Value::Null),
            "{doc}"
        );
    }
    assert_eq!(
        w.orch(&["jobs", "--json"]).ok().json()["jobs"],
        Value::Array(vec![])
    );
    assert_eq!(forge.pulls(REPO).len(), 1);
}

#[test]
fn a_stage_that_changes_nothing_commits_and_pushes_nothing() {
    let (w, _forge) = forge_world("gitea", "[pipeline]\nstages = [\"one\", \"two\"]\n", "");
    enqueue(&w, "T-1", "Quiet", None);
    tick(&w, "w1");
    let remote = w.path("remote/web.git");
    let tip = || git(&remote, &["rev-parse", "refs/heads/feature/T-1-quiet"]);
    let pushed_first = tip();
    // The second stage's agent touches nothing.
    let out = w.orch(&["tick", "--worker", "w1", "--json"]).run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(task(&w, "T-1")["state"], "complete");
    assert_eq!(tip(), pushed_first, "nothing new on the remote");
    let (commit, pushed): (Option<String>, Option<String>) = w
        .db()
        .query_row(
            "SELECT commit_sha, pushed_sha FROM agent_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((commit, pushed), (None, None));
}

#[test]
fn a_comment_on_an_issue_the_forge_does_not_have_goes_dead_and_holds_nothing_up() {
    let (w, forge) = forge_world("gitea", "[pipeline]\nstages = [\"one\"]\n", "");
    // Issue 404 does not exist on the forge: its comment can never be delivered.
    enqueue(&w, "T-1", "No such issue", Some(404));
    drain(&w);
    assert_eq!(
        forge.pulls(REPO).len(),
        1,
        "the pull request is not held up"
    );
    let (state, error): (String, String) = w
        .db()
        .query_row(
            "SELECT state, last_error FROM outbox WHERE kind = 'comment' AND payload LIKE '%\"issue\":404%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "dead", "{error}");
    assert!(error.contains("404"), "{error}");
}

/// A new repository with no commit yet: there is nothing to start a task's branch from, so the
/// project is held on the host (one alert) and its jobs wait with their attempts untouched,
/// instead of each failing its checkout; the first commit lets them run.
#[test]
fn a_main_clone_without_a_commit_holds_its_project_until_one_is_made() {
    let w = World::new();
    w.login(24 * 3_600_000);
    let main = w.path("work/web");
    git(&main, &["init", "-q", "-b", "main"]);
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-1"])
        .ok();
    assert!(out.stderr.contains("has no commit yet"), "{}", out.stderr);
    for _ in 0..2 {
        let out = w.orch(&["tick", "--worker", "w1"]).status(3);
        assert!(
            out.stderr.contains("project web is held on this host")
                && out.stderr.contains("has no commit yet"),
            "{}",
            out.stderr
        );
    }
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["totals"]["queued"], 1, "{status}");
    assert_eq!(status["holds"][0]["project"], "web", "{status}");
    let reason = status["holds"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("commit something there"), "{reason}");
    assert_eq!(
        status["outbox"]["pending"], 1,
        "one alert for the hold: {status}"
    );
    let jobs = w.orch(&["jobs", "--json"]).ok().json();
    assert_eq!(jobs["jobs"][0]["attempt"], 0, "{jobs}");

    std::fs::write(main.join("README.md"), "# web\n").unwrap();
    git(&main, &["add", "README.md"]);
    git(&main, &["commit", "-q", "-m", "first"]);
    w.orch(&["tick", "--worker", "w1"]).ok();
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["holds"], serde_json::json!([]), "{status}");
    assert!(w.path("state/worktrees/web/T-1").is_dir());
}
