//! A run's stream-json log as a sequence of events a person can follow: the agent's text, its
//! tool calls with the gist of their input, their results cut to one line, the result object.
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
/// How much of a tool's input, a tool's result or a thought is shown.
pub const SHORT_CHARS: usize = 120;
/// How much of a line that is not JSON is shown.
const RAW_CHARS: usize = 240;

/// One thing that happened in the run. The field names are part of `orch logs --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The session started (`system`/`init`).
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
    /// The result object Claude Code ends a run with.
    Result {
        subtype: Option<String>,
        is_error: bool,
        text: Option<String>,
        turns: Option<u64>,
        cost_usd: Option<f64>,
        duration_ms: Option<u64>,
    },
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
    line: Vec<u8>,
    pending: VecDeque<Event>,
    done: bool,
}

/// A line as read: whole, or only its first bytes when it was longer than the cap.
enum Line {
    Whole,
    TooLong(u64),
}

impl<R: BufRead> Transcript<R> {
    pub fn new(reader: R) -> Transcript<R> {
        Transcript {
            reader,
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
                    events_of_line(text, &mut self.pending);
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

/// The events one line holds: a stream-json message, a JSON array of them (the `--verbose`
/// json shape on one line), or text.
fn events_of_line(line: &[u8], out: &mut VecDeque<Event>) {
    let parsed = match line.first() {
        Some(b'{') | Some(b'[') => serde_json::from_slice::<Value>(line).ok(),
        _ => None,
    };
    match parsed {
        Some(Value::Array(items)) => items.iter().for_each(|item| message(item, out)),
        Some(value @ Value::Object(_)) => message(&value, out),
        _ => out.push_back(Event::Raw {
            text: clip(&String::from_utf8_lossy(line), RAW_CHARS),
        }),
    }
}

fn message(value: &Value, out: &mut VecDeque<Event>) {
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    match value["type"].as_str() {
        Some("system") if value["subtype"] == "init" => out.push_back(Event::Init {
            model: text_of(&value["model"]),
            cwd: text_of(&value["cwd"]),
            session_id: text_of(&value["session_id"]),
        }),
        Some("assistant") => content(&value["message"]["content"], out),
        Some("user") => content(&value["message"]["content"], out),
        Some("result") => out.push_back(Event::Result {
            subtype: text_of(&value["subtype"]),
            is_error: value["is_error"].as_bool().unwrap_or(false),
            text: text_of(&value["result"]),
            turns: value["num_turns"].as_u64(),
            cost_usd: value["total_cost_usd"].as_f64(),
            duration_ms: value["duration_ms"].as_u64(),
        }),
        Some(kind) => {
            let kind = match value["subtype"].as_str() {
                Some(subtype) => format!("{kind} {subtype}"),
                None => kind.to_string(),
            };
            out.push_back(Event::Other { kind });
        }
        None => out.push_back(Event::Raw {
            text: value.to_string(),
        }),
    }
}

/// The blocks of a message's content: text, thinking, tool calls and tool results. A user
/// message's content may be a plain string.
fn content(content: &Value, out: &mut VecDeque<Event>) {
    if let Some(text) = content.as_str() {
        out.push_back(Event::UserText {
            text: text.to_string(),
        });
        return;
    }
    for block in content.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => {
                if let Some(text) = block["text"].as_str() {
                    out.push_back(Event::Text {
                        text: text.to_string(),
                    });
                }
            }
            Some("thinking") => {
                let (text, _) = first_line(block["thinking"].as_str().unwrap_or(""));
                out.push_back(Event::Thinking { text });
            }
            Some("tool_use") => out.push_back(Event::ToolUse {
                name: block["name"].as_str().unwrap_or("?").to_string(),
                input: input_gist(&block["input"]),
            }),
            Some("tool_result") => {
                let (text, more_lines) = first_line(&result_text(&block["content"]));
                out.push_back(Event::ToolResult {
                    text,
                    more_lines,
                    is_error: block["is_error"].as_bool().unwrap_or(false),
                });
            }
            _ => {}
        }
    }
}

/// The input field that says what a call does (a command, a file, a pattern, a URL), else the
/// input as compact JSON; cut to `SHORT_CHARS`.
fn input_gist(input: &Value) -> String {
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

/// A tool result's content: a string, or blocks of text (and images, named).
fn result_text(content: &Value) -> String {
    if let Some(text) = content.as_str() {
        return text.to_string();
    }
    let parts: Vec<&str> = content
        .as_array()
        .into_iter()
        .flatten()
        .map(|block| match block["type"].as_str() {
            Some("text") => block["text"].as_str().unwrap_or(""),
            Some("image") => "[image]",
            _ => "",
        })
        .collect();
    parts.join("\n")
}

/// The first non-blank line cut to `SHORT_CHARS`, and how many non-blank lines follow it.
fn first_line(text: &str) -> (String, usize) {
    let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    (clip(first, SHORT_CHARS), lines.count())
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

    fn events(log: &str) -> Vec<Event> {
        Transcript::new(log.as_bytes())
            .collect::<io::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_stream_becomes_events() {
        let log = concat!(
            r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s1","model":"m"}"#,
            "\r\n\n",
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Hi.\nTwo lines."},{"type":"tool_use","name":"Bash","input":{"command":"ls\nwc","timeout":5}}]}}"#,
            "\n",
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":[{"type":"text","text":"\na\nb\n"}],"is_error":true}]}}"#,
            "\nwarning: plain text\n",
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Done","total_cost_usd":0.5}"#,
            "\n",
            r#"{"type":"rate_limit_event"}"#,
            "\n{\"type\":\"assistant\",\"mess",
        );
        assert_eq!(
            events(log),
            vec![
                Event::Init {
                    model: Some("m".into()),
                    cwd: Some("/w".into()),
                    session_id: Some("s1".into())
                },
                Event::Text {
                    text: "Hi.\nTwo lines.".into()
                },
                Event::ToolUse {
                    name: "Bash".into(),
                    input: "ls …".into()
                },
                Event::ToolResult {
                    text: "a".into(),
                    more_lines: 1,
                    is_error: true
                },
                Event::Raw {
                    text: "warning: plain text".into()
                },
                Event::Result {
                    subtype: Some("success".into()),
                    is_error: false,
                    text: Some("Done".into()),
                    turns: Some(2),
                    cost_usd: Some(0.5),
                    duration_ms: None
                },
                Event::Other {
                    kind: "rate_limit_event".into()
                },
                Event::Raw {
                    text: "{\"type\":\"assistant\",\"mess".into()
                },
            ]
        );
    }

    #[test]
    fn input_without_a_telling_field_is_compact_json() {
        let input = serde_json::json!({"todos": [1, 2]});
        assert_eq!(input_gist(&input), r#"{"todos":[1,2]}"#);
        let long = serde_json::json!({ "x": "y".repeat(500) });
        assert_eq!(input_gist(&long).chars().count(), SHORT_CHARS + 1);
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_in_bounded_memory() {
        let huge = format!(
            "{{\"type\":\"user\",\"x\":\"{}\"}}\nafter\n",
            "z".repeat(LINE_CAP)
        );
        // A small BufReader: the long line arrives in many chunks.
        let reader = io::BufReader::with_capacity(4096, huge.as_bytes());
        let mut transcript = Transcript::new(reader);
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

    #[test]
    fn a_one_line_array_is_read_as_messages() {
        let log = r#"[{"type":"assistant","message":{"content":[{"type":"text","text":"a"}]}},{"type":"result","is_error":true}]"#;
        let got = events(log);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Event::Result { is_error: true, .. }));
    }
}
