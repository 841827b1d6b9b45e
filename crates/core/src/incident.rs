//! The incident aggregate's state and how events fold into it.
//!
//! `apply` is the only code that changes an [`Incident`]; [`crate::decide`] only reads one.
//! Replaying an incident's events with [`Incident::replay`] rebuilds it exactly, which is
//! what the store relies on and the property tests check.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::escalation::Side;
use crate::event::{Change, Event};
use crate::portal::{PortalState, closing_conditions_unmet};
use crate::report_form::{FormContext, FormField, IncidentReport};
use crate::slo::{Clock, ClockId, ClockName, ClockState, SloPolicy};
use crate::types::{AgencyId, Channel, Folio, IncidentKind, ProcedureId, Severity};

/// Where the incident is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Step 1 done: reported, waiting for the help desk's notification.
    Reported,
    /// Step 2 sent: waiting for the responsible's acknowledgment.
    AwaitingAck,
    /// Acknowledged (or back after a failed validation): the agency is correcting.
    InCorrection,
    /// Step 3 done: resolution notice sent, waiting for CEDN's verdict.
    AwaitingValidation,
    /// Steps 4 and 5: validation passed.
    Validated,
    /// Step 7: closed by the help desk once the closing rule held. Terminal.
    Closed,
    /// Set aside by the help desk as not an incident (duplicate, false alarm). Terminal; the
    /// record is kept.
    Dismissed,
}

impl IncidentState {
    /// Every state, in protocol order.
    pub const ALL: [IncidentState; 7] = [
        IncidentState::Reported,
        IncidentState::AwaitingAck,
        IncidentState::InCorrection,
        IncidentState::AwaitingValidation,
        IncidentState::Validated,
        IncidentState::Closed,
        IncidentState::Dismissed,
    ];

    /// The API / code name (`snake_case`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Reported => "reported",
            IncidentState::AwaitingAck => "awaiting_ack",
            IncidentState::InCorrection => "in_correction",
            IncidentState::AwaitingValidation => "awaiting_validation",
            IncidentState::Validated => "validated",
            IncidentState::Closed => "closed",
            IncidentState::Dismissed => "dismissed",
        }
    }

    /// The Spanish label shown to users.
    pub fn label(self) -> &'static str {
        match self {
            IncidentState::Reported => "Reportada",
            IncidentState::AwaitingAck => "En espera de confirmación",
            IncidentState::InCorrection => "En corrección",
            IncidentState::AwaitingValidation => "En validación",
            IncidentState::Validated => "Validada",
            IncidentState::Closed => "Cerrada",
            IncidentState::Dismissed => "Descartada",
        }
    }

    /// Closed and dismissed incidents accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(self, IncidentState::Closed | IncidentState::Dismissed)
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the report form (step 6) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormState {
    /// Before the first resolution notice.
    NotDue,
    /// Owed by the agency: the first resolution notice was sent and no form delivered yet,
    /// or a validation failed after the form was accepted (it is owed again).
    Due,
    /// Saved by the agency but not delivered: still owed, the clock unaffected.
    Draft,
    /// Delivered; waiting for the help desk's review.
    Submitted,
    /// The help desk asked for complementary information.
    Incomplete,
    /// Accepted as complete by the help desk: the closing rule's form condition holds.
    Accepted,
}

impl ReportFormState {
    /// The API / code name (`snake_case`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormState::NotDue => "not_due",
            ReportFormState::Due => "due",
            ReportFormState::Draft => "draft",
            ReportFormState::Submitted => "submitted",
            ReportFormState::Incomplete => "incomplete",
            ReportFormState::Accepted => "accepted",
        }
    }
}

/// The report form's progress (step 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFormStatus {
    /// Where the form is.
    pub state: ReportFormState,
    /// The latest form the agency sent.
    pub form: Option<IncidentReport>,
    /// Fields named in the help desk's latest request for complementary information, or,
    /// when a failed validation sent an accepted form back, the fields to revise
    /// (`restored_at`, `root_cause`).
    pub requested: Vec<String>,
}

