//! Claude Code's stream-json output (`--output-format stream-json --verbose`) as it arrives: one
//! JSON object a line (`system`, `assistant`, `user`, `result`), with stderr text possibly mixed
//! in. Here only the live progress `run` shows on a terminal; the verdict on a finished log is
//! `judge`'s.

use serde_json::Value;

use crate::agent::Progress;

/// What the live status line shows, accumulated line by line as the agent prints.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StreamProgress {
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Known once the result arrives: the stream carries no cost before it.
    pub cost_usd: Option<f64>,
    pub last_tool: Option<String>,
    /// Claude Code is retrying an API call (`system`/`api_retry`, for up to about three minutes):
    /// activity, not a stall, and worth showing. Cleared by the next message.
    pub retrying: Option<String>,
    last_message_id: Option<String>,
}

impl Progress for StreamProgress {
    /// Take one output line into account; anything that is not a stream-json object is ignored.
    fn observe(&mut self, line: &[u8]) {
        if line.first() != Some(&b'{') {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        if value["type"] == "system" && value["subtype"] == "api_retry" {
            self.retrying = Some(super::transcript::retry_notice(&value));
            return;
        }
        self.retrying = None;
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

    /// "1m05s · 2 turns · 150 tokens · $0.0123 · Bash"
    fn render(&self, elapsed_secs: u64) -> String {
        let tokens = self.input_tokens + self.output_tokens;
        let mut parts = crate::agent::status_parts(elapsed_secs, self.turns, "turn", tokens);
        if let Some(cost) = self.cost_usd {
            parts.push(format!("${cost:.4}"));
        }
        if let Some(tool) = &self.last_tool {
            parts.push(tool.clone());
        }
        if let Some(retrying) = &self.retrying {
            parts.push(retrying.clone());
        }
        parts.join(" · ")
    }
}

impl StreamProgress {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSISTANT_TOOL: &str = r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","name":"Bash","input":{}}],"usage":{"input_tokens":100,"output_tokens":20}}}"#;
    const ASSISTANT_TEXT: &str = r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":100,"output_tokens":20}}}"#;
    const RESULT: &str = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":3,"result":"All done","total_cost_usd":0.5,"usage":{"input_tokens":300,"output_tokens":40}}"#;

    #[test]
    fn progress_counts_a_message_once_and_takes_the_result() {
        let mut progress = StreamProgress::default();
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
        progress.observe(br#"{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"error_status":529,"error":"overloaded"}"#);
        assert_eq!(
            progress.render(65),
            "1m05s · 1 turn · 120 tokens · Bash · retrying: attempt 2/10 after 529 overloaded"
        );
        progress.observe(RESULT.as_bytes());
        assert_eq!(
            progress.render(5),
            "0m05s · 3 turns · 340 tokens · $0.5000 · Bash"
        );
    }
}
