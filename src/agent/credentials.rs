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
    /// Nothing says where the credentials are.
    Nowhere { reason: String, fix: String },
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
