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

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use super::{Job, Store};
use crate::output::clip;

/// Longest reason kept in an alert: its first line, cut here.
const REASON_MAX_CHARS: usize = 300;
/// Task keys of folded alerts named in the message; the rest only counted.
const FOLDED_TASKS_LISTED: i64 = 10;

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
    /// Auto-commit after an ok run failed.
    CommitFailed,
    /// A project's workdir is missing on a host: its claims there skip the project.
    ProjectHeld,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SilentFailure => "silent_failure",
            AlertKind::Failed => "failed",
            AlertKind::BreakerOpen => "breaker_open",
            AlertKind::AuthGate => "auth_gate",
            AlertKind::CommitFailed => "commit_failed",
            AlertKind::ProjectHeld => "project_held",
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
    /// The issue number on the project's forge (`enqueue --issue N`).
    pub issue: i64,
    pub job_id: i64,
    pub run_id: i64,
    pub stage: String,
    pub verdict: String,
    pub attempt: i64,
    pub max_attempts: Option<i64>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub models: Vec<String>,
}

/// Queue an alert inside the caller's transaction; due at once. Returns the message id.
pub fn queue_alert(tx: &Transaction, alert: &NewAlert, now: i64) -> Result<i64> {
    let mut alert = alert.clone();
    alert.reason = first_line(&alert.reason, REASON_MAX_CHARS);
    let payload = serde_json::to_string(&alert)?;
    let id = tx
        .prepare_cached(
            "INSERT INTO outbox (kind, alert_kind, dedup_key, project, task, job_id, run_id, payload,
                                 next_attempt_at, created_at)
             VALUES ('alert', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
        )?
        .query_row(
            params![
                alert.kind.as_str(),
                alert.dedup_key,
                alert.project,
                alert.task,
                alert.job_id,
                alert.run_id,
                payload,
                now
            ],
            |row| row.get(0),
        )
        .context("queueing an alert")?;
    Ok(id)
}

