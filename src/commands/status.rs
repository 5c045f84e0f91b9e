use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::domain::breaker::State;
use crate::domain::budget::{self, dollars};
use crate::domain::states::{JobState, MessageKind, OutboxState};
use crate::exit;
use crate::notify;
use crate::output::{self, Paint, Table};
use crate::store::{BreakerRow, Job, OutboxSummary, StateCount, Store};
use crate::Ctx;

const LISTED: i64 = 20;

pub fn run(ctx: &Ctx, _args: &StatusArgs) -> Result<u8> {
    let store = ctx.store()?;
    let now = store.now()?;
    let counts = store.state_counts()?;
    // The jobs are listed only in the states the counts say hold some: the jobs table is not
    // read for an idle queue (on PostgreSQL a fresh connection pays for each table it plans over).
    let some = |state: JobState| counts.iter().any(|c| c.state == state && c.count > 0);
    let listed = |state: JobState| {
        (some(state).then(|| store.jobs_in_state(state, LISTED)))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let running = listed(JobState::Running)?;
    let approvals = listed(JobState::AwaitingApproval)?;
    let retries = (some(JobState::Queued).then(|| store.pending_retries(now, LISTED)))
        .transpose()?
        .unwrap_or_default();
    let outbox = store.outbox_summary(now, LISTED)?;
    let alerts = notify::alerts_switch(&ctx.config);
    let comments = notify::comments_switch(&ctx.config);
    // Due as `orch notify` sees it: a kind whose destination is off is not due.
    let due: i64 = outbox
        .due_by_kind
        .iter()
        .filter(|(kind, _)| match kind {
            MessageKind::Alert => alerts.on,
            MessageKind::Comment
            | MessageKind::PullRequest
            | MessageKind::IssueLabel
            | MessageKind::Merge => comments.on,
        })
        .map(|(_, n)| n)
        .sum();
    let breakers = store.breakers(now)?;
    let stages: Vec<&str> = ctx.config.stages.iter().map(String::as_str).collect();
    let any_stranded = counts.iter().any(|c| {
        c.count > 0 && JobState::LIVE.contains(&c.state) && !stages.contains(&c.stage.as_str())
    });
    let stranded = (any_stranded.then(|| store.stranded_jobs(&stages, LISTED)))
        .transpose()?
        .unwrap_or_default();
    let holds = store.project_holds()?;
    let agents = agent_holds(ctx, &*store, now)?;
    let budgets = budgets(ctx, &*store, &counts, now)?;
    let host = ctx.config.host();
    let worktrees = store.worktree_usage(&host)?;
    let worktree_count: i64 = worktrees.iter().map(|w| w.worktrees).sum();
    let worktree_bytes: i64 = worktrees.iter().map(|w| w.bytes).sum();
    if ctx.json() {
        let brief = |job: &Job| {
            json!({
                "job_id": job.job_id, "task": job.task, "project": job.project, "stage": job.stage,
                "attempt": job.attempt, "max_attempts": job.max_attempts, "worker": job.lease_owner,
                "lease_expires_at": job.lease_expires_at, "run_after": job.run_after,
                "last_class": job.last_class,
            })
        };
        let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
        for c in &counts {
            *totals.entry(c.state.as_str()).or_default() += c.count;
        }
        output::json(&json!({
            "totals": totals,
            "counts": counts,
            "running": running.iter().map(brief).collect::<Vec<_>>(),
            "retries": retries.iter().map(brief).collect::<Vec<_>>(),
            "awaiting_approval": approvals.iter().map(|job| json!({
                "job_id": job.job_id, "project": job.project, "task": job.task,
                "stage": job.stage, "since": job.updated_at,
                "waiting_ms": now.saturating_sub(job.updated_at),
            })).collect::<Vec<_>>(),
            "outbox": outbox,
            "outbox_due": due,
            "alerts": alerts,
            "breakers": breakers
                .iter()
                .filter(|b| !quiet(b, now))
                .map(|b| breaker_json(b, now))
                .collect::<Vec<_>>(),
            "stranded": stranded.iter().map(|job| json!({
                "job_id": job.job_id, "task": job.task, "project": job.project,
                "stage": job.stage, "state": job.state,
            })).collect::<Vec<_>>(),
            "holds": holds,
            "agent_holds": agents,
            "budgets": budgets,
            "worktrees": {
                "host": host, "count": worktree_count, "bytes": worktree_bytes,
                "projects": worktrees,
            },
        }))?;
        return Ok(exit::OK);
    }
    let paint = ctx.paint();
    let mut out = Vec::new();
    if counts.is_empty() {
        out.push("no jobs yet: queue one with `orch enqueue --project P --task KEY`".to_string());
    } else {
        let states = JobState::NAMES;
        let mut by_stage: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
        for c in &counts {
            *by_stage
                .entry(c.stage.as_str())
                .or_default()
                .entry(c.state.as_str())
                .or_default() += c.count;
        }
        let mut header = vec!["STAGE"];
        header.extend(states.iter().map(|s| s.to_ascii_uppercase().leak() as &str));
        let mut table = Table::new(&header);
        let mut stages: Vec<&str> = ctx.config.stages.iter().map(String::as_str).collect();
        stages.extend(
            by_stage
                .keys()
                .filter(|s| !ctx.config.stages.iter().any(|c| c == *s)),
        );
        for stage in stages {
            let Some(row) = by_stage.get(stage) else {
                continue;
            };
            let mut cells = vec![stage.to_string()];
            cells.extend(states.iter().map(|s| match row.get(s) {
                None => paint.dim("·"),
                Some(n) if *s == JobState::Failed.as_str() => paint.fail(&n.to_string()),
                Some(n) => n.to_string(),
            }));
            table.row(cells);
        }
        out.push(table.render(paint));
    }
    if !running.is_empty() {
        let mut table = Table::new(&[
            "RUNNING",
            "TASK",
            "STAGE",
            "ATTEMPT",
            "WORKER",
            "LEASE EXPIRES",
        ]);
        for job in &running {
            let mut cells = job_cells(job);
            cells.push(job.lease_owner.clone().unwrap_or_default());
            cells.push(
                job.lease_expires_at
                    .map(|t| output::when(t, now))
                    .unwrap_or_default(),
            );
            table.row(cells);
        }
        out.push(String::new());
        out.push(table.render(paint));
    }
    if !retries.is_empty() {
        let mut table = Table::new(&["RETRY", "TASK", "STAGE", "ATTEMPTS", "LAST", "DUE"]);
        for job in &retries {
            let mut cells = job_cells(job);
            cells.push(job.last_class.clone().unwrap_or_default());
            cells.push(output::when(job.run_after, now));
            table.row(cells);
        }
        out.push(String::new());
        out.push(table.render(paint));
    }
    if !approvals.is_empty() {
        let mut table = Table::new(&["APPROVAL", "TASK", "STAGE", "WAITING SINCE"]);
        for job in &approvals {
            table.row(vec![
                job.job_id.to_string(),
                format!("{} {}", job.project, job.task),
                job.stage.clone(),
                output::relative(job.updated_at, now),
            ]);
        }
        out.push(String::new());
        out.push(table.render(paint));
    }
    if !stranded.is_empty() {
        let mut table = Table::new(&["STRANDED", "TASK", "STAGE", "STATE"]);
        for job in &stranded {
            table.row(vec![
                job.job_id.to_string(),
                format!("{} {}", job.project, job.task),
                paint.fail(&job.stage),
                paint.state(job.state.as_str()),
            ]);
        }
        out.push(String::new());
        out.push(table.render(paint));
        out.push(format!(
            "these jobs are at a stage the pipeline ({}) no longer has, and are never claimed: \
             `orch cancel JOB`, or move one with `orch retry JOB --stage STAGE`",
            ctx.config.stages.join(", ")
        ));
    }
    if !holds.is_empty() {
        out.push(String::new());
        for hold in &holds {
            out.push(format!(
                "project {} {} on {} since {}: {}",
                hold.project,
                paint.fail("held"),
                hold.host,
                output::relative(hold.since, now),
                hold.reason
            ));
        }
        out.push("claims on that host skip the project until that is fixed".to_string());
    }
    out.extend(agent_hold_lines(&agents, now, paint));
    out.extend(budget_lines(&budgets, paint));
    if worktree_count > 0 {
        let each: Vec<String> = worktrees
            .iter()
            .map(|w| format!("{} {}", w.project, w.worktrees))
            .collect();
        out.push(String::new());
        out.push(format!(
            "worktrees on {host}: {worktree_count} ({}), {} on disk as last measured",
            each.join(", "),
            output::bytes(u64::try_from(worktree_bytes).unwrap_or(0))
        ));
    }
    out.extend(breaker_lines(&breakers, now, paint));
    out.extend(outbox_lines(&outbox, due, &alerts, now, paint));
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}

/// An agent held on a host (this one, or another of the fleet sharing the database): by its
/// auth gate (until its login changes), by a usage limit (until it resets) or by a command line
/// it refused (until the settings it was refused under change).
#[derive(Debug, Serialize)]
struct AgentHold {
    agent: String,
    host: String,
    /// "auth", "usage" or "invocation".
    hold: &'static str,
    since: i64,
    until: Option<i64>,
    run_id: Option<i64>,
    reason: String,
}

fn agent_holds(ctx: &Ctx, store: &dyn Store, now: i64) -> Result<Vec<AgentHold>> {
    let here = ctx.config.host();
    let mut hosts = store.held_hosts(now)?;
    if !hosts.contains(&here) {
        hosts.insert(0, here);
    }
    let mut holds = Vec::new();
    for (host, agent) in hosts
        .iter()
        .flat_map(|host| ctx.config.agent_names().into_iter().map(move |a| (host, a)))
    {
        let state = store.preflight_state(host, agent)?;
        if let Some(gate) = state.gate {
            holds.push(AgentHold {
                agent: agent.to_string(),
                host: host.clone(),
                hold: "auth",
                since: gate.created_at,
                until: None,
                run_id: gate.run_id,
                reason: gate.reason,
            });
        }
        // A hold whose settings changed since is lifted at the next preflight: not shown.
        if let Some(refused) = state.invocation {
            if refused.inputs == crate::app::preflight::invocation_inputs(&ctx.config, agent)? {
                holds.push(AgentHold {
                    agent: agent.to_string(),
                    host: host.clone(),
                    hold: "invocation",
                    since: refused.created_at,
                    until: None,
                    run_id: refused.run_id,
                    reason: refused.fix,
                });
            }
        }
        if let Some(usage) = state.usage.filter(|u| u.holds(now)) {
            holds.push(AgentHold {
                agent: agent.to_string(),
                host: host.clone(),
                hold: "usage",
                since: usage.created_at,
                until: Some(usage.until),
                run_id: usage.run_id,
                reason: usage.reason,
            });
        }
    }
    Ok(holds)
}

fn agent_hold_lines(holds: &[AgentHold], now: i64, paint: Paint) -> Vec<String> {
    let mut out = Vec::new();
    for hold in holds {
        if out.is_empty() {
            out.push(String::new());
        }
        let what = match (hold.hold, hold.until) {
            (_, Some(until)) => format!(
                "over its usage limit until {}: claims resume by themselves then",
                output::when(until, now)
            ),
            ("invocation", None) => format!(
                "refused its command line {}: {}",
                output::relative(hold.since, now),
                hold.reason
            ),
            (_, None) => format!(
                "auth gate since {}: log in as the agent's user (preflight --explain says how)",
                output::relative(hold.since, now)
            ),
        };
        out.push(format!(
            "agent {} {} on {}: {what}",
            hold.agent,
            paint.fail("held"),
            hold.host
        ));
    }
    out
}

/// A project's budgets and what it spent today, for the projects that have a budget or jobs
/// waiting for one.
#[derive(Debug, Serialize)]
struct BudgetState {
    project: String,
    per_task_usd: Option<f64>,
    per_day_usd: Option<f64>,
    today_usd: f64,
    today_extra_usd: f64,
    over_budget: i64,
}

fn budgets(
    ctx: &Ctx,
    store: &dyn Store,
    counts: &[StateCount],
    now: i64,
) -> Result<Vec<BudgetState>> {
    // Only the projects shown: with a budget, or with jobs waiting for one.
    let names: Vec<&str> = ctx
        .config
        .projects
        .iter()
        .filter(|(name, project)| {
            project.budget().is_set()
                || counts
                    .iter()
                    .any(|c| c.project == **name && c.state == JobState::OverBudget && c.count > 0)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let spends = store.project_spends(&names, budget::day_start(now))?;
    Ok(spends
        .into_iter()
        .filter_map(|spend| {
            let budget = ctx.config.projects.get(&spend.project)?.budget();
            (budget.is_set() || spend.over_budget > 0).then_some(BudgetState {
                per_task_usd: budget.per_task_usd,
                per_day_usd: budget.per_day_usd,
                today_usd: spend.today_usd,
                today_extra_usd: spend.today_extra_usd,
                over_budget: spend.over_budget,
                project: spend.project,
            })
        })
        .collect())
}

fn budget_lines(budgets: &[BudgetState], paint: Paint) -> Vec<String> {
    let mut out = Vec::new();
    for b in budgets {
        if out.is_empty() {
            out.push(String::new());
        }
        let mut parts = vec![match b.per_day_usd {
            Some(limit) => format!(
                "{} of {} today (UTC)",
                dollars(b.today_usd),
                dollars(limit + b.today_extra_usd)
            ),
            None => format!("{} today (UTC)", dollars(b.today_usd)),
        }];
        if let Some(limit) = b.per_task_usd {
            parts.push(format!("up to {} a task", dollars(limit)));
        }
        if b.over_budget > 0 {
            parts.push(paint.fail(&format!(
                "{} job{} waiting for budget (`orch jobs --state over_budget`; `orch retry JOB \
                 --raise-budget USD`)",
                b.over_budget,
                if b.over_budget == 1 { "" } else { "s" }
            )));
        }
        out.push(format!("budget {}: {}", b.project, parts.join("; ")));
    }
    out
}

/// A job's id, task, stage and attempts: the first columns of the running and retry tables.
fn job_cells(job: &Job) -> Vec<String> {
    vec![
        job.job_id.to_string(),
        format!("{} {}", job.project, job.task),
        job.stage.clone(),
        format!("{}/{}", job.attempt, job.max_attempts),
    ]
}

/// A closed breaker counting no failures: nothing to tell, in text or JSON.
fn quiet(row: &BreakerRow, now: i64) -> bool {
    row.breaker.effective(now) == State::Closed && row.breaker.consecutive_failures == 0
}

/// One agent's circuit breaker as claims see it now.
fn breaker_json(row: &BreakerRow, now: i64) -> serde_json::Value {
    let b = &row.breaker;
    json!({
        "agent": row.agent,
        "state": b.effective(now).as_str(),
        "consecutive_failures": b.consecutive_failures,
        "last_class": b.last_class,
        "opened_at": b.opened_at,
        "cooldown_seconds": b.cooldown_ms / 1000,
        "half_open_at": b.half_open_at().filter(|_| b.state != State::Closed),
        "probe_job_id": b.probe.as_ref().filter(|_| row.probe_live).map(|p| p.job_id),
        "last_run_id": row.last_run_id,
        "updated_at": row.updated_at,
    })
}

/// Breakers that are not closed, or are counting failures; nothing when all are quiet.
fn breaker_lines(breakers: &[BreakerRow], now: i64, paint: Paint) -> Vec<String> {
    let mut out = Vec::new();
    for row in breakers {
        let b = &row.breaker;
        let failures = format!(
            "{} transient failure{} in a row{}",
            b.consecutive_failures,
            if b.consecutive_failures == 1 { "" } else { "s" },
            b.last_class
                .as_deref()
                .map_or(String::new(), |c| format!(", last {c}"))
        );
        if quiet(row, now) {
            continue;
        }
        let line = match b.effective(now) {
            State::Closed => format!("closed ({failures})"),
            State::Open => format!(
                "{} since {} ({failures}); half-open {}",
                paint.fail("open"),
                b.opened_at
                    .map_or("?".into(), |at| output::relative(at, now)),
                b.half_open_at()
                    .map_or("?".into(), |at| output::relative(at, now))
            ),
            State::HalfOpen => match b.probe.as_ref().filter(|_| row.probe_live) {
                Some(probe) => format!(
                    "{}: probe job {} ({}) decides it",
                    paint.warn("half-open"),
                    probe.job_id,
                    probe.worker
                ),
                None => format!(
                    "{}: the next claim is its probe ({failures})",
                    paint.warn("half-open")
                ),
            },
        };
        out.push(format!("breaker {}: {line}", row.agent));
    }
    if out.iter().any(|l| !l.contains(": closed (")) {
        out.push("`orch reset-cache --breaker` closes a breaker".to_string());
    }
    if !out.is_empty() {
        out.insert(0, String::new());
    }
    out
}

/// Messages waiting in the outbox and dead ones, when there are any; and that alerts are off
/// when some wait for Telegram.
fn outbox_lines(
    outbox: &OutboxSummary,
    due: i64,
    alerts: &notify::Switch,
    now: i64,
    paint: Paint,
) -> Vec<String> {
    let mut out = Vec::new();
    if outbox.pending == 0 && outbox.dead == 0 {
        return out;
    }
    let mut table = Table::new(&[
        "OUTBOX",
        "MESSAGE",
        "STATE",
        "ATTEMPTS",
        "DUE",
        "LAST ERROR",
    ]);
    let listed = outbox.waiting.iter().chain(&outbox.recent_dead);
    for item in listed {
        table.row(vec![
            item.id.to_string(),
            notify::label(
                item.kind,
                item.alert_kind.as_deref(),
                item.project.as_deref(),
                item.task.as_deref(),
            ),
            paint.state(item.state.as_str()),
            item.attempts.to_string(),
            if item.state == OutboxState::Dead {
                String::new()
            } else {
                output::when(item.next_attempt_at, now)
            },
            item.last_error.clone().unwrap_or_default(),
        ]);
    }
    out.push(String::new());
    out.push(format!(
        "outbox: {} pending ({due} due), {} dead",
        outbox.pending, outbox.dead
    ));
    out.push(table.render(paint));
    let listed = (outbox.waiting.len() + outbox.recent_dead.len()) as i64;
    let more = outbox.pending + outbox.dead - listed;
    if more > 0 {
        out.push(format!(
            "… and {more} more (`orch status --json` for the counts, `orch notify` to deliver)"
        ));
    }
    let alerts_wait = outbox
        .waiting
        .iter()
        .any(|item| item.kind == MessageKind::Alert);
    if !alerts.on && alerts_wait {
        out.push(format!("alerts are off: {}", alerts.detail));
    }
    if outbox.dead > 0 {
        out.push("`orch notify --retry-dead` gives dead messages another round".to_string());
    }
    out
}
