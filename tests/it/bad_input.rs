//! Bad input of every kind (flags, configuration, credentials, logs, database, environment, job
//! ids), tried on the real binary against a queue with a running and a queued job. Each case must
//! end with its exit status and a message that names the problem, on stderr behind `orch: error: `
//! (clap's `error: ` for usage errors clap catches; a verdict on stdout for preflight and
//! validate-log), never a panic or a backtrace, and leave the queue as it was.
//!
//! The cases render the README's bad-input table from what was observed: the block between
//! `<!-- bad-input -->` and `<!-- /bad-input -->` in README.md, or in README.badinput.md while
//! README.md has no such block. `UPDATE_DOCS=1 cargo test --test it bad_input` rewrites it.
use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::Duration;

use support::{faults, now_ms, splice, Out, World, ORCH};

/// Something a case's setup keeps alive until its command has run (a lock holder), then joins.
type Held = Option<JoinHandle<()>>;

/// Where the message must be, and what it must say.
enum Says {
    /// stderr starts with `orch: error: ` and holds each of these.
    Orch(&'static [&'static str]),
    /// stderr starts with clap's `error: ` and holds each of these.
    Clap(&'static [&'static str]),
    /// A verdict (preflight, validate-log): stdout holds each of these, stderr is empty.
    Verdict(&'static [&'static str]),
}

struct Case {
    group: &'static str,
    what: &'static str,
    /// orch's arguments; relative paths are in the world (the command's directory).
    args: Vec<&'static str>,
    /// On top of the world's environment: Some sets, None removes.
    env: Vec<(&'static str, Option<&'static str>)>,
    /// Break something before the command runs.
    setup: Box<dyn Fn(&World) -> Held>,
    /// Run as a user permission bits bind (`nobody` when the tests run as root).
    unprivileged: bool,
    exit: i32,
    says: Says,
    /// A secret the case hands orch; it must appear in no output.
    secret: Option<&'static str>,
}

