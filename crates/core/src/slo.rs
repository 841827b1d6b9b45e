//! SLO clocks and the versioned policy their targets come from.
//!
//! A clock measures one party's time on one step. It runs, may pause (the resolution clock
//! while CEDN holds the incident), and stops when the step is done. Whether it is `met` or
//! `breached` follows from its running time against its target: breached as soon as the
//! running time reaches the target, and once breached it stays breached (the overrun is
//! kept) even if the target later grows or the step is done.
//!
//! Instants are millisecond-precision [`Timestamp`]s; targets are whole seconds.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::escalation::Side;
use crate::types::{ParseError, Severity};

/// The five measured steps of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockName {
    /// Step 1: occurred_at -> reported_at.
    Report,
    /// Step 2: notified_at -> acknowledged_at.
    Ack,
    /// Step 3: notified_at -> resolution notice, paused while CEDN validates.
    Resolution,
    /// Step 4: resolution notice -> CEDN's verdict, one clock per round.
    Validation,
    /// Step 6: the agency's delivery of the form, from the first resolution notice;
    /// paused while a delivered form awaits the help desk's review.
    ReportForm,
}

impl ClockName {
    /// Every clock, in step order.
    pub const ALL: [ClockName; 5] = [
        ClockName::Report,
        ClockName::Ack,
        ClockName::Resolution,
        ClockName::Validation,
        ClockName::ReportForm,
    ];

    /// The API / code name (`snake_case`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockName::Report => "report",
            ClockName::Ack => "ack",
            ClockName::Resolution => "resolution",
            ClockName::Validation => "validation",
            ClockName::ReportForm => "report_form",
        }
    }

    /// Spanish name for pages and emails.
    pub fn label(self) -> &'static str {
        match self {
            ClockName::Report => "Reporte",
            ClockName::Ack => "Confirmación de enterado",
            ClockName::Resolution => "Resolución",
            ClockName::Validation => "Validación",
            ClockName::ReportForm => "Formato de incidencias",
        }
    }

    /// Whether missing this clock's target escalates on the agency's ladder (true) or on
    /// the central side's (false). `report` never escalates: it is stopped when it starts
    /// to exist, at the report itself.
    pub fn agency_side(self) -> bool {
        !matches!(self, ClockName::Validation)
    }

    /// The escalation ladder a breach of this clock climbs.
    pub fn side(self) -> Side {
        if self.agency_side() {
            Side::Agency
        } else {
            Side::Central
        }
    }
}

impl fmt::Display for ClockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one clock of an incident. `round` is 1, 2, ... for validation clocks (one
/// per resolution notice) and 0 for the others, which exist once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClockId {
    /// Which step it measures.
    pub name: ClockName,
    /// The validation round, or 0.
    pub round: u32,
}

impl ClockId {
    /// The incident's `report` clock (step 1).
    pub const REPORT: ClockId = ClockId::single(ClockName::Report);
    /// The incident's `ack` clock (step 2).
    pub const ACK: ClockId = ClockId::single(ClockName::Ack);
    /// The incident's `resolution` clock (step 3).
    pub const RESOLUTION: ClockId = ClockId::single(ClockName::Resolution);
    /// The incident's `report_form` clock (step 6).
    pub const REPORT_FORM: ClockId = ClockId::single(ClockName::ReportForm);

    /// The id of a clock that exists once per incident (round 0).
    pub const fn single(name: ClockName) -> ClockId {
        ClockId { name, round: 0 }
    }

    /// The validation clock of `round` (1, 2, ...).
    pub const fn validation(round: u32) -> ClockId {
        ClockId {
            name: ClockName::Validation,
            round,
        }
    }
}

impl fmt::Display for ClockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.round == 0 {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}#{}", self.name, self.round)
        }
    }
}

/// A clock's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Counting: the step is in its party's court and not done.
    Running,
    /// Not counting while the step is out of its party's court (`resolution` while CEDN
    /// validates, `report_form` while the help desk reviews a delivered form).
    Paused,
    /// Stopped before its running time reached the target.
    Met,
    /// Its running time reached the target. Final, even if the step is done later.
    Breached,
}

impl ClockState {
    /// The API / code name (`snake_case`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Paused => "paused",
            ClockState::Met => "met",
            ClockState::Breached => "breached",
        }
    }
}

