//! Finalize: a plan written whole under its guard (the lease fence), each decision's writes, and
//! the run's finalize lock.

use orch::domain::states::{JobState, TaskState};
use orch::store::{
    Applied, Effects, FinalizeLock, GateHold, InvocationHoldRequest, Locked, NextJob,
    ProjectHoldRequest,
};

use super::*;

fn applied(store: &mut dyn Store, plan: &FinalizePlan) -> Effects {
    match store.apply_finalize(plan).unwrap() {
        Applied::Done(effects) => effects,
        other => panic!("not applied: {other:?}"),
    }
}

#[test]
fn an_ok_run_advances_and_queues_the_next_stage() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut advance = plan(&job, run_id, Decision::Advanced, JobState::Done, T0 + 10);
        advance.next_job = Some(NextJob {
            stage: "developer".into(),
            priority: 0,
            max_attempts: 5,
            reason: "advanced from analyst".into(),
            ci_gate: None,
            approval: false,
        });
        advance.verdict.usage_json = Some(r#"{"cost_usd":0.5}"#.into());
        advance.verdict.commit_sha = Some("abc123".into());
        advance.comment = Some(comment(&job, run_id));
        let effects = applied(&mut *store, &advance);
        let next = effects.next_job_id.expect("the next stage's job");
        assert!(effects.alerts.is_empty() && !effects.gate_held && !effects.project_held);
        let done = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(done.state, JobState::Done);
        assert_eq!(
            (done.lease_owner, done.last_class.as_deref()),
            (None, Some("ok"))
        );
        let next_job = store.job(next).unwrap().unwrap();
        assert_eq!(
            (
                next_job.stage.as_str(),
                next_job.state,
                next_job.attempt,
                next_job.max_attempts
            ),
            ("developer", JobState::Queued, 0, 5)
        );
        assert_eq!(next_job.task_id, job.task_id);
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!(run.decision, Some(Decision::Advanced));
        assert_eq!(run.next_job_id, Some(next));
        assert_eq!(run.finalized_at, Some(T0 + 10));
        assert_eq!(run.commit_sha.as_deref(), Some("abc123"));
        assert_eq!(run.result_ok, Some(true));
        assert_eq!(run.usage.unwrap()["cost_usd"], 0.5);
        let history = store.history(job.job_id).unwrap();
        let last = history.last().unwrap();
        assert_eq!(
            (last.from_state, last.to_state),
            (Some(JobState::Running), JobState::Done)
        );
        let comments = store.comments().unwrap();
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].1.run_id, run_id);
        assert!(store.unfinalized_runs(None, 10).unwrap().is_empty());
        let facts = store.metrics(HOST, T0 + 10).unwrap();
        assert_eq!(facts.usage[0].cost_usd, 0.5);
    });
}

#[test]
fn the_last_stage_completes_the_task_and_a_failure_fails_it() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut complete = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
        complete.task = Some(TaskState::Complete);
        applied(&mut *store, &complete);
        assert_eq!(
            store.tasks_by_key("T-1").unwrap()[0].state,
            TaskState::Complete
        );

        enqueue(&mut *store, "T-2", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0 + 20);
        let mut fail = plan(&job, run_id, Decision::Failed, JobState::Failed, T0 + 30);
        fail.task = Some(TaskState::Failed);
        fail.alerts = vec![NewAlert::for_job(
            AlertKind::Failed,
            &job,
            "timeout",
            "it failed\nmore",
        )];
        let effects = applied(&mut *store, &fail);
        assert_eq!(effects.alerts, vec![AlertKind::Failed]);
        assert_eq!(
            store.tasks_by_key("T-2").unwrap()[0].state,
            TaskState::Failed
        );
        assert_eq!(
            store.job(job.job_id).unwrap().unwrap().state,
            JobState::Failed
        );
        let summary = store.outbox_summary(T0 + 30, 10).unwrap();
        assert_eq!(summary.pending, 1);
    });
}

