//! Tasks, jobs, their history, the claim and the rescue.

use crate::store::sql::{params, Backend, Db, OptionalExtension, Row};
use anyhow::{bail, Result};

use super::{branches, breaker, budget, holds, outbox, runs};
use crate::domain::breaker::{Breaker, Gate, Probe};
use crate::domain::clock;
use crate::domain::decide::Decision;
use crate::domain::rescue::{Candidate, OpenRun};
use crate::domain::states::{JobState, TaskState};
use crate::procfs::Place;
use crate::store::{
    no_job, proc_of, AlertKind, Cancelled, Claim, ClaimRequest, Enqueued, Job, LeaseHolder,
    Message, NewAlert, NewTask, Refused, Rescued, Retried, Triage,
};
use crate::{exit, output};

/// A job joined with its task, every column named as `Job` names it.
/// `JOB_SELECT`'s columns, from jobs `j` and tasks `t`, followed by `$from`.
macro_rules! concat_job_select {
    ($from:literal) => {
        concat!(
            "SELECT j.id AS job_id, j.task_id AS task_id, t.key AS task, \
             t.title AS title, t.issue AS issue, j.project AS project, j.stage AS stage, j.state AS state, \
             j.priority AS priority, j.attempt AS attempt, j.max_attempts AS max_attempts, \
             j.run_after AS run_after, j.lease_owner AS lease_owner, \
             j.lease_expires_at AS lease_expires_at, j.last_class AS last_class, \
             j.last_reason AS last_reason, j.created_at AS created_at, j.updated_at AS updated_at",
            $from
        )
    };
}

pub(super) const JOB_SELECT: &str =
    concat_job_select!(" FROM jobs j JOIN tasks t ON t.id = j.task_id");

