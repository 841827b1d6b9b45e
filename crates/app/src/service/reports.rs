//! SLO reports: compliance per clock, severity and agency over a period, and the list of
//! breached clocks, as JSON documents and CSV. Read by the help desk, validators and
//! administrators over every agency; an agency user over its own agency only.
//!
//! A period is a range of instants `[from, to)`; the default is the current calendar
//! month in America/Mexico_City. A clock counts in the period in which its outcome became
//! known (see `store/reports.rs`).

use std::collections::HashMap;

use incidencias_core::{AgencyId, ClockId, ClockName, FieldError, ProcedureId, Role, Severity};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Caller, Service, ServiceError};
use crate::store::{BreachRow, ComplianceRow, ReportFilter, Split};

/// Who may read reports over every agency (agency users read their own).
pub(crate) const READERS: &[Role] = &[Role::Helpdesk, Role::Validator, Role::Admin, Role::Agency];

/// The most rows one page of the breach list answers.
pub const MAX_PAGE: i64 = 500;

/// What a report is asked for, as the API and the page read it (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// An RFC 3339 instant, or a date (its first instant in Mexico City).
    pub from: Option<String>,
    /// An RFC 3339 instant (excluded), or a date (included: up to its end).
    pub to: Option<String>,
    pub clock: Option<String>,
    pub severity: Option<String>,
    pub agency_id: Option<String>,
    pub procedure_id: Option<String>,
}

impl ReportQuery {
    /// Reads the query string's pairs; unknown names are `unknown`'s to judge.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        mut unknown: impl FnMut(&str, String),
    ) -> ReportQuery {
        let mut q = ReportQuery::default();
        for (name, value) in pairs {
            let value = Some(value).filter(|v| !v.trim().is_empty());
            match name.as_str() {
                "from" => q.from = value,
                "to" => q.to = value,
                "clock" => q.clock = value,
                "severity" => q.severity = value,
                "agency_id" => q.agency_id = value,
                "procedure_id" => q.procedure_id = value,
                other => unknown(other, value.unwrap_or_default()),
            }
        }
        q
    }
}

/// The start of the month of `now` in Mexico City, and of the next one.
pub fn current_month(now: Timestamp) -> (Timestamp, Timestamp) {
    let tz = crate::clock::mexico_city();
    let today = now.to_zoned_datetime(tz.clone()).date();
    let first = today.first_of_month();
    let next = first.checked_add(1.month()).unwrap_or(first);
    (start_of(first, &tz), start_of(next, &tz))
}

fn start_of(d: Date, tz: &TimeZone) -> Timestamp {
    d.to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// An instant or a date (`end`: the date's end, that is the next day's start).
fn bound(field: &str, text: &str, end: bool) -> Result<Timestamp, FieldError> {
    let text = text.trim();
    if let Ok(d) = text.parse::<Date>() {
        let d = if end {
            d.tomorrow()
                .map_err(|_| FieldError::new(field, "fecha fuera de rango"))?
        } else {
            d
        };
        return crate::documents::instant::check(start_of(d, &crate::clock::mexico_city()))
            .map_err(|e| FieldError::new(field, e));
    }
    crate::documents::instant::parse(text).map_err(|_| {
        FieldError::new(
            field,
            "debe ser una fecha (2026-11-01) o un instante RFC 3339 con zona \
             (2026-11-01T00:00:00-06:00)",
        )
    })
}

/// The filter a valid query means for `caller` at `now`.
fn filter_of(
    caller: &Caller,
    q: &ReportQuery,
    now: Timestamp,
) -> Result<ReportFilter, ServiceError> {
    let mut errors = Vec::new();
    let (month_start, month_end) = current_month(now);
    let from = match &q.from {
        None => month_start,
        Some(t) => bound("from", t, false).unwrap_or_else(|e| {
            errors.push(e);
            month_start
        }),
    };
    let to = match &q.to {
        None => month_end,
        Some(t) => bound("to", t, true).unwrap_or_else(|e| {
            errors.push(e);
            month_end
        }),
    };
    if errors.is_empty() && to <= from {
        errors.push(FieldError::new(
            "to",
            "debe ser posterior al inicio del periodo",
        ));
    }
    let clock = q.clock.as_deref().and_then(|c| {
        incidencias_core::slo::parse_clock_name(c)
            .map_err(|_| {
                errors.push(FieldError::new(
                    "clock",
                    "debe ser report, ack, resolution, validation o report_form",
                ))
            })
            .ok()
    });
    let severity = q.severity.as_deref().and_then(|s| {
        Severity::parse(s)
            .map_err(|_| {
                errors.push(FieldError::new(
                    "severity",
                    "debe ser critical, high, medium o low",
                ))
            })
            .ok()
    });
    let mut id = |field: &'static str, v: &Option<String>| {
        v.as_deref().and_then(|v| {
            v.trim().parse::<i64>().ok().filter(|n| *n > 0).or_else(|| {
                errors.push(FieldError::new(field, "debe ser un identificador numérico"));
                None
            })
        })
    };
    let agency_id = id("agency_id", &q.agency_id).map(AgencyId);
    let procedure_id = id("procedure_id", &q.procedure_id).map(ProcedureId);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    // An agency user reads its own agency's figures, whatever it asks for.
    let agency_id = match (caller.role, caller.agency_id) {
        (Role::Agency, Some(own)) => {
            if agency_id.is_some_and(|a| a != own) {
                return Err(ServiceError::Forbidden(
                    "sólo puede consultar los reportes de su dependencia".into(),
                ));
            }
            Some(own)
        }
        (Role::Agency, None) => {
            return Err(ServiceError::Forbidden(
                "su cuenta no tiene dependencia asignada".into(),
            ));
        }
        _ => agency_id,
    };
    Ok(ReportFilter {
        from,
        to,
        now,
        clock,
        severity,
        agency_id,
        procedure_id,
    })
}

