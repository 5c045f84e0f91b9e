//! The PostgreSQL backend: the synchronous `postgres` crate (its own small runtime inside; orch's
//! code stays synchronous), one connection per process, TLS through rustls (`tls`). Its
//! migrations are a series of their own (`migrations/`), applied under an advisory lock so that
//! several hosts starting at once migrate once.
//!
//! How it keeps SQLite's rules:
//! - One writer at a time. Every write transaction first takes a transaction-scoped advisory lock
//!   (one per database and schema), so the queries decide exactly as they do under SQLite's
//!   `BEGIN IMMEDIATE`: read, decide, write, with no other writer in between. The claim's
//!   statement also takes its row `FOR UPDATE SKIP LOCKED` and each project's claim its own
//!   advisory lock, so that a narrower lock later keeps `max_running` across hosts.
//!   `busy_timeout_ms` is the session's `lock_timeout`: a write that waits longer for the lock
//!   fails, as SQLite's does, and nothing is written.
//! - One clock. `now()` is the server's: its `clock_timestamp()` read once when the connection
//!   opens, plus this process's monotonic time since. One round trip per process instead of one
//!   per step, and immune to this machine's wall clock (set wrong, stepped by NTP, faked): only
//!   the rate of its monotonic clock counts, and over a one-shot process's life that error is
//!   far below a lease's length. `clock_ahead_seconds` (a drill) still moves it.
//! - No database type leaves this folder; errors name the server (never a password).

mod tls;

use std::cell::RefCell;
use std::str::FromStr as _;
use std::time::Instant;

use ::postgres::error::SqlState;
use ::postgres::{Client, NoTls, Transaction};
use anyhow::{Context, Result};

use super::sql::{self, Backend, Cache, Db};
use super::*;
use crate::{exit, secrets};

/// Forward migrations, applied in order; `orch_schema.version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_agents.sql"),
    include_str!("migrations/0003_priced_runs.sql"),
    include_str!("migrations/0004_intake.sql"),
    include_str!("migrations/0005_run_logs.sql"),
    include_str!("migrations/0006_claim_at_once.sql"),
];

/// How long to wait for the server to answer a connection, unless the URL says.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;

/// The advisory locks this backend takes, each keyed also by the database's schema (several
/// orch queues may share a database in their own schemas).
#[derive(Clone, Copy)]
enum Lock {
    Migrate = 1,
    Write = 2,
}

pub struct Postgres {
    client: RefCell<Client>,
    /// The statements prepared on this connection.
    cache: RefCell<Cache>,
    at: Server,
    /// The server's clock when the connection opened, and this process's monotonic clock then.
    clock: (i64, Instant),
}

/// Which server and database this is, for messages: `user@host:port/dbname`, no password.
#[derive(Clone)]
struct Server {
    name: String,
    busy_timeout_ms: u64,
    /// The advisory lock keys, by `Lock`.
    schema_key: i32,
}

impl Postgres {
    /// Connect to the database `url` names, and migrate it.
    pub fn open(url: &str, options: &Options) -> Result<Postgres> {
        let target = Target::parse(url)?;
        let at = Server {
            name: target.name.clone(),
            busy_timeout_ms: options.busy_timeout_ms,
            schema_key: 0,
        };
        let mut client = target.connect(&at)?;
        // The session's settings, the clock, the lock keys' schema and whether orch's tables
        // are there: one message, one round trip. The settings go as statements rather than in
        // the start-up message's `options`, which a connection pooler (PgBouncer) refuses or
        // drops. SQLite's busy timeout is a wait for the write lock; here, for any lock. 0
        // means "never wait" there and "wait forever" here.
        let first = client
            .simple_query(&format!(
                "SET lock_timeout = {}; SET TimeZone = 'UTC';
                 SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                        hashtext('orch ' || current_schema()),
                        to_regclass('orch_schema') IS NOT NULL",
                options.busy_timeout_ms.max(1)
            ))
            .map_err(|err| at.explain(err))?;
        let (server_ms, schema_key, made) = first
            .iter()
            .find_map(|message| match message {
                ::postgres::SimpleQueryMessage::Row(row) => Some((
                    row.get(0).and_then(|v| v.parse::<i64>().ok()),
                    row.get(1).and_then(|v| v.parse::<i32>().ok()),
                    row.get(2) == Some("t"),
                )),
                _ => None,
            })
            .and_then(|(ms, key, made)| Some((ms?, key?, made)))
            .ok_or_else(|| anyhow::anyhow!("the database server {} sent no clock", at.name))?;
        let mut store = Postgres {
            client: RefCell::new(client),
            cache: RefCell::new(Cache::default()),
            at: Server { schema_key, ..at },
            clock: (server_ms, Instant::now()),
        };
        store.migrate(made)?;
        Ok(store)
    }

