//! `decide`: given an incident, an actor, a command, an instant and the policy in force,
//! what happens. Pure: it reads its arguments and returns events or a typed error.
//!
//! Checks run in a fixed order, so the same refusal always gets the same answer: role,
//! existence, agency, terminal state, transition, fields.

use jiff::Timestamp;

use crate::command::{Command, DecideError, FieldError, NewReport};
use crate::escalation::{ActionKind, Ladder, due_actions, manual_target};
use crate::event::{Actor, BannerCause, ButtonCause, Change, Event};
use crate::incident::{Incident, IncidentState, ReportFormState};
use crate::portal::closing_conditions_unmet;
use crate::report_form::{FormField, IncidentReport, check};
use crate::slo::{SloPolicy, to_millis};
use crate::types::{IncidentKind, Role};

/// Longest free text accepted in a description, summary, observation or form field.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest reason (severity change, escalation, dismissal) or banner message.
pub const MAX_SHORT_TEXT_CHARS: usize = 2_000;
/// Most entries in a list field (procedures, observations, actions, attachments).
pub const MAX_LIST_ITEMS: usize = 100;

/// Decides `command` on `state` (`None`: no incident yet, only `Report` applies).
///
/// `now` is truncated to milliseconds (the store's precision) and never taken earlier than
/// the incident's last event, so clocks cannot run backwards when instances' clocks differ
/// slightly. `policy` is the version in force at `now`; it only matters for `Report` and
/// `Notify`: afterwards the incident uses the version it pinned at notification.
pub fn decide(
    state: Option<&Incident>,
    actor: &Actor,
    command: &Command,
    now: Timestamp,
    policy: &SloPolicy,
) -> Result<Vec<Event>, DecideError> {
    let role = actor.role();
    let role_ok = match role {
        Some(role) => command.allowed_roles().contains(&role),
        None => matches!(
            command,
            Command::Fire { .. } | Command::RecordBannerNotSeen { .. }
        ),
    };
    if !role_ok {
        return Err(DecideError::RoleNotAllowed {
            role,
            command: command.name(),
            action: command.label(),
        });
    }
    let now = to_millis(now);
    let Some(incident) = state else {
        return match command {
            Command::Report(report) => decide_report(actor, report, now, policy),
            _ => Err(refuse(None, command, "la incidencia no existe")),
        };
    };
    if let Actor::User {
        role: Role::Agency,
        agency,
        ..
    } = actor
        && *agency != Some(incident.agency_id)
    {
        return Err(DecideError::NotYourAgency);
    }
    if incident.state.is_terminal() {
        let reason = match incident.state {
            IncidentState::Closed => "la incidencia ya está cerrada",
            _ => "el reporte fue descartado",
        };
        return Err(refuse(Some(incident.state), command, reason));
    }
    let now = now.max(incident.last_event_at);
    let changes = changes(incident, command, now, policy)?;
    Ok(changes
        .into_iter()
        .map(|change| Event {
            at: now,
            via: None,
            actor: if change.is_automatic() {
                Actor::System
            } else {
                actor.clone()
            },
            change,
        })
        .collect())
}

fn refuse(state: Option<IncidentState>, command: &Command, reason: &'static str) -> DecideError {
    DecideError::InvalidTransition {
        state,
        command: command.name(),
        action: command.label(),
        reason,
    }
}

fn decide_report(
    actor: &Actor,
    report: &NewReport,
    now: Timestamp,
    policy: &SloPolicy,
) -> Result<Vec<Event>, DecideError> {
    if let Actor::User {
        role: Role::Agency,
        agency,
        ..
    } = actor
        && *agency != Some(report.agency_id)
    {
        return Err(DecideError::NotYourAgency);
    }
    let mut errors = Vec::new();
    let occurred_at = to_millis(report.occurred_at);
    if occurred_at > now {
        errors.push(FieldError::new(
            "occurred_at",
            "no puede ser posterior al momento del reporte",
        ));
    }
    if report.procedure_ids.is_empty() {
        errors.push(FieldError::new(
            "procedure_ids",
            "indique al menos un trámite afectado",
        ));
    }
    let mut ids = report.procedure_ids.clone();
    ids.sort();
    ids.dedup();
    if ids.len() != report.procedure_ids.len() {
        errors.push(FieldError::new("procedure_ids", "hay trámites repetidos"));
    }
    list_len(&mut errors, "procedure_ids", report.procedure_ids.len());
    required_text(
        &mut errors,
        "description",
        &report.description,
        MAX_TEXT_CHARS,
    );
    fields(errors)?;
    Ok(vec![Event {
        via: None,
        at: now,
        actor: actor.clone(),
        change: Change::Reported {
            folio: report.folio,
            agency_id: report.agency_id,
            procedure_ids: report.procedure_ids.clone(),
            kind: report.kind,
            description: report.description.trim().to_string(),
            occurred_at,
            channel: report.channel,
            report_target_s: policy.targets.report.max(),
        },
    }])
}

