//! "Reportes" (help desk, validators, admin; an agency user sees its own agency): SLO
//! compliance over a period by clock and severity, with a bar chart drawn here as inline
//! SVG beside its data table (no script), the figures by agency, the breached clocks, and
//! the CSV exports. Filters live in the URL, so a report can be bookmarked and shared.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use incidencias_core::{ClockName, Role, Severity};

use super::format;
use super::pages::{Choice, Errors, Layout, html, refused};
use super::session::Viewer;
use crate::http::AppState;
use crate::service::ServiceError;
use crate::service::reports::severity_text as severity_label;
use crate::service::reports::{BreachPageDoc, ComplianceDoc, ComplianceRowDoc, ReportQuery, Trial};

/// Breached clocks per page.
const PAGE: i64 = 50;

/// One line of a compliance table.
pub struct Line {
    pub clock: String,
    pub severity: String,
    pub agency: String,
    pub measured: i64,
    pub met: i64,
    pub breached: i64,
    pub compliance: String,
    pub p50: String,
    pub p90: String,
    pub p95: String,
    pub max: String,
    pub paused: String,
    pub target: String,
}

/// One bar of the chart: its label, value and geometry (in the SVG's user units).
pub struct Bar {
    pub label: String,
    pub value: String,
    pub y: i64,
    pub width: i64,
    pub text_y: i64,
}

/// The page of breached clocks asked for (from 1).
fn page_of(q: &ReportsQuery) -> i64 {
    q.pagina.unwrap_or(1).max(1)
}

/// The page's filters as the lists read them (period, agency; no clock or severity).
fn lists_query(q: &ReportsQuery) -> ReportQuery {
    ReportQuery {
        from: some(&q.desde),
        to: some(&q.hasta),
        agency_id: some(&q.dependencia),
        ..ReportQuery::default()
    }
}

/// One line of the error budget table.
pub struct BudgetLine {
    pub clock: String,
    pub severity: String,
    pub measured: i64,
    pub breached: i64,
    pub sli: String,
    pub allowed: String,
    pub left: String,
    /// The budget is overspent: said in words and marked, never by colour alone.
    pub overspent: bool,
    pub burn_1h: String,
    pub burn_6h: String,
    pub burn_3d: String,
    pub fastest: String,
}

fn burn_text(b: Option<f64>) -> String {
    b.map_or("—".into(), |b| format!("{b:.2}×"))
}

