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
//!
//! On PostgreSQL each of those statements is a round trip, and both sides' CPU goes to
//! them. A script made of independent parts (the scheduler's chunk: one append per
//! incident, [`Script::extend_independent`]) is therefore run with each kind of `INSERT
//! … VALUES` of all its parts as one multi-row statement, in an order that keeps every
//! part's own order (`postgres_plan`); updates, deletes and anything else run one by one
//! at their place. A chunk of 20 firings then takes a handful of round trips per kind of
//! row instead of a dozen per incident.

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

/// One statement's bound values.
fn arguments(values: Vec<Value>) -> Result<AnyArguments, sqlx::Error> {
    let mut args = AnyArguments::default();
    for v in values {
        add(&mut args, v).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    }
    Ok(args)
}

/// Statements, each with its own `$1..$k` parameters, run in order; the first failure
/// stops the script (the caller's transaction or savepoint undoes the rest).
#[derive(Debug, Default)]
pub struct Script {
    parts: Vec<(&'static str, Vec<Value>)>,
    /// Where each part added by [`Script::extend_independent`] begins.
    boundaries: Vec<usize>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    pub fn push(&mut self, sql: &'static str, values: Vec<Value>) {
        debug_assert!(
            self.boundaries.is_empty(),
            "a statement after independent parts would join the last of them"
        );
        self.parts.push((sql, values));
    }

    /// `other`'s statements after these, as a part that touches other rows than the
    /// others so added (another incident's append): on PostgreSQL its statements may be
    /// run together with the same statements of the other parts (see `postgres_plan`),
    /// its own order kept. Its own parts, if any, count as one.
    pub fn extend_independent(&mut self, other: Script) {
        self.boundaries.push(self.parts.len());
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
            for statement in postgres_plan(self.parts, &self.boundaries) {
                match statement {
                    Planned::One(text, values) => {
                        sqlx::query_with(text, arguments(values)?)
                            .execute(&mut *conn)
                            .await?
                    }
                    // Its text depends on how many rows it carries: not worth a place
                    // in the connection's statement cache.
                    Planned::Merged(text, values) => {
                        sqlx::query_with(sqlx::AssertSqlSafe(text), arguments(values)?)
                            .persistent(false)
                            .execute(&mut *conn)
                            .await?
                    }
                };
            }
        }
        Ok(())
    }
}