pub(super) fn job_from_row(row: &Row) -> crate::store::sql::Result<Job> {
    Ok(Job {
        job_id: row.get("job_id")?,
        task_id: row.get("task_id")?,
        task: row.get("task")?,
        title: row.get("title")?,
        issue: row.get("issue")?,
        project: row.get("project")?,
        stage: row.get("stage")?,
        state: row.get("state")?,
        priority: row.get("priority")?,
        attempt: row.get("attempt")?,
        max_attempts: row.get("max_attempts")?,
        run_after: row.get("run_after")?,
        lease_owner: row.get("lease_owner")?,
        lease_expires_at: row.get("lease_expires_at")?,
        last_class: row.get("last_class")?,
        last_reason: row.get("last_reason")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Jobs matching `filter` (SQL after the join, e.g. `WHERE … ORDER BY …`) with `params`.
pub(super) fn jobs_where(
    conn: &Db,
    filter: &str,
    params: impl crate::store::sql::Params,
) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(&format!("{JOB_SELECT} {filter}"))?;
    let rows = stmt.query_map(params, job_from_row)?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn job(conn: &Db, job_id: i64) -> Result<Option<Job>> {
    Ok(conn
        .prepare_cached(&format!("{JOB_SELECT} WHERE j.id = ?1"))?
        .query_row([job_id], job_from_row)
        .optional()?)
}

/// Record a transition in the job's history.
pub(super) fn record(
    tx: &Db,
    job_id: i64,
    from: Option<JobState>,
    to: JobState,
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
pub(super) struct JobSpec<'a> {
    pub task_id: i64,
    pub stage: &'a str,
    pub priority: i64,
    pub max_attempts: u64,
    pub actor: &'a str,
    pub reason: &'a str,
    /// Queued, or awaiting approval.
    pub state: JobState,
}

pub(super) fn insert_job(tx: &Db, spec: &JobSpec, now: i64) -> Result<i64> {
    let job_id: i64 = tx.query_row(
        "INSERT INTO jobs (task_id, project, stage, state, priority, attempt, max_attempts, run_after, created_at, updated_at)
         SELECT id, project, ?2, ?6, ?3, 0, ?4, ?5, ?5, ?5 FROM tasks WHERE id = ?1
         RETURNING id",
        params![
            spec.task_id,
            spec.stage,
            spec.priority,
            spec.max_attempts as i64,
            now,
            spec.state
        ],
        |row| row.get(0),
    )?;
    set_task_state(tx, spec.task_id, TaskState::Active, now)?;
    record(tx, job_id, None, spec.state, spec.actor, spec.reason, now)?;
    Ok(job_id)
}

fn set_task_state(tx: &Db, task_id: i64, state: TaskState, now: i64) -> Result<()> {
    tx.prepare_cached("UPDATE tasks SET state = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![task_id, state, now])?;
    Ok(())
}

/// Set the task's state once none of its jobs is live (as its last job ended).
pub(super) fn settle_task(tx: &Db, task_id: i64, state: TaskState, now: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET state = ?2, updated_at = ?3 WHERE id = ?1
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE task_id = ?1 AND state IN (?4, ?5, ?6, ?7))",
    )?
    .execute(params![
        task_id,
        state,
        now,
        JobState::Queued,
        JobState::Running,
        JobState::OverBudget,
        JobState::AwaitingApproval
    ])?;
    Ok(())
}

/// Extend the holder's lease to `now + lease_ms`; with `run_id`, only while that run is open.
/// False when the holder holds it no more (nothing written).
pub(super) fn renew_lease(
    tx: &Db,
    holder: &LeaseHolder,
    run_id: Option<i64>,
    lease_ms: i64,
    now: i64,
) -> Result<bool> {
    // With `run_id`, also false once that run was closed (cancelled or rescued): a job retried
    // and claimed again by the same worker has the same attempt number, and the old run must not
    // renew the new lease.
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET lease_expires_at = ?4 + ?5, lease_renewed_at = ?4
             WHERE id = ?1 AND state = ?7 AND lease_owner = ?2 AND attempt = ?3
               AND (?6 IS NULL OR EXISTS (SELECT 1 FROM agent_runs
                                          WHERE id = ?6 AND job_id = ?1 AND finalized_at IS NULL))",
        )?
        .execute(params![
            holder.job_id,
            holder.worker,
            holder.attempt,
            now,
            lease_ms,
            run_id,
            JobState::Running
        ])?;
    Ok(changed == 1)
}

/// The task's live job: (id, stage, state).
fn live_job(tx: &Db, task_id: i64) -> Result<Option<(i64, String, JobState)>> {
    Ok(tx
        .prepare_cached(
            "SELECT id, stage, state FROM jobs WHERE task_id = ?1 AND state IN (?2, ?3, ?4, ?5)
             ORDER BY id LIMIT 1",
        )?
        .query_row(
            params![
                task_id,
                JobState::Queued,
                JobState::Running,
                JobState::OverBudget,
                JobState::AwaitingApproval
            ],
            |row| Ok((row.get("id")?, row.get("stage")?, row.get("state")?)),
        )
        .optional()?)
}

pub(super) fn enqueue(tx: &Db, new: &NewTask, now: i64) -> Result<Enqueued> {
    let task_id: Option<i64> = tx
        .query_row(
            "SELECT id FROM tasks WHERE project = ?1 AND key = ?2",
            params![new.project, new.key],
            |row| row.get("id"),
        )
        .optional()?;
    if let Some(task_id) = task_id {
        if let Some((job_id, stage, state)) = live_job(tx, task_id)? {
            return Ok(Enqueued {
                job_id,
                task: new.key.to_string(),
                project: new.project.to_string(),
                stage,
                created: false,
                state,
                refused: None,
            });
        }
    }
    if let Some(refused) = refusal(tx, new, task_id)? {
        return Ok(refused);
    }
    let issue = new.issue.map(|n| n as i64);
    let task_id = match task_id {
        Some(id) => {
            tx.execute(
                "UPDATE tasks SET title = coalesce(?2, title), body = coalesce(?3, body),
                        issue = coalesce(?4, issue), updated_at = ?5 WHERE id = ?1",
                params![id, new.title, new.body, issue, now],
            )?;
            id
        }
        None => tx.query_row(
            "INSERT INTO tasks (project, key, title, body, issue, state, created_at, updated_at)
             VALUES (?1, ?2, coalesce(?3, ''), coalesce(?4, ''), ?5, ?7, ?6, ?6) RETURNING id",
            params![
                new.project,
                new.key,
                new.title,
                new.body,
                issue,
                now,
                TaskState::Active
            ],
            |row| row.get("id"),
        )?,
    };
    let spec = JobSpec {
        task_id,
        stage: new.stage,
        priority: new.priority,
        max_attempts: new.max_attempts,
        actor: new.actor,
        reason: "enqueued",
        state: JobState::Queued,
    };
    let job_id = insert_job(tx, &spec, now)?;
    Ok(Enqueued {
        job_id,
        task: new.key.to_string(),
        project: new.project.to_string(),
        stage: new.stage.to_string(),
        created: true,
        state: JobState::Queued,
        refused: None,
    })
}

/// Why a task key with no live job must not be queued again: its task is complete, or has an
/// open pull request, or another task of the project has the key spelled otherwise (a task never
/// gets a second branch, nor a second pull request). The answer names the task's last job.
fn refusal(tx: &Db, new: &NewTask, task_id: Option<i64>) -> Result<Option<Enqueued>> {
    let (task, refused) = match task_id {
        Some(task_id) => {
            let task =
                branches::task(tx, task_id)?.ok_or_else(|| anyhow::anyhow!("no task {task_id}"))?;
            let refused = if task.state == TaskState::Complete {
                Some(Refused::Complete)
            } else {
                branches::open_pull_request(&task)
                    .map(|(number, url)| Refused::PullRequestOpen { number, url })
            };
            (task, refused)
        }
        None => {
            let others = branches::tasks_where(
                tx,
                "WHERE project = ?1 AND lower(trim(key)) = lower(trim(?2)) AND key <> ?2 ORDER BY id LIMIT 1",
                params![new.project, new.key],
            )?;
            match others.into_iter().next() {
                Some(other) => {
                    let key = other.key.clone();
                    (other, Some(Refused::SpelledLike { key }))
                }
                None => return pruned(tx, new),
            }
        }
    };
    let Some(refused) = refused else {
        return Ok(None);
    };
    let (job_id, stage, state): (i64, String, JobState) = tx
        .prepare_cached(
            "SELECT id, stage, state FROM jobs WHERE task_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([task.task_id], |row| {
            Ok((row.get("id")?, row.get("stage")?, row.get("state")?))
        })?;
    Ok(Some(Enqueued {
        job_id,
        task: task.key,
        project: task.project,
        stage,
        created: false,
        state,
        refused: Some(refused),
    }))
}

