//! The outbox as its worker and its operators use it: claim due rows with a lease, mark
//! them sent or failed (with backoff, then dead), list them, retry dead ones.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::script::{Value, bind};
use super::{Backend, Store, StoreError};

/// Where a queued email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Accepted by the SMTP server.
    Sent,
    /// Set aside after its last attempt failed; `outbox retry` revives it.
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 3] = [OutboxState::Pending, OutboxState::Sent, OutboxState::Dead];

    /// The name stored in `outbox.state` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
        }
    }

    pub fn parse(name: &str) -> Option<OutboxState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What became of a received email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundDisposition {
    /// A reply to the step-2 email that acknowledged the incident.
    Acknowledged,
    /// A reply to the step-2 email that notified the resolution.
    ResolutionNotified,
    /// A reply recorded on its incident, without acting.
    Recorded,
    /// A new report from an agency: an incident was opened.
    NewIncident,
    /// Nothing could be decided: in the help desk's review queue.
    Triage,
}

impl InboundDisposition {
    pub const ALL: [InboundDisposition; 5] = [
        InboundDisposition::Acknowledged,
        InboundDisposition::ResolutionNotified,
        InboundDisposition::Recorded,
        InboundDisposition::NewIncident,
        InboundDisposition::Triage,
    ];

    /// The name stored in `inbound_messages.outcome` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundDisposition::Acknowledged => "acknowledged",
            InboundDisposition::ResolutionNotified => "resolution_notified",
            InboundDisposition::Recorded => "recorded",
            InboundDisposition::NewIncident => "new_incident",
            InboundDisposition::Triage => "triage",
        }
    }

    pub fn parse(name: &str) -> Option<InboundDisposition> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for InboundDisposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored name that is not one of `T`'s: the database holds what this program did not
/// write.
fn stored_name<T>(r: &AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let name: String = r.try_get(column).map_err(StoreError::db)?;
    parse(&name).ok_or_else(|| StoreError::Corrupt(format!("{column} desconocido: {name}")))
}

/// One queued email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub folio: Option<String>,
    pub kind: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub payload: serde_json::Value,
    /// Deterministic: a re-send after a crash is the same message.
    pub message_id: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const COLS: &str = "id, folio, kind, recipients, payload, message_id, state, attempts, \
     next_attempt_at, last_error, created_at, sent_at";

