//! Incidents: appending events (with their hash chain, the projection, the timer, the
//! fired-action keys and the outbox rows, all in one transaction) and reading them back.

use incidencias_core::escalation::ActionKey;
use incidencias_core::facts::{self, FactChanges};
use incidencias_core::{
    Channel, Event, Folio, Incident, IncidentKind, IncidentState, ProcedureId, Severity,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::accounts::{IdempotencyRecord, push_idempotency};
use super::catalog::ts;
use super::chain::{EventFields, GENESIS};
use super::script::{Script, Value, bind};
use super::{Store, StoreError};

/// An incident as stored: the state and the hash of its last event (the next event's
/// `prev_hash`). `incident.version` is the number of stored events.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIncident {
    pub incident: Incident,
    pub last_hash: String,
}

/// One row of `incident_events`, exactly as stored and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub folio: String,
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// Encodes `event` as the `seq`-th event of `folio`, chained to `prev_hash`.
    pub fn encode(
        folio: Folio,
        seq: i64,
        event: &Event,
        prev_hash: &str,
    ) -> Result<StoredEvent, StoreError> {
        // How the request arrived rides in the actor column (`{"type": "user", ..., "via":
        // {...}}`), so the columns and the hash's encoding stay as they are.
        let actor = match &event.via {
            None => serde_json::to_string(&event.actor).map_err(StoreError::json)?,
            Some(via) => {
                let mut actor = serde_json::to_value(&event.actor).map_err(StoreError::json)?;
                if let Some(map) = actor.as_object_mut() {
                    map.insert(
                        "via".into(),
                        serde_json::to_value(via).map_err(StoreError::json)?,
                    );
                }
                serde_json::to_string(&actor).map_err(StoreError::json)?
            }
        };
        // `Change` serializes as {"kind", "data"}; the payload column keeps `data` (through
        // serde_json's Value, whose keys are sorted: one canonical text per change).
        let value = serde_json::to_value(&event.change).map_err(StoreError::json)?;
        let payload = match value.get("data") {
            Some(data) => serde_json::to_string(data).map_err(StoreError::json)?,
            None => "null".to_string(),
        };
        let mut stored = StoredEvent {
            folio: folio.to_string(),
            seq,
            at: event.at.as_millisecond(),
            actor,
            kind: event.change.kind().to_string(),
            payload,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        stored.hash = stored.fields().hash();
        Ok(stored)
    }

    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            folio: &self.folio,
            seq: self.seq,
            at_ms: self.at,
            actor: &self.actor,
            kind: &self.kind,
            payload: &self.payload,
            prev_hash: &self.prev_hash,
        }
    }

    /// The domain event back from its stored columns.
    pub fn event(&self) -> Result<Event, StoreError> {
        let corrupt = |e: serde_json::Error| {
            StoreError::Corrupt(format!("evento {} #{}: {e}", self.folio, self.seq))
        };
        let data: serde_json::Value = serde_json::from_str(&self.payload).map_err(corrupt)?;
        let mut change = serde_json::Map::new();
        change.insert("kind".into(), serde_json::Value::String(self.kind.clone()));
        if !data.is_null() {
            change.insert("data".into(), data);
        }
        let mut actor: serde_json::Value = serde_json::from_str(&self.actor).map_err(corrupt)?;
        let via = match actor.as_object_mut().and_then(|m| m.remove("via")) {
            Some(v) => Some(serde_json::from_value(v).map_err(corrupt)?),
            None => None,
        };
        Ok(Event {
            at: ts(self.at)?,
            actor: serde_json::from_value(actor).map_err(corrupt)?,
            via,
            change: serde_json::from_value(serde_json::Value::Object(change)).map_err(corrupt)?,
        })
    }

    pub(super) fn from_row(row: &AnyRow) -> Result<StoredEvent, StoreError> {
        let get = |c: &str| StoreError::Corrupt(format!("columna {c} de incident_events"));
        Ok(StoredEvent {
            folio: row.try_get("folio").map_err(|_| get("folio"))?,
            seq: row.try_get("seq").map_err(|_| get("seq"))?,
            at: row.try_get("at").map_err(|_| get("at"))?,
            actor: row.try_get("actor").map_err(|_| get("actor"))?,
            kind: row.try_get("kind").map_err(|_| get("kind"))?,
            payload: row.try_get("payload").map_err(|_| get("payload"))?,
            prev_hash: row.try_get("prev_hash").map_err(|_| get("prev_hash"))?,
            hash: row.try_get("hash").map_err(|_| get("hash"))?,
        })
    }
}

