//! Sign-in for browsers (session cookie) and who-am-I.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Auth, Body, SESSION_COOKIE, cookie, same_origin};
use crate::documents::UserDoc;

const TAG: &str = "cuentas";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// Signing in and out set the session cookie, so, like every cookie-authenticated write,
/// they must come from our own pages (or from a program, which sends no `Origin`): another
/// site's page cannot sign a visitor in to an account of its choosing, nor out.
fn cookie_write_from_our_pages(parts: &Parts) -> Result<(), ApiError> {
    if same_origin(parts) {
        return Ok(());
    }
    Err(ApiError::Service(crate::service::ServiceError::Forbidden(
        "la solicitud no proviene de las páginas de incidencias".into(),
    )))
}

/// Password sign-in: sets the session cookie. After three consecutive failures for an
/// address, each attempt must wait longer (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/login", tag = TAG, request_body = LoginBody,
    responses((status = 200, body = UserDoc), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    body: Body<LoginBody>,
) -> Result<Response, ApiError> {
    cookie_write_from_our_pages(&parts)?;
    // Signing in is for anyone: there is no role to check first.
    let body = body.anyone()?;
    let outcome = state
        .service
        .login(&body.value.email, &body.value.password)
        .await?;
    let max_age = crate::service::SESSION_HOURS * 3600;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        outcome.session,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = Json(outcome.user).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Ends the browser session.
#[utoipa::path(post, path = "/api/v1/logout", tag = TAG,
    responses((status = 204), (status = 403, body = Problem)), security((), ("session" = [])))]
pub async fn logout(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    cookie_write_from_our_pages(&parts)?;
    if let Some(session) = cookie(&parts, SESSION_COOKIE) {
        state.service.logout(session).await?;
    }
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("incidencias_sesion=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = TAG,
    responses((status = 200, body = UserDoc), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<UserDoc>, ApiError> {
    Ok(Json(state.service.me(&caller).await?))
}
