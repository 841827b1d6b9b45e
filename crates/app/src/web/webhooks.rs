//! "Webhooks" (administrators): the subscriptions the portal (or anyone) receives the
//! portal-side events by, each with its secret (shown once, at creation and rotation), a
//! pause, and its delivery log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::format;
use super::pages::{Errors, Layout, html, refused};
use super::session::{Fields, Posted, Viewer};
use crate::http::AppState;
use crate::service::WEBHOOK_EVENT_TYPES as EVENT_TYPES;
use crate::service::{ServiceError, WebhookDoc, WebhookInput, WebhookSecretDoc};

pub struct EventChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub struct SubscriptionLine {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: String,
    pub active: bool,
    pub hint: String,
    pub rotating: Option<String>,
    pub created: String,
}

fn line(d: &WebhookDoc) -> SubscriptionLine {
    SubscriptionLine {
        id: d.id,
        url: d.url.clone(),
        description: d.description.clone(),
        events: d.events.join(", "),
        active: d.active,
        hint: d.secret_hint.clone(),
        rotating: d.previous_secret_until.map(format::instant),
        created: format::instant(d.created_at),
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    errors: Errors,
    subscriptions: Vec<SubscriptionLine>,
    events: Vec<EventChoice>,
    url: String,
    description: String,
    created: Option<(i64, String)>,
}

fn choices(checked: &[String]) -> Vec<EventChoice> {
    EVENT_TYPES
        .iter()
        .map(|(value, label)| EventChoice {
            value,
            label,
            checked: checked.iter().any(|c| c == value),
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    errors: Errors,
    posted: Option<&Fields>,
    created: Option<WebhookSecretDoc>,
) -> Response {
    let subscriptions = match state.service.webhooks(&viewer.caller).await {
        Ok(s) => s,
        Err(e) => return refused(Some(viewer), &e),
    };
    let status = if errors.message.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = WebhooksPage {
        layout: Layout::new(Some(viewer), "Webhooks", "/webhooks"),
        errors,
        subscriptions: subscriptions.iter().map(line).collect(),
        events: choices(&posted.map(|f| f.all("events")).unwrap_or_default()),
        url: posted.map(|f| f.get("url").to_string()).unwrap_or_default(),
        description: posted
            .map(|f| f.get("description").to_string())
            .unwrap_or_default(),
        created: created.map(|c| (c.subscription.id, c.secret)),
    };
    html(status, &page)
}

fn label(field: &str) -> String {
    match field {
        "url" => "Dirección del receptor",
        "events" => "Eventos",
        "description" => "Descripción",
        _ => "Solicitud",
    }
    .to_string()
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    list_page(&state, &viewer, Errors::default(), None, None).await
}

pub async fn create(State(state): State<AppState>, Posted { viewer, fields }: Posted) -> Response {
    let input = WebhookInput {
        url: fields.get("url").to_string(),
        description: fields.get("description").to_string(),
        events: fields.all("events"),
    };
    match state.service.create_webhook(&viewer.caller, input).await {
        Ok(created) => list_page(&state, &viewer, Errors::default(), None, Some(created)).await,
        Err(e @ ServiceError::Invalid(_)) => {
            let errors = Errors::from_service(&e, label, |f| match f {
                "events" => "events-0".to_string(),
                other => other.to_string(),
            });
            list_page(&state, &viewer, errors, Some(&fields), None).await
        }
        Err(e) => refused(Some(&viewer), &e),
    }
}

pub struct DeliveryLine {
    pub message_id: String,
    pub event_type: String,
    pub folio: String,
    pub state: &'static str,
    pub attempts: i64,
    pub created: String,
    pub last: String,
}

pub struct AttemptLine {
    pub at: String,
    pub message_id: String,
    pub event_type: String,
    pub result: String,
    pub ok: bool,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    layout: Layout,
    s: SubscriptionLine,
    secret: Option<String>,
    done: Option<&'static str>,
    deliveries: Vec<DeliveryLine>,
    attempts: Vec<AttemptLine>,
    dead: usize,
}

async fn detail(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    secret: Option<String>,
    done: Option<&'static str>,
) -> Response {
    let log = match state.service.webhook_log(&viewer.caller, id).await {
        Ok(l) => l,
        Err(e) => return refused(Some(viewer), &e),
    };
    let dead = log.deliveries.iter().filter(|d| d.state == "dead").count();
    let deliveries: Vec<DeliveryLine> = log
        .deliveries
        .iter()
        .map(|d| DeliveryLine {
            message_id: d.message_id.clone(),
            event_type: d.event_type.clone(),
            folio: d.folio.clone().unwrap_or_default(),
            state: match d.state.as_str() {
                "delivered" => "Entregada",
                "dead" => "Fallida (sin más reintentos)",
                _ => "Pendiente",
            },
            attempts: d.attempts,
            created: format::instant(d.created_at),
            last: match (&d.last_error, d.delivered_at, d.next_attempt_at) {
                (_, Some(t), _) => format!("entregada el {}", format::instant(t)),
                (Some(e), None, Some(next)) => {
                    format!("{e}; nuevo intento el {}", format::instant(next))
                }
                (Some(e), None, None) => e.clone(),
                (None, None, _) => "aún sin intentos".into(),
            },
        })
        .collect();
    let page = WebhookPage {
        layout: Layout::new(Some(viewer), "Webhook", "/webhooks"),
        s: line(&log.subscription),
        secret,
        done,
        dead,
        deliveries,
        attempts: log
            .attempts
            .iter()
            .map(|a| AttemptLine {
                at: format::instant(a.at),
                message_id: a.message_id.clone(),
                event_type: a.event_type.clone(),
                ok: a.error.is_none(),
                result: match (a.status, &a.error) {
                    (Some(s), None) => format!("entregada (código {s})"),
                    (_, Some(e)) => e.clone(),
                    (None, None) => "sin respuesta".into(),
                },
                duration: format!("{} ms", a.duration_ms),
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

fn parse_id(id: &str) -> Result<i64, ServiceError> {
    id.parse()
        .map_err(|_| ServiceError::NotFound("la suscripción".into()))
}

#[derive(serde::Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    hecho: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    viewer: Viewer,
    query: Result<axum::extract::Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let done = match query.ok().and_then(|q| q.0.hecho).as_deref() {
        Some("pausada") => {
            Some("Suscripción pausada: los avisos se guardan y se envían, en orden, al reanudarla.")
        }
        Some("reanudada") => Some("Suscripción reanudada."),
        Some("reintento") => Some("Las entregas fallidas se enviarán de nuevo."),
        Some("sin-reintento") => Some(
            "No se reenvió nada: cada entrega fallida ya fue reemplazada por un aviso posterior \
             del mismo tipo para la misma incidencia.",
        ),
        _ => None,
    };
    detail(&state, &viewer, id, None, done).await
}

/// Rotate, pause, resume or retry, by the path's last segment.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { viewer, .. }: Posted,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let caller = &viewer.caller;
    let result = match action.as_str() {
        "rotar" => match state.service.rotate_webhook(caller, id).await {
            Ok(rotated) => {
                return detail(
                    &state,
                    &viewer,
                    id,
                    Some(rotated.secret),
                    Some("Secreto rotado. El anterior sigue firmando durante 24 horas."),
                )
                .await;
            }
            Err(e) => Err(e),
        },
        "pausar" => state
            .service
            .set_webhook_active(caller, id, false)
            .await
            .map(|_| "pausada"),
        "reanudar" => state
            .service
            .set_webhook_active(caller, id, true)
            .await
            .map(|_| "reanudada"),
        "reintentar" => state
            .service
            .retry_webhook(caller, id)
            .await
            .map(|n| if n == 0 { "sin-reintento" } else { "reintento" }),
        _ => Err(ServiceError::NotFound("esa acción".into())),
    };
    match result {
        Ok(done) => Redirect::to(&format!("/webhooks/{id}?hecho={done}")).into_response(),
        Err(e) => refused(Some(&viewer), &e),
    }
}