/// A notification to send, written with the event that caused it (the email issue's worker
/// sends it). Addresses are plain strings: they were parsed as `Email` before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOutboxMessage {
    /// Template name, e.g. `notification`, `escalation`.
    pub kind: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Template data.
    pub payload: serde_json::Value,
}

/// A delivery to write with the events that caused it: one per subscription to its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    pub event_type: String,
    /// What the event is about within the change, when one change makes several of a
    /// type (the procedure's homoclave): part of the message's id.
    pub scope: Option<String>,
    /// The exact JSON body sent (and signed).
    pub body: String,
}

/// Filters of the incident list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub state: Option<IncidentState>,
    pub agency_id: Option<i64>,
    pub severity: Option<Severity>,
    /// Only incidents with (true) or without (false) a clock breached at this instant.
    pub breached: Option<(bool, Timestamp)>,
    /// Only incidents not closed nor dismissed.
    pub open_only: bool,
    /// Only incidents in one of these states (empty: any).
    pub states_in: Vec<IncidentState>,
    /// How the page is ordered.
    pub order: ListOrder,
    pub offset: u64,
    pub limit: u64,
}

/// The order of a page of incidents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest report first (the API's order).
    #[default]
    NewestReport,
    /// The nearest deadline first: the earliest instant a running clock breaches, then the
    /// incidents with no running clock, newest report first (the queue's order).
    NearestDeadline,
}

/// What an append changes besides the events and the projection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// The incident's next due instant after these events (`None`: nothing will be due).
    pub next_due: Option<Timestamp>,
    pub outbox: Vec<NewOutboxMessage>,
    /// The API's first answer, kept with the change it answers for.
    pub idempotency: Option<IdempotencyRecord>,
    /// The one-click link this change used up (its nonce): it never works again.
    pub used_link: Option<String>,
    /// What these events announce to webhook subscribers: one delivery per subscription
    /// to the event's type, written in this transaction.
    pub webhooks: Vec<NewWebhook>,
    /// The agency reported the banner shown: look for it on the procedure's page at this
    /// instant.
    pub banner_check: Option<Timestamp>,
}

const EVENT_COLS: &str = "folio, seq, at, actor, kind, payload, prev_hash, hash";

