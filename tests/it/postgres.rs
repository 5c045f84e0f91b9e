//! The database as a `postgres://` URL: the password never in the URL (nor in any message, nor
//! in a child's environment), a server that cannot be reached named with the documented exit
//! code, and the commands running on PostgreSQL as on SQLite (`World::on_postgres`, when the
//! tests have a server: `ORCH_TEST_PG_URL`).

use crate::support::{self, World};

const DB_PASSWORD: &str = "dbSECRETpassword0123";

/// A port nothing listens on: one the kernel handed out and took back.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_password_in_the_database_url_is_refused_and_never_repeated() {
    let url = format!("postgres://orch:{DB_PASSWORD}@127.0.0.1:5432/orch");
    let query = format!("postgres://orch@127.0.0.1:5432/orch?password={DB_PASSWORD}");
    let w = World::new();
    let outs = [
        w.orch(&["--db", &url, "status"]).status(78),
        w.orch(&["status"]).env("ORCH_DB", &url).status(78),
        w.orch(&["status"]).env("ORCH_DB", &query).status(78),
    ];
    for out in outs {
        assert!(!out.stderr.contains(DB_PASSWORD), "{}", out.stderr);
        for place in ["PGPASSWORD", "ORCH_DB_PASSWORD_FILE", "~/.pgpass"] {
            assert!(out.stderr.contains(place), "{}", out.stderr);
        }
    }
    w.raw_config(&format!(
        "db = \"{url}\"\n[projects.web]\nworkdir = \"/tmp\"\n"
    ));
    let out = w.orch(&["status"]).env_remove("ORCH_DB").status(78);
    assert!(!out.stderr.contains(DB_PASSWORD), "{}", out.stderr);
}

