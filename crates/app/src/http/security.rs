//! What every response carries for the browser's protection, and the refusals logged for
//! whoever investigates an attack. One layer around the whole router (API, pages, one-click
//! links, documentation), so no route can forget it:
//!
//! - `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (the one-click
//!   links carry their token in the address; no page needs to tell another site where the
//!   visitor came from);
//! - a Content-Security-Policy when the handler set none: for HTML, scripts and styles only
//!   from this service, no frames around it (`frame-ancestors 'none'`), forms only to it;
//!   for everything else `default-src 'none'; frame-ancestors 'none'`. The pages set their
//!   own, stricter one; the banner of the portal its own, naming the portal's origins;
//! - `Cache-Control: no-store` on the answer to a request that carries credentials (a bearer
//!   token or the session cookie), unless the handler chose otherwise: what one person saw
//!   never stays in a shared cache or on a shared computer's disk;
//! - `Strict-Transport-Security` when the service is reached over HTTPS (its public URL is
//!   https, or INCIDENCIAS_SECURE_COOKIES).
//!
//! Logged (target `incidencias::seguridad`, level warn): every 401 and 403 with method,
//! path (never the query, which may carry a secret) and the peer's address. Failed logins,
//! forged or reused one-click links and mail refused for its authenticity are logged where
//! they are decided.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::Response;

use super::extract::SESSION_COOKIE;

/// The policy of an HTML response whose handler set none (one-click pages, Swagger UI).
pub const HTML_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The policy of any other response (JSON, problem documents, files).
pub const OTHER_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
/// A year, the usual HSTS lifetime.
pub const HSTS: &str = "max-age=31536000";

/// The layer: `https` adds HSTS.
#[derive(Debug, Clone, Copy)]
pub struct SecurityLayer {
    pub https: bool,
}

impl<S> tower::Layer<S> for SecurityLayer {
    type Service = Security<S>;

    fn layer(&self, inner: S) -> Security<S> {
        Security {
            inner,
            https: self.https,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Security<S> {
    inner: S,
    https: bool,
}

/// What the response side needs of the request.
struct Asked {
    method: Method,
    uri: Uri,
    peer: Option<SocketAddr>,
    credentials: bool,
}

fn carries_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(header::COOKIE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|c| c.contains(SESSION_COOKIE)))
}

impl<S, B> tower::Service<Request<B>> for Security<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Secured<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let asked = Asked {
            method: req.method().clone(),
            uri: req.uri().clone(),
            peer: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            credentials: carries_credentials(req.headers()),
        };
        Secured {
            inner: self.inner.call(req),
            asked: Some(asked),
            https: self.https,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, finished on its way out.
    pub struct Secured<F> {
        #[pin]
        inner: F,
        asked: Option<Asked>,
        https: bool,
    }
}

impl<F, E> Future for Secured<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(r)) => r,
            other => return other,
        };
        if let Some(asked) = this.asked.take() {
            finish(&mut response, &asked, *this.https);
        }
        Poll::Ready(Ok(response))
    }
}

/// The path as logged: a one-click link's token is a credential, so it is left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/acciones/") {
        "/acciones/…"
    } else {
        path
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

fn finish(response: &mut Response, asked: &Asked, https: bool) {
    let status = response.status();
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if is_html(headers) {
            HTML_POLICY
        } else {
            OTHER_POLICY
        };
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    if asked.credentials {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        tracing::warn!(
            target: "incidencias::seguridad",
            status = status.as_u16(),
            method = %asked.method,
            path = logged_path(asked.uri.path()),
            peer = ?asked.peer,
            "solicitud rechazada por falta de credenciales o de permiso"
        );
    }
}
