//! `orch validate-log`: judge a run's log alone and exit with the verdict's status.

use anyhow::{Context, Result};

use crate::agent;
use crate::cli::ValidateLogArgs;
use crate::domain::agent::AgentKind;
use crate::domain::verdict::{Ending, Verdict};
use crate::exit;
use crate::output::{self, Paint};
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ValidateLogArgs) -> Result<u8> {
    let judge = agent::of_kind(kind_arg(ctx, &args.agent)?);
    let ending = Ending::new(args.exit_code, args.timed_out, args.stalled);
    let verdict = if args.path == "-" {
        // A time of day in the log (Codex's "try again at 9:12 AM") is read against now.
        judge
            .judge(&mut std::io::stdin().lock(), ending.at(Some(now_ms())))
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
        // … and in a file against when it was last written, which is when the run ended.
        let written = file
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok());
        judge
            .judge(&mut &file, ending.at(written.or(Some(now_ms()))))
            .with_context(|| format!("reading the log {}", args.path))?
    };
    if ctx.json() {
        output::json(&verdict)?;
    } else {
        output::line(human(&verdict, ctx.paint()))?;
    }
    Ok(verdict.exit_status())
}

/// `--agent`: a kind's name, or a profile's (its kind).
fn kind_arg(ctx: &Ctx, name: &str) -> Result<AgentKind> {
    if let Some(kind) = AgentKind::from_name(name) {
        return Ok(kind);
    }
    match ctx.config.agents.get(name) {
        Some(profile) => Ok(profile.kind),
        None => Err(exit::usage(format!(
            "--agent: {name:?} is neither a kind of agent ({}) nor a profile ([agents.NAME]){}",
            AgentKind::names(),
            crate::suggest::hint(name, AgentKind::ALL.iter().map(|k| k.name()))
        ))),
    }
}

/// "ok  success result: Done.  ($0.0123, 2 turns)"; `orch logs` ends with it too.
pub fn human(verdict: &Verdict, paint: Paint) -> String {
    let class = super::paint_class(paint, verdict.class.name());
    let cost = match (verdict.usage.cost_usd, verdict.usage.cost_estimated) {
        (Some(c), false) => format!("${c:.4}"),
        (Some(c), true) => format!("~${c:.4} estimated"),
        (None, _) => "cost ?".to_string(),
    };
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