#[test]
fn an_unreachable_server_is_named_and_its_password_is_not() {
    let w = World::new();
    let port = closed_port();
    let url = format!("postgres://orch@127.0.0.1:{port}/orch?sslmode=disable&connect_timeout=5");
    let out = w
        .orch(&["--db", &url, "status"])
        .env("PGPASSWORD", DB_PASSWORD)
        .status(1);
    let server = format!("orch@127.0.0.1:{port}/orch");
    assert!(
        out.stderr
            .contains(&format!("cannot reach the database server {server}")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(DB_PASSWORD), "{}", out.stderr);
    // `orch config` shows the URL as given, which holds no password.
    let out = w
        .orch(&["--db", &url, "config", "--json"])
        .env("PGPASSWORD", DB_PASSWORD)
        .ok();
    assert!(!out.stdout.contains(DB_PASSWORD), "{}", out.stdout);
    let db = &out.json()["settings"]["db"]["value"];
    assert_eq!(db.as_str(), Some(url.as_str()), "{}", out.stdout);
}

#[test]
fn the_database_password_reaches_no_child() {
    for via_file in [false, true] {
        let mut w = World::new();
        w.login(24 * 3_600_000);
        if via_file {
            let file = w.path("db.password");
            support::write_private(&file, format!("{DB_PASSWORD}\n").as_bytes());
            w.set("ORCH_DB_PASSWORD_FILE", &file);
        } else {
            w.set("PGPASSWORD", DB_PASSWORD);
        }
        let snoop = w.path("snoop.txt");
        w.set("FAKE_CLAUDE_SNOOP", &snoop);
        w.enqueue("T-1");
        w.orch(&["tick", "--worker", "w1"]).ok();
        let seen = std::fs::read_to_string(&snoop).unwrap();
        assert!(seen.contains("== /proc/"), "{seen}");
        assert!(!seen.contains(DB_PASSWORD), "{seen}");
        assert!(!seen.contains("PGPASSWORD"), "{seen}");
        assert!(!seen.contains("ORCH_DB_PASSWORD_FILE"), "{seen}");
    }
}

#[test]
fn a_job_runs_through_every_stage_on_postgres() {
    let Some(w) = World::on_postgres() else {
        return;
    };
    w.login(24 * 3_600_000);
    let job = w.enqueue("T-1");
    let task_id = w.store().job(job).unwrap().unwrap().task_id;
    for _ in orch::config::DEFAULT_STAGES {
        w.orch(&["tick", "--worker", "w1"]).ok();
    }
    let jobs = w.store().jobs_of_task(task_id).unwrap();
    let done: Vec<&str> = jobs.iter().map(|j| j.stage.as_str()).collect();
    assert_eq!(done, orch::config::DEFAULT_STAGES, "{jobs:?}");
    assert!(jobs
        .iter()
        .all(|j| j.state == orch::domain::states::JobState::Done));
    let out = w.orch(&["show", &job.to_string(), "--json"]).ok();
    assert_eq!(out.json()["job"]["state"], "done", "{}", out.stdout);
    w.orch(&["status", "--json"]).ok();
    w.orch(&["logs", &jobs[1].job_id.to_string()]).ok();
    w.orch(&["metrics"]).ok();
    w.orch(&["usage"]).ok();
    w.orch(&["prune", "--dry-run"]).ok();
}

/// The store at `url`, opened in this process.
fn open(url: &str) -> anyhow::Result<Box<dyn orch::store::Store>> {
    orch::store::open(&orch::store::Options {
        location: &orch::store::Location::Url(url.to_string()),
        busy_timeout_ms: 30_000,
        host: "h1",
    })
}

fn admin() -> postgres::Client {
    postgres::Client::connect(&support::pg::url().unwrap(), postgres::NoTls).unwrap()
}

#[test]
fn hosts_starting_at_once_migrate_once() {
    if support::pg::url().is_none() {
        return;
    }
    let schema = support::pg::Schema::fresh();
    let url = schema.url();
    let stores: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || open(&url).map(|store| store.now().unwrap()))
        })
        .collect();
    for store in stores {
        store.join().unwrap().unwrap();
    }
    let versions: i64 = admin()
        .query_one(
            &format!("SELECT count(*) FROM {}.orch_schema", schema.name()),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    if support::pg::url().is_none() {
        return;
    }
    let schema = support::pg::Schema::fresh();
    let mut store = open(&schema.url()).unwrap();
    let queued = store.enqueue(&task("T-1"), store.now().unwrap()).unwrap();
    drop(store);
    let name = schema.name();
    admin()
        .batch_execute(&format!("UPDATE {name}.orch_schema SET version = 999"))
        .unwrap();
    let err = open(&schema.url()).err().expect("refused");
    assert_eq!(orch::exit::code_of(&err), 78, "{err:#}");
    assert!(format!("{err:#}").contains("newer orch"), "{err:#}");
    let row = admin()
        .query_one(
            &format!("SELECT (SELECT version FROM {name}.orch_schema), (SELECT count(*) FROM {name}.jobs WHERE id = $1)"),
            &[&queued.job_id],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (999, 1));
}

fn task(key: &str) -> orch::store::NewTask<'_> {
    orch::store::NewTask {
        project: "web",
        key,
        title: None,
        body: None,
        issue: None,
        stage: "analyst",
        priority: 0,
        max_attempts: 3,
        actor: "test",
    }
}

/// Whether the connection named `app` is encrypted, as the server sees it.
fn encrypted(app: &str) -> bool {
    admin()
        .query_one(
            "SELECT coalesce(bool_or(s.ssl), false) FROM pg_stat_ssl s
             JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0)
}