/// Queue a usage comment inside the caller's transaction; due at once. Returns the message id.
/// Queue one only when the project has a forge and the task an issue number
/// (`notify::wants_comment`): a comment that cannot be addressed is marked dead on delivery.
pub fn queue_comment(tx: &Transaction, comment: &NewComment, now: i64) -> Result<i64> {
    let payload = serde_json::to_string(comment)?;
    let id = tx
        .prepare_cached(
            "INSERT INTO outbox (kind, project, task, job_id, run_id, payload, next_attempt_at, created_at)
             VALUES ('comment', ?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
        )?
        .query_row(
            params![
                comment.project,
                comment.task,
                comment.job_id,
                comment.run_id,
                payload,
                now
            ],
            |row| row.get(0),
        )
        .context("queueing a usage comment")?;
    Ok(id)
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
    /// Whether comments may be claimed (a forge token is set).
    pub comments: bool,
    /// Projects whose forge failed in this run: their comments wait for the next one.
    pub skip_projects: &'a [String],
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub alert_kind: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    /// Attempts including this one.
    pub attempts: i64,
    pub created_at: i64,
    /// The stored `NewAlert` or `NewComment`, as JSON.
    pub payload: String,
    /// Alerts folded into this one.
    pub folded: i64,
    /// Their task keys, first ten, oldest first.
    pub folded_tasks: Vec<String>,
}

/// How a delivery attempt ended.
pub enum Finish<'a> {
    Sent,
    /// Counted; pending again at `retry_at`, or dead once `attempts` reached `max_attempts`.
    Failed {
        error: &'a str,
        retry_at: i64,
        max_attempts: i64,
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
    pub kind: String,
    pub alert_kind: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    pub job_id: Option<i64>,
    pub run_id: Option<i64>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub folded_into: Option<i64>,
}

const ITEM_COLUMNS: &str = "id, kind, alert_kind, project, task, job_id, run_id, state, attempts, \
     next_attempt_at, last_error, created_at, sent_at, folded_into";

impl OutboxItem {
    fn from_row(row: &Row) -> rusqlite::Result<OutboxItem> {
        Ok(OutboxItem {
            id: row.get(0)?,
            kind: row.get(1)?,
            alert_kind: row.get(2)?,
            project: row.get(3)?,
            task: row.get(4)?,
            job_id: row.get(5)?,
            run_id: row.get(6)?,
            state: row.get(7)?,
            attempts: row.get(8)?,
            next_attempt_at: row.get(9)?,
            last_error: row.get(10)?,
            created_at: row.get(11)?,
            sent_at: row.get(12)?,
            folded_into: row.get(13)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct OutboxCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
}

/// The outbox at a glance, for `orch status` and the metrics.
#[derive(Debug, Serialize)]
pub struct OutboxSummary {
    /// Waiting to be delivered (pending, or being sent right now).
    pub pending: i64,
    /// Of those, due now.
    pub due: i64,
    /// `due` by kind (alert, comment): a kind whose destination is off is not really due.
    pub due_by_kind: Vec<(String, i64)>,
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

impl Store {
    /// Claim the next due message this process may deliver, applying the alert dedup window
    /// (see the module doc). None when nothing is due.
    pub fn claim_message(&mut self, request: &ClaimMessage) -> Result<Option<Claimed>> {
        let skip = serde_json::to_string(request.skip_projects)?;
        self.write(|tx| loop {
            let Some(Due { id, group }) = next_due(tx, request, &skip)? else {
                return Ok(None);
            };
            if let Some((alert_kind, dedup_key)) = &group {
                let group = (alert_kind.as_str(), dedup_key.as_str());
                if let Some(until) = held_until(tx, id, group, request)? {
                    tx.execute(
                        "UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1",
                        params![id, until],
                    )?;
                    continue;
                }
                fold_into(tx, id, group)?;
            }
            let claimed = tx
                .prepare_cached(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ?2,
                            claim_expires_at = ?3
                     WHERE id = ?1
                     RETURNING id, kind, alert_kind, project, task, attempts, created_at, payload",
                )?
                .query_row(
                    params![id, request.claimer, request.now + request.claim_ms],
                    |row| {
                        Ok(Claimed {
                            id: row.get(0)?,
                            kind: row.get(1)?,
                            alert_kind: row.get(2)?,
                            project: row.get(3)?,
                            task: row.get(4)?,
                            attempts: row.get(5)?,
                            created_at: row.get(6)?,
                            payload: row.get(7)?,
                            folded: 0,
                            folded_tasks: Vec::new(),
                        })
                    },
                )?;
            return Ok(Some(with_folded(tx, claimed)?));
        })
    }

    /// Record how a delivery attempt ended. Returns the message's state afterwards, or None when
    /// this process no longer held the claim (it expired and another took over; a success is
    /// recorded anyway, since the message did go out).
    pub fn finish_message(
        &mut self,
        id: i64,
        claimer: &str,
        finish: &Finish,
        now: i64,
    ) -> Result<Option<String>> {
        self.write(|tx| {
            let state = match finish {
                Finish::Sent => tx
                    .prepare_cached(
                        "UPDATE outbox SET state = 'sent', sent_at = ?2, last_error = NULL,
                                claimed_by = NULL, claim_expires_at = NULL
                         WHERE id = ?1 AND state IN ('sending', 'pending') RETURNING state",
                    )?
                    .query_row(params![id, now], |row| row.get(0))
                    .optional()?,
                Finish::Failed {
                    error,
                    retry_at,
                    max_attempts,
                } => tx
                    .prepare_cached(
                        "UPDATE outbox SET state = CASE WHEN attempts >= ?5 THEN 'dead' ELSE 'pending' END,
                                next_attempt_at = ?3, last_error = ?4, claimed_by = NULL,
                                claim_expires_at = NULL
                         WHERE id = ?1 AND state = 'sending' AND claimed_by = ?2 RETURNING state",
                    )?
                    .query_row(
                        params![id, claimer, retry_at, error, max_attempts],
                        |row| row.get(0),
                    )
                    .optional()?,
                Finish::Deferred { error, until } => {
                    let state: Option<String> = tx
                        .prepare_cached(
                            "UPDATE outbox SET state = 'pending', attempts = max(attempts - 1, 0),
                                    next_attempt_at = ?3, last_error = ?4, claimed_by = NULL,
                                    claim_expires_at = NULL
                             WHERE id = ?1 AND state = 'sending' AND claimed_by = ?2 RETURNING state",
                        )?
                        .query_row(params![id, claimer, until, error], |row| row.get(0))
                        .optional()?;
                    // The same destination: every alert (one Telegram chat), or the comments of
                    // this message's project (its forge).
                    tx.prepare_cached(
                        "UPDATE outbox SET next_attempt_at = ?2
                         WHERE state = 'pending' AND next_attempt_at < ?2
                           AND kind = (SELECT kind FROM outbox WHERE id = ?1)
                           AND (kind = 'alert' OR project IS (SELECT project FROM outbox WHERE id = ?1))",
                    )?
                    .execute(params![id, until])?;
                    state
                }
                Finish::Dead { error } => tx
                    .prepare_cached(
                        "UPDATE outbox SET state = 'dead', last_error = ?3, claimed_by = NULL,
                                claim_expires_at = NULL
                         WHERE id = ?1 AND state = 'sending' AND claimed_by = ?2 RETURNING state",
                    )?
                    .query_row(params![id, claimer, error], |row| row.get(0))
                    .optional()?,
            };
            Ok(state)
        })
    }

    /// Note on pending messages of `kind` why they are not being delivered (their destination
    /// is not configured), without counting an attempt. Returns how many wait.
    pub fn note_waiting(&mut self, kind: &str, why: &str) -> Result<i64> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE outbox SET last_error = ?2
                 WHERE kind = ?1 AND state = 'pending' AND last_error IS NOT ?2",
            )?
            .execute(params![kind, why])?;
            Ok(tx
                .prepare_cached(
                    "SELECT count(*) FROM outbox WHERE kind = ?1 AND state = 'pending'",
                )?
                .query_row([kind], |row| row.get(0))?)
        })
    }

    /// Give every dead message another round of attempts, due now. Returns how many.
    pub fn retry_dead(&mut self, now: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1
                 WHERE state = 'dead'",
                [now],
            )?)
        })
    }

    pub fn outbox_summary(&self, now: i64, limit: i64) -> Result<OutboxSummary> {
        let conn = self.conn();
        let counts: Vec<OutboxCount> = conn
            .prepare(
                "SELECT kind, state, count(*) FROM outbox GROUP BY kind, state ORDER BY kind, state",
            )?
            .query_map([], |row| {
                Ok(OutboxCount {
                    kind: row.get(0)?,
                    state: row.get(1)?,
                    count: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let total = |states: &[&str]| -> i64 {
            counts
                .iter()
                .filter(|c| states.contains(&c.state.as_str()))
                .map(|c| c.count)
                .sum()
        };
        let (due, oldest_pending_at): (i64, Option<i64>) = conn.query_row(
            "SELECT count(*) FILTER (WHERE next_attempt_at <= ?1), min(created_at)
             FROM outbox WHERE state IN ('pending', 'sending')",
            [now],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let due_by_kind: Vec<(String, i64)> = conn
            .prepare_cached(
                "SELECT kind, count(*) FROM outbox
                 WHERE state IN ('pending', 'sending') AND next_attempt_at <= ?1 GROUP BY kind",
            )?
            .query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let items = |sql: &str| -> Result<Vec<OutboxItem>> {
            let sql = format!("SELECT {ITEM_COLUMNS} FROM outbox {sql}");
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([limit], OutboxItem::from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        Ok(OutboxSummary {
            pending: total(&["pending", "sending"]),
            due,
            due_by_kind,
            dead: total(&["dead"]),
            sent: total(&["sent"]),
            folded: total(&["folded"]),
            waiting: items(
                "WHERE state IN ('pending', 'sending') ORDER BY next_attempt_at, id LIMIT ?1",
            )?,
            recent_dead: items("WHERE state = 'dead' ORDER BY id DESC LIMIT ?1")?,
            counts,
            oldest_pending_at,
        })
    }
}

/// A message due for delivery: its id, and for an alert its group (kind, dedup key).
struct Due {
    id: i64,
    group: Option<(String, String)>,
}

/// The next due message of an allowed kind: pending and due, or claimed by a sender whose claim
/// ran out.
fn next_due(tx: &Transaction, request: &ClaimMessage, skip: &str) -> Result<Option<Due>> {
    Ok(tx
        .prepare_cached(
            "SELECT id, alert_kind, dedup_key FROM outbox
             WHERE ((state = 'pending' AND next_attempt_at <= ?1)
                    OR (state = 'sending' AND claim_expires_at <= ?1))
               AND ((kind = 'alert' AND ?2)
                    OR (kind = 'comment' AND ?3
                        AND coalesce(project, '') NOT IN (SELECT value FROM json_each(?4))))
             ORDER BY next_attempt_at, id LIMIT 1",
        )?
        .query_row(
            params![request.now, request.alerts, request.comments, skip],
            |row| {
                let alert_kind: Option<String> = row.get(1)?;
                let dedup_key: Option<String> = row.get(2)?;
                Ok(Due {
                    id: row.get(0)?,
                    group: alert_kind.zip(dedup_key),
                })
            },
        )
        .optional()?)
}

/// When another alert of the same kind and key went out within the dedup window (or is being
/// sent right now), the time this one must wait for.
fn held_until(
    tx: &Transaction,
    id: i64,
    (alert_kind, dedup_key): (&str, &str),
    request: &ClaimMessage,
) -> Result<Option<i64>> {
    let until: Option<i64> = tx
        .prepare_cached(
            "SELECT max(CASE WHEN state = 'sent' THEN sent_at + ?4 ELSE claim_expires_at END)
             FROM outbox
             WHERE kind = 'alert' AND alert_kind = ?1 AND dedup_key = ?2 AND id <> ?3
               AND (state = 'sent' OR (state = 'sending' AND claim_expires_at > ?5))",
        )?
        .query_row(
            params![alert_kind, dedup_key, id, request.dedup_ms, request.now],
            |row| row.get(0),
        )?;
    Ok(until.filter(|until| *until > request.now))
}

/// Fold every other pending alert of the group into `id`, with whatever was folded into them.
fn fold_into(tx: &Transaction, id: i64, (alert_kind, dedup_key): (&str, &str)) -> Result<()> {
    const OTHERS: &str = "SELECT id FROM outbox WHERE kind = 'alert' AND alert_kind = ?2
                          AND dedup_key = ?3 AND state = 'pending' AND id <> ?1";
    tx.prepare_cached(&format!(
        "UPDATE outbox SET folded_into = ?1 WHERE folded_into IN ({OTHERS})"
    ))?
    .execute(params![id, alert_kind, dedup_key])?;
    tx.prepare_cached(&format!(
        "UPDATE outbox SET state = 'folded', folded_into = ?1 WHERE id IN ({OTHERS})"
    ))?
    .execute(params![id, alert_kind, dedup_key])?;
    Ok(())
}

fn with_folded(tx: &Transaction, mut claimed: Claimed) -> Result<Claimed> {
    claimed.folded = tx
        .prepare_cached("SELECT count(*) FROM outbox WHERE folded_into = ?1")?
        .query_row([claimed.id], |row| row.get(0))?;
    if claimed.folded > 0 {
        let mut stmt = tx.prepare_cached(
            "SELECT task FROM outbox WHERE folded_into = ?1 AND task IS NOT NULL
             GROUP BY task ORDER BY min(id) LIMIT ?2",
        )?;
        let tasks = stmt.query_map(params![claimed.id, FOLDED_TASKS_LISTED], |row| row.get(0))?;
        claimed.folded_tasks = tasks.collect::<rusqlite::Result<_>>()?;
    }
    Ok(claimed)
}

impl Store {
    /// Usage comments in the outbox, oldest first, with their message ids (for `orch demo`,
    /// which shows what it would have posted).
    pub fn comments(&self) -> Result<Vec<(i64, NewComment)>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id, payload FROM outbox WHERE kind = 'comment' ORDER BY id")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut comments = Vec::new();
        for row in rows {
            let (id, payload) = row?;
            comments.push((
                id,
                serde_json::from_str(&payload).context("reading a queued comment")?,
            ));
        }
        Ok(comments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;

    fn alert(key: &str, task: &str) -> NewAlert {
        let reason = "exit 0 but the log is empty\nsecond line";
        NewAlert {
            task: Some(task.into()),
            ..NewAlert::new(AlertKind::SilentFailure, key, reason)
        }
    }

    fn claim<'a>(now: i64, skip: &'a [String]) -> ClaimMessage<'a> {
        ClaimMessage {
            claimer: "test",
            now,
            claim_ms: 60_000,
            dedup_ms: 3_600_000,
            alerts: true,
            comments: true,
            skip_projects: skip,
        }
    }

    #[test]
    fn first_line_is_trimmed_and_cut() {
        assert_eq!(first_line("  one \ntwo", 10), "one");
        assert_eq!(first_line("abcdef\nx", 3), "abc…");
    }

    #[test]
    fn queued_alert_keeps_the_first_line_and_round_trips() {
        let (_dir, mut store) = store();
        let id = store
            .write(|tx| queue_alert(tx, &alert("web/developer", "T-1"), 1000))
            .unwrap();
        let claimed = store.claim_message(&claim(1000, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, id);
        assert_eq!(claimed.attempts, 1);
        let back: NewAlert = serde_json::from_str(&claimed.payload).unwrap();
        assert_eq!(back.reason, "exit 0 but the log is empty");
        assert_eq!(back.kind, AlertKind::SilentFailure);
        // Claimed: nobody else gets it until the claim runs out.
        assert!(store.claim_message(&claim(1000, &[])).unwrap().is_none());
        let again = store.claim_message(&claim(61_000, &[])).unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
    }

    #[test]
    fn alerts_fold_and_wait_out_the_window() {
        let (_dir, mut store) = store();
        let first = store
            .write(|tx| {
                let first = queue_alert(tx, &alert("k", "T-1"), 1000)?;
                queue_alert(tx, &alert("k", "T-2"), 1001)?;
                queue_alert(tx, &alert("k", "T-2"), 1002)?;
                queue_alert(tx, &alert("other", "T-9"), 1003)?;
                Ok(first)
            })
            .unwrap();
        let claimed = store.claim_message(&claim(2000, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, first);
        assert_eq!(claimed.folded, 2);
        assert_eq!(claimed.folded_tasks, vec!["T-2".to_string()]);
        store
            .finish_message(first, "test", &Finish::Sent, 2000)
            .unwrap();
        let other = store.claim_message(&claim(2000, &[])).unwrap().unwrap();
        assert_eq!(other.folded, 0);
        store
            .finish_message(other.id, "test", &Finish::Sent, 2000)
            .unwrap();
        // Within the window after a send: held until the window ends, then sent.
        let late = store
            .write(|tx| queue_alert(tx, &alert("k", "T-3"), 3000))
            .unwrap();
        assert!(store.claim_message(&claim(3000, &[])).unwrap().is_none());
        let held: i64 = store
            .conn()
            .query_row(
                "SELECT next_attempt_at FROM outbox WHERE id = ?1",
                [late],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(held, 2000 + 3_600_000);
        let claimed = store.claim_message(&claim(held, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, late);
    }

    #[test]
    fn failures_back_off_then_die_and_can_be_retried() {
        let (_dir, mut store) = store();
        let id = store
            .write(|tx| queue_alert(tx, &alert("k", "T-1"), 0))
            .unwrap();
        for attempt in 1..=2 {
            let claimed = store.claim_message(&claim(attempt * 10, &[])).unwrap();
            assert_eq!(claimed.unwrap().attempts, attempt);
            let finish = Finish::Failed {
                error: "HTTP 500",
                retry_at: attempt * 10 + 5,
                max_attempts: 2,
            };
            let state = store.finish_message(id, "test", &finish, 0).unwrap();
            let want = if attempt == 2 { "dead" } else { "pending" };
            assert_eq!(state.as_deref(), Some(want));
        }
        assert!(store.claim_message(&claim(1000, &[])).unwrap().is_none());
        let summary = store.outbox_summary(1000, 10).unwrap();
        assert_eq!((summary.dead, summary.pending), (1, 0));
        assert_eq!(
            summary.recent_dead[0].last_error.as_deref(),
            Some("HTTP 500")
        );
        assert_eq!(store.retry_dead(1000).unwrap(), 1);
        let claimed = store.claim_message(&claim(1000, &[])).unwrap().unwrap();
        assert_eq!(claimed.attempts, 1);
    }

    #[test]
    fn a_deferral_is_not_an_attempt_and_holds_the_destination() {
        let (_dir, mut store) = store();
        let comment = |task: &str, project: &str| NewComment {
            project: project.into(),
            task: task.into(),
            issue: 7,
            ..Default::default()
        };
        let (a, b, c) = store
            .write(|tx| {
                Ok((
                    queue_comment(tx, &comment("T-1", "web"), 0)?,
                    queue_comment(tx, &comment("T-2", "web"), 0)?,
                    queue_comment(tx, &comment("T-3", "api"), 0)?,
                ))
            })
            .unwrap();
        let claimed = store.claim_message(&claim(0, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, a);
        let finish = Finish::Deferred {
            error: "HTTP 429",
            until: 500,
        };
        store.finish_message(a, "test", &finish, 0).unwrap();
        // web's forge waits; api's does not; skipped projects are left alone.
        let skip = ["api".to_string()];
        assert!(store.claim_message(&claim(10, &skip)).unwrap().is_none());
        assert_eq!(store.claim_message(&claim(10, &[])).unwrap().unwrap().id, c);
        let next = store.claim_message(&claim(500, &[])).unwrap().unwrap();
        assert_eq!((next.id, next.attempts), (a, 1));
        assert_eq!(
            store.claim_message(&claim(500, &[])).unwrap().unwrap().id,
            b
        );
    }
}
