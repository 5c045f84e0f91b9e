//! Finalize: the run's lock, the plan written in one transaction, and the runs awaiting it.

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::{anyhow, bail, Result};

use super::{breaker, budget, ci, holds, jobs, logs, outbox, preflight, runs};
use crate::domain::states::JobState;
use crate::store::{
    AlertKind, Applied, Effects, FinalizeLock, FinalizePlan, Held, Locked, Message, Unfinalized,
};

pub(super) fn lock(tx: &Db, lock: &FinalizeLock) -> Result<Locked> {
    let taken = tx
        .prepare_cached(
            "UPDATE agent_runs SET finalizing_by = ?2, finalizing_until = ?3
             WHERE id = ?1 AND finalized_at IS NULL
               AND (finalizing_by IS NULL OR finalizing_by = ?2 OR finalizing_until <= ?4
                    OR finalizing_by = ?5)",
        )?
        .execute(params![
            lock.run_id,
            lock.holder,
            lock.until,
            lock.now,
            lock.take_from
        ])?;
    if taken == 1 {
        return Ok(Locked::Taken);
    }
    let row: Option<(Option<i64>, Option<String>, Option<i64>)> = tx
        .query_row(
            "SELECT finalized_at, finalizing_by, finalizing_until FROM agent_runs WHERE id = ?1",
            [lock.run_id],
            |row| {
                Ok((
                    row.get("finalized_at")?,
                    row.get("finalizing_by")?,
                    row.get("finalizing_until")?,
                ))
            },
        )
        .optional()?;
    match row {
        None => bail!("no run {}", lock.run_id),
        Some((Some(_), _, _)) => Ok(Locked::Finalized),
        Some((None, Some(holder), Some(until))) => Ok(Locked::Held { holder, until }),
        Some(_) => bail!("run {}: its finalize lock is half written", lock.run_id),
    }
}

pub(super) fn unlock(tx: &Db, run_id: i64, holder: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE agent_runs SET finalizing_by = NULL, finalizing_until = NULL
         WHERE id = ?1 AND finalizing_by = ?2",
    )?
    .execute(params![run_id, holder])?;
    Ok(())
}

