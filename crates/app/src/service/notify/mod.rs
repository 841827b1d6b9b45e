//! Which emails the protocol sends, to whom, saying what: the step and exception tables
//! (from an incident's new events) and the scheduler's warnings and escalations (from a
//! fired action), composed here and nowhere else. Each email is a [`Notice`]: a typed
//! message with exactly the data its template needs, so a template without its data does
//! not compile. It is written to the outbox in the same transaction as its events (kind in
//! its own column, the rest as the JSON payload) and rendered ([`render`]) when sent, so a
//! template fix reaches mail still queued.

pub mod render;

use incidencias_core::escalation::{ActionKind, DueAction, Side};
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
        /// What failed, as reported (`unavailable`, `slow`, ...), and its description: the
        /// responsible learns the problem from the notice itself.
        #[serde(default)]
        failure: Option<Failure>,
    },
    /// Severity changed by the help desk, to the responsible (and CEDN while a validation
    /// is pending: its target changed too), with the deadlines recomputed.
    SeverityChanged {
        reason: String,
        /// Every running clock's new deadline. Absent in rows queued before it existed.
        #[serde(default)]
        deadlines: Vec<Deadline>,
    },
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
    /// The banner check did not find the banner on the procedure's page, to the help desk.
    BannerNotSeen { url: String, detail: String },
    /// A report dismissed after its notification, to the responsible and CEDN: the portal
    /// was restored automatically.
    Dismissed { reason: String },
    /// A deadline passed, to the help desk: every breach is told, also when nobody is left
    /// above on the ladder to escalate to.
    Breach {
        /// The clock's name (`ack`, `resolution`, `validation#2`, ...).
        clock: String,
        /// The deadline that passed.
        target_at: Option<Timestamp>,
    },
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

/// What failed, for the step-2 notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `unavailable`, `intermittent`, `slow` or `cannot_complete`.
    pub kind: String,
    pub description: String,
}

/// A clock's deadline, for the emails that announce new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// The clock's name (`ack`, `resolution`, `validation#2`, ...).
    pub clock: String,
    pub due_at: Timestamp,
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
}

/// A notice and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub notice: Notice,
}

impl Outgoing {
    /// The outbox row that queues it: the notice serialized once, its `kind` taken out
    /// into its own column, the rest as the payload.
    pub(crate) fn into_row(self) -> NewOutboxMessage {
        let mut payload = serde_json::to_value(&self.notice).unwrap_or(serde_json::Value::Null);
        let kind = match payload.as_object_mut().and_then(|m| m.remove("kind")) {
            Some(serde_json::Value::String(kind)) => kind,
            _ => String::new(),
        };
        NewOutboxMessage {
            kind,
            to: self.to,
            cc: self.cc,
            payload,
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
    // Every responsible of the incident's procedures hears every step (PROTOCOL.md).
    let responsibles = org.responsibles(incident);
    let responsible = emails(org, &responsibles);
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
                // One email per responsible: each carries one-click links bound to its
                // own recipient (acknowledge, and later the resolution notice).
                for who in &responsibles {
                    let token = |action| links?.token(incident.folio, action, *who);
                    out.push(mail(
                        &emails(org, &[*who]),
                        &[],
                        Message::Notification {
                            ack_due_at: due(incident, ClockId::ACK),
                            resolution_due_at: due(incident, ClockId::RESOLUTION),
                            ack_link: token(LinkAction::Acknowledge),
                            resolution_link: token(LinkAction::Resolution),
                            button_kept: incident.portal.button_enabled,
                            failure: Some(Failure {
                                kind: incident.kind.as_str().to_string(),
                                description: incident.description.clone(),
                            }),
                        },
                    ))
                }
            }
            Change::SeverityChanged { reason, .. } => {
                let deadlines: Vec<Deadline> = incident
                    .clocks
                    .iter()
                    .filter(|c| c.is_running())
                    .filter_map(|c| {
                        Some(Deadline {
                            clock: c.id.to_string(),
                            due_at: c.due_at()?,
                        })
                    })
                    .collect();
                // CEDN's own target moved while it validates: it is told too.
                let validating = deadlines.iter().any(|d| d.clock.starts_with("validation"));
                let cc = if validating {
                    [helpdesk.as_slice(), cedn.as_slice()].concat()
                } else {
                    helpdesk.clone()
                };
                out.push(mail(
                    &responsible,
                    &cc,
                    Message::SeverityChanged {
                        reason: reason.clone(),
                        deadlines,
                    },
                ))
            }
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
            Change::BannerNotSeen { url, detail } => out.push(mail(
                &helpdesk,
                &[],
                Message::BannerNotSeen {
                    url: url.clone(),
                    detail: detail.clone(),
                },
            )),
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
                &with_helpdesk(emails(org, cc), &helpdesk),
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

/// On the agency's side, with several responsibles (an incident of several procedures):
/// a warning goes to each of them, an escalation to each one's superior at its level, cc
/// all of them (PROTOCOL.md, "Escalation"). `None` for the central side, and for one
/// responsible, where the core's plan already says it.
fn agency_side_recipients(
    org: &OrgChart,
    incident: &Incident,
    action: &DueAction,
) -> Option<(Vec<UserId>, Vec<UserId>)> {
    let responsibles = org.responsibles(incident);
    if responsibles.len() < 2 || action.key.clock.name.side() != Side::Agency {
        return None;
    }
    match action.key.kind {
        ActionKind::Warning => Some((responsibles, Vec::new())),
        ActionKind::Escalation => {
            let mut to = Vec::new();
            for r in &responsibles {
                if let Some(boss) = org.superior(*r, action.key.level)
                    && !to.contains(&boss)
                {
                    to.push(boss);
                }
            }
            Some((to, responsibles))
        }
        ActionKind::Breach => None,
    }
}

/// `cc` and the help desk, who is copied on every escalation (PROTOCOL.md, "Escalation").
fn with_helpdesk(mut cc: Vec<String>, helpdesk: &[String]) -> Vec<String> {
    for h in helpdesk {
        if !cc.contains(h) {
            cc.push(h.clone());
        }
    }
    cc
}

/// The email of an action the scheduler fired on `incident` (the state after it): a
/// warning to whoever must act, an escalation to the superior (cc whoever must act and the
/// help desk), a breach to the help desk.
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
        ActionKind::Breach => {
            let out = Outgoing {
                to: org.helpdesk_emails(),
                cc: Vec::new(),
                notice: Notice {
                    about: about(org, incident),
                    message: Message::Breach {
                        clock: action.key.clock.to_string(),
                        target_at,
                    },
                },
            };
            return (!out.to.is_empty()).then_some(out);
        }
    };
    let (to, cc) = agency_side_recipients(org, incident, action)
        .unwrap_or_else(|| (action.to.clone(), action.cc.clone()));
    let cc = emails(org, &cc);
    let out = Outgoing {
        to: emails(org, &to),
        cc: match action.key.kind {
            ActionKind::Escalation => with_helpdesk(cc, &org.helpdesk_emails()),
            _ => cc,
        },
        notice: Notice {
            about: about(org, incident),
            message,
        },
    };
    (!out.to.is_empty()).then_some(out)
}
