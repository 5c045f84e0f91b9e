//! Retention: pruning finished tasks in batches (what goes, what stays), the trash of files per
//! host, the sweep of delivered messages, the counts and the usage rollup that outlive the rows,
//! the fleet's housekeeping turns, and the pages a prune hands back.

use orch::domain::retention::Cutoffs;
use orch::domain::states::{JobState, OutboxState, TaskState};
use orch::domain::usage::{Dim, UNJUDGED};
use orch::store::{
    Applied, BranchClaim, Finish, JobFilter, Message, OutboxSweep, PruneBatch, PrunedBatch,
    Refused, TrashItem, TrashKind, Turn, UsageQuery, WorktreeRecord,
};

use super::*;

const DAY: i64 = 86_400_000;
const USAGE: &str = r#"{"cost_usd":0.25,"input_tokens":100,"output_tokens":20,"cache_read_tokens":5,"cache_write_tokens":1,"turns":3}"#;

/// Task `key` queued at `at`, its first stage run on `host` and finalized at `at + 10`,
/// finishing the task as `how` (complete or failed), with `usage` and a usage comment.
fn finished_on(
    store: &mut dyn Store,
    host: &str,
    key: &str,
    at: i64,
    how: TaskState,
) -> (Job, i64) {
    enqueue(store, key, at);
    let job = claim(store, "w1", at).expect("the task's job");
    let run_id = start_on(store, &job, host, at);
    end(store, run_id, at + 5);
    let (decision, to) = match how {
        TaskState::Complete => (Decision::Completed, JobState::Done),
        _ => (Decision::Failed, JobState::Failed),
    };
    let mut finish = plan(&job, run_id, decision, to, at + 10);
    finish.task = Some(how);
    finish.verdict.usage_json = Some(USAGE.into());
    finish.comment = Some(comment(&job, run_id));
    assert!(matches!(
        store.apply_finalize(&finish).unwrap(),
        Applied::Done(_)
    ));
    (job, run_id)
}

fn finished(store: &mut dyn Store, key: &str, at: i64, how: TaskState) -> (Job, i64) {
    finished_on(store, HOST, key, at, how)
}

/// Task `key` whose run started at `started` and was cancelled at `cancelled`: the run is
/// closed, but its agent has not ended (its log may still be written).
fn cancelled_while_running(store: &mut dyn Store, key: &str, started: i64, cancelled: i64) -> Job {
    enqueue(store, key, started);
    let job = claim(store, "w1", started).expect("the task's job");
    start(store, &job, started);
    store.cancel(job.job_id, "op", cancelled).unwrap();
    job
}

fn batch(cutoffs: Cutoffs, limit: i64) -> PruneBatch<'static> {
    PruneBatch {
        finished: TaskState::FINISHED,
        cutoffs,
        after: None,
        limit,
        host: HOST,
        now: T0 + 100 * DAY,
    }
}

/// Every batch of a prune (or a preview) with `cutoffs`, summed.
fn prune_all(store: &mut dyn Store, cutoffs: Cutoffs, preview: bool) -> PrunedBatch {
    let mut total = PrunedBatch::default();
    let mut step = batch(cutoffs, 2);
    loop {
        let pruned = if preview {
            store.preview_prune(&step).unwrap()
        } else {
            store.prune_batch(&step).unwrap()
        };
        total.tasks += pruned.tasks;
        total.jobs += pruned.jobs;
        total.history += pruned.history;
        total.runs += pruned.runs;
        total.outbox += pruned.outbox;
        total.files.extend(pruned.files);
        match pruned.next {
            Some(next) => step.after = Some(next),
            None => return total,
        }
    }
}

/// Removes everything finished before `at`, whatever runs it has.
fn before(at: i64) -> Cutoffs {
    Cutoffs {
        finished_before: at,
        open_runs_since: at,
    }
}

