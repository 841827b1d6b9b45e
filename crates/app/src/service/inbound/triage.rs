//! The help desk's triage of received mail: the queue of messages the router could not
//! decide, the message as received, and the three ways to resolve one (record it on an
//! incident, open an incident from it, discard it with a reason). A resolution is written
//! once, with who and when, on the message's row; nothing is deleted and the row keeps
//! the outcome the router gave it (`triage`), so the received list still tells what
//! happened on receipt and what the help desk did after.

use incidencias_core::{Channel, Folio, Role, Via};

use super::read::{self, MAX_MESSAGE_BYTES};
use super::{NewIncidentInput, Service, ServiceError, clean, guess_kind};
use crate::documents::{ReceivedDoc, ReportSuggestion, TriageItem, TriageSuggestion};
use crate::service::{Caller, IdemRequest};
use crate::store::{
    Agency, InboundDisposition, InboundRow, Procedure, TriageAction, TriageResolution,
};

/// Who may read the queue and the messages (the help desk works it; administrators look).
const READERS: &[Role] = &[Role::Helpdesk, Role::Admin];
/// Who may resolve a message: the help desk, whose desk it is (and who reports incidents).
const ACTORS: &[Role] = &[Role::Helpdesk];

/// The most rows one queue page answers.
const MAX_QUEUE: i64 = 500;

/// What a message says, as far as a suggestion cares.
struct Said<'a> {
    sender: &'a str,
    subject: &'a str,
    /// What the sender wrote, without the quoted reply.
    new_text: &'a str,
    /// Subject and whole text, for finding a homoclave.
    searchable: &'a str,
    date: Option<jiff::Timestamp>,
    received_at: jiff::Timestamp,
}

/// The procedure a message points to: by a homoclave it names (any agency's), else by the
/// agency of the sender's mail domain when that agency has exactly one procedure.
fn suggest(said: &Said<'_>, procedures: &[Procedure], agencies: &[Agency]) -> ReportSuggestion {
    let text = said.searchable.to_uppercase();
    let domain = said
        .sender
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('>').to_lowercase())
        .unwrap_or_default();
    let sender_agency = agencies.iter().find(|a| {
        a.email_domains.iter().any(|d| {
            let d = d.to_lowercase();
            domain == d || domain.ends_with(&format!(".{d}"))
        })
    });
    let named: Vec<&Procedure> = procedures
        .iter()
        .filter(|p| text.contains(p.homoclave.as_str()))
        .collect();
    // Of several named, the sender's agency's first: a message may quote another's.
    let by_homoclave = named
        .iter()
        .find(|p| sender_agency.is_some_and(|a| a.id == p.agency_id))
        .or(named.first());
    let (procedure, agency_id, reason) = match (by_homoclave, sender_agency) {
        (Some(p), _) => (
            Some(p.id.0),
            Some(p.agency_id.0),
            format!(
                "el mensaje menciona la homoclave {} ({})",
                p.homoclave.as_str(),
                p.name
            ),
        ),
        (None, Some(a)) => {
            let own: Vec<&Procedure> = procedures.iter().filter(|p| p.agency_id == a.id).collect();
            match own.as_slice() {
                [only] => (
                    Some(only.id.0),
                    Some(a.id.0),
                    format!(
                        "el remitente es de {} ({}), cuyo único trámite es {} ({})",
                        a.name,
                        a.acronym,
                        only.homoclave.as_str(),
                        only.name
                    ),
                ),
                _ => (
                    None,
                    Some(a.id.0),
                    format!(
                        "el remitente es de {} ({}), que tiene {} trámites; elija cuál",
                        a.name,
                        a.acronym,
                        own.len()
                    ),
                ),
            }
        }
        (None, None) => (
            None,
            None,
            "el mensaje no menciona la homoclave de un trámite y el dominio del remitente no \
             es de una dependencia registrada"
                .to_string(),
        ),
    };
    ReportSuggestion {
        procedure_id: procedure,
        agency_id,
        reason,
        kind: guess_kind(said.searchable).as_str().to_string(),
        description: clean(&format!("{}\n\n{}", said.subject, said.new_text), 10_000),
        // The message's date, unless it claims to be from after its receipt (a skewed
        // clock): an incident cannot have begun later than the email reporting it.
        occurred_at: said
            .date
            .filter(|d| *d <= said.received_at)
            .unwrap_or(said.received_at),
    }
}