/// The outcome of one validation round (step 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRound {
    /// 1, 2, ...: one round per resolution notice.
    pub round: u32,
    /// The resolution notice (step 3) that opened the round.
    pub notified_at: Timestamp,
    /// The agency's account of the correction.
    pub summary: String,
    /// `None` while waiting for CEDN.
    pub passed: Option<bool>,
    /// CEDN's observations; a failed round has at least one.
    pub observations: Vec<String>,
    /// When CEDN gave its verdict; `None` while waiting.
    pub decided_at: Option<Timestamp>,
}

/// The aggregate. Public fields for reading (API documents, pages); only `apply` writes.
///
/// Fields added after the first release carry `#[serde(default)]` so that a stored
/// projection from before still reads; replaying the events (the record) gives their
/// true values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its human identifier.
    pub folio: Folio,
    /// The agency that owns the affected procedures.
    pub agency_id: AgencyId,
    /// The affected procedures, as reported.
    pub procedure_ids: Vec<ProcedureId>,
    /// Which of the four failures it is.
    pub kind: IncidentKind,
    /// What the reporter saw.
    pub description: String,
    /// How the report (step 1) arrived.
    pub channel: Channel,
    /// When the failure happened: the `report` clock's start.
    pub occurred_at: Timestamp,
    /// Whether a person vouched for `occurred_at`: false for a report by email (its
    /// instant is the message's date) until the help desk notifies it, confirming or
    /// correcting the instant. Projections stored before the field existed were all
    /// given by a person.
    #[serde(default = "confirmed")]
    pub occurred_at_confirmed: bool,
    /// When it was registered (step 1): the `report` clock's stop.
    pub reported_at: Timestamp,
    /// Where it is in the protocol.
    pub state: IncidentState,
    /// Set at notification (step 2), changed only by a severity change; `None` before.
    pub severity: Option<Severity>,
    /// The policy version in force at notification, kept for the incident's whole life.
    pub policy: Option<SloPolicy>,
    /// When the help desk notified it (step 2): the `ack` and `resolution` clocks' start.
    pub notified_at: Option<Timestamp>,
    /// When the responsible acknowledged it, directly or by a resolution notice.
    pub acknowledged_at: Option<Timestamp>,
    /// The validation rounds, in order: one per resolution notice.
    pub rounds: Vec<ValidationRound>,
    /// The portal button and banner as this incident left them.
    pub portal: PortalState,
    /// When the agency first reported the banner shown (step 2 (3)); `None` if it never
    /// was. The closing rule needs it, or a recorded exemption.
    #[serde(default)]
    pub banner_first_shown_at: Option<Timestamp>,
    /// Why the banner was not shown, as the help desk recorded it.
    #[serde(default)]
    pub banner_exemption: Option<String>,
    /// The report form (step 6).
    pub report_form: ReportFormStatus,
    /// Every clock ever started, in start order (validation rounds in round order).
    pub clocks: Vec<Clock>,
    /// Highest escalation level reached on either side, automatic or manual: the
    /// incident's overall level, as the API shows it.
    pub escalation_level: u32,
    /// Highest level reached on the agency's ladder (see [`Side`]).
    #[serde(default)]
    pub agency_escalation_level: u32,
    /// Highest level reached on the central (CEDN) ladder.
    #[serde(default)]
    pub central_escalation_level: u32,
    /// Number of escalations the help desk made by hand.
    pub manual_escalations: u32,
    /// When it was closed or dismissed.
    pub closed_at: Option<Timestamp>,
    /// The help desk's reason, when dismissed.
    pub dismissal_reason: Option<String>,
    /// Instant of the latest event: commands are never decided before it.
    pub last_event_at: Timestamp,
    /// Number of events applied; the store's optimistic-concurrency version.
    pub version: u64,
}

