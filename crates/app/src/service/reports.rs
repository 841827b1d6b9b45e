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

fn mexico() -> TimeZone {
    TimeZone::get("America/Mexico_City").unwrap_or(TimeZone::UTC)
}

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
    let tz = mexico();
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
        return crate::documents::instant::check(start_of(d, &mexico()))
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
        caller.require(READERS, "consultar los reportes")?;
        let filter = filter_of(caller, query, now)?;
        let rows = self
            .store
            .compliance(
                &filter,
                Split {
                    severity: true,
                    agency: true,
                },
            )
            .await?;
        let totals = self
            .store
            .compliance(
                &filter,
                Split {
                    severity: true,
                    agency: false,
                },
            )
            .await?;
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

    /// The breached clocks of the period (by the instant of the breach), newest first.
    pub async fn breach_list(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        limit: i64,
        offset: i64,
        now: Timestamp,
    ) -> Result<BreachPageDoc, ServiceError> {
        caller.require(READERS, "consultar los reportes")?;
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

    /// Every breached clock of the period, for the CSV export (no cap: read in pages).
    pub async fn all_breaches(
        &self,
        caller: &Caller,
        query: &ReportQuery,
        now: Timestamp,
    ) -> Result<Vec<BreachDoc>, ServiceError> {
        caller.require(READERS, "consultar los reportes")?;
        let filter = filter_of(caller, query, now)?;
        let agencies = self.agency_names().await?;
        let mut all = Vec::new();
        loop {
            let offset = i64::try_from(all.len()).unwrap_or(i64::MAX);
            let (rows, total) = self.store.breaches(&filter, 5_000, offset).await?;
            let done = rows.is_empty();
            all.extend(rows.into_iter().map(|r| breach_doc(r, &agencies)));
            if done || i64::try_from(all.len()).unwrap_or(i64::MAX) >= total {
                return Ok(all);
            }
        }
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
            r.severity
                .as_deref()
                .and_then(|s| Severity::parse(s).ok())
                .map_or("Sin severidad".into(), |s| s.label().to_string()),
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
    let tz = mexico();
    let header = [
        "Folio",
        "Reloj",
        "Dependencia",
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
            b.severity
                .as_deref()
                .and_then(|s| Severity::parse(s).ok())
                .map_or("Sin severidad".into(), |s| s.label().to_string()),
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