    /// Whether orch's tables are there (its version table).
    fn made(client: &mut impl ::postgres::GenericClient) -> Result<bool, ::postgres::Error> {
        // Sent whole: one round trip, nothing prepared.
        Ok(client
            .query_typed_one("SELECT to_regclass('orch_schema') IS NOT NULL", &[])?
            .get(0))
    }

    /// The schema's version; 0 when orch's tables are not there (`made`, as just looked).
    fn version(
        client: &mut impl ::postgres::GenericClient,
        made: bool,
    ) -> Result<i64, ::postgres::Error> {
        if !made {
            return Ok(0);
        }
        Ok(client
            .query_typed_opt("SELECT version FROM orch_schema", &[])?
            .map_or(0, |row| row.get(0)))
    }

    fn migrate(&mut self, made: bool) -> Result<()> {
        let known = MIGRATIONS.len() as i64;
        let at = self.at.clone();
        let client = self.client.get_mut();
        let version = Self::version(client, made).map_err(|err| at.explain(err))?;
        if version > known {
            return Err(at.newer_schema(version));
        }
        if version == known {
            return Ok(());
        }
        // Several hosts may start at once: one migrates, the others wait here and find it done.
        // The lock is the session's, taken before the transaction that looks again: a
        // transaction begun after another's commit sees its tables (one begun before may hold
        // the catalog as it was), and a process that dies lets it go with its connection. It
        // waits as long as a migration takes, not the busy timeout.
        let keys = [
            &at.schema_key as &(dyn ::postgres::types::ToSql + Sync),
            &(Lock::Migrate as i32),
        ];
        client
            .batch_execute("SET lock_timeout = 0")
            .and_then(|()| client.execute("SELECT pg_advisory_lock($1, $2)", &keys))
            .map_err(|err| at.explain(err))?;
        let migrated = Self::migrate_locked(client, &at, known);
        client
            .execute("SELECT pg_advisory_unlock($1, $2)", &keys)
            .and_then(|_| {
                client.batch_execute(&format!("SET lock_timeout = {}", at.busy_timeout_ms.max(1)))
            })
            .map_err(|err| at.explain(err))?;
        migrated
    }

    fn migrate_locked(client: &mut Client, at: &Server, known: i64) -> Result<()> {
        let mut tx = client.transaction().map_err(|err| at.explain(err))?;
        let version = Self::made(&mut tx)
            .and_then(|made| Self::version(&mut tx, made))
            .map_err(|err| at.explain(err))?;
        if version > known {
            return Err(at.newer_schema(version));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(sql)
                .map_err(|err| at.explain(err))
                .with_context(|| format!("applying migration {} to {}", index + 1, at.name))?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS orch_schema (version BIGINT NOT NULL);
             DELETE FROM orch_schema;
             INSERT INTO orch_schema (version) VALUES ({known});"
        ))
        .and_then(|()| tx.commit())
        .map_err(|err| at.explain(err))
    }
}

/// How a write transaction ends when its work succeeded.
enum Ending {
    Commit,
    Rollback,
}

