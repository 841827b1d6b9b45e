//! The outbox for the help desk: what was sent, what waits, what died.

use axum::Json;
use axum::extract::{Query, State};
use incidencias_core::{FieldError, Role};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Auth;
use crate::store::{InboundRow, OutboxRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxDoc {
    pub id: i64,
    pub folio: Option<String>,
    /// Template name.
    pub kind: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub message_id: String,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

impl From<OutboxRow> for OutboxDoc {
    fn from(r: OutboxRow) -> OutboxDoc {
        OutboxDoc {
            id: r.id,
            folio: r.folio,
            kind: r.kind,
            to: r.to,
            cc: r.cc,
            state: r.state,
            attempts: r.attempts,
            message_id: r.message_id,
            last_error: r.last_error,
            created_at_ms: r.created_at,
            next_attempt_at_ms: r.next_attempt_at,
            sent_at_ms: r.sent_at,
        }
    }
}

/// The query of a list: `limit` (1 to 500, default 100) read here, every other name handed
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
                Ok(n) if (1..=500).contains(&n) => limit = n,
                _ => errors.push(FieldError::new("limit", "debe estar entre 1 y 500")),
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
    caller.require(
        &[Role::Helpdesk, Role::Admin],
        "consultar la bandeja de salida",
    )?;
    let mut filter = None;
    let limit = list_query(pairs, |name, value, errors| match name {
        "state" if matches!(value.as_str(), "pending" | "sent" | "dead") => {
            filter = Some(value);
            true
        }
        "state" => {
            errors.push(FieldError::new("state", "debe ser pending, sent o dead"));
            true
        }
        _ => false,
    })?;
    let rows = state
        .service
        .store
        .list_outbox(filter.as_deref(), limit)
        .await
        .map_err(crate::service::ServiceError::from)?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundDoc {
    /// `acknowledged`, `resolution_notified`, `recorded`, `new_incident` or `triage`.
    pub outcome: String,
    pub folio: Option<String>,
    pub reason: Option<String>,
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
    caller.require(&[Role::Helpdesk, Role::Admin], "entregar correos recibidos")?;
    let limit = crate::mail::inbound::MAX_MESSAGE_BYTES;
    let raw = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let result = state.service.ingest(&raw).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(InboundDoc {
            outcome: result.outcome,
            folio: result.folio,
            reason: result.reason,
        }),
    )
        .into_response())
}

/// One received email as kept: where it went and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedDoc {
    pub id: i64,
    pub received_at_ms: i64,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    pub folio: Option<String>,
    /// `acknowledged`, `resolution_notified`, `recorded`, `new_incident` or `triage`.
    pub outcome: String,
    /// Why it went to triage (in Spanish).
    pub reason: Option<String>,
    /// What the sender wrote, without the quoted reply (at most 2,000 characters).
    pub excerpt: String,
}

impl From<InboundRow> for ReceivedDoc {
    fn from(r: InboundRow) -> ReceivedDoc {
        let m = r.record;
        ReceivedDoc {
            id: r.id,
            received_at_ms: m.received_at.as_millisecond(),
            message_id: m.message_id,
            sender: m.sender,
            subject: m.subject,
            folio: m.folio,
            outcome: m.outcome,
            reason: m.reason,
            excerpt: m.excerpt,
        }
    }
}

const OUTCOMES: [&str; 5] = [
    "acknowledged",
    "resolution_notified",
    "recorded",
    "new_incident",
    "triage",
];

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
    caller.require(
        &[Role::Helpdesk, Role::Admin],
        "consultar los correos recibidos",
    )?;
    let (mut outcome, mut before) = (None, None);
    let limit = list_query(pairs, |name, value, errors| {
        match name {
            "outcome" if OUTCOMES.contains(&value.as_str()) => outcome = Some(value),
            "outcome" => errors.push(FieldError::new(
                "outcome",
                "debe ser acknowledged, resolution_notified, recorded, new_incident o triage",
            )),
            "before" => match value.parse::<i64>() {
                Ok(n) if n > 0 => before = Some(n),
                _ => errors.push(FieldError::new("before", "debe ser un id positivo")),
            },
            _ => return false,
        }
        true
    })?;
    let rows = state
        .service
        .store
        .list_inbound(outcome.as_deref(), before, limit)
        .await
        .map_err(crate::service::ServiceError::from)?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}
