//! A run's log as a sequence of events a person can follow (`orch logs`), whatever agent wrote
//! it: the agent's text, its tool calls with the gist of their input, their results cut to one
//! line, the result. Each kind turns one line of its log into events
//! (`agent::<kind>::transcript`); the reading is shared.
//!
//! The log is read line by line through a fixed buffer; a line longer than `LINE_CAP` is not
//! kept (only its first bytes, to name what it was), so a log of any size is read in bounded
//! memory. Lines that are not JSON (stderr text, a line cut short) come through as `Raw`.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use memchr::memchr;
use serde::Serialize;
use serde_json::Value;

use crate::output::clip;

/// Lines up to this size are parsed; a longer one is reported by size and skipped.
pub const LINE_CAP: usize = 4 << 20;
/// Of a line too long to parse, the bytes kept to tell what it was.
const SNIFF_BYTES: usize = 256;
/// How much of a line that is not JSON is shown.
const RAW_CHARS: usize = 240;
/// How much of a tool's input, a tool's result or a thought is shown.
pub const SHORT_CHARS: usize = 120;

/// One thing that happened in the run. The field names are part of `orch logs --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The session started (Claude Code's `system`/`init`).
    Init {
        model: Option<String>,
        cwd: Option<String>,
        session_id: Option<String>,
    },
    /// The agent's text, whole.
    Text { text: String },
    /// The agent's thinking, its first line cut short.
    Thinking { text: String },
    /// A tool call: the tool's name and the gist of its input.
    ToolUse { name: String, input: String },
    /// A tool's result: its first line cut short, how many more lines it had, and whether the
    /// tool failed.
    ToolResult {
        text: String,
        more_lines: usize,
        is_error: bool,
    },
    /// Text sent to the agent as the user (the prompt, when the log has it).
    UserText { text: String },
    /// The result the agent ends a run with (Claude Code's `result` object): its subtype, whether
    /// it is an error, its text, and what the run used.
    Result {
        subtype: Option<String>,
        is_error: bool,
        text: Option<String>,
        turns: Option<u64>,
        cost_usd: Option<f64>,
        duration_ms: Option<u64>,
    },
    /// Something the agent reported on the way: a retry, a warning, an error it went on after
    /// (or did not).
    Notice { text: String },
    /// Another JSON line (a status, a rate-limit notice): its type, and subtype if any.
    Other { kind: String },
    /// A line that is not JSON: stderr text, or JSON cut short.
    Raw { text: String },
    /// A line too long to show.
    Skipped { bytes: u64, kind: Option<String> },
}

/// Events read from a log, one line at a time.
pub struct Transcript<R> {
    reader: R,
    parse: ParseLine,
    line: Vec<u8>,
    pending: VecDeque<Event>,
    done: bool,
}

/// A kind's reading of one non-blank line of its log (trimmed, without its line end).
pub type ParseLine = fn(&[u8], &mut VecDeque<Event>);

/// A line as read: whole, or only its first bytes when it was longer than the cap.
enum Line {
    Whole,
    TooLong(u64),
}

