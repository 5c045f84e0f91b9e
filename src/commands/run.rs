use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::exit;
use crate::output;
use crate::runner::{self, RunOutcome, RunRequest};
use crate::Ctx;

/// Exit 0 when the run was recorded, whatever the agent did: its outcome is finalize's to judge.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<u8> {
    let mut store = ctx.store()?;
    let live_status =
        !ctx.json() && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let outcome = runner::run_job(
        ctx,
        &mut store,
        &RunRequest {
            job_id: args.job,
            worker: &args.worker,
            agent: &args.agent,
            live_status,
        },
    )?;
    print(ctx, &outcome)?;
    Ok(exit::OK)
}

fn print(ctx: &Ctx, outcome: &RunOutcome) -> Result<()> {
    if ctx.json() {
        return output::json(outcome);
    }
    let paint = ctx.paint();
    let ended = match (&outcome.launch_error, outcome.exit_code, outcome.signal) {
        (Some(_), _, _) => paint.fail("not started"),
        (None, Some(0), _) => paint.pass("exit 0"),
        (None, Some(code), _) => paint.warn(&format!("exit {code}")),
        (None, None, Some(signal)) => paint.warn(&format!("signal {signal}")),
        (None, None, None) => "ended".to_string(),
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
    output::line(format!(
        "run {} of job {}: {ended}{notes} after {:.1} s, log {}",
        outcome.run_id,
        outcome.job_id,
        outcome.duration_ms as f64 / 1000.0,
        outcome.log_path
    ))
}
