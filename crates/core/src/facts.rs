//! Clock facts: one row per clock of an incident, what the SLO reports read.
//!
//! A fact is a clock's measurable outcome with the attributes a report groups by. It is
//! derived from the incident after each event, so the store can keep a fact table in the
//! same transaction as the events and the audit can rebuild it by a replay:
//!
//! - the clock's own figures (target, start, running time, stop, breach, escalation level)
//!   are copied from the [`Clock`] whenever the clock changes;
//! - its **severity** is the incident's severity at the last event that changed the clock
//!   (so an `ack` clock stopped before a severity change stays measured, and grouped, at
//!   the severity whose target it ran against);
//! - the incident-wide attributes (agency, policy version, dismissed) are brought up to
//!   date on every clock when they change, without touching the clock's severity, except
//!   that a clock stopped before the incident had one (`report`) takes the first.
//!
//! The fold is per event: the same events always give the same facts, however they were
//! batched into appends.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::event::Event;
use crate::incident::{Incident, IncidentState, ReplayError};
use crate::slo::{Clock, ClockId};
use crate::types::{AgencyId, Severity};

/// One clock's figures and the attributes reports group it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockFact {
    /// Which clock of the incident.
    pub clock: ClockId,
    /// The incident's agency.
    pub agency_id: AgencyId,
    /// The incident's severity at the last event that changed the clock.
    pub severity: Option<Severity>,
    /// The policy version the incident runs under (`None` before notification).
    pub policy_version: Option<u32>,
    /// The incident was dismissed: not an incident, its clocks are not measured.
    pub dismissed: bool,
    /// The target in seconds the clock ran against.
    pub target_s: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// Running time of the finished segments, in milliseconds.
    pub accumulated_ms: i64,
    /// Start of the current running segment, while it runs.
    pub running_since: Option<Timestamp>,
    /// When it stopped for good.
    pub stopped_at: Option<Timestamp>,
    /// When its running time reached the target.
    pub breached_at: Option<Timestamp>,
    /// Highest automatic escalation level reached on it.
    pub escalation_level: u32,
}

impl ClockFact {
    fn of(clock: &Clock, incident: &Incident) -> ClockFact {
        ClockFact {
            clock: clock.id,
            agency_id: incident.agency_id,
            severity: incident.severity,
            policy_version: incident.policy.as_ref().map(|p| p.version),
            dismissed: incident.state == IncidentState::Dismissed,
            target_s: clock.target_s,
            started_at: clock.started_at,
            accumulated_ms: clock.accumulated_ms,
            running_since: clock.running_since,
            stopped_at: clock.stopped_at,
            breached_at: clock.breached_at,
            escalation_level: clock.escalation_level,
        }
    }

    /// When its outcome became known: the breach, or else the stop (met). `None` while it
    /// can still go either way.
    pub fn outcome_at(&self) -> Option<Timestamp> {
        self.breached_at.or(self.stopped_at)
    }

    /// Running time at `now` (at the stop, for a stopped clock), in milliseconds.
    pub fn used_ms(&self, now: Timestamp) -> i64 {
        let current = self
            .running_since
            .map_or(0, |since| crate::slo::millis_between(since, now).max(0));
        self.accumulated_ms.saturating_add(current)
    }

    /// Time it did not count between its start and its stop (or `now`): paused while the
    /// step was in the central side's court (CEDN validating, the help desk reviewing the
    /// form).
    pub fn paused_ms(&self, now: Timestamp) -> i64 {
        let end = self.stopped_at.unwrap_or(now);
        let wall = crate::slo::millis_between(self.started_at, end).max(0);
        (wall - self.used_ms(now)).max(0)
    }
}

/// What one event did to the facts of one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactChange {
    /// The clock is new or changed: its whole fact.
    Put(ClockFact),
    /// Only the incident-wide attributes changed; the rest stays, severity included
    /// unless the clock had none (it stopped before notification, like `report`: it is
    /// grouped under the severity the incident was first given).
    Attributes {
        /// The clock.
        clock: ClockId,
        /// The incident's severity, for a clock that has none yet.
        severity: Option<Severity>,
        /// The incident's agency.
        agency_id: AgencyId,
        /// The policy version.
        policy_version: Option<u32>,
        /// Dismissed.
        dismissed: bool,
    },
}

