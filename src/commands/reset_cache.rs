//! `orch reset-cache [--agent A]`: drop cached preflight verdicts and release auth gates, so the
//! next claim evaluates the agent afresh.

use anyhow::Result;
use serde_json::json;

use crate::cli::ResetCacheArgs;
use crate::exit;
use crate::output;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ResetCacheArgs) -> Result<u8> {
    if let Some(agent) = &args.agent {
        // A typo must not pass as "nothing to reset".
        ctx.config.agent(agent)?;
    }
    let reset = ctx.store()?.reset_preflight(args.agent.as_deref())?;
    if ctx.json() {
        output::json(&json!({
            "agent": args.agent,
            "verdicts_dropped": reset.verdicts,
            "gates_released": reset.gates,
        }))?;
    } else {
        let whose = match &args.agent {
            Some(agent) => format!("agent {agent}"),
            None => "every agent".to_string(),
        };
        output::line(format!(
            "{whose}: dropped {} cached verdict{}, released {} auth gate{}",
            reset.verdicts,
            plural(reset.verdicts),
            reset.gates,
            plural(reset.gates)
        ))?;
    }
    Ok(exit::OK)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
