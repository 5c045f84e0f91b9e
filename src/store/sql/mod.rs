//! One way to run a statement on either backend, so that every query and the logic around it is
//! written once (the modules under `store/sqlite/` that hold the operations) and both databases
//! decide exactly alike. `Db` is a connection or transaction of either backend with rusqlite's
//! shape (`prepare_cached`, `execute`, `query_row`, `query_map`, `optional`), values cross it as
//! `Value`s, and rows are read by name or index as on rusqlite.
//!
//! Statements are written in SQLite's dialect with numbered parameters (`?1`); on PostgreSQL
//! `dialect::postgres` rewrites them once per process (parameters `$1`, the few functions and
//! operators the two spell differently), their parameters typed by the Rust values given (so
//! `?1 IS NULL` needs no cast); a statement is sent whole the first time (one round trip) and
//! prepared when it comes again on the connection. A statement the
//! rewrite cannot carry is chosen by `Db::is_postgres`.

mod dialect;
mod pg;
mod value;

use std::cell::RefCell;

pub use value::{FromValue, Kind, ToValue, Value};

pub use pg::{Cache, PgClient};

/// A statement's failure on either backend.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// `query_row` found no row (`optional` turns it into None).
    NoRows,
    /// A column could not be read as the type asked for.
    Convert(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(err) => err.fmt(f),
            Error::Postgres(err) => match err.as_db_error() {
                // The server's own words, with its detail: the crate's Display says only "db error".
                Some(db) => write!(f, "{db}"),
                None => err.fmt(f),
            },
            Error::NoRows => f.write_str("the query returned no rows"),
            Error::Convert(why) => f.write_str(why),
        }
    }
}

/// Transparent: it says what the database said, once (the backends find the database's own
/// error through `sqlite` and `postgres` to explain it).
impl std::error::Error for Error {}

impl Error {
    pub fn sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            Error::Sqlite(err) => Some(err),
            _ => None,
        }
    }

    pub fn postgres(&self) -> Option<&postgres::Error> {
        match self {
            Error::Postgres(err) => Some(err),
            _ => None,
        }
    }

    /// The SQLSTATE of the server's error in `err`'s chain, if there is one.
    pub fn sqlstate(err: &anyhow::Error) -> Option<&str> {
        Error::find(err, Error::postgres)
            .and_then(|err| err.code())
            .map(|code| code.code())
    }

    /// The database's error found in `err`'s chain, as it came or inside an `Error`.
    pub fn find<'e, E: std::error::Error + 'static>(
        err: &'e anyhow::Error,
        inside: impl Fn(&'e Error) -> Option<&'e E>,
    ) -> Option<&'e E> {
        err.chain().find_map(|cause| {
            cause
                .downcast_ref::<E>()
                .or_else(|| cause.downcast_ref::<Error>().and_then(&inside))
        })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        match err {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            err => Error::Sqlite(err),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(err: postgres::Error) -> Error {
        Error::Postgres(err)
    }
}

/// rusqlite's `optional()`: no row is None, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoRows) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A statement's parameters: `params![a, b]`, an array `[a]`, or `()` for none.
pub trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for () {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl Params for &[&dyn ToValue] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl Params for &[Value] {
    fn values(self) -> Vec<Value> {
        self.to_vec()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl<T: ToValue, const N: usize> Params for &[T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

/// rusqlite's `params!`, for `Db`.
#[macro_export]
macro_rules! sql_params {
    () => { () };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::ToValue),+] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub use sql_params as params;

/// A connection or a transaction of either backend.
pub struct Db<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres {
        client: RefCell<&'a mut dyn PgClient>,
        cache: &'a RefCell<Cache>,
    },
}

impl<'a> Db<'a> {
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Db<'a> {
        Db {
            inner: Inner::Sqlite(conn),
        }
    }

    pub fn postgres(client: &'a mut dyn PgClient, cache: &'a RefCell<Cache>) -> Db<'a> {
        Db {
            inner: Inner::Postgres {
                client: RefCell::new(client),
                cache,
            },
        }
    }

    /// Whether this is PostgreSQL: for the statements the two spell too differently to rewrite.
    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres { .. })
    }

    /// The statement `sql` (SQLite's dialect), prepared once per connection.
    pub fn prepare_cached<'s>(&'s self, sql: &str) -> Result<Stmt<'s, 'a>> {
        if let Inner::Sqlite(conn) = &self.inner {
            // Prepared (and checked) now, as rusqlite does; kept in rusqlite's cache.
            conn.prepare_cached(sql)?;
        }
        Ok(Stmt {
            db: self,
            sql: sql.to_string(),
        })
    }

    /// `prepare_cached`, for a statement made up at run time (not worth a cache entry on
    /// SQLite; PostgreSQL caches it all the same, by its text).
    pub fn prepare<'s>(&'s self, sql: &str) -> Result<Stmt<'s, 'a>> {
        self.prepare_cached(sql)
    }

    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// A prepared statement of a `Db`.
