//! Webhook subscriptions, their deliveries (written with the incident events in
//! `incidents.rs`) and every attempt; the banner checks (also written with the events).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::script::bind;
use super::{Backend, Store, StoreError};

/// A subscription as stored. The secrets never leave the service except to the
/// administrator who created or rotated them, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<i64>,
    pub active: bool,
    pub created_at: i64,
    pub created_by: i64,
}

/// A delivery: one event to one subscription, with its retry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub subscription_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub folio: Option<String>,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// One attempt to deliver, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub delivery_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub at: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A banner check due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannerCheck {
    pub id: i64,
    pub folio: String,
    /// The `banner_set` event checked.
    pub seq: i64,
    /// Earlier looks that could not tell.
    pub attempts: i64,
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub at: Timestamp,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

const SUBSCRIPTION_COLS: &str = "id, url, description, events, secret, previous_secret, \
     previous_until, active, created_at, created_by";
const DELIVERY_COLS: &str = "id, subscription_id, message_id, event_type, folio, payload, \
     state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

fn subscription_from(r: &AnyRow) -> Result<WebhookSubscription, StoreError> {
    let events: String = r.try_get("events").map_err(StoreError::db)?;
    Ok(WebhookSubscription {
        id: r.try_get("id").map_err(StoreError::db)?,
        url: r.try_get("url").map_err(StoreError::db)?,
        description: r.try_get("description").map_err(StoreError::db)?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        secret: r.try_get("secret").map_err(StoreError::db)?,
        previous_secret: r.try_get("previous_secret").map_err(StoreError::db)?,
        previous_until: r.try_get("previous_until").map_err(StoreError::db)?,
        active: r.try_get::<i64, _>("active").map_err(StoreError::db)? != 0,
        created_at: r.try_get("created_at").map_err(StoreError::db)?,
        created_by: r.try_get("created_by").map_err(StoreError::db)?,
    })
}

fn delivery_from(r: &AnyRow) -> Result<WebhookDelivery, StoreError> {
    let get = |c: &str| StoreError::Corrupt(format!("columna {c} de webhook_deliveries"));
    Ok(WebhookDelivery {
        id: r.try_get("id").map_err(|_| get("id"))?,
        subscription_id: r
            .try_get("subscription_id")
            .map_err(|_| get("subscription_id"))?,
        message_id: r.try_get("message_id").map_err(|_| get("message_id"))?,
        event_type: r.try_get("event_type").map_err(|_| get("event_type"))?,
        folio: r.try_get("folio").map_err(|_| get("folio"))?,
        payload: r.try_get("payload").map_err(|_| get("payload"))?,
        state: r.try_get("state").map_err(|_| get("state"))?,
        attempts: r.try_get("attempts").map_err(|_| get("attempts"))?,
        next_attempt_at: r
            .try_get("next_attempt_at")
            .map_err(|_| get("next_attempt_at"))?,
        last_status: r.try_get("last_status").map_err(|_| get("last_status"))?,
        last_error: r.try_get("last_error").map_err(|_| get("last_error"))?,
        created_at: r.try_get("created_at").map_err(|_| get("created_at"))?,
        delivered_at: r.try_get("delivered_at").map_err(|_| get("delivered_at"))?,
    })
}

