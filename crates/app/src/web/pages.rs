//! The layout every page shares, sign-in and sign-out, the queue, and the pages that only
//! say something (not found, refused, error).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use incidencias_core::{Command, IncidentState, Severity};
use serde::Deserialize;

use super::format;
use super::session::{self, FromOurPages, Viewer};
use super::views::{self, Names, QueueRow};
use crate::http::AppState;
use crate::service::{IncidentFilter, ServiceError};

/// The signed-in person in the header.
pub struct UserBar {
    pub name: String,
    pub role: String,
}

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What the base template needs.
pub struct Layout {
    pub title: String,
    pub user: Option<UserBar>,
    pub nav: Vec<NavLink>,
    pub csrf: String,
}

impl Layout {
    /// The layout of a page at `path` for `viewer` (none: signed out). The navigation
    /// offers "Nueva incidencia" to the roles the protocol lets report.
    pub fn new(viewer: Option<&Viewer>, title: &str, path: &str) -> Layout {
        let Some(v) = viewer else {
            return Layout {
                title: title.to_string(),
                user: None,
                nav: Vec::new(),
                csrf: String::new(),
            };
        };
        let may_report = Command::roles_named("report")
            .unwrap_or(&[])
            .contains(&v.caller.role);
        use crate::service::Area;
        let mut nav = vec![("/", "Bandeja")];
        if may_report {
            nav.push(("/incidencias/nueva", "Nueva incidencia"));
        }
        for (area, href, label) in [
            (Area::Triage, "/correos", "Correos por revisar"),
            (Area::Reports, "/reportes", "Reportes"),
            (Area::Catalog, "/catalogo", "Catálogo"),
            (Area::Policies, "/politicas", "Políticas de SLO"),
            (Area::Outbox, "/salida", "Bandeja de salida"),
            (Area::Webhooks, "/webhooks", "Webhooks"),
        ] {
            if area.allows(&v.caller) {
                nav.push((href, label));
            }
        }
        nav.push(("/cuenta", "Mi cuenta"));
        Layout {
            title: title.to_string(),
            user: Some(UserBar {
                name: v.caller.name.clone(),
                role: v.caller.role.label().to_string(),
            }),
            nav: nav
                .into_iter()
                .map(|(href, label)| NavLink {
                    href,
                    label,
                    current: href == path,
                })
                .collect(),
            csrf: v.csrf.clone(),
        }
    }
}

/// A field error shown at the top of a form, linked to its field.
pub struct FieldMessage {
    pub anchor: String,
    pub label: String,
    pub message: String,
    pub field: String,
}

/// What went wrong with a form (nothing, usually).
#[derive(Default)]
pub struct Errors {
    pub message: Option<String>,
    pub fields: Vec<FieldMessage>,
}

impl Errors {
    /// Whether `field` (an API name) was refused.
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.field == field)
    }

    /// A refusal of the service as a person reads it. `label` names a field by its API
    /// name; `anchor` gives the id of its control.
    pub fn from_service(
        e: &ServiceError,
        label: impl Fn(&str) -> String,
        anchor: impl Fn(&str) -> String,
    ) -> Errors {
        match e {
            ServiceError::Invalid(fields) => Errors {
                message: Some(if fields.len() == 1 {
                    "Revise este dato:".to_string()
                } else {
                    format!("Revise estos {} datos:", fields.len())
                }),
                fields: fields
                    .iter()
                    .map(|f| FieldMessage {
                        anchor: anchor(&f.field),
                        label: label(&f.field),
                        message: f.message.clone(),
                        field: f.field.clone(),
                    })
                    .collect(),
            },
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "página");
                Errors {
                    message: Some("Ocurrió un error interno; intente de nuevo.".into()),
                    fields: Vec::new(),
                }
            }
            other => Errors {
                message: Some(capitalize(&other.to_string())),
                fields: Vec::new(),
            },
        }
    }
}

pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut s: String = first.to_uppercase().collect();
            s.push_str(chars.as_str());
            if !s.ends_with('.') {
                s.push('.');
            }
            s
        }
        None => String::new(),
    }
}

/// The status a refusal is answered with.
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Invalid(_) | ServiceError::IdempotencyKeyReused => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ServiceError::InvalidTransition { .. } | ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a person gets when a page cannot be rendered (logged as an error).
const RENDER_FAILED: &str =
    "<!DOCTYPE html><html lang=\"es-MX\"><title>Error</title><p>Error interno.</p></html>";

/// A rendered template, or an error page if it cannot be rendered.
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(RENDER_FAILED.to_string()),
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    text: String,
}

/// A page that only says something.
pub fn message_page(viewer: Option<&Viewer>, heading: &str, text: &str) -> Html<String> {
    let page = MessagePage {
        layout: Layout::new(viewer, heading, ""),
        heading: heading.to_string(),
        text: text.to_string(),
    };
    Html(page.render().unwrap_or_else(|_| RENDER_FAILED.to_string()))
}

