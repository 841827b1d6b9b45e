//! Which emails the protocol sends, to whom, saying what: the step and exception tables
//! (from an incident's new events) and the scheduler's warnings and escalations (from a
//! fired action), composed here and nowhere else. Each email is a [`Notice`]: a typed
//! message with exactly the data its template needs, so a template without its data does
//! not compile. It is written to the outbox in the same transaction as its events (kind in
//! its own column, the rest as the JSON payload) and rendered ([`render`]) when sent, so a
//! template fix reaches mail still queued.

pub mod render;

use incidencias_core::escalation::{ActionKind, DueAction};
use incidencias_core::{Change, ClockId, Event, Incident, UserId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{LinkMaker, OrgChart};
use crate::links::LinkAction;
use crate::store::NewOutboxMessage;

/// What every email says about its incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    /// The incident's folio: the subject starts with it.
    pub folio: String,
    /// `critical`, `high`, `medium`, `low`; none before the notification.
    pub severity: Option<String>,
    /// The procedures affected, as people name them (`homoclave name, ...`).
    pub procedures: String,
}

/// One email of the protocol and the data its template shows. The variant's name (snake
/// case) is the outbox row's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Step 1, to the help desk.
    Reported { description: String },
    /// Step 1 (formal notification), to the responsible, with one-click links.
    Notification {
        ack_due_at: Option<Timestamp>,
        resolution_due_at: Option<Timestamp>,
        /// Signed tokens for `/acciones/{token}`; none when links cannot be signed.
        ack_link: Option<String>,
        resolution_link: Option<String>,
        /// The portal button was kept enabled (a `slow` incident): the email says so
        /// instead of announcing it disabled. Absent in rows queued before it existed.
        #[serde(default)]
        button_kept: bool,
    },
    /// Severity changed by the help desk, to the responsible.
    SeverityChanged { reason: String },
    /// Step 2 done, to the help desk.
    Acknowledged,
    /// Step 3, to the help desk.
    Resolution { summary: String },
    /// Step 3 (request to CEDN), one per validation round.
    ValidationRequest {
        round: u32,
        validation_due_at: Option<Timestamp>,
    },
    /// Steps 4-5, validation passed, to the responsible.
    ValidationPassed,
    /// Exception: persistence (validation failed), to the responsible.
    Persistence { observations: String },
    /// Step 6, the report form delivered, to the help desk.
    ReportFormSubmitted,
    /// Exception: incomplete form, to the responsible.
    ReportFormIncomplete {
        /// The fields requested, comma separated.
        missing: String,
        message: Option<String>,
    },
    /// Step 6, the form accepted, to the responsible.
    ReportFormAccepted,
    /// Step 7, to the responsible.
    Closed,
    /// A report dismissed after its notification, to the responsible and CEDN: the portal
    /// was restored automatically.
    Dismissed { reason: String },
    /// A clock at its warning ratio, to whoever must act.
    SloWarning {
        /// The clock's name (`ack`, `resolution`, `validation#2`, ...).
        clock: String,
        /// When the warning was due.
        due_at: Timestamp,
        /// The deadline itself (a warning comes before it).
        target_at: Option<Timestamp>,
    },
    /// Exception: escalation to a superior, automatic (a breached clock) or by hand.
    Escalation {
        /// The breached clock; none when escalated by hand.
        clock: Option<String>,
        level: u32,
        /// The help desk's reason, for an escalation by hand.
        reason: Option<String>,
        /// When an automatic escalation was due.
        due_at: Option<Timestamp>,
        target_at: Option<Timestamp>,
    },
}

/// An email about an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    #[serde(flatten)]
    pub about: About,
    #[serde(flatten)]
    pub message: Message,
}

impl Notice {
    /// The template's name: the outbox row's `kind`.
    pub fn kind(&self) -> String {
        match serde_json::to_value(&self.message) {
            Ok(serde_json::Value::Object(map)) => map
                .get("kind")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    /// The notice of an outbox row: its `kind` and payload. An unknown kind or a payload
    /// without the data its template needs is an error, never a blank email.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Result<Notice, String> {
        let mut data = payload.clone();
        match data.as_object_mut() {
            Some(map) => {
                map.insert("kind".into(), kind.into());
            }
            None => return Err(format!("el correo «{kind}» no tiene datos")),
        }
        serde_json::from_value(data)
            .map_err(|e| format!("el correo «{kind}» no se puede leer: {e}"))
    }

    /// The payload kept in the outbox (everything but the kind, which has its column).
    fn payload(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.remove("kind");
        }
        value
    }
}

/// A notice and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub notice: Notice,
}

impl Outgoing {
    /// The outbox row that queues it.
    pub(crate) fn into_row(self) -> NewOutboxMessage {
        NewOutboxMessage {
            kind: self.notice.kind(),
            to: self.to,
            cc: self.cc,
            payload: self.notice.payload(),
        }
    }
}

fn due(incident: &Incident, clock: ClockId) -> Option<Timestamp> {
    incident.clock(clock).and_then(|c| c.due_at())
}

fn about(org: &OrgChart, incident: &Incident) -> About {
    About {
        folio: incident.folio.to_string(),
        severity: incident.severity.map(|s| s.as_str().to_string()),
        procedures: org.procedures_of(incident),
    }
}

fn emails(org: &OrgChart, ids: &[UserId]) -> Vec<String> {
    ids.iter().filter_map(|id| org.email(*id)).collect()
}

