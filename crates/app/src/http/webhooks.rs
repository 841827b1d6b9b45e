//! Webhook subscriptions (admin), and the document every delivery carries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Auth, Body};
use crate::service::{ServiceError, WebhookDoc, WebhookInput, WebhookLogDoc, WebhookSecretDoc};

const TAG: &str = "webhooks";

/// What a subscriber receives: the JSON body of every delivery, `POST`ed with the headers
/// `webhook-id` (the same on every retry of one message), `webhook-timestamp` (Unix
/// seconds of the attempt) and `webhook-signature` (`v1,` + base64 of
/// HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"), the key being the base64
/// after `whsec_` of the subscription's secret; during a rotation two signatures separated
/// by a space, the new secret's first). Answer 2xx within 10 s, or it is retried with a
/// growing wait (8 attempts).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookPayloadDoc {
    /// `procedure.button`, `procedure.banner` or `incident.state`.
    #[serde(rename = "type")]
    #[schema(example = "procedure.button")]
    pub event_type: String,
    /// When the change was recorded (RFC 3339, UTC).
    pub timestamp: String,
    pub data: WebhookDataDoc,
}

/// The change. Every type carries `folio` (the incident whose change caused it) and
/// `version` (its number of events then: a receiver drops a message older than one it
/// already applied for that incident). Only published incidents (notified) are announced.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookDataDoc {
    #[schema(example = "INC-2026-000123")]
    pub folio: String,
    pub version: u64,
    /// `procedure.button` and `procedure.banner`: the procedure's homoclave. Its state is
    /// the one the portal must show, combined over every open incident touching it.
    pub procedure: Option<String>,
    /// `incident.state`: the homoclaves of the incident's procedures.
    pub procedures: Option<Vec<String>>,
    /// `procedure.button`: the portal button's new state.
    pub button_enabled: Option<bool>,
    /// `procedure.banner`: shown or removed.
    pub shown: Option<bool>,
    /// `procedure.banner`: the notice to show (null when removed).
    pub message: Option<String>,
    /// `incident.state`: the new state and the one before (null when first published).
    pub state: Option<String>,
    pub previous_state: Option<String>,
    pub severity: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where to `POST` (http or https).
    #[schema(example = "https://www.gob.mx/webhooks/incidencias")]
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Any of `procedure.button`, `procedure.banner`, `incident.state`.
    pub events: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookStateBody {
    /// False pauses the subscription (nothing is written or sent for it); true resumes.
    pub active: bool,
}

fn id_of(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ServiceError::NotFound("la suscripción".into()).into())
}

/// Every subscription (admin).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = TAG,
    responses((status = 200, body = Vec<WebhookDoc>), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<WebhookDoc>>, ApiError> {
    Ok(Json(state.service.webhooks(&caller).await?))
}

/// Subscribe a receiver (admin). The answer holds the secret, shown only this once. The
/// body each delivery carries is `WebhookPayloadDoc`.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = TAG, request_body = NewWebhookBody,
    responses((status = 201, body = WebhookSecretDoc), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewWebhookBody>,
) -> Result<Response, ApiError> {
    let b = body.for_action(&state, &caller, "manage_webhooks")?.value;
    let created = state
        .service
        .create_webhook(
            &caller,
            WebhookInput {
                url: b.url,
                description: b.description,
                events: b.events,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// A new secret (admin); the replaced one keeps signing for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookSecretDoc), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookSecretDoc>, ApiError> {
    let id = id_of(&id)?;
    Ok(Json(state.service.rotate_webhook(&caller, id).await?))
}

/// Pause or resume a subscription (admin).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = TAG,
    params(("id" = i64, Path)), request_body = WebhookStateBody,
    responses((status = 200, body = WebhookDoc), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_state(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: Body<WebhookStateBody>,
) -> Result<Json<WebhookDoc>, ApiError> {
    let b = body.for_action(&state, &caller, "manage_webhooks")?.value;
    let id = id_of(&id)?;
    Ok(Json(
        state
            .service
            .set_webhook_active(&caller, id, b.active)
            .await?,
    ))
}

/// The delivery log (admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookLogDoc), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookLogDoc>, ApiError> {
    let id = id_of(&id)?;
    Ok(Json(state.service.webhook_log(&caller, id).await?))
}