/// The refusal of a key a pruned task had (or one spelled like it): it names no job (they are
/// gone), job id 0.
fn pruned(tx: &Db, new: &NewTask) -> Result<Option<Enqueued>> {
    let found = tx
        .prepare_cached(
            "SELECT key, branch, pr_number, pr_url FROM pruned_branches
             WHERE project = ?1 AND lower(trim(key)) = lower(trim(?2)) LIMIT 1",
        )?
        .query_row(params![new.project, new.key], |row| {
            Ok(Refused::Pruned {
                key: row.get("key")?,
                branch: row.get("branch")?,
                pull_request: row.get("pr_number")?,
                url: row.get("pr_url")?,
            })
        })
        .optional()?;
    Ok(found.map(|refused| Enqueued {
        job_id: 0,
        task: new.key.to_string(),
        project: new.project.to_string(),
        stage: new.stage.to_string(),
        created: false,
        state: JobState::Done,
        refused: Some(refused),
    }))
}

pub(super) fn claim(tx: &Db, request: &ClaimRequest) -> Result<Claim> {
    let now = request.now;
    // Each agent's circuit breaker gates its own stages; when every one refuses, nothing is
    // written (the one error a single-agent claim always gave).
    let mut agents: Vec<&str> = Vec::new();
    for stage in request.projects.iter().flat_map(|p| &p.stages) {
        if !agents.contains(&stage.agent) {
            agents.push(stage.agent);
        }
    }
    let mut allowed: Vec<(&str, Breaker, Gate)> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for agent in &agents {
        match breaker::gate(tx, agent, now)? {
            (_, Gate::Refuse(why)) => refused.push((agent.to_string(), why)),
            (breaker, gate) => allowed.push((agent, breaker, gate)),
        }
    }
    if allowed.is_empty() && !refused.is_empty() {
        let why: Vec<&str> = refused.iter().map(|(_, why)| why.as_str()).collect();
        return Err(exit::coded(exit::BREAKER_OPEN, why.join("; ")));
    }
    let rescued = rescue(tx, request.host, now, request.triage)?;
    for project in &request.projects {
        match &project.held {
            Some(reason) => {
                holds::hold(tx, project.name, request.host, reason, now)?;
            }
            None => holds::release(tx, project.name, request.host)?,
        }
    }
    // Budgets: jobs of a project whose day's budget is spent wait, and waiting jobs the budgets
    // allow again go back to the queue.
    let mut closed: Vec<&str> = Vec::new();
    for project in request.projects.iter().filter(|p| p.held.is_none()) {
        if budget::sweep(tx, project, request.day_start, "orch", now)? {
            closed.push(project.name);
        }
    }
    // From the counts the jobs' triggers keep in this same transaction: exact, and a few rows
    // however many jobs run.
    let counts: Vec<(String, i64)> = tx
        .prepare_cached(
            "SELECT project, sum(jobs) AS running FROM job_counts WHERE state = ?1 GROUP BY project",
        )?
        .query_map([JobState::Running], |row| {
            Ok((row.get("project")?, row.get("running")?))
        })?
        .collect::<crate::store::sql::Result<_>>()?;
    let open: Vec<&str> = request
        .projects
        .iter()
        .filter(|project| {
            let busy = counts
                .iter()
                .find(|(p, _)| p == project.name)
                .map_or(0, |(_, n)| *n);
            project.held.is_none()
                && !closed.contains(&project.name)
                && busy < i64::from(project.max_running)
        })
        .map(|project| project.name)
        .collect();
    let nothing = |rescued| Claim {
        job: None,
        rescued,
        probe: false,
        agent: None,
        refused: refused.clone(),
    };
    // Per open project, the stages its claim may take: those of the agents allowed.
    let mut stages = serde_json::Map::new();
    for project in request.projects.iter().filter(|p| open.contains(&p.name)) {
        let claimable: Vec<&str> = (project.stages.iter())
            .filter(|s| allowed.iter().any(|(agent, _, _)| *agent == s.agent))
            .map(|s| s.stage)
            .collect();
        if !claimable.is_empty() {
            stages.insert(project.name.to_string(), claimable.into());
        }
    }
    if stages.is_empty() {
        return Ok(nothing(rescued));
    }
    let open = serde_json::Value::Object(stages).to_string();
    let due_limit = due_limit(request);
    // A job whose task spent its budget is given back to wait, and the next best taken.
    let (job_id, run_after) = loop {
        let Some(best) = take_best(tx, request, &open, due_limit)? else {
            return Ok(nothing(rescued));
        };
        let budget = request
            .projects
            .iter()
            .find(|p| p.name == best.project)
            .map(|p| p.budget)
            .unwrap_or_default();
        if budget::park_if_spent(tx, best.id, best.task_id, budget, "orch", now)? {
            continue;
        }
        break (best.id, best.run_after);
    };
    let job = job(tx, job_id)?.expect("the claimed job exists");
    let agent = agent_of(request, &job);
    let (_, breaker, gate) = allowed
        .iter()
        .find(|(allowed, _, _)| *allowed == agent)
        .expect("a job is claimed for an allowed agent");
    let probe = *gate == Gate::Probe;
    let mut reason = format!("claimed, attempt {}/{}", job.attempt, job.max_attempts);
    reason.push_str(&ahead_note(request, run_after));
    if probe {
        let slot = Probe {
            job_id,
            worker: request.worker.to_string(),
            attempt: job.attempt,
            started_at: now,
        };
        breaker::take_probe(tx, agent, breaker, slot)?;
        reason.push_str(&format!(
            " (the probe of agent {agent}'s half-open circuit breaker{})",
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
        Some(JobState::Queued),
        JobState::Running,
        request.worker,
        &reason,
        now,
    )?;
    Ok(Claim {
        job: Some(job),
        rescued,
        probe,
        agent: Some(agent.to_string()),
        refused,
    })
}

/// The agent profile that runs a job the claim took.
fn agent_of<'a>(request: &ClaimRequest<'a>, job: &Job) -> &'a str {
    (request.projects.iter())
        .filter(|p| p.name == job.project)
        .flat_map(|p| &p.stages)
        .find(|s| s.stage == job.stage)
        .map(|s| s.agent)
        .expect("a job is claimed at a stage of its project's claim")
}

