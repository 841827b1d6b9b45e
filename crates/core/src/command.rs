//! Commands (what someone asks to happen) and the typed errors of deciding them.

use std::fmt;

use jiff::Timestamp;

use crate::escalation::{ActionKey, Ladder, Side};
use crate::incident::IncidentState;
use crate::portal::ClosingCondition;
use crate::report_form::IncidentReport;
use crate::types::{AgencyId, Channel, Folio, IncidentKind, ProcedureId, Role, Severity};

/// Step 1: what the reporter says. The app resolves `agency_id` from the procedures (all of
/// which must belong to it) and assigns the folio before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    /// The new incident's folio, assigned by the app.
    pub folio: Folio,
    /// The agency that owns every affected procedure.
    pub agency_id: AgencyId,
    /// The affected procedures: at least one, none repeated.
    pub procedure_ids: Vec<ProcedureId>,
    /// Which of the four failures it is.
    pub kind: IncidentKind,
    /// What the reporter saw; required.
    pub description: String,
    /// When the failure happened, not after the report: the `report` clock starts here.
    pub occurred_at: Timestamp,
    /// How the report reached the help desk.
    pub channel: Channel,
}

/// The help desk's word, at notification, on when the failure began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurredAtCorrection {
    /// When it began; not after the report, not in the future.
    pub occurred_at: Timestamp,
    /// Why it differs from the recorded instant; required when it does.
    pub reason: Option<String>,
}

/// Every action of the step and exception tables, plus severity change, escalation,
/// dismissal and the scheduler's firings.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Step 1 (help desk or the agency itself).
    Report(NewReport),
    /// Step 2: severity set, responsible notified; the portal button is disabled unless
    /// `disable_button` is false, which only a `slow` incident may ask (otherwise
    /// [`DecideError::InvalidFields`] on `disable_button`).
    Notify {
        /// The severity the help desk sets; it fixes the clocks' targets.
        severity: Severity,
        /// Step 2 (4): whether the portal button is disabled now, on CEDN's behalf (cause
        /// `notification`).
        disable_button: bool,
        /// When the failure began, as the help desk confirms or corrects it (a report by
        /// email starts with the message's date, unconfirmed). `None`: the recorded instant
        /// stands; notifying confirms it.
        occurred_at: Option<OccurredAtCorrection>,
    },
    /// Step 2 (1): the responsible confirms.
    Acknowledge,
    /// Steps 2 (3) and 5: the agency shows or removes the banner.
    SetBanner {
        /// Shown (step 2) or removed (step 5).
        shown: bool,
        /// The agency's own text; blank or `None` means the default one. Dropped when
        /// removing.
        message: Option<String>,
    },
    /// The closing rule's alternative to the banner: the help desk records why the banner
    /// was not shown during the incident (API: `POST .../banner-exemption`).
    ExemptBanner {
        /// Why not; required.
        reason: String,
    },
    /// Steps 2 (4) and 4, or by hand: CEDN switches the portal button.
    SetButton {
        /// The state wanted; asking for the current one is refused.
        enabled: bool,
    },
    /// Step 3: the resolution notice. From `awaiting_ack` it also acknowledges.
    NotifyResolution {
        /// The agency's account of the correction; required.
        summary: String,
    },
    /// Steps 4 and 5, or the persistence exception when not passed.
    RecordValidation {
        /// Whether the procedures meet the norms and standards again.
        passed: bool,
        /// CEDN's observations; at least one is required when not passed.
        observations: Vec<String>,
    },
    /// Step 6: the agency delivers the form. Only a form [`crate::report_form::check`]
    /// finds complete can be delivered (otherwise [`DecideError::InvalidFields`] naming
    /// every missing or contradictory field); delivering pauses the `report_form` clock
    /// until the help desk's review.
    SubmitReportForm(IncidentReport),
    /// Step 6, not yet: the agency saves its work on the form without delivering it. Any
    /// partial form may be saved (within the size limits); the form becomes `draft`, the
    /// clock is not affected and nobody is told.
    SaveReportFormDraft(IncidentReport),
    /// Step 6 or the incomplete-form exception. `missing` empty on an incomplete verdict
    /// means "the fields the system finds missing".
    ReviewReportForm {
        /// Accept the form. Refused while [`crate::report_form::check`] finds an issue.
        complete: bool,
        /// API names of the fields to complete or correct (see
        /// [`crate::report_form::FormField`]).
        missing: Vec<String>,
        /// An optional note to the agency.
        message: Option<String>,
    },
    /// Severity change after notification: the clocks not yet stopped get the new
    /// severity's targets, counted from their original starts.
    ChangeSeverity {
        /// The new severity; must differ from the current one.
        severity: Severity,
        /// Why; required.
        reason: String,
    },
    /// The escalation exception, by hand; `ladder` says who is above whom.
    Escalate {
        /// Why; required.
        reason: String,
        /// The incident's ladder as the org chart stands now.
        ladder: Ladder,
    },
    /// The scheduler executes one planned action; refused unless it is due now.
    Fire {
        /// The planned action, as [`crate::escalation::planned`] keyed it.
        key: ActionKey,
        /// The ladder the action's recipients are taken from.
        ladder: Ladder,
    },
    /// The banner check (the service fetched the procedure's page on the portal after the
    /// agency reported the banner shown) did not find it: recorded, and the help desk is
    /// warned. The service's own ([`crate::Actor::System`]); refused once the banner is
    /// no longer reported shown.
    RecordBannerNotSeen {
        /// The page fetched.
        url: String,
        /// What was seen instead, in Spanish (no marker, a timeout, a redirect refused...).
        detail: String,
    },
    /// Step 7.
    Close,
    /// The help desk sets aside a report that is not an incident (duplicate, false alarm).
    /// The record is kept.
    Dismiss {
        /// Why; required.
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
            Command::ExemptBanner { .. } => "banner_exemption",
            Command::SetButton { .. } => "button",
            Command::NotifyResolution { .. } => "resolution",
            Command::RecordValidation { .. } => "validation",
            Command::SubmitReportForm(_) => "report_form",
            Command::SaveReportFormDraft(_) => "report_form_draft",
            Command::ReviewReportForm { .. } => "report_form_review",
            Command::ChangeSeverity { .. } => "severity",
            Command::Escalate { .. } => "escalate",
            Command::Fire { .. } => "fire",
            Command::RecordBannerNotSeen { .. } => "banner_not_seen",
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
            Command::ExemptBanner { .. } => "registrar por qué no se desplegó la cortinilla",
            Command::SetButton { .. } => "cambiar el botón del trámite",
            Command::NotifyResolution { .. } => "enviar el aviso de resolución",
            Command::RecordValidation { .. } => "registrar la validación",
            Command::SubmitReportForm(_) => "entregar el formato de incidencias",
            Command::SaveReportFormDraft(_) => "guardar el borrador del formato de incidencias",
            Command::ReviewReportForm { .. } => "revisar el formato de incidencias",
            Command::ChangeSeverity { .. } => "cambiar la severidad",
            Command::Escalate { .. } => "escalar la incidencia",
            Command::Fire { .. } => "ejecutar una acción programada",
            Command::RecordBannerNotSeen { .. } => "registrar la revisión de la cortinilla",
            Command::Close => "cerrar la incidencia",
            Command::Dismiss { .. } => "descartar el reporte",
        }
    }

    /// Who may ask for it. `Fire` is the scheduler's (no role: [`crate::Actor::System`]).
    pub fn allowed_roles(&self) -> &'static [Role] {
        Command::roles_named(self.name()).unwrap_or(&[])
    }

    /// [`Command::allowed_roles`] by [`Command::name`], for a front end that must refuse a
    /// caller whose role may not act before it can build the command (the API answers 403
    /// before judging the body). `None` for a name no command has.
    pub fn roles_named(name: &str) -> Option<&'static [Role]> {
        Some(match name {
            "report" => &[Role::Helpdesk, Role::Agency],
            "acknowledge" | "banner" | "resolution" | "report_form" | "report_form_draft" => {
                &[Role::Agency]
            }
            "button" | "validation" => &[Role::Validator],
            "notify" | "report_form_review" | "severity" | "escalate" | "close"
            | "banner_exemption" | "dismiss" => &[Role::Helpdesk],
            "fire" | "banner_not_seen" => &[],
            _ => return None,
        })
    }
}

