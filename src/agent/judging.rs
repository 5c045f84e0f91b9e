//! What every kind's judge shares: failure text cut to a line and masked, phrases looked for in
//! it, the classes of a log with nothing in it or of a run orch cut short, and the verdict built
//! from a class and its reason. What a log's lines mean is each kind's (`agent::<kind>::judge`).

use memchr::memmem;
use serde_json::Value;

use super::jsonl::{self, Limits, Sink, Summary};
use crate::domain::verdict::{Class, Cut, Ending, Kind, RateLimit, Usage, Verdict};
use crate::output;

/// A result's text is kept for the JSON up to this many characters.
pub const EXCERPT_CHARS: usize = 500;
/// Failure text in a reason is cut to this many characters.
pub const SNIPPET_CHARS: usize = 160;

/// What a kind's judge gathers from a log as the scanner hands it over, and turns into a verdict.
pub trait Facts: Sink + Default {
    fn finish(self, summary: &Summary, ending: Ending) -> Verdict;
}

/// Read `reader` once, in bounded memory, into `F`'s verdict.
pub fn read<F: Facts>(
    reader: impl std::io::Read,
    ending: Ending,
    limits: Limits,
) -> std::io::Result<Verdict> {
    let mut facts = F::default();
    let summary = jsonl::scan(reader, &mut facts, limits)?;
    Ok(facts.finish(&summary, ending))
}

/// Failure text around `at`, on one line, cut to `SNIPPET_CHARS`, tokens masked.
pub fn snippet(text: &[u8], at: usize) -> String {
    let start = at.saturating_sub(SNIPPET_CHARS / 2);
    let start = if text.len() <= SNIPPET_CHARS {
        0
    } else {
        start
    };
    let end = text.len().min(start + SNIPPET_CHARS);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&one_line(&String::from_utf8_lossy(&text[start..end])));
    if end < text.len() {
        out.push('…');
    }
    crate::redact::redact(out.trim())
}