/// An event that does not fit the state it is applied to: a corrupted or reordered
/// stream. Decided events never produce it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evento «{kind}» no aplicable en la posición {position} del historial: {reason}")]
pub struct ReplayError {
    /// The offending event's `kind` ("ninguno" for an empty stream).
    pub kind: &'static str,
    /// How many events were applied before it (its 0-based index in the stream).
    pub position: u64,
    /// What does not fit, in Spanish.
    pub reason: &'static str,
}

impl Incident {
    /// Builds the state from a whole stream of events, the first being `reported`.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<Incident, ReplayError> {
        let mut state: Option<Incident> = None;
        for event in events {
            state = Some(Incident::apply(state, event)?);
        }
        state.ok_or(ReplayError {
            kind: "ninguno",
            position: 0,
            reason: "el historial está vacío",
        })
    }

    /// Folds one event. `state` is `None` only before the first (`reported`) event.
    pub fn apply(state: Option<Incident>, event: &Event) -> Result<Incident, ReplayError> {
        let position = state.as_ref().map_or(0, |s| s.version);
        let fail = |reason| ReplayError {
            kind: event.change.kind(),
            position,
            reason,
        };
        let at = event.at;
        let mut s = match (state, &event.change) {
            (
                None,
                Change::Reported {
                    folio,
                    agency_id,
                    procedure_ids,
                    kind,
                    description,
                    occurred_at,
                    channel,
                    report_target_s,
                },
            ) => {
                let mut report = Clock::start(ClockId::REPORT, *report_target_s, *occurred_at);
                report.stop(at);
                return Ok(Incident {
                    folio: *folio,
                    agency_id: *agency_id,
                    procedure_ids: procedure_ids.clone(),
                    kind: *kind,
                    description: description.clone(),
                    channel: *channel,
                    occurred_at: *occurred_at,
                    occurred_at_confirmed: *channel != Channel::Email,
                    reported_at: at,
                    state: IncidentState::Reported,
                    severity: None,
                    policy: None,
                    notified_at: None,
                    acknowledged_at: None,
                    rounds: Vec::new(),
                    portal: PortalState::default(),
                    banner_first_shown_at: None,
                    banner_exemption: None,
                    report_form: ReportFormStatus {
                        state: ReportFormState::NotDue,
                        form: None,
                        requested: Vec::new(),
                    },
                    clocks: vec![report],
                    escalation_level: 0,
                    agency_escalation_level: 0,
                    central_escalation_level: 0,
                    manual_escalations: 0,
                    closed_at: None,
                    dismissal_reason: None,
                    last_event_at: at,
                    version: 1,
                });
            }
            (None, _) => return Err(fail("el primer evento debe ser «reported»")),
            (Some(s), _) => s,
        };
        if at < s.last_event_at {
            return Err(fail("el instante es anterior al del evento previo"));
        }
        // Any overrun that happened before this instant is recorded before the change, so
        // that a later change (new target, stop) can never hide it.
        for clock in &mut s.clocks {
            if !clock.is_stopped() {
                clock.settle(at);
            }
        }
        match &event.change {
            Change::Reported { .. } => return Err(fail("la incidencia ya estaba registrada")),
            Change::OccurredAtCorrected { occurred_at, .. } => {
                s.occurred_at = *occurred_at;
                let reported_at = s.reported_at;
                if let Some(report) = s.clock_mut(ClockId::REPORT) {
                    let mut again = Clock::start(ClockId::REPORT, report.target_s, *occurred_at);
                    again.stop(reported_at);
                    *report = again;
                }
            }
            Change::Notified { severity, policy } => {
                s.occurred_at_confirmed = true;
                s.state = IncidentState::AwaitingAck;
                s.severity = Some(*severity);
                s.notified_at = Some(at);
                let report_target = policy.target_s(ClockName::Report, *severity);
                if let Some(report) = s.clock_mut(ClockId::REPORT) {
                    report.retarget(report_target, at);
                }
                let ack = policy.target_s(ClockName::Ack, *severity);
                let resolution = policy.target_s(ClockName::Resolution, *severity);
                s.clocks.push(Clock::start(ClockId::ACK, ack, at));
                s.clocks
                    .push(Clock::start(ClockId::RESOLUTION, resolution, at));
                s.policy = Some(policy.clone());
            }
            Change::ButtonSet { enabled, .. } => s.portal.button_enabled = *enabled,
            Change::Acknowledged => {
                s.state = IncidentState::InCorrection;
                s.acknowledged_at = Some(at);
                s.stop(ClockId::ACK, at);
            }
            Change::BannerExempted { reason } => s.banner_exemption = Some(reason.clone()),
            // A record and a warning; the portal's state is the agency's report.
            Change::BannerNotSeen { .. } => {}
            Change::BannerSet { shown, message, .. } => {
                if *shown && s.banner_first_shown_at.is_none() {
                    s.banner_first_shown_at = Some(at);
                }
                s.portal.banner_shown = *shown;
                s.portal.banner_message = if *shown { message.clone() } else { None };
            }
            Change::ResolutionNotified { round, summary } => {
                s.state = IncidentState::AwaitingValidation;
                if let Some(c) = s.clock_mut(ClockId::RESOLUTION) {
                    c.pause(at);
                }
                let (validation, form) = match (s.severity, &s.policy) {
                    (Some(sev), Some(p)) => (
                        p.target_s(ClockName::Validation, sev),
                        p.target_s(ClockName::ReportForm, sev),
                    ),
                    _ => return Err(fail("aviso de resolución sin notificación previa")),
                };
                s.clocks
                    .push(Clock::start(ClockId::validation(*round), validation, at));
                match s.report_form.state {
                    ReportFormState::NotDue => {
                        s.report_form.state = ReportFormState::Due;
                        s.clocks.push(Clock::start(ClockId::REPORT_FORM, form, at));
                    }
                    // Sent back by a failed validation: the clock runs again from this
                    // notice (no-op when it already runs).
                    ReportFormState::Submitted | ReportFormState::Accepted => {}
                    _ => {
                        if let Some(c) = s.clock_mut(ClockId::REPORT_FORM) {
                            c.resume(at);
                        }
                    }
                }
                s.rounds.push(ValidationRound {
                    round: *round,
                    notified_at: at,
                    summary: summary.clone(),
                    passed: None,
                    observations: Vec::new(),
                    decided_at: None,
                });
            }
            Change::ValidationRecorded {
                round,
                passed,
                observations,
            } => {
                s.stop(ClockId::validation(*round), at);
                let Some(r) = s.rounds.iter_mut().find(|r| r.round == *round) else {
                    return Err(fail("ronda de validación desconocida"));
                };
                r.passed = Some(*passed);
                r.observations = observations.clone();
                r.decided_at = Some(at);
                if *passed {
                    s.state = IncidentState::Validated;
                    s.stop(ClockId::RESOLUTION, at);
                } else {
                    // Persistence: back to the agency, its resolution clock runs again.
                    s.state = IncidentState::InCorrection;
                    if let Some(c) = s.clock_mut(ClockId::RESOLUTION) {
                        c.resume(at);
                    }
                    // An accepted form described a restoration that did not hold: it is
                    // owed again, naming what changed; its clock stays paused until the
                    // next resolution notice (PROTOCOL.md, "Clock rules"). A form still
                    // under review is left to the help desk's review.
                    if s.report_form.state == ReportFormState::Accepted {
                        s.report_form.state = ReportFormState::Due;
                        s.report_form.requested = vec![
                            FormField::RestoredAt.as_str().to_string(),
                            FormField::RootCause.as_str().to_string(),
                        ];
                        if let Some(c) = s.clock_mut(ClockId::REPORT_FORM) {
                            c.reopen();
                        }
                    }
                }
            }
            Change::ReportFormSubmitted { form } => {
                s.report_form.state = ReportFormState::Submitted;
                s.report_form.form = Some(form.clone());
                // The form is in the help desk's court until reviewed: `report_form`
                // measures the agency's delivery only (PROTOCOL.md, "Clock rules").
                if let Some(c) = s.clock_mut(ClockId::REPORT_FORM) {
                    c.pause(at);
                }
            }
            Change::ReportFormDraftSaved { form } => {
                // The help desk's latest request stays in `requested`: the agency is
                // answering it.
                s.report_form.state = ReportFormState::Draft;
                s.report_form.form = Some(form.clone());
            }
            Change::ReportFormReviewed {
                complete, missing, ..
            } => {
                if *complete {
                    // Stopped while paused: met iff the accepted form was delivered within
                    // the target, counting the agency's time only.
                    s.report_form.state = ReportFormState::Accepted;
                    s.report_form.requested.clear();
                    s.stop(ClockId::REPORT_FORM, at);
                } else {
                    // Back in the agency's court: the clock runs again from the request
                    // (PROTOCOL.md, decision).
                    s.report_form.state = ReportFormState::Incomplete;
                    s.report_form.requested = missing.clone();
                    if let Some(c) = s.clock_mut(ClockId::REPORT_FORM) {
                        c.resume(at);
                    }
                }
            }
            Change::SeverityChanged { to, .. } => {
                s.severity = Some(*to);
                let Some(policy) = s.policy.clone() else {
                    return Err(fail("cambio de severidad sin notificación previa"));
                };
                for clock in s.clocks.iter_mut().filter(|c| !c.is_stopped()) {
                    clock.retarget(policy.target_s(clock.id.name, *to), at);
                }
            }
            Change::WarningIssued { clock, .. } => match s.clock_mut(*clock) {
                Some(c) => c.warned = true,
                None => return Err(fail("reloj desconocido")),
            },
            Change::ClockBreached { clock } => match s.clock_mut(*clock) {
                Some(c) => {
                    c.breach_recorded = true;
                    if c.breached_at.is_none() {
                        c.breached_at = Some(at);
                    }
                }
                None => return Err(fail("reloj desconocido")),
            },
            Change::Escalated {
                clock, side, level, ..
            } => {
                match clock {
                    Some(id) => match s.clock_mut(*id) {
                        Some(c) => c.escalation_level = c.escalation_level.max(*level),
                        None => return Err(fail("reloj desconocido")),
                    },
                    None => s.manual_escalations += 1,
                }
                let side_level = match side {
                    Side::Agency => &mut s.agency_escalation_level,
                    Side::Central => &mut s.central_escalation_level,
                };
                *side_level = (*side_level).max(*level);
                s.escalation_level = s.escalation_level.max(*level);
            }
            Change::Closed => {
                s.state = IncidentState::Closed;
                s.closed_at = Some(at);
                s.stop_all(at);
            }
            Change::Dismissed { reason, .. } => {
                s.state = IncidentState::Dismissed;
                s.closed_at = Some(at);
                s.dismissal_reason = Some(reason.clone());
                s.stop_all(at);
            }
        }
        s.last_event_at = at;
        s.version += 1;
        Ok(s)
    }

    /// Highest escalation level reached on `side`'s ladder.
    pub fn escalation_level_of(&self, side: Side) -> u32 {
        match side {
            Side::Agency => self.agency_escalation_level,
            Side::Central => self.central_escalation_level,
        }
    }

    /// The clock `id`, if it has started.
    pub fn clock(&self, id: ClockId) -> Option<&Clock> {
        self.clocks.iter().find(|c| c.id == id)
    }

    fn clock_mut(&mut self, id: ClockId) -> Option<&mut Clock> {
        self.clocks.iter_mut().find(|c| c.id == id)
    }

    fn stop(&mut self, id: ClockId, at: Timestamp) {
        if let Some(c) = self.clock_mut(id) {
            c.stop(at);
        }
    }

    fn stop_all(&mut self, at: Timestamp) {
        for c in &mut self.clocks {
            c.stop(at);
        }
    }

    /// The validation clocks, one per round.
    pub fn validation_clocks(&self) -> impl Iterator<Item = &Clock> {
        self.clocks
            .iter()
            .filter(|c| c.id.name == ClockName::Validation)
    }

    /// Number of resolution notices sent (each opens a validation round).
    pub fn validation_rounds(&self) -> u32 {
        u32::try_from(self.rounds.len()).unwrap_or(u32::MAX)
    }

    /// The latest validation round, if a resolution notice was sent.
    pub fn current_round(&self) -> Option<&ValidationRound> {
        self.rounds.last()
    }

    /// Whether the latest validation round passed.
    pub fn validation_passed(&self) -> bool {
        self.current_round().and_then(|r| r.passed) == Some(true)
    }

    /// First and latest resolution notice instants.
    pub fn first_resolution_at(&self) -> Option<Timestamp> {
        self.rounds.first().map(|r| r.notified_at)
    }

    /// The latest resolution notice instant.
    pub fn last_resolution_at(&self) -> Option<Timestamp> {
        self.rounds.last().map(|r| r.notified_at)
    }

    /// The context the report form is checked against.
    pub fn form_context(&self) -> FormContext {
        FormContext {
            occurred_at: self.occurred_at,
            last_resolution_at: self.last_resolution_at(),
        }
    }

    /// Whether any clock is breached at `now` (for the `breached=true` filter).
    pub fn any_breached(&self, now: Timestamp) -> bool {
        self.clocks
            .iter()
            .any(|c| c.state(now) == ClockState::Breached)
    }

    /// The protocol's invariants, as Spanish-free developer messages; empty when all hold.
    /// The property tests call this after every event; the app may call it in debug builds.
    pub fn invariant_violations(&self, now: Timestamp) -> Vec<String> {
        let mut out = Vec::new();
        if self.state == IncidentState::Closed {
            if !self.validation_passed() {
                out.push("closed without a passed validation".to_string());
            }
            if !closing_conditions_unmet(self).is_empty() {
                out.push(format!(
                    "closed while the closing rule fails: {:?}",
                    closing_conditions_unmet(self)
                ));
            }
        }
        if self.state == IncidentState::Dismissed {
            if self.acknowledged_at.is_some() {
                out.push("dismissed after the agency acknowledged".to_string());
            }
            if !self.portal.button_enabled || self.portal.banner_shown {
                out.push("dismissed without restoring the portal".to_string());
            }
        }
        if self.state.is_terminal() && self.clocks.iter().any(|c| !c.is_stopped()) {
            out.push("a terminal incident has a clock not stopped".to_string());
        }
        for c in &self.clocks {
            if c.elapsed_ms(now) < 0 || c.accumulated_ms < 0 {
                out.push(format!("clock {} has negative elapsed time", c.id));
            }
            if c.is_running() && c.is_stopped() {
                out.push(format!("clock {} is running and stopped", c.id));
            }
        }
        let awaiting = self.state == IncidentState::AwaitingValidation;
        let open_round = self.rounds.last().is_some_and(|r| r.passed.is_none());
        // A dismissal may come while CEDN holds a resolution notice: that round then never
        // gets a verdict, which is the truth, so the check is for open incidents only.
        if !self.state.is_terminal() && awaiting != open_round {
            out.push("awaiting_validation iff the last round has no verdict".to_string());
        }
        if self.escalation_level
            != self
                .agency_escalation_level
                .max(self.central_escalation_level)
        {
            out.push("overall escalation level is not the higher side's".to_string());
        }
        if !self.state.is_terminal()
            && self.clock(ClockId::REPORT_FORM).is_some_and(|c| {
                c.is_stopped() != (self.report_form.state == ReportFormState::Accepted)
            })
        {
            out.push("report_form clock stopped iff the form is accepted".to_string());
        }
        if self.report_form.state == ReportFormState::Submitted
            && self
                .clock(ClockId::REPORT_FORM)
                .is_some_and(Clock::is_running)
        {
            out.push("report_form clock runs while the help desk reviews the form".to_string());
        }
        if self
            .clock(ClockId::RESOLUTION)
            .is_some_and(|c| awaiting && c.is_running())
        {
            out.push("resolution clock runs while CEDN holds the incident".to_string());
        }
        out
    }
}

/// Serde default of [`Incident::occurred_at_confirmed`].
fn confirmed() -> bool {
    true
}
