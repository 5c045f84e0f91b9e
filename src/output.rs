//! Printing: JSON for machines, aligned tables with marks and relative times for people.
//! stdout carries data only; diagnostics go to stderr.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Local, TimeZone};
use serde::Serialize;

/// Print one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Print text on stdout (a closed pipe surfaces as an io error the boundary treats as success),
/// made safe for a terminal (`terminal_text`).
pub fn line(text: impl AsRef<str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(terminal_text(text.as_ref()).as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Print a diagnostic line on stderr, made safe for a terminal. Write errors are ignored: there
/// is nowhere left to report them.
pub fn diag(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(terminal_text(text).as_bytes());
    let _ = err.write_all(b"\n");
}

/// `eprintln!` for orch: the line goes through `output::diag`, so text from outside (a server's
/// reply, git's stderr, a task's title) cannot drive the operator's terminal.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::output::diag(&format!($($arg)*))
    };
}

// Terminal safety, in one place. Every line orch prints for people passes through
// `terminal_text`: control characters (escape sequences, carriage returns, bells) and Unicode's
// bidirectional overrides become U+FFFD, whatever their source. orch's own colours cannot be
// written as escape sequences then, so `Paint` writes them as markers — U+E000, this process's
// random nonce, the SGR parameters, U+E001 — which `terminal_text` alone turns into SGR
// sequences. Text from outside cannot forge a marker: it does not know the nonce.
const MARK_OPEN: char = '\u{e000}';
const MARK_CLOSE: char = '\u{e001}';

fn nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| {
        use std::hash::{BuildHasher, RandomState};
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let bits = RandomState::new().hash_one((time, std::process::id()));
        format!("{bits:016x}")
    })
}

/// An SGR colour for `Paint`: a marker only `terminal_text` turns into an escape sequence.
fn sgr(params: &str) -> String {
    format!("{MARK_OPEN}{}{params}{MARK_CLOSE}", nonce())
}

