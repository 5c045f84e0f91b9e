//! agent_runs: one row per launch of the agent. `exit_code` is written once, when the process
//! ends, exactly as it returned; the verdict (`result_ok`, `class`) is stored beside it.

use anyhow::Result;
use rusqlite::{OptionalExtension, Row};
use serde::Serialize;

use super::Store;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: i64,
    pub job_id: i64,
    pub attempt: i64,
    pub worker: String,
    pub agent: String,
    pub agent_version: Option<String>,
    pub pid: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub launch_error: Option<String>,
    pub log_path: Option<String>,
    pub log_bytes: i64,
    pub log_truncated: bool,
    pub result_ok: Option<bool>,
    pub class: Option<String>,
    pub reason: Option<String>,
    pub usage: Option<serde_json::Value>,
    pub decision: Option<String>,
    pub finalized_at: Option<i64>,
}

pub(crate) const RUN_COLUMNS: &str =
    "id, job_id, attempt, worker, agent, agent_version, pid, started_at, ended_at, \
     duration_ms, exit_code, signal, timed_out, interrupted, launch_error, log_path, log_bytes, \
     log_truncated, result_ok, class, reason, usage_json, decision, finalized_at";

impl Run {
    pub(crate) fn from_row(row: &Row) -> rusqlite::Result<Run> {
        let usage: Option<String> = row.get(21)?;
        Ok(Run {
            run_id: row.get(0)?,
            job_id: row.get(1)?,
            attempt: row.get(2)?,
            worker: row.get(3)?,
            agent: row.get(4)?,
            agent_version: row.get(5)?,
            pid: row.get(6)?,
            started_at: row.get(7)?,
            ended_at: row.get(8)?,
            duration_ms: row.get(9)?,
            exit_code: row.get(10)?,
            signal: row.get(11)?,
            timed_out: row.get(12)?,
            interrupted: row.get(13)?,
            launch_error: row.get(14)?,
            log_path: row.get(15)?,
            log_bytes: row.get(16)?,
            log_truncated: row.get(17)?,
            result_ok: row.get(18)?,
            class: row.get(19)?,
            reason: row.get(20)?,
            usage: usage.and_then(|u| serde_json::from_str(&u).ok()),
            decision: row.get(22)?,
            finalized_at: row.get(23)?,
        })
    }
}

impl Store {
    pub fn runs_for_job(&self, job_id: i64) -> Result<Vec<Run>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE job_id = ?1 ORDER BY id");
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([job_id], Run::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn run(&self, run_id: i64) -> Result<Option<Run>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [run_id], Run::from_row)
            .optional()?)
    }
}
