//! Logs from anywhere: the copy of a run's log a finalize keeps (`FinalizePlan::log`), read back
//! whole, written only under the plan's guard, and removed with its run by a prune.

use std::io::{Cursor, Read};

use orch::domain::retention::Cutoffs;
use orch::domain::states::TaskState;
use orch::store::{Applied, PruneBatch, RunEnd, StoredLog};

use super::*;

/// Bytes no text column would carry: a NUL, invalid UTF-8, every byte value.
fn log_bytes(tag: u8) -> Vec<u8> {
    let mut bytes = b"{\"type\":\"result\"}\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(70_000));
    bytes.extend([0, 0xff, 0xfe, tag, b'\n']);
    bytes
}

fn kept(bytes: &[u8]) -> StoredLog {
    StoredLog::compress(Cursor::new(bytes), bytes.len() as u64, 1 << 20).unwrap()
}

fn read(log: &StoredLog) -> Vec<u8> {
    let mut out = Vec::new();
    log.reader().read_to_end(&mut out).unwrap();
    out
}

/// Task `key` run and finalized at `at` with its log kept; the job and its run.
fn finished_with_log(store: &mut dyn Store, key: &str, at: i64, log: &[u8]) -> (Job, i64) {
    enqueue(store, key, at);
    let (job, run_id) = ran(store, "w1", at);
    let mut finish = plan(&job, run_id, Decision::Completed, JobState::Done, at + 10);
    finish.task = Some(TaskState::Complete);
    finish.log = Some(kept(log));
    assert!(matches!(
        store.apply_finalize(&finish).unwrap(),
        Applied::Done(_)
    ));
    (job, run_id)
}

#[test]
fn a_finalize_keeps_the_log_and_only_the_first_one_counts() {
    each(|db| {
        let mut store = db.open();
        let first = log_bytes(1);
        let (job, run_id) = finished_with_log(&mut *store, "T-1", T0, &first);
        let stored = store.run_log(run_id).unwrap().expect("the kept log");
        assert_eq!((stored.bytes, stored.kept_from), (first.len() as i64, 0));
        assert!(stored.data.len() < first.len() / 4, "compressed");
        assert_eq!(read(&stored), first);
        // A second finalize of the run is refused by its guard: the first copy stays.
        let mut again = plan(&job, run_id, Decision::Completed, JobState::Done, T0 + 20);
        again.log = Some(kept(&log_bytes(2)));
        assert!(matches!(
            store.apply_finalize(&again).unwrap(),
            Applied::Finalized(_)
        ));
        assert_eq!(read(&store.run_log(run_id).unwrap().unwrap()), first);
        // A run finalized without one has none; no run, none.
        enqueue(&mut *store, "T-2", T0 + 30);
        let (other, other_run) = ran(&mut *store, "w1", T0 + 30);
        let bare = plan(
            &other,
            other_run,
            Decision::Completed,
            JobState::Done,
            T0 + 40,
        );
        assert!(matches!(
            store.apply_finalize(&bare).unwrap(),
            Applied::Done(_)
        ));
        assert_eq!(store.run_log(other_run).unwrap(), None);
        assert_eq!(store.run_log(other_run + 100).unwrap(), None);
    });
}

#[test]
fn a_prune_removes_the_kept_logs_of_its_runs_only() {
    each(|db| {
        let mut store = db.open();
        let (_, old_run) = finished_with_log(&mut *store, "T-old", T0, &log_bytes(1));
        let (_, new_run) = finished_with_log(&mut *store, "T-new", T0 + 2 * DAY, &log_bytes(2));
        let pruned = store
            .prune_batch(&PruneBatch {
                finished: TaskState::FINISHED,
                cutoffs: Cutoffs {
                    finished_before: T0 + DAY,
                    open_runs_since: T0 + DAY,
                },
                after: None,
                limit: 10,
                host: HOST,
                now: T0 + 3 * DAY,
            })
            .unwrap();
        assert_eq!((pruned.tasks, pruned.runs), (1, 1));
        assert_eq!(store.run_log(old_run).unwrap(), None);
        assert_eq!(
            read(&store.run_log(new_run).unwrap().unwrap()),
            log_bytes(2)
        );
    });
}

#[test]
fn a_run_cancelled_while_it_ran_keeps_its_log_when_it_ends() {
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let job = claim(&mut *store, "w1", T0).expect("a job");
        let run_id = start(&mut *store, &job, T0);
        store.cancel(job.job_id, "op", T0 + 5).unwrap();
        let bytes = log_bytes(3);
        let end = RunEnd {
            ended_at: T0 + 10,
            interrupted: true,
            log: Some(kept(&bytes)),
            ..RunEnd::default()
        };
        store.end_run(run_id, &end).unwrap();
        assert_eq!(read(&store.run_log(run_id).unwrap().unwrap()), bytes);
        // A second end is refused whole: the copy stays the first one.
        let again = RunEnd {
            ended_at: T0 + 20,
            log: Some(kept(&log_bytes(4))),
            ..RunEnd::default()
        };
        assert!(store.end_run(run_id, &again).is_err());
        assert_eq!(read(&store.run_log(run_id).unwrap().unwrap()), bytes);
    });
}

const DAY: i64 = 86_400_000;