fn try_(group: &'static str, what: &'static str, args: &[&'static str]) -> Case {
    Case {
        group,
        what,
        args: args.to_vec(),
        env: Vec::new(),
        setup: Box::new(|_| None),
        unprivileged: false,
        exit: 0,
        says: Says::Orch(&[]),
        secret: None,
    }
}

impl Case {
    fn env(mut self, key: &'static str, value: &'static str) -> Case {
        self.env.push((key, Some(value)));
        self
    }

    fn unset(mut self, key: &'static str) -> Case {
        self.env.push((key, None));
        self
    }

    fn setup(mut self, setup: impl Fn(&World) -> Held + 'static) -> Case {
        self.setup = Box::new(setup);
        self
    }

    /// The config file is `text`, `{workdir}` standing for the project's workdir.
    fn config(self, text: &'static str) -> Case {
        self.setup(move |world| {
            let workdir = world.path("work/web").display().to_string();
            world.raw_config(&text.replace("{workdir}", &workdir));
            None
        })
    }

    /// The agent's credentials file holds `body`, `{expired}` standing for two days ago.
    fn credentials(self, body: &'static str) -> Case {
        self.setup(move |world| {
            let expired = now_ms() - 2 * 86_400_000;
            let body = body.replace("{expired}", &expired.to_string());
            support::write_private(&credentials(world), body.as_bytes());
            None
        })
    }

    fn secret(mut self, secret: &'static str) -> Case {
        self.secret = Some(secret);
        self
    }

    fn unprivileged(mut self) -> Case {
        self.unprivileged = true;
        self
    }

    fn fails(mut self, exit: i32, says: Says) -> Case {
        self.exit = exit;
        self.says = says;
        self
    }
}

const ENQUEUE: &[&str] = &["enqueue", "--project", "web", "--task", "C"];
const CLAIM: &[&str] = &["claim", "--worker", "w2"];

fn cases() -> Vec<Case> {
    use Says::*;
    vec![
        // Flags.
        try_("flags", "unknown flag", &["--bogus", "status"])
            .fails(2, Clap(&["unexpected argument '--bogus'"])),
        try_("flags", "required flag missing", &["enqueue", "--project", "web"])
            .fails(2, Clap(&["required arguments", "--task"])),
        try_("flags", "not a number", &["enqueue", "--project", "web", "--task", "C", "--priority", "high"])
            .fails(2, Clap(&["invalid value 'high'", "--priority"])),
        try_("flags", "negative priority", &["enqueue", "--project", "web", "--task", "C", "--priority", "-5"])
            .fails(2, Orch(&["--priority -5", "0 to 1000"])),
        try_("flags", "empty worker name", &["claim", "--worker", ""])
            .fails(2, Clap(&["--worker", "a worker name is 1 to 64 letters"])),
        try_("flags", "worker name of 65 characters", &["claim", "--worker", LONG_WORKER])
            .fails(2, Clap(&["--worker", "a worker name is 1 to 64 letters"])),
        try_("flags", "worker name with a `/`", &["tick", "--worker", "a/b"])
            .fails(2, Clap(&["invalid value 'a/b'", "a worker name is"])),
        try_("flags", "issue number past the largest stored", &["enqueue", "--project", "web", "--task", "C", "--issue", "18446744073709551615"])
            .fails(2, Clap(&["--issue", "not in 1..=9223372036854775807"])),
        try_("flags", "issue number 0", &["enqueue", "--project", "web", "--task", "C", "--issue", "0"])
            .fails(2, Clap(&["--issue", "0 is not in 1..="])),
        try_("flags", "`tick --max-jobs 0`", &["tick", "--worker", "w2", "--max-jobs", "0"])
            .fails(2, Clap(&["--max-jobs", "0 is not in 1..="])),
        try_("flags", "task body from an endless file", &["enqueue", "--project", "web", "--task", "C", "--body-file", "/dev/zero"])
            .fails(2, Orch(&["--body-file /dev/zero", "larger than 1048576 bytes"])),
        try_("flags", "task body with a NUL byte", &["enqueue", "--project", "web", "--task", "C", "--body-file", "nul.md"])
            .setup(|world| {
                std::fs::write(world.path("nul.md"), b"fix the bug\0 now").unwrap();
                None
            })
            .fails(2, Orch(&["--body-file nul.md", "holds a NUL byte (at byte 11)"])),
        try_("flags", "task body over 64 KiB", &["enqueue", "--project", "web", "--task", "C", "--body-file", "huge.md"])
            .setup(|world| {
                std::fs::write(world.path("huge.md"), "x".repeat(64 * 1024 + 1)).unwrap();
                None
            })
            .fails(2, Orch(&["--body-file huge.md", "65537 bytes, more than the 65536"])),
        try_("flags", "`retry --stage` of a stage the pipeline lacks", &["retry", "1", "--stage", "nope"])
            .fails(2, Orch(&["--stage", "unknown stage \"nope\"", "the pipeline is"])),
        try_("flags", "`retry --raise-budget` of nothing (`-1`)", &["retry", "1", "--raise-budget", "-1"])
            .fails(2, Clap(&["--raise-budget", "above 0"])),
        try_("flags", "`retry --raise-budget` of a job not waiting for budget", &["retry", "1", "--raise-budget", "5"])
            .fails(2, Orch(&["not waiting for budget"])),
        try_("flags", "`--set` of an unknown key", &["--set", "leese_seconds=60", "status"])
            .fails(2, Orch(&["unknown setting \"leese_seconds\""])),
        try_("flags", "`--set` of a secret", &["--set", "forge_token=tok-SECRET-1", "status"])
            .secret("tok-SECRET-1")
            .fails(2, Orch(&["--set forge_token", "never from argv"])),
        try_("flags", "`--set` of a number out of range", &["--set", "git_timeout_seconds=18446744073709551615", "status"])
            .fails(78, Orch(&["--set git_timeout_seconds: expected a whole number from 1 to 3600"])),
        try_("flags", "`--set` without `=`", &["--set", "lease_seconds", "status"])
            .fails(2, Orch(&["expected KEY=VALUE"])),
        try_("flags", "`--set` of a bad value", &["--set", "lease_seconds=soon", "status"])
            .fails(78, Orch(&["--set lease_seconds", "whole number", "\"soon\""])),
        try_("flags", "bad `--color` value", &["--color", "purple", "status"])
            .fails(2, Clap(&["invalid value 'purple'", "--color"])),
        try_("flags", "flags that exclude each other", &["logs", "1", "--raw", "--json"])
            .fails(2, Orch(&["--raw", "--json"])),
        // Configuration.
        try_("config", "malformed TOML (`lease_seconds = = 3`)", ENQUEUE)
            .config("lease_seconds = = 3\n")
            .fails(78, Orch(&["config.toml line 1, column", "expected"])),
        try_("config", "config file not UTF-8", ENQUEUE)
            .setup(|world| {
                std::fs::write(world.path("config.toml"), b"lease_seconds = \xff\xfe\n").unwrap();
                None
            })
            .fails(78, Orch(&["cannot read config file", "UTF-8"])),
        try_("config", "unknown key (`leese_seconds = 3`)", ENQUEUE)
            .config("leese_seconds = 3\n")
            .fails(78, Orch(&["line 1: leese_seconds: unknown setting"])),
        try_("config", "unknown key in a project (`max_runing = 2`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\nmax_runing = 2\n")
            .fails(78, Orch(&["line 3: max_runing: unknown key", "max_running"])),
        try_("config", "wrong type (`max_running = \"two\"` on line 3)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\nmax_running = \"two\"\n")
            .fails(78, Orch(&["line 3: max_running", "whole number"])),
        try_("config", "project without workdir (`[projects.web]` with `priority = 1` only)", ENQUEUE)
            .config("[projects.web]\npriority = 1\n")
            .fails(78, Orch(&["line 1: web: workdir is required"])),
        try_("config", "bad forge kind (`kind = \"gitlab\"` in `[projects.web.forge]`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\n\n[projects.web.forge]\nkind = \"gitlab\"\nrepo = \"o/r\"\n")
            .fails(78, Orch(&["line 5: kind", "\"gitea\", \"forgejo\" or \"github\""])),
        try_("config", "unknown agent kind (`kind = \"aider\"` in `[agents.aider]`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\n\n[agents.aider]\nkind = \"aider\"\n")
            .fails(78, Orch(&["line 5: kind", "a kind of agent orch knows (claude, codex, gemini)", "\"aider\""])),
        try_("config", "a stage names an unknown agent (`agent = \"codx\"` in `[stages.reviewer]`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\n\n[stages.reviewer]\nagent = \"codx\"\n")
            .fails(78, Orch(&["line 5: agent", "unknown agent \"codx\"", "codex"])),
        try_("config", "duplicate stage (`stages = [\"dev\", \"review\", \"dev\"]`)", ENQUEUE)
            .config("[pipeline]\nstages = [\"dev\", \"review\", \"dev\"]\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 2: stages", "stage \"dev\" is listed twice"])),
        try_("config", "a secret in the file (`forge_token = \"…\"`)", ENQUEUE)
            .config("forge_token = \"tok-SECRET-2\"\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .secret("tok-SECRET-2")
            .fails(78, Orch(&["line 1: forge_token", "environment only"])),
        try_("config", "named config file missing", &["--config", "missing.toml", "enqueue", "--project", "web", "--task", "C"])
            .fails(78, Orch(&["cannot read config file missing.toml", "No such file"])),
        try_("config", "config file is a directory", &["--config", "work", "enqueue", "--project", "web", "--task", "C"])
            .fails(78, Orch(&["cannot read config file work", "it is a directory, not a regular file"])),
        try_("config", "config file is a FIFO nobody writes to", ENQUEUE)
            .setup(|world| {
                std::fs::remove_file(world.path("config.toml")).unwrap();
                support::mkfifo(&world.path("config.toml"));
                None
            })
            .fails(78, Orch(&["cannot read config file config.toml", "it is a FIFO, not a regular file"])),
        try_("config", "config file is a device (`/dev/zero`)", ENQUEUE)
            .env("ORCH_CONFIG", "/dev/zero")
            .fails(78, Orch(&["cannot read config file /dev/zero", "it is a character device"])),
        try_("config", "config file of 2 MiB", ENQUEUE)
            .setup(|world| {
                std::fs::write(world.path("config.toml"), big_comment()).unwrap();
                None
            })
            .fails(78, Orch(&["cannot read config file config.toml", "larger than 1048576 bytes"])),
        try_("config", "relative workdir (`workdir = \"work/web\"`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"work/web\"\n")
            .fails(78, Orch(&["line 2: workdir", "expected an absolute path (or ~/…), got \"work/web\""])),
        try_("config", "relative log_dir (`log_dir = \"logs\"`)", ENQUEUE)
            .config("log_dir = \"logs\"\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 1: log_dir", "expected an absolute path"])),
        try_("config", "number out of range (`lease_seconds = 0`)", ENQUEUE)
            .config("lease_seconds = 0\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 1: lease_seconds", "expected a whole number from 1 to 604800"])),
        try_("config", "stage timeout out of range (`timeout_seconds = 0` in `[stages.analyst]`)", ENQUEUE)
            .config("[stages.analyst]\ntimeout_seconds = 0\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 2: timeout_seconds", "from 1 to 604800"])),
        try_("config", "project priority out of range (`priority = 5000`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\npriority = 5000\n")
            .fails(78, Orch(&["line 3: priority", "from 0 to 1000"])),
        try_("config", "unknown permission mode (`permission_mode = \"acceptEdit\"`)", ENQUEUE)
            .config("[stages.developer]\npermission_mode = \"acceptEdit\"\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 2: permission_mode", "expected one of default, acceptEdits", "did you mean `acceptEdits`"])),
        try_("config", "a tool rule that reads as an option (`allowed_tools = [\"--x\"]`)", ENQUEUE)
            .config("[stages.developer]\nallowed_tools = [\"--dangerously-skip-permissions\"]\n\n[projects.web]\nworkdir = \"{workdir}\"\n")
            .fails(78, Orch(&["line 2: allowed_tools", "none empty or starting with '-'"])),
        try_("config", "a budget of zero (`max_cost_usd = 0`)", ENQUEUE)
            .config("[projects.web]\nworkdir = \"{workdir}\"\nmax_cost_usd = 0\n")
            .fails(78, Orch(&["line 3: max_cost_usd", "above 0"])),
        // Credentials: claim checks them first, preflight says why.
        try_("credentials", "broken JSON (cut off after the token)", CLAIM)
            .credentials(r#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-SECRET-3""#)
            .secret("SECRET-3")
            .fails(11, Orch(&["preflight failed for agent claude", "is not JSON"])),
        try_("credentials", "no `claudeAiOauth` object (`{\"mcpOAuth\": {}}`)", CLAIM)
            .credentials(r#"{"mcpOAuth": {}}"#)
            .fails(11, Orch(&["has no claudeAiOauth object"])),
        try_("credentials", "empty token (`\"accessToken\": \"\"`)", CLAIM)
            .credentials(r#"{"claudeAiOauth": {"accessToken": "", "expiresAt": 99999999999999}}"#)
            .fails(11, Orch(&["has no access token"])),
        try_("credentials", "token expired two days ago, no refresh token", &["preflight"])
            .credentials(r#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-SECRET-4", "expiresAt": {expired}}}"#)
            .secret("SECRET-4")
            .fails(11, Verdict(&["fail claude", "the access token expired 2 d ago"])),
        try_("credentials", "a directory where the credentials file should be", CLAIM)
            .setup(|world| {
                std::fs::remove_file(credentials(world)).unwrap();
                std::fs::create_dir(credentials(world)).unwrap();
                None
            })
            .fails(11, Orch(&["cannot read", ".credentials.json", "it is a directory, not a regular file"])),
        try_("credentials", "a FIFO nobody writes to where the credentials file should be", CLAIM)
            .setup(fifo_credentials)
            .fails(11, Orch(&["cannot read", ".credentials.json", "it is a FIFO, not a regular file"])),
        try_("credentials", "the same FIFO, at `tick`", &["tick", "--worker", "w2"])
            .setup(fifo_credentials)
            .fails(11, Verdict(&["stop: preflight failed for agent claude", "it is a FIFO"])),
        try_("credentials", "a device as the credentials file", CLAIM)
            .env("ORCH_CLAUDE_CREDENTIALS_PATH", "/dev/zero")
            .fails(11, Orch(&["cannot read /dev/zero", "it is a character device"])),
        try_("credentials", "credentials file of 2 MiB", CLAIM)
            .setup(|world| {
                support::write_private(&credentials(world), &big_comment());
                None
            })
            .fails(11, Orch(&["cannot read", "larger than 1048576 bytes"])),
        try_("credentials", "no credentials file", CLAIM)
            .setup(|world| {
                world.logout();
                None
            })
            .fails(11, Orch(&["no credentials file at"])),
        // Logs.
        try_("logs", "`validate-log` of a missing file", &["validate-log", "missing.log"])
            .fails(2, Orch(&["no such log: missing.log"])),
        try_("logs", "`validate-log` of a directory", &["validate-log", "work"])
            .fails(1, Orch(&["reading the log work", "Is a directory"])),
        try_("logs", "`validate-log` of binary garbage", &["validate-log", "garbage.log"])
            .setup(|world| {
                std::fs::write(world.path("garbage.log"), garbage(8192)).unwrap();
                None
            })
            .fails(20, Verdict(&["no_result", "binary data"])),
        try_("logs", "`validate-log` of an empty file", &["validate-log", "empty.log"])
            .setup(|world| {
                std::fs::write(world.path("empty.log"), b"").unwrap();
                None
            })
            .fails(20, Verdict(&["empty", "the log is empty"])),
        try_("logs", "`validate-log --exit-code` not a number", &["validate-log", "-", "--exit-code", "x"])
            .fails(2, Clap(&["invalid value 'x'", "--exit-code"])),
        // Database. tests/it/store.rs and tests/it/faults.rs check these further.
        try_("database", "not an SQLite file (text)", ENQUEUE)
            .setup(|world| {
                std::fs::write(world.path("state/orch.db"), b"not a database\n".repeat(300)).unwrap();
                None
            })
            .fails(1, Orch(&["is not an SQLite database"])),
        try_("database", "written by a newer orch (`user_version` 999)", ENQUEUE)
            .setup(|world| {
                world.db().execute_batch("PRAGMA user_version = 999").unwrap();
                None
            })
            .fails(78, Orch(&["schema version 999", "newer orch", "not modified"])),
        try_("database", "read-only file in a read-only directory", ENQUEUE)
            .setup(|world| {
                faults::make_db_read_only(world);
                None
            })
            .unprivileged()
            .fails(1, Orch(&["cannot open the database state/orch.db", "writable"])),
        try_("database", "read-only directory", ENQUEUE)
            .setup(|world| {
                faults::make_db_dir_read_only(world);
                None
            })
            .unprivileged()
            .fails(1, Orch(&["orch.db"])),
        try_("database", "busy: another process holds the write lock", ENQUEUE)
            .env("ORCH_BUSY_TIMEOUT_MS", "200")
            .setup(|world| Some(faults::hold_write_lock(world, Duration::from_millis(1500))))
            .fails(1, Orch(&["database is busy", "busy_timeout_ms (200 ms)", "nothing was written"])),
        try_("database", "`--db` is a directory", &["--db", "state", "status"])
            .fails(1, Orch(&["cannot open the database state"])),
        // Environment.
        try_("environment", "setting not a number", ENQUEUE)
            .env("ORCH_LEASE_SECONDS", "abc")
            .fails(78, Orch(&["ORCH_LEASE_SECONDS", "whole number", "\"abc\""])),
        try_("environment", "setting not a boolean", ENQUEUE)
            .env("ORCH_PREFLIGHT_CHECK_AUTH", "maybe")
            .fails(78, Orch(&["ORCH_PREFLIGHT_CHECK_AUTH", "true or false"])),
        try_("environment", "bad colour", &["status"])
            .env("ORCH_COLOR", "purple")
            .fails(78, Orch(&["color", "auto, always or never"])),
        try_("environment", "database in a place that cannot be made", ENQUEUE)
            .env("ORCH_DB", "/proc/x/orch.db")
            .fails(1, Orch(&["creating the database directory /proc/x"])),
        try_("environment", "no HOME, no ORCH_DB, no XDG_STATE_HOME", ENQUEUE)
            .unset("HOME")
            .unset("ORCH_DB")
            .fails(78, Orch(&["no database", "ORCH_DB"])),
        try_("environment", "ORCH_DB empty, no HOME", ENQUEUE)
            .unset("HOME")
            .env("ORCH_DB", "")
            .fails(78, Orch(&["no database", "ORCH_DB"])),
        try_("environment", "secret file missing", ENQUEUE)
            .env("ORCH_FORGE_TOKEN_FILE", "$PWD/missing-token")
            .fails(78, Orch(&["cannot read ORCH_FORGE_TOKEN_FILE", "missing-token", "No such file"])),
        try_("environment", "secret file is a FIFO nobody writes to", ENQUEUE)
            .env("ORCH_FORGE_TOKEN_FILE", "$PWD/token.fifo")
            .setup(|world| {
                support::mkfifo(&world.path("token.fifo"));
                None
            })
            .fails(78, Orch(&["cannot read ORCH_FORGE_TOKEN_FILE", "it is a FIFO, not a regular file"])),
        try_("environment", "secret file is a device", ENQUEUE)
            .env("ORCH_TELEGRAM_BOT_TOKEN_FILE", "/dev/zero")
            .fails(78, Orch(&["cannot read ORCH_TELEGRAM_BOT_TOKEN_FILE (/dev/zero)", "character device"])),
        try_("environment", "secret file relative", ENQUEUE)
            .env("ORCH_FORGE_TOKEN_FILE", "token")
            .fails(78, Orch(&["ORCH_FORGE_TOKEN_FILE", "expected an absolute path"])),
        try_("environment", "config file path relative", ENQUEUE)
            .env("ORCH_CONFIG", "config.toml")
            .fails(78, Orch(&["ORCH_CONFIG: expected an absolute path (or ~/…), got \"config.toml\""])),
        try_("environment", "database path relative", ENQUEUE)
            .env("ORCH_DB", "state/orch.db")
            .fails(78, Orch(&["ORCH_DB: expected an absolute path (or ~/…), got \"state/orch.db\""])),
        try_("environment", "run timeout of 2^64-1 s", &["run", "1", "--worker", "w1"])
            .env("ORCH_RUN_TIMEOUT_SECONDS", "18446744073709551615")
            .fails(78, Orch(&["ORCH_RUN_TIMEOUT_SECONDS: expected a whole number from 1 to 604800"])),
        try_("environment", "busy timeout of 2^64-1 ms", ENQUEUE)
            .env("ORCH_BUSY_TIMEOUT_MS", "18446744073709551615")
            .fails(78, Orch(&["ORCH_BUSY_TIMEOUT_MS: expected a whole number from 0 to 600000"])),
        try_("environment", "version timeout of 2^64-1 s", &["preflight"])
            .env("ORCH_VERSION_TIMEOUT_SECONDS", "18446744073709551615")
            .fails(78, Orch(&["ORCH_VERSION_TIMEOUT_SECONDS: expected a whole number from 1 to 600"])),
        try_("environment", "expiry skew of 2^64-1 s", &["preflight"])
            .env("ORCH_AUTH_EXPIRY_SKEW_SECONDS", "18446744073709551615")
            .fails(78, Orch(&["ORCH_AUTH_EXPIRY_SKEW_SECONDS: expected a whole number from 0 to 86400"])),
        try_("environment", "lease of 0 s", CLAIM)
            .env("ORCH_LEASE_SECONDS", "0")
            .fails(78, Orch(&["ORCH_LEASE_SECONDS: expected a whole number from 1 to 604800, got \"0\""])),
        try_("environment", "log cap of 0 bytes", CLAIM)
            .env("ORCH_LOG_MAX_BYTES", "0")
            .fails(78, Orch(&["ORCH_LOG_MAX_BYTES: expected a whole number from 65536"])),
        try_("environment", "agent binary missing", &["preflight"])
            .env("ORCH_CLAUDE_BIN", "/nonexistent/claude")
            .fails(10, Verdict(&["fail claude", "/nonexistent/claude does not exist"])),
        try_("environment", "agent binary relative", &["preflight"])
            .env("ORCH_CLAUDE_BIN", "./notes.txt")
            .fails(78, Orch(&["ORCH_CLAUDE_BIN: expected an absolute path"])),
        try_("environment", "agent binary not executable", &["preflight"])
            .env("ORCH_CLAUDE_BIN", "$PWD/notes.txt")
            .setup(|world| {
                agent_file(world, 0o644);
                None
            })
            .fails(10, Verdict(&["fail claude", "notes.txt is not an executable file"])),
        try_("environment", "agent binary not a program", &["preflight"])
            .env("ORCH_CLAUDE_BIN", "$PWD/notes.txt")
            .setup(|world| {
                agent_file(world, 0o755);
                None
            })
            .fails(10, Verdict(&["fail claude", "cannot start notes.txt", "Exec format error"])),
        try_("environment", "agent binary missing, at claim", CLAIM)
            .env("ORCH_CLAUDE_BIN", "/nonexistent/claude")
            .fails(10, Orch(&["preflight failed for agent claude", "does not exist"])),
        // Directories orch keeps its state in, and files it replaces.
        try_("directories", "database directory others may write in (mode 0777)", ENQUEUE)
            .setup(|world| {
                chmod(&world.path("state"), 0o777);
                None
            })
            .fails(78, Orch(&["the database directory state may be written by others (mode 777)", "chmod go-w"])),
        try_("directories", "log directory others may write in (mode 0777)", &["tick", "--worker", "w2"])
            .setup(|world| {
                std::fs::create_dir(world.path("state/logs")).unwrap();
                chmod(&world.path("state/logs"), 0o777);
                None
            })
            .fails(78, Orch(&["the log directory", "state/logs may be written by others", "point orch at a directory of your own"])),
        try_("directories", "log directory inside a directory others may write in", &["run", "1", "--worker", "w1"])
            .env("ORCH_LOG_DIR", "$PWD/shared/logs")
            .setup(|world| {
                std::fs::create_dir_all(world.path("shared/logs")).unwrap();
                chmod(&world.path("shared"), 0o777);
                None
            })
            .fails(78, Orch(&["shared/logs lies in", "shared, which may be written by others"])),
        try_("directories", "`metrics --out` a FIFO", &["metrics", "--out", "out.fifo"])
            .setup(|world| {
                support::mkfifo(&world.path("out.fifo"));
                None
            })
            .fails(2, Orch(&["out.fifo is a FIFO", "only a regular file"])),
        try_("directories", "`metrics --out` a symbolic link", &["metrics", "--out", "link.prom"])
            .setup(|world| {
                std::fs::write(world.path("real.prom"), "").unwrap();
                std::os::unix::fs::symlink(world.path("real.prom"), world.path("link.prom")).unwrap();
                None
            })
            .fails(2, Orch(&["link.prom is a symbolic link", "real.prom"])),
        // Job ids.
        try_("job ids", "not a number", &["cancel", "one"])
            .fails(2, Clap(&["invalid value 'one'"])),
        try_("job ids", "`show` of neither a job nor a task", &["show", "one"])
            .fails(2, Orch(&["no job or task \"one\""])),
        try_("job ids", "0", &["cancel", "0"])
            .fails(2, Clap(&["invalid value '0'", "0 is not in 1..="])),
        try_("job ids", "`logs --run` 0", &["logs", "1", "--run", "0"])
            .fails(2, Clap(&["--run", "0 is not in 1..="])),
        try_("job ids", "`show` of a missing job", &["show", "99"])
            .fails(2, Orch(&["no job 99"])),
        try_("job ids", "`cancel` of a missing job", &["cancel", "99"])
            .fails(2, Orch(&["no job 99"])),
        try_("job ids", "`retry` of a missing job", &["retry", "99"])
            .fails(2, Orch(&["no job 99"])),
        try_("job ids", "`logs` of a missing job", &["logs", "99"])
            .fails(2, Orch(&["no job 99"])),
        try_("job ids", "`run` of a missing job", &["run", "99", "--worker", "w1"])
            .fails(2, Orch(&["no job 99"])),
        try_("job ids", "`run` by a worker without the lease", &["run", "1", "--worker", "intruder"])
            .fails(1, Orch(&["leased to w1, not intruder"])),
        try_("job ids", "`run` of a job nobody claimed", &["run", "2", "--worker", "w1"])
            .fails(1, Orch(&["job 2 is queued, not running"])),
        try_("job ids", "`retry` of a running job", &["retry", "1"])
            .fails(1, Orch(&["job 1 is running", "only failed or cancelled"])),
    ]
}

/// 65 characters: one more than a worker name may have.
const LONG_WORKER: &str = "w-123456789-123456789-123456789-123456789-123456789-123456789-123";

/// 2 MiB of TOML comment (also not JSON): more than any config or credentials file orch reads.
fn big_comment() -> Vec<u8> {
    let mut bytes = vec![b'#'; 2 << 20];
    bytes.push(b'\n');
    bytes
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A text file (no `#!` line) where the agent's binary should be.
fn agent_file(world: &World, mode: u32) {
    let path = world.path("notes.txt");
    std::fs::write(&path, "not a program\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn credentials(world: &World) -> PathBuf {
    world.path("home/.claude/.credentials.json")
}

/// A FIFO nobody writes to where the credentials file should be.
fn fifo_credentials(world: &World) -> Held {
    std::fs::remove_file(credentials(world)).unwrap();
    support::mkfifo(&credentials(world));
    None
}

/// The same bytes every run (the verdict's reason counts their lines): a linear congruential
/// sequence.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// A queue to lose: job 1 running (leased to w1), job 2 queued and claimable, the preflight
/// cache empty so every case's check is fresh.
fn seeded() -> World {
    let world = World::new();
    world.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        world.path("work/web").display()
    ));
    world.login(3_600_000);
    world.enqueue("A");
    world.enqueue("B");
    world.orch(&["claim", "--worker", "w1"]).ok();
    world.orch(&["reset-cache"]).ok();
    world
}

/// What must survive a bad input: every job's state, attempt and lease, and the row counts of
/// tasks, history and runs; the file's bytes when it is not a database to read.
#[derive(Debug, PartialEq)]
enum Kept {
    Queue(String),
    Bytes(Vec<u8>),
}

fn kept(world: &World) -> Kept {
    let path = world.path("state/orch.db");
    let read = || -> rusqlite::Result<String> {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt = conn.prepare(
            "SELECT id, state, attempt, lease_owner, lease_expires_at, run_after FROM jobs ORDER BY id",
        )?;
        let jobs: Vec<String> = stmt
            .query_map([], |row| {
                Ok(format!(
                    "{}:{}:{}:{:?}:{:?}:{}",
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, i64>(5)?
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let counts: String = conn.query_row(
            "SELECT (SELECT count(*) FROM tasks) || '/' || (SELECT count(*) FROM job_history) || '/' || (SELECT count(*) FROM agent_runs)",
            [],
            |row| row.get(0),
        )?;
        Ok(format!("{} {counts}", jobs.join(" ")))
    };
    match read() {
        Ok(queue) => Kept::Queue(queue),
        Err(_) => Kept::Bytes(std::fs::read(&path).unwrap()),
    }
}

/// What one case did.
struct Seen {
    out: Out,
    kept: Kept,
    /// Killed after `LIMIT`.
    timed_out: bool,
    /// What changed that bad input must leave alone.
    lost: Option<String>,
}

fn run(case: &Case) -> Seen {
    let world = seeded();
    let db = world.path("state/orch.db");
    // Read before the setup breaks anything: reading after could leave SQLite's side files
    // owned by root beside a database the case then opens as another user.
    let before = kept(&world);
    let held = (case.setup)(&world);
    let broken = std::fs::read(&db).ok();
    let mut command = if case.unprivileged {
        world.orch_unprivileged(&case.args)
    } else {
        let mut command = world.command(ORCH);
        command.args(&case.args);
        command
    };
    let root = world.root().display().to_string();
    for (key, value) in &case.env {
        match value {
            Some(value) => command.env(key, value.replace("$PWD", &root)),
            None => command.env_remove(key),
        };
    }
    // A hang (a FIFO opened for reading, say) fails the case instead of the whole suite.
    let (output, timed_out) = support::output_within(command.stdin(Stdio::null()), LIMIT);
    if let Some(holder) = held {
        holder.join().unwrap();
    }
    if case.unprivileged {
        // Writable again, so the world can be removed.
        std::fs::set_permissions(world.path("state"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let mut out = Out::from(output);
    // Paths in the world read as the command gave them: relative to its directory.
    for text in [&mut out.stdout, &mut out.stderr] {
        *text = text.replace(&format!("{root}/"), "").replace(&root, ".");
    }
    let after = kept(&world);
    let lost = match &after {
        Kept::Queue(_) => (before != after).then(|| format!("the queue changed: {after:?}")),
        Kept::Bytes(bytes) => {
            (broken.as_ref() != Some(bytes)).then(|| "the database file changed".to_string())
        }
    };
    Seen {
        out,
        kept: after,
        timed_out,
        lost,
    }
}

/// Long enough for any case on a loaded machine; a hang ends here.
const LIMIT: Duration = Duration::from_secs(20);

/// Every failure in one case's output, empty when it behaved.
fn faults_of(case: &Case, seen: &Seen) -> Vec<String> {
    let out = &seen.out;
    let mut faults = Vec::new();
    if seen.timed_out {
        faults.push(format!("still running after {LIMIT:?}: killed"));
    }
    faults.extend(seen.lost.clone());
    if out.code != case.exit {
        faults.push(format!("exit {} instead of {}", out.code, case.exit));
    }
    let (prefix, stream, needles) = match &case.says {
        Says::Orch(needles) => ("orch: error: ", &out.stderr, needles),
        Says::Clap(needles) => ("error: ", &out.stderr, needles),
        Says::Verdict(needles) => ("", &out.stdout, needles),
    };
    if !stream.starts_with(prefix) {
        faults.push(format!("does not start with {prefix:?}"));
    }
    for needle in needles.iter() {
        if !stream.contains(needle) {
            faults.push(format!("does not say {needle:?}"));
        }
    }
    if matches!(case.says, Says::Verdict(_)) && !out.stderr.is_empty() {
        faults.push("a verdict with something on stderr".to_string());
    }
    for text in [&out.stdout, &out.stderr] {
        for tell in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            if text.contains(tell) {
                faults.push(format!("{tell:?} in the output"));
            }
        }
        if let Some(secret) = case.secret.filter(|s| text.contains(s)) {
            faults.push(format!("the secret {secret:?} in the output"));
        }
    }
    if out.stderr.lines().count() > 24 {
        faults.push("more than a screen on stderr".to_string());
    }
    faults
}

/// `text` as a Markdown code span inside a table cell.
fn code(text: &str) -> String {
    let fence = if text.contains('`') { "``" } else { "`" };
    format!("{fence}{}{fence}", text.replace('|', "\\|"))
}

/// The command line a case ran, as a person would type it.
fn invocation(case: &Case) -> String {
    let quote = |word: &str| {
        if !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=./:$".contains(&b))
        {
            word.to_string()
        } else {
            format!("'{word}'")
        }
    };
    let mut words = Vec::new();
    let removed: Vec<&str> = case
        .env
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if !removed.is_empty() {
        words.push("env".to_string());
        words.extend(removed.iter().map(|key| format!("-u {key}")));
    }
    for (key, value) in &case.env {
        if let Some(value) = value {
            words.push(format!("{key}={}", quote(value)));
        }
    }
    words.push("orch".to_string());
    words.extend(case.args.iter().map(|arg| quote(arg)));
    words.join(" ")
}

/// The first line of the message, cut to fit a table.
fn abridged(case: &Case, out: &Out) -> String {
    let (label, stream) = match case.says {
        Says::Verdict(_) => ("stdout: ", &out.stdout),
        _ => ("", &out.stderr),
    };
    // A verdict among other lines (a tick's steps): from the line that gives it.
    let from = match case.says {
        Says::Verdict(needles) => needles
            .first()
            .and_then(|needle| stream.lines().position(|line| line.contains(needle)))
            .unwrap_or(0),
        _ => 0,
    };
    let mut lines = stream.lines().skip(from);
    let mut line = lines.next().unwrap_or_default().to_string();
    // clap lists what is missing on the lines after "…were not provided:".
    if line.ends_with(':') {
        if let Some(next) = lines.next() {
            line = format!("{line} {}", next.trim());
        }
    }
    const MAX: usize = 110;
    let line = match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    };
    format!("{label}{}", code(&line))
}

fn lost(kept: &Kept) -> &'static str {
    match kept {
        Kept::Queue(_) => "yes: the queue as before",
        Kept::Bytes(_) => "yes: the file byte for byte as before",
    }
}

fn table(rows: &[(&Case, Seen)]) -> String {
    let mut out = String::from(
        "| Bad input | what orch says (stderr, abridged) | exit | nothing lost |\n|---|---|---|---|\n",
    );
    for (case, seen) in rows {
        let by = if case.unprivileged {
            " (as a user who may not write it)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {}: {} — {}{by} | {} | {} | {} |\n",
            case.group,
            case.what,
            code(&invocation(case)),
            abridged(case, &seen.out),
            seen.out.code,
            lost(&seen.kept)
        ));
    }
    out
}

/// README.md once the lead has merged the block into it, README.badinput.md until then.
fn table_home() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    match std::fs::read_to_string(&readme) {
        Ok(text) if text.contains("<!-- bad-input") => readme,
        _ => root.join("README.badinput.md"),
    }
}

#[test]
fn bad_input_fails_clearly_and_loses_nothing() {
    let cases = cases();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let seen = run(case);
        let faults = faults_of(case, &seen);
        if !faults.is_empty() {
            failures.push(format!(
                "{}: {} ({}):\n  {}\n  stdout: {}\n  stderr: {}",
                case.group,
                case.what,
                invocation(case),
                faults.join("\n  "),
                seen.out.stdout.trim_end(),
                seen.out.stderr.trim_end()
            ));
        }
        rows.push((case, seen));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let path = table_home();
    let text = std::fs::read_to_string(&path).unwrap();
    let fresh = splice(&text, "bad-input", &table(&rows));
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == text,
        "{}'s bad-input table is stale; run `UPDATE_DOCS=1 cargo test --test it bad_input`",
        path.display()
    );
}
