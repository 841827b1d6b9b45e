//! "Bandeja de salida" (help desk, admin): emails by state, a dead one's last error, retry.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::format;
use super::pages::{Choice, Errors, Layout, html, refused};
use super::session::{Posted, Viewer};
use super::views::outbox_state_label;
use crate::http::AppState;
use crate::service::{OutboxState, ServiceError};

/// Rows per page of the outbox.
const PAGE: i64 = 100;

pub struct OutboxLine {
    pub id: i64,
    pub created: String,
    pub folio: Option<String>,
    pub subject: String,
    pub to: String,
    pub state: &'static str,
    pub attempts: i64,
    pub error: Option<String>,
    pub dead: bool,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    states: Vec<Choice>,
    has_dead: bool,
    rows: Vec<OutboxLine>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct OutboxQuery {
    #[serde(default)]
    estado: Option<String>,
    #[serde(default)]
    hecho: Option<String>,
    #[serde(default)]
    antes: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let wanted = query
        .estado
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(OutboxState::parse);
    let rows = match state
        .service
        .outbox_mail(&viewer.caller, wanted, query.antes, PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let done = query.hecho.and_then(|h| {
        h.parse::<u64>().ok().map(|n| match n {
            0 => "No había correos no entregados que reintentar.".to_string(),
            1 => "Se volvió a encolar 1 correo.".to_string(),
            n => format!("Se volvieron a encolar {n} correos."),
        })
    });
    let page = OutboxPage {
        layout: Layout::new(Some(&viewer), "Bandeja de salida", "/salida"),
        done,
        errors: Errors::default(),
        states: ["pending", "sent", "dead"]
            .iter()
            .map(|s| Choice {
                value: (*s).to_string(),
                label: outbox_state_label(s).to_string(),
                selected: wanted.is_some_and(|w| w.as_str() == *s),
            })
            .collect(),
        has_dead: rows.iter().any(|r| r.doc.state == "dead"),
        next: (rows.len() as i64 == PAGE)
            .then(|| rows.last())
            .flatten()
            .map(|last| match wanted {
                Some(w) => format!("/salida?estado={}&antes={}", w.as_str(), last.doc.id),
                None => format!("/salida?antes={}", last.doc.id),
            }),
        rows: rows
            .into_iter()
            .map(|m| OutboxLine {
                id: m.doc.id,
                created: format::instant(m.doc.created_at),
                folio: m.doc.folio.clone(),
                subject: m.subject,
                to: m.doc.to.join(", "),
                state: outbox_state_label(&m.doc.state),
                attempts: m.doc.attempts,
                dead: m.doc.state == "dead",
                error: m.doc.last_error,
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

async fn retry(state: &AppState, viewer: &Viewer, id: Option<i64>) -> Response {
    match state.service.retry_outbox(&viewer.caller, id).await {
        Ok(n) => Redirect::to(&format!("/salida?hecho={n}")).into_response(),
        Err(e) => refused(Some(viewer), &e),
    }
}

pub async fn retry_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted,
) -> Response {
    match id.parse::<i64>() {
        Ok(id) => retry(&state, &viewer, Some(id)).await,
        Err(_) => refused(Some(&viewer), &ServiceError::NotFound("ese correo".into())),
    }
}

pub async fn retry_all(State(state): State<AppState>, Posted { viewer, .. }: Posted) -> Response {
    retry(&state, &viewer, None).await
}

#[derive(Template)]
#[template(path = "outbox_message.html")]
struct MessagePage {
    layout: Layout,
    id: i64,
    subject: String,
    to: String,
    cc: String,
    state: &'static str,
    attempts: i64,
    folio: Option<String>,
    created: String,
    last_error: Option<String>,
    render_error: Option<String>,
    text: String,
}

/// Message `raw_id` as it will be sent, with links based where the worker bases them.
async fn preview(
    state: &AppState,
    viewer: &Viewer,
    raw_id: &str,
) -> Result<crate::documents::OutboxPreview, ServiceError> {
    let id = message_id(raw_id)?;
    state
        .service
        .outbox_preview(&viewer.caller, id, &state.base_url)
        .await
}

fn message_id(raw: &str) -> Result<i64, ServiceError> {
    raw.parse()
        .map_err(|_| ServiceError::NotFound("ese correo".into()))
}

/// One message as it will be sent (links' signatures masked), before any SMTP server.
pub async fn message(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let preview = match preview(&state, &viewer, &id).await {
        Ok(p) => p,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let page = MessagePage {
        layout: Layout::new(Some(&viewer), &preview.subject, "/salida"),
        id: preview.doc.id,
        subject: preview.subject.clone(),
        to: preview.doc.to.join(", "),
        cc: preview.doc.cc.join(", "),
        state: outbox_state_label(&preview.doc.state),
        attempts: preview.doc.attempts,
        folio: preview.doc.folio.clone(),
        created: format::instant(preview.doc.created_at),
        last_error: preview.doc.last_error.clone(),
        render_error: preview.error.clone(),
        text: preview.text,
    };
    html(StatusCode::OK, &page)
}

/// The HTML part alone, as the recipient's mail client will show it: its own inline
/// styles allowed, nothing else (no script, no request to anywhere).
pub async fn message_html(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match preview(&state, &viewer, &id).await {
        Ok(p) => (
            [(
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            )],
            axum::response::Html(p.html),
        )
            .into_response(),
        Err(e) => refused(Some(&viewer), &e),
    }
}
