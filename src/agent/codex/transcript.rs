//! Codex's `--json` log as `orch logs` shows it: each line (an event, or stderr text) turned
//! into the neutral events of `agent::transcript`. The progress of an item (`item.started`,
//! `item.updated`) is left out: its completion says it all.

use std::collections::VecDeque;

use serde_json::Value;

use crate::agent::transcript::{first_line, input_gist, object_or_raw, raw, Event};

pub fn events_of_line(line: &[u8], out: &mut VecDeque<Event>) {
    let Some(value) = object_or_raw(line, out) else {
        return;
    };
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    match value["type"].as_str() {
        Some("thread.started") => out.push_back(Event::Init {
            model: None,
            cwd: None,
            session_id: text_of(&value["thread_id"]),
        }),
        Some("item.started" | "item.updated" | "turn.started") => {}
        Some("item.completed") => item(&value["item"], out),
        Some("turn.completed") => out.push_back(Event::Result {
            subtype: Some("turn.completed".into()),
            is_error: false,
            text: None,
            turns: None,
            cost_usd: None,
            duration_ms: None,
        }),
        Some("turn.failed") => out.push_back(Event::Result {
            subtype: Some("turn.failed".into()),
            is_error: true,
            text: text_of(&value["error"]["message"]),
            turns: None,
            cost_usd: None,
            duration_ms: None,
        }),
        Some("error") => out.push_back(Event::Notice {
            text: text_of(&value["message"]).unwrap_or_default(),
        }),
        Some(kind) => out.push_back(Event::Other {
            kind: kind.to_string(),
        }),
        None => out.push_back(raw(line)),
    }
}

/// A completed item: the agent's text, its reasoning, a command and its output, a change of
/// files, a tool call, a warning.
fn item(item: &Value, out: &mut VecDeque<Event>) {
    let text_of = |key: &str| item[key].as_str().unwrap_or("").to_string();
    match item["type"].as_str() {
        Some("agent_message") => out.push_back(Event::Text {
            text: text_of("text"),
        }),
        Some("reasoning") => out.push_back(Event::Thinking {
            text: first_line(&text_of("text")).0,
        }),
        Some("command_execution") => {
            out.push_back(Event::ToolUse {
                name: "command".into(),
                input: first_line(&text_of("command")).0,
            });
            let (text, more_lines) = first_line(&text_of("aggregated_output"));
            let status = item["status"].as_str().unwrap_or("");
            let failed = item["exit_code"].as_i64().is_some_and(|c| c != 0);
            let text = match status {
                "declined" => "declined".to_string(),
                _ => text,
            };
            out.push_back(Event::ToolResult {
                text,
                more_lines,
                is_error: failed || matches!(status, "failed" | "declined"),
            });
        }
        Some("file_change") => {
            let changes: Vec<String> = item["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{} {}",
                        c["kind"].as_str().unwrap_or("?"),
                        c["path"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            out.push_back(Event::ToolUse {
                name: "file_change".into(),
                input: first_line(&changes.join(", ")).0,
            });
        }
        Some("mcp_tool_call") => {
            out.push_back(Event::ToolUse {
                name: format!(
                    "{}.{}",
                    item["server"].as_str().unwrap_or("?"),
                    item["tool"].as_str().unwrap_or("?")
                ),
                input: input_gist(&item["arguments"]),
            });
            if !item["error"].is_null() {
                out.push_back(Event::ToolResult {
                    text: first_line(&item["error"].to_string()).0,
                    more_lines: 0,
                    is_error: true,
                });
            }
        }
        Some("web_search") => out.push_back(Event::ToolUse {
            name: "web_search".into(),
            input: text_of("query"),
        }),
        Some("error") => out.push_back(Event::Notice {
            text: text_of("message"),
        }),
        Some(kind) => out.push_back(Event::Other {
            kind: kind.to_string(),
        }),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::transcript::Transcript;
    use std::io;

    #[test]
    fn a_run_becomes_events() {
        let log = concat!(
            "Reading additional input from stdin...\n",
            r#"{"type":"thread.started","thread_id":"t-1"}"#,
            "\n",
            r#"{"type":"turn.started"}"#,
            "\n",
            r#"{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"ls","status":"in_progress"}}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"a\nb\n","exit_code":0,"status":"completed"}}"#,
            "\n",
            r#"{"type":"error","message":"Reconnecting... 1/5"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"done"}}"#,
            "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":1}}"#,
            "\n",
        );
        let events: Vec<Event> = Transcript::new(log.as_bytes(), events_of_line)
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(
            events,
            [
                Event::Raw {
                    text: "Reading additional input from stdin...".into()
                },
                Event::Init {
                    model: None,
                    cwd: None,
                    session_id: Some("t-1".into())
                },
                Event::ToolUse {
                    name: "command".into(),
                    input: "ls".into()
                },
                Event::ToolResult {
                    text: "a".into(),
                    more_lines: 1,
                    is_error: false
                },
                Event::Notice {
                    text: "Reconnecting... 1/5".into()
                },
                Event::Text {
                    text: "done".into()
                },
                Event::Result {
                    subtype: Some("turn.completed".into()),
                    is_error: false,
                    text: None,
                    turns: None,
                    cost_usd: None,
                    duration_ms: None
                },
            ]
        );
    }
}