impl Store {
    /// A new subscription to `events` (type names).
    pub async fn create_webhook(
        &self,
        url: String,
        description: String,
        events: Vec<String>,
        secret: String,
        by: i64,
        now: Timestamp,
    ) -> Result<WebhookSubscription, StoreError> {
        let sql = format!(
            "INSERT INTO webhook_subscriptions (url, description, events, secret, active, \
             created_at, created_by) VALUES ($1, $2, $3, $4, 1, $5, $6) \
             RETURNING {SUBSCRIPTION_COLS}"
        );
        // Stored between commas, so that `LIKE '%,type,%'` finds exactly one type.
        let events = format!(",{},", events.join(","));
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(url)
                    .bind(description)
                    .bind(events)
                    .bind(secret)
                    .bind(now.as_millisecond())
                    .bind(by)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                subscription_from(&row)
            })
        })
        .await
    }

    /// Whether any subscription (active or paused: a paused one gets its deliveries on
    /// resume) takes events whose type starts with `prefix` (`procedure.`).
    pub async fn webhooks_subscribed(&self, prefix: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM webhook_subscriptions WHERE events LIKE $1 LIMIT 1")
            .bind(format!("%,{prefix}%"))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        Ok(row.is_some())
    }

    /// Every subscription, newest first.
    pub async fn webhooks(&self) -> Result<Vec<WebhookSubscription>, StoreError> {
        let sql = format!("SELECT {SUBSCRIPTION_COLS} FROM webhook_subscriptions ORDER BY id DESC");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(subscription_from)
            .collect()
    }

    pub async fn webhook(&self, id: i64) -> Result<Option<WebhookSubscription>, StoreError> {
        let sql = format!("SELECT {SUBSCRIPTION_COLS} FROM webhook_subscriptions WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?
            .as_ref()
            .map(subscription_from)
            .transpose()
    }

    /// The new secret signs from now on; the one it replaces also signs until
    /// `previous_until`, so receivers can switch without losing a message.
    pub async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: String,
        previous_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute_one(
            "UPDATE webhook_subscriptions SET previous_secret = secret, previous_until = $2, \
             secret = $3 WHERE id = $1",
            vec![
                id.into(),
                previous_until.as_millisecond().into(),
                secret.into(),
            ],
        )
        .await
    }

    /// Pauses (no new deliveries are written; those pending are not sent) or resumes.
    pub async fn set_webhook_active(&self, id: i64, active: bool) -> Result<(), StoreError> {
        self.execute_one(
            "UPDATE webhook_subscriptions SET active = $2 WHERE id = $1",
            vec![id.into(), i64::from(active).into()],
        )
        .await
    }

    /// Leases up to `limit` pending deliveries due at `now` of active subscriptions, and
    /// only the oldest pending one per subscription and incident (in order, like mail).
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            // Only the delivery rows: a lock on the subscription would hold back every
            // incident write that adds a delivery for it (its foreign key check).
            Backend::Postgres => " FOR NO KEY UPDATE OF d SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d \
              JOIN webhook_subscriptions s ON s.id = d.subscription_id \
              WHERE d.state = 'pending' AND s.active = 1 AND d.next_attempt_at <= $3 \
              AND (d.lease_until IS NULL OR d.lease_until <= $3) \
              AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                  WHERE e.subscription_id = d.subscription_id AND e.folio = d.folio \
                  AND e.state = 'pending' AND e.id < d.id) \
              ORDER BY d.id LIMIT $4{lock}) \
             RETURNING {DELIVERY_COLS}"
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
                        .map(delivery_from)
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records an attempt by `owner` and its result: delivered, retried at `next`, or
    /// dead (`next` is `None` and `delivered` false). Nothing changes if the lease is no
    /// longer `owner`'s.
    pub async fn webhook_attempted(
        &self,
        id: i64,
        owner: &str,
        outcome: AttemptOutcome,
        delivered: bool,
        next: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.write_untracked(move |conn| {
            Box::pin(async move {
                let at = outcome.at.as_millisecond();
                let (sql, state_values): (&'static str, Vec<super::script::Value>) = if delivered {
                    (
                        "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $3, \
                         attempts = attempts + 1, last_status = $4, last_error = NULL, \
                         lease_owner = NULL, lease_until = NULL \
                         WHERE id = $1 AND lease_owner = $2",
                        vec![at.into(), outcome.status.into()],
                    )
                } else if let Some(next) = next {
                    (
                        "UPDATE webhook_deliveries SET next_attempt_at = $3, \
                         attempts = attempts + 1, last_status = $4, last_error = $5, \
                         lease_owner = NULL, lease_until = NULL \
                         WHERE id = $1 AND lease_owner = $2",
                        vec![
                            next.as_millisecond().into(),
                            outcome.status.into(),
                            outcome.error.clone().into(),
                        ],
                    )
                } else {
                    (
                        "UPDATE webhook_deliveries SET state = 'dead', next_attempt_at = $3, \
                         attempts = attempts + 1, last_status = $4, last_error = $5, \
                         lease_owner = NULL, lease_until = NULL \
                         WHERE id = $1 AND lease_owner = $2",
                        vec![
                            at.into(),
                            outcome.status.into(),
                            outcome.error.clone().into(),
                        ],
                    )
                };
                let mut q = sqlx::query(sql).bind(id).bind(owner);
                for v in state_values {
                    q = bind(q, v);
                }
                let changed = q
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?
                    .rows_affected();
                if changed == 1 {
                    sqlx::query(
                        "INSERT INTO webhook_attempts (delivery_id, at, status, error, \
                         duration_ms) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(outcome.status)
                    .bind(outcome.error)
                    .bind(outcome.duration_ms)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Gives a leased delivery back untouched.
    pub async fn webhook_release(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        self.execute_one(
            "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2",
            vec![id.into(), owner.to_string().into()],
        )
        .await
    }

    /// When the webhook worker must look again: the earliest attempt (or lease end) of a
    /// delivery the claim could take, by the claim's own conditions (active subscription,
    /// first pending of its subscription and incident); one held back behind a failed
    /// earlier one waits for that one.
    pub async fn next_webhook_attempt(
        &self,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.earliest(
            "SELECT MIN(CASE WHEN d.lease_until IS NOT NULL AND d.lease_until > $1 \
             THEN d.lease_until ELSE d.next_attempt_at END) FROM webhook_deliveries d \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.state = 'pending' AND s.active = 1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                 WHERE e.subscription_id = d.subscription_id AND e.folio = d.folio \
                 AND e.state = 'pending' AND e.id < d.id)",
            now,
        )
        .await
    }

    /// A subscription's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        subscription: i64,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE subscription_id = $1 \
             ORDER BY id DESC LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(subscription)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(delivery_from)
            .collect()
    }

    /// A subscription's attempts, newest first: its delivery log.
    pub async fn webhook_attempts(
        &self,
        subscription: i64,
        limit: i64,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.delivery_id, d.message_id, d.event_type, a.at, a.status, a.error, \
             a.duration_ms FROM webhook_attempts a \
             JOIN webhook_deliveries d ON d.id = a.delivery_id \
             WHERE d.subscription_id = $1 ORDER BY a.id DESC LIMIT $2",
        )
        .bind(subscription)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok(WebhookAttempt {
                    delivery_id: r.try_get("delivery_id").map_err(StoreError::db)?,
                    message_id: r.try_get("message_id").map_err(StoreError::db)?,
                    event_type: r.try_get("event_type").map_err(StoreError::db)?,
                    at: r.try_get("at").map_err(StoreError::db)?,
                    status: r.try_get("status").map_err(StoreError::db)?,
                    error: r.try_get("error").map_err(StoreError::db)?,
                    duration_ms: r.try_get("duration_ms").map_err(StoreError::db)?,
                })
            })
            .collect()
    }

    /// Sends the subscription's dead deliveries again, from now, with their attempts
    /// counted afresh (the attempts table keeps the history): each one that no later
    /// delivery of the same incident and type has superseded (sending an older state
    /// after a newer one would undo it at the receiver). Answers how many.
    pub async fn retry_webhook(
        &self,
        subscription: i64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write_untracked(move |conn| {
            Box::pin(async move {
                Ok(sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
                     next_attempt_at = $2 WHERE subscription_id = $1 AND state = 'dead' \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries later \
                         WHERE later.subscription_id = webhook_deliveries.subscription_id \
                         AND later.folio = webhook_deliveries.folio \
                         AND later.event_type = webhook_deliveries.event_type \
                         AND later.id > webhook_deliveries.id)",
                )
                .bind(subscription)
                .bind(now.as_millisecond())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?
                .rows_affected())
            })
        })
        .await
    }

    /// Leases the banner checks due at `now`.
    pub async fn claim_banner_checks(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<BannerCheck>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE banner_checks SET lease_owner = $1, lease_until = $2 WHERE id IN \
             (SELECT id FROM banner_checks WHERE state = 'pending' AND due_at <= $3 \
              AND (lease_until IS NULL OR lease_until <= $3) ORDER BY due_at LIMIT $4{lock}) \
             RETURNING id, folio, seq, attempts"
        );
        let owner = owner.to_string();
        self.write_untracked(move |conn| {
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
                    .map(|r| {
                        Ok(BannerCheck {
                            id: r.try_get("id").map_err(StoreError::db)?,
                            folio: r.try_get("folio").map_err(StoreError::db)?,
                            seq: r.try_get("seq").map_err(StoreError::db)?,
                            attempts: r.try_get("attempts").map_err(StoreError::db)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
        })
        .await
    }

    /// The check's result by `owner`: `found`, `missing` or `skipped`, with what was seen.
    /// Nothing changes if the check is no longer `owner`'s or no longer pending.
    pub async fn banner_checked(
        &self,
        id: i64,
        owner: &str,
        state: &'static str,
        detail: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute_one(
            "UPDATE banner_checks SET state = $2, detail = $3, checked_at = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $5 AND state = 'pending'",
            vec![
                id.into(),
                state.into(),
                detail.into(),
                now.as_millisecond().into(),
                owner.to_string().into(),
            ],
        )
        .await
    }

    /// Puts a check `owner` did not complete back, due at `due`: with what was seen and
    /// one more attempt counted when the page could not tell (it did not answer), or
    /// untouched when the check was only given back (out of lease time).
    pub async fn banner_check_later(
        &self,
        id: i64,
        owner: &str,
        due: Timestamp,
        seen: Option<String>,
    ) -> Result<(), StoreError> {
        let counted = i64::from(seen.is_some());
        self.execute_one(
            "UPDATE banner_checks SET due_at = $2, detail = COALESCE($3, detail), \
             attempts = attempts + $5, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $4 AND state = 'pending'",
            vec![
                id.into(),
                due.as_millisecond().into(),
                seen.into(),
                owner.to_string().into(),
                counted.into(),
            ],
        )
        .await
    }

    /// When the banner checker must look again.
    pub async fn next_banner_check(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.earliest(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > $1 \
             THEN lease_until ELSE due_at END) FROM banner_checks WHERE state = 'pending'",
            now,
        )
        .await
    }

    /// The banner checks of an incident, oldest first: (state, due, checked, detail).
    pub async fn banner_checks_of(
        &self,
        folio: &str,
    ) -> Result<Vec<(String, i64, Option<i64>, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, due_at, checked_at, detail FROM banner_checks WHERE folio = $1 \
             ORDER BY id",
        )
        .bind(folio.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("state").map_err(StoreError::db)?,
                    r.try_get("due_at").map_err(StoreError::db)?,
                    r.try_get("checked_at").map_err(StoreError::db)?,
                    r.try_get("detail").map_err(StoreError::db)?,
                ))
            })
            .collect()
    }
}
