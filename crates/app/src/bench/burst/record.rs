//! What a burst left in the database and the Maildir: the clock actions planned and fired
//! (from the events, through the core's planner), the outbox rows and the messages
//! received; and the waiting for all of it, polling the database.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use incidencias_core::escalation::{ActionKey, ActionKind, planned};
use incidencias_core::slo::ClockId;
use incidencias_core::{Folio, Incident};
use jiff::Timestamp;
use sqlx::Row;

use super::processes::Children;
use crate::bench::invalid;
use crate::store::{Store, StoreError, StoredEvent};

/// Polls the database until no timer is due at or before the last planned instant (every
/// planned action has fired, or been dropped by the core) and no email is pending, or
/// `wait_s` have passed (then `true`: timed out).
pub(super) async fn wait_done(
    store: &Store,
    plan: &Record,
    wait_s: u64,
    children: &mut Children,
) -> Result<bool, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut last_print = Instant::now();
    let expected = plan.due.len();
    loop {
        children.check()?;
        // Timers first: the mail of the firings that moved them was committed with them.
        let due: i64 = sqlx::query("SELECT COUNT(*) FROM timers WHERE due_at <= $1")
            .bind(plan.last_due)
            .fetch_one(store.pool())
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::db)?;
        let fired = count(store, "SELECT COUNT(*) FROM fired_actions").await?;
        let pending = count(store, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await?;
        if due == 0 && Timestamp::now().as_millisecond() > plan.last_due && pending == 0 {
            return Ok(false);
        }
        if Instant::now() > deadline {
            eprintln!(
                "  tiempo agotado: {fired}/{expected} disparadas, {pending} correos pendientes"
            );
            return Ok(true);
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!("  {fired}/{expected} acciones disparadas, {pending} correos pendientes");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The one text value `sql` answers.
pub(super) async fn count_text(store: &Store, sql: &'static str) -> Result<String, StoreError> {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db)
}

/// ANALYZE of every table of the bench's schema (only there: the server is shared), every
/// `every`, until aborted; counts the passes in `passes`.
pub(super) async fn analyze_every(
    store: Store,
    tables: Vec<String>,
    every: Duration,
    passes: Arc<AtomicUsize>,
) {
    loop {
        tokio::time::sleep(every).await;
        for t in &tables {
            let sql = format!("ANALYZE \"{}\"", t.replace('"', "\"\""));
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(store.pool())
                .await
            {
                eprintln!("  ANALYZE {t}: {e}");
            }
        }
        passes.fetch_add(1, Ordering::Relaxed);
    }
}

pub(super) async fn count(store: &Store, sql: &'static str) -> Result<i64, StoreError> {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db)
}

/// The clock actions as the record has them: what the core's planner expected of each
/// incident as it stood before its first firing (its `ack` clock's actions, with their
/// due instants, in epoch ms) and what the events say was fired (key, kind, instant).
pub(super) struct Record {
    pub(super) due: HashMap<String, (ActionKind, i64)>,
    /// Per warning key: its incident's folio and when the breach of its clock is due.
    pub(super) breach_of: HashMap<String, (String, i64)>,
    /// Per folio: the instant of its first firing.
    pub(super) first_fire: HashMap<String, i64>,
    pub(super) fired: Vec<(String, ActionKind, i64)>,
    /// The last due instant, epoch ms.
    pub(super) last_due: i64,
}

pub(super) async fn record(
    store: &Store,
    org: &crate::service::OrgChart,
) -> Result<Record, StoreError> {
    let rows = sqlx::query(
        "SELECT folio, seq, at, actor, kind, payload, prev_hash, hash FROM incident_events \
         ORDER BY folio, seq",
    )
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::db)?;
    let mut rec = Record {
        due: HashMap::new(),
        breach_of: HashMap::new(),
        first_fire: HashMap::new(),
        fired: Vec::new(),
        last_due: 0,
    };
    let mut current: Option<(Folio, Option<Incident>, bool)> = None;
    let plan = |state: Option<Incident>, rec: &mut Record| {
        let Some(incident) = state else { return };
        let actions: Vec<_> = planned(&incident, &org.ladder(&incident))
            .into_iter()
            .filter(|a| a.key.clock == ClockId::ACK)
            .collect();
        let breach = actions
            .iter()
            .find(|a| a.key.kind == ActionKind::Breach)
            .map(|a| a.due_at.as_millisecond());
        for a in actions {
            let (key, due) = (a.key.to_string(), a.due_at.as_millisecond());
            rec.last_due = rec.last_due.max(due);
            if let (ActionKind::Warning, Some(b)) = (a.key.kind, breach) {
                rec.breach_of
                    .insert(key.clone(), (incident.folio.to_string(), b));
            }
            rec.due.insert(key, (a.key.kind, due));
        }
    };
    for row in &rows {
        let get = |e| StoreError::db(e);
        let stored = StoredEvent {
            folio: row.try_get("folio").map_err(get)?,
            seq: row.try_get("seq").map_err(get)?,
            at: row.try_get("at").map_err(get)?,
            actor: row.try_get("actor").map_err(get)?,
            kind: row.try_get("kind").map_err(get)?,
            payload: row.try_get("payload").map_err(get)?,
            prev_hash: row.try_get("prev_hash").map_err(get)?,
            hash: row.try_get("hash").map_err(get)?,
        };
        let folio = Folio::parse(&stored.folio).map_err(invalid)?;
        if current.as_ref().is_none_or(|(f, _, _)| *f != folio) {
            if let Some((_, state, _)) = current.take() {
                plan(state, &mut rec);
            }
            current = Some((folio, None, false));
        }
        let event = stored.event()?;
        let Some((_, state, firing)) = current.as_mut() else {
            continue;
        };
        if let Some(key) = ActionKey::of_change(folio, &event.change) {
            let at = event.at.as_millisecond();
            rec.fired.push((key.to_string(), key.kind, at));
            rec.first_fire.entry(stored.folio.clone()).or_insert(at);
            *firing = true;
        } else if !*firing {
            *state = Some(Incident::apply(state.take(), &event).map_err(invalid)?);
        }
    }
    if let Some((_, state, _)) = current.take() {
        plan(state, &mut rec);
    }
    Ok(rec)
}

/// `fired_actions`: each key and when it was stored.
pub(super) async fn fired_keys(store: &Store) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT action_key FROM fired_actions")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(StoreError::db))
        .collect()
}

