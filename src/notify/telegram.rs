//! Telegram alerts: `POST {telegram_api_url}/bot<token>/sendMessage` with `{chat_id, text}`.
//! The URL holds the bot token, so it is never printed: errors are built from the status and
//! Telegram's description only, and `Http` scrubs the token from anything else.

use serde_json::{json, Value};

use super::Outcome;
use crate::config::{self, Config};
use crate::http::Http;
use crate::output::clip;
use crate::store::{AlertKind, NewAlert};

/// Telegram takes at most 4096 characters per message.
const TEXT_MAX_CHARS: usize = 4000;
/// When a 429 names no wait.
const DEFAULT_RETRY_AFTER_SECONDS: u64 = 30;

pub struct Telegram {
    api_url: String,
    chat_id: String,
    token: String,
}

impl Telegram {
    /// The configured bot, or why alerts are off.
    pub fn from_config(config: &Config) -> Result<Telegram, String> {
        let token = config.text(config::TELEGRAM_BOT_TOKEN).map(str::trim);
        let chat_id = config.text(config::TELEGRAM_CHAT_ID).map(str::trim);
        let (Some(token), Some(chat_id)) = (
            token.filter(|t| !t.is_empty()),
            chat_id.filter(|c| !c.is_empty()),
        ) else {
            let missing: Vec<String> = [
                (token, config::TELEGRAM_BOT_TOKEN),
                (chat_id, config::TELEGRAM_CHAT_ID),
            ]
            .iter()
            .filter(|(value, _)| value.is_none_or(str::is_empty))
            .map(|(_, key)| key.env())
            .collect();
            return Err(format!("{} not set", missing.join(" and ")));
        };
        // The token goes into the URL's path: anything but a bot token's characters could
        // change what the URL means.
        let valid = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
        if !valid {
            return Err(format!(
                "{} is not a bot token (only letters, digits, ':', '_' and '-' may appear)",
                config::TELEGRAM_BOT_TOKEN.env()
            ));
        }
        let api_url = config
            .text(config::TELEGRAM_API_URL)
            .unwrap_or("https://api.telegram.org")
            .trim_end_matches('/')
            .to_string();
        Ok(Telegram {
            api_url,
            chat_id: chat_id.to_string(),
            token: token.to_string(),
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// "chat 123 via https://api.telegram.org", for `orch config`.
    pub fn describe(&self) -> String {
        format!("Telegram chat {} via {}", self.chat_id, self.api_url)
    }

    pub fn send(&self, http: &Http, text: &str) -> Outcome {
        let url = format!("{}/bot{}/sendMessage", self.api_url, self.token);
        let body = json!({
            "chat_id": self.chat_id,
            "text": clip(text, TEXT_MAX_CHARS),
            "disable_web_page_preview": true,
        });
        let reply = match http.post_json(&url, &[], &body) {
            Ok(reply) => reply,
            Err(err) => return Outcome::Failed(format!("telegram: {err}")),
        };
        let (answer, said) = reply.said("description");
        let error = format!("telegram answered HTTP {}: {said}", reply.status);
        match reply.status {
            200..=299 if answer["ok"] != Value::Bool(false) => Outcome::Delivered,
            429 => Outcome::RetryAfter {
                seconds: answer["parameters"]["retry_after"]
                    .as_u64()
                    .or(reply.retry_after)
                    .unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
                error,
            },
            _ => Outcome::Failed(error),
        }
    }
}

fn headline(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::SilentFailure => "silent failure: the agent exited 0 but left no result",
        AlertKind::Failed => "job failed for good",
        AlertKind::BreakerOpen => "circuit breaker open: claims stop until the cooldown ends",
        AlertKind::AuthGate => "agent not authenticated: the auth gate is closed",
        AlertKind::CommitFailed => "auto-commit failed",
        AlertKind::PushFailed => "push failed: the next tick tries again",
        AlertKind::ProjectHeld => "project held: claims on that host skip it until this is fixed",
        AlertKind::UsageLimit => "usage limit reached: claims for the agent wait for its reset",
        AlertKind::OverBudget => "budget reached: the jobs wait until it is raised",
        AlertKind::InvocationError => {
            "the agent refused its command line: claims for it wait until a setting changes"
        }
        AlertKind::CiFailed => "CI gate: the task failed",
        AlertKind::ApprovalWaiting => "a job waits for approval",
        AlertKind::MergeFailed => "the pull request was not merged: the task failed",
    }
}

/// The alert's text: what happened, where, why, and the command to look closer.
pub fn render(alert: &NewAlert, folded: i64, folded_tasks: &[String]) -> String {
    let mut lines = vec![format!("orch: {}", headline(alert.kind))];
    let join = |parts: &[(&str, Option<String>)]| -> Option<String> {
        let parts: Vec<String> = parts
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    };
    let attempt = match (alert.attempt, alert.max_attempts) {
        (Some(attempt), Some(max)) => Some(format!("{attempt}/{max}")),
        (Some(attempt), None) => Some(attempt.to_string()),
        _ => None,
    };
    lines.extend(join(&[
        ("project", alert.project.clone()),
        ("task", alert.task.clone()),
        ("stage", alert.stage.clone()),
        ("agent", alert.agent.clone()),
    ]));
    lines.extend(join(&[
        ("class", alert.class.clone()),
        ("attempt", attempt),
        ("run", alert.run_id.map(|id| id.to_string())),
    ]));
    if !alert.reason.is_empty() {
        lines.push(format!("reason: {}", alert.reason));
    }
    lines.push(match alert.job_id {
        Some(job) => format!("look closer: orch show {job}"),
        None => "look closer: orch status".to_string(),
    });
    if folded > 0 {
        let tasks = if folded_tasks.is_empty() {
            String::new()
        } else {
            format!(" ({})", folded_tasks.join(", "))
        };
        lines.push(format!("… and {folded} more{tasks}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_what_where_why_and_how_to_look() {
        let alert = NewAlert {
            kind: AlertKind::SilentFailure,
            dedup_key: "web/developer".into(),
            project: Some("web".into()),
            task: Some("ORCH-44".into()),
            stage: Some("developer".into()),
            agent: None,
            job_id: Some(42),
            run_id: Some(17),
            class: Some("empty".into()),
            attempt: Some(2),
            max_attempts: Some(3),
            reason: "exit 0 with an empty log".into(),
        };
        let text = render(&alert, 4, &["ORCH-45".into(), "ORCH-46".into()]);
        assert_eq!(
            text,
            "orch: silent failure: the agent exited 0 but left no result\n\
             project web · task ORCH-44 · stage developer\n\
             class empty · attempt 2/3 · run 17\n\
             reason: exit 0 with an empty log\n\
             look closer: orch show 42\n\
             … and 4 more (ORCH-45, ORCH-46)"
        );
        let breaker = NewAlert {
            agent: Some("claude".into()),
            ..NewAlert::new(
                AlertKind::BreakerOpen,
                "claude",
                "3 transient failures in a row",
            )
        };
        let text = render(&breaker, 0, &[]);
        assert!(text.contains("\nagent claude\n"), "{text}");
        assert!(text.ends_with("look closer: orch status"), "{text}");
    }
}
