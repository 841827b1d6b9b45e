//! What a person may do now: the actions of the step and exception tables that [`decide`]
//! would accept from this actor on this incident in its current state.
//!
//! Front ends show a person "only the actions this user may take in this state". The
//! answer must come from the protocol, not from a second table kept by each page, so each
//! action is asked of [`decide`] itself with a representative command: an action is
//! available when the protocol would accept it, or would refuse only the fields the person
//! has yet to fill in (a blank reason, say). A refusal for the role, the agency, the state
//! or the closing rule hides it.

use jiff::Timestamp;

use crate::command::{Command, DecideError};
use crate::decide::decide;
use crate::escalation::Ladder;
use crate::event::Actor;
use crate::incident::Incident;
use crate::report_form::IncidentReport;
use crate::slo::SloPolicy;
use crate::types::Severity;

/// One button of the copy deck (shared/UI.md), in the order a page lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Step 2, help desk: set the severity and notify.
    Notify,
    /// Step 2, agency.
    Acknowledge,
    /// Step 2 (3), agency: show the banner.
    ShowBanner,
    /// Step 5, agency: remove the banner.
    RemoveBanner,
    /// Step 3, agency.
    NotifyResolution,
    /// Step 4, CEDN: validation passed.
    ApproveValidation,
    /// Persistence exception, CEDN: validation failed, with observations.
    RejectValidation,
    /// CEDN: enable the portal button by hand.
    EnableButton,
    /// CEDN: disable the portal button by hand.
    DisableButton,
    /// Step 6, agency: save the form without delivering it.
    SaveReportFormDraft,
    /// Step 6, agency: deliver the form.
    SubmitReportForm,
    /// Step 6, help desk: accept the delivered form.
    AcceptReportForm,
    /// Incomplete-form exception, help desk: ask for the missing fields.
    RequestMissingInformation,
    /// Help desk: record why the banner was not shown.
    ExemptBanner,
    /// Escalation exception, help desk, by hand.
    Escalate,
    /// Help desk, after notification.
    ChangeSeverity,
    /// Step 7, help desk.
    Close,
    /// Help desk: set aside a report that is not an incident.
    Dismiss,
}

impl Action {
    /// Every action, in the order a page lists them.
    pub const ALL: [Action; 18] = [
        Action::Notify,
        Action::Acknowledge,
        Action::ShowBanner,
        Action::NotifyResolution,
        Action::ApproveValidation,
        Action::RejectValidation,
        Action::RemoveBanner,
        Action::EnableButton,
        Action::DisableButton,
        Action::SaveReportFormDraft,
        Action::SubmitReportForm,
        Action::AcceptReportForm,
        Action::RequestMissingInformation,
        Action::ExemptBanner,
        Action::Escalate,
        Action::ChangeSeverity,
        Action::Close,
        Action::Dismiss,
    ];

