//! Decide from a Gemini run's log (`--output-format stream-json`: JSON lines on stdout, text on
//! stderr, in one file) whether the agent really succeeded, in the neutral words of
//! `domain::verdict`.
//!
//! The events: `init{session_id,model}`, `message{role,content,delta}`,
//! `tool_use{tool_name,tool_id,parameters}`, `tool_result{tool_id,status,output,error}`,
//! `error{severity,message}` (not fatal) and `result{status,error,stats}`. The answer is the
//! assistant's `message` chunks joined. Many failures never reach stdout: no auth method, an
//! untrusted folder, a broken settings file or a bad option print text on stderr and exit with a
//! code of their own (41, 55, 52, 1); an API error ends with a `result` of status `error` and the
//! HTTP status truncated to 8 bits as the exit code (429 → 173, 400 → 144, 500 → 244). Gemini
//! exits 0 after SIGTERM, and a `result` with status `error` can come with exit 0: only a
//! `result` of status `success` is a success.
//!
//! The class is the first that applies:
//! 1. `empty` — `timeout` or `stalled` when orch cut the run short;
//! 2. a success result: `permission_denied` when a tool the agent called was not offered (the
//!    approval mode hides what would need a confirmation), `exit_mismatch` when Gemini then
//!    exited non-zero by itself, else `ok`;
//! 3. before any session started: a resume of a session Gemini does not have is `agent_error`
//!    (`resume_failed`); exit 41 or "Please set an Auth method" is `auth` ("Manual authorization
//!    is required" too, marked unconfirmed: offline, a good login fails the same way); a refusal
//!    of the command line (exit 42, 44, 52, 55, an unknown option) is `invocation_error`;
//! 4. `max_turns` (`FatalTurnLimitedError`, exit 53); from the failure's text: `usage_limit` for
//!    an exhausted daily quota (it resets at midnight Pacific time), `auth` for an invalid API
//!    key, `rate_limit` for other quotas and 429s;
//! 5. `timeout` / `stalled` when orch cut the run short;
//! 6. `agent_error` for an error result (or exit 54, 130), else `no_result`.

use std::collections::VecDeque;
use std::io::{self, Read};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde_json::Value;

use crate::agent::jsonl::{fast_type, Keep, Limits, Sink, Summary};
use crate::agent::judging::{
    self, count, excerpt, model_names, said, Sign, Signs, Stderr, EXCERPT_CHARS, FIX_NO_PROMPT,
    FIX_OPTIONS, MAX_DENIALS, SNIPPET_CHARS,
};
use crate::agent::transcript::input_gist;
use crate::domain::verdict::{Class, Ending, RateLimit, Usage, Verdict};

/// The answer is kept up to this many bytes (the next stage's prompt takes a fraction of it).
const ANSWER_MAX: usize = 1 << 20;
/// Tool calls remembered, to name a refused one by what it asked.
const CALLS_KEPT: usize = 32;

/// Gemini's exit codes (`FatalError` subclasses and API errors).
const EXIT_AUTH: i32 = 41;
const EXIT_INPUT: i32 = 42;
const EXIT_SANDBOX: i32 = 44;
const EXIT_CONFIG: i32 = 52;
const EXIT_TURNS: i32 = 53;
const EXIT_TOOL: i32 = 54;
const EXIT_UNTRUSTED: i32 = 55;
const EXIT_CANCELLED: i32 = 130;
/// HTTP 429 as an exit code (429 mod 256).
const EXIT_429: i32 = 173;