#[test]
fn tls_by_sslmode() {
    let (Some(server), Ok(ca)) = (support::pg::url(), std::env::var("ORCH_TEST_PG_CA")) else {
        return;
    };
    let schema = support::pg::Schema::fresh();
    // The schema's URL, with another sslmode and the host as written here (the server listens
    // on 127.0.0.1; its certificate names localhost and 127.0.0.1).
    let url = |host: &str, query: &str| {
        let rest = server.split_once('@').unwrap().1;
        let port_db = rest.split_once(':').unwrap().1;
        format!(
            "postgres://orch@{host}:{port_db}?options=-c%20search_path%3D{}&{query}",
            schema.name()
        )
    };
    for (host, query, app) in [
        ("127.0.0.1", "sslmode=disable", "t-disable"),
        ("127.0.0.1", "sslmode=require", "t-require"),
        ("127.0.0.1", "sslmode=prefer", "t-prefer"),
        (
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
            "t-full-ip",
        ),
        (
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
            "t-full-name",
        ),
        (
            "db.invalid",
            &format!("sslmode=verify-ca&sslrootcert={ca}&hostaddr=127.0.0.1"),
            "t-ca",
        ),
    ] {
        let store = open(&url(host, &format!("{query}&application_name={app}")))
            .unwrap_or_else(|err| panic!("{query}: {err:#}"));
        assert_eq!(encrypted(app), query != "sslmode=disable", "{query}");
        drop(store);
    }
    for query in [
        // A name the certificate does not hold.
        format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1"),
        // No root that signed it (the system's roots did not).
        "sslmode=verify-full&hostaddr=127.0.0.1".to_string(),
    ] {
        let err = open(&url("db.invalid", &query)).err().expect("refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("certificate") || text.contains("no trusted root"),
            "{query}: {text}"
        );
    }
}

/// libfaketime's library, for a host whose clock is off (`.ci/run` installs Debian's
/// libfaketime when it is missing); None without it, outside CI.
fn faketime() -> Option<&'static str> {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    if std::path::Path::new(LIB).exists() {
        return Some(LIB);
    }
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "CI=true but libfaketime is missing: .ci/run installs it"
    );
    None
}

#[test]
fn a_host_ten_minutes_ahead_runs_nothing_early_and_nothing_twice() {
    let (Some(mut w), Some(lib)) = (World::on_postgres(), faketime()) else {
        return;
    };
    w.login(24 * 3_600_000);
    w.set("ORCH_LEASE_SECONDS", "60");
    let ahead = |w: &World, args: &[&str]| {
        w.orch(args)
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", "+10m")
            .env("ORCH_HOST", "fast")
    };
    // The host ahead claims a due job: its lease runs out by the server's clock, a minute on.
    let first = w.enqueue("T-1");
    let out = ahead(&w, &["claim", "--worker", "fast", "--json"]).ok();
    assert_eq!(out.json()["job_id"], first, "{}", out.stdout);
    let server_now = w.store().now().unwrap();
    let job = w.store().job(first).unwrap().unwrap();
    let lease_left = job.lease_expires_at.unwrap() - server_now;
    assert!((30_000..=60_000).contains(&lease_left), "{lease_left} ms");
    // A host on time finds the lease live: nothing to rescue, nothing to claim.
    w.orch(&["claim", "--worker", "slow"]).status(3);
    assert_eq!(
        w.store()
            .job(first)
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref(),
        Some("fast")
    );
    // A job due in five minutes by the server is not due for the host ten minutes ahead.
    let second = w.enqueue("T-2");
    let schema = w.keep.as_ref().unwrap().name().to_string();
    admin()
        .execute(
            &format!("UPDATE {schema}.jobs SET run_after = $1 WHERE id = $2"),
            &[&(server_now + 300_000), &second],
        )
        .unwrap();
    ahead(&w, &["claim", "--worker", "fast"]).status(3);
    w.orch(&["claim", "--worker", "slow"]).status(3);
    let job = w.store().job(second).unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempt), ("queued", 0), "{job:?}");
    // And what the host ahead records is dated by the server.
    let history = w.store().history(first).unwrap();
    let claimed = history.last().unwrap();
    assert!((claimed.at - server_now).abs() < 30_000, "{history:?}");
}

