//! The circuit breaker's rows, one per agent; the transitions are `crate::domain::breaker`'s. The claim
//! asks `breaker_gate` and takes the probe inside its own transaction, finalize records a run's
//! effect inside its own, so two racing claimers get one probe and a decision never lands
//! without its breaker update.

use anyhow::Result;
use rusqlite::{params, Connection, Row, Transaction};
use serde::Serialize;

use super::Store;
use crate::domain::breaker::{Breaker, Change, Event, Gate, Policy, Probe, State};

fn from_row(row: &Row) -> rusqlite::Result<Breaker> {
    let state: String = row.get(0)?;
    let probe = match (
        row.get::<_, Option<i64>>(4)?,
        row.get::<_, Option<String>>(5)?,
        row.get::<_, Option<i64>>(6)?,
    ) {
        (Some(job_id), Some(worker), Some(attempt)) => Some(Probe {
            job_id,
            worker,
            attempt,
            started_at: row.get::<_, Option<i64>>(7)?.unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Breaker {
        // The CHECK constraint admits only the three names.
        state: State::from_name(&state).unwrap_or(State::Closed),
        consecutive_failures: row.get(1)?,
        opened_at: row.get(2)?,
        cooldown_ms: row.get(3)?,
        probe,
        last_class: row.get(8)?,
    })
}

/// The agent's breaker; closed when it has no row.
pub fn breaker_in(conn: &Connection, agent: &str) -> Result<Breaker> {
    Ok(rows(conn, Some(agent), 0)?
        .pop()
        .map(|row| row.breaker)
        .unwrap_or_default())
}

fn save(
    tx: &Transaction,
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
                last_run_id = coalesce(excluded.last_run_id, last_run_id), updated_at = excluded.updated_at",
    )?
    .execute(params![
        agent,
        breaker.state.as_str(),
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
const ROWS: &str = "SELECT state, consecutive_failures, opened_at, cooldown_ms, probe_job_id, \
     probe_worker, probe_attempt, probe_started_at, last_class, agent, last_run_id, updated_at, \
     EXISTS (SELECT 1 FROM jobs j WHERE j.id = b.probe_job_id AND j.state = 'running' \
             AND j.lease_owner = b.probe_worker AND j.attempt = b.probe_attempt \
             AND j.lease_expires_at > ?1) \
     FROM breakers b WHERE ?2 IS NULL OR b.agent = ?2 ORDER BY b.agent";

fn rows(conn: &Connection, agent: Option<&str>, now: i64) -> Result<Vec<BreakerRow>> {
    let mut stmt = conn.prepare_cached(ROWS)?;
    let rows = stmt.query_map(params![now, agent], |row| {
        Ok(BreakerRow {
            breaker: from_row(row)?,
            agent: row.get(9)?,
            last_run_id: row.get(10)?,
            updated_at: row.get(11)?,
            probe_live: row.get(12)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The claim's question, inside its transaction: may `agent` claim at `now`?
pub fn breaker_gate(conn: &Connection, agent: &str, now: i64) -> Result<(Breaker, Gate)> {
    let (breaker, live) = match rows(conn, Some(agent), now)?.pop() {
        Some(row) => (row.breaker, row.probe_live),
        None => (Breaker::default(), false),
    };
    let gate = breaker.gate(agent, now, live);
    Ok((breaker, gate))
}

/// The half-open breaker's slot, taken by the job the claim just leased.
pub fn take_probe(tx: &Transaction, agent: &str, breaker: &Breaker, probe: Probe) -> Result<()> {
    let now = probe.started_at;
    save(tx, agent, &breaker.with_probe(probe), None, now)
}

/// The run that a finalized verdict is about, as the breaker sees it.
pub struct BreakerRun<'a> {
    pub agent: &'a str,
    pub run_id: i64,
    pub job_id: i64,
    pub worker: &'a str,
    pub attempt: i64,
}

/// Apply a finalized run's effect on its agent's breaker, inside finalize's transaction.
/// Returns the breaker after it and what changed.
pub fn record_breaker(
    tx: &Transaction,
    run: &BreakerRun,
    event: Event,
    class: &str,
    policy: &Policy,
    now: i64,
) -> Result<(Breaker, Change)> {
    let current = breaker_in(tx, run.agent)?;
    let is_probe = current.probe.as_ref().is_some_and(|p| {
        p.job_id == run.job_id && p.worker == run.worker && p.attempt == run.attempt
    });
    let (next, change) = current.record(event, class, is_probe, policy, now);
    if next != current {
        save(tx, run.agent, &next, Some(run.run_id), now)?;
    }
    Ok((next, change))
}

/// One agent's breaker, for `orch status`.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerRow {
    pub agent: String,
    #[serde(flatten)]
    pub breaker: Breaker,
    pub last_run_id: Option<i64>,
    pub updated_at: i64,
    /// The probe still holds its job's lease.
    pub probe_live: bool,
}

impl Store {
    /// Every agent's breaker that has a row, by agent name, with its probe's liveness at `now`.
    pub fn breakers(&self, now: i64) -> Result<Vec<BreakerRow>> {
        rows(self.conn(), None, now)
    }

    pub fn breaker(&self, agent: &str) -> Result<Breaker> {
        breaker_in(self.conn(), agent)
    }

    /// `orch reset-cache --breaker`: close one agent's breaker, or every one, and forget its
    /// count. Returns how many were open or half-open.
    pub fn close_breakers(&mut self, agent: Option<&str>) -> Result<usize> {
        self.write(|tx| {
            let open: i64 = tx.query_row(
                "SELECT count(*) FROM breakers WHERE (?1 IS NULL OR agent = ?1) AND state != 'closed'",
                params![agent],
                |row| row.get(0),
            )?;
            tx.execute(
                "DELETE FROM breakers WHERE ?1 IS NULL OR agent = ?1",
                params![agent],
            )?;
            Ok(open as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breaker_round_trips_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("orch.db"), 1000).unwrap();
        assert_eq!(store.breaker("claude").unwrap(), Breaker::default());
        let open = Breaker {
            state: State::HalfOpen,
            consecutive_failures: 4,
            opened_at: Some(10),
            cooldown_ms: 600_000,
            probe: Some(Probe {
                job_id: 3,
                worker: "w".into(),
                attempt: 2,
                started_at: 20,
            }),
            last_class: Some("timeout".into()),
        };
        store
            .write(|tx| save(tx, "claude", &open, Some(9), 30))
            .unwrap();
        assert_eq!(store.breaker("claude").unwrap(), open);
        let rows = store.breakers(1_000_000).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].agent.as_str(),
                rows[0].last_run_id,
                rows[0].updated_at
            ),
            ("claude", Some(9), 30)
        );
        assert!(!rows[0].probe_live);
        // No job 3 holds a lease: the probe is not live, so a claim may probe.
        let (_, gate) = breaker_gate(store.conn(), "claude", 1_000_000).unwrap();
        assert_eq!(gate, Gate::Probe);
        assert_eq!(store.close_breakers(Some("other")).unwrap(), 0);
        assert_eq!(store.close_breakers(None).unwrap(), 1);
        assert_eq!(store.breaker("claude").unwrap(), Breaker::default());
    }
}
