//! The web interface (shared/UI.md): server-rendered Spanish pages over the same
//! [`crate::service::Service`] as the JSON API. Plain forms with POST-redirect-GET that
//! work without JavaScript; a small script only improves (live countdowns, the queue
//! refreshing itself, procedure search). Every form carries the session's CSRF token;
//! every page is served with a strict Content-Security-Policy (no inline script or style,
//! nothing from another origin).

mod account;
mod assets;
mod catalog;
mod catalog_admin;
mod embed;
mod evidence;
pub mod format;
mod incident;
mod outbox;
mod pages;
mod policies;
mod public;
mod reports;
mod session;
mod triage;
pub mod views;
mod webhooks;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::AppState;
pub use assets::{etag, holds, revalidated};
pub use pages::{method_not_allowed_page, not_found_page};

/// The policy every page is served with: our own scripts, styles, fonts and images only;
/// forms post only to us; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages, one route table read top to bottom.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::queue))
        .route("/entrar", get(pages::login_page).post(pages::login))
        .route("/estado", get(public::page))
        .route("/estado/{homoclave}", get(public::procedure))
        .route("/salir", post(pages::logout))
        .route(
            "/incidencias/nueva",
            get(incident::new_page).post(incident::create),
        )
        .route("/incidencias/{folio}", get(incident::page))
        .route("/incidencias/{folio}/evidencia", get(evidence::page))
        .route(
            "/incidencias/{folio}/acciones/{action}",
            post(incident::act),
        )
        .route("/incidencias/{folio}/formato", post(incident::form_buttons))
        .route(
            "/incidencias/{folio}/revision",
            post(incident::form_buttons),
        )
        .route("/correos", get(triage::page))
        .route("/correos/{id}/original", get(triage::original))
        .route("/correos/{id}/adjuntar", post(triage::attach))
        .route("/correos/{id}/descartar", post(triage::discard))
        .route("/catalogo", get(catalog::page))
        .route("/catalogo/dependencias", post(catalog::create_agency))
        .route("/catalogo/tramites", post(catalog::create_procedure))
        .route("/catalogo/usuarios", post(catalog::create_user))
        .route("/catalogo/cambios", get(catalog_admin::changes))
        .route(
            "/catalogo/importar",
            get(catalog_admin::import_page)
                .post(catalog_admin::import)
                // A 10,000-row catalogue is about 1.5 MB; the upload and its preview's
                // content posted back both fit.
                .layer(axum::extract::DefaultBodyLimit::max(
                    2 * crate::service::MAX_IMPORT_BYTES,
                )),
        )
        .route(
            "/catalogo/{segment}/{id}",
            get(catalog_admin::edit).post(catalog_admin::update),
        )
        .route("/politicas", get(policies::page).post(policies::create))
        .route("/reportes", get(reports::page))
        .route("/reportes/simulacion", get(reports::what_if))
        .route("/salida", get(outbox::page))
        .route("/salida/reintentar", post(outbox::retry_all))
        .route("/salida/{id}", get(outbox::message))
        .route("/salida/{id}/html", get(outbox::message_html))
        .route("/salida/{id}/reintentar", post(outbox::retry_one))
        .route("/webhooks", get(webhooks::page).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show))
        .route("/webhooks/{id}/{action}", post(webhooks::act))
        .route("/cuenta", get(account::page))
        .route("/cuenta/contrasena", post(account::change_password))
        .route("/cuenta/tokens", post(account::create_token))
        .route("/cuenta/tokens/{id}/revocar", post(account::revoke_token))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    pages
        .route("/estaticos/{file}", get(assets::serve))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // After the layers above: the banner's frame is framed by the portal.
        .merge(embed::router())
}