fn budget_line(r: &crate::service::reports::BudgetRowDoc) -> BudgetLine {
    BudgetLine {
        clock: r.clock_label.clone(),
        severity: severity_label(r.severity.as_deref()),
        measured: r.measured,
        breached: r.breached,
        sli: r.sli_pct.map_or("—".into(), |p| format!("{p:.1} %")),
        allowed: format!("{:.1}", r.allowed_breaches),
        left: format!("{:.0} %", r.budget_left_pct),
        overspent: r.budget_left_pct < 0.0,
        burn_1h: burn_text(r.burn_1h),
        burn_6h: burn_text(r.burn_6h),
        burn_3d: burn_text(r.burn_3d),
        fastest: r
            .fastest
            .iter()
            .map(|b| {
                format!(
                    "{} ({:.2}×, {} de {})",
                    b.agency.clone().unwrap_or_default(),
                    b.burn,
                    b.breached,
                    b.measured
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

pub struct BreachLine {
    pub folio: String,
    pub clock: String,
    pub agency: String,
    pub party: String,
    pub severity: String,
    pub breached: String,
    pub target: String,
    pub overrun: String,
    pub done: &'static str,
    pub level: i64,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    layout: Layout,
    errors: Errors,
    period: String,
    desde: String,
    hasta: String,
    clocks: Vec<Choice>,
    severities: Vec<Choice>,
    agencies: Vec<Choice>,
    /// An agency user reads its own agency: no agency filter.
    own_agency: Option<String>,
    totals: Vec<Line>,
    rows: Vec<Line>,
    bars: Vec<Bar>,
    chart_height: i64,
    breaches: Vec<BreachLine>,
    breach_total: i64,
    prev: Option<String>,
    next: Option<String>,
    csv_query: String,
    objetivo: String,
    budget: Vec<BudgetLine>,
    lists: Option<crate::service::reports::ListsDoc>,
    means: Vec<MeanLine>,
    ages: Vec<AgeLine>,
}

/// A line of the mean times table.
pub struct MeanLine {
    pub agency: String,
    pub acknowledged: i64,
    pub mean_ack: String,
    pub resolved: i64,
    pub mean_resolution: String,
}

/// A line of the open incidents by age table.
pub struct AgeLine {
    pub state: String,
    pub age: String,
    pub incidents: i64,
    pub oldest: String,
}

/// The page's filters, in Spanish, as the URL carries them.
#[derive(serde::Deserialize, Default)]
pub struct ReportsQuery {
    #[serde(default)]
    desde: Option<String>,
    #[serde(default)]
    hasta: Option<String>,
    #[serde(default)]
    reloj: Option<String>,
    #[serde(default)]
    severidad: Option<String>,
    #[serde(default)]
    dependencia: Option<String>,
    #[serde(default)]
    pagina: Option<i64>,
    #[serde(default)]
    objetivo: Option<String>,
}

fn some(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

fn label(field: &str) -> String {
    match field {
        "from" => "Desde",
        "to" => "Hasta",
        "clock" => "Reloj",
        "severity" => "Severidad",
        "agency_id" => "Dependencia",
        _ => "Filtro",
    }
    .into()
}

fn anchor(field: &str) -> String {
    match field {
        "from" => "f-desde",
        "to" => "f-hasta",
        "clock" => "f-reloj",
        "severity" => "f-severidad",
        "agency_id" => "f-dependencia",
        _ => "f-desde",
    }
    .into()
}

/// A date input's value (`2026-11-30`), Mexico City.
fn day(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(format::mexico())
        .strftime("%Y-%m-%d")
        .to_string()
}

/// The last millisecond before `end`: the last day of a period that ends at midnight.
fn last_instant(end: jiff::Timestamp) -> jiff::Timestamp {
    end.checked_sub(jiff::SignedDuration::from_millis(1))
        .unwrap_or(end)
}

fn line(r: &ComplianceRowDoc) -> Line {
    let target = if r.target_min_s == r.target_max_s {
        format::span(r.target_min_s)
    } else {
        format!(
            "{} a {}",
            format::span(r.target_min_s),
            format::span(r.target_max_s)
        )
    };
    Line {
        clock: r.clock_label.clone(),
        severity: severity_label(r.severity.as_deref()),
        agency: r.agency.clone().unwrap_or_else(|| "Todas".into()),
        measured: r.measured,
        met: r.met,
        breached: r.breached,
        compliance: format!("{:.1} %", r.compliance_pct),
        p50: format::span(r.p50_s),
        p90: format::span(r.p90_s),
        p95: format::span(r.p95_s),
        max: format::span(r.max_s),
        paused: match (r.paused_s, r.paused_by.as_deref()) {
            (0, _) | (_, None) => "—".into(),
            (s, Some("cedn")) => format!("{} (CEDN)", format::span(s)),
            (s, Some(_)) => format!("{} (Mesa de ayuda)", format::span(s)),
        },
        target,
    }
}

/// Bar geometry: 28 units per bar, the bar's length proportional to compliance over 300.
fn bars(totals: &[ComplianceRowDoc]) -> (Vec<Bar>, i64) {
    let bars: Vec<Bar> = totals
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let y = i64::try_from(i).unwrap_or(0) * 28 + 4;
            Bar {
                label: format!(
                    "{} · {}",
                    r.clock_label,
                    severity_label(r.severity.as_deref())
                ),
                value: format!("{:.1} %", r.compliance_pct),
                y,
                width: (r.compliance_pct * 3.0).round() as i64,
                text_y: y + 15,
            }
        })
        .collect();
    let height = i64::try_from(bars.len()).unwrap_or(0) * 28 + 8;
    (bars, height)
}

fn choices(all: &[(String, String)], selected: Option<&str>) -> Vec<Choice> {
    all.iter()
        .map(|(value, label)| Choice {
            value: value.clone(),
            label: label.clone(),
            selected: selected == Some(value.as_str()),
        })
        .collect()
}

/// A query value: the unreserved characters of RFC 3986 stay as they are.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, QUERY_VALUE).to_string()
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ReportsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let api_query = ReportQuery {
        from: some(&q.desde),
        to: some(&q.hasta),
        clock: some(&q.reloj),
        severity: some(&q.severidad),
        agency_id: some(&q.dependencia),
        procedure_id: None,
    };
    let now = state.service.now();
    let caller = &viewer.caller;
    let page_no = page_of(&q);
    let (doc, breaches, errors) = match state
        .service
        .compliance_report(caller, &api_query, now)
        .await
    {
        Ok(doc) => {
            let list = state
                .service
                .breach_list(caller, &api_query, PAGE, (page_no - 1) * PAGE, now)
                .await;
            match list {
                Ok(list) => (doc, Some(list), Errors::default()),
                Err(e) => return refused(Some(&viewer), &e),
            }
        }
        Err(e @ ServiceError::Invalid(_)) => {
            // The filters as typed stay in the form, with what is wrong with them; the
            // figures are the default period's.
            let errors = Errors::from_service(&e, label, anchor);
            match state
                .service
                .compliance_report(caller, &ReportQuery::default(), now)
                .await
            {
                Ok(doc) => (doc, None, errors),
                Err(e) => return refused(Some(&viewer), &e),
            }
        }
        Err(e) => return refused(Some(&viewer), &e),
    };
    render(&state, &viewer, &q, doc, breaches, errors, now).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    q: &ReportsQuery,
    doc: ComplianceDoc,
    breaches: Option<BreachPageDoc>,
    errors: Errors,
    now: jiff::Timestamp,
) -> Response {
    let page_no = page_of(q);
    let caller = &viewer.caller;
    let agencies = match state.service.agencies(caller).await {
        Ok(a) => a,
        Err(e) => return refused(Some(viewer), &e),
    };
    let own_agency = (caller.role == Role::Agency).then(|| {
        agencies
            .iter()
            .find(|a| Some(a.id) == caller.agency_id.map(|a| a.0))
            .map_or_else(String::new, |a| a.name.clone())
    });
    let last_day = last_instant(doc.to);
    let shown = |t: jiff::Timestamp| {
        t.to_zoned_datetime(format::mexico())
            .strftime("%d/%m/%Y")
            .to_string()
    };
    let desde = some(&q.desde).unwrap_or_else(|| day(doc.from));
    let hasta = some(&q.hasta).unwrap_or_else(|| day(last_day));
    let period = format!("del {} al {}", shown(doc.from), shown(last_day));
    // The exports and the page links carry the same filters.
    let mut api_pairs = vec![("from", day(doc.from)), ("to", day(last_day))];
    let mut page_pairs = vec![("desde", desde.clone()), ("hasta", hasta.clone())];
    for (api, page, v) in [
        ("clock", "reloj", &q.reloj),
        ("severity", "severidad", &q.severidad),
        ("agency_id", "dependencia", &q.dependencia),
    ] {
        if let Some(v) = some(v) {
            api_pairs.push((api, v.clone()));
            page_pairs.push((page, v));
        }
    }
    let join = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let page_link = |n: i64| {
        let mut pairs = page_pairs.clone();
        pairs.push(("pagina", n.to_string()));
        format!("/reportes?{}#excedidos", join(&pairs))
    };
    let (breach_lines, breach_total, prev, next) = match breaches {
        Some(list) => {
            let more = list.offset + i64::try_from(list.items.len()).unwrap_or(0) < list.total;
            (
                list.items
                    .iter()
                    .map(|b| BreachLine {
                        folio: b.folio.clone(),
                        clock: b.clock_label.clone(),
                        agency: b.agency.clone().unwrap_or_default(),
                        party: crate::service::reports::party_label(b),
                        severity: severity_label(b.severity.as_deref()),
                        breached: format::instant(b.breached_at),
                        target: format::span(b.target_s),
                        overrun: format::span(b.overrun_s),
                        done: if b.stopped { "Sí" } else { "No" },
                        level: b.escalation_level,
                    })
                    .collect(),
                list.total,
                (page_no > 1).then(|| page_link(page_no - 1)),
                more.then(|| page_link(page_no + 1)),
            )
        }
        None => (Vec::new(), 0, None, None),
    };
    let clock_choices: Vec<(String, String)> = ClockName::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.label().to_string()))
        .collect();
    let severity_choices: Vec<(String, String)> = Severity::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), s.label().to_string()))
        .collect();
    let agency_choices: Vec<(String, String)> = agencies
        .iter()
        .map(|a| (a.id.to_string(), format!("{} ({})", a.name, a.acronym)))
        .collect();
    let (bars, chart_height) = bars(&doc.totals);
    // The month's error budget, with the same filters but its own period.
    let objective_text = some(&q.objetivo);
    let budget_query = ReportQuery {
        clock: some(&q.reloj),
        severity: some(&q.severidad),
        agency_id: some(&q.dependencia),
        ..ReportQuery::default()
    };
    let mut errors = errors;
    let mut budget_objective = String::new();
    let budget = match crate::service::reports::objective(objective_text.as_deref()) {
        Ok(objective) => match state
            .service
            .error_budget(caller, &budget_query, objective, now)
            .await
        {
            Ok(b) => {
                budget_objective = format!("{}", b.objective_pct);
                b.rows.iter().map(budget_line).collect()
            }
            Err(ServiceError::Invalid(_)) => Vec::new(),
            Err(e) => return refused(Some(viewer), &e),
        },
        Err(e) => {
            if errors.message.is_none() {
                errors = Errors::from_service(&e, |_| "Objetivo".into(), |_| "f-objetivo".into());
            }
            Vec::new()
        }
    };
    let lists = match state
        .service
        .report_lists(caller, &lists_query(q), now)
        .await
    {
        Ok(l) => Some(l),
        Err(ServiceError::Invalid(_)) => None,
        Err(e) => return refused(Some(viewer), &e),
    };
    let means = lists
        .as_ref()
        .map(|l| {
            l.mean_times
                .iter()
                .map(|m| MeanLine {
                    agency: m.agency.clone().unwrap_or_default(),
                    acknowledged: m.acknowledged,
                    mean_ack: m.mean_ack_s.map_or("—".into(), format::span),
                    resolved: m.resolved,
                    mean_resolution: m.mean_resolution_s.map_or("—".into(), format::span),
                })
                .collect()
        })
        .unwrap_or_default();
    let ages = lists
        .as_ref()
        .map(|l| {
            l.open_by_age
                .iter()
                .map(|a| AgeLine {
                    state: a.state_label.clone(),
                    age: a.age_label.clone(),
                    incidents: a.incidents,
                    oldest: format::instant(a.oldest_reported_at),
                })
                .collect()
        })
        .unwrap_or_default();
    let page = ReportsPage {
        layout: Layout::new(Some(viewer), "Reportes", "/reportes"),
        errors,
        period,
        clocks: choices(&clock_choices, some(&q.reloj).as_deref()),
        severities: choices(&severity_choices, some(&q.severidad).as_deref()),
        agencies: choices(&agency_choices, some(&q.dependencia).as_deref()),
        own_agency,
        totals: doc.totals.iter().map(line).collect(),
        rows: doc.rows.iter().map(line).collect(),
        bars,
        chart_height,
        breaches: breach_lines,
        breach_total,
        prev,
        next,
        csv_query: join(&api_pairs),
        desde,
        hasta,
        objetivo: objective_text.unwrap_or(budget_objective),
        budget,
        lists,
        means,
        ages,
    };
    html(StatusCode::OK, &page)
}