/// Who held a clock while it was paused.
fn paused_by(clock: ClockName) -> Option<&'static str> {
    match clock {
        ClockName::Resolution => Some("cedn"),
        ClockName::ReportForm => Some("mesa_de_ayuda"),
        _ => None,
    }
}

/// One group of the compliance report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceRowDoc {
    /// `report`, `ack`, `resolution`, `validation` or `report_form`.
    pub clock: String,
    /// The clock's Spanish name.
    pub clock_label: String,
    /// `critical`, `high`, `medium`, `low`; null for clocks measured before the incident
    /// had a severity, or in a total over every severity.
    pub severity: Option<String>,
    /// Null in the totals (every agency the caller may read).
    pub agency_id: Option<i64>,
    pub agency: Option<String>,
    /// Clocks whose outcome became known in the period.
    pub measured: i64,
    pub met: i64,
    pub breached: i64,
    /// Share met, 0 to 100, two decimals.
    pub compliance_pct: f64,
    /// Nearest-rank percentiles and maximum of the running time used, in seconds.
    pub p50_s: i64,
    pub p90_s: i64,
    pub p95_s: i64,
    pub max_s: i64,
    /// Seconds the clocks spent paused, in all: time the step was in `paused_by`'s court.
    pub paused_s: i64,
    /// `cedn` (resolution, while validating) or `mesa_de_ayuda` (report form, while
    /// reviewing); null for clocks that do not pause.
    pub paused_by: Option<String>,
    /// The smallest and largest target, in seconds, of the policy versions the group's
    /// incidents ran under.
    pub target_min_s: i64,
    pub target_max_s: i64,
}

/// The compliance report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceDoc {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The instant the running time of a breached clock still running was taken at.
    #[schema(value_type = String, format = DateTime)]
    pub as_of: Timestamp,
    /// Null: every agency the caller may read.
    pub agency_id: Option<i64>,
    /// By clock, severity and agency.
    pub rows: Vec<ComplianceRowDoc>,
    /// By clock and severity, over the agencies of `rows`.
    pub totals: Vec<ComplianceRowDoc>,
}

/// A breached clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BreachDoc {
    pub folio: String,
    pub clock: String,
    /// 1, 2, ... for validation clocks; 0 for the others.
    pub round: u32,
    pub clock_label: String,
    pub agency_id: i64,
    pub agency: Option<String>,
    /// Whose step it was: `agency` (the procedure's agency) or `cedn` (validation).
    pub party: String,
    pub severity: Option<String>,
    pub target_s: i64,
    #[schema(value_type = String, format = DateTime)]
    pub breached_at: Timestamp,
    /// Running time used (at the stop, or so far), in seconds.
    pub used_s: i64,
    /// Seconds beyond the target.
    pub overrun_s: i64,
    /// Whether the step was done since.
    pub stopped: bool,
    pub escalation_level: i64,
}

/// One page of the breach list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BreachPageDoc {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub items: Vec<BreachDoc>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The windows the burn rate is measured over: 1 hour, 6 hours, 3 days.
pub const BURN_WINDOWS_S: [i64; 3] = [3_600, 21_600, 259_200];

/// An agency and how fast it burns a clock's budget this month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BurnerDoc {
    pub agency_id: i64,
    pub agency: Option<String>,
    pub measured: i64,
    pub breached: i64,
    /// Its breach rate over the budget: 1 spends the budget exactly by the month's end.
    pub burn: f64,
}

/// The error budget of one clock at one severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetRowDoc {
    pub clock: String,
    pub clock_label: String,
    pub severity: Option<String>,
    /// This month so far.
    pub measured: i64,
    pub breached: i64,
    /// Share met (the SLI), 0 to 100; null when nothing was measured.
    pub sli_pct: Option<f64>,
    /// Breaches the budget allows for what was measured: (1 − objective) × measured.
    pub allowed_breaches: f64,
    /// What is left of the budget, in %: 100 untouched, 0 spent, negative overspent.
    pub budget_left_pct: f64,
    /// Breach rate over the budget in the last hour, 6 hours and 3 days (null: nothing
    /// measured in the window). Above 1 the budget is being spent faster than it lasts.
    pub burn_1h: Option<f64>,
    pub burn_6h: Option<f64>,
    pub burn_3d: Option<f64>,
    /// The agencies that burn it fastest this month (at most five, fastest first).
    pub fastest: Vec<BurnerDoc>,
}

