//! Claude Code's stream-json log as `orch logs` shows it: each line (a stream-json message, a
//! JSON array of them, or text) turned into the neutral events of `agent::transcript`.

use std::collections::VecDeque;

use serde_json::Value;

use crate::agent::transcript::{first_line, input_gist, raw, Event};

/// The events one line holds: a stream-json message, a JSON array of them (the `--verbose`
/// json shape on one line), or text.
pub fn events_of_line(line: &[u8], out: &mut VecDeque<Event>) {
    let parsed = match line.first() {
        Some(b'{') | Some(b'[') => serde_json::from_slice::<Value>(line).ok(),
        _ => None,
    };
    match parsed {
        Some(Value::Array(items)) => items.iter().for_each(|item| message(item, out)),
        Some(value @ Value::Object(_)) => message(&value, out),
        _ => out.push_back(raw(line)),
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
        Some("system") if value["subtype"] == "api_retry" => out.push_back(Event::Notice {
            text: retry_notice(value),
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

/// "retrying: attempt 3/10 after 529 overloaded": Claude Code retrying an API call.
pub fn retry_notice(value: &Value) -> String {
    let mut text = "retrying".to_string();
    if let Some(attempt) = value["attempt"].as_u64() {
        text.push_str(&format!(": attempt {attempt}"));
        if let Some(max) = value["max_retries"].as_u64() {
            text.push_str(&format!("/{max}"));
        }
    }
    let status = value["error_status"].as_u64().map(|s| s.to_string());
    let error = value["error"].as_str().map(str::to_owned);
    let why: Vec<String> = [status, error].into_iter().flatten().collect();
    if !why.is_empty() {
        text.push_str(&format!(" after {}", why.join(" ")));
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::transcript::Transcript;
    use std::io;

    fn events(log: &str) -> Vec<Event> {
        Transcript::new(log.as_bytes(), events_of_line)
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
        assert_eq!(
            input_gist(&long).chars().count(),
            crate::agent::transcript::SHORT_CHARS + 1
        );
    }

    #[test]
    fn an_api_retry_is_a_notice() {
        let log = r#"{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"retry_delay_ms":2256,"error_status":529,"error":"overloaded"}"#;
        assert_eq!(
            events(log),
            [Event::Notice {
                text: "retrying: attempt 3/10 after 529 overloaded".into()
            }]
        );
    }

    #[test]
    fn a_one_line_array_is_read_as_messages() {
        let log = r#"[{"type":"assistant","message":{"content":[{"type":"text","text":"a"}]}},{"type":"result","is_error":true}]"#;
        let got = events(log);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Event::Result { is_error: true, .. }));
    }
}
