//! The help desk's triage of received mail: the pending queue, one message and its bytes,
//! and the resolution (who, when, what) written once.

use jiff::Timestamp;
use sqlx::Row;

use super::outbox::{INBOUND_COLS, inbound_from};
use super::{InboundRow, Store, StoreError, TriageResolution};

impl Store {
    /// Messages in triage not yet resolved, newest first; `before` pages by id.
    pub async fn triage_pending(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InboundRow>, StoreError> {
        let sql = format!(
            "SELECT {INBOUND_COLS} FROM inbound_messages \
             WHERE outcome = 'triage' AND triaged_at IS NULL AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(inbound_from).collect()
    }

    /// One received message.
    pub async fn inbound(&self, id: i64) -> Result<Option<InboundRow>, StoreError> {
        let sql = format!("SELECT {INBOUND_COLS} FROM inbound_messages WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(inbound_from).transpose()
    }

    /// The bytes of one received message: `None` for an unknown id, `Some(None)` for a
    /// message whose bytes were not kept (received before migration 0005, or too large).
    pub async fn inbound_raw(&self, id: i64) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let row = sqlx::query("SELECT raw FROM inbound_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.map(|r| {
            r.try_get::<Option<Vec<u8>>, _>("raw")
                .map_err(StoreError::db)
        })
        .transpose()
    }

    /// Records how the help desk resolved message `id`, and the incident it now belongs
    /// to (`folio`, for an attached or opened one). Only a message still pending in
    /// triage changes: `false` when it was resolved already (or is not in triage), so two
    /// resolutions never overwrite each other.
    pub async fn resolve_triage(
        &self,
        id: i64,
        resolution: TriageResolution,
        folio: Option<String>,
    ) -> Result<bool, StoreError> {
        let at: Timestamp = resolution.at;
        self.write(move |conn| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE inbound_messages SET triaged_at = $2, triaged_by = $3, \
                     triage_action = $4, triage_note = $5, folio = COALESCE($6, folio) \
                     WHERE id = $1 AND outcome = 'triage' AND triaged_at IS NULL",
                )
                .bind(id)
                .bind(at.as_millisecond())
                .bind(resolution.by)
                .bind(resolution.action.as_str())
                .bind(resolution.note)
                .bind(folio)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }
}
