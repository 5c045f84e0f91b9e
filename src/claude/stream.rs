//! Reading Claude Code's stream-json output (`--output-format stream-json --verbose`): one JSON
//! object a line (`system`, `assistant`, `user`, `result`), with stderr text possibly mixed in.
//! Here only what `run` needs while and right after the agent works: live progress, and the last
//! result object read from a bounded tail of the log. The full verdict is validate-log's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::Value;

/// How much of a log's end is read for its result: the result object is the last line or nearly.
pub const TAIL_BYTES: u64 = 2 * 1024 * 1024;

/// What the live status line shows, accumulated line by line as the agent prints.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Progress {
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Known once the result arrives: the stream carries no cost before it.
    pub cost_usd: Option<f64>,
    pub last_tool: Option<String>,
    last_message_id: Option<String>,
}

impl Progress {
    /// Take one output line into account; anything that is not a stream-json object is ignored.
    pub fn observe(&mut self, line: &[u8]) {
        if line.first() != Some(&b'{') {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        match value["type"].as_str() {
            Some("assistant") => self.assistant(&value["message"]),
            Some("result") => {
                if let Some(turns) = value["num_turns"].as_u64() {
                    self.turns = turns;
                }
                if let Some(cost) = value["total_cost_usd"].as_f64() {
                    self.cost_usd = Some(cost);
                }
                let usage = &value["usage"];
                if let (Some(input), Some(output)) = (
                    usage["input_tokens"].as_u64(),
                    usage["output_tokens"].as_u64(),
                ) {
                    self.input_tokens = input;
                    self.output_tokens = output;
                }
            }
            _ => {}
        }
    }

    fn assistant(&mut self, message: &Value) {
        // Claude Code prints one line per content block, each repeating its message's id and
        // usage: count a message once.
        let id = message["id"].as_str();
        let repeated = id.is_some() && id == self.last_message_id.as_deref();
        if !repeated {
            self.last_message_id = id.map(str::to_string);
            self.turns += 1;
            let usage = &message["usage"];
            self.input_tokens += usage["input_tokens"].as_u64().unwrap_or(0);
            self.output_tokens += usage["output_tokens"].as_u64().unwrap_or(0);
        }
        let tools = message["content"].as_array().into_iter().flatten();
        for block in tools.filter(|b| b["type"] == "tool_use") {
            if let Some(name) = block["name"].as_str() {
                self.last_tool = Some(name.to_string());
            }
        }
    }

    /// "1m05s · 2 turns · 150 tokens · $0.0123 · Bash"
    pub fn render(&self, elapsed_secs: u64) -> String {
        let mut parts = vec![
            format!("{}m{:02}s", elapsed_secs / 60, elapsed_secs % 60),
            format!(
                "{} turn{}",
                self.turns,
                if self.turns == 1 { "" } else { "s" }
            ),
            format!("{} tokens", self.input_tokens + self.output_tokens),
        ];
        if let Some(cost) = self.cost_usd {
            parts.push(format!("${cost:.4}"));
        }
        if let Some(tool) = &self.last_tool {
            parts.push(tool.clone());
        }
        parts.join(" · ")
    }
}

/// The last `result` object of a log.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalResult {
    pub is_error: bool,
    pub subtype: String,
    pub text: String,
    pub errors: Vec<String>,
}

impl FinalResult {
    /// A successful result, as far as the object itself says (the exit code is judged elsewhere).
    pub fn is_ok(&self) -> bool {
        !self.is_error && self.subtype == "success"
    }
}

/// The last `max_bytes` of the file, from the first whole line in them.
pub fn read_tail(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    // From one byte before the window: if that byte ends a line, the window starts a whole one.
    let start = len.saturating_sub(max_bytes).saturating_sub(1);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(max_bytes + 1).read_to_end(&mut tail)?;
    if start > 0 {
        let first_newline = memchr::memchr(b'\n', &tail).map_or(tail.len(), |at| at + 1);
        tail.drain(..first_newline);
    }
    Ok(tail)
}