/// A statement as PostgreSQL runs it: one of the script's, or several rows of the same
/// `INSERT` in one.
#[derive(Debug, PartialEq)]
enum Planned {
    One(&'static str, Vec<Value>),
    Merged(String, Vec<Value>),
}

/// Most parameters one PostgreSQL statement takes.
const MAX_PARAMS: usize = 65_535;

/// The same statement: the texts are constants, so mostly the same address.
fn same_text(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// The order a script with independent parts may run in: statements of the same text
/// form a kind; the kinds are ordered so that every part's statements keep their order
/// (a topological order of "this kind comes right after that one in some part", ties
/// broken by first appearance), each kind's statements together in the script's order.
/// Statements of other parts may so run earlier or later than written, which only parts
/// touching different rows allow. `None` (run as written) without independent parts, or
/// when no such order exists (a part repeats a kind after another).
fn kind_order(parts: &[(&'static str, Vec<Value>)], boundaries: &[usize]) -> Option<Vec<usize>> {
    if boundaries.is_empty() || parts.len() < 2 {
        return None;
    }
    // Kinds by first appearance.
    let mut kinds: Vec<&'static str> = Vec::new();
    let kind_of: Vec<usize> = parts
        .iter()
        .map(
            |(sql, _)| match kinds.iter().position(|k| same_text(k, sql)) {
                Some(i) => i,
                None => {
                    kinds.push(sql);
                    kinds.len() - 1
                }
            },
        )
        .collect();
    // "b right after a" within each part.
    let mut starts: Vec<usize> = std::iter::once(0)
        .chain(boundaries.iter().copied())
        .collect();
    starts.push(parts.len());
    let mut after = vec![vec![false; kinds.len()]; kinds.len()];
    for w in starts.windows(2) {
        for pair in kind_of[w[0]..w[1]].windows(2) {
            if pair[0] != pair[1] {
                after[pair[0]][pair[1]] = true;
            }
        }
    }
    let mut pending: Vec<usize> = (0..kinds.len())
        .map(|b| (0..kinds.len()).filter(|&a| after[a][b]).count())
        .collect();
    let mut order = Vec::with_capacity(kinds.len());
    let mut placed = vec![false; kinds.len()];
    while let Some(next) = (0..kinds.len()).find(|&k| !placed[k] && pending[k] == 0) {
        placed[next] = true;
        order.push(next);
        for (b, p) in pending.iter_mut().enumerate() {
            if after[next][b] {
                *p -= 1;
            }
        }
    }
    if order.len() < kinds.len() {
        return None;
    }
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); kinds.len()];
    for (i, kind) in kind_of.into_iter().enumerate() {
        rows[kind].push(i);
    }
    Some(
        order
            .into_iter()
            .flat_map(|kind| std::mem::take(&mut rows[kind]))
            .collect(),
    )
}

/// The order PostgreSQL runs a script in: [`kind_order`]'s, where the rows of each
/// `INSERT … VALUES` kind become one statement; without it, the script's own.
fn postgres_plan(parts: Vec<(&'static str, Vec<Value>)>, boundaries: &[usize]) -> Vec<Planned> {
    let Some(order) = kind_order(&parts, boundaries) else {
        return parts
            .into_iter()
            .map(|(sql, values)| Planned::One(sql, values))
            .collect();
    };
    let mut parts: Vec<Option<(&'static str, Vec<Value>)>> = parts.into_iter().map(Some).collect();
    let mut ordered = order.into_iter().filter_map(|i| parts[i].take()).peekable();
    let mut out = Vec::new();
    while let Some((sql, first)) = ordered.next() {
        let mut rows = vec![first];
        while let Some((_, values)) = ordered.next_if(|(next, _)| *next == sql) {
            rows.push(values);
        }
        let per_row = highest_placeholder(sql).max(1);
        let fits = rows.len() > 1 && per_row <= MAX_PARAMS;
        match insert_shape(sql).filter(|shape| fits && shape.rows_allowed(&rows)) {
            Some(shape) => {
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    let batch: Vec<Vec<Value>> = rows.by_ref().take(MAX_PARAMS / per_row).collect();
                    let tuples: Vec<String> = (0..batch.len())
                        .map(|i| renumber(shape.tuple, i * per_row))
                        .collect();
                    let text = format!("{}{}{}", shape.head, tuples.join(", "), shape.tail);
                    out.push(Planned::Merged(text, batch.into_iter().flatten().collect()));
                }
            }
            None => out.extend(rows.into_iter().map(|values| Planned::One(sql, values))),
        }
    }
    out
}

/// An `INSERT INTO t (cols) VALUES (tuple) tail` whose rows can share one statement.
struct InsertShape<'a> {
    /// Up to and including `VALUES `.
    head: &'a str,
    /// `(…)`: the only place parameters appear.
    tuple: &'a str,
    /// `ON CONFLICT …`, or nothing.
    tail: &'a str,
    /// For `ON CONFLICT (…) DO UPDATE`: the parameters (1-based) giving the conflict
    /// key. Two rows with the same key cannot share a statement (PostgreSQL refuses to
    /// update a row twice in one command).
    key: Option<Vec<usize>>,
}

impl InsertShape<'_> {
    fn rows_allowed(&self, rows: &[Vec<Value>]) -> bool {
        let Some(key) = &self.key else { return true };
        // As the database compares them: `Text("A")` and `OptText(Some("A"))` are one key
        // (and NULLs, which never conflict, are counted as equal: the safe side).
        let keys: Vec<Vec<Option<SqlValue<'_>>>> = rows
            .iter()
            .map(|r| {
                key.iter()
                    .filter_map(|k| r.get(k - 1))
                    .map(sql_value)
                    .collect()
            })
            .collect();
        keys.iter()
            .enumerate()
            .all(|(i, a)| a.len() == key.len() && keys[..i].iter().all(|b| a != b))
    }
}

/// A bound value as SQL sees it.
#[derive(PartialEq)]
enum SqlValue<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

fn sql_value(v: &Value) -> Option<SqlValue<'_>> {
    match v {
        Value::Int(i) | Value::OptInt(Some(i)) => Some(SqlValue::Int(*i)),
        Value::Text(t) => Some(SqlValue::Text(t)),
        Value::OptText(t) => t.as_deref().map(SqlValue::Text),
        Value::OptBytes(b) => b.as_deref().map(SqlValue::Bytes),
        Value::OptInt(None) => None,
    }
}

