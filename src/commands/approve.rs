//! `orch approve TASK|JOB [--note TEXT]` and `orch reject TASK|JOB --note TEXT`: a person
//! between stages.

use anyhow::Result;
use serde_json::json;

use crate::cli::{ApproveArgs, RejectArgs};
use crate::domain::states::JobState;
use crate::exit;
use crate::output;
use crate::store::{no_job, Job, Rejection, Reviewed, Store};
use crate::Ctx;

/// The longest note: it goes into a prompt and the job's history.
const NOTE_MAX_BYTES: usize = 4096;

pub fn approve(ctx: &Ctx, args: &ApproveArgs) -> Result<u8> {
    if let Some(note) = &args.note {
        check_note(note)?;
    }
    let mut store = ctx.store()?;
    let job = waiting_job(&*store, &args.target)?;
    let now = store.now()?;
    let reviewed = store.approve(job.job_id, &ctx.operator(), args.note.as_deref(), now)?;
    report(ctx, "approved", &reviewed)
}

pub fn reject(ctx: &Ctx, args: &RejectArgs) -> Result<u8> {
    check_note(&args.note)?;
    let mut store = ctx.store()?;
    let job = waiting_job(&*store, &args.target)?;
    let stage = ctx.config.previous_stage(&job.stage);
    let now = store.now()?;
    let reviewed = store.reject(&Rejection {
        job_id: job.job_id,
        stage: &stage,
        note: &args.note,
        actor: &ctx.operator(),
        now,
    })?;
    report(ctx, "rejected", &reviewed)
}

fn check_note(note: &str) -> Result<()> {
    if note.trim().is_empty() || note.len() > NOTE_MAX_BYTES || note.contains('\0') {
        return Err(exit::usage(format!(
            "--note: a note is 1 to {NOTE_MAX_BYTES} bytes of text"
        )));
    }
    Ok(())
}

/// The job `target` names: a job id, or a task key whose task has a job awaiting approval.
fn waiting_job(store: &dyn Store, target: &str) -> Result<Job> {
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = target
            .parse()
            .map_err(|_| exit::usage(format!("{target}: not a job id")))?;
        return store.job(id)?.ok_or_else(|| no_job(id));
    }
    let mut waiting = Vec::new();
    for task in store.tasks_by_key(target)? {
        waiting.extend(
            store
                .jobs_of_task(task.task_id)?
                .into_iter()
                .filter(|j| j.state == JobState::AwaitingApproval),
        );
    }
    match waiting.len() {
        1 => Ok(waiting.remove(0)),
        0 => Err(exit::usage(format!(
            "task {target:?} has no job awaiting approval (`orch jobs --state awaiting_approval` lists them)"
        ))),
        _ => Err(exit::usage(format!(
            "task {target:?} has a job awaiting approval in several projects; name the job id"
        ))),
    }
}

fn report(ctx: &Ctx, what: &str, reviewed: &Reviewed) -> Result<u8> {
    if ctx.json() {
        output::json(&json!({ "action": what, "review": reviewed }))?;
    } else {
        let mut line = format!(
            "{what} job {} ({} {} stage {})",
            reviewed.job_id, reviewed.project, reviewed.task, reviewed.stage
        );
        if let Some(again) = reviewed.sent_back {
            line.push_str(&format!("; job {again} runs the previous stage again"));
        }
        output::line(line)?;
    }
    Ok(exit::OK)
}