/// The emails of `events`, just appended to reach `incident` (the state after them).
pub(crate) fn for_events(
    org: &OrgChart,
    incident: &Incident,
    events: &[Event],
    links: Option<&LinkMaker>,
) -> Vec<Outgoing> {
    let ladder = org.ladder(incident);
    let responsible = emails(org, &ladder.agency[..ladder.agency.len().min(1)]);
    let cedn = emails(org, &ladder.central[..ladder.central.len().min(1)]);
    let helpdesk = org.helpdesk_emails();
    let mail = |to: &[String], cc: &[String], message: Message| Outgoing {
        to: to.to_vec(),
        cc: cc.to_vec(),
        notice: Notice {
            about: about(org, incident),
            message,
        },
    };
    let mut out = Vec::new();
    for e in events {
        match &e.change {
            Change::Reported { description, .. } => out.push(mail(
                &helpdesk,
                &[],
                Message::Reported {
                    description: description.clone(),
                },
            )),
            Change::Notified { .. } => {
                // One-click links for the responsible: acknowledge, and later the
                // resolution notice, straight from the email.
                let token = |action| {
                    let who = ladder.agency.first().copied()?;
                    links?.token(incident.folio, action, who)
                };
                out.push(mail(
                    &responsible,
                    &[],
                    Message::Notification {
                        ack_due_at: due(incident, ClockId::ACK),
                        resolution_due_at: due(incident, ClockId::RESOLUTION),
                        ack_link: token(LinkAction::Acknowledge),
                        resolution_link: token(LinkAction::Resolution),
                        button_kept: incident.portal.button_enabled,
                    },
                ))
            }
            Change::SeverityChanged { reason, .. } => out.push(mail(
                &responsible,
                &helpdesk,
                Message::SeverityChanged {
                    reason: reason.clone(),
                },
            )),
            Change::Acknowledged => out.push(mail(&helpdesk, &[], Message::Acknowledged)),
            Change::ResolutionNotified { round, summary } => {
                out.push(mail(
                    &helpdesk,
                    &[],
                    Message::Resolution {
                        summary: summary.clone(),
                    },
                ));
                out.push(mail(
                    &cedn,
                    &helpdesk,
                    Message::ValidationRequest {
                        round: *round,
                        validation_due_at: due(incident, ClockId::validation(*round)),
                    },
                ));
            }
            Change::ValidationRecorded { passed: true, .. } => {
                out.push(mail(&responsible, &helpdesk, Message::ValidationPassed))
            }
            Change::ValidationRecorded {
                passed: false,
                observations,
                ..
            } => out.push(mail(
                &responsible,
                &helpdesk,
                Message::Persistence {
                    observations: observations.join("; "),
                },
            )),
            Change::ReportFormSubmitted { .. } => {
                out.push(mail(&helpdesk, &[], Message::ReportFormSubmitted))
            }
            Change::ReportFormReviewed {
                complete: false,
                missing,
                message,
            } => out.push(mail(
                &responsible,
                &[],
                Message::ReportFormIncomplete {
                    missing: missing.join(", "),
                    message: message.clone(),
                },
            )),
            Change::ReportFormReviewed { complete: true, .. } => {
                out.push(mail(&responsible, &[], Message::ReportFormAccepted))
            }
            Change::Closed => out.push(mail(&responsible, &[], Message::Closed)),
            // Before notification nobody outside the help desk knew of the report.
            Change::Dismissed {
                reason,
                notified: true,
            } => out.push(mail(
                &[responsible.as_slice(), cedn.as_slice()].concat(),
                &helpdesk,
                Message::Dismissed {
                    reason: reason.clone(),
                },
            )),
            Change::Escalated {
                clock: None,
                level,
                to,
                cc,
                reason,
                ..
            } => out.push(mail(
                &emails(org, &[*to]),
                &emails(org, cc),
                Message::Escalation {
                    clock: None,
                    level: *level,
                    reason: reason.clone(),
                    due_at: None,
                    target_at: None,
                },
            )),
            // Automatic warnings and escalations are mailed with their due instants
            // ([`for_action`]); button, banner, breach and dismissal send nothing.
            _ => {}
        }
    }
    out.retain(|m| !m.to.is_empty());
    out
}

/// The email of an action the scheduler fired on `incident` (the state after it): a
/// warning or an escalation; none for a breach (its escalation says it).
pub(crate) fn for_action(
    org: &OrgChart,
    incident: &Incident,
    action: &DueAction,
) -> Option<Outgoing> {
    let clock = action.key.clock.to_string();
    // The deadline itself (a warning comes before it).
    let target_at = incident
        .clock(action.key.clock)
        .and_then(|c| c.instant_at_elapsed(c.target_ms()));
    let message = match action.key.kind {
        ActionKind::Warning => Message::SloWarning {
            clock,
            due_at: action.due_at,
            target_at,
        },
        ActionKind::Escalation => Message::Escalation {
            clock: Some(clock),
            level: action.key.level,
            reason: None,
            due_at: Some(action.due_at),
            target_at,
        },
        ActionKind::Breach => return None,
    };
    let out = Outgoing {
        to: emails(org, &action.to),
        cc: emails(org, &action.cc),
        notice: Notice {
            about: about(org, incident),
            message,
        },
    };
    (!out.to.is_empty()).then_some(out)
}
