//! One file per subcommand: read the arguments, call the store or the domain, print.

mod cancel;
pub(crate) mod claim;
mod completions;
mod config;
mod demo;
mod enqueue;
mod finalize;
mod logs;
mod man;
mod metrics;
mod notify;
mod preflight;
mod reset_cache;
mod retry;
mod run;
mod show;
pub mod status;
mod tick;
mod validate_log;

use anyhow::Result;

use crate::cli::Command;
use crate::Ctx;

pub fn dispatch(ctx: &Ctx, command: Command) -> Result<u8> {
    match command {
        Command::Enqueue(args) => enqueue::run(ctx, &args),
        Command::Claim(args) => claim::run(ctx, &args),
        Command::Status(args) => status::run(ctx, &args),
        Command::Show(args) => show::run(ctx, &args),
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
        Command::Completions(args) => completions::run(ctx, &args),
        Command::Man(args) => man::run(ctx, &args),
    }
}
