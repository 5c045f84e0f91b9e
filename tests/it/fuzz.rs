//! Property-based fuzzing of the two parsers that read what the outside world writes: the log
//! judge and the credentials parser, of every kind of agent. cargo-fuzz needs a nightly toolchain, which this project's
//! machines cannot install, so proptest stands in: CI runs a short round (2,000 cases each by
//! default); `PROPTEST_CASES=100000 cargo test --release --test it fuzz` is the long run recorded in
//! BENCHMARKS.md. A failure prints the minimal input that broke it.

use orch::agent::credentials::{login_of, Login};
use orch::agent::{claude, codex, gemini, of_kind};
use orch::domain::agent::AgentKind;
use orch::domain::verdict::{Class, Ending, Verdict};
use proptest::prelude::*;

/// Every kind's credentials parser.
const CLASSIFIERS: [fn(&serde_json::Value, i64, i64) -> Login; 3] = [
    claude::credentials::classify,
    codex::credentials::classify,
    gemini::credentials::classify,
];

fn classify(bytes: &[u8], now: i64, skew: i64) {
    for classify in CLASSIFIERS {
        let _ = login_of(bytes, now, skew, classify);
    }
}

/// Every kind's verdict on `bytes`, at a time of day anywhere in the range of times.
fn judge(bytes: &[u8], ending: Ending, at: Option<i64>) -> Vec<Verdict> {
    AgentKind::ALL
        .iter()
        .map(|kind| {
            of_kind(*kind)
                .judge(&mut &bytes[..], ending.at(at))
                .unwrap()
        })
        .collect()
}

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

/// Pieces of real Claude Code, Codex and Gemini output, recombined and cut at random places.
fn log_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"type":"thread.started","thread_id":"t"}"#.to_string()),
        Just(r#"{"type":"turn.completed","usage":{"input_tokens":1e400}}"#.to_string()),
        Just(r#"{"type":"turn.failed","error":{"message":"You’ve hit your usage limit. try again at Dec 31st, 262143 11:59 PM."}}"#.to_string()),
        Just(r#"{"type":"error","message":"try again at 12:59 PM."}"#.to_string()),
        Just(r#"{"type":"item.completed","item":{"type":"agent_message","text":"x"}}"#.to_string()),
        Just(r#"{"type":"init","session_id":"s","model":"auto"}"#.to_string()),
        Just(r#"{"type":"message","role":"assistant","content":"é","delta":true}"#.to_string()),
        Just(r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"exhausted your daily quota"}}"#.to_string()),
        Just(r#"{"type":"tool_result","tool_id":"t","status":"error","error":{"type":"tool_not_registered"}}"#.to_string()),
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
        Just(r#"{"auth_mode":"chatgpt","tokens":{"access_token":"a.eyJleHAiOjFlMzA4fQ.c","refresh_token":"r"},"last_refresh":"+262143-12-31T23:59:59Z"}"#.to_string()),
        Just(r#"{"tokens":{"access_token":"a.eyJleHAiOi05MjIzMzcyMDM2ODU0Nzc1ODA4fQ.c"}}"#.to_string()),
        Just(r#"{"access_token":"ya29.x","expiry_date":-9223372036854775808}"#.to_string()),
        Just(r#"{"refresh_token":"1//x"}"#.to_string()),
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
                                   stalled in any::<bool>(),
                                   at in proptest::option::of(any::<i64>())) {
        for verdict in judge(&bytes[..], Ending::new(exit, timed_out, stalled), at) {
            prop_assert!(Class::from_name(verdict.class.name()).is_some());
            prop_assert_eq!(verdict.ok, verdict.class.name() == "ok");
        }
    }

    #[test]
    fn judge_never_panics_on_recombined_logs(pieces in proptest::collection::vec(log_piece(), 0..12),
                                             joiner in prop_oneof![Just("\n"), Just("\r\n"), Just(""), Just(",")],
                                             cut in any::<proptest::sample::Index>(),
                                             exit in proptest::option::of(0i32..3),
                                             at in any::<i64>()) {
        let text = pieces.join(joiner);
        let cut = cut.index(text.len() + 1);
        let bytes = &text.as_bytes()[..cut];
        for verdict in judge(bytes, Ending::new(exit, false, false), Some(at)) {
            prop_assert!(Class::from_name(verdict.class.name()).is_some());
        }
    }

    #[test]
    fn credentials_parser_never_panics(pieces in proptest::collection::vec(credentials_piece(), 0..6),
                                       now in any::<i64>(),
                                       skew in any::<i64>()) {
        let text = pieces.concat();
        classify(text.as_bytes(), now, skew);
    }

    #[test]
    fn credentials_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                                now in any::<i64>()) {
        classify(&bytes, now, 300_000);
    }
}
