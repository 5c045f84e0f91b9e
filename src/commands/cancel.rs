use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::cli::JobArg;
use crate::config;
use crate::domain::rescue::Whereabouts;
use crate::domain::states::JobState;
use crate::exit;
use crate::output;
use crate::procfs::{self, Place};
use crate::store::Run;
use crate::Ctx;

/// Cancel the job; a running job's run is closed and, when its agent runs on this host, the
/// agent's whole process group is stopped (SIGTERM, then SIGKILL after kill_grace_seconds). An
/// agent on another host is stopped by its own orch at its next lease heartbeat.
pub fn run(ctx: &Ctx, args: &JobArg) -> Result<u8> {
    let mut store = ctx.store()?;
    let now = store.now()?;
    let cancelled = store.cancel(args.job, &ctx.operator(), now)?;
    let was = cancelled.was;
    let stopped = cancelled.run.as_ref().map(|run| stop_agent(ctx, run));
    if ctx.json() {
        output::json(&json!({
            "job_id": args.job,
            "state": JobState::Cancelled,
            "was": was,
            "run_id": cancelled.run.as_ref().map(|r| r.run_id),
            "agent": stopped.as_ref().map(Stopped::name),
        }))?;
    } else if was == JobState::Cancelled {
        output::line(format!("job {} was already cancelled", args.job))?;
    } else {
        let run = match (&cancelled.run, &stopped) {
            (Some(run), Some(stopped)) => {
                format!("; run {} closed, {}", run.run_id, stopped.text())
            }
            _ => String::new(),
        };
        output::line(format!("job {} cancelled (was {was}){run}", args.job))?;
    }
    Ok(exit::OK)
}

/// What became of a cancelled run's agent.
enum Stopped {
    /// Its group on this host was stopped: how many processes were asked to.
    Here(usize),
    /// On another host (or not recorded): its orch stops it at its next heartbeat.
    Elsewhere(String),
}

impl Stopped {
    fn name(&self) -> &'static str {
        match self {
            Stopped::Here(_) => "stopped",
            Stopped::Elsewhere(_) => "left_to_its_orch",
        }
    }

    fn text(&self) -> String {
        match self {
            Stopped::Here(0) => "its agent had ended".to_string(),
            Stopped::Here(n) => format!(
                "its agent stopped ({n} process{})",
                if *n == 1 { "" } else { "es" }
            ),
            Stopped::Elsewhere(host) => {
                format!("its agent on {host} is stopped by its orch at the next lease heartbeat")
            }
        }
    }
}

fn stop_agent(ctx: &Ctx, run: &Run) -> Stopped {
    let here = Place::current(ctx.config.host());
    let place = run.place();
    let local = place
        .as_ref()
        .is_some_and(|p| p.whereabouts(&here) == Whereabouts::Here);
    match (local, run.agent_process()) {
        (true, Some(agent)) => {
            let grace = Duration::from_secs(ctx.config.count(config::KILL_GRACE_SECONDS));
            match procfs::stop_group(agent, grace) {
                Ok(n) => Stopped::Here(n),
                Err(err) => {
                    crate::diag!(
                        "orch: warning: could not stop run {}'s agent: {err}",
                        run.run_id
                    );
                    Stopped::Elsewhere(here.host)
                }
            }
        }
        _ => Stopped::Elsewhere(place.map_or_else(|| "its host".to_string(), |p| p.host)),
    }
}
