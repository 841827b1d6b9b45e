//! Unauthenticated endpoints: health and the portal's public status per procedure.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Problem};
use crate::documents::PublicStatusDoc;

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "salud", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "salud",
    responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.service.ready().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "la base de datos no responde",
        )
            .into_response()
    }
}

/// What the portal shows for a procedure: button enabled or not, banner, open incident.
/// Public and cacheable for 30 seconds.
#[utoipa::path(get, path = "/api/v1/public/procedures/{homoclave}/status", tag = "portal",
    params(("homoclave" = String, Path, example = "SEGOB-01-001")),
    responses((status = 200, body = PublicStatusDoc), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn procedure_status(
    State(state): State<AppState>,
    Path(homoclave): Path<String>,
    asked: Revalidation,
) -> Result<Response, ApiError> {
    let doc = state.service.public_status(&homoclave).await?;
    let mut response = Json(doc).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    allow_portal(&state, asked.origin.as_ref(), &mut response);
    Ok(response)
}

/// CORS for the portal's pages: a request from one of the configured portal origins may
/// read the answer (no credentials: nothing here depends on who asks). Any other origin
/// gets no CORS header, so its scripts cannot read the answer.
pub fn allow_portal(state: &AppState, origin: Option<&HeaderValue>, response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin
        && origin
            .to_str()
            .is_ok_and(|o| state.portal_origins.iter().any(|p| p == o))
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}

/// The preflight of a portal page's request (a plain GET needs none; one with extra
/// headers does): allowed for the configured origins, for GET only.
pub async fn preflight(State(state): State<AppState>, asked: Revalidation) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    allow_portal(&state, asked.origin.as_ref(), &mut response);
    if response
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("If-None-Match"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// Every published procedure's state in one request (the portal's list): operating,
/// incident (button disabled) or maintenance (usable, banner shown), with the banner's
/// text. Public; `ETag` and `If-None-Match` answer 304 while nothing changed.
#[utoipa::path(get, path = "/api/v1/public/procedures", tag = "portal",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of a previous answer")),
    responses(
        (status = 200, body = crate::documents::PublicProceduresDoc, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the ETag sent"),
    ))]
pub async fn procedures(
    State(state): State<AppState>,
    asked: Revalidation,
) -> Result<Response, ApiError> {
    let snapshot = state.service.public_snapshot().await?;
    // The portal may poll this often: the answer is the snapshot's bytes and its tag,
    // shared, with no copy.
    let mut response = if crate::web::holds(&snapshot.etag, asked.if_none_match.iter()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            snapshot.json.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_maybe_shared(snapshot.etag_bytes.clone()) {
        headers.insert(header::ETAG, tag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    allow_portal(&state, asked.origin.as_ref(), &mut response);
    Ok(response)
}

/// The two request headers a public read looks at, taken without copying the others.
pub struct Revalidation {
    pub if_none_match: Option<HeaderValue>,
    pub origin: Option<HeaderValue>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Revalidation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Revalidation, Self::Rejection> {
        Ok(Revalidation {
            if_none_match: parts.headers.get(header::IF_NONE_MATCH).cloned(),
            origin: parts.headers.get(header::ORIGIN).cloned(),
        })
    }
}
