//! The outbox and the received mail: what the help desk and administrators may see and
//! retry, and what the outbox worker claims, sends and marks. Messages are rendered here
//! ([`notify::render`]), so the worker only speaks SMTP.

use incidencias_core::{FieldError, Role};
use jiff::Timestamp;

use super::notify::render::{Rendered, render};
use super::notify::{Message, Notice};
use super::{Caller, Service, ServiceError};
use crate::documents::{OutboxDoc, OutboxPreview, ReceivedDoc};
pub use crate::store::{InboundDisposition, OutboxState};

/// Who may read the outbox and retry its dead messages.
pub(crate) const READERS: &[Role] = &[Role::Helpdesk, Role::Admin];

/// The most rows one list answers.
pub const MAX_LIST: i64 = 500;

/// A claimed message, ready for SMTP.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub id: i64,
    /// Per incident, messages go out in order.
    pub folio: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Deterministic: a re-send after a crash is the same message.
    pub message_id: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// The rendered email, or why the row cannot be one (it then fails like a refused send).
    pub content: Result<Rendered, String>,
}

fn check_limit(limit: i64) -> Result<i64, ServiceError> {
    if (1..=MAX_LIST).contains(&limit) {
        Ok(limit)
    } else {
        Err(ServiceError::Invalid(vec![FieldError::new(
            "limit",
            format!("debe estar entre 1 y {MAX_LIST}"),
        )]))
    }
}

/// What stands in a previewed link for its token.
pub const MASKED_TOKEN: &str = "[firma oculta]";

/// `notice` with its one-click link tokens (the only secrets a message carries) replaced
/// by [`MASKED_TOKEN`], so the same [`render`] shows where the links go and not how to
/// follow them.
fn masked(mut notice: Notice) -> Notice {
    if let Message::Notification {
        ack_link,
        resolution_link,
        ..
    } = &mut notice.message
    {
        for link in [ack_link, resolution_link] {
            if link.is_some() {
                *link = Some(MASKED_TOKEN.to_string());
            }
        }
    }
    notice
}

impl Service {
    /// Queued, sent and dead emails, newest first (help desk and admin).
    pub async fn outbox(
        &self,
        caller: &Caller,
        state: Option<OutboxState>,
        limit: i64,
    ) -> Result<Vec<OutboxDoc>, ServiceError> {
        self.outbox_page(caller, state, None, limit).await
    }

    /// [`Service::outbox`] of the emails older than `before_id` (an id), when given: the
    /// next page after a page whose last id it is.
    pub async fn outbox_page(
        &self,
        caller: &Caller,
        state: Option<OutboxState>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboxDoc>, ServiceError> {
        caller.require(READERS, "consultar la bandeja de salida")?;
        let rows = self
            .store
            .list_outbox_before(state, before_id, check_limit(limit)?)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Email `id` rendered exactly as the outbox worker sends it, with links based at
    /// `base_url` (the service does not know the public address: the front end passes the
    /// one the worker uses), except that one-click link tokens are masked: the preview is
    /// for reading, and a token would let its reader act as the recipient. Help desk and
    /// admin; 404 for an unknown id.
    pub async fn outbox_preview(
        &self,
        caller: &Caller,
        id: i64,
        base_url: &str,
    ) -> Result<OutboxPreview, ServiceError> {
        caller.require(READERS, "consultar la bandeja de salida")?;
        let row =
            self.store.outbox_row(id).await?.ok_or_else(|| {
                ServiceError::NotFound("el correo de la bandeja de salida".into())
            })?;
        let rendered = Notice::from_stored(&row.kind, &row.payload)
            .map(|notice| render(&masked(notice), base_url));
        let doc = OutboxDoc::from(row);
        Ok(match rendered {
            Ok(r) => OutboxPreview {
                doc,
                subject: r.subject,
                text: r.text,
                html: r.html,
                error: None,
            },
            Err(e) => OutboxPreview {
                doc,
                subject: String::new(),
                text: String::new(),
                html: String::new(),
                error: Some(e),
            },
        })
    }

    /// Puts dead emails (one, or all) back in the queue, due now; returns how many.
    pub async fn retry_outbox(
        &self,
        caller: &Caller,
        id: Option<i64>,
    ) -> Result<u64, ServiceError> {
        caller.require(READERS, "reenviar correos de la bandeja de salida")?;
        let n = self.store.retry_outbox(id, self.now()).await?;
        if n > 0 {
            self.mail_wake.notify_one();
        }
        Ok(n)
    }

    /// Received emails, newest first (help desk and admin); `before` pages by id.
    pub async fn received(
        &self,
        caller: &Caller,
        outcome: Option<InboundDisposition>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ReceivedDoc>, ServiceError> {
        caller.require(
            &[Role::Helpdesk, Role::Admin],
            "consultar los correos recibidos",
        )?;
        let rows = self
            .store
            .list_inbound(outcome, before, check_limit(limit)?)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Leases up to `limit` due messages to the outbox worker `owner` until `lease_until`,
    /// rendered with links based at `base_url`.
    pub async fn claim_mail(
        &self,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
        base_url: &str,
    ) -> Result<Vec<OutgoingMail>, ServiceError> {
        let rows = self
            .store
            .claim_outbox(owner, self.now(), lease_until, limit)
            .await?;
        // Sent with its mark: a reply that names it proves it answers what we sent.
        let signer = self.signer().await?;
        Ok(rows
            .into_iter()
            .map(|row| OutgoingMail {
                content: Notice::from_stored(&row.kind, &row.payload)
                    .map(|notice| render(&notice, base_url)),
                id: row.id,
                folio: row.folio,
                to: row.to,
                cc: row.cc,
                message_id: signer.mark_message_id(&row.message_id),
                attempts: row.attempts,
            })
            .collect())
    }

    /// The SMTP server accepted messages `ids`.
    pub async fn mail_sent(&self, ids: &[i64]) -> Result<(), ServiceError> {
        Ok(self.store.outbox_sent(ids, self.now()).await?)
    }

    /// A failed attempt by `owner`: retried at `next_attempt_at`, or set aside when `dead`.
    pub async fn mail_failed(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at: Timestamp,
        error: String,
        dead: bool,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .outbox_failed(id, owner, next_attempt_at, error, dead)
            .await?)
    }

    /// Gives a message claimed by `owner` back untouched.
    pub async fn mail_released(&self, id: i64, owner: &str) -> Result<(), ServiceError> {
        Ok(self.store.outbox_release(id, owner).await?)
    }

    /// When the outbox worker must look again: the earliest pending attempt or lease end.
    pub async fn next_mail_attempt(&self) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.next_outbox_attempt(self.now()).await?)
    }
}