#[test]
fn a_requeue_waits_and_a_refund_gives_the_attempt_back() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut requeue = plan(&job, run_id, Decision::Requeued, JobState::Queued, T0 + 10);
        requeue.job.run_after = Some(T0 + 5000);
        requeue.verdict.retry_at = Some(T0 + 5000);
        applied(&mut *store, &requeue);
        let queued = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(
            (queued.state, queued.attempt, queued.run_after),
            (JobState::Queued, 1, T0 + 5000)
        );
        assert_eq!(
            store.run(run_id).unwrap().unwrap().retry_at,
            Some(T0 + 5000)
        );
        assert_eq!(store.pending_retries(T0 + 10, 10).unwrap().len(), 1);
        assert!(
            claim(&mut *store, "w1", T0 + 4999).is_none(),
            "not due before its retry"
        );
        assert_eq!(store.metrics(HOST, T0).unwrap().requeues, 1);

        let (job, run_id) = ran(&mut *store, "w1", T0 + 5000);
        assert_eq!(job.attempt, 2);
        let mut gated = plan(&job, run_id, Decision::Gated, JobState::Queued, T0 + 5010);
        gated.job.refund_attempt = true;
        applied(&mut *store, &gated);
        let back = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(
            (back.state, back.attempt),
            (JobState::Queued, 1),
            "the attempt is given back"
        );
        // The attempt given back runs again: a new run of the same attempt number.
        let again = claim(&mut *store, "w1", T0 + 6000).unwrap();
        assert_eq!(again.attempt, 2);
        start(&mut *store, &again, T0 + 6000);
    });
}

#[test]
fn a_gate_and_a_project_hold_alert_once() {
    each(|db| {
        let mut store = db.open();
        // Both claimed before either is finalized: a claim that finds the project fine would
        // release its hold.
        let runs: Vec<(Job, i64)> = (0..2)
            .map(|n| {
                enqueue(&mut *store, &format!("T-{n}"), T0);
                ran(&mut *store, "w1", T0 + n)
            })
            .collect();
        for (n, (job, run_id)) in (0..).zip(runs) {
            let mut gated = plan(&job, run_id, Decision::Gated, JobState::Queued, T0 + 10 + n);
            gated.job.refund_attempt = true;
            gated.gate = Some(GateHold {
                host: HOST.into(),
                agent: "claude".into(),
                run_id,
                reason: "Not logged in".into(),
                creds: None,
                alert: Some(NewAlert::new(
                    AlertKind::AuthGate,
                    "claude",
                    "not logged in",
                )),
            });
            gated.hold_project = Some(ProjectHoldRequest {
                project: PROJECT.into(),
                host: HOST.into(),
                reason: "its workdir is missing".into(),
            });
            let effects = applied(&mut *store, &gated);
            let first = n == 0;
            assert_eq!((effects.gate_held, effects.project_held), (first, first));
            let kinds = match first {
                true => vec![AlertKind::AuthGate, AlertKind::ProjectHeld],
                false => vec![],
            };
            assert_eq!(effects.alerts, kinds);
        }
        let gate = store.preflight_state(HOST, "claude").unwrap().gate.unwrap();
        assert_eq!(gate.reason, "Not logged in");
        assert!(store
            .preflight_state("h2", "claude")
            .unwrap()
            .gate
            .is_none());
        assert_eq!(store.project_holds().unwrap().len(), 1);
        assert_eq!(store.outbox_summary(T0, 10).unwrap().pending, 2);
    });
}

