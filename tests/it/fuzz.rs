//! Property-based fuzzing of the two parsers that read what the outside world writes: the log
//! judge and the credentials parser. cargo-fuzz needs a nightly toolchain, which this project's
//! machines cannot install, so proptest stands in: CI runs a short round (2,000 cases each by
//! default); `PROPTEST_CASES=100000 cargo test --release --test it fuzz` is the long run recorded in
//! BENCHMARKS.md. A failure prints the minimal input that broke it.

use orch::agent::claude::credentials::classify;
use orch::agent::claude::judge::judge;
use orch::domain::verdict::{Class, Ending};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of real Claude Code output, recombined and cut at random places.
fn log_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"type":"system","subtype":"init","session_id":"s"}"#.to_string()),
        Just(r#"{"type":"assistant","message":{"content":[{"type":"text","text":"401 unauthorized"}]}}"#.to_string()),
        Just(r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"ok","total_cost_usd":0.1,"usage":{"input_tokens":1,"output_tokens":2}}"#.to_string()),
        Just(r#"{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login"}"#.to_string()),
        Just(r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#.to_string()),
        Just(r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected"}}"#.to_string()),
        Just("You've hit your limit · resets 1pm (Europe/Lisbon)".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just("\r".to_string()),
        Just("\"".to_string()),
        "[ -~]{0,40}",
        any::<String>(),
    ]
}

fn credentials_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x","refreshToken":"r","expiresAt":1785956423181}}"#.to_string()),
        Just(r#"{"claudeAiOauth":{"accessToken":"","expiresAt":"soon"}}"#.to_string()),
        Just(r#"{"claudeAiOauth":null}"#.to_string()),
        Just(r#"{"claudeAiOauth":{"accessToken":"a","expiresAt":1e308}}"#.to_string()),
        Just(r#"{"claudeAiOauth":{"accessToken":"a","expiresAt":-9223372036854775808}}"#.to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        "[ -~]{0,30}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn judge_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                   exit in proptest::option::of(-2i32..300),
                                   timed_out in any::<bool>(),
                                   stalled in any::<bool>()) {
        let verdict = judge(&bytes[..], Ending::new(exit, timed_out, stalled)).unwrap();
        prop_assert!(Class::from_name(verdict.class.name()).is_some());
        prop_assert_eq!(verdict.ok, verdict.class.name() == "ok");
    }

    #[test]
    fn judge_never_panics_on_recombined_logs(pieces in proptest::collection::vec(log_piece(), 0..12),
                                             joiner in prop_oneof![Just("\n"), Just("\r\n"), Just(""), Just(",")],
                                             cut in any::<proptest::sample::Index>(),
                                             exit in proptest::option::of(0i32..3)) {
        let text = pieces.join(joiner);
        let cut = cut.index(text.len() + 1);
        let bytes = &text.as_bytes()[..cut];
        let verdict = judge(bytes, Ending::new(exit, false, false)).unwrap();
        prop_assert!(Class::from_name(verdict.class.name()).is_some());
    }

    #[test]
    fn credentials_parser_never_panics(pieces in proptest::collection::vec(credentials_piece(), 0..6),
                                       now in any::<i64>(),
                                       skew in any::<i64>()) {
        let text = pieces.concat();
        let _ = classify(text.as_bytes(), now, skew);
    }

    #[test]
    fn credentials_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                                now in any::<i64>()) {
        let _ = classify(&bytes, now, 300_000);
    }
}
