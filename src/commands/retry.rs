use anyhow::Result;
use serde_json::json;

use crate::cli::RetryArgs;
use crate::domain::budget::{self, dollars};
use crate::domain::states::JobState;
use crate::exit;
use crate::output;
use crate::store::{BudgetRaise, Retried, Store};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &RetryArgs) -> Result<u8> {
    if let Some(stage) = &args.stage {
        crate::commands::stage_arg(ctx, stage)?;
    }
    let mut store = ctx.store()?;
    if let Some(usd) = args.raise_budget {
        return raise(ctx, &mut *store, args.job, usd);
    }
    let queued = store
        .job(args.job)?
        .is_some_and(|job| job.state == JobState::Queued);
    if args.now && queued && args.stage.is_none() {
        let now = store.now()?;
        let due = store.make_due(args.job, &ctx.operator(), now)?;
        if ctx.json() {
            output::json(
                &json!({ "job_id": args.job, "state": JobState::Queued, "was_due": due }),
            )?;
        } else {
            output::line(format!(
                "job {} is due now (it was due {}); its attempts are kept",
                args.job,
                output::relative(due, now)
            ))?;
        }
        return Ok(exit::OK);
    }
    let now = store.now()?;
    let Retried { was, was_stage } =
        store.retry(args.job, args.stage.as_deref(), &ctx.operator(), now)?;
    let stage = args.stage.clone().unwrap_or_else(|| was_stage.clone());
    if ctx.json() {
        output::json(&json!({
            "job_id": args.job, "state": JobState::Queued, "was": was, "stage": stage, "was_stage": was_stage,
        }))?;
    } else {
        let moved = if stage == was_stage {
            String::new()
        } else {
            format!(", moved from stage {was_stage} to {stage}")
        };
        output::line(format!(
            "job {} queued again at stage {stage} (was {was}{moved}), attempts reset",
            args.job
        ))?;
    }
    Ok(exit::OK)
}

/// `--raise-budget USD`: more budget for a job in over_budget.
fn raise(ctx: &Ctx, store: &mut dyn Store, job_id: i64, usd: f64) -> Result<u8> {
    let job = store
        .job(job_id)?
        .ok_or_else(|| crate::store::no_job(job_id))?;
    let budget = ctx
        .config
        .projects
        .get(&job.project)
        .map(|p| p.budget())
        .unwrap_or_default();
    let now = store.now()?;
    let raised = store.raise_budget(&BudgetRaise {
        job_id,
        usd,
        budget,
        day_start: budget::day_start(now),
        actor: &ctx.operator(),
        now,
    })?;
    if ctx.json() {
        output::json(&raised)?;
        return Ok(exit::OK);
    }
    let task = match raised.task_budget_usd {
        Some(limit) => format!(
            "task {} spent {} of {}",
            raised.task,
            dollars(raised.task_spent_usd),
            dollars(limit + raised.task_extra_usd)
        ),
        None => format!(
            "task {} spent {}",
            raised.task,
            dollars(raised.task_spent_usd)
        ),
    };
    let day = raised.day_budget_usd.map_or(String::new(), |limit| {
        format!(
            "; project {} spent {} of {} today",
            raised.project,
            dollars(raised.day_spent_usd),
            dollars(limit + raised.day_extra_usd)
        )
    });
    let what = if raised.released {
        "queued again"
    } else {
        "still waits: the budget is still spent"
    };
    output::line(format!(
        "job {job_id} {what} (raised by {}; {task}{day})",
        dollars(usd)
    ))?;
    Ok(exit::OK)
}