/// Why a message cannot be resolved now, in Spanish.
fn not_pending(row: &InboundRow) -> Option<ServiceError> {
    if let Some(t) = &row.triage {
        let what = match t.action {
            TriageAction::Attached => "se registró en una incidencia",
            TriageAction::Opened => "se abrió una incidencia con él",
            TriageAction::Discarded => "se descartó",
        };
        return Some(ServiceError::Conflict(format!(
            "este correo ya se resolvió: {what} ({})",
            crate::service::notify::render::local(Some(t.at))
        )));
    }
    let done = match row.record.outcome {
        InboundDisposition::Triage => return None,
        InboundDisposition::Acknowledged => "confirmó de enterado su incidencia",
        InboundDisposition::ResolutionNotified => "avisó la resolución de su incidencia",
        InboundDisposition::Recorded => "se registró en su incidencia",
        InboundDisposition::NewIncident => "abrió una incidencia",
    };
    Some(ServiceError::Conflict(format!(
        "este correo no está en revisión: al recibirlo {done}"
    )))
}

/// A note or reason as kept: one paragraph of at most 2,000 characters, `None` if blank.
fn note_of(text: Option<&str>) -> Option<String> {
    text.map(|t| clean(t, 2000)).filter(|t| !t.is_empty())
}

impl Service {
    /// Whether the caller may attach, open or discard a message under review (the pages
    /// show those forms only then).
    pub fn may_resolve_triage(&self, caller: &Caller) -> bool {
        ACTORS.contains(&caller.role)
    }

    /// The procedures and agencies a suggestion may name: only those that can take a new
    /// report.
    async fn suggestable(
        &self,
    ) -> Result<(Vec<crate::store::Procedure>, Vec<crate::store::Agency>), ServiceError> {
        let procedures = self.store.procedures().await?;
        let agencies = self.store.agencies().await?;
        Ok((
            procedures.into_iter().filter(|p| p.active).collect(),
            agencies.into_iter().filter(|a| a.active).collect(),
        ))
    }

