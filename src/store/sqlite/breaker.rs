//! The circuit breakers' rows, one per agent. The transitions are `crate::domain::breaker`'s:
//! this module reads a breaker, hands it to the pure code and saves what comes back.

use crate::store::sql::{params, Db, Row};
use anyhow::Result;

use crate::domain::breaker::{Breaker, Change, Gate, Probe};
use crate::domain::states::JobState;
use crate::store::{BreakerRow, FinalizePlan};

fn from_row(row: &Row) -> crate::store::sql::Result<Breaker> {
    let probe = match (
        row.get::<_, Option<i64>>("probe_job_id")?,
        row.get::<_, Option<String>>("probe_worker")?,
        row.get::<_, Option<i64>>("probe_attempt")?,
    ) {
        (Some(job_id), Some(worker), Some(attempt)) => Some(Probe {
            job_id,
            worker,
            attempt,
            started_at: row.get::<_, Option<i64>>("probe_started_at")?.unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Breaker {
        state: row.get("state")?,
        consecutive_failures: row.get("consecutive_failures")?,
        opened_at: row.get("opened_at")?,
        cooldown_ms: row.get("cooldown_ms")?,
        probe,
        last_class: row.get("last_class")?,
    })
}

/// The agent's breaker; closed when it has no row.
pub(super) fn of(conn: &Db, agent: &str) -> Result<Breaker> {
    Ok(rows(conn, Some(agent), 0)?
        .pop()
        .map(|row| row.breaker)
        .unwrap_or_default())
}

pub(super) fn save(
    tx: &Db,
    agent: &str,
    breaker: &Breaker,
    run_id: Option<i64>,
    now: i64,
) -> Result<()> {
    let probe = breaker.probe.as_ref();
    tx.prepare_cached(
        "INSERT INTO breakers (agent, state, consecutive_failures, opened_at, cooldown_ms, probe_job_id,
                               probe_worker, probe_attempt, probe_started_at, last_class, last_run_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (agent) DO UPDATE SET state = excluded.state,
                consecutive_failures = excluded.consecutive_failures, opened_at = excluded.opened_at,
                cooldown_ms = excluded.cooldown_ms, probe_job_id = excluded.probe_job_id,
                probe_worker = excluded.probe_worker, probe_attempt = excluded.probe_attempt,
                probe_started_at = excluded.probe_started_at, last_class = excluded.last_class,
                last_run_id = coalesce(excluded.last_run_id, breakers.last_run_id), updated_at = excluded.updated_at",
    )?
    .execute(params![
        agent,
        breaker.state,
        breaker.consecutive_failures,
        breaker.opened_at,
        breaker.cooldown_ms,
        probe.map(|p| p.job_id),
        probe.map(|p| p.worker.as_str()),
        probe.map(|p| p.attempt),
        probe.map(|p| p.started_at),
        breaker.last_class,
        run_id,
        now
    ])?;
    Ok(())
}

/// Breaker rows (one agent's, or all) with the probe's liveness at `?1`: whether the probe still
/// holds its job's lease (running, same worker and attempt, unexpired).
pub(super) fn rows(conn: &Db, agent: Option<&str>, now: i64) -> Result<Vec<BreakerRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, consecutive_failures, opened_at, cooldown_ms, probe_job_id, probe_worker,
                probe_attempt, probe_started_at, last_class, agent, last_run_id, updated_at
         FROM breakers WHERE ?1 IS NULL OR agent = ?1 ORDER BY agent",
    )?;
    let rows = stmt.query_map(params![agent], |row| {
        Ok(BreakerRow {
            breaker: from_row(row)?,
            agent: row.get("agent")?,
            last_run_id: row.get("last_run_id")?,
            updated_at: row.get("updated_at")?,
            probe_live: false,
        })
    })?;
    let mut rows = rows.collect::<crate::store::sql::Result<Vec<_>>>()?;
    // The jobs table is read only for a breaker with a probe out: most have none, and on
    // PostgreSQL a fresh connection pays for each table a statement plans over.
    for row in &mut rows {
        if let Some(probe) = &row.breaker.probe {
            row.probe_live = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND state = ?2
                            AND lease_owner = ?3 AND attempt = ?4 AND lease_expires_at > ?5)",
                )?
                .query_row(
                    params![
                        probe.job_id,
                        JobState::Running,
                        probe.worker,
                        probe.attempt,
                        now
                    ],
                    |r| r.get(0),
                )?;
        }
    }
    Ok(rows)
}

/// The claim's question, inside its transaction: may `agent` claim at `now`?
pub(super) fn gate(conn: &Db, agent: &str, now: i64) -> Result<(Breaker, Gate)> {
    let (breaker, live) = match rows(conn, Some(agent), now)?.pop() {
        Some(row) => (row.breaker, row.probe_live),
        None => (Breaker::default(), false),
    };
    let gate = breaker.gate(agent, now, live);
    Ok((breaker, gate))
}

/// The half-open breaker's slot, taken by the job the claim just leased.
pub(super) fn take_probe(tx: &Db, agent: &str, breaker: &Breaker, probe: Probe) -> Result<()> {
    let now = probe.started_at;
    save(tx, agent, &breaker.with_probe(probe), None, now)
}

/// Apply a finalized run's effect on its agent's breaker, inside finalize's transaction.
/// Returns the breaker after it and what changed.
pub(super) fn record(tx: &Db, plan: &FinalizePlan, now: i64) -> Result<(Breaker, Change)> {
    let current = of(tx, &plan.agent)?;
    let is_probe = current.probe.as_ref().is_some_and(|p| {
        p.job_id == plan.job_id && p.worker == plan.worker && p.attempt == plan.attempt
    });
    let update = &plan.breaker;
    let (next, change) = current.record(
        update.event,
        &plan.verdict.class,
        is_probe,
        &update.policy,
        now,
    );
    if next != current {
        save(tx, &plan.agent, &next, Some(plan.run_id), now)?;
    }
    Ok((next, change))
}

pub(super) fn close(tx: &Db, agent: Option<&str>) -> Result<usize> {
    let open: i64 = tx.query_row(
        "SELECT count(*) AS open FROM breakers WHERE (?1 IS NULL OR agent = ?1) AND state != ?2",
        params![agent, crate::domain::breaker::State::Closed],
        |row| row.get("open"),
    )?;
    tx.execute(
        "DELETE FROM breakers WHERE ?1 IS NULL OR agent = ?1",
        params![agent],
    )?;
    Ok(open as usize)
}