#[test]
fn prune_removes_finished_tasks_before_the_cutoff_and_nothing_live() {
    each(|db| {
        let mut store = db.open();
        let (old, _) = finished(&mut *store, "T-old", T0, TaskState::Complete);
        let (failed, _) = finished_on(&mut *store, "h2", "T-failed", T0 + 20, TaskState::Failed);
        let stale = cancelled_while_running(&mut *store, "T-stale", T0 + 40, T0 + 50);
        let writing =
            cancelled_while_running(&mut *store, "T-writing", T0 + 2 * DAY, T0 + 2 * DAY + 10);
        let (new, _) = finished(&mut *store, "T-new", T0 + 3 * DAY, TaskState::Complete);
        let live = enqueue(&mut *store, "T-live", T0 + 4 * DAY);
        // The worktrees a crash left recorded (a task's last stage removes its own).
        for (job, host) in [(&old, HOST), (&failed, "h2"), (&stale, HOST)] {
            let path = format!("/wt/web/{}", job.task);
            store
                .record_worktree(&WorktreeRecord {
                    task_id: job.task_id,
                    host,
                    path: &path,
                    base_sha: "0123abc",
                    now: T0 + 60,
                })
                .unwrap();
        }
        let cutoffs = Cutoffs {
            finished_before: T0 + 2 * DAY + DAY / 2,
            open_runs_since: T0 + DAY,
        };

        let preview = prune_all(&mut *store, cutoffs, true);
        assert_eq!(
            (preview.tasks, preview.jobs, preview.history, preview.runs),
            (3, 3, 9, 3)
        );
        assert!(preview.files.iter().all(|f| f.id == 0));
        assert!(
            store.job(old.job_id).unwrap().is_some(),
            "a preview removes nothing"
        );

        let pruned = prune_all(&mut *store, cutoffs, false);
        assert_eq!(
            (pruned.tasks, pruned.jobs, pruned.history, pruned.runs),
            (3, 3, 9, 3)
        );
        for gone in [&old, &failed, &stale] {
            assert!(store.job(gone.job_id).unwrap().is_none(), "{}", gone.task);
            assert!(store.tasks_by_key(&gone.task).unwrap().is_empty());
            assert!(store.runs_for_job(gone.job_id).unwrap().is_empty());
            assert!(store.history(gone.job_id).unwrap().is_empty());
        }
        // Too recent; its run may still be writing its log; live.
        for kept in [writing.job_id, new.job_id, live] {
            assert!(store.job(kept).unwrap().is_some());
            assert!(!store.history(kept).unwrap().is_empty());
        }
        assert_eq!(store.runs_for_job(writing.job_id).unwrap().len(), 1);

        // The files, each for the host it is on.
        let mut here: Vec<(TrashKind, String)> = store
            .trash(HOST, 100)
            .unwrap()
            .into_iter()
            .map(|item| (item.kind, item.path))
            .collect();
        here.sort();
        let log = |job: &Job| format!("/logs/job-{}-run-", job.job_id);
        assert_eq!(here.len(), 4, "{here:?}");
        assert!(here[0].1.starts_with(&log(&old)) && here[1].1.starts_with(&log(&stale)));
        assert_eq!(
            (&here[2], &here[3]),
            (
                &(TrashKind::Worktree, "web/T-old".to_string()),
                &(TrashKind::Worktree, "web/T-stale".to_string())
            )
        );
        let there = store.trash("h2", 100).unwrap();
        assert_eq!(there.len(), 2);
        assert!(there.iter().any(|f| f.path.starts_with(&log(&failed))));
        let ids: Vec<i64> = store
            .trash(HOST, 100)
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect();
        store.empty_trash(&ids).unwrap();
        assert!(store.trash(HOST, 100).unwrap().is_empty());
        assert_eq!(
            store.trash("h2", 100).unwrap().len(),
            2,
            "another host's stay"
        );

        // Nothing left to prune: the same prune again removes nothing.
        assert_eq!(prune_all(&mut *store, cutoffs, false).tasks, 0);
    });
}

