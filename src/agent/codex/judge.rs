//! Decide from a Codex run's log (`codex exec --json`: JSON lines on stdout, text on stderr, in
//! one file) whether the agent really succeeded, in the neutral words of `domain::verdict`.
//!
//! The events: `thread.started{thread_id}`, `turn.started`, `item.started|updated|completed`
//! (`agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`,
//! `web_search`, `todo_list`, `error`), `turn.completed{usage}`, `turn.failed{error:{message}}`
//! and top-level `error{message}`. The answer is the last completed `agent_message`. A top-level
//! `error` is printed for every reconnect ("Reconnecting... 2/5 (…)") as well as before a fatal
//! `turn.failed`; an `error` item is a warning. Codex prints no cost and no turn count.
//!
//! The events decide, not the exit status: Codex has been seen to exit 0 after `turn.failed`, and
//! a logged-out or offline Codex never exits at all (it reconnects for ever; only orch's timeouts
//! end it). The class is the first that applies:
//! 1. `empty` (no bytes) — `timeout` or `stalled` when orch cut the run short;
//! 2. the last turn completed (no `turn.failed` after it): `permission_denied` when a command
//!    was declined, `exit_mismatch` when Codex then exited non-zero by itself, else `ok`;
//! 3. `invocation_error`: no thread started and stderr says Codex refused its command line (an
//!    unknown option, outside a git work tree, a bad `-c` value), or a usage error's exit 2;
//!    a `resume` of a thread Codex does not have is not one: `agent_error`, `resume_failed`;
//! 4. from the failure's text (`turn.failed`, else the last `error` event): `usage_limit` when it
//!    says when the limit resets ("try again at 9:12 AM", read in UTC: orch runs Codex with
//!    TZ=UTC), `auth` (401, an incorrect API key), `rate_limit` (429, quota, a usage limit
//!    without a reset time);
//! 5. `timeout` / `stalled` when orch cut the run short (reconnecting for ever, say);
//! 6. `agent_error` for any other failed turn, else `no_result`.

use std::io::{self, Read};

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use memchr::memmem;
use serde_json::Value;

use crate::agent::jsonl::{fast_type, Keep, Limits, Sink, Summary};
use crate::agent::judging::{
    self, count, excerpt, said, Sign, Signs, Stderr, EXCERPT_CHARS, FIX_NO_PROMPT, FIX_OPTIONS,
    MAX_DENIALS, SNIPPET_CHARS,
};
use crate::domain::verdict::{Class, Ending, RateLimit, Usage, Verdict};

/// Judge a log read from `reader` in one pass with bounded memory.
pub fn judge(reader: impl Read, ending: Ending) -> io::Result<Verdict> {
    judging::read::<Facts>(reader, ending, Limits::DEFAULT)
}

/// What stderr text or a failure's message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Means {
    NotGit,
    BadOption,
    BadConfig,
    NoHome,
    NoPrompt,
    ResumeMissing,
    UsageLimit,
    Auth,
    RateLimit,
}

/// Refusals of the command line and other failures, as Codex 0.171.0 words them (see
/// `/work/research/agents/codex/README.md`).
const SIGNS: &[Sign<Means>] = &[
    Sign {
        phrase: "not inside a trusted directory",
        means: Means::NotGit,
    },
    Sign {
        phrase: "error: unexpected argument",
        means: Means::BadOption,
    },
    Sign {
        phrase: "error: invalid value",
        means: Means::BadOption,
    },
    Sign {
        phrase: "error loading config.toml",
        means: Means::BadConfig,
    },
    Sign {
        phrase: "is no longer supported; remove this setting",
        means: Means::BadConfig,
    },
    Sign {
        phrase: "codex_home points to",
        means: Means::NoHome,
    },
    Sign {
        phrase: "no prompt provided via stdin",
        means: Means::NoPrompt,
    },
    Sign {
        phrase: "no rollout found for thread id",
        means: Means::ResumeMissing,
    },
    Sign {
        phrase: "thread/resume failed",
        means: Means::ResumeMissing,
    },
    Sign {
        phrase: "usage limit",
        means: Means::UsageLimit,
    },
    Sign {
        phrase: "401 unauthorized",
        means: Means::Auth,
    },
    Sign {
        phrase: "incorrect api key",
        means: Means::Auth,
    },
    Sign {
        phrase: "invalid_api_key",
        means: Means::Auth,
    },
    Sign {
        phrase: "429 too many requests",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "quota exceeded",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "insufficient_quota",
        means: Means::RateLimit,
    },
    Sign {
        phrase: "rate limit",
        means: Means::RateLimit,
    },
];