/// One clock. Its running time is `accumulated_ms` plus, while running, the time since
/// `running_since`. Fields are public for reading; change them only through the methods,
/// which keep `breached_at` true to the running time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Which clock of the incident.
    pub id: ClockId,
    /// The target in seconds, for the incident's current severity (for `report`, the most
    /// lenient one until notification).
    pub target_s: u32,
    /// When it started (for `report`, when the failure occurred).
    pub started_at: Timestamp,
    /// Running time of the finished segments (before the last pause), in milliseconds.
    pub accumulated_ms: i64,
    /// The finished running segments, in order: so the instant a target was reached can be
    /// told exactly even when it is found out later (a severity change on a paused clock).
    pub segments: Vec<(Timestamp, Timestamp)>,
    /// Start of the current running segment; `None` while paused or stopped.
    pub running_since: Option<Timestamp>,
    /// When the step was done or the incident ended; `None` until then.
    pub stopped_at: Option<Timestamp>,
    /// The instant the running time reached the target, once the clock has been observed
    /// past it (by any event of the incident, or by the scheduler's breach). Never unset.
    pub breached_at: Option<Timestamp>,
    /// Escalation bookkeeping, so a firing cannot happen twice: the warning was issued,
    /// the breach was recorded as its own event, the highest escalation level reached.
    pub warned: bool,
    /// A `clock_breached` event was appended for it.
    pub breach_recorded: bool,
    /// The highest automatic escalation level reached on it (0: none).
    pub escalation_level: u32,
}

impl Clock {
    /// A clock running from `at` towards `target_s` seconds.
    pub fn start(id: ClockId, target_s: u32, at: Timestamp) -> Clock {
        Clock {
            id,
            target_s,
            started_at: at,
            accumulated_ms: 0,
            segments: Vec::new(),
            running_since: Some(at),
            stopped_at: None,
            breached_at: None,
            warned: false,
            breach_recorded: false,
            escalation_level: 0,
        }
    }

    /// The target in milliseconds, the unit of running time.
    pub fn target_ms(&self) -> i64 {
        i64::from(self.target_s) * 1000
    }

    /// Running time at `now`, never negative (an instant before the segment start counts
    /// as the segment start).
    pub fn elapsed_ms(&self, now: Timestamp) -> i64 {
        let current = self
            .running_since
            .map_or(0, |since| millis_between(since, now).max(0));
        self.accumulated_ms.saturating_add(current)
    }

    /// Running time at `now` in whole seconds, rounded down.
    pub fn elapsed_s(&self, now: Timestamp) -> i64 {
        self.elapsed_ms(now) / 1000
    }

    /// Counting now: neither paused nor stopped.
    pub fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    /// Stopped for good: the step is done or the incident ended.
    pub fn is_stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// The state at `now`: breached wins over met, paused and running.
    pub fn state(&self, now: Timestamp) -> ClockState {
        if self.breached_at.is_some() || self.elapsed_ms(now) >= self.target_ms() {
            ClockState::Breached
        } else if self.is_stopped() {
            ClockState::Met
        } else if self.is_running() {
            ClockState::Running
        } else {
            ClockState::Paused
        }
    }

    /// The instant at which the running time reaches `elapsed_ms`, if the clock is running.
    /// When that running time was already reached before the current segment, the segment's
    /// start is returned (it is overdue since at least then).
    pub fn instant_at_elapsed(&self, elapsed_ms: i64) -> Option<Timestamp> {
        let since = self.running_since?;
        let remaining = (elapsed_ms - self.accumulated_ms).max(0);
        Some(add_millis(since, remaining))
    }

    /// The instant the target is reached, while running and not yet breached.
    pub fn due_at(&self) -> Option<Timestamp> {
        if self.breached_at.is_some() {
            return None;
        }
        self.instant_at_elapsed(self.target_ms())
    }

    /// The instant the running time reached (or will reach, if running) `elapsed_ms`,
    /// walking the finished segments and then the current one. `None` if a paused or
    /// stopped clock never reached it.
    pub fn crossing(&self, elapsed_ms: i64) -> Option<Timestamp> {
        let mut before = 0i64;
        for (from, to) in &self.segments {
            let len = millis_between(*from, *to).max(0);
            if before.saturating_add(len) >= elapsed_ms {
                return Some(add_millis(*from, (elapsed_ms - before).max(0)));
            }
            before = before.saturating_add(len);
        }
        self.running_since
            .map(|since| add_millis(since, (elapsed_ms - before).max(0)))
    }

