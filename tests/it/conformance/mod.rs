//! The store's conformance suite: every operation of `orch::store::Store`, tested once against
//! the trait and run against every backend `backends()` names, each test on a fresh database.
//! A new backend is one more entry there; it is done when this suite passes.
//!
//! Times are synthetic (`T0` and offsets from it): the trait's contract is that a store compares
//! and records the `now` it is given, so a test can move the clock without sleeping. Policy
//! (which jobs a rescue takes, what a decision implies) is pure code the suite calls as the app
//! does (`orch::domain`), so what is tested here is what the store does with it.

mod approval;
mod branches;
mod breaker;
mod budget;
mod finalize;
mod intake;
mod jobs;
mod logs;
mod outbox;
mod preflight;
mod retention;
mod runs;

use std::any::Any;

use orch::domain::breaker::{Event, Policy, MAX_COOLDOWN_MS};
use orch::domain::budget::Budget;
use orch::domain::decide::Decision;
use orch::domain::rescue::{self, Candidate, Rescue};
use orch::domain::states::JobState;
use orch::procfs::{Liveness, Place};
use orch::store::{
    AlertKind, AlertRoute, BreakerUpdate, Claim, ClaimMessage, ClaimProject, ClaimRequest,
    ClaimStage, FinalizePlan, Job, JobMove, Location, NewAlert, NewComment, NewRun, NewTask,
    Options, RunEnd, RunVerdict, Store,
};

/// A moment to count from.
pub const T0: i64 = 1_700_000_000_000;
/// The host the suite's runs and claims are on.
pub const HOST: &str = "h1";
pub const LEASE_MS: i64 = 60_000;
pub const PROJECT: &str = "web";
pub const STAGES: [&str; 2] = ["analyst", "developer"];

/// A kind of database the suite runs against.
pub struct Backend {
    pub name: &'static str,
    /// A fresh, empty database.
    pub fresh: fn() -> Db,
}

/// One fresh database: `open` gives a new handle (a connection of its own) each time, so tests
/// can race several.
pub struct Db {
    /// The backend's name (`Backend::name`), for what only one of them has.
    pub backend: &'static str,
    open: Box<dyn Fn() -> Box<dyn Store> + Send + Sync>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Db {
    pub fn open(&self) -> Box<dyn Store> {
        (self.open)()
    }
}

/// Every backend the suite runs against: SQLite always, PostgreSQL when `ORCH_TEST_PG_URL`
/// names a server to make throwaway schemas on (`.ci/pg.sh` starts one; under `CI=true` it must
/// be there). `ORCH_TEST_BACKEND=sqlite|postgres` runs one half alone.
pub fn backends() -> Vec<Backend> {
    let only = std::env::var("ORCH_TEST_BACKEND").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    let mut backends = Vec::new();
    if wanted("sqlite") {
        backends.push(Backend {
            name: "sqlite",
            fresh: sqlite,
        });
    }
    if crate::support::pg::url().is_some() {
        backends.push(Backend {
            name: "postgres",
            fresh: postgres,
        });
    }
    backends
}

fn postgres() -> Db {
    let schema = crate::support::pg::Schema::fresh();
    opened(Location::Url(schema.url()), Box::new(schema))
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    opened(Location::File(dir.path().join("orch.db")), Box::new(dir))
}

/// The database at `location`, which lives as long as `keep`.
fn opened(location: Location, keep: Box<dyn Any + Send + Sync>) -> Db {
    Db {
        backend: "",
        open: Box::new(move || {
            orch::store::open(&Options {
                location: &location,
                busy_timeout_ms: 30_000,
                host: HOST,
            })
            .unwrap()
        }),
        _keep: keep,
    }
}

/// Names the backend when a test fails under it.
struct Named(&'static str);

impl Drop for Named {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("conformance: failed on the {} backend", self.0);
        }
    }
}

/// Run `test` on a fresh database of every backend.
pub fn each(test: impl Fn(&Db)) {
    for backend in backends() {
        let _named = Named(backend.name);
        let mut db = (backend.fresh)();
        db.backend = backend.name;
        test(&db);
    }
}

pub fn task(key: &str) -> NewTask<'_> {
    NewTask {
        project: PROJECT,
        key,
        title: Some("a title"),
        body: Some("a body"),
        issue: None,
        stage: STAGES[0],
        priority: 0,
        max_attempts: 3,
        actor: "test",
    }
}

/// Queue task `key` at the first stage at `now`; its job id.
pub fn enqueue(store: &mut dyn Store, key: &str, now: i64) -> i64 {
    let queued = store.enqueue(&task(key), now).unwrap();
    assert!(queued.created, "{queued:?}");
    queued.job_id
}

/// The rescue as the app makes it, for runs on another host: only the lease counts.
pub fn lease_only(candidates: &[Candidate], now: i64) -> Vec<Rescue> {
    let here = Place {
        host: "elsewhere".into(),
        boot_id: None,
        pid_ns: None,
    };
    candidates
        .iter()
        .filter_map(|c| rescue::decide(c, &here, now, LEASE_MS, &|_| Liveness::Running))
        .collect()
}

/// A claim of project web (at most `max_running` running) by `worker` at `now`, changed by
/// `edit`.
pub fn claim_with(
    store: &mut dyn Store,
    worker: &str,
    now: i64,
    edit: impl FnOnce(&mut ClaimRequest),
) -> anyhow::Result<Claim> {
    let triage = |candidates: &[Candidate]| lease_only(candidates, now);
    let mut request = ClaimRequest {
        worker,
        projects: vec![ClaimProject {
            name: PROJECT,
            max_running: 100,
            held: None,
            budget: Budget::default(),
            stages: ClaimStage::all(&STAGES, "claude"),
        }],
        lease_ms: LEASE_MS,
        longest_backoff_ms: 3_600_000,
        host: HOST,
        day_start: orch::domain::budget::day_start(now),
        triage: &triage,
        now,
    };
    edit(&mut request);
    store.claim(&request)
}