/// The refusals, most specific first.
const REFUSALS: &[Means] = &[
    Means::NotGit,
    Means::NoHome,
    Means::BadConfig,
    Means::NoPrompt,
    Means::BadOption,
];

impl judging::Refusal for Means {
    fn what(self) -> &'static str {
        match self {
            Means::NotGit => "the workdir is not a git work tree",
            Means::BadOption => "an option it does not take",
            Means::BadConfig => "a configuration value it does not accept",
            Means::NoHome => "CODEX_HOME names no directory",
            Means::NoPrompt => "no prompt",
            _ => "its command line",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Means::NotGit => {
                "Codex runs only inside a git work tree: make [projects.{project}] workdir a git \
                 repository, or add \"--skip-git-repo-check\" to [agents.{agent}] extra_args"
            }
            Means::BadConfig => {
                "fix the Codex configuration: a -c override in [agents.{agent}] or \
                 [stages.{stage}] extra_args, or $CODEX_HOME/config.toml of the agent's user"
            }
            Means::NoHome => {
                "CODEX_HOME in [agents.{agent}] env must name an existing directory (the agent's \
                 ~/.codex by default)"
            }
            Means::NoPrompt => FIX_NO_PROMPT,
            _ => FIX_OPTIONS,
        }
    }
}

/// What the judge gathers from a log as the scanner hands it over.
#[derive(Default)]
struct Facts {
    /// Events in order, to tell whether a turn failed after another completed.
    seq: u64,
    thread_id: Option<String>,
    turns: u64,
    completed: Option<(u64, Usage)>,
    failed: Option<(u64, String)>,
    /// The last top-level `error` event's message (a reconnect notice, or the fatal error).
    last_error: Option<String>,
    /// The last completed agent message: the answer.
    answer: Option<String>,
    /// Commands Codex declined to run, as "command", cut short.
    denials: Vec<String>,
    json_events: u64,
    stderr: Stderr<Means>,
    /// The usage limit a failed turn reported, with its reset.
    limit: Option<RateLimit>,
}

impl Sink for Facts {
    fn text_line(&mut self, line: &[u8]) {
        self.stderr.note(SIGNS, line);
    }

    fn object(&mut self, object: &[u8]) -> Keep {
        self.json_events += 1;
        self.seq += 1;
        match fast_type(object) {
            Some(b"turn.started") => self.turns += 1,
            // Progress the verdict does not need: not parsed.
            Some(b"item.started" | b"item.updated") => {}
            Some(b"item.completed") => {
                let worth = [&b"\"agent_message\""[..], b"\"declined\""]
                    .iter()
                    .any(|needle| memmem::find(object, needle).is_some());
                if worth {
                    self.parse(object);
                }
            }
            _ => self.parse(object),
        }
        Keep::No
    }

    fn big_object(&mut self, _prefix: &[u8]) -> Keep {
        // Longer than the object cap: a command's output or a message too large to read; the
        // events that decide are small.
        self.json_events += 1;
        Keep::No
    }
}