/// What the queue shows through the CLI, for comparing two databases: jobs of every state,
/// the counts, the cost report and one job's history and runs.
fn snapshot(w: &World, db: &str) -> String {
    let mut shown = String::new();
    for args in [
        &[
            "jobs",
            "--state",
            "queued",
            "--state",
            "running",
            "--state",
            "done",
            "--state",
            "failed",
            "--state",
            "cancelled",
            "--json",
        ][..],
        &["status", "--json"],
        &["usage", "--by", "project,stage", "--json"],
        &["show", "1", "--json"],
    ] {
        let out = w.orch(args).env("ORCH_DB", db).ok();
        let mut doc = out.json();
        // What differs by when it was asked, not by what is stored.
        if let Some(map) = doc.as_object_mut() {
            for key in ["now", "generated_at", "database"] {
                map.remove(key);
            }
        }
        shown.push_str(&doc.to_string());
        shown.push('\n');
    }
    shown
}

#[test]
fn a_queue_moves_to_postgres_and_back_whole() {
    let w = World::new();
    w.login(24 * 3_600_000);
    for task in ["T-1", "T-2"] {
        w.enqueue(task);
    }
    for _ in 0..3 {
        w.orch(&["tick", "--worker", "w1"]).ok();
    }
    let cancelled = w.enqueue("T-3");
    w.orch(&["cancel", &cancelled.to_string()]).ok();
    let sqlite = w.path("state/orch.db").display().to_string();
    let before = snapshot(&w, &sqlite);
    // To PostgreSQL when the tests have a server, else to another SQLite file.
    let schema = support::pg::url().map(|_| support::pg::Schema::fresh());
    let middle = match &schema {
        Some(schema) => schema.url(),
        None => w.path("state/middle.db").display().to_string(),
    };
    let out = w
        .orch(&["db", "copy", "--from", &sqlite, "--to", &middle, "--json"])
        .ok();
    let tables = out.json()["tables"].as_array().unwrap().clone();
    let rows = |name: &str| {
        tables
            .iter()
            .find(|t| t["table"] == name)
            .and_then(|t| t["rows"].as_i64())
            .unwrap()
    };
    assert_eq!(
        (rows("tasks"), rows("agent_runs") > 0),
        (3, true),
        "{tables:?}"
    );
    assert_eq!(snapshot(&w, &middle), before);
    // A target that holds a queue is refused, and left as it was.
    let out = w
        .orch(&["db", "copy", "--from", &sqlite, "--to", &middle])
        .status(2);
    assert!(out.stderr.contains("empty database only"), "{}", out.stderr);
    assert_eq!(snapshot(&w, &middle), before);
    // And back, into a new SQLite file.
    let back = w.path("state/back.db").display().to_string();
    w.orch(&["db", "copy", "--from", &middle, "--to", &back])
        .ok();
    assert_eq!(snapshot(&w, &back), before);
    // The copy goes on where the source stopped: new ids follow the copied ones.
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-4", "--json"])
        .env("ORCH_DB", &middle)
        .ok();
    assert_eq!(out.json()["job_id"], rows("jobs") + 1, "{}", out.stdout);
    // The logs' copies went along, bytes as they were: each database shows the run's log once
    // its file is gone.
    assert_eq!(
        rows("run_logs"),
        rows("agent_runs"),
        "one per finalized run"
    );
    let path: String = w.sql("SELECT log_path FROM agent_runs WHERE job_id = 1", []);
    let log = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for db in [&sqlite, &middle, &back] {
        let out = w.orch(&["logs", "1", "--raw"]).env("ORCH_DB", db).ok();
        assert_eq!(out.stdout, log, "{db}");
    }
}

/// Hold orch's write lock of `schema` from another session until the returned client is dropped.
fn hold_write_lock(schema: &str) -> postgres::Client {
    let mut client = admin();
    client
        .execute(
            "SELECT pg_advisory_lock(hashtext('orch ' || $1::text), 2)",
            &[&schema],
        )
        .unwrap();
    client
}

