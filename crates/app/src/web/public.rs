//! The public status page (no sign-in): every published procedure's state, by agency,
//! searchable, in plain words (no folios, no internal names). Cacheable and revalidated
//! by its `ETag`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::format;
use super::pages::{Layout, refused};
use crate::http::AppState;

pub struct PublicLine {
    pub homoclave: String,
    pub name: String,
    pub state: String,
    pub label: &'static str,
    /// A sign that is not colour: ✓, ✕ or !.
    pub mark: &'static str,
    pub since: Option<String>,
    pub banner: Option<String>,
    /// Lowercase text the script filters on.
    pub search: String,
}

pub struct AgencyGroup {
    pub acronym: String,
    pub name: String,
    pub procedures: Vec<PublicLine>,
}

#[derive(Template)]
#[template(path = "public.html")]
struct PublicPage {
    layout: Layout,
    query: String,
    summary: String,
    groups: Vec<AgencyGroup>,
}

#[derive(Deserialize, Default)]
pub struct PublicQuery {
    #[serde(default)]
    q: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    query: Result<Query<PublicQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let wanted = query
        .ok()
        .and_then(|Query(q)| q.q)
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let snapshot = match state.service.public_snapshot().await {
        Ok(s) => s,
        Err(e) => return refused(None, &e),
    };
    let mut groups: Vec<AgencyGroup> = Vec::new();
    let (mut shown, mut troubled) = (0, 0);
    for p in snapshot.doc.procedures.iter().cloned() {
        let search = format!(
            "{} {} {} {}",
            p.name, p.homoclave, p.agency_acronym, p.agency_name
        )
        .to_lowercase();
        if !wanted.is_empty() && !search.contains(&wanted) {
            continue;
        }
        let (label, mark) = state_words(&p.state);
        shown += 1;
        if p.state != "operating" {
            troubled += 1;
        }
        let line = PublicLine {
            homoclave: p.homoclave,
            name: p.name,
            label,
            mark,
            since: p
                .since
                .filter(|_| p.state != "operating")
                .map(format::instant),
            banner: p.banner.message.filter(|_| p.banner.shown),
            state: p.state,
            search,
        };
        match groups.last_mut() {
            Some(g) if g.acronym == p.agency_acronym => g.procedures.push(line),
            _ => groups.push(AgencyGroup {
                acronym: p.agency_acronym,
                name: p.agency_name,
                procedures: vec![line],
            }),
        }
    }
    let summary = match (shown, troubled) {
        (0, _) => "Ningún trámite coincide con la búsqueda.".to_string(),
        (1, 0) => "1 trámite, operando.".to_string(),
        (n, 0) => format!("{n} trámites; todos operando."),
        (1, _) => "1 trámite, con incidencia o en mantenimiento.".to_string(),
        (n, t) => format!("{n} trámites; {t} con incidencia o en mantenimiento."),
    };
    let page = PublicPage {
        layout: Layout::new(None, "Estado de los trámites", "/estado"),
        query: wanted,
        summary,
        groups,
    };
    cacheable(page.render(), &headers)
}

/// A public page: its `ETag` (304 when the browser holds it) and 30 s in any cache.
fn cacheable(rendered: askama::Result<String>, headers: &HeaderMap) -> Response {
    let body = match rendered {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = super::assets::etag(body.as_bytes());
    let mut response = super::assets::revalidated(&tag, headers, || Html(body).into_response());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    response
}

/// A public state in words, with a sign that is not colour.
fn state_words(state: &str) -> (&'static str, &'static str) {
    match state {
        "incident" => ("Con incidencia", "✕"),
        "maintenance" => ("En mantenimiento", "!"),
        _ => ("Operando", "✓"),
    }
}

/// One day of a procedure's history bar.
pub struct DayBar {
    /// `x` of its rectangle in the drawing.
    pub x: u32,
    /// `dd/mm/aaaa`.
    pub date: String,
    pub affected: bool,
}

/// A past incident in plain words.
pub struct PastLine {
    pub what: &'static str,
    pub from: String,
    pub until: String,
}

#[derive(Template)]
#[template(path = "public_procedure.html")]
struct ProcedurePage {
    layout: Layout,
    name: String,
    homoclave: String,
    agency: String,
    state: String,
    label: &'static str,
    mark: &'static str,
    since: Option<String>,
    banner: Option<String>,
    days: Vec<DayBar>,
    affected_days: usize,
    bars_summary: String,
    width: u32,
    incidents: Vec<PastLine>,
}

/// Width of one day's bar and the gap after it, in the drawing's units.
const BAR: u32 = 6;
const GAP: u32 = 2;

/// `/estado/{homoclave}`: one procedure's state, the last 90 days as a bar per day and its
/// past incidents, in plain words.
pub async fn procedure(
    State(state): State<AppState>,
    axum::extract::Path(homoclave): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let history = match state.service.public_history(&homoclave).await {
        Ok(h) => h,
        Err(e) => return refused(None, &e),
    };
    let now = state.service.now();
    let days = day_bars(&history.incidents, now);
    let affected_days = days.iter().filter(|d| d.affected).count();
    let total = days.len();
    let bars_summary = match affected_days {
        0 => format!("Últimos {total} días: sin incidencias."),
        1 => format!(
            "Últimos {total} días: 1 día con incidencia y {} sin incidencias.",
            total - 1
        ),
        n => format!(
            "Últimos {total} días: {n} días con incidencia y {} sin incidencias.",
            total - n
        ),
    };
    let p = history.procedure;
    let (label, mark) = state_words(&p.state);
    let incidents = history
        .incidents
        .iter()
        .rev()
        .map(|i| PastLine {
            what: i.what,
            from: format::instant(i.from),
            until: i
                .until
                .map_or_else(|| "continúa".to_string(), format::instant),
        })
        .collect();
    let page = ProcedurePage {
        layout: Layout::new(None, &p.name, "/estado"),
        since: p
            .since
            .filter(|_| p.state != "operating")
            .map(format::instant),
        banner: p.banner.message.filter(|_| p.banner.shown),
        name: p.name,
        homoclave: p.homoclave,
        agency: format!("{} ({})", p.agency_name, p.agency_acronym),
        state: p.state,
        label,
        mark,
        width: u32::try_from(total).unwrap_or(0) * (BAR + GAP),
        days,
        affected_days,
        bars_summary,
        incidents,
    };
    cacheable(page.render(), &headers)
}

/// The last [`crate::service::HISTORY_DAYS`] days (Mexico City calendar days, today last),
/// each affected when a published incident lasted into it.
fn day_bars(incidents: &[crate::service::PastIncident], now: jiff::Timestamp) -> Vec<DayBar> {
    let tz = format::mexico();
    let today = now.to_zoned_datetime(tz.clone()).date();
    let count = crate::service::HISTORY_DAYS;
    (0..count)
        .filter_map(|n| {
            let date = today
                .checked_sub(jiff::Span::new().days(count - 1 - n))
                .ok()?;
            let start = date.to_zoned_datetime(tz.clone()).ok()?.timestamp();
            let end = date
                .tomorrow()
                .ok()?
                .to_zoned_datetime(tz.clone())
                .ok()?
                .timestamp();
            let affected = incidents
                .iter()
                .any(|i| i.from < end && i.until.unwrap_or(now) >= start);
            Some(DayBar {
                x: u32::try_from(n).unwrap_or(0) * (BAR + GAP),
                date: date.strftime("%d/%m/%Y").to_string(),
                affected,
            })
        })
        .collect()
}