impl Store {
    /// Step 1: takes the next folio of `year`, asks `make` for the report's events (the
    /// caller runs `decide` there, with the folio) and `effects_of` for what goes with
    /// them (it sees the new incident, folio included, and its events), and stores it all
    /// durably. A refusal from `make` (its own error type: the protocol's refusals are
    /// not the store's) stores nothing and gives the number back: the next create reuses
    /// it, so a refusal leaves no gap in the folios. A create whose write fails after the
    /// number was taken (an idempotency race) records the number void, with why
    /// (`folios.rs`). Everything but the INSERTs happens here, on the caller's task, so the
    /// single SQLite writer only writes.
    pub async fn create_incident<F, G, E>(
        &self,
        year: i16,
        now: Timestamp,
        make: F,
        effects_of: G,
    ) -> Result<StoredIncident, E>
    where
        F: FnOnce(Folio) -> Result<Vec<Event>, E>,
        G: FnOnce(&StoredIncident, &[Event]) -> Effects,
        E: From<StoreError>,
    {
        let taken = self.folios.take(self, year).await?;
        let folio = taken.folio;
        let prepared = make(folio).and_then(|events| {
            let incident =
                Incident::replay(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let stored = encode_chain(folio, 0, GENESIS, &events)?;
            let last_hash = stored
                .last()
                .map_or(GENESIS.to_string(), |e| e.hash.clone());
            let result = StoredIncident {
                incident,
                last_hash,
            };
            let effects = effects_of(&result, &events);
            let mut script = Script::new();
            push_new_incident(&mut script, &result, &stored, &events, now)?;
            push_effects(&mut script, folio, &stored, &effects, now, true)?;
            Ok((result, script, effects.idempotency.is_some()))
        });
        let (result, script, keyed) = match prepared {
            Ok(p) => p,
            Err(e) => {
                // Nothing was written: the number goes back, for the next create.
                self.folios.give_back(&taken).await;
                return Err(e);
            }
        };
        if let Err(e) = self.run_script(script).await {
            if matches!(&e, StoreError::Database(m) if m.contains("folio is void")) {
                // Another process settled this block (our lease ran out unnoticed, or the
                // clocks disagree by more than the grace): none of its numbers may be used.
                self.folios.forget(year).await;
                return Err(e.into());
            }
            let reason = match &e {
                StoreError::Conflict if keyed => super::folios::VOID_IDEMPOTENCY_RACE.into(),
                other => format!("el alta no se pudo guardar: {other}"),
            };
            self.void_lost(folio, reason).await;
            return Err(e.into());
        }
        self.cache.put(&result);
        Ok(result)
    }

    /// Appends `events` (decided on `prior`) and their effects. Fails with `Conflict`, and
    /// stores nothing, if the incident changed since `prior` was read.
    pub async fn append(
        &self,
        prior: &StoredIncident,
        events: Vec<Event>,
        effects: Effects,
        now: Timestamp,
    ) -> Result<StoredIncident, StoreError> {
        let (script, result) = appended(prior, events, &effects, now)?;
        self.run_script(script).await?;
        self.cache.put(&result);
        Ok(result)
    }

    /// Appends to several incidents in one write: one transaction (on SQLite one job of
    /// the writer, its statements grouped by kind: see `Script::run_native`), all or
    /// nothing. Fails with `Conflict`, storing nothing, if any of them changed since its
    /// prior was read; the caller then appends them one by one. The scheduler's batches
    /// use it; what they wrote is kept in the cache.
    pub async fn append_many(
        &self,
        items: Vec<(&StoredIncident, Vec<Event>, Effects)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut script = Script::new();
        let mut results = Vec::with_capacity(items.len());
        for (prior, events, effects) in items {
            let (one, result) = appended(prior, events, &effects, now)?;
            script.extend_independent(one);
            results.push(result);
        }
        self.run_script(script).await?;
        for r in results {
            self.cache.keep(r);
        }
        Ok(())
    }

    /// The incident as of its latest write (from this process's cache when it has it and
    /// no other process announced a write since: see `cache.rs`).
    pub async fn load(&self, folio: Folio) -> Result<Option<StoredIncident>, StoreError> {
        if let Some(hit) = self.cache.get(folio) {
            return Ok(Some(hit));
        }
        self.load_fresh(folio).await
    }

    /// The incident as the database has it now (after a conflict, for instance).
    pub async fn load_fresh(&self, folio: Folio) -> Result<Option<StoredIncident>, StoreError> {
        let stamp = self.cache.stamp();
        let row = sqlx::query("SELECT version, last_hash, body FROM incidents WHERE folio = $1")
            .bind(folio.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        let Some(row) = row else { return Ok(None) };
        let stored = stored_from(&row)?;
        self.cache.put_read(&stored, stamp);
        Ok(Some(stored))
    }

    /// Several incidents as the database has them now, in one query; those that exist.
    /// Not kept in the cache: the scheduler reads them to write them at once, and keeps
    /// what it writes.
    pub async fn load_fresh_many(
        &self,
        folios: &[Folio],
    ) -> Result<Vec<StoredIncident>, StoreError> {
        if folios.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(readers) = &self.readers {
            let folios: Vec<String> = folios.iter().map(Folio::to_string).collect();
            return readers.read(move |conn| load_native(conn, &folios)).await;
        }
        let marks = (1..=folios.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("SELECT version, last_hash, body FROM incidents WHERE folio IN ({marks})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for f in folios {
            q = q.bind(f.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(StoreError::db)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(stored_from(&row)?);
        }
        Ok(out)
    }

    /// One page of incidents, newest report first, and how many match in all.
    pub async fn list_incidents(&self, q: ListQuery) -> Result<(Vec<Incident>, u64), StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let param = |v: Value, values: &mut Vec<Value>| {
            values.push(v);
            format!("${}", values.len())
        };
        if let Some(state) = q.state {
            conditions.push(format!(
                "state = {}",
                param(state.as_str().into(), &mut values)
            ));
        }
        if let Some(agency) = q.agency_id {
            conditions.push(format!("agency_id = {}", param(agency.into(), &mut values)));
        }
        if let Some(severity) = q.severity {
            conditions.push(format!(
                "severity = {}",
                param(severity.as_str().into(), &mut values)
            ));
        }
        if let Some((wanted, at)) = q.breached {
            let p = param(at.as_millisecond().into(), &mut values);
            let breached =
                format!("(breached = 1 OR (breach_due_at IS NOT NULL AND breach_due_at <= {p}))");
            conditions.push(if wanted {
                breached
            } else {
                format!("NOT {breached}")
            });
        }
        if q.open_only {
            conditions.push("state NOT IN ('closed', 'dismissed')".to_string());
        }
        if !q.states_in.is_empty() {
            let list: Vec<String> = q
                .states_in
                .iter()
                .map(|s| param(s.as_str().into(), &mut values))
                .collect();
            conditions.push(format!("state IN ({})", list.join(", ")));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM incidents {filter}");
        let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql));
        for v in values.clone() {
            count = bind(count, v);
        }
        let total: i64 = count
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::db)?;
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let order = match q.order {
            ListOrder::NewestReport => "reported_at DESC, folio DESC",
            ListOrder::NearestDeadline => {
                "CASE WHEN breach_due_at IS NULL THEN 1 ELSE 0 END, breach_due_at, \
                 reported_at DESC, folio DESC"
            }
        };
        let page_sql = format!(
            "SELECT body FROM incidents {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        );
        let mut page = sqlx::query(sqlx::AssertSqlSafe(page_sql));
        for v in values {
            page = bind(page, v);
        }
        let rows = page.fetch_all(&self.pool).await.map_err(StoreError::db)?;
        let items = rows
            .iter()
            .map(incident_body)
            .collect::<Result<Vec<Incident>, StoreError>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// Every open incident with each procedure it touches, in one query (the public list
    /// of every procedure's state).
    pub async fn open_incidents_by_procedure(
        &self,
    ) -> Result<Vec<(ProcedureId, Incident)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.procedure_id, i.body FROM incidents i \
             JOIN incident_procedures p ON p.folio = i.folio \
             WHERE i.state NOT IN ('closed', 'dismissed')",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("procedure_id").map_err(StoreError::db)?;
                Ok((ProcedureId(id), incident_body(r)?))
            })
            .collect()
    }