/// A character that must not reach a terminal as it is.
fn unsafe_for_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` made safe for a terminal: see the comment above `MARK_OPEN`.
pub fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c == MARK_OPEN || unsafe_for_terminal(c))
    {
        return text.into();
    }
    let nonce = nonce();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == MARK_OPEN {
            let marker = rest.strip_prefix(nonce).and_then(|tail| {
                let end = tail.find(MARK_CLOSE)?;
                let params = &tail[..end];
                params
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b';')
                    .then_some((params, &tail[end + MARK_CLOSE.len_utf8()..]))
            });
            if let Some((params, tail)) = marker {
                out.push_str("\u{1b}[");
                out.push_str(params);
                out.push('m');
                rest = tail;
                continue;
            }
        }
        out.push(if unsafe_for_terminal(c) {
            '\u{fffd}'
        } else {
            c
        });
    }
    out.into()
}

/// A writer that passes everything through `terminal_text`, for commands that stream their
/// output (`orch logs`). Each write is expected to hold whole characters; a character cut at the
/// end of one write is completed by the next.
pub struct TerminalWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> TerminalWriter<W> {
    pub fn new(inner: W) -> TerminalWriter<W> {
        TerminalWriter {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for TerminalWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // A character cut at the end waits for its rest; bytes that can never be UTF-8 are
            // shown as U+FFFD.
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let head: Vec<u8> = self.pending.drain(..valid).collect();
        let text = String::from_utf8_lossy(&head);
        self.inner.write_all(terminal_text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let text = String::from_utf8_lossy(&rest).into_owned();
            self.inner.write_all(terminal_text(&text).as_bytes())?;
        }
        self.inner.flush()
    }
}

/// Replace `path` with `bytes` atomically, for files other programs read while orch rewrites
/// them (metrics for node_exporter, generated manual pages): a temporary file in the same
/// directory, written and synced, then renamed over `path`. A reader sees the old file or the new
/// one, never half of either. The file gets `mode` whatever the umask: it is for other users, so
/// it never holds a secret.
///
/// Only a regular file or a missing path is replaced: the rename would put a regular file in
/// the place of a device (`--out /dev/null` as root), a FIFO or a directory's entry, and would
/// replace a symbolic link rather than what it points at (so a link is refused too, naming its
/// target). A usage error: the path is the caller's argument.
pub fn write_public_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(path).unwrap_or_default();
            return Err(crate::exit::usage(format!(
                "{} is a symbolic link (to {}); orch replaces only a regular file: give the \
                 link's target as the path",
                path.display(),
                target.display()
            )));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(crate::exit::usage(format!(
                "{} is {}; orch replaces only a regular file or creates a missing one",
                path.display(),
                crate::fsx::file_kind(&meta)
            )));
        }
        _ => {}
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.map_or_else(|| temp_name.clone().into(), |d| d.join(&temp_name));
    let written = (|| -> std::io::Result<()> {
        // A temporary file left by a crashed orch that had our pid is ours to replace.
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// Whether human output gets colour: `--color`/`ORCH_COLOR`, else a terminal without NO_COLOR
/// and with a TERM other than `dumb`. Never with `--json`.
pub fn use_color(choice: &str, json: bool) -> bool {
    if json {
        return false;
    }
    match choice {
        "always" => true,
        "never" => false,
        _ => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// Whether `value` is a colour choice: auto, always or never.
pub fn is_color_choice(value: &str) -> bool {
    matches!(value, "auto" | "always" | "never")
}

/// Text from elsewhere (an agent's log) made safe to print on a terminal: control characters
/// other than tab become U+FFFD, so escape sequences in it cannot move the cursor, retitle the
/// window or recolour the screen.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\t';
    if text.chars().any(unsafe_char) {
        text.chars()
            .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// A byte count for people: "812 B", "2.1 kB", "1.3 MB", "4.0 GB".
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The width to wrap text for people at: `COLUMNS` when set, else the terminal's width when stdout
/// is one; None (no wrapping) for a pipe or a file.
pub fn wrap_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c >= 20)
    {
        return Some(columns);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the winsize struct on this stack frame.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col >= 20).then_some(usize::from(size.ws_col))
}

/// `line` wrapped at `width` on spaces, the lines after the first indented by `indent` columns (a
/// hanging indent). A word is never split: a variable name, a path or a command longer than the
/// room stays whole on a line of its own, where it can be copied.
pub fn wrap(line: &str, indent: usize, width: Option<usize>) -> String {
    let Some(width) = width else {
        return line.to_string();
    };
    if visible_width(line) <= width {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut used = 0;
    // Whether the current output line holds a word yet: only then may it break.
    let mut has_word = false;
    let mut spaces = "";
    let mut rest = line;
    while !rest.is_empty() {
        let run = rest.len() - rest.trim_start_matches(' ').len();
        if run > 0 {
            spaces = &rest[..run];
            rest = &rest[run..];
            continue;
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let len = visible_width(word);
        if has_word && used + spaces.len() + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            used = indent;
        } else {
            out.push_str(spaces);
            used += spaces.len();
        }
        out.push_str(word);
        used += len;
        has_word = true;
        spaces = "";
    }
    out
}

/// A duration for people, the one format every command uses: "850 ms", "4.0 s", "3 min 12 s",
/// "1 h 02 min".
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if secs < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else {
        format!("{} h {:02} min", secs / 3600, secs % 3600 / 60)
    }
}

/// As `duration`, for a signed count of milliseconds (negative ones are 0).
pub fn duration_i(ms: i64) -> String {
    duration(u64::try_from(ms).unwrap_or(0))
}

/// `text` cut to at most `max_chars` characters, an ellipsis marking the cut.
pub fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Marks and emphasis that degrade to plain text without colour.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    /// `text` between the SGR parameters `on` and `off` when colour is on, else as it is.
    fn styled(&self, text: &str, on: &str, off: &str) -> String {
        if self.color {
            format!("{}{text}{}", sgr(on), sgr(off))
        } else {
            text.to_string()
        }
    }
    pub fn pass(&self, text: &str) -> String {
        self.styled(text, "32", "39")
    }
    pub fn fail(&self, text: &str) -> String {
        self.styled(text, "1;31", "22;39")
    }
    pub fn warn(&self, text: &str) -> String {
        self.styled(text, "33", "39")
    }
    pub fn dim(&self, text: &str) -> String {
        self.styled(text, "2", "22")
    }
    pub fn bold(&self, text: &str) -> String {
        self.styled(text, "1", "22")
    }
    /// `text` in the colour of `tone`.
    pub fn tone(&self, tone: Tone, text: &str) -> String {
        match tone {
            Tone::Good => self.pass(text),
            Tone::Caution => self.warn(text),
            Tone::Bad => self.fail(text),
            Tone::Plain => text.to_string(),
        }
    }

    /// A state name coloured by what it means.
    pub fn state(&self, state: &str) -> String {
        let tone = match state {
            "done" | "complete" | "ok" | "pass" | "closed" | "sent" => Tone::Good,
            "failed" | "fail" | "open" | "dead" => Tone::Bad,
            "running" | "queued" | "warn" | "half-open" => Tone::Caution,
            _ => Tone::Plain,
        };
        self.tone(tone, state)
    }
}

/// What a word means for the reader, whatever it names: the caller knows its meaning (a verdict
/// class's kind, say), `Paint` only its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Caution,
    Bad,
    Plain,
}

/// "in 4 min", "3 h ago", "just now".
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = (at_ms - now_ms) / 1000;
    if delta.unsigned_abs() < 5 {
        return "just now".to_string();
    }
    let amount = span(at_ms - now_ms);
    if delta > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A length of time, rounded to its largest unit: "40 s", "15 min", "3 h", "365 d".
pub fn span(ms: i64) -> String {
    let span = (ms / 1000).unsigned_abs();
    if span < 90 {
        format!("{span} s")
    } else if span < 90 * 60 {
        format!("{} min", (span + 30) / 60)
    } else if span < 36 * 3600 {
        format!("{} h", (span + 1800) / 3600)
    } else {
        format!("{} d", (span + 43200) / 86400)
    }
}

/// A time for text that is stored and read later, anywhere (a history line, an alert): UTC, to
/// the second, "2026-11-29 13:00:05 UTC".
pub fn stamp(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || at_ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Local wall-clock time with a relative hint: "14:03:12 (in 4 min)".
pub fn when(at_ms: i64, now_ms: i64) -> String {
    let local = Local.timestamp_millis_opt(at_ms).single();
    let clock = match local {
        Some(t) if (at_ms - now_ms).abs() < 20 * 3600 * 1000 => t.format("%H:%M:%S").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => at_ms.to_string(),
    };
    format!("{clock} ({})", relative(at_ms, now_ms))
}

/// A table whose columns line up, measured by the text's display width (colour codes excluded).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    pub fn render(&self, paint: Paint) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| visible_width(cell))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (index, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let last = c + 1 == row.len();
                let cell = if index == 0 {
                    paint.bold(cell)
                } else {
                    cell.clone()
                };
                line.push_str(&cell);
                if !last {
                    let pad = widths[c] - visible_width(&cell) + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.pop();
        out
    }
}

/// Display width of text without colour markers (see `MARK_OPEN`).
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_marker = false;
    for ch in text.chars() {
        match (in_marker, ch) {
            (false, MARK_OPEN) => in_marker = true,
            (true, MARK_CLOSE) => in_marker = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééé", 3), "ééé");
        assert_eq!(clip("", 3), "");
    }

    #[test]
    fn printable_replaces_control_characters() {
        assert_eq!(printable("a\tb"), "a\tb");
        assert_eq!(
            printable("\u{1b}[31mred\u{7}\r"),
            "\u{fffd}[31mred\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn only_orchs_own_colours_reach_the_terminal() {
        let paint = Paint { color: true };
        let outside = "title \u{1b}[2J\u{1b}]0;pwned\u{7} \u{202e}txt.exe\r";
        let forged = format!("{MARK_OPEN}0000000000000000;8{MARK_CLOSE}hidden");
        let text = format!("{} {outside} {forged}\n", paint.fail("failed"));
        let shown = terminal_text(&text);
        assert!(
            shown.starts_with("\u{1b}[1;31mfailed\u{1b}[22;39m title "),
            "{shown:?}"
        );
        assert_eq!(shown.matches('\u{1b}').count(), 2, "{shown:?}");
        assert!(
            shown.contains("\u{fffd}[2J\u{fffd}]0;pwned\u{fffd}"),
            "{shown:?}"
        );
        assert!(
            shown.contains("hidden") && shown.ends_with('\n'),
            "{shown:?}"
        );
        assert_eq!(terminal_text("plain"), "plain");
        let mut out = TerminalWriter::new(Vec::new());
        let bytes = "é\u{1b}".as_bytes();
        out.write_all(&bytes[..1]).unwrap();
        out.write_all(&bytes[1..]).unwrap();
        out.flush().unwrap();
        assert_eq!(String::from_utf8(out.inner).unwrap(), "é\u{fffd}");
    }

    #[test]
    fn wrapping_keeps_words_whole_under_a_hanging_indent() {
        let line = "  fix: export ORCH_CLAUDE_CREDENTIALS_PATH=/very/long/path/.credentials.json then retry";
        assert_eq!(
            wrap(line, 7, Some(30)),
            "  fix: export\n       ORCH_CLAUDE_CREDENTIALS_PATH=/very/long/path/.credentials.json\n       then retry"
        );
        assert_eq!(wrap(line, 7, None), line);
        assert_eq!(wrap("short", 2, Some(30)), "short");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(2_100), "2.1 kB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(1_300_000), "1.3 MB");
    }

    #[test]
    fn relative_hints() {
        assert_eq!(relative(1_000_000 + 240_000, 1_000_000), "in 4 min");
        assert_eq!(relative(1_000_000 - 3 * 3_600_000, 1_000_000), "3 h ago");
        assert_eq!(relative(1_000_000, 1_000_000), "just now");
    }

    #[test]
    fn table_aligns_coloured_cells() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec![Paint { color: true }.fail("failed"), "x".into()]);
        table.row(vec!["ok".into(), "y".into()]);
        let text = table.render(Paint { color: false });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "ok      y");
        assert!(lines[1].ends_with("  x"));
    }
}