    /// Records the breach if the running time at `at` has reached the target. Called before
    /// every change, so a later change of target cannot hide an overrun that happened.
    pub fn settle(&mut self, at: Timestamp) {
        if self.breached_at.is_none() && self.elapsed_ms(at) >= self.target_ms() {
            let crossing = self.crossing(self.target_ms()).unwrap_or(at).min(at);
            self.breached_at = Some(crossing);
        }
    }

    /// Stops counting at `at`, keeping the running time; settles first.
    pub fn pause(&mut self, at: Timestamp) {
        self.settle(at);
        if let Some(since) = self.running_since.take() {
            let end = at.max(since);
            self.accumulated_ms = self
                .accumulated_ms
                .saturating_add(millis_between(since, end));
            self.segments.push((since, end));
        }
    }

    /// Counts again from `at`. No-op when running or stopped.
    pub fn resume(&mut self, at: Timestamp) {
        if self.stopped_at.is_none() && self.running_since.is_none() {
            self.running_since = Some(at);
        }
    }

    /// Stops the clock. A paused clock keeps the running time it had; `stopped_at` is the
    /// instant of the stop.
    pub fn stop(&mut self, at: Timestamp) {
        if self.stopped_at.is_some() {
            return;
        }
        self.pause(at);
        self.stopped_at = Some(at);
    }

    /// Undoes a stop, leaving the clock paused with the running time it had (a later
    /// [`Clock::resume`] counts on from there). For a step that turns out not to be done
    /// after all: the accepted report form sent back by a failed validation. A breach
    /// stays recorded.
    pub fn reopen(&mut self) {
        self.stopped_at = None;
    }

    /// New target from the same start (severity change). Settles first: an overrun that
    /// already happened stays.
    pub fn retarget(&mut self, target_s: u32, at: Timestamp) {
        self.settle(at);
        self.target_s = target_s;
        self.settle(at);
    }
}

/// Milliseconds from `a` to `b` (negative if `b` is earlier).
pub fn millis_between(a: Timestamp, b: Timestamp) -> i64 {
    b.as_millisecond().saturating_sub(a.as_millisecond())
}

/// `t` plus `ms` milliseconds, saturating at jiff's range instead of failing.
pub fn add_millis(t: Timestamp, ms: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_millis(ms))
        .unwrap_or(if ms >= 0 {
            Timestamp::MAX
        } else {
            Timestamp::MIN
        })
}

/// Truncates an instant to whole milliseconds, the precision the store keeps, so that an
/// incident rebuilt from storage equals the one that was decided.
pub fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// One target per severity, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityTargets {
    /// Seconds for [`Severity::Critical`].
    pub critical: u32,
    /// Seconds for [`Severity::High`].
    pub high: u32,
    /// Seconds for [`Severity::Medium`].
    pub medium: u32,
    /// Seconds for [`Severity::Low`].
    pub low: u32,
}

impl SeverityTargets {
    /// The same target for every severity.
    pub const fn all(seconds: u32) -> SeverityTargets {
        SeverityTargets {
            critical: seconds,
            high: seconds,
            medium: seconds,
            low: seconds,
        }
    }

    /// The target for `severity`, in seconds.
    pub fn get(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    /// Sets the target for `severity`, in seconds.
    pub fn set(&mut self, severity: Severity, seconds: u32) {
        match severity {
            Severity::Critical => self.critical = seconds,
            Severity::High => self.high = seconds,
            Severity::Medium => self.medium = seconds,
            Severity::Low => self.low = seconds,
        }
    }

    /// The most lenient target: used for the `report` clock before a severity exists.
    pub fn max(&self) -> u32 {
        self.critical.max(self.high).max(self.medium).max(self.low)
    }
}

/// Targets of every clock, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Step 1: failure to report.
    pub report: SeverityTargets,
    /// Step 2: notification to acknowledgment.
    pub ack: SeverityTargets,
    /// Step 3: notification to resolution notice, in the agency's court.
    pub resolution: SeverityTargets,
    /// Step 4: resolution notice to CEDN's verdict, per round.
    pub validation: SeverityTargets,
    /// Step 6: first resolution notice to the form accepted.
    pub report_form: SeverityTargets,
}

impl Targets {
    /// The targets of clock `name`.
    pub fn for_clock(&self, name: ClockName) -> &SeverityTargets {
        match name {
            ClockName::Report => &self.report,
            ClockName::Ack => &self.ack,
            ClockName::Resolution => &self.resolution,
            ClockName::Validation => &self.validation,
            ClockName::ReportForm => &self.report_form,
        }
    }