    /// The incidents touching a procedure that were open at some time since `since`
    /// (not dismissed; closed ones last written since then), for its public history.
    pub async fn incidents_of_since(
        &self,
        procedure: ProcedureId,
        since: Timestamp,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.body FROM incidents i JOIN incident_procedures p ON p.folio = i.folio \
             WHERE p.procedure_id = $1 AND i.state <> 'dismissed' \
             AND (i.state <> 'closed' OR i.updated_at >= $2)",
        )
        .bind(procedure.0)
        .bind(since.as_millisecond())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter().map(incident_body).collect()
    }

    /// The open (not closed, not dismissed) incidents touching a procedure.
    pub async fn open_incidents_of(
        &self,
        procedure: ProcedureId,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.body FROM incidents i JOIN incident_procedures p ON p.folio = i.folio \
             WHERE p.procedure_id = $1 AND i.state NOT IN ('closed', 'dismissed')",
        )
        .bind(procedure.0)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter().map(incident_body).collect()
    }

    /// The stored events of one incident, in order.
    pub async fn events(&self, folio: Folio) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_events(&mut conn, &folio.to_string()).await
    }

    /// Runs a script as one write job. A unique violation (an event's (folio, seq), a
    /// folio, a fired action's key) means another command got there first: `Conflict`.
    pub(super) async fn run_script(&self, script: Script) -> Result<(), StoreError> {
        self.write_script(script).await.map_err(|e| match e {
            StoreError::Duplicate(_) => StoreError::Conflict,
            other => other,
        })
    }

    /// Every folio with stored events or a projection, in order.
    pub async fn folios(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_folios(&mut conn).await
    }

    /// A read transaction that sees one consistent state of the whole database (SQLite:
    /// a WAL read snapshot; PostgreSQL: REPEATABLE READ), for audits and exports.
    pub(super) async fn snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::db)?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db)?;
        }
        Ok(tx)
    }
}