/// The lines of `bytes`, without their line ends (`\n` or `\r\n`), blank ones skipped.
pub fn lines(bytes: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.trim_ascii().is_empty())
}

/// The last `result` object among `bytes`' lines.
pub fn last_result(bytes: &[u8]) -> Option<FinalResult> {
    lines(bytes).rev().find_map(|line| {
        let line = line.trim_ascii();
        if !line.starts_with(b"{") {
            return None;
        }
        let value: Value = serde_json::from_slice(line).ok()?;
        if value["type"] != "result" {
            return None;
        }
        let errors = value["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
            .collect();
        Some(FinalResult {
            is_error: value["is_error"].as_bool().unwrap_or(false),
            subtype: value["subtype"].as_str().unwrap_or_default().to_string(),
            text: value["result"].as_str().unwrap_or_default().to_string(),
            errors,
        })
    })
}

/// The result text of a log whose last result is a success, cut to `max_bytes` on a character
/// boundary. None when the log is unreadable or holds no successful result in its tail.
pub fn ok_result_text(path: &Path, max_bytes: usize) -> Option<String> {
    let tail = read_tail(path, TAIL_BYTES).ok()?;
    let result = last_result(&tail).filter(FinalResult::is_ok)?;
    let mut text = result.text;
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[… cut by orch]");
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSISTANT_TOOL: &str = r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","name":"Bash","input":{}}],"usage":{"input_tokens":100,"output_tokens":20}}}"#;
    const ASSISTANT_TEXT: &str = r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":100,"output_tokens":20}}}"#;
    const RESULT: &str = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":3,"result":"All done","total_cost_usd":0.5,"usage":{"input_tokens":300,"output_tokens":40}}"#;

    #[test]
    fn progress_counts_a_message_once_and_takes_the_result() {
        let mut progress = Progress::default();
        progress.observe(b"{\"type\":\"system\",\"subtype\":\"init\"}");
        progress.observe(ASSISTANT_TOOL.as_bytes());
        progress.observe(ASSISTANT_TEXT.as_bytes());
        progress.observe(b"warning: not json");
        progress.observe(b"{\"type\":\"assistant\",\"message\":{\"cut");
        assert_eq!(
            (
                progress.turns,
                progress.input_tokens + progress.output_tokens
            ),
            (1, 120)
        );
        assert_eq!(progress.render(65), "1m05s · 1 turn · 120 tokens · Bash");
        progress.observe(RESULT.as_bytes());
        assert_eq!(
            progress.render(5),
            "0m05s · 3 turns · 340 tokens · $0.5000 · Bash"
        );
    }

    #[test]
    fn last_result_skips_trailing_lines() {
        let log =
            format!("{ASSISTANT_TEXT}\r\n{RESULT}\r\nstderr noise\n{{\"type\":\"system\"}}\n");
        let result = last_result(log.as_bytes()).unwrap();
        assert!(result.is_ok());
        assert_eq!(result.text, "All done");
        assert_eq!(last_result(b"no json at all\n"), None);
    }

    #[test]
    fn tail_starts_at_a_whole_line_and_text_is_cut_on_a_char() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let long = format!("{}\n{RESULT}\n", "x".repeat(5000));
        std::fs::write(&path, &long).unwrap();
        let tail = read_tail(&path, RESULT.len() as u64 + 10).unwrap();
        assert_eq!(tail, format!("{RESULT}\n").as_bytes());
        let exact = read_tail(&path, RESULT.len() as u64 + 1).unwrap();
        assert_eq!(exact, tail);
        assert_eq!(read_tail(&path, 1 << 20).unwrap(), long.as_bytes());
        assert_eq!(ok_result_text(&path, 1000).as_deref(), Some("All done"));
        let cut = ok_result_text(&path, 5).unwrap();
        assert!(
            cut.starts_with("All d") && cut.ends_with("cut by orch]"),
            "{cut}"
        );
    }
}
