//! A bounded-memory reader of JSON-lines logs, for any agent that writes them (Claude Code's
//! stream-json today; Codex's `--json` and Gemini's stream-json read the same way).
//!
//! One pass through a fixed buffer, never holding the log: each line is told apart by its first
//! bytes and handed to a [`Sink`] in place — text (stderr, warnings), a JSON object, or what is
//! left of one. Values that do not fit a line's shape — a JSON array (Claude Code's `--verbose`
//! json), a pretty-printed object, a line longer than the buffer — go through a small structural
//! scanner that keeps at most one element object (`object_cap`) at a time; a longer one reaches the
//! sink as its first bytes only. CRLF line ends and a last line cut short are read like the rest.
//!
//! What the objects mean is the sink's business: this module knows JSON's shape, not any agent's.

use std::io::{self, Read};

use memchr::{memchr, memchr3, memmem};

/// Sizes that bound the reader's memory; tests shrink `buf` to drive the long-line paths.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The read buffer: lines shorter than this are handed over in place.
    pub buf: usize,
    /// The largest object (an array element, a long line) kept whole; a longer one is handed to
    /// [`Sink::big_object`] as its first `PREFIX_KEEP` bytes.
    pub object_cap: usize,
    /// The largest object [`Keep::This`] keeps; a larger one leaves nothing kept.
    pub keep_max: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        buf: 1 << 20,
        object_cap: 4 << 20,
        keep_max: 64 << 10,
    };
}

/// Of a text line, and of an object too big to keep, the bytes handed over.
pub const PREFIX_KEEP: usize = 4 << 10;
/// Enough to tell a JSON line from text by its first bytes.
const MIN_BUF: usize = 16;

/// Whether the scanner should keep a copy of an object, for the sink to read after the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Leave the kept object as it is.
    No,
    /// This object replaces the kept one (one larger than `keep_max`, or a big object's
    /// prefix, leaves nothing kept). Copied lazily: of many in one buffer only the last is.
    This,
}

/// What a log holds, in the order it holds it.
pub trait Sink {
    /// A line that is not JSON, trimmed, never empty, at most `PREFIX_KEEP` bytes.
    fn text_line(&mut self, line: &[u8]);
    /// A whole object: a JSON line, an element of a top-level array, or an object spread over
    /// lines; at most `object_cap` bytes. It may not parse: text can look like JSON.
    fn object(&mut self, object: &[u8]) -> Keep;
    /// An object longer than `object_cap`: its first `PREFIX_KEEP` bytes. Left alone by
    /// default: a sink that needs it says so.
    fn big_object(&mut self, _prefix: &[u8]) -> Keep {
        Keep::No
    }
    /// An object that broke off: cut short by the log's end, or by a line that cannot continue it.
    /// By default, text like any other line that is not JSON (its first bytes).
    fn broken_object(&mut self, object: &[u8]) {
        self.text_line(&object[..object.len().min(PREFIX_KEEP)]);
    }
    /// Non-blank text after a JSON value on its line, at most `PREFIX_KEEP` bytes. By default,
    /// text like any other.
    fn trailing_text(&mut self, text: &[u8]) {
        self.text_line(text);
    }
}

/// What the scan saw besides what it handed to the sink.
#[derive(Debug, Default)]
pub struct Summary {
    pub bytes: u64,
    /// Anything but whitespace.
    pub nonblank: bool,
    /// The log ended inside a JSON value.
    pub ended_inside_value: bool,
    /// The last object the sink asked to keep (empty when none, or when it was too large).
    pub kept: Vec<u8>,
}

/// Read `reader` to its end, handing what it holds to `sink`.
pub fn scan<S: Sink + ?Sized>(
    mut reader: impl Read,
    sink: &mut S,
    limits: Limits,
) -> io::Result<Summary> {
    let mut scanner = Scanner {
        limits,
        mode: Mode::Lines,
        summary: Summary::default(),
        pending_kept: None,
    };
    let mut buf = vec![0u8; limits.buf.max(MIN_BUF)];
    let mut end = 0;
    loop {
        let read = loop {
            match reader.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        };
        end += read;
        scanner.summary.bytes += read as u64;
        let eof = read == 0;
        let full = end == buf.len();
        let consumed = scanner.process(&buf[..end], eof, full, sink);
        if eof {
            break;
        }
        buf.copy_within(consumed..end, 0);
        end -= consumed;
    }
    Ok(scanner.summary)
}

