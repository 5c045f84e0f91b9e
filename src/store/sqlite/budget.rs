//! Budgets inside the claim: what a task and a project today have spent, the jobs that wait in
//! `over_budget` while a budget is spent, and their release once it allows (raised, or a new
//! day). Whether a budget is reached is `domain::budget`'s.

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::Result;

use super::{jobs, outbox};
use crate::domain::budget::{self, dollars, Budget};
use crate::domain::states::JobState;
use crate::store::{
    AlertKind, BudgetRaise, ClaimProject, Job, Message, NewAlert, ProjectSpend, Raised,
};

/// What the task has spent over all its runs, and what was added to its budget.
fn task_spend(conn: &Db, task_id: i64) -> Result<(f64, f64)> {
    Ok(conn
        .prepare_cached("SELECT spent_usd, budget_extra_usd FROM tasks WHERE id = ?1")?
        .query_row([task_id], |row| {
            Ok((row.get("spent_usd")?, row.get("budget_extra_usd")?))
        })?)
}

/// What the project's runs finalized on `day` cost, and what was added to its budget for that
/// day: one row, kept by finalize.
fn day_spend(conn: &Db, project: &str, day: i64) -> Result<(f64, f64)> {
    Ok(conn
        .prepare_cached(
            "SELECT spent_usd, extra_usd FROM project_days WHERE project = ?1 AND day = ?2",
        )?
        .query_row(params![project, day], |row| {
            Ok((row.get("spent_usd")?, row.get("extra_usd")?))
        })
        .optional()?
        .unwrap_or((0.0, 0.0)))
}

/// Why a task's budget holds its job, if it does.
fn task_over(conn: &Db, job: &Job, budget: Budget) -> Result<Option<String>> {
    if budget.per_task_usd.is_none() {
        return Ok(None);
    }
    let (spent, extra) = task_spend(conn, job.task_id)?;
    Ok(budget::reached(spent, budget.per_task_usd, extra).then(|| {
        format!(
            "task {} spent {} of its budget of {}",
            job.task,
            dollars(spent),
            dollars(budget.per_task_usd.unwrap_or_default() + extra)
        )
    }))
}

