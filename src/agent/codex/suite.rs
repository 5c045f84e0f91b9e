//! Codex CLI's fixtures for the agent contract (`agent::contract`). The logs are real Codex
//! 0.171.0 output, stdout and stderr in arrival order, except the `hand-*` files, written from
//! the event formats for what could not be captured offline: see
//! `tests/fixtures/agents/codex/README.md`.

use crate::agent::contract::{cut, log, with_home, Login, Suite, NO_HOME};
use crate::domain::verdict::{Class, Cut};

const FILE: &str = ".codex/auth.json";

pub static SUITE: Suite = Suite {
    stand_in: "tests/agent/fake-codex",
    version_var: "FAKE_CODEX_VERSION",
    versions: &[
        ("codex-cli 0.171.0", Some("0.171.0")),
        ("codex-cli 0.172.0-alpha.3", Some("0.172.0-alpha.3")),
        ("codex-cli", None),
    ],
    credentials: &[
        with_home(
            "ChatGPT login, the access token's JWT valid",
            &[],
            &[(
                FILE,
                r#"{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{"id_token":"eyJhbGciOiJSUzI1NiJ9.e30.SECRET","access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4Mjc0Nzk4MTgsImh0dHBzOi8vYXBpLm9wZW5haS5jb20vYXV0aCI6eyJjaGF0Z3B0X3BsYW5fdHlwZSI6InBybyJ9fQ.SECRET","refresh_token":"rt-SECRET","account_id":"acct"},"last_refresh":"2026-07-24T00:00:00Z"}"#,
            )],
            Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        ),
        with_home(
            "ChatGPT login expired, refreshable (not allowed)",
            &[],
            &[(
                FILE,
                r#"{"auth_mode":"chatgpt","tokens":{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.SECRET","refresh_token":"rt-SECRET"},"last_refresh":"2023-11-01T00:00:00Z"}"#,
            )],
            Login::Fails,
        ),
        with_home(
            "ChatGPT login without exp: eight days after last_refresh",
            &[],
            &[(
                FILE,
                r#"{"auth_mode":"chatgpt","tokens":{"access_token":"opaque-SECRET","refresh_token":"rt-SECRET"},"last_refresh":"2026-07-24T00:00:00Z"}"#,
            )],
            Login::Passes {
                expires_at: Some(1_785_542_400_000),
            },
        ),
        with_home(
            "an API key in auth.json",
            &[],
            &[(
                FILE,
                r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-SECRET","tokens":null,"last_refresh":null}"#,
            )],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "not JSON",
            &[],
            &[(FILE, "{auth_mode: chatgpt SECRET")],
            Login::Fails,
        ),
        with_home("no file", &[], &[], Login::Fails),
        with_home(
            "CODEX_HOME",
            &[("CODEX_HOME", "{home}/elsewhere")],
            &[(
                "elsewhere/auth.json",
                r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-SECRET"}"#,
            )],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "CODEX_API_KEY",
            &[("CODEX_API_KEY", "sk-SECRET")],
            &[],
            Login::Env("CODEX_API_KEY"),
        ),
        with_home(
            "only OPENAI_API_KEY, which codex exec ignores",
            &[("OPENAI_API_KEY", "sk-SECRET")],
            &[],
            Login::Nowhere,
        ),
        NO_HOME,
    ],
    logs: &[
        log("mock-ok.log", Some(0), Class::Ok),
        log("mock-tool-exec-bypass.log", Some(0), Class::Ok),
        // An unknown tool name is an error on stderr; the turn goes on and completes.
        log("mock-tool-unknown-name-bypass.log", Some(0), Class::Ok),
        log("mock-resume-2-by-id.log", Some(0), Class::Ok),
        log("mock-ok.log", Some(2), Class::ExitMismatch),
        // The reset as Codex says it, "try again at 12:50 PM." / "at Dec 2nd, 2026 10:34 AM.".
        log("mock-usage-limit.log", Some(1), Class::UsageLimit),
        log("mock-usage-limit-far.log", Some(1), Class::UsageLimit),
        log("mock-401.log", Some(1), Class::Auth),
        log("mock-quota.log", Some(1), Class::RateLimit),
        log("mock-429-plain.log", Some(1), Class::RateLimit),
        log("mock-500.log", Some(1), Class::AgentError),
        log(
            "hand-exit0-after-turn-failed.log",
            Some(0),
            Class::AgentError,
        ),
        log(
            "hand-declined-command.log",
            Some(0),
            Class::PermissionDenied,
        ),
        log("loggedout-nogit.log", Some(1), Class::InvocationError),
        log("argv-unknown-option.log", Some(2), Class::InvocationError),
        log("argv-sandbox-bogus.log", Some(2), Class::InvocationError),
        log("argv-c-approval-bogus.log", Some(1), Class::InvocationError),
        log(
            "argv-c-approval-untrusted.log",
            Some(1),
            Class::InvocationError,
        ),
        log("argv-no-prompt.log", Some(1), Class::InvocationError),
        // A thread Codex does not have: the run starts afresh (resume_failed), not a refusal.
        log("argv-resume-random-uuid.log", Some(1), Class::AgentError),
        log(
            "offline-codex-api-key-disable-unbounded.log",
            Some(1),
            Class::AgentError,
        ),
        log("offline-chatgpt-long.log", Some(1), Class::AgentError),
        // Logged out, offline: reconnecting for ever until orch's timeouts end it.
        cut(
            "offline-loggedout-long.log",
            None,
            Cut::Timeout,
            Class::Timeout,
        ),
        cut(
            "offline-loggedout-long.log",
            None,
            Cut::Stall,
            Class::Stalled,
        ),
        log("offline-loggedout-long.log", Some(0), Class::NoResult),
        cut(
            "offline-chatgpt-stale.log",
            None,
            Cut::Timeout,
            Class::Timeout,
        ),
    ],
};