pub struct Stmt<'s, 'a> {
    db: &'s Db<'a>,
    sql: String,
}

impl Stmt<'_, '_> {
    /// Run it; how many rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        let values = params.values();
        match &self.db.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&self.sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Inner::Postgres { client, cache } => {
                let mut client = client.borrow_mut();
                let n = pg::execute(&mut **client, &mut cache.borrow_mut(), &self.sql, &values)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// The first row, read by `f`; `Error::NoRows` when there is none.
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let values = params.values();
        match &self.db.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&self.sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)),
                    None => Err(Error::NoRows),
                }
            }
            Inner::Postgres { client, cache } => {
                let rows = {
                    let mut client = client.borrow_mut();
                    pg::query(&mut **client, &mut cache.borrow_mut(), &self.sql, &values)?
                };
                match rows.first() {
                    Some(row) => f(&Row::Postgres(row)),
                    None => Err(Error::NoRows),
                }
            }
        }
    }

    /// Whether it returns a row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        Ok(self.query_map(params, |_| Ok(()))?.next().is_some())
    }

    /// Every row, each read by `f`.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let values = params.values();
        let mapped: Vec<Result<T>> = match &self.db.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&self.sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                let mut mapped = Vec::new();
                while let Some(row) = rows.next()? {
                    mapped.push(f(&Row::Sqlite(row)));
                }
                mapped
            }
            Inner::Postgres { client, cache } => {
                let rows = {
                    let mut client = client.borrow_mut();
                    pg::query(&mut **client, &mut cache.borrow_mut(), &self.sql, &values)?
                };
                rows.iter().map(|row| f(&Row::Postgres(row))).collect()
            }
        };
        Ok(mapped.into_iter())
    }
}

/// A row of a result, read by column name or index.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

/// A column by name (`"id"`) or position (`0`).
pub trait Column: Copy + std::fmt::Display {
    fn sqlite(self, row: &rusqlite::Row) -> rusqlite::Result<rusqlite::types::Value>;
    fn postgres(self, row: &postgres::Row) -> Result<pg::AnyValue, postgres::Error>;
}

impl Column for &str {
    fn sqlite(self, row: &rusqlite::Row) -> rusqlite::Result<rusqlite::types::Value> {
        row.get(self)
    }

    fn postgres(self, row: &postgres::Row) -> Result<pg::AnyValue, postgres::Error> {
        row.try_get(self)
    }
}

impl Column for usize {
    fn sqlite(self, row: &rusqlite::Row) -> rusqlite::Result<rusqlite::types::Value> {
        row.get(self)
    }

    fn postgres(self, row: &postgres::Row) -> Result<pg::AnyValue, postgres::Error> {
        row.try_get(self)
    }
}

impl Row<'_> {
    pub fn get<C: Column, T: FromValue>(&self, column: C) -> Result<T> {
        let value = match self {
            Row::Sqlite(row) => Value::from(column.sqlite(row)?),
            Row::Postgres(row) => column.postgres(row)?.0,
        };
        T::from_value(value).map_err(|why| Error::Convert(format!("column {column}: {why}")))
    }
}

/// What a backend gives the operations (`store::sqlite`'s `impl Store`): its clock and its
/// transactions, each handing the queries a `Db`.
pub trait Backend: Send {
    /// The clock every `now` given to the store comes from.
    fn now(&self) -> anyhow::Result<i64>;

    /// Run `f` in one write transaction: committed when it returns Ok, rolled back otherwise,
    /// with no other writer between its reads and its writes.
    fn write<T>(&mut self, f: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T>;

    /// `write`, for one step of a bulk job (a prune's batch).
    fn bulk_write<T>(&mut self, f: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.write(f)
    }

    /// Run `f`'s queries in one transaction that sees one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T>;

    /// One statement's read.
    fn get<T>(&self, f: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T>;

    /// Run `f` in a transaction that is rolled back: a write's statements as a preview.
    fn rolled_back<T>(&mut self, f: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T>;

    /// Bring the database up to date with what was written, without holding up writers.
    fn checkpoint(&mut self) -> anyhow::Result<()>;

    /// Whether several claims may run at once here (a server): then a plain claim is made by
    /// the database's `orch_claim_at_once` function, which serializes only the claims of the
    /// same projects, rather than under the one write lock (`store::sqlite::jobs::claim_at_once`).
    const CLAIMS_AT_ONCE: bool = false;
}
