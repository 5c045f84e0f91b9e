//! Gemini's stream-json as it arrives, for the live status line: tool calls, tokens once the
//! result comes, the last tool, and the last warning. Gemini's retries go to stderr as prose
//! ("Attempt 3 failed … Retrying with backoff"): the line shows that too.

use serde_json::Value;

use crate::agent::Progress;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct GeminiProgress {
    pub tool_calls: u64,
    pub tokens: u64,
    pub last_tool: Option<String>,
    /// A retry or warning, until the next event.
    pub notice: Option<String>,
}

impl Progress for GeminiProgress {
    fn observe(&mut self, line: &[u8]) {
        if line.first() != Some(&b'{') {
            if line.starts_with(b"Attempt ") {
                let text = String::from_utf8_lossy(line);
                self.notice = Some(crate::output::clip(&text, 60));
            }
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        self.notice = None;
        match value["type"].as_str() {
            Some("tool_use") => {
                self.tool_calls += 1;
                self.last_tool = value["tool_name"].as_str().map(str::to_owned);
            }
            Some("error") => {
                let message = value["message"].as_str().unwrap_or("");
                self.notice = Some(crate::output::clip(message, 60));
            }
            Some("result") => {
                if let Some(total) = value["stats"]["total_tokens"].as_u64() {
                    self.tokens = total;
                }
            }
            _ => {}
        }
    }

    /// "0m42s · 2 tool calls · 106 tokens · run_shell_command".
    fn render(&self, elapsed_secs: u64) -> String {
        let mut parts =
            crate::agent::status_parts(elapsed_secs, self.tool_calls, "tool call", self.tokens);
        if let Some(notice) = &self.notice {
            parts.push(notice.clone());
        } else if let Some(tool) = &self.last_tool {
            parts.push(tool.clone());
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_retries_and_tokens() {
        let mut progress = GeminiProgress::default();
        progress.observe(br#"{"type":"init","session_id":"s"}"#);
        progress.observe(br#"{"type":"tool_use","tool_name":"read_file","tool_id":"t"}"#);
        assert_eq!(
            progress.render(3),
            "0m03s · 1 tool call · 0 tokens · read_file"
        );
        progress.observe(b"Attempt 2 failed with status 429. Retrying with backoff...");
        assert!(progress
            .render(3)
            .ends_with("Attempt 2 failed with status 429. Retrying with backoff..."));
        progress.observe(br#"{"type":"result","status":"success","stats":{"total_tokens":106}}"#);
        assert_eq!(
            progress.render(3),
            "0m03s · 1 tool call · 106 tokens · read_file"
        );
    }
}
