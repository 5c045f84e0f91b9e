//! `orch show JOB|TASK`: one job with its history and runs, or one task with all its jobs.

use anyhow::Result;
use serde_json::json;

use crate::cli::ShowArgs;
use crate::commands::project_arg;
use crate::domain::states::JobState;
use crate::exit;
use crate::output::{self, Table};
use crate::store::{self, now_ms, Store, Task};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<u8> {
    if let Some(project) = &args.project {
        project_arg(ctx, project)?;
    }
    let store = ctx.store()?;
    // All digits: a job id (`orch jobs` lists them); anything else: a task key.
    match args.target.parse::<i64>() {
        Ok(job_id) if args.project.is_none() => show_job(ctx, &*store, job_id),
        _ => show_task(ctx, &*store, &args.target, args.project.as_deref()),
    }
}

fn show_task(ctx: &Ctx, store: &dyn Store, key: &str, project: Option<&str>) -> Result<u8> {
    let mut tasks = store.tasks_by_key(key)?;
    tasks.retain(|t| project.is_none_or(|p| t.project == p));
    let task = match tasks.len() {
        0 => {
            return Err(exit::usage(format!(
                "no job or task {key:?}{} (`orch jobs` lists jobs and their tasks)",
                project.map_or(String::new(), |p| format!(" in project {p}"))
            )))
        }
        1 => tasks.remove(0),
        _ => {
            let projects: Vec<&str> = tasks.iter().map(|t| t.project.as_str()).collect();
            return Err(exit::usage(format!(
                "task {key:?} exists in several projects ({}): add --project",
                projects.join(", ")
            )));
        }
    };
    let jobs = store.jobs_of_task(task.task_id)?;
    if ctx.json() {
        output::json(&json!({ "task": task, "jobs": jobs }))?;
        return Ok(exit::OK);
    }
    let now = now_ms();
    let paint = ctx.paint();
    let mut out = vec![task_line(&task, paint)];
    if !task.title.is_empty() {
        out.push(format!("title     {}", task.title));
    }
    if let Some(issue) = task.issue {
        out.push(format!("issue     #{issue}"));
    }
    out.extend(branch_lines(&task, now));
    out.push(format!("created   {}", output::when(task.created_at, now)));
    let mut table = Table::new(&["JOB", "STAGE", "STATE", "ATTEMPT", "LAST", "UPDATED"]);
    for job in &jobs {
        table.row(vec![
            job.job_id.to_string(),
            job.stage.clone(),
            paint.state(job.state.as_str()),
            format!("{}/{}", job.attempt, job.max_attempts),
            job.last_class
                .as_deref()
                .map_or_else(|| paint.dim("·"), |c| super::paint_class(paint, c)),
            output::when(job.updated_at, now),
        ]);
    }
    out.push(String::new());
    out.push(table.render(paint));
    out.push(String::new());
    out.push("`orch show JOB` for a job's history and runs".to_string());
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}

/// The task's branch, worktree and pull request, when it has a branch.
fn branch_lines(task: &Task, now: i64) -> Vec<String> {
    let Some(branch) = &task.branch else {
        return Vec::new();
    };
    let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_string();
    let base = task
        .base_branch
        .as_deref()
        .map_or(String::new(), |b| format!(" from {b}"));
    let pushed = match (&task.push_error, &task.pushed_sha, &task.remote_url) {
        (_, _, None) => "local: the main clone has no such remote".to_string(),
        (Some(error), _, _) => format!("push failed, the next tick tries again: {error}"),
        (None, Some(sha), Some(url)) => format!(
            "pushed {} to {url}{}",
            short(sha),
            task.pushed_at.map_or(String::new(), |at| format!(
                " {}",
                output::relative(at, now)
            ))
        ),
        (None, None, Some(url)) => format!("not pushed to {url} yet"),
    };
    let mut out = vec![format!("branch    {branch}{base} ({pushed})")];
    match (&task.worktree, &task.worktree_host) {
        (Some(path), host) => out.push(format!(
            "worktree  {path}{}{}",
            host.as_deref()
                .map_or(String::new(), |h| format!(" on {h}")),
            task.worktree_bytes.map_or(String::new(), |b| format!(
                ", {}",
                output::bytes(u64::try_from(b).unwrap_or(0))
            ))
        )),
        (None, _) => out.push("worktree  none (removed once the task finished)".to_string()),
    }
    if let (Some(number), Some(state)) = (task.pr_number, task.pr_state) {
        out.push(format!(
            "pull      #{number} {state} {}{}",
            task.pr_url.as_deref().unwrap_or(""),
            task.pr_synced_at.map_or(String::new(), |at| format!(
                " (seen {})",
                output::relative(at, now)
            ))
        ));
    }
    out
}