/// What `worker` claims at `now`, if anything.
pub fn claim(store: &mut dyn Store, worker: &str, now: i64) -> Option<Job> {
    claim_with(store, worker, now, |_| {}).unwrap().job
}

/// Open a run of `job` for its lease holder at `now`; its id.
pub fn start(store: &mut dyn Store, job: &Job, now: i64) -> i64 {
    start_on(store, job, HOST, now)
}

/// Open a run of `job` for its lease holder on `host` at `now`; its id.
pub fn start_on(store: &mut dyn Store, job: &Job, host: &str, now: i64) -> i64 {
    let place = Place {
        host: host.into(),
        boot_id: Some("boot".into()),
        pid_ns: Some("ns".into()),
    };
    let log_path = |run_id| format!("/logs/job-{}-run-{run_id}.log", job.job_id);
    store
        .start_run(&NewRun {
            log_path: &log_path,
            job_id: job.job_id,
            worker: job.lease_owner.as_deref().unwrap(),
            agent: "claude",
            agent_kind: "claude",
            agent_version: Some("2.1.0"),
            lease_ms: LEASE_MS,
            place: &place,
            supervisor: None,
            resumed_session: None,
            now,
        })
        .unwrap()
        .run_id
}

/// The usage comment finalize queues after `job`'s run `run_id`.
pub fn comment(job: &Job, run_id: i64) -> NewComment {
    NewComment {
        project: job.project.clone(),
        task: job.task.clone(),
        issue: 7,
        job_id: job.job_id,
        run_id,
        stage: job.stage.clone(),
        verdict: "ok".into(),
        attempt: job.attempt,
        ..NewComment::default()
    }
}

/// A notify process's claim on the outbox at `now`, with the alert dedup window `dedup_ms`.
pub fn notify_claim(now: i64, dedup_ms: i64) -> ClaimMessage<'static> {
    ClaimMessage {
        claimer: "n",
        now,
        claim_ms: 60_000,
        dedup_ms,
        alerts: true,
        comments: true,
        skip_projects: &[],
    }
}

/// End run `run_id` at `now`, exit 0.
pub fn end(store: &mut dyn Store, run_id: i64, now: i64) {
    let end = RunEnd {
        ended_at: now,
        duration_ms: 1000,
        exit_code: Some(0),
        ..RunEnd::default()
    };
    store.end_run(run_id, &end).unwrap();
}

/// Claim the next job for `worker`, run it and end the run: the job and its run's id.
pub fn ran(store: &mut dyn Store, worker: &str, now: i64) -> (Job, i64) {
    let job = claim(store, worker, now).expect("a job to claim");
    let run_id = start(store, &job, now);
    end(store, run_id, now + 1);
    (job, run_id)
}

/// Task `key`'s analyst stage run at `now` and advanced: its developer job (behind `ci_gate`,
/// awaiting approval when `approval`): that job's id.
pub fn advanced(
    store: &mut dyn Store,
    key: &str,
    now: i64,
    ci_gate: Option<orch::store::CiGate>,
    approval: bool,
) -> i64 {
    enqueue(store, key, now);
    let (job, run_id) = ran(store, "w1", now);
    let mut advance = plan(&job, run_id, Decision::Advanced, JobState::Done, now + 10);
    let waits = match (&ci_gate, approval) {
        (Some(_), _) => "; waits for CI",
        (None, true) => "; waits for approval",
        (None, false) => "",
    };
    advance.next_job = Some(orch::store::NextJob {
        stage: "developer".into(),
        priority: 0,
        max_attempts: 5,
        reason: format!("advanced from analyst{waits}"),
        ci_gate,
        approval,
    });
    match store.apply_finalize(&advance).unwrap() {
        orch::store::Applied::Done(effects) => effects.next_job_id.unwrap(),
        other => panic!("not applied: {other:?}"),
    }
}

pub const POLICY: Policy = Policy {
    threshold: 3,
    cooldown_ms: 600_000,
    max_cooldown_ms: MAX_COOLDOWN_MS,
};

/// A plan that moves `job` (held by its lease owner, run `run_id`) to `to` with `decision`,
/// and nothing else; tests add what they test.
pub fn plan(job: &Job, run_id: i64, decision: Decision, to: JobState, now: i64) -> FinalizePlan {
    let class = match decision {
        Decision::Advanced | Decision::Completed => "ok",
        _ => "timeout",
    };
    FinalizePlan {
        run_id,
        job_id: job.job_id,
        worker: job.lease_owner.clone().unwrap(),
        attempt: job.attempt,
        agent: "claude".into(),
        verdict: RunVerdict {
            result_ok: Some(class == "ok"),
            class: class.into(),
            reason: format!("{class} reason"),
            usage_json: None,
            result_text: Some(format!("result of job {}", job.job_id)),
            decision,
            retry_at: None,
            commit_sha: None,
            cost_usd: None,
        },
        job: JobMove {
            to,
            run_after: None,
            refund_attempt: false,
            history: format!("{decision:?}"),
        },
        next_job: None,
        task: None,
        hold_project: None,
        gate: None,
        usage_hold: None,
        invocation_hold: None,
        breaker: BreakerUpdate {
            event: Event::Neutral,
            policy: POLICY,
            alert: NewAlert::new(AlertKind::BreakerOpen, "claude", ""),
        },
        alerts: Vec::new(),
        alerts_to: AlertRoute::Queue,
        comment: None,
        branch_head: None,
        merge: None,
        log: None,
        actor: "test".into(),
        now,
    }
}