/// One outbox row: the Message-ID it is sent with (without angle brackets), state, queued
/// and sent instants (epoch ms).
pub(super) struct Mail {
    pub(super) message_id: String,
    pub(super) state: String,
    pub(super) created_at: i64,
    pub(super) sent_at: Option<i64>,
}

/// The rows of the outbox. A row keeps the base of its Message-ID; it is sent with a mark
/// signed with the link secret (`LinkSigner::mark_message_id`), the same from every
/// instance since they share the secret: that is the ID the Maildir must hold.
pub(super) async fn outbox(store: &Store, secret: &str) -> Result<Vec<Mail>, StoreError> {
    let signer = crate::links::LinkSigner::new(secret);
    let rows = sqlx::query("SELECT message_id, state, created_at, sent_at FROM outbox")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("message_id").map_err(StoreError::db)?;
            Ok(Mail {
                message_id: signer
                    .mark_message_id(&id)
                    .trim_matches(['<', '>'])
                    .to_string(),
                state: r.try_get("state").map_err(StoreError::db)?,
                created_at: r.try_get("created_at").map_err(StoreError::db)?,
                sent_at: r.try_get("sent_at").map_err(StoreError::db)?,
            })
        })
        .collect()
}

/// The Message-ID of every file in the Maildir (`new/` and `cur/`; `tmp/` holds only
/// messages still being written), `None` for a file without one.
pub(super) fn read_maildir(maildir: &Path) -> Result<Vec<Option<String>>, StoreError> {
    let parser = mail_parser::MessageParser::default();
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(maildir.join(sub))? {
            let raw = std::fs::read(entry?.path())?;
            let id = parser.parse_headers(&raw).and_then(|m| {
                m.message_id()
                    .map(|id| id.trim_matches(['<', '>']).to_string())
            });
            out.push(id);
        }
    }
    Ok(out)
}