    /// Messages waiting in the triage queue (outcome `triage`, not yet resolved), newest
    /// first; `before_id` pages by id. Help desk and admin.
    pub async fn triage_queue(
        &self,
        caller: &Caller,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TriageItem>, ServiceError> {
        caller.require(READERS, "consultar los correos en revisión")?;
        if !(1..=MAX_QUEUE).contains(&limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("debe estar entre 1 y {MAX_QUEUE}"),
            ));
        }
        let rows = self.store.triage_pending(before_id, limit).await?;
        let (procedures, agencies) = self.suggestable().await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let m = &row.record;
            let attach_to = match m.folio.as_deref().map(Folio::parse) {
                Some(Ok(folio)) => self
                    .store
                    .load_fresh(folio)
                    .await?
                    .map(|_| folio.to_string()),
                _ => None,
            };
            // From the stored fields: reading every message's bytes for a list would
            // cost up to 10 MB a row. `suggest_report` reads the whole message.
            let searchable = format!("{}\n{}", m.subject, m.excerpt);
            let report = suggest(
                &Said {
                    sender: &m.sender,
                    subject: &m.subject,
                    new_text: &m.excerpt,
                    searchable: &searchable,
                    date: None,
                    received_at: m.received_at,
                },
                &procedures,
                &agencies,
            );
            items.push(TriageItem {
                id: row.id,
                received_at: m.received_at,
                sender: m.sender.clone(),
                subject: m.subject.clone(),
                excerpt: m.excerpt.clone(),
                reason: m.reason.clone(),
                folio: m.folio.clone(),
                suggestion: TriageSuggestion { attach_to, report },
            });
        }
        Ok(items)
    }

    /// One received message, as kept. Help desk and admin; 404 for an unknown id.
    pub async fn received_one(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<ReceivedDoc, ServiceError> {
        caller.require(READERS, "consultar los correos recibidos")?;
        Ok(self.inbound_row(id).await?.into())
    }

    async fn inbound_row(&self, id: i64) -> Result<InboundRow, ServiceError> {
        self.store
            .inbound(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("el correo recibido".into()))
    }

    /// The message as received (headers and body), as text: bytes that are not UTF-8
    /// show as U+FFFD. 404 for an unknown id, or for a message whose bytes were not kept
    /// (received before they were, or larger than 10 MB). Help desk and admin.
    pub async fn inbound_raw(&self, caller: &Caller, id: i64) -> Result<String, ServiceError> {
        caller.require(READERS, "consultar los correos recibidos")?;
        match self.store.inbound_raw(id).await? {
            None => Err(ServiceError::NotFound("el correo recibido".into())),
            Some(None) => Err(ServiceError::NotFound(
                "el mensaje original de este correo (no se guardó al recibirlo)".into(),
            )),
            Some(Some(raw)) => Ok(String::from_utf8_lossy(&raw).into_owned()),
        }
    }

    /// A first draft of the report a message in triage could open: the procedure from a
    /// homoclave in its subject or body, else from the agency of the sender's mail domain
    /// (when it has exactly one procedure); the description from its text; `occurred_at`
    /// from its `Date`. Read from the whole message when its bytes were kept. Help desk
    /// and admin.
    pub async fn suggest_report(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<ReportSuggestion, ServiceError> {
        caller.require(READERS, "consultar los correos recibidos")?;
        let row = self.inbound_row(id).await?;
        let raw = self.store.inbound_raw(id).await?.flatten();
        let parsed = raw.as_deref().and_then(|r| read::read(r).ok());
        let (procedures, agencies) = self.suggestable().await?;
        let m = &row.record;
        let fallback = format!("{}\n{}", m.subject, m.excerpt);
        let said = match &parsed {
            Some(p) => Said {
                sender: &p.sender,
                subject: &p.subject,
                new_text: &p.new_text,
                searchable: &p.searchable,
                date: p.date,
                received_at: m.received_at,
            },
            None => Said {
                sender: &m.sender,
                subject: &m.subject,
                new_text: &m.excerpt,
                searchable: &fallback,
                date: None,
                received_at: m.received_at,
            },
        };
        Ok(suggest(&said, &procedures, &agencies))
    }

    /// Records a message in triage on incident `folio` (it then shows among the incident's
    /// messages, like a reply recorded on receipt) and resolves it, with `note`. Help
    /// desk; a resolved message is a conflict; 404 for an unknown message or incident.
    pub async fn attach_inbound(
        &self,
        caller: &Caller,
        id: i64,
        folio: Folio,
        note: Option<&str>,
    ) -> Result<ReceivedDoc, ServiceError> {
        caller.require(ACTORS, "resolver correos en revisión")?;
        let row = self.inbound_row(id).await?;
        if let Some(refused) = not_pending(&row) {
            return Err(refused);
        }
        self.visible(caller, folio).await?;
        self.resolve(
            caller,
            id,
            TriageAction::Attached,
            note_of(note),
            Some(folio.to_string()),
        )
        .await
    }

    /// Sets a message in triage aside; `reason` is required and kept. Help desk; a
    /// resolved message is a conflict.
    pub async fn discard_inbound(
        &self,
        caller: &Caller,
        id: i64,
        reason: &str,
    ) -> Result<ReceivedDoc, ServiceError> {
        caller.require(ACTORS, "resolver correos en revisión")?;
        let Some(reason) = note_of(Some(reason)) else {
            return Err(ServiceError::invalid(
                "reason",
                "indique el motivo por el que se descarta el correo",
            ));
        };
        let row = self.inbound_row(id).await?;
        if let Some(refused) = not_pending(&row) {
            return Err(refused);
        }
        self.resolve(caller, id, TriageAction::Discarded, Some(reason), None)
            .await
    }

    /// Reports an incident from a message in triage (step 1 by the help desk, channel
    /// `email` whatever `input` says, the event tied to the message by its hash) and
    /// resolves the message with the new folio. Help desk; a resolved message is a
    /// conflict. The report carries the idempotency key `triaje:<id>`: the same request
    /// again (a double click, a retry after a failure between the report and the
    /// resolution) answers the same incident instead of opening a second one.
    pub async fn open_incident_from_inbound(
        &self,
        caller: &Caller,
        id: i64,
        input: NewIncidentInput,
    ) -> Result<ReceivedDoc, ServiceError> {
        caller.require(ACTORS, "resolver correos en revisión")?;
        let row = self.inbound_row(id).await?;
        if let Some(refused) = not_pending(&row) {
            return Err(refused);
        }
        let input = NewIncidentInput {
            channel: Channel::Email,
            ..input
        };
        let via = match &row.record.raw_sha256 {
            Some(digest) => Via::Email {
                message_sha256: digest.clone(),
            },
            None => Via::Api,
        };
        let idem = Some(IdemRequest {
            key: format!("triaje:{id}"),
            request_hash: crate::encoding::sha256_hex(format!("{id}:{input:?}").as_bytes()),
        });
        let reply = self.report_via(caller, input, idem, via).await?;
        let folio = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["folio"].as_str().map(str::to_string))
            .ok_or_else(|| ServiceError::Internal("reporte sin folio".into()))?;
        self.resolve(caller, id, TriageAction::Opened, None, Some(folio))
            .await
    }

    /// Writes the resolution once; a concurrent resolution that won is a conflict.
    async fn resolve(
        &self,
        caller: &Caller,
        id: i64,
        action: TriageAction,
        note: Option<String>,
        folio: Option<String>,
    ) -> Result<ReceivedDoc, ServiceError> {
        let resolution = TriageResolution {
            at: self.now(),
            by: caller.id.0,
            action,
            note,
        };
        let opened = folio.clone().filter(|_| action == TriageAction::Opened);
        if !self.store.resolve_triage(id, resolution, folio).await? {
            return Err(ServiceError::Conflict(match opened {
                Some(f) => format!(
                    "otra persona resolvió este correo mientras se abría la incidencia {f}; \
                     revise si debe descartarla"
                ),
                None => "otra persona resolvió este correo al mismo tiempo".into(),
            }));
        }
        tracing::info!(
            id,
            action = action.as_str(),
            by = caller.id.0,
            "correo en revisión resuelto"
        );
        Ok(self.inbound_row(id).await?.into())
    }
}

