//! In-process claim throughput and latency, against a raw single-row UPDATE loop at the same
//! durability (WAL, synchronous=FULL, one BEGIN IMMEDIATE transaction per claim).
//!
//! Run through bench/claim.sh, which prints the table; or directly:
//!   cargo bench --bench claim -- [QUEUED] [CLAIMS]
//! With a third argument `budget` (bench/limits.sh) it measures instead the claim of a project
//! with a task and a daily budget against the same claim without them, on databases that also
//! hold 10,000 runs with a cost, finalized today.

use std::path::Path;
use std::time::Instant;

use orch::domain::budget::{self, Budget};
use orch::domain::rescue::Candidate;
use orch::store::{ClaimProject, ClaimRequest, ClaimStage, Options, Store, Triage};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let queued: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let claims: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    if args.get(3).map(String::as_str) == Some("budget") {
        return budgets(dir.path(), queued, claims);
    }
    if args.get(3).map(String::as_str) == Some("pg") {
        return concurrent_on_postgres(queued, claims);
    }

    let store_db = dir.path().join("store.db");
    let mut store = open(&store_db);
    fill(&store_db, queued);
    // Every claimed lease is live: the rescue has no candidate to triage.
    let triage = |_: &[Candidate]| Vec::new();
    let request = |now| request(&triage, Budget::default(), now);
    let started = Instant::now();
    for _ in 0..claims {
        let claim = store.claim(&request(orch::store::now_ms())).unwrap();
        assert!(claim.job.is_some());
    }
    let store_secs = started.elapsed().as_secs_f64();

    let raw_db = dir.path().join("raw.db");
    drop(open(&raw_db));
    fill(&raw_db, queued);
    let mut conn = rusqlite::Connection::open(&raw_db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    )
    .unwrap();
    let started = Instant::now();
    for _ in 0..claims {
        let now = orch::store::now_ms();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let id: i64 = tx
            .query_row(
                "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'raw',
                        lease_expires_at = ?1 + 900000, updated_at = ?1
                 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND project = 'web' AND run_after <= ?1
                             ORDER BY priority DESC, run_after, id LIMIT 1)
                 RETURNING id",
                [now],
                |row| row.get(0),
            )
            .unwrap();
        assert!(id > 0);
        tx.commit().unwrap();
    }
    let raw_secs = started.elapsed().as_secs_f64();
    println!(
        "queued={queued} claims={claims} store_per_sec={:.0} raw_per_sec={:.0} store_us={:.1} raw_us={:.1}",
        claims as f64 / store_secs,
        claims as f64 / raw_secs,
        store_secs * 1e6 / claims as f64,
        raw_secs * 1e6 / claims as f64,
    );
}

/// A claim of project web's analyst jobs by worker bench, every lease long.
/// 8 claimers at once, each its own connection, on the PostgreSQL queue `ORCH_BENCH_PG_URL`
/// names (bench/pg.sh fills it): claims a second, all together.
fn concurrent_on_postgres(queued: i64, claims: usize) {
    const CLAIMERS: usize = 8;
    let url = std::env::var("ORCH_BENCH_PG_URL").expect("ORCH_BENCH_PG_URL");
    let ready = std::sync::Arc::new(std::sync::Barrier::new(CLAIMERS + 1));
    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let (url, ready) = (url.clone(), std::sync::Arc::clone(&ready));
            std::thread::spawn(move || {
                let mut store = orch::store::open(&Options {
                    location: &orch::store::Location::Url(url),
                    busy_timeout_ms: 30_000,
                    host: "bench",
                })
                .unwrap();
                let triage = |_: &[Candidate]| Vec::new();
                ready.wait();
                for _ in 0..claims / CLAIMERS {
                    let now = store.now().unwrap();
                    let claim = store
                        .claim(&request(&triage, Budget::default(), now))
                        .unwrap();
                    assert!(claim.job.is_some());
                }
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    for claimer in claimers {
        claimer.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = (claims / CLAIMERS * CLAIMERS) as f64;
    println!(
        "queued={queued} claims={done} claimers={CLAIMERS} store_per_sec={:.0} store_us={:.1}",
        done / secs,
        secs * 1e6 / done
    );
}

fn request<'a>(triage: Triage<'a>, budget: Budget, now: i64) -> ClaimRequest<'a> {
    ClaimRequest {
        worker: "bench",
        projects: vec![ClaimProject {
            name: "web",
            max_running: u32::MAX,
            held: None,
            budget,
            stages: ClaimStage::all(&["analyst"], "claude"),
        }],
        lease_ms: 900_000,
        longest_backoff_ms: 3_600_000,
        host: "bench",
        day_start: budget::day_start(now),
        triage,
        now,
    }
}

/// Claims of a project with budgets (a task's and a day's, never reached) against the same
/// claims without them, each store holding `queued` jobs and 10,000 runs with a cost that ended
/// today: what the budget checks add to a claim.
fn budgets(dir: &Path, queued: i64, claims: usize) {
    let triage = |_: &[Candidate]| Vec::new();
    let time = |budget: Budget, name: &str| {
        let db = dir.join(name);
        let mut store = open(&db);
        fill(&db, queued);
        spent_today(&db, 10_000);
        let started = Instant::now();
        for _ in 0..claims {
            let now = orch::store::now_ms();
            let claim = store.claim(&request(&triage, budget, now)).unwrap();
            assert!(claim.job.is_some());
        }
        started.elapsed().as_secs_f64() * 1e6 / claims as f64
    };
    let plain_us = time(Budget::default(), "plain.db");
    let budget_us = time(
        Budget {
            per_task_usd: Some(1e6),
            per_day_usd: Some(1e6),
        },
        "budget.db",
    );
    println!("queued={queued} claims={claims} budget_us={budget_us:.1} plain_us={plain_us:.1}");
}

/// `n` finalized runs of the first `n` tasks' jobs, $0.01 each, finalized now.
fn spent_today(db: &Path, n: i64) {
    let now = orch::store::now_ms();
    let day = budget::day_start(now);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         INSERT INTO agent_runs (job_id, attempt, worker, agent, started_at, ended_at, exit_code,
                                 class, finalized_at, cost_usd)
         SELECT id, 1, 'bench', 'claude', {now}, {now}, 0, 'ok', {now}, 0.01
         FROM jobs WHERE id <= {n};
         UPDATE tasks SET spent_usd = 0.01 WHERE id <= {n};
         INSERT INTO project_days (project, day, spent_usd) VALUES ('web', {day}, {n} * 0.01);
         COMMIT;"
    ))
    .unwrap();
}

/// The store at `db` (created and migrated), through orch's own `store::open`.
fn open(db: &Path) -> Box<dyn Store> {
    orch::store::open(&Options {
        location: &orch::store::Location::File(db.to_path_buf()),
        busy_timeout_ms: 5000,
        host: "bench",
    })
    .unwrap()
}

/// `n` queued jobs of project web, one task each, inserted in one transaction.
fn fill(db: &Path, n: i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
         INSERT INTO tasks (id, project, key, created_at, updated_at) SELECT i, 'web', 'T' || i, 0, 0 FROM seq;
         INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
         SELECT id, id, 'web', 'analyst', 'queued', 3, id, 0, 0 FROM tasks;
         COMMIT;"
    ))
    .unwrap();
}
