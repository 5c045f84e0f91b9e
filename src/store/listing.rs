//! Finding jobs and tasks for people: `orch jobs` and `orch show TASK`.

use anyhow::Result;
use rusqlite::params;
use serde::Serialize;

use super::jobs::JOB_COLUMNS;
use super::{Job, Store};

/// The states a job is live in: what `orch jobs` lists by default.
pub const LIVE_STATES: &[&str] = &["running", "queued"];

/// Every state a job can be in (the schema's CHECK), in the order listings show them.
pub const JOB_STATES: &[&str] = &["running", "queued", "done", "failed", "cancelled"];

/// Which jobs to list; None matches anything.
#[derive(Debug, Default)]
pub struct JobFilter<'a> {
    /// Empty: the live states.
    pub states: Vec<&'a str>,
    pub project: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub task: Option<&'a str>,
    pub limit: i64,
}

/// A task as `orch show TASK` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub task_id: i64,
    pub project: String,
    pub key: String,
    pub title: String,
    pub issue: Option<i64>,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Jobs matching `filter`, at most `filter.limit` of each state: running by lease expiry,
    /// queued by when they are due, finished ones newest first. One query per state, each walking
    /// that state's index, so the live listing costs the same however many jobs have finished.
    pub fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let states: &[&str] = if filter.states.is_empty() {
            LIVE_STATES
        } else {
            &filter.states
        };
        let mut out = Vec::new();
        for state in states {
            let order = match *state {
                "running" => "j.lease_expires_at, j.id",
                "queued" => "j.run_after, j.id",
                _ => "j.updated_at DESC, j.id DESC",
            };
            // The state is written into the statement (it is one of the schema's names, checked
            // by the caller) so that the planner can use the partial index over that state.
            anyhow::ensure!(
                state.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "not a job state: {state:?}"
            );
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id
                 WHERE j.state = '{state}' AND (?1 IS NULL OR j.project = ?1)
                   AND (?2 IS NULL OR j.stage = ?2) AND (?3 IS NULL OR t.key = ?3)
                 ORDER BY {order} LIMIT ?4"
            );
            let mut stmt = self.conn().prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![filter.project, filter.stage, filter.task, filter.limit],
                Job::from_row,
            )?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Every task with this key (one per project at most).
    pub fn tasks_by_key(&self, key: &str) -> Result<Vec<Task>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, project, key, title, issue, state, created_at, updated_at FROM tasks
             WHERE key = ?1 ORDER BY project",
        )?;
        let rows = stmt.query_map([key], |row| {
            Ok(Task {
                task_id: row.get("id")?,
                project: row.get("project")?,
                key: row.get("key")?,
                title: row.get("title")?,
                issue: row.get("issue")?,
                state: row.get("state")?,
                created_at: row.get("created_at")?,
                updated_at: row.get("updated_at")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A task's jobs, in the order they were made (the pipeline's order, retries aside).
    pub fn jobs_of_task(&self, task_id: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id
             WHERE j.task_id = ?1 ORDER BY j.id"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map([task_id], Job::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
