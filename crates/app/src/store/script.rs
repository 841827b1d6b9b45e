//! A write made of several statements, known before it runs.
//!
//! sqlx runs each SQLite connection on its own thread; every statement is a round trip to
//! it (two context switches). An append writes up to a dozen rows, so on the single SQLite
//! writer those round trips, not the disk, were the limit. The writer therefore runs a
//! `Script` on its own thread through rusqlite (`run_native`: each statement from a
//! prepared-statement cache). Elsewhere `run` joins its statements into one compound query
//! for SQLite (parameters renumbered `$1..$n` across the whole text, which sqlx-sqlite
//! binds by number) and runs them one by one on PostgreSQL, whose extended protocol takes
//! one statement per query.

use sqlx::any::AnyArguments;
use sqlx::{AnyConnection, Arguments};

use super::StoreError;

/// A bound value. Only what our tables use.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    /// A received message's bytes (`inbound_messages.raw`).
    OptBytes(Option<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::OptInt(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::OptText(v.map(str::to_string))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::OptText(v)
    }
}

impl From<Option<Vec<u8>>> for Value {
    fn from(v: Option<Vec<u8>>) -> Value {
        Value::OptBytes(v)
    }
}

/// Binds one value to a plain query (for queries built at run time, like list filters).
pub fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, AnyArguments>,
    value: Value,
) -> sqlx::query::Query<'q, sqlx::Any, AnyArguments> {
    match value {
        Value::Int(v) => q.bind(v),
        Value::OptInt(v) => q.bind(v),
        Value::Text(v) => q.bind(v),
        Value::OptText(v) => q.bind(v),
        Value::OptBytes(v) => q.bind(v),
    }
}

fn add(args: &mut AnyArguments, value: Value) -> Result<(), StoreError> {
    let r = match value {
        Value::Int(v) => args.add(v),
        Value::OptInt(v) => args.add(v),
        Value::Text(v) => args.add(v),
        Value::OptText(v) => args.add(v),
        Value::OptBytes(v) => args.add(v),
    };
    r.map_err(|e| StoreError::Database(format!("parámetro no válido: {e}")))
}

/// Statements, each with its own `$1..$k` parameters, run in order; the first failure
/// stops the script (the caller's transaction or savepoint undoes the rest).
#[derive(Debug, Default)]
pub struct Script {
    parts: Vec<(&'static str, Vec<Value>)>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    pub fn push(&mut self, sql: &'static str, values: Vec<Value>) {
        self.parts.push((sql, values));
    }

    /// `other`'s statements after these.
    pub fn extend(&mut self, other: Script) {
        self.parts.extend(other.parts);
    }

    pub async fn run(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self.parts.is_empty() {
            return Ok(());
        }
        if conn.backend_name() == "SQLite" {
            let mut sql = String::new();
            let mut args = AnyArguments::default();
            let mut offset = 0;
            for (text, values) in self.parts {
                debug_assert_eq!(
                    highest_placeholder(text),
                    values.len(),
                    "each statement binds exactly $1..$n: {text}"
                );
                sql.push_str(&renumber(text, offset));
                sql.push_str(";\n");
                offset += values.len();
                for v in values {
                    add(&mut args, v).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                }
            }
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                .execute(&mut *conn)
                .await?;
        } else {
            for (text, values) in self.parts {
                let mut args = AnyArguments::default();
                for v in values {
                    add(&mut args, v).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                }
                sqlx::query_with(text, args).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}

impl Script {
    /// Runs the statements on a connection of the writer's own thread, one by one from
    /// its statement cache: no other thread, no compound text to parse.
    pub(super) fn run_native(&self, conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        for (text, values) in &self.parts {
            let mut stmt = conn.prepare_cached(text)?;
            for index in 1..=stmt.parameter_count() {
                // `$k` is bound to the k-th value wherever it appears (SQLite numbers
                // named parameters by first appearance, not by their digits).
                let k = stmt
                    .parameter_name(index)
                    .and_then(|name| name.strip_prefix('$'))
                    .and_then(|digits| digits.parse::<usize>().ok())
                    .filter(|k| (1..=values.len()).contains(k))
                    .ok_or_else(|| {
                        rusqlite::Error::InvalidParameterName(format!("{index} en {text}"))
                    })?;
                match &values[k - 1] {
                    Value::Int(v) => stmt.raw_bind_parameter(index, v)?,
                    Value::OptInt(v) => stmt.raw_bind_parameter(index, v)?,
                    Value::Text(v) => stmt.raw_bind_parameter(index, v)?,
                    Value::OptText(v) => stmt.raw_bind_parameter(index, v)?,
                    Value::OptBytes(v) => stmt.raw_bind_parameter(index, v)?,
                }
            }
            // Stepped to its end, rows or not (as sqlx does): a guard may SELECT.
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
        }
        Ok(())
    }
}

/// The highest `$k` in a statement.
fn highest_placeholder(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// `$k` -> `$(k + offset)` everywhere in `sql` (our statements have no `$` in literals).
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if d.is_ascii_digit() {
                digits.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn renumber_shifts_every_parameter() {
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1, $2, $10)", 3),
            "INSERT INTO t VALUES ($4, $5, $13)"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }
}
