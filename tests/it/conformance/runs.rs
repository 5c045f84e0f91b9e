//! Runs: opened under the live lease, the agent's process recorded, ended once; the runs
//! awaiting finalize; the result the next stage reads.

use orch::procfs::{Place, Proc};
use orch::store::{CachedVerdict, NewRun, PreviousResult, RunEnd};

use super::*;

fn new_run<'a>(
    job: &Job,
    worker: &'a str,
    place: &'a Place,
    log_path: &'a dyn Fn(i64) -> String,
    now: i64,
) -> NewRun<'a> {
    NewRun {
        log_path,
        job_id: job.job_id,
        worker,
        agent: "claude",
        agent_kind: "claude",
        agent_version: None,
        lease_ms: LEASE_MS,
        place,
        supervisor: Some(Proc { pid: 42, start: 7 }),
        resumed_session: None,
        now,
    }
}

#[test]
fn a_run_opens_only_under_the_live_lease_and_once_per_attempt() {
    each(|db| {
        let mut store = db.open();
        let queued = enqueue(&mut *store, "T-1", T0);
        let place = Place {
            host: HOST.into(),
            boot_id: None,
            pid_ns: None,
        };
        let log = |run_id| format!("/logs/run-{run_id}.log");
        let not_claimed = store.job(queued).unwrap().unwrap();
        let refused = store.start_run(&new_run(&not_claimed, "w1", &place, &log, T0));
        assert!(format!("{:#}", refused.err().unwrap()).contains("not running"));
        let job = claim(&mut *store, "w1", T0).unwrap();
        let other = store.start_run(&new_run(&job, "w2", &place, &log, T0));
        assert!(format!("{:#}", other.err().unwrap()).contains("leased to w1"));
        let late = store.start_run(&new_run(&job, "w1", &place, &log, T0 + LEASE_MS));
        assert!(format!("{:#}", late.err().unwrap()).contains("run out"));
        let started = store
            .start_run(&new_run(&job, "w1", &place, &log, T0 + 10))
            .unwrap();
        assert_eq!(started.job.job_id, job.job_id);
        assert_eq!(
            started.log_path,
            format!("/logs/run-{}.log", started.run_id)
        );
        let opened = store.run(started.run_id).unwrap().unwrap();
        assert_eq!(
            opened.agent_kind.as_deref(),
            Some("claude"),
            "the kind is kept"
        );
        let leased = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(
            leased.lease_expires_at,
            Some(T0 + 10 + LEASE_MS),
            "starting renews"
        );
        let twice = store.start_run(&new_run(&job, "w1", &place, &log, T0 + 20));
        assert!(format!("{:#}", twice.err().unwrap()).contains("already running"));

        let (value, recorded) = store.start_agent(started.run_id, || {
            (
                "spawned",
                Some(Proc {
                    pid: 4242,
                    start: 99,
                }),
            )
        });
        assert_eq!(value, "spawned");
        recorded.unwrap();
        let run = store.run(started.run_id).unwrap().unwrap();
        assert_eq!(
            run.agent_process(),
            Some(Proc {
                pid: 4242,
                start: 99
            })
        );
        assert_eq!(
            (run.supervisor_pid, run.supervisor_start),
            (Some(42), Some(7))
        );
        assert_eq!(run.place(), Some(place.clone()));
        assert_eq!((run.attempt, run.worker.as_str()), (1, "w1"));
        assert!(
            store.unfinalized_runs(None, 10).unwrap().is_empty(),
            "still going"
        );

        let end = RunEnd {
            ended_at: T0 + 100,
            duration_ms: 90,
            exit_code: Some(3),
            log_bytes: 12,
            ..RunEnd::default()
        };
        store.end_run(started.run_id, &end).unwrap();
        let again = store.end_run(started.run_id, &RunEnd::default());
        assert!(format!("{:#}", again.err().unwrap()).contains("already ended"));
        let run = store.run(started.run_id).unwrap().unwrap();
        assert_eq!(
            (run.ended_at, run.exit_code, run.log_bytes),
            (Some(T0 + 100), Some(3), 12)
        );
        assert!(!store.run_closed(started.run_id).unwrap());
        let after = store.start_run(&new_run(&job, "w1", &place, &log, T0 + 200));
        assert!(format!("{:#}", after.err().unwrap()).contains("finalize it"));

        let pending = store.unfinalized_runs(None, 10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].run_id, pending[0].worker.as_str()),
            (started.run_id, "w1")
        );
        assert!(store.unfinalized_runs(Some("w2"), 10).unwrap().is_empty());
        assert_eq!(store.runs_for_job(job.job_id).unwrap().len(), 1);
    });
}

#[test]
fn ending_a_run_may_drop_the_cached_verdict_of_its_host_only() {
    each(|db| {
        let mut store = db.open();
        let verdict = CachedVerdict {
            ok: true,
            exit_code: 0,
            checks_json: "[]".into(),
            agent_version: None,
            inputs: "x".into(),
            creds: None,
            created_at: T0,
            expires_at: T0 + 1000,
        };
        store.save_preflight(HOST, "claude", &verdict).unwrap();
        store.save_preflight("h2", "claude", &verdict).unwrap();
        enqueue(&mut *store, "T-1", T0);
        let job = claim(&mut *store, "w1", T0).unwrap();
        let run_id = start(&mut *store, &job, T0);
        let end = RunEnd {
            ended_at: T0 + 1,
            launch_error: Some("cannot start the agent"),
            launch_kind: Some("agent"),
            drop_preflight_cache: true,
            ..RunEnd::default()
        };
        store.end_run(run_id, &end).unwrap();
        assert!(store
            .preflight_state(HOST, "claude")
            .unwrap()
            .cached
            .is_none());
        assert!(store
            .preflight_state("h2", "claude")
            .unwrap()
            .cached
            .is_some());
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!(run.launch_kind.as_deref(), Some("agent"));
        let pending = store.unfinalized_runs(None, 10).unwrap();
        assert!(pending[0].launch_error);
    });
}

#[test]
fn the_next_stage_reads_the_result_stored_at_finalize() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        assert_eq!(store.last_ok_result(job.task_id, "analyst").unwrap(), None);
        let mut ok = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 5);
        ok.verdict.result_text = Some("the analysis".into());
        store.apply_finalize(&ok).unwrap();
        assert_eq!(
            store.last_ok_result(job.task_id, "analyst").unwrap(),
            Some(PreviousResult::Text("the analysis".into()))
        );
        assert_eq!(
            store.last_ok_result(job.task_id, "developer").unwrap(),
            None
        );
    });
}

#[test]
fn the_agent_started_under_the_lock_is_recorded_on_its_run() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let job = claim(&mut *store, "w1", T0).unwrap();
        let run_id = start(&mut *store, &job, T0);
        // A start that failed records nothing.
        let mut calls = 0;
        store
            .record_agent_start(run_id, &mut || {
                calls += 1;
                None
            })
            .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(store.run(run_id).unwrap().unwrap().pid, None);
        store
            .record_agent_start(run_id, &mut || {
                calls += 1;
                Some(orch::procfs::Proc {
                    pid: 4242,
                    start: 987_654_321,
                })
            })
            .unwrap();
        assert_eq!(calls, 2);
        // Seen from another handle (another process) too.
        assert_eq!(db.open().run(run_id).unwrap().unwrap().pid, Some(4242));
    });
}