pub fn judge(reader: impl Read, ending: Ending) -> io::Result<Verdict> {
    judging::read::<Facts>(reader, ending, Limits::DEFAULT)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Means {
    NoAuth,
    /// An OAuth login Gemini could not validate: logged out, or offline.
    AuthOnline,
    BadKey,
    Untrusted,
    BadSettings,
    BadOption,
    NoPrompt,
    SessionId,
    Sandbox,
    ResumeMissing,
    DailyQuota,
    RateLimit,
}

const SIGNS: &[Sign<Means>] = &[
    Sign {
        phrase: "please set an auth method",
        means: Means::NoAuth,
    },
    Sign {
        phrase: "manual authorization is required",
        means: Means::AuthOnline,
    },
    Sign {
        phrase: "api key not valid",
        means: Means::BadKey,
    },
    Sign {
        phrase: "api_key_invalid",
        means: Means::BadKey,
    },
    Sign {
        phrase: "not running in a trusted directory",
        means: Means::Untrusted,
    },
    Sign {
        phrase: "please fix the configuration file",
        means: Means::BadSettings,
    },
    Sign {
        phrase: "unknown argument",
        means: Means::BadOption,
    },
    Sign {
        phrase: "invalid values",
        means: Means::BadOption,
    },
    Sign {
        phrase: "not enough arguments following",
        means: Means::BadOption,
    },
    Sign {
        phrase: "cannot use both",
        means: Means::BadOption,
    },
    Sign {
        phrase: "no input provided via stdin",
        means: Means::NoPrompt,
    },
    Sign {
        phrase: "already exists. use --resume",
        means: Means::SessionId,
    },
    Sign {
        phrase: "fatalsandboxerror",
        means: Means::Sandbox,
    },
    Sign {
        phrase: "error resuming session",
        means: Means::ResumeMissing,
    },
    Sign {
        phrase: "exhausted your daily quota",
        means: Means::DailyQuota,
    },
    Sign {
        phrase: "exceeded your current quota",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "resource_exhausted",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "resource has been exhausted",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "too many requests",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "status 429",
        means: Means::RateLimit,
    },
];

/// The refusals of the command line, most specific first.
const REFUSALS: &[Means] = &[
    Means::Untrusted,
    Means::BadSettings,
    Means::Sandbox,
    Means::SessionId,
    Means::NoPrompt,
    Means::BadOption,
];

impl judging::Refusal for Means {
    fn what(self) -> &'static str {
        match self {
            Means::Untrusted => "the workdir is not a trusted folder",
            Means::BadSettings => "its settings file does not parse",
            Means::Sandbox => "its sandbox cannot start",
            Means::SessionId => "a session id already used",
            Means::NoPrompt => "no prompt",
            _ => "an option it does not take",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Means::Untrusted => {
                "orch trusts the workdir for Gemini (GEMINI_CLI_TRUST_WORKSPACE=true); something \
                 overrides it: remove GEMINI_CLI_TRUST_WORKSPACE or GEMINI_RESTRICTED_MODE from \
                 [agents.{agent}.env], or add \"--skip-trust\" to its extra_args"
            }
            Means::BadSettings => {
                "fix the settings file Gemini names above (~/.gemini/settings.json of the agent's \
                 user, or the workdir's .gemini/settings.json)"
            }
            Means::Sandbox => {
                "--sandbox needs a container image: remove it from [agents.{agent}] and \
                 [stages.{stage}] extra_args, or install the image"
            }
            Means::SessionId => {
                "remove --session-id from [agents.{agent}] and [stages.{stage}] extra_args: orch \
                 starts and resumes sessions itself"
            }
            Means::NoPrompt => FIX_NO_PROMPT,
            _ => FIX_OPTIONS,
        }
    }
}

/// The result event's facts.
#[derive(Debug, Clone)]
struct Outcome {
    success: bool,
    error_type: Option<String>,
    message: Option<String>,
    usage: Usage,
}

#[derive(Default)]
struct Facts {
    session_id: Option<String>,
    model: Option<String>,
    result: Option<Outcome>,
    answer: String,
    answer_cut: bool,
    /// Recent tool calls by id: "name: what it asked".
    calls: VecDeque<(String, String)>,
    denials: Vec<String>,
    /// `error` events of severity `error`, the last one.
    last_error: Option<String>,
    stderr: Stderr<Means>,
    /// The daily quota a failed run reported, with its reset.
    limit: Option<RateLimit>,
}

impl Sink for Facts {
    fn text_line(&mut self, line: &[u8]) {
        self.stderr.note(SIGNS, line);
    }

    fn object(&mut self, object: &[u8]) -> Keep {
        let has = |needle: &[u8]| memchr::memmem::find(object, needle).is_some();
        match fast_type(object) {
            // A user message repeats the prompt; once the answer is full, the rest of it is cut.
            Some(b"message") if self.answer_cut || has(b"\"role\":\"user\"") => {}
            // A tool's output, often large, matters only when the tool was not offered.
            Some(b"tool_result") if !has(b"tool_not_registered") => {}
            _ => self.parse(object),
        }
        Keep::No
    }
}

