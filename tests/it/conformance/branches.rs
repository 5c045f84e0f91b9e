//! A task's branch, worktree and pull request: one branch and one pull request per task, ever;
//! pushes and their failures recorded on the task and its run; the pull-request message queued
//! once the branch is on its remote, one waiting at a time; enqueue's refusals.

use orch::domain::decide::Decision;
use orch::domain::states::{MessageKind, OutboxState, PrState, TaskState};
use orch::store::{
    BranchClaim, BranchClaimed, BranchUpdate, ClaimMessage, Message, NewPullRequest,
    PullRequestSettled, PushOutcome, Refused, Task, WorktreeChange, WorktreeRecord,
};

use super::*;

fn task_of(store: &dyn Store, job_id: i64) -> Task {
    let job = store.job(job_id).unwrap().unwrap();
    store.task(job.task_id).unwrap().unwrap()
}

fn claim_branch(store: &mut dyn Store, task_id: i64, branch: &str, now: i64) -> BranchClaimed {
    store
        .claim_branch(&BranchClaim {
            task_id,
            branch,
            base_branch: "main",
            remote_url: Some("https://git.example.org/team/web.git"),
            now,
        })
        .unwrap()
}

fn update(task_id: i64, now: i64) -> BranchUpdate {
    BranchUpdate {
        task_id,
        run_id: None,
        push: None,
        worktree: WorktreeChange::Unchanged,
        pull_request: None,
        alert: None,
        now,
    }
}

/// A claim of every kind of message by `claimer` at `now` (the forge's on, no dedup).
fn claim_at(claimer: &str, now: i64) -> ClaimMessage<'_> {
    ClaimMessage {
        claimer,
        now,
        claim_ms: 60_000,
        dedup_ms: 0,
        alerts: true,
        comments: true,
        skip_projects: &[],
    }
}

fn pr(task: &Task) -> NewPullRequest {
    NewPullRequest {
        project: task.project.clone(),
        task: task.key.clone(),
        task_id: task.task_id,
    }
}

/// Queue the task's pull-request message (its branch pushed at `push`, when given), deliver it
/// as notify does, and settle it as pull request `number` in `state`: the message's state after.
fn sync_pull(
    store: &mut dyn Store,
    task: &Task,
    push: Option<&str>,
    number: i64,
    state: PrState,
    now: i64,
) -> Option<OutboxState> {
    store
        .record_branch(&BranchUpdate {
            push: push.map(|sha| PushOutcome::Pushed { sha: sha.into() }),
            pull_request: Some(pr(task)),
            ..update(task.task_id, now)
        })
        .unwrap();
    let claimed = store.claim_message(&claim_at("n1", now)).unwrap().unwrap();
    assert_eq!(claimed.kind, MessageKind::PullRequest);
    let settled = PullRequestSettled {
        task_id: task.task_id,
        number,
        url: format!("https://git.example.org/team/web/pulls/{number}"),
        state,
    };
    store
        .settle_pull_request(claimed.id, "n1", &settled, now + 1)
        .unwrap()
}

/// A task whose ok run moved its branch to `head`: its first job finalized with that head.
fn finalized_with_head(store: &mut dyn Store, key: &str, head: &str, now: i64) -> (Task, i64) {
    let job_id = enqueue(store, key, now);
    let (job, run_id) = ran(store, "w1", now);
    assert_eq!(job.job_id, job_id);
    let mut plan = plan(&job, run_id, Decision::Completed, JobState::Done, now + 2);
    plan.task = Some(TaskState::Complete);
    plan.branch_head = Some(head.to_string());
    store.apply_finalize(&plan).unwrap();
    (task_of(store, job_id), run_id)
}

