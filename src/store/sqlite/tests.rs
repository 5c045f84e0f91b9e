//! What only this backend has: its schema and its migrations. Its behaviour through the trait is
//! the conformance suite's (tests/it/conformance/).

use super::*;
use crate::domain::breaker::{Probe, State as BreakerState};
use crate::domain::states::{PrState, TaskState};

fn open_at(dir: &tempfile::TempDir, host: &str) -> Sqlite {
    Sqlite::open(&Options {
        location: &dir.path().join("orch.db"),
        busy_timeout_ms: 1000,
        host,
    })
    .unwrap()
}

/// The names a CHECK constraint of `table` admits for `column`: `column IN ('a', 'b', …)`.
fn checked_names(conn: &Connection, table: &str, column: &str) -> Vec<String> {
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get("sql"),
        )
        .unwrap();
    let pattern = format!("{column} IN (");
    let starts: Vec<usize> = sql.match_indices(&pattern).map(|(at, _)| at).collect();
    assert_eq!(starts.len(), 1, "one CHECK on {table}.{column} in:\n{sql}");
    let list = &sql[starts[0] + pattern.len()..];
    let list = &list[..list.find(')').unwrap()];
    list.split(',')
        .map(|name| name.trim().trim_matches('\'').to_string())
        .collect()
}

#[test]
fn the_schemas_checks_and_the_state_enums_are_one_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_at(&dir, "h");
    let lists: [(&str, &str, &[&str]); 6] = [
        ("jobs", "state", JobState::NAMES),
        ("tasks", "state", TaskState::NAMES),
        ("outbox", "state", OutboxState::NAMES),
        ("outbox", "kind", MessageKind::NAMES),
        ("breakers", "state", BreakerState::NAMES),
        ("tasks", "pr_status", PrState::NAMES),
    ];
    for (table, column, names) in lists {
        assert_eq!(
            checked_names(&store.conn, table, column),
            names,
            "{table}.{column}: the schema's CHECK and the enum differ"
        );
    }
}

#[test]
fn migration_6_files_existing_verdicts_and_gates_under_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 5;
             INSERT INTO preflight_cache (agent, ok, exit_code, checks_json, inputs, created_at, expires_at)
             VALUES ('claude', 1, 0, '[]', 'x', 1, 2);
             INSERT INTO auth_gate (agent, run_id, reason, created_at) VALUES ('claude', 7, 'Not logged in', 3);",
        )
        .unwrap();
    }
    let store = open_at(&dir, "h1");
    let here = store.preflight_state("h1", "claude").unwrap();
    assert!(here.cached.unwrap().ok);
    assert_eq!(here.gate.unwrap().run_id, Some(7));
    let elsewhere = store.preflight_state("h2", "claude").unwrap();
    assert!(elsewhere.cached.is_none() && elsewhere.gate.is_none());
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let temp: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM temp.sqlite_master WHERE name = 'migration_context'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(temp, 0, "the migration context is dropped");
}

#[test]
fn migration_8_keeps_every_outbox_row_and_index_and_admits_pull_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let indexes = |conn: &Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |row| row.get(0)).unwrap();
        names.collect::<rusqlite::Result<_>>().unwrap()
    };
    let before;
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TEMP TABLE migration_context (host TEXT NOT NULL);
             INSERT INTO temp.migration_context VALUES ('h1');",
        )
        .unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 6;
             INSERT INTO outbox (id, kind, alert_kind, dedup_key, project, task, payload, state,
                                 attempts, next_attempt_at, created_at, sent_at)
             VALUES (1, 'alert', 'failed', 'web/dev', 'web', 'T-1', '{}', 'sent', 1, 5, 4, 6);
             INSERT INTO outbox (id, kind, alert_kind, dedup_key, project, task, payload, state,
                                 next_attempt_at, created_at, folded_into)
             VALUES (2, 'alert', 'failed', 'web/dev', 'web', 'T-2', '{}', 'folded', 5, 4, 1);
             INSERT INTO outbox (id, kind, project, task, payload, next_attempt_at, created_at)
             VALUES (3, 'comment', 'web', 'T-1', '{}', 7, 7);",
        )
        .unwrap();
        before = indexes(&conn);
    }
    let store = open_at(&dir, "h1");
    let rows: Vec<(i64, String, String, Option<i64>)> = store
        .conn
        .prepare("SELECT id, kind, state, folded_into FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (1, "alert".into(), "sent".into(), None),
            (2, "alert".into(), "folded".into(), Some(1)),
            (3, "comment".into(), "pending".into(), None),
        ]
    );
    let after = indexes(&store.conn);
    for index in &before {
        assert!(after.contains(index), "{index} lost: {after:?}");
    }
    assert!(after.contains(&"outbox_pull_request".to_string()));
    store
        .conn
        .execute(
            "INSERT INTO outbox (kind, project, task, payload, next_attempt_at, created_at)
             VALUES ('pull_request', 'web', 'T-1', '{}', 8, 8)",
            [],
        )
        .unwrap();
    let bad = store.conn.execute(
        "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) VALUES ('alert', '{}', 8, 8)",
        [],
    );
    assert!(
        bad.is_err(),
        "an alert without its kind and key is refused still"
    );
}