impl Facts {
    fn parse(&mut self, object: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(object) else {
            self.text_line(object);
            return;
        };
        let text_of = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        match value.get("type").and_then(Value::as_str) {
            Some("init") => {
                self.session_id = text_of("session_id");
                self.model = text_of("model");
            }
            Some("message") if value.get("role").and_then(Value::as_str) == Some("assistant") => {
                let content = value.get("content").and_then(Value::as_str).unwrap_or("");
                let room = ANSWER_MAX.saturating_sub(self.answer.len());
                if content.len() > room {
                    self.answer_cut = true;
                }
                let mut cut = content.len().min(room);
                while !content.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.answer.push_str(&content[..cut]);
            }
            Some("tool_use") => {
                let name = text_of("tool_name").unwrap_or_else(|| "?".into());
                let asked = input_gist(value.get("parameters").unwrap_or(&Value::Null));
                if self.calls.len() == CALLS_KEPT {
                    self.calls.pop_front();
                }
                self.calls.push_back((
                    text_of("tool_id").unwrap_or_default(),
                    format!("{name}: {asked}"),
                ));
            }
            Some("tool_result") => {
                let refused = value.pointer("/error/type").and_then(Value::as_str)
                    == Some("tool_not_registered");
                if refused && self.denials.len() < MAX_DENIALS {
                    let id = text_of("tool_id").unwrap_or_default();
                    let call = self
                        .calls
                        .iter()
                        .find(|(called, _)| *called == id)
                        .map_or_else(|| id.clone(), |(_, call)| call.clone());
                    self.denials.push(excerpt(&call, SNIPPET_CHARS));
                }
            }
            Some("error") if value.get("severity").and_then(Value::as_str) == Some("error") => {
                self.last_error = text_of("message");
            }
            Some("result") => self.result = Some(outcome_of(&value)),
            _ => {}
        }
    }
}

impl judging::Facts for Facts {
    fn finish(mut self, summary: &Summary, ending: Ending) -> Verdict {
        let stderr = std::mem::take(&mut self.stderr.signs);
        let mut usage = self
            .result
            .as_ref()
            .map(|r| r.usage.clone())
            .unwrap_or_default();
        usage.session_id = self.session_id.clone();
        if usage.models.is_empty() {
            usage.models = model_names(self.model.as_deref().into_iter());
        }
        let decided =
            judging::blank(summary, ending).unwrap_or_else(|| self.decide(ending, &stderr));
        let class = decided.0;
        usage.rate_limit = self.limit.take();
        let mut verdict = judging::verdict_of(
            decided,
            ending,
            usage,
            &stderr,
            Means::ResumeMissing,
            REFUSALS,
        );
        verdict.auth_unconfirmed = class == Class::Auth
            && stderr.get(Means::AuthOnline).is_some()
            && stderr.get(Means::NoAuth).is_none();
        if let Some(result) = &self.result {
            verdict.subtype = Some(if result.success { "success" } else { "error" }.into());
            verdict.is_error = Some(!result.success);
            if result.success {
                if self.answer_cut {
                    self.answer.push_str("\n[… cut by orch]");
                }
                verdict.result_excerpt = Some(excerpt(&self.answer, EXCERPT_CHARS));
                verdict.result_text = Some(std::mem::take(&mut self.answer));
            }
        }
        verdict.denials = self.denials;
        verdict
    }
}

