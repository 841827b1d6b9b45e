//! The clock fact table (`clock_facts`): one row per clock of each incident, written in the
//! same transaction as the events that change it, from the core's per-event fold
//! (`incidencias_core::facts`). The SLO reports read it instead of replaying histories;
//! `audit verify` compares it with a replay; an incident stored before the table existed
//! gets its rows from a replay when the database is opened for writing.

use std::collections::BTreeMap;

use incidencias_core::facts::{self, ClockFact, FactChange};
use incidencias_core::slo::parse_clock_name;
use incidencias_core::{AgencyId, ClockId, Event, Folio, Severity};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::catalog::{get, ts};
use super::incidents::fetch_events;
use super::script::{Script, Value};
use super::{Store, StoreError};

const UPSERT: &str = "INSERT INTO clock_facts (folio, clock, round, agency_id, severity, \
     policy_version, dismissed, target_s, started_at, accumulated_ms, running_since, \
     stopped_at, breached_at, outcome_at, escalation_level) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (folio, clock, round) DO UPDATE SET agency_id = excluded.agency_id, \
     severity = excluded.severity, policy_version = excluded.policy_version, \
     dismissed = excluded.dismissed, target_s = excluded.target_s, \
     started_at = excluded.started_at, accumulated_ms = excluded.accumulated_ms, \
     running_since = excluded.running_since, stopped_at = excluded.stopped_at, \
     breached_at = excluded.breached_at, outcome_at = excluded.outcome_at, \
     escalation_level = excluded.escalation_level";

const ATTRIBUTES: &str = "UPDATE clock_facts SET severity = COALESCE(severity, $4), \
     agency_id = $5, policy_version = $6, dismissed = $7 \
     WHERE folio = $1 AND clock = $2 AND round = $3";

const COLUMNS: &str = "clock, round, agency_id, severity, policy_version, dismissed, target_s, \
     started_at, accumulated_ms, running_since, stopped_at, breached_at, escalation_level";

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn opt_ms(t: Option<Timestamp>) -> Value {
    t.map(ms).into()
}

/// The statements that bring `folio`'s rows up to date with `changes`.
pub(super) fn push_fact_changes(script: &mut Script, folio: Folio, changes: Vec<FactChange>) {
    let folio = folio.to_string();
    for change in changes {
        match change {
            FactChange::Put(f) => script.push(
                UPSERT,
                vec![
                    folio.clone().into(),
                    f.clock.name.as_str().into(),
                    i64::from(f.clock.round).into(),
                    f.agency_id.0.into(),
                    f.severity.map(Severity::as_str).into(),
                    f.policy_version.map(i64::from).into(),
                    i64::from(f.dismissed).into(),
                    i64::from(f.target_s).into(),
                    ms(f.started_at).into(),
                    f.accumulated_ms.into(),
                    opt_ms(f.running_since),
                    opt_ms(f.stopped_at),
                    opt_ms(f.breached_at),
                    opt_ms(f.outcome_at()),
                    i64::from(f.escalation_level).into(),
                ],
            ),
            FactChange::Attributes {
                clock,
                severity,
                agency_id,
                policy_version,
                dismissed,
            } => script.push(
                ATTRIBUTES,
                vec![
                    folio.clone().into(),
                    clock.name.as_str().into(),
                    i64::from(clock.round).into(),
                    severity.map(Severity::as_str).into(),
                    agency_id.0.into(),
                    policy_version.map(i64::from).into(),
                    i64::from(dismissed).into(),
                ],
            ),
        }
    }
}

/// The rows of a whole history (a new or imported incident): its replay's facts.
pub(super) fn push_replayed_facts(
    script: &mut Script,
    folio: Folio,
    events: &[Event],
) -> Result<(), StoreError> {
    let (_, facts) = facts::replay(events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    push_fact_changes(
        script,
        folio,
        facts.into_values().map(FactChange::Put).collect(),
    );
    Ok(())
}

fn instant(row: &AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    get::<Option<i64>>(row, col)?.map(ts).transpose()
}

fn small(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} fuera de rango")))
}