#[test]
fn alerts_with_nowhere_to_go_are_noted_in_the_history() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut fail = plan(&job, run_id, Decision::Failed, JobState::Failed, T0 + 10);
        fail.alerts = vec![NewAlert::new(AlertKind::Failed, "k", "it failed")];
        fail.alerts_to = AlertRoute::Note {
            detail: "no telegram".into(),
        };
        let effects = applied(&mut *store, &fail);
        assert_eq!(effects.alerts, vec![AlertKind::Failed]);
        assert_eq!(store.outbox_summary(T0, 10).unwrap().pending, 0);
        let last = store.history(job.job_id).unwrap().pop().unwrap();
        assert_eq!(
            (last.from_state, last.to_state),
            (Some(JobState::Failed), JobState::Failed)
        );
        assert_eq!(
            last.reason,
            "alert not sent (failed: alerts are off: no telegram): it failed"
        );
    });
}

#[test]
fn the_lease_fence_refuses_a_plan_whose_worker_lost_the_job() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut stranger = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
        stranger.worker = "w2".into();
        let Applied::NotHeld { job: seen, run } = store.apply_finalize(&stranger).unwrap() else {
            panic!("a plan of another worker is refused");
        };
        assert_eq!(
            (seen.lease_owner.as_deref(), run.run_id),
            (Some("w1"), run_id)
        );
        let mut old_attempt = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
        old_attempt.attempt = 2;
        assert!(matches!(
            store.apply_finalize(&old_attempt).unwrap(),
            Applied::NotHeld { .. }
        ));
        let untouched = store.job(job.job_id).unwrap().unwrap();
        assert_eq!(
            untouched.state,
            JobState::Running,
            "a refused plan writes nothing"
        );
        assert!(store.run(run_id).unwrap().unwrap().finalized_at.is_none());
        // The holder's plan goes through once; a second reports the decision made.
        let own = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
        applied(&mut *store, &own);
        let Applied::Finalized(run) = store.apply_finalize(&own).unwrap() else {
            panic!("finalized twice");
        };
        assert_eq!(run.decision, Some(Decision::Completed));
        assert_eq!(
            store.history(job.job_id).unwrap().len(),
            3,
            "queued, running, done"
        );
    });
}

#[test]
fn a_rescued_run_is_not_finalized_by_its_worker() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let now = T0 + LEASE_MS + 1;
        let triage = |c: &[Candidate]| lease_only(c, now);
        // Ended runs are not open: the rescue takes the job back by its lease alone.
        assert_eq!(store.rescue(HOST, now, &triage).unwrap().len(), 1);
        let late = plan(&job, run_id, Decision::Completed, JobState::Done, now + 1);
        let Applied::Finalized(run) = store.apply_finalize(&late).unwrap() else {
            panic!("the rescue decided for this run");
        };
        assert_eq!(run.decision, Some(Decision::Requeued));
    });
}

#[test]
fn the_finalize_lock_has_one_holder() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let lock = |holder, until, take_from, now| FinalizeLock {
            run_id,
            holder,
            until,
            take_from,
            now,
        };
        assert_eq!(
            store.lock_finalize(&lock("a", T0 + 100, None, T0)).unwrap(),
            Locked::Taken
        );
        assert_eq!(
            store
                .lock_finalize(&lock("a", T0 + 200, None, T0 + 1))
                .unwrap(),
            Locked::Taken,
            "its holder may take it again"
        );
        assert_eq!(
            store
                .lock_finalize(&lock("b", T0 + 300, None, T0 + 2))
                .unwrap(),
            Locked::Held {
                holder: "a".into(),
                until: T0 + 200
            }
        );
        // Taken over from a holder the caller saw die, or once it ran out.
        assert_eq!(
            store
                .lock_finalize(&lock("b", T0 + 300, Some("a"), T0 + 3))
                .unwrap(),
            Locked::Taken
        );
        assert_eq!(
            store
                .lock_finalize(&lock("c", T0 + 900, Some("a"), T0 + 4))
                .unwrap(),
            Locked::Held {
                holder: "b".into(),
                until: T0 + 300
            }
        );
        assert_eq!(
            store
                .lock_finalize(&lock("c", T0 + 900, None, T0 + 300))
                .unwrap(),
            Locked::Taken
        );
        // Only its holder lets it go.
        store.unlock_finalize(run_id, "b").unwrap();
        assert!(matches!(
            store
                .lock_finalize(&lock("d", T0 + 900, None, T0 + 301))
                .unwrap(),
            Locked::Held { .. }
        ));
        store.unlock_finalize(run_id, "c").unwrap();
        assert_eq!(
            store
                .lock_finalize(&lock("d", T0 + 900, None, T0 + 302))
                .unwrap(),
            Locked::Taken
        );
        // The decision ends it: nothing is left to lock for.
        applied(
            &mut *store,
            &plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 400),
        );
        assert_eq!(
            store
                .lock_finalize(&lock("e", T0 + 900, None, T0 + 401))
                .unwrap(),
            Locked::Finalized
        );
        let missing = FinalizeLock {
            run_id: 999,
            ..lock("e", T0, None, T0)
        };
        assert!(store.lock_finalize(&missing).is_err());
    });
}

