//! The chaos suite: 4 workers loop `orch tick` over 300 jobs (150 tasks × 2 stages) with a
//! stand-in agent that at random succeeds, fails, prints nothing and exits 0, hangs past its
//! timeout, hits a rate limit, or reports being logged out (a "login" thread rewrites the
//! credentials file now and then, as an operator would), while a killer SIGKILLs random `orch`
//! processes. Then, with the killer stopped and the leases run out, the queue must drain and the
//! database must tell a consistent story, no process of any run may be left, and every alert must
//! have reached the Telegram server at least once (or still wait in the outbox), twice only where
//! its sender was killed mid-delivery. Bounded: the test fails if the queue has not drained within
//! `DEADLINE`.
//!
//! The fleet test (`fleet_of_three_hosts_on_postgres`) runs the same on PostgreSQL with three
//! hosts (`ORCH_HOST` h0, h1, h2, each its own HOME and credentials, log directory and workers),
//! one of which is logged out halfway through: the others drain the queue, and only it is held.
use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orch::store::sql::Db;
use support::http::Server;
use support::netns;
use support::World;

const TASKS: usize = 150;
const STAGES: [&str; 2] = ["plan", "build"];
const MAX_ATTEMPTS: i64 = 5;
const CHAOS_FOR: Duration = Duration::from_secs(40);
const DEADLINE: Duration = Duration::from_secs(300);
/// ORCH_HTTP_TIMEOUT_SECONDS below, and the claim a notify sender holds on a message: six
/// timeouts and 30 s (src/notify/mod.rs). A live sender finishes within its claim.
const HTTP_TIMEOUT_SECONDS: u64 = 2;
const SEND_CLAIM: Duration = Duration::from_secs(HTTP_TIMEOUT_SECONDS * 6 + 30);

/// Chooses what each run does, then becomes the stand-in agent. `LAST` is what the last 4 % do.
const CHAOS_AGENT: &str = r#"#!/usr/bin/env bash
[ "${1:-}" = "--version" ] && exec "$FAKE_CLAUDE" "$@"
r=$((RANDOM % 100))
if   [ $r -lt 58 ]; then mode=ok
elif [ $r -lt 73 ]; then mode=error
elif [ $r -lt 83 ]; then mode=empty
elif [ $r -lt 88 ]; then mode=noresult
elif [ $r -lt 93 ]; then mode=hang
elif [ $r -lt 96 ]; then mode=rate_limit
else mode=LAST
fi
FAKE_CLAUDE_MODE=$mode exec "$FAKE_CLAUDE" "$@"
"#;

/// Exit statuses a tick may end with; 137 is the killer's SIGKILL. 1 is a run the tick could not
/// finish (its lease was lost while the agent worked): the job is left to the lease rescue.
const TICK_STATUSES: &[i32] = &[0, 1, 3, 10, 11, 12, 20, 21, 22, 137];

/// What a chaos run is made of.
struct Shape {
    /// Hosts, each its own name, HOME (credentials), log directory and workers (a network
    /// namespace where the machine allows it: `Fleet`); with one, the world's own.
    hosts: usize,
    workers_per_host: usize,
    /// What the agent does in the last 4 % of its runs: `auth` (reports being logged out, lifted
    /// by the next login) or `ok`.
    last_mode: &'static str,
    /// The host whose credentials expire halfway through the chaos, for good.
    logout: Option<usize>,
}

#[test]
fn workers_killers_and_a_flaky_agent_leave_a_consistent_queue() {
    let shape = Shape {
        hosts: 1,
        workers_per_host: 4,
        last_mode: "auth",
        logout: None,
    };
    run(World::new(), &shape);
}

#[test]
fn fleet_of_three_hosts_on_postgres() {
    let Some(world) = World::on_postgres() else {
        return;
    };
    let shape = Shape {
        hosts: 3,
        workers_per_host: 1,
        last_mode: "ok",
        logout: Some(2),
    };
    let held = run(world, &shape);
    // Only the host logged out is held: a gate or a failed verdict there, none elsewhere.
    assert!(
        held.iter().all(|(host, _)| host == "h2") && !held.is_empty(),
        "held: {held:?}"
    );
}