    /// The button's word, exactly as the copy deck writes it.
    pub fn label(self) -> &'static str {
        match self {
            Action::Notify => "Notificar",
            Action::Acknowledge => "Confirmar de enterado",
            Action::ShowBanner => "Desplegar cortinilla",
            Action::RemoveBanner => "Retirar cortinilla",
            Action::NotifyResolution => "Avisar resolución",
            Action::ApproveValidation => "Aprobar validación",
            Action::RejectValidation => "Rechazar validación",
            Action::EnableButton => "Habilitar botón",
            Action::DisableButton => "Deshabilitar botón",
            Action::SaveReportFormDraft => "Guardar borrador",
            Action::SubmitReportForm => "Enviar formato",
            Action::AcceptReportForm => "Aceptar formato",
            Action::RequestMissingInformation => "Solicitar información faltante",
            Action::ExemptBanner => "Registrar excepción de cortinilla",
            Action::Escalate => "Escalar",
            Action::ChangeSeverity => "Cambiar severidad",
            Action::Close => "Cerrar incidencia",
            Action::Dismiss => "Descartar",
        }
    }

    /// A stable name (for form targets and tests).
    pub fn name(self) -> &'static str {
        match self {
            Action::Notify => "notify",
            Action::Acknowledge => "acknowledge",
            Action::ShowBanner => "show_banner",
            Action::RemoveBanner => "remove_banner",
            Action::NotifyResolution => "resolution",
            Action::ApproveValidation => "approve",
            Action::RejectValidation => "reject",
            Action::EnableButton => "enable_button",
            Action::DisableButton => "disable_button",
            Action::SaveReportFormDraft => "report_form_draft",
            Action::SubmitReportForm => "report_form",
            Action::AcceptReportForm => "accept_report_form",
            Action::RequestMissingInformation => "request_missing",
            Action::ExemptBanner => "banner_exemption",
            Action::Escalate => "escalate",
            Action::ChangeSeverity => "severity",
            Action::Close => "close",
            Action::Dismiss => "dismiss",
        }
    }

    /// The action named `name` ([`Action::name`]).
    pub fn named(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The command asked to learn whether the action applies: its fields are placeholders
    /// (a field error still counts as "applies"), chosen so that they never trip a state
    /// check of their own.
    fn probe(self, ladder: &Ladder) -> Command {
        let reason = String::new();
        match self {
            Action::Notify => Command::Notify {
                severity: Severity::Medium,
                disable_button: true,
                occurred_at: None,
            },
            Action::Acknowledge => Command::Acknowledge,
            Action::ShowBanner => Command::SetBanner {
                shown: true,
                message: None,
            },
            Action::RemoveBanner => Command::SetBanner {
                shown: false,
                message: None,
            },
            Action::NotifyResolution => Command::NotifyResolution { summary: reason },
            Action::ApproveValidation => Command::RecordValidation {
                passed: true,
                observations: Vec::new(),
            },
            Action::RejectValidation => Command::RecordValidation {
                passed: false,
                observations: Vec::new(),
            },
            Action::EnableButton => Command::SetButton { enabled: true },
            Action::DisableButton => Command::SetButton { enabled: false },
            Action::SaveReportFormDraft => Command::SaveReportFormDraft(IncidentReport::default()),
            Action::SubmitReportForm => Command::SubmitReportForm(IncidentReport::default()),
            Action::AcceptReportForm => Command::ReviewReportForm {
                complete: true,
                missing: Vec::new(),
                message: None,
            },
            Action::RequestMissingInformation => Command::ReviewReportForm {
                complete: false,
                missing: Vec::new(),
                message: None,
            },
            Action::ExemptBanner => Command::ExemptBanner { reason },
            Action::Escalate => Command::Escalate {
                reason,
                ladder: ladder.clone(),
            },
            Action::ChangeSeverity => Command::ChangeSeverity {
                // Any severity: the current one is a field error, which still counts as
                // applying (see `applies`).
                severity: Severity::Low,
                reason,
            },
            Action::Close => Command::Close,
            Action::Dismiss => Command::Dismiss { reason },
        }
    }

    /// Whether the protocol's answer to the probe means "this action applies".
    fn applies(self, incident: &Incident, answer: Result<(), DecideError>) -> bool {
        let accepted = matches!(answer, Ok(()) | Err(DecideError::InvalidFields(_)));
        match self {
            // Showing the banner again only changes its message: that is the same button
            // once it is shown, not a second "show".
            Action::ShowBanner => accepted && !incident.portal.banner_shown,
            _ => accepted,
        }
    }
}

/// The actions `actor` may take on `incident` at `now`, in [`Action::ALL`] order: exactly
/// those [`decide`] would accept (save for fields still to be filled in). `policy` is the
/// version in force at `now`; `ladder` the incident's escalation ladder as the org chart
/// stands (a manual escalation with nobody above is not offered).
pub fn available_actions(
    incident: &Incident,
    actor: &Actor,
    now: Timestamp,
    policy: &SloPolicy,
    ladder: &Ladder,
) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|action| {
            let command = action.probe(ladder);
            let answer = decide(Some(incident), actor, &command, now, policy).map(|_| ());
            action.applies(incident, answer)
        })
        .collect()
}

/// The states in which the next step of the step table is `role`'s ("pendiente de mí"):
/// the help desk notifies a report and reviews the form and closes after validation; the
/// agency acknowledges, corrects, removes the banner and delivers the form; CEDN
/// validates.
pub fn states_awaiting(role: crate::types::Role) -> &'static [crate::incident::IncidentState] {
    use crate::incident::IncidentState as S;
    use crate::types::Role;
    match role {
        Role::Helpdesk => &[S::Reported, S::Validated],
        Role::Agency => &[S::AwaitingAck, S::InCorrection, S::Validated],
        Role::Validator => &[S::AwaitingValidation],
        Role::Admin => &[],
    }
}
