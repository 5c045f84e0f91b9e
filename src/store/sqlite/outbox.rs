//! The outbox table. A message is claimed in a `BEGIN IMMEDIATE` transaction by setting it
//! `sending` with a claim that expires, so two notify processes never hold one message at once; a
//! crashed sender's claim runs out and the message is due again.
//!
//! Folding happens when an alert is claimed for delivery, not when it is queued: at most one
//! message per alert kind and dedup key goes out per dedup window. The first goes at once; one
//! arriving within the window after it waits until the window ends; when a message is sent,
//! every other pending alert of its kind and key is folded into it ("… and N more").

use crate::store::sql::{params, Db, OptionalExtension, Row};
use anyhow::{Context, Result};

use crate::domain::states::{MessageKind, OutboxState};
use crate::store::{
    ClaimMessage, Claimed, Finish, Message, NewComment, OutboxCount, OutboxItem, OutboxSummary,
    FOLDED_TASKS_LISTED,
};

/// Queue a message inside the caller's transaction; due at once. Returns its id.
pub(super) fn queue(tx: &Db, message: &Message, now: i64) -> Result<i64> {
    let message = message.for_storage();
    let payload = message.payload_json()?;
    let (alert_kind, dedup_key) = match &message {
        Message::Alert(alert) => (Some(alert.kind.as_str()), Some(alert.dedup_key.as_str())),
        Message::Comment(_)
        | Message::PullRequest(_)
        | Message::IssueLabel(_)
        | Message::Merge(_) => (None, None),
    };
    let what = match message.kind() {
        MessageKind::Alert => "queueing an alert",
        MessageKind::Comment => "queueing a usage comment",
        MessageKind::PullRequest => "queueing a pull-request message",
        MessageKind::IssueLabel => "queueing an issue-label message",
        MessageKind::Merge => "queueing a merge",
    };
    let id = tx
        .prepare_cached(
            "INSERT INTO outbox (kind, alert_kind, dedup_key, project, task, job_id, run_id, payload,
                                 state, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING id",
        )?
        .query_row(
            params![
                message.kind(),
                alert_kind,
                dedup_key,
                message.project(),
                message.task(),
                message.job_id(),
                message.run_id(),
                payload,
                OutboxState::Pending,
                now
            ],
            |row| row.get("id"),
        )
        .context(what)?;
    Ok(id)
}

pub(super) fn claim(tx: &Db, request: &ClaimMessage) -> Result<Option<Claimed>> {
    let skip = serde_json::to_string(request.skip_projects)?;
    loop {
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
                "UPDATE outbox SET state = ?4, attempts = attempts + 1, claimed_by = ?2,
                        claim_expires_at = ?3
                 WHERE id = ?1
                 RETURNING id, kind, alert_kind, project, task, attempts, created_at, payload",
            )?
            .query_row(
                params![
                    id,
                    request.claimer,
                    request.now + request.claim_ms,
                    OutboxState::Sending
                ],
                |row| {
                    let kind: MessageKind = row.get("kind")?;
                    let payload: String = row.get("payload")?;
                    Ok(Claimed {
                        id: row.get("id")?,
                        kind,
                        alert_kind: row.get("alert_kind")?,
                        project: row.get("project")?,
                        task: row.get("task")?,
                        attempts: row.get("attempts")?,
                        created_at: row.get("created_at")?,
                        message: Message::from_payload(kind, &payload),
                        folded: 0,
                        folded_tasks: Vec::new(),
                    })
                },
            )?;
        return Ok(Some(with_folded(tx, claimed)?));
    }
}

