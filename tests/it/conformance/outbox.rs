//! The outbox: queue, claim (one claimer per message, the dedup window and folding), finish
//! (sent, failed, deferred, dead), retry the dead, and what waits.

use std::sync::{Arc, Barrier};

use orch::domain::states::{MessageKind, OutboxState};
use orch::store::{ClaimMessage, Finish, Message, NewComment};

use super::*;

fn alert(key: &str, task: &str) -> Message {
    let reason = "exit 0 but the log is empty\nsecond line";
    Message::Alert(NewAlert {
        task: Some(task.into()),
        ..NewAlert::new(AlertKind::SilentFailure, key, reason)
    })
}

fn claim_at<'a>(now: i64, skip: &'a [String]) -> ClaimMessage<'a> {
    ClaimMessage {
        claimer: "test",
        now,
        claim_ms: 60_000,
        dedup_ms: 3_600_000,
        alerts: true,
        comments: true,
        skip_projects: skip,
    }
}

fn queue(store: &mut dyn Store, messages: &[(Message, i64)]) -> Vec<i64> {
    messages
        .iter()
        .map(|(message, now)| store.queue(message, *now).unwrap())
        .collect()
}

#[test]
fn a_queued_alert_keeps_its_first_line_and_round_trips() {
    each(|db| {
        let mut store = db.open();
        let id = store.queue(&alert("web/developer", "T-1"), 1000).unwrap();
        let claimed = store.claim_message(&claim_at(1000, &[])).unwrap().unwrap();
        assert_eq!(
            (claimed.id, claimed.attempts, claimed.kind),
            (id, 1, MessageKind::Alert)
        );
        assert_eq!(claimed.task.as_deref(), Some("T-1"));
        let Ok(Message::Alert(back)) = claimed.message else {
            panic!("{:?}", claimed.message)
        };
        assert_eq!(back.reason, "exit 0 but the log is empty");
        assert_eq!(back.kind, AlertKind::SilentFailure);
        // Claimed: nobody else gets it until the claim runs out.
        assert!(store.claim_message(&claim_at(1000, &[])).unwrap().is_none());
        let again = store
            .claim_message(&claim_at(61_000, &[]))
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
        // The first sender's claim is gone: its failure is not recorded, its success is.
        let failed = Finish::Failed {
            error: "late",
            retry_at: 0,
            out_of_attempts: false,
        };
        let lost = store
            .finish_message(id, "someone else", &failed, 61_000)
            .unwrap();
        assert_eq!(lost, None);
        let sent = store
            .finish_message(id, "someone else", &Finish::Sent, 61_000)
            .unwrap();
        assert_eq!(sent, Some(OutboxState::Sent));
    });
}

