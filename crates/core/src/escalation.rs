//! Escalation planning, pure: which warnings, breaches and escalations an incident has due,
//! to whom, and when the next one becomes due.
//!
//! Every action has a stable [`ActionKey`] (incident, clock, kind, level). Executing an
//! action appends an event that the planner then sees (the clock's `warned`,
//! `breach_recorded` or `escalation_level`), so an action once executed is never planned
//! again: the store can put a unique index on the key and a second firing is impossible.
//!
//! All instants are computed from a clock's *running time*: a paused clock plans nothing,
//! and the levels after a breach climb one per further target period (or the policy's
//! `escalation_repeat_s`) of running time, up to the top of the ladder.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::Change;
use crate::incident::Incident;
use crate::slo::{Clock, ClockId};
use crate::types::{Folio, UserId};

/// Who is above whom. `agency[0]` is the procedure's responsible and `agency[n]` the
/// escalation target at level n (the responsible's `reports_to` chain); `central[0]` is
/// who acts for CEDN and `central[n]` its level-n superior.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    /// The agency side, for `ack`, `resolution` and `report_form`.
    pub agency: Vec<UserId>,
    /// The central side, for `validation`.
    pub central: Vec<UserId>,
}

/// Longest chain [`Ladder::chain`] will follow: org charts deeper than this are a data
/// error, and a cycle must not hang the planner.
pub const MAX_LADDER_DEPTH: usize = 32;

impl Ladder {
    /// The chain starting at `start` and following `reports_to`, stopping at the top, at a
    /// repeated person (a cycle in the org chart) or at [`MAX_LADDER_DEPTH`].
    pub fn chain(start: UserId, reports_to: impl Fn(UserId) -> Option<UserId>) -> Vec<UserId> {
        let mut chain = vec![start];
        let mut current = start;
        while chain.len() < MAX_LADDER_DEPTH {
            match reports_to(current) {
                Some(next) if !chain.contains(&next) => {
                    chain.push(next);
                    current = next;
                }
                _ => break,
            }
        }
        chain
    }

    fn side(&self, clock: ClockId) -> &[UserId] {
        if clock.name.agency_side() {
            &self.agency
        } else {
            &self.central
        }
    }
}

/// What a planned action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// At the policy's share of the target, to whoever must act.
    Warning,
    /// At the target: the clock is recorded as breached.
    Breach,
    /// At the target (level 1) and each further period (levels 2, 3...): the next
    /// superior is notified, cc whoever must act.
    Escalation,
}

impl ActionKind {
    /// The API / code name (`snake_case`), as in the key's text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Warning => "warning",
            ActionKind::Breach => "breach",
            ActionKind::Escalation => "escalation",
        }
    }
}

/// The identity of one firing. Warnings and breaches have level 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActionKey {
    /// The incident.
    pub folio: Folio,
    /// The clock whose running time makes it due.
    pub clock: ClockId,
    /// What it does.
    pub kind: ActionKind,
    /// The ladder level an escalation reaches (1, 2, ...); 0 otherwise.
    pub level: u32,
}

impl ActionKey {
    /// The key an event executed, if it is the event of a planned action (a warning, a
    /// breach, an automatic escalation). Manual escalations have no key: each is its own
    /// decision.
    pub fn of_change(folio: Folio, change: &Change) -> Option<ActionKey> {
        let (clock, kind, level) = match change {
            Change::WarningIssued { clock, .. } => (*clock, ActionKind::Warning, 0),
            Change::ClockBreached { clock } => (*clock, ActionKind::Breach, 0),
            Change::Escalated {
                clock: Some(clock),
                level,
                ..
            } => (*clock, ActionKind::Escalation, *level),
            _ => return None,
        };
        Some(ActionKey {
            folio,
            clock,
            kind,
            level,
        })
    }
}

impl fmt::Display for ActionKey {
    /// `INC-2026-000001/ack/escalation/2`: the form stored in the unique index.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.folio,
            self.clock,
            self.kind.as_str(),
            self.level
        )
    }
}

/// One planned action: when it is due and who hears of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueAction {
    /// Its identity.
    pub key: ActionKey,
    /// When it is due, possibly already past.
    pub due_at: Timestamp,
    /// A warning: whoever must act; an escalation: the superior at its level; a breach:
    /// nobody.
    pub to: Vec<UserId>,
    /// An escalation: whoever must act; otherwise nobody.
    pub cc: Vec<UserId>,
}

