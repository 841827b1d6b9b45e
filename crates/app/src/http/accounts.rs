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
use super::extract::{Auth, Body, SESSION_COOKIE, cookie};
use crate::documents::UserDoc;

const TAG: &str = "cuentas";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// Password sign-in: sets the session cookie. After three consecutive failures for an
/// address, each attempt must wait longer (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/login", tag = TAG, request_body = LoginBody,
    responses((status = 200, body = UserDoc), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    body: Body<LoginBody>,
) -> Result<Response, ApiError> {
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
    responses((status = 204)), security(("session" = [])))]
pub async fn logout(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
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
