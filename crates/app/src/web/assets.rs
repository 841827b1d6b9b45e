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

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &crate::encoding::sha256_hex(bytes)[..32])
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no encontrado").into_response();
    };
    let tag = etag(bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    response
}