/// The statements that append `events` (decided on `prior`) with their effects, and the
/// incident they leave. Their first statement inserts event `prior.version + 1`, whose
/// primary key makes the write fail if another command appended since `prior` was read.
fn appended(
    prior: &StoredIncident,
    events: Vec<Event>,
    effects: &Effects,
    now: Timestamp,
) -> Result<(Script, StoredIncident), StoreError> {
    // The store keeps milliseconds: events decided elsewhere are brought to that
    // precision before they are applied, so the projection equals a replay.
    let events: Vec<Event> = events
        .into_iter()
        .map(|e| Event {
            at: incidencias_core::slo::to_millis(e.at),
            ..e
        })
        .collect();
    let folio = prior.incident.folio;
    let base = prior.incident.version;
    // Every append carries at least one event: its (folio, seq) key is what makes a stale
    // append fail.
    let Some((first, rest)) = events.split_first() else {
        return Err(StoreError::Invalid("no hay eventos que registrar".into()));
    };
    // One copy of the incident per event (the state it is applied to), compared with the
    // state before it for the facts it changes.
    let mut fact_changes = FactChanges::default();
    let mut step = |before: &Incident, e: &Event| {
        let after = Incident::apply(Some(before.clone()), e)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        fact_changes.add(facts::changes(Some(before), &after));
        Ok::<_, StoreError>(after)
    };
    let mut incident = step(&prior.incident, first)?;
    for e in rest {
        incident = step(&incident, e)?;
    }
    let seq0 = i64::try_from(base).map_err(|_| StoreError::Corrupt("versión".into()))?;
    let stored = encode_chain(folio, seq0, &prior.last_hash, &events)?;
    let last_hash = stored
        .last()
        .map_or(prior.last_hash.clone(), |e| e.hash.clone());
    let result = StoredIncident {
        incident,
        last_hash,
    };
    let mut script = Script::new();
    // The event rows come first: their primary key (folio, seq) is the optimistic
    // concurrency check. If another command appended since `prior` was read, seq
    // `prior.version + 1` exists and the whole append fails as a conflict.
    push_events(&mut script, folio, &stored, &events, now);
    ProjectionRow::of(&result, now)?.update(&mut script, seq0, &prior.incident);
    super::facts::push_fact_changes(&mut script, folio, fact_changes.into_vec());
    push_effects(&mut script, folio, &stored, effects, now, false)?;
    Ok((script, result))
}

/// An incident as a row of `version, last_hash, body` has it, its version checked against
/// the projection's.
fn stored_from(row: &AnyRow) -> Result<StoredIncident, StoreError> {
    let body: &str = row.try_get("body").map_err(StoreError::db)?;
    checked(
        row.try_get("version").map_err(StoreError::db)?,
        row.try_get("last_hash").map_err(StoreError::db)?,
        body,
    )
}

/// A projection row's parts, its body parsed and checked against its version.
fn checked(version: i64, last_hash: String, body: &str) -> Result<StoredIncident, StoreError> {
    let incident = parse_body(body)?;
    if i64::try_from(incident.version).ok() != Some(version) {
        return Err(StoreError::Corrupt(format!(
            "la proyección de {} no coincide con su versión",
            incident.folio
        )));
    }
    Ok(StoredIncident {
        incident,
        last_hash,
    })
}

/// [`Store::load_fresh_many`] on one of SQLite's reader connections (`readers.rs`): each
/// body parsed from SQLite's own buffer, in the order of `folios`.
fn load_native(
    conn: &rusqlite::Connection,
    folios: &[String],
) -> Result<Vec<StoredIncident>, StoreError> {
    let failed = super::writer::native_error;
    let mut stmt = conn
        .prepare_cached("SELECT version, last_hash, body FROM incidents WHERE folio = ?1")
        .map_err(failed)?;
    let mut out = Vec::with_capacity(folios.len());
    for folio in folios {
        let mut rows = stmt.query([folio]).map_err(failed)?;
        if let Some(row) = rows.next().map_err(failed)? {
            let body = row
                .get_ref(2)
                .and_then(|v| Ok(v.as_str()?))
                .map_err(failed)?;
            out.push(checked(
                row.get(0).map_err(failed)?,
                row.get(1).map_err(failed)?,
                body,
            )?);
        }
    }
    Ok(out)
}

/// The projection in a row's `body` column.
fn incident_body(row: &AnyRow) -> Result<Incident, StoreError> {
    parse_body(row.try_get("body").map_err(StoreError::db)?)
}

/// A projection's JSON.
fn parse_body(body: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(body).map_err(StoreError::json)
}

pub(super) async fn fetch_events(
    conn: &mut AnyConnection,
    folio: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!("SELECT {EVENT_COLS} FROM incident_events WHERE folio = $1 ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(folio.to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    rows.iter().map(StoredEvent::from_row).collect()
}

pub(super) async fn fetch_folios(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT folio FROM incident_events GROUP BY folio \
         UNION SELECT folio FROM incidents ORDER BY folio",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(StoreError::db))
        .collect()
}

fn encode_chain(
    folio: Folio,
    seq0: i64,
    prev_hash: &str,
    events: &[Event],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut prev = prev_hash.to_string();
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in (1i64..).zip(events) {
        let stored = StoredEvent::encode(folio, seq0 + i, e, &prev)?;
        prev = stored.hash.clone();
        out.push(stored);
    }
    Ok(out)
}

/// The `incidents` row of a state, serialized before the write transaction starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProjectionRow {
    folio: String,
    agency_id: i64,
    state: &'static str,
    severity: Option<&'static str>,
    kind: &'static str,
    channel: &'static str,
    reported_at: i64,
    pub(super) updated_at: i64,
    escalation_level: i64,
    breached: i64,
    breach_due_at: Option<i64>,
    pub(super) version: i64,
    pub(super) last_hash: String,
    body: String,
}

