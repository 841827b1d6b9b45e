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
    let doc = match state.service.public_procedures().await {
        Ok(doc) => doc,
        Err(e) => return refused(None, &e),
    };
    let mut groups: Vec<AgencyGroup> = Vec::new();
    let (mut shown, mut troubled) = (0, 0);
    for p in doc.procedures {
        let search = format!(
            "{} {} {} {}",
            p.name, p.homoclave, p.agency_acronym, p.agency_name
        )
        .to_lowercase();
        if !wanted.is_empty() && !search.contains(&wanted) {
            continue;
        }
        let (label, mark) = match p.state.as_str() {
            "incident" => ("Con incidencia", "✕"),
            "maintenance" => ("En mantenimiento", "!"),
            _ => ("Operando", "✓"),
        };
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
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = super::assets::etag(body.as_bytes());
    let mut response = super::assets::revalidated(&tag, &headers, || Html(body).into_response());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    response
}
