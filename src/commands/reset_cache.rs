//! `orch reset-cache [--agent A] [--breaker]`: drop cached preflight verdicts and release auth
//! gates, usage and invocation holds, so the next claim evaluates the agent afresh; with `--breaker`, close
//! circuit breakers.

use anyhow::Result;
use serde_json::json;

use crate::cli::ResetCacheArgs;
use crate::exit;
use crate::output;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &ResetCacheArgs) -> Result<u8> {
    if let Some(agent) = &args.agent {
        // A typo must not pass as "nothing to reset".
        crate::commands::agent_arg(ctx, agent)?;
    }
    let mut store = ctx.store()?;
    // The verdicts and gates of this host: another host's describe its own binary and login.
    let reset = store.reset_preflight(&ctx.config.host(), args.agent.as_deref())?;
    let breakers = match args.breaker {
        true => Some(store.close_breakers(args.agent.as_deref())?),
        false => None,
    };
    if ctx.json() {
        output::json(&json!({
            "agent": args.agent,
            "verdicts_dropped": reset.verdicts,
            "gates_released": reset.gates,
            "usage_holds_lifted": reset.usage_holds,
            "invocation_holds": reset.invocation_holds,
            "breakers_closed": breakers,
        }))?;
    } else {
        let whose = match &args.agent {
            Some(agent) => format!("agent {agent}"),
            None => "every agent".to_string(),
        };
        let closed = breakers.map_or(String::new(), |n| {
            format!(", closed {n} open circuit breaker{}", plural(n))
        });
        let holds = [
            (reset.usage_holds, "usage"),
            (reset.invocation_holds, "invocation"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(", lifted {n} {what} hold{}", plural(*n)))
        .collect::<String>();
        output::line(format!(
            "{whose}: dropped {} cached verdict{}, released {} auth gate{}{holds}{closed}",
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
