//! What only this backend has: its schema and its migrations. Its behaviour through the trait is
//! the conformance suite's (tests/it/conformance/).

use super::*;
use crate::domain::breaker::{Probe, State as BreakerState};
use crate::domain::states::{PrState, TaskState};

/// A database at `path` made by the first `version` migrations, as an older orch on `host` left
/// it (its `user_version` is for the caller to set).
fn migrated_to(path: &std::path::Path, host: &str, version: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TEMP TABLE migration_context (host TEXT NOT NULL)")
        .unwrap();
    conn.execute("INSERT INTO temp.migration_context VALUES (?1)", [host])
        .unwrap();
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn
}

fn open_at(dir: &tempfile::TempDir, host: &str) -> Sqlite {
    let path = dir.path().join("orch.db");
    Sqlite::open(
        &path,
        &Options {
            location: &Location::File(path.clone()),
            busy_timeout_ms: 1000,
            host,
        },
    )
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
        let conn = migrated_to(&path, "h1", 6);
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
    let (_, gate) = breaker::gate(&Db::sqlite(&store.conn), "claude", 1_000_000).unwrap();
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
    let path = dir.path().join("orch.db");
    let err = Sqlite::open(
        &path,
        &Options {
            location: &Location::File(path.clone()),
            busy_timeout_ms: 1000,
            host: "h",
        },
    )
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("newer orch"), "{err:#}");
}

#[test]
fn migration_7_keeps_the_jobs_and_adds_up_what_was_spent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    {
        let conn = migrated_to(&path, "h", 6);
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

/// The tables that grow with the years (every job, run, history entry and message ever made),
/// and the names `sql` gives them: each one's own name and the word after it (its alias, if it
/// has one).
fn growing_names(sql: &str) -> Vec<&str> {
    const GROWING: &[&str] = &[
        "jobs",
        "tasks",
        "job_history",
        "agent_runs",
        "outbox",
        "usage_rollup",
        "trash",
    ];
    let words: Vec<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut names = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if GROWING.contains(word) {
            names.push(*word);
            let skip = usize::from(
                words
                    .get(i + 1)
                    .is_some_and(|w| w.eq_ignore_ascii_case("as")),
            );
            names.extend(words.get(i + 1 + skip));
        }
    }
    names
}

/// Whether a plan line of `sql` reads a bounded number of rows: it looks rows up (SEARCH), or
/// scans a table that stays small (counters, totals, per-agent and per-host rows, subqueries),
/// or scans one of the partial indexes over live rows (queued or running jobs, unfinalized or
/// open runs).
fn plan_is_bounded(detail: &str, sql: &str) -> bool {
    const LIVE_INDEXES: &[&str] = &[
        "INDEX jobs_queue",
        "INDEX jobs_awaiting_approval",
        "INDEX jobs_due",
        "INDEX jobs_lease",
        "INDEX jobs_running",
        "INDEX jobs_lease_renewed",
        "INDEX jobs_over_budget",
        "INDEX agent_runs_unfinalized",
        "INDEX agent_runs_open",
    ];
    let Some(target) = detail.trim().strip_prefix("SCAN ") else {
        return true;
    };
    let name = target.split_whitespace().next().unwrap_or("");
    !growing_names(sql).contains(&name) || LIVE_INDEXES.iter().any(|index| target.contains(index))
}

/// The statements `run` makes the store execute, traced.
fn statements_of(store: &mut Sqlite, run: impl FnOnce(&mut Sqlite)) -> Vec<String> {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // The trace hook is a plain function, so what it sees is one list for the whole process:
    // tests tracing at once (the test harness runs them on several threads) take turns, or each
    // would see the other's statements.
    static TRACING: Mutex<()> = Mutex::new(());
    fn note(event: TraceEvent<'_>) {
        if let TraceEvent::Stmt(_, sql) = event {
            SEEN.lock().unwrap().push(sql.to_string());
        }
    }
    let _turn = TRACING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    SEEN.lock().unwrap().clear();
    store
        .conn
        .trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(note));
    run(store);
    store.conn.trace_v2(TraceEventCodes::empty(), None);
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    seen.into_iter()
        .filter(|sql| !sql.trim_start().starts_with("--"))
        .collect()
}

