//! Decide from a Claude Code run's log alone whether the agent really succeeded, in the neutral
//! words of `domain::verdict`.
//!
//! Claude Code writes one of three shapes: `--output-format json` prints one result object (with
//! `--verbose`, a JSON array of every message, the result last); `stream-json` prints JSON lines
//! whose last `type == "result"` object is the verdict, possibly followed by informational lines.
//! A log may also hold stderr text, CRLF line ends and a last line cut short. `agent::jsonl` reads
//! every shape and any mix of them the same way, in one pass with bounded memory; here a line
//! goes by after a glance at its first bytes, and only an object whose top level could be
//! `"type":"result"` (or a small informational one) is handed to serde_json.
//!
//! Auth and limit markers count only in failure text, never in the agent's conversation: an
//! `is_error` result's text and `errors`, lines that are not JSON, and — when there is no result —
//! the informational JSON lines, lines cut short, and an assistant message the CLI flagged as an
//! API error. See [`judge`] for the order in which a class is chosen.

use std::io::{self, Read};

use memchr::memmem;
use serde_json::Value;

use crate::agent::jsonl::{self, fast_type, Keep, Limits, Sink, Summary, TypeToken};
use crate::agent::judging::{
    self, count, denied_reason, excerpt, model_names, one_line, snippet, Sign, Signs, TextLines,
    EXCERPT_CHARS, FIX_NO_PROMPT, FIX_OPTIONS, MAX_DENIALS, SNIPPET_CHARS,
};
use crate::domain::verdict::{Class, Ending, RateLimit, Usage, Verdict};

/// Judge a log read from `reader` (a file, stdin, a byte slice) in one pass with bounded memory.
///
/// `exit_code` is the agent's exit status when known; `timed_out` says orch ended the run. The
/// class is the first that applies:
/// 1. `empty` (no bytes, or whitespace only) — `timeout` or `stalled` instead when orch cut the
///    run short;
/// 2. a success result (`subtype` success, `is_error` false): `permission_denied` if its
///    `permission_denials` is not empty (the agent was refused tools it needed), else
///    `exit_mismatch` if `exit_code` is given and non-zero (ignored when the run was cut short:
///    the status is then the kill's), else `ok`;
/// 3. otherwise `max_budget` from the result's subtype, then `permission_denied` for a failed
///    result with denials (a turn limit reached asking for denied tools again and again), then
///    `max_turns`, then `auth`, then `usage_limit` when a `rate_limit_event` rejected the run and said
///    when the limit resets, then `rate_limit` from failure text and structured fields
///    (`api_error_status`, `error_status`, an assistant message's `error`, a rejected
///    `rate_limit_event` without a reset time), then `timeout` / `stalled` if orch cut the run
///    short, then `agent_error` for any other failed result, else `no_result`.
pub fn judge(reader: impl Read, ending: Ending) -> io::Result<Verdict> {
    judge_with(reader, ending, LIMITS)
}

/// Whether text says the agent is not authenticated ("Not logged in · Please run /login",
/// "Invalid API key", "OAuth token has expired", an `authentication_error`, …). Case-insensitive.
pub fn is_auth_failure_text(text: &str) -> bool {
    find_auth(text.to_ascii_lowercase().as_bytes()).is_some()
}

/// Whether text says the agent hit a usage or rate limit or the API was overloaded (including a
/// bare HTTP status 429 or 529). Case-insensitive.
pub fn is_rate_limit_text(text: &str) -> bool {
    find_limit(text.to_ascii_lowercase().as_bytes(), true).is_some()
}

const AUTH_MARKERS: &[&str] = &[
    "not logged in",
    "invalid api key",
    "missing api key",
    "run /login",
    "authentication_error",
    "authentication_failed",
    "failed to authenticate",
    "oauth token has expired",
    "api error: 401",
];

const LIMIT_MARKERS: &[&str] = &[
    "usage limit",
    "rate_limit_error",
    "overloaded_error",
    "weekly limit",
];

/// HTTP statuses that count as limits when they stand alone in failure text.
const LIMIT_STATUSES: &[&str] = &["429", "529"];

/// Informational JSON lines up to this size are parsed for structured evidence.
const SIDE_MAX: usize = 64 << 10;
/// The last assistant message is kept (to read its API-error flag) up to `SIDE_MAX`.
const LIMITS: Limits = Limits {
    keep_max: SIDE_MAX,
    ..Limits::DEFAULT
};

fn judge_with(reader: impl Read, ending: Ending, limits: Limits) -> io::Result<Verdict> {
    let mut facts = Facts::new();
    let summary = jsonl::scan(reader, &mut facts, limits)?;
    Ok(facts.finish(&summary, limits, ending))
}

/// What Claude Code prints when `--resume` names a session it does not have.
const NO_CONVERSATION: &str = "no conversation found";
/// What Claude Code 2.1.197 prints when `--resume` names no session at all (it exits 1 with an
/// error result): a miss like the other, not a refused command line.
const RESUME_INVALID: &str = "--resume requires a valid session id";

/// Whether lower-cased text says the session to resume is not there.
fn resume_missed(lower: &[u8]) -> bool {
    [NO_CONVERSATION, RESUME_INVALID]
        .iter()
        .any(|miss| memmem::find(lower, miss.as_bytes()).is_some())
}