/// The changes of a command on an open incident.
fn changes(
    incident: &Incident,
    command: &Command,
    now: Timestamp,
    policy: &SloPolicy,
) -> Result<Vec<Change>, DecideError> {
    use IncidentState as S;
    let state = incident.state;
    let refuse = |reason| Err(refuse(Some(state), command, reason));
    const NOT_NOTIFIED: &str = "la incidencia aún no ha sido notificada";
    match command {
        Command::Report(_) => refuse("la incidencia ya fue reportada"),
        Command::Notify {
            severity,
            disable_button,
            occurred_at,
        } => {
            if state != S::Reported {
                return refuse("la incidencia ya fue notificada");
            }
            let correction = occurred_at_correction(incident, occurred_at.as_ref(), now)?;
            let problems = policy.problems();
            if !problems.is_empty() {
                return Err(DecideError::InvalidFields(
                    problems
                        .into_iter()
                        .map(|(f, m)| FieldError::new(format!("policy.{f}"), m))
                        .collect(),
                ));
            }
            // PROTOCOL.md, "Portal state": only a slow procedure is still usable enough to
            // keep its entry button.
            if !*disable_button && incident.kind != IncidentKind::Slow {
                return Err(DecideError::InvalidFields(vec![FieldError::new(
                    "disable_button",
                    format!(
                        "solo una incidencia de tipo «{}» puede conservar habilitado el \
                         botón del trámite; esta es de tipo «{}»",
                        IncidentKind::Slow.label(),
                        incident.kind.label()
                    ),
                )]));
            }
            let mut out: Vec<Change> = correction.into_iter().collect();
            out.push(Change::Notified {
                severity: *severity,
                policy: policy.clone(),
            });
            if *disable_button && incident.portal.button_enabled {
                out.push(Change::ButtonSet {
                    enabled: false,
                    cause: ButtonCause::Notification,
                });
            }
            Ok(out)
        }
        Command::Acknowledge => match state {
            S::AwaitingAck => Ok(vec![Change::Acknowledged]),
            S::Reported => refuse(NOT_NOTIFIED),
            _ => refuse("la incidencia ya fue confirmada de enterado"),
        },
        Command::SetBanner { shown, message } => {
            if state == S::Reported {
                return refuse(NOT_NOTIFIED);
            }
            let message = message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            let portal = &incident.portal;
            if portal.banner_shown == *shown && (!shown || portal.banner_message == message) {
                return refuse(if *shown {
                    "la cortinilla ya está desplegada"
                } else {
                    "la cortinilla no está desplegada"
                });
            }
            let mut errors = Vec::new();
            if let Some(m) = &message {
                text_limits(&mut errors, "message", m, MAX_SHORT_TEXT_CHARS);
            }
            fields(errors)?;
            Ok(vec![Change::BannerSet {
                shown: *shown,
                message: message.filter(|_| *shown),
                cause: BannerCause::Agency,
            }])
        }
        Command::ExemptBanner { reason } => {
            if state == S::Reported {
                return refuse(NOT_NOTIFIED);
            }
            // An exemption next to a banner that was shown would contradict the record;
            // a second one would only overwrite the first reason.
            if incident.banner_first_shown_at.is_some() {
                return refuse("la cortinilla sí se desplegó durante la incidencia");
            }
            if incident.banner_exemption.is_some() {
                return refuse("ya se registró por qué no se desplegó la cortinilla");
            }
            let mut errors = Vec::new();
            required_text(&mut errors, "reason", reason, MAX_SHORT_TEXT_CHARS);
            fields(errors)?;
            Ok(vec![Change::BannerExempted {
                reason: reason.trim().to_string(),
            }])
        }
        Command::SetButton { enabled } => {
            // Before notification the report is not public (and may be a false alarm):
            // the button is CEDN's step-2 action, like the banner is the agency's.
            if state == S::Reported {
                return refuse(NOT_NOTIFIED);
            }
            if incident.portal.button_enabled == *enabled {
                return refuse(if *enabled {
                    "el botón del trámite ya está habilitado"
                } else {
                    "el botón del trámite ya está deshabilitado"
                });
            }
            Ok(vec![Change::ButtonSet {
                enabled: *enabled,
                cause: ButtonCause::Manual,
            }])
        }
        Command::NotifyResolution { summary } => {
            let mut out = match state {
                S::InCorrection => vec![],
                // Replying to the notification with the resolution notice also
                // acknowledges it: the agency clearly knows.
                S::AwaitingAck => vec![Change::Acknowledged],
                S::Reported => return refuse(NOT_NOTIFIED),
                S::AwaitingValidation => {
                    return refuse("ya hay un aviso de resolución en espera de validación");
                }
                _ => return refuse("la corrección ya fue validada"),
            };
            let mut errors = Vec::new();
            required_text(&mut errors, "summary", summary, MAX_TEXT_CHARS);
            fields(errors)?;
            out.push(Change::ResolutionNotified {
                round: next_round(incident),
                summary: summary.trim().to_string(),
            });
            Ok(out)
        }
        Command::RecordValidation {
            passed,
            observations,
        } => {
            if state != S::AwaitingValidation {
                return refuse("no hay un aviso de resolución en espera de validación");
            }
            let observations: Vec<String> = observations
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect();
            let mut errors = Vec::new();
            if !passed && observations.is_empty() {
                errors.push(FieldError::new(
                    "observations",
                    "indique las observaciones de la validación no exitosa",
                ));
            }
            list_len(&mut errors, "observations", observations.len());
            for o in &observations {
                text_limits(&mut errors, "observations", o, MAX_TEXT_CHARS);
            }
            fields(errors)?;
            let round = incident.current_round().map_or(1, |r| r.round);
            let mut out = vec![Change::ValidationRecorded {
                round,
                passed: *passed,
                observations,
            }];
            if *passed && !incident.portal.button_enabled {
                out.push(Change::ButtonSet {
                    enabled: true,
                    cause: ButtonCause::Validation,
                });
            }
            Ok(out)
        }
        Command::SubmitReportForm(form) | Command::SaveReportFormDraft(form) => {
            let deliver = matches!(command, Command::SubmitReportForm(_));
            match incident.report_form.state {
                ReportFormState::NotDue => {
                    return refuse("el formato se entrega después del aviso de resolución");
                }
                ReportFormState::Accepted => return refuse("el formato ya fue aceptado"),
                // Re-delivering replaces the form under review; a draft would take back a
                // delivery the help desk may be reading.
                ReportFormState::Submitted if !deliver => {
                    return refuse("el formato entregado está en revisión de la mesa de ayuda");
                }
                _ => {}
            }
            fields(form_limits(form))?;
            // Instants at the store's precision, like every other instant of the record.
            let form = IncidentReport {
                detected_at: form.detected_at.map(to_millis),
                restored_at: form.restored_at.map(to_millis),
                ..form.clone()
            };
            if !deliver {
                return Ok(vec![Change::ReportFormDraftSaved { form }]);
            }
            // Delivering means complete by the annex's rules: every field the system finds
            // missing or contradictory is named at once.
            fields(
                check(&form, &incident.form_context())
                    .iter()
                    .map(|i| {
                        FieldError::new(
                            i.field.as_str(),
                            format!("el formato no está completo: {i}"),
                        )
                    })
                    .collect(),
            )?;
            Ok(vec![Change::ReportFormSubmitted { form }])
        }
        Command::ReviewReportForm {
            complete,
            missing,
            message,
        } => decide_review(incident, command, *complete, missing, message.as_deref()),
        Command::ChangeSeverity { severity, reason } => {
            if state == S::Reported {
                return refuse("la severidad se fija al notificar la incidencia");
            }
            let mut errors = Vec::new();
            let from = incident.severity.unwrap_or(*severity);
            if from == *severity {
                errors.push(FieldError::new(
                    "severity",
                    "es la severidad actual de la incidencia",
                ));
            }
            required_text(&mut errors, "reason", reason, MAX_SHORT_TEXT_CHARS);
            fields(errors)?;
            Ok(vec![Change::SeverityChanged {
                from,
                to: *severity,
                reason: reason.trim().to_string(),
            }])
        }
        Command::Escalate { reason, ladder } => decide_manual_escalation(incident, reason, ladder),
        Command::RecordBannerNotSeen { url, detail } => {
            if !incident.portal.banner_shown {
                return refuse("la cortinilla ya no está desplegada");
            }
            Ok(vec![Change::BannerNotSeen {
                url: url.clone(),
                detail: detail.trim().to_string(),
            }])
        }
        Command::Fire { key, ladder } => {
            let not_due = DecideError::NotDue { key: *key };
            if key.folio != incident.folio {
                return Err(not_due);
            }
            let action = due_actions(incident, ladder, now)
                .into_iter()
                .find(|a| a.key == *key)
                .ok_or(not_due)?;
            Ok(vec![match key.kind {
                ActionKind::Warning => Change::WarningIssued {
                    clock: key.clock,
                    to: action.to,
                },
                ActionKind::Breach => Change::ClockBreached { clock: key.clock },
                ActionKind::Escalation => {
                    let Some(to) = action.to.first() else {
                        return Err(DecideError::NotDue { key: *key });
                    };
                    Change::Escalated {
                        clock: Some(key.clock),
                        side: key.clock.name.side(),
                        level: key.level,
                        to: *to,
                        cc: action.cc,
                        reason: None,
                    }
                }
            }])
        }
        Command::Close => {
            let unmet = closing_conditions_unmet(incident);
            if !unmet.is_empty() {
                return Err(DecideError::ClosingRuleNotMet(unmet));
            }
            Ok(vec![Change::Closed])
        }
        Command::Dismiss { reason } => {
            // Once acknowledged the incident is real: it ends only by the closing rule
            // (PROTOCOL.md, "Dismissal").
            if !matches!(state, S::Reported | S::AwaitingAck) {
                return refuse(
                    "la dependencia ya confirmó de enterado: la incidencia solo termina con su cierre",
                );
            }
            let mut errors = Vec::new();
            required_text(&mut errors, "reason", reason, MAX_SHORT_TEXT_CHARS);
            fields(errors)?;
            // After notification the portal is restored with it, each change only if this
            // incident made it (recorded as automatic, cause `dismissal`), before the
            // dismissal itself so that no state ever shows a dismissed report holding the
            // portal.
            let mut out = Vec::new();
            if !incident.portal.button_enabled {
                out.push(Change::ButtonSet {
                    enabled: true,
                    cause: ButtonCause::Dismissal,
                });
            }
            if incident.portal.banner_shown {
                out.push(Change::BannerSet {
                    shown: false,
                    message: None,
                    cause: BannerCause::Dismissal,
                });
            }
            out.push(Change::Dismissed {
                reason: reason.trim().to_string(),
                notified: state == S::AwaitingAck,
            });
            Ok(out)
        }
    }
}

