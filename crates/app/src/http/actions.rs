//! The pages behind the one-click links in emails. GET only shows what the link would do
//! (mail scanners open links); the button posts the form and the action happens. A link
//! whose action was already recorded (by this link or another way) shows no button.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use crate::encoding::escape_html;
use crate::links::LinkAction;
use crate::service::LinkRefusal;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"es-MX\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Incidencias gob.mx</title></head><body>\
         <main><h1>{t}</h1>{body}</main>\
         <footer><p>Mesa de ayuda gob.mx · Protocolo de tratamiento de incidencias</p></footer>\
         </body></html>",
        t = escape_html(title)
    );
    // A one-click page is for its recipient only: never kept by a cache or the browser.
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

fn refused(token: &str, r: LinkRefusal) -> Response {
    if matches!(
        r,
        LinkRefusal::Forged | LinkRefusal::Used | LinkRefusal::NotYours
    ) {
        // The folio the token claims, never the token itself.
        let claimed: String = token
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect();
        tracing::warn!(target: "incidencias::seguridad", claimed_folio = ?claimed,
            refusal = ?r, "enlace de un clic alterado, ajeno o reutilizado");
    }
    match r {
        LinkRefusal::Forged => page(
            StatusCode::BAD_REQUEST,
            "Enlace no válido",
            "<p>Este enlace no es válido: está incompleto o fue alterado. Use el enlace del \
             correo original o ingrese a incidencias.</p>",
        ),
        LinkRefusal::Expired => page(
            StatusCode::GONE,
            "El enlace venció",
            "<p>Este enlace ya no está vigente. Responda el correo o ingrese a incidencias \
             para realizar la acción.</p>",
        ),
        LinkRefusal::Used => page(
            StatusCode::CONFLICT,
            "Este enlace ya se usó",
            "<p>La acción de este enlace ya se registró; cada enlace funciona una sola vez.</p>",
        ),
        LinkRefusal::AlreadyDone(why) => page(
            StatusCode::CONFLICT,
            "Esta acción ya se registró",
            &format!(
                "<p>{}</p><p>No hace falta hacer nada más con este enlace.</p>",
                escape_html(why)
            ),
        ),
        LinkRefusal::NotYours => page(
            StatusCode::FORBIDDEN,
            "Enlace no autorizado",
            "<p>Este enlace no corresponde a una persona que pueda actuar sobre esta \
             incidencia.</p>",
        ),
        LinkRefusal::Refused(why) => page(
            StatusCode::CONFLICT,
            "No fue posible registrar la acción",
            &format!("<p>{}</p>", escape_html(&why)),
        ),
        // Like the API: well-formed but invalid fields are 422, not a conflict with the
        // incident's state.
        LinkRefusal::Invalid(why) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Faltan datos",
            &format!(
                "<p>{}</p><p>Regrese a la página anterior, complete los datos y vuelva a \
                 enviar.</p>",
                escape_html(&why)
            ),
        ),
        LinkRefusal::Failed(e) => {
            tracing::error!(error = %e, "enlace de acción");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error interno",
                "<p>Ocurrió un error; intente de nuevo más tarde.</p>",
            )
        }
    }
}

/// The confirmation page: what the link does, and a button (GET changes nothing).
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match state.service.check_link(&token).await {
        Ok(link) => link,
        Err(r) => return refused(&token, r),
    };
    let summary = match link.action {
        LinkAction::Acknowledge => String::new(),
        LinkAction::Resolution => "<p><label for=\"summary\">Describa la corrección y su \
             verificación:</label><br><textarea id=\"summary\" name=\"summary\" rows=\"5\" \
             cols=\"60\" required></textarea></p>"
            .to_string(),
    };
    page(
        StatusCode::OK,
        link.action.label(),
        &format!(
            "<p>Incidencia <strong>{folio}</strong>.</p>\
             <form method=\"post\">{summary}<button type=\"submit\">{label}</button></form>",
            folio = escape_html(&link.folio.to_string()),
            label = escape_html(link.action.label()),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    summary: Option<String>,
}

/// The button: acts as the link's recipient, once.
pub async fn perform(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Result<Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let summary = form.ok().and_then(|Form(f)| f.summary);
    match state.service.use_link(&token, summary).await {
        Ok((link, _)) => page(
            StatusCode::OK,
            "Acción registrada",
            &format!(
                "<p>Se registró «{}» en la incidencia <strong>{}</strong>. Gracias.</p>",
                escape_html(link.action.label()),
                escape_html(&link.folio.to_string())
            ),
        ),
        Err(r) => refused(&token, r),
    }
}