#[test]
fn an_invocation_hold_alerts_once_per_settings_and_lifts_when_they_change() {
    each(|db| {
        let mut store = db.open();
        let runs: Vec<(Job, i64)> = (0..3)
            .map(|n| {
                enqueue(&mut *store, &format!("T-{n}"), T0);
                ran(&mut *store, "w1", T0 + n)
            })
            .collect();
        // The same settings twice, then other settings: the third is a new hold.
        for (n, (job, run_id)) in (0..).zip(runs) {
            let mut held = plan(&job, run_id, Decision::Gated, JobState::Queued, T0 + 10 + n);
            held.job.refund_attempt = true;
            held.invocation_hold = Some(InvocationHoldRequest {
                host: HOST.into(),
                agent: "codex".into(),
                run_id,
                reason: "Codex refused its command line".into(),
                fix: "add --skip-git-repo-check".into(),
                inputs: if n < 2 { "v1" } else { "v2" }.into(),
                alert: NewAlert::new(AlertKind::InvocationError, "codex@h1", "refused"),
            });
            let effects = applied(&mut *store, &held);
            let new = n != 1;
            assert_eq!(effects.invocation_held, new, "run {n}");
            let kinds = if new {
                vec![AlertKind::InvocationError]
            } else {
                vec![]
            };
            assert_eq!(effects.alerts, kinds, "run {n}");
        }
        let hold = store
            .preflight_state(HOST, "codex")
            .unwrap()
            .invocation
            .unwrap();
        assert_eq!(
            (hold.inputs.as_str(), hold.fix.as_str()),
            ("v2", "add --skip-git-repo-check")
        );
        assert!(store
            .preflight_state("h2", "codex")
            .unwrap()
            .invocation
            .is_none());
        assert!(store
            .preflight_state(HOST, "claude")
            .unwrap()
            .invocation
            .is_none());
        // Released only as read: not a hold taken again since.
        assert!(!store
            .release_invocation_hold(HOST, "codex", hold.created_at - 1)
            .unwrap());
        assert!(store
            .release_invocation_hold(HOST, "codex", hold.created_at)
            .unwrap());
        assert!(store
            .preflight_state(HOST, "codex")
            .unwrap()
            .invocation
            .is_none());
    });
}

/// Task `key`'s analyst stage run and advanced, its developer job held behind CI on `sha`:
/// that job's id.
fn advanced_behind_ci(store: &mut dyn Store, key: &str, sha: &str) -> i64 {
    advanced_behind_ci_to(store, key, sha, false)
}

/// As `advanced_behind_ci`, the developer job awaiting approval too when `approval`.
fn advanced_behind_ci_to(store: &mut dyn Store, key: &str, sha: &str, approval: bool) -> i64 {
    let gate = orch::store::CiGate {
        sha: sha.into(),
        gated_stage: "analyst".into(),
    };
    advanced(store, key, T0, Some(gate), approval)
}

