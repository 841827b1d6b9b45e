//! Which emails an incident's new events send, to whom: the step and exception tables of
//! the protocol. Written to the outbox in the same transaction as the events.

use incidencias_core::{Change, ClockId, Event, Incident};
use serde_json::{Value, json};

use crate::links::LinkAction;
use crate::service::{LinkMaker, OrgChart};
use crate::store::NewOutboxMessage;

fn due(incident: &Incident, clock: ClockId) -> Option<String> {
    incident
        .clock(clock)
        .and_then(|c| c.due_at())
        .map(|t| t.to_string())
}

/// The emails of `events`, just appended to reach `incident` (the state after them).
pub fn messages_for(
    org: &OrgChart,
    incident: &Incident,
    events: &[Event],
    links: Option<&LinkMaker>,
) -> Vec<NewOutboxMessage> {
    let ladder = org.ladder(incident);
    let responsible: Vec<String> = ladder
        .agency
        .first()
        .and_then(|id| org.email(*id))
        .into_iter()
        .collect();
    let cedn: Vec<String> = ladder
        .central
        .first()
        .and_then(|id| org.email(*id))
        .into_iter()
        .collect();
    let helpdesk = org.helpdesk_emails();
    let base = |extra: Value| -> Value {
        let mut data = json!({
            "folio": incident.folio.to_string(),
            "severity": incident.severity.map(|s| s.as_str()),
            "procedures": org.procedures_of(incident),
        });
        if let (Some(d), Value::Object(extra)) = (data.as_object_mut(), extra) {
            d.extend(extra);
        }
        data
    };
    let mail = |kind: &str, to: &[String], cc: &[String], data: Value| NewOutboxMessage {
        kind: kind.into(),
        to: to.to_vec(),
        cc: cc.to_vec(),
        payload: data,
    };
    let mut out = Vec::new();
    for e in events {
        match &e.change {
            Change::Reported { description, .. } => out.push(mail(
                "reported",
                &helpdesk,
                &[],
                base(json!({"description": description})),
            )),
            Change::Notified { .. } => {
                // One-click links for the responsible: acknowledge, and later the
                // resolution notice, straight from the email.
                let token = |action| {
                    let who = ladder.agency.first().copied()?;
                    links?.token(incident.folio, action, who)
                };
                out.push(mail(
                    "notification",
                    &responsible,
                    &[],
                    base(json!({
                        "ack_due_at": due(incident, ClockId::ACK),
                        "resolution_due_at": due(incident, ClockId::RESOLUTION),
                        "ack_link": token(LinkAction::Acknowledge),
                        "resolution_link": token(LinkAction::Resolution),
                    })),
                ))
            }
            Change::SeverityChanged { reason, .. } => out.push(mail(
                "severity_changed",
                &responsible,
                &helpdesk,
                base(json!({"reason": reason})),
            )),
            Change::Acknowledged => out.push(mail("acknowledged", &helpdesk, &[], base(json!({})))),
            Change::ResolutionNotified { round, summary } => {
                out.push(mail(
                    "resolution",
                    &helpdesk,
                    &[],
                    base(json!({"summary": summary})),
                ));
                out.push(mail(
                    "validation_request",
                    &cedn,
                    &helpdesk,
                    base(json!({
                        "round": round,
                        "validation_due_at": due(incident, ClockId::validation(*round)),
                    })),
                ));
            }
            Change::ValidationRecorded { passed: true, .. } => out.push(mail(
                "validation_passed",
                &responsible,
                &helpdesk,
                base(json!({})),
            )),
            Change::ValidationRecorded {
                passed: false,
                observations,
                ..
            } => out.push(mail(
                "persistence",
                &responsible,
                &helpdesk,
                base(json!({"observations": observations.join("; ")})),
            )),
            Change::ReportFormSubmitted { .. } => out.push(mail(
                "report_form_submitted",
                &helpdesk,
                &[],
                base(json!({})),
            )),
            Change::ReportFormReviewed {
                complete: false,
                missing,
                message,
            } => out.push(mail(
                "report_form_incomplete",
                &responsible,
                &[],
                base(json!({"missing": missing.join(", "), "message": message})),
            )),
            Change::ReportFormReviewed { complete: true, .. } => out.push(mail(
                "report_form_accepted",
                &responsible,
                &[],
                base(json!({})),
            )),
            Change::Closed => out.push(mail("closed", &responsible, &[], base(json!({})))),
            Change::Escalated {
                clock: None,
                level,
                to,
                cc,
                reason,
            } => {
                let cc: Vec<String> = cc.iter().filter_map(|id| org.email(*id)).collect();
                out.push(mail(
                    "escalation",
                    &org.email(*to).into_iter().collect::<Vec<_>>(),
                    &cc,
                    base(json!({"clock": null, "level": level, "reason": reason})),
                ));
            }
            // Automatic warnings and escalations are mailed by the scheduler with their
            // due instants; button, banner, breach and dismissal send nothing.
            _ => {}
        }
    }
    out.retain(|m| !m.to.is_empty());
    out
}
