//! Claude Code's credentials file, read without sending anything anywhere: where it is, whether it
//! holds a usable login, and a fingerprint (size, modification time) that tells when it changed.
//! The token itself is never copied out of the parsed document, printed or stored.
//!
//! The shape Claude Code writes (other keys may appear and are ignored):
//! `{"claudeAiOauth":{"accessToken":"sk-ant-oat01-…","refreshToken":"sk-ant-ort01-…",
//!   "expiresAt":1785956423181,"scopes":[…],"subscriptionType":"max"}}`

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent::credentials::{
    self, epoch_ms, has_text, AuthPolicy, AuthSource, CredentialsCheck, Login, Words,
};
use crate::agent::{AgentEnv, Located};
use crate::config;

pub const FILE_NAME: &str = ".credentials.json";

/// Variables of the agent's environment that authenticate it without the file.
pub const ENV_GRANTS: &[&str] = &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"];

/// The credentials file the agent reads: `claude_credentials_path` when set; else
/// `$CLAUDE_CONFIG_DIR/.credentials.json` when the agent's environment sets CLAUDE_CONFIG_DIR;
/// else `<agent home>/.claude/.credentials.json`. None when there is no home to look in.
pub fn locate(agent: &AgentEnv) -> Option<Located<PathBuf>> {
    let config = agent.config();
    if let Some(setting) = config
        .get(config::CLAUDE_CREDENTIALS_PATH)
        .filter(|s| !s.value.is_empty())
    {
        return Some(Located {
            value: PathBuf::from(&setting.value),
            origin: config::CLAUDE_CREDENTIALS_PATH.origin(setting.source),
        });
    }
    credentials::in_dir_or_home(agent, "CLAUDE_CONFIG_DIR", "", ".claude", FILE_NAME)
}

/// A variable of `ENV_GRANTS`, else the credentials file.
pub fn auth_source(agent: &AgentEnv) -> AuthSource {
    if let Some(grant) = credentials::env_grant(agent, ENV_GRANTS) {
        return grant;
    }
    match locate(agent) {
        Some(path) => AuthSource::File(path),
        None => AuthSource::Nowhere {
            reason: "cannot tell where the credentials file is: no agent home (HOME or \
                     ORCH_AGENT_HOME) and no CLAUDE_CONFIG_DIR"
                .to_string(),
            fix: "set ORCH_AGENT_HOME, or ORCH_CLAUDE_CREDENTIALS_PATH".to_string(),
        },
    }
}

/// How Claude Code's messages say what to do.
pub const WORDS: Words = Words {
    login: "run claude, then /login",
    elsewhere: "set ORCH_CLAUDE_CREDENTIALS_PATH (or ORCH_AGENT_HOME, or CLAUDE_CONFIG_DIR in \
                [agents.NAME] env)",
    refresh: "run claude once as the agent's user so it refreshes the token (or /login)",
};

/// The file judged, in the neutral words preflight reports.
pub fn check(path: &Path, now_ms: i64, policy: AuthPolicy) -> CredentialsCheck {
    credentials::check_file(path, now_ms, policy, &WORDS, classify)
}

