//! Tasks, jobs, their history and the claim.

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::Serialize;

use super::{
    breaker_gate, close_open_runs, hold_project, open_run, proc_of, queue_alert, release_project,
    take_probe, AlertKind, NewAlert, RunClose, Store,
};
use crate::domain::breaker::{Gate, Probe};
use crate::domain::clock;
use crate::domain::rescue::{Candidate, OpenRun, Rescue};
use crate::procfs::Place;
use crate::{exit, output};

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
    /// Projects that may be claimed from.
    pub projects: Vec<ClaimProject<'a>>,
    /// The pipeline's stages: a job at any other stage is not claimed (it could not be finalized).
    pub stages: Vec<&'a str>,
    pub lease_ms: i64,
    /// The longest backoff a queued job may wait (`Retry::longest_ms`): a job due further ahead
    /// than that was dated by a clock that ran ahead, and is due now.
    pub longest_backoff_ms: i64,
    /// This host's name: the claim holds and releases its projects under it.
    pub host: &'a str,
    /// Which of the running jobs a rescue looks at to take back (see `crate::domain::rescue`); it ends
    /// their process groups before it answers.
    pub triage: Triage<'a>,
    pub now: i64,
}

/// Decides, inside a transaction, which running jobs to take back: see `crate::domain::rescue`.
pub type Triage<'a> = &'a dyn Fn(&[Candidate]) -> Vec<Rescue>;

/// A project a claim may take a job from.
#[derive(Debug, Clone)]
pub struct ClaimProject<'a> {
    pub name: &'a str,
    pub max_running: u32,
    /// Why the project cannot run a job on this host now (its workdir is missing): the claim
    /// skips it and holds it, alerting once.
    pub held: Option<String>,
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

/// A running job taken back from its worker: its lease ran out, or its orch on this host is gone
/// or stopped.
#[derive(Debug, Serialize)]
pub struct Rescued {
    pub job_id: i64,
    pub worker: Option<String>,
    pub state: String,
    /// The history line: why, and that the attempt counted.
    pub reason: String,
}

