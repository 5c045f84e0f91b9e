//! Tasks and jobs: enqueue, the claim (order, eligibility, concurrency), leases, the rescue,
//! cancel, retry, make_due and the listings.

use std::sync::{Arc, Barrier};

use orch::domain::decide::Decision;
use orch::domain::states::{JobState, OutboxState, TaskState};
use orch::store::{ClaimProject, ClaimStage, JobFilter, LeaseHolder, Message, NewTask};

use super::*;

#[test]
fn enqueue_is_idempotent_while_a_job_is_live() {
    each(|db| {
        let mut store = db.open();
        let first = store.enqueue(&task("T-1"), T0).unwrap();
        assert!(first.created);
        assert_eq!(first.state, JobState::Queued);
        let again = store
            .enqueue(
                &NewTask {
                    title: Some("changed"),
                    ..task("T-1")
                },
                T0 + 1,
            )
            .unwrap();
        assert!(!again.created);
        assert_eq!(
            (again.job_id, again.state),
            (first.job_id, JobState::Queued)
        );
        let job = store.job(first.job_id).unwrap().unwrap();
        assert_eq!(job.title, "a title", "a live job's task is left alone");
        // Once the job is over, the task is queued again (its title updated).
        store.cancel(first.job_id, "op", T0 + 2).unwrap();
        let next = store
            .enqueue(
                &NewTask {
                    title: Some("changed"),
                    ..task("T-1")
                },
                T0 + 3,
            )
            .unwrap();
        assert!(next.created && next.job_id != first.job_id);
        let job = store.job(next.job_id).unwrap().unwrap();
        assert_eq!(
            (job.task_id, job.title.as_str()),
            (first_task(&*store, first.job_id), "changed")
        );
        assert_eq!((job.attempt, job.run_after), (0, T0 + 3));
        let tasks = store.tasks_by_key("T-1").unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].state, TaskState::Active);
        assert_eq!(store.task_body(job.task_id).unwrap(), "a body");
    });
}

fn first_task(store: &dyn Store, job_id: i64) -> i64 {
    store.job(job_id).unwrap().unwrap().task_id
}

#[test]
fn the_claim_takes_priority_then_due_time_then_id() {
    each(|db| {
        let mut store = db.open();
        let low = enqueue(&mut *store, "low", T0);
        let later = enqueue(&mut *store, "later", T0 + 20);
        let earlier = enqueue(&mut *store, "earlier", T0 + 10);
        let high = store
            .enqueue(
                &NewTask {
                    priority: 5,
                    ..task("high")
                },
                T0 + 30,
            )
            .unwrap()
            .job_id;
        let tie = enqueue(&mut *store, "tie", T0);
        let now = T0 + 100;
        let order: Vec<i64> = std::iter::from_fn(|| claim(&mut *store, "w", now))
            .map(|job| job.job_id)
            .collect();
        assert_eq!(order, vec![high, low, tie, earlier, later]);
        let job = store.job(high).unwrap().unwrap();
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.attempt, 1);
        assert_eq!(job.lease_owner.as_deref(), Some("w"));
        assert_eq!(job.lease_expires_at, Some(now + LEASE_MS));
        let history = store.history(high).unwrap();
        let last = history.last().unwrap();
        assert_eq!(
            (last.from_state, last.to_state, last.actor.as_str()),
            (Some(JobState::Queued), JobState::Running, "w")
        );
        assert!(last.reason.contains("claimed, attempt 1/3"), "{last:?}");
    });
}

