//! "Correos por revisar" (help desk): received mail that acted on nothing, with why.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::format;
use super::pages::{Errors, Layout, html, refused};
use super::session::Viewer;
use crate::http::AppState;
use crate::service::InboundDisposition;

/// Messages per page.
const PAGE: i64 = 100;

pub struct TriageLine {
    pub id: i64,
    pub received: String,
    pub sender: String,
    pub subject: String,
    pub reason: String,
    pub excerpt: String,
}

#[derive(Template)]
#[template(path = "triage.html")]
struct TriagePage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    rows: Vec<TriageLine>,
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let rows = match state
        .service
        .received(&viewer.caller, Some(InboundDisposition::Triage), None, PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let page = TriagePage {
        layout: Layout::new(Some(&viewer), "Correos por revisar", "/correos"),
        done: None,
        errors: Errors::default(),
        rows: rows
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
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}