/// A queued job due after this was dated by a clock that ran ahead: it is due now.
fn due_limit(request: &ClaimRequest) -> i64 {
    (request.now)
        .saturating_add(request.longest_backoff_ms.max(0))
        .saturating_add(clock::SKEW_MS)
}

/// What the claim's history entry adds when the job was due further ahead than any backoff.
fn ahead_note(request: &ClaimRequest, run_after: i64) -> String {
    clock::ahead_beyond(run_after, request.now, request.longest_backoff_ms).map_or(
        String::new(),
        |ahead| {
            format!(
                "; it was due in {}, further ahead than the longest backoff allows (a clock \
                 ran ahead): treated as due",
                output::span(ahead)
            )
        },
    )
}

/// What `orch_claim_at_once` fails with when another claim took a project's last room first.
const NO_ROOM: &str = "OR001";

/// The claim of a backend where claims may run at once (`Backend::CLAIMS_AT_ONCE`, the
/// database's `orch_claim_at_once`), when it is plain: no project held or with a budget, and
/// (the function checks) every breaker closed, no job over budget, no run of this host's open
/// (the triage's, which may end processes, so it looks only under the write lock), no lease
/// ran out. Claims then hold the write lock shared, and wait for one another only from a
/// project's recount to the commit. Otherwise (None) the claim is made the ordinary way, under
/// the write lock.
pub(super) fn claim_at_once<B: Backend>(
    store: &mut B,
    request: &ClaimRequest,
) -> Result<Option<Claim>> {
    if !B::CLAIMS_AT_ONCE
        || request.projects.is_empty()
        || (request.projects.iter()).any(|p| p.held.is_some() || p.budget.is_set())
    {
        return Ok(None);
    }
    let mut open = serde_json::Map::new();
    let mut max_running = serde_json::Map::new();
    let mut agents: Vec<&str> = Vec::new();
    for project in &request.projects {
        let stages: Vec<&str> = project.stages.iter().map(|s| s.stage).collect();
        open.insert(project.name.to_string(), stages.into());
        max_running.insert(project.name.to_string(), project.max_running.into());
        agents.extend(project.stages.iter().map(|s| s.agent));
    }
    agents.sort_unstable();
    agents.dedup();
    // One statement, outside any transaction of orch's: the function's own locks are held
    // until it commits.
    let claimed = store.get(|conn| {
        Ok(conn
            .prepare_cached(concat_job_select!(
                " FROM orch_claim_at_once(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) AS j
                  JOIN tasks t ON t.id = j.task_id"
            ))?
            .query_row(
                params![
                    request.worker,
                    request.host,
                    request.now,
                    request.lease_ms,
                    due_limit(request),
                    request.now.saturating_add(clock::SKEW_MS),
                    serde_json::Value::Object(open).to_string(),
                    serde_json::Value::Object(max_running).to_string(),
                    serde_json::Value::from(agents).to_string()
                ],
                job_from_row,
            )
            .optional()?)
    });
    let job = match claimed {
        Ok(Some(job)) => job,
        Ok(None) => return Ok(None),
        // Another claim took the project's last room first: nothing was written.
        Err(err) if crate::store::sql::Error::sqlstate(&err) == Some(NO_ROOM) => return Ok(None),
        Err(err) => return Err(err),
    };
    let note = ahead_note(request, job.run_after);
    if !note.is_empty() {
        store.write(|tx| {
            tx.prepare_cached(
                "UPDATE job_history SET reason = reason || ?2
                 WHERE id = (SELECT max(id) FROM job_history WHERE job_id = ?1)",
            )?
            .execute(params![job.job_id, note])?;
            Ok(())
        })?;
    }
    Ok(Some(Claim {
        agent: Some(agent_of(request, &job).to_string()),
        job: Some(job),
        rescued: Vec::new(),
        probe: false,
        refused: Vec::new(),
    }))
}

