//! Tasks, jobs, their history and the claim.

use anyhow::{bail, Result};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;

use super::{
    breaker_gate, close_orphaned_runs, queue_alert, take_probe, AlertKind, NewAlert, Store,
};
use crate::breaker::{Gate, Probe};
use crate::exit;

/// A job id that names no job: a wrong argument (exit 2), whichever command was given it.
pub fn no_job(job_id: i64) -> anyhow::Error {
    exit::usage(format!("no job {job_id}"))
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub job_id: i64,
    pub task_id: i64,
    pub task: String,
    pub title: String,
    pub issue: Option<i64>,
    pub project: String,
    pub stage: String,
    pub state: String,
    pub priority: i64,
    pub attempt: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_class: Option<String>,
    pub last_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(super) const JOB_COLUMNS: &str =
    "j.id, j.task_id, t.key, t.title, t.issue, j.project, j.stage, j.state, j.priority, \
     j.attempt, j.max_attempts, j.run_after, j.lease_owner, j.lease_expires_at, j.last_class, \
     j.last_reason, j.created_at, j.updated_at";

impl Job {
    pub(super) fn from_row(row: &Row) -> rusqlite::Result<Job> {
        Ok(Job {
            job_id: row.get(0)?,
            task_id: row.get(1)?,
            task: row.get(2)?,
            title: row.get(3)?,
            issue: row.get(4)?,
            project: row.get(5)?,
            stage: row.get(6)?,
            state: row.get(7)?,
            priority: row.get(8)?,
            attempt: row.get(9)?,
            max_attempts: row.get(10)?,
            run_after: row.get(11)?,
            lease_owner: row.get(12)?,
            lease_expires_at: row.get(13)?,
            last_class: row.get(14)?,
            last_reason: row.get(15)?,
            created_at: row.get(16)?,
            updated_at: row.get(17)?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub reason: String,
}

pub struct NewTask<'a> {
    pub project: &'a str,
    pub key: &'a str,
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub issue: Option<u64>,
    pub stage: &'a str,
    pub priority: i64,
    pub max_attempts: u64,
    pub actor: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Enqueued {
    pub job_id: i64,
    pub task: String,
    pub project: String,
    pub stage: String,
    pub created: bool,
    /// The live job's state when `created` is false.
    pub state: String,
}

pub struct ClaimRequest<'a> {
    pub worker: &'a str,
    /// The agent that will run the job: its circuit breaker gates the claim.
    pub agent: &'a str,
    /// Projects that may be claimed from, with their `max_running`.
    pub projects: Vec<(&'a str, u32)>,
    pub lease_ms: i64,
    pub now: i64,
}

/// What a claim did.
#[derive(Debug)]
pub struct Claim {
    pub job: Option<Job>,
    /// Jobs whose expired leases were rescued on the way.
    pub rescued: Vec<Rescued>,
    /// The claim went through a half-open circuit breaker: its run decides whether it closes.
    pub probe: bool,
}

/// A job whose lease ran out while it was running: its worker died or lost the database.
#[derive(Debug, Serialize)]
pub struct Rescued {
    pub job_id: i64,
    pub worker: Option<String>,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct StateCount {
    pub project: String,
    pub state: String,
    pub stage: String,
    pub count: i64,
}

/// Record a transition in the job's history.
pub fn record(
    tx: &Transaction,
    job_id: i64,
    from: Option<&str>,
    to: &str,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![job_id, now, from, to, actor, reason])?;
    Ok(())
}

/// A job to queue for a stage of an existing task, attempt 0, due at `now`.
pub struct JobSpec<'a> {
    pub task_id: i64,
    pub stage: &'a str,
    pub priority: i64,
    pub max_attempts: u64,
    pub actor: &'a str,
    pub reason: &'a str,
}

pub fn insert_job(tx: &Transaction, spec: &JobSpec, now: i64) -> Result<i64> {
    let JobSpec {
        task_id,
        stage,
        priority,
        max_attempts,
        actor,
        reason,
    } = *spec;
    let job_id: i64 = tx.query_row(
        "INSERT INTO jobs (task_id, project, stage, state, priority, attempt, max_attempts, run_after, created_at, updated_at)
         SELECT id, project, ?2, 'queued', ?3, 0, ?4, ?5, ?5, ?5 FROM tasks WHERE id = ?1
         RETURNING id",
        params![task_id, stage, priority, max_attempts as i64, now],
        |row| row.get(0),
    )?;
    tx.execute(
        "UPDATE tasks SET state = 'active', updated_at = ?2 WHERE id = ?1",
        params![task_id, now],
    )?;
    record(tx, job_id, None, "queued", actor, reason, now)?;
    Ok(job_id)
}

/// Set the task's state from its jobs once none is live: failed or cancelled like its last job.
pub fn settle_task(tx: &Transaction, task_id: i64, state: &str, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE tasks SET state = ?2, updated_at = ?3 WHERE id = ?1
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE task_id = ?1 AND state IN ('queued', 'running'))",
        params![task_id, state, now],
    )?;
    Ok(())
}

/// Who holds a running job's lease: a worker, for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct LeaseHolder<'a> {
    pub job_id: i64,
    pub worker: &'a str,
    pub attempt: i64,
}