/// The error budgets of the month so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetDoc {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: Timestamp,
    /// The objective: the share of clocks to meet, in %.
    pub objective_pct: f64,
    pub rows: Vec<BudgetRowDoc>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Breach rate over the budget, `None` when nothing was measured.
fn burn(breached: i64, measured: i64, budget: f64) -> Option<f64> {
    (measured > 0).then(|| round2(breached as f64 / measured as f64 / budget))
}

/// The objective asked for: a percentage above 0 and below 100; `None` when none was
/// asked for (the policy in force's then applies).
pub fn objective(text: Option<&str>) -> Result<Option<f64>, ServiceError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match text.replace(',', ".").parse::<f64>() {
        Ok(v) if v > 0.0 && v < 100.0 => Ok(Some(v)),
        _ => Err(ServiceError::Invalid(vec![FieldError::new(
            "objective",
            "debe ser un porcentaje mayor que 0 y menor que 100, por ejemplo 95 o 99.5",
        )])),
    }
}

/// Open incidents of one state in one age bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateAgeDoc {
    /// The state's code (`reported`, `awaiting_ack`, ...).
    pub state: String,
    pub state_label: String,
    /// `lt_1h`, `lt_4h`, `lt_1d`, `lt_3d`, `ge_3d`: time since the report.
    pub age: String,
    pub age_label: String,
    pub incidents: i64,
    #[schema(value_type = String, format = DateTime)]
    pub oldest_reported_at: Timestamp,
}

/// One agency's mean times over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeanTimeDoc {
    pub agency_id: i64,
    pub agency: Option<String>,
    /// Acknowledgments that happened in the period, and their mean time in seconds.
    pub acknowledged: i64,
    pub mean_ack_s: Option<i64>,
    /// Resolution clocks stopped in the period (the agency's running time, without the
    /// time CEDN held the notice), and their mean in seconds.
    pub resolved: i64,
    pub mean_resolution_s: Option<i64>,
}

/// How many incidents took how many validation rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoundsCountDoc {
    pub rounds: i64,
    pub incidents: i64,
}

/// An incident that took more than one validation round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoundsIncidentDoc {
    pub folio: String,
    pub agency: Option<String>,
    pub rounds: i64,
}

/// The operational lists: open incidents by state and age, mean times to acknowledge
/// and resolve by agency, validation rounds per incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListsDoc {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: Timestamp,
    /// Now, whatever the period.
    pub open_by_age: Vec<StateAgeDoc>,
    pub mean_times: Vec<MeanTimeDoc>,
    /// Incidents whose last validation verdict fell in the period, by number of rounds.
    pub rounds: Vec<RoundsCountDoc>,
    /// Those with two rounds or more, most first (at most 100).
    pub most_rounds: Vec<RoundsIncidentDoc>,
}

const AGES: [(&str, &str); 5] = [
    ("lt_1h", "menos de 1 h"),
    ("lt_4h", "de 1 a 4 h"),
    ("lt_1d", "de 4 a 24 h"),
    ("lt_3d", "de 1 a 3 días"),
    ("ge_3d", "3 días o más"),
];

/// A policy a what-if tries: a stored version, or a draft's targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Trial {
    /// The version in force now.
    InForce,
    Version(u32),
    Draft(incidencias_core::slo::Targets),
}

/// Which policy one side of a what-if is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrialDoc {
    /// The stored version; null for a draft.
    pub version: Option<u32>,
    /// In Spanish: "versión 2 (vigente)", "borrador".
    pub label: String,
}

/// One clock and severity of a what-if.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIfRowDoc {
    pub clock: String,
    pub clock_label: String,
    pub severity: Option<String>,
    /// Clocks that stopped in the period.
    pub measured: i64,
    /// Met as recorded (against the targets each incident ran under).
    pub recorded_met: i64,
    pub recorded_pct: f64,
    pub a_target_s: i64,
    pub a_met: i64,
    pub a_pct: f64,
    pub b_target_s: i64,
    pub b_met: i64,
    pub b_pct: f64,
}

/// What compliance would have been over a period under two policies, from history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIfDoc {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub a: TrialDoc,
    pub b: TrialDoc,
    pub rows: Vec<WhatIfRowDoc>,
}

fn trial_targets(t: &incidencias_core::slo::Targets) -> crate::store::TrialTargets {
    let ms = |s: u32| i64::from(s) * 1000;
    crate::store::TrialTargets {
        targets: ClockName::ALL
            .iter()
            .flat_map(|c| {
                Severity::ALL
                    .iter()
                    .map(move |s| (*c, *s, ms(t.for_clock(*c).get(*s))))
            })
            .collect(),
        lenient: ClockName::ALL
            .iter()
            .map(|c| (*c, ms(t.for_clock(*c).max())))
            .collect(),
    }
}

