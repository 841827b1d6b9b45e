//! What every response carries for the browser's protection (issue 16), sessions, and the
//! security events logged, on both backends: `nosniff`, `Referrer-Policy`, a CSP with
//! `frame-ancestors 'none'` on JSON and HTML alike (the portal's banner keeps its own),
//! `no-store` on authenticated JSON and on one-click pages, HSTS only behind HTTPS; sign-in
//! and sign-out refused from another site; the session cookie `HttpOnly`, `SameSite=Lax`,
//! `Secure` behind HTTPS and new at every sign-in. (What is logged: security_log.rs.)

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::api::{Answer, Api};
use incidencias::http::{AppParts, router};
use serde_json::json;
use tower::ServiceExt;

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().uri(path).header(header::ACCEPT, "*/*");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The headers every response carries, whatever produced it.
fn assert_protected(a: &Answer, what: &str) {
    assert_eq!(
        header(&a.headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert!(
        !header(&a.headers, "referrer-policy").is_empty(),
        "{what}: a Referrer-Policy"
    );
    assert!(
        header(&a.headers, "content-security-policy").contains("frame-ancestors 'none'"),
        "{what}: never framed: {:?}",
        a.headers
    );
    assert!(
        a.headers.get("strict-transport-security").is_none(),
        "{what}: no HSTS over plain HTTP"
    );
}

async fn every_response_carries_the_protective_headers(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;

    let json_doc = api
        .send(get(
            &format!("/api/v1/incidents/{folio}"),
            Some(&api.helpdesk),
        ))
        .await;
    assert_eq!(json_doc.status, StatusCode::OK);
    assert_protected(&json_doc, "authenticated JSON");
    assert_eq!(
        header(&json_doc.headers, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header(&json_doc.headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(&json_doc.headers, "cache-control"), "no-store");

    let unauthenticated = api.send(get("/api/v1/incidents", None)).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_protected(&unauthenticated, "401 problem");
    let missing = api
        .send(get("/api/v1/no-existe", Some(&api.helpdesk)))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_protected(&missing, "404 problem");
    let health = api.send(get("/healthz", None)).await;
    assert_protected(&health, "health");
    // The public status keeps its own caching: anyone's copy is the same.
    let public = api
        .send(get(
            &format!(
                "/api/v1/public/procedures/{}/status",
                api.procedure_homoclave
            ),
            None,
        ))
        .await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert_protected(&public, "public status");
    assert_ne!(header(&public.headers, "cache-control"), "no-store");

    let page = api
        .send(
            Request::builder()
                .uri("/entrar")
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_protected(&page, "sign-in page");
    assert!(header(&page.headers, "content-security-policy").contains("script-src 'self'"));

    // A one-click page: never cached, never framed, its own token not sent elsewhere.
    let link = api
        .send(get("/acciones/INC-2026-000001.ack.1.2.3.falsa", None))
        .await;
    assert_eq!(link.status, StatusCode::BAD_REQUEST);
    assert_protected(&link, "one-click page");
    assert_eq!(header(&link.headers, "cache-control"), "no-store");
    assert_eq!(header(&link.headers, "referrer-policy"), "no-referrer");

    // The portal's banner frame is the one response the portal may frame.
    let banner = api
        .send(get(
            &format!("/embed/cortinilla/{}", api.procedure_homoclave),
            None,
        ))
        .await;
    assert_eq!(banner.status, StatusCode::OK, "{}", banner.text);
    assert_eq!(header(&banner.headers, "x-content-type-options"), "nosniff");
    assert!(
        header(&banner.headers, "content-security-policy")
            .contains("frame-ancestors 'self' https://www.gob.mx"),
        "{:?}",
        banner.headers
    );
}

/// Behind HTTPS (INCIDENCIAS_SECURE_COOKIES or an https public URL): HSTS on every
/// response and a `Secure` session cookie.
async fn behind_https_responses_carry_hsts_and_the_cookie_is_secure(url: String) {
    let api = Api::new(&url).await;
    let https = router(
        AppParts {
            service: api.service.clone(),
            secure_cookies: true,
            base_url: "https://incidencias.gob.mx".into(),
            demo_accounts: Default::default(),
            portal_origins: Arc::new(vec!["https://www.gob.mx".into()]),
            metrics_token: None,
        }
        .into(),
    );
    let health = https
        .clone()
        .oneshot(get("/healthz", None))
        .await
        .expect("answer");
    assert_eq!(
        header(health.headers(), "strict-transport-security"),
        "max-age=31536000"
    );
    let login = https.oneshot(login_request(None)).await.expect("answer");
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = header(login.headers(), "set-cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
}

fn login_request(origin: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::HOST, "incidencias.gob.mx")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some((name, value)) = origin {
        b = b.header(name, value);
    }
    b.body(Body::from(
        json!({"email": "mesa@ugd.gob.mx", "password": "contraseña-de-prueba"}).to_string(),
    ))
    .expect("request")
}

fn session_of(a: &Answer) -> String {
    let cookie = header(&a.headers, "set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("a session value")
}

/// Sign-in and sign-out set the cookie, so another site's page cannot post them; a
/// program (no Origin) and our own pages can. Every sign-in gets a new session.
async fn sign_in_and_out_are_refused_from_another_site(url: String) {
    let api = Api::new(&url).await;
    for evil in [
        ("origin", "https://atacante.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = api.send(login_request(Some(evil))).await;
        refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
        assert!(
            refused.headers.get("set-cookie").is_none(),
            "{evil:?}: no session"
        );
    }
    let first = api
        .send(login_request(Some((
            "origin",
            "https://incidencias.gob.mx",
        ))))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = api.send(login_request(None)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let (a, b) = (session_of(&first), session_of(&second));
    assert_ne!(a, b, "a new session at every sign-in");

    let logout = |site: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/logout")
            .header(header::COOKIE, format!("incidencias_sesion={a}"))
            .header("sec-fetch-site", site)
            .body(Body::empty())
            .expect("request")
    };
    let refused = api.send(logout("cross-site")).await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let me = Request::builder()
        .uri("/api/v1/me")
        .header(header::COOKIE, format!("incidencias_sesion={a}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(api.send(me).await.status, StatusCode::OK, "still signed in");
    let done = api.send(logout("same-origin")).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
}

on_both_backends!(
    every_response_carries_the_protective_headers,
    behind_https_responses_carry_hsts_and_the_cookie_is_secure,
    sign_in_and_out_are_refused_from_another_site,
);
