//! The outbox for the help desk: what was sent, what waits, what died.

use axum::Json;
use axum::extract::{Query, State};
use incidencias_core::FieldError;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Auth;
use crate::documents::{InboundDoc, OutboxDoc, ReceivedDoc};
use crate::service::{InboundDisposition, MAX_LIST, OutboxState};

/// The query of a list: `limit` (default 100) read here, every other name handed
/// to `other`, which records its own errors and answers false for a name it does not know.
/// All errors are reported together.
fn list_query(
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    mut other: impl FnMut(&str, String, &mut Vec<FieldError>) -> bool,
) -> Result<i64, ApiError> {
    let Query(pairs) = pairs.map_err(|_| ApiError::field("query", "parámetros mal codificados"))?;
    let mut errors = Vec::new();
    let mut limit = 100;
    for (name, value) in pairs {
        if name == "limit" {
            match value.parse::<i64>() {
                Ok(n) if (1..=MAX_LIST).contains(&n) => limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("debe estar entre 1 y {MAX_LIST}"),
                )),
            }
        } else if !other(&name, value, &mut errors) {
            errors.push(FieldError::new(&name, "parámetro desconocido"));
        }
    }
    super::incidents::done(errors)?;
    Ok(limit)
}

/// Queued, sent and dead emails, newest first (help desk and admin). Filters: `state`
/// (`pending`, `sent`, `dead`), `limit` (1 to 500, default 100).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "correo",
    params(("state" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = Vec<OutboxDoc>), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<OutboxDoc>>, ApiError> {
    let mut filter = None;
    let limit = list_query(pairs, |name, value, errors| match name {
        "state" => {
            filter = OutboxState::parse(&value);
            if filter.is_none() {
                errors.push(FieldError::new("state", "debe ser pending, sent o dead"));
            }
            true
        }
        _ => false,
    })?;
    Ok(Json(state.service.outbox(&caller, filter, limit).await?))
}

/// Takes one received email as raw RFC 822 (for an MTA pipe; help desk or admin token).
/// Replies are recorded on their incident (and a reply to the step-2 email may
/// acknowledge or notify resolution); new reports from agencies open an incident;
/// anything else goes to the help desk's triage queue. At most 10 MB.
#[utoipa::path(post, path = "/api/v1/inbound-email", tag = "correo",
    request_body(content = String, content_type = "message/rfc822"),
    responses((status = 202, body = InboundDoc), (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn inbound(
    State(state): State<AppState>,
    Auth(caller): Auth,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let limit = crate::service::MAX_MESSAGE_BYTES;
    let raw = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let result: InboundDoc = state.service.deliver(&caller, &raw).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(result)).into_response())
}

/// Received emails, newest first (help desk and admin): `outcome=triage` is the queue of
/// what nobody acted on. Filters: `outcome`, `limit` (1 to 500, default 100), `before` (an
/// id: the page after the last one seen).
#[utoipa::path(get, path = "/api/v1/inbound-email", tag = "correo",
    params(("outcome" = Option<String>, Query), ("limit" = Option<i64>, Query), ("before" = Option<i64>, Query)),
    responses((status = 200, body = Vec<ReceivedDoc>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn received(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReceivedDoc>>, ApiError> {
    let (mut outcome, mut before) = (None, None);
    let limit = list_query(pairs, |name, value, errors| {
        match name {
            "outcome" => {
                outcome = InboundDisposition::parse(&value);
                if outcome.is_none() {
                    errors.push(FieldError::new(
                "outcome",
                        "debe ser acknowledged, resolution_notified, recorded, new_incident o triage",
                    ));
                }
            }
            "before" => match value.parse::<i64>() {
                Ok(n) if n > 0 => before = Some(n),
                _ => errors.push(FieldError::new("before", "debe ser un id positivo")),
            },
            _ => return false,
        }
        true
    })?;
    Ok(Json(
        state
            .service
            .received(&caller, outcome, before, limit)
            .await?,
    ))
}