/// The top-level `type` of a JSON object line written the usual way (`{"type":"…"` first), read
/// from its first bytes without parsing.
pub fn fast_type(object: &[u8]) -> Option<&[u8]> {
    let rest = object
        .strip_prefix(b"{\"type\":\"")
        .or_else(|| object.strip_prefix(b"{\"type\": \""))?;
    let end = memchr(b'"', &rest[..rest.len().min(64)])?;
    Some(&rest[..end])
}

/// Finds the token `"type"` `:` `"<name>"` (any spacing) in text. Inside a JSON string every
/// quote is escaped, so the token can only be real structure — possibly nested, which a parse
/// settles.
pub struct TypeToken {
    value: memmem::Finder<'static>,
}

impl TypeToken {
    pub fn new(name: &str) -> TypeToken {
        TypeToken {
            value: memmem::Finder::new(format!("\"{name}\"").as_bytes()).into_owned(),
        }
    }

    pub fn found_in(&self, text: &[u8]) -> bool {
        self.value.find_iter(text).any(|at| {
            let before = trim_end(&text[..at]);
            let Some(before) = before.strip_suffix(b":") else {
                return false;
            };
            trim_end(before).ends_with(b"\"type\"")
        })
    }
}

pub fn trim_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &text[..end]
}

pub fn trim_start(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    &text[start..]
}

/// Whether a line (already trimmed at the start) opens a JSON value: `{` then a key, `}` or the
/// line's end; `[` then an object, `]` or the line's end. "[WARN] …" and "{foo" are text.
fn opens_json(line: &[u8]) -> bool {
    let Some((&first, rest)) = line.split_first() else {
        return false;
    };
    let next = rest.iter().find(|b| **b != b' ' && **b != b'\t').copied();
    match first {
        b'{' => matches!(next, None | Some(b'"' | b'}' | b'\r' | b'\n')),
        b'[' => matches!(next, None | Some(b'{' | b']' | b'\r' | b'\n')),
        _ => false,
    }
}

enum Mode {
    Lines,
    /// Inside a JSON value that spans lines or outgrew the buffer.
    Value(Box<ValueScan>),
    /// The rest of a line: a text line longer than the buffer, or (`after_json`) what follows a
    /// JSON value on its line. Its first `PREFIX_KEEP` bytes are kept.
    Rest {
        kept: Vec<u8>,
        after_json: bool,
    },
}

struct Scanner {
    limits: Limits,
    mode: Mode,
    summary: Summary,
    /// Where the object to keep lies in the current chunk, copied before the chunk goes.
    pending_kept: Option<(usize, usize)>,
}

