//! In-process claim throughput and latency, against a raw single-row UPDATE loop at the same
//! durability (WAL, synchronous=FULL, one BEGIN IMMEDIATE transaction per claim).
//!
//! Run through bench/claim.sh, which prints the table; or directly:
//!   cargo bench --bench claim -- [QUEUED] [CLAIMS]

use std::path::Path;
use std::time::Instant;

use orch::domain::rescue::Candidate;
use orch::store::{ClaimProject, ClaimRequest, Options, Store};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let queued: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let claims: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();

    let store_db = dir.path().join("store.db");
    let mut store = open(&store_db);
    fill(&store_db, queued);
    // Every claimed lease is live: the rescue has no candidate to triage.
    let triage = |_: &[Candidate]| Vec::new();
    let request = |now| ClaimRequest {
        worker: "bench",
        agent: "claude",
        projects: vec![ClaimProject {
            name: "web",
            max_running: u32::MAX,
            held: None,
        }],
        stages: vec!["analyst"],
        lease_ms: 900_000,
        longest_backoff_ms: 3_600_000,
        host: "bench",
        triage: &triage,
        now,
    };
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

/// The store at `db` (created and migrated), through orch's own `store::open`.
fn open(db: &Path) -> Box<dyn Store> {
    orch::store::open(&Options {
        location: db,
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
