//! The read-only queries behind `orch metrics`: totals over the whole database, one statement
//! each, all inside one read transaction (the caller's). Totals of finished work come from the
//! counters and the usage rollup the triggers keep (migration 0009), live ones from the partial
//! indexes over live rows: none of them reads every job, run or message ever made.

use crate::store::sql::{Db, OptionalExtension};
use anyhow::Result;

use super::{branches, breaker, budget, holds, listing, outbox, preflight, retention};
use crate::domain::budget::day_start;
use crate::domain::retention::PRUNE_TURN;
use crate::domain::states::JobState;
use crate::store::{ClassCount, MetricsFacts, UsageTotals};

/// The day of the usage rollup's rows of all-time totals per project and class (their task is
/// '', as in the rows of each day; migration 0009).
pub(super) const ALL_TIME: i64 = -1;

pub(super) fn facts(conn: &Db, host: &str, now: i64) -> Result<MetricsFacts> {
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
            "SELECT coalesce(sum(runs), 0) FROM run_counts WHERE name = 'resumed'",
            (),
            |row| row.get(0),
        )?,
        cost_today: budget::cost_on(conn, day_start(now))?,
        worktrees: branches::usage(conn, host)?,
        holds: holds::all(conn)?,
        last_prune_at: retention::turn_done_at(conn, PRUNE_TURN)?,
    })
}

/// Finalized runs by class from the rollup, and the runs not finalized yet (class None).
fn run_class_counts(conn: &Db) -> Result<Vec<ClassCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT class, sum(runs) AS n FROM usage_rollup WHERE task = '' AND day = ?1 GROUP BY class
         UNION ALL
         SELECT NULL, count(*) FROM agent_runs INDEXED BY agent_runs_unfinalized
         WHERE finalized_at IS NULL
         ORDER BY 1",
    )?;
    let rows = stmt.query_map([ALL_TIME], |row| {
        Ok(ClassCount {
            class: row.get(0)?,
            count: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

fn requeue_count(conn: &Db) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT moves FROM job_moves WHERE from_state = ?1 AND to_state = ?2",
            [JobState::Running, JobState::Queued],
            |row| row.get("moves"),
        )
        .optional()?
        .unwrap_or(0))
}

fn usage_by_project(conn: &Db) -> Result<Vec<UsageTotals>> {
    let mut stmt = conn.prepare_cached(
        "SELECT project, total(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
                sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
                sum(cache_write_tokens) AS cache_write_tokens
         FROM usage_rollup WHERE task = '' AND day = ?1 GROUP BY project ORDER BY project",
    )?;
    let rows = stmt.query_map([ALL_TIME], |row| {
        Ok(UsageTotals {
            project: row.get("project")?,
            cost_usd: row.get("cost_usd")?,
            input_tokens: row.get("input_tokens")?,
            output_tokens: row.get("output_tokens")?,
            cache_read_tokens: row.get("cache_read_tokens")?,
            cache_write_tokens: row.get("cache_write_tokens")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

fn oldest_due_queued(conn: &Db, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            &format!(
                // A job held behind CI is not due, whatever its run_after says: the walk of the
                // due queue stops at the first job without a gate.
                "SELECT run_after AS due FROM jobs j WHERE j.state = '{}' AND j.run_after <= ?1
                   AND NOT EXISTS (SELECT 1 FROM ci_gates g WHERE g.job_id = j.id)
                 ORDER BY j.run_after LIMIT 1",
                JobState::Queued
            ),
            [now],
            |row| row.get("due"),
        )
        .optional()?
        .flatten())
}
