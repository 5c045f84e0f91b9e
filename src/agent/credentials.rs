//! An agent's login, checked offline: where its credentials come from, a credentials file read
//! once (small, regular, without blocking), its fingerprint, and the check's answer. What a file
//! means is the kind's business (`agent::<kind>::credentials`); nothing here holds a token.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::env::Located;
use crate::fsx;

/// A real credentials file is a few kilobytes; more than this is not one.
const MAX_BYTES: u64 = 1 << 20;

/// The credentials file's identity at one moment: a login, a logout or a refresh changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredsFingerprint {
    pub path: PathBuf,
    pub size: i64,
    pub mtime_ns: i64,
}

impl CredsFingerprint {
    fn of(path: &Path, meta: &Metadata) -> CredsFingerprint {
        CredsFingerprint {
            path: path.to_path_buf(),
            size: meta.size() as i64,
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }
    }
}

/// One stat() of the file; None when it does not exist or cannot be reached.
pub fn fingerprint(path: &Path) -> Option<CredsFingerprint> {
    std::fs::metadata(path)
        .ok()
        .map(|meta| CredsFingerprint::of(path, &meta))
}

/// Where the agent's login comes from, decided from its settings and environment alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// A variable of the agent's environment authenticates it (an API key, a token).
    Env { var: &'static str, from: String },
    /// A credentials file, to read and judge.
    File(Located<PathBuf>),
    /// Nothing says where the credentials are, or how the agent would log in.
    Nowhere { reason: String, fix: String },
    /// The agent logs in in a way orch cannot check offline (Gemini through Vertex AI or a
    /// cloud's default credentials): it passes, with a warning saying so.
    Unchecked { reason: String },
}

/// The operator's rules for a token's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// A token expiring within this much of now counts as expired.
    pub skew_ms: i64,
    /// An expired token with a refresh token passes (the agent refreshes it on its next run).
    pub allow_refreshable: bool,
}

/// What a credentials file says about the login. Never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsCheck {
    pub path: PathBuf,
    /// The file as read: a cached verdict holds while it is unchanged.
    pub fingerprint: Option<CredsFingerprint>,
    /// The file's permission bits.
    pub mode: Option<u32>,
    /// The agent counts as logged in.
    pub passes: bool,
    /// Passes, but something is worth a look.
    pub doubtful: bool,
    /// One line on the login, naming the file where it helps.
    pub reason: String,
    /// What an operator does about it (given even when it passes).
    pub fix: Option<String>,
    /// When the token expires, epoch milliseconds.
    pub expires_at: Option<i64>,
    /// Whether an expired token can be refreshed (None: not expired, or not known).
    pub refreshable: Option<bool>,
    /// Until when a pass holds (the token's expiry less the skew); None when nothing bounds it.
    pub valid_until: Option<i64>,
}

impl CredentialsCheck {
    /// Group or others may read the file: they could copy the login.
    pub fn exposed(&self) -> bool {
        self.mode.is_some_and(|m| m & 0o044 != 0)
    }
}

/// A credentials file as read once.
#[derive(Debug)]
pub struct FileRead {
    pub fingerprint: Option<CredsFingerprint>,
    pub mode: Option<u32>,
    pub content: Content,
}

#[derive(Debug)]
pub enum Content {
    Missing,
    Unreadable(String),
    Bytes(Vec<u8>),
}

/// Read the file at `path`. Only a small regular file, opened without blocking: a FIFO in its
/// place must not hang the preflight (and with it every tick), nor `/dev/zero` fill the memory.
pub fn read(path: &Path) -> FileRead {
    match fsx::read_capped(path, MAX_BYTES) {
        // From the open file, so the fingerprint describes exactly what was read.
        Ok((bytes, meta)) => FileRead {
            fingerprint: Some(CredsFingerprint::of(path, &meta)),
            mode: Some(meta.permissions().mode() & 0o777),
            content: Content::Bytes(bytes),
        },
        Err(err) if err.is_not_found() => FileRead {
            fingerprint: None,
            mode: None,
            content: Content::Missing,
        },
        Err(err) => FileRead {
            fingerprint: fingerprint(path),
            mode: None,
            content: Content::Unreadable(err.to_string()),
        },
    }
}

/// The words a kind's credentials messages use.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    /// How an operator logs in as the agent's user: "run claude, then /login".
    pub login: &'static str,
    /// How to point orch at a file that lives elsewhere: "set ORCH_CLAUDE_CREDENTIALS_PATH".
    pub elsewhere: &'static str,
    /// How the agent refreshes an expired token itself: "run claude once as the agent's user so
    /// it refreshes the token (or /login)".
    pub refresh: &'static str,
}