impl Facts {
    /// The class of a log that holds something.
    fn decide(&mut self, ending: Ending, stderr: &Signs<Means>) -> (Class, String) {
        let code = ending.exit_code;
        if self.result.as_ref().is_some_and(|r| r.success) {
            if !self.denials.is_empty() {
                return (
                    Class::PermissionDenied,
                    judging::denied_reason(&self.denials, "success result (tools not offered)"),
                );
            }
            let reason = match said(&self.answer) {
                answer if answer.is_empty() => "success result".to_string(),
                answer => format!("success result: {answer}"),
            };
            return judging::success(ending, reason);
        }
        if self.session_id.is_none() && self.result.is_none() {
            if let Some(missed) =
                judging::resume_missed(stderr.get(Means::ResumeMissing), "session")
            {
                return missed;
            }
            let auth = stderr
                .first_of(&[Means::NoAuth, Means::AuthOnline])
                .map(|(_, text)| text.to_string());
            if code == Some(EXIT_AUTH) || auth.is_some() {
                let why = auth.unwrap_or_else(|| "exit 41".to_string());
                return (Class::Auth, format!("not authenticated: {why}"));
            }
            let by_exit = matches!(
                code,
                Some(EXIT_INPUT | EXIT_SANDBOX | EXIT_CONFIG | EXIT_UNTRUSTED)
            )
            .then(|| {
                format!(
                    "exit {}{}",
                    code.unwrap_or_default(),
                    self.stderr.lines.note_for_reason()
                )
            });
            if let Some(refused) = judging::refused("Gemini", stderr, REFUSALS, by_exit) {
                return refused;
            }
        }
        let result = self.result.as_ref();
        if code == Some(EXIT_TURNS)
            || result.and_then(|r| r.error_type.as_deref()) == Some("FatalTurnLimitedError")
        {
            return (
                Class::MaxTurns,
                "the agent hit its session turn limit (FatalTurnLimitedError; maxSessionTurns in \
                 Gemini's settings)"
                    .to_string(),
            );
        }
        // The failure's words: the result's error, error events, and stderr.
        let mut signs = Signs::default();
        for text in [
            result.and_then(|r| r.message.as_deref()),
            self.last_error.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            signs.scan(SIGNS, text.as_bytes());
        }
        let found = |means| signs.get(means).or_else(|| stderr.get(means));
        if let Some(text) = found(Means::DailyQuota) {
            if let Some(resets_at) = ending.at.map(next_pacific_midnight) {
                let limit = judging::rejected(resets_at, "daily");
                let reason = format!(
                    "{} (Google's daily quotas reset at midnight Pacific time): {text}",
                    judging::usage_limit_reason(&limit)
                );
                self.limit = Some(limit);
                return (Class::UsageLimit, reason);
            }
        }
        if let Some(text) = found(Means::BadKey) {
            return (Class::Auth, format!("not authenticated: {text}"));
        }
        let limited = found(Means::DailyQuota).or_else(|| found(Means::RateLimit));
        if let Some(text) = limited {
            return (Class::RateLimit, format!("rate or usage limit: {text}"));
        }
        if code == Some(EXIT_429) {
            return (
                Class::RateLimit,
                "rate or usage limit: exit 173 (HTTP 429)".to_string(),
            );
        }
        let after = match result {
            Some(r) => format!(" after an error result ({})", error_line(r)),
            None => " with no result".to_string(),
        };
        if let Some(cut) = judging::cut_short(ending, &after) {
            return cut;
        }
        match (result, code) {
            (Some(result), _) => (
                Class::AgentError,
                format!("error result: {}", error_line(result),),
            ),
            (None, Some(EXIT_TOOL)) => (
                Class::AgentError,
                format!(
                    "a fatal tool error (exit 54){}",
                    self.stderr.lines.note_for_reason()
                ),
            ),
            (None, Some(EXIT_CANCELLED)) => (
                Class::AgentError,
                "the operation was cancelled (exit 130)".to_string(),
            ),
            (None, _) => {
                let mut reason = match code {
                    Some(0) => "no result (Gemini exits 0 even when ended by a signal)".to_string(),
                    Some(code) => format!("no result, exit {code}"),
                    None => "no result".to_string(),
                };
                reason.push_str(&self.stderr.lines.note_for_reason());
                (Class::NoResult, reason)
            }
        }
    }
}

fn error_line(result: &Outcome) -> String {
    let kind = result.error_type.as_deref().unwrap_or("error");
    match result.message.as_deref().map(said) {
        Some(message) if !message.is_empty() => format!("{kind}: {message}"),
        _ => kind.to_string(),
    }
}

fn outcome_of(result: &Value) -> Outcome {
    let stats = result.get("stats");
    let field = |key: &str| count(stats.and_then(|s| s.get(key)));
    let models = stats
        .and_then(|s| s.get("models"))
        .and_then(Value::as_object);
    Outcome {
        success: result.get("status").and_then(Value::as_str) == Some("success"),
        error_type: result
            .pointer("/error/type")
            .and_then(Value::as_str)
            .map(str::to_owned),
        message: result
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: Usage {
            input_tokens: field("input_tokens"),
            output_tokens: field("output_tokens"),
            cache_read_tokens: field("cached"),
            duration_ms: field("duration_ms"),
            models: models.map_or_else(Vec::new, |m| model_names(m.keys().map(String::as_str))),
            ..Usage::default()
        },
    }
}

