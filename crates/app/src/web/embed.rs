//! What the portal's procedure pages include: the banner (cortinilla) as a script or as
//! an iframe, and, in `incidencias demo`, a page that plays the portal so a newcomer sees
//! both at work. Served outside the pages' `frame-ancestors 'none'`: the iframe may be
//! framed by the configured portal origins, and the script is loaded from their pages.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::pages::not_found_page;
use crate::http::AppState;

/// The script a procedure page includes (`static/embed/cortinilla.js`).
pub const SCRIPT: &[u8] = include_bytes!("../../static/embed/cortinilla.js");

/// The routes, with the headers every one of them needs.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/embed/cortinilla.js", get(script))
        .route("/embed/cortinilla/{homoclave}", get(frame))
        .route("/demo/portal", get(simulator_start))
        .route("/demo/portal/{homoclave}", get(simulator))
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        )
}

/// The banner's script: the same for every procedure (it reads `data-tramite`), cached
/// five minutes and revalidated by its `ETag`; loadable from any page
/// (`Cross-Origin-Resource-Policy: cross-origin`), it reads the state with CORS, which
/// only the portal's origins are granted.
async fn script(headers: HeaderMap) -> Response {
    let mut response = super::revalidated(&super::etag(SCRIPT), &headers, || {
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        )
            .into_response()
    });
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    response
}

#[derive(Template)]
#[template(path = "embed_frame.html")]
struct FramePage {
    /// The notice, only when the banner is shown.
    message: Option<String>,
}

/// The iframe variant: the notice when the banner is shown, an empty transparent page
/// otherwise (also for an unknown procedure: the portal's page shows nothing rather than
/// an error). Framable only by the portal's origins; no script, no cookie.
async fn frame(State(state): State<AppState>, Path(homoclave): Path<String>) -> Response {
    let message = match state.service.public_status(&homoclave).await {
        Ok(doc) if doc.banner.shown => Some(
            doc.banner
                .message
                .unwrap_or_else(|| incidencias_core::portal::DEFAULT_BANNER_MESSAGE.to_string()),
        ),
        _ => None,
    };
    let body = match (FramePage { message }).render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let ancestors: Vec<&str> = std::iter::once("'self'")
        .chain(state.portal_origins.iter().map(String::as_str))
        .collect();
    let policy = format!(
        "default-src 'none'; style-src 'self'; font-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors {}",
        ancestors.join(" ")
    );
    let mut response = Html(body).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policy) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[derive(Template)]
#[template(path = "portal_sim.html")]
struct SimulatorPage {
    name: String,
    agency: String,
    homoclave: String,
    url: String,
    button_enabled: bool,
    embed_src: String,
    status_url: String,
    /// The service's public address, for the snippets a portal page pastes.
    base_url: String,
}

/// `incidencias demo` only: the simulator of a procedure with its banner shown (the one a
/// newcomer wants to see), or of the first one.
async fn simulator_start(State(state): State<AppState>) -> Response {
    if state.demo_accounts.is_empty() {
        return not_found_page();
    }
    let snapshot = match state.service.public_snapshot().await {
        Ok(s) => s,
        Err(e) => return super::pages::refused(None, &e),
    };
    let list = &snapshot.doc.procedures;
    match list.iter().find(|p| p.banner.shown).or(list.first()) {
        Some(p) => {
            axum::response::Redirect::to(&format!("/demo/portal/{}", p.homoclave)).into_response()
        }
        None => not_found_page(),
    }
}

/// `incidencias demo` only: a procedure's page as the portal would show it, its button
/// as the portal reads it from the public list and the real banner script.
async fn simulator(State(state): State<AppState>, Path(homoclave): Path<String>) -> Response {
    if state.demo_accounts.is_empty() {
        return not_found_page();
    }
    let snapshot = match state.service.public_snapshot().await {
        Ok(s) => s,
        Err(e) => return super::pages::refused(None, &e),
    };
    let Some(p) = snapshot
        .doc
        .procedures
        .iter()
        .find(|p| p.homoclave.eq_ignore_ascii_case(homoclave.trim()))
    else {
        return not_found_page();
    };
    let page = SimulatorPage {
        name: p.name.clone(),
        agency: format!("{} ({})", p.agency_name, p.agency_acronym),
        homoclave: p.homoclave.clone(),
        url: p.url.clone(),
        button_enabled: p.button_enabled,
        embed_src: "/embed/cortinilla.js".into(),
        status_url: format!("/estado/{}", p.homoclave),
        base_url: state.base_url.trim_end_matches('/').to_string(),
    };
    match page.render() {
        Ok(body) => (
            [
                (
                    header::CONTENT_SECURITY_POLICY,
                    super::CONTENT_SECURITY_POLICY,
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
