//! The read-only queries behind `orch metrics`: totals over the whole database, one statement
//! each. Job counts and the outbox summary come from `jobs` and `outbox`.

use anyhow::Result;
use rusqlite::OptionalExtension;

use super::Store;

/// Runs with one verdict class; `class` is None for runs not judged yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCount {
    pub class: Option<String>,
    pub count: i64,
}

/// What one project's runs cost and used, summed over the usage every judged run recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTotals {
    pub project: String,
    pub cost_usd: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
}

/// One agent's cached preflight verdict, and whether a run holds its auth gate.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightRow {
    pub agent: String,
    /// None when no verdict is cached (only the gate is held).
    pub ok: Option<bool>,
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub gate_held: bool,
}

impl Store {
    pub fn run_class_counts(&self) -> Result<Vec<ClassCount>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT class, count(*) FROM agent_runs GROUP BY class ORDER BY class")?;
        let rows = stmt.query_map([], |row| {
            Ok(ClassCount {
                class: row.get(0)?,
                count: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Times a job went from running back to the queue: an attempt that will be retried (a
    /// transient failure, an expired lease). An operator's `orch retry` of a failed job is not
    /// one: it starts the attempts afresh.
    pub fn requeue_count(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM job_history WHERE from_state = 'running' AND to_state = 'queued'",
            [],
            |row| row.get(0),
        )?)
    }

    /// Cost and tokens by project, from each run's `usage_json` (the verdict's `Usage`); runs
    /// without usage, or with usage that is not valid JSON, count as zero, and so does a negative
    /// figure (a counter never goes down).
    pub fn usage_by_project(&self) -> Result<Vec<UsageTotals>> {
        let mut stmt = self.conn().prepare(
            "SELECT j.project,
                    total(max(json_extract(r.usage_json, '$.cost_usd'), 0)),
                    total(max(json_extract(r.usage_json, '$.input_tokens'), 0)),
                    total(max(json_extract(r.usage_json, '$.output_tokens'), 0)),
                    total(max(json_extract(r.usage_json, '$.cache_read_tokens'), 0)),
                    total(max(json_extract(r.usage_json, '$.cache_write_tokens'), 0))
             FROM agent_runs r JOIN jobs j ON j.id = r.job_id
             WHERE r.usage_json IS NOT NULL AND json_valid(r.usage_json)
             GROUP BY j.project ORDER BY j.project",
        )?;
        // total() is a float whatever it sums; token counts are whole numbers.
        let rows = stmt.query_map([], |row| {
            Ok(UsageTotals {
                project: row.get(0)?,
                cost_usd: row.get(1)?,
                input_tokens: row.get::<_, f64>(2)? as i64,
                output_tokens: row.get::<_, f64>(3)? as i64,
                cache_read_tokens: row.get::<_, f64>(4)? as i64,
                cache_write_tokens: row.get::<_, f64>(5)? as i64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every agent with a cached verdict or a held auth gate.
    pub fn preflight_rows(&self) -> Result<Vec<PreflightRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT a.agent, c.ok, c.created_at, c.expires_at, g.agent IS NOT NULL
             FROM (SELECT agent FROM preflight_cache UNION SELECT agent FROM auth_gate) AS a
             LEFT JOIN preflight_cache AS c ON c.agent = a.agent
             LEFT JOIN auth_gate AS g ON g.agent = a.agent
             ORDER BY a.agent",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(PreflightRow {
                agent: row.get(0)?,
                ok: row.get(1)?,
                created_at: row.get(2)?,
                expires_at: row.get(3)?,
                gate_held: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the longest-waiting queued job became due (`run_after` ≤ now), if any job is due.
    /// A job waiting out a retry delay is not waiting for a worker yet.
    pub fn oldest_due_queued(&self, now: i64) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT min(run_after) FROM jobs WHERE state = 'queued' AND run_after <= ?1",
                [now],
                |row| row.get(0),
            )
            .optional()?
            .flatten())
    }
}