/// Why Claude Code refused its command line, from the one line it prints on stderr before it
/// exits 1 (see `/work/research/agents/claude/README.md`, "Command-line refusals").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// `error: unknown option '--frobnicate'`, an option's value not among its choices, a bad
    /// number.
    Option,
    /// `--output-format stream-json` without `--verbose`.
    Verbose,
    /// `--dangerously-skip-permissions` or `--permission-mode bypassPermissions` as root without
    /// IS_SANDBOX=1.
    Root,
    /// No prompt reached it (`Input must be provided …`, or a variadic option swallowed it).
    NoPrompt,
    /// `--session-id` that is not a UUID, or one already used.
    SessionId,
}

const REFUSALS: &[Sign<Refusal>] = &[
    Sign {
        phrase: "error: unknown option",
        means: Refusal::Option,
    },
    Sign {
        phrase: "is invalid. allowed choices are",
        means: Refusal::Option,
    },
    Sign {
        phrase: "must be a positive number",
        means: Refusal::Option,
    },
    Sign {
        phrase: "requires --verbose",
        means: Refusal::Verbose,
    },
    Sign {
        phrase: "cannot be used with root/sudo privileges",
        means: Refusal::Root,
    },
    Sign {
        phrase: "input must be provided either through stdin or as a prompt argument",
        means: Refusal::NoPrompt,
    },
    Sign {
        phrase: "invalid session id",
        means: Refusal::SessionId,
    },
    Sign {
        phrase: "is already in use",
        means: Refusal::SessionId,
    },
];

/// The refusal reported when a log shows several: the most specific first.
const REFUSAL_ORDER: &[Refusal] = &[
    Refusal::Root,
    Refusal::Verbose,
    Refusal::SessionId,
    Refusal::NoPrompt,
    Refusal::Option,
];

impl judging::Refusal for Refusal {
    fn what(self) -> &'static str {
        match self {
            Refusal::Option => "an option it does not take",
            Refusal::Verbose => "stream-json output needs --verbose",
            Refusal::Root => "bypassing permissions as root",
            Refusal::NoPrompt => "no prompt",
            Refusal::SessionId => "a session id it does not accept",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Refusal::Option => FIX_OPTIONS,
            Refusal::Verbose => {
                "[agents.{agent}] argv must keep \"--verbose\" with \"--output-format\" \
                 \"stream-json\" (or drop argv to use orch's)"
            }
            Refusal::Root => {
                "as root, Claude Code refuses [stages.{stage}] permission_mode \
                 bypassPermissions: in a sandbox set IS_SANDBOX = \"1\" in [agents.{agent}.env], \
                 else choose another mode or run orch as another user"
            }
            Refusal::NoPrompt => FIX_NO_PROMPT,
            Refusal::SessionId => {
                "remove --session-id from [agents.{agent}] and [stages.{stage}] extra_args: orch \
                 starts and resumes sessions itself"
            }
        }
    }
}