impl Scanner {
    /// Hand over what `data` holds and return how many bytes are done with; the rest (a partial
    /// line) comes again with more bytes behind it. With `eof` everything is consumed; with
    /// `full` (the buffer holds no newline) a partial line is taken in pieces.
    fn process<S: Sink + ?Sized>(
        &mut self,
        data: &[u8],
        eof: bool,
        full: bool,
        sink: &mut S,
    ) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            match std::mem::replace(&mut self.mode, Mode::Lines) {
                Mode::Lines => {
                    let (line, next, complete) = match memchr(b'\n', &data[pos..]) {
                        Some(k) => (&data[pos..pos + k], pos + k + 1, true),
                        None if eof => (&data[pos..], data.len(), true),
                        None if pos == 0 && full => (&data[pos..], data.len(), false),
                        None => break,
                    };
                    let start = trim_start(line);
                    let offset = pos + (line.len() - start.len());
                    if start.is_empty() {
                        pos = next;
                        continue;
                    }
                    self.summary.nonblank = true;
                    if !opens_json(start) {
                        if complete {
                            text_line(sink, trim_end(start));
                        } else {
                            let keep = &start[..start.len().min(PREFIX_KEEP)];
                            self.mode = Mode::Rest {
                                kept: keep.to_vec(),
                                after_json: false,
                            };
                        }
                        pos = next;
                        continue;
                    }
                    let whole = trim_end(start);
                    if complete && whole.first() == Some(&b'{') && whole.last() == Some(&b'}') {
                        if sink.object(whole) == Keep::This {
                            self.summary.kept.clear();
                            self.pending_kept = Some((offset, offset + whole.len()));
                        }
                        pos = next;
                    } else {
                        self.mode = Mode::Value(Box::default());
                        pos = offset;
                    }
                }
                Mode::Rest {
                    mut kept,
                    after_json,
                } => {
                    let (end, next) = match memchr(b'\n', &data[pos..]) {
                        Some(k) => (pos + k, Some(pos + k + 1)),
                        None => (data.len(), None),
                    };
                    let room = PREFIX_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[pos..end.min(pos + room)]);
                    match next {
                        Some(next) => {
                            rest_of_line(sink, &kept, after_json);
                            pos = next;
                        }
                        None => {
                            pos = data.len();
                            self.mode = Mode::Rest { kept, after_json };
                        }
                    }
                }
                Mode::Value(mut value) => {
                    let (used, step) = value.feed(&data[pos..], self.limits.object_cap);
                    pos += used;
                    match step {
                        Step::More => self.mode = Mode::Value(value),
                        Step::Element { done } => {
                            let capture = std::mem::take(&mut value.capture);
                            self.element(sink, &capture, value.overflow);
                            value.capture = capture;
                            value.capture.clear();
                            self.mode = if done {
                                Mode::Rest {
                                    kept: Vec::new(),
                                    after_json: true,
                                }
                            } else {
                                Mode::Value(value)
                            };
                        }
                        Step::Done => {
                            self.mode = Mode::Rest {
                                kept: Vec::new(),
                                after_json: true,
                            }
                        }
                        Step::Abort => self.broken_value(sink, &value),
                    }
                }
            }
        }
        if let Some((start, end)) = self.pending_kept.take() {
            self.summary.kept.clear();
            if end - start <= self.limits.keep_max {
                self.summary.kept.extend_from_slice(&data[start..end]);
            }
        }
        if eof {
            self.end_of_stream(sink);
        }
        pos
    }

    fn end_of_stream<S: Sink + ?Sized>(&mut self, sink: &mut S) {
        match std::mem::replace(&mut self.mode, Mode::Lines) {
            Mode::Lines => {}
            Mode::Rest { kept, after_json } => rest_of_line(sink, &kept, after_json),
            Mode::Value(value) => {
                self.summary.ended_inside_value = true;
                self.broken_value(sink, &value);
            }
        }
    }

    /// An array element or a long line's object, from the structural scanner.
    fn element<S: Sink + ?Sized>(&mut self, sink: &mut S, capture: &[u8], overflow: bool) {
        if overflow {
            self.big_object(sink, capture);
            return;
        }
        if sink.object(capture) == Keep::This {
            self.pending_kept = None;
            self.summary.kept.clear();
            if capture.len() <= self.limits.keep_max {
                self.summary.kept.extend_from_slice(capture);
            }
        }
    }

    fn big_object<S: Sink + ?Sized>(&mut self, sink: &mut S, prefix: &[u8]) {
        if sink.big_object(prefix) == Keep::This {
            self.pending_kept = None;
            self.summary.kept.clear();
        }
    }

    /// A JSON value the stream cut short or that broke off mid-line.
    fn broken_value<S: Sink + ?Sized>(&mut self, sink: &mut S, value: &ValueScan) {
        if value.elem_depth.is_some() {
            if value.overflow {
                self.big_object(sink, &value.capture);
            } else {
                sink.broken_object(&value.capture);
            }
        }
    }
}

fn text_line<S: Sink + ?Sized>(sink: &mut S, line: &[u8]) {
    if !line.is_empty() {
        sink.text_line(&line[..line.len().min(PREFIX_KEEP)]);
    }
}

fn rest_of_line<S: Sink + ?Sized>(sink: &mut S, kept: &[u8], after_json: bool) {
    if !after_json {
        text_line(sink, trim_end(kept));
    } else if !trim_start(kept).is_empty() {
        sink.trailing_text(kept);
    }
}

enum Step {
    /// All bytes given were consumed; the value goes on.
    More,
    /// An element object closed (its bytes are in `capture`); `done` when it was the whole value.
    Element { done: bool },
    /// The value closed.
    Done,
    /// The value broke off: a raw newline inside a string, or a new line that cannot continue it.
    Abort,
}

