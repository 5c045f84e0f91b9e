//! Setups for database faults, shared by the fault tests and the bad-input table.

use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::World;

/// Hold the database's write lock from another connection for `hold`, like a stuck process.
/// Returns once the lock is held; join the handle to wait for its release.
pub fn hold_write_lock(world: &World, hold: Duration) -> JoinHandle<()> {
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
    wait.recv().unwrap();
    handle
}

/// Make the database one that `World::orch_unprivileged` may read but not write, in a
/// directory it may not write either. Root writes through permission bits, so as root the
/// command runs as `nobody` against files `nobody` does not own; otherwise the write bits are off
/// for everyone. Either way the same user meets the same bits.
pub fn make_db_read_only(world: &World) {
    let db_mode = if unsafe { libc::geteuid() } == 0 {
        0o644
    } else {
        0o444
    };
    for (path, mode) in [
        (world.root().to_path_buf(), 0o755),
        (world.path("state"), 0o555),
        (world.path("home"), 0o755),
        (world.path("state/orch.db"), db_mode),
        (world.path("config.toml"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Make the database's directory one that `World::orch_unprivileged` may not write, so SQLite
/// cannot create its WAL beside the database (which stays writable).
pub fn make_db_dir_read_only(world: &World) {
    for (path, mode) in [
        (world.root().to_path_buf(), 0o755),
        (world.path("state"), 0o555),
        (world.path("state/orch.db"), 0o666),
        (world.path("config.toml"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Run an enqueue as the unprivileged user against a database it cannot write, and assert the
/// error is clear (exit 1, one `orch: error:` line naming the cause) and nothing was written.
pub fn assert_write_refused(world: &World) {
    let jobs = |w: &World| -> i64 {
        w.db()
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .unwrap()
    };
    let before = jobs(world);
    let out = world
        .orch_unprivileged(&["enqueue", "--project", "web", "--task", "REFUSED"])
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
    assert_eq!(jobs(world), before, "nothing was written");
}