/// A `rate_limit_event`'s `rate_limit_info` (or the event itself, in older lines) as the neutral
/// report; `resetsAt` is in Unix seconds.
fn rate_limit_of(value: &Value) -> Option<RateLimit> {
    let info = value.get("rate_limit_info").unwrap_or(value);
    let status = info.get("status").and_then(Value::as_str)?.to_string();
    let resets_at = info
        .get("resetsAt")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .map(|s| s.saturating_mul(1000));
    Some(RateLimit {
        status,
        resets_at,
        limit_type: info
            .get("rateLimitType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        utilization: info
            .get("utilization")
            .and_then(Value::as_f64)
            .filter(|u| u.is_finite()),
    })
}

/// A result's `permission_denials` as "Tool: input" lines, each cut short (the input is the
/// agent's, so it is masked and clipped like any failure text).
fn denials_of(value: &Value) -> Vec<String> {
    value
        .get("permission_denials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_DENIALS)
        .map(|denial| {
            let tool = denial
                .get("tool_name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let input = denial
                .get("tool_input")
                .map(|input| match input {
                    Value::Object(map) => map
                        .get("command")
                        .or_else(|| map.get("file_path"))
                        .and_then(Value::as_str)
                        .map_or_else(|| input.to_string(), str::to_owned),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            excerpt(&one_line(&format!("{tool}: {input}")), SNIPPET_CHARS)
        })
        .collect()
}

/// First-found marker snippets from one kind of failure text.
#[derive(Debug, Default, Clone)]
struct Evidence {
    auth: Option<String>,
    limit: Option<String>,
}

impl Evidence {
    /// Search `text` for markers; `statuses` also counts bare 429/529.
    fn text(&mut self, text: &[u8], statuses: bool, lower: &mut Vec<u8>) {
        if self.auth.is_some() && self.limit.is_some() {
            return;
        }
        lower.clear();
        lower.extend(text.iter().map(u8::to_ascii_lowercase));
        if self.auth.is_none() {
            if let Some(at) = find_auth(lower) {
                self.auth = Some(snippet(text, at));
            }
        }
        if self.limit.is_none() {
            if let Some(at) = find_limit(lower, statuses) {
                self.limit = Some(snippet(text, at));
            }
        }
    }

    /// An HTTP status from a structured field.
    fn status(&mut self, status: u64, field: &str) {
        match status {
            401 if self.auth.is_none() => self.auth = Some(format!("{field} {status}")),
            429 | 529 if self.limit.is_none() => self.limit = Some(format!("{field} {status}")),
            _ => {}
        }
    }

    fn merge(&mut self, other: &Evidence) {
        if self.auth.is_none() {
            self.auth.clone_from(&other.auth);
        }
        if self.limit.is_none() {
            self.limit.clone_from(&other.limit);
        }
    }
}

fn find_marker_bytes(lower: &[u8], markers: &[&str]) -> Option<usize> {
    markers
        .iter()
        .filter_map(|marker| memmem::find(lower, marker.as_bytes()))
        .min()
}

/// Auth markers in lower-cased text, each ending at a word's end: an auth class stops every run
/// of the agent, so "not logged into GitHub" must not pass for "not logged in".
fn find_auth(lower: &[u8]) -> Option<usize> {
    AUTH_MARKERS
        .iter()
        .filter_map(|marker| {
            memmem::find_iter(lower, marker.as_bytes()).find(|&at| {
                let after = lower.get(at + marker.len());
                !after.is_some_and(|b| b.is_ascii_alphanumeric())
            })
        })
        .min()
}

/// Limit markers in lower-cased text: the fixed phrases, "hit your … limit" (Claude Code says
/// "You've hit your limit" and "You've hit your weekly limit"), and with `statuses` a 429 or 529
/// that is not part of a longer number or word.
fn find_limit(lower: &[u8], statuses: bool) -> Option<usize> {
    let mut found = find_marker_bytes(lower, LIMIT_MARKERS);
    for at in memmem::find_iter(lower, b"hit your") {
        let window = &lower[at..lower.len().min(at + 40)];
        if memmem::find(window, b"limit").is_some() {
            found = Some(found.map_or(at, |f| f.min(at)));
            break;
        }
    }
    if statuses {
        for status in LIMIT_STATUSES {
            let standalone = memmem::find_iter(lower, status.as_bytes()).find(|&at| {
                let before = at.checked_sub(1).map(|i| lower[i]);
                let after = lower.get(at + status.len()).copied();
                !before.is_some_and(|b| b.is_ascii_alphanumeric())
                    && !after.is_some_and(|b| b.is_ascii_alphanumeric())
            });
            if let Some(at) = standalone {
                found = Some(found.map_or(at, |f| f.min(at)));
            }
        }
    }
    found
}

/// The facts taken from one result object.
#[derive(Debug, Clone)]
struct ResultFacts {
    subtype: Option<String>,
    /// Why the session ended (Claude Code 2.1.332: `completed`, `max_turns`, `api_error`,
    /// `budget_exhausted`, …).
    terminal_reason: Option<String>,
    is_error: Option<bool>,
    failed: bool,
    excerpt: Option<String>,
    text: Option<String>,
    evidence: Evidence,
    usage: Usage,
    denials: Vec<String>,
    no_conversation: bool,
}

impl ResultFacts {
    fn from_value(value: &Value, lower: &mut Vec<u8>) -> ResultFacts {
        let subtype = value
            .get("subtype")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let is_error = value.get("is_error").and_then(Value::as_bool);
        // Claude Code's result always says both; one that says neither is another agent's (a
        // Gemini `result` with `status: "error"`), and no success of Claude Code's.
        let failed = is_error.unwrap_or(false)
            || subtype.as_deref().is_some_and(|s| s != "success")
            || (subtype.is_none() && is_error.is_none());
        let text = value.get("result").and_then(Value::as_str);
        let mut evidence = Evidence::default();
        if failed {
            if let Some(text) = text {
                evidence.text(text.as_bytes(), true, lower);
            }
            if let Some(errors) = value.get("errors").and_then(Value::as_array) {
                for error in errors {
                    match error.as_str() {
                        Some(text) => evidence.text(text.as_bytes(), true, lower),
                        None => evidence.text(error.to_string().as_bytes(), true, lower),
                    }
                }
            }
            if let Some(status) = value.get("api_error_status").and_then(Value::as_u64) {
                evidence.status(status, "api_error_status");
            }
        }
        let no_conversation = failed
            && [text.map(str::to_owned)]
                .into_iter()
                .flatten()
                .chain(
                    value
                        .get("errors")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str().map(str::to_owned)),
                )
                .any(|t| resume_missed(t.to_ascii_lowercase().as_bytes()));
        ResultFacts {
            terminal_reason: value
                .get("terminal_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            excerpt: text.map(|t| excerpt(t, EXCERPT_CHARS)),
            text: text.map(str::to_owned),
            usage: usage_of(value),
            denials: denials_of(value),
            no_conversation,
            subtype,
            is_error,
            failed,
            evidence,
        }
    }

    /// The first line of failure text worth showing: the result text, else the first error.
    fn failure_line(&self) -> Option<String> {
        self.excerpt
            .as_deref()
            .map(one_line)
            .filter(|line| !line.is_empty())
            .map(|line| excerpt(&line, SNIPPET_CHARS))
    }
}

fn usage_of(result: &Value) -> Usage {
    let tokens = result.get("usage");
    let models = result.get("modelUsage").and_then(Value::as_object);
    let per_model = |key: &str| -> Option<u64> {
        let models = models?;
        let counts: Vec<u64> = models.values().filter_map(|m| count(m.get(key))).collect();
        (!counts.is_empty()).then(|| counts.iter().sum())
    };
    let field = |usage_key: &str, model_key: &str| {
        count(tokens.and_then(|u| u.get(usage_key))).or_else(|| per_model(model_key))
    };
    let cost = dollars(result.get("total_cost_usd")).or_else(|| {
        let costs: Vec<f64> = models?
            .values()
            .filter_map(|m| dollars(m.get("costUSD")))
            .collect();
        (!costs.is_empty()).then(|| costs.iter().sum())
    });
    Usage {
        cost_usd: cost,
        input_tokens: field("input_tokens", "inputTokens"),
        output_tokens: field("output_tokens", "outputTokens"),
        cache_read_tokens: field("cache_read_input_tokens", "cacheReadInputTokens"),
        cache_write_tokens: field("cache_creation_input_tokens", "cacheCreationInputTokens"),
        turns: count(result.get("num_turns")),
        duration_ms: count(result.get("duration_ms")),
        duration_api_ms: count(result.get("duration_api_ms")),
        session_id: result
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        models: models.map_or_else(Vec::new, |m| model_names(m.keys().map(String::as_str))),
        ..Usage::default()
    }
}

/// A run's cost in dollars as the log states it; a value no run can cost (negative, not finite,
/// or past `MAX_RUN_COST_USD`) is unknown rather than counted: a steered agent must not drive the
/// cost counters down or through the roof.
fn dollars(value: Option<&Value>) -> Option<f64> {
    value
        .and_then(Value::as_f64)
        .filter(|usd| usd.is_finite() && (0.0..=MAX_RUN_COST_USD).contains(usd))
}

/// No single run costs more than this; a larger figure in a log is nonsense.
const MAX_RUN_COST_USD: f64 = 100_000.0;

fn is_conversation(kind: &[u8]) -> bool {
    matches!(kind, b"assistant" | b"user" | b"stream_event")
}

/// How the last result object was lost, for the reason of a `no_result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    CutShort,
    TooLarge,
}

/// What the judge gathers from a log as the scanner hands it over.
struct Facts {
    result_token: TypeToken,
    result: Option<ResultFacts>,
    /// A result object that could not be read, seen after the last readable one.
    lost_result: Option<Lost>,
    /// Marker evidence from lines that are not JSON (failure text whatever the result).
    noise: Evidence,
    /// Evidence from informational JSON lines, broken lines and flagged assistant messages since
    /// the last conversation message (failure text only when there is no result).
    side: Evidence,
    text: TextLines,
    /// Text lines (stderr) saying the CLI refused its command line.
    refusal: Signs<Refusal>,
    init_session: Option<String>,
    init_model: Option<String>,
    /// The last `rate_limit_event` of the run (a refusal or a warning).
    rate_limit: Option<RateLimit>,
    /// Text lines (stderr) said the session to resume does not exist.
    no_conversation: bool,
    lower: Vec<u8>,
}

/// The scanner keeps the last assistant message (when small) for the judge to read an API-error
/// flag from if no result comes.
impl Sink for Facts {
    fn text_line(&mut self, line: &[u8]) {
        self.text.note(line);
        self.refusal.scan(REFUSALS, line);
        self.noise.text(line, true, &mut self.lower);
        if !self.no_conversation {
            let lower = line.to_ascii_lowercase();
            self.no_conversation = resume_missed(&lower);
        }
    }

    fn object(&mut self, object: &[u8]) -> Keep {
        let kind = fast_type(object);
        match kind {
            Some(b"assistant") => {
                self.conversation();
                return Keep::This;
            }
            Some(kind) if is_conversation(kind) => {
                self.conversation();
                return Keep::No;
            }
            Some(b"result") => return self.parse(object),
            _ => {}
        }
        if object.len() <= SIDE_MAX || self.result_token.found_in(object) {
            self.parse(object)
        } else {
            // Too big to be informational; if its type is unknown it may be conversation.
            if kind.is_some() {
                self.side_text(object);
            }
            Keep::No
        }
    }

    fn big_object(&mut self, prefix: &[u8]) -> Keep {
        match fast_type(prefix) {
            Some(kind) if is_conversation(kind) => {
                self.conversation();
                if kind == b"assistant" {
                    return Keep::This;
                }
            }
            kind => {
                if kind == Some(b"result") || self.result_token.found_in(prefix) {
                    self.lost_result = Some(Lost::TooLarge);
                }
                if kind.is_some() {
                    self.side_text(prefix);
                }
            }
        }
        Keep::No
    }

    /// An object that does not parse: a line cut short, or text that only looks like JSON.
    fn broken_object(&mut self, object: &[u8]) {
        match fast_type(object) {
            Some(kind) if is_conversation(kind) => self.conversation(),
            kind => {
                if kind == Some(b"result") || self.result_token.found_in(object) {
                    self.lost_result = Some(Lost::CutShort);
                }
                self.side_text(object);
            }
        }
    }

    fn trailing_text(&mut self, text: &[u8]) {
        self.side_text(text);
    }
}

impl Facts {
    fn new() -> Facts {
        Facts {
            result_token: TypeToken::new("result"),
            result: None,
            lost_result: None,
            noise: Evidence::default(),
            side: Evidence::default(),
            text: TextLines::default(),
            refusal: Signs::default(),
            init_session: None,
            init_model: None,
            rate_limit: None,
            no_conversation: false,
            lower: Vec::new(),
        }
    }

    fn parse(&mut self, object: &[u8]) -> Keep {
        match serde_json::from_slice::<Value>(object) {
            Ok(value) => self.value(&value, object),
            Err(_) => {
                self.broken_object(object);
                Keep::No
            }
        }
    }

    fn value(&mut self, value: &Value, raw: &[u8]) -> Keep {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "result" => {
                self.result = Some(ResultFacts::from_value(value, &mut self.lower));
                self.lost_result = None;
                return Keep::No;
            }
            "assistant" => {
                self.conversation();
                return Keep::This;
            }
            _ if is_conversation(kind.as_bytes()) => {
                self.conversation();
                return Keep::No;
            }
            "system" if value.get("subtype").and_then(Value::as_str) == Some("init") => {
                self.init_session = value
                    .get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.init_model = value
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                return Keep::No;
            }
            _ => {}
        }
        structured_evidence(value, &mut self.side);
        if kind == "rate_limit_event" {
            let report = rate_limit_of(value);
            if report.as_ref().is_some_and(|r| r.status == "rejected") && self.side.limit.is_none()
            {
                self.side.limit = Some("rate_limit_event: status rejected".into());
            }
            if report.is_some() {
                self.rate_limit = report;
            }
            return Keep::No;
        }
        self.side_text(raw);
        Keep::No
    }

    /// The conversation went on: what informational lines said before it no longer explains a
    /// missing result (a 529 retried early in a long run, an MCP server that failed to start).
    fn conversation(&mut self) {
        if self.side.auth.is_some() || self.side.limit.is_some() {
            self.side = Evidence::default();
        }
    }

    fn side_text(&mut self, text: &[u8]) {
        let text = &text[..text.len().min(SIDE_MAX)];
        self.side.text(text, false, &mut self.lower);
    }

    /// The API-error flag of the last assistant message (Claude Code marks the synthetic message
    /// it prints for a failed API call with `error`, e.g. "authentication_failed", "rate_limit").
    fn flagged_assistant(&mut self, last_assistant: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(last_assistant) else {
            return;
        };
        let Some(flag) = value.get("error").filter(|e| !e.is_null()) else {
            return;
        };
        match flag.as_str() {
            Some("authentication_failed") if self.side.auth.is_none() => {
                self.side.auth = Some("assistant message error: authentication_failed".into());
            }
            Some("rate_limit") if self.side.limit.is_none() => {
                self.side.limit = Some("assistant message error: rate_limit".into());
            }
            _ => {}
        }
        structured_evidence(&value, &mut self.side);
        let texts = value
            .pointer("/message/content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|block| block.get("text").and_then(Value::as_str));
        for text in texts {
            self.side.text(text.as_bytes(), true, &mut self.lower);
        }
    }

    fn finish(mut self, summary: &Summary, limits: Limits, ending: Ending) -> Verdict {
        let result = self.result.take();
        let mut usage = result.as_ref().map(|r| r.usage.clone()).unwrap_or_default();
        if usage.session_id.is_none() {
            usage.session_id = self.init_session.take();
        }
        if result.is_none() {
            usage.models.extend(self.init_model.take());
        }
        usage.rate_limit = self.rate_limit.clone();
        let (class, reason) = self.decide(result.as_ref(), summary, limits, ending);
        let resume_failed =
            self.no_conversation || result.as_ref().is_some_and(|r| r.no_conversation);
        let fix = (class == Class::InvocationError)
            .then(|| judging::refusal_fix(&self.refusal, REFUSAL_ORDER));
        let mut verdict = judging::verdict(class, reason, ending, usage);
        if let Some(result) = result {
            verdict.subtype = result.subtype;
            verdict.is_error = result.is_error;
            verdict.result_excerpt = result.excerpt;
            verdict.denials = result.denials;
            verdict.result_text = result.text;
        }
        verdict.resume_failed = resume_failed;
        verdict.fix = fix;
        verdict
    }

    fn decide(
        &mut self,
        result: Option<&ResultFacts>,
        summary: &Summary,
        limits: Limits,
        ending: Ending,
    ) -> (Class, String) {
        if let Some(blank) = judging::blank(summary, ending) {
            return blank;
        }
        if let Some(result) = result.filter(|r| !r.failed) {
            if !result.denials.is_empty() {
                return (
                    Class::PermissionDenied,
                    denied_reason(&result.denials, "success result"),
                );
            }
            if ending.cut.is_none() && ending.exit_code.is_none_or(|code| code == 0) {
                return (Class::Ok, success_reason(result));
            }
            return judging::success(ending, "success result".into());
        }
        // The CLI refused its command line before it started a session: stderr text only, no
        // result (a `--resume` miss prints a result, and is `resume_failed`).
        if result.is_none() && self.init_session.is_none() && !self.no_conversation {
            if let Some(refused) =
                judging::refused("Claude Code", &self.refusal, REFUSAL_ORDER, None)
            {
                return refused;
            }
        }
        let mut evidence = Evidence::default();
        match result {
            Some(result) => evidence.merge(&result.evidence),
            None => {
                if !summary.kept.is_empty() {
                    self.flagged_assistant(&summary.kept);
                }
                evidence.merge(&self.side);
            }
        }
        evidence.merge(&self.noise);
        if let Some(result) = result {
            // The budget is spent whatever else happened; denied tools explain a turn limit
            // reached asking for them again and again, and another attempt would be denied the
            // same.
            let subtype = result.subtype.as_deref();
            let terminal = result.terminal_reason.as_deref();
            if subtype == Some("error_max_budget_usd") || terminal == Some("budget_exhausted") {
                let at = result.usage.cost_usd.map(|c| format!(" at ${c:.4}"));
                return (
                    Class::MaxBudget,
                    format!(
                        "the agent hit its budget limit{} (error_max_budget_usd)",
                        at.unwrap_or_default()
                    ),
                );
            }
            if !result.denials.is_empty() {
                return (
                    Class::PermissionDenied,
                    denied_reason(&result.denials, "error result"),
                );
            }
            if subtype == Some("error_max_turns") || terminal == Some("max_turns") {
                let after = result.usage.turns.map(|t| format!(" after {t} turns"));
                return (
                    Class::MaxTurns,
                    format!(
                        "the agent hit its turn limit{} (error_max_turns)",
                        after.unwrap_or_default()
                    ),
                );
            }
        }
        if let Some(found) = evidence.auth {
            return (Class::Auth, format!("not authenticated: {found}"));
        }
        let refused = self
            .rate_limit
            .as_ref()
            .filter(|r| r.status == "rejected" && r.resets_at.is_some());
        if let Some(limit) = refused {
            return (Class::UsageLimit, judging::usage_limit_reason(limit));
        }
        if let Some(found) = evidence.limit {
            return (Class::RateLimit, format!("rate or usage limit: {found}"));
        }
        let after = match result {
            Some(r) => format!(" after an error result ({})", error_summary(r)),
            None => " with no result object".into(),
        };
        if let Some(cut) = judging::cut_short(ending, &after) {
            return cut;
        }
        match result {
            Some(result) => (
                Class::AgentError,
                format!("error result: {}", error_summary(result)),
            ),
            None => (Class::NoResult, self.no_result_reason(summary, limits)),
        }
    }

    fn no_result_reason(&self, summary: &Summary, limits: Limits) -> String {
        let mut reason = match self.lost_result {
            Some(Lost::CutShort) => {
                "no result object: the result is cut short or malformed".to_string()
            }
            Some(Lost::TooLarge) => format!(
                "no result object: the result is larger than {} MiB",
                limits.object_cap >> 20
            ),
            None if summary.ended_inside_value => {
                "no result object; the log ends inside a JSON value".to_string()
            }
            None => "output but no result object".to_string(),
        };
        reason.push_str(&self.text.note_for_reason());
        reason
    }
}

fn success_reason(result: &ResultFacts) -> String {
    match result.failure_line() {
        Some(line) => format!("success result: {line}"),
        None => "success result".to_string(),
    }
}

fn error_summary(result: &ResultFacts) -> String {
    let subtype = result.subtype.as_deref().unwrap_or("no subtype");
    let flag = if result.is_error == Some(true) {
        ", is_error"
    } else {
        ""
    };
    match result.failure_line() {
        Some(line) => format!("{subtype}{flag}: {line}"),
        None => format!("{subtype}{flag}"),
    }
}

/// HTTP statuses and error types the CLI reports in fields of its own.
fn structured_evidence(value: &Value, evidence: &mut Evidence) {
    for field in ["api_error_status", "error_status"] {
        if let Some(status) = value.get(field).and_then(Value::as_u64) {
            evidence.status(status, field);
        }
    }
    let error_type = value
        .pointer("/error/type")
        .and_then(Value::as_str)
        .or_else(|| value.get("error").and_then(Value::as_str));
    match error_type {
        Some("authentication_error" | "authentication_failed") if evidence.auth.is_none() => {
            evidence.auth = Some(format!("error {}", error_type.unwrap_or_default()));
        }
        Some("rate_limit_error" | "overloaded_error" | "rate_limit")
            if evidence.limit.is_none() =>
        {
            evidence.limit = Some(format!("error {}", error_type.unwrap_or_default()));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::jsonl::Trickle;
    use crate::exit;
    use proptest::prelude::*;

    fn judge_bytes(bytes: &[u8]) -> Verdict {
        judge(bytes, Ending::default()).unwrap()
    }

    fn end(exit_code: Option<i32>, timed_out: bool) -> Ending {
        Ending::new(exit_code, timed_out, false)
    }

    fn judge_small(bytes: &[u8], buf: usize) -> Verdict {
        let limits = Limits { buf, ..LIMITS };
        judge_with(
            Trickle {
                data: bytes,
                step: 7,
            },
            Ending::default(),
            limits,
        )
        .unwrap()
    }

    const INIT: &str = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","model":"claude-sonnet-4-5","tools":["Bash"]}"#;
    const TALK: &str = r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"The unauthorized handler returns 401; Not logged in users see /login. HTTP 429 too."}]},"session_id":"s-1"}"#;
    const OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1234,"duration_api_ms":1000,"num_turns":2,"result":"Done.","session_id":"s-1","total_cost_usd":0.0123,"usage":{"input_tokens":120,"output_tokens":30,"cache_creation_input_tokens":500,"cache_read_input_tokens":2000},"modelUsage":{"claude-sonnet-4-5":{"inputTokens":120,"outputTokens":30,"cacheReadInputTokens":2000,"cacheCreationInputTokens":500,"costUSD":0.0123}}}"#;
    const LOGGED_OUT: &str = r#"{"type":"result","subtype":"success","is_error":true,"duration_ms":80,"num_turns":1,"result":"Not logged in · Please run /login","session_id":"s-2","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"modelUsage":{}}"#;

    fn lines(parts: &[&str]) -> String {
        parts.iter().map(|p| format!("{p}\n")).collect()
    }

    #[test]
    fn success_transcript_full_of_auth_words_is_ok() {
        let v = judge_bytes(lines(&[INIT, TALK, TALK, OK]).as_bytes());
        assert_eq!(v.class, Class::Ok, "{v:?}");
        assert_eq!(v.usage.cost_usd, Some(0.0123));
        assert_eq!(v.usage.cache_write_tokens, Some(500));
        assert_eq!(v.usage.cache_read_tokens, Some(2000));
        assert_eq!(v.usage.turns, Some(2));
        assert_eq!(v.usage.models, vec!["claude-sonnet-4-5".to_string()]);
        assert_eq!(v.result_excerpt.as_deref(), Some("Done."));
        assert_eq!(v.result_text.as_deref(), Some("Done."));
    }

    #[test]
    fn a_result_that_is_not_claude_codes_is_no_success() {
        // Gemini's closing event, judged by Claude Code's rules (validate-log without --agent).
        let gemini = r#"{"type":"result","timestamp":"2026-11-29T10:00:00Z","status":"error","error":{"type":"Error","message":"[API Error: 500]"},"stats":{"total_tokens":0}}"#;
        for code in [Some(0), Some(1)] {
            let v = judge(lines(&[gemini]).as_bytes(), end(code, false)).unwrap();
            assert_ne!(v.class, Class::Ok, "{v:?}");
        }
    }

    #[test]
    fn logged_out_result_is_auth_whatever_the_exit_code() {
        for code in [None, Some(0), Some(1)] {
            let v = judge(lines(&[INIT, LOGGED_OUT]).as_bytes(), end(code, false)).unwrap();
            assert_eq!(v.class, Class::Auth, "{v:?}");
            assert_eq!(v.exit_status(), exit::RUN_AUTH);
        }
    }

    #[test]
    fn markers_in_text_of_any_case_and_dash() {
        assert!(is_auth_failure_text("Invalid API key - Please run /login"));
        assert!(is_auth_failure_text("MISSING API KEY · RUN /LOGIN"));
        assert!(is_auth_failure_text(
            r#"Failed to authenticate. API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired."}}"#
        ));
        assert!(!is_auth_failure_text(
            "edited the unauthorized handler; 401 everywhere"
        ));
        assert!(!is_auth_failure_text(
            "gh: You are not logged into any GitHub hosts"
        ));
        assert!(is_rate_limit_text(
            "You've hit your limit · resets 1pm (Europe/Lisbon)"
        ));
        assert!(is_rate_limit_text("You've hit your weekly limit"));
        assert!(is_rate_limit_text("API Error: 529 overloaded"));
        assert!(!is_rate_limit_text("port 14290 and id a429b"));
    }

    #[test]
    fn result_then_informational_lines() {
        let rate = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#;
        let v = judge_bytes(lines(&[INIT, OK, rate, INIT]).as_bytes());
        assert_eq!(v.class, Class::Ok);
    }

    #[test]
    fn verbose_array_and_single_object() {
        let array = format!("[{INIT},{TALK},{OK}]\n");
        assert_eq!(judge_bytes(array.as_bytes()).class, Class::Ok);
        assert_eq!(judge_bytes(OK.as_bytes()).class, Class::Ok);
        let array = format!("[{INIT},{LOGGED_OUT}]");
        assert_eq!(judge_bytes(array.as_bytes()).class, Class::Auth);
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<Value>(&format!("[{INIT},{OK}]")).unwrap(),
        )
        .unwrap();
        assert_eq!(judge_bytes(pretty.as_bytes()).class, Class::Ok);
    }

    #[test]
    fn cut_short_result_is_no_result() {
        let cut = &OK[..OK.len() / 2];
        let v = judge_bytes(format!("{INIT}\n{TALK}\n{cut}").as_bytes());
        assert_eq!(v.class, Class::NoResult);
        assert!(v.reason.contains("cut short"), "{}", v.reason);
        // a line cut short mid-file does not swallow the lines after it
        let v = judge_bytes(format!("{INIT}\n{}\n{OK}\n", &TALK[..40]).as_bytes());
        assert_eq!(v.class, Class::Ok, "{v:?}");
        let v = judge_bytes(format!("{INIT}\n{}\n{OK}\n", &TALK[..70]).as_bytes());
        assert_eq!(v.class, Class::Ok, "{v:?}");
    }

    #[test]
    fn no_result_uses_the_whole_failure_output() {
        let v = judge_bytes(b"Error: Invalid API key \xc2\xb7 Please run /login\n");
        assert_eq!(v.class, Class::Auth);
        let retry = r#"{"type":"system","subtype":"api_retry","attempt":3,"error_status":529,"error":"overloaded"}"#;
        let v = judge_bytes(lines(&[INIT, TALK, retry]).as_bytes());
        assert_eq!(v.class, Class::RateLimit, "{v:?}");
        assert_eq!(v.usage.session_id.as_deref(), Some("s-1"));
        // a retry the run got past explains nothing
        let v = judge_bytes(lines(&[INIT, retry, TALK]).as_bytes());
        assert_eq!(v.class, Class::NoResult, "{v:?}");
        // the conversation alone is never failure text
        let v = judge_bytes(lines(&[INIT, TALK]).as_bytes());
        assert_eq!(v.class, Class::NoResult, "{v:?}");
        let flagged = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"You've hit your weekly limit"}]},"error":"rate_limit","api_error_status":429}"#;
        let v = judge_bytes(lines(&[INIT, flagged]).as_bytes());
        assert_eq!(v.class, Class::RateLimit, "{v:?}");
        let flagged = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Invalid API key"}]},"error":"authentication_failed"}"#;
        let v = judge_bytes(lines(&[INIT, TALK, flagged, "{\"type\":\"res"]).as_bytes());
        assert_eq!(v.class, Class::Auth, "{v:?}");
    }

    #[test]
    fn noise_lines_count_for_an_error_result_only() {
        let error = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"boom","num_turns":3}"#;
        let text = "stderr: API Error: 429 rate_limit_error";
        assert_eq!(
            judge_bytes(lines(&[INIT, text, error]).as_bytes()).class,
            Class::RateLimit
        );
        assert_eq!(
            judge_bytes(lines(&[INIT, text, OK]).as_bytes()).class,
            Class::Ok
        );
        assert_eq!(
            judge_bytes(lines(&[INIT, error]).as_bytes()).class,
            Class::AgentError
        );
    }

    #[test]
    fn limits_exit_codes_and_timeouts() {
        let turns =
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":9}"#;
        let budget = r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"total_cost_usd":5.0}"#;
        assert_eq!(judge_bytes(turns.as_bytes()).class, Class::MaxTurns);
        assert_eq!(judge_bytes(budget.as_bytes()).class, Class::MaxBudget);
        let ok = lines(&[INIT, OK]);
        let v = judge(ok.as_bytes(), end(Some(2), false)).unwrap();
        assert_eq!(v.class, Class::ExitMismatch);
        assert_eq!(
            judge(ok.as_bytes(), end(Some(0), false)).unwrap().class,
            Class::Ok
        );
        assert_eq!(
            judge(ok.as_bytes(), end(Some(143), true)).unwrap().class,
            Class::Ok
        );
        let partial = lines(&[INIT, TALK]);
        assert_eq!(
            judge(partial.as_bytes(), end(None, true)).unwrap().class,
            Class::Timeout
        );
        assert_eq!(
            judge(&b""[..], end(None, true)).unwrap().class,
            Class::Timeout
        );
        assert_eq!(judge_bytes(b"").class, Class::Empty);
        assert_eq!(judge_bytes(b" \r\n\t\n").class, Class::Empty);
    }

    #[test]
    fn crlf_and_long_lines() {
        let crlf = lines(&[INIT, TALK, OK]).replace('\n', "\r\n");
        assert_eq!(judge_bytes(crlf.as_bytes()).class, Class::Ok);
        let huge_text = "x".repeat(3 << 20);
        let huge = format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","content":"{huge_text}"}}]}}}}"#
        );
        assert_eq!(
            judge_bytes(lines(&[INIT, &huge, OK]).as_bytes()).class,
            Class::Ok
        );
        let long_noise = "y".repeat(3 << 20);
        assert_eq!(
            judge_bytes(lines(&[INIT, &long_noise, OK]).as_bytes()).class,
            Class::Ok
        );
    }

    #[test]
    fn oversize_result_is_no_result() {
        let text = "z".repeat(5 << 20);
        let big = format!(
            r#"{{"type":"result","subtype":"success","is_error":false,"result":"{text}"}}"#
        );
        let v = judge_bytes(lines(&[INIT, &big]).as_bytes());
        assert_eq!(v.class, Class::NoResult);
        assert!(v.reason.contains("larger than"), "{}", v.reason);
    }

    #[test]
    fn reasons_carry_no_control_characters() {
        let v = judge_bytes(b"\x1b[2J\x1b]0;pwned\x07 Not logged in\n");
        assert_eq!(v.class, Class::Auth);
        assert!(!v.reason.chars().any(char::is_control), "{:?}", v.reason);
    }

    #[test]
    fn tokens_are_masked() {
        let error = r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key sk-ant-api03-SECRETSECRET · Please run /login"}"#;
        let v = judge_bytes(error.as_bytes());
        assert_eq!(v.class, Class::Auth);
        assert!(!v.reason.contains("SECRET"), "{}", v.reason);
        assert!(!v.result_excerpt.unwrap().contains("SECRET"));
    }

    fn fragment() -> impl Strategy<Value = String> {
        let cut = |s: &'static str| (0..s.len()).prop_map(move |n| s[..n].to_string());
        prop_oneof![
            Just(INIT.to_string()),
            Just(TALK.to_string()),
            Just(OK.to_string()),
            Just(LOGGED_OUT.to_string()),
            Just(r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#.to_string()),
            Just(r#"{"type":"system","subtype":"api_retry","error_status":429}"#.to_string()),
            Just("Warning: something 429".to_string()),
            Just("   ".to_string()),
            Just(format!("[{INIT},{OK}]")),
            // text lines; a line cut short followed by indented text is read differently
            // in one piece and in pieces, and is not what a log looks like
            "[a-zA-Z0-9·][a-zA-Z0-9 ·{}\\[\\]\"]{0,40}",
            cut(TALK),
            cut(OK),
        ]
    }

    fn log() -> impl Strategy<Value = String> {
        (prop::collection::vec(fragment(), 0..8), any::<bool>()).prop_map(|(parts, crlf)| {
            let end = if crlf { "\r\n" } else { "\n" };
            parts.join(end)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_always_get_a_class(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                                               buf in 1usize..64) {
            let v = judge_bytes(&bytes);
            prop_assert!(Class::from_name(v.class.name()).is_some());
            let small = judge_small(&bytes, buf);
            prop_assert!(Class::from_name(small.class.name()).is_some());
        }

        #[test]
        fn reading_in_pieces_changes_nothing(text in log(), buf in 16usize..96) {
            let whole = judge_bytes(text.as_bytes());
            let pieces = judge_small(text.as_bytes(), buf);
            prop_assert_eq!(whole.class, pieces.class, "{:?}", text);
            prop_assert_eq!(whole.usage, pieces.usage);
            prop_assert_eq!(whole.subtype, pieces.subtype);
        }

        #[test]
        fn the_last_result_decides(text in log()) {
            let with_ok = format!("{text}\n{OK}\n");
            prop_assert_eq!(judge_bytes(with_ok.as_bytes()).class, Class::Ok);
            let with_auth = format!("{text}\n{LOGGED_OUT}\n");
            prop_assert_eq!(judge_bytes(with_auth.as_bytes()).class, Class::Auth);
        }
    }
}
