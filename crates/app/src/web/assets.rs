//! The files the pages load, compiled into the binary (no CDN: no request leaves the
//! page). Names carry no version, so they are revalidated by their `ETag`.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "cortinilla-frame.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/embed/cortinilla-frame.css"),
    ),
    (
        "portal-sim.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/portal-sim.css"),
    ),
    (
        "montserrat-latin-400-normal.woff2",
        "font/woff2",
        include_bytes!("../../static/fonts/montserrat-latin-400-normal.woff2"),
    ),
    (
        "montserrat-latin-700-normal.woff2",
        "font/woff2",
        include_bytes!("../../static/fonts/montserrat-latin-700-normal.woff2"),
    ),
];

pub use crate::encoding::etag;

/// Whether the request's `If-None-Match` values already name `tag`. They may list several
/// tags, weak or strong, or be `*` (RFC 9110 13.1.2: the weak comparison applies).
pub fn holds<'a>(tag: &str, if_none_match: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    fn opaque(t: &str) -> &str {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t)
    }
    let tag = opaque(tag);
    if_none_match
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == tag)
}

/// `full` with its `ETag`, or 304 when the request already holds that version.
pub fn revalidated(tag: &str, request: &HeaderMap, full: impl FnOnce() -> Response) -> Response {
    let fresh = holds(tag, request.get_all(header::IF_NONE_MATCH));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        full()
    };
    if let Ok(v) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no encontrado").into_response();
    };
    let mut response = revalidated(&etag(bytes), &headers, || {
        ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
    });
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    response
}
