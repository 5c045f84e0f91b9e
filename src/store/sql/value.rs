//! Values as they cross `Db`: SQLite's five kinds (integers, reals, text, blobs, null), which
//! both backends store the same way (flags as 0/1 integers, states by name, blobs as BYTEA on
//! PostgreSQL).

use crate::domain::breaker::State as BreakerState;
use crate::domain::decide::Decision;
use crate::domain::states::{JobState, MessageKind, OutboxState, PrState, TaskState};
use crate::store::TrashKind;

/// What a parameter's type is when it is null (PostgreSQL types every parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Integer,
    Real,
    Text,
    Blob,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null(Kind),
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null(kind) => *kind,
            Value::Integer(_) => Kind::Integer,
            Value::Real(_) => Kind::Real,
            Value::Text(_) => Kind::Text,
            Value::Blob(_) => Kind::Blob,
        }
    }
}

impl From<rusqlite::types::Value> for Value {
    fn from(value: rusqlite::types::Value) -> Value {
        use rusqlite::types::Value as V;
        match value {
            V::Null => Value::Null(Kind::Text),
            V::Integer(n) => Value::Integer(n),
            V::Real(x) => Value::Real(x),
            V::Text(s) => Value::Text(s),
            V::Blob(b) => Value::Blob(b),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null(_) => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A Rust value as a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// The kind of a type's values, for its null.
pub trait Kinded {
    const KIND: Kind;
}

macro_rules! integers {
    ($($t:ty),+) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
        impl Kinded for $t {
            const KIND: Kind = Kind::Integer;
        }
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, String> {
                match value {
                    Value::Integer(n) => <$t>::try_from(n).map_err(|_| format!("{n} is out of range")),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )+};
}
integers!(i64, i32, u32, u64, usize, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}
impl Kinded for bool {
    const KIND: Kind = Kind::Integer;
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl Kinded for f64 {
    const KIND: Kind = Kind::Real;
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl Kinded for str {
    const KIND: Kind = Kind::Text;
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl Kinded for String {
    const KIND: Kind = Kind::Text;
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl Kinded for [u8] {
    const KIND: Kind = Kind::Blob;
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl Kinded for Vec<u8> {
    const KIND: Kind = Kind::Blob;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: Kinded + ?Sized> Kinded for &T {
    const KIND: Kind = T::KIND;
}

impl<T: ToValue + Kinded> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null(T::KIND),
        }
    }
}
impl<T: Kinded> Kinded for Option<T> {
    const KIND: Kind = T::KIND;
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// A column's value as a Rust value.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, String>;
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Integer(n) => Ok(n != 0),
            other => Err(format!("expected 0 or 1, found {other:?}")),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Real(x) => Ok(x),
            Value::Integer(n) => Ok(n as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b),
            other => Err(format!("expected a blob, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null(_) => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(value)
    }
}

/// The typed states: stored by name, read back by name (each backend's schema admits only the
/// names `NAMES` lists).
macro_rules! by_name {
    ($($name:ty),+) => {$(
        impl ToValue for $name {
            fn to_value(&self) -> Value {
                Value::Text(self.as_str().to_string())
            }
        }
        impl Kinded for $name {
            const KIND: Kind = Kind::Text;
        }
        impl FromValue for $name {
            fn from_value(value: Value) -> Result<Self, String> {
                let name = String::from_value(value)?;
                <$name>::from_name(&name).ok_or_else(|| {
                    format!("unknown {} {name:?} in the database", stringify!($name))
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