fn next_round(incident: &Incident) -> u32 {
    incident
        .validation_clocks()
        .map(|c| c.id.round)
        .max()
        .unwrap_or(0)
        + 1
}

fn decide_review(
    incident: &Incident,
    command: &Command,
    complete: bool,
    missing: &[String],
    message: Option<&str>,
) -> Result<Vec<Change>, DecideError> {
    let state = incident.report_form.state;
    let form = match (&incident.report_form.form, state) {
        (Some(form), ReportFormState::Submitted) => form,
        (_, ReportFormState::Accepted) => {
            return Err(refuse(
                Some(incident.state),
                command,
                "el formato ya fue aceptado",
            ));
        }
        _ => {
            return Err(refuse(
                Some(incident.state),
                command,
                "no hay un formato entregado pendiente de revisión",
            ));
        }
    };
    let issues = check(form, &incident.form_context());
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    let mut errors = Vec::new();
    if let Some(m) = message {
        text_limits(&mut errors, "message", m, MAX_SHORT_TEXT_CHARS);
    }
    if complete {
        // The system knows what the annex requires: an incomplete form cannot be accepted
        // by mistake.
        errors.extend(issues.iter().map(|i| {
            FieldError::new(
                format!("report_form.{}", i.field),
                format!("el formato no está completo: {i}"),
            )
        }));
        fields(errors)?;
        return Ok(vec![Change::ReportFormReviewed {
            complete: true,
            missing: Vec::new(),
            message: message.map(str::to_string),
        }]);
    }
    let mut named: Vec<FormField> = Vec::new();
    for name in missing {
        match FormField::parse(name) {
            Ok(field) => named.push(field),
            Err(e) => errors.push(FieldError::new("missing", e.to_string())),
        }
    }
    if named.is_empty() {
        named = issues.iter().map(|i| i.field).collect();
    }
    named.sort();
    named.dedup();
    if named.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "missing",
            "indique qué campos del formato faltan o deben corregirse",
        ));
    }
    fields(errors)?;
    Ok(vec![Change::ReportFormReviewed {
        complete: false,
        missing: named.iter().map(|f| f.as_str().to_string()).collect(),
        message: message.map(str::to_string),
    }])
}

