//! Delivering the outbox: Telegram alerts and forge usage comments, at least once.
//!
//! `deliver` claims due messages one at a time (src/store/outbox.rs) and sends each. A failure
//! never touches a job: the message is retried with exponential backoff
//! (`notify_retry_base_seconds` doubling up to `notify_retry_max_seconds`) and marked dead after
//! `notify_max_attempts`. A 429 is honoured (its `retry_after`) without counting an attempt.
//! Once a destination fails in a run (Telegram, or one project's forge), its other messages wait
//! for the next run, so a server that is down or hanging costs one timeout per run, not one per
//! message. A destination that is not configured keeps its messages pending, with the reason in
//! `last_error` and no attempt counted.

pub mod comment;
pub mod issue_label;
pub mod merge;
pub mod pull_request;
mod telegram;

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::config::CommentsOn;
use crate::config::{self, Config};
use crate::domain::states::{MessageKind, OutboxState};
use crate::http::Http;
use crate::store::{
    ClaimMessage, Claimed, Finish, Message, NewAlert, NewComment, PullRequestSettled, Store,
};

pub use telegram::Telegram;

/// The longest wait a 429 may impose; a larger `retry_after` is taken as this.
const MAX_RETRY_AFTER_SECONDS: u64 = 24 * 3600;

/// How one delivery attempt went.
pub enum Outcome {
    Delivered,
    Failed(String),
    /// The destination asked us to wait this long (HTTP 429).
    RetryAfter {
        seconds: u64,
        error: String,
    },
    /// Can never be delivered as it stands (no forge for the project, unreadable payload).
    Undeliverable(String),
    /// Not yet (a merge waiting for CI): look again after this long, no attempt counted, the
    /// project's other messages going out meanwhile.
    Wait {
        seconds: u64,
        why: String,
    },
}

pub struct Options {
    /// Give dead messages another round of attempts first.
    pub retry_dead: bool,
}

/// How a delivery attempt ended for the message, as `orch notify` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Sent,
    /// Will be retried after its backoff.
    Failed,
    /// The destination asked to wait (429).
    Deferred,
    Dead,
    /// Another process took the message over after this one's claim ran out; it records the
    /// outcome.
    ClaimLost,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::Deferred => "deferred",
            Delivery::Dead => "dead",
            Delivery::ClaimLost => "claim_lost",
        }
    }
}

/// One message this run tried to deliver.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub id: i64,
    pub kind: MessageKind,
    pub alert_kind: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    pub outcome: Delivery,
    pub attempts: i64,
    pub max_attempts: i64,
    /// Alerts folded into this one.
    pub folded: i64,
    /// When a failed or deferred message is due again.
    pub next_attempt_at: Option<i64>,
    pub error: Option<String>,
}

/// Messages left pending because their destination is not configured.
#[derive(Debug, Serialize)]
pub struct Waiting {
    pub kind: MessageKind,
    pub count: i64,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub sent: usize,
    pub failed: usize,
    pub deferred: usize,
    pub dead: usize,
    /// Alerts folded into the messages sent in this run.
    pub folded: i64,
    /// Dead messages given another round by `--retry-dead`.
    pub revived: usize,
    pub messages: Vec<Attempt>,
    pub waiting: Vec<Waiting>,
    /// The outbox after this run: messages still pending, and dead.
    pub pending: i64,
    pub dead_total: i64,
}

/// Whether a kind of notification is on, and why (or why not), for `orch config` and status.
#[derive(Debug, Serialize)]
pub struct Switch {
    pub on: bool,
    pub detail: String,
}

pub fn alerts_switch(config: &Config) -> Switch {
    match Telegram::from_config(config) {
        Ok(telegram) => Switch {
            on: true,
            detail: telegram.describe(),
        },
        Err(why) => Switch {
            on: false,
            detail: why,
        },
    }
}

pub fn comments_switch(config: &Config) -> Switch {
    let forges: Vec<&str> = config
        .projects
        .values()
        .filter(|p| p.forge.is_some())
        .map(|p| p.name.as_str())
        .collect();
    let token = forge_token(config).is_some();
    let mut why = Vec::new();
    if !token {
        why.push(format!("{} not set", config::FORGE_TOKEN.env()));
    }
    if forges.is_empty() {
        why.push("no project has a [projects.NAME.forge] table".to_string());
    }
    match why.is_empty() {
        true => Switch {
            on: true,
            detail: format!("on the issues of {}", forges.join(", ")),
        },
        false => Switch {
            on: false,
            detail: why.join("; "),
        },
    }
}