/// A structural scan of one JSON value (an object, or an array of objects) that may span lines
/// and buffers. It tracks strings and depth only; it keeps the current element object (the
/// top-level object, or an object directly inside the top-level array) up to a cap.
#[derive(Default)]
struct ValueScan {
    depth: u32,
    top_is_array: bool,
    in_string: bool,
    escape: bool,
    line_start: bool,
    /// The depth inside the element being kept, while one is open.
    elem_depth: Option<u32>,
    capture: Vec<u8>,
    overflow: bool,
}

impl ValueScan {
    fn keep(&mut self, bytes: &[u8], cap: usize) {
        if self.overflow {
            return;
        }
        if self.capture.len() + bytes.len() > cap {
            self.overflow = true;
            let room = PREFIX_KEEP.saturating_sub(self.capture.len());
            self.capture
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.capture.truncate(PREFIX_KEEP);
            self.capture.shrink_to(PREFIX_KEEP);
        } else {
            self.capture.extend_from_slice(bytes);
        }
    }

    /// Scan `data`; returns the bytes consumed and what happened.
    fn feed(&mut self, data: &[u8], cap: usize) -> (usize, Step) {
        let mut kept_from = self.elem_depth.map(|_| 0);
        let mut i = 0;
        if self.escape && !data.is_empty() {
            self.escape = false;
            i = 1;
        }
        while i < data.len() {
            if self.in_string {
                match memchr3(b'"', b'\\', b'\n', &data[i..]) {
                    None => i = data.len(),
                    Some(k) => {
                        i += k;
                        match data[i] {
                            b'"' => {
                                self.in_string = false;
                                i += 1;
                            }
                            b'\\' if i + 1 < data.len() => i += 2,
                            b'\\' => {
                                self.escape = true;
                                i += 1;
                            }
                            _ => {
                                if let Some(from) = kept_from {
                                    self.keep(&data[from..i], cap);
                                }
                                return (i + 1, Step::Abort);
                            }
                        }
                    }
                }
                continue;
            }
            let byte = data[i];
            if self.line_start && byte != b'\n' {
                let between_elements = self.top_is_array && self.depth == 1;
                let fits = byte.is_ascii_whitespace()
                    || matches!(byte, b'}' | b']' | b'"')
                    || (between_elements && matches!(byte, b'{' | b'[' | b','));
                if !fits {
                    if let Some(from) = kept_from {
                        self.keep(&data[from..i], cap);
                    }
                    return (i, Step::Abort);
                }
                self.line_start = false;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if self.depth == 0 {
                        self.top_is_array = byte == b'[';
                    }
                    self.depth += 1;
                    let element_level = if self.top_is_array { 2 } else { 1 };
                    if byte == b'{' && self.elem_depth.is_none() && self.depth == element_level {
                        self.elem_depth = Some(self.depth);
                        self.capture.clear();
                        self.overflow = false;
                        kept_from = Some(i);
                    }
                }
                b'}' | b']' => {
                    let closing = self.depth;
                    self.depth = self.depth.saturating_sub(1);
                    if self.elem_depth == Some(closing) {
                        self.elem_depth = None;
                        if let Some(from) = kept_from.take() {
                            self.keep(&data[from..=i], cap);
                        }
                        return (
                            i + 1,
                            Step::Element {
                                done: self.depth == 0,
                            },
                        );
                    }
                    if self.depth == 0 {
                        return (i + 1, Step::Done);
                    }
                }
                b'\n' => self.line_start = true,
                _ => {}
            }
            i += 1;
        }
        if let Some(from) = kept_from {
            self.keep(&data[from..], cap);
        }
        (data.len(), Step::More)
    }
}