impl Postgres {
    /// Run `f` in one transaction that holds the write lock (so that no other writer comes
    /// between its reads and its writes, as under SQLite's `BEGIN IMMEDIATE`); a failure rolls
    /// it back (a dropped connection too, on the server).
    fn transaction<T>(&mut self, ending: Ending, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let at = &self.at;
        let mut tx = self
            .client
            .get_mut()
            .transaction()
            .map_err(|err| at.explain(err))?;
        at.lock(&mut tx, Lock::Write)
            .map_err(|err| at.explain(err))?;
        let value = f(&Db::postgres(&mut tx, &self.cache)).map_err(|err| at.context(err))?;
        match ending {
            Ending::Commit => tx.commit(),
            Ending::Rollback => tx.rollback(),
        }
        .map_err(|err| at.explain(err))?;
        Ok(value)
    }
}

impl Server {
    fn lock(&self, tx: &mut Transaction, lock: Lock) -> Result<(), ::postgres::Error> {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&self.schema_key, &(lock as i32)],
        )
        .map(drop)
    }

    fn newer_schema(&self, version: i64) -> anyhow::Error {
        exit::config(format!(
            "the database {} has schema version {version}, written by a newer orch (this one knows up to {}); \
             it was not modified: upgrade orch or point --db elsewhere",
            self.name,
            MIGRATIONS.len()
        ))
    }

    /// A PostgreSQL failure somewhere in `err`, with a message an operator can act on.
    fn context(&self, err: anyhow::Error) -> anyhow::Error {
        let Some(pg) = sql::Error::find(&err, sql::Error::postgres) else {
            return err;
        };
        match self.friendly(pg) {
            Some((code, message)) => exit::with_code(err, code, message),
            None => err.context(format!("database {}", self.name)),
        }
    }

    fn explain(&self, err: ::postgres::Error) -> anyhow::Error {
        let friendly = self.friendly(&err);
        // As `sql::Error`, which says what the server said (the crate's own says "db error").
        let err = anyhow::Error::new(sql::Error::Postgres(err));
        match friendly {
            Some((code, message)) => exit::with_code(err, code, message),
            None => err.context(format!("database {}", self.name)),
        }
    }

    fn friendly(&self, err: &::postgres::Error) -> Option<(u8, String)> {
        let server = &self.name;
        let nothing = "nothing was written";
        let Some(code) = err.code() else {
            return if err.is_closed()
                || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
            {
                Some((
                    exit::UNEXPECTED,
                    format!("lost the connection to the database server {server}; {nothing}"),
                ))
            } else {
                None
            };
        };
        let busy = self.busy_timeout_ms;
        Some(match code {
            c if *c == SqlState::LOCK_NOT_AVAILABLE => (
                exit::UNEXPECTED,
                format!("database is busy: another process held a lock on {server} longer than busy_timeout_ms ({busy} ms); {nothing}"),
            ),
            c if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => (
                exit::UNEXPECTED,
                format!("a conflicting write on {server} (serialization failure); {nothing}: try again"),
            ),
            c if *c == SqlState::QUERY_CANCELED => (
                exit::UNEXPECTED,
                format!("a statement on {server} ran past its statement_timeout and was cancelled; {nothing}"),
            ),
            c if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            (
                exit::CONFIG,
                format!("the database server {server} refused the login: check the user and the password (PGPASSWORD, ORCH_DB_PASSWORD_FILE or ~/.pgpass)"),
            ),
            c if *c == SqlState::INVALID_CATALOG_NAME => (
                exit::CONFIG,
                format!("the database {server} does not exist: create it (see the README's PostgreSQL section)"),
            ),
            c if *c == SqlState::INSUFFICIENT_PRIVILEGE => (
                exit::CONFIG,
                format!("the database role lacks a privilege orch needs on {server} (see the README's PostgreSQL section); {nothing}"),
            ),
            c if *c == SqlState::ADMIN_SHUTDOWN => (
                exit::UNEXPECTED,
                format!("the database server {server} ended this connection (an administrator, or a shutdown); {nothing}"),
            ),
            c if *c == SqlState::CRASH_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => (
                exit::UNEXPECTED,
                format!("the database server {server} is shutting down or starting; {nothing}"),
            ),
            _ => return None,
        })
    }
}