/// What a credentials file says about the login, whatever the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Missing,
    Unreadable(String),
    NotJson(String),
    /// The file holds no usable login: what it lacks ("has no claudeAiOauth object").
    Incomplete(String),
    /// Logged in with nothing that expires in the file: why it passes ("an API key in the file").
    Lasting(String),
    /// Logged in; the field that should say when the token expires does not hold a time.
    BadExpiry(&'static str),
    Valid {
        expires_at: i64,
    },
    /// Expired, or expiring within the skew.
    Expired {
        expires_at: i64,
        refreshable: bool,
    },
}

impl Login {
    /// Expired or valid by `expires_at` against `now_ms` and the skew.
    pub fn by_expiry(expires_at: i64, refreshable: bool, now_ms: i64, skew_ms: i64) -> Login {
        if expires_at <= now_ms.saturating_add(skew_ms) {
            Login::Expired {
                expires_at,
                refreshable,
            }
        } else {
            Login::Valid { expires_at }
        }
    }

    /// Whether the agent counts as logged in. An expired but refreshable token passes only when
    /// the operator allows it (the agent refreshes it on its next run).
    pub fn passes(&self, allow_refreshable: bool) -> bool {
        match self {
            Login::Lasting(_) | Login::BadExpiry(_) | Login::Valid { .. } => true,
            Login::Expired { refreshable, .. } => *refreshable && allow_refreshable,
            _ => false,
        }
    }

    /// Passes, but something is worth a look.
    pub fn doubtful(&self) -> bool {
        matches!(self, Login::BadExpiry(_))
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Login::Valid { expires_at } | Login::Expired { expires_at, .. } => Some(*expires_at),
            _ => None,
        }
    }

    pub fn refreshable(&self) -> Option<bool> {
        match self {
            Login::Expired { refreshable, .. } => Some(*refreshable),
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
                    crate::output::relative(expires_at, now_ms)
                )
            } else {
                format!(
                    "the access token expires {}, within the {} s skew",
                    crate::output::relative(expires_at, now_ms),
                    skew_ms / 1000
                )
            }
        };
        match self {
            Login::Missing => format!("no credentials file at {path}"),
            Login::Unreadable(err) => format!("cannot read {path}: {err}"),
            Login::NotJson(err) => format!("{path} is not JSON: {err}"),
            Login::Incomplete(what) => format!("{path} {what}"),
            Login::Lasting(why) => format!("logged in ({why})"),
            Login::BadExpiry(field) => {
                format!("logged in; {field} is not a time, so expiry is not checked")
            }
            Login::Valid { expires_at } => format!(
                "logged in, the access token expires {}",
                crate::output::relative(*expires_at, now_ms)
            ),
            Login::Expired {
                expires_at,
                refreshable: true,
            } => format!(
                "expired, refreshable: {} and a refresh token is present",
                expiry(*expires_at)
            ),
            Login::Expired { expires_at, .. } => expiry(*expires_at),
        }
    }

    /// What an operator does about a failing state, in the kind's words.
    pub fn fix(&self, words: &Words) -> Option<String> {
        let Words {
            login,
            elsewhere,
            refresh,
        } = words;
        Some(match self {
            Login::Missing => format!(
                "log in as the agent's user: {login}; if the file lives elsewhere, {elsewhere}"
            ),
            Login::Unreadable(_) => format!(
                "run orch as the agent's user, or let orch's user read the file; or {elsewhere}"
            ),
            Login::NotJson(_) | Login::Incomplete(_) => {
                format!("log in again as the agent's user: {login}")
            }
            Login::Expired {
                refreshable: true, ..
            } => format!(
                "{refresh}, or set ORCH_AUTH_ALLOW_REFRESHABLE=true to let the next run refresh it"
            ),
            Login::Expired { .. } => format!("log in as the agent's user: {login}"),
            Login::BadExpiry(_) => {
                format!("log in again as the agent's user ({login}) to rewrite the file")
            }
            Login::Lasting(_) | Login::Valid { .. } => return None,
        })
    }
}

