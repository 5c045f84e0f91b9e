//! One tick for cron: deliver the outbox, finalize runs a dead orch left behind, push the task
//! branches whose push failed or never happened, prune and take in issues when it is the fleet's
//! turn, then preflight → claim → run → finalize, up to
//! `max_jobs` times. `orch tick` prints the steps;
//! `orch demo` drives the same function with its own printer.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::app::branches::{self, BranchReport};
use crate::app::claim;
use crate::app::finalize::{self, Outcome};
use crate::app::preflight::Verdict;
use crate::app::run::{self as run, RunOutcome, RunRequest};
use crate::domain::rescue::Whereabouts;
use crate::notify::{self, Report};
use crate::procfs::{self, Place};
use crate::store::{Job, Rescued, Store};
use crate::{exit, fsx, Ctx};

pub struct Request<'a> {
    pub worker: &'a str,
    /// Only the jobs this agent profile runs; None for every agent the pipeline uses.
    pub agent: Option<&'a str>,
    pub project: Option<&'a str>,
    pub max_jobs: u64,
    /// Draw the run's live status line (a terminal, no `--json`).
    pub live_status: bool,
}

/// What a tick did, step by step, as it happens.
pub enum Event<'a> {
    Delivered(&'a Report),
    /// A running job taken back: its orch on this host is gone or stopped, or its lease ran out.
    Rescued(&'a Rescued),
    Recovered(&'a Outcome),
    /// A task's branch pushed again (its earlier push failed, or orch died before it).
    Pushed(&'a BranchReport),
    /// The fleet's periodic prune, when it was this tick's turn (`app::prune::when_due`).
    Pruned(&'a crate::app::prune::Report),
    /// A job's CI gate settled: due, its gated stage again, or failed (`app::ci`).
    Gated(&'a crate::app::ci::Report),
    /// A project's issues taken in, when it was this tick's turn (`app::sync::when_due`).
    Synced(&'a crate::app::sync::Report),
    /// An agent's preflight passed: its stages' jobs may be claimed.
    Preflight(&'a Verdict),
    /// An agent's preflight failed: its stages' jobs wait, the others' go on.
    AgentHeld {
        agent: &'a str,
        code: u8,
        why: String,
    },
    Claimed(&'a Job),
    Ran(&'a RunOutcome),
    Finalized(&'a Outcome),
    /// Why the tick stopped, with its exit status.
    Stopped(u8, &'a str),
}

/// The per-worker lock: held for the tick's life, released when the file closes.
pub struct Lock {
    _file: std::fs::File,
    pub path: PathBuf,
}

/// Take the worker's tick lock without waiting; None when another tick holds it.
pub fn lock(ctx: &Ctx, worker: &str) -> Result<Option<Lock>> {
    let dir = fsx::ensure_private_dir(&ctx.config.log_dir(), "log directory")?;
    let safe: String = worker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("tick-{safe}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening the tick lock {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !taken {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    Ok(Some(Lock { _file: file, path }))
}

/// End what is left of an ended run's process group on this host (its agent ended, but a child
/// it left may still work in the checkout), before the run is finalized.
fn end_leftovers(store: &dyn Store, run_id: i64, here: &Place) {
    let Ok(Some(run)) = store.run(run_id) else {
        return;
    };
    let here_too = run
        .place()
        .is_some_and(|place| place.whereabouts(here) == Whereabouts::Here);
    if let (true, Some(agent)) = (here_too, run.agent_process()) {
        match procfs::end_group(agent) {
            Ok(0) => {}
            Ok(n) => {
                crate::diag!("orch: run {run_id}: ended {n} process(es) its agent left behind")
            }
            Err(err) => {
                crate::diag!("orch: warning: run {run_id}: could not end its processes: {err}")
            }
        }
    }
}

/// Run one tick. Returns the exit status of the step that stopped it: 0 when it did a job (and
/// the job advanced), 3 nothing to do, 10/11/13 preflight, 12 breaker, 20/21/22 from finalize. A tick
/// that did jobs and then found nothing more to claim ends with its last job's status. The
/// `Stopped` event always carries the status returned.
///
/// Every agent the pipeline uses (or only `request.agent`) is preflighted before each claim; an
/// agent that fails stops only its own stages' jobs, and the claim takes the best job among the
/// stages of the agents that pass. With nothing to claim, a failed preflight's status wins over
/// an open breaker's (12), which wins over 3.
pub fn tick(ctx: &Ctx, request: &Request, on: &mut dyn FnMut(Event)) -> Result<u8> {
    let mut store = ctx.store()?;
    let deliver = |store: &mut dyn Store| {
        notify::deliver(&ctx.config, store, &notify::Options { retry_dead: false })
    };
    on(Event::Delivered(&deliver(&mut *store)?));
    // Before any gate: a dead orch's processes are ended, and its job requeued, even while the
    // agent or its breaker holds claims.
    for rescued in crate::app::claim::rescue(ctx, &mut *store)? {
        on(Event::Rescued(&rescued));
    }
    let here = Place::current(ctx.config.host());
    for left in store.unfinalized_runs(Some(request.worker), 20)? {
        end_leftovers(&*store, left.run_id, &here);
        match finalize::finalize_job(
            &ctx.config,
            &mut *store,
            left.job_id,
            Some(left.run_id),
            request.worker,
        ) {
            Ok(outcome) => on(Event::Recovered(&outcome)),
            Err(err) => crate::diag!(
                "orch: run {} of job {} left unfinalized: {err:#}",
                left.run_id,
                left.job_id
            ),
        }
    }
    // Like the recovery: what a dead orch or a failed push left, before the gates.
    match branches::push_pending(&ctx.config, &mut *store) {
        Ok(reports) => {
            for report in &reports {
                on(Event::Pushed(report));
            }
            // A branch on its remote at last: its pull request need not wait for the next tick.
            if reports.iter().any(|r| r.pull_request_queued) {
                on(Event::Delivered(&deliver(&mut *store)?));
            }
        }
        Err(err) => crate::diag!("orch: warning: pushing the branches waiting failed: {err:#}"),
    }
    // The CI gates, after the pushes that CI reports on.
    match crate::app::ci::check_gates(&ctx.config, &mut *store) {
        Ok(reports) => {
            for report in &reports {
                on(Event::Gated(report));
            }
        }
        Err(err) => crate::diag!("orch: warning: CI gates: {err:#}"),
    }
    if let Err(err) = crate::app::ci::alert_waiting_approvals(&ctx.config, &mut *store) {
        crate::diag!("orch: warning: approval alerts: {err:#}");
    }
    // Housekeeping is not the tick's job: a failure is reported and the tick goes on.
    match crate::app::prune::when_due(
        &ctx.config,
        &mut *store,
        request.worker,
        crate::app::prune::TICK_BUDGET,
    ) {
        Ok(Some(report)) if report.removed_anything() || !report.complete => {
            on(Event::Pruned(&report))
        }
        Ok(_) => {}
        Err(err) => crate::diag!("orch: warning: prune: {err:#}"),
    }
    // Intake before the claim, so an issue labelled a moment ago can be worked on in this tick.
    match crate::app::sync::when_due(&ctx.config, &mut *store, request.worker) {
        Ok(reports) => {
            for report in &reports {
                if let Some(failure) = &report.error {
                    crate::diag!("orch: warning: sync: {}", failure.message());
                }
                on(Event::Synced(report));
            }
        }
        Err(err) => crate::diag!("orch: warning: sync: {err:#}"),
    }
    let mut last = exit::NOTHING_TO_DO;
    let agents = claim::agents_in_scope(&ctx.config, request.project, request.agent)?;
    if agents.is_empty() {
        let why = format!(
            "agent {} runs no stage of the pipeline here ([stages.NAME] agent, [projects.NAME] \
             agent)",
            request.agent.unwrap_or_default()
        );
        on(Event::Stopped(exit::NOTHING_TO_DO, &why));
        return Ok(exit::NOTHING_TO_DO);
    }
    for done in 0..request.max_jobs.max(1) {
        let gated = claim::gate(&ctx.config, &mut *store, &agents)?;
        for (_, verdict) in &gated.passing {
            on(Event::Preflight(verdict));
        }
        for (agent, err) in &gated.failing {
            on(Event::AgentHeld {
                agent,
                code: exit::code_of(err),
                why: format!("{err:#}"),
            });
        }
        let held = gated.stop();
        if gated.passing.is_empty() {
            let (code, why) = match (done, held) {
                (0, Some(held)) => held,
                (_, held) => {
                    let why = held.map_or_else(String::new, |(_, why)| format!(": {why}"));
                    (last, format!("nothing more can be claimed after {done} jobs{why}; the last job's status"))
                }
            };
            on(Event::Stopped(code, &why));
            return Ok(code);
        }
        let passing: Vec<&str> = gated.passing.iter().map(|(agent, _)| *agent).collect();
        let (job, agent) =
            match claim::claim(ctx, &mut *store, request.worker, &passing, request.project) {
                Ok(crate::store::Claim {
                    job: Some(job),
                    agent: Some(agent),
                    ..
                }) => (job, agent),
                Ok(claimed) => {
                    // Nothing (more) to claim: the status is the last finalize's, or, when none
                    // ran, what keeps the other agents' jobs waiting (a failed preflight, an open
                    // breaker), else 3.
                    if done > 0 {
                        let why =
                            format!("no more eligible jobs after {done}; the last job's status");
                        on(Event::Stopped(last, &why));
                        return Ok(last);
                    }
                    let refused = claimed.refused.iter().map(|(_, why)| why.clone());
                    let (code, why) = match (held, claimed.refused.is_empty()) {
                        (Some((code, why)), _) => (
                            code,
                            format!("no eligible job for {}; {why}", passing.join(", ")),
                        ),
                        (None, false) => {
                            (exit::BREAKER_OPEN, refused.collect::<Vec<_>>().join("; "))
                        }
                        (None, true) => (exit::NOTHING_TO_DO, "no eligible job".to_string()),
                    };
                    on(Event::Stopped(code, &why));
                    return Ok(code);
                }
                Err(err) => {
                    let code = exit::code_of(&err);
                    if code == exit::UNEXPECTED {
                        return Err(err);
                    }
                    on(Event::Stopped(code, &format!("{err:#}")));
                    return Ok(code);
                }
            };
        on(Event::Claimed(&job));
        let run = run::run_job(
            ctx,
            &mut *store,
            &RunRequest {
                job_id: job.job_id,
                worker: request.worker,
                agent: Some(&agent),
                live_status: request.live_status,
            },
        )?;
        on(Event::Ran(&run));
        if run.interrupted && !run.lease_lost {
            on(Event::Stopped(
                exit::UNEXPECTED,
                "the run was interrupted; the job is left for finalize or the lease rescue",
            ));
            return Ok(exit::UNEXPECTED);
        }
        let outcome = finalize::finalize_job(
            &ctx.config,
            &mut *store,
            job.job_id,
            Some(run.run_id),
            request.worker,
        )?;
        on(Event::Finalized(&outcome));
        last = outcome.decision.exit_status();
    }
    on(Event::Stopped(last, "max jobs reached"));
    Ok(last)
}
