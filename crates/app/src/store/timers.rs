//! The timers table as the scheduler uses it: claim what is due with a lease, find the
//! next instant to wake up, set or clear an incident's next due instant.

use incidencias_core::Folio;
use jiff::Timestamp;
use sqlx::Row;

use super::{Backend, Store, StoreError};

/// An incident's timer set to `$2` (epoch ms) for folio `$1`, its lease freed.
pub(super) const SET_TIMER: &str = "INSERT INTO timers (folio, due_at) VALUES ($1, $2) \
     ON CONFLICT (folio) DO UPDATE SET due_at = excluded.due_at, lease_owner = NULL, \
     lease_until = NULL";

/// An incident's timer (folio `$1`) removed: nothing left to fire.
pub(super) const CLEAR_TIMER: &str = "DELETE FROM timers WHERE folio = $1";

/// Leases (owner `$1` until `$2`) up to `$4` timers due at `$3`: on SQLite, where the one
/// writer serializes claims.
const CLAIM_SQLITE: &str = "UPDATE timers SET lease_owner = $1, lease_until = $2 WHERE folio IN \
     (SELECT folio FROM timers WHERE due_at <= $3 \
      AND (lease_until IS NULL OR lease_until <= $3) ORDER BY due_at LIMIT $4) \
     RETURNING folio, due_at";

impl Store {
    /// Leases up to `limit` timers due at `now` whose lease is free or expired, to `owner`
    /// until `lease_until`, earliest first. On PostgreSQL rows another instance is claiming
    /// at the same moment are skipped (`FOR UPDATE SKIP LOCKED`); on SQLite the single
    /// writer serializes claims.
    pub async fn claim_due_timers(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<(Folio, Timestamp)>, StoreError> {
        let sql: &'static str = match self.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => {
                "UPDATE timers SET lease_owner = $1, lease_until = $2 WHERE folio IN \
                 (SELECT folio FROM timers WHERE due_at <= $3 \
                  AND (lease_until IS NULL OR lease_until <= $3) ORDER BY due_at LIMIT $4 \
                  FOR UPDATE SKIP LOCKED) \
                 RETURNING folio, due_at"
            }
        };
        let (lease_ms, now_ms) = (lease_until.as_millisecond(), now.as_millisecond());
        let owner = owner.to_string();
        let native_owner = owner.clone();
        // On SQLite a native job of the writer, in the scripts' transaction: as a job of its
        // sqlx connection each claim was a commit of its own on the other connection (which
        // empties the scripts' page cache), and its 1,000 rows came back to the writer's
        // thread one message at a time while no script could commit.
        let native = move |conn: &rusqlite::Connection| {
            let failed = super::writer::native_error;
            let mut stmt = conn.prepare_cached(CLAIM_SQLITE).map_err(failed)?;
            let rows = stmt
                .query_map(
                    rusqlite::params![native_owner, lease_ms, now_ms, limit],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(failed)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(failed)
        };
        let rows = self
            .write_native(native, move |conn| {
                Box::pin(async move {
                    sqlx::query(sql)
                        .bind(owner)
                        .bind(lease_ms)
                        .bind(now_ms)
                        .bind(limit)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .iter()
                        .map(|r| {
                            let folio: String = r.try_get("folio").map_err(StoreError::db)?;
                            let due: i64 = r.try_get("due_at").map_err(StoreError::db)?;
                            Ok((folio, due))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (folio, due) in rows {
            let folio = Folio::parse(&folio).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let due =
                Timestamp::from_millisecond(due).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((folio, due));
        }
        out.sort_by_key(|(f, d)| (*d, *f));
        Ok(out)
    }

    /// When the scheduler must look again: the earliest due instant of a free timer, or the
    /// end of a lease that might have to be taken over.
    pub async fn next_timer(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        // The earliest free (or expired) timer from the `due_at` index, and the earliest
        // running lease from the partial `lease_until` index: two short index reads,
        // where one expression over every row read the whole table on each tick.
        self.earliest(
            "SELECT MIN(t) FROM (\
             SELECT (SELECT due_at FROM timers WHERE lease_until IS NULL OR lease_until <= $1 \
             ORDER BY due_at LIMIT 1) AS t \
             UNION ALL SELECT MIN(lease_until) FROM timers WHERE lease_until > $1) AS soonest",
            now,
        )
        .await
    }

    /// The instant a `SELECT MIN(…)` over epoch milliseconds answers, given `now` as `$1`.
    pub(super) async fn earliest(
        &self,
        sql: &'static str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(sql)
            .bind(now.as_millisecond())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db)?;
        let ms: Option<i64> = row.try_get(0).map_err(StoreError::db)?;
        Ok(ms.and_then(|m| Timestamp::from_millisecond(m).ok()))
    }

    /// Sets (or, with `None`, removes) an incident's timer and frees its lease, without an
    /// event: for a timer that woke up with nothing due. Only if the incident is still at
    /// `version` (the state the instant was computed from): a command that committed
    /// meanwhile wrote its own, newer, due instant, which must not be overwritten.
    pub async fn set_timer(
        &self,
        folio: Folio,
        due: Option<Timestamp>,
        version: u64,
    ) -> Result<(), StoreError> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        self.write_untracked(move |conn| {
            Box::pin(async move {
                let current: Option<i64> =
                    sqlx::query("SELECT version FROM incidents WHERE folio = $1")
                        .bind(folio.to_string())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .map(|r| r.try_get(0))
                        .transpose()
                        .map_err(StoreError::db)?;
                if current.is_some_and(|v| v != version) {
                    return Ok(());
                }
                match due {
                    Some(d) => {
                        sqlx::query(SET_TIMER)
                            .bind(folio.to_string())
                            .bind(d.as_millisecond())
                            .execute(&mut *conn)
                            .await
                    }
                    None => {
                        sqlx::query(CLEAR_TIMER)
                            .bind(folio.to_string())
                            .execute(&mut *conn)
                            .await
                    }
                }
                .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    /// Open incidents that should have a timer and have none (after an import, or a
    /// database written by an older version): their folios.
    pub async fn incidents_without_timer(&self) -> Result<Vec<Folio>, StoreError> {
        let rows = sqlx::query(
            "SELECT folio FROM incidents WHERE state NOT IN ('reported', 'closed', 'dismissed') \
             AND folio NOT IN (SELECT folio FROM timers)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let f: String = r.try_get(0).map_err(StoreError::db)?;
                Folio::parse(&f).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}