pub(super) fn finish(
    tx: &Db,
    id: i64,
    claimer: &str,
    finish: &Finish,
    now: i64,
) -> Result<Option<OutboxState>> {
    let state = match finish {
        Finish::Sent => tx
            .prepare_cached(
                "UPDATE outbox SET state = ?3, sent_at = ?2, last_error = NULL,
                        claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1 AND state IN (?4, ?5) RETURNING state",
            )?
            .query_row(
                params![
                    id,
                    now,
                    OutboxState::Sent,
                    OutboxState::Sending,
                    OutboxState::Pending
                ],
                |row| row.get("state"),
            )
            .optional()?,
        Finish::Failed {
            error,
            retry_at,
            out_of_attempts,
        } => {
            let state = match out_of_attempts {
                true => OutboxState::Dead,
                false => OutboxState::Pending,
            };
            settle_claim(tx, id, claimer, state, *retry_at, error, 0)?
        }
        Finish::Deferred { error, until } => {
            let state = settle_claim(tx, id, claimer, OutboxState::Pending, *until, error, 1)?;
            // The same destination: every alert (one Telegram chat), or the comments of this
            // message's project (its forge).
            tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?2
                 WHERE state = ?4 AND next_attempt_at < ?2
                   AND kind = (SELECT kind FROM outbox WHERE id = ?1)
                   AND (kind = ?3 OR project IS (SELECT project FROM outbox WHERE id = ?1))",
            )?
            .execute(params![id, until, MessageKind::Alert, OutboxState::Pending])?;
            state
        }
        Finish::Dead { error } => tx
            .prepare_cached(
                "UPDATE outbox SET state = ?4, last_error = ?3, claimed_by = NULL,
                        claim_expires_at = NULL
                 WHERE id = ?1 AND state = ?5 AND claimed_by = ?2 RETURNING state",
            )?
            .query_row(
                params![id, claimer, error, OutboxState::Dead, OutboxState::Sending],
                |row| row.get("state"),
            )
            .optional()?,
    };
    Ok(state)
}

/// End `claimer`'s claim on message `id`: `state` again, due at `due`, with `error`;
/// `refund` attempts given back (a deferral is not an attempt). None when the claim was lost.
fn settle_claim(
    tx: &Db,
    id: i64,
    claimer: &str,
    state: OutboxState,
    due: i64,
    error: &str,
    refund: i64,
) -> Result<Option<OutboxState>> {
    Ok(tx
        .prepare_cached(
            "UPDATE outbox SET state = ?3, attempts = max(attempts - ?6, 0), next_attempt_at = ?4,
                    last_error = ?5, claimed_by = NULL, claim_expires_at = NULL
             WHERE id = ?1 AND state = ?7 AND claimed_by = ?2 RETURNING state",
        )?
        .query_row(
            params![id, claimer, state, due, error, refund, OutboxState::Sending],
            |row| row.get("state"),
        )
        .optional()?)
}

pub(super) fn note_waiting(tx: &Db, kind: MessageKind, why: &str) -> Result<i64> {
    tx.prepare_cached(
        "UPDATE outbox SET last_error = ?2
         WHERE kind = ?1 AND state = ?3 AND last_error IS NOT ?2",
    )?
    .execute(params![kind, why, OutboxState::Pending])?;
    Ok(tx
        .prepare_cached("SELECT count(*) AS waiting FROM outbox WHERE kind = ?1 AND state = ?2")?
        .query_row(params![kind, OutboxState::Pending], |row| {
            row.get("waiting")
        })?)
}

pub(super) fn retry_dead(tx: &Db, now: i64) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE outbox SET state = ?2, attempts = 0, next_attempt_at = ?1 WHERE state = ?3",
        params![now, OutboxState::Pending, OutboxState::Dead],
    )?)
}

fn item_from_row(row: &Row) -> crate::store::sql::Result<OutboxItem> {
    Ok(OutboxItem {
        id: row.get("id")?,
        kind: row.get("kind")?,
        alert_kind: row.get("alert_kind")?,
        project: row.get("project")?,
        task: row.get("task")?,
        job_id: row.get("job_id")?,
        run_id: row.get("run_id")?,
        state: row.get("state")?,
        attempts: row.get("attempts")?,
        next_attempt_at: row.get("next_attempt_at")?,
        last_error: row.get("last_error")?,
        created_at: row.get("created_at")?,
        sent_at: row.get("sent_at")?,
        folded_into: row.get("folded_into")?,
    })
}