/// Whitespace runs (newlines included) folded into one space, other control characters (a
/// terminal's escape sequences among them) shown as U+FFFD.
pub fn one_line(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.replace(char::is_control, "\u{fffd}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first `max` characters of `text`, with "…" when cut, tokens masked.
pub fn excerpt(text: &str, max: usize) -> String {
    crate::redact::redact(&output::clip(text, max))
}

/// Failure text for a reason: on one line, cut to `SNIPPET_CHARS`, tokens masked. Only the
/// start of a long text (an answer of a megabyte) is folded: the snippet needs no more, and
/// folding it all would cost a copy and an allocation per word.
pub fn said(text: &str) -> String {
    const SCANNED: usize = 16 * 1024;
    let mut end = text.len().min(SCANNED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    excerpt(&one_line(&text[..end]), SNIPPET_CHARS)
}

/// A count from a JSON number (a whole one, or a float rounded); None for anything else.
pub fn count(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

/// Model names as the log gives them, a bounded few of bounded length: they are the agent's
/// words, shown in comments and listings.
pub fn model_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    const MAX_MODELS: usize = 8;
    const MAX_CHARS: usize = 64;
    let mut models: Vec<String> = Vec::new();
    for name in names {
        let name: String = name.chars().take(MAX_CHARS).collect();
        if !name.is_empty() && !models.contains(&name) && models.len() < MAX_MODELS {
            models.push(name);
        }
    }
    models
}

/// Where `marker` (lower case) first occurs in lower-cased text ending at a word's end, so "not
/// logged into GitHub" does not pass for "not logged in".
pub fn find_word(lower: &[u8], marker: &str) -> Option<usize> {
    memmem::find_iter(lower, marker.as_bytes()).find(|&at| {
        let after = lower.get(at + marker.len());
        !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

/// A phrase that means something when failure text holds it, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Sign<T: 'static> {
    /// Lower case; found ending at a word's end.
    pub phrase: &'static str,
    pub means: T,
}

/// The phrases of a table found in failure text, each meaning with the text around its first
/// finding (cut and masked).
#[derive(Debug)]
pub struct Signs<T: 'static> {
    found: Vec<(T, String)>,
    lower: Vec<u8>,
}

impl<T> Default for Signs<T> {
    fn default() -> Signs<T> {
        Signs {
            found: Vec::new(),
            lower: Vec::new(),
        }
    }
}

impl<T: Copy + PartialEq> Signs<T> {
    /// Look for every phrase of `table` in `text`; a meaning already found keeps its first text.
    pub fn scan(&mut self, table: &'static [Sign<T>], text: &[u8]) {
        self.lower.clear();
        self.lower.extend(text.iter().map(u8::to_ascii_lowercase));
        for sign in table {
            if self.found.iter().any(|(means, _)| *means == sign.means) {
                continue;
            }
            if let Some(at) = find_word(&self.lower, sign.phrase) {
                self.found.push((sign.means, snippet(text, at)));
            }
        }
    }

    /// The text that first showed `means`.
    pub fn get(&self, means: T) -> Option<&str> {
        self.found
            .iter()
            .find(|(m, _)| *m == means)
            .map(|(_, text)| text.as_str())
    }

    /// The first of `order` found, with its text.
    pub fn first_of(&self, order: &[T]) -> Option<(T, &str)> {
        order
            .iter()
            .find_map(|means| self.get(*means).map(|text| (*means, text)))
    }
}

/// Why an agent refused its command line, as its stderr says: for the reason and the fix.
pub trait Refusal: Copy + PartialEq + 'static {
    /// "an option it does not take".
    fn what(self) -> &'static str;
    /// The setting to change, `{agent}`, `{stage}`, `{project}` standing for the run's.
    fn fix(self) -> &'static str;
}

/// The `invocation_error` of `product` when its stderr shows one of `order`'s refusals (the most
/// specific first), or `by_exit` says its exit code alone is one ("exit 55").
pub fn refused<T: Refusal>(
    product: &str,
    stderr: &Signs<T>,
    order: &[T],
    by_exit: Option<String>,
) -> Option<(Class, String)> {
    let (what, text) = match stderr.first_of(order) {
        Some((refusal, text)) => (refusal.what(), text.to_string()),
        None => ("a refusal", by_exit?),
    };
    Some((
        Class::InvocationError,
        format!("{product} refused its command line ({what}): {text}"),
    ))
}

/// The fix for an `invocation_error`: the first refusal's in `order`, else `FIX_OPTIONS`.
pub fn refusal_fix<T: Refusal>(stderr: &Signs<T>, order: &[T]) -> String {
    stderr
        .first_of(order)
        .map_or(FIX_OPTIONS, |(refusal, _)| refusal.fix())
        .to_string()
}

/// The verdict of a run asked to continue a session the agent does not have (`missed` is what
/// it said): `agent_error`, and the run starts afresh (`resume_failed`), never a refusal.
pub fn resume_missed(missed: Option<&str>, what: &str) -> Option<(Class, String)> {
    missed.map(|text| {
        (
            Class::AgentError,
            format!("the {what} to resume is not there: {text}"),
        )
    })
}

/// A log's lines that are not JSON (the agent's stderr): counted, the first kept, and searched
/// for a table's phrases.
#[derive(Debug)]
pub struct Stderr<T: 'static> {
    pub lines: TextLines,
    pub signs: Signs<T>,
}

impl<T> Default for Stderr<T> {
    fn default() -> Stderr<T> {
        Stderr {
            lines: TextLines::default(),
            signs: Signs::default(),
        }
    }
}

impl<T: Copy + PartialEq> Stderr<T> {
    pub fn note(&mut self, table: &'static [Sign<T>], line: &[u8]) {
        self.lines.note(line);
        self.signs.scan(table, line);
    }
}

/// Lines of a log that are not JSON (the agent's stderr): how many, and the first, for a reason.
#[derive(Debug, Default, Clone)]
pub struct TextLines {
    pub count: u64,
    pub first: Option<String>,
}

impl TextLines {
    pub fn note(&mut self, line: &[u8]) {
        self.count += 1;
        if self.first.is_none() {
            // a character cut by PREFIX_KEEP is not binary; an invalid sequence is
            let binary = std::str::from_utf8(line).is_err_and(|e| e.error_len().is_some());
            self.first = Some(if binary {
                "(binary data)".to_string()
            } else {
                snippet(line, 0)
            });
        }
    }

    /// "; 3 text lines, first: …", or nothing when there were none.
    pub fn note_for_reason(&self) -> String {
        match &self.first {
            Some(first) => {
                let noun = if self.count == 1 { "line" } else { "lines" };
                format!("; {} text {noun}, first: {first}", self.count)
            }
            None => String::new(),
        }
    }
}

/// The class of a log holding nothing but whitespace: `empty`, or `timeout` / `stalled` when
/// orch cut the run short. None when the log holds something.
pub fn blank(summary: &Summary, ending: Ending) -> Option<(Class, String)> {
    if summary.nonblank {
        return None;
    }
    let what = if summary.bytes > 0 {
        "the log holds only whitespace"
    } else {
        "the log is empty"
    };
    Some(match ending.cut {
        Some(Cut::Timeout) => (Class::Timeout, format!("timed out; {what}")),
        Some(Cut::Stall) => (Class::Stalled, format!("stalled; {what}")),
        None => (Class::Empty, what.to_string()),
    })
}

/// `timeout` or `stalled` when orch cut the run short; `after` says what the log had (" with no
/// result").
pub fn cut_short(ending: Ending, after: &str) -> Option<(Class, String)> {
    ending.cut.map(|cut| match cut {
        Cut::Timeout => (Class::Timeout, format!("timed out{after}")),
        Cut::Stall => (
            Class::Stalled,
            format!("stalled: the log stopped growing{after}"),
        ),
    })
}

/// The class of a success: `exit_mismatch` when the agent then exited non-zero by itself, else
/// `ok`; `reason` says what the success was.
pub fn success(ending: Ending, reason: String) -> (Class, String) {
    match ending.exit_code {
        Some(code) if code != 0 && ending.cut.is_none() => (
            Class::ExitMismatch,
            format!("{reason} but exit code {code}"),
        ),
        _ if ending.cut.is_some() => (
            Class::Ok,
            format!("{reason} (the run was ended afterwards by orch)"),
        ),
        _ => (Class::Ok, reason),
    }
}

/// "the account's five_hour limit was reached; it resets at …".
pub fn usage_limit_reason(limit: &RateLimit) -> String {
    let which = limit.limit_type.as_deref().unwrap_or("usage");
    format!(
        "the account's {which} limit was reached; it resets at {}",
        output::stamp(limit.resets_at.unwrap_or_default())
    )
}

/// A refusal of a usage limit reset at `resets_at`, as the verdict's usage reports it.
pub fn rejected(resets_at: i64, limit_type: &str) -> RateLimit {
    RateLimit {
        status: "rejected".to_string(),
        resets_at: Some(resets_at),
        limit_type: Some(limit_type.to_string()),
        utilization: None,
    }
}

/// "the agent was denied 2 tool uses in its success result: Bash: rm -rf build; Edit: src/x.rs".
pub fn denied_reason(denials: &[String], what: &str) -> String {
    let n = denials.len();
    format!(
        "the agent was denied {n} tool use{} in its {what}: {}",
        if n == 1 { "" } else { "s" },
        denials.join("; ")
    )
}

/// Denials listed in a reason, at most.
pub const MAX_DENIALS: usize = 8;

/// The verdict of `class` with its reason and usage, the rest empty: each kind fills in what its
/// log says besides.
pub fn verdict(class: Class, reason: String, ending: Ending, usage: Usage) -> Verdict {
    let kind = class.kind();
    Verdict {
        ok: class == Class::Ok,
        class,
        kind,
        transient: kind == Kind::Transient,
        reason,
        exit_code: ending.exit_code,
        timed_out: ending.timed_out(),
        stalled: ending.stalled(),
        subtype: None,
        is_error: None,
        result_excerpt: None,
        result_text: None,
        usage,
        denials: Vec::new(),
        resume_failed: false,
        fix: None,
        auth_unconfirmed: false,
    }
}

/// The verdict of `class`, built as `verdict` does, with what a kind's stderr says besides: that
/// the session to resume was missing (`missed`), and for an `invocation_error` the setting to fix.
pub fn verdict_of<T: Refusal>(
    (class, reason): (Class, String),
    ending: Ending,
    usage: Usage,
    stderr: &Signs<T>,
    missed: T,
    refusals: &[T],
) -> Verdict {
    let mut verdict = verdict(class, reason, ending, usage);
    verdict.resume_failed = stderr.get(missed).is_some();
    if class == Class::InvocationError {
        verdict.fix = Some(refusal_fix(stderr, refusals));
    }
    verdict
}

/// The fix for an option the agent does not take.
pub const FIX_OPTIONS: &str = "an option orch passed is not one this agent takes: check \
     [agents.{agent}] extra_args and argv, and [stages.{stage}] extra_args (`orch run JOB \
     --dry-run` shows the command line)";

/// The fix for a command line that carries no prompt.
pub const FIX_NO_PROMPT: &str = "the command line carries no prompt: [agents.{agent}] argv must \
     hold {prompt} (after a \"--\" element, or joined to its option)";

/// What the judges' property tests share.
#[cfg(test)]
pub(crate) mod testing {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use crate::agent::jsonl::{Limits, Trickle};
    use crate::domain::verdict::{Ending, Verdict};

    /// A piece of a log made of `lines`: one of them whole or cut short, or a line of text.
    pub fn fragment(lines: &'static [&'static str]) -> impl Strategy<Value = String> {
        let whole = prop::sample::select(lines).prop_map(str::to_string);
        let cut = prop::sample::select(lines)
            .prop_flat_map(|line| (0..line.len()).prop_map(move |n| line[..n].to_string()));
        prop_oneof![3 => whole, 1 => cut, 1 => "[a-zA-Z0-9 .:]{0,40}"]
    }

    /// `text` judged by `F` whole and a few bytes at a time through a buffer of `buf` bytes (a
    /// small buffer drives the long-line paths): the same class and usage.
    pub fn same_in_pieces<F: super::Facts>(text: &str, buf: usize) -> Result<(), TestCaseError> {
        let judge = |reader: Trickle, limits| super::read::<F>(reader, Ending::default(), limits);
        let whole = Trickle {
            data: text.as_bytes(),
            step: usize::MAX,
        };
        let pieces = Trickle {
            data: text.as_bytes(),
            step: 7,
        };
        let whole: Verdict = judge(whole, Limits::DEFAULT).unwrap();
        let limits = Limits {
            buf,
            ..Limits::DEFAULT
        };
        let pieces = judge(pieces, limits).unwrap();
        prop_assert_eq!(whole.class, pieces.class, "{:?}", text);
        prop_assert_eq!(whole.usage, pieces.usage);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_said_by_its_start_on_one_line() {
        let long = format!("Done:\n  the  fix\tis in. {}", "é word ".repeat(200_000));
        let said = said(&long);
        assert!(said.starts_with("Done: the fix is in. é word"), "{said}");
        assert!(
            said.ends_with('…') && said.chars().count() <= SNIPPET_CHARS + 1,
            "{said}"
        );
        assert_eq!(super::said("short\n text"), "short text");
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Means {
        Auth,
        Limit,
    }

    const TABLE: &[Sign<Means>] = &[
        Sign {
            phrase: "not logged in",
            means: Means::Auth,
        },
        Sign {
            phrase: "usage limit",
            means: Means::Limit,
        },
    ];

    #[test]
    fn signs_keep_the_first_text_of_each_meaning() {
        let mut signs = Signs::default();
        signs.scan(TABLE, b"gh: not logged into github");
        assert_eq!(signs.get(Means::Auth), None);
        signs.scan(TABLE, b"Error: Not logged in \x1b[31mnow");
        signs.scan(TABLE, b"not logged in again; usage limit");
        assert_eq!(
            signs.get(Means::Auth),
            Some("Error: Not logged in \u{fffd}[31mnow")
        );
        assert_eq!(
            signs.first_of(&[Means::Limit, Means::Auth]).map(|(m, _)| m),
            Some(Means::Limit)
        );
    }

    #[test]
    fn success_after_a_non_zero_exit_is_a_mismatch() {
        let ending = Ending::new(Some(2), false, false);
        assert_eq!(success(ending, "done".into()).0, Class::ExitMismatch);
        assert_eq!(
            success(Ending::new(Some(143), true, false), "done".into()).0,
            Class::Ok
        );
        assert_eq!(success(Ending::default(), "done".into()).0, Class::Ok);
    }

    #[test]
    fn model_names_are_few_short_and_distinct() {
        let long = "m".repeat(100);
        let names = model_names(["a", "a", "", long.as_str()].into_iter());
        assert_eq!(names.len(), 2);
        assert_eq!(names[1].chars().count(), 64);
    }
}