/// The plan lines of `statements` that `bounded` refuses, each with its statement.
fn unbounded_plans(
    conn: &Connection,
    statements: &[String],
    bounded: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut unbounded = Vec::new();
    for sql in statements {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Its parameters unbound (NULL): the plan does not depend on their values.
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next().unwrap() {
            let detail: String = row.get("detail").unwrap();
            if !bounded(&detail, sql) {
                unbounded.push(format!("{detail}\n    in {sql}"));
            }
        }
    }
    unbounded
}

/// A store holding a finished task (its job done, with history, a finalized run and a sent
/// comment) and a live one (a job running, another queued for later, an open run, a pending
/// comment).
fn a_quiet_queue(dir: &tempfile::TempDir) -> Sqlite {
    let store = open_at(dir, "h");
    let later = LATER;
    store
        .conn
        .execute_batch(&format!(
            "INSERT INTO tasks (id, project, key, state, created_at, updated_at) VALUES
                 (1, 'web', 'A', 'complete', 1, 1), (2, 'web', 'B', 'active', 1, 1);
             INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after,
                               lease_owner, lease_expires_at, created_at, updated_at) VALUES
                 (1, 1, 'web', 'analyst', 'done', 3, 1, NULL, NULL, 1, 1),
                 (2, 2, 'web', 'analyst', 'running', 3, 1, 'w', {later}, 1, 1),
                 (3, 2, 'web', 'developer', 'queued', 3, {later}, NULL, NULL, 1, 1);
             INSERT INTO job_history (job_id, at, from_state, to_state, actor) VALUES
                 (1, 1, 'running', 'done', 'w');
             INSERT INTO agent_runs (id, job_id, attempt, worker, agent, started_at, ended_at,
                                     class, usage_json, host, log_path) VALUES
                 (1, 1, 1, 'w', 'claude', 1, 2, 'ok', '{{\"cost_usd\": 1}}', 'h', '/l/job-1-run-1.log'),
                 (2, 2, 1, 'w', 'claude', 1, NULL, NULL, NULL, 'h', '/l/job-2-run-2.log');
             UPDATE agent_runs SET finalized_at = 3 WHERE id = 1;
             INSERT INTO outbox (kind, payload, state, next_attempt_at, created_at, job_id) VALUES
                 ('comment', '{{}}', 'sent', 1, 1, 1), ('comment', '{{}}', 'pending', {later}, 1, 2);"
        ))
        .unwrap();
    store
}

/// Far ahead: a lease that holds, a retry not yet due.
const LATER: i64 = 4_000_000_000_000;

