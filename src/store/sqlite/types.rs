//! The typed states as SQLite values: stored by name, read back by name (the schema's CHECK
//! constraints admit only the names `NAMES` lists; a test compares them).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::breaker::State as BreakerState;
use crate::domain::decide::Decision;
use crate::domain::states::{JobState, MessageKind, OutboxState, PrState, TaskState};
use crate::store::TrashKind;

macro_rules! by_name {
    ($($name:ty),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let name = value.as_str()?;
                <$name>::from_name(name).ok_or_else(|| {
                    FromSqlError::Other(
                        format!("unknown {} {name:?} in the database", stringify!($name)).into(),
                    )
                })
            }
        }
    )+};
}

by_name!(
    JobState,
    TaskState,
    OutboxState,
    MessageKind,
    BreakerState,
    Decision,
    PrState,
    TrashKind
);
