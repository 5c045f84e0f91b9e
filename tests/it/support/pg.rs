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
