//! What a new operator meets in the first hour: jobs they can find, a tick whose printed exit is
//! its exit, durations in one format. Through the real binary and the stand-in agent.

mod support;

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
    std::fs::remove_dir(w.path("work/web")).unwrap();
    let out = w.orch(&["tick", "--worker", "w1"]).run();
    let run = out.stdout.lines().find(|l| l.starts_with("run: ")).unwrap();
    assert!(run.contains("the agent never started"), "{run}");
    let job = run
        .split(" of job ")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    let logs = w.orch(&["logs", job]).ok().stdout;
    assert!(!logs.contains("after 0.0 s"), "{logs}");
}
