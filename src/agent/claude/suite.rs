//! Claude Code's fixtures for the agent contract (`agent::contract`). The logs are real Claude
//! Code output (2.1.197, and 2.1.332 where it differs), stdout and stderr in arrival order, from
//! the captures described in `tests/fixtures/agents/claude/README.md`.

use crate::agent::contract::{cut, log, with_home, Credentials, Login, Suite, NO_HOME};
use crate::domain::verdict::{Class, Cut};

const FILE: &str = ".claude/.credentials.json";

pub static SUITE: Suite = Suite {
    stand_in: "tests/agent/fake-claude",
    version_var: "FAKE_CLAUDE_VERSION",
    versions: &[
        ("2.1.197 (Claude Code)", Some("2.1.197")),
        ("2.1.332 (Claude Code)", Some("2.1.332")),
        ("Claude Code", None),
    ],
    credentials: &[
        with_home(
            "claude.ai login",
            &[],
            &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1827479818000,"scopes":["user:inference"],"subscriptionType":"max"}}"#,
            )],
            Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        ),
        with_home(
            "login without an expiry",
            &[],
            &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET"}}"#,
            )],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "expired, refreshable (not allowed)",
            &[],
            &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1700000000000}}"#,
            )],
            Login::Fails,
        ),
        with_home("not JSON", &[], &[(FILE, "not json")], Login::Fails),
        with_home(
            "no login in the file",
            &[],
            &[(FILE, r#"{"mcpOAuth":{"token":"SECRET"}}"#)],
            Login::Fails,
        ),
        with_home("no file", &[], &[], Login::Fails),
        with_home(
            "CLAUDE_CONFIG_DIR",
            &[("CLAUDE_CONFIG_DIR", "{home}/config")],
            &[(
                "config/.credentials.json",
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","expiresAt":1827479818000}}"#,
            )],
            Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        ),
        with_home(
            "an API key",
            &[("ANTHROPIC_API_KEY", "sk-ant-api03-SECRET")],
            &[],
            Login::Env("ANTHROPIC_API_KEY"),
        ),
        Credentials {
            name: "an OAuth token",
            home: false,
            env: &[("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-SECRET")],
            files: &[],
            expect: Login::Env("CLAUDE_CODE_OAUTH_TOKEN"),
        },
        NO_HOME,
    ],
    logs: &[
        log("mock-apikey-ok.log", Some(0), Class::Ok),
        log("mock-oauth-ok-warning.log", Some(0), Class::Ok),
        log("mock-apikey-ok-json.log", Some(0), Class::Ok),
        log("mock-apikey-ok.log", Some(2), Class::ExitMismatch),
        log("loggedout-streamjson.log", Some(1), Class::Auth),
        log("loggedout-json.log", Some(1), Class::Auth),
        log("loggedout-text.log", Some(1), Class::Auth),
        log("2.1.332-loggedout-streamjson.log", Some(1), Class::Auth),
        log("mock-oauth-401.log", Some(1), Class::Auth),
        log("mock-apikey-401-full.log", Some(1), Class::Auth),
        // OAuth: a rate_limit_event rejected the run and said when the limit resets.
        log("mock-oauth-limit.log", Some(1), Class::UsageLimit),
        log("2.1.332-mock-oauth-limit.log", Some(1), Class::UsageLimit),
        log("mock-apikey-limit-full.log", Some(1), Class::RateLimit),
        log("mock-apikey-529.log", Some(1), Class::RateLimit),
        // `--disallowedTools Bash`: the tool is missing, not denied; the turns run out.
        log(
            "mock-tool-bash-disallowed-maxturns2.log",
            Some(1),
            Class::MaxTurns,
        ),
        // The default permission mode denied a Read outside the working directory, a Write and a
        // Bash call until the turn limit.
        log(
            "mock-tool-read-maxturns2.log",
            Some(1),
            Class::PermissionDenied,
        ),
        log(
            "mock-tool-write-default-maxturns2.log",
            Some(1),
            Class::PermissionDenied,
        ),
        log(
            "mock-tool-bash-default-maxturns3.log",
            Some(1),
            Class::PermissionDenied,
        ),
        log("mock-expensive-budget.log", Some(1), Class::MaxBudget),
        log("mock-apikey-500.log", Some(1), Class::AgentError),
        // A 403 ("Your account does not have access to Claude") after ten auth retries: an
        // error result today, not `auth`.
        log("mock-apikey-403-full.log", Some(1), Class::AgentError),
        log("argv-resume-random-uuid.log", Some(1), Class::AgentError),
        // Claude Code refusing its command line: one line on stderr, exit 1.
        log("argv-unknown-option.log", Some(1), Class::InvocationError),
        log(
            "2.1.332-argv-allowedTools-then-prompt.log",
            Some(1),
            Class::InvocationError,
        ),
        log(
            "argv-streamjson-no-verbose.log",
            Some(1),
            Class::InvocationError,
        ),
        log(
            "2.1.332-argv-streamjson-no-verbose.log",
            Some(1),
            Class::InvocationError,
        ),
        log("argv-perm-bypass-root.log", Some(1), Class::InvocationError),
        log(
            "2.1.332-argv-skip-perms-root.log",
            Some(1),
            Class::InvocationError,
        ),
        log(
            "argv-session-id-not-uuid.log",
            Some(1),
            Class::InvocationError,
        ),
        // `--resume` of a session it does not have is a miss (the run starts afresh), not a
        // refusal.
        log("argv-resume-not-uuid.log", Some(1), Class::AgentError),
        // Offline, 2.1.332 retries (`api_retry`) until orch's timeout.
        cut(
            "2.1.332-offline-oauth.log",
            Some(143),
            Cut::Timeout,
            Class::Timeout,
        ),
        cut("offline-oauth.log", Some(143), Cut::Timeout, Class::Timeout),
        cut("offline-oauth.log", Some(143), Cut::Stall, Class::Stalled),
    ],
};
