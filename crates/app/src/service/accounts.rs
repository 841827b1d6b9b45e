//! Sign-in: API tokens, session cookies, password logins with growing waits.

use incidencias_core::Email;
use jiff::{SignedDuration, Timestamp};

use super::{Caller, Service, ServiceError};
use crate::encoding::sha256_hex;
use crate::store::TokenKind;

/// How long a browser session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A new random secret: `inc_` and 64 hex digits (256 bits from the OS).
pub fn new_secret() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServiceError::Internal(format!("getrandom: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("inc_{hex}"))
}

pub struct LoginOutcome {
    /// The account signed in.
    pub user: crate::documents::UserDoc,
    /// The session secret for the cookie.
    pub session: String,
    pub expires_at: Timestamp,
}

impl Service {
    /// The account with this address, or a Spanish not-found.
    async fn account(&self, email: &str) -> Result<crate::store::User, ServiceError> {
        let email =
            Email::parse(email).map_err(|e| ServiceError::invalid("email", e.to_string()))?;
        self.store
            .user_by_email(&email)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("el usuario {email}")))
    }

    /// An account as a caller, without credentials: for the front ends that are trusted
    /// by construction (the command line, the demo, the benchmarks, tests), never for a
    /// request.
    pub async fn caller(&self, user_id: i64) -> Result<Caller, ServiceError> {
        match self.store.user(incidencias_core::UserId(user_id)).await? {
            Some(u) if u.active => Ok(Caller::from(&u)),
            _ => Err(ServiceError::NotFound(format!("el usuario {user_id}"))),
        }
    }

    /// The caller's own account.
    pub async fn me(&self, caller: &Caller) -> Result<crate::documents::UserDoc, ServiceError> {
        self.store
            .user(caller.id)
            .await?
            .map(Into::into)
            .ok_or(ServiceError::Unauthenticated)
    }

    /// A new API token for the user with this address; the token is returned once.
    pub async fn create_token(&self, email: &str) -> Result<String, ServiceError> {
        let user = self.account(email).await?;
        self.issue_token(user.id).await
    }

    /// A new API token of `user`: only its hash is kept; the secret is returned once.
    async fn issue_token(&self, user: incidencias_core::UserId) -> Result<String, ServiceError> {
        let token = new_secret()?;
        self.store
            .add_token(
                user,
                TokenKind::Api,
                sha256_hex(token.as_bytes()),
                self.now(),
                None,
            )
            .await?;
        Ok(token)
    }

    /// Revokes every API token of the user with this address; returns how many.
    pub async fn revoke_tokens(&self, email: &str) -> Result<u64, ServiceError> {
        let user = self.account(email).await?;
        Ok(self
            .store
            .revoke_user_tokens(user.id, TokenKind::Api, self.now())
            .await?)
    }

    /// The caller behind an API token (`Authorization: Bearer`).
    pub async fn authenticate_token(&self, secret: &str) -> Result<Caller, ServiceError> {
        self.authenticate(secret, TokenKind::Api).await
    }

    /// The caller behind a session cookie.
    pub async fn authenticate_session(&self, secret: &str) -> Result<Caller, ServiceError> {
        self.authenticate(secret, TokenKind::Session).await
    }

    /// The account whose token of `kind` is `secret`, from [`super::CREDENTIAL_CACHE`] when
    /// checked recently.
    async fn authenticate(&self, secret: &str, kind: TokenKind) -> Result<Caller, ServiceError> {
        let hash = sha256_hex(secret.as_bytes());
        let key = format!("{kind:?}:{hash}");
        if let Ok(cache) = self.credentials.lock()
            && let Some((caller, checked)) = cache.get(&key)
            && checked.elapsed() < super::CREDENTIAL_CACHE
        {
            return Ok(caller.clone());
        }
        let user = self.store.user_by_token(&hash, kind, self.now()).await?;
        let caller = user
            .map(|user| Caller::from(&user))
            .ok_or(ServiceError::Unauthenticated)?;
        if let Ok(mut cache) = self.credentials.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (caller.clone(), std::time::Instant::now()));
        }
        Ok(caller)
    }

    fn forget_credential(&self, secret: &str, kind: TokenKind) {
        let key = format!("{kind:?}:{}", sha256_hex(secret.as_bytes()));
        if let Ok(mut cache) = self.credentials.lock() {
            cache.remove(&key);
        }
    }

    /// Password login. After three consecutive failures for an address each further
    /// attempt must wait (1 s, 2 s, 4 s... up to 15 min), whether or not the address
    /// exists, so the waits reveal nothing.
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginOutcome, ServiceError> {
        let now = self.now();
        let key = email.trim().to_lowercase();
        self.begin_attempt(&key, now).await?;
        let user = match Email::parse(email) {
            Ok(e) => self.store.user_by_email(&e).await?,
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .filter(|u| u.active)
            .and_then(|u| u.password_hash.clone());
        let password = password.to_string();
        // Without a user or a password the check still runs (against a hash of nothing
        // anyone knows), so the time taken does not reveal which accounts exist.
        let ok = crate::passwords::verify(password, hash).await;
        match user {
            Some(user) if ok => {
                self.store.clear_login_failures(key).await?;
                let session = new_secret()?;
                let expires_at = now
                    .checked_add(SignedDuration::from_hours(SESSION_HOURS))
                    .unwrap_or(Timestamp::MAX);
                self.store
                    .add_token(
                        user.id,
                        TokenKind::Session,
                        sha256_hex(session.as_bytes()),
                        now,
                        Some(expires_at),
                    )
                    .await?;
                Ok(LoginOutcome {
                    user: user.into(),
                    session,
                    expires_at,
                })
            }
            _ => {
                tracing::warn!(target: "incidencias::seguridad", email = ?key,
                    "inicio de sesión fallido");
                Err(ServiceError::Unauthenticated)
            }
        }
    }

    /// The caller's live API tokens: id and when each was made (secrets are never kept).
    pub async fn my_tokens(&self, caller: &Caller) -> Result<Vec<(i64, Timestamp)>, ServiceError> {
        Ok(self.store.api_tokens_of(caller.id).await?)
    }

    /// A new API token for the caller; the secret is returned once.
    pub async fn create_my_token(&self, caller: &Caller) -> Result<String, ServiceError> {
        self.issue_token(caller.id).await
    }

    /// Revokes one of the caller's API tokens; a token that is not theirs (or no longer
    /// live) is not found.
    pub async fn revoke_my_token(&self, caller: &Caller, id: i64) -> Result<(), ServiceError> {
        if self
            .store
            .revoke_api_token(caller.id, id, self.now())
            .await?
        {
            // Revoked tokens must stop working now, not when the credential cache expires.
            if let Ok(mut cache) = self.credentials.lock() {
                cache.clear();
            }
            Ok(())
        } else {
            Err(ServiceError::NotFound("ese token".into()))
        }
    }

    /// The caller changes their own password: the current one must be right, the new one
    /// long enough and typed twice alike. Every other session of the account ends; the
    /// one that asked (`session`) stays.
    pub async fn change_password(
        &self,
        caller: &Caller,
        session: &str,
        current: &str,
        new: &str,
        confirmation: &str,
    ) -> Result<(), ServiceError> {
        let mut errors = Vec::new();
        let user = self
            .store
            .user(caller.id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if let Some(problem) = super::passwords::password_problem(new, user.email.as_str()) {
            errors.push(incidencias_core::FieldError::new("new_password", problem));
        }
        if new != confirmation {
            errors.push(incidencias_core::FieldError::new(
                "confirmation",
                "no coincide con la nueva contraseña",
            ));
        }
        // The current password is guessed no faster here than at sign-in: the same count
        // of failures per address, the same growing waits.
        let key = user.email.as_str().to_lowercase();
        let now = self.now();
        self.begin_attempt(&key, now).await?;
        let hash = user.password_hash.clone();
        let current = current.to_string();
        let ok = match hash {
            Some(h) => crate::passwords::verify(current, Some(h)).await,
            None => false,
        };
        if ok {
            self.store.clear_login_failures(key).await?;
        } else {
            errors.insert(
                0,
                incidencias_core::FieldError::new("current_password", "no es correcta"),
            );
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let new = new.to_string();
        let new_hash = crate::passwords::hash(new)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .set_password(
                caller.id,
                new_hash,
                sha256_hex(session.as_bytes()),
                self.now(),
            )
            .await?;
        if let Ok(mut cache) = self.credentials.lock() {
            cache.clear();
        }
        Ok(())
    }

    /// Counts a password check for `key` (an address, lowercase), or refuses it while its
    /// wait runs: sign-in and the password change share the count and the waits.
    async fn begin_attempt(&self, key: &str, now: Timestamp) -> Result<(), ServiceError> {
        if let Err(until) = self.store.begin_login_attempt(key.to_string(), now).await? {
            let wait = until.duration_since(now).as_secs().max(1);
            return Err(ServiceError::TooManyAttempts {
                retry_after_s: u64::try_from(wait).unwrap_or(1),
            });
        }
        Ok(())
    }

    pub async fn logout(&self, session: &str) -> Result<(), ServiceError> {
        self.forget_credential(session, TokenKind::Session);
        self.store
            .revoke_token(sha256_hex(session.as_bytes()), self.now())
            .await?;
        Ok(())
    }
}