#[test]
fn a_lock_held_too_long_a_dropped_connection_and_a_timeout_write_nothing() {
    let Some(w) = World::on_postgres() else {
        return;
    };
    let schema = w.keep.as_ref().unwrap().name().to_string();
    let db = w.env["ORCH_DB"].to_string_lossy().into_owned();
    w.enqueue("T-1");
    let jobs = |w: &World| {
        w.store()
            .jobs_in_state(orch::domain::states::JobState::Queued, 10)
            .unwrap()
            .len()
    };

    // Another writer holds the lock longer than busy_timeout_ms.
    let holder = hold_write_lock(&schema);
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-2"])
        .env("ORCH_BUSY_TIMEOUT_MS", "200")
        .status(1);
    assert!(out.stderr.contains("database is busy"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);

    // The connection drops while the step waits inside its transaction.
    let waiting = w
        .orch(&["enqueue", "--project", "web", "--task", "T-3"])
        .env("ORCH_DB", format!("{db}&application_name=orch-dropped"))
        .spawn();
    let mut dropped = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let ended: i64 = admin()
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = 'orch-dropped' AND wait_event_type = 'Lock') AS t",
                &[],
            )
            .unwrap()
            .get(0);
        if ended > 0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the step never waited for the lock");
    let out = support::Out::of(waiting);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        (out.stderr.contains("ended this connection")
            || out.stderr.contains("lost the connection"))
            && out.stderr.contains("nothing was written"),
        "{}",
        out.stderr
    );
    drop(holder);
    assert_eq!(jobs(&w), 1);

    // A statement past the server's statement_timeout.
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-4"])
        .env(
            "ORCH_DB",
            format!(
                "{}?options=-c%20search_path%3D{schema}%20-c%20statement_timeout%3D1ms&sslmode=disable",
                support::pg::url().unwrap()
            ),
        )
        .run();
    if out.code != 0 {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("statement_timeout"), "{}", out.stderr);
        assert!(!out.stderr.contains("T-4 queued"), "{}", out.stderr);
    }
    let queued = jobs(&w);
    assert!(
        queued == 1 || (out.code == 0 && queued == 2),
        "{queued} queued"
    );
}

#[test]
fn status_shows_the_holds_of_every_host() {
    // On PostgreSQL when the tests have a server: where a fleet shares one queue.
    let w = World::on_postgres().unwrap_or_else(World::new);
    w.login(24 * 3_600_000);
    let gate = orch::store::GateHold {
        host: "h2".into(),
        agent: "claude".into(),
        run_id: 7,
        reason: "logged out".into(),
        creds: None,
        alert: None,
    };
    let mut store = w.store();
    let now = store.now().unwrap();
    assert!(store.hold_auth_gate(&gate, now).unwrap());
    let out = w.orch(&["status", "--json"]).ok();
    let holds = out.json()["agent_holds"].clone();
    assert_eq!(holds.as_array().map(Vec::len), Some(1), "{holds}");
    assert_eq!(
        (holds[0]["host"].as_str(), holds[0]["hold"].as_str()),
        (Some("h2"), Some("auth"))
    );
    let out = w.orch(&["status"]).ok();
    assert!(
        out.stdout.contains("agent claude held on h2"),
        "{}",
        out.stdout
    );
}

/// The agents' stages of project web as `orch_claim_at_once` takes them.
const OPEN: &str =
    r#"{"web": ["analyst", "architect", "developer", "reviewer", "tester", "deployer"]}"#;

/// A session of the test's own on `schema`, in a transaction.
fn session(schema: &str) -> postgres::Client {
    let mut client = admin();
    client
        .batch_execute(&format!("SET search_path TO {schema}; BEGIN"))
        .unwrap();
    client
}