/// The statements the reads of a quiet queue run — `orch status` (text and JSON), `orch
/// metrics`, `orch jobs`, a claim that finds nothing and a tick with nothing to do — and each
/// one's query plan: none reads every job, run, history entry or message ever made, so they
/// cost the same at a million finished jobs as at a thousand.
#[test]
fn a_quiet_queues_reads_walk_no_finished_rows() {
    use crate::domain::retention::{turn_due, PRUNE_TURN};
    use crate::store::{ClaimMessage, ClaimProject, ClaimRequest, JobFilter, Turn};

    let dir = tempfile::tempdir().unwrap();
    let mut store = a_quiet_queue(&dir);
    let now = 2_000;
    let turn = Turn {
        name: PRUNE_TURN,
        holder: "w",
        every_ms: 3_600_000,
        hold_ms: 1,
        now,
    };
    store.end_turn(PRUNE_TURN, "w", true, now).unwrap();
    assert!(!turn_due(Some(now), None, turn.every_ms, now));
    let triage = |_: &[crate::domain::rescue::Candidate]| Vec::new();
    let claim = ClaimRequest {
        worker: "w2",
        projects: vec![ClaimProject {
            name: "web",
            max_running: 10,
            held: None,
            budget: crate::domain::budget::Budget::default(),
            stages: crate::store::ClaimStage::all(&["analyst", "developer"], "claude"),
        }],
        lease_ms: 60_000,
        // Job 3 waits out a long retry delay: not due, and not dated by a clock that ran ahead.
        longest_backoff_ms: 2 * LATER,
        host: "h",
        triage: &triage,
        day_start: crate::domain::budget::day_start(now),
        now,
    };
    let notify = ClaimMessage {
        claimer: "n",
        now,
        claim_ms: 1000,
        dedup_ms: 1000,
        alerts: true,
        comments: true,
        skip_projects: &[],
    };
    let seen = statements_of(&mut store, |store| {
        store.state_counts().unwrap();
        store.jobs_in_state(JobState::Running, 20).unwrap();
        store.pending_retries(now, 20).unwrap();
        store.outbox_summary(now, 20).unwrap();
        store.breakers(now).unwrap();
        store.stranded_jobs(&["analyst", "developer"], 20).unwrap();
        store.project_holds().unwrap();
        store.metrics("h", now).unwrap();
        store
            .list_jobs(&JobFilter {
                limit: 50,
                ..JobFilter::default()
            })
            .unwrap();
        assert!(store.claim(&claim).unwrap().job.is_none());
        store.rescue("h", now, &triage).unwrap();
        store.unfinalized_runs(Some("w2"), 20).unwrap();
        assert!(store.claim_message(&notify).unwrap().is_none());
        assert!(!store.take_turn(&turn).unwrap());
        store.trash("h", 500).unwrap();
        // The tick's push step and the worktrees status and metrics show.
        store.unpushed_branches("h", 20).unwrap();
        store.worktree_usage("h").unwrap();
        store.worktrees("h").unwrap();
        // A sync that finds no issue, and the label sweep of every notify.
        let sync = crate::store::IntakeSync {
            project: "web",
            issues: &[],
            stage: "analyst",
            priority: 0,
            max_attempts: 3,
            actor: "sync",
            now,
        };
        store.sync_intake(&sync).unwrap();
        let sweep = crate::store::LabelSweep {
            project: "web",
            since: Some(now),
            rule: crate::domain::intake::state_label,
            now,
        };
        store.sweep_issue_labels(&sweep).unwrap();
        // The tick's look for approvals waiting too long, and for CI gates.
        let none = |_: &crate::store::Job| None;
        let alerts = crate::store::ApprovalAlerts {
            waiting_since: now,
            alert: &none,
            now,
        };
        assert!(store.alert_waiting_approvals(&alerts).unwrap().is_empty());
        assert!(store.ci_gates(50).unwrap().is_empty());
    });
    assert!(seen.len() > 20, "{seen:?}");
    let unbounded = unbounded_plans(&store.conn, &seen, plan_is_bounded);
    assert!(
        unbounded.is_empty(),
        "scans of tables that grow with the years:\n{}",
        unbounded.join("\n")
    );
}

