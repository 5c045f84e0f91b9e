use std::io::Read;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::EnqueueArgs;
use crate::config::{self, valid_name};
use crate::domain::prompt;
use crate::exit;
use crate::output;
use crate::store::{NewTask, Refused};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &EnqueueArgs) -> Result<u8> {
    let project = crate::commands::project_arg(ctx, &args.project)?;
    let stage = match &args.stage {
        Some(stage) => {
            crate::commands::stage_arg(ctx, stage)?;
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
    let (min, max) = config::PRIORITY;
    if !(min..=max).contains(&priority) {
        return Err(exit::usage(format!(
            "--priority {priority}: expected {min} to {max}"
        )));
    }
    debug_assert!(valid_name(&project.name));
    let body = match args.body_file.as_deref() {
        None => None,
        Some("-") => Some(read_body(std::io::stdin().lock(), "-")?),
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|err| exit::usage(format!("--body-file {path}: {err}")))?;
            Some(read_body(file, path)?)
        }
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
    let now = store.now()?;
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
        now,
    )?;
    let problem = project
        .workdir_problem()
        .or_else(|| crate::app::branches::not_ready(project));
    if let Some(problem) = problem {
        crate::diag!(
            "orch: warning: project {}: {problem}; its jobs will not run until that is fixed \
             (`orch config` checks it)",
            project.name
        );
    }
    // A refusal of a pruned task's key names no job: they are gone.
    let gone = matches!(enqueued.refused, Some(Refused::Pruned { .. }));
    if ctx.json() {
        output::json(&json!({
            "job_id": (!gone).then_some(enqueued.job_id),
            "task": enqueued.task,
            "project": enqueued.project,
            "stage": enqueued.stage,
            "created": enqueued.created,
            "refused": enqueued.refused,
        }))?;
    } else if let (true, Some(refused)) = (gone, &enqueued.refused) {
        output::line(format!("{}; nothing queued", refused.explain(&args.task)))?;
    } else if let Some(refused) = &enqueued.refused {
        output::line(format!(
            "{}; nothing queued (its last job: {}, {}, stage {})",
            refused.explain(&args.task),
            enqueued.job_id,
            enqueued.state,
            enqueued.stage
        ))?;
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

/// More than any body a prompt can carry (`prompt::BODY_MAX_BYTES` says how much, with its
/// reason): reading stops here, so `/dev/zero` cannot fill the memory.
const READ_MAX_BYTES: u64 = 1024 * 1024;

/// A task body read as UTF-8 (a pipe is fine: `--body-file <(…)`), at most `READ_MAX_BYTES`.
fn read_body(reader: impl Read, from: &str) -> Result<String> {
    let mut bytes = Vec::new();
    reader
        .take(READ_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the task body from {from}"))?;
    if bytes.len() as u64 > READ_MAX_BYTES {
        return Err(exit::usage(format!(
            "--body-file {from}: the task body is larger than {READ_MAX_BYTES} bytes, far more \
             than the {} a prompt can carry",
            crate::domain::prompt::BODY_MAX_BYTES
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        exit::usage(format!(
            "--body-file {from}: the task body is not UTF-8 text"
        ))
    })
}
