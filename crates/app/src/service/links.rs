//! One-click links: minting them for emails and acting on them.

use std::sync::Arc;

use incidencias_core::{Command, Incident, IncidentState, Role, UserId};
use jiff::{SignedDuration, Timestamp};

use super::{Caller, Reply, Service, ServiceError, new_secret};
use crate::links::{Link, LinkAction, LinkError, LinkSigner};

/// How long a one-click link works.
pub const LINK_LIFETIME: SignedDuration = SignedDuration::from_hours(72);

/// Mints the links of the emails queued by one write.
pub struct LinkMaker {
    signer: Arc<LinkSigner>,
    now: Timestamp,
}

impl LinkMaker {
    pub fn token(
        &self,
        folio: incidencias_core::Folio,
        action: LinkAction,
        recipient: UserId,
    ) -> Option<String> {
        let nonce = new_secret().ok()?;
        let nonce = nonce.trim_start_matches("inc_").get(..24)?.to_string();
        let expires = self.now.checked_add(LINK_LIFETIME).ok()?;
        Some(self.signer.sign(folio, action, recipient, expires, &nonce))
    }
}

/// Why a link did not act, for the page.
#[derive(Debug)]
pub enum LinkRefusal {
    Forged,
    Expired,
    Used,
    /// The link was not used, but its action was already recorded another way (the API,
    /// a reply to the email, a colleague's link): the Spanish sentence that says so.
    AlreadyDone(&'static str),
    /// The recipient may not act on that incident (not its agency, inactive).
    NotYours,
    /// The protocol refused (already acknowledged, say): its Spanish reason.
    Refused(String),
    /// What the page sent is invalid (a resolution without its summary): the offending
    /// fields and why, in Spanish. The person can correct it and press again.
    Invalid(String),
    Failed(ServiceError),
}

/// Whether a link's action was already recorded on the incident, and the sentence that
/// says so. A resolution notice is pending again after a failed validation (the incident
/// is back in correction), so the link works again then.
fn already_done(incident: &Incident, action: LinkAction) -> Option<&'static str> {
    match action {
        LinkAction::Acknowledge if incident.acknowledged_at.is_some() => {
            Some("La incidencia ya fue confirmada de enterado.")
        }
        LinkAction::Resolution
            if matches!(
                incident.state,
                IncidentState::AwaitingValidation
                    | IncidentState::Validated
                    | IncidentState::Closed
            ) =>
        {
            Some("El aviso de resolución de esta incidencia ya se envió.")
        }
        _ => None,
    }
}

impl Service {
    pub(super) async fn signer(&self) -> Result<Arc<LinkSigner>, ServiceError> {
        if let Ok(slot) = self.signer.lock()
            && let Some(s) = slot.as_ref()
        {
            return Ok(s.clone());
        }
        let secret = self.store.link_secret(new_secret()?).await?;
        let signer = Arc::new(LinkSigner::new(&secret));
        if let Ok(mut slot) = self.signer.lock() {
            *slot = Some(signer.clone());
        }
        Ok(signer)
    }

    /// Signs and checks links with `secret` (INCIDENCIAS_LINK_SECRET, read once by the
    /// command line) instead of the one kept in the database: several instances, or a
    /// restored backup, then agree on which links are genuine.
    pub fn use_link_secret(&self, secret: &str) {
        if let Ok(mut slot) = self.signer.lock() {
            *slot = Some(Arc::new(LinkSigner::new(secret)));
        }
    }

    pub async fn link_maker(&self, now: Timestamp) -> Result<LinkMaker, ServiceError> {
        Ok(LinkMaker {
            signer: self.signer().await?,
            now,
        })
    }

    /// Checks a link (for the confirmation page: nothing changes).
    pub async fn check_link(&self, token: &str) -> Result<Link, LinkRefusal> {
        let signer = self.signer().await.map_err(LinkRefusal::Failed)?;
        let link = signer.verify(token, self.now()).map_err(|e| match e {
            LinkError::Forged => LinkRefusal::Forged,
            LinkError::Expired => LinkRefusal::Expired,
        })?;
        match self.store.link_used(&link.nonce).await {
            Ok(true) => return Err(LinkRefusal::Used),
            Ok(false) => {}
            Err(e) => return Err(LinkRefusal::Failed(e.into())),
        }
        // The page must not offer a button for an action that is no longer to be done.
        match self.store.load(link.folio).await {
            Ok(Some(stored)) => match already_done(&stored.incident, link.action) {
                Some(why) => Err(LinkRefusal::AlreadyDone(why)),
                None => Ok(link),
            },
            Ok(None) => Err(LinkRefusal::NotYours),
            Err(e) => Err(LinkRefusal::Failed(e.into())),
        }
    }

    /// Acts on a link, as its recipient, once.
    pub async fn use_link(
        &self,
        token: &str,
        summary: Option<String>,
    ) -> Result<(Link, Reply), LinkRefusal> {
        let link = self.check_link(token).await?;
        let user = match self.store.user(link.recipient).await {
            Ok(Some(u)) if u.active && u.role == Role::Agency => u,
            Ok(_) => return Err(LinkRefusal::NotYours),
            Err(e) => return Err(LinkRefusal::Failed(e.into())),
        };
        let caller = Caller::from(&user);
        let command = match link.action {
            LinkAction::Acknowledge => Command::Acknowledge,
            LinkAction::Resolution => Command::NotifyResolution {
                summary: summary.unwrap_or_default(),
            },
        };
        match self
            .act_using(
                &caller,
                link.folio,
                command,
                None,
                Some(link.nonce.clone()),
                incidencias_core::Via::Link,
            )
            .await
        {
            Ok(reply) => Ok((link, reply)),
            Err(ServiceError::NotFound(_)) => Err(LinkRefusal::NotYours),
            Err(ServiceError::Conflict(_)) => match self.store.link_used(&link.nonce).await {
                Ok(true) => Err(LinkRefusal::Used),
                _ => Err(LinkRefusal::Refused(
                    "la incidencia cambió mientras se procesaba; vuelva a intentarlo".into(),
                )),
            },
            Err(e @ ServiceError::InvalidTransition { .. }) => {
                Err(LinkRefusal::Refused(e.to_string()))
            }
            Err(ServiceError::Invalid(fields)) => Err(LinkRefusal::Invalid(
                fields
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(e) => Err(LinkRefusal::Failed(e)),
        }
    }
}