/// A reader that hands out a few bytes at a time, as a pipe may (for tests of every reader).
#[cfg(test)]
pub(crate) struct Trickle<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.len().min(buf.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes down what it is handed; keeps objects of type "keep".
    #[derive(Default)]
    struct Record(Vec<String>);

    fn show(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    impl Sink for Record {
        fn text_line(&mut self, line: &[u8]) {
            self.0.push(format!("text {}", show(line)));
        }
        fn object(&mut self, object: &[u8]) -> Keep {
            self.0.push(format!("object {}", show(object)));
            match fast_type(object) {
                Some(b"keep") => Keep::This,
                _ => Keep::No,
            }
        }
        fn big_object(&mut self, prefix: &[u8]) -> Keep {
            self.0
                .push(format!("big {}", show(&prefix[..prefix.len().min(13)])));
            Keep::This
        }
        fn broken_object(&mut self, object: &[u8]) {
            self.0.push(format!("broken {}", show(object)));
        }
        fn trailing_text(&mut self, text: &[u8]) {
            self.0.push(format!("after {}", show(text)));
        }
    }

    fn scan_with(text: &str, limits: Limits, step: usize) -> (Vec<String>, Summary) {
        let mut record = Record::default();
        let reader = Trickle {
            data: text.as_bytes(),
            step,
        };
        let summary = scan(reader, &mut record, limits).unwrap();
        (record.0, summary)
    }

    const LOG: &str =
        "{\"type\":\"a\"}\r\n  \nwarning: x\n[{\"type\":\"b\"},{\"type\":\"c\"}] tail\n\
                       {\n  \"type\": \"d\"\n}\n{\"type\":\"e\",\"x\":\"cut";

    #[test]
    fn lines_arrays_spread_objects_and_a_cut_last_line() {
        let (items, summary) = scan_with(LOG, Limits::DEFAULT, 1 << 20);
        assert_eq!(
            items,
            [
                "object {\"type\":\"a\"}",
                "text warning: x",
                "object {\"type\":\"b\"}",
                "object {\"type\":\"c\"}",
                "after  tail",
                "object {\n  \"type\": \"d\"\n}",
                "broken {\"type\":\"e\",\"x\":\"cut",
            ]
        );
        assert!(summary.nonblank && summary.ended_inside_value);
        assert_eq!(summary.bytes, LOG.len() as u64);
    }

    #[test]
    fn reading_in_pieces_through_a_small_buffer_changes_nothing() {
        let (whole, _) = scan_with(LOG, Limits::DEFAULT, 1 << 20);
        for buf in [16, 17, 23, 40, 64] {
            for step in [1, 3, 7] {
                let limits = Limits {
                    buf,
                    ..Limits::DEFAULT
                };
                assert_eq!(
                    scan_with(LOG, limits, step).0,
                    whole,
                    "buf {buf} step {step}"
                );
            }
        }
    }

    #[test]
    fn an_object_over_the_cap_is_handed_over_as_its_first_bytes() {
        let big = format!(
            "{{\"type\":\"big\",\"x\":\"{}\"}}\n{{\"type\":\"a\"}}\n",
            "z".repeat(500)
        );
        let limits = Limits {
            buf: 64,
            object_cap: 100,
            ..Limits::DEFAULT
        };
        let (items, _) = scan_with(&big, limits, 1 << 20);
        assert_eq!(items, ["big {\"type\":\"big\"", "object {\"type\":\"a\"}"]);
    }

    #[test]
    fn text_lines_are_cut_to_the_prefix_kept() {
        let long = format!("{}\n", "y".repeat(3 * PREFIX_KEEP));
        for buf in [64, 1 << 20] {
            let limits = Limits {
                buf,
                ..Limits::DEFAULT
            };
            let (items, _) = scan_with(&long, limits, 1 << 20);
            assert_eq!(items, [format!("text {}", "y".repeat(PREFIX_KEEP))]);
        }
    }

    #[test]
    fn the_last_object_asked_for_is_kept_when_small() {
        let small = r#"{"type":"keep","n":1}"#;
        let later = r#"{"type":"keep","n":2}"#;
        let log = format!("{small}\n{{\"type\":\"other\"}}\n[{later}]\n");
        let (_, summary) = scan_with(&log, Limits::DEFAULT, 1 << 20);
        assert_eq!(summary.kept, later.as_bytes());
        let limits = Limits {
            keep_max: 10,
            ..Limits::DEFAULT
        };
        let (_, summary) = scan_with(&log, limits, 1 << 20);
        assert!(summary.kept.is_empty());
    }

    #[test]
    fn whitespace_is_blank_and_types_are_read_from_the_first_bytes() {
        let (items, summary) = scan_with(" \r\n\t\n", Limits::DEFAULT, 1 << 20);
        assert!(items.is_empty() && !summary.nonblank);
        assert_eq!(
            fast_type(br#"{"type": "result","x":1}"#),
            Some(&b"result"[..])
        );
        assert_eq!(fast_type(br#"{"x":1,"type":"result"}"#), None);
        let token = TypeToken::new("result");
        assert!(token.found_in(br#"{"x":{"type" : "result"}}"#));
        assert!(!token.found_in(br#"{"text":"type result","result":1}"#));
    }
}
