//! "Correos por revisar" (help desk): received mail that acted on nothing, with why; each
//! one attached to an incident, turned into a new incident, or discarded with a reason
//! (recorded, never deleted); the original message viewable.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use incidencias_core::Folio;
use serde::Deserialize;

use super::format;
use super::pages::{Errors, Layout, html, refused, status_of};
use super::session::{Fields, Posted, Viewer};
use crate::http::AppState;
use crate::service::ServiceError;

/// Messages per page.
const PAGE: i64 = 50;

pub struct TriageLine {
    pub id: i64,
    pub received: String,
    pub sender: String,
    pub subject: String,
    pub reason: String,
    pub excerpt: String,
    /// The folio the message names, to attach it there.
    pub attach_to: String,
    /// What the service suggests, in words.
    pub hint: String,
}

#[derive(Template)]
#[template(path = "triage.html")]
struct TriagePage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    rows: Vec<TriageLine>,
    next: Option<String>,
    /// The caller may act on the messages (the help desk), not only read them.
    may_act: bool,
    /// The message whose form was refused, and what it held.
    refused: Option<(i64, Fields)>,
}

impl TriagePage {
    /// What was typed in `field` of a refused form about message `id`.
    pub fn kept(&self, id: &i64, field: &str) -> String {
        match &self.refused {
            Some((refused, fields)) if refused == id => fields.get(field).to_string(),
            _ => String::new(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct TriageQuery {
    #[serde(default)]
    antes: Option<i64>,
    #[serde(default)]
    hecho: Option<String>,
}

async fn build(
    state: &AppState,
    viewer: &Viewer,
    before: Option<i64>,
    done: Option<String>,
    errors: Errors,
    refused: Option<(i64, Fields)>,
) -> Result<TriagePage, ServiceError> {
    let items = state
        .service
        .triage_queue(&viewer.caller, before, PAGE)
        .await?;
    let next = (items.len() as i64 == PAGE)
        .then(|| items.last().map(|m| format!("/correos?antes={}", m.id)))
        .flatten();
    Ok(TriagePage {
        layout: Layout::new(Some(viewer), "Correos por revisar", "/correos"),
        done,
        errors,
        next,
        may_act: state.service.may_resolve_triage(&viewer.caller),
        refused,
        rows: items
            .into_iter()
            .map(|m| TriageLine {
                id: m.id,
                received: format::instant(m.received_at),
                sender: m.sender,
                subject: if m.subject.trim().is_empty() {
                    "(sin asunto)".into()
                } else {
                    m.subject
                },
                reason: m.reason.unwrap_or_else(|| "sin motivo registrado".into()),
                excerpt: m.excerpt,
                hint: match &m.suggestion.attach_to {
                    Some(folio) => {
                        format!("Sugerencia: adjuntarlo a {folio}, que el correo menciona.")
                    }
                    None => format!(
                        "Sugerencia para una incidencia nueva: {}",
                        m.suggestion.report.reason
                    ),
                },
                attach_to: m.suggestion.attach_to.unwrap_or_default(),
            })
            .collect(),
    })
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<TriageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let done = query.hecho.and_then(|h| {
        let text = match h.as_str() {
            "adjuntado" => "El correo quedó registrado en la incidencia.",
            "descartado" => "El correo se descartó; el motivo quedó registrado.",
            _ => return None,
        };
        Some(text.to_string())
    });
    match build(&state, &viewer, query.antes, done, Errors::default(), None).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(e) => refused(Some(&viewer), &e),
    }
}

fn label(field: &str) -> String {
    match field {
        "folio" => "Folio de la incidencia",
        "reason" => "Motivo",
        "note" => "Nota",
        other => other,
    }
    .to_string()
}

/// After an action on a message: back to the queue, or the queue with why not.
async fn answer<T>(
    state: &AppState,
    viewer: Viewer,
    done: &str,
    typed: Option<(i64, Fields)>,
    result: Result<T, ServiceError>,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/correos?hecho={done}")).into_response(),
        Err(e @ ServiceError::Forbidden(_)) => refused(Some(&viewer), &e),
        Err(e) => {
            let errors = Errors::from_service(&e, label, |_| "contenido".into());
            match build(state, &viewer, None, None, errors, typed).await {
                Ok(p) => html(status_of(&e), &p),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}

fn message_id(raw: &str) -> Result<i64, ServiceError> {
    raw.parse()
        .map_err(|_| ServiceError::NotFound("el correo recibido".into()))
}

pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, fields }: Posted,
) -> Response {
    let result = async {
        let id = message_id(&id)?;
        let folio = Folio::parse(fields.get("folio"))
            .map_err(|e| ServiceError::invalid("folio", e.to_string()))?;
        let note = Some(fields.get("note")).filter(|n| !n.trim().is_empty());
        state
            .service
            .attach_inbound(&viewer.caller, id, folio, note)
            .await
    }
    .await;
    let refused = message_id(&id).ok().map(|m| (m, fields));
    answer(&state, viewer, "adjuntado", refused, result).await
}

pub async fn discard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, fields }: Posted,
) -> Response {
    let result = async {
        let id = message_id(&id)?;
        state
            .service
            .discard_inbound(&viewer.caller, id, fields.get("reason"))
            .await
    }
    .await;
    let refused = message_id(&id).ok().map(|m| (m, fields));
    answer(&state, viewer, "descartado", refused, result).await
}

/// The message as it was received, as plain text (never rendered as a page).
pub async fn original(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let result = match message_id(&id) {
        Ok(id) => state.service.inbound_raw(&viewer.caller, id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(raw) => {
            let mut response = raw.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Err(e) => refused(Some(&viewer), &e),
    }
}
