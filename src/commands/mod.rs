//! One file per subcommand: read the arguments, call the store or the domain, print.

mod approve;
mod cancel;
pub(crate) mod claim;
mod completions;
mod config;
mod db;
mod demo;
mod enqueue;
mod finalize;
mod jobs;
mod logs;
mod man;
mod metrics;
mod notify;
mod preflight;
pub(crate) mod prune;
mod prune_worktrees;
mod reset_cache;
mod retry;
pub(crate) mod run;
mod show;
pub mod status;
pub(crate) mod sync;
pub(crate) mod tick;
mod usage;
mod validate_log;

use anyhow::Result;

use crate::cli::Command;
use crate::config::Project;
use crate::domain::states::JobState;
use crate::domain::verdict::{Class, Kind};
use crate::output::{Paint, Tone};
use crate::{exit, Ctx};

pub fn dispatch(ctx: &Ctx, command: Command) -> Result<u8> {
    match command {
        Command::Enqueue(args) => enqueue::run(ctx, &args),
        Command::Claim(args) => claim::run(ctx, &args),
        Command::Status(args) => status::run(ctx, &args),
        Command::Show(args) => show::run(ctx, &args),
        Command::Jobs(args) => jobs::run(ctx, &args),
        Command::Run(args) => run::run(ctx, &args),
        Command::Finalize(args) => finalize::run(ctx, &args),
        Command::Cancel(args) => cancel::run(ctx, &args),
        Command::Retry(args) => retry::run(ctx, &args),
        Command::Config => config::run(ctx),
        Command::Tick(args) => tick::run(ctx, &args),
        Command::Demo(args) => demo::run(ctx, &args),
        Command::ValidateLog(args) => validate_log::run(ctx, &args),
        Command::Preflight(args) => preflight::run(ctx, &args),
        Command::ResetCache(args) => reset_cache::run(ctx, &args),
        Command::Notify(args) => notify::run(ctx, &args),
        Command::Logs(args) => logs::run(ctx, &args),
        Command::Metrics(args) => metrics::run(ctx, &args),
        Command::PruneWorktrees(args) => prune_worktrees::run(ctx, &args),
        Command::Prune(args) => prune::run(ctx, &args),
        Command::Usage(args) => usage::run(ctx, &args),
        Command::Db(args) => db::run(ctx, &args),
        Command::Sync(args) => sync::run(ctx, &args),
        Command::Approve(args) => approve::approve(ctx, &args),
        Command::Reject(args) => approve::reject(ctx, &args),
        Command::Completions(args) => completions::run(ctx, &args),
        Command::Man(args) => man::run(ctx, &args),
    }
}

// The rule for a name given on the command line (`--project`, `--stage`, `--agent`, `--state`):
// one that names nothing known is a usage error, exit 2 — the command line is wrong, not the
// configuration — with the known names, the config file they come from and a likely typo. A
// name in the configuration file that names nothing known is a configuration error (78).

/// `--project NAME`: a project of the configuration.
pub(crate) fn project_arg<'c>(ctx: &'c Ctx, name: &str) -> Result<&'c Project> {
    ctx.config
        .projects
        .get(name)
        .ok_or_else(|| exit::usage(format!("--project: {}", ctx.config.unknown_project(name))))
}

/// `--stage NAME`: a stage of the pipeline.
pub(crate) fn stage_arg(ctx: &Ctx, name: &str) -> Result<()> {
    if ctx.config.stages.iter().any(|s| s == name) {
        Ok(())
    } else {
        Err(exit::usage(format!(
            "--stage: {}",
            ctx.config.unknown_stage(name)
        )))
    }
}

/// `--agent NAME`: an agent profile (a kind's name is one without configuration).
pub(crate) fn agent_arg(ctx: &Ctx, name: &str) -> Result<()> {
    if ctx.config.is_agent(name) {
        return Ok(());
    }
    let known = ctx.config.agent_names();
    Err(exit::usage(format!(
        "--agent: unknown agent {name:?} (agents: {}, from {}; add [agents.{name}] to define one{})",
        known.join(", "),
        ctx.config.describe_file(),
        crate::suggest::hint(name, known.iter().copied())
    )))
}

/// A verdict class coloured by its kind: ok green, transient yellow, permanent or gate red; a
/// class the verdict does not know (`lease_expired`) like a state.
pub(crate) fn paint_class(paint: Paint, class: &str) -> String {
    let tone = match Class::from_name(class).map(Class::kind) {
        Some(Kind::Ok) => Tone::Good,
        Some(Kind::Transient | Kind::Hold) => Tone::Caution,
        Some(Kind::Permanent | Kind::Gate) => Tone::Bad,
        None => return paint.state(class),
    };
    paint.tone(tone, class)
}

/// `--state NAME`: a job state.
pub(crate) fn state_arg(name: &str) -> Result<()> {
    let names = || JobState::LISTED.iter().map(|s| s.as_str());
    if JobState::from_name(name).is_some() {
        Ok(())
    } else {
        Err(exit::usage(format!(
            "--state: unknown job state {name:?} (states: {}{})",
            names().collect::<Vec<_>>().join(", "),
            crate::suggest::hint(name, names())
        )))
    }
}