/// The answer to a request the service refused outright (no form to show again).
pub fn refused(viewer: Option<&Viewer>, e: &ServiceError) -> Response {
    let status = status_of(e);
    let (heading, text) = match e {
        ServiceError::NotFound(_) => (
            "No encontrado",
            "La página o la incidencia que busca no existe o no está a su alcance.".to_string(),
        ),
        ServiceError::Forbidden(why) => ("Acción no permitida", capitalize(why)),
        ServiceError::Internal(detail) => {
            tracing::error!(error = %detail, "página");
            (
                "Error interno",
                "Ocurrió un error; intente de nuevo más tarde.".to_string(),
            )
        }
        other => ("No fue posible", capitalize(&other.to_string())),
    };
    (status, message_page(viewer, heading, &text)).into_response()
}

/// 405 for a form's address opened as a page (a bookmark, a reload after a refusal).
pub fn method_not_allowed_page() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(
            header::CONTENT_SECURITY_POLICY,
            super::CONTENT_SECURITY_POLICY,
        )],
        message_page(
            None,
            "Esta dirección recibe formularios",
            "Esta dirección solo recibe el envío de un formulario. Vuelva a la página anterior \
             o a la bandeja.",
        ),
    )
        .into_response()
}

/// 404 for a page address nobody serves.
pub fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_SECURITY_POLICY,
            super::CONTENT_SECURITY_POLICY,
        )],
        message_page(
            None,
            "No encontrado",
            "La página que busca no existe. Revise la dirección o vuelva a la bandeja.",
        ),
    )
        .into_response()
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    notice: Option<String>,
    email: String,
    next: String,
    demo: Vec<crate::config::DemoAccount>,
    demo_password: &'static str,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    siguiente: Option<String>,
    #[serde(default)]
    salida: Option<String>,
}

fn login_view(state: &AppState, error: Option<String>, email: &str, next: &str) -> LoginPage {
    LoginPage {
        layout: Layout::new(None, "Entrar", "/entrar"),
        error,
        notice: None,
        email: email.to_string(),
        next: session::safe_return(next).to_string(),
        demo: state.demo_accounts.as_ref().clone(),
        demo_password: crate::demo::DEMO_PASSWORD,
    }
}

pub async fn login_page(
    State(state): State<AppState>,
    viewer: Option<Viewer>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = query.siguiente.unwrap_or_else(|| "/".into());
    if viewer.is_some() {
        return Redirect::to(session::safe_return(&next)).into_response();
    }
    let mut page = login_view(&state, None, "", &next);
    if query.salida.is_some() {
        page.notice = Some("Cerró su sesión.".into());
    }
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    siguiente: String,
}

pub async fn login(
    State(state): State<AppState>,
    FromOurPages(ours): FromOurPages,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !ours {
        return session::forged();
    }
    let Ok(Form(form)) = form else {
        let page = login_view(
            &state,
            Some("Escriba su correo electrónico y su contraseña.".into()),
            "",
            "/",
        );
        return html(StatusCode::BAD_REQUEST, &page);
    };
    match state.service.login(&form.email, &form.password).await {
        Ok(outcome) => {
            let mut headers = session::session_cookie(Some(&outcome.session), state.secure_cookies);
            headers.insert(
                header::LOCATION,
                HeaderValue::from_str(session::safe_return(&form.siguiente))
                    .unwrap_or(HeaderValue::from_static("/")),
            );
            (StatusCode::SEE_OTHER, headers).into_response()
        }
        Err(e) => {
            let (status, message) = match &e {
                ServiceError::TooManyAttempts { retry_after_s } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Demasiados intentos fallidos. Espere {} antes de volver a intentar.",
                        format::span(i64::try_from(*retry_after_s).unwrap_or(60).max(60))
                    ),
                ),
                ServiceError::Unauthenticated | ServiceError::Invalid(_) => (
                    StatusCode::UNAUTHORIZED,
                    "El correo electrónico o la contraseña no son correctos.".to_string(),
                ),
                other => (status_of(other), capitalize(&other.to_string())),
            };
            html(
                status,
                &login_view(&state, Some(message), &form.email, &form.siguiente),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Option<Viewer>,
    FromOurPages(ours): FromOurPages,
    form: Result<Form<CsrfOnly>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Some(v) = viewer {
        let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
        if !ours || token != v.csrf {
            return session::forged();
        }
        if let Err(e) = state.service.logout(&v.session).await {
            return refused(Some(&v), &e);
        }
    }
    let mut headers: HeaderMap = session::session_cookie(None, state.secure_cookies);
    headers.insert(
        header::LOCATION,
        HeaderValue::from_static("/entrar?salida=1"),
    );
    (StatusCode::SEE_OTHER, headers).into_response()
}

// ---------------------------------------------------------------- the queue

/// One option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct QueueTable {
    pub rows: Vec<QueueRow>,
    pub summary: String,
    pub updated: String,
    pub page: u32,
    pub pages: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    states: Vec<Choice>,
    severities: Vec<Choice>,
    agencies: Vec<Choice>,
    breached: bool,
    mine: bool,
    table: QueueTable,
}

