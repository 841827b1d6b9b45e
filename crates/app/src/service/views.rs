//! What the pages show about one incident beyond its document: the actions the caller may
//! take now (asked of the core, never decided by a page) and the incident's emails with
//! their subjects as they go out.

use incidencias_core::Folio;
use incidencias_core::actions::{Action, available_actions};

use super::notify::Notice;
use super::notify::render::render;
use super::{Caller, Service, ServiceError};
use crate::documents::OutboxDoc;

/// One email of an incident, as its page lists it.
#[derive(Debug, Clone)]
pub struct IncidentMail {
    pub doc: OutboxDoc,
    /// The subject as sent (or as it will be); blank if the stored row cannot be rendered.
    pub subject: String,
}

/// A stored row and the subject it goes out with.
fn with_subject(row: crate::store::OutboxRow) -> IncidentMail {
    let subject = Notice::from_stored(&row.kind, &row.payload)
        .map(|n| render(&n, "").subject)
        .unwrap_or_default();
    IncidentMail {
        doc: row.into(),
        subject,
    }
}

impl Service {
    /// The copy-deck actions `caller` may take on the incident now, as the protocol would
    /// decide them ([`available_actions`]). 404 for an incident the caller may not see.
    pub async fn available_actions(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<Vec<Action>, ServiceError> {
        let stored = self.visible(caller, folio).await?;
        let now = self.now();
        let org = self.org_chart().await?;
        let ladder = org.ladder(&stored.incident);
        let policy = self.policy_now(now).await?;
        Ok(available_actions(
            &stored.incident,
            &caller.actor(),
            now,
            &policy,
            &ladder,
        ))
    }

    /// The emails queued and sent about an incident, oldest first, for whoever may see
    /// the incident.
    pub async fn incident_mail(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<Vec<IncidentMail>, ServiceError> {
        self.visible(caller, folio).await?;
        let rows = self.store.outbox_of(&folio.to_string()).await?;
        Ok(rows.into_iter().map(with_subject).collect())
    }

    /// The outbox's messages (of one state), newest first, older than `before_id` when
    /// paging, with their subjects (help desk and admin).
    pub async fn outbox_mail(
        &self,
        caller: &Caller,
        state: Option<super::OutboxState>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<IncidentMail>, ServiceError> {
        caller.require(super::outbox::READERS, "consultar la bandeja de salida")?;
        let limit = limit.clamp(1, super::MAX_LIST);
        let rows = self
            .store
            .list_outbox_before(state, before_id, limit)
            .await?;
        Ok(rows.into_iter().map(with_subject).collect())
    }
}