/// Whether a session named `app` waits for a lock.
fn waits(app: &str) -> bool {
    for _ in 0..200 {
        let waiting: i64 = admin()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

#[test]
fn plain_claims_go_at_once_while_other_writers_wait() {
    let Some(mut w) = World::on_postgres() else {
        return;
    };
    w.login(24 * 3_600_000);
    std::fs::create_dir_all(w.path("work/web")).unwrap();
    let schema = w.keep.as_ref().unwrap().name().to_string();
    let t1 = w.enqueue("T-1");
    w.enqueue("T-2");
    // The preflight's verdict is cached (a write) before.
    w.orch(&["preflight"]).ok();
    // A claim in flight holds the write lock shared, as orch_claim_at_once does.
    let mut flight = session(&schema);
    flight
        .execute(
            "SELECT pg_advisory_xact_lock_shared(hashtext('orch ' || $1::text), 2)",
            &[&schema],
        )
        .unwrap();
    w.set("ORCH_BUSY_TIMEOUT_MS", "300");
    // Another plain claim does not wait for it...
    let out = w.orch(&["claim", "--worker", "w1", "--json"]).ok();
    assert_eq!(out.json()["job_id"], t1, "{}", out.stdout);
    // ...every other writer does: the claims exclude them as the one write lock did.
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-3"])
        .status(1);
    assert!(out.stderr.contains("database is busy"), "{}", out.stderr);
    // And so does a claim that is not plain: a project held on this host.
    std::fs::remove_dir_all(w.path("work/web")).ok();
    let out = w.orch(&["claim", "--worker", "w2"]).status(1);
    assert!(out.stderr.contains("database is busy"), "{}", out.stderr);
    flight.batch_execute("COMMIT").unwrap();
    // And so does a claim on a host with a run of its own open (the triage's to look at,
    // under the lock).
    std::fs::create_dir_all(w.path("work/web")).unwrap();
    let mut store = w.store();
    let job = store.job(t1).unwrap().unwrap();
    let now = store.now().unwrap();
    crate::conformance::start_on(&mut *store, &job, &w.host(), now);
    flight
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock_shared(hashtext('orch {schema}'), 2)"
        ))
        .unwrap();
    let out = w.orch(&["claim", "--worker", "w3"]).status(1);
    assert!(out.stderr.contains("database is busy"), "{}", out.stderr);
    flight.batch_execute("COMMIT").unwrap();
    // With the lock free, that claim is made the ordinary way.
    let out = w.orch(&["claim", "--worker", "w3", "--json"]).ok();
    assert_eq!(out.json()["task"], "T-2", "{}", out.stdout);
    // The claim made at once wrote its history entry as the ordinary one does; the ordinary
    // claim's triage then took the job back from the run this test opened (of a boot id that
    // is not this machine's).
    let history = w.store().history(t1).unwrap();
    let reasons: Vec<(&str, &str)> = (history.iter().skip(1))
        .map(|h| (h.actor.as_str(), h.reason.as_str()))
        .collect();
    assert_eq!(reasons[0], ("w1", "claimed, attempt 1/3"), "{reasons:?}");
    assert!(reasons[1].1.contains("restarted since run"), "{reasons:?}");
}

#[test]
fn two_claims_that_saw_room_for_one_leave_one_running() {
    let Some(mut w) = World::on_postgres() else {
        return;
    };
    w.login(24 * 3_600_000);
    std::fs::create_dir_all(w.path("work/web")).unwrap();
    w.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 1\n",
        w.path("work/web").display()
    ));
    let schema = w.keep.as_ref().unwrap().name().to_string();
    let t1 = w.enqueue("T-1");
    let t2 = w.enqueue("T-2");
    w.orch(&["preflight"]).ok();
    // Another host's claim has taken a job and holds the project's lock, not committed yet.
    let mut other = session(&schema);
    let now: i64 = other
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .unwrap()
        .get(0);
    let taken: i64 = other
        .query_one(
            "SELECT id FROM orch_claim_at_once('h2-w', 'h2', $1::bigint, 900000, $1::bigint + 4000000,
                                               $1::bigint + 60000,
                                               $2, '{\"web\": 1}', '[\"claude\"]')",
            &[&now, &OPEN],
        )
        .unwrap()
        .get(0);
    assert_eq!(taken, t1);
    // This claim saw the project with none running (the other is not committed), took T-2,
    // and waits for the project's lock...
    w.set(
        "ORCH_DB",
        format!(
            "{}&application_name=orch-second",
            w.env["ORCH_DB"].to_string_lossy()
        ),
    );
    let second = w.orch(&["claim", "--worker", "w1", "--json"]).spawn();
    assert!(waits("orch-second"), "the second claim never waited");
    other.batch_execute("COMMIT").unwrap();
    // ...then counts again, finds the project full, writes nothing and claims the ordinary way:
    // nothing to claim (exit 3).
    let out = support::Out::of(second);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let store = w.store();
    let running = store
        .jobs_in_state(orch::domain::states::JobState::Running, 10)
        .unwrap();
    assert_eq!(
        running.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        vec![t1]
    );
    let t2 = store.job(t2).unwrap().unwrap();
    assert_eq!((t2.attempt, t2.lease_owner), (0, None));
    assert_eq!(
        store.history(t2.job_id).unwrap().len(),
        1,
        "only its enqueue"
    );
}

