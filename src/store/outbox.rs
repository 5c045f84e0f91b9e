//! The outbox: alerts and usage comments, queued inside the transaction of the decision that
//! caused them (`queue_alert`, `queue_comment`), then claimed one at a time and delivered by
//! `orch notify` (src/notify/), at least once.
//!
//! Claiming: a message is taken in a `BEGIN IMMEDIATE` transaction by setting it `sending` with
//! a claim that expires, so two notify processes never hold one message at once; a crashed
//! sender's claim runs out and the message is due again.
//!
//! Folding happens when an alert is claimed for delivery, not when it is queued: at most one
//! message per alert kind and dedup key goes out per dedup window. The first goes at once; one
//! arriving within the window after it waits until the window ends; when a message is sent,
//! every other pending alert of its kind and key is folded into it ("… and N more").

use serde::{Deserialize, Serialize};

use super::{Job, NewIssueLabel, NewMerge, NewPullRequest};
use crate::domain::states::{MessageKind, OutboxState};
use crate::output::clip;

/// Longest reason kept in an alert: its first line, cut here.
const REASON_MAX_CHARS: usize = 300;
/// Task keys of folded alerts named in the message; the rest only counted.
pub const FOLDED_TASKS_LISTED: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The agent exited 0 with an empty log or no result.
    SilentFailure,
    /// A job failed for good.
    Failed,
    /// An agent's circuit breaker opened.
    BreakerOpen,
    /// An auth failure closed the gate for an agent.
    AuthGate,
    /// Pushing a task's branch failed (it is tried again by the next tick).
    PushFailed,
    /// Auto-commit after an ok run failed.
    CommitFailed,
    /// A project cannot run on a host (its workdir is missing, its main clone has no commit):
    /// its claims there skip the project.
    ProjectHeld,
    /// An agent's account hit its usage limit: claims for it wait for the reset.
    UsageLimit,
    /// A task or a project reached its budget: its jobs wait in `over_budget`.
    OverBudget,
    /// An agent refused how orch called it: claims for it wait until its settings change.
    InvocationError,
    /// The CI gate failed a task: CI stayed red, gave no verdict in time, or is missing.
    CiFailed,
    /// A job has waited for approval longer than `approval_alert_seconds`.
    ApprovalWaiting,
    /// A task's pull request could not be merged: a conflict, a refusal, red CI.
    MergeFailed,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SilentFailure => "silent_failure",
            AlertKind::Failed => "failed",
            AlertKind::BreakerOpen => "breaker_open",
            AlertKind::AuthGate => "auth_gate",
            AlertKind::PushFailed => "push_failed",
            AlertKind::CommitFailed => "commit_failed",
            AlertKind::ProjectHeld => "project_held",
            AlertKind::UsageLimit => "usage_limit",
            AlertKind::OverBudget => "over_budget",
            AlertKind::InvocationError => "invocation_error",
            AlertKind::CiFailed => "ci_failed",
            AlertKind::ApprovalWaiting => "approval_waiting",
            AlertKind::MergeFailed => "merge_failed",
        }
    }
}

/// An alert for the operator (Telegram). Stored whole as the message's payload: never put a
/// token in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlert {
    pub kind: AlertKind,
    /// Alerts of one kind and key fold into one per dedup window: e.g. `web/developer` for a
    /// silent failure, the agent name for the breaker and the auth gate.
    pub dedup_key: String,
    pub project: Option<String>,
    pub task: Option<String>,
    pub stage: Option<String>,
    pub agent: Option<String>,
    pub job_id: Option<i64>,
    pub run_id: Option<i64>,
    pub class: Option<String>,
    pub attempt: Option<i64>,
    pub max_attempts: Option<i64>,
    /// Only the first line is kept (cut at 300 characters).
    pub reason: String,
}

impl NewAlert {
    /// An alert with only its kind, key and reason; set the rest with struct update syntax.
    pub fn new(kind: AlertKind, dedup_key: &str, reason: &str) -> NewAlert {
        NewAlert {
            kind,
            dedup_key: dedup_key.to_string(),
            project: None,
            task: None,
            stage: None,
            agent: None,
            job_id: None,
            run_id: None,
            class: None,
            attempt: None,
            max_attempts: None,
            reason: reason.to_string(),
        }
    }
}

