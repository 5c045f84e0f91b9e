//! Approvals: a job awaiting a person made due, or cancelled with its previous stage queued
//! again carrying the reviewer's note; a forge comment taken as a command once; the alert of a
//! long wait sent once.

use orch::domain::states::JobState;
use orch::store::{ApprovalAlerts, Rejection};

use super::*;

/// Task `key`'s analyst stage run at `now`, its developer job awaiting approval: its id.
fn awaiting(store: &mut dyn Store, key: &str, now: i64) -> i64 {
    advanced(store, key, now, None, true)
}

#[test]
fn an_approved_job_is_due_at_once_and_runs() {
    each(|db| {
        let mut store = db.open();
        let next = awaiting(&mut *store, "T-1", T0);
        assert_eq!(
            store.job(next).unwrap().unwrap().state,
            JobState::AwaitingApproval
        );
        // Waiting for a person: not claimable.
        assert!(claim(&mut *store, "w2", T0 + 50).is_none());

        let reviewed = store
            .approve(next, "alice", Some("looks right"), T0 + 100)
            .unwrap();
        assert_eq!(
            (
                reviewed.job_id,
                reviewed.task.as_str(),
                reviewed.stage.as_str()
            ),
            (next, "T-1", "developer")
        );
        assert_eq!(reviewed.sent_back, None);
        let job = store.job(next).unwrap().unwrap();
        assert_eq!((job.state, job.run_after), (JobState::Queued, T0 + 100));
        let last = store.history(next).unwrap().pop().unwrap();
        assert_eq!(
            (last.from_state, last.to_state, last.actor.as_str()),
            (Some(JobState::AwaitingApproval), JobState::Queued, "alice")
        );
        assert_eq!(last.reason, "approved: looks right");
        assert_eq!(store.review_note(next).unwrap(), None);

        // Approved once: a second approval (or a rejection) is a usage error, writing nothing.
        let again = store.approve(next, "bob", None, T0 + 110).unwrap_err();
        assert_eq!(orch::exit::code_of(&again), orch::exit::USAGE, "{again:#}");
        assert!(format!("{again:#}").contains("is queued"), "{again:#}");
        assert_eq!(store.history(next).unwrap().len(), 2);

        let claimed = claim(&mut *store, "w2", T0 + 120).unwrap();
        assert_eq!(claimed.job_id, next);
    });
}

#[test]
fn a_rejected_job_sends_its_previous_stage_back_with_the_note() {
    each(|db| {
        let mut store = db.open();
        let next = awaiting(&mut *store, "T-1", T0);
        let reviewed = store
            .reject(&Rejection {
                job_id: next,
                stage: "analyst",
                note: "the plan misses the migration",
                actor: "alice",
                now: T0 + 100,
            })
            .unwrap();
        let back = reviewed.sent_back.expect("a job queued again");
        let cancelled = store.job(next).unwrap().unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        let again = store.job(back).unwrap().unwrap();
        assert_eq!(
            (again.state, again.stage.as_str(), again.task.as_str()),
            (JobState::Queued, "analyst", "T-1")
        );
        assert_eq!(
            store.review_note(back).unwrap().as_deref(),
            Some("the plan misses the migration")
        );
        assert_eq!(store.review_note(next).unwrap(), None);
        let reason = &store.history(next).unwrap().pop().unwrap().reason;
        assert!(reason.contains("rejected, analyst runs again"), "{reason}");

        // The rejected job waits no more: rejecting it again is a usage error.
        let twice = store
            .reject(&Rejection {
                job_id: next,
                stage: "analyst",
                note: "again",
                actor: "bob",
                now: T0 + 110,
            })
            .unwrap_err();
        assert_eq!(orch::exit::code_of(&twice), orch::exit::USAGE, "{twice:#}");
        assert_eq!(store.jobs_of_task(again.task_id).unwrap().len(), 3);
        // The stage sent back is claimed next, carrying its note.
        assert_eq!(claim(&mut *store, "w2", T0 + 120).unwrap().job_id, back);
    });
}

#[test]
fn a_forge_comment_is_taken_once_per_project() {
    each(|db| {
        let mut store = db.open();
        assert!(store.take_comment(PROJECT, 42, T0).unwrap());
        assert!(!store.take_comment(PROJECT, 42, T0 + 1).unwrap());
        // Another handle (another host) sees it taken too.
        assert!(!db.open().take_comment(PROJECT, 42, T0 + 2).unwrap());
        assert!(store.take_comment("api", 42, T0 + 3).unwrap());
        assert!(store.take_comment(PROJECT, 43, T0 + 4).unwrap());
    });
}

#[test]
fn a_long_wait_for_approval_is_alerted_once() {
    each(|db| {
        let mut store = db.open();
        let early = awaiting(&mut *store, "T-1", T0);
        let late = awaiting(&mut *store, "T-2", T0 + 1_000);
        let alert = |job: &Job| {
            Some(NewAlert::new(
                AlertKind::ApprovalWaiting,
                &format!("approval {}", job.job_id),
                "waits for approval",
            ))
        };
        // Only the job waiting since before `waiting_since`.
        let alerted = store
            .alert_waiting_approvals(&ApprovalAlerts {
                waiting_since: T0 + 500,
                alert: &alert,
                now: T0 + 2_000,
            })
            .unwrap();
        assert_eq!(alerted, vec![early]);
        assert_eq!(store.outbox_summary(T0 + 2_000, 10).unwrap().pending, 1);
        // Once: the same call again alerts nothing new.
        let again = store
            .alert_waiting_approvals(&ApprovalAlerts {
                waiting_since: T0 + 500,
                alert: &alert,
                now: T0 + 3_000,
            })
            .unwrap();
        assert!(again.is_empty(), "{again:?}");

        // Alerts off: the job's history says it waits, and it is not noted twice.
        let off = |_: &Job| None;
        let noted = store
            .alert_waiting_approvals(&ApprovalAlerts {
                waiting_since: T0 + 5_000,
                alert: &off,
                now: T0 + 6_000,
            })
            .unwrap();
        assert_eq!(noted, vec![late]);
        let reason = &store.history(late).unwrap().pop().unwrap().reason;
        assert!(reason.contains("alerts are off"), "{reason}");
        assert_eq!(store.outbox_summary(T0 + 6_000, 10).unwrap().pending, 1);
        assert!(store
            .alert_waiting_approvals(&ApprovalAlerts {
                waiting_since: T0 + 5_000,
                alert: &off,
                now: T0 + 7_000,
            })
            .unwrap()
            .is_empty());
    });
}
