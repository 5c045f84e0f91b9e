//! Database faults: a lock held by another process, a directory orch may not write. Each ends
//! with a clear message and its exit code, and nothing half-written.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::time::Duration;

use support::World;

/// Hold the database's write lock from another connection for `hold`, like a stuck process.
fn hold_write_lock(
    world: &World,
    hold: Duration,
) -> (std::thread::JoinHandle<()>, mpsc::Receiver<()>) {
    let path = world.path("state/orch.db");
    let (locked, wait) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute("UPDATE tasks SET title = 'held' WHERE 0", [])
            .unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(hold);
        conn.execute_batch("ROLLBACK").unwrap();
    });
    (handle, wait)
}

fn jobs(world: &World) -> i64 {
    world
        .db()
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_lock_held_past_the_busy_timeout_fails_clearly_and_writes_nothing() {
    let world = World::new();
    world.enqueue("SEED");
    let (holder, locked) = hold_write_lock(&world, Duration::from_millis(1500));
    locked.recv().unwrap();
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
    let (holder, locked) = hold_write_lock(&world, Duration::from_millis(300));
    locked.recv().unwrap();
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
    for (path, mode) in [
        (world.root().to_path_buf(), 0o755),
        (world.path("state"), 0o555),
        (world.path("state/orch.db"), 0o666),
        (world.path("config.toml"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = world
        .orch_unprivileged(&["enqueue", "--project", "web", "--task", "T"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("orch: error: "), "{stderr}");
    assert!(
        stderr.contains("read-only") || stderr.contains("cannot open the database"),
        "{stderr}"
    );
    std::fs::set_permissions(world.path("state"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(jobs(&world), 1, "nothing was written");
}