/// Take the best eligible job for the claim's worker, in one statement: per open project (a
/// JSON object of project → its claimable stages) the best queued job (walking jobs_queue, whose
/// condition the state must be written into the statement to match), then the best of those.
fn take_best(tx: &Db, request: &ClaimRequest, open: &str, due_limit: i64) -> Result<Option<Taken>> {
    // On a server several claims may look at once: each takes the job it chose as it reads it,
    // passing over one another claim holds (under SQLite's one writer there is none).
    let skip_locked = if tx.is_postgres() {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    Ok(tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = '{running}', attempt = attempt + 1, lease_owner = ?1,
                    lease_expires_at = ?2 + ?3, lease_renewed_at = ?2, updated_at = ?2
             WHERE id = (
                 SELECT j.id FROM json_each(?4) AS p
                 JOIN jobs AS j ON j.id = (
                     SELECT q.id FROM jobs AS q
                     WHERE q.state = '{queued}' AND q.project = p.key
                       AND (q.run_after <= ?2 OR q.run_after > ?5)
                       AND q.stage IN (SELECT value FROM json_each(p.value))
                       AND NOT EXISTS (SELECT 1 FROM ci_gates AS g WHERE g.job_id = q.id)
                     ORDER BY q.priority DESC, q.run_after, q.id LIMIT 1 {skip_locked})
                 ORDER BY j.priority DESC, j.run_after, j.id LIMIT 1)
             RETURNING id, run_after, project, task_id",
            running = JobState::Running,
            queued = JobState::Queued,
        ))?
        .query_row(
            params![
                request.worker,
                request.now,
                request.lease_ms,
                open,
                due_limit
            ],
            |row| {
                Ok(Taken {
                    id: row.get("id")?,
                    run_after: row.get("run_after")?,
                    project: row.get("project")?,
                    task_id: row.get("task_id")?,
                })
            },
        )
        .optional()?)
}

