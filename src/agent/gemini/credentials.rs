//! Gemini CLI's login, read without sending anything anywhere. How Gemini authenticates is
//! chosen by `security.auth.selectedType` in `~/.gemini/settings.json` (`oauth-personal`,
//! `gemini-api-key`, `vertex-ai`, …), else by the environment (`GEMINI_API_KEY`,
//! `GOOGLE_GENAI_USE_GCA`, `GOOGLE_GENAI_USE_VERTEXAI`); `GEMINI_CLI_HOME` moves the whole
//! `.gemini` directory. A Google login is `~/.gemini/oauth_creds.json`: `access_token`,
//! `refresh_token`, `expiry_date` (epoch ms). The access token lasts an hour and Gemini refreshes
//! it at every start, so what makes a login is the refresh token, not the access token's expiry.
//!
//! Gemini validates a Google login online at every start: offline, a good login fails exactly
//! like a bad one (exit 41, "Manual authorization is required"). This check is the offline half.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent::credentials::{
    self, epoch_ms, has_text, AuthPolicy, AuthSource, CredentialsCheck, Login, Words,
};
use crate::agent::{AgentEnv, Located};
use crate::fsx;

pub const FILE_NAME: &str = "oauth_creds.json";
const SETTINGS: &str = "settings.json";

/// Variables of the agent's environment that authenticate it with an API key.
pub const ENV_GRANTS: &[&str] = &["GEMINI_API_KEY", "GOOGLE_API_KEY"];

/// `oauth_creds.json`, which a Google login (re)writes, in the `.gemini` directory:
/// `$GEMINI_CLI_HOME/.gemini` when the agent's environment sets it, else `<agent home>/.gemini`.
pub fn locate(agent: &AgentEnv) -> Option<Located<PathBuf>> {
    credentials::in_dir_or_home(agent, "GEMINI_CLI_HOME", ".gemini", ".gemini", FILE_NAME)
}

/// How Gemini will authenticate, as it decides: an API key in the environment; else the auth
/// type the settings select (or the environment implies); a Google login is checked in
/// `oauth_creds.json`, the others cannot be checked offline.
pub fn auth_source(agent: &AgentEnv) -> AuthSource {
    if let Some(grant) = credentials::env_grant(agent, ENV_GRANTS) {
        return grant;
    }
    let Some(creds) = locate(agent) else {
        return AuthSource::Nowhere {
            reason: "cannot tell where Gemini's settings are: no agent home (HOME or \
                     ORCH_AGENT_HOME) and no GEMINI_CLI_HOME"
                .to_string(),
            fix: "set ORCH_AGENT_HOME, or GEMINI_API_KEY in [agents.NAME] env".to_string(),
        };
    };
    let settings = creds.value.with_file_name(SETTINGS);
    let flag = |name: &str| agent.var(name).is_some_and(|v| v.trim() == "true");
    let selected = selected_type(&settings).or_else(|| {
        if flag("GOOGLE_GENAI_USE_GCA") {
            Some("oauth-personal".to_string())
        } else if flag("GOOGLE_GENAI_USE_VERTEXAI") {
            Some("vertex-ai".to_string())
        } else {
            None
        }
    });
    match selected.as_deref() {
        Some("oauth-personal" | "login-with-google") => AuthSource::File(creds),
        Some("gemini-api-key") => AuthSource::Nowhere {
            reason: format!(
                "{} selects gemini-api-key, but GEMINI_API_KEY is not in the agent's environment",
                settings.display()
            ),
            fix: "set GEMINI_API_KEY in [agents.NAME] env (or in orch's environment)".to_string(),
        },
        Some(other) => AuthSource::Unchecked {
            reason: format!(
                "Gemini authenticates with {other} ({}), which orch cannot check offline",
                settings.display()
            ),
        },
        None => AuthSource::Nowhere {
            reason: format!(
                "no auth method: {} selects none (security.auth.selectedType) and GEMINI_API_KEY \
                 is not set; Gemini exits 41",
                settings.display()
            ),
            fix: "log in as the agent's user: run gemini and choose Login with Google; or set \
                  GEMINI_API_KEY in [agents.NAME] env"
                .to_string(),
        },
    }
}

/// `security.auth.selectedType` of the settings file (or the older top-level
/// `selectedAuthType`); None when it is missing, unreadable or says nothing.
fn selected_type(settings: &Path) -> Option<String> {
    let (bytes, _) = fsx::read_capped(settings, 1 << 20).ok()?;
    let document: Value = serde_json::from_slice(&bytes).ok()?;
    document
        .pointer("/security/auth/selectedType")
        .or_else(|| document.get("selectedAuthType"))
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned)
}

pub const WORDS: Words = Words {
    login: "run gemini and choose Login with Google (or set GEMINI_API_KEY in [agents.NAME] env)",
    elsewhere: "set GEMINI_CLI_HOME in [agents.NAME] env (or ORCH_AGENT_HOME)",
    refresh: "run gemini once as the agent's user to log in again",
};

pub fn check(path: &Path, now_ms: i64, policy: AuthPolicy) -> CredentialsCheck {
    credentials::check_file(path, now_ms, policy, &WORDS, classify)
}

/// Judge `oauth_creds.json`'s document.
pub fn classify(document: &Value, now_ms: i64, skew_ms: i64) -> Login {
    if has_text(document, "refresh_token") {
        return Login::Lasting(
            "a Google login with a refresh token; Gemini renews the access token at every start"
                .to_string(),
        );
    }
    if !has_text(document, "access_token") {
        return Login::Incomplete(
            "holds no Google login (no refresh_token, no access_token)".into(),
        );
    }
    match document.get("expiry_date").and_then(epoch_ms) {
        Some(expires_at) => Login::by_expiry(expires_at, false, now_ms, skew_ms),
        None => Login::BadExpiry("expiry_date"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::agent::credentials::testing::{judged, NOW};

    fn classify(bytes: &[u8]) -> Login {
        judged(super::classify, bytes)
    }

    #[test]
    fn a_refresh_token_makes_the_login_whatever_the_access_tokens_expiry() {
        let expired = br#"{"access_token":"ya29.x","refresh_token":"1//x","scope":"s","token_type":"Bearer","id_token":"x","expiry_date":1700000000000}"#;
        assert!(matches!(classify(expired), Login::Lasting(_)));
        let access_only = br#"{"access_token":"ya29.x","expiry_date":1700000000000}"#;
        assert_eq!(
            classify(access_only),
            Login::Expired {
                expires_at: 1_700_000_000_000,
                refreshable: false
            }
        );
        let valid = format!(
            r#"{{"access_token":"ya29.x","expiry_date":{}}}"#,
            NOW + 3_600_000
        );
        assert!(classify(valid.as_bytes()).passes(false));
        assert!(matches!(classify(b"{}"), Login::Incomplete(_)));
        assert!(matches!(classify(b"nope"), Login::NotJson(_)));
    }

    #[test]
    fn the_settings_say_which_auth_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS);
        assert_eq!(selected_type(&path), None);
        std::fs::write(
            &path,
            r#"{"security":{"auth":{"selectedType":"oauth-personal"}}}"#,
        )
        .unwrap();
        assert_eq!(selected_type(&path).as_deref(), Some("oauth-personal"));
        std::fs::write(&path, r#"{"selectedAuthType":"gemini-api-key"}"#).unwrap();
        assert_eq!(selected_type(&path).as_deref(), Some("gemini-api-key"));
        std::fs::write(&path, "{broken").unwrap();
        assert_eq!(selected_type(&path), None);
    }
}
