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
use crate::service::reports::{BreachPageDoc, ComplianceDoc, ComplianceRowDoc, ReportQuery};

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

pub struct BreachLine {
    pub folio: String,
    pub clock: String,
    pub agency: String,
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

fn severity_label(s: Option<&str>) -> String {
    s.and_then(|s| Severity::parse(s).ok())
        .map_or("Sin severidad".into(), |s| s.label().to_string())
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
    let page_no = q.pagina.unwrap_or(1).max(1);
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
    render(&state, &viewer, &q, doc, breaches, errors, page_no).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    q: &ReportsQuery,
    doc: ComplianceDoc,
    breaches: Option<BreachPageDoc>,
    errors: Errors,
    page_no: i64,
) -> Response {
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
    let last_day = doc
        .to
        .checked_sub(jiff::SignedDuration::from_millis(1))
        .unwrap_or(doc.to);
    let day = |t: jiff::Timestamp| {
        t.to_zoned_datetime(format::mexico())
            .strftime("%Y-%m-%d")
            .to_string()
    };
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
    };
    html(StatusCode::OK, &page)
}
