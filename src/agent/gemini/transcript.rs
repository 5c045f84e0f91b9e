//! Gemini's stream-json log as `orch logs` shows it: each line (an event, or stderr text) turned
//! into the neutral events of `agent::transcript` (which joins the chunks of the assistant's
//! text back into one event).

use serde_json::Value;
use std::collections::VecDeque;

use crate::agent::transcript::{first_line, input_gist, object_or_raw, raw, Event};

pub fn events_of_line(line: &[u8], out: &mut VecDeque<Event>) {
    let Some(value) = object_or_raw(line, out) else {
        return;
    };
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    match value["type"].as_str() {
        Some("init") => out.push_back(Event::Init {
            model: text_of(&value["model"]),
            cwd: None,
            session_id: text_of(&value["session_id"]),
        }),
        Some("message") => {
            let text = text_of(&value["content"]).unwrap_or_default();
            out.push_back(match value["role"].as_str() {
                Some("user") => Event::UserText { text },
                _ => Event::Text { text },
            });
        }
        Some("tool_use") => out.push_back(Event::ToolUse {
            name: text_of(&value["tool_name"]).unwrap_or_else(|| "?".into()),
            input: input_gist(&value["parameters"]),
        }),
        Some("tool_result") => {
            let is_error = value["status"] != "success";
            let said = text_of(&value["output"])
                .filter(|o| !o.is_empty())
                .or_else(|| text_of(&value["error"]["message"]))
                .unwrap_or_default();
            let (text, more_lines) = first_line(&said);
            out.push_back(Event::ToolResult {
                text,
                more_lines,
                is_error,
            });
        }
        Some("error") => out.push_back(Event::Notice {
            text: format!(
                "{}: {}",
                value["severity"].as_str().unwrap_or("error"),
                value["message"].as_str().unwrap_or("")
            ),
        }),
        Some("result") => {
            let status = text_of(&value["status"]);
            out.push_back(Event::Result {
                is_error: status.as_deref() != Some("success"),
                subtype: status,
                text: text_of(&value["error"]["message"]),
                turns: None,
                cost_usd: None,
                duration_ms: value["stats"]["duration_ms"].as_u64(),
            });
        }
        Some(kind) => out.push_back(Event::Other {
            kind: kind.to_string(),
        }),
        None => out.push_back(raw(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::transcript::{Joined, Transcript};
    use std::io;

    #[test]
    fn chunks_are_joined_and_tools_shown() {
        let log = concat!(
            "Ripgrep is not available. Falling back to GrepTool.\n",
            r#"{"type":"init","session_id":"s-1","model":"auto"}"#,
            "\n",
            r#"{"type":"message","role":"user","content":"say hi"}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"h","delta":true}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"i","delta":true}"#,
            "\n",
            r#"{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t1","parameters":{"command":"ls"}}"#,
            "\n",
            r#"{"type":"tool_result","tool_id":"t1","status":"error","output":"","error":{"type":"tool_not_registered","message":"Tool not found."}}"#,
            "\n",
            r#"{"type":"error","severity":"warning","message":"Loop detected, stopping execution"}"#,
            "\n",
            r#"{"type":"result","status":"success","stats":{"duration_ms":113}}"#,
            "\n",
        );
        let events: Vec<Event> = Joined::new(Transcript::new(log.as_bytes(), events_of_line))
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(
            events,
            [
                Event::Raw {
                    text: "Ripgrep is not available. Falling back to GrepTool.".into()
                },
                Event::Init {
                    model: Some("auto".into()),
                    cwd: None,
                    session_id: Some("s-1".into())
                },
                Event::UserText {
                    text: "say hi".into()
                },
                Event::Text { text: "hi".into() },
                Event::ToolUse {
                    name: "run_shell_command".into(),
                    input: "ls".into()
                },
                Event::ToolResult {
                    text: "Tool not found.".into(),
                    more_lines: 0,
                    is_error: true
                },
                Event::Notice {
                    text: "warning: Loop detected, stopping execution".into()
                },
                Event::Result {
                    subtype: Some("success".into()),
                    is_error: false,
                    text: None,
                    turns: None,
                    cost_usd: None,
                    duration_ms: Some(113)
                },
            ]
        );
    }
}
