//! agent_runs: one row per launch of the agent. `exit_code` is written once, when the process
//! ends, exactly as it returned; the verdict (`result_ok`, `class`) is stored beside it.

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{drop_preflight_cache, job_in, no_job, renew_lease, Job, LeaseHolder, Store};
use crate::procfs::{Place, Proc};

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
    /// What finalize decided besides `decision`: the next stage's job, or when a retry is due.
    pub next_job_id: Option<i64>,
    pub retry_at: Option<i64>,
    /// The commit auto-commit made after this ok run.
    pub commit_sha: Option<String>,
    /// Where the run's processes live (`host`, `boot_id`, `pid_ns`).
    pub host: Option<String>,
    pub boot_id: Option<String>,
    pub pid_ns: Option<String>,
    /// The orch process that watched the agent, with its start time (clock ticks since boot).
    pub supervisor_pid: Option<i64>,
    pub supervisor_start: Option<i64>,
    /// The agent's start time; `pid` is the agent's and its process group's id.
    pub agent_start: Option<i64>,
    /// Whose launch failure it was: agent, task or project.
    pub launch_kind: Option<String>,
}

pub(crate) const RUN_COLUMNS: &str =
    "id, job_id, attempt, worker, agent, agent_version, pid, started_at, ended_at, \
     duration_ms, exit_code, signal, timed_out, interrupted, launch_error, log_path, log_bytes, \
     log_truncated, result_ok, class, reason, usage_json, decision, finalized_at, next_job_id, \
     retry_at, commit_sha, host, boot_id, pid_ns, supervisor_pid, supervisor_start, agent_start, \
     launch_kind";

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
            next_job_id: row.get(24)?,
            retry_at: row.get(25)?,
            commit_sha: row.get(26)?,
            host: row.get(27)?,
            boot_id: row.get(28)?,
            pid_ns: row.get(29)?,
            supervisor_pid: row.get(30)?,
            supervisor_start: row.get(31)?,
            agent_start: row.get(32)?,
            launch_kind: row.get(33)?,
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
        run_in(self.conn(), run_id)
    }
}

impl Run {
    /// Where the run's processes live, when it recorded it.
    pub fn place(&self) -> Option<Place> {
        Some(Place {
            host: self.host.clone()?,
            boot_id: self.boot_id.clone(),
            pid_ns: self.pid_ns.clone(),
        })
    }

    /// The agent as recorded: the leader of the run's process group.
    pub fn agent_process(&self) -> Option<Proc> {
        proc_of(self.pid, self.agent_start)
    }
}

/// A recorded pid and start time, when both are there.
pub(crate) fn proc_of(pid: Option<i64>, start: Option<i64>) -> Option<Proc> {
    Some(Proc {
        pid: i32::try_from(pid?).ok()?,
        start: u64::try_from(start?).ok()?,
    })
}

/// One run, read inside the caller's transaction (or on the store's connection).
pub fn run_in(conn: &Connection, run_id: i64) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([run_id], Run::from_row)
        .optional()?)
}

/// The open run of a job's `attempt` (not ended, not finalized), if there is one.
pub fn open_run(conn: &Connection, job_id: i64, attempt: i64) -> Result<Option<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs WHERE job_id = ?1 AND attempt = ?2
           AND ended_at IS NULL AND finalized_at IS NULL ORDER BY id DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![job_id, attempt], Run::from_row)
        .optional()?)
}

/// What `start_run` needs to check the lease and open a run row.
pub struct NewRun<'a> {
    pub job_id: i64,
    pub worker: &'a str,
    pub agent: &'a str,
    pub agent_version: Option<&'a str>,
    /// The lease granted from `now`: starting a run renews it, so the first heartbeat has a full
    /// lease to come in.
    pub lease_ms: i64,
    /// Where the run's processes live, and the orch process that will watch the agent.
    pub place: &'a Place,
    pub supervisor: Option<Proc>,
    pub now: i64,
}

/// The run row just opened, and the job as it stood when it was opened.
pub struct StartedRun {
    pub run_id: i64,
    pub job: Job,
    pub log_path: String,
}

/// How a run ended, written once over the row `start_run` opened.
#[derive(Debug, Default)]
pub struct RunEnd<'a> {
    pub pid: Option<u32>,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub launch_error: Option<&'a str>,
    /// Whose launch failure it was (`LaunchKind::as_str`).
    pub launch_kind: Option<&'a str>,
    pub log_bytes: u64,
    pub log_truncated: bool,
    /// Drop the agent's cached preflight verdict in the same transaction: the run showed it is
    /// stale (the agent could not start, or is not authenticated). A held auth gate stays held.
    pub drop_preflight_cache: bool,
}

