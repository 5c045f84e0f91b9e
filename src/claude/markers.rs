//! The post-factum auth safety net: does a finished run's failure text say the agent is not
//! logged in? Markers count only in failure text (the text and `errors` of an `is_error` result,
//! and lines that are not JSON, such as the CLI's stderr), never in a successful transcript: an
//! agent that edited a `/login` handler has not failed.
//!
//! One function on purpose: when validate-log's classification is available it replaces this.

use std::path::Path;

use crate::claude::stream::{self, TAIL_BYTES};

/// What Claude Code prints when it is not (or no longer) authenticated.
pub const AUTH_MARKERS: &[&str] = &[
    "not logged in",
    "invalid api key",
    "missing api key",
    "/login",
    "authentication_error",
    "oauth token has expired",
    "failed to authenticate",
];

/// True when the failure text in the tail of the log at `path` carries an auth marker. An
/// unreadable log says nothing.
pub fn log_shows_auth_failure(path: &Path) -> bool {
    stream::read_tail(path, TAIL_BYTES).is_ok_and(|tail| shows_auth_failure(&tail))
}

fn shows_auth_failure(log: &[u8]) -> bool {
    let result = stream::last_result(log);
    if let Some(result) = &result {
        if !result.is_error {
            return false;
        }
        let texts = std::iter::once(&result.text).chain(&result.errors);
        if texts.map(String::as_bytes).any(has_marker) {
            return true;
        }
    }
    // A line opening with `{` is stream-json, possibly cut short: transcript, not failure text.
    stream::lines(log)
        .filter(|line| !line.trim_ascii_start().starts_with(b"{"))
        .any(has_marker)
}

fn has_marker(text: &[u8]) -> bool {
    let text = text.to_ascii_lowercase();
    AUTH_MARKERS
        .iter()
        .any(|marker| memchr::memmem::find(&text, marker.as_bytes()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGGED_OUT: &str = r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"Not logged in · Please run /login"}"#;

    #[test]
    fn markers_count_in_failure_text_only() {
        assert!(shows_auth_failure(LOGGED_OUT.as_bytes()));
        assert!(shows_auth_failure(b"Invalid API key - Please run /login\n"));
        let expired = r#"{"type":"result","subtype":"success","is_error":true,"result":"Failed to authenticate. API Error: 401 {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"OAuth token has expired.\"}}"}"#;
        assert!(shows_auth_failure(expired.as_bytes()));
        let transcript = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Fixed the /login handler: Not logged in users get 401"}]}}
{"type":"result","subtype":"success","is_error":false,"result":"Fixed /login"}"#;
        assert!(!shows_auth_failure(transcript.as_bytes()));
        let other_error = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"see /login"}]}}
{"type":"result","subtype":"error_during_execution","is_error":true,"result":"Tool failed"}"#;
        assert!(!shows_auth_failure(other_error.as_bytes()));
        assert!(!shows_auth_failure(b""));
    }
}
