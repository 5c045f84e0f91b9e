//! `orch run`: the agent launched for a claimed job, with the stand-in agent.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{now_ms, Out, World};

/// A world with these variables set; a value `@rel` is the path `rel` inside the world.
fn world(vars: &[(&str, &str)]) -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    for (name, value) in vars {
        let value = match value.strip_prefix('@') {
            Some(rel) => w.path(rel).into_os_string(),
            None => value.into(),
        };
        w.set(name, value);
    }
    w
}

/// Claim the next job as `worker`; returns its id.
fn claim(w: &World, worker: &str) -> i64 {
    let out = w.orch(&["claim", "--worker", worker, "--json"]).ok();
    out.json()["job_id"].as_i64().unwrap()
}

/// Enqueue `task` for project `web` and claim it as `worker`; returns the job id.
fn claimed(w: &World, task: &str, worker: &str) -> i64 {
    let job = w.enqueue(task);
    assert_eq!(claim(w, worker), job);
    job
}

fn run_json(w: &World, job: i64, worker: &str) -> Value {
    w.orch(&["run", &job.to_string(), "--worker", worker, "--json"])
        .ok()
        .json()
}

/// One column of one agent_runs row, read straight from the database.
fn run_column<T: rusqlite::types::FromSql>(w: &World, run: i64, column: &str) -> T {
    w.sql(
        &format!("SELECT {column} FROM agent_runs WHERE id = ?1"),
        [run],
    )
}

/// The stand-in agent's runs (its `--version` calls are preflight's).
fn agent_runs(w: &World) -> Vec<String> {
    w.calls()
        .into_iter()
        .filter(|call| call.starts_with("run "))
        .collect()
}

fn cache_preflight(w: &World) {
    w.orch(&["preflight", "--no-cache"]).ok();
}

fn cached_preflights(w: &World) -> i64 {
    w.sql("SELECT count(*) FROM preflight_cache", [])
}

/// NUL-separated records, each ended by an empty one, as the stand-in agent writes argv and env.
fn records(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap();
    let mut all = vec![Vec::new()];
    for field in bytes.split(|&b| b == 0) {
        if field.is_empty() {
            all.push(Vec::new());
        } else {
            all.last_mut()
                .unwrap()
                .push(String::from_utf8(field.to_vec()).unwrap());
        }
    }
    all.retain(|record| !record.is_empty());
    all
}