impl NewAlert {
    /// An alert about one job (project, task, stage, attempt filled in), folded per project and
    /// stage unless `dedup_key` is changed.
    pub fn for_job(kind: AlertKind, job: &Job, class: &str, reason: &str) -> NewAlert {
        NewAlert {
            project: Some(job.project.clone()),
            task: Some(job.task.clone()),
            stage: Some(job.stage.clone()),
            job_id: Some(job.job_id),
            class: Some(class.to_string()),
            attempt: Some(job.attempt),
            max_attempts: Some(job.max_attempts),
            ..NewAlert::new(kind, &format!("{}/{}", job.project, job.stage), reason)
        }
    }
}

/// A usage comment for the task's issue on the project's forge, after an ok stage. Stored whole
/// as the message's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewComment {
    pub project: String,
    pub task: String,
    /// The task's id: where its pull request is looked up (0 in messages queued before orch
    /// opened pull requests: those go to the issue).
    pub task_id: i64,
    /// The issue number on the project's forge (`enqueue --issue N`).
    pub issue: i64,
    pub job_id: i64,
    pub run_id: i64,
    pub stage: String,
    pub verdict: String,
    pub attempt: i64,
    pub max_attempts: Option<i64>,
    pub cost_usd: Option<f64>,
    /// `cost_usd` is orch's estimate from a price table, not the agent's figure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cost_estimated: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub models: Vec<String>,
}

/// What is queued in the outbox and what `orch notify` claims: an alert or a usage comment,
/// each with its payload. Never put a token in either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Message {
    Alert(NewAlert),
    Comment(NewComment),
    PullRequest(NewPullRequest),
    IssueLabel(NewIssueLabel),
    Merge(NewMerge),
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Alert(_) => MessageKind::Alert,
            Message::Comment(_) => MessageKind::Comment,
            Message::PullRequest(_) => MessageKind::PullRequest,
            Message::IssueLabel(_) => MessageKind::IssueLabel,
            Message::Merge(_) => MessageKind::Merge,
        }
    }

    /// The message as it is stored: an alert keeps only the first line of its reason (cut at
    /// 300 characters).
    pub fn for_storage(&self) -> Message {
        match self {
            Message::Alert(alert) => Message::Alert(NewAlert {
                reason: first_line(&alert.reason, REASON_MAX_CHARS),
                ..alert.clone()
            }),
            Message::Comment(_)
            | Message::PullRequest(_)
            | Message::IssueLabel(_)
            | Message::Merge(_) => self.clone(),
        }
    }

    pub fn project(&self) -> Option<&str> {
        match self {
            Message::Alert(alert) => alert.project.as_deref(),
            Message::Comment(comment) => Some(&comment.project),
            Message::PullRequest(pr) => Some(&pr.project),
            Message::IssueLabel(label) => Some(&label.project),
            Message::Merge(merge) => Some(&merge.project),
        }
    }

    pub fn task(&self) -> Option<&str> {
        match self {
            Message::Alert(alert) => alert.task.as_deref(),
            Message::Comment(comment) => Some(&comment.task),
            Message::PullRequest(pr) => Some(&pr.task),
            Message::IssueLabel(label) => Some(&label.task),
            Message::Merge(merge) => Some(&merge.task),
        }
    }

    pub fn job_id(&self) -> Option<i64> {
        match self {
            Message::Alert(alert) => alert.job_id,
            Message::Comment(comment) => Some(comment.job_id),
            Message::PullRequest(_) | Message::IssueLabel(_) | Message::Merge(_) => None,
        }
    }

    pub fn run_id(&self) -> Option<i64> {
        match self {
            Message::Alert(alert) => alert.run_id,
            Message::Comment(comment) => Some(comment.run_id),
            Message::PullRequest(_) | Message::IssueLabel(_) | Message::Merge(_) => None,
        }
    }

    /// The payload alone, as JSON: what the outbox row holds beside its kind.
    pub fn payload_json(&self) -> serde_json::Result<String> {
        match self {
            Message::Alert(alert) => serde_json::to_string(alert),
            Message::Comment(comment) => serde_json::to_string(comment),
            Message::PullRequest(pr) => serde_json::to_string(pr),
            Message::IssueLabel(label) => serde_json::to_string(label),
            Message::Merge(merge) => serde_json::to_string(merge),
        }
    }

    /// A stored payload read back; Err says what is wrong with it (the message is undeliverable).
    pub fn from_payload(kind: MessageKind, payload: &str) -> Result<Message, String> {
        match kind {
            MessageKind::Alert => serde_json::from_str(payload)
                .map(Message::Alert)
                .map_err(|err| format!("unreadable alert payload: {err}")),
            MessageKind::Comment => serde_json::from_str(payload)
                .map(Message::Comment)
                .map_err(|err| format!("unreadable comment payload: {err}")),
            MessageKind::PullRequest => serde_json::from_str(payload)
                .map(Message::PullRequest)
                .map_err(|err| format!("unreadable pull-request payload: {err}")),
            MessageKind::IssueLabel => serde_json::from_str(payload)
                .map(Message::IssueLabel)
                .map_err(|err| format!("unreadable issue-label payload: {err}")),
            MessageKind::Merge => serde_json::from_str(payload)
                .map(Message::Merge)
                .map_err(|err| format!("unreadable merge payload: {err}")),
        }
    }
}