/// Step order, then severity from the most urgent (none last): how report rows are listed.
fn step_order(clock: &str, severity: Option<&str>) -> (Option<ClockName>, usize) {
    (
        incidencias_core::slo::parse_clock_name(clock).ok(),
        severity
            .and_then(|s| Severity::parse(s).ok())
            .and_then(|s| Severity::ALL.iter().position(|x| *x == s))
            .unwrap_or(usize::MAX),
    )
}

fn clock_label(id: ClockId) -> String {
    if id.name == ClockName::Validation && id.round > 0 {
        format!("{} (ronda {})", id.name.label(), id.round)
    } else {
        id.name.label().to_string()
    }
}

fn pct(met: i64, measured: i64) -> f64 {
    if measured == 0 {
        return 0.0;
    }
    (met as f64 * 10_000.0 / measured as f64).round() / 100.0
}

fn row_doc(r: ComplianceRow, agencies: &HashMap<i64, String>) -> ComplianceRowDoc {
    let met = r.measured - r.breached;
    ComplianceRowDoc {
        clock: r.clock.as_str().into(),
        clock_label: r.clock.label().into(),
        severity: r.severity.map(|s| s.as_str().into()),
        agency_id: r.agency_id.map(|a| a.0),
        agency: r.agency_id.and_then(|a| agencies.get(&a.0).cloned()),
        measured: r.measured,
        met,
        breached: r.breached,
        compliance_pct: pct(met, r.measured),
        p50_s: r.p50_ms / 1000,
        p90_s: r.p90_ms / 1000,
        p95_s: r.p95_ms / 1000,
        max_s: r.max_ms / 1000,
        paused_s: r.paused_ms / 1000,
        paused_by: paused_by(r.clock).map(Into::into),
        target_min_s: r.target_min_s,
        target_max_s: r.target_max_s,
    }
}

fn breach_doc(r: BreachRow, agencies: &HashMap<i64, String>) -> BreachDoc {
    let used_s = r.used_ms / 1000;
    BreachDoc {
        clock_label: clock_label(r.clock),
        folio: r.folio,
        clock: r.clock.name.as_str().into(),
        round: r.clock.round,
        agency_id: r.agency_id.0,
        agency: agencies.get(&r.agency_id.0).cloned(),
        party: if r.clock.name.agency_side() {
            "agency"
        } else {
            "cedn"
        }
        .into(),
        severity: r.severity.map(|s| s.as_str().into()),
        target_s: r.target_s,
        breached_at: r.breached_at,
        used_s,
        overrun_s: (used_s - r.target_s).max(0),
        stopped: r.stopped,
        escalation_level: r.escalation_level,
    }
}

impl Service {
    /// What `/metrics` reports of the database, now. For operators, who authenticate with
    /// the metrics token rather than an account (`metrics.rs`).
    pub async fn operational_figures(
        &self,
    ) -> Result<crate::store::OperationalFigures, ServiceError> {
        Ok(self.store.operational_figures(self.now()).await?)
    }

    /// Refuses (403) a caller whose role reads no reports.
    pub fn may_read_reports(&self, caller: &Caller) -> Result<(), ServiceError> {
        caller.require(READERS, "consultar los reportes")
    }

    async fn agency_names(&self) -> Result<HashMap<i64, String>, ServiceError> {
        Ok(self
            .store
            .agencies()
            .await?
            .into_iter()
            .map(|a| (a.id.0, a.acronym))
            .collect())
    }

    /// Compliance per clock, severity and agency over the query's period.
    pub async fn compliance_report(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        now: Timestamp,
    ) -> Result<ComplianceDoc, ServiceError> {
        self.may_read_reports(caller)?;
        let filter = filter_of(caller, query, now)?;
        let (rows, totals) = self.store.compliance(&filter).await?;
        let agencies = self.agency_names().await?;
        Ok(ComplianceDoc {
            from: filter.from,
            to: filter.to,
            as_of: now,
            agency_id: filter.agency_id.map(|a| a.0),
            rows: rows.into_iter().map(|r| row_doc(r, &agencies)).collect(),
            totals: totals.into_iter().map(|r| row_doc(r, &agencies)).collect(),
        })
    }

