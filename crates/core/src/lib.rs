//! # incidencias-core
//!
//! The *Protocolo de tratamiento de incidencias* (gob.mx) as a pure library: every question
//! the rest of the product asks of the protocol ("given this incident, this actor, this
//! command and this instant, what happens?") is answered here, with no IO and no clock
//! reads: `now` is always a parameter.
//!
//! - [`types`]: folio, homoclave, email, severity, kind, channel, role.
//! - [`decide()`] turns a [`Command`] into [`Event`]s or a [`DecideError`];
//!   [`Incident::apply`] folds events into state; [`Incident::replay`] rebuilds it.
//! - [`slo`]: clocks (running, paused, met, breached) and the versioned [`SloPolicy`].
//! - [`escalation`]: warnings, breaches and escalations due, each under a stable key.
//! - [`facts`]: one row per clock with what the SLO reports group and measure.
//! - [`portal`]: button, banner, the public status of a procedure and the closing rule.
//! - [`report_form`]: the incident report form and its completeness rules.

#![warn(missing_docs)]

pub mod actions;
pub mod command;
pub mod decide;
pub mod escalation;
pub mod event;
pub mod facts;
pub mod incident;
pub mod portal;
pub mod report_form;
pub mod slo;
pub mod types;

pub use command::{Command, DecideError, FieldError, NewReport, OccurredAtCorrection};
pub use decide::decide;
pub use escalation::{
    ActionKey, ActionKind, DueAction, Ladder, Side, due_actions, next_due, planned,
};
pub use event::{Actor, BannerCause, ButtonCause, Change, Event, Via};
pub use incident::{Incident, IncidentState, ReplayError, ReportFormState};
pub use portal::{
    ClosingCondition, PortalState, PublicState, closing_conditions_unmet, procedure_status,
};
pub use report_form::{FormField, FormIssue, IncidentReport};
pub use slo::{Clock, ClockId, ClockName, ClockState, SloPolicy, policy_in_force};
pub use types::{
    AgencyId, Channel, Email, Folio, Homoclave, IncidentKind, ParseError, ProcedureId, Role,
    Severity, UserId,
};
