//! Agents: Claude Code, Codex CLI and Gemini CLI side by side, chosen per stage, each judged by its
//! own rules; a command line an agent refuses (`invocation_error`) holding its profile; over the
//! real binary with the stand-ins (tests/agent/fake-claude, fake-codex, fake-gemini).

use crate::limits::{alerts, job_state, kinds};
use crate::support;

use serde_json::Value;
use support::{now_ms, World};

/// Three stages, one on each kind: analyst on claude, reviewer on codex, tester on gemini.
const THREE: &str = "[pipeline]\nstages = [\"analyst\", \"reviewer\", \"tester\"]\n\n\
[stages.reviewer]\nagent = \"codex\"\n\n[stages.tester]\nagent = \"gemini\"\n";

/// A world with the three stand-ins logged in, alerts queued, retries due at once, and `config`.
fn world(config: &str) -> World {
    let mut w = World::new();
    w.login(30 * 24 * 3_600_000);
    w.login_codex();
    w.login_gemini();
    w.set("ORCH_TELEGRAM_CHAT_ID", "-100")
        .set("ORCH_TELEGRAM_BOT_TOKEN", "123:abc")
        .set("ORCH_TELEGRAM_API_URL", "http://127.0.0.1:9")
        .set("ORCH_RETRY_BASE_SECONDS", "0")
        .set("ORCH_RATE_LIMIT_BACKOFF_SECONDS", "0");
    w.config(config);
    w
}

/// Queue task `key` at `stage`; its job id.
fn enqueue_at(w: &World, key: &str, stage: &str) -> i64 {
    w.orch(&[
        "enqueue",
        "--project",
        "web",
        "--task",
        key,
        "--stage",
        stage,
        "--json",
    ])
    .ok()
    .json()["job_id"]
        .as_i64()
        .unwrap()
}

/// One tick of at most five jobs.
fn tick(w: &World, code: i32) -> support::Out {
    w.orch(&["tick", "--worker", "w1", "--max-jobs", "5", "--json"])
        .status(code)
}

/// One tick of one job.
fn tick_one(w: &World, code: i32) -> support::Out {
    w.orch(&["tick", "--worker", "w1", "--json"]).status(code)
}