/// Extend the holder's lease to `now + lease_ms`. False when it holds it no more: the job was
/// cancelled, finalized or rescued (and maybe claimed again) meanwhile.
pub fn renew_lease(
    tx: &Transaction,
    holder: &LeaseHolder,
    lease_ms: i64,
    now: i64,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET lease_expires_at = ?4 + ?5
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3",
        )?
        .execute(params![
            holder.job_id,
            holder.worker,
            holder.attempt,
            now,
            lease_ms
        ])?;
    Ok(changed == 1)
}

pub fn job_in(tx: &rusqlite::Connection, job_id: i64) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.id = ?1"
    );
    Ok(tx
        .prepare_cached(&sql)?
        .query_row([job_id], Job::from_row)
        .optional()?)
}

impl Store {
    pub fn enqueue(&mut self, new: &NewTask, now: i64) -> Result<Enqueued> {
        self.write(|tx| {
            let task_id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM tasks WHERE project = ?1 AND key = ?2",
                    params![new.project, new.key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(task_id) = task_id {
                let live: Option<(i64, String, String)> = tx
                    .query_row(
                        "SELECT id, stage, state FROM jobs WHERE task_id = ?1 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                        [task_id],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()?;
                if let Some((job_id, stage, state)) = live {
                    return Ok(Enqueued {
                        job_id,
                        task: new.key.to_string(),
                        project: new.project.to_string(),
                        stage,
                        created: false,
                        state,
                    });
                }
            }
            let task_id = match task_id {
                Some(id) => {
                    tx.execute(
                        "UPDATE tasks SET title = coalesce(?2, title), body = coalesce(?3, body),
                                issue = coalesce(?4, issue), updated_at = ?5 WHERE id = ?1",
                        params![id, new.title, new.body, new.issue.map(|n| n as i64), now],
                    )?;
                    id
                }
                None => tx.query_row(
                    "INSERT INTO tasks (project, key, title, body, issue, created_at, updated_at)
                     VALUES (?1, ?2, coalesce(?3, ''), coalesce(?4, ''), ?5, ?6, ?6) RETURNING id",
                    params![new.project, new.key, new.title, new.body, new.issue.map(|n| n as i64), now],
                    |row| row.get(0),
                )?,
            };
            let spec = JobSpec {
                task_id,
                stage: new.stage,
                priority: new.priority,
                max_attempts: new.max_attempts,
                actor: new.actor,
                reason: "enqueued",
            };
            let job_id = insert_job(tx, &spec, now)?;
            Ok(Enqueued {
                job_id,
                task: new.key.to_string(),
                project: new.project.to_string(),
                stage: new.stage.to_string(),
                created: true,
                state: "queued".to_string(),
            })
        })
    }

    /// Ask the agent's circuit breaker, rescue expired leases, then take the best eligible job:
    /// one transaction, one winner. An open breaker is an error carrying exit 12, and nothing is
    /// written; a half-open one lets this claim through as its only probe.
    pub fn claim(&mut self, request: &ClaimRequest) -> Result<Claim> {
        self.write(|tx| {
            let (breaker, gate) = breaker_gate(tx, request.agent, request.now)?;
            if let Gate::Refuse(why) = gate {
                return Err(exit::coded(exit::BREAKER_OPEN, why));
            }
            let probe = gate == Gate::Probe;
            let rescued = rescue_expired(tx, request.now)?;
            let mut running = tx.prepare_cached(
                "SELECT project, count(*) FROM jobs WHERE state = 'running' GROUP BY project",
            )?;
            let counts: Vec<(String, i64)> = running
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let open: Vec<&str> = request
                .projects
                .iter()
                .filter(|(name, limit)| {
                    let busy = counts
                        .iter()
                        .find(|(p, _)| p == name)
                        .map_or(0, |(_, n)| *n);
                    busy < i64::from(*limit)
                })
                .map(|(name, _)| *name)
                .collect();
            let nothing = |rescued| Claim {
                job: None,
                rescued,
                probe: false,
            };
            if open.is_empty() {
                return Ok(nothing(rescued));
            }
            let open = serde_json::to_string(&open)?;
            let claimed: Option<i64> = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?1,
                            lease_expires_at = ?2 + ?3, updated_at = ?2
                     WHERE id = (
                         SELECT j.id FROM json_each(?4) AS p
                         JOIN jobs AS j ON j.id = (
                             SELECT q.id FROM jobs AS q
                             WHERE q.state = 'queued' AND q.project = p.value AND q.run_after <= ?2
                             ORDER BY q.priority DESC, q.run_after, q.id LIMIT 1)
                         ORDER BY j.priority DESC, j.run_after, j.id LIMIT 1)
                     RETURNING id",
                )?
                .query_row(
                    params![request.worker, request.now, request.lease_ms, open],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(job_id) = claimed else {
                return Ok(nothing(rescued));
            };
            let job = job_in(tx, job_id)?.expect("the claimed job exists");
            let mut reason = format!("claimed, attempt {}/{}", job.attempt, job.max_attempts);
            if probe {
                let slot = Probe {
                    job_id,
                    worker: request.worker.to_string(),
                    attempt: job.attempt,
                    started_at: request.now,
                };
                take_probe(tx, request.agent, &breaker, slot)?;
                reason.push_str(&format!(
                    " (the probe of agent {}'s half-open circuit breaker)",
                    request.agent
                ));
            }
            record(
                tx,
                job_id,
                Some("queued"),
                "running",
                request.worker,
                &reason,
                request.now,
            )?;
            Ok(Claim {
                job: Some(job),
                rescued,
                probe,
            })
        })
    }

    /// The run's heartbeat: see `renew_lease`.
    pub fn heartbeat(&mut self, holder: &LeaseHolder, lease_ms: i64, now: i64) -> Result<bool> {
        self.write(|tx| renew_lease(tx, holder, lease_ms, now))
    }

    pub fn job(&self, job_id: i64) -> Result<Option<Job>> {
        job_in(self.conn(), job_id)
    }

    pub fn task_body(&self, task_id: i64) -> Result<String> {
        Ok(self
            .conn()
            .query_row("SELECT body FROM tasks WHERE id = ?1", [task_id], |row| {
                row.get(0)
            })?)
    }

    pub fn history(&self, job_id: i64) -> Result<Vec<HistoryEntry>> {
        let mut stmt = self.conn().prepare(
            "SELECT at, from_state, to_state, actor, reason FROM job_history WHERE job_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([job_id], |row| {
            Ok(HistoryEntry {
                at: row.get(0)?,
                from_state: row.get(1)?,
                to_state: row.get(2)?,
                actor: row.get(3)?,
                reason: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Cancel a queued or running job. Returns the state it was in.
    pub fn cancel(&mut self, job_id: i64, actor: &str, now: i64) -> Result<String> {
        self.write(|tx| {
            let Some(job) = job_in(tx, job_id)? else {
                return Err(no_job(job_id));
            };
            match job.state.as_str() {
                "queued" | "running" => {}
                "cancelled" => return Ok(job.state),
                other => bail!("job {job_id} is {other}; only queued or running jobs can be cancelled"),
            }
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2 WHERE id = ?1",
                params![job_id, now],
            )?;
            record(tx, job_id, Some(&job.state), "cancelled", actor, "cancelled by operator", now)?;
            settle_task(tx, job.task_id, "cancelled", now)?;
            Ok(job.state)
        })
    }

    /// Put a failed or cancelled job back in the queue, attempts reset. Returns the state it was in.
    pub fn retry(&mut self, job_id: i64, actor: &str, now: i64) -> Result<String> {
        self.write(|tx| {
            let Some(job) = job_in(tx, job_id)? else {
                return Err(no_job(job_id));
            };
            if !matches!(job.state.as_str(), "failed" | "cancelled") {
                bail!(
                    "job {job_id} is {}; only failed or cancelled jobs can be retried",
                    job.state
                );
            }
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM jobs WHERE task_id = ?1 AND state IN ('queued', 'running')",
                [job.task_id],
                |row| row.get(0),
            )?;
            if live > 0 {
                bail!("task {} already has a live job; cancel it first", job.task);
            }
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempt = 0, run_after = ?2, lease_owner = NULL,
                        lease_expires_at = NULL, updated_at = ?2 WHERE id = ?1",
                params![job_id, now],
            )?;
            tx.execute(
                "UPDATE tasks SET state = 'active', updated_at = ?2 WHERE id = ?1",
                params![job.task_id, now],
            )?;
            record(
                tx,
                job_id,
                Some(&job.state),
                "queued",
                actor,
                "retried by operator, attempts reset",
                now,
            )?;
            Ok(job.state)
        })
    }

    pub fn state_counts(&self) -> Result<Vec<StateCount>> {
        let mut stmt = self.conn().prepare(
            "SELECT project, state, stage, count(*) AS n FROM jobs GROUP BY project, state, stage
             ORDER BY project, state, stage",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(StateCount {
                project: row.get("project")?,
                state: row.get("state")?,
                stage: row.get("stage")?,
                count: row.get("n")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Jobs in `state`, ordered for display: running by lease expiry, queued by when they are due.
    pub fn jobs_in_state(&self, state: &str, limit: i64) -> Result<Vec<Job>> {
        let order = if state == "running" {
            "j.lease_expires_at"
        } else {
            "j.run_after, j.id"
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.state = ?1 ORDER BY {order} LIMIT ?2"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![state, limit], Job::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Queued jobs waiting for a retry time still in the future, soonest first.
    pub fn pending_retries(&self, now: i64, limit: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id
             WHERE j.state = 'queued' AND j.run_after > ?1 ORDER BY j.run_after LIMIT ?2"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![now, limit], Job::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Requeue (attempt counted) or fail every running job whose lease has run out.
fn rescue_expired(tx: &Transaction, now: i64) -> Result<Vec<Rescued>> {
    let expired: Vec<(i64, i64, Option<String>, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, task_id, lease_owner, attempt, max_attempts FROM jobs
             WHERE state = 'running' AND lease_expires_at <= ?1",
        )?
        .query_map([now], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut rescued = Vec::with_capacity(expired.len());
    for (job_id, task_id, worker, attempt, max_attempts) in expired {
        let state = if attempt >= max_attempts {
            "failed"
        } else {
            "queued"
        };
        let reason = format!(
            "lease of {} expired (attempt {attempt}/{max_attempts} counted)",
            worker.as_deref().unwrap_or("?")
        );
        tx.execute(
            "UPDATE jobs SET state = ?2, run_after = ?3, lease_owner = NULL, lease_expires_at = NULL,
                    last_class = 'lease_expired', last_reason = ?4, updated_at = ?3 WHERE id = ?1",
            params![job_id, state, now, reason],
        )?;
        record(tx, job_id, Some("running"), state, "orch", &reason, now)?;
        let decision = if state == "failed" {
            "failed"
        } else {
            "requeued"
        };
        close_orphaned_runs(tx, job_id, attempt, decision, &reason, now)?;
        if state == "failed" {
            settle_task(tx, task_id, "failed", now)?;
            if let Some(job) = job_in(tx, job_id)? {
                let alert = NewAlert::for_job(AlertKind::Failed, &job, "lease_expired", &reason);
                queue_alert(tx, &alert, now)?;
            }
        }
        rescued.push(Rescued {
            job_id,
            worker,
            state: state.to_string(),
        });
    }
    Ok(rescued)
}