#[test]
fn the_claim_skips_what_is_not_due_not_staged_held_or_full() {
    each(|db| {
        let mut store = db.open();
        let future = enqueue(&mut *store, "future", T0 + 60_000);
        assert!(claim(&mut *store, "w", T0).is_none(), "not due yet");
        // A job due further ahead than the longest backoff was dated by a clock that ran ahead.
        let ahead = enqueue(&mut *store, "ahead", T0 + 86_400_000);
        let job = claim_with(&mut *store, "w", T0, |r| r.lease_ms = 3_600_000)
            .unwrap()
            .job
            .expect("the job from the future is due");
        assert_eq!(job.job_id, ahead);
        let claimed = store.history(ahead).unwrap().pop().unwrap();
        assert_eq!(claimed.to_state, JobState::Running);
        assert!(
            claimed
                .reason
                .starts_with("claimed, attempt 1/3; it was due in ")
                && claimed
                    .reason
                    .ends_with("(a clock ran ahead): treated as due"),
            "{}",
            claimed.reason
        );
        // A stage the pipeline does not have is never claimed, and listed as stranded.
        let stranded = store
            .enqueue(
                &NewTask {
                    stage: "gone",
                    ..task("stranded")
                },
                T0,
            )
            .unwrap()
            .job_id;
        assert!(claim(&mut *store, "w", T0 + 1).is_none());
        let listed = store.stranded_jobs(&STAGES, 10).unwrap();
        assert_eq!(
            listed.iter().map(|j| j.job_id).collect::<Vec<_>>(),
            vec![stranded]
        );
        // A held project is skipped (and its hold recorded once, with one alert).
        let claimed = claim_with(&mut *store, "w", T0 + 60_000, |r| {
            r.projects[0].held = Some("its workdir is missing".into())
        })
        .unwrap();
        assert!(claimed.job.is_none());
        claim_with(&mut *store, "w", T0 + 60_000, |r| {
            r.projects[0].held = Some("its workdir is missing".into())
        })
        .unwrap();
        let holds = store.project_holds().unwrap();
        assert_eq!(holds.len(), 1);
        assert_eq!(
            (holds[0].project.as_str(), holds[0].host.as_str()),
            (PROJECT, HOST)
        );
        let summary = store.outbox_summary(T0 + 60_000, 10).unwrap();
        assert_eq!(summary.pending, 1, "one alert per hold");
        assert_eq!(
            summary.waiting[0].alert_kind.as_deref(),
            Some("project_held")
        );
        // Released by the next claim that finds the project fine; then the job is taken.
        let job = claim(&mut *store, "w", T0 + 60_000).unwrap();
        assert_eq!(job.job_id, future);
        assert!(store.project_holds().unwrap().is_empty());
        // A project at its max_running takes nothing more.
        enqueue(&mut *store, "more", T0);
        let full = claim_with(&mut *store, "w", T0 + 60_000, |r| {
            r.projects[0].max_running = 2
        })
        .unwrap();
        assert!(full.job.is_none());
        // Only the projects the request names are claimed from.
        let other = claim_with(&mut *store, "w", T0 + 60_000, |r| {
            r.projects = vec![ClaimProject {
                name: "api",
                max_running: 10,
                held: None,
                budget: Budget::default(),
                stages: ClaimStage::all(&STAGES, "claude"),
            }]
        })
        .unwrap();
        assert!(other.job.is_none());
    });
}

/// Eight claimers, each with its own handle, race for `jobs` jobs of a project that runs at most
/// `max_running`: the jobs they get, in all.
fn race(db: &Db, jobs: usize, max_running: u32) -> Vec<i64> {
    let mut store = db.open();
    for n in 0..jobs {
        enqueue(&mut *store, &format!("T-{n}"), T0);
    }
    let start = Arc::new(Barrier::new(8));
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    let mut store = db.open();
                    let worker = format!("w{n}");
                    start.wait();
                    let mut mine = Vec::new();
                    while let Some(job) = claim_with(&mut *store, &worker, T0 + 1, |r| {
                        r.projects[0].max_running = max_running
                    })
                    .unwrap()
                    .job
                    {
                        assert_eq!(job.lease_owner.as_deref(), Some(worker.as_str()));
                        mine.push(job.job_id);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.into_iter().flatten().collect();
    all.sort();
    all
}

#[test]
fn eight_claimers_hold_max_running() {
    each(|db| {
        let claimed = race(db, 12, 3);
        assert_eq!(claimed.len(), 3, "{claimed:?}");
        let store = db.open();
        let running = store.jobs_in_state(JobState::Running, 100).unwrap();
        assert_eq!(running.len(), 3);
    });
}

#[test]
fn eight_claimers_take_each_job_once() {
    each(|db| {
        let claimed = race(db, 40, 1000);
        let mut distinct = claimed.clone();
        distinct.dedup();
        assert_eq!(claimed.len(), 40);
        assert_eq!(distinct.len(), 40, "a job was claimed twice: {claimed:?}");
    });
}

#[test]
fn a_lease_is_renewed_only_by_its_holder_while_its_run_is_open() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let job = claim(&mut *store, "w1", T0).unwrap();
        let run_id = start(&mut *store, &job, T0 + 10);
        let holder = LeaseHolder {
            job_id: job.job_id,
            worker: "w1",
            attempt: 1,
        };
        assert!(store
            .heartbeat(&holder, run_id, LEASE_MS, T0 + 1000)
            .unwrap());
        let leased = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(leased.lease_expires_at, Some(T0 + 1000 + LEASE_MS));
        let other_worker = LeaseHolder {
            worker: "w2",
            ..holder
        };
        assert!(!store
            .heartbeat(&other_worker, run_id, LEASE_MS, T0 + 2000)
            .unwrap());
        let other_attempt = LeaseHolder {
            attempt: 2,
            ..holder
        };
        assert!(!store
            .heartbeat(&other_attempt, run_id, LEASE_MS, T0 + 2000)
            .unwrap());
        assert_eq!(
            store.job(job.job_id).unwrap().unwrap().lease_expires_at,
            Some(T0 + 1000 + LEASE_MS),
            "a refused heartbeat writes nothing"
        );
        // Cancelled: the run is closed, and its heartbeat is refused.
        let cancelled = store.cancel(job.job_id, "op", T0 + 3000).unwrap();
        assert_eq!(cancelled.was, JobState::Running);
        assert_eq!(cancelled.run.unwrap().run_id, run_id);
        assert!(!store
            .heartbeat(&holder, run_id, LEASE_MS, T0 + 4000)
            .unwrap());
        assert!(store.run_closed(run_id).unwrap());
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!(run.decision, Some(Decision::Cancelled));
    });
}

