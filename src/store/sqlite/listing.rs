//! Reads for people: job and task listings, history, counts.

use crate::store::sql::{params, Db};
use anyhow::Result;

use super::jobs::jobs_where;
use crate::domain::states::JobState;
use crate::store::{HistoryEntry, Job, JobFilter, StateCount, Task};

pub(super) fn task_body(conn: &Db, task_id: i64) -> Result<String> {
    Ok(
        conn.query_row("SELECT body FROM tasks WHERE id = ?1", [task_id], |row| {
            row.get("body")
        })?,
    )
}

pub(super) fn history(conn: &Db, job_id: i64) -> Result<Vec<HistoryEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, from_state, to_state, actor, reason FROM job_history WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([job_id], |row| {
        Ok(HistoryEntry {
            at: row.get("at")?,
            from_state: row.get("from_state")?,
            to_state: row.get("to_state")?,
            actor: row.get("actor")?,
            reason: row.get("reason")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// From the counts kept by the jobs' triggers (migration 0009): reading them costs the same
/// however many jobs there are. Finished jobs stay counted after they are pruned.
pub(super) fn state_counts(conn: &Db) -> Result<Vec<StateCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT project, state, stage, jobs AS n FROM job_counts WHERE jobs <> 0
         ORDER BY project, state, stage",
    )?;
    let rows = stmt.query_map((), |row| {
        Ok(StateCount {
            project: row.get("project")?,
            state: row.get("state")?,
            stage: row.get("stage")?,
            count: row.get("n")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// How jobs in `state` are listed: running by lease expiry, queued by when they are due.
fn display_order(state: JobState) -> &'static str {
    match state {
        JobState::Running => "j.lease_expires_at",
        // Since when it waits for a person: the oldest first.
        JobState::AwaitingApproval => "j.updated_at, j.id",
        _ => "j.run_after, j.id",
    }
}

pub(super) fn jobs_in_state(conn: &Db, state: JobState, limit: i64) -> Result<Vec<Job>> {
    // The state is written into the statement so that the planner can use the partial index
    // over that state.
    jobs_where(
        conn,
        &format!(
            "WHERE j.state = '{state}' ORDER BY {} LIMIT ?1",
            display_order(state)
        ),
        [limit],
    )
}

pub(super) fn stranded(conn: &Db, stages: &[&str], limit: i64) -> Result<Vec<Job>> {
    let stages = serde_json::to_string(stages)?;
    // The counts say whether any live job is at a stage the pipeline lacks; nearly always none.
    let live: Vec<String> = JobState::LIVE.iter().map(|s| format!("'{s}'")).collect();
    let any: bool = conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM job_counts WHERE state IN ({}) AND jobs > 0
                              AND stage NOT IN (SELECT value FROM json_each(?1)))",
            live.join(", ")
        ))?
        .query_row(params![stages], |row| row.get(0))?;
    if !any {
        return Ok(Vec::new());
    }
    // One query per live state, each walking that state's partial index: a list of states would
    // match neither and read every job ever made. `+j.id`: ordered by the bare id, the planner
    // would walk every job in id order to save itself the sort.
    let mut out = Vec::new();
    for state in JobState::LIVE {
        out.extend(jobs_where(
            conn,
            &format!(
                "WHERE j.state = '{state}' AND j.stage NOT IN (SELECT value FROM json_each(?1))
                 ORDER BY +j.id LIMIT ?2"
            ),
            params![stages, limit],
        )?);
    }
    out.sort_by_key(|job| job.job_id);
    out.truncate(limit.max(0) as usize);
    Ok(out)
}

pub(super) fn pending_retries(conn: &Db, now: i64, limit: i64) -> Result<Vec<Job>> {
    jobs_where(
        conn,
        &format!(
            "WHERE j.state = '{}' AND j.run_after > ?1 ORDER BY j.run_after, j.id LIMIT ?2",
            JobState::Queued
        ),
        params![now, limit],
    )
}

/// One query per state, each walking that state's index, so the live listing costs the same
/// however many jobs have finished.
pub(super) fn list_jobs(conn: &Db, filter: &JobFilter) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    for &state in filter.states() {
        let order = match state {
            JobState::Running => "j.lease_expires_at, j.id",
            JobState::Queued => "j.run_after, j.id",
            _ => "j.updated_at DESC, j.id DESC",
        };
        // The state is written into the statement so that the planner can use the partial index
        // over that state.
        out.extend(jobs_where(
            conn,
            &format!(
                "WHERE j.state = '{state}' AND (?1 IS NULL OR j.project = ?1)
                   AND (?2 IS NULL OR j.stage = ?2) AND (?3 IS NULL OR t.key = ?3)
                 ORDER BY {order} LIMIT ?4"
            ),
            params![filter.project, filter.stage, filter.task, filter.limit],
        )?);
    }
    Ok(out)
}

pub(super) fn tasks_by_key(conn: &Db, key: &str) -> Result<Vec<Task>> {
    super::branches::tasks_where(conn, "WHERE key = ?1 ORDER BY project", [key])
}

pub(super) fn jobs_of_task(conn: &Db, task_id: i64) -> Result<Vec<Job>> {
    jobs_where(conn, "WHERE j.task_id = ?1 ORDER BY j.id", [task_id])
}