    /// The error budget of each clock and severity this month (in Mexico City) so far:
    /// what the objective allows, what is left, how fast it burns over the last hour, 6
    /// hours and 3 days, and the agencies burning it fastest. The query's period is
    /// ignored (a budget is monthly); its other filters apply.
    pub async fn error_budget(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        objective_pct: Option<f64>,
        now: Timestamp,
    ) -> Result<BudgetDoc, ServiceError> {
        self.may_read_reports(caller)?;
        // The objective of the policy version in force, unless another is asked for.
        let objective_pct = match objective_pct {
            Some(o) => o,
            None => self.policy_now(now).await?.objective_pct,
        };
        let month = ReportQuery {
            from: None,
            to: None,
            ..query.clone()
        };
        let filter = filter_of(caller, &month, now)?;
        let budget = 1.0 - objective_pct / 100.0;
        let by_severity = Split {
            severity: true,
            agency: false,
        };
        // Windows end at `now` included: an outcome at this very instant counts.
        let end = now
            .checked_add(jiff::SignedDuration::from_millis(1))
            .unwrap_or(now);
        let to_date = ReportFilter {
            to: end.max(filter.from),
            ..filter.clone()
        };
        let totals = self.store.outcome_counts(&to_date, by_severity).await?;
        let by_agency = self
            .store
            .outcome_counts(
                &to_date,
                Split {
                    severity: true,
                    agency: true,
                },
            )
            .await?;
        let mut windows = Vec::new();
        for seconds in BURN_WINDOWS_S {
            let from = now
                .checked_sub(jiff::SignedDuration::from_secs(seconds))
                .unwrap_or(now);
            let window = ReportFilter {
                from,
                to: end,
                ..filter.clone()
            };
            windows.push(self.store.outcome_counts(&window, by_severity).await?);
        }
        let agencies = self.agency_names().await?;
        let key = |c: &crate::store::OutcomeCount| (c.clock, c.severity);
        let mut rows = totals
            .iter()
            .map(|t| {
                let in_window = |w: &Vec<crate::store::OutcomeCount>| {
                    w.iter()
                        .find(|c| key(c) == key(t))
                        .and_then(|c| burn(c.breached, c.measured, budget))
                };
                let allowed = budget * t.measured as f64;
                let mut fastest: Vec<BurnerDoc> = by_agency
                    .iter()
                    .filter(|c| key(c) == key(t) && c.breached > 0)
                    .filter_map(|c| {
                        let agency_id = c.agency_id?.0;
                        Some(BurnerDoc {
                            agency_id,
                            agency: agencies.get(&agency_id).cloned(),
                            measured: c.measured,
                            breached: c.breached,
                            burn: burn(c.breached, c.measured, budget)?,
                        })
                    })
                    .collect();
                fastest.sort_by(|a, b| {
                    b.burn
                        .total_cmp(&a.burn)
                        .then(b.breached.cmp(&a.breached))
                        .then(a.agency_id.cmp(&b.agency_id))
                });
                fastest.truncate(5);
                BudgetRowDoc {
                    clock: t.clock.as_str().into(),
                    clock_label: t.clock.label().into(),
                    severity: t.severity.map(|s| s.as_str().into()),
                    measured: t.measured,
                    breached: t.breached,
                    sli_pct: (t.measured > 0).then(|| pct(t.measured - t.breached, t.measured)),
                    allowed_breaches: round2(allowed),
                    budget_left_pct: if t.measured == 0 {
                        100.0
                    } else {
                        round2(100.0 * (1.0 - t.breached as f64 / allowed))
                    },
                    burn_1h: in_window(&windows[0]),
                    burn_6h: in_window(&windows[1]),
                    burn_3d: in_window(&windows[2]),
                    fastest,
                }
            })
            .collect::<Vec<_>>();
        rows.sort_by_key(|r| step_order(&r.clock, r.severity.as_deref()));
        Ok(BudgetDoc {
            from: filter.from,
            to: filter.to,
            as_of: now,
            objective_pct,
            rows,
        })
    }

