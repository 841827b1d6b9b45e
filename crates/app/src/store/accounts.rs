//! Credentials: API tokens and session cookies (only their SHA-256 is stored), failed-login
//! throttling, and the idempotency records of the API.

use incidencias_core::UserId;
use jiff::Timestamp;
use sqlx::Row;

use super::catalog::user_from;
use super::{Store, StoreError, User};

/// What a secret opens: the API (bearer) or a browser session (cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Api,
    Session,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Session => "session",
        }
    }
}

/// The first answer to a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub user_id: UserId,
    pub key: String,
    /// SHA-256 of method, path and body: the same key with another request is refused.
    pub request_hash: String,
    pub status: u16,
    pub response: String,
}

impl Store {
    pub async fn add_token(
        &self,
        user: UserId,
        kind: TokenKind,
        token_hash: String,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO api_tokens (user_id, kind, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(user.0)
                .bind(kind.as_str())
                .bind(token_hash)
                .bind(now.as_millisecond())
                .bind(expires_at.map(|t| t.as_millisecond()))
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    /// The active user a live (not revoked, not expired) secret belongs to.
    pub async fn user_by_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.role, u.agency_id, u.reports_to, u.active, \
             u.password_hash, u.created_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.kind = $2 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $3) AND u.active = 1",
        )
        .bind(token_hash.to_string())
        .bind(kind.as_str())
        .bind(now.as_millisecond())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db)?;
        row.as_ref().map(user_from).transpose()
    }

    /// Revokes one secret (logout). Returns whether it was live.
    pub async fn revoke_token(
        &self,
        token_hash: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
                )
                .bind(now.as_millisecond())
                .bind(token_hash)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    /// Revokes every live secret of a user of that kind; returns how many.
    pub async fn revoke_user_tokens(
        &self,
        user: UserId,
        kind: TokenKind,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE user_id = $2 AND kind = $3 AND revoked_at IS NULL",
                )
                .bind(now.as_millisecond())
                .bind(user.0)
                .bind(kind.as_str())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(r.rows_affected())
            })
        })
        .await
    }

    /// A user's live API tokens (id and creation instant: the secret is never stored).
    pub async fn api_tokens_of(&self, user: UserId) -> Result<Vec<(i64, Timestamp)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM api_tokens \
             WHERE user_id = $1 AND kind = 'api' AND revoked_at IS NULL ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id").map_err(StoreError::db)?;
                let at: i64 = r.try_get("created_at").map_err(StoreError::db)?;
                Ok((
                    id,
                    Timestamp::from_millisecond(at).unwrap_or(Timestamp::UNIX_EPOCH),
                ))
            })
            .collect()
    }

    /// Revokes one of a user's API tokens by its id. Returns whether it was live (another
    /// user's token id revokes nothing).
    pub async fn revoke_api_token(
        &self,
        user: UserId,
        id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE id = $2 AND user_id = $3 AND kind = 'api' AND revoked_at IS NULL",
                )
                .bind(now.as_millisecond())
                .bind(id)
                .bind(user.0)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    /// Replaces a user's password hash and ends their other sessions (a changed password
    /// must lock out whoever knew the old one), keeping the session `keep` (the hash of the
    /// one that asked).
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        keep: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 \
                     AND kind = 'session' AND revoked_at IS NULL AND token_hash <> $3",
                )
                .bind(now.as_millisecond())
                .bind(user.0)
                .bind(keep)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    /// Counts a login attempt for `email` before its password is checked, in one write:
    /// refused (with the instant it may retry) while a wait is running; otherwise counted
    /// as a failure until [`Store::clear_login_failures`] says it succeeded. Counting first
    /// means parallel guesses cannot all slip through before the first failure is written.
    /// The wait after `n` consecutive failures is [`login_wait_ms`].
    pub async fn begin_login_attempt(
        &self,
        email: String,
        now: Timestamp,
    ) -> Result<Result<(), Timestamp>, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                // One upsert counts the attempt unless a wait is running, and locks the row
                // (PostgreSQL) until this transaction ends: parallel attempts for one
                // address are counted one after the other.
                let row = sqlx::query(
                    "INSERT INTO login_failures (email, failures, last_failure, blocked_until) \
                     VALUES ($1, 1, $2, 0) ON CONFLICT (email) DO UPDATE SET \
                     failures = CASE WHEN login_failures.blocked_until > $2 \
                     THEN login_failures.failures ELSE login_failures.failures + 1 END, \
                     last_failure = $2 \
                     RETURNING failures, blocked_until",
                )
                .bind(email.clone())
                .bind(now.as_millisecond())
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                let failures: i64 = row.try_get("failures").map_err(StoreError::db)?;
                let blocked_until: i64 = row.try_get("blocked_until").map_err(StoreError::db)?;
                if blocked_until > now.as_millisecond() {
                    let until = Timestamp::from_millisecond(blocked_until).unwrap_or(now);
                    return Ok(Err(until));
                }
                sqlx::query("UPDATE login_failures SET blocked_until = $1 WHERE email = $2")
                    .bind(now.as_millisecond().saturating_add(login_wait_ms(failures)))
                    .bind(email)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                Ok(Ok(()))
            })
        })
        .await
    }

    pub async fn clear_login_failures(&self, email: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM login_failures WHERE email = $1")
                    .bind(email)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                Ok(())
            })
        })
        .await
    }

    pub async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.0)
        .bind(key.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db)?;
        let Some(row) = row else { return Ok(None) };
        let status: i64 = row.try_get("status").map_err(StoreError::db)?;
        Ok(Some(IdempotencyRecord {
            user_id: user,
            key: key.to_string(),
            request_hash: row.try_get("request_hash").map_err(StoreError::db)?,
            status: u16::try_from(status).unwrap_or(200),
            response: row.try_get("response").map_err(StoreError::db)?,
        }))
    }

    /// Stores an idempotency record on its own (for writes that are not incident appends,
    /// whose records go in the append's own transaction).
    pub async fn save_idempotency(
        &self,
        record: IdempotencyRecord,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut script = super::script::Script::new();
        push_idempotency(&mut script, &record, now);
        self.run_script(script).await
    }
}