/// The next midnight in the US Pacific time zone after `at` (epoch ms): when Google's per-day
/// quotas reset. Pacific time is UTC-8, or UTC-7 from the second Sunday of March to the first
/// Sunday of November (the switches happen at 2 AM, after midnight).
pub fn next_pacific_midnight(at: i64) -> i64 {
    let Some(utc) = Utc.timestamp_millis_opt(at).single() else {
        return at;
    };
    // The offset at `at`: daylight time runs from 10:00 UTC on the second Sunday of March to
    // 09:00 UTC on the first Sunday of November.
    let year = utc.year();
    let dst_from = sunday(year, 3, 2)
        .and_hms_opt(10, 0, 0)
        .map(|t| t.and_utc());
    let dst_to = sunday(year, 11, 1)
        .and_hms_opt(9, 0, 0)
        .map(|t| t.and_utc());
    let daylight = matches!((dst_from, dst_to), (Some(from), Some(to)) if utc >= from && utc < to);
    let offset_h = if daylight { 7 } else { 8 };
    let Some(local) = utc.checked_sub_signed(chrono::Duration::hours(offset_h)) else {
        return at;
    };
    let local_day = local.date_naive();
    let next = local_day.succ_opt().unwrap_or(local_day);
    // The offset at that midnight: daylight time when the day is after the March switch and no
    // later than the November one.
    let daylight_then = next > sunday(next.year(), 3, 2) && next <= sunday(next.year(), 11, 1);
    let offset_then = if daylight_then { 7 } else { 8 };
    next.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() + offset_then * 3_600_000)
        .unwrap_or(at)
}

