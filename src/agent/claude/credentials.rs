//! Claude Code's credentials file, read without sending anything anywhere: where it is, whether it
//! holds a usable login, and a fingerprint (size, modification time) that tells when it changed.
//! The token itself is never copied out of the parsed document, printed or stored.
//!
//! The shape Claude Code writes (other keys may appear and are ignored):
//! `{"claudeAiOauth":{"accessToken":"sk-ant-oat01-…","refreshToken":"sk-ant-ort01-…",
//!   "expiresAt":1785956423181,"scopes":[…],"subscriptionType":"max"}}`

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent::credentials::CredsFingerprint;
use crate::agent::credentials::{self, AuthPolicy, AuthSource, Content, CredentialsCheck};
use crate::agent::{AgentEnv, Located};
use crate::config;
use crate::output;

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
    if let Some(dir) = agent.var("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(Located {
            value: Path::new(&dir).join(FILE_NAME),
            origin: format!(
                "CLAUDE_CONFIG_DIR={dir} in {}",
                agent.var_origin("CLAUDE_CONFIG_DIR")
            ),
        });
    }
    agent.home().map(|home| Located {
        value: home.value.join(".claude").join(FILE_NAME),
        origin: format!(
            "the agent's home {} (from {})",
            home.value.display(),
            home.origin
        ),
    })
}

/// The first variable of `ENV_GRANTS` the agent's environment sets to something non-empty.
pub fn env_grant(agent: &AgentEnv) -> Option<&'static str> {
    ENV_GRANTS
        .iter()
        .copied()
        .find(|name| agent.var(name).is_some_and(|v| !v.trim().is_empty()))
}

/// A variable of `ENV_GRANTS`, else the credentials file.
pub fn auth_source(agent: &AgentEnv) -> AuthSource {
    if let Some(var) = env_grant(agent) {
        return AuthSource::Env {
            var,
            from: agent.var_origin(var),
        };
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

/// What the file says about the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Missing,
    Unreadable(String),
    NotJson(String),
    NoOauth,
    NoAccessToken,
    /// Logged in; the file records no expiry.
    NoExpiry,
    /// Logged in; `expiresAt` is there but is not a time, so it cannot be checked.
    BadExpiry,
    Valid {
        expires_at: i64,
    },
    /// Expired, or expiring within the skew.
    Expired {
        expires_at: i64,
        refreshable: bool,
    },
}

/// The file read once: its state, its fingerprint and its permission bits.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub path: PathBuf,
    pub state: State,
    pub fingerprint: Option<CredsFingerprint>,
    pub mode: Option<u32>,
}

/// Read and judge the file. `skew_ms`: a token expiring within this much of `now_ms` counts as
/// expired. Never fails: a broken file is a state with its reason.
pub fn inspect(path: &Path, now_ms: i64, skew_ms: i64) -> Inspection {
    let read = credentials::read(path);
    let state = match read.content {
        Content::Missing => State::Missing,
        Content::Unreadable(err) => State::Unreadable(err),
        Content::Bytes(bytes) => classify(&bytes, now_ms, skew_ms),
    };
    Inspection {
        path: path.to_path_buf(),
        state,
        fingerprint: read.fingerprint,
        mode: read.mode,
    }
}

/// The file judged, in the neutral words preflight reports.
pub fn check(path: &Path, now_ms: i64, policy: AuthPolicy) -> CredentialsCheck {
    let seen = inspect(path, now_ms, policy.skew_ms);
    let state = &seen.state;
    let passes = state.passes(policy.allow_refreshable);
    let valid_until = match state {
        State::Valid { expires_at } if passes => Some(expires_at - policy.skew_ms),
        _ => None,
    };
    CredentialsCheck {
        passes,
        doubtful: state.doubtful(),
        reason: state.reason(path, now_ms, policy.skew_ms),
        fix: state.fix().map(str::to_string),
        expires_at: state.expires_at(),
        refreshable: state.refreshable(),
        valid_until,
        path: seen.path,
        fingerprint: seen.fingerprint,
        mode: seen.mode,
    }
}

