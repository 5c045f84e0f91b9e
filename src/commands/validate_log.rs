//! `orch validate-log`: judge a run's log alone and exit with the verdict's status.

use anyhow::{Context, Result};

use crate::agent;
use crate::cli::ValidateLogArgs;
use crate::domain::agent::AgentKind;
use crate::domain::verdict::{Ending, Verdict};
use crate::exit;
use crate::output::{self, Paint};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ValidateLogArgs) -> Result<u8> {
    // By Claude Code's rules, the one kind there is so far.
    let judge = agent::of_kind(AgentKind::Claude);
    let ending = Ending::new(args.exit_code, args.timed_out, args.stalled);
    let verdict = if args.path == "-" {
        judge
            .judge(&mut std::io::stdin().lock(), ending)
            .context("reading the log from standard input")?
    } else {
        let file = std::fs::File::open(&args.path).map_err(|err| {
            // A log that is not there is a wrong argument, not a verdict on a run.
            if err.kind() == std::io::ErrorKind::NotFound {
                exit::usage(format!("no such log: {}", args.path))
            } else {
                anyhow::Error::new(err).context(format!("opening the log {}", args.path))
            }
        })?;
        judge
            .judge(&mut &file, ending)
            .with_context(|| format!("reading the log {}", args.path))?
    };
    if ctx.json() {
        output::json(&verdict)?;
    } else {
        output::line(human(&verdict, ctx.paint()))?;
    }
    Ok(verdict.exit_status())
}

/// "ok  success result: Done.  ($0.0123, 2 turns)"; `orch logs` ends with it too.
pub fn human(verdict: &Verdict, paint: Paint) -> String {
    let class = super::paint_class(paint, verdict.class.name());
    let cost = verdict
        .usage
        .cost_usd
        .map_or_else(|| "cost ?".to_string(), |c| format!("${c:.4}"));
    let turns = match verdict.usage.turns {
        Some(1) => "1 turn".to_string(),
        Some(n) => format!("{n} turns"),
        None => "turns ?".to_string(),
    };
    format!(
        "{class}  {}  {}",
        output::printable(&verdict.reason),
        paint.dim(&format!("({cost}, {turns})"))
    )
}