/// What each project's runs finalized on `day` cost, for projects with such runs.
pub(super) fn cost_on(conn: &Db, day: i64) -> Result<Vec<(String, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT project, spent_usd FROM project_days WHERE day = ?1 AND spent_usd > 0
         ORDER BY project",
    )?;
    let rows = stmt.query_map([day], |row| {
        Ok((row.get("project")?, row.get("spent_usd")?))
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// Why the project's daily budget holds its jobs today, if it does.
fn day_over(conn: &Db, project: &str, budget: Budget, day: i64) -> Result<Option<String>> {
    if budget.per_day_usd.is_none() {
        return Ok(None);
    }
    let (spent, extra) = day_spend(conn, project, day)?;
    Ok(budget::reached(spent, budget.per_day_usd, extra).then(|| {
        format!(
            "project {project} spent {} today (UTC) of its daily budget of {}",
            dollars(spent),
            dollars(budget.per_day_usd.unwrap_or_default() + extra)
        )
    }))
}

/// Before a claim picks a job: release the project's `over_budget` jobs its budgets allow again,
/// and, when its daily budget is spent, move its queued jobs to `over_budget` (one alert).
/// Returns whether the project is closed for today.
pub(super) fn sweep(
    tx: &Db,
    project: &ClaimProject,
    day: i64,
    actor: &str,
    now: i64,
) -> Result<bool> {
    let day_held = day_over(tx, project.name, project.budget, day)?;
    let waiting: Vec<i64> = tx
        // The state spelled out, so that the partial index over waiting jobs serves it.
        .prepare_cached(
            "SELECT id FROM jobs WHERE state = 'over_budget' AND project = ?1 ORDER BY id",
        )?
        .query_map(params![project.name], |row| row.get(0))?
        .collect::<crate::store::sql::Result<_>>()?;
    if day_held.is_none() {
        for job_id in &waiting {
            let job = jobs::job(tx, *job_id)?.expect("a waiting job exists");
            if task_over(tx, &job, project.budget)?.is_none() {
                release(tx, &job, "the budget allows it again", actor, now)?;
            }
        }
        return Ok(false);
    }
    let why = day_held.unwrap_or_default();
    let parked: Vec<i64> = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?1, last_class = 'over_budget', last_reason = ?3,
                    updated_at = ?4
             WHERE state = ?5 AND project = ?2 RETURNING id",
        )?
        .query_map(
            params![
                JobState::OverBudget,
                project.name,
                why,
                now,
                JobState::Queued
            ],
            |row| row.get(0),
        )?
        .collect::<crate::store::sql::Result<_>>()?;
    for job_id in &parked {
        note_parked(tx, *job_id, &why, actor, now)?;
    }
    // One alert when the project's day closes, not one per job.
    if !parked.is_empty() && waiting.is_empty() {
        let alert = NewAlert {
            project: Some(project.name.to_string()),
            ..NewAlert::new(
                AlertKind::OverBudget,
                &format!("{}@{day}", project.name),
                &format!(
                    "{why}: its jobs wait until tomorrow (UTC), or `orch retry JOB \
                     --raise-budget USD`, or a higher max_cost_usd_per_day"
                ),
            )
        };
        outbox::queue(tx, &Message::Alert(alert), now)?;
    }
    Ok(true)
}

/// After a claim took job `job_id` of task `task_id`: when the task's budget is spent, give the
/// job back (the attempt uncounted) to wait in `over_budget`, with one alert for the task.
/// Returns whether it did.
pub(super) fn park_if_spent(
    tx: &Db,
    job_id: i64,
    task_id: i64,
    budget: Budget,
    actor: &str,
    now: i64,
) -> Result<bool> {
    if budget.per_task_usd.is_none() {
        return Ok(false);
    }
    let (spent, extra) = task_spend(tx, task_id)?;
    if !budget::reached(spent, budget.per_task_usd, extra) {
        return Ok(false);
    }
    let job = jobs::job(tx, job_id)?.expect("the claimed job exists");
    let Some(why) = task_over(tx, &job, budget)? else {
        return Ok(false);
    };
    let job = &job;
    tx.prepare_cached(
        "UPDATE jobs SET state = ?2, attempt = attempt - 1, lease_owner = NULL,
                lease_expires_at = NULL, lease_renewed_at = NULL, last_class = 'over_budget',
                last_reason = ?3, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![job.job_id, JobState::OverBudget, why, now])?;
    note_parked(tx, job.job_id, &why, actor, now)?;
    let alert = NewAlert {
        job_id: Some(job.job_id),
        task: Some(job.task.clone()),
        stage: Some(job.stage.clone()),
        project: Some(job.project.clone()),
        ..NewAlert::new(
            AlertKind::OverBudget,
            &format!("{}/{}", job.project, job.task),
            &format!(
                "{why}: job {} waits; `orch retry {} --raise-budget USD` or a higher \
                 max_cost_usd releases it",
                job.job_id, job.job_id
            ),
        )
    };
    outbox::queue(tx, &Message::Alert(alert), now)?;
    Ok(true)
}

/// The history line of a job that went from the queue to wait for budget.
fn note_parked(tx: &Db, job_id: i64, why: &str, actor: &str, now: i64) -> Result<()> {
    jobs::record(
        tx,
        job_id,
        Some(JobState::Queued),
        JobState::OverBudget,
        actor,
        &format!("waits for budget: {why}"),
        now,
    )
}

fn release(tx: &Db, job: &Job, why: &str, actor: &str, now: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE jobs SET state = ?2, last_class = NULL, last_reason = NULL, updated_at = ?3
         WHERE id = ?1 AND state = ?4",
    )?
    .execute(params![
        job.job_id,
        JobState::Queued,
        now,
        JobState::OverBudget
    ])?;
    jobs::record(
        tx,
        job.job_id,
        Some(JobState::OverBudget),
        JobState::Queued,
        actor,
        why,
        now,
    )
}

