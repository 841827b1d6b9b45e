//! Events: the record. Every change to an incident is one of these, appended and never
//! rewritten; [`crate::Incident::apply`] folds them into state.
//!
//! The serde form is the stored form (`{"kind": ..., "data": {...}}` for [`Change`]), so
//! renaming a variant or a field is a migration, not a refactor.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::report_form::IncidentReport;
use crate::slo::{ClockId, SloPolicy};
use crate::types::{AgencyId, Channel, Folio, IncidentKind, ProcedureId, Role, Severity, UserId};

/// Who acts. The scheduler acts as `System`; everything else is a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in person.
    User {
        /// Their account.
        id: UserId,
        /// What they may do.
        role: Role,
        /// Set for agency users: the only agency whose incidents they may touch.
        agency: Option<AgencyId>,
    },
    /// The scheduler: it only fires planned actions ([`crate::Command::Fire`]).
    System,
}

impl Actor {
    /// The user's role; `None` for the scheduler, which has none.
    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::User { role, .. } => Some(*role),
            Actor::System => None,
        }
    }
}

/// One appended fact: when, who, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was decided, in whole milliseconds, never before the previous event.
    pub at: Timestamp,
    /// Who asked for it.
    pub actor: Actor,
    /// What changed.
    pub change: Change,
}

/// Why the portal button changed. All button changes are CEDN's actions in the protocol;
/// the cause says whether it was the automatic one of a step or a validator's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonCause {
    /// Step 2: disabled on notification.
    Notification,
    /// Step 4: enabled on a passed validation.
    Validation,
    /// A validator switched it by hand.
    Manual,
}

/// What an event changed: one variant per step, exception and scheduler firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Change {
    /// Step 1. `report_target_s` is the `report` target in force at the report (the most
    /// lenient of the severities, since none is set yet); notification re-targets it.
    Reported {
        /// The incident's folio, never reused.
        folio: Folio,
        /// The agency that owns every affected procedure.
        agency_id: AgencyId,
        /// The affected procedures.
        procedure_ids: Vec<ProcedureId>,
        /// Which of the four failures it is.
        kind: IncidentKind,
        /// What the reporter saw, trimmed.
        description: String,
        /// When the failure happened: the `report` clock's start.
        occurred_at: Timestamp,
        /// How the report arrived.
        channel: Channel,
        /// The `report` clock's target in seconds, as above.
        report_target_s: u32,
    },
    /// Step 2. Carries the whole policy version so that replay never needs to look it up.
    Notified {
        /// The severity the help desk set.
        severity: Severity,
        /// The policy version in force, pinned for the incident's whole life.
        policy: SloPolicy,
    },
    /// The portal button was switched, on CEDN's behalf (steps 2 and 4) or by a validator.
    ButtonSet {
        /// Its new state.
        enabled: bool,
        /// Which step, or a validator's own action.
        cause: ButtonCause,
    },
    /// Step 2 (1): the responsible acknowledged the notification; the `ack` clock stops.
    Acknowledged,
    /// Steps 2 (3) and 5: the agency reports the banner shown or removed.
    BannerSet {
        /// Shown or removed.
        shown: bool,
        /// The agency's own text, only when shown; `None` means the default one
        /// ([`crate::portal::DEFAULT_BANNER_MESSAGE`]).
        message: Option<String>,
    },
    /// Step 3. `round` is the validation round this notice opens (1, 2, ...).
    ResolutionNotified {
        /// The round opened.
        round: u32,
        /// The agency's account of the correction, trimmed.
        summary: String,
    },
    /// Step 4 (and 5 when passed); persistence when not passed.
    ValidationRecorded {
        /// The round judged: always the latest.
        round: u32,
        /// Whether the procedures meet the norms and standards again.
        passed: bool,
        /// CEDN's observations, trimmed; at least one when not passed.
        observations: Vec<String>,
    },
    /// Step 6: the agency delivered the form. It may be incomplete: completeness is judged
    /// at review.
    ReportFormSubmitted {
        /// The form as delivered (instants in whole milliseconds); replaces any earlier one.
        form: IncidentReport,
    },
    /// Accepted when `complete`; otherwise a request for the `missing` fields.
    ReportFormReviewed {
        /// The help desk accepted the form.
        complete: bool,
        /// API names of the fields requested, in form order; empty when accepted.
        missing: Vec<String>,
        /// The help desk's note to the agency, if any.
        message: Option<String>,
    },
    /// The help desk changed the severity after notification; the clocks not yet stopped
    /// were retargeted from their original starts.
    SeverityChanged {
        /// The severity before.
        from: Severity,
        /// The severity now.
        to: Severity,
        /// The help desk's reason, trimmed.
        reason: String,
    },
    /// A running clock reached the policy's warning share of its target; recorded once
    /// per clock.
    WarningIssued {
        /// The clock.
        clock: ClockId,
        /// Who was warned: whoever must act (the first on the clock's side of the ladder).
        to: Vec<UserId>,
    },
    /// A clock's running time reached its target; recorded once per clock.
    ClockBreached {
        /// The clock.
        clock: ClockId,
    },
    /// `clock` is `None` for a manual escalation (which has a `reason`).
    Escalated {
        /// The breached clock, or `None` when by hand.
        clock: Option<ClockId>,
        /// The ladder level reached: 1 is the immediate superior.
        level: u32,
        /// The superior at that level.
        to: UserId,
        /// Copied: whoever must act (level 0 of the same side).
        cc: Vec<UserId>,
        /// The help desk's reason, for a manual escalation only.
        reason: Option<String>,
    },
    /// Step 7: the help desk closed the incident; every clock stops.
    Closed,
    /// The help desk dismissed the report as not an incident; every clock stops. The
    /// record is kept.
    Dismissed {
        /// The help desk's reason, trimmed.
        reason: String,
    },
}

impl Change {
    /// The stored `kind` name (equal to the serde tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Reported { .. } => "reported",
            Change::Notified { .. } => "notified",
            Change::ButtonSet { .. } => "button_set",
            Change::Acknowledged => "acknowledged",
            Change::BannerSet { .. } => "banner_set",
            Change::ResolutionNotified { .. } => "resolution_notified",
            Change::ValidationRecorded { .. } => "validation_recorded",
            Change::ReportFormSubmitted { .. } => "report_form_submitted",
            Change::ReportFormReviewed { .. } => "report_form_reviewed",
            Change::SeverityChanged { .. } => "severity_changed",
            Change::WarningIssued { .. } => "warning_issued",
            Change::ClockBreached { .. } => "clock_breached",
            Change::Escalated { .. } => "escalated",
            Change::Closed => "closed",
            Change::Dismissed { .. } => "dismissed",
        }
    }
}