impl FactChange {
    /// The clock it is about.
    pub fn clock(&self) -> ClockId {
        match self {
            FactChange::Put(f) => f.clock,
            FactChange::Attributes { clock, .. } => *clock,
        }
    }

    /// Applies it to a set of facts.
    pub fn apply(&self, facts: &mut BTreeMap<ClockId, ClockFact>) {
        match self {
            FactChange::Put(f) => {
                facts.insert(f.clock, f.clone());
            }
            FactChange::Attributes {
                clock,
                severity,
                agency_id,
                policy_version,
                dismissed,
            } => {
                if let Some(f) = facts.get_mut(clock) {
                    f.severity = f.severity.or(*severity);
                    f.agency_id = *agency_id;
                    f.policy_version = *policy_version;
                    f.dismissed = *dismissed;
                }
            }
        }
    }

    /// Merges a later change of the same clock into this one.
    fn then(self, later: FactChange) -> FactChange {
        match (self, later) {
            (_, put @ FactChange::Put(_)) => put,
            (
                FactChange::Put(mut f),
                FactChange::Attributes {
                    severity,
                    agency_id,
                    policy_version,
                    dismissed,
                    ..
                },
            ) => {
                f.severity = f.severity.or(severity);
                f.agency_id = agency_id;
                f.policy_version = policy_version;
                f.dismissed = dismissed;
                FactChange::Put(f)
            }
            (
                FactChange::Attributes {
                    severity: first, ..
                },
                FactChange::Attributes {
                    clock,
                    severity,
                    agency_id,
                    policy_version,
                    dismissed,
                },
            ) => FactChange::Attributes {
                clock,
                // The earlier fill wins: the stored severity is filled once.
                severity: first.or(severity),
                agency_id,
                policy_version,
                dismissed,
            },
        }
    }
}

fn attributes(i: &Incident) -> (bool, AgencyId, Option<u32>, bool) {
    (
        i.severity.is_some(),
        i.agency_id,
        i.policy.as_ref().map(|p| p.version),
        i.state == IncidentState::Dismissed,
    )
}

/// What one event did to the facts: `before` is the incident before it (`None` for the
/// first event), `after` the incident after it.
pub fn changes(before: Option<&Incident>, after: &Incident) -> Vec<FactChange> {
    let attrs_changed = before.is_none_or(|b| attributes(b) != attributes(after));
    let (_, agency_id, policy_version, dismissed) = attributes(after);
    after
        .clocks
        .iter()
        .filter_map(|clock| {
            let prior = before.and_then(|b| b.clock(clock.id));
            let fact = ClockFact::of(clock, after);
            // A change the facts do not hold (a warning's mark, for one) writes nothing:
            // the clock's figures are compared, with the same attributes.
            if prior.is_none_or(|p| ClockFact::of(p, after) != fact) {
                Some(FactChange::Put(fact))
            } else if attrs_changed {
                Some(FactChange::Attributes {
                    clock: clock.id,
                    severity: after.severity,
                    agency_id,
                    policy_version,
                    dismissed,
                })
            } else {
                None
            }
        })
        .collect()
}

/// The changes of a run of events, one per clock (later changes merged into earlier
/// ones), in clock order: what an append writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactChanges(BTreeMap<ClockId, FactChange>);

impl FactChanges {
    /// Adds the changes of one more event.
    pub fn add(&mut self, changes: Vec<FactChange>) {
        for change in changes {
            let id = change.clock();
            let merged = match self.0.remove(&id) {
                Some(earlier) => earlier.then(change),
                None => change,
            };
            self.0.insert(id, merged);
        }
    }

    /// The merged changes, in clock order.
    pub fn into_vec(self) -> Vec<FactChange> {
        self.0.into_values().collect()
    }
}

/// Replays `events` from the first: the incident and the facts the fact table must hold
/// for it (what the audit compares the table with).
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<(Incident, BTreeMap<ClockId, ClockFact>), ReplayError> {
    let mut facts = BTreeMap::new();
    let mut state: Option<Incident> = None;
    for event in events {
        let after = Incident::apply(state.clone(), event)?;
        for change in changes(state.as_ref(), &after) {
            change.apply(&mut facts);
        }
        state = Some(after);
    }
    let incident = state.ok_or(ReplayError {
        kind: "ninguno",
        position: 0,
        reason: "el historial está vacío",
    })?;
    Ok((incident, facts))
}