/// A prune's batch, its preview and the outbox sweep look up their own tasks, jobs, runs and
/// messages: none walks every row of a table, nor every message ever sent.
#[test]
fn a_prune_walks_only_what_it_removes() {
    use crate::domain::retention::Cutoffs;
    use crate::store::{OutboxSweep, PruneBatch};

    let dir = tempfile::tempdir().unwrap();
    let mut store = a_quiet_queue(&dir);
    let batch = PruneBatch {
        finished: TaskState::FINISHED,
        cutoffs: Cutoffs {
            finished_before: 1_000,
            open_runs_since: 0,
        },
        after: None,
        limit: 10,
        host: "h",
        now: 2_000,
    };
    let seen = statements_of(&mut store, |store| {
        assert_eq!(store.preview_prune(&batch).unwrap().tasks, 1);
        assert_eq!(store.prune_batch(&batch).unwrap().tasks, 1);
        for state in [OutboxState::Folded, OutboxState::Sent] {
            let sweep = OutboxSweep {
                state,
                before: 1_000,
                after: None,
                limit: 10,
                dry_run: false,
            };
            store.sweep_outbox(&sweep).unwrap();
        }
        let ids: Vec<i64> = store.trash("h", 10).unwrap().iter().map(|t| t.id).collect();
        store.empty_trash(&ids).unwrap();
    });
    // Every message in a state, by state alone, is every message ever sent.
    let bounded = |detail: &str, sql: &str| {
        plan_is_bounded(detail, sql) && !detail.contains("outbox_state (state=?)")
    };
    let unbounded = unbounded_plans(&store.conn, &seen, bounded);
    assert!(unbounded.is_empty(), "{}", unbounded.join("\n"));
}

/// Finalizing a run adds it to the usage rollup by reading that run alone: the trigger's query
/// looks the run, its job and its task up, in both of the rows it adds to.
#[test]
fn rolling_a_run_up_reads_that_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_at(&dir, "h");
    let mut stmt = store
        .conn
        .prepare("EXPLAIN QUERY PLAN SELECT * FROM run_rollup WHERE run_id = ?1")
        .unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>("detail").unwrap());
    }
    let sql = "agent_runs jobs j tasks t";
    assert!(
        plan.iter().all(|detail| plan_is_bounded(detail, sql)),
        "{plan:#?}"
    );
    assert!(
        plan.iter().filter(|d| d.starts_with("SEARCH")).count() >= 6,
        "{plan:#?}"
    );
}

/// Migration 9 fills its counters and the usage rollup from what a database holds already:
/// status, metrics and `orch usage` answer for the years before it as for what comes after.
#[test]
fn migration_9_counts_what_was_there_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    {
        let conn = migrated_to(&path, "h", 8);
        // 2026-11-29 10:00 UTC.
        let at = 1_795_946_400_000_i64;
        conn.execute_batch(&format!(
            "PRAGMA user_version = 8;
             INSERT INTO tasks (id, project, key, created_at, updated_at)
             VALUES (1, 'web', 'T-1', 0, 0), (2, 'api', 'T-2', 0, 0);
             INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
             VALUES (1, 1, 'web', 'analyst', 'done', 3, 0, 0, 0),
                    (2, 1, 'web', 'developer', 'queued', 3, 0, 0, 0),
                    (3, 2, 'api', 'analyst', 'failed', 3, 0, 0, 0);
             INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
             VALUES (1, 0, NULL, 'queued', 't', 'x'), (1, 1, 'queued', 'running', 't', 'x'),
                    (1, 2, 'running', 'done', 't', 'x');
             INSERT INTO agent_runs (job_id, attempt, worker, agent, started_at, usage_json, class,
                                     finalized_at, resumed_session)
             VALUES (1, 1, 'w', 'claude', {at}, '{{\"cost_usd\":0.5,\"turns\":2}}', 'ok', {at}, NULL),
                    (3, 1, 'w', 'claude', {at}, '{{\"cost_usd\":0.25,\"turns\":1}}', 'auth', {at}, 's-1'),
                    (3, 2, 'w', 'claude', {at}, NULL, NULL, NULL, NULL);
             INSERT INTO outbox (kind, project, task, payload, state, next_attempt_at, created_at, job_id)
             VALUES ('comment', 'web', 'T-1', '{{}}', 'sent', 0, 0, 1),
                    ('comment', 'web', 'T-1', '{{}}', 'pending', 0, 0, 1);"
        ))
        .unwrap();
    }
    let store = open_at(&dir, "h");
    let mut counts: Vec<(String, String, JobState, i64)> = store
        .state_counts()
        .unwrap()
        .into_iter()
        .map(|c| (c.project, c.stage, c.state, c.count))
        .collect();
    counts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        counts,
        [
            ("api".into(), "analyst".into(), JobState::Failed, 1),
            ("web".into(), "analyst".into(), JobState::Done, 1),
            ("web".into(), "developer".into(), JobState::Queued, 1),
        ]
    );
    let moves: i64 = store
        .conn
        .query_row("SELECT sum(moves) FROM job_moves", [], |row| row.get(0))
        .unwrap();
    assert_eq!(moves, 2, "the two changes of state job 1's history holds");
    let report = store
        .usage(&crate::store::UsageQuery {
            since_day: None,
            until_day: None,
            by: vec![crate::domain::usage::Dim::Project],
        })
        .unwrap();
    let sums = |project: &str, class: &str| {
        report
            .iter()
            .find(|row| {
                row.class == class && row.key == [crate::store::UsageKey::Text(project.into())]
            })
            .map(|row| (row.sums.runs, row.sums.cost_usd, row.sums.turns))
    };
    assert_eq!(sums("web", "ok"), Some((1, 0.5, 2)));
    assert_eq!(sums("api", "auth"), Some((1, 0.25, 1)));
    assert_eq!(
        sums("api", crate::domain::usage::UNJUDGED).map(|s| s.0),
        Some(1),
        "the run not finalized yet"
    );
    let resumed: i64 = store
        .conn
        .query_row(
            "SELECT runs FROM run_counts WHERE name = 'resumed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(resumed, 1);
    let outbox: Vec<(String, i64)> = store
        .conn
        .prepare("SELECT state, messages FROM outbox_counts ORDER BY state")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(outbox, [("pending".into(), 1), ("sent".into(), 1)]);
}