    /// What-if: over the query's period, the share of the clocks that stopped in it that
    /// each policy would have met (running time below its target), side by side with how
    /// they were recorded. A draft's targets are checked like a new version's.
    pub async fn what_if(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        a: Trial,
        b: Trial,
        now: Timestamp,
    ) -> Result<WhatIfDoc, ServiceError> {
        self.may_read_reports(caller)?;
        let filter = filter_of(caller, query, now)?;
        let policies = self.store.policies().await?;
        let in_force = incidencias_core::policy_in_force(&policies, now)
            .cloned()
            .unwrap_or_else(incidencias_core::SloPolicy::seed);
        let resolve = |t: &Trial,
                       field: &str|
         -> Result<(incidencias_core::slo::Targets, TrialDoc), ServiceError> {
            match t {
                Trial::InForce => Ok((
                    in_force.targets,
                    TrialDoc {
                        version: Some(in_force.version),
                        label: format!("versión {} (vigente)", in_force.version),
                    },
                )),
                Trial::Version(v) => policies
                    .iter()
                    .find(|p| p.version == *v)
                    .map(|p| {
                        (
                            p.targets,
                            TrialDoc {
                                version: Some(*v),
                                label: if *v == in_force.version {
                                    format!("versión {v} (vigente)")
                                } else {
                                    format!("versión {v}")
                                },
                            },
                        )
                    })
                    .ok_or_else(|| {
                        ServiceError::Invalid(vec![FieldError::new(
                            field,
                            format!("no existe la versión {v} de la política de SLO"),
                        )])
                    }),
                Trial::Draft(targets) => {
                    let draft = incidencias_core::SloPolicy {
                        targets: *targets,
                        ..in_force.clone()
                    };
                    let problems = draft.problems();
                    if !problems.is_empty() {
                        return Err(ServiceError::Invalid(
                            problems
                                .into_iter()
                                .map(|(f, m)| FieldError::new(&f, m))
                                .collect(),
                        ));
                    }
                    Ok((
                        *targets,
                        TrialDoc {
                            version: None,
                            label: "borrador".into(),
                        },
                    ))
                }
            }
        };
        let (ta, da) = resolve(&a, "version_a")?;
        let (tb, db) = resolve(&b, "version_b")?;
        let rows = self
            .store
            .trial(&filter, &[trial_targets(&ta), trial_targets(&tb)])
            .await?;
        let target = |t: &incidencias_core::slo::Targets, c: ClockName, s: Option<Severity>| {
            i64::from(s.map_or(t.for_clock(c).max(), |s| t.for_clock(c).get(s)))
        };
        let mut rows: Vec<WhatIfRowDoc> = rows
            .into_iter()
            .map(|r| {
                let (a_met, b_met) = (
                    r.met.first().copied().unwrap_or(0),
                    r.met.get(1).copied().unwrap_or(0),
                );
                WhatIfRowDoc {
                    clock: r.clock.as_str().into(),
                    clock_label: r.clock.label().into(),
                    severity: r.severity.map(|s| s.as_str().into()),
                    measured: r.measured,
                    recorded_met: r.recorded_met,
                    recorded_pct: pct(r.recorded_met, r.measured),
                    a_target_s: target(&ta, r.clock, r.severity),
                    a_met,
                    a_pct: pct(a_met, r.measured),
                    b_target_s: target(&tb, r.clock, r.severity),
                    b_met,
                    b_pct: pct(b_met, r.measured),
                }
            })
            .collect();
        rows.sort_by_key(|r| step_order(&r.clock, r.severity.as_deref()));
        Ok(WhatIfDoc {
            from: filter.from,
            to: filter.to,
            a: da,
            b: db,
            rows,
        })
    }

    /// The operational lists over the query's period (open incidents: now).
    pub async fn report_lists(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        now: Timestamp,
    ) -> Result<ListsDoc, ServiceError> {
        self.may_read_reports(caller)?;
        let filter = filter_of(caller, query, now)?;
        let agencies = self.agency_names().await?;
        let ages = self
            .store
            .state_ages(now, filter.agency_id, filter.procedure_id)
            .await?;
        let state_rank = |s: &str| {
            incidencias_core::IncidentState::ALL
                .iter()
                .position(|x| x.as_str() == s)
                .unwrap_or(usize::MAX)
        };
        let mut open_by_age: Vec<StateAgeDoc> = ages
            .into_iter()
            .map(|a| {
                let (age, age_label) = AGES.get(a.bucket).copied().unwrap_or(AGES[4]);
                let state_label = incidencias_core::IncidentState::ALL
                    .iter()
                    .find(|x| x.as_str() == a.state)
                    .map_or_else(|| a.state.clone(), |x| x.label().to_string());
                StateAgeDoc {
                    state_label,
                    state: a.state,
                    age: age.into(),
                    age_label: age_label.into(),
                    incidents: a.count,
                    oldest_reported_at: Timestamp::from_millisecond(a.oldest_reported_at)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                }
            })
            .collect();
        open_by_age.sort_by_key(|a| {
            (
                state_rank(&a.state),
                AGES.iter().position(|(k, _)| *k == a.age),
            )
        });
        let mut by_agency: std::collections::BTreeMap<i64, MeanTimeDoc> = Default::default();
        for m in self.store.mean_times(&filter).await? {
            let doc = by_agency
                .entry(m.agency_id.0)
                .or_insert_with(|| MeanTimeDoc {
                    agency_id: m.agency_id.0,
                    agency: agencies.get(&m.agency_id.0).cloned(),
                    acknowledged: 0,
                    mean_ack_s: None,
                    resolved: 0,
                    mean_resolution_s: None,
                });
            match m.clock {
                ClockName::Ack => {
                    doc.acknowledged = m.count;
                    doc.mean_ack_s = Some(m.mean_ms / 1000);
                }
                _ => {
                    doc.resolved = m.count;
                    doc.mean_resolution_s = Some(m.mean_ms / 1000);
                }
            }
        }
        let rounds = self.store.validation_rounds(&filter).await?;
        let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
        for r in &rounds {
            *counts.entry(r.rounds).or_default() += 1;
        }
        Ok(ListsDoc {
            from: filter.from,
            to: filter.to,
            as_of: now,
            open_by_age,
            mean_times: by_agency.into_values().collect(),
            rounds: counts
                .into_iter()
                .map(|(rounds, incidents)| RoundsCountDoc { rounds, incidents })
                .collect(),
            most_rounds: rounds
                .into_iter()
                .filter(|r| r.rounds >= 2)
                .take(100)
                .map(|r| RoundsIncidentDoc {
                    agency: agencies.get(&r.agency_id.0).cloned(),
                    folio: r.folio,
                    rounds: r.rounds,
                })
                .collect(),
        })
    }

