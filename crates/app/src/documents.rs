//! The documents the API answers with (and the web UI will show): views of the core's
//! state at an instant, with their OpenAPI schemas. Instants are RFC 3339 in UTC.

use incidencias_core::portal::ProcedureStatus;
use incidencias_core::report_form::{FormProblem, check};
use incidencias_core::{
    Clock, ClosingCondition, Incident, IncidentReport, closing_conditions_unmet,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentDoc {
    #[schema(example = "INC-2026-000123")]
    pub folio: String,
    /// `reported`, `awaiting_ack`, `in_correction`, `awaiting_validation`, `validated`,
    /// `closed`, `dismissed`.
    pub state: String,
    /// `critical`, `high`, `medium`, `low`; null until notified.
    pub severity: Option<String>,
    /// `unavailable`, `intermittent`, `slow`, `cannot_complete`.
    pub kind: String,
    pub agency_id: i64,
    pub procedure_ids: Vec<i64>,
    pub description: String,
    /// `email`, `phone`, `web`, `api`, `monitor`.
    pub channel: String,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    /// False while `occurred_at` is only the first guess of a report by email (the
    /// message's date); the help desk confirms or corrects it when notifying.
    pub occurred_at_confirmed: bool,
    #[schema(value_type = String, format = DateTime)]
    pub reported_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub notified_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    pub dismissal_reason: Option<String>,
    /// Version of the SLO policy the incident keeps since its notification.
    pub policy_version: Option<u32>,
    pub escalation_level: u32,
    /// Validation rounds opened, the one awaiting a verdict included: each resolution
    /// notice opens one (0 before the first; 1 while the first awaits CEDN's verdict; 2
    /// after a failed validation and a new notice).
    pub validation_rounds: u32,
    /// Number of events; changes with every action.
    pub version: u64,
    pub portal: PortalDoc,
    pub report_form: ReportFormDoc,
    pub rounds: Vec<RoundDoc>,
    pub clocks: Vec<ClockDoc>,
    /// What the closing rule still needs (empty: step 7 may be done).
    pub closing_unmet: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PortalDoc {
    pub button_enabled: bool,
    pub banner_shown: bool,
    pub banner_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportFormDoc {
    /// `not_due`, `due`, `submitted`, `incomplete`, `accepted`.
    pub state: String,
    /// Fields the help desk asked to complete.
    pub requested: Vec<String>,
    /// Fields the system finds missing or contradictory in the submitted form.
    pub issues: Vec<FormIssueDoc>,
    pub form: Option<ReportFormBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FormIssueDoc {
    pub field: String,
    /// Spanish explanation.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundDoc {
    pub round: u32,
    #[schema(value_type = String, format = DateTime)]
    pub notified_at: Timestamp,
    pub summary: String,
    pub passed: Option<bool>,
    pub observations: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClockDoc {
    /// `report`, `ack`, `resolution`, `validation`, `report_form`.
    pub name: String,
    /// Validation round (1, 2, ...); 0 for the other clocks.
    pub round: u32,
    /// `running`, `paused`, `met`, `breached`.
    pub state: String,
    pub target_s: u32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When the target is reached if the clock keeps running (null when paused or stopped).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub stopped_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub breached_at: Option<Timestamp>,
    pub elapsed_s: i64,
}

/// The incident report form (step 6). With `draft: true` the agency saves its work
/// without delivering it (every field may be left out; no clock effect, no email);
/// otherwise the form is delivered, and only a complete form can be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReportFormBody {
    /// Fecha y hora de detección.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(deserialize_with = "instant::deserialize_option")]
    pub detected_at: Option<Timestamp>,
    /// Fecha y hora de restablecimiento del servicio.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(deserialize_with = "instant::deserialize_option")]
    pub restored_at: Option<Timestamp>,
    /// Descripción de la falla observada.
    pub symptoms: String,
    /// Impacto (usuarios o transacciones afectadas, estimado).
    pub impact: String,
    /// Causa raíz.
    pub root_cause: String,
    /// Acciones aplicadas para la resolución.
    pub actions_taken: Vec<String>,
    /// Verificación y validación realizadas por la dependencia.
    pub verification: String,
    /// Acciones preventivas para evitar recurrencia.
    pub preventive_actions: String,
    pub prepared_by_name: String,
    pub prepared_by_position: String,
    /// Evidencias (opcional).
    pub attachments: Vec<String>,
    /// Save without delivering (default false: deliver). Only read: the form's state says
    /// whether a kept form is a draft.
    #[serde(skip_serializing)]
    pub draft: bool,
}

impl From<ReportFormBody> for IncidentReport {
    fn from(b: ReportFormBody) -> IncidentReport {
        IncidentReport {
            detected_at: b.detected_at,
            restored_at: b.restored_at,
            symptoms: b.symptoms,
            impact: b.impact,
            root_cause: b.root_cause,
            actions_taken: b.actions_taken,
            verification: b.verification,
            preventive_actions: b.preventive_actions,
            prepared_by_name: b.prepared_by_name,
            prepared_by_position: b.prepared_by_position,
            attachments: b.attachments,
        }
    }
}

impl From<&IncidentReport> for ReportFormBody {
    fn from(r: &IncidentReport) -> ReportFormBody {
        ReportFormBody {
            detected_at: r.detected_at,
            restored_at: r.restored_at,
            symptoms: r.symptoms.clone(),
            impact: r.impact.clone(),
            root_cause: r.root_cause.clone(),
            actions_taken: r.actions_taken.clone(),
            verification: r.verification.clone(),
            preventive_actions: r.preventive_actions.clone(),
            prepared_by_name: r.prepared_by_name.clone(),
            prepared_by_position: r.prepared_by_position.clone(),
            attachments: r.attachments.clone(),
            draft: false,
        }
    }
}

fn clock_doc(c: &Clock, now: Timestamp) -> ClockDoc {
    ClockDoc {
        name: c.id.name.as_str().to_string(),
        round: c.id.round,
        state: c.state(now).as_str().to_string(),
        target_s: c.target_s,
        started_at: c.started_at,
        due_at: if c.is_stopped() {
            None
        } else {
            c.instant_at_elapsed(c.target_ms())
        },
        stopped_at: c.stopped_at,
        breached_at: c.breached_at.or_else(|| {
            (c.elapsed_ms(now) >= c.target_ms())
                .then(|| c.crossing(c.target_ms()))
                .flatten()
        }),
        elapsed_s: c.elapsed_s(now),
    }
}

impl IncidentDoc {
    /// The document of `incident` as seen at `now` (clocks' elapsed time and states).
    pub fn of(incident: &Incident, now: Timestamp) -> IncidentDoc {
        let form = &incident.report_form;
        let issues = match (&form.form, form.state) {
            (
                Some(f),
                incidencias_core::ReportFormState::Submitted
                | incidencias_core::ReportFormState::Incomplete,
            ) => check(f, &incident.form_context())
                .into_iter()
                .map(|i| FormIssueDoc {
                    field: i.field.as_str().to_string(),
                    message: match i.problem {
                        FormProblem::Missing => "falta".to_string(),
                        FormProblem::Contradictory(why) => why.to_string(),
                    },
                })
                .collect(),
            _ => Vec::new(),
        };
        IncidentDoc {
            folio: incident.folio.to_string(),
            state: incident.state.as_str().to_string(),
            severity: incident.severity.map(|s| s.as_str().to_string()),
            kind: incident.kind.as_str().to_string(),
            agency_id: incident.agency_id.0,
            procedure_ids: incident.procedure_ids.iter().map(|p| p.0).collect(),
            description: incident.description.clone(),
            channel: incident.channel.as_str().to_string(),
            occurred_at: incident.occurred_at,
            occurred_at_confirmed: incident.occurred_at_confirmed,
            reported_at: incident.reported_at,
            notified_at: incident.notified_at,
            acknowledged_at: incident.acknowledged_at,
            closed_at: incident.closed_at,
            dismissal_reason: incident.dismissal_reason.clone(),
            policy_version: incident.policy.as_ref().map(|p| p.version),
            escalation_level: incident.escalation_level,
            validation_rounds: incident.validation_rounds(),
            version: incident.version,
            portal: PortalDoc {
                button_enabled: incident.portal.button_enabled,
                banner_shown: incident.portal.banner_shown,
                banner_message: incident.portal.banner_message.clone(),
            },
            report_form: ReportFormDoc {
                state: form.state.as_str().to_string(),
                requested: form.requested.clone(),
                issues,
                form: form.form.as_ref().map(ReportFormBody::from),
            },
            rounds: incident
                .rounds
                .iter()
                .map(|r| RoundDoc {
                    round: r.round,
                    notified_at: r.notified_at,
                    summary: r.summary.clone(),
                    passed: r.passed,
                    observations: r.observations.clone(),
                    decided_at: r.decided_at,
                })
                .collect(),
            clocks: incident.clocks.iter().map(|c| clock_doc(c, now)).collect(),
            closing_unmet: if incident.state.is_terminal() {
                Vec::new()
            } else {
                closing_conditions_unmet(incident)
                    .into_iter()
                    .map(|c: ClosingCondition| c.as_str().to_string())
                    .collect()
            },
        }
    }
}

/// What the portal reads for one procedure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicStatusDoc {
    #[schema(example = "SEGOB-01-001")]
    pub homoclave: String,
    pub button_enabled: bool,
    pub banner: BannerDoc,
    /// The open incident behind the status, if any.
    pub incident: Option<PublicIncidentDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BannerDoc {
    pub shown: bool,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicIncidentDoc {
    pub folio: String,
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
}

impl PublicStatusDoc {
    pub fn of(homoclave: &str, status: ProcedureStatus) -> PublicStatusDoc {
        PublicStatusDoc {
            homoclave: homoclave.to_string(),
            button_enabled: status.button_enabled,
            banner: BannerDoc {
                shown: status.banner_shown,
                message: status.banner_message,
            },
            incident: status
                .incident
                .zip(status.since)
                .map(|(folio, since)| PublicIncidentDoc {
                    folio: folio.to_string(),
                    since,
                }),
        }
    }
}

/// Every published procedure's state, for the portal in one request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicProceduresDoc {
    pub procedures: Vec<PublicProcedureDoc>,
}

/// One procedure as citizens see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicProcedureDoc {
    #[schema(example = "SEGOB-01-001")]
    pub homoclave: String,
    pub name: String,
    pub url: String,
    pub agency_acronym: String,
    pub agency_name: String,
    /// `operating`, `incident` (the button is disabled), `maintenance` (usable, with the
    /// banner shown).
    pub state: String,
    pub button_enabled: bool,
    pub banner: BannerDoc,
    /// Since when the published incident behind the state (null when operating).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
}

/// One event of an incident's record, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventDoc {
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `{"type": "user", "id", "role", "agency"}` or `{"type": "system"}`.
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    /// The acting person's name (null for the system).
    pub actor_name: Option<String>,
    /// How the request arrived: `{"channel": "api" | "web" | "link"}` or `{"channel":
    /// "email", "message_sha256"}` (the received message's hash); null for the system's
    /// own acts and for events recorded before it was kept.
    #[schema(value_type = Option<Object>)]
    pub via: Option<serde_json::Value>,
    pub kind: String,
    /// What the event records; null for events that carry nothing besides their kind.
    #[schema(value_type = Option<Object>)]
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<crate::store::StoredEvent> for EventDoc {
    fn from(e: crate::store::StoredEvent) -> EventDoc {
        let mut actor: serde_json::Value =
            serde_json::from_str(&e.actor).unwrap_or(serde_json::Value::Null);
        let via = actor.as_object_mut().and_then(|a| a.remove("via"));
        EventDoc {
            seq: e.seq,
            at: Timestamp::from_millisecond(e.at).unwrap_or(Timestamp::UNIX_EPOCH),
            actor,
            actor_name: None,
            via,
            kind: e.kind,
            data: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

mod catalog;
pub use catalog::{AdminChangeDoc, AgencyDoc, ProcedureDoc, UserDoc};
pub mod instant;
mod mail;
pub use mail::{
    InboundDoc, OutboxDoc, OutboxPreview, ReceivedDoc, ReportSuggestion, TriageItem,
    TriageSuggestion,
};
