//! Security events logged (issue 16): failed sign-in, 401, 403 and a forged one-click
//! link, with what an investigator needs and no secret. Alone in its test binary: a
//! thread-scoped log subscriber misses events whose call sites other tests running in
//! parallel threads hit first (tracing caches each call site's interest).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::Api;
use serde_json::json;

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().uri(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

/// A shared buffer the log writes into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Failed sign-in, 401, 403 and a forged one-click link are logged (target
/// `incidencias::seguridad`) with the address, path and status; never the password, the
/// token or the link's signature.
#[tokio::test(flavor = "current_thread")]
async fn security_events_are_logged_without_secrets() {
    let db = common::TestDb::sqlite();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = Api::new(&db.url).await;

    let wrong = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"email": "mesa@ugd.gob.mx", "password": "clave-equivocada-777"}).to_string(),
        ))
        .expect("request");
    assert_eq!(api.send(wrong).await.status, StatusCode::UNAUTHORIZED);
    let bad_token = api
        .send(get("/api/v1/incidents", Some("token-inventado-999")))
        .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    let forbidden = api.send(get("/api/v1/users", Some(&api.agency))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let forged = api
        .send(get("/acciones/INC-2026-000009.ack.1.2.3.firmafalsa", None))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);

    let log = String::from_utf8_lossy(&captured.0.lock().expect("log").clone()).into_owned();
    assert!(
        log.contains("inicio de sesión fallido") && log.contains("mesa@ugd.gob.mx"),
        "{log}"
    );
    assert!(
        log.contains("status=401") && log.contains("/api/v1/incidents"),
        "{log}"
    );
    assert!(
        log.contains("status=403") && log.contains("/api/v1/users"),
        "{log}"
    );
    assert!(
        log.contains("INC-2026-000009") && log.contains("enlace"),
        "{log}"
    );
    for secret in [
        "clave-equivocada-777",
        "token-inventado-999",
        "firmafalsa",
        api.agency.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} is not logged: {log}");
    }
}
