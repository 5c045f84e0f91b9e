//! `Db` on PostgreSQL: statements rewritten (`dialect`), prepared once per connection with their
//! parameters typed by the values given, values read back whatever their column's type.

use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Row, Statement, Transaction};

use super::dialect;
use super::value::{Kind, Value};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A connection or a transaction (the crate's `GenericClient` is not object safe).
pub trait PgClient {
    fn prepare_typed(&mut self, sql: &str, types: &[Type]) -> Result<Statement, postgres::Error>;
    fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error>;
    fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
    /// Parse, bind and run in one round trip, preparing nothing.
    fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error>;
    fn execute_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, postgres::Error>;
}

macro_rules! pg_client {
    ($($client:ty),+) => {$(
        impl PgClient for $client {
            fn prepare_typed(
                &mut self,
                sql: &str,
                types: &[Type],
            ) -> Result<Statement, postgres::Error> {
                <$client>::prepare_typed(self, sql, types)
            }

            fn query(
                &mut self,
                statement: &Statement,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, postgres::Error> {
                <$client>::query(self, statement, params)
            }

            fn execute(
                &mut self,
                statement: &Statement,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64, postgres::Error> {
                <$client>::execute(self, statement, params)
            }

            fn query_typed(
                &mut self,
                sql: &str,
                params: &[(&(dyn ToSql + Sync), Type)],
            ) -> Result<Vec<Row>, postgres::Error> {
                <$client>::query_typed(self, sql, params)
            }

            fn execute_typed(
                &mut self,
                sql: &str,
                params: &[(&(dyn ToSql + Sync), Type)],
            ) -> Result<u64, postgres::Error> {
                <$client>::execute_typed(self, sql, params)
            }
        }
    )+};
}
pg_client!(Client, Transaction<'_>);

/// A connection's statements, by their SQLite text and their parameters' kinds: the ones run
/// once so far (sent whole, one round trip, nothing prepared: most of a one-shot process's), and
/// the ones prepared when they came again (a long process's: parsed once).
#[derive(Default)]
pub struct Cache {
    statements: HashMap<(String, Vec<Kind>), Option<Statement>>,
}

fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Integer => Type::INT8,
        Kind::Real => Type::FLOAT8,
        Kind::Text => Type::TEXT,
        Kind::Blob => Type::BYTEA,
    }
}

/// How to run a statement this time: prepared (it came before), or sent whole.
enum Run {
    Prepared(Statement),
    Whole(String),
}

fn statement(
    client: &mut dyn PgClient,
    cache: &mut Cache,
    sql: &str,
    values: &[Value],
) -> Result<Run, postgres::Error> {
    let kinds: Vec<Kind> = values.iter().map(Value::kind).collect();
    let key = (sql.to_string(), kinds);
    match cache.statements.get(&key) {
        Some(Some(statement)) => Ok(Run::Prepared(statement.clone())),
        Some(None) => {
            let types: Vec<Type> = key.1.iter().map(|kind| pg_type(*kind)).collect();
            let statement = client.prepare_typed(&dialect::postgres(sql), &types)?;
            cache.statements.insert(key, Some(statement.clone()));
            Ok(Run::Prepared(statement))
        }
        None => {
            cache.statements.insert(key, None);
            Ok(Run::Whole(dialect::postgres(sql)))
        }
    }
}

fn refs(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn typed(values: &[Value]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    values
        .iter()
        .map(|v| (v as &(dyn ToSql + Sync), pg_type(v.kind())))
        .collect()
}

pub fn execute(
    client: &mut dyn PgClient,
    cache: &mut Cache,
    sql: &str,
    values: &[Value],
) -> Result<u64, postgres::Error> {
    match statement(client, cache, sql, values)? {
        Run::Prepared(statement) => client.execute(&statement, &refs(values)),
        Run::Whole(sql) => client.execute_typed(&sql, &typed(values)),
    }
}

pub fn query(
    client: &mut dyn PgClient,
    cache: &mut Cache,
    sql: &str,
    values: &[Value],
) -> Result<Vec<Row>, postgres::Error> {
    match statement(client, cache, sql, values)? {
        Run::Prepared(statement) => client.query(&statement, &refs(values)),
        Run::Whole(sql) => client.query_typed(&sql, &typed(values)),
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null(_) => Ok(IsNull::Yes),
            Value::Integer(n) => match *ty {
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Value::Real(x) => x.to_sql(ty, out),
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column's value whatever its type, as SQLite would give it: integers and booleans as
/// integers, floating and numeric as reals (a numeric with no fraction as an integer), BYTEA as
/// a blob, the rest as text.
pub struct AnyValue(pub Value);

impl<'a> FromSql<'a> for AnyValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(AnyValue(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::JSONB => Value::Text(String::from_utf8(
                raw.get(1..).unwrap_or_default().to_vec(),
            )?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_utf8(raw.to_vec())?),
        }))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(AnyValue(Value::Null(Kind::Text)))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A NUMERIC in its binary form: digit count, weight, sign, scale, then base-10000 digits.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        let bytes = raw.get(i * 2..i * 2 + 2).ok_or("a short numeric")?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let (ndigits, weight, sign, scale) = (word(0)?, word(1)? as i16, word(2)?, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    let mut integer: Option<i64> = Some(0);
    for i in 0..usize::from(ndigits) {
        let digit = word(4 + i)?;
        let power = i32::from(weight) - i as i32;
        value += f64::from(digit) * 10000f64.powi(power);
        integer = match (integer, power >= 0) {
            (Some(n), true) => 10000i64
                .checked_pow(power as u32)
                .and_then(|p| p.checked_mul(i64::from(digit)))
                .and_then(|d| n.checked_add(d)),
            (n, false) if digit == 0 => n,
            _ => None,
        };
    }
    let negative = sign == 0x4000;
    Ok(match integer {
        Some(n) if scale == 0 => Value::Integer(if negative { -n } else { n }),
        _ => Value::Real(if negative { -value } else { value }),
    })
}