pub(super) fn apply(tx: &Db, plan: &FinalizePlan) -> Result<Applied> {
    let now = plan.now;
    let run = runs::run(tx, plan.run_id)?.ok_or_else(|| anyhow!("run {} vanished", plan.run_id))?;
    if run.finalized_at.is_some() {
        return Ok(Applied::Finalized(Box::new(run)));
    }
    let job = jobs::job(tx, plan.job_id)?.ok_or_else(|| anyhow!("job {} vanished", plan.job_id))?;
    if !job.held_by(&plan.worker, plan.attempt) || run.attempt != plan.attempt {
        return Ok(Applied::NotHeld {
            job: Box::new(job),
            run: Box::new(run),
        });
    }
    if let Some(log) = &plan.log {
        logs::save(tx, plan.run_id, log, now)?;
    }
    let to = plan.job.to;
    let verdict = &plan.verdict;
    let moved = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?4, run_after = coalesce(?5, run_after),
                    attempt = attempt - ?6, lease_owner = NULL, lease_expires_at = NULL,
                    last_class = ?7, last_reason = ?8, updated_at = ?9
             WHERE id = ?1 AND state = ?10 AND lease_owner = ?2 AND attempt = ?3",
        )?
        .execute(params![
            plan.job_id,
            plan.worker,
            plan.attempt,
            to,
            plan.job.run_after,
            i64::from(plan.job.refund_attempt),
            verdict.class,
            verdict.reason,
            now,
            JobState::Running
        ])?;
    if moved != 1 {
        bail!(
            "job {} is no longer held by run {}'s lease",
            job.job_id,
            run.run_id
        );
    }
    jobs::record(
        tx,
        plan.job_id,
        Some(JobState::Running),
        to,
        &plan.actor,
        &plan.job.history,
        now,
    )?;
    let next_job_id = match &plan.next_job {
        Some(next) => Some(jobs::insert_job(
            tx,
            &jobs::JobSpec {
                task_id: job.task_id,
                stage: &next.stage,
                priority: next.priority,
                max_attempts: next.max_attempts,
                actor: &plan.actor,
                reason: &next.reason,
                state: match next.approval {
                    true => JobState::AwaitingApproval,
                    false => JobState::Queued,
                },
            },
            now,
        )?),
        None => None,
    };
    if let (Some(job_id), Some(gate)) = (
        next_job_id,
        plan.next_job.as_ref().and_then(|n| n.ci_gate.as_ref()),
    ) {
        ci::hold(tx, job_id, job.task_id, gate, now)?;
    }
    if let Some(state) = plan.task {
        jobs::settle_task(tx, job.task_id, state, now)?;
    }
    budget::spend(tx, &job, verdict.cost_usd, now)?;
    let recorded = tx
        .prepare_cached(
            "UPDATE agent_runs SET result_ok = ?2, class = ?3, reason = ?4, usage_json = ?5,
                    decision = ?6, next_job_id = ?7, retry_at = ?8, commit_sha = ?9,
                    result_text = ?10, finalized_at = ?11, finalizing_by = NULL,
                    finalizing_until = NULL, cost_usd = ?12
             WHERE id = ?1 AND finalized_at IS NULL",
        )?
        .execute(params![
            plan.run_id,
            verdict.result_ok,
            verdict.class,
            verdict.reason,
            verdict.usage_json,
            verdict.decision,
            next_job_id,
            verdict.retry_at,
            verdict.commit_sha,
            verdict.result_text,
            now,
            verdict.cost_usd
        ])?;
    if recorded != 1 {
        bail!("run {} was finalized meanwhile", plan.run_id);
    }

    let project_held = match &plan.hold_project {
        Some(hold) => holds::hold(tx, &hold.project, &hold.host, &hold.reason, now)?,
        None => false,
    };
    let gate_held = match &plan.gate {
        Some(gate) => preflight::hold_gate(tx, gate, now)?,
        None => false,
    };
    let usage_held = match &plan.usage_hold {
        Some(hold) => preflight::hold_usage(tx, hold, now)?,
        None => false,
    };
    let invocation_held = match &plan.invocation_hold {
        Some(hold) => preflight::hold_invocation(tx, hold, now)?,
        None => false,
    };
    let (breaker, change) = breaker::record(tx, plan, now)?;
    let held = Held {
        gate: gate_held,
        usage: usage_held,
        invocation: invocation_held,
    };
    let raised = plan.raised(held, &breaker, change);
    for alert in &raised {
        match plan.alerts_to.note(alert) {
            None => {
                outbox::queue(tx, &Message::Alert(alert.clone()), now)?;
            }
            Some(note) => jobs::record(tx, plan.job_id, Some(to), to, "orch", &note, now)?,
        }
    }
    if let Some(comment) = &plan.comment {
        outbox::queue(tx, &Message::Comment(comment.clone()), now)?;
    }
    if let Some(merge) = &plan.merge {
        outbox::queue(tx, &Message::Merge(merge.clone()), now)?;
    }
    if let Some(head) = &plan.branch_head {
        tx.prepare_cached("UPDATE tasks SET head_sha = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![job.task_id, head, now])?;
    }
    let mut alerts: Vec<AlertKind> = raised.iter().map(|a| a.kind).collect();
    if project_held {
        alerts.push(AlertKind::ProjectHeld);
    }
    Ok(Applied::Done(Effects {
        next_job_id,
        project_held,
        gate_held,
        usage_held,
        invocation_held,
        breaker,
        change,
        alerts,
    }))
}

/// Walks agent_runs_unfinalized, whatever the planner would guess: ordered by id, a scan of every
/// run ever made looks cheaper to it than it is.
pub(super) fn unfinalized(conn: &Db, worker: Option<&str>, limit: i64) -> Result<Vec<Unfinalized>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id AS run_id, r.job_id AS job_id, r.worker AS worker, r.agent AS agent,
                r.attempt AS attempt, r.ended_at AS ended_at,
                r.launch_error IS NOT NULL AS launch_error, j.lease_expires_at AS lease_expires_at
         FROM agent_runs r INDEXED BY agent_runs_unfinalized JOIN jobs j ON j.id = r.job_id
         WHERE r.finalized_at IS NULL AND (r.ended_at IS NOT NULL OR r.launch_error IS NOT NULL)
           AND j.state = ?3 AND j.lease_owner = r.worker AND j.attempt = r.attempt
           AND (?1 IS NULL OR r.worker = ?1)
         ORDER BY r.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![worker, limit, JobState::Running], |row| {
        Ok(Unfinalized {
            run_id: row.get("run_id")?,
            job_id: row.get("job_id")?,
            worker: row.get("worker")?,
            agent: row.get("agent")?,
            attempt: row.get("attempt")?,
            ended_at: row.get("ended_at")?,
            launch_error: row.get("launch_error")?,
            lease_expires_at: row.get("lease_expires_at")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}