#[test]
fn a_ci_pass_leaves_a_job_awaiting_approval_waiting_since_it_began() {
    use orch::store::{GateOutcome, GateSettle};
    each(|db| {
        let mut store = db.open();
        let next = advanced_behind_ci_to(&mut *store, "T-1", "f00", true);
        let before = store.job(next).unwrap().unwrap();
        assert_eq!(before.state, JobState::AwaitingApproval);
        let pass = GateOutcome::Pass {
            note: "CI is green".into(),
        };
        store
            .settle_ci_gate(&GateSettle {
                job_id: next,
                outcome: &pass,
                actor: "ci",
                now: T0 + 500,
            })
            .unwrap()
            .unwrap();
        let after = store.job(next).unwrap().unwrap();
        assert_eq!(after.state, JobState::AwaitingApproval);
        assert_eq!(
            after.updated_at, before.updated_at,
            "approvers' comments are read from when it began to wait"
        );
    });
}

#[test]
fn a_job_behind_a_ci_gate_is_not_claimed_until_the_gate_is_settled() {
    use orch::store::{GateOutcome, GateSettle};
    each(|db| {
        let mut store = db.open();
        let next = advanced_behind_ci(&mut *store, "T-1", "abc123");
        assert!(
            claim(&mut *store, "w2", T0 + 20).is_none(),
            "held behind CI"
        );
        let gates = store.ci_gates(10).unwrap();
        assert_eq!(gates.len(), 1);
        assert_eq!((gates[0].job_id, gates[0].sha.as_str()), (next, "abc123"));
        assert_eq!(
            (gates[0].gated_stage.as_str(), gates[0].ci_fixes),
            ("analyst", 0)
        );
        let settle = |store: &mut dyn Store, job_id, outcome: &GateOutcome, now| {
            store
                .settle_ci_gate(&GateSettle {
                    job_id,
                    outcome,
                    actor: "ci",
                    now,
                })
                .unwrap()
        };
        assert!(settle(&mut *store, next, &GateOutcome::Wait, T0 + 30).is_some());
        assert!(claim(&mut *store, "w2", T0 + 31).is_none());

        // Red: the gated stage again, with the failures for its prompt; the waiting job is
        // cancelled and its gate gone.
        let fix = GateOutcome::Fix {
            failures: "- ci/lint failed".into(),
            reason: "CI is red".into(),
        };
        let fixed = settle(&mut *store, next, &fix, T0 + 40).unwrap();
        let again = fixed.fix_job_id.unwrap();
        assert_eq!(store.job(next).unwrap().unwrap().state, JobState::Cancelled);
        let rerun = store.job(again).unwrap().unwrap();
        assert_eq!(
            (rerun.stage.as_str(), rerun.state),
            ("analyst", JobState::Queued)
        );
        assert_eq!(
            store.ci_failures(again).unwrap().as_deref(),
            Some("- ci/lint failed")
        );
        assert!(store.ci_gates(10).unwrap().is_empty());
        assert!(settle(&mut *store, next, &GateOutcome::Wait, T0 + 41).is_none());
        assert_eq!(claim(&mut *store, "w2", T0 + 50).unwrap().job_id, again);
    });
}

#[test]
fn a_ci_gate_passes_or_fails_its_job() {
    use orch::domain::states::TaskState;
    use orch::store::{GateOutcome, GateSettle};
    each(|db| {
        let mut store = db.open();
        for (key, outcome) in [
            (
                "T-PASS",
                GateOutcome::Pass {
                    note: "CI is green".into(),
                },
            ),
            (
                "T-FAIL",
                GateOutcome::Fail {
                    reason: "CI gave no verdict".into(),
                    alert: None,
                },
            ),
        ] {
            let next = advanced_behind_ci(&mut *store, key, "f00");
            store
                .settle_ci_gate(&GateSettle {
                    job_id: next,
                    outcome: &outcome,
                    actor: "ci",
                    now: T0 + 20,
                })
                .unwrap()
                .unwrap();
            let settled = store.job(next).unwrap().unwrap();
            match outcome {
                GateOutcome::Pass { .. } => {
                    assert_eq!(settled.state, JobState::Queued);
                    let last = store.history(next).unwrap().pop().unwrap();
                    assert_eq!(last.reason, "CI is green");
                    assert_eq!(claim(&mut *store, "w2", T0 + 30).unwrap().job_id, next);
                }
                _ => {
                    assert_eq!(settled.state, JobState::Failed);
                    assert_eq!(settled.last_class.as_deref(), Some("ci_failed"));
                    let task = store.task(settled.task_id).unwrap().unwrap();
                    assert_eq!(task.state, TaskState::Failed);
                }
            }
        }
    });
}