/// Room for a projection's JSON: a notified incident's body (its policy, three or four
/// clocks) takes 2–3 KiB, so it is written into one allocation instead of one that doubles
/// from 128 bytes five times over (a firing serializes one per incident).
const BODY_CAPACITY: usize = 4096;

/// An incident's projection as the `body` column stores it.
fn body_json(incident: &Incident) -> Result<String, StoreError> {
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    serde_json::to_writer(&mut body, incident).map_err(StoreError::json)?;
    String::from_utf8(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl ProjectionRow {
    pub(super) fn of(stored: &StoredIncident, now: Timestamp) -> Result<ProjectionRow, StoreError> {
        let i = &stored.incident;
        // For the `breached=true` filter without reading every body: breached as of the
        // last event, or the earliest instant a running clock will be.
        let breach_due_at = i
            .clocks
            .iter()
            .filter(|c| !c.is_stopped() && c.breached_at.is_none())
            .filter_map(|c| c.due_at())
            .min()
            .map(|t| t.as_millisecond());
        Ok(ProjectionRow {
            folio: i.folio.to_string(),
            agency_id: i.agency_id.0,
            state: i.state.as_str(),
            severity: i.severity.map(|s| s.as_str()),
            kind: i.kind.as_str(),
            channel: i.channel.as_str(),
            reported_at: i.reported_at.as_millisecond(),
            updated_at: now.as_millisecond(),
            escalation_level: i64::from(i.escalation_level),
            breached: i64::from(i.any_breached(i.last_event_at)),
            breach_due_at,
            version: version(i)?,
            last_hash: stored.last_hash.clone(),
            body: body_json(i)?,
        })
    }

    /// The stored row of `folio`, as the audit compares it with a replay.
    pub(super) async fn fetch(
        conn: &mut AnyConnection,
        folio: &str,
    ) -> Result<Option<ProjectionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT folio, agency_id, state, severity, kind, channel, reported_at, updated_at, \
             escalation_level, breached, breach_due_at, version, last_hash, body \
             FROM incidents WHERE folio = $1",
        )
        .bind(folio.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?;
        let Some(r) = row else { return Ok(None) };
        let text = |c: &str| r.try_get::<String, _>(c).map_err(StoreError::db);
        let int = |c: &str| r.try_get::<i64, _>(c).map_err(StoreError::db);
        // Enumerated texts are compared through the same static names a replay yields
        // (the core's own, not a copy); an unknown stored value never equals one.
        fn known<T: Copy>(all: &[T], name: fn(T) -> &'static str, v: &str) -> &'static str {
            all.iter()
                .map(|t| name(*t))
                .find(|k| *k == v)
                .unwrap_or("?")
        }
        let state = |v: String| known(&IncidentState::ALL, IncidentState::as_str, &v);
        Ok(Some(ProjectionRow {
            folio: text("folio")?,
            agency_id: int("agency_id")?,
            state: state(text("state")?),
            severity: r
                .try_get::<Option<String>, _>("severity")
                .map_err(StoreError::db)?
                .map(|v| known(Severity::ALL, Severity::as_str, &v)),
            kind: known(IncidentKind::ALL, IncidentKind::as_str, &text("kind")?),
            channel: known(Channel::ALL, Channel::as_str, &text("channel")?),
            reported_at: int("reported_at")?,
            updated_at: int("updated_at")?,
            escalation_level: int("escalation_level")?,
            breached: int("breached")?,
            breach_due_at: r.try_get("breach_due_at").map_err(StoreError::db)?,
            version: int("version")?,
            last_hash: text("last_hash")?,
            body: text("body")?,
        }))
    }

    fn values(self) -> Vec<Value> {
        vec![
            self.folio.into(),
            self.agency_id.into(),
            self.state.into(),
            self.severity.into(),
            self.kind.into(),
            self.channel.into(),
            self.reported_at.into(),
            self.updated_at.into(),
            self.escalation_level.into(),
            self.breached.into(),
            self.breach_due_at.into(),
            self.version.into(),
            self.last_hash.into(),
            self.body.into(),
        ]
    }

    pub(super) fn insert(self, script: &mut Script) {
        script.push(
            "INSERT INTO incidents (folio, agency_id, state, severity, kind, channel, \
             reported_at, updated_at, escalation_level, breached, breach_due_at, version, \
             last_hash, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            self.values(),
        );
    }

    /// The new state of an incident read at `expected_version` as `prior` (the events'
    /// primary key already guarantees nobody else moved it; the condition keeps the row
    /// honest). When the indexed columns (agency, state, report instant) keep their
    /// values, the statement leaves them out: SQLite then does not touch those indexes,
    /// whose pages a timer's firing (it changes neither) would otherwise rewrite.
    fn update(self, script: &mut Script, expected_version: i64, prior: &Incident) {
        let indexed_same = prior.agency_id.0 == self.agency_id
            && prior.state.as_str() == self.state
            && prior.reported_at.as_millisecond() == self.reported_at;
        let mut values = self.values();
        values.push(expected_version.into());
        if indexed_same {
            // $2, $3 and $7 (not set) are checked instead: the values keep one order.
            script.push(
                "UPDATE incidents SET severity = $4, kind = $5, channel = $6, \
                 updated_at = $8, escalation_level = $9, breached = $10, \
                 breach_due_at = $11, version = $12, last_hash = $13, body = $14 \
                 WHERE folio = $1 AND version = $15 \
                 AND agency_id = $2 AND state = $3 AND reported_at = $7",
                values,
            );
        } else {
            script.push(
                "UPDATE incidents SET agency_id = $2, state = $3, severity = $4, kind = $5, \
                 channel = $6, reported_at = $7, updated_at = $8, escalation_level = $9, \
                 breached = $10, breach_due_at = $11, version = $12, last_hash = $13, \
                 body = $14 WHERE folio = $1 AND version = $15",
                values,
            );
        }
    }
}

fn version(incident: &Incident) -> Result<i64, StoreError> {
    i64::try_from(incident.version)
        .map_err(|_| StoreError::Corrupt("versión fuera de rango".into()))
}

const INSERT_EVENT: &str = "INSERT INTO incident_events (folio, seq, at, actor, kind, payload, \
     prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_FIRED: &str =
    "INSERT INTO fired_actions (action_key, folio, seq, fired_at) VALUES ($1, $2, $3, $4)";

/// A new incident: its projection, its procedure links and its events.
pub(super) fn push_new_incident(
    script: &mut Script,
    incident: &StoredIncident,
    stored: &[StoredEvent],
    events: &[Event],
    now: Timestamp,
) -> Result<(), StoreError> {
    let folio = incident.incident.folio;
    ProjectionRow::of(incident, now)?.insert(script);
    super::facts::push_replayed_facts(script, folio, events)?;
    for p in &incident.incident.procedure_ids {
        script.push(
            "INSERT INTO incident_procedures (folio, procedure_id) VALUES ($1, $2)",
            vec![folio.to_string().into(), p.0.into()],
        );
    }
    push_events(script, folio, stored, events, now);
    Ok(())
}

pub(super) fn push_events(
    script: &mut Script,
    folio: Folio,
    stored: &[StoredEvent],
    events: &[Event],
    now: Timestamp,
) {
    for s in stored {
        script.push(
            INSERT_EVENT,
            vec![
                s.folio.clone().into(),
                s.seq.into(),
                s.at.into(),
                s.actor.clone().into(),
                s.kind.clone().into(),
                s.payload.clone().into(),
                s.prev_hash.clone().into(),
                s.hash.clone().into(),
            ],
        );
    }
    // The unique key of a planned action executed by an event: a second firing fails
    // here even if two schedulers decided it at the same time. After all the events (one
    // kind of row after the other: see `script::postgres_plan`).
    for (s, event) in stored.iter().zip(events) {
        if let Some(key) = ActionKey::of_change(folio, &event.change) {
            script.push(
                INSERT_FIRED,
                vec![
                    key.to_string().into(),
                    folio.to_string().into(),
                    s.seq.into(),
                    now.as_millisecond().into(),
                ],
            );
        }
    }
}

fn push_effects(
    script: &mut Script,
    folio: Folio,
    stored: &[StoredEvent],
    effects: &Effects,
    now: Timestamp,
    created: bool,
) -> Result<(), StoreError> {
    match effects.next_due {
        // A new incident has no timer row to delete.
        None if created => {}
        None => script.push(super::timers::CLEAR_TIMER, vec![folio.to_string().into()]),
        Some(due) => script.push(
            super::timers::SET_TIMER,
            vec![folio.to_string().into(), due.as_millisecond().into()],
        ),
    }
    if let Some(record) = &effects.idempotency {
        push_idempotency(script, record, now);
    }
    if let Some(nonce) = &effects.used_link {
        script.push(
            "INSERT INTO used_links (nonce, folio, used_at) VALUES ($1, $2, $3)",
            vec![
                nonce.clone().into(),
                folio.to_string().into(),
                now.as_millisecond().into(),
            ],
        );
    }
    let seq = stored.last().map(|s| s.seq);
    push_webhooks(script, folio, seq.unwrap_or(0), &effects.webhooks, now, "");
    if let (Some(due), Some(seq)) = (effects.banner_check, seq) {
        script.push(
            "INSERT INTO banner_checks (folio, seq, due_at, state) VALUES ($1, $2, $3, 'pending')",
            vec![
                folio.to_string().into(),
                seq.into(),
                due.as_millisecond().into(),
            ],
        );
    }
    for (n, msg) in effects.outbox.iter().enumerate() {
        // Deterministic: the same notification always has the same Message-ID, so a
        // re-send after a crash is recognisably the same message.
        let message_id = format!(
            "<{folio}.{}.{}.{n}@incidencias.gob.mx>",
            seq.unwrap_or(0),
            msg.kind
        );
        let recipients = serde_json::to_string(&Recipients {
            cc: &msg.cc,
            to: &msg.to,
        })
        .map_err(StoreError::json)?;
        script.push(
            "INSERT INTO outbox (folio, seq, kind, recipients, payload, message_id, state, \
             attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
            vec![
                folio.to_string().into(),
                seq.into(),
                msg.kind.clone().into(),
                recipients.into(),
                serde_json::to_string(&msg.payload)
                    .map_err(StoreError::json)?
                    .into(),
                message_id.into(),
                now.as_millisecond().into(),
            ],
        );
    }
    Ok(())
}

/// An outbox row's `recipients` column. The fields in the order a JSON object's keys were
/// written in before (sorted), so rows read the same as ever; serialized straight from the
/// message's lists, where building a `serde_json::Value` copied every address first.
#[derive(Serialize)]
struct Recipients<'a> {
    cc: &'a [String],
    to: &'a [String],
}

/// One delivery per subscription to each hook's type (paused ones too: they are sent on
/// resume). The same change always has the same id, `msg_{folio}_{seq}_{type}` (and
/// `_{scope}`, then `suffix`): a subscriber recognises a retry.
pub(super) fn push_webhooks(
    script: &mut Script,
    folio: Folio,
    seq: i64,
    hooks: &[NewWebhook],
    now: Timestamp,
    suffix: &str,
) {
    for hook in hooks {
        let scope = hook
            .scope
            .as_ref()
            .map(|s| format!("_{s}"))
            .unwrap_or_default();
        let message_id = format!("msg_{folio}_{seq}_{}{scope}{suffix}", hook.event_type);
        script.push(
            "INSERT INTO webhook_deliveries (subscription_id, message_id, event_type, folio, \
             payload, state, attempts, next_attempt_at, created_at) \
             SELECT id, $1, $2, $3, $4, 'pending', 0, $5, $5 FROM webhook_subscriptions \
             WHERE events LIKE $6",
            vec![
                message_id.into(),
                hook.event_type.clone().into(),
                folio.to_string().into(),
                hook.body.clone().into(),
                now.as_millisecond().into(),
                format!("%,{},%", hook.event_type).into(),
            ],
        );
    }
}

impl Store {
    /// Deliveries written after the change they announce (a correction: see
    /// `Service::reconcile_portal`), with `suffix` ending their ids. A second write of the
    /// same ones is ignored.
    pub async fn add_webhooks(
        &self,
        folio: Folio,
        seq: i64,
        hooks: Vec<NewWebhook>,
        now: Timestamp,
        suffix: &'static str,
    ) -> Result<(), StoreError> {
        let mut script = Script::new();
        push_webhooks(&mut script, folio, seq, &hooks, now, suffix);
        match self.run_script(script).await {
            Err(StoreError::Conflict) => Ok(()),
            other => other,
        }
    }
}
