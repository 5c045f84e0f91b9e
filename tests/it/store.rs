//! The database and configuration under bad conditions: each a clear message, its exit code, and
//! nothing written.
use crate::support;

use std::os::unix::fs::PermissionsExt;

use support::World;

#[test]
fn the_database_is_created_private_with_its_directory() {
    let mut world = World::new();
    world.set("ORCH_DB", world.path("deep/er/orch.db"));
    world.enqueue("T");
    let mode = std::fs::metadata(world.path("deep/er/orch.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir = std::fs::metadata(world.path("deep/er"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir & 0o077, 0, "database directory is private");
    let mode: String = rusqlite::Connection::open(world.path("deep/er/orch.db"))
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_orch_is_refused_untouched() {
    let world = World::new();
    world.enqueue("T");
    world
        .db()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let before = std::fs::read(world.path("state/orch.db")).unwrap();
    let out = world.orch(&["status"]).status(78);
    assert!(out.stderr.contains("schema version 999"), "{}", out.stderr);
    assert!(out.stderr.contains("newer orch"), "{}", out.stderr);
    assert_eq!(std::fs::read(world.path("state/orch.db")).unwrap(), before);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    let world = World::new();
    std::fs::write(
        world.path("state/orch.db"),
        b"this is not a database, just some text\n".repeat(200),
    )
    .unwrap();
    let out = world.orch(&["status"]).status(1);
    assert!(out.stderr.starts_with("orch: error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("is not an SQLite database"),
        "{}",
        out.stderr
    );
}

/// A database the user may read but not write (see `make_db_read_only`).
#[test]
fn a_read_only_database_is_a_clear_error() {
    let world = World::new();
    world.enqueue("T");
    support::faults::make_db_read_only(&world);
    support::faults::assert_write_refused(&world);
}

#[test]
fn malformed_config_names_the_line_and_key() {
    let world = World::new();
    world.raw_config("[projects.web]\nworkdir = \"/tmp\"\nmax_running = \"two\"\n");
    let out = world.orch(&["status"]).status(78);
    assert!(out.stderr.contains("line 3: max_running"), "{}", out.stderr);
    world.raw_config("lease_seconds = = 3\n");
    let out = world.orch(&["status"]).status(78);
    assert!(out.stderr.contains("line 1"), "{}", out.stderr);
    world.raw_config("leese_seconds = 3\n");
    let out = world.orch(&["status"]).status(78);
    assert!(
        out.stderr
            .contains("line 1: leese_seconds: unknown setting"),
        "{}",
        out.stderr
    );
    let out = world
        .orch(&["status"])
        .env("ORCH_CONFIG", world.path("missing.toml"))
        .status(78);
    assert!(
        out.stderr.contains("cannot read config file"),
        "{}",
        out.stderr
    );
}

/// A closed stdout (`orch status | head -1`) is not an error, for text and for `--json` output.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let world = World::new();
    world.enqueue("T");
    for args in [&["config"][..], &["status", "--json"][..]] {
        let mut child = world
            .command(support::ORCH)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn config_prints_each_value_with_its_source_and_masks_secrets() {
    let world = World::new();
    world.config("lease_seconds = 60\n");
    let doc = world
        .orch(&["config", "--json", "--set", "max_attempts=9"])
        .env("ORCH_BREAKER_THRESHOLD", "5")
        .env("ORCH_FORGE_TOKEN", "tok-123-secret")
        .ok()
        .json();
    let s = &doc["settings"];
    assert_eq!(s["lease_seconds"]["value"], 60);
    assert_eq!(s["lease_seconds"]["source"], "file");
    assert_eq!(s["breaker_threshold"]["source"], "env");
    assert_eq!(s["max_attempts"]["source"], "flag");
    assert_eq!(s["retry_base_seconds"]["source"], "default");
    assert_eq!(s["forge_token"]["value"], "***");
    assert_eq!(doc["pipeline"]["stages"][5], "deployer");
    assert_eq!(doc["projects"]["web"]["max_running"], 1);
    let text = world
        .orch(&["config"])
        .env("ORCH_FORGE_TOKEN", "tok-123-secret")
        .ok();
    assert!(!text.stdout.contains("tok-123-secret"));
    let out = world.orch(&["config", "--set", "forge_token=x"]).status(2);
    assert!(out.stderr.contains("never from argv"), "{}", out.stderr);
}

#[test]
fn workers_started_at_once_on_a_new_database_make_it_together() {
    for round in 0..3 {
        let world = World::new();
        let children: Vec<_> = (0..6)
            .map(|n| {
                world
                    .orch(&["enqueue", "--project", "web", "--task", &format!("T-{n}")])
                    .spawn()
            })
            .collect();
        for child in children {
            let out = support::Out::of(child);
            assert_eq!(out.code, 0, "round {round}: {}", out.stderr);
        }
        let tasks: i64 = world.sql("SELECT count(*) FROM tasks", []);
        assert_eq!(tasks, 6, "round {round}");
    }
}