/// One stored row, read back as the fact it was written from.
pub(super) fn fact_of_row(row: &AnyRow) -> Result<ClockFact, StoreError> {
    let int = |c: &str| row.try_get::<i64, _>(c).map_err(StoreError::db);
    let name: String = row.try_get("clock").map_err(StoreError::db)?;
    let name = parse_clock_name(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let severity: Option<String> = row.try_get("severity").map_err(StoreError::db)?;
    let severity = severity
        .map(|s| Severity::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()?;
    let policy_version: Option<i64> = row.try_get("policy_version").map_err(StoreError::db)?;
    Ok(ClockFact {
        clock: ClockId {
            name,
            round: small(int("round")?, "ronda")?,
        },
        agency_id: AgencyId(int("agency_id")?),
        severity,
        policy_version: policy_version
            .map(|v| small(v, "versión de política"))
            .transpose()?,
        dismissed: int("dismissed")? != 0,
        target_s: small(int("target_s")?, "meta")?,
        started_at: instant(row, "started_at")?
            .ok_or_else(|| StoreError::Corrupt("reloj sin inicio".into()))?,
        accumulated_ms: int("accumulated_ms")?,
        running_since: instant(row, "running_since")?,
        stopped_at: instant(row, "stopped_at")?,
        breached_at: instant(row, "breached_at")?,
        escalation_level: small(int("escalation_level")?, "nivel de escalamiento")?,
    })
}

/// The stored facts of `folio`, as the audit compares them with a replay.
pub(super) async fn fetch_facts(
    conn: &mut AnyConnection,
    folio: &str,
) -> Result<BTreeMap<ClockId, ClockFact>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, outcome_at FROM clock_facts WHERE folio = $1"
    )))
    .bind(folio.to_string())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let mut facts = BTreeMap::new();
    for row in &rows {
        let fact = fact_of_row(row)?;
        let outcome = instant(row, "outcome_at")?;
        if outcome != fact.outcome_at() {
            return Err(StoreError::Corrupt(format!(
                "el reloj {} guarda un desenlace que no corresponde a sus instantes",
                fact.clock
            )));
        }
        facts.insert(fact.clock, fact);
    }
    Ok(facts)
}

/// What is wrong with `folio`'s facts, compared with the ones its events replay to.
pub(super) fn facts_problem(
    stored: &BTreeMap<ClockId, ClockFact>,
    expected: &BTreeMap<ClockId, ClockFact>,
) -> Option<String> {
    if stored == expected {
        return None;
    }
    let clocks = |m: &BTreeMap<ClockId, ClockFact>| {
        m.keys()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let differing = expected
        .iter()
        .filter(|(id, f)| stored.get(id) != Some(f))
        .map(|(id, _)| id.to_string())
        .chain(
            stored
                .keys()
                .filter(|id| !expected.contains_key(id))
                .map(ToString::to_string),
        )
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "los hechos de reloj para reportes no coinciden con la reproducción de sus eventos \
         (guardados: {}; esperados: {}; distintos: {differing})",
        clocks(stored),
        clocks(expected)
    ))
}

impl Store {
    /// [`Store::fill_missing_facts`] if migration 0007 left its marker (the database has
    /// not been filled since the table was created), then removes the marker: later
    /// starts read one row instead of looking for incidents without facts.
    pub(super) async fn fill_missing_facts_once(&self) -> Result<u64, StoreError> {
        let pending: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'clock_facts_fill'")
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db)?;
        if pending.is_none() {
            return Ok(0);
        }
        let filled = self.fill_missing_facts().await?;
        self.write(|conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM settings WHERE key = 'clock_facts_fill'")
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await?;
        Ok(filled)
    }

    /// Writes the fact rows of the incidents that have none (stored before the table
    /// existed), from a replay of each one's events; returns how many incidents. Each
    /// incident in its own write, so a large database is filled without one huge
    /// transaction, and a crash midway resumes where it stopped.
    pub async fn fill_missing_facts(&self) -> Result<u64, StoreError> {
        let mut filled = 0u64;
        let mut after = String::new();
        loop {
            let folios: Vec<String> = sqlx::query_scalar(
                "SELECT folio FROM incidents i WHERE folio > $1 AND NOT EXISTS \
                 (SELECT 1 FROM clock_facts f WHERE f.folio = i.folio) ORDER BY folio LIMIT 500",
            )
            .bind(after.clone())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
            let Some(last) = folios.last() else {
                return Ok(filled);
            };
            after = last.clone();
            for folio in folios {
                // A history that does not replay is `audit verify`'s to report; the
                // service still opens.
                match self.fill_facts_of(folio.clone()).await {
                    Ok(()) => filled += 1,
                    Err(e) => tracing::warn!(%folio, error = %e, "sin hechos de reloj"),
                }
            }
        }
    }

    async fn fill_facts_of(&self, folio: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let parsed =
                    Folio::parse(&folio).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let stored = fetch_events(&mut *conn, &folio).await?;
                let events = stored
                    .iter()
                    .map(super::StoredEvent::event)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut script = Script::new();
                push_replayed_facts(&mut script, parsed, &events)?;
                // A row another writer put meanwhile is replaced by the same values.
                script.run(conn).await.map_err(StoreError::db)
            })
        })
        .await
    }
}
