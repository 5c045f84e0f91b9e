//! What a new operator meets in the first hour: jobs they can find, a tick whose printed exit is
//! its exit, durations in one format. Through the real binary and the stand-in agent.

use crate::support;

use serde_json::Value;
use support::World;

fn world() -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_RETRY_BASE_SECONDS", "0");
    w
}

fn enqueue(w: &World, project: &str, task: &str) -> i64 {
    w.orch(&["enqueue", "--project", project, "--task", task, "--json"])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap()
}

fn ids(doc: &Value) -> Vec<i64> {
    doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect()
}

#[test]
fn jobs_lists_what_other_commands_take() {
    let w = world();
    w.config("[projects.api]\nworkdir = \"/tmp\"\n");
    let web1 = enqueue(&w, "web", "WEB-1");
    let web2 = enqueue(&w, "web", "WEB-2");
    let api1 = enqueue(&w, "api", "API-1");
    w.orch(&["cancel", &web2.to_string()]).ok();
    // Live jobs by default; the cancelled one only when asked for.
    assert_eq!(ids(&w.orch(&["jobs", "--json"]).ok().json()), [web1, api1]);
    let cancelled = w
        .orch(&["jobs", "--state", "cancelled", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&cancelled), [web2]);
    assert_eq!(cancelled["jobs"][0]["task"], "WEB-2");
    let web = w.orch(&["jobs", "--project", "web", "--json"]).ok().json();
    assert_eq!(ids(&web), [web1]);
    let task = w.orch(&["jobs", "--task", "API-1", "--json"]).ok().json();
    assert_eq!(ids(&task), [api1]);
    let text = w.orch(&["jobs"]).ok().stdout;
    let header = text.lines().next().unwrap();
    for column in [
        "JOB",
        "PROJECT",
        "TASK",
        "STAGE",
        "STATE",
        "ATTEMPT",
        "DUE / LEASE",
        "LAST",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(text.contains(&format!("{web1}  ")), "{text}");
    assert!(text.contains("due now"), "{text}");
    // A name that names nothing known is a usage error, with a hint.
    let out = w.orch(&["jobs", "--project", "wbe"]).status(2);
    assert!(out.stderr.contains("did you mean `web`"), "{}", out.stderr);
    assert!(out.stderr.contains("config.toml"), "{}", out.stderr);
    let out = w.orch(&["jobs", "--state", "queud"]).status(2);
    assert!(
        out.stderr.contains("did you mean `queued`"),
        "{}",
        out.stderr
    );
    w.orch(&["jobs", "--stage", "devloper"]).status(2);
}

#[test]
fn show_takes_a_task_key_and_names_the_next_job() {
    let w = world();
    let job = enqueue(&w, "web", "WEB-12");
    // Before: "invalid digit".
    let task = w.orch(&["show", "WEB-12", "--json"]).ok().json();
    assert_eq!(task["task"]["key"], "WEB-12");
    assert_eq!(ids(&task), [job]);
    w.orch(&["tick", "--worker", "w1"]).ok();
    let shown = w.orch(&["show", &job.to_string()]).ok().stdout;
    let next = job + 1;
    assert!(
        shown.contains(&format!("next      job {next} (architect)")),
        "{shown}"
    );
    let text = w.orch(&["show", "WEB-12"]).ok().stdout;
    assert!(text.starts_with("task WEB-12"), "{text}");
    assert!(
        text.contains("analyst") && text.contains("architect"),
        "{text}"
    );
    let out = w.orch(&["show", "NOPE-1"]).status(2);
    assert!(
        out.stderr.contains("no job or task \"NOPE-1\""),
        "{}",
        out.stderr
    );
}

#[test]
fn the_exit_a_tick_prints_is_the_exit_it_returns() {
    let w = world();
    // Nothing to do.
    let out = w.orch(&["tick", "--worker", "w1"]).status(3);
    assert!(out.stdout.ends_with("(exit 3)\n"), "{}", out.stdout);
    let doc = w
        .orch(&["tick", "--worker", "w1", "--json"])
        .status(3)
        .json();
    assert_eq!(doc["exit"], 3);
    assert_eq!(doc["steps"].as_array().unwrap().last().unwrap()["exit"], 3);
    // Two jobs, the second requeued, then nothing: the last job's status, printed and returned.
    enqueue(&w, "web", "T-1");
    enqueue(&w, "web", "T-2");
    let script = w.path("script");
    std::fs::write(&script, "ok\nerror\n").unwrap();
    let doc = w
        .orch(&["tick", "--worker", "w1", "--max-jobs", "2", "--json"])
        .env("FAKE_CLAUDE_SCRIPT", &script)
        .status(20)
        .json();
    assert_eq!(doc["exit"], 20);
    let out = w
        .orch(&["tick", "--worker", "w1", "--max-jobs", "5"])
        .env("ORCH_RETRY_BASE_SECONDS", "0")
        .run();
    let code = out.code;
    let last = out.stdout.lines().last().unwrap().to_string();
    assert!(
        last.ends_with(&format!("(exit {code})")),
        "{last} vs {code}"
    );
    assert_ne!(code, 3, "it did jobs: {}", out.stdout);
}

#[test]
fn durations_read_the_same_everywhere() {
    let w = world();
    enqueue(&w, "web", "T-1");
    let tick = w.orch(&["tick", "--worker", "w1"]).ok().stdout;
    let run = tick.lines().find(|l| l.starts_with("run: ")).unwrap();
    assert!(
        run.contains(" ms, log ") || run.contains(" s, log "),
        "{run}"
    );
    assert!(!run.contains("exit none"), "{run}");
    // A run that never started says so, with no duration.
    let claimed = w.orch(&["claim", "--worker", "w1"]).ok().stdout;
    let job = claimed.trim();
    let out = w
        .orch(&["run", job, "--worker", "w1"])
        .env("ORCH_CLAUDE_BIN", "/nonexistent/claude")
        .ok();
    assert!(
        out.stdout.contains("the agent never started"),
        "{}",
        out.stdout
    );
    let logs = w.orch(&["logs", job]).ok().stdout;
    assert!(!logs.contains("after 0.0 s"), "{logs}");
}

/// The fenced block between `<!-- name -->` and `<!-- /name -->` in the README.
fn readme_block(name: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find(&format!("<!-- {name} -->")).unwrap();
    let end = readme.find(&format!("<!-- /{name} -->")).unwrap();
    readme[start..end]
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A fresh HOME whose PATH holds `orch` and the stand-in agent as `claude`, and nothing of the
/// test's environment: the README's commands run as a new operator would type them.
fn fresh_machine() -> (World, std::path::PathBuf) {
    let w = World::new();
    w.login(24 * 3_600_000);
    let bin = w.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(support::fake_claude(), bin.join("claude")).unwrap();
    std::os::unix::fs::symlink(support::ORCH, bin.join("orch")).unwrap();
    // An operator of git repositories has told git who they are.
    std::fs::write(
        w.path("home/.gitconfig"),
        "[user]\n\tname = New Operator\n\temail = operator@example.org\n",
    )
    .unwrap();
    (w, bin)
}

fn sh(w: &World, path: &str, script: &str) -> support::Out {
    let mut command = std::process::Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .env_clear()
        .current_dir(w.root())
        .env("PATH", path)
        .env("HOME", w.path("home"))
        .env("TZ", "UTC");
    support::Out::from(command.output().unwrap())
}

#[test]
fn the_readme_walk_through_runs_as_written() {
    let (w, bin) = fresh_machine();
    // Everything but the install, which the test binary stands in for.
    let script: String = readme_block("walkthrough")
        .lines()
        .filter(|l| !l.starts_with("cargo install"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = sh(&w, &path, &script);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("config file: "), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("queued job 1 (web WEB-12 stage analyst)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("finalize: ok → advanced"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("task WEB-12"), "{}", out.stdout);

    // The cron line, the way cron runs it: sh, PATH=/usr/bin:/bin, orch in ~/.cargo/bin.
    let cargo_bin = w.path("home/.cargo/bin");
    std::fs::create_dir_all(&cargo_bin).unwrap();
    std::os::unix::fs::symlink(support::ORCH, cargo_bin.join("orch")).unwrap();
    let cron = readme_block("cron");
    let line = cron.lines().find(|l| l.starts_with("* * * * *")).unwrap();
    let command = line.splitn(6, ' ').nth(5).unwrap().trim();
    let out = std::process::Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", w.path("home").display()))
        .args(["sh", "-c", command])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(w.path("home/.local/state/orch/tick.log")).unwrap();
    assert!(log.contains("claim: job 2"), "{log}");
    assert!(log.contains("finalize: ok → advanced"), "{log}");
}

#[test]
fn orch_config_names_the_file_it_looked_for() {
    let mut w = World::new();
    w.unset("ORCH_CONFIG");
    let elsewhere = w.path("xdg");
    w.set("XDG_CONFIG_HOME", &elsewhere);
    let out = w.orch(&["config"]).ok().stdout;
    let looked = elsewhere.join("orch/config.toml");
    assert!(
        out.contains(&format!(
            "config file: none — {} does not exist",
            looked.display()
        )),
        "{out}"
    );
    let doc = w.orch(&["config", "--json"]).ok().json();
    assert_eq!(doc["looked_for"], looked.display().to_string());
    // An error about a missing project names the file too.
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-1"])
        .status(2);
    assert!(
        out.stderr.contains(&looked.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn a_workdir_that_cannot_work_is_reported_before_a_job_finds_out() {
    let w = world();
    let file = w.path("a-file");
    std::fs::write(&file, "").unwrap();
    w.raw_config(&format!(
        "[projects.gone]\nworkdir = \"{}\"\n\n[projects.file]\nworkdir = \"{}\"\n\n\
         [projects.plain]\nworkdir = \"{}\"\nauto_commit = true\n\n[projects.web]\nworkdir = \"{}\"\n",
        w.path("nowhere").display(),
        file.display(),
        w.path("work").display(),
        w.path("work/web").display(),
    ));
    let text = w.orch(&["config"]).ok().stdout;
    assert!(text.contains("nowhere does not exist"), "{text}");
    assert!(text.contains("a-file is not a directory"), "{text}");
    assert!(
        text.contains("is not in a git work tree, and auto_commit is on"),
        "{text}"
    );
    let doc = w.orch(&["config", "--json"]).ok().json();
    let problems = doc["problems"].as_object().unwrap();
    assert_eq!(
        problems.keys().collect::<Vec<_>>(),
        ["file", "gone", "plain"],
        "{problems:?}"
    );
    let explain = w.orch(&["preflight", "--explain"]).ok().stdout;
    assert!(explain.contains("projects:"), "{explain}");
    assert!(explain.contains("fail  gone  workdir"), "{explain}");
    assert!(explain.contains("pass  web  workdir"), "{explain}");
    let out = w
        .orch(&["enqueue", "--project", "gone", "--task", "T-1"])
        .ok();
    assert!(
        out.stderr.contains("warning: project gone: workdir"),
        "{}",
        out.stderr
    );
}

#[test]
fn explain_wraps_at_word_boundaries_under_a_hanging_indent() {
    let w = World::new();
    let out = w
        .orch(&["preflight", "--explain"])
        .env("COLUMNS", "50")
        .env(
            "ORCH_CLAUDE_BIN",
            "/nonexistent/very/long/path/to/the/agent/binary/claude",
        )
        .status(10);
    let text = out.stdout;
    assert!(text.contains("ORCH_CLAUDE_CREDENTIALS_PATH"), "{text}");
    for line in text.lines() {
        let words = line.split_whitespace().count();
        assert!(
            line.chars().count() <= 50
                || words == 1
                || line.trim_start().starts_with("fix:") && words == 2,
            "{line:?} is longer than 50 columns:\n{text}"
        );
    }
    // Continuation lines hang under the reason column.
    let fix = text.lines().position(|l| l.contains("fix:")).unwrap();
    let indent = text.lines().nth(fix).unwrap().find("fix:").unwrap();
    let next = text.lines().nth(fix + 1).unwrap();
    assert!(next.starts_with(&" ".repeat(indent)), "{text}");
}

#[test]
fn json_and_text_say_the_same_things() {
    let w = World::new();
    let doc = w.orch(&["config", "--json"]).ok().json();
    let lease = &doc["settings"]["lease_seconds"];
    assert_eq!(lease["value"], 900, "{lease}");
    assert_eq!(lease["source"], "default");
    assert_eq!(doc["settings"]["preflight_check_auth"]["value"], true);
    let unset = &doc["settings"]["log_dir"];
    assert_eq!(
        (unset["value"].is_null(), &unset["source"]),
        (true, &Value::from("default"))
    );
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["breakers"], serde_json::json!([]));
}

#[test]
fn help_sets_global_flags_apart_and_states_exit_statuses() {
    let w = World::new();
    for command in ["tick", "claim", "preflight", "run", "finalize"] {
        let help = w.orch(&["help", command]).ok().stdout;
        let global = help
            .find("Global options:")
            .unwrap_or_else(|| panic!("{help}"));
        // The command's own flags come before the global ones, which are together.
        assert!(help[..global].contains("Options:"), "{help}");
        assert!(help[global..].contains("--db <PATH|URL>"), "{help}");
        assert!(!help[..global].contains("--db <PATH|URL>"), "{help}");
        assert!(help.contains("Exit status:"), "{help}");
        assert!(help.contains(" 78  configuration error"), "{help}");
    }
    let tick = w.orch(&["tick", "--help"]).ok().stdout;
    assert!(tick.contains("  3  no eligible job"), "{tick}");
}

#[test]
fn man_pages_have_exit_status_environment_and_files() {
    let w = World::new();
    let dir = w.path("man");
    w.orch(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let top = std::fs::read_to_string(dir.join("orch.1")).unwrap();
    for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH FILES"] {
        assert!(top.contains(section), "{section} missing from orch.1");
    }
    assert!(!top.contains(".SH EXTRA"), "orch.1 ends in EXTRA");
    assert!(
        top.contains("ORCH_LEASE_SECONDS"),
        "orch.1 lists every setting's variable"
    );
    for page in std::fs::read_dir(&dir).unwrap() {
        let path = page.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(
            th.contains(&format!("\"orch {}\"", env!("CARGO_PKG_VERSION"))),
            "{th}"
        );
        assert!(text.contains(".SH \"EXIT STATUS\""), "{}", path.display());
        assert!(
            !text.contains("   "),
            "{} has a run of spaces",
            path.display()
        );
    }
    let tick = std::fs::read_to_string(dir.join("orch-tick.1")).unwrap();
    assert!(tick.contains("no eligible job"), "{tick}");
}

#[test]
fn completion_offers_the_configured_names() {
    let w = World::new();
    w.config("[projects.api]\nworkdir = \"/tmp\"\n\n[agents.codex]\nbin = \"/bin/true\"\n");
    let complete = |words: &[&str]| -> Vec<String> {
        let index = (words.len() - 1).to_string();
        let args: Vec<&str> = std::iter::once("--").chain(words.iter().copied()).collect();
        let out = w
            .orch(&args)
            .env("COMPLETE", "bash")
            .env("_CLAP_IFS", "\n")
            .env("_CLAP_COMPLETE_INDEX", &index)
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true")
            .ok();
        out.stdout.lines().map(str::to_string).collect()
    };
    assert_eq!(
        complete(&["orch", "enqueue", "--project", ""]),
        ["api", "web"]
    );
    assert_eq!(
        complete(&["orch", "tick", "--agent", ""]),
        ["claude", "codex"]
    );
    let stages = complete(&["orch", "jobs", "--stage", "dev"]);
    assert_eq!(stages, ["developer"]);
    // The registration script asks orch itself.
    let script = w.orch(&["completions", "bash"]).ok().stdout;
    assert!(script.contains("COMPLETE=\"bash\""), "{script}");
}

#[test]
fn typos_in_the_config_file_get_their_line_and_a_hint() {
    let w = World::new();
    let err = |text: &str| -> String {
        w.raw_config(text);
        w.orch(&["config"]).status(78).stderr
    };
    let out = err("lease_second = 60\n");
    assert!(
        out.contains(
            "config.toml line 1: lease_second: unknown setting; did you mean `lease_seconds`?"
        ),
        "{out}"
    );
    let out = err("max_attempts = 3\n\n[project.web]\nworkdir = \"/tmp\"\n");
    assert!(
        out.contains("line 3: project: unknown setting; did you mean `projects`?"),
        "{out}"
    );
    assert!(out.contains("[projects.NAME]"), "{out}");
    let out = err("[stages.devloper]\nprompt = \"x\"\n");
    assert!(
        out.contains(
            "line 1: [stages.devloper]: not a stage of the pipeline (analyst, architect, developer"
        ),
        "{out}"
    );
    assert!(out.contains("did you mean `developer`?"), "{out}");
    // A bad value in the second project is reported at its own line.
    let out = err(
        "[projects.web]\nworkdir = \"/tmp\"\nmax_running = 2\n\n[projects.api]\nworkdir = \"/tmp\"\nmax_running = 0\n",
    );
    assert!(
        out.contains("line 7: max_running: expected a whole number from 1 to 10000"),
        "{out}"
    );
    let out = err("[projects.web]\nworkdir = \"/tmp\"\nmax_runing = 2\n");
    assert!(
        out.contains("line 3: max_runing: unknown key (expected one of: workdir, max_running"),
        "{out}"
    );
    assert!(out.contains("did you mean `max_running`?"), "{out}");
}

#[test]
fn alerts_with_no_destination_are_not_queued_and_status_agrees_with_notify() {
    let mut w = world();
    w.set("ORCH_MAX_ATTEMPTS", "1");
    let job = enqueue(&w, "web", "T-1");
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_MODE", "max_turns")
        .status(21);
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["outbox"]["pending"], 0, "{status}");
    let shown = w.orch(&["show", &job.to_string()]).ok().stdout;
    assert!(
        shown.contains("alert not sent (failed: alerts are off: ORCH_TELEGRAM_BOT_TOKEN and ORCH_TELEGRAM_CHAT_ID not set)"),
        "{shown}"
    );
    let notify = w.orch(&["notify", "--json"]).ok().json();
    assert_eq!(notify["pending"], 0);
}

#[test]
fn status_says_how_many_messages_it_did_not_list() {
    let w = World::new();
    // Messages queued while alerts were on, then the token went away: pending, not due.
    let mut store = w.store();
    for n in 0..25 {
        let alert = orch::store::NewAlert {
            project: Some("web".into()),
            task: Some(format!("T-{n}")),
            ..orch::store::NewAlert::new(orch::store::AlertKind::Failed, &format!("k{n}"), "r")
        };
        let message = orch::store::Message::Alert(alert);
        store.queue(&message, support::now_ms()).unwrap();
    }
    let text = w.orch(&["status"]).ok().stdout;
    assert!(
        text.contains("outbox: 25 pending (0 due), 0 dead"),
        "{text}"
    );
    assert!(text.contains("… and 5 more"), "{text}");
    assert!(text.contains("alerts are off"), "{text}");
    let notify = w.orch(&["notify"]).ok().stdout;
    assert!(notify.contains("nothing due"), "{notify}");
    let doc = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(doc["outbox_due"], 0);
}

#[test]
fn a_job_waiting_out_its_retry_can_run_now() {
    let mut w = world();
    w.set("ORCH_RETRY_BASE_SECONDS", "3600");
    let job = enqueue(&w, "web", "T-1");
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_MODE", "error")
        .status(20);
    // Waiting an hour: nothing to claim.
    w.orch(&["claim", "--worker", "w1"]).status(3);
    let out = w.orch(&["retry", &job.to_string(), "--now"]).ok();
    assert!(out.stdout.contains("is due now"), "{}", out.stdout);
    assert!(out.stdout.contains("attempts are kept"), "{}", out.stdout);
    let claimed = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(claimed["job_id"], job);
    assert_eq!(claimed["attempt"], 2, "the attempt count was kept");
    let history = w.orch(&["show", &job.to_string()]).ok().stdout;
    assert!(history.contains("made due now by operator"), "{history}");
}

#[test]
fn run_dry_run_shows_what_would_run_and_starts_nothing() {
    let mut w = world();
    w.set("ORCH_FORGE_TOKEN", "forge-SECRET-xyz");
    let job = w
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "T-1",
            "--title",
            "Fix login",
            "--json",
        ])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let doc = w.orch(&["run", &job, "--dry-run", "--json"]).ok().json();
    let argv: Vec<String> = serde_json::from_value(doc["argv"].clone()).unwrap();
    assert!(argv[0].ends_with("fake-claude"), "{argv:?}");
    let prompt = argv.last().unwrap();
    assert_eq!(argv[argv.len() - 2], "--");
    assert!(
        prompt.contains("analyst stage") && prompt.contains("Fix login"),
        "{prompt}"
    );
    assert!(prompt.contains("attempt 1"), "{prompt}");
    assert_eq!(doc["cwd"], w.path("work/web").display().to_string());
    let env: Vec<String> = serde_json::from_value(doc["env"].clone()).unwrap();
    assert!(env.contains(&"ORCH_JOB_ID".to_string()), "{env:?}");
    assert!(
        !env.iter().any(|n| n.starts_with("ORCH_FORGE_TOKEN")),
        "{env:?}"
    );
    let text = w.orch(&["run", &job, "--dry-run"]).ok().stdout;
    assert!(text.contains("argv (one element each):"), "{text}");
    assert!(!text.contains("forge-SECRET"), "{text}");
    // Nothing started, nothing recorded.
    assert!(w.calls().is_empty(), "{:?}", w.calls());
    let shown = w.orch(&["show", &job, "--json"]).ok().json();
    assert_eq!(shown["runs"], serde_json::json!([]));
    assert_eq!(shown["job"]["state"], "queued");
}
