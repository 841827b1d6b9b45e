//! Commands (what someone asks to happen) and the typed errors of deciding them.

use std::fmt;

use jiff::Timestamp;

use crate::escalation::{ActionKey, Ladder};
use crate::incident::IncidentState;
use crate::portal::ClosingCondition;
use crate::report_form::IncidentReport;
use crate::types::{AgencyId, Channel, Folio, IncidentKind, ProcedureId, Role, Severity};

/// Step 1: what the reporter says. The app resolves `agency_id` from the procedures (all of
/// which must belong to it) and assigns the folio before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    pub folio: Folio,
    pub agency_id: AgencyId,
    pub procedure_ids: Vec<ProcedureId>,
    pub kind: IncidentKind,
    pub description: String,
    pub occurred_at: Timestamp,
    pub channel: Channel,
}

/// Every action of the step and exception tables, plus severity change, escalation,
/// dismissal and the scheduler's firings.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Step 1 (help desk or the agency itself).
    Report(NewReport),
    /// Step 2: severity set, responsible notified; the portal button is disabled unless
    /// `disable_button` is false.
    Notify {
        severity: Severity,
        disable_button: bool,
    },
    /// Step 2 (1): the responsible confirms.
    Acknowledge,
    /// Steps 2 (3) and 5: the agency shows or removes the banner.
    SetBanner {
        shown: bool,
        message: Option<String>,
    },
    /// Steps 2 (4) and 4, or by hand: CEDN switches the portal button.
    SetButton {
        enabled: bool,
    },
    /// Step 3: the resolution notice. From `awaiting_ack` it also acknowledges.
    NotifyResolution {
        summary: String,
    },
    /// Steps 4 and 5, or the persistence exception when not passed.
    RecordValidation {
        passed: bool,
        observations: Vec<String>,
    },
    /// Step 6.
    SubmitReportForm(IncidentReport),
    /// Step 6 or the incomplete-form exception. `missing` empty on an incomplete verdict
    /// means "the fields the system finds missing".
    ReviewReportForm {
        complete: bool,
        missing: Vec<String>,
        message: Option<String>,
    },
    ChangeSeverity {
        severity: Severity,
        reason: String,
    },
    /// The escalation exception, by hand; `ladder` says who is above whom.
    Escalate {
        reason: String,
        ladder: Ladder,
    },
    /// The scheduler executes one planned action; refused unless it is due now.
    Fire {
        key: ActionKey,
        ladder: Ladder,
    },
    /// Step 7.
    Close,
    Dismiss {
        reason: String,
    },
}

impl Command {
    /// Stable name, used in errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Report(_) => "report",
            Command::Notify { .. } => "notify",
            Command::Acknowledge => "acknowledge",
            Command::SetBanner { .. } => "banner",
            Command::SetButton { .. } => "button",
            Command::NotifyResolution { .. } => "resolution",
            Command::RecordValidation { .. } => "validation",
            Command::SubmitReportForm(_) => "report_form",
            Command::ReviewReportForm { .. } => "report_form_review",
            Command::ChangeSeverity { .. } => "severity",
            Command::Escalate { .. } => "escalate",
            Command::Fire { .. } => "fire",
            Command::Close => "close",
            Command::Dismiss { .. } => "dismiss",
        }
    }

    /// The Spanish name of the action, for error messages.
    pub fn label(&self) -> &'static str {
        match self {
            Command::Report(_) => "reportar la incidencia",
            Command::Notify { .. } => "notificar la incidencia",
            Command::Acknowledge => "confirmar de enterado",
            Command::SetBanner { .. } => "cambiar la cortinilla",
            Command::SetButton { .. } => "cambiar el botón del trámite",
            Command::NotifyResolution { .. } => "enviar el aviso de resolución",
            Command::RecordValidation { .. } => "registrar la validación",
            Command::SubmitReportForm(_) => "entregar el formato de incidencias",
            Command::ReviewReportForm { .. } => "revisar el formato de incidencias",
            Command::ChangeSeverity { .. } => "cambiar la severidad",
            Command::Escalate { .. } => "escalar la incidencia",
            Command::Fire { .. } => "ejecutar una acción programada",
            Command::Close => "cerrar la incidencia",
            Command::Dismiss { .. } => "descartar el reporte",
        }
    }

    /// Who may ask for it. `Fire` is the scheduler's (no role: [`crate::Actor::System`]).
    pub fn allowed_roles(&self) -> &'static [Role] {
        match self {
            Command::Report(_) => &[Role::Helpdesk, Role::Agency],
            Command::Acknowledge
            | Command::SetBanner { .. }
            | Command::NotifyResolution { .. }
            | Command::SubmitReportForm(_) => &[Role::Agency],
            Command::SetButton { .. } | Command::RecordValidation { .. } => &[Role::Validator],
            Command::Notify { .. }
            | Command::ReviewReportForm { .. }
            | Command::ChangeSeverity { .. }
            | Command::Escalate { .. }
            | Command::Close
            | Command::Dismiss { .. } => &[Role::Helpdesk],
            Command::Fire { .. } => &[],
        }
    }
}

/// One offending field: its API name (dotted for nested ones) and what is wrong, in
/// Spanish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a command was refused. Nothing changes when `decide` returns one of these. The
/// `Display` is Spanish, for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The command does not apply to the incident's current state (`None`: no incident yet).
    #[error("no es posible {action} en el estado «{}»: {reason}", state_label(*.state))]
    InvalidTransition {
        state: Option<IncidentState>,
        command: &'static str,
        action: &'static str,
        reason: &'static str,
    },
    #[error("su rol no permite {action}")]
    RoleNotAllowed {
        role: Option<Role>,
        command: &'static str,
        action: &'static str,
    },
    /// An agency user acting on another agency's incident. The API answers 404: an agency
    /// never learns that another agency's folios exist.
    #[error("la incidencia no corresponde a su dependencia")]
    NotYourAgency,
    #[error("datos no válidos: {}", join(.0))]
    InvalidFields(Vec<FieldError>),
    #[error("no es posible cerrar la incidencia: {}", join(.0))]
    ClosingRuleNotMet(Vec<ClosingCondition>),
    /// The scheduler asked for an action that is not due (already executed, not yet due,
    /// or no longer applicable).
    #[error("la acción programada {key} no está pendiente")]
    NotDue { key: ActionKey },
}

fn state_label(state: Option<IncidentState>) -> &'static str {
    state.map_or("sin registrar", IncidentState::label)
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