/// Judge the file's bytes.
pub fn classify(bytes: &[u8], now_ms: i64, skew_ms: i64) -> State {
    let document: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        // serde_json's message names a line and column, never the text around it.
        Err(err) => return State::NotJson(err.to_string()),
    };
    let Some(oauth) = document.get("claudeAiOauth").and_then(Value::as_object) else {
        return State::NoOauth;
    };
    let non_empty = |key: &str| {
        oauth
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if !non_empty("accessToken") {
        return State::NoAccessToken;
    }
    let expires_at = match oauth.get("expiresAt") {
        None | Some(Value::Null) => return State::NoExpiry,
        Some(value) => match epoch_ms(value) {
            Some(ms) => ms,
            None => return State::BadExpiry,
        },
    };
    if expires_at <= now_ms.saturating_add(skew_ms) {
        State::Expired {
            expires_at,
            refreshable: non_empty("refreshToken"),
        }
    } else {
        State::Valid { expires_at }
    }
}

fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl State {
    /// Whether the agent counts as logged in. An expired but refreshable token passes only when
    /// the operator allows it (Claude Code refreshes it on its next run).
    pub fn passes(&self, allow_refreshable: bool) -> bool {
        match self {
            State::NoExpiry | State::BadExpiry | State::Valid { .. } => true,
            State::Expired { refreshable, .. } => *refreshable && allow_refreshable,
            _ => false,
        }
    }

    /// Passes, but something is worth a look.
    pub fn doubtful(&self) -> bool {
        matches!(self, State::BadExpiry)
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self {
            State::Valid { expires_at } | State::Expired { expires_at, .. } => Some(*expires_at),
            _ => None,
        }
    }

    pub fn refreshable(&self) -> Option<bool> {
        match self {
            State::Expired { refreshable, .. } => Some(*refreshable),
            _ => None,
        }
    }

    /// One line on the login, naming the file where it helps; never the token.
    pub fn reason(&self, path: &Path, now_ms: i64, skew_ms: i64) -> String {
        let path = path.display();
        let expiry = |expires_at: i64| {
            if expires_at <= now_ms {
                format!(
                    "the access token expired {}",
                    output::relative(expires_at, now_ms)
                )
            } else {
                format!(
                    "the access token expires {}, within the {} s skew",
                    output::relative(expires_at, now_ms),
                    skew_ms / 1000
                )
            }
        };
        match self {
            State::Missing => format!("no credentials file at {path}"),
            State::Unreadable(err) => format!("cannot read {path}: {err}"),
            State::NotJson(err) => format!("{path} is not JSON: {err}"),
            State::NoOauth => format!("{path} has no claudeAiOauth object"),
            State::NoAccessToken => {
                format!("{path} has no access token (claudeAiOauth.accessToken is empty)")
            }
            State::NoExpiry => "logged in (the credentials record no expiry)".to_string(),
            State::BadExpiry => {
                "logged in; claudeAiOauth.expiresAt is not epoch milliseconds, so expiry is not checked"
                    .to_string()
            }
            State::Valid { expires_at } => format!(
                "logged in, the access token expires {}",
                output::relative(*expires_at, now_ms)
            ),
            State::Expired {
                expires_at,
                refreshable: true,
            } => format!(
                "expired, refreshable: {} and a refresh token is present",
                expiry(*expires_at)
            ),
            State::Expired { expires_at, .. } => expiry(*expires_at),
        }
    }

    /// What an operator does about a failing state.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self {
            State::Missing => {
                "log in as the agent's user: run claude, then /login; if the file lives elsewhere, \
                 set ORCH_CLAUDE_CREDENTIALS_PATH (or ORCH_AGENT_HOME, or CLAUDE_CONFIG_DIR in [agents.NAME] env)"
            }
            State::Unreadable(_) => {
                "run orch as the agent's user, or let orch's user read the file; \
                 or set ORCH_CLAUDE_CREDENTIALS_PATH to the right file"
            }
            State::NotJson(_) | State::NoOauth | State::NoAccessToken => {
                "log in again as the agent's user: run claude, then /login"
            }
            State::Expired {
                refreshable: true, ..
            } => {
                "run claude once as the agent's user so it refreshes the token (or /login), or set \
                 ORCH_AUTH_ALLOW_REFRESHABLE=true to let the next run refresh it"
            }
            State::Expired { .. } => "log in as the agent's user: run claude, then /login",
            State::BadExpiry => {
                "log in again as the agent's user (run claude, then /login) to rewrite the file"
            }
            State::NoExpiry | State::Valid { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: i64 = 1_785_000_000_000;
    const SKEW: i64 = 300_000;

    fn file(oauth: &str) -> Vec<u8> {
        format!(r#"{{"other":1,"claudeAiOauth":{oauth}}}"#).into_bytes()
    }

    #[test]
    fn the_real_shape_is_valid() {
        let bytes = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x","refreshToken":"sk-ant-ort01-y","expiresAt":1785956423181,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}"#;
        assert_eq!(
            classify(bytes, NOW, SKEW),
            State::Valid {
                expires_at: 1785956423181
            }
        );
    }

    #[test]
    fn broken_files_fail_with_a_state() {
        assert!(matches!(
            classify(b"{not json", NOW, SKEW),
            State::NotJson(_)
        ));
        assert!(matches!(classify(b"", NOW, SKEW), State::NotJson(_)));
        assert_eq!(classify(b"[]", NOW, SKEW), State::NoOauth);
        assert_eq!(classify(b"{}", NOW, SKEW), State::NoOauth);
        assert_eq!(
            classify(br#"{"claudeAiOauth":"x"}"#, NOW, SKEW),
            State::NoOauth
        );
        assert_eq!(
            classify(&file(r#"{"accessToken":""}"#), NOW, SKEW),
            State::NoAccessToken
        );
        assert_eq!(
            classify(&file(r#"{"accessToken":7}"#), NOW, SKEW),
            State::NoAccessToken
        );
        for state in [State::NoOauth, State::NoAccessToken, State::Missing] {
            assert!(!state.passes(true));
            assert!(state.fix().is_some());
        }
    }

    #[test]
    fn expiry_with_skew() {
        let at = |ms: i64| file(&format!(r#"{{"accessToken":"t","expiresAt":{ms}}}"#));
        assert!(matches!(
            classify(&at(NOW + SKEW + 1), NOW, SKEW),
            State::Valid { .. }
        ));
        assert_eq!(
            classify(&at(NOW + SKEW), NOW, SKEW),
            State::Expired {
                expires_at: NOW + SKEW,
                refreshable: false
            }
        );
        assert_eq!(
            classify(&file(r#"{"accessToken":"t"}"#), NOW, SKEW),
            State::NoExpiry
        );
        assert_eq!(
            classify(&file(r#"{"accessToken":"t","expiresAt":null}"#), NOW, SKEW),
            State::NoExpiry
        );
        assert_eq!(
            classify(&file(r#"{"accessToken":"t","expiresAt":[1]}"#), NOW, SKEW),
            State::BadExpiry
        );
        assert!(matches!(
            classify(
                &file(&format!(
                    r#"{{"accessToken":"t","expiresAt":"{}"}}"#,
                    NOW + 3_600_000
                )),
                NOW,
                SKEW
            ),
            State::Valid { .. }
        ));
    }

    #[test]
    fn refreshable_passes_only_when_allowed() {
        let bytes = file(&format!(
            r#"{{"accessToken":"t","refreshToken":"r","expiresAt":{}}}"#,
            NOW - 3 * 3_600_000
        ));
        let state = classify(&bytes, NOW, SKEW);
        assert_eq!(state.refreshable(), Some(true));
        assert!(!state.passes(false));
        assert!(state.passes(true));
        assert_eq!(
            state.reason(Path::new("/c"), NOW, SKEW),
            "expired, refreshable: the access token expired 3 h ago and a refresh token is present"
        );
        let empty_refresh = file(&format!(
            r#"{{"accessToken":"t","refreshToken":"","expiresAt":{}}}"#,
            NOW - 1
        ));
        assert!(!classify(&empty_refresh, NOW, SKEW).passes(true));
    }

    #[test]
    fn reasons_never_carry_the_token() {
        let bytes = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":"sk-ant-ort01-SECRET","expiresAt":1}}"#;
        let state = classify(bytes, NOW, SKEW);
        let text = format!("{state:?} {}", state.reason(Path::new("/c"), NOW, SKEW));
        assert!(!text.contains("SECRET"), "{text}");
        let broken = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET""#;
        let text = format!("{:?}", classify(broken, NOW, SKEW));
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn inspect_a_file_and_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let policy = AuthPolicy {
            skew_ms: SKEW,
            allow_refreshable: false,
        };
        assert_eq!(inspect(&path, NOW, SKEW).state, State::Missing);
        assert_eq!(credentials::fingerprint(&path), None);
        std::fs::write(&path, file(r#"{"accessToken":"t"}"#)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(inspect(&path, NOW, SKEW).state, State::NoExpiry);
        let seen = check(&path, NOW, policy);
        assert!(seen.passes && seen.exposed(), "{seen:?}");
        assert_eq!(seen.fingerprint, credentials::fingerprint(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!check(&path, NOW, policy).exposed());
        assert!(matches!(
            inspect(dir.path(), NOW, SKEW).state,
            State::Unreadable(_)
        ));
    }
}