/// Every action not yet executed whose instant is known now (that is, of running clocks),
/// in due order. Includes future ones; see [`due_actions`] for those due at an instant.
pub fn planned(incident: &Incident, ladder: &Ladder) -> Vec<DueAction> {
    let mut out = Vec::new();
    if incident.state.is_terminal() {
        return out;
    }
    let Some(policy) = &incident.policy else {
        return out;
    };
    for clock in incident.clocks.iter().filter(|c| escalates(c)) {
        let chain = ladder.side(clock.id);
        let key = |kind, level| ActionKey {
            folio: incident.folio,
            clock: clock.id,
            kind,
            level,
        };
        let target = clock.target_ms();
        if !clock.warned
            && clock.breached_at.is_none()
            && let (Some(actor), Some(due_at)) = (
                chain.first(),
                clock.instant_at_elapsed(warning_ms(target, policy.warning_ratio)),
            )
        {
            out.push(DueAction {
                key: key(ActionKind::Warning, 0),
                due_at,
                to: vec![*actor],
                cc: Vec::new(),
            });
        }
        if !clock.breach_recorded
            && let Some(due_at) = clock.instant_at_elapsed(target)
        {
            out.push(DueAction {
                key: key(ActionKind::Breach, 0),
                due_at,
                to: Vec::new(),
                cc: Vec::new(),
            });
        }
        let repeat = i64::from(policy.repeat_s(clock.target_s)) * 1000;
        let first_level = clock.escalation_level + 1;
        for level in first_level..u32::try_from(chain.len()).unwrap_or(u32::MAX) {
            let at_elapsed = target.saturating_add(repeat.saturating_mul(i64::from(level - 1)));
            let (Some(due_at), Some(to)) = (
                clock.instant_at_elapsed(at_elapsed),
                chain.get(level as usize),
            ) else {
                break;
            };
            out.push(DueAction {
                key: key(ActionKind::Escalation, level),
                due_at,
                to: vec![*to],
                cc: chain.first().map(|r| vec![*r]).unwrap_or_default(),
            });
        }
    }
    out.sort_by_key(|a| (a.due_at, a.key));
    out
}

/// The actions due at `now`, in due order. A warning is left out when the breach of the
/// same clock is also due: after downtime, warning someone that a deadline approaches when
/// it has already passed is noise; the breach and escalation say more.
pub fn due_actions(incident: &Incident, ladder: &Ladder, now: Timestamp) -> Vec<DueAction> {
    let due: Vec<DueAction> = planned(incident, ladder)
        .into_iter()
        .filter(|a| a.due_at <= now)
        .collect();
    let overdue_clock = |clock: ClockId| {
        due.iter()
            .any(|a| a.key.clock == clock && a.key.kind != ActionKind::Warning)
            || incident
                .clock(clock)
                .is_some_and(|c| c.breached_at.is_some() || c.elapsed_ms(now) >= c.target_ms())
    };
    due.iter()
        .filter(|a| a.key.kind != ActionKind::Warning || !overdue_clock(a.key.clock))
        .cloned()
        .collect()
}

/// The earliest instant at which something becomes due (possibly already past), or `None`
/// when nothing will until another event happens.
pub fn next_due(incident: &Incident, ladder: &Ladder) -> Option<Timestamp> {
    planned(incident, ladder).first().map(|a| a.due_at)
}

/// Clocks that can warn and escalate: running ones except `report` (stopped at birth).
fn escalates(clock: &Clock) -> bool {
    clock.is_running() && clock.id != ClockId::REPORT
}

/// The running time at which the warning is due.
fn warning_ms(target_ms: i64, ratio: f64) -> i64 {
    // Ratio is validated in (0, 1); the cast saturates on anything stranger.
    (target_ms as f64 * ratio).floor() as i64
}

/// The recipients of a manual escalation: one level above the incident's current level
/// on the agency's ladder, capped at its top (a second manual escalation at the top goes to
/// the top again), cc the responsible. `None` if the responsible has no superior.
pub fn manual_target(incident: &Incident, ladder: &Ladder) -> Option<(u32, UserId, Vec<UserId>)> {
    let top = ladder.agency.len().checked_sub(1).filter(|t| *t >= 1)?;
    let level = (incident.escalation_level as usize + 1).min(top);
    let to = *ladder.agency.get(level)?;
    let cc = ladder.agency.first().map(|r| vec![*r]).unwrap_or_default();
    Some((u32::try_from(level).unwrap_or(u32::MAX), to, cc))
}