#[test]
fn a_merge_message_settles_its_task_with_its_end() {
    use orch::domain::states::{MessageKind, TaskState};
    use orch::store::{ClaimMessage, MergeSettled, NewMerge};
    each(|db| {
        let mut store = db.open();
        for (key, merged) in [("T-MERGED", true), ("T-REFUSED", false)] {
            enqueue(&mut *store, key, T0);
            let (job, run_id) = ran(&mut *store, "w1", T0);
            let mut done = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
            done.task = None;
            done.merge = Some(NewMerge {
                project: job.project.clone(),
                task: job.task.clone(),
                task_id: job.task_id,
            });
            applied(&mut *store, &done);
            let task = store.task(job.task_id).unwrap().unwrap();
            assert_eq!(task.state, TaskState::Active, "waits for its merge");
            let claimed = store
                .claim_message(&ClaimMessage {
                    claimer: "n",
                    now: T0 + 20,
                    claim_ms: 1000,
                    dedup_ms: 1000,
                    alerts: false,
                    comments: true,
                    skip_projects: &[],
                })
                .unwrap()
                .unwrap();
            assert_eq!(claimed.kind, MessageKind::Merge);
            let settled = MergeSettled {
                task_id: job.task_id,
                merged,
                reason: format!("{key}: what happened"),
                alert: None,
            };
            store
                .settle_merge(claimed.id, "n", &settled, T0 + 30)
                .unwrap()
                .unwrap();
            let task = store.task(job.task_id).unwrap().unwrap();
            let wanted = if merged {
                TaskState::Complete
            } else {
                TaskState::Failed
            };
            assert_eq!(task.state, wanted);
            let last = store.history(job.job_id).unwrap().pop().unwrap();
            assert_eq!(last.reason, format!("{key}: what happened"));
        }
    });
}

#[test]
fn one_worker_looks_at_each_ci_gate_per_interval() {
    each(|db| {
        let mut store = db.open();
        let first = advanced_behind_ci(&mut *store, "T-1", "aaa");
        let second = advanced_behind_ci(&mut *store, "T-2", "bbb");
        let every = 60_000;
        // Oldest first, at most `limit`, each marked looked at.
        let taken = store.take_ci_gates(1, T0 + 100, every).unwrap();
        assert_eq!(taken.iter().map(|g| g.job_id).collect::<Vec<_>>(), [first]);
        let mut other = db.open();
        let taken = other.take_ci_gates(10, T0 + 101, every).unwrap();
        assert_eq!(taken.iter().map(|g| g.job_id).collect::<Vec<_>>(), [second]);
        // Another worker within the interval: nothing due.
        assert!(store.take_ci_gates(10, T0 + 200, every).unwrap().is_empty());
        // After it, both again.
        let again = other.take_ci_gates(10, T0 + 100 + every, every).unwrap();
        assert_eq!(again.iter().map(|g| g.job_id).collect::<Vec<_>>(), [first]);
        let both = store.take_ci_gates(10, T0 + 101 + every, every).unwrap();
        assert_eq!(both.iter().map(|g| g.job_id).collect::<Vec<_>>(), [second]);
        assert_eq!(store.ci_gates(10).unwrap().len(), 2);
    });
}