#[derive(Template)]
#[template(path = "queue_table.html")]
struct QueuePartial {
    table: QueueTable,
}

#[derive(Deserialize, Default, Clone)]
pub struct QueueQuery {
    #[serde(default)]
    estado: Option<String>,
    #[serde(default)]
    severidad: Option<String>,
    #[serde(default)]
    dependencia: Option<String>,
    #[serde(default)]
    excedidas: Option<String>,
    #[serde(default)]
    pendientes: Option<String>,
    #[serde(default)]
    pagina: Option<String>,
}

/// Incidents per queue page.
pub const QUEUE_PAGE: u32 = 50;

impl QueueQuery {
    /// The same filters at another page, as a URL.
    fn url(&self, page: u32) -> String {
        let mut parts = Vec::new();
        let mut add = |k: &str, v: &Option<String>| {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                ));
            }
        };
        add("estado", &self.estado);
        add("severidad", &self.severidad);
        add("dependencia", &self.dependencia);
        add("excedidas", &self.excedidas);
        add("pendientes", &self.pendientes);
        if page > 1 {
            parts.push(format!("pagina={page}"));
        }
        if parts.is_empty() {
            "/".into()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }
}

/// The queue: the open incidents the caller may see, nearest deadline first. With the
/// header `X-Parcial: bandeja` (the page's script refreshing itself) only the table is
/// answered, with an `ETag`, and 304 when it has not changed.
pub async fn queue(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let state_filter = query
        .estado
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| IncidentState::ALL.iter().find(|x| x.as_str() == s).copied());
    let severity = query
        .severidad
        .as_deref()
        .and_then(|s| Severity::parse(s).ok());
    let agency = query
        .dependencia
        .as_deref()
        .and_then(|s| s.parse::<i64>().ok());
    let breached = query.excedidas.as_deref() == Some("si");
    let mine = query.pendientes.as_deref() == Some("si");
    let page_no = query
        .pagina
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    let filter = IncidentFilter {
        state: state_filter,
        agency_id: agency,
        severity,
        breached: breached.then_some(true),
        open_only: state_filter.is_none(),
        awaiting_me: mine,
        nearest_deadline_first: true,
        page: page_no,
        per_page: QUEUE_PAGE,
    };
    let service = &state.service;
    let caller = &viewer.caller;
    let (list, procedures, agencies) = match tokio::try_join!(
        service.list(caller, filter),
        service.procedures(caller),
        service.agencies(caller),
    ) {
        Ok(all) => all,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let now = service.now();
    let names = Names::new(&procedures, &agencies);
    let pages = list.total.div_ceil(u64::from(list.per_page)).max(1);
    let table = QueueTable {
        rows: list
            .items
            .iter()
            .map(|doc| views::queue_row(doc, &names, now))
            .collect(),
        summary: match list.total {
            1 => "1 incidencia.".to_string(),
            n => format!("{n} incidencias."),
        },
        updated: format::instant(now),
        page: list.page,
        pages,
        prev: (list.page > 1).then(|| query.url(list.page - 1)),
        next: (u64::from(list.page) < pages).then(|| query.url(list.page + 1)),
    };
    if headers
        .get("x-parcial")
        .is_some_and(|v| v.as_bytes() == b"bandeja")
    {
        return partial(&QueuePartial { table }, &headers);
    }
    let choice = |value: &str, label: &str, selected: bool| Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected,
    };
    let page = QueuePage {
        layout: Layout::new(Some(&viewer), "Bandeja", "/"),
        states: IncidentState::ALL
            .iter()
            .map(|s| choice(s.as_str(), s.label(), Some(*s) == state_filter))
            .collect(),
        severities: Severity::ALL
            .iter()
            .map(|s| choice(s.as_str(), s.label(), Some(*s) == severity))
            .collect(),
        agencies: if agencies.len() > 1 {
            agencies
                .iter()
                .map(|a| {
                    choice(
                        &a.id.to_string(),
                        &format!("{} — {}", a.acronym, a.name),
                        Some(a.id) == agency,
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
        breached,
        mine,
        table,
    };
    html(StatusCode::OK, &page)
}

/// A fragment for the page's script, validated by its `ETag`.
fn partial<T: Template>(fragment: &T, headers: &HeaderMap) -> Response {
    let body = match fragment.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "plantilla");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // The "updated at" line changes every minute; the table's content is what counts.
    let tag = super::assets::etag(strip_updated(&body).as_bytes());
    super::assets::revalidated(&tag, headers, || Html(body).into_response())
}

fn strip_updated(body: &str) -> String {
    body.lines()
        .filter(|l| !l.contains("Actualizado:"))
        .collect::<Vec<_>>()
        .join("\n")
}
