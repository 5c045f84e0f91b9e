//! Claude Code's fixtures for the agent contract (`agent::contract`). The logs are real Claude
//! Code output (2.1.197, and 2.1.332 where it differs), stdout and stderr in arrival order, from
//! the captures described in `tests/fixtures/agents/claude/README.md`.

use crate::agent::contract::{Credentials, Log, Login, Suite};
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
        Credentials {
            name: "claude.ai login",
            home: true,
            env: &[],
            files: &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1827479818000,"scopes":["user:inference"],"subscriptionType":"max"}}"#,
            )],
            expect: Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        },
        Credentials {
            name: "login without an expiry",
            home: true,
            env: &[],
            files: &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET"}}"#,
            )],
            expect: Login::Passes { expires_at: None },
        },
        Credentials {
            name: "expired, refreshable (not allowed)",
            home: true,
            env: &[],
            files: &[(
                FILE,
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1700000000000}}"#,
            )],
            expect: Login::Fails,
        },
        Credentials {
            name: "not JSON",
            home: true,
            env: &[],
            files: &[(FILE, "not json")],
            expect: Login::Fails,
        },
        Credentials {
            name: "no login in the file",
            home: true,
            env: &[],
            files: &[(FILE, r#"{"mcpOAuth":{"token":"SECRET"}}"#)],
            expect: Login::Fails,
        },
        Credentials {
            name: "no file",
            home: true,
            env: &[],
            files: &[],
            expect: Login::Fails,
        },
        Credentials {
            name: "CLAUDE_CONFIG_DIR",
            home: true,
            env: &[("CLAUDE_CONFIG_DIR", "{home}/config")],
            files: &[(
                "config/.credentials.json",
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","expiresAt":1827479818000}}"#,
            )],
            expect: Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        },
        Credentials {
            name: "an API key",
            home: true,
            env: &[("ANTHROPIC_API_KEY", "sk-ant-api03-SECRET")],
            files: &[],
            expect: Login::Env("ANTHROPIC_API_KEY"),
        },
        Credentials {
            name: "an OAuth token",
            home: false,
            env: &[("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-SECRET")],
            files: &[],
            expect: Login::Env("CLAUDE_CODE_OAUTH_TOKEN"),
        },
        Credentials {
            name: "no home",
            home: false,
            env: &[],
            files: &[],
            expect: Login::Nowhere,
        },
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
        log("argv-unknown-option.log", Some(1), Class::NoResult),
        log(
            "2.1.332-argv-allowedTools-then-prompt.log",
            Some(1),
            Class::NoResult,
        ),
        Log {
            file: "offline-oauth.log",
            exit_code: Some(143),
            cut: Some(Cut::Timeout),
            class: Class::Timeout,
        },
        Log {
            file: "offline-oauth.log",
            exit_code: Some(143),
            cut: Some(Cut::Stall),
            class: Class::Stalled,
        },
    ],
};

const fn log(file: &'static str, exit_code: Option<i32>, class: Class) -> Log {
    Log {
        file,
        exit_code,
        cut: None,
        class,
    }
}