#[test]
fn a_rescue_requeues_an_expired_lease_then_fails_the_last_attempt() {
    each(|db| {
        let mut store = db.open();
        let job_id = store
            .enqueue(
                &NewTask {
                    max_attempts: 2,
                    ..task("T-1")
                },
                T0,
            )
            .unwrap()
            .job_id;
        let job = claim(&mut *store, "w1", T0).unwrap();
        let run_id = start(&mut *store, &job, T0);
        // Nothing to take back while the lease lives.
        let now = T0 + 1000;
        let triage = |c: &[Candidate]| lease_only(c, now);
        assert!(store.rescue(HOST, now, &triage).unwrap().is_empty());
        let now = T0 + LEASE_MS + 1;
        let triage = |c: &[Candidate]| lease_only(c, now);
        let rescued = store.rescue(HOST, now, &triage).unwrap();
        assert_eq!(rescued.len(), 1);
        assert_eq!(
            (rescued[0].job_id, rescued[0].state),
            (job_id, JobState::Queued)
        );
        assert_eq!(rescued[0].worker.as_deref(), Some("w1"));
        let requeued = store.job(job_id).unwrap().unwrap();
        assert_eq!((requeued.state, requeued.attempt), (JobState::Queued, 1));
        assert_eq!(requeued.last_class.as_deref(), Some("lease_expired"));
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!(run.decision, Some(Decision::Requeued));
        assert_eq!(run.retry_at, Some(now));
        // The second attempt is the last: its rescue fails the job, the task and alerts.
        let job = claim(&mut *store, "w2", now).unwrap();
        assert_eq!(job.attempt, 2);
        let run_id = start(&mut *store, &job, now);
        // A claim rescues on its way too.
        let later = now + LEASE_MS + 1;
        let claimed = claim_with(&mut *store, "w3", later, |_| {}).unwrap();
        assert!(claimed.job.is_none());
        assert_eq!(claimed.rescued.len(), 1);
        assert_eq!(claimed.rescued[0].state, JobState::Failed);
        let failed = store.job(job_id).unwrap().unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(
            store.tasks_by_key("T-1").unwrap()[0].state,
            TaskState::Failed
        );
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!((run.decision, run.retry_at), (Some(Decision::Failed), None));
        let summary = store.outbox_summary(later, 10).unwrap();
        assert_eq!(summary.waiting.len(), 1);
        assert_eq!(summary.waiting[0].alert_kind.as_deref(), Some("failed"));
        assert_eq!(summary.waiting[0].state, OutboxState::Pending);
    });
}