#[test]
fn batches_go_on_from_where_the_last_stopped() {
    each(|db| {
        let mut store = db.open();
        for i in 0..5 {
            finished(
                &mut *store,
                &format!("T-{i}"),
                T0 + i * 100,
                TaskState::Complete,
            );
        }
        let mut step = batch(before(T0 + DAY), 2);
        let mut sizes = Vec::new();
        loop {
            let pruned = store.prune_batch(&step).unwrap();
            sizes.push(pruned.tasks);
            match pruned.next {
                Some(next) => step.after = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [2, 2, 1]);
        assert!(store.tasks_by_key("T-4").unwrap().is_empty());
    });
}

/// Every usage grouping the report offers, and the all-time totals.
fn usage_everywhere(store: &dyn Store) -> Vec<String> {
    let groupings: [&[Dim]; 5] = [
        &[Dim::Project],
        &[Dim::Day, Dim::Project],
        &[Dim::Project, Dim::Task],
        &[Dim::Stage, Dim::Agent, Dim::Worker],
        &[
            Dim::Project,
            Dim::Task,
            Dim::Stage,
            Dim::Day,
            Dim::Agent,
            Dim::Worker,
        ],
    ];
    let mut out: Vec<String> = groupings
        .iter()
        .map(|by| {
            let query = UsageQuery {
                by: by.to_vec(),
                ..UsageQuery::default()
            };
            format!("{:?}", store.usage(&query).unwrap())
        })
        .collect();
    let facts = store.metrics(HOST, T0 + 10 * DAY).unwrap();
    out.push(format!(
        "{:?} {:?} {:?} {:?}",
        facts.job_counts, facts.run_classes, facts.usage, facts.requeues
    ));
    out
}

#[test]
fn counts_and_usage_follow_every_move_and_outlive_a_prune() {
    each(|db| {
        let mut store = db.open();
        // A task that failed; a requeue (an expired lease taken back), then the job runs and
        // completes its task.
        finished(&mut *store, "T-2", T0, TaskState::Failed);
        enqueue(&mut *store, "T-1", T0 + 100);
        claim(&mut *store, "w1", T0 + 100).unwrap();
        let later = T0 + 100 + LEASE_MS + 1;
        assert!(
            claim(&mut *store, "w2", later).is_some(),
            "rescued and claimed again"
        );
        let run = store
            .jobs_in_state(JobState::Running, 10)
            .unwrap()
            .remove(0);
        let run_id = start(&mut *store, &run, later);
        end(&mut *store, run_id, later + 5);
        let mut complete = plan(
            &run,
            run_id,
            Decision::Completed,
            JobState::Done,
            later + 10,
        );
        complete.task = Some(TaskState::Complete);
        complete.verdict.usage_json = Some("not json".into());
        store.apply_finalize(&complete).unwrap();
        // Cancelled, retried at another stage; and a run still going.
        let cancelled = enqueue(&mut *store, "T-3", T0 + DAY);
        store.cancel(cancelled, "op", T0 + DAY).unwrap();
        store
            .retry(cancelled, Some("developer"), "op", T0 + DAY + 1)
            .unwrap();
        let going = claim(&mut *store, "w1", T0 + DAY + 2).unwrap();
        start(&mut *store, &going, T0 + DAY + 2);

        // The counts agree with the jobs there are.
        let counts = store.state_counts().unwrap();
        for state in JobState::LISTED {
            let counted: i64 = counts
                .iter()
                .filter(|c| c.state == *state)
                .map(|c| c.count)
                .sum();
            let listed = store
                .list_jobs(&JobFilter {
                    states: vec![*state],
                    limit: 100,
                    ..JobFilter::default()
                })
                .unwrap()
                .len() as i64;
            assert_eq!(counted, listed, "{state}");
        }
        let developer = counts
            .iter()
            .find(|c| c.stage == STAGES[1])
            .expect("the moved job counted at its new stage");
        assert_eq!((developer.state, developer.count), (JobState::Running, 1));
        let facts = store.metrics(HOST, later).unwrap();
        assert_eq!(facts.requeues, 1);
        let class = |name: Option<&str>| {
            facts
                .run_classes
                .iter()
                .find(|c| c.class.as_deref() == name)
                .map_or(0, |c| c.count)
        };
        assert_eq!(
            (class(Some("ok")), class(Some("timeout")), class(None)),
            (1, 1, 1)
        );
        assert_eq!(facts.usage.len(), 1);
        assert_eq!(
            facts.usage[0].cost_usd, 0.25,
            "usage that is not JSON counts as 0"
        );
        assert_eq!(facts.usage[0].input_tokens, 100);

        // The running run is in the report, unjudged, on its UTC day.
        let by_day = store
            .usage(&UsageQuery {
                by: vec![Dim::Day],
                since_day: Some((T0 + DAY) / DAY),
                until_day: None,
            })
            .unwrap();
        assert_eq!(by_day.len(), 1, "{by_day:?}");
        assert_eq!(by_day[0].class, UNJUDGED);
        assert_eq!(by_day[0].sums.runs, 1);
        let all = store.usage(&UsageQuery {
            by: vec![Dim::Project],
            ..UsageQuery::default()
        });
        let runs: i64 = all.unwrap().iter().map(|row| row.sums.runs).sum();
        assert_eq!(runs, 3);

        let before_prune = usage_everywhere(&*store);
        let pruned = prune_all(&mut *store, before(T0 + 10 * DAY), false);
        assert_eq!(
            pruned.tasks, 2,
            "the two finished tasks; the moved one is live"
        );
        assert!(store.tasks_by_key("T-1").unwrap().is_empty());
        assert_eq!(usage_everywhere(&*store), before_prune);
    });
}

#[test]
fn delivered_messages_go_and_pending_or_dead_stay() {
    each(|db| {
        let mut store = db.open();
        let claimer = |now| notify_claim(now, 0);
        // Three finished tasks, each with a usage comment: one sent, one pending, one dead.
        finished(&mut *store, "T-sent", T0, TaskState::Complete);
        let sent = store.claim_message(&claimer(T0 + 20)).unwrap().unwrap();
        store
            .finish_message(sent.id, "n", &Finish::Sent, T0 + 20)
            .unwrap();
        finished(&mut *store, "T-dead", T0 + 100, TaskState::Complete);
        let dead = store.claim_message(&claimer(T0 + 120)).unwrap().unwrap();
        let gave_up = Finish::Dead { error: "gone" };
        store
            .finish_message(dead.id, "n", &gave_up, T0 + 120)
            .unwrap();
        finished(&mut *store, "T-pending", T0 + 200, TaskState::Complete);

        let pruned = prune_all(&mut *store, before(T0 + DAY), false);
        assert_eq!((pruned.tasks, pruned.outbox), (3, 1));
        let left: Vec<String> = store
            .comments()
            .unwrap()
            .into_iter()
            .map(|(_, c)| c.task)
            .collect();
        assert_eq!(left, ["T-dead", "T-pending"]);
        let summary = store.outbox_summary(T0 + DAY, 10).unwrap();
        assert_eq!((summary.pending, summary.dead), (1, 1));
    });
}

#[test]
fn a_message_others_were_folded_into_goes_with_the_last_of_them() {
    each(|db| {
        let mut store = db.open();
        let (first, _) = finished(&mut *store, "T-1", T0, TaskState::Failed);
        let (second, _) = finished(&mut *store, "T-2", T0 + 2 * DAY, TaskState::Failed);
        // Comments are not what is folded; drop them from the picture (sent).
        let claimer = |now| notify_claim(now, 3_600_000);
        let alert = |job: &Job| {
            Message::Alert(NewAlert::for_job(
                AlertKind::SilentFailure,
                job,
                "ok",
                "silent",
            ))
        };
        let at = T0 + 3 * DAY;
        store.queue(&alert(&first), at).unwrap();
        store.queue(&alert(&second), at).unwrap();
        while let Some(claimed) = store.claim_message(&claimer(at)).unwrap() {
            store
                .finish_message(claimed.id, "n", &Finish::Sent, at)
                .unwrap();
        }
        let summary = store.outbox_summary(at, 10).unwrap();
        let folded: i64 = summary
            .counts
            .iter()
            .filter(|c| c.state == OutboxState::Folded)
            .map(|c| c.count)
            .sum();
        assert_eq!(folded, 1, "the second alert went out folded into the first");

        // T-1 goes: its comment, but not its alert, which T-2's is folded into.
        let pruned = prune_all(&mut *store, before(T0 + DAY), false);
        assert_eq!((pruned.tasks, pruned.outbox), (1, 1));
        // T-2 goes: its comment, its folded alert, and T-1's alert with it.
        let pruned = prune_all(&mut *store, before(T0 + 10 * DAY), false);
        assert_eq!((pruned.tasks, pruned.outbox), (1, 3));
    });
}

#[test]
fn delivered_messages_of_no_job_are_swept() {
    each(|db| {
        let mut store = db.open();
        let alert = || Message::Alert(NewAlert::new(AlertKind::BreakerOpen, "claude", "open"));
        let id = store.queue(&alert(), T0).unwrap();
        let claimed = store.claim_message(&notify_claim(T0, 0)).unwrap().unwrap();
        assert_eq!(claimed.id, id);
        store.finish_message(id, "n", &Finish::Sent, T0).unwrap();
        store.queue(&alert(), T0 + 1).unwrap();
        let sweep = |state, before, dry_run| OutboxSweep {
            state,
            before,
            after: None,
            limit: 10,
            dry_run,
        };
        let mut swept = |s: OutboxSweep| store.sweep_outbox(&s).unwrap().messages;
        assert_eq!(
            swept(sweep(OutboxState::Sent, T0, false)),
            0,
            "not before the cutoff"
        );
        assert_eq!(swept(sweep(OutboxState::Folded, T0 + DAY, false)), 0);
        assert_eq!(swept(sweep(OutboxState::Sent, T0 + DAY, true)), 1);
        assert_eq!(
            swept(sweep(OutboxState::Sent, T0 + DAY, false)),
            1,
            "a dry run removed nothing"
        );
        assert_eq!(swept(sweep(OutboxState::Sent, T0 + DAY, false)), 0);
        assert_eq!(
            store.outbox_summary(T0 + DAY, 10).unwrap().pending,
            1,
            "the pending one stays"
        );
    });
}

#[test]
fn one_process_of_the_fleet_takes_a_turn_at_a_time() {
    each(|db| {
        let mut a = db.open();
        let mut b = db.open();
        let turn = |holder, now| Turn {
            name: "prune",
            holder,
            every_ms: DAY,
            hold_ms: 60_000,
            now,
        };
        assert_eq!(a.turn_done_at("prune").unwrap(), None);
        assert!(a.take_turn(&turn("a", T0)).unwrap());
        assert!(!b.take_turn(&turn("b", T0 + 1)).unwrap(), "a holds it");
        b.end_turn("prune", "b", false, T0 + 2).unwrap();
        assert!(
            !b.take_turn(&turn("b", T0 + 3)).unwrap(),
            "only its holder lets it go"
        );
        a.end_turn("prune", "a", true, T0 + 10).unwrap();
        assert_eq!(b.turn_done_at("prune").unwrap(), Some(T0 + 10));
        assert!(
            !b.take_turn(&turn("b", T0 + 20)).unwrap(),
            "done a moment ago"
        );
        assert!(b.take_turn(&turn("b", T0 + 10 + DAY)).unwrap(), "due again");
        // b dies holding it: its hold runs out.
        assert!(!a.take_turn(&turn("a", T0 + 10 + DAY + 59_000)).unwrap());
        assert!(a.take_turn(&turn("a", T0 + 10 + DAY + 60_000)).unwrap());
    });
}

#[test]
fn a_prune_hands_the_freed_pages_back() {
    each(|db| {
        let mut store = db.open();
        let start = store.storage().unwrap();
        if db.backend == "postgres" {
            // The server keeps its own free space (autovacuum): nothing to hand back.
            assert!(!start.incremental && start.free_pages == 0, "{start:?}");
            assert_eq!(store.release_pages(1).unwrap(), 0);
            return;
        }
        assert!(
            start.incremental,
            "a new database frees pages a few at a time"
        );
        for i in 0..60 {
            let key = format!("T-{i}-{}", "x".repeat(2000));
            finished(&mut *store, &key, T0 + i, TaskState::Complete);
        }
        let full = store.storage().unwrap();
        prune_all(&mut *store, before(T0 + DAY), false);
        let pruned = store.storage().unwrap();
        assert!(pruned.free_pages > 0, "{pruned:?}");
        assert!(store.release_pages(1).unwrap() < pruned.free_pages);
        assert_eq!(store.release_pages(i64::MAX / 2).unwrap(), 0);
        let released = store.storage().unwrap();
        assert!(released.pages < full.pages, "{full:?} → {released:?}");
        assert_eq!(released.free_pages, 0);
    });
}

#[test]
fn a_pruned_tasks_branch_stays_its_own_and_files_named_again_are_left() {
    each(|db| {
        let mut store = db.open();
        // A task with a branch and a worktree a crash left, finished long ago, and the newest of
        // all: the prune removes the rows with the highest ids.
        enqueue(&mut *store, "T-1", T0);
        let job = claim(&mut *store, "w1", T0).expect("the task's job");
        store
            .claim_branch(&BranchClaim {
                task_id: job.task_id,
                branch: "feature/T-1",
                base_branch: "main",
                remote_url: None,
                now: T0,
            })
            .unwrap();
        let run_id = start_on(&mut *store, &job, HOST, T0);
        end(&mut *store, run_id, T0 + 5);
        let mut finish = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 10);
        finish.task = Some(TaskState::Complete);
        assert!(matches!(
            store.apply_finalize(&finish).unwrap(),
            Applied::Done(_)
        ));
        let record = |task_id| WorktreeRecord {
            task_id,
            host: HOST,
            path: "/wt/web/T-1",
            base_sha: "0123abc",
            now: T0 + 10,
        };
        store.record_worktree(&record(job.task_id)).unwrap();
        assert_eq!(prune_all(&mut *store, before(T0 + DAY), false).tasks, 1);
        let files: Vec<TrashItem> = store.trash(HOST, 10).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in &files {
            assert!(!store.trash_in_use(file).unwrap(), "{file:?}");
        }

        // Its key, or one spelled like it, is not queued again: its branch stays its own.
        for key in ["T-1", " t-1 "] {
            let queued = store.enqueue(&task(key), T0 + DAY).unwrap();
            assert!(!queued.created, "{key}");
            assert!(
                matches!(&queued.refused, Some(Refused::Pruned { branch, .. }) if branch == "feature/T-1"),
                "{queued:?}"
            );
        }

        // Another task gets the ids the pruned rows had (its run the same log name), and a
        // worktree in the same directory: both files are its own now.
        enqueue(&mut *store, "T-2", T0 + DAY);
        let job = claim(&mut *store, "w1", T0 + DAY).expect("the new job");
        start_on(&mut *store, &job, HOST, T0 + DAY);
        store.record_worktree(&record(job.task_id)).unwrap();
        for file in &files {
            // PostgreSQL never gives an id out twice: a log's name (its job's and run's ids) stays
            // the pruned run's.
            let named_again = !(db.backend == "postgres" && file.kind == TrashKind::Log);
            assert_eq!(store.trash_in_use(file).unwrap(), named_again, "{file:?}");
        }
        let elsewhere = TrashItem {
            host: "h2".into(),
            ..files[1].clone()
        };
        let elsewhere = if elsewhere.kind == TrashKind::Worktree {
            elsewhere
        } else {
            TrashItem {
                host: "h2".into(),
                ..files[0].clone()
            }
        };
        assert!(
            !store.trash_in_use(&elsewhere).unwrap(),
            "a worktree on another host is another directory"
        );
    });
}