impl Store {
    /// Open a run for `job_id` if `worker` holds its live lease and the current attempt has no run
    /// yet, renewing the lease; one transaction, so two `orch run` of one job cannot both start.
    /// `log_path` names the log from the new run's id. A refusal changes nothing.
    pub fn start_run(
        &mut self,
        new: &NewRun,
        log_path: impl FnOnce(i64) -> String,
    ) -> Result<StartedRun> {
        self.write(|tx| {
            let Some(job) = job_in(tx, new.job_id)? else {
                return Err(no_job(new.job_id));
            };
            let id = job.job_id;
            if job.state != "running" {
                bail!(
                    "job {id} is {}, not running: only a claimed job can be run",
                    job.state
                );
            }
            if job.lease_owner.as_deref() != Some(new.worker) {
                bail!(
                    "job {id} is leased to {}, not {}: only the lease holder may run it",
                    job.lease_owner.as_deref().unwrap_or("nobody"),
                    new.worker
                );
            }
            if job.lease_expires_at.is_none_or(|at| at <= new.now) {
                bail!("the lease of {} on job {id} has run out: claim it again", new.worker);
            }
            // A finalized run of this attempt number did not count (finalize gave the attempt
            // back after an auth failure): the attempt may run again.
            let earlier: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT id, ended_at FROM agent_runs WHERE job_id = ?1 AND attempt = ?2 AND finalized_at IS NULL
                     ORDER BY id DESC LIMIT 1",
                    params![id, job.attempt],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            match earlier {
                Some((run_id, None)) => bail!(
                    "attempt {} of job {id} is already running as run {run_id} (or its orch died: \
                     the lease will run out and the job be rescued)",
                    job.attempt
                ),
                Some((run_id, Some(_))) => bail!(
                    "attempt {} of job {id} already ran as run {run_id}: finalize it before the next attempt",
                    job.attempt
                ),
                None => {}
            }
            let holder = LeaseHolder {
                job_id: id,
                worker: new.worker,
                attempt: job.attempt,
            };
            renew_lease(tx, &holder, None, new.lease_ms, new.now)?;
            let supervisor = new.supervisor;
            let run_id: i64 = tx.query_row(
                "INSERT INTO agent_runs (job_id, attempt, worker, agent, agent_version, started_at,
                                         host, boot_id, pid_ns, supervisor_pid, supervisor_start)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
                params![
                    id,
                    job.attempt,
                    new.worker,
                    new.agent,
                    new.agent_version,
                    new.now,
                    new.place.host,
                    new.place.boot_id,
                    new.place.pid_ns,
                    supervisor.map(|p| p.pid),
                    supervisor.map(|p| p.start as i64),
                ],
                |row| row.get(0),
            )?;
            let log_path = log_path(run_id);
            tx.execute(
                "UPDATE agent_runs SET log_path = ?2 WHERE id = ?1",
                params![run_id, log_path],
            )?;
            Ok(StartedRun {
                run_id,
                job,
                log_path,
            })
        })
    }

    /// Whether the run was closed (finalized) already: by a cancel or a rescue, while it ran.
    pub fn run_closed(&self, run_id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT finalized_at IS NOT NULL FROM agent_runs WHERE id = ?1",
                [run_id],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Start the agent with `start` while holding the write lock, and record on the run the
    /// process it reports (its pid, also its process group's id, and start time) in the same
    /// transaction. Waiting for the lock after the agent started would leave it working unknown
    /// to a rescue for as long as other processes hold the lock; this way only the commit lies
    /// between the two. When the lock cannot be had, the agent is started anyway and the error
    /// returned beside it (the run then lacks its agent's record).
    pub fn start_agent<T>(
        &mut self,
        run_id: i64,
        start: impl FnOnce() -> (T, Option<Proc>),
    ) -> (T, Result<()>) {
        let mut start = Some(start);
        let mut started = None;
        let recorded = self.write(|tx| {
            let (value, agent) = (start.take().expect("started once"))();
            started = Some(value);
            if let Some(agent) = agent {
                tx.execute(
                    "UPDATE agent_runs SET pid = ?2, agent_start = ?3 WHERE id = ?1",
                    params![run_id, agent.pid, agent.start as i64],
                )?;
            }
            Ok(())
        });
        match (started, start) {
            (Some(value), _) => (value, recorded),
            (None, Some(start)) => (start().0, recorded),
            (None, None) => unreachable!("the agent is started inside the transaction or after it"),
        }
    }

    /// Record how the run ended (and drop the preflight cache when `end` says so). Only an open
    /// run is written: its exit code is set once.
    pub fn end_run(&mut self, run_id: i64, end: &RunEnd) -> Result<()> {
        self.write(|tx| {
            let agent: Option<String> = tx
                .query_row(
                    "UPDATE agent_runs SET pid = coalesce(?2, pid), ended_at = ?3, duration_ms = ?4,
                        exit_code = ?5, signal = ?6, timed_out = ?7, interrupted = ?8,
                        launch_error = ?9, log_bytes = ?10, log_truncated = ?11, launch_kind = ?12
                 WHERE id = ?1 AND ended_at IS NULL AND exit_code IS NULL RETURNING agent",
                params![
                    run_id,
                    end.pid,
                    end.ended_at,
                    end.duration_ms,
                    end.exit_code,
                    end.signal,
                    end.timed_out,
                    end.interrupted,
                    end.launch_error,
                    end.log_bytes as i64,
                    end.log_truncated,
                    end.launch_kind,
                ],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(agent) = agent else {
                bail!("run {run_id} was already ended; its record was left as it was");
            };
            if end.drop_preflight_cache {
                drop_preflight_cache(tx, Some(&agent))?;
            }
            Ok(())
        })
    }

    /// The log of the last run judged ok (`result_ok = 1`) of `task_id`'s `stage`, if any.
    pub fn last_ok_log(&self, task_id: i64, stage: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT r.log_path FROM agent_runs r JOIN jobs j ON j.id = r.job_id
                 WHERE j.task_id = ?1 AND j.stage = ?2 AND r.result_ok = 1 AND r.log_path IS NOT NULL
                 ORDER BY r.id DESC LIMIT 1",
                params![task_id, stage],
                |row| row.get(0),
            )
            .optional()?)
    }
}