/// One line of the what-if table.
pub struct TrialLine {
    pub clock: String,
    pub severity: String,
    pub measured: i64,
    pub recorded: String,
    pub a_target: String,
    pub a: String,
    pub b_target: String,
    pub b: String,
    pub change: String,
}

/// A draft target input: clock × severity, in minutes.
pub struct DraftInput {
    pub name: String,
    pub id: String,
    pub label: String,
    pub value: String,
}

/// One clock's row of draft inputs.
pub struct DraftRow {
    pub clock: String,
    pub inputs: Vec<DraftInput>,
}

#[derive(Template)]
#[template(path = "what_if.html")]
struct WhatIfPage {
    layout: Layout,
    errors: Errors,
    desde: String,
    hasta: String,
    clocks: Vec<Choice>,
    versions_a: Vec<Choice>,
    versions_b: Vec<Choice>,
    draft: Vec<DraftRow>,
    a_label: String,
    b_label: String,
    period: String,
    lines: Vec<TrialLine>,
    asked: bool,
}

fn draft_field(clock: ClockName, severity: Severity) -> String {
    format!("m_{}_{}", clock.as_str(), severity.as_str())
}

fn minutes(seconds: u32) -> String {
    if seconds.is_multiple_of(60) {
        (seconds / 60).to_string()
    } else {
        format!("{:.2}", f64::from(seconds) / 60.0)
    }
}

