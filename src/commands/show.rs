use anyhow::Result;
use serde_json::json;

use crate::cli::ShowArgs;
use crate::exit;
use crate::output::{self, Table};
use crate::store::{self, now_ms};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<u8> {
    let store = ctx.store()?;
    let Some(job) = store.job(args.job)? else {
        return Err(store::no_job(args.job));
    };
    let history = store.history(job.job_id)?;
    let runs = store.runs_for_job(job.job_id)?;
    if ctx.json() {
        output::json(&json!({ "job": job, "history": history, "runs": runs }))?;
        return Ok(exit::OK);
    }
    let now = now_ms();
    let paint = ctx.paint();
    let mut out = vec![format!(
        "job {}  {}  {} {}  stage {}",
        job.job_id,
        paint.state(&job.state),
        job.project,
        job.task,
        job.stage
    )];
    if !job.title.is_empty() {
        out.push(format!("title     {}", job.title));
    }
    out.push(format!("attempt   {}/{}", job.attempt, job.max_attempts));
    if let (Some(owner), Some(expires)) = (&job.lease_owner, job.lease_expires_at) {
        out.push(format!(
            "lease     {owner}, expires {}",
            output::when(expires, now)
        ));
    }
    if job.state == "queued" && job.run_after > now {
        out.push(format!("due       {}", output::when(job.run_after, now)));
    }
    if let Some(class) = &job.last_class {
        out.push(format!(
            "last      {}: {}",
            paint.class(class),
            job.last_reason.as_deref().unwrap_or("")
        ));
    }
    let mut table = Table::new(&["WHEN", "FROM", "TO", "BY", "WHY"]);
    for h in &history {
        table.row(vec![
            output::when(h.at, now),
            h.from_state.clone().unwrap_or_else(|| "·".into()),
            paint.state(&h.to_state),
            h.actor.clone(),
            h.reason.clone(),
        ]);
    }
    out.push(String::new());
    out.push(table.render(paint));
    if !runs.is_empty() {
        let mut table = Table::new(&[
            "RUN", "ATTEMPT", "WORKER", "STARTED", "EXIT", "CLASS", "DECISION", "LOG",
        ]);
        for run in &runs {
            let exit = match (run.exit_code, run.signal) {
                (Some(code), _) => code.to_string(),
                (None, Some(signal)) => format!("signal {signal}"),
                (None, None) if run.ended_at.is_none() => "running".into(),
                _ => "·".into(),
            };
            table.row(vec![
                run.run_id.to_string(),
                run.attempt.to_string(),
                run.worker.clone(),
                output::when(run.started_at, now),
                exit,
                run.class
                    .clone()
                    .map(|c| paint.class(&c))
                    .unwrap_or_else(|| "·".into()),
                run.decision.clone().unwrap_or_else(|| "·".into()),
                run.log_path.clone().unwrap_or_default(),
            ]);
        }
        out.push(String::new());
        out.push(table.render(paint));
    }
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}