#[test]
fn cancel_retry_and_make_due() {
    each(|db| {
        let mut store = db.open();
        let job_id = enqueue(&mut *store, "T-1", T0);
        assert!(
            store.retry(job_id, None, "op", T0).is_err(),
            "a queued job is not retried"
        );
        let cancelled = store.cancel(job_id, "op", T0 + 1).unwrap();
        assert_eq!(
            (cancelled.was, cancelled.run.is_none()),
            (JobState::Queued, true)
        );
        assert_eq!(
            store.cancel(job_id, "op", T0 + 2).unwrap().was,
            JobState::Cancelled,
            "cancelling twice changes nothing"
        );
        assert_eq!(
            store.tasks_by_key("T-1").unwrap()[0].state,
            TaskState::Cancelled
        );
        let retried = store.retry(job_id, None, "op", T0 + 3).unwrap();
        assert_eq!(
            (retried.was, retried.was_stage.as_str()),
            (JobState::Cancelled, "analyst")
        );
        let job = store.job(job_id).unwrap().unwrap();
        assert_eq!(
            (job.state, job.attempt, job.run_after),
            (JobState::Queued, 0, T0 + 3)
        );
        assert_eq!(
            store.tasks_by_key("T-1").unwrap()[0].state,
            TaskState::Active
        );
        // A queued job moves to another stage.
        store
            .retry(job_id, Some("developer"), "op", T0 + 4)
            .unwrap();
        assert_eq!(store.job(job_id).unwrap().unwrap().stage, "developer");
        let history = store.history(job_id).unwrap();
        assert!(history
            .last()
            .unwrap()
            .reason
            .contains("moved from stage analyst to developer"));
        // Due later, then made due now; its attempts kept.
        store.cancel(job_id, "op", T0 + 5).unwrap();
        store.retry(job_id, None, "op", T0 + 50_000).unwrap();
        assert_eq!(store.make_due(job_id, "op", T0 + 10).unwrap(), T0 + 50_000);
        assert_eq!(store.job(job_id).unwrap().unwrap().run_after, T0 + 10);
        // Not while another job of the task is live; not a running job; not a missing one.
        store.cancel(job_id, "op", T0 + 11).unwrap();
        let live = enqueue(&mut *store, "T-1", T0 + 12);
        assert!(store.retry(job_id, None, "op", T0 + 13).is_err());
        claim(&mut *store, "w", T0 + 13).unwrap();
        assert!(store.make_due(live, "op", T0 + 14).is_err());
        assert!(store.cancel(999, "op", T0).is_err());
        assert!(store.job(999).unwrap().is_none());
    });
}

#[test]
fn listings_and_counts() {
    each(|db| {
        let mut store = db.open();
        let first = enqueue(&mut *store, "T-1", T0);
        let second = enqueue(&mut *store, "T-2", T0 + 1);
        let third = enqueue(&mut *store, "T-3", T0 + 2);
        let running = claim(&mut *store, "w", T0 + 5).unwrap();
        assert_eq!(running.job_id, first);
        store.cancel(third, "op", T0 + 6).unwrap();
        let counts = store.state_counts().unwrap();
        let count = |state| {
            counts
                .iter()
                .filter(|c| c.state == state)
                .map(|c| c.count)
                .sum::<i64>()
        };
        assert_eq!(
            (
                count(JobState::Queued),
                count(JobState::Running),
                count(JobState::Cancelled)
            ),
            (1, 1, 1)
        );
        let live = store
            .list_jobs(&JobFilter {
                limit: 10,
                ..JobFilter::default()
            })
            .unwrap();
        assert_eq!(
            live.iter().map(|j| j.job_id).collect::<Vec<_>>(),
            vec![first, second],
            "running first, then queued"
        );
        let by_task = store
            .list_jobs(&JobFilter {
                states: vec![JobState::Cancelled, JobState::Queued],
                task: Some("T-3"),
                limit: 10,
                ..JobFilter::default()
            })
            .unwrap();
        assert_eq!(by_task.len(), 1);
        assert_eq!(by_task[0].job_id, third);
        let task_id = store.job(second).unwrap().unwrap().task_id;
        assert_eq!(store.jobs_of_task(task_id).unwrap().len(), 1);
        assert_eq!(
            store.jobs_in_state(JobState::Queued, 10).unwrap()[0].job_id,
            second
        );
        assert!(store.pending_retries(T0 + 5, 10).unwrap().is_empty());
        let facts = store.metrics(HOST, T0 + 10).unwrap();
        assert_eq!(facts.job_counts.len(), counts.len());
        assert_eq!(facts.oldest_due_queued, Some(T0 + 1));
        assert_eq!(facts.requeues, 0);
        assert_eq!(store.history(first).unwrap().len(), 2);
    });
}

#[test]
fn a_queued_message_of_a_rescue_is_an_alert() {
    // The rescue's alert is the same `Message` the outbox hands out.
    each(|db| {
        let mut store = db.open();
        store
            .enqueue(
                &NewTask {
                    max_attempts: 1,
                    ..task("T-1")
                },
                T0,
            )
            .unwrap();
        claim(&mut *store, "w1", T0).unwrap();
        let now = T0 + LEASE_MS + 1;
        let triage = |c: &[Candidate]| lease_only(c, now);
        store.rescue(HOST, now, &triage).unwrap();
        let claimed = store
            .claim_message(&orch::store::ClaimMessage {
                claimer: "n",
                now,
                claim_ms: 1000,
                dedup_ms: 0,
                alerts: true,
                comments: true,
                skip_projects: &[],
            })
            .unwrap()
            .unwrap();
        match claimed.message.unwrap() {
            Message::Alert(alert) => {
                assert_eq!(alert.task.as_deref(), Some("T-1"));
                assert_eq!(alert.class.as_deref(), Some("lease_expired"));
            }
            other => panic!("{other:?}"),
        }
    });
}
