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