/// `orch retry JOB --raise-budget USD`.
pub(super) fn raise(tx: &Db, raise: &BudgetRaise) -> Result<Raised> {
    let Some(job) = jobs::job(tx, raise.job_id)? else {
        return Err(crate::store::no_job(raise.job_id));
    };
    if job.state != JobState::OverBudget {
        return Err(crate::exit::usage(format!(
            "job {} is {}, not waiting for budget: --raise-budget releases a job in over_budget",
            job.job_id, job.state
        )));
    }
    let budget = raise.budget;
    let day = raise.day_start;
    // Raise what holds the job: the task's budget, the project's for today, or both.
    let task_held = task_over(tx, &job, budget)?.is_some();
    let day_held = day_over(tx, &job.project, budget, day)?.is_some();
    if task_held || !day_held {
        tx.prepare_cached(
            "UPDATE tasks SET budget_extra_usd = budget_extra_usd + ?2 WHERE id = ?1",
        )?
        .execute(params![job.task_id, raise.usd])?;
    }
    if day_held {
        tx.prepare_cached(
            "INSERT INTO project_days (project, day, extra_usd) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, day) DO UPDATE SET extra_usd = project_days.extra_usd + excluded.extra_usd",
        )?
        .execute(params![job.project, day, raise.usd])?;
    }
    let (task_spent, task_extra) = task_spend(tx, job.task_id)?;
    let (day_spent, day_extra) = day_spend(tx, &job.project, day)?;
    let released = task_over(tx, &job, budget)?.is_none()
        && day_over(tx, &job.project, budget, day)?.is_none();
    if released {
        release(
            tx,
            &job,
            &format!("budget raised by {}", dollars(raise.usd)),
            raise.actor,
            raise.now,
        )?;
    } else {
        jobs::record(
            tx,
            job.job_id,
            Some(JobState::OverBudget),
            JobState::OverBudget,
            raise.actor,
            &format!(
                "budget raised by {}, still spent: the job waits",
                dollars(raise.usd)
            ),
            raise.now,
        )?;
    }
    Ok(Raised {
        job_id: job.job_id,
        task: job.task,
        project: job.project,
        task_spent_usd: task_spent,
        task_budget_usd: budget.per_task_usd,
        task_extra_usd: task_extra,
        day_spent_usd: day_spent,
        day_budget_usd: budget.per_day_usd,
        day_extra_usd: day_extra,
        released,
    })
}

/// Each project's spending today and its jobs waiting for budget.
pub(super) fn spends(conn: &Db, projects: &[&str], day: i64) -> Result<Vec<ProjectSpend>> {
    let mut out = Vec::new();
    for project in projects {
        let (today_usd, today_extra_usd) = day_spend(conn, project, day)?;
        let over_budget: i64 = conn
            // From the counts the jobs' triggers keep (migration 0009), not the jobs table.
            .prepare_cached(
                "SELECT CAST(coalesce(sum(jobs), 0) AS BIGINT) FROM job_counts
                 WHERE state = ?1 AND project = ?2",
            )?
            .query_row(params![JobState::OverBudget, project], |row| row.get(0))?;
        out.push(ProjectSpend {
            project: project.to_string(),
            today_usd,
            today_extra_usd,
            over_budget,
        });
    }
    Ok(out)
}

/// Add a run finalized at `now` to what its task and its project that day spent.
pub(super) fn spend(tx: &Db, job: &Job, cost_usd: Option<f64>, now: i64) -> Result<()> {
    let Some(cost) = cost_usd.filter(|c| c.is_finite() && *c > 0.0) else {
        return Ok(());
    };
    tx.prepare_cached("UPDATE tasks SET spent_usd = spent_usd + ?2 WHERE id = ?1")?
        .execute(params![job.task_id, cost])?;
    tx.prepare_cached(
        "INSERT INTO project_days (project, day, spent_usd) VALUES (?1, ?2, ?3)
         ON CONFLICT (project, day) DO UPDATE SET spent_usd = project_days.spent_usd + excluded.spent_usd",
    )?
    .execute(params![job.project, budget::day_start(now), cost])?;
    Ok(())
}