fn decide_manual_escalation(
    incident: &Incident,
    reason: &str,
    ladder: &Ladder,
) -> Result<Vec<Change>, DecideError> {
    // Nobody to escalate to is about the incident's state (409), checked before the
    // fields (422), as the API orders its answers.
    let (side, level, to, cc) = manual_target(incident, ladder)?;
    let mut errors = Vec::new();
    required_text(&mut errors, "reason", reason, MAX_SHORT_TEXT_CHARS);
    fields(errors)?;
    Ok(vec![Change::Escalated {
        clock: None,
        side,
        level,
        to,
        cc,
        reason: Some(reason.trim().to_string()),
    }])
}

fn fields(errors: Vec<FieldError>) -> Result<(), DecideError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DecideError::InvalidFields(errors))
    }
}

/// A required free text: not blank, within `max` characters, no control characters.
fn required_text(errors: &mut Vec<FieldError>, field: &str, text: &str, max: usize) {
    if text.trim().is_empty() {
        errors.push(FieldError::new(field, "es obligatorio"));
    } else {
        text_limits(errors, field, text, max);
    }
}

/// Length and character checks for free text. Control characters other than line breaks
/// and tabs are refused: they corrupt emails and PostgreSQL cannot store NUL.
fn text_limits(errors: &mut Vec<FieldError>, field: &str, text: &str, max: usize) {
    if text.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("no puede exceder {max} caracteres"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.push(FieldError::new(field, "contiene caracteres de control"));
    }
}