/// "Simulación de metas": the what-if between two versions or against a draft, every
/// input in the URL (nothing is stored, so a GET form).
pub async fn what_if(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let caller = &viewer.caller;
    if let Err(e) = state.service.may_read_reports(caller) {
        return refused(Some(&viewer), &e);
    }
    let now = state.service.now();
    let policies = match state.service.policies().await {
        Ok(p) => p,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let in_force = incidencias_core::policy_in_force(&policies, now)
        .cloned()
        .unwrap_or_else(incidencias_core::SloPolicy::seed);
    // The draft starts as the version in force; what was typed wins.
    let mut bad = Vec::new();
    let mut targets = in_force.targets;
    for clock in ClockName::ALL {
        for severity in Severity::ALL {
            let field = draft_field(clock, *severity);
            let Some(text) = get(&field) else { continue };
            match text.replace(',', ".").parse::<f64>() {
                Ok(m) if m > 0.0 && m <= 525_600.0 => {
                    let s = (m * 60.0).round() as u32;
                    let t = targets.for_clock_mut(clock);
                    t.set(*severity, s.max(1));
                }
                _ => bad.push(incidencias_core::FieldError::new(
                    &field,
                    "debe ser un número de minutos mayor que 0 (hasta un año)",
                )),
            }
        }
    }
    let a_choice = get("a");
    let b_choice = get("b").unwrap_or_else(|| "borrador".into());
    let trial = |choice: Option<&str>,
                 field: &str,
                 errors: &mut Vec<incidencias_core::FieldError>| match choice {
        None | Some("vigente") => Trial::InForce,
        Some("borrador") => Trial::Draft(targets),
        Some(v) => match v.parse::<u32>() {
            Ok(v) => Trial::Version(v),
            Err(_) => {
                errors.push(incidencias_core::FieldError::new(
                    field,
                    "elija una versión",
                ));
                Trial::InForce
            }
        },
    };
    let a = trial(a_choice.as_deref(), "a", &mut bad);
    let b = trial(Some(b_choice.as_str()), "b", &mut bad);
    let report_query = ReportQuery {
        from: get("desde"),
        to: get("hasta"),
        clock: get("reloj"),
        ..ReportQuery::default()
    };
    let asked = get("comparar").is_some();
    let label = |f: &str| match f {
        "from" => "Desde".to_string(),
        "to" => "Hasta".to_string(),
        "clock" => "Reloj".to_string(),
        "a" | "version_a" => "Política A".to_string(),
        "b" | "version_b" => "Política B".to_string(),
        f => f
            .strip_prefix("targets.")
            .or_else(|| f.strip_prefix("m_"))
            .map_or_else(
                || "Filtro".to_string(),
                |t| format!("Meta {}", t.replace(['.', '_'], " ")),
            ),
    };
    let anchor = |f: &str| match f {
        "from" => "f-desde".to_string(),
        "to" => "f-hasta".to_string(),
        "clock" => "f-reloj".to_string(),
        "a" | "version_a" => "f-a".to_string(),
        "b" | "version_b" => "f-b".to_string(),
        f => f
            .strip_prefix("targets.")
            .map_or_else(|| f.to_string(), |t| format!("m_{}", t.replace('.', "_"))),
    };
    let mut errors = Errors::default();
    let mut doc = None;
    if !bad.is_empty() {
        errors = Errors::from_service(&ServiceError::Invalid(bad), label, anchor);
    } else if asked {
        match state
            .service
            .what_if(caller, &report_query, a, b, now)
            .await
        {
            Ok(d) => doc = Some(d),
            Err(e @ ServiceError::Invalid(_)) => errors = Errors::from_service(&e, label, anchor),
            Err(e) => return refused(Some(&viewer), &e),
        }
    }
    let (month_start, month_end) = crate::service::reports::current_month(now);
    let version_choices = |selected: &str, with_draft: bool| {
        let mut out = vec![Choice {
            value: "vigente".into(),
            label: format!("Vigente (versión {})", in_force.version),
            selected: selected == "vigente",
        }];
        if with_draft {
            out.push(Choice {
                value: "borrador".into(),
                label: "Borrador (las metas de abajo)".into(),
                selected: selected == "borrador",
            });
        }
        out.extend(policies.iter().map(|p| Choice {
            value: p.version.to_string(),
            label: format!(
                "Versión {} (desde el {})",
                p.version,
                format::instant(p.effective_from)
            ),
            selected: selected == p.version.to_string(),
        }));
        out
    };
    let clock_choices: Vec<(String, String)> = ClockName::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.label().to_string()))
        .collect();
    let draft = ClockName::ALL
        .iter()
        .map(|clock| DraftRow {
            clock: clock.label().to_string(),
            inputs: Severity::ALL
                .iter()
                .map(|s| {
                    let name = draft_field(*clock, *s);
                    DraftInput {
                        value: get(&name)
                            .unwrap_or_else(|| minutes(in_force.targets.for_clock(*clock).get(*s))),
                        id: name.clone(),
                        name,
                        label: format!("{}, {}, en minutos", clock.label(), s.label()),
                    }
                })
                .collect(),
        })
        .collect();
    let lines = doc
        .as_ref()
        .map(|d| {
            d.rows
                .iter()
                .map(|r| TrialLine {
                    clock: r.clock_label.clone(),
                    severity: severity_label(r.severity.as_deref()),
                    measured: r.measured,
                    recorded: format!("{:.1} %", r.recorded_pct),
                    a_target: format::span(r.a_target_s),
                    a: format!("{:.1} % ({})", r.a_pct, r.a_met),
                    b_target: format::span(r.b_target_s),
                    b: format!("{:.1} % ({})", r.b_pct, r.b_met),
                    change: format!("{:+.1} puntos", r.b_pct - r.a_pct),
                })
                .collect()
        })
        .unwrap_or_default();
    let page = WhatIfPage {
        layout: Layout::new(Some(&viewer), "Simulación de metas", "/reportes"),
        errors,
        desde: get("desde").unwrap_or_else(|| day(month_start)),
        hasta: get("hasta").unwrap_or_else(|| day(last_instant(month_end))),
        clocks: choices(&clock_choices, get("reloj").as_deref()),
        versions_a: version_choices(a_choice.as_deref().unwrap_or("vigente"), false),
        versions_b: version_choices(&b_choice, true),
        draft,
        a_label: doc.as_ref().map(|d| d.a.label.clone()).unwrap_or_default(),
        b_label: doc.as_ref().map(|d| d.b.label.clone()).unwrap_or_default(),
        period: doc
            .as_ref()
            .map(|d| {
                format!(
                    "del {} al {}",
                    format::instant(d.from),
                    format::instant(d.to)
                )
            })
            .unwrap_or_default(),
        lines,
        asked: doc.is_some(),
    };
    html(StatusCode::OK, &page)
}
