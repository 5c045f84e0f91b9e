//! `orch preflight`, `orch reset-cache` and the claim gate, over the real binary with the stand-in
//! agent. Every credentials file lives in the test's temporary HOME: the machine's ~/.claude is
//! never read.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{fake_claude, now_ms, write_private, World};

const TOKEN: &str = "sk-ant-oat01-test";
const REFRESH: &str = "sk-ant-ort01-test";

/// orch's own HOME in the world; `World::login` writes here.
fn home_creds(world: &World) -> PathBuf {
    world.path("home/.claude/.credentials.json")
}

fn write_creds(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_private(path, body.as_bytes());
}

/// A credentials file in Claude Code's shape: `oauth` is the claudeAiOauth object's inside.
fn oauth(oauth: &str) -> String {
    format!(
        r#"{{"mcpOAuth":{{}},"claudeAiOauth":{{{oauth},"scopes":["user:inference"],"subscriptionType":"max"}}}}"#
    )
}

fn expiring(access: &str, refresh: &str, expires_in_ms: i64) -> String {
    oauth(&format!(
        r#""accessToken":"{access}","refreshToken":"{refresh}","expiresAt":{}"#,
        now_ms() + expires_in_ms
    ))
}

fn check<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {verdict:#}"))
}

/// `orch preflight --json` with extra environment, its exit status asserted; no token printed.
fn preflight_with(world: &World, env: &[(&str, &str)], code: i32) -> Value {
    let mut cmd = world.orch(&["preflight", "--json"]);
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    let out = cmd.status(code);
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    assert!(!out.stdout.contains(REFRESH) && !out.stderr.contains(REFRESH));
    out.json()
}

fn preflight(world: &World, code: i32) -> Value {
    preflight_with(world, &[], code)
}

