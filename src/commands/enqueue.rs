use std::io::Read;

use anyhow::{Context, Result};
use serde_json::json;

use crate::claude::prompt;
use crate::cli::EnqueueArgs;
use crate::config::{self, valid_name};
use crate::exit;
use crate::output;
use crate::store::{now_ms, NewTask};
use crate::Ctx;

pub const MAX_PRIORITY: i64 = 1000;

pub fn run(ctx: &Ctx, args: &EnqueueArgs) -> Result<u8> {
    let project = ctx.config.project(&args.project)?;
    let stage = match &args.stage {
        Some(stage) => {
            ctx.config.check_stage(stage)?;
            stage.clone()
        }
        None => ctx.config.stages[0].clone(),
    };
    if args.task.trim().is_empty()
        || args.task.len() > 200
        || args.task.chars().any(char::is_control)
    {
        return Err(exit::usage(format!(
            "--task {:?}: a task key is 1 to 200 printable characters",
            args.task
        )));
    }
    let priority = args.priority.unwrap_or(project.priority);
    if !(0..=MAX_PRIORITY).contains(&priority) {
        return Err(exit::usage(format!(
            "--priority {priority}: expected 0 to {MAX_PRIORITY}"
        )));
    }
    debug_assert!(valid_name(&project.name));
    let body = match args.body_file.as_deref() {
        None => None,
        Some("-") => {
            let mut body = String::new();
            std::io::stdin()
                .read_to_string(&mut body)
                .context("reading the task body from standard input")?;
            Some(body)
        }
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|err| exit::usage(format!("--body-file {path}: {err}")))?,
        ),
    };
    // The prompt reaches the agent as one program argument: a body or title it cannot carry
    // would fail every run of the task, so it is refused here.
    let source = args.body_file.as_deref().unwrap_or("-");
    let unfit = [
        (
            "--title",
            "the title",
            args.title.as_deref(),
            prompt::TITLE_MAX_BYTES,
        ),
        (
            &format!("--body-file {source}")[..],
            "the task body",
            body.as_deref(),
            prompt::BODY_MAX_BYTES,
        ),
    ]
    .into_iter()
    .find_map(|(flag, what, text, max)| {
        text.and_then(|text| prompt::unfit(what, text, max))
            .map(|why| format!("{flag}: {why}"))
    });
    if let Some(why) = unfit {
        return Err(exit::usage(why));
    }
    let operator = ctx.operator();
    let mut store = ctx.store()?;
    let enqueued = store.enqueue(
        &NewTask {
            project: &project.name,
            key: &args.task,
            title: args.title.as_deref(),
            body: body.as_deref(),
            issue: args.issue,
            stage: &stage,
            priority,
            max_attempts: ctx.config.count(config::MAX_ATTEMPTS).max(1),
            actor: &operator,
        },
        now_ms(),
    )?;
    if ctx.json() {
        output::json(&json!({
            "job_id": enqueued.job_id,
            "task": enqueued.task,
            "project": enqueued.project,
            "stage": enqueued.stage,
            "created": enqueued.created,
        }))?;
    } else if enqueued.created {
        output::line(format!(
            "queued job {} ({} {} stage {})",
            enqueued.job_id, enqueued.project, enqueued.task, enqueued.stage
        ))?;
    } else {
        output::line(format!(
            "task {} already has a live job: {} ({}, stage {}); nothing queued",
            enqueued.task, enqueued.job_id, enqueued.state, enqueued.stage
        ))?;
    }
    Ok(exit::OK)
}