fn row_from(r: &AnyRow) -> Result<OutboxRow, StoreError> {
    let recipients: String = r.try_get("recipients").map_err(StoreError::db)?;
    let recipients: serde_json::Value =
        serde_json::from_str(&recipients).map_err(StoreError::json)?;
    let list = |k: &str| -> Vec<String> {
        recipients[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let payload: String = r.try_get("payload").map_err(StoreError::db)?;
    Ok(OutboxRow {
        id: r.try_get("id").map_err(StoreError::db)?,
        folio: r.try_get("folio").map_err(StoreError::db)?,
        kind: r.try_get("kind").map_err(StoreError::db)?,
        to: list("to"),
        cc: list("cc"),
        payload: serde_json::from_str(&payload).map_err(StoreError::json)?,
        message_id: r.try_get("message_id").map_err(StoreError::db)?,
        state: stored_name(r, "state", OutboxState::parse)?,
        attempts: r.try_get("attempts").map_err(StoreError::db)?,
        next_attempt_at: r.try_get("next_attempt_at").map_err(StoreError::db)?,
        last_error: r.try_get("last_error").map_err(StoreError::db)?,
        created_at: r.try_get("created_at").map_err(StoreError::db)?,
        sent_at: r.try_get("sent_at").map_err(StoreError::db)?,
    })
}

/// A pending row that is the oldest pending row of its incident (mail of no incident
/// always is). Written as one `GROUP BY` over the pending rows, not as a `NOT EXISTS` for
/// an earlier pending row: without table statistics (a new database, or PostgreSQL with
/// autovacuum off) PostgreSQL planned that anti-join as a nested loop over the whole
/// pending set, quadratic: 43 s per claim with 55,000 pending messages, against 25 ms for
/// this form, whatever the statistics.
const FIRST_OF_INCIDENT: &str = "(folio IS NULL OR id IN (SELECT MIN(first.id) FROM outbox first \
     WHERE first.state = 'pending' AND first.folio IS NOT NULL GROUP BY first.folio))";

impl Store {
    /// Leases up to `limit` pending rows due at `now`, oldest first, and only the oldest
    /// pending row of each incident: per incident, mail goes out in order, and a message
    /// waiting for a retry holds back the ones after it.
    pub async fn claim_outbox(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id IN \
             (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
              AND (lease_until IS NULL OR lease_until <= $3) \
              AND {FIRST_OF_INCIDENT} \
              ORDER BY id LIMIT $4{lock}) \
             RETURNING {COLS}"
        );
        let owner = owner.to_string();
        let mut rows = self
            .write_untracked(move |conn| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(owner)
                        .bind(lease_until.as_millisecond())
                        .bind(now.as_millisecond())
                        .bind(limit)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .iter()
                        .map(row_from)
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Messages `ids` were accepted by the SMTP server at `now`: one statement for all.
    pub async fn outbox_sent(&self, ids: &[i64], now: Timestamp) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // Integers only: nothing of a caller's text reaches the statement.
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE outbox SET state = 'sent', sent_at = $1, lease_owner = NULL, \
             lease_until = NULL, attempts = attempts + 1, last_error = NULL WHERE id IN ({list})"
        );
        self.write_untracked(move |conn| {
            Box::pin(async move {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    /// A failed attempt by `owner`: retried at `next_attempt_at`, or dead when `dead`.
    /// Nothing changes if the row is no longer `owner`'s (its lease ran out and another
    /// worker took it).
    pub async fn outbox_failed(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at: Timestamp,
        error: String,
        dead: bool,
    ) -> Result<(), StoreError> {
        let sql = if dead {
            "UPDATE outbox SET state = 'dead', next_attempt_at = $2, lease_owner = NULL, \
             lease_until = NULL, attempts = attempts + 1, last_error = $3 \
             WHERE id = $1 AND lease_owner = $4"
        } else {
            "UPDATE outbox SET next_attempt_at = $2, lease_owner = NULL, lease_until = NULL, \
             attempts = attempts + 1, last_error = $3 WHERE id = $1 AND lease_owner = $4"
        };
        self.execute_one(
            sql,
            vec![
                id.into(),
                next_attempt_at.as_millisecond().into(),
                error.into(),
                owner.to_string().into(),
            ],
        )
        .await
    }

    /// Gives a row claimed by `owner` back untouched (its incident's earlier mail failed:
    /// order; or the batch ran out of time).
    pub async fn outbox_release(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        self.execute_one(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2",
            vec![id.into(), owner.to_string().into()],
        )
        .await
    }

    /// One statement as its own write, of the workers' bookkeeping (not counted: see
    /// [`Store::write_untracked`]).
    pub(super) async fn execute_one(
        &self,
        sql: &'static str,
        values: Vec<Value>,
    ) -> Result<(), StoreError> {
        self.write_untracked(move |conn| {
            Box::pin(async move {
                let mut q = sqlx::query(sql);
                for v in values {
                    q = bind(q, v);
                }
                q.execute(&mut *conn).await.map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    /// When the worker must look again: the earliest attempt (or lease end) of a row the
    /// claim could take (the first pending of its incident; one held back behind a failed
    /// earlier one waits for that one).
    pub async fn next_outbox_attempt(
        &self,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        // The claim's FIRST_OF_INCIDENT, written out (`earliest` takes a literal).
        self.earliest(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > $1 \
             THEN lease_until ELSE next_attempt_at END) FROM outbox WHERE state = 'pending' \
             AND (folio IS NULL OR id IN (SELECT MIN(first.id) FROM outbox first \
             WHERE first.state = 'pending' AND first.folio IS NOT NULL GROUP BY first.folio))",
            now,
        )
        .await
    }

    /// The newest rows first, optionally of one state.
    pub async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.list_outbox_before(state, None, limit).await
    }

    /// [`Store::list_outbox`] of the rows older than `before` (an id), when given. The
    /// filters are written only when asked for, so each query is one the planner can
    /// serve from an index.
    pub async fn list_outbox_before(
        &self,
        state: Option<OutboxState>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut filters = Vec::new();
        let mut values: Vec<Value> = vec![limit.into()];
        if let Some(s) = state {
            values.push(s.as_str().into());
            filters.push(format!("state = ${}", values.len()));
        }
        if let Some(id) = before {
            values.push(id.into());
            filters.push(format!("id < ${}", values.len()));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let sql = format!("SELECT {COLS} FROM outbox {filter} ORDER BY id DESC LIMIT $1");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in values {
            q = bind(q, v);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(StoreError::db)?;
        rows.iter().map(row_from).collect()
    }

    /// One queued email.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM outbox WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(row_from).transpose()
    }

    /// One incident's emails, oldest first.
    pub async fn outbox_of(&self, folio: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM outbox WHERE folio = $1 ORDER BY id LIMIT 1000");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folio.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(row_from).collect()
    }

    /// Puts dead rows (one, or all with `None`) back in the queue, due now.
    pub async fn retry_outbox(&self, id: Option<i64>, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let r = match id {
                    Some(id) => sqlx::query(
                        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 \
                         WHERE state = 'dead' AND id = $2",
                    )
                    .bind(now.as_millisecond())
                    .bind(id)
                    .execute(&mut *conn)
                    .await,
                    None => sqlx::query(
                        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 \
                         WHERE state = 'dead'",
                    )
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await,
                }
                .map_err(StoreError::db)?;
                Ok(r.rows_affected())
            })
        })
        .await
    }
}

/// One received email, as kept.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub received_at: Timestamp,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    pub folio: Option<String>,
    pub outcome: InboundDisposition,
    pub reason: Option<String>,
    pub excerpt: String,
    /// SHA-256 of the raw bytes: the same message delivered twice (an MTA retry, an IMAP
    /// session cut between reading and flagging) is one message.
    pub raw_sha256: Option<String>,
}

/// One received email as listed for the help desk.
#[derive(Debug, Clone)]
pub struct InboundRow {
    pub id: i64,
    pub record: InboundRecord,
    /// How the help desk resolved it, for a message that landed in triage.
    pub triage: Option<TriageResolution>,
}

/// What the help desk did with a message in triage (migration 0005).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriageResolution {
    pub at: Timestamp,
    /// The user who did it (0: the command line's operator).
    pub by: i64,
    pub action: TriageAction,
    /// The discard reason, or the help desk's note.
    pub note: Option<String>,
}

/// How a message in triage was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageAction {
    /// Recorded on an existing incident (its folio is now the row's).
    Attached,
    /// An incident was opened from it (its folio is now the row's).
    Opened,
    /// Set aside with a reason.
    Discarded,
}

impl TriageAction {
    pub const ALL: [TriageAction; 3] = [
        TriageAction::Attached,
        TriageAction::Opened,
        TriageAction::Discarded,
    ];

    /// The name stored in `inbound_messages.triage_action` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TriageAction::Attached => "attached",
            TriageAction::Opened => "opened",
            TriageAction::Discarded => "discarded",
        }
    }

    pub fn parse(name: &str) -> Option<TriageAction> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

pub(super) const INBOUND_COLS: &str = "id, received_at, message_id, sender, subject, folio, outcome, \
     reason, excerpt, raw_sha256, triaged_at, triaged_by, triage_action, triage_note";

pub(super) fn inbound_from(r: &sqlx::any::AnyRow) -> Result<InboundRow, StoreError> {
    let ms: i64 = r.try_get("received_at").map_err(StoreError::db)?;
    Ok(InboundRow {
        id: r.try_get("id").map_err(StoreError::db)?,
        record: InboundRecord {
            received_at: Timestamp::from_millisecond(ms)
                .map_err(|e| StoreError::Corrupt(format!("inbound_messages.received_at: {e}")))?,
            message_id: r.try_get("message_id").map_err(StoreError::db)?,
            sender: r.try_get("sender").map_err(StoreError::db)?,
            subject: r.try_get("subject").map_err(StoreError::db)?,
            folio: r.try_get("folio").map_err(StoreError::db)?,
            outcome: stored_name(r, "outcome", InboundDisposition::parse)?,
            reason: r.try_get("reason").map_err(StoreError::db)?,
            excerpt: r.try_get("excerpt").map_err(StoreError::db)?,
            raw_sha256: r.try_get("raw_sha256").map_err(StoreError::db)?,
        },
        triage: triage_from(r)?,
    })
}

fn triage_from(r: &AnyRow) -> Result<Option<TriageResolution>, StoreError> {
    let at: Option<i64> = r.try_get("triaged_at").map_err(StoreError::db)?;
    let Some(at) = at else { return Ok(None) };
    Ok(Some(TriageResolution {
        at: Timestamp::from_millisecond(at)
            .map_err(|e| StoreError::Corrupt(format!("inbound_messages.triaged_at: {e}")))?,
        by: r
            .try_get::<Option<i64>, _>("triaged_by")
            .map_err(StoreError::db)?
            .unwrap_or_default(),
        action: stored_name(r, "triage_action", TriageAction::parse)?,
        note: r.try_get("triage_note").map_err(StoreError::db)?,
    }))
}

impl Store {
    /// Keeps a received message, with its bytes when given (`raw`, for the help desk to
    /// read); a second copy of the same bytes is ignored.
    pub async fn record_inbound(
        &self,
        r: InboundRecord,
        raw: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.execute_one(
            "INSERT INTO inbound_messages (received_at, message_id, sender, subject, folio, \
             outcome, reason, excerpt, raw_sha256, raw) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (raw_sha256) DO NOTHING",
            vec![
                r.received_at.as_millisecond().into(),
                r.message_id.into(),
                r.sender.into(),
                r.subject.into(),
                r.folio.into(),
                r.outcome.as_str().to_string().into(),
                r.reason.into(),
                r.excerpt.into(),
                r.raw_sha256.into(),
                raw.into(),
            ],
        )
        .await
    }

    /// The message already received with these exact bytes, if any.
    pub async fn inbound_by_hash(
        &self,
        raw_sha256: &str,
    ) -> Result<Option<InboundRow>, StoreError> {
        let sql = format!("SELECT {INBOUND_COLS} FROM inbound_messages WHERE raw_sha256 = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(raw_sha256.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(inbound_from).transpose()
    }

    /// The received messages about one incident (recorded replies, the ones that acted,
    /// the report that opened it), oldest first.
    pub async fn inbound_of(&self, folio: &str) -> Result<Vec<InboundRow>, StoreError> {
        let sql = format!(
            "SELECT {INBOUND_COLS} FROM inbound_messages WHERE folio = $1 ORDER BY id LIMIT 1000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folio.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(inbound_from).collect()
    }

    /// Received messages, newest first, optionally of one outcome; `before` pages by id.
    pub async fn list_inbound(
        &self,
        outcome: Option<InboundDisposition>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InboundRow>, StoreError> {
        let sql = format!(
            "SELECT {INBOUND_COLS} FROM inbound_messages \
             WHERE ($2 IS NULL OR outcome = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(outcome.map(|o| o.as_str().to_string()))
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(inbound_from).collect()
    }
}