pub(super) fn summary(conn: &Db, now: i64, limit: i64) -> Result<OutboxSummary> {
    // Kept by the outbox's triggers (migration 0009): delivered messages pile up for years.
    let counts: Vec<OutboxCount> = conn
        .prepare_cached(
            "SELECT kind, state, messages AS n FROM outbox_counts WHERE messages <> 0
             ORDER BY kind, state",
        )?
        .query_map((), |row| {
            Ok(OutboxCount {
                kind: row.get("kind")?,
                state: row.get("state")?,
                count: row.get("n")?,
            })
        })?
        .collect::<crate::store::sql::Result<_>>()?;
    let total = |wanted: fn(OutboxState) -> bool| -> i64 {
        counts
            .iter()
            .filter(|c| wanted(c.state))
            .map(|c| c.count)
            .sum()
    };
    let waiting = (OutboxState::Pending, OutboxState::Sending);
    let items = |filter: String| -> Result<Vec<OutboxItem>> {
        let mut stmt = conn.prepare_cached(&format!("SELECT * FROM outbox {filter}"))?;
        let rows = stmt.query_map([limit], item_from_row)?;
        Ok(rows.collect::<crate::store::sql::Result<_>>()?)
    };
    let mut summary = OutboxSummary {
        pending: total(OutboxState::is_waiting),
        dead: total(|s| s == OutboxState::Dead),
        sent: total(|s| s == OutboxState::Sent),
        folded: total(|s| s == OutboxState::Folded),
        ..OutboxSummary::default()
    };
    // The outbox itself is read only for what the counts say is there (the same snapshot):
    // delivered messages are most of it, and on PostgreSQL a fresh connection pays for each
    // table a statement plans over.
    if summary.pending > 0 {
        (summary.due, summary.oldest_pending_at) = conn
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE next_attempt_at <= ?1) AS due, min(created_at) AS oldest
                 FROM outbox WHERE state IN (?2, ?3)",
            )?
            .query_row(params![now, waiting.0, waiting.1], |row| {
                Ok((row.get("due")?, row.get("oldest")?))
            })?;
        summary.due_by_kind = conn
            .prepare_cached(
                "SELECT kind, count(*) AS n FROM outbox
                 WHERE state IN (?2, ?3) AND next_attempt_at <= ?1 GROUP BY kind",
            )?
            .query_map(params![now, waiting.0, waiting.1], |row| {
                Ok((row.get("kind")?, row.get("n")?))
            })?
            .collect::<crate::store::sql::Result<_>>()?;
        // The states are written into the statements, so they walk outbox_state.
        summary.waiting = items(format!(
            "WHERE state IN ('{}', '{}') ORDER BY next_attempt_at, id LIMIT ?1",
            waiting.0, waiting.1
        ))?;
    }
    if summary.dead > 0 {
        summary.recent_dead = items(format!(
            "WHERE state = '{}' ORDER BY id DESC LIMIT ?1",
            OutboxState::Dead
        ))?;
    }
    summary.counts = counts;
    Ok(summary)
}

/// A message due for delivery: its id, and for an alert its group (kind, dedup key).
struct Due {
    id: i64,
    group: Option<(String, String)>,
}