    /// The targets of clock `name`, to change them (a draft policy).
    pub fn for_clock_mut(&mut self, name: ClockName) -> &mut SeverityTargets {
        match name {
            ClockName::Report => &mut self.report,
            ClockName::Ack => &mut self.ack,
            ClockName::Resolution => &mut self.resolution,
            ClockName::Validation => &mut self.validation,
            ClockName::ReportForm => &mut self.report_form,
        }
    }
}

const MINUTE: u32 = 60;
const HOUR: u32 = 60 * MINUTE;

/// The seed's table, exactly (steps 1, 2, 3, 4 and 6).
pub const SEED_TARGETS: Targets = Targets {
    report: SeverityTargets::all(HOUR),
    ack: SeverityTargets {
        critical: 15 * MINUTE,
        high: 30 * MINUTE,
        medium: HOUR,
        low: HOUR,
    },
    resolution: SeverityTargets {
        critical: HOUR + 30 * MINUTE,
        high: 4 * HOUR,
        medium: 8 * HOUR,
        low: 24 * HOUR,
    },
    validation: SeverityTargets {
        critical: 20 * MINUTE,
        high: HOUR,
        medium: 2 * HOUR,
        low: 8 * HOUR,
    },
    report_form: SeverityTargets::all(24 * HOUR),
};

/// A version of the SLO table. An incident copies the version in force when it is
/// notified and keeps it for its whole life, so later edits never move its deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloPolicy {
    /// The version number; the higher wins when two take effect at the same instant.
    pub version: u32,
    /// From when it is in force (see [`policy_in_force`]).
    pub effective_from: Timestamp,
    /// The target of every clock, by severity.
    pub targets: Targets,
    /// Share of a target at which the one who must act is warned (0 < ratio < 1).
    pub warning_ratio: f64,
    /// After a breach, one more escalation level every this many seconds of running time
    /// while the step stays undone. `None`: the clock's own target.
    pub escalation_repeat_s: Option<u32>,
    /// The share of clocks to meet, in % (0 < objective < 100): what the reports' error
    /// budget is measured against (the budget is the rest). The protocol's clocks do not
    /// use it. Left out of the stored JSON when it is the default, so versions written
    /// before it existed read, and hash, as they did.
    #[serde(
        default = "default_objective",
        skip_serializing_if = "is_default_objective"
    )]
    pub objective_pct: f64,
}

/// Default warning share, from PROTOCOL.md.
pub const DEFAULT_WARNING_RATIO: f64 = 0.75;

/// Default compliance objective of a policy version, in %: the SRE's usual 95.
pub const DEFAULT_OBJECTIVE_PCT: f64 = 95.0;

fn default_objective() -> f64 {
    DEFAULT_OBJECTIVE_PCT
}

fn is_default_objective(v: &f64) -> bool {
    v.to_bits() == DEFAULT_OBJECTIVE_PCT.to_bits()
}

impl SloPolicy {
    /// Version 1: the seed's numbers, in force since the epoch.
    pub fn seed() -> SloPolicy {
        SloPolicy {
            version: 1,
            effective_from: Timestamp::UNIX_EPOCH,
            targets: SEED_TARGETS,
            warning_ratio: DEFAULT_WARNING_RATIO,
            escalation_repeat_s: None,
            objective_pct: DEFAULT_OBJECTIVE_PCT,
        }
    }

    /// The target of clock `name` at `severity`, in seconds.
    pub fn target_s(&self, name: ClockName, severity: Severity) -> u32 {
        self.targets.for_clock(name).get(severity)
    }

    /// Seconds of running time between escalation levels for a clock with `target_s`.
    pub fn repeat_s(&self, target_s: u32) -> u32 {
        self.escalation_repeat_s.unwrap_or(target_s).max(1)
    }