    /// The breached clocks of the period (by the instant of the breach), newest first.
    pub async fn breach_list(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        limit: i64,
        offset: i64,
        now: Timestamp,
    ) -> Result<BreachPageDoc, ServiceError> {
        self.may_read_reports(caller)?;
        let filter = filter_of(caller, query, now)?;
        let mut errors = Vec::new();
        if !(1..=MAX_PAGE).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("debe estar entre 1 y {MAX_PAGE}"),
            ));
        }
        if offset < 0 {
            errors.push(FieldError::new("offset", "no puede ser negativo"));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let (rows, total) = self.store.breaches(&filter, limit, offset).await?;
        let agencies = self.agency_names().await?;
        Ok(BreachPageDoc {
            from: filter.from,
            to: filter.to,
            items: rows.into_iter().map(|r| breach_doc(r, &agencies)).collect(),
            total,
            limit,
            offset,
        })
    }

    /// Every breached clock of the period, for the CSV export (no cap).
    pub async fn all_breaches(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        now: Timestamp,
    ) -> Result<Vec<BreachDoc>, ServiceError> {
        self.may_read_reports(caller)?;
        let filter = filter_of(caller, query, now)?;
        let (rows, _) = self.store.breaches(&filter, i64::MAX, 0).await?;
        let agencies = self.agency_names().await?;
        Ok(rows.into_iter().map(|r| breach_doc(r, &agencies)).collect())
    }
}

/// CSV for Excel: UTF-8 with a byte-order mark, CRLF line ends, and every cell that a
/// spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab or carriage return first)
/// prefixed with an apostrophe, so a description typed by anyone cannot run in the
/// reader's spreadsheet.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut put = |cells: Vec<String>| {
        let cells: Vec<String> = cells.into_iter().map(neutralise).collect();
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(&cells);
    };
    put(header.iter().map(|h| (*h).to_string()).collect());
    for row in rows {
        put(row);
    }
    out.extend(writer.into_inner().unwrap_or_default());
    out
}

/// A cell a spreadsheet would not run as a formula.
pub fn neutralise(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The compliance report as CSV: the rows by agency, then the totals.
pub fn compliance_csv(doc: &ComplianceDoc) -> Vec<u8> {
    let header = [
        "Reloj",
        "Severidad",
        "Dependencia",
        "Medidos",
        "Cumplidos",
        "Excedidos",
        "Cumplimiento (%)",
        "p50 (s)",
        "p90 (s)",
        "p95 (s)",
        "Máximo (s)",
        "En pausa (s)",
        "Pausa de",
        "Meta mínima (s)",
        "Meta máxima (s)",
    ];
    let line = |r: &ComplianceRowDoc, total: bool| {
        vec![
            r.clock_label.clone(),
            severity_text(r.severity.as_deref()),
            if total {
                "Total".into()
            } else {
                r.agency.clone().unwrap_or_default()
            },
            r.measured.to_string(),
            r.met.to_string(),
            r.breached.to_string(),
            format!("{:.2}", r.compliance_pct),
            r.p50_s.to_string(),
            r.p90_s.to_string(),
            r.p95_s.to_string(),
            r.max_s.to_string(),
            r.paused_s.to_string(),
            match r.paused_by.as_deref() {
                Some("cedn") => "CEDN".into(),
                Some(_) => "Mesa de ayuda".into(),
                None => String::new(),
            },
            r.target_min_s.to_string(),
            r.target_max_s.to_string(),
        ]
    };
    let rows = doc
        .rows
        .iter()
        .map(|r| line(r, false))
        .chain(doc.totals.iter().map(|r| line(r, true)));
    csv(&header, rows)
}

/// The breach list as CSV.
pub fn breaches_csv(items: &[BreachDoc]) -> Vec<u8> {
    let tz = crate::clock::mexico_city();
    let header = [
        "Folio",
        "Reloj",
        "Dependencia",
        "Responsable del paso",
        "Severidad",
        "Meta (s)",
        "Excedido el (hora del centro de México)",
        "Tiempo usado (s)",
        "Exceso (s)",
        "Paso concluido",
        "Nivel de escalamiento",
    ];
    let rows = items.iter().map(|b| {
        vec![
            b.folio.clone(),
            b.clock_label.clone(),
            b.agency.clone().unwrap_or_default(),
            party_label(b),
            severity_text(b.severity.as_deref()),
            b.target_s.to_string(),
            b.breached_at
                .to_zoned_datetime(tz.clone())
                .strftime("%d/%m/%Y %H:%M:%S")
                .to_string(),
            b.used_s.to_string(),
            b.overrun_s.to_string(),
            if b.stopped { "Sí" } else { "No" }.into(),
            b.escalation_level.to_string(),
        ]
    });
    csv(&header, rows)
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.2}"))
}