/// The environment of host `n` of `shape` (none for the one host of a single-host run): its
/// HOME (credentials) and log directory; its name by `ORCH_HOST` unless it is a network
/// namespace of its own (`Fleet`), whose system host name it is, and which reaches the
/// database and the Telegram stand-in through its veth.
fn host_env(
    world: &World,
    shape: &Shape,
    fleet: Option<&Fleet>,
    n: usize,
) -> Vec<(String, std::ffi::OsString)> {
    if shape.hosts == 1 {
        return Vec::new();
    }
    let mut env = vec![
        ("HOME".into(), world.path(&format!("home-h{n}")).into()),
        (
            "ORCH_LOG_DIR".into(),
            world.path(&format!("logs-h{n}")).into(),
        ),
    ];
    match fleet {
        Some(fleet) => {
            let (db, telegram) = fleet.urls(n);
            env.push(("ORCH_DB".into(), db.into()));
            env.push(("ORCH_TELEGRAM_API_URL".into(), telegram.into()));
        }
        None => env.push(("ORCH_HOST".into(), format!("h{n}").into())),
    }
    env
}

/// The hosts of a fleet as network namespaces, each with relays at its veth's far end to the
/// database server and the Telegram stand-in on 127.0.0.1.
struct Fleet {
    hosts: Vec<(netns::Host, netns::Relay, netns::Relay)>,
    /// The database URL and the Telegram URL as this machine reaches them.
    db: String,
    telegram: String,
}