#[test]
fn a_breaker_round_trips_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_at(&dir, "h");
    assert_eq!(store.breaker("claude").unwrap(), Breaker::default());
    let open = Breaker {
        state: BreakerState::HalfOpen,
        consecutive_failures: 4,
        opened_at: Some(10),
        cooldown_ms: 600_000,
        probe: Some(Probe {
            job_id: 3,
            worker: "w".into(),
            attempt: 2,
            started_at: 20,
        }),
        last_class: Some("timeout".into()),
    };
    store
        .write(|tx| breaker::save(tx, "claude", &open, Some(9), 30))
        .unwrap();
    assert_eq!(store.breaker("claude").unwrap(), open);
    let rows = store.breakers(1_000_000).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].agent.as_str(),
            rows[0].last_run_id,
            rows[0].updated_at
        ),
        ("claude", Some(9), 30)
    );
    assert!(!rows[0].probe_live);
    // No job 3 holds a lease: the probe is not live, so a claim may probe.
    let (_, gate) = breaker::gate(&store.conn, "claude", 1_000_000).unwrap();
    assert_eq!(gate, crate::domain::breaker::Gate::Probe);
    assert_eq!(store.close_breakers(Some("other")).unwrap(), 0);
    assert_eq!(store.close_breakers(None).unwrap(), 1);
    assert_eq!(store.breaker("claude").unwrap(), Breaker::default());
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_at(&dir, "h"));
    let conn = Connection::open(dir.path().join("orch.db")).unwrap();
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    let err = Sqlite::open(&Options {
        location: &dir.path().join("orch.db"),
        busy_timeout_ms: 1000,
        host: "h",
    })
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("newer orch"), "{err:#}");
}

#[test]
fn migration_7_keeps_the_jobs_and_adds_up_what_was_spent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TEMP TABLE migration_context (host TEXT NOT NULL); INSERT INTO temp.migration_context VALUES ('h');").unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        // 2026-11-29 10:00 UTC, and a day before.
        let today = 1_795_946_400_000_i64;
        let yesterday = today - 86_400_000;
        conn.execute_batch(&format!(
            "PRAGMA user_version = 6;
             INSERT INTO tasks (id, project, key, created_at, updated_at) VALUES (1, 'web', 'T-1', 0, 0);
             INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
             VALUES (5, 1, 'web', 'analyst', 'done', 3, 0, 0, 0);
             INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason) VALUES (5, 0, NULL, 'queued', 't', 'x');
             INSERT INTO agent_runs (job_id, attempt, worker, agent, started_at, usage_json, finalized_at)
             VALUES (5, 1, 'w', 'claude', 0, '{{\"cost_usd\":0.5}}', {yesterday}),
                    (5, 2, 'w', 'claude', 0, '{{\"cost_usd\":0.25}}', {today}),
                    (5, 3, 'w', 'claude', 0, 'not json', {today});"
        ))
        .unwrap();
    }
    let store = open_at(&dir, "h");
    let job = store.job(5).unwrap().unwrap();
    assert_eq!((job.task.as_str(), job.state), ("T-1", JobState::Done));
    assert_eq!(store.history(5).unwrap().len(), 1);
    let spent: f64 = store
        .conn
        .query_row("SELECT spent_usd FROM tasks WHERE id = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(spent, 0.75);
    let days = store.project_spends(&["web"], 1_795_910_400_000).unwrap();
    assert_eq!(days[0].today_usd, 0.25);
    let costs: Vec<Option<f64>> = store
        .runs_for_job(5)
        .unwrap()
        .into_iter()
        .map(|r| r.cost_usd)
        .collect();
    assert_eq!(costs, [Some(0.5), Some(0.25), None]);
}