fn auth_reason(world: &World, code: i32) -> String {
    let verdict = preflight(world, code);
    assert_eq!(verdict["ok"], code == 0);
    check(&verdict, "auth")["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

fn path_from(verdict: &Value) -> String {
    check(verdict, "auth")["detail"]["path_from"]
        .as_str()
        .unwrap()
        .to_string()
}

fn version_calls(world: &World) -> usize {
    world.calls().iter().filter(|c| *c == "version").count()
}

#[test]
fn valid_credentials_pass() {
    let world = World::new();
    world.login(3_600_000);
    let verdict = preflight(&world, 0);
    assert_eq!(verdict["ok"], true);
    assert_eq!(verdict["cached"], false);
    assert_eq!(verdict["agent"], "claude");
    assert_eq!(verdict["age_seconds"], 0);
    let version = check(&verdict, "version");
    assert_eq!(version["status"], "pass");
    assert_eq!(version["detail"]["version"], "2.1.197");
    let auth = check(&verdict, "auth");
    assert_eq!(auth["status"], "pass");
    assert_eq!(
        auth["detail"]["path"],
        home_creds(&world).display().to_string()
    );
    assert!(auth["detail"]["expires_at"].as_i64().unwrap() > now_ms());
    assert_eq!(
        verdict["checks"].as_array().unwrap().len(),
        2,
        "no warning for a 0600 file"
    );
    let out = world.orch(&["preflight"]).ok();
    assert!(
        out.stdout.starts_with("ok claude: version 2.1.197"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 1);
}

#[test]
fn missing_credentials_fail_with_exit_11() {
    let world = World::new();
    let reason = auth_reason(&world, 11);
    assert!(reason.contains("no credentials file at"), "{reason}");
    let out = world.orch(&["preflight"]).status(11);
    assert!(
        out.stdout.starts_with("fail claude: no credentials file"),
        "{}",
        out.stdout
    );
}

#[test]
fn expired_credentials_fail() {
    let world = World::new();
    write_creds(&home_creds(&world), &expiring(TOKEN, "", -3 * 3_600_000));
    assert_eq!(auth_reason(&world, 11), "the access token expired 3 h ago");
    // Within the skew counts as expired: 2 minutes left, 300 s of skew.
    write_creds(&home_creds(&world), &expiring(TOKEN, "", 120_000));
    let reason = auth_reason(&world, 11);
    assert!(reason.contains("within the 300 s skew"), "{reason}");
    let verdict = preflight_with(&world, &[("ORCH_AUTH_EXPIRY_SKEW_SECONDS", "60")], 0);
    assert_eq!(check(&verdict, "auth")["status"], "pass");
}

#[test]
fn credentials_without_expiry_pass() {
    let world = World::new();
    write_creds(
        &home_creds(&world),
        &oauth(&format!(r#""accessToken":"{TOKEN}""#)),
    );
    assert!(auth_reason(&world, 0).contains("no expiry"));
}

#[test]
fn broken_files_fail_with_their_reason_and_never_panic() {
    let world = World::new();
    let cases = [
        (
            format!(r#"{{"claudeAiOauth":{{"accessToken":"{TOKEN}""#),
            "is not JSON",
        ),
        (String::new(), "is not JSON"),
        ("[1,2]".to_string(), "has no claudeAiOauth object"),
        (
            r#"{"other":{"accessToken":"x"}}"#.to_string(),
            "has no claudeAiOauth object",
        ),
        (
            oauth(r#""accessToken":"","refreshToken":"r","expiresAt":99999999999999"#),
            "has no access token",
        ),
        (oauth(r#""accessToken":null"#), "has no access token"),
    ];
    for (body, wanted) in cases {
        write_creds(&home_creds(&world), &body);
        let reason = auth_reason(&world, 11);
        assert!(reason.contains(wanted), "{body:?}: {reason}");
    }
    // A directory where the file should be: unreadable, still a reason.
    std::fs::remove_file(home_creds(&world)).unwrap();
    std::fs::create_dir(home_creds(&world)).unwrap();
    assert!(auth_reason(&world, 11).starts_with("cannot read"));
}

#[test]
fn expired_but_refreshable_has_its_own_reason_and_setting() {
    let world = World::new();
    write_creds(&home_creds(&world), &expiring(TOKEN, REFRESH, -3_600_000));
    let reason = auth_reason(&world, 11);
    assert!(reason.starts_with("expired, refreshable"), "{reason}");
    let verdict = preflight_with(&world, &[("ORCH_AUTH_ALLOW_REFRESHABLE", "true")], 0);
    let auth = check(&verdict, "auth");
    assert_eq!(auth["status"], "pass");
    assert!(auth["reason"]
        .as_str()
        .unwrap()
        .contains("allowed by auth_allow_refreshable"));
    assert_eq!(auth["detail"]["refresh_token"], true);
    // Without a refresh token, allowing refreshable tokens changes nothing.
    write_creds(&home_creds(&world), &expiring(TOKEN, "", -3_600_000));
    world
        .orch(&["preflight"])
        .env("ORCH_AUTH_ALLOW_REFRESHABLE", "true")
        .status(11);
}

#[test]
fn an_env_variable_grants_auth_and_says_which() {
    let mut world = World::new();
    world.set("ANTHROPIC_API_KEY", "sk-ant-api03-secret");
    let out = world.orch(&["preflight", "--json"]).ok();
    assert!(!out.stdout.contains("sk-ant-api03-secret"));
    let auth = check(&out.json(), "auth").clone();
    assert_eq!(auth["status"], "pass");
    assert_eq!(auth["detail"]["env_var"], "ANTHROPIC_API_KEY");
    assert!(auth["reason"]
        .as_str()
        .unwrap()
        .contains("ANTHROPIC_API_KEY"));

    // Empty does not count.
    world.set("ANTHROPIC_API_KEY", "");
    world.orch(&["preflight"]).status(11);

    // From the agent profile's env table.
    world.unset("ANTHROPIC_API_KEY");
    world.config("[agents.claude.env]\nCLAUDE_CODE_OAUTH_TOKEN = \"sk-ant-oat01-fromenv\"\n");
    let out = world.orch(&["preflight", "--json", "--explain"]).ok();
    assert!(!out.stdout.contains("fromenv"));
    let auth = check(&out.json(), "auth").clone();
    assert_eq!(auth["detail"]["env_var"], "CLAUDE_CODE_OAUTH_TOKEN");
    assert_eq!(auth["detail"]["env_from"], "[agents.claude] env");
}

/// Auth fails naming `path` (nothing there yet); once a login is written there it passes.
/// Returns how the passing verdict says the file was chosen.
fn fails_then_passes_at(world: &World, path: &Path) -> String {
    let reason = auth_reason(world, 11);
    assert!(reason.contains(&path.display().to_string()), "{reason}");
    write_creds(path, &expiring(TOKEN, "", 3_600_000));
    let verdict = preflight(world, 0);
    assert_eq!(
        check(&verdict, "auth")["detail"]["path"],
        path.display().to_string()
    );
    path_from(&verdict)
}

#[test]
fn agent_home_is_used_and_never_falls_back_to_orchs_home() {
    let mut world = World::new();
    // orch's own HOME is logged in; the configured agent home is what counts.
    world.login(3_600_000);
    world.set("ORCH_AGENT_HOME", world.path("agent"));
    let agent_creds = world.path("agent/.claude/.credentials.json");
    assert!(fails_then_passes_at(&world, &agent_creds).contains("ORCH_AGENT_HOME"));

    // The profile's home, when ORCH_AGENT_HOME is not set.
    world.unset("ORCH_AGENT_HOME");
    let other = world.path("other");
    world.config(&format!(
        "[agents.claude]\nhome = \"{}\"\n",
        other.display()
    ));
    let from = fails_then_passes_at(&world, &other.join(".claude/.credentials.json"));
    assert!(from.contains("home in [agents.claude]"), "{from}");
}

#[test]
fn claude_config_dir_chooses_the_file() {
    let mut world = World::new();
    world.login(3_600_000);
    let dir = world.path("cfg");
    world.set("CLAUDE_CONFIG_DIR", &dir);
    let from = fails_then_passes_at(&world, &dir.join(".credentials.json"));
    assert!(from.contains("orch's environment"), "{from}");

    // Set by the agent profile's env instead of orch's environment.
    world.unset("CLAUDE_CONFIG_DIR");
    world.logout();
    world.config(&format!(
        "[agents.claude.env]\nCLAUDE_CONFIG_DIR = \"{}\"\n",
        dir.display()
    ));
    assert!(path_from(&preflight(&world, 0)).contains("[agents.claude] env"));
}

#[test]
fn an_explicit_credentials_path_overrides_everything() {
    let mut world = World::new();
    world.login(3_600_000);
    world.set("CLAUDE_CONFIG_DIR", world.path("home/.claude"));
    world.set("ORCH_AGENT_HOME", world.path("home"));
    let path = world.path("elsewhere/creds.json");
    world.set("ORCH_CLAUDE_CREDENTIALS_PATH", &path);
    assert_eq!(
        fails_then_passes_at(&world, &path),
        "ORCH_CLAUDE_CREDENTIALS_PATH"
    );
}

#[test]
fn a_group_readable_file_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    world.login(3_600_000);
    std::fs::set_permissions(home_creds(&world), std::fs::Permissions::from_mode(0o640)).unwrap();
    let verdict = preflight(&world, 0);
    let mode = check(&verdict, "credentials_mode");
    assert_eq!(mode["status"], "warn");
    assert_eq!(mode["detail"]["mode"], "0640");
    assert!(mode["detail"]["fix"]
        .as_str()
        .unwrap()
        .starts_with("chmod 600"));
    let out = world.orch(&["preflight"]).ok();
    assert!(out
        .stdout
        .contains("warning: the credentials file is readable by group"));
}

#[test]
fn auth_check_can_be_turned_off() {
    let world = World::new();
    world.orch(&["preflight"]).status(11);
    // The cached failure made with the check on is not served once it is off.
    let out = world
        .orch(&["preflight", "--json"])
        .env("ORCH_PREFLIGHT_CHECK_AUTH", "false")
        .ok();
    let verdict = out.json();
    assert_eq!(verdict["cached"], false);
    assert_eq!(check(&verdict, "auth")["status"], "skip");
    assert_eq!(check(&verdict, "version")["status"], "pass");
}

#[test]
fn version_failures_exit_10_with_their_reason() {
    let mut world = World::new();
    world.login(3_600_000);
    let reason = |world: &World, env: &[(&str, &str)]| {
        let mut cmd = world.orch(&["preflight", "--json", "--no-cache"]);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let verdict = cmd.status(10).json();
        check(&verdict, "version")["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason(&world, &[("FAKE_CLAUDE_VERSION_EXIT", "3")]).contains("exited with status 3"));
    assert!(
        reason(&world, &[("FAKE_CLAUDE_VERSION", "Claude Code")]).contains("printed no version")
    );
    assert!(reason(&world, &[("FAKE_CLAUDE_VERSION", " ")]).contains("printed nothing"));

    let started = Instant::now();
    let hung = reason(
        &world,
        &[
            ("FAKE_CLAUDE_VERSION_SLEEP", "30"),
            ("ORCH_VERSION_TIMEOUT_SECONDS", "1"),
        ],
    );
    assert!(hung.contains("did not answer within 1 s"), "{hung}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let missing = world.path("no/claude");
    world.set("ORCH_CLAUDE_BIN", &missing);
    assert!(reason(&world, &[]).contains("does not exist"));
    let plain = world.path("claude-not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    world.set("ORCH_CLAUDE_BIN", &plain);
    assert!(reason(&world, &[]).contains("is not an executable file"));
    world.set("ORCH_CLAUDE_BIN", "no-such-claude-anywhere");
    assert!(reason(&world, &[]).contains("not found on the agent's PATH"));

    // A name is looked up on PATH; the evidence is the path found.
    let dir = fake_claude().parent().unwrap().to_path_buf();
    world.set("ORCH_CLAUDE_BIN", "fake-claude");
    let out = world
        .orch(&["preflight", "--json", "--no-cache"])
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .ok();
    assert_eq!(
        check(&out.json(), "version")["detail"]["bin"],
        fake_claude().display().to_string()
    );
}

#[test]
fn min_version_and_the_profiles_bin() {
    let mut world = World::new();
    world.login(3_600_000);
    world.unset("ORCH_CLAUDE_BIN");
    world.config(&format!(
        "[agents.claude]\nbin = \"{}\"\nmin_version = \"3.0.0\"\n",
        fake_claude().display()
    ));
    let verdict = preflight(&world, 10);
    let version = check(&verdict, "version");
    assert_eq!(
        version["reason"],
        "version 2.1.197 is older than min_version 3.0.0"
    );
    assert_eq!(version["detail"]["bin_from"], "bin in [agents.claude]");
    world.config(&format!(
        "[agents.claude]\nbin = \"{}\"\nmin_version = \"2.1.20\"\n",
        fake_claude().display()
    ));
    preflight(&world, 0);
    world.config("[agents.claude]\nmin_version = \"latest\"\n");
    let out = world.orch(&["preflight"]).status(78);
    assert!(out.stderr.contains("min_version"), "{}", out.stderr);
    world.orch(&["preflight", "--agent", "nobody"]).status(2);
}

#[test]
fn a_cached_verdict_is_served_without_spawning_the_agent() {
    let world = World::new();
    world.login(3_600_000);
    assert_eq!(preflight(&world, 0)["cached"], false);
    let second = preflight(&world, 0);
    assert_eq!(second["cached"], true);
    assert_eq!(second["checks"], preflight(&world, 0)["checks"]);
    assert_eq!(version_calls(&world), 1, "{:?}", world.calls());
    // A failure is cached too.
    world.logout();
    preflight(&world, 11);
    assert_eq!(preflight(&world, 11)["cached"], true);
    assert_eq!(version_calls(&world), 2);
    // --no-cache evaluates afresh, and stores what it found.
    let fresh = world
        .orch(&["preflight", "--json", "--no-cache"])
        .status(11)
        .json();
    assert_eq!(fresh["cached"], false);
    assert_eq!(version_calls(&world), 3);
    preflight(&world, 11);
    assert_eq!(version_calls(&world), 3);
}

#[test]
fn a_verdict_cached_by_a_clock_a_year_ahead_is_not_served() {
    let world = World::new();
    world.login(3_600_000);
    preflight(&world, 0);
    // Made by a worker whose clock ran a year ahead: its TTL would hold it for a year.
    let year: i64 = 365 * 86_400_000;
    world
        .db()
        .execute(
            "UPDATE preflight_cache SET created_at = created_at + ?1, expires_at = expires_at + ?1",
            [year],
        )
        .unwrap();
    assert_eq!(preflight(&world, 0)["cached"], false);
    assert_eq!(version_calls(&world), 2);
    // The fresh verdict replaced it, and is served.
    assert_eq!(preflight(&world, 0)["cached"], true);
}

#[test]
fn the_cache_expires_after_its_ttl() {
    let mut world = World::new();
    world.login(3_600_000);
    world.set("ORCH_PREFLIGHT_CACHE_TTL", "1");
    preflight(&world, 0);
    assert_eq!(preflight(&world, 0)["cached"], true);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(preflight(&world, 0)["cached"], false);
    assert_eq!(version_calls(&world), 2);
    world.set("ORCH_PREFLIGHT_CACHE_TTL", "0");
    preflight(&world, 0);
    preflight(&world, 0);
    assert_eq!(version_calls(&world), 4);
}

#[test]
fn a_cached_pass_never_outlives_the_token() {
    let mut world = World::new();
    world.set("ORCH_AUTH_EXPIRY_SKEW_SECONDS", "0");
    write_creds(&home_creds(&world), &expiring(TOKEN, "", 1500));
    preflight(&world, 0);
    std::thread::sleep(Duration::from_millis(1600));
    let verdict = preflight(&world, 11);
    assert_eq!(verdict["cached"], false);
}

#[test]
fn a_changed_credentials_file_drops_the_cached_verdict() {
    let world = World::new();
    world.login(3_600_000);
    preflight(&world, 0);
    world.logout();
    let verdict = preflight(&world, 11);
    assert_eq!(verdict["cached"], false);
    world.login(3_600_000);
    assert_eq!(preflight(&world, 0)["cached"], false);
    assert_eq!(version_calls(&world), 3);
    // The same size, only a new modification time: still a change.
    let file = std::fs::File::options()
        .write(true)
        .open(home_creds(&world))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(preflight(&world, 0)["cached"], false);
    assert_eq!(preflight(&world, 0)["cached"], true);
}

#[test]
fn reset_cache_drops_verdicts_all_or_per_agent() {
    let world = World::new();
    world.login(3_600_000);
    world.config("[agents.other]\n");
    preflight(&world, 0);
    world.orch(&["preflight", "--agent", "other"]).ok();
    assert_eq!(version_calls(&world), 2);

    let out = world
        .orch(&["reset-cache", "--agent", "other", "--json"])
        .ok()
        .json();
    assert_eq!(out["verdicts_dropped"], 1);
    assert_eq!(out["agent"], "other");
    assert_eq!(preflight(&world, 0)["cached"], true);
    world.orch(&["preflight", "--agent", "other"]).ok();
    assert_eq!(version_calls(&world), 3);

    let out = world.orch(&["reset-cache"]).ok();
    assert_eq!(
        out.stdout.trim(),
        "every agent: dropped 2 cached verdicts, released 0 auth gates"
    );
    assert_eq!(preflight(&world, 0)["cached"], false);
    assert_eq!(version_calls(&world), 4);
    world.orch(&["reset-cache", "--agent", "nobody"]).status(2);
}

#[test]
fn explain_shows_evidence_fixes_and_the_cache() {
    let world = World::new();
    write_creds(&home_creds(&world), &expiring(TOKEN, "", -3 * 3_600_000));
    let out = world.orch(&["preflight", "--explain"]).status(11);
    let text = out.stdout;
    assert!(
        text.starts_with("preflight for agent claude: fail (exit 11)"),
        "{text}"
    );
    assert!(text.contains("  pass  version"), "{text}");
    assert!(text.contains(&format!(
        "binary {} (named by ORCH_CLAUDE_BIN)",
        fake_claude().display()
    )));
    assert!(
        text.contains("  fail  auth     the access token expired 3 h ago"),
        "{text}"
    );
    assert!(text.contains("chosen by the agent's home"), "{text}");
    assert!(text.contains("(3 h ago)"), "{text}");
    assert!(
        text.contains("fix: log in as the agent's user: run claude, then /login"),
        "{text}"
    );
    assert!(text.contains("evaluated now"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour off a terminal");
    assert!(!text.contains(TOKEN));
    let again = world.orch(&["preflight", "--explain"]).status(11).stdout;
    assert!(
        again.contains("from the cache: evaluated 0 s ago"),
        "{again}"
    );
    let coloured = world
        .orch(&["preflight", "--explain", "--color", "always"])
        .status(11)
        .stdout;
    assert!(coloured.contains('\u{1b}'));
}

#[test]
fn tokens_never_reach_the_database() {
    let world = World::new();
    world.login(3_600_000);
    preflight(&world, 0);
    write_creds(
        &home_creds(&world),
        &format!(r#"{{"claudeAiOauth":{{"accessToken":"{TOKEN}"#),
    );
    preflight(&world, 11);
    let dump: String = world.sql(
        "SELECT group_concat(checks_json || inputs, '') FROM preflight_cache",
        [],
    );
    assert!(!dump.contains("sk-ant"), "{dump}");
}

/// What finalize does on an auth failure, written directly: the gate holds the credentials
/// file's fingerprint as it is now.
fn hold_gate(world: &World, run_id: i64) {
    use std::os::unix::fs::MetadataExt;
    let path = home_creds(world);
    let meta = std::fs::metadata(&path).unwrap();
    let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    let creds = orch::store::CredsFingerprint {
        path: path.clone(),
        size: meta.size() as i64,
        mtime_ns,
    };
    world.hold_gate(
        "claude",
        run_id,
        "Not logged in · Please run /login",
        Some(creds),
    );
}

fn gates(world: &World) -> i64 {
    world.sql("SELECT count(*) FROM auth_gate", [])
}

/// A logged-in world whose gate run `run_id` has held since.
fn gated_world(run_id: i64) -> World {
    let world = World::new();
    world.login(3_600_000);
    preflight(&world, 0);
    hold_gate(&world, run_id);
    world
}

#[test]
fn the_auth_gate_holds_until_the_credentials_change() {
    let world = gated_world(7);
    let calls = version_calls(&world);
    let verdict = world
        .orch(&["preflight", "--json", "--no-cache"])
        .status(11)
        .json();
    let auth = check(&verdict, "auth");
    assert_eq!(auth["reason"], "auth failure seen in run 7");
    assert_eq!(auth["detail"]["run_id"], 7);
    assert_eq!(version_calls(&world), calls, "a held gate spawns nothing");
    let text = world.orch(&["preflight", "--explain"]).status(11).stdout;
    assert!(text.contains("run 7 said: Not logged in"), "{text}");
    assert!(text.contains("orch reset-cache"), "{text}");

    // A new login rewrites the file: the gate opens by itself.
    world.login(7_200_000);
    preflight(&world, 0);
    assert_eq!(gates(&world), 0);
}

#[test]
fn reset_cache_releases_the_auth_gate() {
    let world = gated_world(3);
    world.orch(&["reset-cache", "--agent", "claude"]).ok();
    preflight(&world, 0);

    hold_gate(&world, 4);
    world.config("[agents.other]\n");
    let out = world
        .orch(&["reset-cache", "--agent", "other", "--json"])
        .ok()
        .json();
    assert_eq!(out["gates_released"], 0);
    preflight(&world, 11);
    let out = world.orch(&["reset-cache", "--json"]).ok().json();
    assert_eq!(out["gates_released"], 1);
    preflight(&world, 0);
}

fn job(world: &World, job_id: i64) -> (String, i64, i64, i64) {
    world
        .db()
        .query_row(
            "SELECT state, attempt, updated_at,
                    (SELECT count(*) FROM job_history WHERE job_id = jobs.id)
             FROM jobs WHERE id = ?1",
            [job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap()
}

#[test]
fn claim_is_gated_and_leaves_the_job_untouched() {
    let mut world = World::new();
    let job_id = world.enqueue("ORCH-1");
    let before = job(&world, job_id);

    let out = world.orch(&["claim", "--worker", "w1"]).status(11);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("preflight failed for agent claude: no credentials file at"),
        "{}",
        out.stderr
    );
    assert_eq!(job(&world, job_id), before);

    world.login(3_600_000);
    hold_gate(&world, 12);
    let out = world.orch(&["claim", "--worker", "w1"]).status(11);
    assert!(
        out.stderr.contains("auth failure seen in run 12"),
        "{}",
        out.stderr
    );
    assert_eq!(job(&world, job_id), before);
    world.orch(&["reset-cache"]).ok();

    world.set("ORCH_CLAUDE_BIN", world.path("missing-claude"));
    let out = world.orch(&["claim", "--worker", "w1"]).status(10);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert_eq!(job(&world, job_id), before);

    world.set("ORCH_CLAUDE_BIN", fake_claude());
    let out = world
        .orch(&["claim", "--worker", "w1", "--agent", "claude"])
        .ok();
    assert_eq!(out.stdout.trim(), job_id.to_string());
    let (state, attempt, _, _) = job(&world, job_id);
    assert_eq!((state.as_str(), attempt), ("running", 1));
    world
        .orch(&["claim", "--worker", "w1", "--agent", "nobody"])
        .status(2);
}