impl Fleet {
    /// `hosts` namespaces, or why this machine cannot make them.
    fn new(world: &World, telegram: &str, hosts: usize) -> Result<Fleet, String> {
        let db = world.env["ORCH_DB"].to_string_lossy().into_owned();
        let made = (0..hosts)
            .map(|n| {
                let host = netns::Host::new(&format!("h{n}"), n)?;
                let relay = |url: &str| {
                    let target = address(url).parse().unwrap();
                    netns::Relay::start(&format!("{}:0", host.gateway), target)
                };
                let (to_db, to_telegram) = (relay(&db), relay(telegram));
                Ok((host, to_db, to_telegram))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Fleet {
            hosts: made,
            db,
            telegram: telegram.to_string(),
        })
    }

    /// Host `n`'s database and Telegram URLs: through its relays.
    fn urls(&self, n: usize) -> (String, String) {
        let (_, db, telegram) = &self.hosts[n];
        (
            self.db.replacen(address(&self.db), &db.addr.to_string(), 1),
            (self.telegram).replacen(address(&self.telegram), &telegram.addr.to_string(), 1),
        )
    }
}

/// The `host:port` of a URL.
fn address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Log host `n` of `hosts` in (the world's HOME when there is one host), its token expiring
/// `expires_in_ms` on.
fn login(world: &World, hosts: usize, n: usize, expires_in_ms: i64) {
    if hosts == 1 {
        world.login(expires_in_ms);
    } else {
        support::login_at(&world.path(&format!("home-h{n}")), expires_in_ms);
    }
}

/// Run the chaos, check what it left, and return what is held at the end: (host, what) for
/// each auth gate and each failing cached verdict.
fn run(mut world: World, shape: &Shape) -> Vec<(String, String)> {
    let workers_count = shape.hosts * shape.workers_per_host;
    let telegram = Server::start();
    for host in 0..shape.hosts {
        login(&world, shape.hosts, host, 24 * 3_600_000);
    }
    let agent = world.path("chaos-agent");
    std::fs::write(&agent, CHAOS_AGENT.replace("LAST", shape.last_mode)).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (running, pids) = (world.path("running"), world.path("pids.txt"));
    world
        .set("ORCH_CLAUDE_BIN", &agent)
        .set("FAKE_CLAUDE", support::fake_claude())
        .set("FAKE_CLAUDE_SLEEP", "0.05")
        .set("FAKE_CLAUDE_RUNNING", running)
        .set("FAKE_CLAUDE_PIDS", pids)
        .set("ORCH_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string())
        .set("ORCH_LEASE_SECONDS", "3")
        .set("ORCH_RUN_TIMEOUT_SECONDS", "1")
        .set("ORCH_KILL_GRACE_SECONDS", "0")
        .set("ORCH_RETRY_BASE_SECONDS", "0")
        .set("ORCH_RETRY_MAX_SECONDS", "0")
        .set("ORCH_RATE_LIMIT_BACKOFF_SECONDS", "0")
        .set("ORCH_BREAKER_THRESHOLD", "4")
        .set("ORCH_BREAKER_COOLDOWN_SECONDS", "1")
        .set("ORCH_PREFLIGHT_CACHE_TTL", "30")
        .set("ORCH_ALERT_DEDUP_SECONDS", "0")
        .set(
            "ORCH_HTTP_TIMEOUT_SECONDS",
            HTTP_TIMEOUT_SECONDS.to_string(),
        )
        .set("ORCH_TELEGRAM_API_URL", &telegram.url)
        .set("ORCH_TELEGRAM_BOT_TOKEN", "123456:chaos-token")
        .set("ORCH_TELEGRAM_CHAT_ID", "42");
    world.raw_config(&format!(
        "[pipeline]\nstages = [\"plan\", \"build\"]\n\n[projects.web]\nworkdir = \"{}\"\nmax_running = {workers_count}\n",
        world.path("work/web").display()
    ));
    for task in 0..TASKS {
        world.enqueue(&format!("C-{task}"));
    }
    let world = Arc::new(world);

    let started = Instant::now();
    let chaos = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let current: Vec<Arc<Mutex<Option<u32>>>> = (0..workers_count)
        .map(|_| Arc::new(Mutex::new(None)))
        .collect();
    let statuses = Arc::new(Mutex::new(BTreeMap::<i32, u64>::new()));
    let oddities = Arc::new(Mutex::new(Vec::<String>::new()));
    // The lives of the ticks the killer ended: [started, seen dead].
    let killed = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::new()));

    // A fleet's hosts are network namespaces where the machine allows it, else process
    // groups told apart by ORCH_HOST.
    let fleet = match shape.hosts {
        1 => None,
        hosts => match Fleet::new(&world, &telegram.url, hosts) {
            Ok(fleet) => {
                eprintln!("chaos: {hosts} hosts, each a network namespace with its host name");
                Some(Arc::new(fleet))
            }
            Err(why) => {
                eprintln!("chaos: {hosts} hosts as process groups by ORCH_HOST ({why})");
                None
            }
        },
    };
    let workers: Vec<_> = (0..workers_count)
        .map(|n| {
            let host = n % shape.hosts;
            let env = host_env(&world, shape, fleet.as_deref(), host);
            let fleet = fleet.clone();
            let (world, stop, slot) = (
                Arc::clone(&world),
                Arc::clone(&stop),
                Arc::clone(&current[n]),
            );
            let (statuses, oddities) = (Arc::clone(&statuses), Arc::clone(&oddities));
            let killed = Arc::clone(&killed);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let began = Instant::now();
                    let worker = format!("w{n}");
                    let args = ["tick", "--worker", &worker];
                    let mut tick = match &fleet {
                        Some(fleet) => world.orch_on(&fleet.hosts[host].0, &args),
                        None => world.orch(&args),
                    };
                    for (key, value) in &env {
                        tick = tick.env(key, value);
                    }
                    let child = tick.spawn();
                    *slot.lock().unwrap() = Some(child.id());
                    let out = support::Out::of(child);
                    *slot.lock().unwrap() = None;
                    if out.code == 128 + libc::SIGKILL {
                        killed.lock().unwrap().push((began, Instant::now()));
                    }
                    *statuses.lock().unwrap().entry(out.code).or_default() += 1;
                    if !TICK_STATUSES.contains(&out.code) || out.stderr.contains("panicked") {
                        oddities
                            .lock()
                            .unwrap()
                            .push(format!("exit {}: {}", out.code, out.stderr));
                    }
                    if out.code != 0 && out.code != 20 {
                        std::thread::sleep(Duration::from_millis(40));
                    }
                }
            })
        })
        .collect();

    let killer = {
        let (chaos, current, kills) = (Arc::clone(&chaos), current.clone(), Arc::clone(&kills));
        std::thread::spawn(move || {
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            while chaos.load(Ordering::SeqCst) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                std::thread::sleep(Duration::from_millis(400 + seed % 900));
                let pid = *current[(seed % current.len() as u64) as usize]
                    .lock()
                    .unwrap();
                if let Some(pid) = pid {
                    // SAFETY: a signal to a child this test spawned (its id read under the lock).
                    if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                        kills.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };

    // The operator logs the agent back in now and then: a changed credentials file opens the
    // gate. Halfway through the chaos, the host `shape.logout` is logged out for good (its token
    // expired an hour ago).
    let login = {
        let (world, stop) = (Arc::clone(&world), Arc::clone(&stop));
        let (hosts, logout) = (shape.hosts, shape.logout);
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1000));
                round += 1;
                let expired = started.elapsed() > CHAOS_FOR / 2;
                for host in 0..hosts {
                    if logout == Some(host) && expired {
                        login(&world, hosts, host, -3_600_000);
                    } else {
                        login(&world, hosts, host, 24 * 3_600_000 + round);
                    }
                }
            }
        })
    };

    let mut drained = false;
    while started.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() > CHAOS_FOR {
            chaos.store(false, Ordering::SeqCst);
        }
        let live: i64 = world.with_db(|db| {
            db.query_row(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
                (),
                |r| r.get(0),
            )
            .unwrap()
        });
        if live == 0 && !chaos.load(Ordering::SeqCst) {
            drained = true;
            break;
        }
    }
    chaos.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    login.join().unwrap();
    for worker in workers {
        worker.join().unwrap();
    }
    // Deliver what is still due.
    for _ in 0..3 {
        world.orch(&["notify"]).ok();
    }
    let orphans = end_orphans(&world);

    let statuses = statuses.lock().unwrap().clone();
    let report = format!(
        "after {:.0} s: {} kills, tick statuses {statuses:?}",
        started.elapsed().as_secs_f64(),
        kills.load(Ordering::SeqCst)
    );
    eprintln!("chaos: {report}");
    let oddities = oddities.lock().unwrap().clone();
    assert!(
        oddities.is_empty(),
        "{report}\nunexpected tick endings:\n{}",
        oddities.join("\n")
    );
    assert!(
        drained,
        "{report}\nthe queue did not drain:\n{}",
        world.orch(&["status"]).run().stdout
    );
    assert!(
        kills.load(Ordering::SeqCst) > 0,
        "the killer never struck: {report}"
    );

    assert!(
        orphans.is_empty(),
        "{report}\nprocesses of runs outlived their orch and the rescue: {orphans:?}"
    );
    check_no_overlap(&world);
    world.with_db(|db| {
        check_terminal_states(db);
        check_pipeline_order(db);
        check_attempts(db);
        check_alerts(db, &telegram, &killed.lock().unwrap());
        held(db)
    })
}

