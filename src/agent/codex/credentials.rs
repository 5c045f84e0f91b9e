//! Codex CLI's login, read without sending anything anywhere: `$CODEX_HOME/auth.json` (default
//! `<home>/.codex/auth.json`), or `CODEX_API_KEY` in the agent's environment. The file is
//! `{"auth_mode":"chatgpt"|"apikey",…,"OPENAI_API_KEY":…,"tokens":{"id_token","access_token",
//! "refresh_token","account_id"},"last_refresh":"<RFC 3339>"}`. It records no expiry: Codex takes
//! a ChatGPT login as stale when the access token's JWT `exp` has passed, or, for a token
//! without one, when `last_refresh` is over 8 days old; the JWT's payload is decoded here, never
//! its signature checked, the token never copied out.
//!
//! `codex login status` is not asked: it says "Logged in" for an expired login and "Not logged
//! in" when only `CODEX_API_KEY` is set (which `codex exec` does use). `OPENAI_API_KEY` in the
//! environment is ignored by `codex exec` 0.171.0, so it does not count.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent::credentials::{
    self, has_text, AuthPolicy, AuthSource, CredentialsCheck, Login, Words,
};
use crate::agent::{AgentEnv, Located};

pub const FILE_NAME: &str = "auth.json";

/// The variable of the agent's environment `codex exec` authenticates with.
pub const ENV_GRANTS: &[&str] = &["CODEX_API_KEY"];

/// A ChatGPT login without a JWT expiry is refreshed after this long (Codex's
/// `TOKEN_REFRESH_INTERVAL`, 8 days).
pub const REFRESH_INTERVAL_MS: i64 = 8 * 24 * 3_600_000;

/// `$CODEX_HOME/auth.json` when the agent's environment sets CODEX_HOME, else
/// `<agent home>/.codex/auth.json`. None when there is no home to look in.
pub fn locate(agent: &AgentEnv) -> Option<Located<PathBuf>> {
    credentials::in_dir_or_home(agent, "CODEX_HOME", "", ".codex", FILE_NAME)
}

/// `CODEX_API_KEY`, else the login file. A missing file with only `OPENAI_API_KEY` set is said
/// plainly: that variable looks like a login and is not one for `codex exec`.
pub fn auth_source(agent: &AgentEnv) -> AuthSource {
    if let Some(grant) = credentials::env_grant(agent, ENV_GRANTS) {
        return grant;
    }
    match locate(agent) {
        Some(path)
            if !path.value.exists()
                && agent
                    .var("OPENAI_API_KEY")
                    .is_some_and(|v| !v.trim().is_empty()) =>
        {
            AuthSource::Nowhere {
                reason: format!(
                    "OPENAI_API_KEY is set ({}) but `codex exec` ignores it, and there is no \
                     login file at {}",
                    agent.var_origin("OPENAI_API_KEY"),
                    path.value.display()
                ),
                fix: "set CODEX_API_KEY in [agents.NAME] env instead, or log in as the agent's \
                      user: codex login"
                    .to_string(),
            }
        }
        Some(path) => AuthSource::File(path),
        None => AuthSource::Nowhere {
            reason: "cannot tell where Codex's auth.json is: no agent home (HOME or \
                     ORCH_AGENT_HOME) and no CODEX_HOME"
                .to_string(),
            fix: "set ORCH_AGENT_HOME, or CODEX_HOME in [agents.NAME] env, or CODEX_API_KEY"
                .to_string(),
        },
    }
}

pub const WORDS: Words = Words {
    login: "codex login (or set CODEX_API_KEY in [agents.NAME] env)",
    elsewhere: "set CODEX_HOME in [agents.NAME] env (or ORCH_AGENT_HOME)",
    refresh: "run codex once as the agent's user so it refreshes the login (or codex login)",
};

pub fn check(path: &Path, now_ms: i64, policy: AuthPolicy) -> CredentialsCheck {
    credentials::check_file(path, now_ms, policy, &WORDS, classify)
}