/// The error budget as CSV.
pub fn budget_csv(doc: &BudgetDoc) -> Vec<u8> {
    let header = [
        "Reloj",
        "Severidad",
        "Medidos",
        "Excedidos",
        "Cumplimiento (%)",
        "Objetivo (%)",
        "Excesos permitidos",
        "Presupuesto restante (%)",
        "Consumo 1 h",
        "Consumo 6 h",
        "Consumo 3 d",
        "Dependencias que más consumen",
    ];
    let rows = doc.rows.iter().map(|r| {
        vec![
            r.clock_label.clone(),
            severity_text(r.severity.as_deref()),
            r.measured.to_string(),
            r.breached.to_string(),
            opt_pct(r.sli_pct),
            format!("{:.2}", doc.objective_pct),
            format!("{:.2}", r.allowed_breaches),
            format!("{:.2}", r.budget_left_pct),
            opt_pct(r.burn_1h),
            opt_pct(r.burn_6h),
            opt_pct(r.burn_3d),
            r.fastest
                .iter()
                .map(|b| format!("{} ({:.2})", b.agency.clone().unwrap_or_default(), b.burn))
                .collect::<Vec<_>>()
                .join("; "),
        ]
    });
    csv(&header, rows)
}

/// A what-if as CSV.
pub fn what_if_csv(doc: &WhatIfDoc) -> Vec<u8> {
    let a = format!("A: {}", doc.a.label);
    let b = format!("B: {}", doc.b.label);
    let header = [
        "Reloj",
        "Severidad",
        "Relojes",
        "Cumplidos registrados",
        "Cumplimiento registrado (%)",
        &format!("{a}, meta (s)"),
        &format!("{a}, cumplidos"),
        &format!("{a}, cumplimiento (%)"),
        &format!("{b}, meta (s)"),
        &format!("{b}, cumplidos"),
        &format!("{b}, cumplimiento (%)"),
    ];
    let rows = doc.rows.iter().map(|r| {
        vec![
            r.clock_label.clone(),
            severity_text(r.severity.as_deref()),
            r.measured.to_string(),
            r.recorded_met.to_string(),
            format!("{:.2}", r.recorded_pct),
            r.a_target_s.to_string(),
            r.a_met.to_string(),
            format!("{:.2}", r.a_pct),
            r.b_target_s.to_string(),
            r.b_met.to_string(),
            format!("{:.2}", r.b_pct),
        ]
    });
    csv(&header, rows)
}

/// One of the operational lists as CSV: `open_by_age`, `mean_times` or `rounds`.
pub fn lists_csv(doc: &ListsDoc, table: ListTable) -> Vec<u8> {
    let tz = crate::clock::mexico_city();
    match table {
        ListTable::OpenByAge => csv(
            &["Estado", "Antigüedad", "Incidencias", "Reporte más antiguo"],
            doc.open_by_age.iter().map(|a| {
                vec![
                    a.state_label.clone(),
                    a.age_label.clone(),
                    a.incidents.to_string(),
                    a.oldest_reported_at
                        .to_zoned_datetime(tz.clone())
                        .strftime("%d/%m/%Y %H:%M")
                        .to_string(),
                ]
            }),
        ),
        ListTable::MeanTimes => csv(
            &[
                "Dependencia",
                "Confirmaciones",
                "Tiempo medio de confirmación (s)",
                "Resoluciones",
                "Tiempo medio de resolución (s)",
            ],
            doc.mean_times.iter().map(|m| {
                vec![
                    m.agency.clone().unwrap_or_default(),
                    m.acknowledged.to_string(),
                    m.mean_ack_s.map_or_else(String::new, |v| v.to_string()),
                    m.resolved.to_string(),
                    m.mean_resolution_s
                        .map_or_else(String::new, |v| v.to_string()),
                ]
            }),
        ),
        ListTable::Rounds => csv(
            &["Rondas de validación", "Incidencias"],
            doc.rounds
                .iter()
                .map(|r| vec![r.rounds.to_string(), r.incidents.to_string()]),
        ),
    }
}

/// Which operational list a CSV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListTable {
    OpenByAge,
    MeanTimes,
    Rounds,
}

/// A severity's Spanish name; "Sin severidad" for none.
pub fn severity_text(s: Option<&str>) -> String {
    s.and_then(|s| Severity::parse(s).ok())
        .map_or("Sin severidad".into(), |s| s.label().to_string())
}

/// Whose step a breached clock was, in Spanish.
pub fn party_label(b: &BreachDoc) -> String {
    if b.party == "cedn" {
        "CEDN".into()
    } else {
        b.agency.clone().unwrap_or_else(|| "Dependencia".into())
    }
}