/// Migration 12 rebuilds `jobs` and `outbox` (new states and kinds): every row, index and trigger
/// the earlier migrations gave them is kept, and the counters still follow each move.
#[test]
fn migration_12_keeps_the_jobs_and_the_outbox_with_their_indexes_and_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let schema = |conn: &Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT type || ' ' || name FROM sqlite_master
                 WHERE tbl_name IN ('jobs', 'outbox') AND type IN ('index', 'trigger') ORDER BY 1",
            )
            .unwrap();
        let names = stmt.query_map([], |row| row.get(0)).unwrap();
        names.collect::<rusqlite::Result<_>>().unwrap()
    };
    let before;
    {
        let conn = migrated_to(&path, "h", 11);
        conn.execute_batch(
            "PRAGMA user_version = 11;
             INSERT INTO tasks (id, project, key, created_at, updated_at) VALUES (1, 'web', 'T-1', 0, 0);
             INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
             VALUES (1, 1, 'web', 'analyst', 'done', 3, 0, 0, 0),
                    (2, 1, 'web', 'developer', 'over_budget', 3, 0, 0, 0);
             INSERT INTO outbox (kind, project, task, payload, state, next_attempt_at, created_at, job_id)
             VALUES ('comment', 'web', 'T-1', '{}', 'pending', 0, 0, 1);",
        )
        .unwrap();
        before = schema(&conn);
    }
    let store = open_at(&dir, "h");
    let after = schema(&store.conn);
    for name in &before {
        assert!(after.contains(name), "{name} lost: {after:?}");
    }
    let states: Vec<(i64, String)> = store
        .conn
        .prepare("SELECT id, state FROM jobs ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(states, [(1, "done".into()), (2, "over_budget".into())]);
    // The counters' triggers came back with the table: a move is counted.
    store
        .conn
        .execute("UPDATE jobs SET state = 'queued' WHERE id = 2", [])
        .unwrap();
    let queued: i64 = store
        .conn
        .query_row(
            "SELECT jobs FROM job_counts WHERE stage = 'developer' AND state = 'queued'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(queued, 1);
    let pending: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(pending, 1);
}