/// Bytes kept for the help desk: a message within the size the router reads.
pub(super) fn kept(raw: &[u8]) -> Option<Vec<u8>> {
    (raw.len() <= MAX_MESSAGE_BYTES).then(|| raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use incidencias_core::{AgencyId, Homoclave, ProcedureId, UserId};

    fn procedure(id: i64, homoclave: &str, agency: i64) -> Procedure {
        Procedure {
            id: ProcedureId(id),
            homoclave: Homoclave::parse(homoclave).expect("homoclave"),
            name: format!("Trámite {id}"),
            agency_id: AgencyId(agency),
            url: "https://www.gob.mx/x".into(),
            responsible_id: UserId(1),
            active: true,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn agency(id: i64, acronym: &str, domain: &str) -> Agency {
        Agency {
            id: AgencyId(id),
            name: format!("Secretaría {acronym}"),
            acronym: acronym.into(),
            email_domains: vec![domain.into()],
            active: true,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn said<'a>(sender: &'a str, text: &'a str) -> Said<'a> {
        Said {
            sender,
            subject: "Falla",
            new_text: text,
            searchable: text,
            date: "2026-11-27T10:00:00Z".parse().ok(),
            received_at: "2026-11-27T09:00:00Z".parse().expect("instant"),
        }
    }

    #[test]
    fn homoclave_then_domain_then_nothing() {
        let procedures = [
            procedure(1, "SEPRU-01-001", 1),
            procedure(2, "OTRA-01-001", 2),
            procedure(3, "OTRA-01-002", 2),
        ];
        let agencies = [
            agency(1, "SEPRU", "sepru.gob.mx"),
            agency(2, "OTRA", "otra.gob.mx"),
        ];
        let s = suggest(
            &said("x@gmail.com", "falla en otra-01-002"),
            &procedures,
            &agencies,
        );
        assert_eq!(s.procedure_id, Some(3), "{s:?}");
        let s = suggest(
            &said("a@mail.sepru.gob.mx", "no abre"),
            &procedures,
            &agencies,
        );
        assert_eq!((s.procedure_id, s.agency_id), (Some(1), Some(1)), "{s:?}");
        let s = suggest(&said("a@otra.gob.mx", "no abre"), &procedures, &agencies);
        assert_eq!((s.procedure_id, s.agency_id), (None, Some(2)), "{s:?}");
        assert!(s.reason.contains("OTRA"), "{s:?}");
        let s = suggest(&said("a@gmail.com", "no abre"), &procedures, &agencies);
        assert_eq!((s.procedure_id, s.agency_id), (None, None), "{s:?}");
        // A Date after receipt is a skewed clock: the receipt stands.
        assert_eq!(s.occurred_at, said("", "").received_at);
    }
}