/// The parts of an `INSERT … VALUES (…)` with parameters only in its tuple; `None` for
/// any other statement (those run one by one).
fn insert_shape(sql: &str) -> Option<InsertShape<'_>> {
    let rest = sql.strip_prefix("INSERT INTO ")?;
    let values_at = sql.find(" VALUES (")? + " VALUES ".len();
    let head = &sql[..values_at];
    // The tuple's closing parenthesis (ours hold no parentheses in quotes).
    let mut depth = 0usize;
    let mut end = None;
    for (i, c) in sql[values_at..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(values_at + i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let (tuple, tail) = (&sql[values_at..end], &sql[end..]);
    if head.contains('$') || tail.contains('$') || tail.contains("RETURNING") {
        return None;
    }
    if !(tail.is_empty() || tail.trim_start().starts_with("ON CONFLICT")) {
        return None;
    }
    let key = if tail.contains("DO UPDATE") {
        let columns = inside_parens(&rest[rest.find('(')?..])?;
        let target = inside_parens(&tail[tail.find('(')?..])?;
        let values = inside_parens(tuple)?;
        let columns: Vec<&str> = columns.split(',').map(str::trim).collect();
        let values: Vec<&str> = values.split(',').map(str::trim).collect();
        if columns.len() != values.len() {
            return None;
        }
        let mut key = Vec::new();
        for col in target.split(',').map(str::trim) {
            let at = columns.iter().position(|c| *c == col)?;
            key.push(values[at].strip_prefix('$')?.parse::<usize>().ok()?);
        }
        Some(key)
    } else {
        None
    };
    Some(InsertShape {
        head,
        tuple,
        tail,
        key,
    })
}

/// What a text starting with `(` holds up to its first `)`.
fn inside_parens(text: &str) -> Option<&str> {
    let text = text.strip_prefix('(')?;
    Some(&text[..text.find(')')?])
}

impl Script {
    /// Runs the statements on a connection of the writer's own thread, from its
    /// statement cache: no other thread, no compound text to parse. A scheduler chunk's
    /// independent parts run in [`kind_order`], so each run of one statement is looked up
    /// and its parameters mapped once, then only bound and stepped row after row.
    pub(super) fn run_native(&self, conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        let order = kind_order(&self.parts, &self.boundaries);
        let order: Vec<usize> = order.unwrap_or_else(|| (0..self.parts.len()).collect());
        let mut rest = order.as_slice();
        while let Some(&first) = rest.first() {
            let text = self.parts[first].0;
            let run = rest
                .iter()
                .position(|&i| !same_text(self.parts[i].0, text))
                .unwrap_or(rest.len());
            let (this, next) = rest.split_at(run);
            rest = next;
            let mut stmt = conn.prepare_cached(text)?;
            // `$k` is bound to the k-th value wherever it appears (SQLite numbers named
            // parameters by first appearance, not by their digits).
            let slots = (1..=stmt.parameter_count())
                .map(|index| {
                    stmt.parameter_name(index)
                        .and_then(|name| name.strip_prefix('$'))
                        .and_then(|digits| digits.parse::<usize>().ok())
                        .filter(|k| *k >= 1)
                        .map(|k| (index, k - 1))
                        .ok_or_else(|| {
                            rusqlite::Error::InvalidParameterName(format!("{index} en {text}"))
                        })
                })
                .collect::<Result<Vec<(usize, usize)>, _>>()?;
            for &i in this {
                let values = &self.parts[i].1;
                for &(index, k) in &slots {
                    match values.get(k).ok_or_else(|| {
                        rusqlite::Error::InvalidParameterName(format!("{index} en {text}"))
                    })? {
                        Value::Int(v) => stmt.raw_bind_parameter(index, v)?,
                        Value::OptInt(v) => stmt.raw_bind_parameter(index, v)?,
                        Value::Text(v) => stmt.raw_bind_parameter(index, v)?,
                        Value::OptText(v) => stmt.raw_bind_parameter(index, v)?,
                        Value::OptBytes(v) => stmt.raw_bind_parameter(index, v)?,
                    }
                }
                // Stepped to its end, rows or not (as sqlx does): a guard may SELECT.
                // Dropping the rows resets the statement for the next.
                let mut rows = stmt.raw_query();
                while rows.next()?.is_some() {}
            }
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
    use super::{Planned, Value, postgres_plan, renumber};

    const EVENT: &str = "INSERT INTO e (folio, seq) VALUES ($1, $2)";
    const TIMER: &str = "INSERT INTO t (folio, due) VALUES ($1, $2) ON CONFLICT (folio) DO UPDATE SET due = excluded.due";
    const CLEAR: &str = "DELETE FROM t WHERE folio = $1";
    const MAIL: &str = "INSERT INTO o (folio, state, at) VALUES ($1, 'pending', $2)";
    const UPDATE: &str = "UPDATE i SET v = $2 WHERE folio = $1";

    fn v(folio: &str, n: i64) -> Vec<Value> {
        vec![folio.into(), n.into()]
    }

    /// Independent parts as the scheduler's chunk makes them.
    fn chunk(parts: Vec<Vec<(&'static str, Vec<Value>)>>) -> Vec<Planned> {
        let mut all = Vec::new();
        let mut boundaries = Vec::new();
        for p in parts {
            boundaries.push(all.len());
            all.extend(p);
        }
        postgres_plan(all, &boundaries)
    }

    #[test]
    fn the_same_insert_of_independent_parts_becomes_one_statement_in_an_order_each_part_keeps() {
        let plan = chunk(vec![
            vec![(EVENT, v("A", 1)), (UPDATE, v("A", 1)), (TIMER, v("A", 10))],
            // B ends its timers (a delete where A set one) and queues mail.
            vec![
                (EVENT, v("B", 1)),
                (EVENT, v("B", 2)),
                (UPDATE, v("B", 2)),
                (CLEAR, vec!["B".into()]),
                (MAIL, v("B", 5)),
            ],
            vec![
                (EVENT, v("C", 1)),
                (UPDATE, v("C", 1)),
                (TIMER, v("C", 30)),
                (MAIL, v("C", 6)),
            ],
        ]);
        let merged_events = Planned::Merged(
            "INSERT INTO e (folio, seq) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8)".into(),
            [v("A", 1), v("B", 1), v("B", 2), v("C", 1)].concat(),
        );
        assert_eq!(plan[0], merged_events);
        // Updates stay one by one, in the parts' order.
        assert_eq!(plan[1], Planned::One(UPDATE, v("A", 1)));
        assert_eq!(plan[2], Planned::One(UPDATE, v("B", 2)));
        assert_eq!(plan[3], Planned::One(UPDATE, v("C", 1)));
        let rest: Vec<&Planned> = plan[4..].iter().collect();
        assert_eq!(
            rest.len(),
            3,
            "timers (2 rows), the delete, mail (2 rows): {rest:?}"
        );
        assert!(rest.contains(&&Planned::Merged(
            "INSERT INTO t (folio, due) VALUES ($1, $2), ($3, $4) ON CONFLICT (folio) DO UPDATE SET due = excluded.due".into(),
            [v("A", 10), v("C", 30)].concat(),
        )));
        assert!(rest.contains(&&Planned::One(CLEAR, vec!["B".into()])));
        let mail = Planned::Merged(
            "INSERT INTO o (folio, state, at) VALUES ($1, 'pending', $2), ($3, 'pending', $4)"
                .into(),
            [v("B", 5), v("C", 6)].concat(),
        );
        // B's delete comes before B's mail, as in B.
        let at = |p: &Planned| rest.iter().position(|r| *r == p);
        assert!(at(&Planned::One(CLEAR, vec!["B".into()])) < at(&mail));
    }

    #[test]
    fn an_upsert_with_the_same_key_twice_runs_row_by_row() {
        let plan = chunk(vec![vec![(TIMER, v("A", 1))], vec![(TIMER, v("A", 2))]]);
        assert_eq!(
            plan,
            vec![
                Planned::One(TIMER, v("A", 1)),
                Planned::One(TIMER, v("A", 2))
            ]
        );
        // The same key bound as another kind of value is still the same key.
        let same = vec![Value::OptText(Some("A".into())), 2.into()];
        let plan = chunk(vec![vec![(TIMER, v("A", 1))], vec![(TIMER, same.clone())]]);
        assert_eq!(
            plan,
            vec![Planned::One(TIMER, v("A", 1)), Planned::One(TIMER, same)]
        );
    }

    #[test]
    fn without_an_order_every_part_keeps_the_script_runs_as_written() {
        // A part that repeats a kind after another: no order of kinds keeps it.
        let parts = vec![
            vec![(EVENT, v("A", 1)), (UPDATE, v("A", 1)), (EVENT, v("A", 2))],
            vec![(EVENT, v("B", 1))],
        ];
        let plan = chunk(parts);
        assert_eq!(
            plan,
            vec![
                Planned::One(EVENT, v("A", 1)),
                Planned::One(UPDATE, v("A", 1)),
                Planned::One(EVENT, v("A", 2)),
                Planned::One(EVENT, v("B", 1)),
            ]
        );
        // Nor is a script of one piece changed.
        let one = postgres_plan(vec![(EVENT, v("A", 1)), (EVENT, v("A", 2))], &[]);
        assert_eq!(
            one,
            vec![
                Planned::One(EVENT, v("A", 1)),
                Planned::One(EVENT, v("A", 2))
            ]
        );
    }

    #[test]
    fn a_statement_with_parameters_outside_its_tuple_is_never_merged() {
        const SELECTED: &str = "INSERT INTO d (a, b) SELECT id, $1 FROM s WHERE x LIKE $2";
        let plan = chunk(vec![
            vec![(SELECTED, v("A", 1))],
            vec![(SELECTED, v("B", 1))],
        ]);
        assert_eq!(
            plan,
            vec![
                Planned::One(SELECTED, v("A", 1)),
                Planned::One(SELECTED, v("B", 1))
            ]
        );
    }

    /// The rows a script leaves in a fresh in-memory database.
    fn rows_after(script: &super::Script) -> Vec<String> {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(
            "CREATE TABLE e (folio TEXT, seq INTEGER, PRIMARY KEY (folio, seq));
             CREATE TABLE i (folio TEXT PRIMARY KEY, v INTEGER);
             CREATE TABLE t (folio TEXT PRIMARY KEY, due INTEGER);
             CREATE TABLE o (id INTEGER PRIMARY KEY, folio TEXT, state TEXT, at INTEGER);
             INSERT INTO i VALUES ('A', 0), ('B', 0), ('C', 0);
             INSERT INTO t VALUES ('B', 1);",
        )
        .expect("schema");
        script.run_native(&conn).expect("script runs");
        let mut out = Vec::new();
        for table in ["e", "i", "t", "o"] {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
                .expect("select");
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..width)
                        .map(|c| {
                            r.get::<_, rusqlite::types::Value>(c)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("rows");
            for row in rows {
                out.push(format!("{table}: {}", row.expect("row").join(", ")));
            }
        }
        out
    }

    #[test]
    fn on_sqlite_independent_parts_run_grouped_by_kind_and_leave_the_rows_written_in_order() {
        let parts = || {
            vec![
                vec![(EVENT, v("A", 1)), (UPDATE, v("A", 1)), (TIMER, v("A", 10))],
                // B sets a timer and clears it: the clear must still come after.
                vec![
                    (EVENT, v("B", 1)),
                    (EVENT, v("B", 2)),
                    (UPDATE, v("B", 2)),
                    (TIMER, v("B", 7)),
                    (CLEAR, vec!["B".into()]),
                    (MAIL, v("B", 5)),
                ],
                vec![
                    (EVENT, v("C", 1)),
                    (UPDATE, v("C", 1)),
                    (TIMER, v("C", 30)),
                    (MAIL, v("C", 6)),
                ],
            ]
        };
        let mut grouped = super::Script::new();
        let mut as_written = super::Script::new();
        for part in parts() {
            let mut one = super::Script::new();
            for (sql, values) in part {
                one.push(sql, values.clone());
                as_written.push(sql, values);
            }
            grouped.extend_independent(one);
        }
        // The same rows as the script run statement after statement, mail ids included
        // (each kind keeps the parts' order).
        let rows = rows_after(&grouped);
        assert_eq!(rows, rows_after(&as_written));
        assert!(
            rows.contains(&"t: Text(\"A\"), Integer(10)".to_string()),
            "{rows:?}"
        );
        assert!(
            !rows.iter().any(|r| r.starts_with("t: Text(\"B\")")),
            "B's timer cleared"
        );
        assert_eq!(
            rows.iter()
                .filter(|r| r.starts_with("o:"))
                .cloned()
                .collect::<Vec<_>>(),
            vec![
                "o: Integer(1), Text(\"B\"), Text(\"pending\"), Integer(5)".to_string(),
                "o: Integer(2), Text(\"C\"), Text(\"pending\"), Integer(6)".to_string(),
            ]
        );
        // A statement whose parameter has no value is refused, not bound to anything.
        let mut short = super::Script::new();
        short.push(EVENT, vec!["A".into()]);
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch("CREATE TABLE e (folio TEXT, seq INTEGER)")
            .expect("schema");
        assert!(short.run_native(&conn).is_err());
    }

    #[test]
    fn renumber_shifts_every_parameter() {
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1, $2, $10)", 3),
            "INSERT INTO t VALUES ($4, $5, $13)"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }
}