/// What `cancel` did: the state the job was in, and the run it closed (whose agent, if on this
/// host, the caller stops).
#[derive(Debug)]
pub struct Cancelled {
    pub was: String,
    pub run: Option<super::Run>,
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
/// cancelled, finalized or rescued (and maybe claimed again) meanwhile. With `run_id`, also
/// false once that run was closed (cancelled or rescued): a job retried and claimed again by the
/// same worker has the same attempt number, and the old run must not renew the new lease.
pub fn renew_lease(
    tx: &Transaction,
    holder: &LeaseHolder,
    run_id: Option<i64>,
    lease_ms: i64,
    now: i64,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET lease_expires_at = ?4 + ?5, lease_renewed_at = ?4
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3
               AND (?6 IS NULL OR EXISTS (SELECT 1 FROM agent_runs
                                          WHERE id = ?6 AND job_id = ?1 AND finalized_at IS NULL))",
        )?
        .execute(params![
            holder.job_id,
            holder.worker,
            holder.attempt,
            now,
            lease_ms,
            run_id
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

    /// Ask the agent's circuit breaker, take back the running jobs `triage` picks (expired
    /// leases, dead or stopped supervisors), hold or release projects, then take the best eligible
    /// job: one transaction, one winner. An open breaker is an error carrying exit 12, and nothing
    /// is written; a half-open one lets this claim through as its only probe.
    pub fn claim(&mut self, request: &ClaimRequest) -> Result<Claim> {
        self.write(|tx| {
            let now = request.now;
            let (breaker, gate) = breaker_gate(tx, request.agent, now)?;
            if let Gate::Refuse(why) = gate {
                return Err(exit::coded(exit::BREAKER_OPEN, why));
            }
            let probe = gate == Gate::Probe;
            let rescued = rescue_in(tx, request.host, now, request.triage)?;
            for project in &request.projects {
                match &project.held {
                    Some(reason) => {
                        hold_project(tx, project.name, request.host, reason, now)?;
                    }
                    None => release_project(tx, project.name, request.host)?,
                }
            }
            let mut running = tx.prepare_cached(
                "SELECT project, count(*) FROM jobs WHERE state = 'running' GROUP BY project",
            )?;
            let counts: Vec<(String, i64)> = running
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let open: Vec<&str> = request
                .projects
                .iter()
                .filter(|project| {
                    let busy = counts
                        .iter()
                        .find(|(p, _)| p == project.name)
                        .map_or(0, |(_, n)| *n);
                    project.held.is_none() && busy < i64::from(project.max_running)
                })
                .map(|project| project.name)
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
            let stages = serde_json::to_string(&request.stages)?;
            let due_limit = now
                .saturating_add(request.longest_backoff_ms.max(0))
                .saturating_add(clock::SKEW_MS);
            let claimed: Option<(i64, i64)> = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?1,
                            lease_expires_at = ?2 + ?3, lease_renewed_at = ?2, updated_at = ?2
                     WHERE id = (
                         SELECT j.id FROM json_each(?4) AS p
                         JOIN jobs AS j ON j.id = (
                             SELECT q.id FROM jobs AS q
                             WHERE q.state = 'queued' AND q.project = p.value
                               AND (q.run_after <= ?2 OR q.run_after > ?6)
                               AND q.stage IN (SELECT value FROM json_each(?5))
                             ORDER BY q.priority DESC, q.run_after, q.id LIMIT 1)
                         ORDER BY j.priority DESC, j.run_after, j.id LIMIT 1)
                     RETURNING id, run_after",
                )?
                .query_row(
                    params![
                        request.worker,
                        now,
                        request.lease_ms,
                        open,
                        stages,
                        due_limit
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((job_id, run_after)) = claimed else {
                return Ok(nothing(rescued));
            };
            let job = job_in(tx, job_id)?.expect("the claimed job exists");
            let mut reason = format!("claimed, attempt {}/{}", job.attempt, job.max_attempts);
            if let Some(ahead) = clock::ahead_beyond(run_after, now, request.longest_backoff_ms) {
                reason.push_str(&format!(
                    "; it was due in {}, further ahead than the longest backoff allows (a clock \
                     ran ahead): treated as due",
                    output::span(ahead)
                ));
            }
            if probe {
                let slot = Probe {
                    job_id,
                    worker: request.worker.to_string(),
                    attempt: job.attempt,
                    started_at: now,
                };
                take_probe(tx, request.agent, &breaker, slot)?;
                reason.push_str(&format!(
                    " (the probe of agent {}'s half-open circuit breaker{})",
                    request.agent,
                    breaker
                        .dated_ahead(now)
                        .map_or(String::new(), |ahead| format!(
                            "; it was opened {} ahead of this clock, so it is treated as half-open",
                            output::span(ahead)
                        ))
                ));
            }
            record(
                tx,
                job_id,
                Some("queued"),
                "running",
                request.worker,
                &reason,
                now,
            )?;
            Ok(Claim {
                job: Some(job),
                rescued,
                probe,
            })
        })
    }

    /// Take back the running jobs `triage` picks, in one transaction of its own (tick does this
    /// before its gates, so a dead run's processes are ended even while claims are held).
    pub fn rescue(&mut self, host: &str, now: i64, triage: Triage) -> Result<Vec<Rescued>> {
        // Most ticks find nothing: a read, not the write lock.
        if rescue_candidates(self.conn(), host, now)?.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| rescue_in(tx, host, now, triage))
    }

    /// Run `run_id`'s heartbeat: see `renew_lease`.
    pub fn heartbeat(
        &mut self,
        holder: &LeaseHolder,
        run_id: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| renew_lease(tx, holder, Some(run_id), lease_ms, now))
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

    /// Cancel a queued or running job. A running job's open run (of its current attempt) is
    /// closed in the same transaction, decided `cancelled`; its agent is the caller's to stop.
    pub fn cancel(&mut self, job_id: i64, actor: &str, now: i64) -> Result<Cancelled> {
        self.write(|tx| {
            let Some(job) = job_in(tx, job_id)? else {
                return Err(no_job(job_id));
            };
            let unchanged = |was: String| Cancelled { was, run: None };
            match job.state.as_str() {
                "queued" | "running" => {}
                "cancelled" => return Ok(unchanged(job.state)),
                other => {
                    bail!("job {job_id} is {other}; only queued or running jobs can be cancelled")
                }
            }
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
                        lease_renewed_at = NULL, updated_at = ?2 WHERE id = ?1",
                params![job_id, now],
            )?;
            let reason = "cancelled by operator";
            record(
                tx,
                job_id,
                Some(&job.state),
                "cancelled",
                actor,
                reason,
                now,
            )?;
            settle_task(tx, job.task_id, "cancelled", now)?;
            let mut run = None;
            if job.state == "running" {
                run = open_run(tx, job_id, job.attempt)?;
                close_open_runs(
                    tx,
                    &RunClose {
                        job_id,
                        attempt: job.attempt,
                        class: "cancelled",
                        decision: "cancelled",
                        reason,
                    },
                    now,
                )?;
            }
            Ok(Cancelled {
                was: job.state,
                run,
            })
        })
    }

    /// Put a failed or cancelled job back in the queue, attempts reset; with `stage`, at that
    /// stage (a queued job may be moved too, e.g. one stuck at a stage the pipeline no longer
    /// has). Returns the state and stage it was in.
    pub fn retry(
        &mut self,
        job_id: i64,
        stage: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<(String, String)> {
        self.write(|tx| {
            let Some(job) = job_in(tx, job_id)? else {
                return Err(no_job(job_id));
            };
            let movable = matches!(job.state.as_str(), "failed" | "cancelled")
                || (stage.is_some() && job.state == "queued");
            if !movable {
                bail!(
                    "job {job_id} is {}; only failed or cancelled jobs can be retried{}",
                    job.state,
                    if job.state == "queued" {
                        " (or moved with --stage, or made due now with --now)"
                    } else {
                        ""
                    }
                );
            }
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM jobs WHERE task_id = ?1 AND id != ?2 AND state IN ('queued', 'running')",
                params![job.task_id, job_id],
                |row| row.get(0),
            )?;
            if live > 0 {
                bail!("task {} already has a live job; cancel it first", job.task);
            }
            tx.execute(
                "UPDATE jobs SET state = 'queued', stage = coalesce(?3, stage), attempt = 0,
                        run_after = ?2, lease_owner = NULL, lease_expires_at = NULL,
                        lease_renewed_at = NULL, updated_at = ?2 WHERE id = ?1",
                params![job_id, now, stage],
            )?;
            tx.execute(
                "UPDATE tasks SET state = 'active', updated_at = ?2 WHERE id = ?1",
                params![job.task_id, now],
            )?;
            let mut reason = "retried by operator, attempts reset".to_string();
            if let Some(to) = stage.filter(|to| *to != job.stage) {
                reason.push_str(&format!("; moved from stage {} to {to}", job.stage));
            }
            record(tx, job_id, Some(&job.state), "queued", actor, &reason, now)?;
            Ok((job.state, job.stage))
        })
    }

    /// A queued job due now instead of at its retry time; its attempts are kept. Returns when it
    /// was due.
    pub fn make_due(&mut self, job_id: i64, actor: &str, now: i64) -> Result<i64> {
        self.write(|tx| {
            let Some(job) = job_in(tx, job_id)? else {
                return Err(no_job(job_id));
            };
            if job.state != "queued" {
                bail!(
                    "job {job_id} is {}; only a queued job can be made due now",
                    job.state
                );
            }
            tx.execute(
                "UPDATE jobs SET run_after = min(run_after, ?2), updated_at = ?2 WHERE id = ?1",
                params![job_id, now],
            )?;
            record(
                tx,
                job_id,
                Some("queued"),
                "queued",
                actor,
                "made due now by operator, attempts kept",
                now,
            )?;
            Ok(job.run_after)
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

    /// Live jobs (queued or running) at a stage not in `stages`: never claimed, as they could
    /// not be finalized. Oldest first.
    pub fn stranded_jobs(&self, stages: &[&str], limit: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tasks t ON t.id = j.task_id
             WHERE j.state IN ('queued', 'running') AND j.stage NOT IN (SELECT value FROM json_each(?1))
             ORDER BY j.id LIMIT ?2"
        );
        let stages = serde_json::to_string(stages)?;
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![stages, limit], Job::from_row)?;
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

/// The running jobs a rescue looks at: leases that ran out, leases renewed later than `now`
/// (maybe by a clock that ran ahead), and jobs whose open run is on `host` (their supervisors are
/// looked up); each with its current attempt's open run. A superset: `crate::domain::rescue` decides.
pub fn rescue_candidates(conn: &Connection, host: &str, now: i64) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT j.id, j.task_id, j.lease_owner, j.attempt, j.max_attempts, j.lease_expires_at,
                j.lease_renewed_at, r.id, r.host, r.boot_id, r.pid_ns, r.supervisor_pid,
                r.supervisor_start, r.pid, r.agent_start
         FROM jobs j
         LEFT JOIN agent_runs r ON r.id = (
             SELECT max(o.id) FROM agent_runs o
             WHERE o.job_id = j.id AND o.attempt = j.attempt
               AND o.finalized_at IS NULL AND o.ended_at IS NULL)
         WHERE j.state = 'running' AND j.id IN (
             SELECT id FROM jobs WHERE state = 'running' AND lease_expires_at <= ?1
             UNION SELECT id FROM jobs WHERE state = 'running' AND lease_renewed_at > ?1
             UNION SELECT job_id FROM agent_runs
                   WHERE host = ?2 AND finalized_at IS NULL AND ended_at IS NULL)
         ORDER BY j.id",
    )?;
    let rows = stmt.query_map(params![now, host], |row| {
        let run_id: Option<i64> = row.get(7)?;
        let run = match run_id {
            None => None,
            Some(run_id) => {
                let host: Option<String> = row.get(8)?;
                Some(OpenRun {
                    run_id,
                    place: match host {
                        Some(host) => Some(Place {
                            host,
                            boot_id: row.get(9)?,
                            pid_ns: row.get(10)?,
                        }),
                        None => None,
                    },
                    supervisor: proc_of(row.get(11)?, row.get(12)?),
                    agent: proc_of(row.get(13)?, row.get(14)?),
                })
            }
        };
        Ok(Candidate {
            job_id: row.get(0)?,
            task_id: row.get(1)?,
            worker: row.get(2)?,
            attempt: row.get(3)?,
            max_attempts: row.get(4)?,
            lease_expires_at: row.get(5)?,
            lease_renewed_at: row.get(6)?,
            run,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Read the candidates, let `triage` pick (and end their processes), then requeue (attempt
/// counted) or fail each job picked, closing its open run with the same decision.
fn rescue_in(tx: &Transaction, host: &str, now: i64, triage: Triage) -> Result<Vec<Rescued>> {
    let candidates = rescue_candidates(tx, host, now)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut rescued = Vec::new();
    for rescue in triage(&candidates) {
        let state = rescue.to_state();
        let class = rescue.class();
        let reason = rescue.reason();
        let changed = tx.execute(
            "UPDATE jobs SET state = ?2, run_after = ?3, lease_owner = NULL, lease_expires_at = NULL,
                    lease_renewed_at = NULL, last_class = ?4, last_reason = ?5, updated_at = ?3
             WHERE id = ?1 AND state = 'running' AND attempt = ?6",
            params![rescue.job_id, state, now, class, reason, rescue.attempt],
        )?;
        if changed != 1 {
            continue;
        }
        record(
            tx,
            rescue.job_id,
            Some("running"),
            state,
            "orch",
            &reason,
            now,
        )?;
        let decision = if state == "failed" {
            "failed"
        } else {
            "requeued"
        };
        close_open_runs(
            tx,
            &RunClose {
                job_id: rescue.job_id,
                attempt: rescue.attempt,
                class,
                decision,
                reason: &reason,
            },
            now,
        )?;
        if state == "failed" {
            settle_task(tx, rescue.task_id, "failed", now)?;
            if let Some(job) = job_in(tx, rescue.job_id)? {
                let alert = NewAlert::for_job(AlertKind::Failed, &job, class, &reason);
                queue_alert(tx, &alert, now)?;
            }
        }
        rescued.push(Rescued {
            job_id: rescue.job_id,
            worker: rescue.worker,
            state: state.to_string(),
            reason,
        });
    }
    Ok(rescued)
}