/// The job a claim took.
struct Taken {
    id: i64,
    run_after: i64,
    project: String,
    task_id: i64,
}

/// The running jobs a rescue looks at: leases that ran out, leases renewed later than `now`
/// (maybe by a clock that ran ahead), and jobs whose open run is on `host` (their supervisors are
/// looked up); each with its current attempt's open run. A superset: `crate::domain::rescue`
/// decides.
pub(super) fn rescue_candidates(conn: &Db, host: &str, now: i64) -> Result<Vec<Candidate>> {
    // The states are written into the statement: the partial indexes over running jobs match.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT j.id AS job_id, j.task_id AS task_id, j.lease_owner AS worker,
                j.attempt AS attempt, j.max_attempts AS max_attempts,
                j.lease_expires_at AS lease_expires_at, j.lease_renewed_at AS lease_renewed_at,
                r.id AS run_id, r.host AS host, r.boot_id AS boot_id, r.pid_ns AS pid_ns,
                r.supervisor_pid AS supervisor_pid, r.supervisor_start AS supervisor_start,
                r.pid AS pid, r.agent_start AS agent_start
         FROM jobs j
         LEFT JOIN agent_runs r ON r.id = (
             SELECT max(o.id) FROM agent_runs o
             WHERE o.job_id = j.id AND o.attempt = j.attempt
               AND o.finalized_at IS NULL AND o.ended_at IS NULL)
         WHERE j.state = '{running}' AND j.id IN (
             SELECT id FROM jobs WHERE state = '{running}' AND lease_expires_at <= ?1
             UNION SELECT id FROM jobs WHERE state = '{running}' AND lease_renewed_at > ?1
             UNION SELECT job_id FROM agent_runs
                   WHERE host = ?2 AND finalized_at IS NULL AND ended_at IS NULL)
         ORDER BY j.id",
        running = JobState::Running
    ))?;
    let rows = stmt.query_map(params![now, host], |row| {
        let run = match row.get::<_, Option<i64>>("run_id")? {
            None => None,
            Some(run_id) => Some(OpenRun {
                run_id,
                place: match row.get::<_, Option<String>>("host")? {
                    Some(host) => Some(Place {
                        host,
                        boot_id: row.get("boot_id")?,
                        pid_ns: row.get("pid_ns")?,
                    }),
                    None => None,
                },
                supervisor: proc_of(row.get("supervisor_pid")?, row.get("supervisor_start")?),
                agent: proc_of(row.get("pid")?, row.get("agent_start")?),
            }),
        };
        Ok(Candidate {
            job_id: row.get("job_id")?,
            task_id: row.get("task_id")?,
            worker: row.get("worker")?,
            attempt: row.get("attempt")?,
            max_attempts: row.get("max_attempts")?,
            lease_expires_at: row.get("lease_expires_at")?,
            lease_renewed_at: row.get("lease_renewed_at")?,
            run,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// Read the candidates, let `triage` pick (and end their processes), then requeue (attempt
/// counted) or fail each job picked, as the rescue says, closing its open run with the same
/// decision.
pub(super) fn rescue(tx: &Db, host: &str, now: i64, triage: Triage) -> Result<Vec<Rescued>> {
    let candidates = rescue_candidates(tx, host, now)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut rescued = Vec::new();
    for rescue in triage(&candidates) {
        let state = rescue.to_state();
        let class = rescue.class();
        let reason = rescue.reason();
        let changed = tx
            .prepare_cached(
                "UPDATE jobs SET state = ?2, run_after = ?3, lease_owner = NULL,
                        lease_expires_at = NULL, lease_renewed_at = NULL, last_class = ?4,
                        last_reason = ?5, updated_at = ?3
                 WHERE id = ?1 AND state = ?7 AND attempt = ?6",
            )?
            .execute(params![
                rescue.job_id,
                state,
                now,
                class,
                reason,
                rescue.attempt,
                JobState::Running
            ])?;
        if changed != 1 {
            continue;
        }
        record(
            tx,
            rescue.job_id,
            Some(JobState::Running),
            state,
            "orch",
            &reason,
            now,
        )?;
        let decision = rescue.decision();
        runs::close_open(
            tx,
            &runs::RunClose {
                job_id: rescue.job_id,
                attempt: rescue.attempt,
                class,
                decision,
                retry_at: (decision == Decision::Requeued).then_some(now),
                reason: &reason,
            },
            now,
        )?;
        if state == JobState::Failed {
            settle_task(tx, rescue.task_id, TaskState::Failed, now)?;
            if let Some(job) = job(tx, rescue.job_id)? {
                let alert = NewAlert::for_job(AlertKind::Failed, &job, class, &reason);
                outbox::queue(tx, &Message::Alert(alert), now)?;
            }
        }
        rescued.push(Rescued {
            job_id: rescue.job_id,
            worker: rescue.worker,
            state,
            reason,
        });
    }
    Ok(rescued)
}

/// The job, or the usage error that names no job.
pub(super) fn existing(tx: &Db, job_id: i64) -> Result<Job> {
    job(tx, job_id)?.ok_or_else(|| no_job(job_id))
}

pub(super) fn cancel(tx: &Db, job_id: i64, actor: &str, now: i64) -> Result<Cancelled> {
    cancel_for(tx, job_id, actor, "cancelled by operator", now)
}

/// Cancel a queued, running or over-budget job, recording `reason` in its history.
pub(super) fn cancel_for(
    tx: &Db,
    job_id: i64,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<Cancelled> {
    let job = existing(tx, job_id)?;
    match job.state {
        JobState::Queued
        | JobState::Running
        | JobState::OverBudget
        | JobState::AwaitingApproval => {}
        JobState::Cancelled => {
            return Ok(Cancelled {
                was: job.state,
                run: None,
            })
        }
        other => bail!(
            "job {job_id} is {other}; only queued, running or over_budget jobs can be cancelled"
        ),
    }
    tx.execute(
        "UPDATE jobs SET state = ?3, lease_owner = NULL, lease_expires_at = NULL,
                lease_renewed_at = NULL, updated_at = ?2 WHERE id = ?1",
        params![job_id, now, JobState::Cancelled],
    )?;
    // A job waiting behind CI waits no more.
    tx.prepare_cached("DELETE FROM ci_gates WHERE job_id = ?1")?
        .execute([job_id])?;
    record(
        tx,
        job_id,
        Some(job.state),
        JobState::Cancelled,
        actor,
        reason,
        now,
    )?;
    settle_task(tx, job.task_id, TaskState::Cancelled, now)?;
    let mut run = None;
    if job.state == JobState::Running {
        run = runs::open_run(tx, job_id, job.attempt)?;
        runs::close_open(
            tx,
            &runs::RunClose {
                job_id,
                attempt: job.attempt,
                class: "cancelled",
                decision: Decision::Cancelled,
                retry_at: None,
                reason,
            },
            now,
        )?;
    }
    Ok(Cancelled {
        was: job.state,
        run,
    })
}

pub(super) fn retry(
    tx: &Db,
    job_id: i64,
    stage: Option<&str>,
    actor: &str,
    now: i64,
) -> Result<Retried> {
    let job = existing(tx, job_id)?;
    let movable = matches!(job.state, JobState::Failed | JobState::Cancelled)
        || (stage.is_some() && job.state == JobState::Queued);
    if !movable {
        bail!(
            "job {job_id} is {}; only failed or cancelled jobs can be retried{}",
            job.state,
            match job.state {
                JobState::Queued => " (or moved with --stage, or made due now with --now)",
                JobState::OverBudget =>
                    " (one waiting for budget is released with --raise-budget USD)",
                _ => "",
            }
        );
    }
    let live: i64 = tx.query_row(
        "SELECT count(*) AS live FROM jobs WHERE task_id = ?1 AND id != ?2 AND state IN (?3, ?4, ?5, ?6)",
        params![
            job.task_id,
            job_id,
            JobState::Queued,
            JobState::Running,
            JobState::OverBudget,
            JobState::AwaitingApproval
        ],
        |row| row.get("live"),
    )?;
    if live > 0 {
        bail!("task {} already has a live job; cancel it first", job.task);
    }
    tx.execute(
        "UPDATE jobs SET state = ?4, stage = coalesce(?3, stage), attempt = 0,
                run_after = ?2, lease_owner = NULL, lease_expires_at = NULL,
                lease_renewed_at = NULL, updated_at = ?2 WHERE id = ?1",
        params![job_id, now, stage, JobState::Queued],
    )?;
    set_task_state(tx, job.task_id, TaskState::Active, now)?;
    let mut reason = "retried by operator, attempts reset".to_string();
    if let Some(to) = stage.filter(|to| *to != job.stage) {
        reason.push_str(&format!("; moved from stage {} to {to}", job.stage));
    }
    record(
        tx,
        job_id,
        Some(job.state),
        JobState::Queued,
        actor,
        &reason,
        now,
    )?;
    Ok(Retried {
        was: job.state,
        was_stage: job.stage,
    })
}

pub(super) fn make_due(tx: &Db, job_id: i64, actor: &str, now: i64) -> Result<i64> {
    let job = existing(tx, job_id)?;
    if job.state != JobState::Queued {
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
        Some(JobState::Queued),
        JobState::Queued,
        actor,
        "made due now by operator, attempts kept",
        now,
    )?;
    Ok(job.run_after)
}
