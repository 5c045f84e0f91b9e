//! Intake: a sync's list of labelled open issues taken in as tasks, once each, and the waiting
//! jobs of issues that left the list withdrawn.

use orch::domain::states::{JobState, TaskState};
use orch::store::{IntakeIssue, IntakeSync, NewTask};

use super::*;

fn issue(number: i64) -> IntakeIssue {
    IntakeIssue {
        number,
        key: format!("WEB-{number}"),
        title: format!("Issue {number}"),
        body: format!("Body {number}"),
    }
}

fn sync(issues: &[IntakeIssue], now: i64) -> IntakeSync<'_> {
    IntakeSync {
        project: PROJECT,
        issues,
        stage: STAGES[0],
        priority: 5,
        max_attempts: 3,
        actor: "sync",
        now,
    }
}

#[test]
fn a_sync_takes_each_issue_in_once_and_withdraws_the_waiting_jobs_of_issues_gone() {
    each(|db| {
        let mut store = db.open();
        let issues: Vec<IntakeIssue> = (1..=3).map(issue).collect();
        let first = store.sync_intake(&sync(&issues, T0)).unwrap();
        let keys: Vec<&str> = first.created.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(keys, ["WEB-1", "WEB-2", "WEB-3"]);
        assert_eq!((first.known, first.cancelled.len()), (0, 0));
        let job = store.job(first.created[1].job_id).unwrap().unwrap();
        assert_eq!(
            (
                job.issue,
                job.title.as_str(),
                job.stage.as_str(),
                job.state,
                job.priority
            ),
            (Some(2), "Issue 2", STAGES[0], JobState::Queued, 5)
        );
        assert_eq!(store.task_body(job.task_id).unwrap(), "Body 2");

        // The same list again: nothing written.
        let again = store.sync_intake(&sync(&issues, T0 + 1)).unwrap();
        assert_eq!(
            (again.created.len(), again.known, again.cancelled.len()),
            (0, 3, 0)
        );

        // Issue 1 runs; issues 1 and 2 leave the list: 2's queued job is cancelled with the
        // reason in its history, 1's running job is left to finish.
        let running = claim(&mut *store, "w1", T0 + 2).unwrap();
        assert_eq!(running.task, "WEB-1");
        let left = store.sync_intake(&sync(&issues[2..], T0 + 3)).unwrap();
        let cancelled: Vec<(i64, &str)> = left
            .cancelled
            .iter()
            .map(|t| (t.issue, t.task.as_str()))
            .collect();
        assert_eq!(cancelled, [(2, "WEB-2")]);
        assert_eq!(
            store.job(running.job_id).unwrap().unwrap().state,
            JobState::Running
        );
        let gone = store.job(first.created[1].job_id).unwrap().unwrap();
        assert_eq!(gone.state, JobState::Cancelled);
        let history = store.history(gone.job_id).unwrap();
        let last = history.last().unwrap();
        assert_eq!(
            (last.to_state, last.actor.as_str()),
            (JobState::Cancelled, "sync")
        );
        assert!(last.reason.contains("issue #2"), "{}", last.reason);
        assert_eq!(
            store.task(gone.task_id).unwrap().unwrap().state,
            TaskState::Cancelled
        );

        // Back in the list: not made again, whatever state its task is in.
        let back = store.sync_intake(&sync(&issues, T0 + 4)).unwrap();
        assert_eq!((back.created.len(), back.known), (0, 3));
    });
}

#[test]
fn a_task_made_by_hand_for_an_issue_or_under_its_key_stands_for_it() {
    each(|db| {
        let mut store = db.open();
        store
            .enqueue(
                &NewTask {
                    issue: Some(1),
                    ..task("HOTFIX")
                },
                T0,
            )
            .unwrap();
        store.enqueue(&task("web-2 "), T0).unwrap();
        let issues: Vec<IntakeIssue> = (1..=3).map(issue).collect();
        let synced = store.sync_intake(&sync(&issues, T0 + 1)).unwrap();
        let keys: Vec<&str> = synced.created.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(keys, ["WEB-3"]);
        assert_eq!(synced.known, 2);
        // Another project's issues are its own.
        let other = store
            .sync_intake(&IntakeSync {
                project: "api",
                ..sync(&issues, T0 + 2)
            })
            .unwrap();
        assert_eq!(other.created.len(), 3);
    });
}

#[test]
fn the_label_sweep_queues_one_message_per_change_and_none_when_nothing_changed() {
    use orch::domain::intake::state_label;
    use orch::domain::states::MessageKind;
    use orch::store::LabelSweep;
    each(|db| {
        let mut store = db.open();
        let issues: Vec<IntakeIssue> = (1..=2).map(issue).collect();
        store.sync_intake(&sync(&issues, T0)).unwrap();
        store.enqueue(&task("NO-ISSUE"), T0).unwrap();
        let sweep = |since| LabelSweep {
            project: PROJECT,
            since,
            rule: state_label,
            now: T0 + 10,
        };
        let first = store.sweep_issue_labels(&sweep(None)).unwrap();
        let labels: Vec<(&str, Option<&str>)> = first
            .iter()
            .map(|c| (c.task.as_str(), c.label.as_deref()))
            .collect();
        assert_eq!(
            labels,
            [
                ("WEB-1", Some("orch:queued")),
                ("WEB-2", Some("orch:queued"))
            ]
        );
        assert!(store.sweep_issue_labels(&sweep(None)).unwrap().is_empty());
        let waiting = |store: &dyn Store| {
            store
                .outbox_summary(T0 + 100, 10)
                .unwrap()
                .due_by_kind
                .iter()
                .find(|(kind, _)| *kind == MessageKind::IssueLabel)
                .map_or(0, |(_, n)| *n)
        };
        assert_eq!(waiting(&*store), 2);

        // WEB-1 runs: its label changes, its waiting message carries the change (no second).
        let running = claim(&mut *store, "w1", T0 + 20).unwrap();
        assert_eq!(running.task, "WEB-1");
        let changed = store.sweep_issue_labels(&sweep(None)).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].label.as_deref(), Some("orch:running"));
        assert_eq!(waiting(&*store), 2);
        let task = store.task(running.task_id).unwrap().unwrap();
        assert_eq!(task.issue_label.as_deref(), Some("orch:running"));

        // WEB-2 cancelled: finished tasks are looked at only since the last look.
        let web2 = store.tasks_by_key("WEB-2").unwrap()[0].clone();
        let job = store.jobs_of_task(web2.task_id).unwrap()[0].job_id;
        store.cancel(job, "op", T0 + 30).unwrap();
        assert!(store.sweep_issue_labels(&sweep(None)).unwrap().is_empty());
        let gone = store.sweep_issue_labels(&sweep(Some(T0 + 25))).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].task.as_str(), gone[0].label.as_deref()),
            ("WEB-2", None)
        );
    });
}