#[test]
fn a_task_keeps_its_first_branch_and_no_two_tasks_share_one() {
    each(|db| {
        let mut store = db.open();
        let a = enqueue(&mut *store, "T-1", T0);
        let b = enqueue(&mut *store, "T-2", T0);
        let (a, b) = (task_of(&*store, a).task_id, task_of(&*store, b).task_id);
        let BranchClaimed::Task(task) = claim_branch(&mut *store, a, "feature/T-1", T0) else {
            panic!("claimed")
        };
        assert_eq!(task.branch.as_deref(), Some("feature/T-1"));
        assert_eq!(task.base_branch.as_deref(), Some("main"));
        assert_eq!(
            task.remote_url.as_deref(),
            Some("https://git.example.org/team/web.git")
        );
        // Asked for another, it keeps its own.
        let BranchClaimed::Task(again) = claim_branch(&mut *store, a, "feature/other", T0) else {
            panic!("kept")
        };
        assert_eq!(again.branch.as_deref(), Some("feature/T-1"));
        // Another task cannot have it.
        match claim_branch(&mut *store, b, "feature/T-1", T0) {
            BranchClaimed::Taken { by_task } => assert_eq!(by_task, "T-1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.task(b).unwrap().unwrap().branch, None);
    });
}

#[test]
fn worktrees_are_recorded_per_host_and_their_size_and_removal_too() {
    each(|db| {
        let mut store = db.open();
        let job = enqueue(&mut *store, "T-1", T0);
        let task_id = task_of(&*store, job).task_id;
        claim_branch(&mut *store, task_id, "feature/T-1", T0);
        let record = |path, base| WorktreeRecord {
            task_id,
            host: HOST,
            path,
            base_sha: base,
            now: T0,
        };
        store.record_worktree(&record("/w/web/T-1", "aaa")).unwrap();
        store.record_worktree(&record("/w/web/T-1", "bbb")).unwrap();
        let task = store.task(task_id).unwrap().unwrap();
        assert_eq!(task.worktree.as_deref(), Some("/w/web/T-1"));
        assert_eq!(task.worktree_host.as_deref(), Some(HOST));
        assert_eq!(
            task.base_sha.as_deref(),
            Some("aaa"),
            "the first base stays"
        );
        store
            .record_branch(&BranchUpdate {
                worktree: WorktreeChange::Measured(123_456),
                ..update(task_id, T0)
            })
            .unwrap();
        let usage = store.worktree_usage(HOST).unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!((usage[0].worktrees, usage[0].bytes), (1, 123_456));
        assert!(store.worktree_usage("elsewhere").unwrap().is_empty());
        assert_eq!(store.worktrees(HOST).unwrap().len(), 1);
        store
            .record_branch(&BranchUpdate {
                worktree: WorktreeChange::Removed,
                ..update(task_id, T0)
            })
            .unwrap();
        let task = store.task(task_id).unwrap().unwrap();
        assert_eq!((task.worktree, task.worktree_bytes), (None, None));
        assert_eq!(
            task.branch.as_deref(),
            Some("feature/T-1"),
            "the branch stays"
        );
        assert!(store.worktrees(HOST).unwrap().is_empty());
        assert!(store.worktree_usage(HOST).unwrap().is_empty());
    });
}

#[test]
fn a_push_is_due_until_one_succeeds_and_each_is_recorded_on_the_run() {
    each(|db| {
        let mut store = db.open();
        let job = enqueue(&mut *store, "T-0", T0);
        let task_id = task_of(&*store, job).task_id;
        claim_branch(&mut *store, task_id, "feature/T-0", T0);
        store
            .record_worktree(&WorktreeRecord {
                task_id,
                host: HOST,
                path: "/w/T-0",
                base_sha: "base",
                now: T0,
            })
            .unwrap();
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut plan = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 2);
        plan.branch_head = Some("c1".into());
        store.apply_finalize(&plan).unwrap();
        let task = store.task(task_id).unwrap().unwrap();
        assert_eq!(task.head_sha.as_deref(), Some("c1"));
        assert!(task.push_due());
        let due = store.unpushed_branches(HOST, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(store.unpushed_branches("elsewhere", 10).unwrap().is_empty());

        // A failure: on the task and the run, the alert queued, still due.
        let alert = NewAlert::new(AlertKind::PushFailed, "web/T-0", "503");
        store
            .record_branch(&BranchUpdate {
                run_id: Some(run_id),
                push: Some(PushOutcome::Failed {
                    error: "503".into(),
                }),
                alert: Some(alert),
                ..update(task_id, T0 + 3)
            })
            .unwrap();
        let task = store.task(task_id).unwrap().unwrap();
        assert_eq!(task.push_error.as_deref(), Some("503"));
        assert_eq!(
            store.run(run_id).unwrap().unwrap().push_error.as_deref(),
            Some("503")
        );
        assert_eq!(store.unpushed_branches(HOST, 10).unwrap().len(), 1);
        let summary = store.outbox_summary(T0 + 3, 10).unwrap();
        assert_eq!(
            summary.waiting[0].alert_kind.as_deref(),
            Some("push_failed")
        );

        // Then a success, from a tick that names no run: the task's last ok run gets it.
        store
            .record_branch(&BranchUpdate {
                push: Some(PushOutcome::Pushed { sha: "c1".into() }),
                ..update(task_id, T0 + 4)
            })
            .unwrap();
        let task = store.task(task_id).unwrap().unwrap();
        assert_eq!(
            (
                task.pushed_sha.as_deref(),
                task.push_error.as_deref(),
                task.pushed_at
            ),
            (Some("c1"), None, Some(T0 + 4))
        );
        assert!(!task.push_due());
        let run = store.run(run_id).unwrap().unwrap();
        assert_eq!(
            (run.pushed_sha.as_deref(), run.push_error),
            (Some("c1"), None)
        );
        assert!(store.unpushed_branches(HOST, 10).unwrap().is_empty());
    });
}

#[test]
fn the_pull_request_message_waits_for_a_push_and_one_waits_at_a_time() {
    each(|db| {
        let mut store = db.open();
        let (task, _) = finalized_with_head(&mut *store, "T-1", "c1", T0);
        claim_branch(&mut *store, task.task_id, "feature/T-1", T0);
        let ask = |push| BranchUpdate {
            push,
            pull_request: Some(pr(&task)),
            ..update(task.task_id, T0 + 5)
        };
        // Not pushed yet: nothing to open a pull request from.
        let recorded = store.record_branch(&ask(None)).unwrap();
        assert_eq!(recorded.pull_request_queued, None);
        let pushed = Some(PushOutcome::Pushed { sha: "c1".into() });
        let first = store.record_branch(&ask(pushed)).unwrap();
        assert!(first.pull_request_queued.is_some());
        // One waits already: no second.
        let second = store.record_branch(&ask(None)).unwrap();
        assert_eq!(second.pull_request_queued, None);
        let claim = claim_at("n1", T0 + 6);
        let claimed = store.claim_message(&claim).unwrap().unwrap();
        assert_eq!(claimed.kind, MessageKind::PullRequest);
        assert_eq!(claimed.message, Ok(Message::PullRequest(pr(&task))));
        // Being sent: a later stage's update queues one more (it will say more).
        let third = store.record_branch(&ask(None)).unwrap();
        assert!(third.pull_request_queued.is_some());
        // Forge messages wait while the forge is off.
        let off = ClaimMessage {
            comments: false,
            claimer: "n2",
            ..claim
        };
        assert!(store.claim_message(&off).unwrap().is_none());
    });
}

#[test]
fn settling_records_the_pull_request_and_its_number_never_changes() {
    each(|db| {
        let mut store = db.open();
        let (task, _) = finalized_with_head(&mut *store, "T-1", "c1", T0);
        claim_branch(&mut *store, task.task_id, "feature/T-1", T0);
        let state = sync_pull(&mut *store, &task, Some("c1"), 7, PrState::Open, T0 + 6);
        assert_eq!(state, Some(OutboxState::Sent));
        let shown = store.task(task.task_id).unwrap().unwrap();
        assert_eq!(
            (shown.pr_number, shown.pr_state, shown.pr_synced_at),
            (Some(7), Some(PrState::Open), Some(T0 + 7))
        );
        assert_eq!(
            shown.pr_url.as_deref(),
            Some("https://git.example.org/team/web/pulls/7")
        );
        // Another number is never recorded over it; the same one's new state is.
        sync_pull(&mut *store, &task, None, 9, PrState::Open, T0 + 8);
        let shown = store.task(task.task_id).unwrap().unwrap();
        assert_eq!(shown.pr_number, Some(7));
        sync_pull(&mut *store, &task, None, 7, PrState::Merged, T0 + 10);
        let shown = store.task(task.task_id).unwrap().unwrap();
        assert_eq!(shown.pr_state, Some(PrState::Merged));
        // The facts a body is made from: the task and its finalized runs.
        let facts = store.pull_request_facts(task.task_id).unwrap().unwrap();
        assert_eq!(facts.task.key, "T-1");
        assert_eq!(facts.runs.len(), 1);
        assert_eq!(facts.runs[0].stage, STAGES[0]);
    });
}

#[test]
fn enqueue_refuses_a_complete_task_an_open_pull_request_and_a_second_spelling() {
    each(|db| {
        let mut store = db.open();
        let (task, _) = finalized_with_head(&mut *store, "T-1", "c1", T0);
        assert_eq!(task.state, TaskState::Complete);
        let jobs = |store: &dyn Store| store.jobs_of_task(task.task_id).unwrap().len();
        let before = jobs(&*store);
        let again = store.enqueue(&super::task("T-1"), T0 + 10).unwrap();
        assert!(!again.created);
        assert_eq!(again.refused, Some(Refused::Complete));
        for spelling in ["t-1", " T-1", "T-1 "] {
            let other = store.enqueue(&super::task(spelling), T0 + 10).unwrap();
            assert!(!other.created, "{spelling:?}");
            assert_eq!(
                other.refused,
                Some(Refused::SpelledLike { key: "T-1".into() }),
                "{spelling:?}"
            );
            assert!(store.tasks_by_key(spelling).unwrap().is_empty());
        }
        assert_eq!(jobs(&*store), before);

        // A task failed for good with an open pull request: refused too.
        let job = enqueue(&mut *store, "T-2", T0 + 20);
        let (held, run_id) = ran(&mut *store, "w1", T0 + 20);
        assert_eq!(held.job_id, job);
        let mut failed = plan(&held, run_id, Decision::Failed, JobState::Failed, T0 + 22);
        failed.task = Some(TaskState::Failed);
        store.apply_finalize(&failed).unwrap();
        let failed_task = task_of(&*store, job);
        claim_branch(&mut *store, failed_task.task_id, "feature/T-2", T0 + 23);
        sync_pull(
            &mut *store,
            &failed_task,
            Some("c2"),
            3,
            PrState::Open,
            T0 + 24,
        );
        let refused = store.enqueue(&super::task("T-2"), T0 + 30).unwrap();
        assert_eq!(
            refused.refused,
            Some(Refused::PullRequestOpen {
                number: 3,
                url: "https://git.example.org/team/web/pulls/3".into()
            })
        );
        assert!(!refused.created);
        // Closed without merging: the task may run again (on the same branch, the same PR).
        sync_pull(&mut *store, &failed_task, None, 3, PrState::Closed, T0 + 31);
        let queued = store.enqueue(&super::task("T-2"), T0 + 40).unwrap();
        assert!(queued.created, "{queued:?}");
        assert_eq!(
            store
                .task(failed_task.task_id)
                .unwrap()
                .unwrap()
                .branch
                .as_deref(),
            Some("feature/T-2")
        );
    });
}