fn task_line(task: &Task, paint: output::Paint) -> String {
    format!(
        "task {}  {}  project {}",
        task.key,
        paint.state(task.state.as_str()),
        task.project
    )
}

fn show_job(ctx: &Ctx, store: &dyn Store, job_id: i64) -> Result<u8> {
    let Some(job) = store.job(job_id)? else {
        return Err(store::no_job(job_id));
    };
    let history = store.history(job.job_id)?;
    let runs = store.runs_for_job(job.job_id)?;
    if ctx.json() {
        let task = store.task(job.task_id)?;
        output::json(&json!({ "job": job, "task": task, "history": history, "runs": runs }))?;
        return Ok(exit::OK);
    }
    let now = now_ms();
    let paint = ctx.paint();
    let mut out = vec![format!(
        "job {}  {}  {} {}  stage {}",
        job.job_id,
        paint.state(job.state.as_str()),
        job.project,
        job.task,
        job.stage
    )];
    if !job.title.is_empty() {
        out.push(format!("title     {}", job.title));
    }
    out.push(format!("attempt   {}/{}", job.attempt, job.max_attempts));
    if let Some(task) = store.task(job.task_id)? {
        out.extend(branch_lines(&task, now));
    }
    if let (Some(owner), Some(expires)) = (&job.lease_owner, job.lease_expires_at) {
        out.push(format!(
            "lease     {owner}, expires {}",
            output::when(expires, now)
        ));
    }
    if job.state == JobState::Queued && job.run_after > now {
        out.push(format!("due       {}", output::when(job.run_after, now)));
    }
    if let Some(class) = &job.last_class {
        out.push(format!(
            "last      {}: {}",
            super::paint_class(paint, class),
            job.last_reason.as_deref().unwrap_or("")
        ));
    }
    if let Some(next) = runs.iter().rev().find_map(|r| r.next_job_id) {
        let stage = store.job(next)?.map(|j| j.stage).unwrap_or_default();
        out.push(format!(
            "next      job {next} ({stage}): `orch show {next}`"
        ));
    }
    let mut table = Table::new(&["WHEN", "FROM", "TO", "BY", "WHY"]);
    for h in &history {
        table.row(vec![
            output::when(h.at, now),
            h.from_state.map_or_else(|| "·".into(), |s| s.to_string()),
            paint.state(h.to_state.as_str()),
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
                    .map(|c| super::paint_class(paint, &c))
                    .unwrap_or_else(|| "·".into()),
                run.decision
                    .map_or_else(|| "·".into(), |d| d.as_str().to_string()),
                run.log_path.clone().unwrap_or_default(),
            ]);
        }
        out.push(String::new());
        out.push(table.render(paint));
        out.extend(run_notes(&runs, paint));
        for run in &runs {
            match (&run.pushed_sha, &run.push_error) {
                (_, Some(error)) => out.push(format!(
                    "run {}: {} {error}",
                    run.run_id,
                    paint.fail("push failed:")
                )),
                (Some(sha), None) => out.push(format!(
                    "run {}: pushed {}",
                    run.run_id,
                    sha.get(..12).unwrap_or(sha)
                )),
                (None, None) => {}
            }
        }
    }
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}

/// What the runs table has no column for: the session a run continued, and the usage-limit
/// warnings and refusals the agent reported.
fn run_notes(runs: &[store::Run], paint: output::Paint) -> Vec<String> {
    let mut notes = Vec::new();
    for run in runs {
        if let Some(session) = &run.resumed_session {
            let from = runs
                .iter()
                .filter(|r| r.run_id < run.run_id)
                .rfind(|r| session_of(r) == Some(session.as_str()))
                .map_or(String::new(), |r| format!(" of run {}", r.run_id));
            notes.push(format!(
                "run {} continued session {session}{from}",
                run.run_id
            ));
        }
        let limit = run.usage.as_ref().and_then(|u| u.get("rate_limit"));
        if let Some(limit) = limit {
            let text = |key| limit.get(key).and_then(serde_json::Value::as_str);
            let which = text("limit_type").unwrap_or("usage");
            let used = limit
                .get("utilization")
                .and_then(serde_json::Value::as_f64)
                .map_or(String::new(), |u| format!(" at {:.0}%", u * 100.0));
            let note = match text("status") {
                Some("rejected") => paint.fail(&format!("refused by its {which} limit{used}")),
                Some(status) => paint.warn(&format!("its {which} limit: {status}{used}")),
                None => continue,
            };
            notes.push(format!("run {}: {note}", run.run_id));
        }
    }
    if !notes.is_empty() {
        notes.insert(0, String::new());
    }
    notes
}

fn session_of(run: &store::Run) -> Option<&str> {
    run.usage
        .as_ref()
        .and_then(|u| u.get("session_id"))
        .and_then(serde_json::Value::as_str)
}