    /// The problems that make this policy unusable, as (field, Spanish message); empty
    /// when it is valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(self.objective_pct > 0.0 && self.objective_pct < 100.0) {
            out.push((
                "objective_pct".to_string(),
                "debe ser un porcentaje mayor que 0 y menor que 100".to_string(),
            ));
        }
        if !(self.warning_ratio > 0.0 && self.warning_ratio < 1.0) {
            out.push((
                "warning_ratio".to_string(),
                "debe ser mayor que 0 y menor que 1".to_string(),
            ));
        }
        for name in ClockName::ALL {
            let t = self.targets.for_clock(name);
            for severity in Severity::ALL {
                if t.get(*severity) == 0 {
                    out.push((
                        format!("targets.{}.{}", name.as_str(), severity.as_str()),
                        "debe ser de al menos 1 segundo".to_string(),
                    ));
                }
            }
        }
        if self.escalation_repeat_s == Some(0) {
            out.push((
                "escalation_repeat_s".to_string(),
                "debe ser de al menos 1 segundo".to_string(),
            ));
        }
        out
    }
}

impl Default for SloPolicy {
    fn default() -> Self {
        SloPolicy::seed()
    }
}

/// The version in force at `now`: the latest `effective_from` not after `now`, the highest
/// version on a tie. `None` if none is in force yet.
pub fn policy_in_force(policies: &[SloPolicy], now: Timestamp) -> Option<&SloPolicy> {
    policies
        .iter()
        .filter(|p| p.effective_from <= now)
        .max_by_key(|p| (p.effective_from, p.version))
}

/// Parses a clock name from its API text.
pub fn parse_clock_name(input: &str) -> Result<ClockName, ParseError> {
    ClockName::ALL
        .into_iter()
        .find(|c| c.as_str() == input.trim())
        .ok_or_else(|| ParseError {
            what: "reloj",
            input: input.chars().take(80).collect(),
            reason: "debe ser report, ack, resolution, validation o report_form",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("in range")
    }

    #[test]
    fn pause_excludes_time_and_breach_is_final() {
        let mut c = Clock::start(ClockId::RESOLUTION, 100, t(0));
        c.pause(t(60));
        assert_eq!(c.elapsed_s(t(500)), 60);
        assert_eq!(c.state(t(500)), ClockState::Paused);
        c.resume(t(500));
        assert_eq!(c.due_at(), Some(t(540)));
        c.settle(t(541));
        assert_eq!(c.breached_at, Some(t(540)));
        c.retarget(1000, t(541));
        assert_eq!(c.state(t(541)), ClockState::Breached);
        c.stop(t(600));
        assert_eq!(c.state(t(9999)), ClockState::Breached);
        assert_eq!(c.elapsed_s(t(9999)), 160);
    }

    #[test]
    fn stopped_in_time_is_met() {
        let mut c = Clock::start(ClockId::ACK, 900, t(0));
        c.stop(t(899));
        assert_eq!(c.state(t(100_000)), ClockState::Met);
        assert_eq!(c.elapsed_s(t(100_000)), 899);
    }

    #[test]
    fn policy_in_force_picks_latest_effective() {
        let mut v2 = SloPolicy::seed();
        v2.version = 2;
        v2.effective_from = t(100);
        let policies = [SloPolicy::seed(), v2];
        assert_eq!(
            policy_in_force(&policies, t(99)).map(|p| p.version),
            Some(1)
        );
        assert_eq!(
            policy_in_force(&policies, t(100)).map(|p| p.version),
            Some(2)
        );
    }

    #[test]
    fn seed_policy_is_valid_and_bad_ratio_is_named() {
        assert!(SloPolicy::seed().problems().is_empty());
        let mut p = SloPolicy::seed();
        p.warning_ratio = 1.5;
        p.targets.ack.low = 0;
        let fields: Vec<String> = p.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, vec!["warning_ratio", "targets.ack.low"]);
        p.objective_pct = 100.0;
        assert_eq!(p.problems()[0].0, "objective_pct");
    }

    #[test]
    fn the_objective_is_stored_only_when_it_is_not_the_default() {
        // A version stored before the objective existed reads as 95 % and writes back the
        // same bytes (its copies in incidents' events are hashed).
        let seed = serde_json::to_string(&SloPolicy::seed()).expect("serializes");
        assert!(!seed.contains("objective_pct"), "{seed}");
        let back: SloPolicy = serde_json::from_str(&seed).expect("reads");
        assert_eq!(back.objective_pct, DEFAULT_OBJECTIVE_PCT);
        assert_eq!(serde_json::to_string(&back).expect("serializes"), seed);
        let strict = SloPolicy {
            objective_pct: 99.5,
            ..SloPolicy::seed()
        };
        let json = serde_json::to_string(&strict).expect("serializes");
        assert!(json.contains("\"objective_pct\":99.5"), "{json}");
        let back: SloPolicy = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, strict);
    }
}
