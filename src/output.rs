//! Printing: JSON for machines, aligned tables with marks and relative times for people.
//! stdout carries data only; diagnostics go to stderr.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Local, TimeZone};
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::claude::verdict::{Class, Kind};
use crate::cli::ColorChoice;

/// Print one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Print text on stdout (a closed pipe surfaces as an io error the boundary treats as success).
pub fn line(text: impl AsRef<str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref().as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Replace `path` with `bytes` atomically, for files other programs read while orch rewrites
/// them (metrics for node_exporter, generated manual pages): a temporary file in the same
/// directory, written and synced, then renamed over `path`. A reader sees the old file or the new
/// one, never half of either. The file gets `mode` whatever the umask: it is for other users, so
/// it never holds a secret.
pub fn write_public_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
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

pub fn parse_color(value: &str) -> Option<ColorChoice> {
    match value {
        "auto" => Some(ColorChoice::Auto),
        "always" => Some(ColorChoice::Always),
        "never" => Some(ColorChoice::Never),
        _ => None,
    }
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
    /// `text` in `style` when colour is on, else as it is.
    fn styled(&self, text: &str, style: impl FnOnce(&str) -> String) -> String {
        if self.color {
            style(text)
        } else {
            text.to_string()
        }
    }
    pub fn pass(&self, text: &str) -> String {
        self.styled(text, |t| t.green().to_string())
    }
    pub fn fail(&self, text: &str) -> String {
        self.styled(text, |t| t.red().bold().to_string())
    }
    pub fn warn(&self, text: &str) -> String {
        self.styled(text, |t| t.yellow().to_string())
    }
    pub fn dim(&self, text: &str) -> String {
        self.styled(text, |t| t.dimmed().to_string())
    }
    pub fn bold(&self, text: &str) -> String {
        self.styled(text, |t| t.bold().to_string())
    }
    /// A verdict class coloured by its kind: ok green, transient yellow, permanent or gate red;
    /// a class the verdict does not know (`lease_expired`) like a state.
    pub fn class(&self, class: &str) -> String {
        match Class::from_name(class).map(Class::kind) {
            Some(Kind::Ok) => self.pass(class),
            Some(Kind::Transient) => self.warn(class),
            Some(Kind::Permanent | Kind::Gate) => self.fail(class),
            None => self.state(class),
        }
    }

    /// A state name coloured by what it means.
    pub fn state(&self, state: &str) -> String {
        match state {
            "done" | "complete" | "ok" | "pass" | "closed" | "sent" => self.pass(state),
            "failed" | "fail" | "open" | "dead" => self.fail(state),
            "running" | "queued" | "warn" | "half-open" => self.warn(state),
            _ => state.to_string(),
        }
    }
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

/// Display width of text without ANSI escape sequences.
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for ch in text.chars() {
        match (in_escape, ch) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
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