/// The runs, oldest first: (profile, kind, class).
fn runs(w: &World) -> Vec<(String, String, String)> {
    let db = w.db();
    let mut stmt = db
        .prepare("SELECT agent, agent_kind, class FROM agent_runs ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// How many times a stand-in was started to run (not asked its version).
fn runs_of(w: &World, calls: &str) -> usize {
    w.lines(calls)
        .iter()
        .filter(|l| l.starts_with("run"))
        .count()
}

/// Each argv a stand-in recorded (`FAKE_*_ARGV`: NUL-separated, runs apart by an empty one).
fn argvs(w: &World, file: &str) -> Vec<Vec<String>> {
    let bytes = std::fs::read(w.path(file)).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    text.split("\0\0")
        .filter(|run| !run.is_empty())
        .map(|run| run.split('\0').map(str::to_string).collect())
        .collect()
}

fn task_state(w: &World, key: &str) -> String {
    w.sql("SELECT state FROM tasks WHERE key = ?1", [key])
}

#[test]
fn a_task_walks_claude_then_codex_then_gemini() {
    let mut w = world(THREE);
    w.set("FAKE_CODEX_ARGV", w.path("codex-argv"));
    w.set("FAKE_GEMINI_ARGV", w.path("gemini-argv"));
    w.set("FAKE_CODEX_GOT", w.path("codex-got"));
    let first = w.enqueue("ORCH-1");
    let out = tick(&w, 0);
    let steps = out.json()["steps"].as_array().unwrap().clone();
    let preflights: Vec<&str> = steps
        .iter()
        .filter(|s| s["step"] == "preflight")
        .take(3)
        .map(|s| s["agent"].as_str().unwrap())
        .collect();
    assert_eq!(preflights, ["claude", "codex", "gemini"], "{steps:?}");
    assert_eq!(task_state(&w, "ORCH-1"), "complete");
    assert_eq!(
        runs(&w),
        [
            ("claude".into(), "claude".into(), "ok".into()),
            ("codex".into(), "codex".into(), "ok".into()),
            ("gemini".into(), "gemini".into(), "ok".into()),
        ]
    );
    // Each kind started its own way, each stage given the one before's result.
    let codex = &argvs(&w, "codex-argv")[0];
    assert_eq!(&codex[..3], ["exec", "--json", "-c"], "{codex:?}");
    assert_eq!(codex[3], "sandbox_mode=\"workspace-write\"");
    let prompt = codex.last().unwrap();
    assert!(prompt.contains("Done: the stage is complete."), "{prompt}");
    assert_eq!(
        w.lines("codex-got"),
        ["sandbox=workspace-write bypass=no resume= skip_git=no tz=UTC"]
    );
    let gemini = &argvs(&w, "gemini-argv")[0];
    assert_eq!(
        &gemini[..4],
        [
            "--output-format",
            "stream-json",
            "--approval-mode",
            "auto_edit"
        ]
    );
    let prompt = gemini.last().unwrap();
    assert!(
        prompt.starts_with("--prompt=You work on the tester stage"),
        "{prompt}"
    );
    assert!(prompt.contains("Reviewed: the change does what the task asks."));
    // `orch logs` reads each run by its kind's rules.
    let reviewer = first + 1;
    let logs = w.orch(&["logs", &reviewer.to_string()]).ok().stdout;
    assert!(
        logs.contains("command  /bin/bash -lc 'git status'"),
        "{logs}"
    );
    assert!(
        logs.contains("text    Reviewed: the change does what the task asks."),
        "{logs}"
    );
    assert!(logs.contains("verdict   ok  turn completed"), "{logs}");
    assert!(!logs.contains('$'), "Codex reports no cost: {logs}");
    let tester = first + 2;
    let logs = w.orch(&["logs", &tester.to_string()]).ok().stdout;
    assert!(
        logs.contains("text    Tested: the change passes."),
        "{logs}"
    );
    assert!(logs.contains("verdict   ok  success result"), "{logs}");
}

#[test]
fn a_logged_out_agent_holds_only_its_own_stages() {
    let w = world(THREE);
    std::fs::remove_dir_all(w.path("home/.gemini")).unwrap();
    w.enqueue("ORCH-1");
    let waiting = enqueue_at(&w, "ORCH-2", "tester");
    // Claude's and Codex's stages run; Gemini's wait.
    let out = tick(&w, 0);
    assert!(out.stdout.contains("gemini held"), "{}", out.stdout);
    assert_eq!(runs(&w).len(), 2);
    let out = tick(&w, 11);
    let stop = out.json()["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        stop["reason"]
            .as_str()
            .unwrap()
            .contains("preflight failed for agent gemini"),
        "{stop}"
    );
    assert_eq!(
        runs_of(&w, "gemini-calls.txt"),
        0,
        "Gemini was never started"
    );
    assert_eq!(job_state(&w, waiting).0, "queued");
    assert_eq!(job_state(&w, waiting).1, 0, "no attempt spent");
    w.orch(&["claim", "--worker", "w1", "--agent", "gemini"])
        .status(11);
    w.orch(&["claim", "--worker", "w1", "--agent", "codex"])
        .status(3);
    // Logged in, its jobs run.
    w.login_gemini();
    tick(&w, 0);
    assert_eq!(task_state(&w, "ORCH-1"), "complete");
    assert_eq!(task_state(&w, "ORCH-2"), "complete");
    assert_eq!(runs_of(&w, "gemini-calls.txt"), 2);
}

#[test]
fn claims_for_one_agent_take_only_its_stages() {
    let w = world(THREE);
    w.raw_config(&format!(
        "{THREE}\n[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        w.path("work/web").display()
    ));
    let analyst = w.enqueue("ORCH-1");
    let reviewer = enqueue_at(&w, "ORCH-2", "reviewer");
    let claimed = w
        .orch(&["claim", "--worker", "w1", "--agent", "codex", "--json"])
        .ok()
        .json();
    assert_eq!(claimed["job_id"], reviewer);
    assert_eq!(claimed["agent"], "codex");
    w.orch(&["claim", "--worker", "w1", "--agent", "codex"])
        .status(3);
    let claimed = w.orch(&["claim", "--worker", "w2", "--json"]).ok().json();
    assert_eq!(
        (claimed["job_id"].as_i64(), claimed["agent"].as_str()),
        (Some(analyst), Some("claude"))
    );
    let unknown = w
        .orch(&["claim", "--worker", "w1", "--agent", "nobody"])
        .status(2);
    assert!(
        unknown.stderr.contains("unknown agent \"nobody\""),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_refused_command_line_holds_the_profile_until_its_settings_change() {
    let mut w = world(THREE);
    // Codex refuses a workdir outside a git work tree, as the real one does.
    w.set("FAKE_CODEX_REQUIRE_GIT", "1");
    let job = enqueue_at(&w, "ORCH-1", "reviewer");
    let out = tick(&w, 22);
    let finalized = out.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "finalize")
        .unwrap()["outcome"]
        .clone();
    assert_eq!(finalized["class"], "invocation_error", "{finalized}");
    assert_eq!(finalized["decision"], "gated");
    assert_eq!(job_state(&w, job).0, "queued");
    assert_eq!(job_state(&w, job).1, 0, "the attempt is given back");
    assert_eq!(kinds(&w), ["invocation_error"]);
    let (_, alert) = &alerts(&w)[0];
    assert!(alert.contains("--skip-git-repo-check"), "{alert}");
    assert!(alert.contains("[agents.codex] extra_args"), "{alert}");
    assert!(alert.contains("[projects.web] workdir"), "{alert}");
    // Held: preflight says why and what to change; nothing is started again.
    let explained = w
        .orch(&["preflight", "--agent", "codex", "--explain"])
        .status(10);
    assert!(
        explained
            .stdout
            .contains("refused its command line in run 1"),
        "{}",
        explained.stdout
    );
    assert!(explained.stdout.contains("--skip-git-repo-check"));
    let status = w.orch(&["status"]).ok().stdout;
    assert!(
        status.contains("agent codex held on") && status.contains("refused its command line"),
        "{status}"
    );
    assert!(status.contains("--skip-git-repo-check"), "{status}");
    tick(&w, 10);
    assert_eq!(runs_of(&w, "codex-calls.txt"), 1);
    let breakers: i64 = w.sql(
        "SELECT count(*) FROM breakers WHERE consecutive_failures > 0",
        [],
    );
    assert_eq!(breakers, 0, "the breaker is untouched");
    // The setting it names changes: the hold lifts by itself.
    w.config(&format!(
        "{THREE}\n[agents.codex]\nextra_args = [\"--skip-git-repo-check\"]\n"
    ));
    let status = w.orch(&["status"]).ok().stdout;
    assert!(!status.contains("refused its command line"), "{status}");
    w.orch(&["preflight", "--agent", "codex"]).ok();
    tick(&w, 0);
    assert_eq!(task_state(&w, "ORCH-1"), "complete");
    assert_eq!(kinds(&w), ["invocation_error"], "one alert for the hold");
}

#[test]
fn a_git_work_tree_lifts_the_hold_of_an_agent_that_wants_one() {
    let mut w = world(THREE);
    w.set("FAKE_CODEX_REQUIRE_GIT", "1");
    enqueue_at(&w, "ORCH-1", "reviewer");
    tick(&w, 22);
    w.orch(&["preflight", "--agent", "codex"]).status(10);
    // A repository with a commit: each task's branch starts from one.
    for args in [
        &["init", "-q"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        // The world's HOME and no system config: the machine's git configuration plays no part.
        let git = std::process::Command::new("git")
            .args(args)
            .current_dir(w.path("work/web"))
            .env("HOME", w.path("home"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap();
        assert!(git.success());
    }
    w.orch(&["preflight", "--agent", "codex"]).ok();
    tick(&w, 0);
}

#[test]
fn claude_refusing_its_command_line_is_held_not_retried() {
    let mut w = world("[stages.developer]\npermission_mode = \"bypassPermissions\"\n");
    w.set("FAKE_CLAUDE_AS_ROOT", "1");
    let job = enqueue_at(&w, "ORCH-1", "developer");
    let out = tick(&w, 22);
    assert!(
        out.stdout.contains("invocation_error → gated"),
        "{}",
        out.stdout
    );
    assert_eq!(job_state(&w, job).1, 0);
    let reason: String = w.sql("SELECT reason FROM agent_runs", []);
    assert!(reason.contains("root/sudo privileges"), "{reason}");
    let (_, alert) = &alerts(&w)[0];
    assert!(alert.contains("IS_SANDBOX"), "{alert}");
    assert!(
        alert.contains("[stages.developer] permission_mode"),
        "{alert}"
    );
    tick(&w, 10);
    assert_eq!(runs_of(&w, "calls.txt"), 1);
    // An operator lifts it by hand: refused again, held again.
    let reset = w
        .orch(&["reset-cache", "--agent", "claude", "--json"])
        .ok()
        .json();
    assert_eq!(reset["invocation_holds"], 1, "{reset}");
    tick(&w, 22);
    assert_eq!(runs_of(&w, "calls.txt"), 2);
    // In a sandbox, as the fix says.
    w.config(
        "[stages.developer]\npermission_mode = \"bypassPermissions\"\n\n[agents.claude.env]\nIS_SANDBOX = \"1\"\n",
    );
    tick(&w, 0);
    assert_eq!(job_state(&w, job).0, "done");
}

#[test]
fn codex_tells_its_reset_in_utc_whatever_orchs_zone() {
    let mut w = world(THREE);
    // orch's own zone is Tokyo's; Codex says the time of day in its process's zone.
    w.set("TZ", "Asia/Tokyo");
    w.set("FAKE_CODEX_MODE", "usage_limit");
    w.set("FAKE_CODEX_RESETS_IN", "7200");
    w.set("FAKE_CODEX_GOT", w.path("codex-got"));
    let job = enqueue_at(&w, "ORCH-1", "reviewer");
    let before = now_ms();
    tick_one(&w, 20);
    assert!(w.lines("codex-got")[0].ends_with("tz=UTC"));
    let (state, attempt, run_after) = job_state(&w, job);
    assert_eq!((state.as_str(), attempt), ("queued", 0));
    // Codex says the minute: the reset is within the minute before, plus the spread after it.
    let reset = before + 7_200_000;
    assert!(
        run_after > reset - 120_000 && run_after < reset + 120_000,
        "due {} min from now",
        (run_after - before) / 60_000
    );
    let held = w.orch(&["preflight", "--agent", "codex"]).status(13);
    assert!(held.stdout.contains("over its usage limit"), "{held:?}");
    // The other agents' stages go on.
    w.orch(&["preflight", "--agent", "claude"]).ok();
}

#[test]
fn gemini_failing_to_validate_a_good_login_offline_is_transient() {
    let mut w = world(THREE);
    let job = enqueue_at(&w, "ORCH-1", "tester");
    w.set("FAKE_GEMINI_MODE", "offline");
    let out = tick_one(&w, 20);
    assert!(
        out.stdout.contains("agent_error → requeued"),
        "{}",
        out.stdout
    );
    let reason: String = w.sql("SELECT reason FROM agent_runs ORDER BY id DESC LIMIT 1", []);
    assert!(reason.contains("passes orch's offline check"), "{reason}");
    assert_eq!(
        job_state(&w, job).1,
        1,
        "a transient failure spends its attempt"
    );
    w.orch(&["preflight", "--agent", "gemini"]).ok();
    // No auth method at all: that is auth, and the gate holds.
    w.set("FAKE_GEMINI_MODE", "auth");
    let out = tick_one(&w, 22);
    assert!(out.stdout.contains("auth → gated"), "{}", out.stdout);
    w.orch(&["preflight", "--agent", "gemini"]).status(11);
}

#[test]
fn gemini_error_reports_stay_in_a_directory_of_orchs() {
    let mut w = world(THREE);
    w.set("FAKE_GEMINI_MODE", "error");
    w.set("FAKE_GEMINI_GOT", w.path("gemini-got"));
    enqueue_at(&w, "ORCH-1", "tester");
    tick_one(&w, 20);
    let tmp = w.path("state/logs/agent-tmp/gemini");
    let got = &w.lines("gemini-got")[0];
    assert!(got.ends_with(&format!("tmpdir={}", tmp.display())), "{got}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tmp).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let reports: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert_eq!(
        reports.len(),
        1,
        "the report with the prompt in it is there"
    );
}

#[test]
fn a_codex_thread_is_continued_with_exec_resume() {
    let mut w = world(&THREE.replace(
        "agent = \"codex\"\n",
        "agent = \"codex\"\ntimeout_seconds = 1\n",
    ));
    std::fs::write(w.path("codex-script"), "stall\nok\n").unwrap();
    w.set("FAKE_CODEX_SCRIPT", w.path("codex-script"));
    w.set("FAKE_CODEX_GOT", w.path("codex-got"));
    w.set("ORCH_KILL_GRACE_SECONDS", "1");
    let job = enqueue_at(&w, "ORCH-1", "reviewer");
    tick_one(&w, 20);
    let thread: String = w.sql(
        "SELECT json_extract(usage_json, '$.session_id') FROM agent_runs WHERE job_id = ?1",
        [job],
    );
    tick_one(&w, 0);
    let got = w.lines("codex-got");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].contains(&format!("resume={thread} ")), "{got:?}");
    let resumed: String = w.sql(
        "SELECT resumed_session FROM agent_runs ORDER BY id DESC LIMIT 1",
        [],
    );
    assert_eq!(resumed, thread);
}

#[test]
fn a_price_table_estimates_what_codex_does_not_say() {
    let w = world(THREE);
    enqueue_at(&w, "ORCH-1", "reviewer");
    tick(&w, 0);
    let cost: Option<f64> = w.sql("SELECT cost_usd FROM agent_runs", []);
    assert_eq!(cost, None, "unknown, never 0");
    let priced = format!(
        "{THREE}\n[agents.codex.prices]\ninput_per_mtok = 1.25\ncached_input_per_mtok = 0.125\noutput_per_mtok = 10.0\n"
    );
    w.config(&priced);
    let job = enqueue_at(&w, "ORCH-2", "reviewer");
    tick(&w, 0);
    // 1000 input at 1.25, 200 cached at 0.125, 150 output at 10, per million.
    let expected = (1000.0 * 1.25 + 200.0 * 0.125 + 150.0 * 10.0) / 1e6;
    let cost: f64 = w.sql("SELECT cost_usd FROM agent_runs WHERE job_id = ?1", [job]);
    assert!((cost - expected).abs() < 1e-9, "{cost}");
    let spent: f64 = w.sql("SELECT spent_usd FROM tasks WHERE key = 'ORCH-2'", []);
    assert!(
        (spent - expected).abs() < 1e-9,
        "budgets count the estimate: {spent}"
    );
    let logs = w.orch(&["logs", &job.to_string()]).ok().stdout;
    assert!(logs.contains("~$0.0028 (estimated)"), "{logs}");
}

#[test]
fn settings_a_kind_cannot_honour_are_named_not_dropped() {
    let w = world(&THREE.replace(
        "agent = \"codex\"\n",
        "agent = \"codex\"\nallowed_tools = [\"Bash(git diff:*)\"]\nmax_budget_usd = 2\n",
    ));
    enqueue_at(&w, "ORCH-1", "reviewer");
    let out = tick(&w, 0);
    assert!(
        out.stderr.contains(
            "agent codex (Codex CLI) cannot honour [stages.reviewer] allowed_tools, max_budget_usd"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stage_names_an_agent_orch_knows() {
    let w = world("[stages.reviewer]\nagent = \"codx\"\n");
    let err = w.orch(&["status"]).status(78).stderr;
    assert!(
        err.contains("line 2: agent: unknown agent \"codx\""),
        "{err}"
    );
    assert!(err.contains("codex"), "a hint: {err}");
    // A kind's name needs no profile; a profile of a kind is named by its own name.
    let w = world(
        "[stages.reviewer]\nagent = \"fast-codex\"\n\n[agents.fast-codex]\nkind = \"codex\"\n",
    );
    w.orch(&["status"]).ok();
    let dry = w
        .orch(&[
            "run",
            &enqueue_at(&w, "ORCH-1", "reviewer").to_string(),
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dry["agent"], "fast-codex");
    assert_eq!(dry["argv"][1], "exec");
}

#[test]
fn validate_log_judges_by_each_kinds_rules() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");
    let w = World::new();
    let judge = |kind: &str, file: &str, exit: &str, code: i32| -> Value {
        let path = format!("{fixtures}/{file}");
        w.orch(&[
            "validate-log",
            &path,
            "--agent",
            kind,
            "--exit-code",
            exit,
            "--json",
        ])
        .status(code)
        .json()
    };
    assert_eq!(judge("codex", "codex/mock-ok.log", "0", 0)["class"], "ok");
    assert_eq!(
        judge("codex", "codex/mock-401.log", "1", 22)["class"],
        "auth"
    );
    let limited = judge("codex", "codex/mock-usage-limit.log", "1", 20);
    assert_eq!(limited["class"], "usage_limit", "{limited}");
    let refused = judge("codex", "codex/loggedout-nogit.log", "1", 22);
    assert_eq!(refused["class"], "invocation_error");
    assert!(refused["fix"]
        .as_str()
        .unwrap()
        .contains("--skip-git-repo-check"));
    assert_eq!(
        judge("gemini", "gemini/mock-ok-streamjson.log", "0", 0)["class"],
        "ok"
    );
    assert_eq!(
        judge("gemini", "gemini/apikey-untrusted-streamjson.log", "55", 22)["class"],
        "invocation_error"
    );
    // Claude Code's rules (the default) do not take Gemini's error result for a success; each
    // kind's own rules say what it was.
    let path = format!("{fixtures}/gemini/mock-500-streamjson.log");
    let claude = w.orch(&["validate-log", &path, "--json"]).status(20).json();
    assert_ne!(claude["class"], "ok", "{claude}");
    let gemini = w
        .orch(&["validate-log", &path, "--agent", "gemini", "--json"])
        .status(20)
        .json();
    assert_eq!(gemini["class"], "agent_error");
    let typo = w
        .orch(&["validate-log", &path, "--agent", "gemni"])
        .status(2);
    assert!(typo.stderr.contains("gemini"), "{}", typo.stderr);
}

/// A JWT whose payload is `{"exp":<seconds>}`: base64url without padding. Codex reads `exp`
/// only; the signature part is never checked (it holds `SIG-SECRET` to prove it is not shown).
fn jwt(exp_ms: i64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let payload = format!("{{\"exp\":{}}}", exp_ms / 1000);
    let bits: Vec<bool> = payload
        .bytes()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .collect();
    let encoded: String = bits
        .chunks(6)
        .map(|six| {
            let n = (0..6).fold(0, |n, i| n << 1 | usize::from(six.get(i) == Some(&true)));
            ALPHABET[n] as char
        })
        .collect();
    format!("eyJhbGciOiJSUzI1NiJ9.{encoded}.SIG-SECRET")
}

/// One credentials state of one kind, and the preflight verdict it must get.
struct Case {
    kind: &'static str,
    what: &'static str,
    /// Files under the agent's home.
    files: Vec<(&'static str, String)>,
    /// orch's environment (which the agent's inherits).
    env: &'static [(&'static str, &'static str)],
    set: &'static [&'static str],
    code: i32,
    /// Words the auth check's reason must hold.
    says: &'static str,
}

#[test]
fn each_credentials_state_gives_its_preflight_verdict() {
    let hour = 3_600_000;
    let now = now_ms();
    let chatgpt = |access: String, refresh: &str| {
        format!(
            r#"{{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{{"id_token":"id-SECRET","access_token":"{access}","refresh_token":"{refresh}","account_id":"acct"}},"last_refresh":"2026-01-01T00:00:00Z"}}"#
        )
    };
    const AUTH: &str = ".codex/auth.json";
    const SETTINGS: &str = ".gemini/settings.json";
    const CREDS: &str = ".gemini/oauth_creds.json";
    let google = || {
        (
            SETTINGS,
            r#"{"security":{"auth":{"selectedType":"oauth-personal"}}}"#.to_string(),
        )
    };
    let oauth = |fields: String| {
        (
            CREDS,
            format!("{{\"access_token\":\"ya29.SECRET\",{fields}}}"),
        )
    };
    let case = |kind, what, files, code, says| Case {
        kind,
        what,
        files,
        env: &[],
        set: &[],
        code,
        says,
    };
    let cases = [
        case(
            "codex",
            "valid: a ChatGPT login, its JWT not expired",
            vec![(AUTH, chatgpt(jwt(now + 240 * hour), "rt-SECRET"))],
            0,
            "expires in",
        ),
        case(
            "codex",
            "expired, no refresh token",
            vec![(AUTH, chatgpt(jwt(now - 3 * hour), ""))],
            11,
            "expired 3 h ago",
        ),
        case(
            "codex",
            "expired with a refresh token",
            vec![(AUTH, chatgpt(jwt(now - 3 * hour), "rt-SECRET"))],
            11,
            "expired 3 h ago and a refresh token is present",
        ),
        Case {
            set: &["--set", "auth_allow_refreshable=true"],
            ..case(
                "codex",
                "expired with a refresh token, allowed",
                vec![(AUTH, chatgpt(jwt(now - 3 * hour), "rt-SECRET"))],
                0,
                "allowed by auth_allow_refreshable",
            )
        },
        case(
            "codex",
            "an API key in auth.json",
            vec![(
                AUTH,
                r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-SECRET"}"#.to_string(),
            )],
            0,
            "API key",
        ),
        case(
            "codex",
            "broken",
            vec![(AUTH, "{\"auth_mode\":\"chatgpt\",\"tokens\":{".to_string())],
            11,
            "auth.json",
        ),
        case("codex", "missing", vec![], 11, "no credentials file"),
        Case {
            env: &[("CODEX_API_KEY", "sk-SECRET")],
            ..case("codex", "an environment key", vec![], 0, "CODEX_API_KEY")
        },
        Case {
            env: &[("OPENAI_API_KEY", "sk-SECRET")],
            ..case(
                "codex",
                "OPENAI_API_KEY, which codex exec ignores",
                vec![],
                11,
                "ignores it",
            )
        },
        case(
            "gemini",
            "valid: an access token alone, not expired",
            vec![google(), oauth(format!("\"expiry_date\":{}", now + hour))],
            0,
            "expires in",
        ),
        case(
            "gemini",
            "expired, no refresh token",
            vec![
                google(),
                oauth(format!("\"expiry_date\":{}", now - 3 * hour)),
            ],
            11,
            "expired 3 h ago",
        ),
        // Gemini refreshes its hour-long access token at every start: the refresh token is the
        // login.
        case(
            "gemini",
            "expired with a refresh token",
            vec![
                google(),
                oauth(format!(
                    "\"refresh_token\":\"1//SECRET\",\"expiry_date\":{}",
                    now - 3 * hour
                )),
            ],
            0,
            "refresh token",
        ),
        case(
            "gemini",
            "broken",
            vec![google(), (CREDS, "{\"access_token\":".to_string())],
            11,
            "oauth_creds.json",
        ),
        case("gemini", "missing", vec![google()], 11, "oauth_creds.json"),
        case(
            "gemini",
            "no auth method at all",
            vec![],
            11,
            "GEMINI_API_KEY",
        ),
        Case {
            env: &[("GEMINI_API_KEY", "AIza-SECRET")],
            ..case("gemini", "an environment key", vec![], 0, "GEMINI_API_KEY")
        },
    ];
    for case in cases {
        let w = World::new();
        for (path, body) in &case.files {
            let path = w.path(&format!("home/{path}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, body).unwrap();
        }
        let mut args = case.set.to_vec();
        args.extend(["preflight", "--agent", case.kind, "--json"]);
        let mut cmd = w.orch(&args);
        for (name, value) in case.env {
            cmd = cmd.env(name, value);
        }
        let what = format!("{}: {}", case.kind, case.what);
        let out = cmd.status(case.code);
        assert!(
            !out.stdout.contains("SECRET") && !out.stderr.contains("SECRET"),
            "{what}: a token shown: {out:?}"
        );
        let verdict = out.json();
        let auth = verdict["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "auth")
            .unwrap_or_else(|| panic!("{what}: no auth check in {verdict}"));
        assert_eq!(
            auth["status"],
            if case.code == 0 { "pass" } else { "fail" },
            "{what}: {auth}"
        );
        let reason = auth["reason"].as_str().unwrap();
        assert!(reason.contains(case.says), "{what}: {reason}");
        assert_eq!(
            auth["detail"]["fix"].is_string(),
            case.code != 0,
            "{what}: a failure, and only one, says what to do: {auth}"
        );
    }
}

#[test]
fn each_agent_gets_its_own_kinds_key_and_no_other() {
    let mut w = world(THREE);
    let keys = [
        ("claude", "ANTHROPIC_API_KEY", "ak-claude-7f1"),
        ("codex", "CODEX_API_KEY", "ck-codex-2b9"),
        ("codex", "OPENAI_API_KEY", "ok-openai-5c3"),
        ("gemini", "GEMINI_API_KEY", "gk-gemini-8d4"),
    ];
    for (_, name, value) in keys {
        w.set(name, value);
    }
    for kind in ["CLAUDE", "CODEX", "GEMINI"] {
        w.set(
            &format!("FAKE_{kind}_ENV"),
            w.path(&format!("env-{}.txt", kind.to_lowercase())),
        );
    }
    enqueue_at(&w, "ORCH-1", "analyst");
    tick(&w, 0);
    assert_eq!(runs(&w).len(), 3, "{:?}", runs(&w));
    for kind in ["claude", "codex", "gemini"] {
        let seen = std::fs::read_to_string(w.path(&format!("env-{kind}.txt")))
            .unwrap_or_else(|err| panic!("{kind} ran: {err}"));
        for (owner, name, value) in keys {
            assert_eq!(
                seen.contains(&format!("{name}={value}")),
                owner == kind,
                "{kind}'s environment and {name}"
            );
        }
    }
    // What the operator puts in a profile's env is shown by name only.
    w.raw_config(&format!(
        "{THREE}\n[agents.codex]\nenv = {{ CODEX_API_KEY = \"ck-in-config-1e5\" }}\n\n\
         [projects.web]\nworkdir = \"{}\"\n",
        w.path("work/web").display()
    ));
    let shown = w.orch(&["config", "--json"]).ok().stdout;
    assert!(!shown.contains("ck-in-config-1e5"), "{shown}");
    assert!(shown.contains("CODEX_API_KEY"), "{shown}");
}

#[test]
fn a_cost_no_agent_reported_is_unknown_in_the_report_never_zero() {
    let w = world(THREE);
    enqueue_at(&w, "ORCH-1", "analyst");
    tick(&w, 0);
    let report = w.orch(&["usage", "--by", "agent", "--json"]).ok().json();
    let row = |agent: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["agent"] == agent)
            .unwrap_or_else(|| panic!("{agent}: {report}"))
            .clone()
    };
    assert!(
        row("claude")["cost_usd"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    for agent in ["codex", "gemini"] {
        assert_eq!(row(agent)["cost_usd"], Value::Null, "{agent}: {report}");
        assert_eq!(row(agent)["runs_cost_unknown"], 1, "{agent}: {report}");
    }
    assert_eq!(report["total"]["runs_cost_unknown"], 2, "{report}");
    let table = w.orch(&["usage", "--by", "agent"]).ok().stdout;
    let codex = table.lines().find(|l| l.starts_with("codex")).unwrap();
    assert!(codex.contains('—') && !codex.contains("$0.00"), "{table}");
}

#[test]
fn config_warns_of_budgets_blind_to_an_agent_without_a_cost() {
    let w = world(THREE);
    let project = format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_cost_usd = 5\n",
        w.path("work/web").display()
    );
    w.raw_config(&format!("{THREE}\n{project}"));
    let blind =
        |w: &World| w.orch(&["config", "--json"]).ok().json()["budget_blind_stages"]["web"].clone();
    assert_eq!(
        blind(&w),
        serde_json::json!(["reviewer (codex)", "tester (gemini)"])
    );
    let text = w.orch(&["config"]).ok().stdout;
    assert!(
        text.contains("its budgets do not see the cost of stage reviewer (codex), tester (gemini)"),
        "{text}"
    );
    // A price table makes Codex's cost an estimate the budget counts.
    w.raw_config(&format!(
        "{THREE}\n[agents.codex.prices]\ninput_per_mtok = 1.25\noutput_per_mtok = 10.0\n\n{project}"
    ));
    assert_eq!(blind(&w), serde_json::json!(["tester (gemini)"]));
    // No budget, nothing to warn of.
    w.raw_config(&format!(
        "{THREE}\n[projects.web]\nworkdir = \"{}\"\n",
        w.path("work/web").display()
    ));
    assert_eq!(blind(&w), Value::Null);
}

#[test]
fn a_projects_agent_runs_the_stages_that_name_none() {
    let w = world("");
    w.raw_config(&format!(
        "[pipeline]\nstages = [\"analyst\", \"reviewer\"]\n\n[stages.reviewer]\nagent = \"gemini\"\n\n\
         [projects.web]\nworkdir = \"{}\"\nagent = \"codex\"\n",
        w.path("work/web").display()
    ));
    enqueue_at(&w, "ORCH-1", "analyst");
    tick(&w, 0);
    let kinds: Vec<String> = runs(&w).into_iter().map(|(_, kind, _)| kind).collect();
    assert_eq!(
        kinds,
        ["codex", "gemini"],
        "the project's, then the stage's"
    );
}
