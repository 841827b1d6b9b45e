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
    User {
        id: UserId,
        role: Role,
        /// Set for agency users: the only agency whose incidents they may touch.
        agency: Option<AgencyId>,
    },
    System,
}

impl Actor {
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
    pub at: Timestamp,
    pub actor: Actor,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Change {
    /// Step 1. `report_target_s` is the `report` target in force at the report (the most
    /// lenient of the severities, since none is set yet); notification re-targets it.
    Reported {
        folio: Folio,
        agency_id: AgencyId,
        procedure_ids: Vec<ProcedureId>,
        kind: IncidentKind,
        description: String,
        occurred_at: Timestamp,
        channel: Channel,
        report_target_s: u32,
    },
    /// Step 2. Carries the whole policy version so that replay never needs to look it up.
    Notified {
        severity: Severity,
        policy: SloPolicy,
    },
    ButtonSet {
        enabled: bool,
        cause: ButtonCause,
    },
    Acknowledged,
    BannerSet {
        shown: bool,
        message: Option<String>,
    },
    /// Step 3. `round` is the validation round this notice opens (1, 2, ...).
    ResolutionNotified {
        round: u32,
        summary: String,
    },
    /// Step 4 (and 5 when passed); persistence when not passed.
    ValidationRecorded {
        round: u32,
        passed: bool,
        observations: Vec<String>,
    },
    ReportFormSubmitted {
        form: IncidentReport,
    },
    /// Accepted when `complete`; otherwise a request for the `missing` fields.
    ReportFormReviewed {
        complete: bool,
        missing: Vec<String>,
        message: Option<String>,
    },
    SeverityChanged {
        from: Severity,
        to: Severity,
        reason: String,
    },
    WarningIssued {
        clock: ClockId,
        to: Vec<UserId>,
    },
    ClockBreached {
        clock: ClockId,
    },
    /// `clock` is `None` for a manual escalation (which has a `reason`).
    Escalated {
        clock: Option<ClockId>,
        level: u32,
        to: UserId,
        cc: Vec<UserId>,
        reason: Option<String>,
    },
    Closed,
    Dismissed {
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