/// Judge the file's document.
pub fn classify(document: &Value, now_ms: i64, skew_ms: i64) -> Login {
    let Some(oauth) = document.get("claudeAiOauth").filter(|o| o.is_object()) else {
        return Login::Incomplete("has no claudeAiOauth object".to_string());
    };
    if !has_text(oauth, "accessToken") {
        return Login::Incomplete(
            "has no access token (claudeAiOauth.accessToken is empty)".to_string(),
        );
    }
    let expires_at = match oauth.get("expiresAt") {
        None | Some(Value::Null) => {
            return Login::Lasting("the credentials record no expiry".to_string())
        }
        Some(value) => match epoch_ms(value) {
            Some(ms) => ms,
            None => return Login::BadExpiry("claudeAiOauth.expiresAt"),
        },
    };
    Login::by_expiry(expires_at, has_text(oauth, "refreshToken"), now_ms, skew_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use crate::agent::credentials::testing::{judged, NOW, SKEW};

    fn classify(bytes: &[u8]) -> Login {
        judged(super::classify, bytes)
    }

    fn file(oauth: &str) -> Vec<u8> {
        format!(r#"{{"other":1,"claudeAiOauth":{oauth}}}"#).into_bytes()
    }

    fn incomplete(login: &Login) -> bool {
        matches!(login, Login::Incomplete(_))
    }

    #[test]
    fn the_real_shape_is_valid() {
        let bytes = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x","refreshToken":"sk-ant-ort01-y","expiresAt":1785956423181,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}"#;
        assert_eq!(
            classify(bytes),
            Login::Valid {
                expires_at: 1785956423181
            }
        );
    }

    #[test]
    fn broken_files_fail_with_a_state() {
        assert!(matches!(classify(b"{not json"), Login::NotJson(_)));
        assert!(matches!(classify(b""), Login::NotJson(_)));
        for bytes in [&b"[]"[..], b"{}", br#"{"claudeAiOauth":"x"}"#] {
            let login = classify(bytes);
            assert!(incomplete(&login), "{login:?}");
            assert!(login
                .reason(Path::new("/c"), NOW, SKEW)
                .contains("has no claudeAiOauth object"));
        }
        for oauth in [r#"{"accessToken":""}"#, r#"{"accessToken":7}"#] {
            let login = classify(&file(oauth));
            assert!(login
                .reason(Path::new("/c"), NOW, SKEW)
                .contains("has no access token"));
        }
        for login in [
            classify(b"{}"),
            classify(&file(r#"{"accessToken":""}"#)),
            Login::Missing,
        ] {
            assert!(!login.passes(true));
            assert!(login.fix(&WORDS).is_some());
        }
        assert_eq!(
            Login::Missing.fix(&WORDS).unwrap(),
            "log in as the agent's user: run claude, then /login; if the file lives elsewhere, \
             set ORCH_CLAUDE_CREDENTIALS_PATH (or ORCH_AGENT_HOME, or CLAUDE_CONFIG_DIR in \
             [agents.NAME] env)"
        );
    }

    #[test]
    fn expiry_with_skew() {
        let at = |ms: i64| file(&format!(r#"{{"accessToken":"t","expiresAt":{ms}}}"#));
        assert!(matches!(classify(&at(NOW + SKEW + 1)), Login::Valid { .. }));
        assert_eq!(
            classify(&at(NOW + SKEW)),
            Login::Expired {
                expires_at: NOW + SKEW,
                refreshable: false
            }
        );
        for oauth in [
            r#"{"accessToken":"t"}"#,
            r#"{"accessToken":"t","expiresAt":null}"#,
        ] {
            let login = classify(&file(oauth));
            assert!(matches!(login, Login::Lasting(_)), "{login:?}");
            assert_eq!(
                login.reason(Path::new("/c"), NOW, SKEW),
                "logged in (the credentials record no expiry)"
            );
        }
        assert_eq!(
            classify(&file(r#"{"accessToken":"t","expiresAt":[1]}"#)),
            Login::BadExpiry("claudeAiOauth.expiresAt")
        );
        assert!(matches!(
            classify(&file(&format!(
                r#"{{"accessToken":"t","expiresAt":"{}"}}"#,
                NOW + 3_600_000
            ))),
            Login::Valid { .. }
        ));
    }

    #[test]
    fn refreshable_passes_only_when_allowed() {
        let bytes = file(&format!(
            r#"{{"accessToken":"t","refreshToken":"r","expiresAt":{}}}"#,
            NOW - 3 * 3_600_000
        ));
        let login = classify(&bytes);
        assert_eq!(login.refreshable(), Some(true));
        assert!(!login.passes(false));
        assert!(login.passes(true));
        assert_eq!(
            login.reason(Path::new("/c"), NOW, SKEW),
            "expired, refreshable: the access token expired 3 h ago and a refresh token is present"
        );
        let empty_refresh = file(&format!(
            r#"{{"accessToken":"t","refreshToken":"","expiresAt":{}}}"#,
            NOW - 1
        ));
        assert!(!classify(&empty_refresh).passes(true));
    }

    #[test]
    fn reasons_never_carry_the_token() {
        let bytes = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1}}"#;
        let login = classify(bytes);
        let text = format!("{login:?} {}", login.reason(Path::new("/c"), NOW, SKEW));
        assert!(!text.contains("SECRET"), "{text}");
        let broken = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET""#;
        let text = format!("{:?}", classify(broken));
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn check_a_file_and_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let policy = AuthPolicy {
            skew_ms: SKEW,
            allow_refreshable: false,
        };
        let missing = check(&path, NOW, policy);
        assert!(!missing.passes && missing.fingerprint.is_none());
        assert!(missing.reason.starts_with("no credentials file at"));
        std::fs::write(&path, file(r#"{"accessToken":"t"}"#)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let seen = check(&path, NOW, policy);
        assert!(seen.passes && seen.exposed(), "{seen:?}");
        assert_eq!(seen.fingerprint, credentials::fingerprint(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!check(&path, NOW, policy).exposed());
        assert!(check(dir.path(), NOW, policy)
            .reason
            .starts_with("cannot read"));
    }
}