/// Read the JSON file at `path` and judge it with `classify` (the document, now, the skew), in
/// the neutral words preflight reports. Never fails: a broken file is a state with its reason.
pub fn check_file(
    path: &Path,
    now_ms: i64,
    policy: AuthPolicy,
    words: &Words,
    classify: impl Fn(&serde_json::Value, i64, i64) -> Login,
) -> CredentialsCheck {
    let read = read(path);
    let login = match read.content {
        Content::Missing => Login::Missing,
        Content::Unreadable(err) => Login::Unreadable(err),
        Content::Bytes(bytes) => login_of(&bytes, now_ms, policy.skew_ms, classify),
    };
    let passes = login.passes(policy.allow_refreshable);
    let valid_until = match login {
        Login::Valid { expires_at } if passes => Some(expires_at - policy.skew_ms),
        _ => None,
    };
    CredentialsCheck {
        passes,
        doubtful: login.doubtful(),
        reason: login.reason(path, now_ms, policy.skew_ms),
        fix: login.fix(words),
        expires_at: login.expires_at(),
        refreshable: login.refreshable(),
        valid_until,
        path: path.to_path_buf(),
        fingerprint: read.fingerprint,
        mode: read.mode,
    }
}

/// The login a JSON file's bytes hold, by `classify`.
pub fn login_of(
    bytes: &[u8],
    now_ms: i64,
    skew_ms: i64,
    classify: impl Fn(&serde_json::Value, i64, i64) -> Login,
) -> Login {
    match serde_json::from_slice(bytes) {
        Ok(document) => classify(&document, now_ms, skew_ms),
        // serde_json's message names a line and column, never the text around it.
        Err(err) => Login::NotJson(err.to_string()),
    }
}

/// A time in epoch milliseconds from a JSON number or a string of digits.
pub fn epoch_ms(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `key` of `object` is a non-empty string.
pub fn has_text(object: &serde_json::Value, key: &str) -> bool {
    object
        .get(key)
        .and_then(serde_json::Value::as_str)
        .is_some_and(|s| !s.trim().is_empty())
}

/// `$VAR/<under_var>/<file>` when the agent's environment sets `var`, else
/// `<agent home>/<under_home>/<file>`: where a kind keeps its login. None when there is no home.
pub fn in_dir_or_home(
    agent: &super::AgentEnv,
    var: &str,
    under_var: &str,
    under_home: &str,
    file: &str,
) -> Option<Located<PathBuf>> {
    if let Some(dir) = agent.var(var).filter(|d| !d.is_empty()) {
        return Some(Located {
            value: Path::new(&dir).join(under_var).join(file),
            origin: format!("{var}={dir} in {}", agent.var_origin(var)),
        });
    }
    agent.home().map(|home| Located {
        value: home.value.join(under_home).join(file),
        origin: format!(
            "the agent's home {} (from {})",
            home.value.display(),
            home.origin
        ),
    })
}

/// The first variable of `grants` the agent's environment sets to something non-empty, as the
/// source of its login.
pub fn env_grant(agent: &super::AgentEnv, grants: &[&'static str]) -> Option<AuthSource> {
    grants
        .iter()
        .copied()
        .find(|name| agent.var(name).is_some_and(|v| !v.trim().is_empty()))
        .map(|var| AuthSource::Env {
            var,
            from: agent.var_origin(var),
        })
}

/// What the credentials tests of every kind share: a fixed time, a skew, and a file's bytes
/// judged the way `check_file` judges them.
#[cfg(test)]
pub(crate) mod testing {
    use super::Login;

    pub const NOW: i64 = 1_785_000_000_000;
    pub const SKEW: i64 = 300_000;

    /// `classify` on `bytes`, which need not be JSON.
    pub fn judged(classify: fn(&serde_json::Value, i64, i64) -> Login, bytes: &[u8]) -> Login {
        super::login_of(bytes, NOW, SKEW, classify)
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::agent::AgentKind;

    /// A variable that logs a kind in is one of its credential variables: the agent of that kind
    /// gets it, and no other child does.
    #[test]
    fn every_grant_is_a_credential_variable_of_its_kind() {
        for (kind, grants) in [
            (
                AgentKind::Claude,
                crate::agent::claude::credentials::ENV_GRANTS,
            ),
            (
                AgentKind::Codex,
                crate::agent::codex::credentials::ENV_GRANTS,
            ),
            (
                AgentKind::Gemini,
                crate::agent::gemini::credentials::ENV_GRANTS,
            ),
        ] {
            for grant in grants {
                assert!(kind.credential_vars().contains(grant), "{kind:?} {grant}");
            }
        }
    }
}