fn list_len(errors: &mut Vec<FieldError>, field: &str, len: usize) {
    if len > MAX_LIST_ITEMS {
        errors.push(FieldError::new(
            field,
            format!("no puede tener más de {MAX_LIST_ITEMS} elementos"),
        ));
    }
}

/// The help desk's confirmation or correction of when the failure began, at step 2: a
/// different instant needs a reason and may be neither after the report nor in the
/// future; the same instant (or none) is a confirmation, which the notification records.
fn occurred_at_correction(
    incident: &Incident,
    given: Option<&crate::command::OccurredAtCorrection>,
    now: Timestamp,
) -> Result<Option<Change>, DecideError> {
    let Some(given) = given else { return Ok(None) };
    let at = to_millis(given.occurred_at);
    if at == incident.occurred_at {
        return Ok(None);
    }
    let mut errors = Vec::new();
    if at > incident.reported_at || at > now {
        errors.push(FieldError::new(
            "occurred_at",
            "no puede ser posterior al registro de la incidencia",
        ));
    }
    let reason = given.reason.as_deref().unwrap_or("");
    if reason.trim().is_empty() {
        errors.push(FieldError::new(
            "occurred_at_reason",
            "indique por qué cambia el momento en que ocurrió la falla",
        ));
    } else {
        required_text(
            &mut errors,
            "occurred_at_reason",
            reason,
            MAX_SHORT_TEXT_CHARS,
        );
    }
    fields(errors)?;
    Ok(Some(Change::OccurredAtCorrected {
        occurred_at: at,
        previous: incident.occurred_at,
        reason: reason.trim().to_string(),
    }))
}

/// Size checks of a form, draft or delivered (completeness is checked only on delivery: a
/// partial form may be saved as a draft).
fn form_limits(form: &IncidentReport) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let texts = [
        (FormField::Symptoms, &form.symptoms),
        (FormField::Impact, &form.impact),
        (FormField::RootCause, &form.root_cause),
        (FormField::Verification, &form.verification),
        (FormField::PreventiveActions, &form.preventive_actions),
        (FormField::PreparedByName, &form.prepared_by_name),
        (FormField::PreparedByPosition, &form.prepared_by_position),
    ];
    for (field, text) in texts {
        text_limits(&mut errors, field.as_str(), text, MAX_TEXT_CHARS);
    }
    for (field, list) in [
        (FormField::ActionsTaken, &form.actions_taken),
        (FormField::Attachments, &form.attachments),
    ] {
        list_len(&mut errors, field.as_str(), list.len());
        for item in list {
            text_limits(&mut errors, field.as_str(), item, MAX_TEXT_CHARS);
        }
    }
    errors
}