/// "failed web ORCH-44": what a message is about, for listings.
pub fn label(
    kind: MessageKind,
    alert_kind: Option<&str>,
    project: Option<&str>,
    task: Option<&str>,
) -> String {
    [Some(alert_kind.unwrap_or(kind.as_str())), project, task]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether finalize should queue a usage comment for an ok run: the project has a forge, and
/// the task an issue number or (in time) a pull request.
pub fn wants_comment(config: &Config, project: &str, issue: Option<i64>) -> bool {
    config.projects.get(project).is_some_and(|p| {
        p.forge.is_some()
            && (issue.is_some_and(|n| n > 0)
                || (p.opens_pull_requests() && p.usage_comments != CommentsOn::Issue))
    })
}

/// The forge token, when one is set.
pub(crate) fn forge_token(config: &Config) -> Option<&str> {
    config
        .text(config::FORGE_TOKEN)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The wait after the `attempts`-th failure: base doubling per attempt, capped.
pub fn retry_delay_ms(base_seconds: u64, max_seconds: u64, attempts: i64) -> i64 {
    crate::domain::backoff::exponential(
        config::seconds_to_ms(base_seconds),
        config::seconds_to_ms(max_seconds),
        attempts,
    )
}

/// Deliver every due message (see the module doc). Errors only when the database fails;
/// delivery failures are recorded on the messages and reported.
pub fn deliver(config: &Config, store: &mut dyn Store, options: &Options) -> Result<Report> {
    let mut report = Report::default();
    // The issues' state labels follow their tasks: what changed since the last look is queued
    // first, and goes out with the rest.
    issue_label::sweep(config, store)?;
    if options.retry_dead {
        let now = store.now()?;
        report.revived = store.retry_dead(now)?;
    }
    let telegram = Telegram::from_config(config);
    let token = forge_token(config);
    if let Err(why) = &telegram {
        let reason = format!("alerts are off: {why}");
        wait(store, &mut report, MessageKind::Alert, reason)?;
    }
    if token.is_none() {
        let reason = format!("comments are off: {} not set", config::FORGE_TOKEN.env());
        wait(store, &mut report, MessageKind::Comment, reason)?;
    }
    let secrets = [
        telegram.as_ref().ok().map(Telegram::token),
        token,
        config.text(config::TELEGRAM_BOT_TOKEN),
    ];
    let timeout_seconds = config.count(config::HTTP_TIMEOUT_SECONDS).max(1);
    let http = Http::new(
        Duration::from_secs(timeout_seconds),
        secrets.iter().flatten().map(|s| s.to_string()).collect(),
    );
    let run = Run {
        http,
        claimer: format!("notify:{}:{}", std::process::id(), store.now()?),
        max_attempts: i64::try_from(config.count(config::NOTIFY_MAX_ATTEMPTS).max(1))
            .unwrap_or(i64::MAX),
        retry_base_seconds: config.count(config::NOTIFY_RETRY_BASE_SECONDS),
        retry_max_seconds: config.count(config::NOTIFY_RETRY_MAX_SECONDS),
    };
    // Longer than the slowest delivery can take (each phase is bounded by the timeout), so a
    // live sender never loses its claim.
    let claim_seconds = timeout_seconds.saturating_mul(6).saturating_add(30);
    let claim_ms = config::seconds_to_ms(claim_seconds);
    let dedup_ms = config.millis(config::ALERT_DEDUP_SECONDS);
    let mut alerts = telegram.is_ok();
    let mut skip_projects: Vec<String> = Vec::new();
    let mut labels = issue_label::Known::default();
    loop {
        let request = ClaimMessage {
            claimer: &run.claimer,
            now: store.now()?,
            claim_ms,
            dedup_ms,
            alerts,
            comments: token.is_some(),
            skip_projects: &skip_projects,
        };
        let Some(message) = store.claim_message(&request)? else {
            break;
        };
        let mut settled = Settle::None;
        let outcome = match (&message.message, &telegram, token) {
            (Err(unreadable), _, _) => Outcome::Undeliverable(unreadable.clone()),
            (Ok(Message::Alert(alert)), Ok(telegram), _) => {
                send_alert(telegram, &run.http, &message, alert)
            }
            (Ok(Message::Comment(comment)), _, Some(token)) => {
                send_comment(config, &*store, &run.http, token, &message, comment)
            }
            (Ok(Message::IssueLabel(label)), _, Some(token)) => {
                issue_label::deliver(config, &*store, &run.http, token, &mut labels, label)
            }
            (Ok(Message::PullRequest(pr)), _, Some(token)) => {
                let (outcome, pull) = pull_request::deliver(config, &*store, &run.http, token, pr);
                settled = pull.map_or(Settle::None, Settle::Pull);
                outcome
            }
            (Ok(Message::Merge(merge)), _, Some(token)) => {
                let (outcome, merged) =
                    merge::deliver(config, &*store, &run.http, token, merge, message.created_at);
                settled = merged.map_or(Settle::None, Settle::Merge);
                outcome
            }
            (Ok(other), _, _) => {
                Outcome::Undeliverable(format!("cannot deliver a {} message", other.kind()))
            }
        };
        if matches!(outcome, Outcome::Failed(_) | Outcome::RetryAfter { .. }) {
            match message.kind {
                MessageKind::Alert => alerts = false,
                MessageKind::Comment
                | MessageKind::PullRequest
                | MessageKind::IssueLabel
                | MessageKind::Merge => {
                    skip_projects.push(message.project.clone().unwrap_or_default())
                }
            }
        }
        let attempt = record(store, &run, message, &outcome, &settled)?;
        match attempt.outcome {
            Delivery::Sent => {
                report.sent += 1;
                report.folded += attempt.folded;
            }
            Delivery::Dead => report.dead += 1,
            Delivery::Deferred => report.deferred += 1,
            Delivery::Failed | Delivery::ClaimLost => report.failed += 1,
        }
        report.messages.push(attempt);
    }
    let summary = store.outbox_summary(store.now()?, 0)?;
    report.pending = summary.pending;
    report.dead_total = summary.dead;
    Ok(report)
}

/// What a delivery settles besides its message, in the same transaction.
enum Settle {
    None,
    /// The pull request a pull-request message opened, adopted or saw.
    Pull(PullRequestSettled),
    /// The task a merge message completed or failed.
    Merge(crate::store::MergeSettled),
}

/// What every message of one `deliver` run shares.
struct Run {
    http: Http,
    claimer: String,
    max_attempts: i64,
    retry_base_seconds: u64,
    retry_max_seconds: u64,
}

/// Store how the attempt went: sent, retried later (backoff, or the wait a 429 asked for), or
/// dead.
fn record(
    store: &mut dyn Store,
    run: &Run,
    message: Claimed,
    outcome: &Outcome,
    settled: &Settle,
) -> Result<Attempt> {
    let error = match outcome {
        Outcome::Delivered => None,
        Outcome::Failed(error)
        | Outcome::RetryAfter { error, .. }
        | Outcome::Wait { why: error, .. }
        | Outcome::Undeliverable(error) => Some(run.http.redact(error)),
    };
    let error_text = error.as_deref().unwrap_or_default();
    let now = store.now()?;
    let (finish, next_attempt_at) = match outcome {
        Outcome::Delivered => (Finish::Sent, None),
        Outcome::Failed(_) => {
            let delay = retry_delay_ms(
                run.retry_base_seconds,
                run.retry_max_seconds,
                message.attempts,
            );
            let finish = Finish::Failed {
                error: error_text,
                retry_at: now + delay,
                // This was its last attempt: the message is dead.
                out_of_attempts: message.attempts >= run.max_attempts,
            };
            (finish, Some(now + delay))
        }
        Outcome::RetryAfter { seconds, .. } | Outcome::Wait { seconds, .. } => {
            let wait = (*seconds).min(MAX_RETRY_AFTER_SECONDS) as i64 * 1000;
            let finish = Finish::Deferred {
                error: error_text,
                until: now + wait,
            };
            (finish, Some(now + wait))
        }
        Outcome::Undeliverable(_) => (Finish::Dead { error: error_text }, None),
    };
    // A pull request opened or adopted is recorded on its task with the message's end.
    let state = match (settled, &finish) {
        (Settle::Pull(pull), Finish::Sent) => {
            store.settle_pull_request(message.id, &run.claimer, pull, now)?
        }
        (Settle::Merge(merged), Finish::Sent) => {
            store.settle_merge(message.id, &run.claimer, merged, now)?
        }
        _ => store.finish_message(message.id, &run.claimer, &finish, now)?,
    };
    let outcome = match (state, outcome) {
        (Some(OutboxState::Sent), _) => Delivery::Sent,
        (Some(OutboxState::Dead), _) => Delivery::Dead,
        (Some(_), Outcome::RetryAfter { .. } | Outcome::Wait { .. }) => Delivery::Deferred,
        (Some(_), _) => Delivery::Failed,
        (None, _) => Delivery::ClaimLost,
    };
    Ok(Attempt {
        id: message.id,
        kind: message.kind,
        alert_kind: message.alert_kind,
        project: message.project,
        task: message.task,
        outcome,
        attempts: message.attempts,
        max_attempts: run.max_attempts,
        folded: message.folded,
        next_attempt_at: next_attempt_at.filter(|_| outcome != Delivery::Dead),
        error,
    })
}

fn wait(
    store: &mut dyn Store,
    report: &mut Report,
    kind: MessageKind,
    reason: String,
) -> Result<()> {
    let count = store.note_waiting(kind, &reason)?;
    if count > 0 {
        report.waiting.push(Waiting {
            kind,
            count,
            reason,
        });
    }
    Ok(())
}

fn send_alert(telegram: &Telegram, http: &Http, message: &Claimed, alert: &NewAlert) -> Outcome {
    let text = telegram::render(alert, message.folded, &message.folded_tasks);
    telegram.send(http, &text)
}

fn send_comment(
    config: &Config,
    store: &dyn Store,
    http: &Http,
    token: &str,
    message: &Claimed,
    comment: &NewComment,
) -> Outcome {
    let Some(project) = config.projects.get(&comment.project) else {
        return Outcome::Undeliverable(format!(
            "project {:?} is not in the configuration",
            comment.project
        ));
    };
    let Some(forge) = &project.forge else {
        return Outcome::Undeliverable(format!(
            "project {} has no forge ([projects.{}.forge])",
            project.name, project.name
        ));
    };
    // Where the reviewer looks: the pull request once the task has one (`usage_comments`).
    let pull = match comment.task_id {
        0 => None,
        task_id => match store.task(task_id) {
            Ok(task) => task.and_then(|t| t.pr_number),
            Err(err) => return Outcome::Failed(format!("reading task {}: {err:#}", comment.task)),
        },
    };
    let issue = Some(comment.issue).filter(|n| *n > 0);
    let targets: Vec<i64> = match project.usage_comments {
        CommentsOn::Issue => issue.into_iter().collect(),
        CommentsOn::Pr => pull.or(issue).into_iter().collect(),
        CommentsOn::Both => issue.into_iter().chain(pull).collect(),
    };
    if targets.is_empty() {
        if comment.issue <= 0 && comment.task_id == 0 {
            return Outcome::Undeliverable(format!("task {} has no issue number", comment.task));
        }
        // Neither an issue nor (yet) a pull request: the pull request's table has the usage.
        return Outcome::Delivered;
    }
    let body = comment::render(comment, message.id);
    let forge = crate::forge::connect(forge, http, token);
    for number in targets {
        if let Err(err) = forge.comment(number, &body) {
            return forge_failed(err);
        }
    }
    Outcome::Delivered
}

/// What a forge's refusal means for a message: a rate limit waits as long as it asks; what it
/// was sent to not existing is never delivered (left pending, it would hold up the project's
/// other forge messages at every delivery); anything else is a failed attempt (a refused token
/// too: it may be replaced before the next).
pub(crate) fn forge_failed(err: crate::forge::Error) -> Outcome {
    use crate::forge::Error;
    match err {
        Error::Failed(error) | Error::Unauthorized(error) | Error::Refused(error) => {
            Outcome::Failed(error)
        }
        Error::RetryAfter { seconds, error } => Outcome::RetryAfter { seconds, error },
        Error::Gone(error) => Outcome::Undeliverable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(retry_delay_ms(30, 3600, 1), 30_000);
        assert_eq!(retry_delay_ms(30, 3600, 2), 60_000);
        assert_eq!(retry_delay_ms(30, 3600, 4), 240_000);
        assert_eq!(retry_delay_ms(30, 3600, 8), 3_600_000);
        assert_eq!(retry_delay_ms(30, 3600, 200), 3_600_000);
        assert_eq!(retry_delay_ms(0, 3600, 5), 0);
        assert_eq!(retry_delay_ms(30, 3600, 0), 30_000);
    }
}
