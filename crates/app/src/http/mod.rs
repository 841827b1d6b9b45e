//! The JSON API. One route table, read top to bottom; every route is documented in the
//! OpenAPI document served at `/api/v1/openapi.json` (generated from these handlers, so
//! the document and the routes cannot drift apart); Swagger UI at `/api/docs`.

pub mod accounts;
pub mod actions;
pub mod catalog;
pub mod error;
pub mod extract;
pub mod incidents;
pub mod openapi;
pub mod outbox;
pub mod public;
pub mod reports;
pub mod security;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::service::{Service, ServiceError};
use error::ApiError;
use extract::{BODY_LIMIT, SESSION_COOKIE};

/// What every handler receives: [`AppParts`] behind one `Arc`, since axum clones the state
/// for every request.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> AppState {
        AppState(std::sync::Arc::new(parts))
    }
}

/// The service and the settings the front ends need.
pub struct AppParts {
    pub service: Service,
    /// Served over HTTPS: the session cookie is `Secure` and responses carry HSTS.
    pub secure_cookies: bool,
    /// Where people reach the service: the base of the links a message carries (the
    /// outbox preview shows them as they will be sent).
    pub base_url: String,
    /// The accounts the sign-in page lists (`incidencias demo` only; empty otherwise).
    pub demo_accounts: std::sync::Arc<Vec<crate::config::DemoAccount>>,
    /// Origins of the portal's pages: they may read the public status (CORS) and frame
    /// the banner.
    pub portal_origins: std::sync::Arc<Vec<String>>,
    /// The bearer token `/metrics` asks for (INCIDENCIAS_METRICS_TOKEN); `None`: no
    /// `/metrics`.
    pub metrics_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "incidencias",
        description = "Protocolo de tratamiento de incidencias de los trámites digitales \
                       publicados en gob.mx. Errores: RFC 9457 (application/problem+json) con \
                       un `code` estable. Instantes RFC 3339 en UTC; duraciones en segundos.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(webhooks::WebhookPayloadDoc, webhooks::WebhookDataDoc)),
    tags(
        (name = "incidencias", description = "El protocolo: pasos 1 a 7 y excepciones"),
        (name = "catálogo", description = "Dependencias, usuarios, trámites y políticas de SLO"),
        (name = "cuentas", description = "Inicio de sesión"),
        (name = "portal", description = "Estado público por trámite"),
        (name = "correo", description = "Bandeja de salida de correos"),
        (name = "webhooks", description = "Suscripciones a los avisos del portal (botón, cortinilla, etapa), firmados según Standard Webhooks"),
        (name = "reportes", description = "Cumplimiento de los SLO y relojes excedidos, en JSON y CSV"),
        (name = "salud", description = "Vida y disponibilidad"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

/// The whole API. Routes are grouped by path; the methods of a path come from the handlers'
/// `#[utoipa::path]` attributes.
pub fn router(state: AppState) -> Router {
    use self::{accounts as a, catalog as c, incidents as i, public as p};
    let (routes, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(p::healthz))
        .routes(routes!(p::readyz))
        .routes(routes!(p::procedure_status))
        .routes(routes!(p::procedures))
        .routes(routes!(a::login))
        .routes(routes!(a::logout))
        .routes(routes!(a::me))
        .routes(routes!(c::create_agency, c::list_agencies))
        .routes(routes!(c::create_user, c::list_users))
        .routes(routes!(c::create_procedure, c::list_procedures))
        .routes(routes!(c::create_policy, c::list_policies))
        .routes(routes!(i::create_incident, i::list))
        .routes(routes!(i::get))
        .routes(routes!(i::events))
        .routes(routes!(i::messages))
        .routes(routes!(i::notify))
        .routes(routes!(i::acknowledge))
        .routes(routes!(i::banner))
        .routes(routes!(i::banner_exemption))
        .routes(routes!(i::button))
        .routes(routes!(i::resolution))
        .routes(routes!(i::validation))
        .routes(routes!(i::report_form))
        .routes(routes!(i::review))
        .routes(routes!(i::escalate))
        .routes(routes!(i::severity))
        .routes(routes!(i::close))
        .routes(routes!(i::dismiss))
        .routes(routes!(outbox::list))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::rotate))
        .routes(routes!(webhooks::set_state))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(outbox::inbound, outbox::received))
        .routes(routes!(reports::compliance))
        .routes(routes!(reports::compliance_export))
        .routes(routes!(reports::breaches))
        .routes(routes!(reports::breaches_export))
        .routes(routes!(reports::budget))
        .routes(routes!(reports::what_if_versions, reports::what_if_draft))
        .routes(routes!(reports::budget_export))
        .routes(routes!(reports::what_if_export))
        .routes(routes!(reports::lists))
        .routes(routes!(reports::lists_export))
        .split_for_parts();
    openapi::conform(&mut api);
    routes
        // The pages behind the emails' one-click links (HTML, not part of the API).
        .route(
            "/acciones/{token}",
            axum::routing::get(actions::confirm).post(actions::perform),
        )
        // CORS preflights of the portal's reads (public.rs).
        .route(
            "/api/v1/public/procedures",
            axum::routing::options(p::preflight),
        )
        .route(
            "/api/v1/public/procedures/{homoclave}/status",
            axum::routing::options(p::preflight),
        )
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", api))
        // The web interface, on the same service (shared/UI.md).
        .merge(crate::web::router())
        // Operators' metrics (metrics.rs), outside the API and its documentation.
        .route("/metrics", axum::routing::get(crate::metrics::scrape))
        // Every matched route is counted and timed under its pattern.
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(security::SecurityLayer {
            https: state.secure_cookies,
        })
        .with_state(state)
}

/// A handler that panicked answers like any internal error (and the panic is logged).
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Service(ServiceError::Internal("pánico en un manejador".into())).into_response()
}

/// A person's browser (it accepts HTML) asking outside the API: it gets pages, not
/// problem documents.
fn wants_page(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> bool {
    !uri.path().starts_with("/api/")
        && headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// An unknown address: a page for a person, a problem document for a program.
async fn not_found(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    if wants_page(&headers, &uri) {
        return crate::web::not_found_page();
    }
    ApiError::Service(ServiceError::NotFound("esa dirección".into())).into_response()
}

/// A method the address does not take: a page for a person (a form's address opened
/// in the browser), a problem document for a program.
async fn method_not_allowed(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    if wants_page(&headers, &uri) {
        return crate::web::method_not_allowed_page();
    }
    ApiError::MethodNotAllowed.into_response()
}
