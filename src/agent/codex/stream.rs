//! Codex's `--json` events as they arrive, for the live status line: turns, the thread's tokens,
//! the last command, and whether it is reconnecting (Codex retries for ever when it cannot reach
//! its server: the line says so, where a quiet log would look stalled).

use serde_json::Value;

use crate::agent::Progress;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CodexProgress {
    pub turns: u64,
    pub tokens: u64,
    pub last_command: Option<String>,
    /// The last reconnect notice, until an event shows Codex got through.
    pub reconnecting: Option<String>,
}

impl Progress for CodexProgress {
    fn observe(&mut self, line: &[u8]) {
        if line.first() != Some(&b'{') {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        match value["type"].as_str() {
            Some("turn.started") => self.turns += 1,
            Some("error") => {
                let message = value["message"].as_str().unwrap_or("");
                if message.starts_with("Reconnecting") {
                    self.reconnecting = Some(crate::output::clip(message, 60));
                }
                return;
            }
            Some("turn.completed") => {
                let usage = &value["usage"];
                self.tokens = usage["input_tokens"].as_u64().unwrap_or(0)
                    + usage["output_tokens"].as_u64().unwrap_or(0);
            }
            Some("item.started") if value["item"]["type"] == "command_execution" => {
                if let Some(command) = value["item"]["command"].as_str() {
                    self.last_command = Some(crate::output::clip(command, 40));
                }
            }
            _ => {}
        }
        self.reconnecting = None;
    }

    /// "0m42s · 1 turn · 225 tokens · ls -la", or "… · Reconnecting... 2/5 (…)".
    fn render(&self, elapsed_secs: u64) -> String {
        let mut parts = crate::agent::status_parts(elapsed_secs, self.turns, "turn", self.tokens);
        if let Some(retry) = &self.reconnecting {
            parts.push(retry.clone());
        } else if let Some(command) = &self.last_command {
            parts.push(command.clone());
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_tokens_commands_and_reconnects() {
        let mut progress = CodexProgress::default();
        progress.observe(br#"{"type":"turn.started"}"#);
        progress.observe(br#"{"type":"item.started","item":{"type":"command_execution","command":"cargo test"}}"#);
        assert_eq!(
            progress.render(65),
            "1m05s · 1 turn · 0 tokens · cargo test"
        );
        progress
            .observe(br#"{"type":"error","message":"Reconnecting... 2/5 (stream disconnected)"}"#);
        assert!(progress
            .render(1)
            .ends_with("Reconnecting... 2/5 (stream disconnected)"));
        progress.observe(
            br#"{"type":"turn.completed","usage":{"input_tokens":120,"output_tokens":5}}"#,
        );
        assert_eq!(
            progress.render(1),
            "0m01s · 1 turn · 125 tokens · cargo test"
        );
    }
}