/// The first line of `text`, trimmed, at most `max` characters (an ellipsis marks a cut).
fn first_line(text: &str, max: usize) -> String {
    clip(text.trim().lines().next().unwrap_or("").trim(), max)
}

/// What a notify process may claim now.
pub struct ClaimMessage<'a> {
    /// Who holds the claim, e.g. `notify:1234@host`.
    pub claimer: &'a str,
    pub now: i64,
    /// How long the claim holds before another process may take the message over.
    pub claim_ms: i64,
    /// The alert dedup window.
    pub dedup_ms: i64,
    /// Whether alerts may be claimed (Telegram configured and not failed in this run).
    pub alerts: bool,
    /// Whether messages for the forge (comments, pull requests) may be claimed (a forge token is
    /// set).
    pub comments: bool,
    /// Projects whose forge failed in this run: their comments wait for the next one.
    pub skip_projects: &'a [String],
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: MessageKind,
    pub alert_kind: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    /// Attempts including this one.
    pub attempts: i64,
    pub created_at: i64,
    /// The message; Err when its stored payload cannot be read (it is undeliverable).
    pub message: Result<Message, String>,
    /// Alerts folded into this one.
    pub folded: i64,
    /// Their task keys, first ten, oldest first.
    pub folded_tasks: Vec<String>,
}

/// How a delivery attempt ended.
pub enum Finish<'a> {
    Sent,
    /// Counted; pending again at `retry_at`, or dead when `out_of_attempts` (the caller's
    /// verdict: the claim's attempts reached its maximum).
    Failed {
        error: &'a str,
        retry_at: i64,
        out_of_attempts: bool,
    },
    /// The destination asked us to wait (HTTP 429): not counted as an attempt. Every pending
    /// message for the same destination waits until `until` too.
    Deferred {
        error: &'a str,
        until: i64,
    },
    /// Undeliverable whatever happens next (no forge for the project, unreadable payload).
    Dead {
        error: &'a str,
    },
}

/// One outbox message, for `orch status` and `orch notify`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: MessageKind,
    pub alert_kind: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    pub job_id: Option<i64>,
    pub run_id: Option<i64>,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub folded_into: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct OutboxCount {
    pub kind: MessageKind,
    pub state: OutboxState,
    pub count: i64,
}

/// The outbox at a glance, for `orch status` and the metrics.
#[derive(Debug, Default, Serialize)]
pub struct OutboxSummary {
    /// Waiting to be delivered (pending, or being sent right now).
    pub pending: i64,
    /// Of those, due now.
    pub due: i64,
    /// `due` by kind (alert, comment): a kind whose destination is off is not really due.
    pub due_by_kind: Vec<(MessageKind, i64)>,
    pub dead: i64,
    pub sent: i64,
    pub folded: i64,
    /// Every (kind, state) pair with its count.
    pub counts: Vec<OutboxCount>,
    pub oldest_pending_at: Option<i64>,
    /// Pending messages, soonest due first.
    pub waiting: Vec<OutboxItem>,
    /// Dead messages, newest first.
    pub recent_dead: Vec<OutboxItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_trimmed_and_cut() {
        assert_eq!(first_line("  one \ntwo", 10), "one");
        assert_eq!(first_line("abcdef\nx", 3), "abc…");
    }

    #[test]
    fn an_alert_is_stored_with_its_first_line_and_a_message_round_trips() {
        let alert = NewAlert::new(AlertKind::Failed, "k", "  first \nsecond");
        let stored = Message::Alert(alert).for_storage();
        let Message::Alert(kept) = &stored else {
            panic!("{stored:?}")
        };
        assert_eq!(kept.reason, "first");
        let back = Message::from_payload(stored.kind(), &stored.payload_json().unwrap());
        assert_eq!(back, Ok(stored));
        let bad = Message::from_payload(MessageKind::Comment, "{").unwrap_err();
        assert!(bad.starts_with("unreadable comment payload"), "{bad}");
    }
}
