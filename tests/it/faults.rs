//! Faults: a lock held by another process, a directory orch may not write, a full disk for the
//! run's logs. Each ends with a clear message and its exit code, nothing half-written and no job
//! lost.
use crate::support;

use std::path::Path;
use std::time::Duration;

use support::faults::{hold_write_lock, make_db_dir_read_only};
use support::{Out, World};

fn jobs(world: &World) -> i64 {
    world.sql("SELECT count(*) FROM jobs", [])
}

#[test]
fn a_lock_held_past_the_busy_timeout_fails_clearly_and_writes_nothing() {
    let world = World::new();
    world.enqueue("SEED");
    let holder = hold_write_lock(&world, Duration::from_millis(1500));
    let out = world
        .orch(&["enqueue", "--project", "web", "--task", "T"])
        .env("ORCH_BUSY_TIMEOUT_MS", "200")
        .status(1);
    assert!(
        out.stderr.starts_with("orch: error: database is busy"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("busy_timeout_ms (200 ms)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    holder.join().unwrap();
    assert_eq!(jobs(&world), 1);
    world
        .orch(&["enqueue", "--project", "web", "--task", "T"])
        .ok();
    assert_eq!(jobs(&world), 2);
}

#[test]
fn a_shorter_hold_is_waited_out() {
    let world = World::new();
    world.login(3_600_000);
    world.enqueue("SEED");
    let holder = hold_write_lock(&world, Duration::from_millis(300));
    let out = world
        .orch(&["claim", "--worker", "w", "--json"])
        .env("ORCH_BUSY_TIMEOUT_MS", "5000")
        .ok();
    assert_eq!(out.json()["attempt"], 1);
    holder.join().unwrap();
}

/// The database's directory is not writable, so SQLite cannot make its WAL beside it. As root,
/// permission bits do not bind, so the command runs as `nobody` through setpriv.
#[test]
fn a_read_only_directory_is_a_clear_error() {
    let world = World::new();
    world.enqueue("SEED");
    make_db_dir_read_only(&world);
    support::faults::assert_write_refused(&world);
}

/// Why a tiny filesystem for the logs cannot be had here, or None when it can: it is a tmpfs
/// mounted in a private mount namespace (`unshare -m`), which needs root (CAP_SYS_ADMIN).
fn tiny_fs_unavailable(world: &World) -> Option<String> {
    let probe = world.path("probe");
    std::fs::create_dir_all(&probe).unwrap();
    let out = world
        .command("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs \"$1\"",
            "sh",
        ])
        .arg(&probe)
        .output();
    match out {
        Err(err) => Some(format!("cannot run unshare: {err}")),
        Ok(out) if !out.status.success() => Some(format!(
            "unshare -m and mount -t tmpfs are not permitted: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Claim a job as `w`, then `orch run` it with `env` while its log directory `logs/` is a tmpfs
/// mounted with `options` (in a private mount namespace, so the host never sees it). What the
/// tmpfs held is copied into `saved/`, since the mount ends with the namespace; `timeout` turns
/// a hang into exit 124. None (said on stderr) where the machine does not allow the mount.
/// The tmpfs is mounted 0700: a fresh one is 1777, and orch refuses a log directory others may
/// write in.
fn run_with_logs_on_tiny_fs(options: &str, env: &[(&str, &str)]) -> Option<(World, String, Out)> {
    const SCRIPT: &str = r#"dir=$1 saved=$2 options=$3; shift 3
mount -t tmpfs -o "$options,mode=0700" tmpfs "$dir" || exit 97
timeout 60 "$@"; status=$?
cp -a "$dir"/. "$saved"/
exit $status"#;
    let mut world = World::new();
    if let Some(why) = tiny_fs_unavailable(&world) {
        eprintln!("skipped: no tiny filesystem for the logs: {why}");
        return None;
    }
    world.login(3_600_000);
    let job = world.enqueue("T").to_string();
    world.orch(&["claim", "--worker", "w"]).ok();
    let (logs, saved) = (world.path("logs"), world.path("saved"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&saved).unwrap();
    world.set("ORCH_LOG_DIR", &logs);
    for (key, value) in env {
        world.set(key, value);
    }
    let output = world
        .command("unshare")
        .args(["-m", "sh", "-c", SCRIPT, "sh"])
        .arg(&logs)
        .arg(&saved)
        .arg(options)
        .arg(support::ORCH)
        .args(["run", &job, "--worker", "w", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Some((world, job, Out::from(output)))
}

/// A job's state, lease owner and lease expiry.
fn lease_of(world: &World, job: &str) -> (String, Option<String>, i64) {
    world
        .db()
        .query_row(
            "SELECT state, lease_owner, lease_expires_at FROM jobs WHERE id = ?1",
            [job],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The ended_at, log_truncated and launch_error of a job's one run.
fn run_of(world: &World, job: &str) -> (i64, bool, Option<String>) {
    world
        .db()
        .query_row(
            "SELECT ended_at, log_truncated, launch_error FROM agent_runs WHERE job_id = ?1",
            [job],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The log directory is a 64 KiB filesystem and the agent prints 256 KiB: the log holds what
/// fit, the run is recorded as cut with a warning that says why, `orch run` exits 0 (the run was
/// recorded; finalize judges it), and the job keeps its lease until a claim rescues it.
#[test]
fn a_full_log_disk_cuts_the_log_and_loses_no_job() {
    // The run renews the lease for 2 s at a time: short enough to watch it run out.
    let Some((world, job, out)) = run_with_logs_on_tiny_fs(
        "size=64k",
        &[("FAKE_CLAUDE_BULK", "262144"), ("ORCH_LEASE_SECONDS", "2")],
    ) else {
        return;
    };
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains(
            "orch: warning: writing the run's log failed, the rest is discarded: No space left on device"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let run = out.json();
    assert_eq!(run["exit_code"], 0, "the agent itself ran to its end");
    assert_eq!(run["log_truncated"], true);
    assert!(run["launch_error"].is_null());
    let name = Path::new(run["log_path"].as_str().unwrap())
        .file_name()
        .unwrap();
    let log = world.path("saved").join(name);
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size > 0 && size <= 64 * 1024, "{size}");
    assert_eq!(
        run["log_bytes"], size,
        "log_bytes counts what reached the disk"
    );

    // The cut log holds no result, so the run is judged for a retry, never passed.
    let verdict = world
        .orch(&["validate-log", log.to_str().unwrap()])
        .status(20);
    assert!(
        verdict.stdout.starts_with("no_result"),
        "{}",
        verdict.stdout
    );

    // Not lost: still running, its lease outliving the run, until a claim rescues it.
    let (state, owner, lease_expires_at) = lease_of(&world, &job);
    let (ended_at, truncated, launch_error) = run_of(&world, &job);
    assert_eq!(state, "running");
    assert_eq!(owner.as_deref(), Some("w"));
    assert!(lease_expires_at >= ended_at);
    assert!(truncated);
    assert_eq!(launch_error, None);
    let wait = lease_expires_at - support::now_ms() + 50;
    std::thread::sleep(Duration::from_millis(wait.max(0) as u64));
    let again = world.orch(&["claim", "--worker", "w2", "--json"]).ok();
    assert!(
        again
            .stderr
            .contains(&format!("job {job} lease of w expired")),
        "{}",
        again.stderr
    );
    assert_eq!(again.json()["job_id"].to_string(), job);
    assert_eq!(again.json()["attempt"], 2);
}

/// No room even to create the log (a tmpfs with no free inode): the run is recorded as not
/// started with the reason, the agent never runs, `orch run` exits 0 and the job keeps its lease.
#[test]
fn no_room_to_create_the_log_records_a_launch_failure() {
    let Some((world, job, out)) = run_with_logs_on_tiny_fs("size=64k,nr_inodes=1", &[]) else {
        return;
    };
    assert_eq!(out.code, 0, "{out:#?}");
    let reason = out.json()["launch_error"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("cannot create the run's log"),
        "{reason}"
    );
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(out.stderr.contains(&reason), "{}", out.stderr);
    assert!(!world.calls().iter().any(|call| call.starts_with("run")));
    let (state, owner, _) = lease_of(&world, &job);
    let (ended_at, _, launch_error) = run_of(&world, &job);
    assert_eq!((state.as_str(), owner.as_deref()), ("running", Some("w")));
    assert!(ended_at > 0);
    assert_eq!(launch_error.as_deref(), Some(reason.as_str()));
}
