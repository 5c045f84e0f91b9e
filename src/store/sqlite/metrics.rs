//! The read-only queries behind `orch metrics`: totals over the whole database, one statement
//! each, all inside one read transaction (the caller's).

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use super::{branches, breaker, budget, listing, outbox, preflight};
use crate::domain::budget::day_start;
use crate::domain::states::JobState;
use crate::store::{ClassCount, MetricsFacts, UsageTotals};

pub(super) fn facts(conn: &Connection, host: &str, now: i64) -> Result<MetricsFacts> {
    Ok(MetricsFacts {
        job_counts: listing::state_counts(conn)?,
        run_classes: run_class_counts(conn)?,
        requeues: requeue_count(conn)?,
        usage: usage_by_project(conn)?,
        preflight: preflight::rows(conn, host, now)?,
        outbox: outbox::summary(conn, now, 0)?,
        oldest_due_queued: oldest_due_queued(conn, now)?,
        breakers: breaker::rows(conn, None, now)?,
        resumed_runs: conn.query_row(
            "SELECT count(*) FROM agent_runs WHERE resumed_session IS NOT NULL",
            [],
            |row| row.get(0),
        )?,
        cost_today: budget::cost_on(conn, day_start(now))?,
        worktrees: branches::usage(conn, host)?,
    })
}

fn run_class_counts(conn: &Connection) -> Result<Vec<ClassCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT class, count(*) AS n FROM agent_runs GROUP BY class ORDER BY class",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(ClassCount {
            class: row.get("class")?,
            count: row.get("n")?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn requeue_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) AS n FROM job_history WHERE from_state = ?1 AND to_state = ?2",
        [JobState::Running, JobState::Queued],
        |row| row.get("n"),
    )?)
}

fn usage_by_project(conn: &Connection) -> Result<Vec<UsageTotals>> {
    let mut stmt = conn.prepare_cached(
        "SELECT j.project AS project,
                total(max(json_extract(r.usage_json, '$.cost_usd'), 0)) AS cost_usd,
                total(max(json_extract(r.usage_json, '$.input_tokens'), 0)) AS input_tokens,
                total(max(json_extract(r.usage_json, '$.output_tokens'), 0)) AS output_tokens,
                total(max(json_extract(r.usage_json, '$.cache_read_tokens'), 0)) AS cache_read_tokens,
                total(max(json_extract(r.usage_json, '$.cache_write_tokens'), 0)) AS cache_write_tokens
         FROM agent_runs r JOIN jobs j ON j.id = r.job_id
         WHERE r.usage_json IS NOT NULL AND json_valid(r.usage_json)
         GROUP BY j.project ORDER BY j.project",
    )?;
    // total() is a float whatever it sums; token counts are whole numbers.
    let rows = stmt.query_map([], |row| {
        let tokens = |name: &str| row.get::<_, f64>(name).map(|n| n as i64);
        Ok(UsageTotals {
            project: row.get("project")?,
            cost_usd: row.get("cost_usd")?,
            input_tokens: tokens("input_tokens")?,
            output_tokens: tokens("output_tokens")?,
            cache_read_tokens: tokens("cache_read_tokens")?,
            cache_write_tokens: tokens("cache_write_tokens")?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn oldest_due_queued(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT min(run_after) AS due FROM jobs WHERE state = '{}' AND run_after <= ?1",
                JobState::Queued
            ),
            [now],
            |row| row.get("due"),
        )
        .optional()?
        .flatten())
}