impl Facts {
    fn parse(&mut self, object: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(object) else {
            self.text_line(object);
            return;
        };
        let text_at = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match value.get("type").and_then(Value::as_str) {
            Some("thread.started") => self.thread_id = text_at("/thread_id"),
            Some("turn.started") => self.turns += 1,
            Some("turn.completed") => {
                self.completed = Some((self.seq, usage_of(value.get("usage"))));
            }
            Some("turn.failed") => {
                let message = text_at("/error/message").unwrap_or_default();
                self.failed = Some((self.seq, message));
            }
            Some("error") => self.last_error = text_at("/message"),
            Some("item.completed") => {
                let item = value.get("item").unwrap_or(&Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("agent_message") => {
                        self.answer = item.get("text").and_then(Value::as_str).map(str::to_owned);
                    }
                    Some("command_execution")
                        if item.get("status").and_then(Value::as_str) == Some("declined")
                            && self.denials.len() < MAX_DENIALS =>
                    {
                        let command = item.get("command").and_then(Value::as_str).unwrap_or("?");
                        self.denials
                            .push(excerpt(&format!("command: {command}"), SNIPPET_CHARS));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

impl judging::Facts for Facts {
    fn finish(mut self, summary: &Summary, ending: Ending) -> Verdict {
        let mut usage = self
            .completed
            .as_ref()
            .map(|(_, usage)| usage.clone())
            .unwrap_or_default();
        usage.session_id = self.thread_id.clone();
        usage.turns = (self.turns > 0).then_some(self.turns);
        let stderr = std::mem::take(&mut self.stderr.signs);
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
        if matches!(
            class,
            Class::Ok | Class::ExitMismatch | Class::PermissionDenied
        ) {
            verdict.result_excerpt = self.answer.as_deref().map(|a| excerpt(a, EXCERPT_CHARS));
            verdict.result_text = self.answer.take();
        }
        verdict.denials = self.denials;
        verdict
    }
}

impl Facts {
    /// The class of a log that holds something.
    fn decide(&mut self, ending: Ending, stderr: &Signs<Means>) -> (Class, String) {
        let completed = self.completed.as_ref().map(|(seq, _)| *seq);
        let failed = self.failed.as_ref().map(|(seq, _)| *seq);
        if completed.is_some_and(|done| failed.is_none_or(|fail| fail < done)) {
            if !self.denials.is_empty() {
                return (
                    Class::PermissionDenied,
                    judging::denied_reason(&self.denials, "turn"),
                );
            }
            let reason = match self.answer.as_deref().map(said) {
                Some(answer) if !answer.is_empty() => format!("turn completed: {answer}"),
                _ => "turn completed".to_string(),
            };
            return judging::success(ending, reason);
        }
        if self.thread_id.is_none() && self.failed.is_none() {
            if let Some(missed) = judging::resume_missed(stderr.get(Means::ResumeMissing), "thread")
            {
                return missed;
            }
            // clap's usage errors exit 2, whatever their words.
            let usage_error = (ending.exit_code == Some(2) && self.json_events == 0).then(|| {
                format!(
                    "exit 2: {}",
                    self.stderr
                        .lines
                        .first
                        .as_deref()
                        .unwrap_or("a usage error")
                )
            });
            if let Some(refused) = judging::refused("Codex", stderr, REFUSALS, usage_error) {
                return refused;
            }
        }
        // The failure's words: the failed turn's message, else the last error event (the run
        // was cut short while Codex reconnected, say).
        let failure = self
            .failed
            .as_ref()
            .map(|(_, message)| message.as_str())
            .or(self.last_error.as_deref());
        if let Some(message) = failure {
            let mut signs = Signs::default();
            signs.scan(SIGNS, message.as_bytes());
            if signs.get(Means::UsageLimit).is_some() {
                if let Some(resets_at) = ending.at.and_then(|at| reset_time(message, at)) {
                    let limit = judging::rejected(resets_at, "usage");
                    let reason = judging::usage_limit_reason(&limit);
                    self.limit = Some(limit);
                    return (Class::UsageLimit, reason);
                }
            }
            if let Some(text) = signs.get(Means::Auth) {
                return (Class::Auth, format!("not authenticated: {text}"));
            }
            if let Some(text) = signs
                .get(Means::UsageLimit)
                .or_else(|| signs.get(Means::RateLimit))
            {
                return (Class::RateLimit, format!("rate or usage limit: {text}"));
            }
        }
        let after = match (&self.failed, &self.last_error) {
            (Some((_, message)), _) => format!(" after a failed turn ({})", said(message)),
            (None, Some(error)) => format!(" while Codex said: {}", said(error)),
            (None, None) if self.thread_id.is_some() => " before the turn ended".to_string(),
            (None, None) => " with no event from Codex".to_string(),
        };
        if let Some(cut) = judging::cut_short(ending, &after) {
            return cut;
        }
        if let Some((_, message)) = &self.failed {
            return (Class::AgentError, format!("turn failed: {}", said(message)));
        }
        let mut reason = if self.json_events == 0 {
            "no events from Codex".to_string()
        } else {
            "the turn never ended: no turn.completed or turn.failed".to_string()
        };
        reason.push_str(&self.stderr.lines.note_for_reason());
        (Class::NoResult, reason)
    }
}

/// `turn.completed`'s usage: the thread's totals so far (a resumed thread's include the runs
/// before it).
fn usage_of(usage: Option<&Value>) -> Usage {
    let field = |key: &str| count(usage.and_then(|u| u.get(key)));
    Usage {
        input_tokens: field("input_tokens"),
        output_tokens: field("output_tokens"),
        cache_read_tokens: field("cached_input_tokens"),
        cache_write_tokens: field("cache_write_input_tokens"),
        ..Usage::default()
    }
}

/// When a usage limit resets, from Codex's words "… try again at 9:12 AM." (the same day, or the
/// next when that hour has passed at `at`) or "… try again at Dec 2nd, 2026 10:34 AM.", read in
/// UTC (orch runs Codex with TZ=UTC). None when the text says no time.
pub fn reset_time(text: &str, at: i64) -> Option<i64> {
    const MARK: &str = "try again at ";
    let start = text.to_ascii_lowercase().find(MARK)? + MARK.len();
    let words: Vec<&str> = text[start..]
        .split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',']))
        .take(5)
        .collect();
    let time_of = |clock: &str, half: &str| -> Option<NaiveTime> {
        let (hour, minute) = clock.split_once(':')?;
        let (hour, minute): (u32, u32) = (hour.parse().ok()?, minute.parse().ok()?);
        let hour = match (half.to_ascii_uppercase().as_str(), hour) {
            ("AM", 12) => 0,
            ("AM", h @ 1..=11) => h,
            ("PM", 12) => 12,
            ("PM", h @ 1..=11) => h + 12,
            _ => return None,
        };
        NaiveTime::from_hms_opt(hour, minute, 0)
    };
    let at_utc = Utc.timestamp_millis_opt(at).single()?;
    let when = match words.as_slice() {
        [month, day, year, clock, half, ..] if month_number(month).is_some() => {
            let day: u32 = day
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .ok()?;
            let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month_number(month)?, day)?;
            date.and_time(time_of(clock, half)?)
        }
        [clock, half, ..] => {
            let time = time_of(clock, half)?;
            let today = at_utc.date_naive().and_time(time);
            // A time of day already past when the run ended is tomorrow's (a minute's slack for
            // a run that ended just after the message).
            if today.and_utc().timestamp_millis() < at.saturating_sub(60_000) {
                today.checked_add_signed(chrono::Duration::days(1))?
            } else {
                today
            }
        }
        _ => return None,
    };
    Some(when.and_utc().timestamp_millis())
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let name = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| name.starts_with(m))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::judging::testing::{fragment, same_in_pieces};
    use proptest::prelude::*;

    const STARTED: &str =
        r#"{"type":"thread.started","thread_id":"01a226a6-f734-71f2-9455-3ca738347c1b"}"#;
    const TURN: &str = r#"{"type":"turn.started"}"#;
    const MESSAGE: &str = r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"The 401 handler is fixed; Incorrect API key errors now say so."}}"#;
    const DONE: &str = r#"{"type":"turn.completed","usage":{"input_tokens":120,"cached_input_tokens":20,"cache_write_input_tokens":0,"output_tokens":5,"reasoning_output_tokens":0}}"#;
    const FAILED_401: &str = r#"{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: Incorrect API key provided: sk-fake., url: http://127.0.0.1:8461/v1/responses"}}"#;
    const RECONNECT: &str = r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#;
    /// 2026-11-29T09:33:25Z, when the usage-limit captures were made.
    const AT: i64 = 1_795_944_805_000;

    fn lines(parts: &[&str]) -> String {
        parts.iter().map(|p| format!("{p}\n")).collect()
    }

    fn judge_text(text: &str, ending: Ending) -> Verdict {
        judge(text.as_bytes(), ending).unwrap()
    }

    #[test]
    fn a_completed_turn_is_ok_and_its_last_message_the_answer() {
        let v = judge_text(
            &lines(&[STARTED, TURN, MESSAGE, DONE]),
            Ending::new(Some(0), false, false),
        );
        assert_eq!(v.class, Class::Ok, "{v:?}");
        assert_eq!(
            v.result_text.as_deref(),
            Some("The 401 handler is fixed; Incorrect API key errors now say so.")
        );
        assert_eq!(v.usage.input_tokens, Some(120));
        assert_eq!(v.usage.cache_read_tokens, Some(20));
        assert_eq!(v.usage.turns, Some(1));
        assert_eq!(v.usage.cost_usd, None, "Codex reports no cost");
        assert_eq!(
            v.usage.session_id.as_deref(),
            Some("01a226a6-f734-71f2-9455-3ca738347c1b")
        );
        let v = judge_text(
            &lines(&[STARTED, TURN, MESSAGE, DONE]),
            Ending::new(Some(1), false, false),
        );
        assert_eq!(v.class, Class::ExitMismatch);
    }

    #[test]
    fn the_events_decide_not_the_exit_code() {
        let log = lines(&[STARTED, TURN, MESSAGE, FAILED_401]);
        let v = judge_text(&log, Ending::new(Some(0), false, false));
        assert_eq!(v.class, Class::Auth, "{v:?}");
        assert!(!v.reason.contains("sk-fake"), "{}", v.reason);
        // a turn that completed after a failed one (a resumed thread) is the answer
        let log = lines(&[STARTED, TURN, FAILED_401, TURN, MESSAGE, DONE]);
        assert_eq!(judge_text(&log, Ending::default()).class, Class::Ok);
    }

    #[test]
    fn reconnecting_for_ever_ends_by_orchs_timeout() {
        let log = lines(&[STARTED, TURN, RECONNECT, RECONNECT]);
        let v = judge_text(&log, Ending::new(None, true, false));
        assert_eq!(v.class, Class::Timeout, "{v:?}");
        assert!(v.reason.contains("waiting for network"), "{}", v.reason);
        let v = judge_text(&log, Ending::new(None, false, true));
        assert_eq!(v.class, Class::Stalled);
        assert_eq!(
            judge_text(&log, Ending::new(Some(0), false, false)).class,
            Class::NoResult
        );
    }

    #[test]
    fn the_reset_time_is_read_in_utc() {
        let same_day = "You’ve hit your usage limit. Visit https://chatgpt.com/settings/usage to purchase more credits or try again at 12:50 PM.";
        assert_eq!(reset_time(same_day, AT), Some(1_795_956_600_000));
        // 9:12 AM has passed at 09:33: tomorrow's
        let tomorrow = "try again at 9:12 AM.";
        assert_eq!(reset_time(tomorrow, AT), Some(1_796_029_920_000));
        let far = "… or try again at Dec 2nd, 2026 10:34 AM.";
        assert_eq!(reset_time(far, AT), Some(1_796_207_640_000));
        assert_eq!(
            reset_time("try again at 12:00 AM.", AT),
            Some(1_795_996_800_000)
        );
        assert_eq!(reset_time("Try again later.", AT), None);
        assert_eq!(reset_time("try again at 25:00 PM", AT), None);
        assert_eq!(reset_time("try again at Dec 32nd, 2026 1:00 PM", AT), None);
    }

    #[test]
    fn a_usage_limit_without_a_time_or_a_reference_is_a_rate_limit() {
        let limited = r#"{"type":"turn.failed","error":{"message":"You’ve hit your usage limit. Try again later."}}"#;
        let log = lines(&[STARTED, TURN, limited]);
        let ending = Ending::new(Some(1), false, false).at(Some(AT));
        assert_eq!(judge_text(&log, ending).class, Class::RateLimit);
        let timed = r#"{"type":"turn.failed","error":{"message":"You’ve hit your usage limit. … try again at 12:50 PM."}}"#;
        let log = lines(&[STARTED, TURN, timed]);
        let v = judge_text(&log, ending);
        assert_eq!(v.class, Class::UsageLimit, "{v:?}");
        let limit = v.usage.rate_limit.unwrap();
        assert_eq!(limit.resets_at, Some(1_795_956_600_000));
        assert_eq!(limit.status, "rejected");
        assert_eq!(
            judge_text(&log, Ending::new(Some(1), false, false)).class,
            Class::RateLimit
        );
    }

    #[test]
    fn refusals_are_invocation_errors_and_a_missing_thread_is_not() {
        let v = judge_text(
            "Reading additional input from stdin...\nNot inside a trusted directory and --skip-git-repo-check was not specified.\n",
            Ending::new(Some(1), false, false),
        );
        assert_eq!(v.class, Class::InvocationError, "{v:?}");
        assert!(v.fix.as_deref().unwrap().contains("--skip-git-repo-check"));
        let v = judge_text(
            "error: something clap never said\n\nUsage: codex exec [OPTIONS] [PROMPT]\n",
            Ending::new(Some(2), false, false),
        );
        assert_eq!(v.class, Class::InvocationError, "{v:?}");
        let v = judge_text(
            "Error: thread/resume: thread/resume failed: no rollout found for thread id 3b56622a-4b2b-4d4d-86bc-056cd0d5f0d7 (code -32600)\n",
            Ending::new(Some(1), false, false),
        );
        assert_eq!(v.class, Class::AgentError, "{v:?}");
        assert!(v.resume_failed);
        assert_eq!(v.fix, None);
    }

    #[test]
    fn a_declined_command_is_a_denial() {
        let declined = r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"rm -rf build","aggregated_output":"","exit_code":null,"status":"declined"}}"#;
        let v = judge_text(
            &lines(&[STARTED, TURN, declined, MESSAGE, DONE]),
            Ending::default(),
        );
        assert_eq!(v.class, Class::PermissionDenied, "{v:?}");
        assert_eq!(v.denials, ["command: rm -rf build"]);
    }

    const LINES: &[&str] = &[
        STARTED,
        TURN,
        MESSAGE,
        DONE,
        FAILED_401,
        RECONNECT,
        "Reading additional input from stdin...",
    ];

    proptest! {
        #[test]
        fn reading_in_pieces_changes_nothing(parts in prop::collection::vec(fragment(LINES), 0..8),
                                             buf in 16usize..96) {
            same_in_pieces::<Facts>(&parts.join("\n"), buf)?;
        }

        #[test]
        fn the_last_turn_decides(parts in prop::collection::vec(fragment(LINES), 0..8)) {
            let text = format!("{}\n{TURN}\n{DONE}\n", parts.join("\n"));
            prop_assert_eq!(judge_text(&text, Ending::default()).class, Class::Ok);
        }
    }
}
