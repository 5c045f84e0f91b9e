//! `orch preflight`: can the agent take a job? One line (or `--explain`, or `--json`) and the exit
//! status 0, 10 (agent missing or broken), 11 (not authenticated) or 13 (over its usage limit).

use anyhow::Result;

use crate::app::preflight::{self, Check, Status, Verdict};
use crate::cli::PreflightArgs;
use crate::config;
use crate::output::{self, Paint};
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &PreflightArgs) -> Result<u8> {
    crate::commands::agent_arg(ctx, &args.agent)?;
    let mut store = ctx.store()?;
    let verdict = preflight::evaluate(&ctx.config, &mut *store, &args.agent, !args.no_cache)?;
    if ctx.json() {
        output::json(&verdict)?;
    } else if args.explain {
        let ttl = ctx.config.count(config::PREFLIGHT_CACHE_TTL);
        let mut text = explain(&verdict, ctx.paint(), ttl, now_ms());
        text.push_str(&projects(ctx, ctx.paint()));
        output::line(text)?;
    } else {
        output::line(one_line(&verdict, ctx.paint()))?;
    }
    Ok(verdict.exit_code)
}

/// `ok claude: version 2.1.197; logged in, … (cached, 12 s old)` or `fail claude: <why>`.
fn one_line(verdict: &Verdict, paint: Paint) -> String {
    let (mark, said): (String, Vec<String>) = if verdict.ok {
        let said = verdict
            .checks
            .iter()
            .filter(|c| c.status != Status::Skip)
            .map(|c| match c.status {
                Status::Warn => format!("warning: {}", c.reason),
                _ => c.reason.clone(),
            })
            .collect();
        (paint.pass("ok"), said)
    } else {
        let said = verdict
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.reason.clone())
            .collect();
        (paint.fail("fail"), said)
    };
    let cached = if verdict.cached {
        format!(" (cached, {} s old)", verdict.age_seconds)
    } else {
        String::new()
    };
    format!("{mark} {}: {}{cached}", verdict.agent, said.join("; "))
}

/// Each check on its own line with its evidence and fix, then where the verdict came from.
fn explain(verdict: &Verdict, paint: Paint, ttl_seconds: u64, now: i64) -> String {
    let outcome = if verdict.ok {
        paint.pass("ok")
    } else {
        paint.fail(&format!("fail (exit {})", verdict.exit_code))
    };
    let mut lines = vec![format!("preflight for agent {}: {outcome}", verdict.agent)];
    let width = verdict
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let columns = 2 + 4 + 2 + width + 2;
    let indent = " ".repeat(columns);
    let wrap_at = output::wrap_width();
    let mut push = |line: String| lines.push(output::wrap(&line, columns, wrap_at));
    for check in &verdict.checks {
        let mark = match check.status {
            Status::Pass => paint.pass("pass"),
            Status::Warn => paint.warn("warn"),
            Status::Fail => paint.fail("fail"),
            Status::Skip => paint.dim("skip"),
        };
        push(format!("  {mark}  {:width$}  {}", check.name, check.reason));
        for line in evidence(check, now) {
            push(format!("{indent}{}", paint.dim(&line)));
        }
        if let Some(fix) = &check.detail.fix {
            push(format!("{indent}{} {fix}", paint.bold("fix:")));
        }
    }
    let held = verdict
        .checks
        .iter()
        .any(|c| c.detail.run_id.is_some() || c.detail.since.is_some());
    let usage_until = verdict.checks.iter().find_map(|c| c.detail.until);
    lines.push(if let Some(until) = usage_until {
        format!(
            "the usage hold stands: claims for this agent wait until {}, then resume by themselves",
            output::when(until, now)
        )
    } else if held {
        "the auth gate is held: runs stay off this agent until the credentials file changes or \
         `orch reset-cache` releases it"
            .to_string()
    } else if verdict.cached {
        format!(
            "from the cache: evaluated {} s ago, kept up to {ttl_seconds} s (--no-cache to check afresh)",
            verdict.age_seconds
        )
    } else {
        format!("evaluated now; cached for up to {ttl_seconds} s")
    });
    lines.join("\n")
}

/// Each project's workdir, checked: a job finds out otherwise.
fn projects(ctx: &Ctx, paint: Paint) -> String {
    let mut out = String::new();
    if ctx.config.projects.is_empty() {
        return out;
    }
    out.push_str("\nprojects:");
    for project in ctx.config.projects.values() {
        let line = match project.workdir_problem() {
            None => format!(
                "  {}  {}  workdir {}",
                paint.pass("pass"),
                project.name,
                project.workdir.display()
            ),
            Some(problem) => format!("  {}  {}  {problem}", paint.fail("fail"), project.name),
        };
        out.push('\n');
        out.push_str(&output::wrap(
            &line,
            8 + project.name.len(),
            output::wrap_width(),
        ));
    }
    out
}

/// The evidence a check recorded, as lines for people.
fn evidence(check: &Check, now: i64) -> Vec<String> {
    let detail = &check.detail;
    let mut lines = Vec::new();
    if let Some(bin) = &detail.bin {
        lines.push(match &detail.bin_from {
            Some(from) => format!("binary {bin} (named by {from})"),
            None => format!("binary {bin}"),
        });
    }
    if let Some(min) = &detail.min_version {
        lines.push(format!("min_version {min}"));
    }
    if let Some(var) = &detail.env_var {
        let from = detail
            .env_from
            .as_deref()
            .unwrap_or("the agent's environment");
        lines.push(format!(
            "{var} is set (in {from}); the credentials file is not consulted"
        ));
    }
    if let Some(path) = &detail.path {
        lines.push(match &detail.path_from {
            Some(from) => format!("credentials {path} (chosen by {from})"),
            None => format!("credentials {path}"),
        });
    }
    if let Some(expires_at) = detail.expires_at {
        let verb = if expires_at <= now {
            "expired"
        } else {
            "expires"
        };
        lines.push(format!("{verb} {}", output::when(expires_at, now)));
    }
    if let Some(refreshable) = detail.refresh_token {
        let has = if refreshable { "present" } else { "absent" };
        lines.push(format!("refresh token {has}"));
    }
    if let Some(run) = detail.run_id {
        let said = detail.run_reason.as_deref().unwrap_or("");
        lines.push(format!("run {run} said: {said}"));
    }
    match (detail.since, detail.until) {
        (Some(since), Some(until)) => {
            lines.push(format!("held since {}", output::when(since, now)));
            lines.push(format!(
                "the limit resets {} ({})",
                output::when(until, now),
                output::stamp(until)
            ));
        }
        (Some(since), None) => lines.push(format!("gate held since {}", output::when(since, now))),
        _ => {}
    }
    lines
}