/// The next due message of an allowed kind: pending and due, or claimed by a sender whose claim
/// ran out.
fn next_due(tx: &Db, request: &ClaimMessage, skip: &str) -> Result<Option<Due>> {
    Ok(tx
        .prepare_cached(
            "SELECT id, alert_kind, dedup_key FROM outbox
             WHERE ((state = ?5 AND next_attempt_at <= ?1)
                    OR (state = ?6 AND claim_expires_at <= ?1))
               AND ((kind = ?7 AND ?2 <> 0)
                    OR (kind IN (?8, ?9, ?10, ?11) AND ?3 <> 0
                        AND coalesce(project, '') NOT IN (SELECT value FROM json_each(?4))))
             ORDER BY next_attempt_at, id LIMIT 1",
        )?
        .query_row(
            params![
                request.now,
                request.alerts,
                request.comments,
                skip,
                OutboxState::Pending,
                OutboxState::Sending,
                MessageKind::Alert,
                MessageKind::Comment,
                MessageKind::PullRequest,
                MessageKind::IssueLabel,
                MessageKind::Merge
            ],
            |row| {
                let alert_kind: Option<String> = row.get("alert_kind")?;
                let dedup_key: Option<String> = row.get("dedup_key")?;
                Ok(Due {
                    id: row.get("id")?,
                    group: alert_kind.zip(dedup_key),
                })
            },
        )
        .optional()?)
}

/// When another alert of the same kind and key went out within the dedup window (or is being
/// sent right now), the time this one must wait for.
fn held_until(
    tx: &Db,
    id: i64,
    (alert_kind, dedup_key): (&str, &str),
    request: &ClaimMessage,
) -> Result<Option<i64>> {
    // The kind is written into the statement: the partial index outbox_dedup matches.
    let until: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT max(CASE WHEN state = ?6 THEN sent_at + ?4 ELSE claim_expires_at END) AS until
             FROM outbox
             WHERE kind = '{alert}' AND alert_kind = ?1 AND dedup_key = ?2 AND id <> ?3
               AND (state = ?6 OR (state = ?7 AND claim_expires_at > ?5))",
            alert = MessageKind::Alert
        ))?
        .query_row(
            params![
                alert_kind,
                dedup_key,
                id,
                request.dedup_ms,
                request.now,
                OutboxState::Sent,
                OutboxState::Sending
            ],
            |row| row.get("until"),
        )?;
    Ok(until.filter(|until| *until > request.now))
}

/// Fold every other pending alert of the group into `id`, with whatever was folded into them.
fn fold_into(tx: &Db, id: i64, (alert_kind, dedup_key): (&str, &str)) -> Result<()> {
    let others = format!(
        "SELECT id FROM outbox WHERE kind = '{alert}' AND alert_kind = ?2
         AND dedup_key = ?3 AND state = '{pending}' AND id <> ?1",
        alert = MessageKind::Alert,
        pending = OutboxState::Pending
    );
    tx.prepare_cached(&format!(
        "UPDATE outbox SET folded_into = ?1 WHERE folded_into IN ({others})"
    ))?
    .execute(params![id, alert_kind, dedup_key])?;
    tx.prepare_cached(&format!(
        "UPDATE outbox SET state = ?4, folded_into = ?1 WHERE id IN ({others})"
    ))?
    .execute(params![id, alert_kind, dedup_key, OutboxState::Folded])?;
    Ok(())
}

fn with_folded(tx: &Db, mut claimed: Claimed) -> Result<Claimed> {
    claimed.folded = tx
        .prepare_cached("SELECT count(*) AS folded FROM outbox WHERE folded_into = ?1")?
        .query_row([claimed.id], |row| row.get("folded"))?;
    if claimed.folded > 0 {
        let mut stmt = tx.prepare_cached(
            "SELECT task FROM outbox WHERE folded_into = ?1 AND task IS NOT NULL
             GROUP BY task ORDER BY min(id) LIMIT ?2",
        )?;
        let tasks = stmt.query_map(params![claimed.id, FOLDED_TASKS_LISTED], |row| {
            row.get("task")
        })?;
        claimed.folded_tasks = tasks.collect::<crate::store::sql::Result<_>>()?;
    }
    Ok(claimed)
}

pub(super) fn comments(conn: &Db) -> Result<Vec<(i64, NewComment)>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, payload FROM outbox WHERE kind = ?1 ORDER BY id")?;
    let rows = stmt.query_map([MessageKind::Comment], |row| {
        Ok((row.get::<_, i64>("id")?, row.get::<_, String>("payload")?))
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