/// The `nth` Sunday of `month` in `year`.
fn sunday(year: i32, month: u32, nth: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first
        .checked_add_signed(chrono::Duration::days(i64::from(to_sunday + 7 * (nth - 1))))
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::judging::testing::{fragment, same_in_pieces};
    use proptest::prelude::*;

    const INIT: &str = r#"{"type":"init","timestamp":"2026-11-29T09:36:00.071Z","session_id":"2c773a36-8e5a-4858-878a-8edbddcb0fd3","model":"auto"}"#;
    const USER: &str = r#"{"type":"message","timestamp":"t","role":"user","content":"say hi"}"#;
    const HI: &str =
        r#"{"type":"message","timestamp":"t","role":"assistant","content":"h","delta":true}"#;
    const HI2: &str =
        r#"{"type":"message","timestamp":"t","role":"assistant","content":"i","delta":true}"#;
    const OK: &str = r#"{"type":"result","timestamp":"t","status":"success","stats":{"total_tokens":106,"input_tokens":100,"output_tokens":6,"cached":0,"input":100,"duration_ms":113,"tool_calls":0,"models":{"gemini-mock":{"total_tokens":106}}}}"#;
    const FAILED: &str = r#"{"type":"result","timestamp":"t","status":"error","error":{"type":"unknown","message":"[API Error: exception TypeError: fetch failed sending request]"},"stats":{"duration_ms":0}}"#;
    /// 2026-11-29T09:35:00Z.
    const AT: i64 = 1_795_944_900_000;

    fn lines(parts: &[&str]) -> String {
        parts.iter().map(|p| format!("{p}\n")).collect()
    }

    fn judge_text(text: &str, ending: Ending) -> Verdict {
        judge(text.as_bytes(), ending).unwrap()
    }

    fn exit(code: i32) -> Ending {
        Ending::new(Some(code), false, false).at(Some(AT))
    }

    #[test]
    fn a_success_result_is_ok_and_the_chunks_the_answer() {
        let v = judge_text(&lines(&[INIT, USER, HI, HI2, OK]), exit(0));
        assert_eq!(v.class, Class::Ok, "{v:?}");
        assert_eq!(v.result_text.as_deref(), Some("hi"));
        assert_eq!(v.usage.input_tokens, Some(100));
        assert_eq!(v.usage.models, ["gemini-mock"]);
        assert_eq!(v.usage.cost_usd, None);
        assert_eq!(
            v.usage.session_id.as_deref(),
            Some("2c773a36-8e5a-4858-878a-8edbddcb0fd3")
        );
        assert_eq!(
            judge_text(&lines(&[INIT, HI, OK]), exit(1)).class,
            Class::ExitMismatch
        );
    }

    #[test]
    fn exit_0_proves_nothing() {
        // An error result with exit 0, and a run ended by SIGTERM (Gemini exits 0).
        assert_eq!(
            judge_text(&lines(&[INIT, USER, FAILED]), exit(0)).class,
            Class::AgentError
        );
        assert_eq!(
            judge_text(&lines(&[INIT, USER]), exit(0)).class,
            Class::NoResult
        );
        assert_eq!(
            judge_text(&lines(&[INIT, USER]), Ending::new(Some(0), true, false)).class,
            Class::Timeout
        );
    }

    #[test]
    fn exit_codes_without_a_result() {
        let untrusted = "Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust` …\n";
        let v = judge_text(untrusted, exit(55));
        assert_eq!(v.class, Class::InvocationError, "{v:?}");
        assert!(v.fix.unwrap().contains("GEMINI_CLI_TRUST_WORKSPACE"));
        assert_eq!(
            judge_text("something unknown\n", exit(52)).class,
            Class::InvocationError
        );
        let v = judge_text(
            "Please set an Auth method in your /h/.gemini/settings.json …\n",
            exit(41),
        );
        assert_eq!((v.class, v.auth_unconfirmed), (Class::Auth, false));
        let v = judge_text(
            "Error authenticating: FatalAuthenticationError: Manual authorization is required but the current session is non-interactive.\n",
            exit(41),
        );
        assert_eq!((v.class, v.auth_unconfirmed), (Class::Auth, true));
        let v = judge_text(
            "Error resuming session: No previous sessions found for this project.\n",
            exit(42),
        );
        assert_eq!(v.class, Class::AgentError);
        assert!(v.resume_failed);
        assert_eq!(judge_text("x\n", exit(53)).class, Class::MaxTurns);
        assert_eq!(judge_text("x\n", exit(173)).class, Class::RateLimit);
        assert_eq!(judge_text("x\n", exit(244)).class, Class::NoResult);
    }

    #[test]
    fn a_daily_quota_holds_until_midnight_pacific() {
        let quota = r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: You have exhausted your daily quota on this model.]"}}"#;
        let v = judge_text(&lines(&[INIT, USER, quota]), exit(173));
        assert_eq!(v.class, Class::UsageLimit, "{v:?}");
        // 2026-11-29 09:35 UTC is 01:35 PST: the quota resets at 2026-11-30 00:00 PST.
        assert_eq!(
            v.usage.rate_limit.unwrap().resets_at,
            Some(1_796_025_600_000)
        );
        let unknown_time = Ending::new(Some(173), false, false);
        assert_eq!(
            judge_text(&lines(&[INIT, USER, quota]), unknown_time).class,
            Class::RateLimit
        );
    }

    #[test]
    fn pacific_midnight_follows_daylight_time() {
        let ms = |y, m, d, h| {
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        // Summer: PDT, midnight is 07:00 UTC.
        assert_eq!(next_pacific_midnight(ms(2026, 7, 1, 12)), ms(2026, 7, 2, 7));
        // 05:00 UTC on July 2nd is still July 1st in California.
        assert_eq!(next_pacific_midnight(ms(2026, 7, 2, 5)), ms(2026, 7, 2, 7));
        // Winter: PST, midnight is 08:00 UTC.
        assert_eq!(
            next_pacific_midnight(ms(2026, 1, 10, 12)),
            ms(2026, 1, 11, 8)
        );
        // The night before the March switch (2026-03-08): midnight is still PST.
        assert_eq!(next_pacific_midnight(ms(2026, 3, 7, 20)), ms(2026, 3, 8, 8));
        assert_eq!(next_pacific_midnight(ms(2026, 3, 8, 20)), ms(2026, 3, 9, 7));
        // November: the switch (2026-11-01) comes after its midnight, which is PDT.
        assert_eq!(
            next_pacific_midnight(ms(2026, 10, 31, 20)),
            ms(2026, 11, 1, 7)
        );
        assert_eq!(
            next_pacific_midnight(ms(2026, 11, 1, 20)),
            ms(2026, 11, 2, 8)
        );
    }

    #[test]
    fn a_tool_not_offered_is_a_denial() {
        let call = r#"{"type":"tool_use","tool_name":"run_shell_command","tool_id":"run_shell_command__1","parameters":{"command":"echo hi > out.txt"}}"#;
        let refused = r#"{"type":"tool_result","tool_id":"run_shell_command__1","status":"error","output":"Tool \"run_shell_command\" not found.","error":{"type":"tool_not_registered","message":"x"}}"#;
        let v = judge_text(&lines(&[INIT, USER, call, refused, OK]), exit(0));
        assert_eq!(v.class, Class::PermissionDenied, "{v:?}");
        assert_eq!(v.denials, ["run_shell_command: echo hi > out.txt"]);
    }

    const LINES: &[&str] = &[
        INIT,
        USER,
        HI,
        OK,
        FAILED,
        "Ripgrep is not available. Falling back to GrepTool.",
    ];

    proptest! {
        #[test]
        fn reading_in_pieces_changes_nothing(parts in prop::collection::vec(fragment(LINES), 0..8),
                                             buf in 16usize..96) {
            same_in_pieces::<Facts>(&parts.join("\n"), buf)?;
        }
    }
}