/// One offending field: its API name (dotted for nested ones) and what is wrong, in
/// Spanish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's API name, e.g. `occurred_at` or `report_form.root_cause`.
    pub field: String,
    /// What is wrong with it, in Spanish.
    pub message: String,
}

impl FieldError {
    /// An error on `field` (its API name) with a Spanish `message`.
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
        /// The incident's state when refused.
        state: Option<IncidentState>,
        /// The command's [`Command::name`].
        command: &'static str,
        /// The command's [`Command::label`].
        action: &'static str,
        /// Why not now, in Spanish.
        reason: &'static str,
    },
    /// The actor's role may not ask for this command (see [`Command::allowed_roles`]).
    #[error("su rol no permite {action}")]
    RoleNotAllowed {
        /// The actor's role; `None` for the scheduler.
        role: Option<Role>,
        /// The command's [`Command::name`].
        command: &'static str,
        /// The command's [`Command::label`].
        action: &'static str,
    },
    /// An agency user acting on another agency's incident. The API answers 404: an agency
    /// never learns that another agency's folios exist.
    #[error("la incidencia no corresponde a su dependencia")]
    NotYourAgency,
    /// The input fails its checks (or the SLO policy in force is unusable); every
    /// offending field is listed.
    #[error("datos no válidos: {}", join(.0))]
    InvalidFields(Vec<FieldError>),
    /// Closing (step 7) while conditions of the closing rule do not hold; lists them.
    #[error("no es posible cerrar la incidencia: {}", join(.0))]
    ClosingRuleNotMet(Vec<ClosingCondition>),
    /// A manual escalation with no one above on the ladder it climbs: `level` 0 when the
    /// first person of that side has no superior recorded, otherwise the top level already
    /// reached (the same top official is never escalated to twice). The API answers 409.
    #[error("{}", no_superior(*.side, *.level))]
    NoSuperior {
        /// The ladder that would have been climbed.
        side: Side,
        /// The level already reached on it (0: nobody above at all).
        level: u32,
    },
    /// The scheduler asked for an action that is not due (already executed, not yet due,
    /// or no longer applicable).
    #[error("la acción programada {key} no está pendiente")]
    NotDue {
        /// The key the scheduler fired.
        key: ActionKey,
    },
}

fn no_superior(side: Side, level: u32) -> String {
    let (first, ladder) = match side {
        Side::Agency => ("el responsable del trámite", "de la dependencia"),
        Side::Central => ("el validador de CEDN", "de CEDN"),
    };
    if level == 0 {
        format!(
            "no es posible escalar la incidencia: {first} no tiene registrado un nivel \
             jerárquico superior"
        )
    } else {
        format!(
            "no es posible escalar la incidencia: ya se escaló al nivel más alto de la \
             cadena jerárquica {ladder} (nivel {level})"
        )
    }
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
