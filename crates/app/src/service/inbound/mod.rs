//! Received email: replies recorded on their incident (and, for the step-2 email, acted
//! on), new reports from agencies, and everything else in the help desk's triage queue.
//! Nothing received is lost, and nothing ambiguous acts.

use incidencias_core::{Channel, Command, Email, Folio, IncidentKind, IncidentState, Role, Via};

use super::{Caller, IdemRequest, InboundDisposition, NewIncidentInput, Service, ServiceError};
use crate::documents::InboundDoc;
pub mod authenticity;
pub mod read;
mod triage;

use crate::encoding::header_safe;
use authenticity::Verdict;
pub use read::MAX_MESSAGE_BYTES;
use read::{Inbound, InboundError, intents, read};

/// What became of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    pub outcome: InboundDisposition,
    pub folio: Option<String>,
    /// Why, in Spanish (for triage and refusals).
    pub reason: Option<String>,
}

fn outcome(kind: InboundDisposition, folio: Option<&str>, reason: Option<&str>) -> InboundOutcome {
    InboundOutcome {
        outcome: kind,
        folio: folio.map(str::to_string),
        reason: reason.map(str::to_string),
    }
}

/// Free text from an email, fit for the record: no control characters but line breaks.
pub fn clean(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Failures that the same message would meet again.
fn is_permanent(e: &ServiceError) -> bool {
    !matches!(
        e,
        ServiceError::Unavailable | ServiceError::Internal(_) | ServiceError::Conflict(_)
    )
}

/// A failure as the triage queue shows it (in Spanish).
fn reason_of(e: &ServiceError) -> String {
    match e {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => format!("no se pudo procesar: {other}"),
    }
}

/// The idempotency key of what a received message does: one message, one action.
fn once(digest: &str) -> Option<IdemRequest> {
    Some(IdemRequest {
        key: format!("correo:{digest}"),
        request_hash: digest.to_string(),
    })
}

/// When a failure reported by email began, as a first guess for the help desk to confirm
/// or correct at notification: the message's `Date` when it is plausible (not in the
/// future, at most a week old: a clock skewed by days is no guess at all), else the
/// moment it was received.
pub fn first_guess(date: Option<jiff::Timestamp>, received: jiff::Timestamp) -> jiff::Timestamp {
    let week = jiff::SignedDuration::from_hours(24 * 7);
    match date {
        Some(d) if d <= received && received.duration_since(d) <= week => d,
        _ => received,
    }
}

pub fn guess_kind(text: &str) -> IncidentKind {
    let t = text.to_lowercase();
    if t.contains("lent") {
        IncidentKind::Slow
    } else if t.contains("intermit") {
        IncidentKind::Intermittent
    } else if t.contains("no permite") || t.contains("no concluye") || t.contains("no termina") {
        IncidentKind::CannotComplete
    } else {
        IncidentKind::Unavailable
    }
}

impl Service {
    /// A message handed over by a mail system through the API (help desk or admin token).
    pub async fn deliver(&self, caller: &Caller, raw: &[u8]) -> Result<InboundDoc, ServiceError> {
        caller.require(&[Role::Helpdesk, Role::Admin], "entregar correos recibidos")?;
        let r = self.ingest(raw).await?;
        Ok(InboundDoc {
            outcome: r.outcome.as_str().to_string(),
            folio: r.folio,
            reason: r.reason,
        })
    }

    /// Takes one raw RFC 822 message (from the API, the command line or IMAP). The same
    /// bytes received again (an MTA retry, an IMAP session cut before the message was
    /// flagged) act once: the second time answers what the first did.
    pub async fn ingest(&self, raw: &[u8]) -> Result<InboundOutcome, ServiceError> {
        self.ingest_hashed(raw, crate::encoding::sha256_hex(raw))
            .await
    }

    /// [`Service::ingest`] of `raw` whose SHA-256 is `digest`.
    async fn ingest_hashed(
        &self,
        raw: &[u8],
        digest: String,
    ) -> Result<InboundOutcome, ServiceError> {
        if let Some(seen) = self.store.inbound_by_hash(&digest).await? {
            return Ok(InboundOutcome {
                outcome: seen.record.outcome,
                folio: seen.record.folio,
                reason: seen.record.reason,
            });
        }
        let message = read(raw).map_err(|e| match e {
            InboundError::TooLarge => ServiceError::invalid(
                "message",
                "el mensaje excede 10 MB; envíe los anexos por otro medio",
            ),
            InboundError::Unreadable => ServiceError::invalid(
                "message",
                "no se pudo leer como correo: faltan los encabezados o el remitente",
            ),
        })?;
        let result = self.route(&message, &digest).await?;
        self.store
            .record_inbound(
                crate::store::InboundRecord {
                    received_at: self.now(),
                    message_id: message.message_id.clone().map(|m| header_safe(&m, 300)),
                    sender: header_safe(&message.sender, 300),
                    subject: header_safe(&message.subject, 500),
                    folio: result.folio.clone(),
                    outcome: result.outcome,
                    reason: result.reason.clone(),
                    excerpt: clean(&message.new_text, 2000),
                    raw_sha256: Some(digest),
                },
                triage::kept(raw),
            )
            .await?;
        if result.outcome != InboundDisposition::Triage {
            tracing::info!(folio = ?result.folio, outcome = result.outcome.as_str(), "correo recibido");
        }
        Ok(result)
    }

    /// For a mailbox that cannot answer back (IMAP): a message that cannot be taken for a
    /// reason that will not change (too large, unreadable, refused by the protocol) is kept
    /// in the triage queue with the reason instead of refused, so the help desk sees it and
    /// it is never read again. Passing failures (the database) still fail, to be retried.
    pub async fn ingest_or_triage(&self, raw: &[u8]) -> Result<InboundOutcome, ServiceError> {
        let digest = crate::encoding::sha256_hex(raw);
        match self.ingest_hashed(raw, digest.clone()).await {
            Err(e) if is_permanent(&e) => self.triage_hashed(raw, digest, &reason_of(&e)).await,
            other => other,
        }
    }

    /// Keeps a message that could not be processed in the triage queue, with `reason`.
    pub async fn triage_unprocessable(
        &self,
        raw: &[u8],
        reason: &str,
    ) -> Result<InboundOutcome, ServiceError> {
        self.triage_hashed(raw, crate::encoding::sha256_hex(raw), reason)
            .await
    }

    /// [`Service::triage_unprocessable`] of `raw` whose SHA-256 is `digest`.
    async fn triage_hashed(
        &self,
        raw: &[u8],
        digest: String,
        reason: &str,
    ) -> Result<InboundOutcome, ServiceError> {
        let (sender, subject) = read::best_effort_headers(raw);
        self.store
            .record_inbound(
                crate::store::InboundRecord {
                    received_at: self.now(),
                    message_id: None,
                    sender: header_safe(&sender, 300),
                    subject: header_safe(&subject, 500),
                    folio: None,
                    outcome: InboundDisposition::Triage,
                    reason: Some(reason.to_string()),
                    excerpt: String::new(),
                    raw_sha256: Some(digest),
                },
                triage::kept(raw),
            )
            .await?;
        tracing::warn!(%sender, %reason, "correo recibido que no se pudo procesar; queda en revisión");
        Ok(outcome(InboundDisposition::Triage, None, Some(reason)))
    }

    /// Routes a message; whatever it does to an incident carries the message's hash as its
    /// idempotency key, stored in the same transaction as the change: the same message
    /// taken twice (concurrently, or again after a crash before it was recorded here)
    /// replays the first answer instead of acting again.
    async fn route(&self, m: &Inbound, digest: &str) -> Result<InboundOutcome, ServiceError> {
        let folio_text = m.folio.as_deref();
        let verdict = authenticity::verdict(
            self.mail_authserv.as_deref(),
            m.auth_results.as_deref(),
            &m.sender,
        );
        // A sender the receiving server found forged never acts, whatever it carries.
        if let Verdict::Fail(why) = &verdict {
            tracing::warn!(sender = ?m.sender, folio = ?folio_text, reason = %why,
                "correo rechazado por autenticidad: queda en revisión");
            return Ok(outcome(
                InboundDisposition::Triage,
                folio_text,
                Some(&format!("el remitente no pasó la autenticación: {why}")),
            ));
        }
        if m.auto_reply {
            return Ok(outcome(
                InboundDisposition::Triage,
                folio_text,
                Some("respuesta automática"),
            ));
        }
        let user = match Email::parse(&m.sender) {
            Ok(e) => self.store.user_by_email(&e).await?,
            Err(_) => None,
        }
        .filter(|u| u.active && u.role == Role::Agency);
        let Some(folio_text) = folio_text else {
            return self.new_report(m, user, &verdict, digest).await;
        };
        let Ok(folio) = Folio::parse(folio_text) else {
            return Ok(outcome(
                InboundDisposition::Triage,
                Some(folio_text),
                Some("folio no válido"),
            ));
        };
        let Some(stored) = self.store.load_fresh(folio).await? else {
            return Ok(outcome(
                InboundDisposition::Triage,
                Some(folio_text),
                Some("folio desconocido"),
            ));
        };
        let Some(user) = user else {
            return Ok(outcome(
                InboundDisposition::Triage,
                Some(folio_text),
                Some("remitente desconocido"),
            ));
        };
        if user.agency_id != Some(stored.incident.agency_id) {
            return Ok(outcome(
                InboundDisposition::Triage,
                Some(folio_text),
                Some("el remitente no es de la dependencia de la incidencia"),
            ));
        }
        if m.replied.as_ref().map(|r| r.kind.as_str()) != Some("notification") {
            return Ok(outcome(
                InboundDisposition::Recorded,
                Some(folio_text),
                None,
            ));
        }
        let caller = Caller::from(&user);
        let (ack, resolved) = intents(&m.new_text);
        // This very message may have acted already (taken concurrently, or before a crash
        // kept it from being recorded): its answer stands, whatever the state is now.
        if (ack || resolved) && self.replay(&caller, &once(digest)).await?.is_some() {
            let done = if ack {
                InboundDisposition::Acknowledged
            } else {
                InboundDisposition::ResolutionNotified
            };
            return Ok(outcome(done, Some(folio_text), None));
        }
        let (command, done) = match (ack, resolved) {
            (true, true) => {
                return Ok(outcome(
                    InboundDisposition::Triage,
                    Some(folio_text),
                    Some("respuesta ambigua: confirma de enterado y avisa resolución"),
                ));
            }
            (true, false) if stored.incident.state == IncidentState::AwaitingAck => {
                (Command::Acknowledge, InboundDisposition::Acknowledged)
            }
            (false, true) => (
                Command::NotifyResolution {
                    summary: clean(&m.new_text, 10_000),
                },
                InboundDisposition::ResolutionNotified,
            ),
            _ => {
                return Ok(outcome(
                    InboundDisposition::Recorded,
                    Some(folio_text),
                    None,
                ));
            }
        };
        // Only a sender someone vouches for acts; the rest is kept on the incident.
        if let Verdict::Unknown(why) = &verdict
            && !self.answers_our_message(m).await?
        {
            tracing::warn!(sender = ?m.sender, folio = folio_text, reason = %why,
                "respuesta sin autenticar: se registra y no actúa");
            return Ok(outcome(
                InboundDisposition::Recorded,
                Some(folio_text),
                Some(&format!(
                    "no actúa: no se pudo comprobar el remitente ({why}) y no responde a un \
                     correo firmado de este sistema"
                )),
            ));
        }
        let via = Via::Email {
            message_sha256: digest.to_string(),
        };
        match self
            .act_via(&caller, folio, command, once(digest), via)
            .await
        {
            Ok(_) => Ok(outcome(done, Some(folio_text), None)),
            Err(
                e @ (ServiceError::InvalidTransition { .. }
                | ServiceError::Invalid(_)
                | ServiceError::Forbidden(_)),
            ) => Ok(outcome(
                InboundDisposition::Recorded,
                Some(folio_text),
                Some(&e.to_string()),
            )),
            Err(e) => Err(e),
        }
    }

    /// Whether `m` names the mark of one of our messages (`links::LinkSigner`) and its
    /// sender was among that message's recipients.
    async fn answers_our_message(&self, m: &Inbound) -> Result<bool, ServiceError> {
        let Some((replied, mark)) = m
            .replied
            .as_ref()
            .and_then(|r| r.mark.as_ref().map(|mark| (r, mark)))
        else {
            return Ok(false);
        };
        if !self.signer().await?.check_mark(&replied.base, mark) {
            tracing::warn!(sender = ?m.sender, folio = %replied.folio,
                "respuesta con una marca de Message-ID falsa");
            return Ok(false);
        }
        let bare = |a: &str| {
            a.rsplit_once('<')
                .map_or(a, |(_, rest)| rest.trim_end_matches('>'))
                .trim()
                .to_lowercase()
        };
        Ok(self
            .store
            .outbox_of(&replied.folio)
            .await?
            .iter()
            .filter(|row| row.message_id == replied.stored_id)
            .flat_map(|row| row.to.iter().chain(&row.cc))
            .any(|a| bare(a) == m.sender))
    }

    /// A message without a folio: a new report if an agency user names one of their
    /// procedures (by homoclave) and the receiving server vouches for the sender;
    /// otherwise triage.
    async fn new_report(
        &self,
        m: &Inbound,
        user: Option<crate::store::User>,
        verdict: &Verdict,
        digest: &str,
    ) -> Result<InboundOutcome, ServiceError> {
        let Some(user) = user else {
            return Ok(outcome(
                InboundDisposition::Triage,
                None,
                Some("sin folio y de un remitente desconocido"),
            ));
        };
        if let Verdict::Unknown(why) = verdict {
            tracing::warn!(sender = ?m.sender, reason = %why,
                "reporte por correo sin autenticar: queda en revisión");
            return Ok(outcome(
                InboundDisposition::Triage,
                None,
                Some(&format!(
                    "reporte nuevo de un remitente que no se pudo comprobar ({why})"
                )),
            ));
        }
        let text = m.searchable.to_uppercase();
        let procedures: Vec<_> = self
            .store
            .procedures()
            .await?
            .into_iter()
            .filter(|p| Some(p.agency_id) == user.agency_id && text.contains(p.homoclave.as_str()))
            .map(|p| p.id)
            .collect();
        if procedures.is_empty() {
            return Ok(outcome(
                InboundDisposition::Triage,
                None,
                Some("sin folio y sin la homoclave de un trámite de la dependencia"),
            ));
        }
        let description = clean(&format!("{}\n\n{}", m.subject, m.new_text), 10_000);
        let reply = self
            .report_via(
                &Caller::from(&user),
                NewIncidentInput {
                    procedure_ids: procedures,
                    kind: guess_kind(&m.searchable),
                    description,
                    occurred_at: first_guess(m.date, self.now()),
                    channel: Channel::Email,
                },
                once(digest),
                Via::Email {
                    message_sha256: digest.to_string(),
                },
            )
            .await?;
        let folio = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["folio"].as_str().map(str::to_string));
        Ok(InboundOutcome {
            outcome: InboundDisposition::NewIncident,
            folio,
            reason: None,
        })
    }
}