impl<R: BufRead> Transcript<R> {
    pub fn new(reader: R, parse: ParseLine) -> Transcript<R> {
        Transcript {
            reader,
            parse,
            line: Vec::new(),
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// Read the next line into `self.line` (without its line end); None at the end of the log.
    fn read_line(&mut self) -> io::Result<Option<Line>> {
        self.line.clear();
        let mut total: u64 = 0;
        let mut too_long = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if buf.is_empty() {
                if total == 0 {
                    return Ok(None);
                }
                break;
            }
            let (chunk, ends) = match memchr(b'\n', buf) {
                Some(at) => (&buf[..at], true),
                None => (buf, false),
            };
            total += chunk.len() as u64;
            if !too_long {
                if self.line.len() + chunk.len() > LINE_CAP {
                    too_long = true;
                    let room = SNIFF_BYTES.saturating_sub(self.line.len());
                    self.line.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    self.line.truncate(SNIFF_BYTES);
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            let used = chunk.len() + usize::from(ends);
            self.reader.consume(used);
            if ends {
                break;
            }
        }
        if too_long {
            return Ok(Some(Line::TooLong(total)));
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Some(Line::Whole))
    }

    /// The events of the next non-blank line into `pending`; false at the end of the log.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            let Some(line) = self.read_line()? else {
                return Ok(false);
            };
            match line {
                Line::TooLong(bytes) => {
                    let kind = sniff_type(&self.line);
                    self.pending.push_back(Event::Skipped { bytes, kind });
                }
                Line::Whole => {
                    let text = self.line.trim_ascii();
                    if text.is_empty() {
                        continue;
                    }
                    (self.parse)(text, &mut self.pending);
                }
            }
            if !self.pending.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl<R: BufRead> Iterator for Transcript<R> {
    type Item = io::Result<Event>;

    fn next(&mut self) -> Option<io::Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// Consecutive text events joined into one, for an agent that prints its answer a few words a
/// line (Gemini).
pub struct Joined<I: Iterator> {
    inner: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = io::Result<Event>>> Joined<I> {
    pub fn new(inner: I) -> Joined<I> {
        Joined {
            inner: inner.peekable(),
        }
    }
}

/// A joined text stops growing past this many bytes (a line of `orch logs` is a person's to read,
/// and memory stays bounded).
const JOINED_MAX: usize = 64 << 10;

impl<I: Iterator<Item = io::Result<Event>>> Iterator for Joined<I> {
    type Item = io::Result<Event>;

    fn next(&mut self) -> Option<io::Result<Event>> {
        let first = self.inner.next()?;
        let Ok(Event::Text { mut text }) = first else {
            return Some(first);
        };
        while let Some(Ok(Event::Text { .. })) = self.inner.peek() {
            if let Some(Ok(Event::Text { text: more })) = self.inner.next() {
                if text.len() < JOINED_MAX {
                    text.push_str(&more);
                }
            }
        }
        Some(Ok(Event::Text { text }))
    }
}

/// A line shown as it is, cut short: stderr text, or JSON cut short.
pub fn raw(line: &[u8]) -> Event {
    Event::Raw {
        text: clip(&String::from_utf8_lossy(line), RAW_CHARS),
    }
}

/// The input field that says what a call does (a command, a file, a pattern, a URL), else the
/// input as compact JSON; cut to `SHORT_CHARS`.
pub fn input_gist(input: &Value) -> String {
    const TELLING: &[&str] = &[
        "command",
        "file_path",
        "notebook_path",
        "pattern",
        "url",
        "query",
        "path",
        "description",
        "prompt",
    ];
    let telling = TELLING.iter().find_map(|key| input[key].as_str());
    match telling {
        Some(text) => {
            let (line, more) = first_line(text);
            if more > 0 {
                format!("{line} …")
            } else {
                line
            }
        }
        None if input.is_null() => String::new(),
        None => clip(&input.to_string(), SHORT_CHARS),
    }
}

/// The first non-blank line cut to `SHORT_CHARS`, and how many non-blank lines follow it.
pub fn first_line(text: &str) -> (String, usize) {
    let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    (clip(first, SHORT_CHARS), lines.count())
}

/// A line's JSON object, when it is one; else (text, an array, JSON cut short) the line is
/// shown as it is and None returned.
pub fn object_or_raw(line: &[u8], out: &mut VecDeque<Event>) -> Option<Value> {
    let object = match line.first() {
        Some(b'{') => serde_json::from_slice::<Value>(line)
            .ok()
            .filter(Value::is_object),
        _ => None,
    };
    if object.is_none() {
        out.push_back(raw(line));
    }
    object
}

/// `"type":"…"` from the first bytes of a line too long to parse.
fn sniff_type(prefix: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let after = &text[text.find("\"type\"")? + 6..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let value = after.strip_prefix('"')?;
    Some(value[..value.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_cap_is_skipped_in_bounded_memory() {
        let huge = format!(
            "{{\"type\":\"user\",\"x\":\"{}\"}}\nafter\n",
            "z".repeat(LINE_CAP)
        );
        // A small BufReader: the long line arrives in many chunks.
        let reader = io::BufReader::with_capacity(4096, huge.as_bytes());
        let mut transcript = Transcript::new(reader, |line, out| out.push_back(raw(line)));
        let first = transcript.next().unwrap().unwrap();
        assert_eq!(
            first,
            Event::Skipped {
                bytes: huge.len() as u64 - "\nafter\n".len() as u64,
                kind: Some("user".into())
            }
        );
        assert!(transcript.line.capacity() <= LINE_CAP + 4096);
        assert_eq!(
            transcript.next().unwrap().unwrap(),
            Event::Raw {
                text: "after".into()
            }
        );
        assert!(transcript.next().is_none());
    }
}
