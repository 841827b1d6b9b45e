//! Events: the record. Every change to an incident is one of these, appended and never
//! rewritten; [`crate::Incident::apply`] folds them into state.
//!
//! The serde form is the stored form (`{"kind": ..., "data": {...}}` for [`Change`]), so
//! renaming a variant or a field is a migration, not a refactor.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::escalation::Side;
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
    /// The system itself: the scheduler firing planned actions ([`crate::Command::Fire`]),
    /// and the automatic consequences of a person's command (see [`Change::is_automatic`]).
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

/// One appended fact: when, who, how, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was decided, in whole milliseconds, never before the previous event.
    pub at: Timestamp,
    /// Who asked for it.
    pub actor: Actor,
    /// How the person's request arrived (none for the system's own acts, and for events
    /// recorded before it was kept). Not part of the protocol's decision: the front end
    /// that took the request says it, and the record keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// What changed.
    pub change: Change,
}

/// How a person's request reached the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Via {
    /// The JSON API (a token or a browser session).
    Api,
    /// A web page of the service.
    Web,
    /// A signed one-click link from an email.
    Link,
    /// A reply by email; the SHA-256 of the message's bytes ties the event to the message
    /// kept in the received mail.
    Email {
        /// Hex SHA-256 of the raw message.
        message_sha256: String,
    },
}

/// Why the portal button changed. All button changes are CEDN's actions in the protocol;
/// the cause says whether it was the automatic one of a step (recorded with
/// [`Actor::System`] as actor) or a validator's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonCause {
    /// Step 2: disabled on notification.
    Notification,
    /// Step 4: enabled on a passed validation.
    Validation,
    /// A validator switched it by hand.
    Manual,
    /// Enabled again when a notified report was dismissed as not an incident.
    Dismissal,
}

/// Why the banner changed: the agency's own report (steps 2 and 5) or an automatic
/// restoration of the portal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BannerCause {
    /// The agency reported it shown or removed. The default, so that events stored before
    /// the cause existed read as what they were.
    #[default]
    Agency,
    /// Removed when a notified report was dismissed as not an incident.
    Dismissal,
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
    /// Step 2: the help desk corrected when the failure began (a report by email starts
    /// with the message's date); the `report` clock starts again from the new instant.
    OccurredAtCorrected {
        /// The corrected instant.
        occurred_at: Timestamp,
        /// The instant recorded before.
        previous: Timestamp,
        /// Why, trimmed.
        reason: String,
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
        /// The agency's report, or an automatic restoration (then the actor is
        /// [`Actor::System`]).
        #[serde(default)]
        cause: BannerCause,
    },
    /// The service looked for the banner on the procedure's page on the portal, after the
    /// agency reported it shown, and did not find it; the help desk is warned. Changes
    /// nothing else: the agency's report stands until someone acts.
    BannerNotSeen {
        /// The page fetched.
        url: String,
        /// What was seen instead, in Spanish.
        detail: String,
    },
    /// The help desk recorded why the banner was not shown during the incident (an
    /// alternative to it in the closing rule).
    BannerExempted {
        /// The help desk's reason, trimmed.
        reason: String,
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
    /// Step 6: the agency delivered the form, complete by the system's checks at the
    /// time (the help desk may still find it insufficient at review). Events stored before
    /// drafts existed may hold an incomplete form.
    ReportFormSubmitted {
        /// The form as delivered (instants in whole milliseconds); replaces any earlier one.
        form: IncidentReport,
    },
    /// The agency saved a draft of the form, not delivered: no clock effect, no email.
    ReportFormDraftSaved {
        /// The form as saved (instants in whole milliseconds), possibly partial; replaces
        /// any earlier one.
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
        /// The ladder climbed: the clock's side, or for a manual escalation the side that
        /// owned the step the incident waited for.
        #[serde(default)]
        side: Side,
        /// The level reached on that side's ladder: 1 is the immediate superior.
        level: u32,
        /// The superior at that level.
        to: UserId,
        /// Copied: whoever must act (level 0 of the same side) and, on the central side,
        /// the procedure's responsible too.
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
        /// The report had been notified (step 2): the responsibles and CEDN must hear of
        /// the dismissal, and the portal is restored by the automatic `button_set` /
        /// `banner_set` events decided with it. False for a report dismissed before
        /// notification (nobody outside the help desk knew of it).
        #[serde(default)]
        notified: bool,
    },
}

impl Change {
    /// Whether the change is an automatic consequence of another one rather than what the
    /// actor asked for: such events are recorded with [`Actor::System`] as their actor
    /// (their cause says why), so the record never shows a person doing what the system
    /// did on someone's behalf.
    pub fn is_automatic(&self) -> bool {
        match self {
            // Every button change but a validator's own is a step's consequence, made on
            // CEDN's behalf (PROTOCOL.md, "Portal state").
            Change::ButtonSet { cause, .. } => *cause != ButtonCause::Manual,
            Change::BannerSet { cause, .. } => *cause != BannerCause::Agency,
            _ => false,
        }
    }

    /// The stored `kind` name (equal to the serde tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Reported { .. } => "reported",
            Change::OccurredAtCorrected { .. } => "occurred_at_corrected",
            Change::Notified { .. } => "notified",
            Change::ButtonSet { .. } => "button_set",
            Change::Acknowledged => "acknowledged",
            Change::BannerSet { .. } => "banner_set",
            Change::BannerExempted { .. } => "banner_exempted",
            Change::BannerNotSeen { .. } => "banner_not_seen",
            Change::ResolutionNotified { .. } => "resolution_notified",
            Change::ValidationRecorded { .. } => "validation_recorded",
            Change::ReportFormSubmitted { .. } => "report_form_submitted",
            Change::ReportFormDraftSaved { .. } => "report_form_draft_saved",
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
