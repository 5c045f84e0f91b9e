//! The PostgreSQL server the tests may use: `ORCH_TEST_PG_URL` (`.ci/pg.sh` starts a throwaway
//! one and sets it). Each test gets a schema of its own in that database, dropped at the end, and
//! orch reaches it through the URL's `options` (its search path).

use std::sync::atomic::{AtomicU32, Ordering};

/// The server's URL; None when the tests run without one (a developer without PostgreSQL), or
/// run the SQLite half alone (`ORCH_TEST_BACKEND=sqlite`). Under `CI=true` a missing server is a
/// failure, not a skip.
pub fn url() -> Option<String> {
    if std::env::var("ORCH_TEST_BACKEND").is_ok_and(|only| only == "sqlite") {
        return None;
    }
    match std::env::var("ORCH_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "CI=true but ORCH_TEST_PG_URL is unset: .ci/run starts PostgreSQL with .ci/pg.sh"
            )
        }
        _ => None,
    }
}

/// PgBouncer in session pooling in front of that server (`.ci/pg.sh` starts it and sets
/// `ORCH_TEST_PGBOUNCER_URL`, without a database name: any name passes through to the server's).
/// None when the tests have no server; under `CI=true` a server without the pooler is a failure.
pub fn pooler_url() -> Option<String> {
    url()?;
    match std::env::var("ORCH_TEST_PGBOUNCER_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true but ORCH_TEST_PGBOUNCER_URL is unset: .ci/pg.sh starts PgBouncer")
        }
        _ => None,
    }
}

/// A database of its own on the server (for a pooler, which passes no search path), dropped
/// with everything in it when this is dropped.
pub struct Database {
    server: String,
    pub name: String,
}

impl Database {
    pub fn fresh() -> Database {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = url().expect("a PostgreSQL server (ORCH_TEST_PG_URL)");
        let name = format!(
            "orch_d{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(&server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a test database");
        Database { server, name }
    }

    /// The server's URL with this database instead of its own.
    pub fn direct_url(&self) -> String {
        let base = self.server.split('?').next().unwrap_or_default();
        let (server, _) = base
            .rsplit_once('/')
            .expect("a database in ORCH_TEST_PG_URL");
        format!("{server}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = admin(&self.server).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connecting to ORCH_TEST_PG_URL")
}

/// A schema of its own, dropped with everything in it when this is dropped.
pub struct Schema {
    server: String,
    name: String,
}

impl Schema {
    pub fn fresh() -> Schema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = url().expect("a PostgreSQL server (ORCH_TEST_PG_URL)");
        let name = format!(
            "orch_t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(&server)
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("creating a test schema");
        Schema { server, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL orch is given: the server's, its search path this schema.
    pub fn url(&self) -> String {
        let join = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{join}options=-c%20search_path%3D{}&sslmode=disable",
            self.server, self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = admin(&self.server).batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
    }
}