#[test]
fn a_serialization_failure_is_named_and_writes_nothing() {
    let Some(w) = World::on_postgres() else {
        return;
    };
    let schema = w.keep.as_ref().unwrap().name().to_string();
    w.enqueue("T-1");
    // The server fails the next write to the queue as it would fail a write that conflicted
    // with another under serializable isolation.
    admin()
        .batch_execute(&format!(
            "CREATE FUNCTION {schema}.conflict() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$;
             CREATE TRIGGER conflict BEFORE INSERT ON {schema}.job_history
             FOR EACH ROW EXECUTE FUNCTION {schema}.conflict();"
        ))
        .unwrap();
    let out = w
        .orch(&["enqueue", "--project", "web", "--task", "T-2"])
        .status(1);
    assert!(
        out.stderr.contains("serialization failure")
            && out.stderr.contains("nothing was written")
            && out.stderr.contains("try again"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("password"), "{}", out.stderr);
    let keys: Vec<String> = w
        .store()
        .jobs_in_state(orch::domain::states::JobState::Queued, 10)
        .unwrap()
        .into_iter()
        .map(|j| j.task)
        .collect();
    assert_eq!(
        keys,
        vec!["T-1".to_string()],
        "T-2's task and job were rolled back"
    );
}

/// Through PgBouncer in session pooling (the way to keep short commands' connections warm): the
/// commands work, and the session's settings reach the server (a pooler refuses or drops the
/// start-up message's `options`): a writer kept from the lock gives up after the busy timeout
/// instead of waiting for ever.
#[test]
fn the_commands_work_through_a_pooler_in_session_mode() {
    let Some(pooler) = support::pg::pooler_url() else {
        return;
    };
    let db = support::pg::Database::fresh();
    let mut w = World::new();
    w.set("ORCH_DB", format!("{pooler}/{}?sslmode=disable", db.name));
    w.enqueue("T-1");
    for _ in 0..2 {
        // The second reuses the server connection the first left in the pool.
        let status = w.orch(&["status", "--json"]).ok().json();
        assert_eq!(status["totals"]["queued"], 1, "{status}");
    }

    let mut holder = postgres::Client::connect(&db.direct_url(), postgres::NoTls).unwrap();
    holder
        .execute("SELECT pg_advisory_lock(hashtext('orch public'), 2)", &[])
        .unwrap();
    let mut waiting = w
        .orch(&["enqueue", "--project", "web", "--task", "T-2"])
        .env("ORCH_BUSY_TIMEOUT_MS", "200")
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while waiting.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = waiting.kill();
            panic!("the writer waited past its busy timeout: its lock_timeout never reached the server");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = support::Out::of(waiting);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("database is busy"), "{}", out.stderr);
    drop(holder);

    w.login(3_600_000);
    let claimed = w.orch(&["claim", "--worker", "w1", "--json"]).ok().json();
    assert_eq!(claimed["task"], "T-1", "{claimed}");
    let status = w.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["totals"]["running"], 1, "{status}");
    assert_eq!(status["running"][0]["worker"], "w1", "{status}");
}
