//! Claiming: take the next eligible job for a worker, after rescuing the running jobs whose run
//! is over (its orch gone or stopped on this host, or its lease run out). The rescue policy is
//! `domain::rescue`'s; this module looks the processes up and ends what the policy names.

use anyhow::Result;

use crate::config::{self, Config, Project};
use crate::domain::budget;
use crate::domain::rescue::{self, Candidate, End, Rescue};
use crate::procfs::{self, Place};
use crate::store::{Claim, ClaimProject, ClaimRequest, Rescued, Store};
use crate::Ctx;

/// Take the next eligible job for `worker` to run with `agent`, unless the agent's circuit
/// breaker is open (an error carrying exit 12). Shared by `claim` and `tick`, on the caller's
/// connection (a second one per job cost a tenth of a tick); the preflight gate is the caller's.
pub fn claim(
    ctx: &Ctx,
    store: &mut dyn Store,
    worker: &str,
    agent: &str,
    only_project: Option<&str>,
) -> Result<Claim> {
    config::require_worker(worker)?;
    let config = &ctx.config;
    let chosen: Vec<&Project> = match only_project {
        Some(name) => vec![config.project(name)?],
        None => config.projects.values().collect(),
    };
    let projects: Vec<ClaimProject> = chosen
        .into_iter()
        .map(|p| ClaimProject {
            name: &p.name,
            max_running: p.max_running(),
            held: p.workdir_missing(),
            budget: p.budget(),
        })
        .collect();
    for project in &projects {
        if let Some(why) = &project.held {
            crate::diag!(
                "orch: project {} is held on this host: {why}; its jobs wait until it is fixed",
                project.name
            );
        }
    }
    let rescuer = Rescuer::new(config);
    let now = store.now()?;
    let triage = |candidates: &[Candidate]| rescuer.triage(candidates, now);
    let claim = store.claim(&ClaimRequest {
        worker,
        agent,
        projects,
        stages: config.stages.iter().map(String::as_str).collect(),
        lease_ms: rescuer.lease_ms,
        longest_backoff_ms: crate::app::finalize::retry_policy(config).longest_ms(),
        host: &rescuer.here.host,
        day_start: budget::day_start(now),
        triage: &triage,
        now,
    })?;
    report_rescued(&claim.rescued);
    if let Some(job) = claim.job.as_ref().filter(|_| claim.probe) {
        crate::diag!(
            "orch: job {} is the probe of agent {agent}'s half-open circuit breaker",
            job.job_id
        );
    }
    Ok(claim)
}

/// Take back the running jobs whose supervisor on this host is gone or stopped, or whose lease
/// ran out, ending their agents' process groups first: tick's recovery pass, before its gates.
pub fn rescue(ctx: &Ctx, store: &mut dyn Store) -> Result<Vec<Rescued>> {
    let rescuer = Rescuer::new(&ctx.config);
    let now = store.now()?;
    let rescued = store.rescue(&rescuer.here.host, now, &|candidates: &[Candidate]| {
        rescuer.triage(candidates, now)
    })?;
    report_rescued(&rescued);
    Ok(rescued)
}

fn report_rescued(rescued: &[Rescued]) {
    for r in rescued {
        crate::diag!("orch: job {} {}: {}", r.job_id, r.reason, r.state);
    }
}

/// Decides which running jobs to take back (`rescue::decide`, with this host's processes looked
/// up in /proc) and ends the process groups its verdicts name.
pub struct Rescuer {
    pub here: Place,
    pub lease_ms: i64,
}

impl Rescuer {
    pub fn new(config: &Config) -> Rescuer {
        Rescuer {
            here: Place::current(config.host()),
            lease_ms: config.millis(config::LEASE_SECONDS),
        }
    }

    /// The rescues to make, each job's processes ended already. Runs inside the claim's
    /// transaction, so the supervisor cannot renew its lease between the look and the kill.
    pub fn triage(&self, candidates: &[Candidate], now: i64) -> Vec<Rescue> {
        let rescues: Vec<Rescue> = candidates
            .iter()
            .filter_map(|c| rescue::decide(c, &self.here, now, self.lease_ms, &procfs::liveness))
            .collect();
        for r in &rescues {
            if let Some(end) = r.end {
                end_processes(end, r.job_id);
            }
        }
        rescues
    }
}

/// End the process group(s) a rescue names; failing to read /proc is said, not fatal.
fn end_processes(end: End, job_id: i64) {
    let leaders = match end {
        End::Group(leader) => Ok(vec![leader]),
        End::ChildGroups(supervisor) => procfs::child_group_leaders(supervisor),
    };
    let ended = leaders.and_then(|leaders| {
        leaders
            .into_iter()
            .map(procfs::end_group)
            .sum::<std::io::Result<usize>>()
    });
    match ended {
        Ok(0) => {}
        Ok(n) => crate::diag!(
            "orch: job {job_id}: ended {n} process{} left of its run",
            if n == 1 { "" } else { "es" }
        ),
        Err(err) => {
            crate::diag!("orch: warning: job {job_id}: could not end its run's processes: {err}")
        }
    }
}