/// Judge the file's document.
pub fn classify(document: &Value, now_ms: i64, skew_ms: i64) -> Login {
    if !document.is_object() {
        return Login::Incomplete("is not a Codex login (not a JSON object)".to_string());
    }
    if has_text(document, "OPENAI_API_KEY") {
        return Login::Lasting(
            "an API key in auth.json; Codex checks it when it sends a request".to_string(),
        );
    }
    let tokens = document.get("tokens").filter(|t| t.is_object());
    let Some(tokens) = tokens.filter(|t| has_text(t, "access_token")) else {
        let mode = document.get("auth_mode").and_then(Value::as_str);
        return Login::Incomplete(match mode {
            Some(mode) => format!("has auth_mode {mode:?} but no API key and no access token"),
            None => "holds no login: no OPENAI_API_KEY and no tokens.access_token".to_string(),
        });
    };
    let refreshable = has_text(tokens, "refresh_token");
    let access = tokens.get("access_token").and_then(Value::as_str);
    if let Some(exp) = access.and_then(jwt_expiry) {
        return Login::by_expiry(exp, refreshable, now_ms, skew_ms);
    }
    let last_refresh = document
        .get("last_refresh")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    match last_refresh {
        Some(at) => Login::by_expiry(
            at.timestamp_millis().saturating_add(REFRESH_INTERVAL_MS),
            refreshable,
            now_ms,
            skew_ms,
        ),
        None => Login::BadExpiry("tokens.access_token's exp (and last_refresh)"),
    }
}

/// The `exp` claim of a JWT (epoch seconds) in milliseconds, read from its payload without
/// checking its signature: what Codex itself reads to call a login stale.
pub fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url(payload)?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp
        .as_i64()
        .or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?;
    Some(seconds.saturating_mul(1000))
}

/// Base64url without padding (a JWT's parts); None for anything else.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut held) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::agent::credentials::testing::judged;

    fn classify(bytes: &[u8]) -> Login {
        judged(super::classify, bytes)
    }

    /// A JWT whose payload is `claims` (the signature is not a real one: nothing checks it).
    fn jwt(claims: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in claims.as_bytes().chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        format!("eyJhbGciOiJSUzI1NiJ9.{out}.SECRET")
    }

    fn chatgpt(access: &str, refresh: &str, last_refresh: &str) -> Vec<u8> {
        format!(
            r#"{{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{{"id_token":"x","access_token":"{access}","refresh_token":"{refresh}","account_id":"a"}},"last_refresh":"{last_refresh}"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_jwt_expiry_is_read_from_its_payload() {
        let token = jwt(r#"{"exp":1827479818,"sub":"user"}"#);
        assert_eq!(jwt_expiry(&token), Some(1_827_479_818_000));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"user"}"#)), None);
        assert_eq!(base64url("aGk").as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn a_chatgpt_login_expires_with_its_token_else_eight_days_after_its_refresh() {
        let valid = chatgpt(&jwt(r#"{"exp":1827479818}"#), "r", "2026-07-20T00:00:00Z");
        assert_eq!(
            classify(&valid),
            Login::Valid {
                expires_at: 1_827_479_818_000
            }
        );
        let expired = chatgpt(&jwt(r#"{"exp":1700000000}"#), "r", "2026-07-20T00:00:00Z");
        assert_eq!(classify(&expired).refreshable(), Some(true));
        let no_exp = chatgpt("opaque", "", "2026-07-20T00:00:00Z");
        let login = classify(&no_exp);
        let refreshed = chrono::DateTime::parse_from_rfc3339("2026-07-20T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(login.expires_at(), Some(refreshed + REFRESH_INTERVAL_MS));
        let stale = chatgpt("opaque", "r", "2026-01-01T00:00:00Z");
        assert!(!classify(&stale).passes(false));
        assert!(classify(&stale).passes(true));
        assert!(matches!(
            classify(&chatgpt("opaque", "r", "yesterday")),
            Login::BadExpiry(_)
        ));
    }

    #[test]
    fn an_api_key_file_passes_and_broken_files_fail() {
        let apikey = br#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-SECRET","tokens":null}"#;
        assert!(matches!(classify(apikey), Login::Lasting(_)));
        assert!(matches!(classify(b"{broken"), Login::NotJson(_)));
        for bytes in [
            &br#"{"auth_mode":"apikey","OPENAI_API_KEY":""}"#[..],
            br#"{"tokens":{"access_token":""}}"#,
            b"[1]",
        ] {
            let login = classify(bytes);
            assert!(matches!(login, Login::Incomplete(_)), "{login:?}");
            assert!(!login.passes(true));
        }
        let text = format!("{:?}", classify(apikey));
        assert!(!text.contains("SECRET"), "{text}");
    }
}
