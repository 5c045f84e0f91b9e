//! Redaction, in one place: every message that can carry a server's reply or a child's output
//! (notify errors, the version probe's output, a log's failure text, git's stderr) goes through
//! `redact` before it is printed, stored or sent.
//!
//! Two kinds of secret are masked:
//! - the values orch holds (`crate::secrets`): raw, percent-encoded (upper- and lower-case hex,
//!   `+` for a space) and JSON-escaped, as a server or a proxy may echo them; and for a value made
//!   of parts (`123456:AAH…`, a Telegram token), each long part on its own;
//! - anything shaped like a well-known credential (`sk-ant-…`, `ghp_…`, …), whatever holds it.

use std::borrow::Cow;

/// Prefixes of credentials that must never be printed; the rest of such a token is masked.
const TOKEN_PREFIXES: &[&str] = &[
    "sk-ant-",
    "sk-proj-",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    // OpenAI's other keys (Codex's CODEX_API_KEY), Google's API keys and OAuth access tokens
    // (Gemini's): after the more specific ones above.
    "sk-",
    "AIza",
    "ya29.",
];

/// A part of a secret this long or longer is masked on its own (a Telegram token's secret half).
const PART_MIN_CHARS: usize = 12;

/// What replaces a secret.
pub const MASK: &str = "***";

/// `text` with every secret orch holds and every credential-shaped word masked.
pub fn redact(text: &str) -> String {
    redact_with(text, &crate::secrets::values())
}

/// `redact` with the secrets given (tests, and callers that hold more than orch's own).
pub fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut text = Cow::Borrowed(text);
    let mut forms: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|secret| encodings(secret))
        .collect();
    // Longest first, so a whole token is masked before one of its parts.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    for form in &forms {
        if text.contains(form.as_str()) {
            text = Cow::Owned(text.replace(form.as_str(), MASK));
        }
    }
    mask_token_shapes(&text)
}

/// Every form of `secret` a reply may carry: the value and its long parts, each raw,
/// percent-encoded and JSON-escaped.
fn encodings(secret: &str) -> Vec<String> {
    let mut pieces = vec![secret.to_string()];
    pieces.extend(
        secret
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|part| part.chars().count() >= PART_MIN_CHARS && *part != secret)
            .map(str::to_string),
    );
    let mut forms = Vec::new();
    for piece in pieces {
        let json = serde_json::to_string(&piece).unwrap_or_default();
        let json = json.trim_matches('"').to_string();
        forms.push(json.replace('/', "\\/"));
        forms.push(json);
        forms.push(percent(&piece, false));
        forms.push(percent(&piece, true));
        forms.push(percent(&piece, false).replace("%20", "+"));
        forms.push(piece);
    }
    forms.retain(|form| !form.is_empty());
    forms
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn percent(text: &str, lower: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else if lower {
            out.push_str(&format!("%{byte:02x}"));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Mask the rest of every word that starts like a well-known credential.
fn mask_token_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        // A token starts a word: "desk-top" holds no key.
        let starts_word = !out
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        for prefix in TOKEN_PREFIXES.iter().filter(|_| starts_word) {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let token_len = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .unwrap_or(tail.len());
                if token_len > 0 {
                    out.push_str(prefix);
                    out.push('…');
                    rest = &tail[token_len..];
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:AAHsecretPartOfTheBotToken_x";

    #[test]
    fn masks_every_encoding_a_server_may_echo() {
        let secrets = vec![TOKEN.to_string(), String::new()];
        for echoed in [
            "404 Not found: /bot123456:AAHsecretPartOfTheBotToken_x/sendMessage",
            "404 Not found: /bot123456%3AAAHsecretPartOfTheBotToken_x/sendMessage",
            "404 Not found: /bot123456%3aAAHsecretPartOfTheBotToken_x/sendMessage",
            r#"{"description":"bad token 123456:AAHsecretPartOfTheBotToken_x"}"#,
            "only the secret half: AAHsecretPartOfTheBotToken_x",
        ] {
            let out = redact_with(echoed, &secrets);
            assert!(!out.contains("AAHsecretPartOfTheBotToken_x"), "{out}");
            assert!(out.contains(MASK), "{out}");
        }
        let json = serde_json::to_string("tok\"en/with\\odd").unwrap();
        let out = redact_with(&json, &["tok\"en/with\\odd".to_string()]);
        assert_eq!(out, "\"***\"");
    }

    #[test]
    fn masks_credential_shapes() {
        assert_eq!(
            redact_with("key sk-ant-oat01-abc_DEF-1 and ghp_xyz.", &[]),
            "key sk-ant-… and ghp_…."
        );
        assert_eq!(
            redact_with(
                "Incorrect API key provided: sk-fake123. AIzaSyA-x_9 ya29.a0AfB",
                &[]
            ),
            "Incorrect API key provided: sk-…. AIza… ya29.…"
        );
        assert_eq!(
            redact_with("a desk-top task-list", &[]),
            "a desk-top task-list"
        );
        assert_eq!(redact_with("plain text", &[]), "plain text");
    }
}
