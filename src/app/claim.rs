//! Claiming: take the next eligible job for a worker, after rescuing the running jobs whose run
//! is over (its orch gone or stopped on this host, or its lease run out). The rescue policy is
//! `domain::rescue`'s; this module looks the processes up and ends what the policy names.

use anyhow::Result;

use crate::app::preflight;
use crate::config::{self, Config, Project};
use crate::domain::budget;
use crate::domain::rescue::{self, Candidate, End, Rescue};
use crate::procfs::{self, Place};
use crate::store::{Claim, ClaimProject, ClaimRequest, ClaimStage, Rescued, Store};
use crate::{exit, Ctx};

/// The agent profiles that run the pipeline's stages of the projects in scope
/// (`Config::stage_agent`), each once, in the pipeline's order; only `only_agent` when given
/// (which runs no stage when the pipeline never names it).
pub fn agents_in_scope<'a>(
    config: &'a Config,
    only_project: Option<&str>,
    only_agent: Option<&'a str>,
) -> Result<Vec<&'a str>> {
    let projects: Vec<&Project> = match only_project {
        Some(name) => vec![config.project(name)?],
        None => config.projects.values().collect(),
    };
    let mut agents: Vec<&str> = Vec::new();
    for stage in &config.stages {
        for project in &projects {
            let agent = config.stage_agent(&project.name, stage);
            if !agents.contains(&agent) && only_agent.is_none_or(|only| only == agent) {
                agents.push(agent);
            }
        }
    }
    Ok(agents)
}

/// The agents of `agents` that may take a job on this host now (their preflight, cached, passes),
/// and the ones that may not, with the error each preflight gave (exit 10, 11 or 13).
pub struct Gated<'a> {
    pub passing: Vec<(&'a str, preflight::Verdict)>,
    pub failing: Vec<(&'a str, anyhow::Error)>,
}

impl Gated<'_> {
    /// Why nothing can be claimed for the failing agents, and the exit status that says it: the
    /// first failing agent's.
    pub fn stop(&self) -> Option<(u8, String)> {
        let (_, first) = self.failing.first()?;
        let why: Vec<String> = self.failing.iter().map(|(_, e)| format!("{e:#}")).collect();
        Some((exit::code_of(first), why.join("; ")))
    }
}

/// Each agent's preflight gate (`preflight::require`): an agent that is missing, logged out,
/// over its usage limit or refusing its command line stops only its own stages' jobs.
pub fn gate<'a>(config: &Config, store: &mut dyn Store, agents: &[&'a str]) -> Result<Gated<'a>> {
    let mut gated = Gated {
        passing: Vec::new(),
        failing: Vec::new(),
    };
    for agent in agents {
        match preflight::require(config, store, agent) {
            Ok(verdict) => gated.passing.push((agent, verdict)),
            Err(err) if is_preflight_failure(&err) => gated.failing.push((agent, err)),
            Err(err) => return Err(err),
        }
    }
    Ok(gated)
}

fn is_preflight_failure(err: &anyhow::Error) -> bool {
    matches!(
        exit::code_of(err),
        exit::PREFLIGHT_AGENT | exit::PREFLIGHT_AUTH | exit::USAGE_LIMIT
    )
}

/// Take the next eligible job for `worker` among the jobs `agents` run (their stages, by
/// `Config::stage_agent`), unless every one's circuit breaker is open (an error carrying exit
/// 12; an open breaker of some only keeps their stages out). Shared by `claim` and `tick`, on the
/// caller's connection (a second one per job cost a tenth of a tick); the preflight gate is the
/// caller's.
pub fn claim(
    ctx: &Ctx,
    store: &mut dyn Store,
    worker: &str,
    agents: &[&str],
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
            held: crate::app::branches::not_ready(p),
            budget: p.budget(),
            stages: (config.stages.iter())
                .map(|stage| ClaimStage {
                    stage,
                    agent: config.stage_agent(&p.name, stage),
                })
                .filter(|s| agents.contains(&s.agent))
                .collect(),
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
        projects,
        lease_ms: rescuer.lease_ms,
        longest_backoff_ms: crate::app::finalize::retry_policy(config).longest_ms(),
        host: &rescuer.here.host,
        day_start: budget::day_start(now),
        triage: &triage,
        now,
    })?;
    report_rescued(&claim.rescued);
    for (agent, why) in &claim.refused {
        crate::diag!("orch: agent {agent}'s stages wait: {why}");
    }
    if let (Some(job), Some(agent)) = (claim.job.as_ref().filter(|_| claim.probe), &claim.agent) {
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
