//! Gemini CLI's fixtures for the agent contract (`agent::contract`). The logs are real Gemini CLI
//! 0.61.0 output, stdout and stderr in arrival order: see `tests/fixtures/agents/gemini/README.md`.

use crate::agent::contract::{cut, log, with_home, Login, Suite, NO_HOME};
use crate::domain::verdict::{Class, Cut};

const SETTINGS: &str = ".gemini/settings.json";
const CREDS: &str = ".gemini/oauth_creds.json";
const GOOGLE: &str = r#"{"security":{"auth":{"selectedType":"oauth-personal"}}}"#;

pub static SUITE: Suite = Suite {
    stand_in: "tests/agent/fake-gemini",
    version_var: "FAKE_GEMINI_VERSION",
    versions: &[
        ("0.61.0", Some("0.61.0")),
        ("0.62.0-nightly.20261201", Some("0.62.0-nightly.20261201")),
        ("gemini", None),
    ],
    credentials: &[
        with_home(
            "Google login with a refresh token, the access token expired",
            &[],
            &[
                (SETTINGS, GOOGLE),
                (
                    CREDS,
                    r#"{"access_token":"ya29.SECRET","refresh_token":"1//SECRET","scope":"https://www.googleapis.com/auth/cloud-platform","token_type":"Bearer","id_token":"eyJ.SECRET","expiry_date":1700000000000}"#,
                ),
            ],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "an access token alone, valid",
            &[],
            &[
                (SETTINGS, GOOGLE),
                (
                    CREDS,
                    r#"{"access_token":"ya29.SECRET","expiry_date":1827479818000}"#,
                ),
            ],
            Login::Passes {
                expires_at: Some(1_827_479_818_000),
            },
        ),
        with_home(
            "an access token alone, expired",
            &[],
            &[
                (SETTINGS, GOOGLE),
                (
                    CREDS,
                    r#"{"access_token":"ya29.SECRET","expiry_date":1700000000000}"#,
                ),
            ],
            Login::Fails,
        ),
        with_home(
            "oauth_creds.json broken",
            &[],
            &[
                (SETTINGS, GOOGLE),
                (CREDS, "{\"access_token\":\"ya29.SECRET"),
            ],
            Login::Fails,
        ),
        with_home(
            "Google login selected, no oauth_creds.json",
            &[],
            &[(SETTINGS, GOOGLE)],
            Login::Fails,
        ),
        with_home(
            "GOOGLE_GENAI_USE_GCA selects the Google login",
            &[("GOOGLE_GENAI_USE_GCA", "true")],
            &[(CREDS, r#"{"refresh_token":"1//SECRET"}"#)],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "GEMINI_CLI_HOME",
            &[("GEMINI_CLI_HOME", "{home}/elsewhere")],
            &[
                ("elsewhere/.gemini/settings.json", GOOGLE),
                (
                    "elsewhere/.gemini/oauth_creds.json",
                    r#"{"refresh_token":"1//SECRET"}"#,
                ),
            ],
            Login::Passes { expires_at: None },
        ),
        with_home(
            "GEMINI_API_KEY",
            &[("GEMINI_API_KEY", "AIza-SECRET")],
            &[],
            Login::Env("GEMINI_API_KEY"),
        ),
        with_home(
            "gemini-api-key selected without the key",
            &[],
            &[(
                SETTINGS,
                r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
            )],
            Login::Nowhere,
        ),
        with_home(
            "no auth method (Gemini exits 41)",
            &[],
            &[(CREDS, r#"{"refresh_token":"1//SECRET"}"#)],
            Login::Nowhere,
        ),
        with_home(
            "Vertex AI, not checked offline",
            &[],
            &[(
                SETTINGS,
                r#"{"security":{"auth":{"selectedType":"vertex-ai"}}}"#,
            )],
            Login::Unchecked,
        ),
        NO_HOME,
    ],
    logs: &[
        log("mock-ok-streamjson.log", Some(0), Class::Ok),
        log("mock-tool-shell-yolo-streamjson.log", Some(0), Class::Ok),
        log("mock-resume-3-latest.log", Some(0), Class::Ok),
        log("mock-ok-streamjson.log", Some(1), Class::ExitMismatch),
        // The default approval mode offers no shell headless: the calls are refused.
        log(
            "mock-tool-shell-default-streamjson.log",
            Some(0),
            Class::PermissionDenied,
        ),
        // A daily quota: it resets at midnight Pacific time.
        log(
            "mock-429-quota-streamjson.log",
            Some(173),
            Class::UsageLimit,
        ),
        log("mock-429-rate-streamjson.log", Some(173), Class::RateLimit),
        log("mock-400-key-streamjson.log", Some(144), Class::Auth),
        log("mock-500-streamjson.log", Some(244), Class::AgentError),
        log(
            "mock-tool-loop-maxturns-streamjson.log",
            Some(53),
            Class::MaxTurns,
        ),
        log("noauth-skiptrust-streamjson.log", Some(41), Class::Auth),
        // Offline, a good Google login fails like a bad one: auth, unconfirmed.
        log("offline-oauth-streamjson.log", Some(41), Class::Auth),
        log(
            "apikey-untrusted-streamjson.log",
            Some(55),
            Class::InvocationError,
        ),
        log(
            "config-invalid-settings-streamjson.log",
            Some(52),
            Class::InvocationError,
        ),
        log("argv-unknown-option.log", Some(1), Class::InvocationError),
        log("argv-approval-bogus.log", Some(1), Class::InvocationError),
        log("argv-prompt-dashfoo.log", Some(1), Class::InvocationError),
        log("argv-doubledash.log", Some(42), Class::InvocationError),
        log(
            "mock-resume-6-session-id-reuse.log",
            Some(42),
            Class::InvocationError,
        ),
        // A session Gemini does not have: the run starts afresh (resume_failed), not a refusal.
        log("argv-resume-uuid-none.log", Some(42), Class::AgentError),
        log(
            "offline-apikey-streamjson-long.log",
            Some(1),
            Class::AgentError,
        ),
        // Killed with SIGTERM after 180 s, Gemini exited 0.
        log("offline-apikey-streamjson.log", Some(0), Class::NoResult),
        cut(
            "offline-apikey-streamjson.log",
            Some(0),
            Cut::Timeout,
            Class::Timeout,
        ),
        cut(
            "offline-apikey-streamjson.log",
            Some(0),
            Cut::Stall,
            Class::Stalled,
        ),
    ],
};