#[test]
fn alerts_fold_and_wait_out_the_window() {
    each(|db| {
        let mut store = db.open();
        let ids = queue(
            &mut *store,
            &[
                (alert("k", "T-1"), 1000),
                (alert("k", "T-2"), 1001),
                (alert("k", "T-2"), 1002),
                (alert("other", "T-9"), 1003),
            ],
        );
        let first = ids[0];
        let claimed = store.claim_message(&claim_at(2000, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, first);
        assert_eq!(claimed.folded, 2);
        assert_eq!(claimed.folded_tasks, vec!["T-2".to_string()]);
        store
            .finish_message(first, "test", &Finish::Sent, 2000)
            .unwrap();
        let other = store.claim_message(&claim_at(2000, &[])).unwrap().unwrap();
        assert_eq!(other.folded, 0);
        store
            .finish_message(other.id, "test", &Finish::Sent, 2000)
            .unwrap();
        let summary = store.outbox_summary(2000, 10).unwrap();
        assert_eq!((summary.sent, summary.folded, summary.pending), (2, 2, 0));
        // Within the window after a send: held until the window ends, then sent.
        let late = store.queue(&alert("k", "T-3"), 3000).unwrap();
        assert!(store.claim_message(&claim_at(3000, &[])).unwrap().is_none());
        let summary = store.outbox_summary(3000, 10).unwrap();
        let held = summary.waiting[0].next_attempt_at;
        assert_eq!((summary.waiting[0].id, held), (late, 2000 + 3_600_000));
        assert_eq!(summary.due, 0);
        let claimed = store.claim_message(&claim_at(held, &[])).unwrap().unwrap();
        assert_eq!(claimed.id, late);
    });
}

#[test]
fn failures_back_off_then_die_and_can_be_retried() {
    each(|db| {
        let mut store = db.open();
        let id = store.queue(&alert("k", "T-1"), 0).unwrap();
        for attempt in 1..=2 {
            let claimed = store.claim_message(&claim_at(attempt * 10, &[])).unwrap();
            assert_eq!(claimed.unwrap().attempts, attempt);
            let finish = Finish::Failed {
                error: "HTTP 500",
                retry_at: attempt * 10 + 5,
                out_of_attempts: attempt == 2,
            };
            let state = store.finish_message(id, "test", &finish, 0).unwrap();
            let want = if attempt == 2 {
                OutboxState::Dead
            } else {
                OutboxState::Pending
            };
            assert_eq!(state, Some(want));
        }
        assert!(store.claim_message(&claim_at(1000, &[])).unwrap().is_none());
        let summary = store.outbox_summary(1000, 10).unwrap();
        assert_eq!((summary.dead, summary.pending), (1, 0));
        assert_eq!(
            summary.recent_dead[0].last_error.as_deref(),
            Some("HTTP 500")
        );
        assert_eq!(store.retry_dead(1000).unwrap(), 1);
        let claimed = store.claim_message(&claim_at(1000, &[])).unwrap().unwrap();
        assert_eq!(claimed.attempts, 1);
        let dead = Finish::Dead { error: "no forge" };
        let state = store
            .finish_message(claimed.id, "test", &dead, 1000)
            .unwrap();
        assert_eq!(state, Some(OutboxState::Dead));
    });
}

#[test]
fn a_deferral_is_not_an_attempt_and_holds_the_destination() {
    each(|db| {
        let mut store = db.open();
        let comment = |task: &str, project: &str| {
            Message::Comment(NewComment {
                project: project.into(),
                task: task.into(),
                issue: 7,
                ..Default::default()
            })
        };
        let ids = queue(
            &mut *store,
            &[
                (comment("T-1", "web"), 0),
                (comment("T-2", "web"), 0),
                (comment("T-3", "api"), 0),
            ],
        );
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        let claimed = store.claim_message(&claim_at(0, &[])).unwrap().unwrap();
        assert_eq!((claimed.id, claimed.kind), (a, MessageKind::Comment));
        let finish = Finish::Deferred {
            error: "HTTP 429",
            until: 500,
        };
        store.finish_message(a, "test", &finish, 0).unwrap();
        // web's forge waits; api's does not; skipped projects are left alone.
        let skip = ["api".to_string()];
        assert!(store.claim_message(&claim_at(10, &skip)).unwrap().is_none());
        assert_eq!(
            store.claim_message(&claim_at(10, &[])).unwrap().unwrap().id,
            c
        );
        let next = store.claim_message(&claim_at(500, &[])).unwrap().unwrap();
        assert_eq!((next.id, next.attempts), (a, 1));
        assert_eq!(
            store
                .claim_message(&claim_at(500, &[]))
                .unwrap()
                .unwrap()
                .id,
            b
        );
        assert_eq!(store.comments().unwrap().len(), 3);
    });
}

#[test]
fn what_waits_for_a_destination_is_noted_not_claimed() {
    each(|db| {
        let mut store = db.open();
        queue(
            &mut *store,
            &[(alert("k", "T-1"), 0), (alert("j", "T-2"), 0)],
        );
        let no_alerts = ClaimMessage {
            alerts: false,
            ..claim_at(10, &[])
        };
        assert!(store.claim_message(&no_alerts).unwrap().is_none());
        assert_eq!(
            store
                .note_waiting(MessageKind::Alert, "alerts are off")
                .unwrap(),
            2
        );
        assert_eq!(store.note_waiting(MessageKind::Comment, "off").unwrap(), 0);
        let summary = store.outbox_summary(10, 10).unwrap();
        assert_eq!(
            summary.waiting[0].last_error.as_deref(),
            Some("alerts are off")
        );
        assert_eq!(summary.waiting[0].attempts, 0, "not an attempt");
        assert_eq!(summary.due_by_kind, vec![(MessageKind::Alert, 2)]);
        assert_eq!(summary.oldest_pending_at, Some(0));
    });
}

#[test]
fn two_claimers_of_one_message_one_gets_it() {
    each(|db| {
        let mut store = db.open();
        let id = store.queue(&alert("k", "T-1"), 0).unwrap();
        let start = Arc::new(Barrier::new(8));
        let got: Vec<i64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|n| {
                    let start = Arc::clone(&start);
                    scope.spawn(move || {
                        let mut store = db.open();
                        let claimer = format!("notify-{n}");
                        let request = ClaimMessage {
                            claimer: &claimer,
                            ..claim_at(10, &[])
                        };
                        start.wait();
                        store.claim_message(&request).unwrap().map(|c| c.id)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(got, vec![id]);
    });
}