/// (host, what) for each auth gate held and each failing cached verdict.
fn held(db: &Db) -> Vec<(String, String)> {
    db.prepare(
        "SELECT host, 'gate' FROM auth_gate UNION ALL
         SELECT host, 'failed preflight' FROM preflight_cache WHERE ok = 0",
    )
    .unwrap()
    .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The processes the runs started (agents and the `sleep` grandchildren of hung ones) that are
/// still alive once the queue drained: the rescue should have ended every one whose orch was
/// killed. Each found is killed, so a failure leaves nothing behind either.
fn end_orphans(world: &World) -> Vec<String> {
    let pids = std::fs::read_to_string(world.path("pids.txt")).unwrap_or_default();
    let mut orphans = Vec::new();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'));
        // A pid reused since by another program is not the run's.
        let ours = cmdline.starts_with(b"sleep\x003600\x00")
            || cmdline.windows(11).any(|w| w == b"fake-claude");
        if ours && !zombie {
            orphans.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
            // SAFETY: a signal to a process this test's agent started (checked by its cmdline).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    orphans
}

fn check_no_overlap(world: &World) {
    let overlaps = std::fs::read_to_string(world.path("running/overlaps")).unwrap_or_default();
    assert!(
        overlaps.is_empty(),
        "a job ran twice at the same time:\n{overlaps}"
    );
}

/// Every job is done or failed; failed ones used their attempts or hit a permanent class.
fn check_terminal_states(db: &Db) {
    let mut stmt = db
        .prepare("SELECT id, state, attempt, last_class FROM jobs WHERE state NOT IN ('done')")
        .unwrap();
    let rows: Vec<(i64, String, i64, Option<String>)> = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (job, state, attempt, class) in rows {
        assert_eq!(state, "failed", "job {job} ended {state}");
        let permanent = matches!(class.as_deref(), Some("max_turns" | "max_budget"));
        assert!(
            attempt >= MAX_ATTEMPTS || permanent,
            "job {job} failed after {attempt} attempts with class {class:?}"
        );
    }
    let jobs: i64 = db
        .query_row("SELECT count(*) FROM jobs", (), |r| r.get(0))
        .unwrap();
    let complete: i64 = db
        .query_row(
            "SELECT count(*) FROM tasks WHERE state = 'complete'",
            (),
            |r| r.get(0),
        )
        .unwrap();
    assert!(complete > 0, "no task completed");
    assert!(
        jobs >= TASKS as i64 && jobs <= (TASKS * STAGES.len()) as i64,
        "{jobs} jobs"
    );
}

/// Per task: its jobs follow the pipeline, one job per stage, the next stage only after the
/// previous one's ok run, and no run of a job after its ok run.
fn check_pipeline_order(db: &Db) {
    let mut stmt = db
        .prepare("SELECT t.key, t.state, j.id, j.stage, j.state FROM jobs j JOIN tasks t ON t.id = j.task_id ORDER BY t.id, j.id")
        .unwrap();
    // task key → (task state, its jobs as (id, stage, state) in order)
    type Jobs = Vec<(i64, String, String)>;
    let mut tasks: BTreeMap<String, (String, Jobs)> = BTreeMap::new();
    for row in stmt
        .query_map((), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .unwrap()
    {
        let (key, task_state, job, stage, state) = row.unwrap();
        let entry = tasks.entry(key).or_insert_with(|| (task_state, Vec::new()));
        entry.1.push((job, stage, state));
    }
    let ok_runs = |job: i64| -> Vec<(i64, i64)> {
        let mut stmt = db
            .prepare("SELECT id, result_ok FROM agent_runs WHERE job_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([job], |r| {
            Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    for (key, (task_state, jobs)) in tasks {
        let stages: Vec<&str> = jobs.iter().map(|(_, s, _)| s.as_str()).collect();
        assert_eq!(
            stages,
            STAGES[..stages.len()],
            "task {key}: stages {stages:?}"
        );
        for (index, (job, stage, state)) in jobs.iter().enumerate() {
            let runs = ok_runs(*job);
            let oks: Vec<usize> = runs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.1 == 1)
                .map(|(i, _)| i)
                .collect();
            assert!(oks.len() <= 1, "task {key} {stage}: {} ok runs", oks.len());
            if let Some(&at) = oks.first() {
                assert_eq!(
                    at + 1,
                    runs.len(),
                    "task {key} {stage}: runs after the ok run"
                );
                assert_eq!(
                    state, "done",
                    "task {key} {stage}: an ok run but the job is {state}"
                );
            }
            if index + 1 < jobs.len() {
                assert_eq!(
                    state, "done",
                    "task {key}: {stage} is {state} but the next stage exists"
                );
            }
        }
        let last_done = jobs.last().is_some_and(|(_, _, s)| s == "done");
        let expected = if jobs.len() == STAGES.len() && last_done {
            "complete"
        } else {
            "failed"
        };
        assert_eq!(task_state, expected, "task {key} with jobs {jobs:?}");
    }
}

/// A job's attempt counter equals its claims less the attempts given back after auth failures,
/// and no two runs of a job share an attempt unless the earlier one was given back.
fn check_attempts(db: &Db) {
    let claims: HashMap<i64, i64> = db
        .prepare(
            "SELECT job_id, count(*) FROM job_history WHERE to_state = 'running' GROUP BY job_id",
        )
        .unwrap()
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let given_back: HashMap<i64, i64> = db
        .prepare("SELECT job_id, count(*) FROM agent_runs WHERE decision = 'gated' GROUP BY job_id")
        .unwrap()
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut stmt = db.prepare("SELECT id, attempt FROM jobs").unwrap();
    let jobs: Vec<(i64, i64)> = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (job, attempt) in jobs {
        let claimed = claims.get(&job).copied().unwrap_or(0);
        let back = given_back.get(&job).copied().unwrap_or(0);
        assert_eq!(
            attempt,
            claimed - back,
            "job {job}: attempt {attempt}, {claimed} claims, {back} given back"
        );
        assert!(attempt <= MAX_ATTEMPTS, "job {job}: attempt {attempt}");
        let mut stmt = db
            .prepare("SELECT attempt, coalesce(decision, '') FROM agent_runs WHERE job_id = ?1 ORDER BY id")
            .unwrap();
        let runs: Vec<(i64, String)> = stmt
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut seen: HashSet<i64> = HashSet::new();
        for (run_attempt, decision) in runs {
            assert!(
                run_attempt >= 1 && run_attempt <= attempt.max(1),
                "job {job}: a run of attempt {run_attempt} > {attempt}"
            );
            if decision != "gated" {
                assert!(
                    seen.insert(run_attempt),
                    "job {job}: two counted runs of attempt {run_attempt}"
                );
            }
        }
    }
}

/// Every alert queued reached the Telegram server, or is still in the outbox. Delivery is at
/// least once: a sender killed after the server took a message (before it could record that)
/// leaves it `sending` until its claim expires, and the next sender sends it again. So a message
/// may arrive twice only where a tick the killer ended was alive when it first arrived, and not
/// before that sender's claim ran out: two live senders never hold one message.
fn check_alerts(db: &Db, telegram: &Server, killed: &[(Instant, Instant)]) {
    let mut delivered: HashMap<(String, Option<i64>, Option<i64>), Vec<Instant>> = HashMap::new();
    for request in telegram.requests() {
        let text = request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = text.lines().next().unwrap_or_default().to_string();
        let job = text
            .split("orch show ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        let run = text
            .lines()
            .find_map(|line| line.split(" · ").find_map(|part| part.strip_prefix("run ")))
            .and_then(|n| n.trim().parse().ok());
        delivered
            .entry((kind, job, run))
            .or_default()
            .push(request.at);
    }
    // The earlier sender's claim began before its request arrived, by at most a connect timeout
    // (and the scheduler's delay on a loaded machine): its claim ran out this long after at least.
    let live_claim = SEND_CLAIM - Duration::from_secs(HTTP_TIMEOUT_SECONDS + 10);
    for (alert, times) in &mut delivered {
        times.sort();
        for pair in times.windows(2) {
            let (first, again) = (pair[0], pair[1]);
            let sender_killed = killed
                .iter()
                .any(|(began, died)| *began <= first && first <= *died);
            assert!(
                sender_killed,
                "alert {alert:?} delivered again, but no killed tick was alive when it first arrived"
            );
            assert!(
                again.duration_since(first) >= live_claim,
                "alert {alert:?} delivered twice {:?} apart: two live senders held it",
                again.duration_since(first)
            );
        }
    }
    let mut stmt = db
        .prepare("SELECT id, state FROM outbox WHERE kind = 'alert'")
        .unwrap();
    let states: Vec<(i64, String)> = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let sent = states.iter().filter(|(_, s)| s == "sent").count();
    assert!(sent > 0, "no alert was delivered");
    // A message whose notify was killed after the server took it stays `sending` until its claim
    // expires: delivered, and still in the outbox.
    let sending = states.iter().filter(|(_, s)| s == "sending").count();
    assert!(
        sent <= delivered.len() && delivered.len() <= sent + sending,
        "sent alerts {sent} (+{sending} sending) vs distinct deliveries {}",
        delivered.len()
    );
    for (id, state) in &states {
        assert!(
            matches!(state.as_str(), "sent" | "folded" | "pending" | "sending"),
            "alert {id} is {state}"
        );
    }
}