fn pids(w: &World) -> Vec<i32> {
    std::fs::read_to_string(w.path("pids"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect()
}

/// The state letter of /proc/PID/stat ('T' when stopped, 'Z' a zombie), '?' when it is gone.
fn proc_state(pid: i32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .unwrap_or('?')
}

/// Alive, and not a zombie waiting for its parent.
fn alive(pid: i32) -> bool {
    !matches!(proc_state(pid), 'Z' | '?')
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_all_gone(pids: &[i32]) {
    for &pid in pids {
        wait_until(&format!("pid {pid} to end"), Duration::from_secs(3), || {
            !alive(pid)
        });
    }
}

struct KillGroupOnDrop(i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: plain syscall; the group is the one the test's agent led.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

/// Start `orch run` in the background.
fn spawn_run(w: &World, job: i64, worker: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = w.orch(&["run", &job.to_string(), "--worker", worker, "--json"]);
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    cmd.command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Start `orch run` of `job` with the stand-in agent hanging (it starts a grandchild, both
/// recorded in `pids`), once both are up.
fn run_hanging(w: &World, job: i64) -> Child {
    let child = spawn_run(w, job, "w1", &[("FAKE_CLAUDE_MODE", "hang")]);
    wait_until("the agent to start", Duration::from_secs(5), || {
        pids(w).len() == 2
    });
    child
}

fn finish(child: Child) -> Out {
    Out::from(child.wait_with_output().unwrap())
}

#[test]
fn success_is_recorded_with_a_private_log() {
    let w = world(&[("FAKE_CLAUDE_PIDS", "@pids")]);
    let job = claimed(&w, "T-1", "w1");
    cache_preflight(&w);
    let out = run_json(&w, job, "w1");
    let run = out["run_id"].as_i64().unwrap();
    assert_eq!(out["job_id"], job);
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["signal"], Value::Null);
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["interrupted"], false);
    assert!(out["duration_ms"].as_i64().unwrap() >= 0);
    let log = Path::new(out["log_path"].as_str().unwrap());
    assert!(log.starts_with(w.path("state/logs")), "{}", log.display());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains(r#""type":"result""#), "{text}");
    // The agent worked in the project's workdir.
    let workdir = w.path("work/web").canonicalize().unwrap();
    assert!(
        text.contains(&format!(r#""cwd":"{}""#, workdir.display())),
        "{text}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(log), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o700);

    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    let row = &shown["runs"][0];
    assert_eq!(row["run_id"], run);
    assert_eq!(row["worker"], "w1");
    assert_eq!(row["agent"], "claude");
    // The version preflight read from `--version` ("2.1.197 (Claude Code)").
    assert_eq!(row["agent_version"], "2.1.197");
    assert_eq!(row["exit_code"], 0);
    assert_eq!(row["log_bytes"].as_u64(), Some(text.len() as u64));
    assert_eq!(row["log_truncated"], false);
    assert_eq!(row["pid"].as_i64(), Some(i64::from(pids(&w)[0])));
    assert!(row["ended_at"].as_i64().unwrap() >= row["started_at"].as_i64().unwrap());
    // The job is left for finalize; the successful run keeps the preflight verdict.
    assert_eq!(shown["job"]["state"], "running");
    assert_eq!(cached_preflights(&w), 1);

    // One run per attempt: a second `orch run` is refused and records nothing.
    let again = w
        .orch(&["run", &job.to_string(), "--worker", "w1"])
        .status(1);
    assert!(
        again.stderr.contains("already ran as run"),
        "{}",
        again.stderr
    );
    assert_eq!(agent_runs(&w), ["run ok"]);

    let human = w.orch(&["run", "99", "--worker", "w1"]).status(2);
    assert!(human.stderr.contains("no job 99"), "{}", human.stderr);
}

#[test]
fn exit_code_is_recorded_exactly() {
    let w = world(&[("FAKE_CLAUDE_MODE", "exit:3")]);
    let job = claimed(&w, "T-1", "w1");
    let out = run_json(&w, job, "w1");
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["signal"], Value::Null);
    let run = out["run_id"].as_i64().unwrap();
    assert_eq!(run_column::<Option<i64>>(&w, run, "exit_code"), Some(3));
    let human = w.orch(&["show", &job.to_string()]).ok();
    assert!(human.stdout.contains("w1"), "{}", human.stdout);
}

#[test]
fn timeout_ends_the_whole_group() {
    let w = world(&[
        ("FAKE_CLAUDE_MODE", "hang"),
        ("FAKE_CLAUDE_PIDS", "@pids"),
        ("ORCH_RUN_TIMEOUT_SECONDS", "1"),
        ("ORCH_KILL_GRACE_SECONDS", "1"),
    ]);
    let job = claimed(&w, "T-1", "w1");
    let started = Instant::now();
    let out = run_json(&w, job, "w1");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["interrupted"], false);
    // The stand-in agent exits 143 on SIGTERM; its grandchild is ended with the group.
    assert_eq!(out["exit_code"], 143);
    let pids = pids(&w);
    assert_eq!(pids.len(), 2, "the agent and its grandchild");
    assert_all_gone(&pids);
    let run = out["run_id"].as_i64().unwrap();
    assert!(run_column::<bool>(&w, run, "timed_out"));
}

#[test]
fn stage_timeout_then_sigkill_for_an_agent_ignoring_sigterm() {
    let w = world(&[
        ("FAKE_CLAUDE_MODE", "stubborn"),
        ("FAKE_CLAUDE_PIDS", "@pids"),
        ("ORCH_KILL_GRACE_SECONDS", "1"),
    ]);
    w.config("[stages.analyst]\ntimeout_seconds = 1\n");
    let job = claimed(&w, "T-1", "w1");
    let started = Instant::now();
    let out = run_json(&w, job, "w1");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "timeout then grace: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["exit_code"], Value::Null);
    assert_eq!(out["signal"], libc::SIGKILL);
    assert_all_gone(&pids(&w));
}

#[test]
fn heartbeat_keeps_the_lease_past_its_first_expiry() {
    let w = world(&[("ORCH_LEASE_SECONDS", "1")]);
    let job = claimed(&w, "T-1", "w1");
    let first_expiry: i64 = w.sql("SELECT lease_expires_at FROM jobs WHERE id = ?1", [job]);
    let child = spawn_run(
        &w,
        job,
        "w1",
        &[("FAKE_CLAUDE_MODE", "ok"), ("FAKE_CLAUDE_SLEEP", "2.5")],
    );
    std::thread::sleep(Duration::from_millis(1600));
    assert!(now_ms() > first_expiry + 300);
    // Another worker would rescue an expired lease here: it finds nothing to do.
    w.orch(&["claim", "--worker", "w2"]).status(3);
    let (owner, expiry): (String, i64) = w
        .db()
        .query_row(
            "SELECT lease_owner, lease_expires_at FROM jobs WHERE id = ?1",
            [job],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(owner, "w1");
    assert!(expiry > now_ms(), "the lease was renewed");
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["exit_code"], 0);
    assert_eq!(out.json()["interrupted"], false);
}

/// `orch run` of a fresh job with the stand-in agent hanging (it starts a grandchild), killed
/// with SIGKILL once both are up. Returns the job, the agent's and grandchild's pids, and a guard
/// that ends whatever is left of the agent's group when the test ends.
fn kill_orch_mid_run(w: &World) -> (i64, Vec<i32>, KillGroupOnDrop) {
    let job = claimed(w, "T-1", "w1");
    let mut child = run_hanging(w, job);
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let pids = pids(w);
    let group = KillGroupOnDrop(pids[0]);
    // The agent dies with orch (parent-death signal); its grandchild does not.
    assert_all_gone(&pids[..1]);
    assert!(alive(pids[1]), "the grandchild outlives orch and the agent");
    (job, pids, group)
}

#[test]
fn a_killed_orch_runs_job_is_rescued_on_its_host_at_once_and_its_group_ended() {
    let w = world(&[("ORCH_LEASE_SECONDS", "600"), ("FAKE_CLAUDE_PIDS", "@pids")]);
    let (job, pids, _group) = kill_orch_mid_run(&w);
    // On the same host the dead orch is seen at once: no waiting for its lease.
    let out = w.orch(&["claim", "--worker", "w2", "--json"]).ok();
    assert!(out.stderr.contains("is gone"), "{}", out.stderr);
    assert_all_gone(&pids);
    let claimed = out.json();
    assert_eq!(claimed["job_id"], job);
    assert_eq!(claimed["attempt"], 2);
    assert_eq!(claimed["lease_owner"], "w2");
    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(shown["runs"][0]["class"], "orch_gone");
    assert_eq!(shown["runs"][0]["decision"], "requeued");
    // The new attempt may run: the dead attempt's closed run does not block it.
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w2", "--json"])
        .env("FAKE_CLAUDE_MODE", "ok")
        .ok();
    assert_eq!(out.json()["exit_code"], 0);
}

#[test]
fn after_a_killed_orch_run_the_next_tick_on_its_host_leaves_nothing_of_its_group() {
    let w = world(&[("ORCH_LEASE_SECONDS", "600"), ("FAKE_CLAUDE_PIDS", "@pids")]);
    let (job, pids, _group) = kill_orch_mid_run(&w);
    // Whatever holds claims (here the agent is logged out), the tick ends the group first.
    w.logout();
    let out = w.orch(&["tick", "--worker", "w1", "--json"]).status(11);
    assert_all_gone(&pids);
    let steps = out.json()["steps"].clone();
    assert_eq!(steps[1]["step"], "rescue", "{steps}");
    assert_eq!(steps[1]["job_id"], job);
    assert_eq!(steps[1]["state"], "queued");
}

#[test]
fn a_killed_orch_runs_job_on_another_host_waits_for_its_lease() {
    let w = world(&[("ORCH_LEASE_SECONDS", "600"), ("FAKE_CLAUDE_PIDS", "@pids")]);
    let (job, pids, _group) = kill_orch_mid_run(&w);
    // Another host cannot see the dead orch: the lease is still good, nobody takes the job.
    let elsewhere = || {
        w.orch(&["claim", "--worker", "w2", "--json"])
            .env("ORCH_HOST", "elsewhere")
    };
    elsewhere().status(3);
    assert!(alive(pids[1]), "another host cannot end the group");
    w.db()
        .execute("UPDATE jobs SET lease_expires_at = 1 WHERE id = ?1", [job])
        .unwrap();
    let out = elsewhere().ok();
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert_eq!(out.json()["attempt"], 2);
}

#[test]
fn secrets_are_kept_from_the_agent() {
    let w = world(&[
        ("ORCH_TELEGRAM_BOT_TOKEN", "tg-secret-env"),
        ("ORCH_TELEGRAM_BOT_TOKEN_FILE", "@tg-token"),
        ("ORCH_FORGE_TOKEN_FILE", "@forge-token"),
        ("MY_DEPLOY_KEY", "deploy-secret"),
        ("HARMLESS", "kept"),
        ("ORCH_AGENT_HOME", "@agent-home"),
        ("FAKE_CLAUDE_ENV", "@env"),
    ]);
    // The profile points the agent at its config dir, where preflight finds the login.
    let claude_dir = w.path("home/.claude");
    w.raw_config(&format!(
        "secret_env = [\"MY_DEPLOY_KEY\"]\n\n[projects.web]\nworkdir = \"{}\"\n\n\
         [agents.claude]\nenv = {{ CLAUDE_CONFIG_DIR = \"{}\" }}\n",
        w.path("work/web").display(),
        claude_dir.display()
    ));
    std::fs::write(w.path("forge-token"), "forge-secret-file\n").unwrap();
    std::fs::write(w.path("tg-token"), "tg-secret-file\n").unwrap();
    std::fs::create_dir_all(w.path("agent-home")).unwrap();
    let job = claimed(&w, "T-7", "w1");
    let out = run_json(&w, job, "w1");
    let run = out["run_id"].as_i64().unwrap();
    let env = records(&w.path("env")).remove(0);
    for secret in ["tg-secret", "forge-secret", "deploy-secret"] {
        assert!(
            !env.iter().any(|var| var.contains(secret)),
            "{secret} leaked: {env:?}"
        );
    }
    for name in [
        "ORCH_TELEGRAM_BOT_TOKEN",
        "ORCH_TELEGRAM_BOT_TOKEN_FILE",
        "ORCH_FORGE_TOKEN",
        "ORCH_FORGE_TOKEN_FILE",
        "MY_DEPLOY_KEY",
    ] {
        assert!(
            !env.iter().any(|var| var.starts_with(&format!("{name}="))),
            "{name} is set: {env:?}"
        );
    }
    let has = |var: String| assert!(env.contains(&var), "{var} missing: {env:?}");
    has(format!("ORCH_JOB_ID={job}"));
    has(format!("ORCH_RUN_ID={run}"));
    has("ORCH_TASK=T-7".to_string());
    has("ORCH_STAGE=analyst".to_string());
    has(format!("HOME={}", w.path("agent-home").display()));
    has(format!("CLAUDE_CONFIG_DIR={}", claude_dir.display()));
    has("HARMLESS=kept".to_string());
}

#[test]
fn hostile_text_reaches_the_agent_byte_for_byte() {
    let w = world(&[("FAKE_CLAUDE_ARGV", "@argv")]);
    w.config(
        "[agents.claude]\nextra_args = [\"--permission-mode\", \"acceptEdits\"]\n\n\
         [stages.analyst]\nprompt = \"BODY<{body}>END {task} {title} #{issue} {nope}\"\n\
         extra_args = [\"--max-turns\", \"40\"]\n",
    );
    let body = "$(touch pwned) `touch pwned2` ; rm -rf ~ \n'single' \"double\" \\ {stage} {title}\n\ttab  \n";
    let title = "it's \"$HOME\"";
    w.orch(&[
        "enqueue",
        "--project",
        "web",
        "--task",
        "T-9",
        "--title",
        title,
        "--issue",
        "42",
        "--body-file",
        "-",
    ])
    .stdin(body)
    .ok();
    let job = claim(&w, "w1");
    run_json(&w, job, "w1");
    let argv = records(&w.path("argv")).remove(0);
    assert_eq!(
        argv,
        [
            "-p".to_string(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
            // The stage's default, then the profile's extra_args, which win.
            "--permission-mode".into(),
            "plan".into(),
            "--permission-mode".into(),
            "acceptEdits".into(),
            "--max-turns".into(),
            "40".into(),
            "--".into(),
            format!("BODY<{body}>END T-9 {title} #42 {{nope}}"),
        ]
    );
    assert!(!w.path("work/web/pwned").exists());
    assert!(!w.path("work/web/pwned2").exists());
}

#[test]
fn built_in_prompt_and_the_previous_stage_result() {
    let w = world(&[("FAKE_CLAUDE_ARGV", "@argv")]);
    let job = claimed(&w, "T-2", "w1");
    let first = run_json(&w, job, "w1");
    let prompt = records(&w.path("argv"))[0].last().unwrap().clone();
    assert!(prompt.contains("analyst stage"), "{prompt}");
    assert!(
        prompt.contains("task T-2 of project web, attempt 1"),
        "{prompt}"
    );
    assert!(!prompt.contains("Done: the stage is complete."), "{prompt}");

    // Finalize's part, by hand: the analyst run judged ok, its job done.
    let db = w.db();
    db.execute(
        "UPDATE agent_runs SET result_ok = 1 WHERE id = ?1",
        [first["run_id"].as_i64().unwrap()],
    )
    .unwrap();
    db.execute(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
        [job],
    )
    .unwrap();
    w.orch(&[
        "enqueue",
        "--project",
        "web",
        "--task",
        "T-2",
        "--stage",
        "architect",
    ])
    .ok();
    let next = claim(&w, "w1");
    run_json(&w, next, "w1");
    let prompt = records(&w.path("argv"))[1].last().unwrap().clone();
    assert!(prompt.contains("architect stage"), "{prompt}");
    assert!(
        prompt.contains("previous stage (empty when there is none):\nDone: the stage is complete."),
        "{prompt}"
    );
}

#[test]
fn the_log_is_cut_at_the_cap() {
    // The smallest cap (64 KiB), and more output than that.
    let w = world(&[
        ("ORCH_LOG_MAX_BYTES", "65536"),
        ("FAKE_CLAUDE_BULK", "100000"),
    ]);
    let job = claimed(&w, "T-1", "w1");
    let out = run_json(&w, job, "w1");
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["log_truncated"], true);
    assert_eq!(out["log_bytes"], 65536);
    let log = out["log_path"].as_str().unwrap();
    assert_eq!(std::fs::metadata(log).unwrap().len(), 65536);
    let run = out["run_id"].as_i64().unwrap();
    assert!(run_column::<bool>(&w, run, "log_truncated"));
    assert_eq!(run_column::<i64>(&w, run, "log_bytes"), 65536);
}

#[test]
fn output_past_the_cap_is_read_and_discarded() {
    let w = world(&[("ORCH_LOG_MAX_BYTES", "65536")]);
    // An agent profile with its own argv template: 20 MB of output, then exit 0.
    w.config(
        r#"[agents.claude]
argv = ["/bin/sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x"]
"#,
    );
    let job = claimed(&w, "T-1", "w1");
    let out = run_json(&w, job, "w1");
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["log_truncated"], true);
    assert_eq!(out["log_bytes"], 65536);
    let log = std::fs::read(out["log_path"].as_str().unwrap()).unwrap();
    assert_eq!(log, vec![b'x'; 65536]);
}

/// The run starts the binary preflight checked, by the same precedence: the environment beats
/// the profile's `bin`, which beats `claude_bin` in the config file.
#[test]
fn the_binary_follows_preflights_precedence() {
    let mut w = world(&[]);
    let fake = support::fake_claude();
    let config = |w: &World, top: &str, profile_bin: &Path| {
        w.raw_config(&format!(
            "{top}\n[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n\n\
             [agents.claude]\nbin = \"{}\"\n",
            w.path("work/web").display(),
            profile_bin.display()
        ))
    };
    config(
        &w,
        &format!("claude_bin = \"{}\"\n", w.path("no/file/claude").display()),
        &fake,
    );
    w.unset("ORCH_CLAUDE_BIN");
    let job = claimed(&w, "T-1", "w1");
    assert_eq!(run_json(&w, job, "w1")["exit_code"], 0, "the profile's bin");

    config(&w, "", &w.path("no/profile/claude"));
    w.set("ORCH_CLAUDE_BIN", &fake);
    let job = claimed(&w, "T-2", "w1");
    assert_eq!(run_json(&w, job, "w1")["exit_code"], 0, "ORCH_CLAUDE_BIN");
    assert_eq!(agent_runs(&w), ["run ok", "run ok"]);
}

#[test]
fn only_the_lease_holder_may_run() {
    let w = world(&[]);
    let queued = w.enqueue("T-0");
    let out = w
        .orch(&["run", &queued.to_string(), "--worker", "w1"])
        .status(1);
    assert!(
        out.stderr.contains("is queued, not running"),
        "{}",
        out.stderr
    );
    let job = claimed(&w, "T-0", "w1");
    assert_eq!(job, queued);
    let before = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w2", "--json"])
        .status(1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("leased to w1, not w2"),
        "{}",
        out.stderr
    );
    let after = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(before["job"], after["job"], "nothing changed");
    assert_eq!(after["runs"].as_array().unwrap().len(), 0);
    assert!(agent_runs(&w).is_empty());
    w.orch(&["run", &job.to_string(), "--worker", " "])
        .status(2);
}

#[test]
fn a_missing_binary_is_recorded_and_resets_the_cache() {
    let w = world(&[]);
    // Claimed while the binary was there (the claim cached a passing verdict); gone since.
    let job = claimed(&w, "T-1", "w1");
    assert_eq!(cached_preflights(&w), 1);
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("ORCH_CLAUDE_BIN", w.path("no/such/claude"))
        .ok()
        .json();
    let reason = out["launch_error"].as_str().unwrap();
    assert!(reason.contains("no/such/claude"), "{reason}");
    assert_eq!(out["exit_code"], Value::Null);
    let run = out["run_id"].as_i64().unwrap();
    assert_eq!(
        run_column::<Option<String>>(&w, run, "launch_error").as_deref(),
        Some(reason)
    );
    assert!(run_column::<Option<i64>>(&w, run, "ended_at").is_some());
    assert_eq!(cached_preflights(&w), 0, "the preflight cache was reset");
}

#[test]
fn a_missing_workdir_is_recorded_as_the_projects_and_keeps_the_cache() {
    let w = world(&[]);
    let job = claimed(&w, "T-1", "w1");
    std::fs::remove_dir(w.path("work/web")).unwrap();
    cache_preflight(&w);
    let out = w.orch(&["run", &job.to_string(), "--worker", "w1"]).ok();
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(out.stdout.contains("never started"), "{}", out.stdout);
    let runs = w.orch(&["show", &job.to_string(), "--json"]).ok().json()["runs"].clone();
    let reason = runs[0]["launch_error"].as_str().unwrap();
    assert!(reason.contains("work/web"), "{reason}");
    assert_eq!(runs[0]["launch_kind"], "project");
    // The agent is as preflight saw it: its verdict stands.
    assert_eq!(cached_preflights(&w), 1);
    assert!(agent_runs(&w).is_empty());
}

#[test]
fn an_auth_failure_in_the_log_drops_the_cache_and_keeps_the_gate() {
    let mut w = world(&[]);
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        w.path("work/web").display()
    ));
    w.set("FAKE_CLAUDE_MODE", "error");
    let job = claimed(&w, "T-1", "w1");
    cache_preflight(&w);
    assert_eq!(run_json(&w, job, "w1")["exit_code"], 1);
    assert_eq!(
        cached_preflights(&w),
        1,
        "an ordinary failure keeps the cache"
    );

    w.set("FAKE_CLAUDE_MODE", "auth");
    let job = claimed(&w, "T-2", "w1");
    // Meanwhile another worker's finalize held the auth gate (no command holds one by hand).
    // Written by hand: holding it through the store would drop the cached verdict too, and this
    // test is about the run dropping it.
    w.db()
        .execute(
            "INSERT INTO auth_gate (host, agent, run_id, reason, created_at) VALUES (?1, 'claude', 1, 'x', ?2)",
            rusqlite::params![w.host(), now_ms()],
        )
        .unwrap();
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .ok();
    assert_eq!(out.json()["exit_code"], 1);
    assert_eq!(out.json()["auth_failure"], true);
    assert!(out.stderr.contains("not authenticated"), "{}", out.stderr);
    assert_eq!(cached_preflights(&w), 0);
    let gates: i64 = w.sql("SELECT count(*) FROM auth_gate", []);
    assert_eq!(
        gates, 1,
        "orch run drops the cache only; the gate is finalize's"
    );
}

fn interrupt_with(signal: i32, agent_exit: i64) {
    let w = world(&[("FAKE_CLAUDE_PIDS", "@pids")]);
    let job = claimed(&w, "T-1", "w1");
    let child = run_hanging(&w, job);
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["interrupted"], true);
    assert_eq!(json["timed_out"], false);
    assert_eq!(
        json["exit_code"], agent_exit,
        "the agent got the same signal"
    );
    assert_all_gone(&pids(&w));
    let run = json["run_id"].as_i64().unwrap();
    assert!(run_column::<bool>(&w, run, "interrupted"));
    // The job is left as it was, for finalize or the lease rescue.
    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(shown["job"]["state"], "running");
    assert_eq!(shown["job"]["lease_owner"], "w1");
}

#[test]
fn sigterm_is_forwarded_to_the_agent() {
    interrupt_with(libc::SIGTERM, 143);
}

#[test]
fn sigint_is_forwarded_to_the_agent() {
    interrupt_with(libc::SIGINT, 130);
}

#[test]
fn a_cancelled_job_stops_its_agent() {
    let w = world(&[("FAKE_CLAUDE_PIDS", "@pids"), ("ORCH_LEASE_SECONDS", "1")]);
    let job = claimed(&w, "T-1", "w1");
    let child = run_hanging(&w, job);
    w.orch(&["cancel", &job.to_string()]).ok();
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("lease is gone"), "{}", out.stderr);
    assert_eq!(out.json()["interrupted"], true);
    assert_all_gone(&pids(&w));
}

/// Expire the job's lease by moving its time into the past, as a frozen clock would see it.
fn expire_lease(w: &World, job: i64) {
    w.db()
        .execute(
            "UPDATE jobs SET lease_expires_at = ?2 - 1000 WHERE id = ?1",
            [job, now_ms()],
        )
        .unwrap();
}

#[test]
fn a_live_orch_keeps_its_job_on_its_host_whatever_its_lease_says() {
    let w = world(&[("ORCH_LEASE_SECONDS", "600"), ("FAKE_CLAUDE_PIDS", "@pids")]);
    let job = claimed(&w, "T-1", "w1");
    let child = run_hanging(&w, job);
    let _group = KillGroupOnDrop(pids(&w)[0]);
    expire_lease(&w, job);
    // The lease's clock says the job is free; its orch, alive and running here, says it is not.
    w.orch(&["claim", "--worker", "w2"]).status(3);
    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(shown["job"]["state"], "running");
    assert_eq!(shown["job"]["lease_owner"], "w1");
    assert!(pids(&w).iter().all(|&pid| alive(pid)));
    // Another host sees only the lease.
    w.orch(&["claim", "--worker", "w2"])
        .env("ORCH_HOST", "elsewhere")
        .ok();
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_stopped_ticks_agent_is_ended_before_its_job_runs_again() {
    let w = world(&[
        ("ORCH_LEASE_SECONDS", "600"),
        ("FAKE_CLAUDE_PIDS", "@pids"),
        ("FAKE_CLAUDE_RUNNING", "@running"),
    ]);
    let job = w.enqueue("T-1");
    let tick = w
        .orch(&["tick", "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", "hang")
        .spawn();
    let orch = tick.id() as i32;
    wait_until("the agent to start", Duration::from_secs(5), || {
        pids(&w).len() == 2
    });
    let agent = pids(&w);
    let _group = KillGroupOnDrop(agent[0]);
    // Ctrl-Z at a terminal, a frozen VM: orch stops, its agent (a group of its own) works on.
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(orch, libc::SIGSTOP) };
    wait_until("orch to stop", Duration::from_secs(5), || {
        proc_state(orch) == 'T'
    });
    // Stopped within its lease: it may be continued, nobody takes the job.
    w.orch(&["tick", "--worker", "w2"]).status(3);
    assert!(agent.iter().all(|&pid| alive(pid)));
    // Past its lease, another worker rescues the job and runs it, the stopped orch's agent and
    // the agent's child ended first: the two agents never work in the checkout at once.
    expire_lease(&w, job);
    let out = w
        .orch(&["tick", "--worker", "w2", "--json"])
        .env("FAKE_CLAUDE_MODE", "ok")
        .ok();
    assert!(out.stderr.contains("is stopped"), "{}", out.stderr);
    assert_eq!(out.json()["steps"][1]["step"], "rescue");
    for pid in &agent {
        assert!(!alive(*pid), "pid {pid} of the stopped orch's run lives");
    }
    let overlaps = std::fs::read_to_string(w.path("running/overlaps")).unwrap_or_default();
    assert_eq!(overlaps, "", "two agents ran the job at once");
    // Continued, the first orch finds its run closed, says so, and reports the rescue's decision.
    // SAFETY: as above.
    unsafe { libc::kill(orch, libc::SIGCONT) };
    let out = Out::of(tick);
    assert_eq!(out.code, 20, "{}", out.stderr);
    assert!(out.stderr.contains("lease is gone"), "{}", out.stderr);
    let shown = w.orch(&["show", &job.to_string(), "--json"]).ok().json();
    assert_eq!(shown["job"]["state"], "done");
    assert_eq!(shown["runs"][0]["class"], "orch_stopped");
    assert_eq!(shown["runs"][0]["signal"], libc::SIGKILL);
    assert_eq!(shown["runs"][1]["exit_code"], 0);
}

#[test]
fn cancel_then_retry_of_a_running_job_runs_it_for_real() {
    let w = world(&[
        ("ORCH_LEASE_SECONDS", "600"),
        ("ORCH_MAX_ATTEMPTS", "1"),
        ("FAKE_CLAUDE_PIDS", "@pids"),
    ]);
    let job = claimed(&w, "T-1", "w1");
    let child = run_hanging(&w, job);
    let _group = KillGroupOnDrop(pids(&w)[0]);
    let out = w.orch(&["cancel", &job.to_string()]).ok();
    assert!(out.stdout.contains("run 1 closed"), "{}", out.stdout);
    // Stopped at once (its lease heartbeat is minutes away), grandchild included.
    assert_all_gone(&pids(&w));
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("lease is gone"), "{}", out.stderr);
    assert_eq!(out.json()["interrupted"], true);
    // No finalize keeps the log of a run closed while it ran: its end did.
    let kept: i64 = w.sql("SELECT count(*) FROM run_logs WHERE run_id = 1", []);
    assert_eq!(kept, 1, "the cancelled run's log is kept in the database");
    // The run was closed as cancelled; finalizing it says so.
    let doc = w
        .orch(&["finalize", &job.to_string(), "--run", "1", "--json"])
        .status(21)
        .json();
    assert_eq!(
        (doc["decision"].as_str(), doc["class"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    assert_eq!(
        run_column::<Option<i64>>(&w, 1, "exit_code"),
        Some(143),
        "its orch recorded how the agent ended"
    );
    // Retried, the job runs its one attempt for real.
    w.orch(&["retry", &job.to_string()]).ok();
    let out = w.orch(&["claim", "--worker", "w1", "--json"]).ok();
    assert_eq!(out.json()["attempt"], 1);
    let out = w
        .orch(&["run", &job.to_string(), "--worker", "w1", "--json"])
        .env("FAKE_CLAUDE_MODE", "ok")
        .ok();
    assert_eq!(out.json()["exit_code"], 0);
    let doc = w
        .orch(&["finalize", &job.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(doc["decision"], "advanced");
    assert_eq!(agent_runs(&w).len(), 2);
}

#[test]
fn no_status_line_off_a_terminal() {
    let w = world(&[]);
    let job = claimed(&w, "T-1", "w1");
    let out = w.orch(&["run", &job.to_string(), "--worker", "w1"]).ok();
    assert!(!out.stderr.contains('\r'), "{:?}", out.stderr);
    assert!(!out.stdout.contains('\r'), "{:?}", out.stdout);
    assert!(
        out.stdout.starts_with("run 1 of job 1: exit 0"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_status_line_on_a_terminal() {
    let w = world(&[]);
    let job = claimed(&w, "T-1", "w1");
    let (mut master, slave) = open_pty();
    let mut cmd = w.orch(&["run", &job.to_string(), "--worker", "w1"]);
    cmd.command
        .env("FAKE_CLAUDE_SLEEP", "1.2")
        .stdin(Stdio::null())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.command.spawn().unwrap();
    drop(cmd);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        use std::io::Read;
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO once the last writer is gone
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(child.wait().unwrap().success());
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("\r\x1b[2K"), "{seen:?}");
    assert!(seen.contains("2 turns · 150 tokens · Bash"), "{seen:?}");
    assert!(seen.contains("run 1 of job 1: "), "{seen:?}");
}

fn open_pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own; the name and settings are not used.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    }
}
