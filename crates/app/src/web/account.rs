//! "Mi cuenta": the person's data, their password, their API tokens.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::format;
use super::pages::{Errors, Layout, html, refused, status_of};
use super::session::{Posted, Viewer};
use super::views;
use crate::http::AppState;
use crate::service::ServiceError;

pub struct TokenLine {
    pub id: i64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    name: String,
    email: String,
    role: String,
    tokens: Vec<TokenLine>,
    new_token: Option<String>,
}

async fn build(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    errors: Errors,
    new_token: Option<String>,
) -> Result<AccountPage, ServiceError> {
    let me = state.service.me(&viewer.caller).await?;
    let tokens = state.service.my_tokens(&viewer.caller).await?;
    Ok(AccountPage {
        layout: Layout::new(Some(viewer), "Mi cuenta", "/cuenta"),
        done,
        errors,
        name: me.name,
        email: me.email,
        role: views::role_label(&me.role),
        tokens: tokens
            .into_iter()
            .map(|(id, at)| TokenLine {
                id,
                created: format::instant(at),
            })
            .collect(),
        new_token,
    })
}

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    #[serde(default)]
    hecho: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<AccountQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = query
        .ok()
        .and_then(|Query(q)| q.hecho)
        .and_then(|h| match h.as_str() {
            "contrasena" => {
                Some("Se cambió su contraseña; sus otras sesiones se cerraron.".to_string())
            }
            "revocado" => Some("Se revocó el token.".to_string()),
            _ => None,
        });
    match build(&state, &viewer, done, Errors::default(), None).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(e) => refused(Some(&viewer), &e),
    }
}

fn label(field: &str) -> String {
    match field {
        "current_password" => "Contraseña actual",
        "new_password" => "Nueva contraseña",
        "confirmation" => "Confirmar nueva contraseña",
        other => other,
    }
    .to_string()
}

pub async fn change_password(
    State(state): State<AppState>,
    Posted { viewer, fields }: Posted,
) -> Response {
    let result = state
        .service
        .change_password(
            &viewer.caller,
            &viewer.session,
            fields.get("current_password"),
            fields.get("new_password"),
            fields.get("confirmation"),
        )
        .await;
    match result {
        Ok(()) => Redirect::to("/cuenta?hecho=contrasena").into_response(),
        Err(e) => {
            let errors = Errors::from_service(&e, label, |f| f.to_string());
            match build(&state, &viewer, None, errors, None).await {
                Ok(p) => html(status_of(&e), &p),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}

/// A new token is shown once, on the page that answers the form (never in a URL).
pub async fn create_token(
    State(state): State<AppState>,
    Posted { viewer, .. }: Posted,
) -> Response {
    let token = match state.service.create_my_token(&viewer.caller).await {
        Ok(t) => t,
        Err(e) => return refused(Some(&viewer), &e),
    };
    match build(&state, &viewer, None, Errors::default(), Some(token)).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(e) => refused(Some(&viewer), &e),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refused(Some(&viewer), &ServiceError::NotFound("ese token".into()));
    };
    match state.service.revoke_my_token(&viewer.caller, id).await {
        Ok(()) => Redirect::to("/cuenta?hecho=revocado").into_response(),
        Err(e) => refused(Some(&viewer), &e),
    }
}