impl Store {
    /// The secret that signs one-click links: made once (random) and shared by every
    /// instance through the database.
    pub async fn link_secret(&self, candidate: String) -> Result<String, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('link_secret', $1) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(candidate)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                sqlx::query("SELECT value FROM settings WHERE key = 'link_secret'")
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|r| r.try_get::<String, _>(0))
                    .map_err(StoreError::db)
            })
        })
        .await
    }

    pub async fn link_used(&self, nonce: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM used_links WHERE nonce = $1")
            .bind(nonce.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        Ok(row.is_some())
    }
}

pub(super) fn push_idempotency(
    script: &mut super::script::Script,
    record: &IdempotencyRecord,
    now: Timestamp,
) {
    script.push(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            record.user_id.0.into(),
            record.key.clone().into(),
            record.request_hash.clone().into(),
            i64::from(record.status).into(),
            record.response.clone().into(),
            now.as_millisecond().into(),
        ],
    );
}

/// Milliseconds a login for an address with `failures` consecutive failures must wait.
pub fn login_wait_ms(failures: i64) -> i64 {
    const FREE: i64 = 3;
    const MAX_MS: i64 = 15 * 60 * 1000;
    if failures < FREE {
        return 0;
    }
    let exp = (failures - FREE).min(20) as u32;
    (1000i64 << exp).min(MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::login_wait_ms;

    #[test]
    fn login_waits_grow_then_cap() {
        assert_eq!(login_wait_ms(1), 0);
        assert_eq!(login_wait_ms(2), 0);
        assert_eq!(login_wait_ms(3), 1000);
        assert_eq!(login_wait_ms(4), 2000);
        assert_eq!(login_wait_ms(8), 32_000);
        assert_eq!(login_wait_ms(100), 15 * 60 * 1000);
    }
}
