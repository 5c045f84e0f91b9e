use std::io::IsTerminal;

use anyhow::Result;

use crate::app::run::{self as run, RunOutcome, RunRequest};
use crate::cli::RunArgs;
use crate::exit;
use crate::output::{self, Paint};
use crate::Ctx;

/// Exit 0 when the run was recorded, whatever the agent did: its outcome is finalize's to judge.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<u8> {
    if let Some(agent) = &args.agent {
        crate::commands::agent_arg(ctx, agent)?;
    }
    let mut store = ctx.store()?;
    if args.dry_run {
        let plan = run::dry_run(&ctx.config, &*store, args.job, args.agent.as_deref())?;
        return print_dry_run(ctx, &plan);
    }
    let worker = args.worker.as_deref().unwrap_or_default();
    let live_status =
        !ctx.json() && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let outcome = run::run_job(
        ctx,
        &mut *store,
        &RunRequest {
            job_id: args.job,
            worker,
            agent: args.agent.as_deref(),
            live_status,
        },
    )?;
    print(ctx, &outcome)?;
    Ok(exit::OK)
}

/// `--dry-run`: the command line as the agent would get it, one argument a line so a prompt with
/// newlines reads as it is.
fn print_dry_run(ctx: &Ctx, plan: &run::DryRun) -> Result<u8> {
    if ctx.json() {
        output::json(plan)?;
        return Ok(exit::OK);
    }
    let paint = ctx.paint();
    let mut out = vec![
        format!(
            "job {} would run agent {}: {}",
            plan.job_id,
            plan.agent,
            paint.bold(&plan.program)
        ),
        format!("in {}", plan.cwd.display()),
        String::new(),
        paint.bold("argv (one element each):"),
    ];
    for (at, arg) in plan.argv.iter().enumerate() {
        let arg = arg.replace('\n', "\n     ");
        out.push(format!("[{at}]  {arg}"));
    }
    out.push(String::new());
    out.push(paint.bold("environment (names only):"));
    out.push(plan.env.join(" "));
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}

fn print(ctx: &Ctx, outcome: &RunOutcome) -> Result<()> {
    if ctx.json() {
        return output::json(outcome);
    }
    output::line(summary(ctx.paint(), outcome))
}

/// One line for a run, the same in `orch run`, `orch tick` and `orch demo`: "run 7 of job 3: exit
/// 0 after 4.0 s, log PATH", or why the agent never started.
pub(crate) fn summary(paint: Paint, outcome: &RunOutcome) -> String {
    let head = format!("run {} of job {}", outcome.run_id, outcome.job_id);
    if let Some(error) = &outcome.launch_error {
        return format!("{head}: {}: {error}", paint.fail("the agent never started"));
    }
    let ended = match (outcome.exit_code, outcome.signal) {
        (Some(0), _) => paint.pass("exit 0"),
        (Some(code), _) => paint.warn(&format!("exit {code}")),
        (None, Some(signal)) => paint.warn(&format!("signal {signal}")),
        (None, None) => "ended".to_string(),
    };
    let mut notes = Vec::new();
    if outcome.timed_out {
        notes.push("timed out");
    }
    if outcome.interrupted {
        notes.push("interrupted");
    }
    if outcome.log_truncated {
        notes.push("log truncated");
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    format!(
        "{head}: {ended}{notes} after {}, log {}",
        output::duration_i(outcome.duration_ms),
        outcome.log_path
    )
}