/// What a URL asks for, the password added from where orch keeps it.
struct Target {
    config: ::postgres::Config,
    ssl: tls::SslMode,
    root_cert: Option<String>,
    name: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        crate::config::check_db_url(url).map_err(exit::config)?;
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl = tls::SslMode::Prefer;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "sslmode" => {
                    ssl = tls::SslMode::parse(&percent_decode(value))
                        .map_err(|e| exit::config(e.to_string()))?
                }
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = ::postgres::Config::from_str(&rest)
            .map_err(|err| exit::config(format!("the database URL: {err}")))?;
        if config.get_user().is_none() {
            let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
            config.user(&user);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(CONNECT_TIMEOUT_SECONDS));
        }
        if config.get_application_name().is_none() {
            config.application_name("orch");
        }
        let host = match config.get_hosts().first() {
            Some(::postgres::config::Host::Tcp(host)) => host.clone(),
            // libpq's password file matches a socket's connection as localhost.
            _ => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or_default().to_string();
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        let shown_host = match config.get_hosts().first() {
            Some(::postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(::postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let name = format!("{user}@{shown_host}:{port}/{dbname}");
        match secrets::get(secrets::DB_PASSWORD) {
            Some(secrets::Found::Value(password)) => {
                config.password(password);
            }
            Some(secrets::Found::Unreadable(why)) => return Err(exit::config(why)),
            None => {
                let login = secrets::PgLogin {
                    host: &host,
                    port,
                    dbname: &dbname,
                    user: &user,
                };
                if let Some(password) = secrets::pgpass_password(&login) {
                    config.password(password);
                }
            }
        }
        Ok(Target {
            config,
            ssl,
            root_cert,
            name,
        })
    }

    fn connect(&self, at: &Server) -> Result<Client> {
        use ::postgres::config::SslMode;
        let mut config = self.config.clone();
        let connected = match self.ssl {
            tls::SslMode::Disable => config.ssl_mode(SslMode::Disable).connect(NoTls),
            mode => {
                let rustls = tls::client_config(mode, self.root_cert.as_deref())
                    .map_err(|err| exit::config(format!("{err:#}")))
                    .with_context(|| format!("TLS to the database server {}", at.name))?;
                let ssl = match mode {
                    tls::SslMode::Prefer => SslMode::Prefer,
                    _ => SslMode::Require,
                };
                config
                    .ssl_mode(ssl)
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(rustls))
            }
        };
        connected.map_err(|err| match err.code() {
            // The server answered: what it said (a login refused, no such database).
            Some(_) => at.explain(err),
            None => exit::with_code(
                anyhow::Error::new(err),
                exit::UNEXPECTED,
                format!("cannot reach the database server {}", at.name),
            ),
        })
    }
}

/// `%XX` escapes in a URL parameter's value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Backend for Postgres {
    fn now(&self) -> Result<i64> {
        let (server_ms, opened) = self.clock;
        let elapsed = i64::try_from(opened.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok(server_ms
            .saturating_add(elapsed)
            .saturating_add(clock_ahead_ms()))
    }

    fn write<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.transaction(Ending::Commit, f)
    }

    fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let at = &self.at;
        let mut client = self.client.borrow_mut();
        let mut tx = client
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|err| at.explain(err))?;
        let value = f(&Db::postgres(&mut tx, &self.cache)).map_err(|err| at.context(err))?;
        tx.commit().map_err(|err| at.explain(err))?;
        Ok(value)
    }

    fn get<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let mut client = self.client.borrow_mut();
        f(&Db::postgres(&mut *client, &self.cache)).map_err(|err| self.at.context(err))
    }

    fn rolled_back<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.transaction(Ending::Rollback, f)
    }

    fn checkpoint(&mut self) -> Result<()> {
        // The server checkpoints by itself; nothing here holds up its writers.
        Ok(())
    }

    // The function is migration 0006's.
    const CLAIMS_AT_ONCE: bool = true;
}
