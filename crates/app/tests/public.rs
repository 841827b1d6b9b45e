//! The portal's side, through the real router on both backends: every procedure's public
//! state in one document (and a page for citizens) without signing in, in plain words,
//! revalidated by ETag.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::api::{Answer, Api};
use serde_json::json;

async fn get(api: &Api, path: &str, etag: Option<&str>) -> Answer {
    let mut req = Request::builder()
        .uri(path)
        .header(header::ACCEPT, "text/html");
    if let Some(t) = etag {
        req = req.header(header::IF_NONE_MATCH, t);
    }
    api.send(req.body(Body::empty()).expect("request")).await
}

fn state_of(doc: &serde_json::Value, homoclave: &str) -> String {
    doc["procedures"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["homoclave"] == homoclave))
        .map(|p| p["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("{homoclave} is listed: {doc}"))
}

async fn every_procedure_has_a_public_state_revalidated_by_etag(url: String) {
    let api = Api::new(&url).await;
    let key = api.procedure_homoclave.clone();
    let first = get(&api, "/api/v1/public/procedures", None).await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "no sign-in needed: {}",
        first.text
    );
    assert_eq!(state_of(&first.json, &key), "operating");
    assert!(
        first
            .header("cache-control")
            .is_some_and(|c| c.contains("public"))
    );
    let tag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(
        get(&api, "/api/v1/public/procedures", Some(&tag))
            .await
            .status,
        StatusCode::NOT_MODIFIED
    );

    // A report not yet notified is not published.
    let folio = api.report().await;
    let unchanged = get(&api, "/api/v1/public/procedures", Some(&tag)).await;
    assert_eq!(
        unchanged.status,
        StatusCode::NOT_MODIFIED,
        "an unnotified report is private"
    );
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let after = get(&api, "/api/v1/public/procedures", Some(&tag)).await;
    assert_eq!(after.status, StatusCode::OK, "a change answers in full");
    assert_eq!(state_of(&after.json, &key), "incident");
    assert!(
        !after.text.contains(&folio),
        "no internal folio is published"
    );

    // A slow procedure keeps its button; with the banner shown it is "maintenance".
    api.step(
        &folio,
        "dismiss",
        &api.helpdesk,
        json!({"reason": "prueba"}),
    )
    .await;
    let slow = api.report_kind("slow").await;
    api.step(
        &slow,
        "notify",
        &api.helpdesk,
        json!({"severity": "low", "disable_button": false}),
    )
    .await;
    api.step(
        &slow,
        "banner",
        &api.agency,
        json!({"shown": true, "message": "Lento por mantenimiento"}),
    )
    .await;
    let now = get(&api, "/api/v1/public/procedures", None).await;
    assert_eq!(state_of(&now.json, &key), "maintenance", "{}", now.text);
}

async fn citizens_read_the_states_on_a_public_page(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let page = get(&api, "/estado", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Con incidencia"));
    assert!(page.text.contains(&api.procedure_homoclave));
    assert!(
        !page.text.contains(&folio),
        "no internal folio on the public page"
    );
    assert!(!page.text.contains("Salir"), "nobody is signed in");
    assert!(
        page.header("cache-control")
            .is_some_and(|c| c.contains("public"))
    );
    let tag = page.header("etag").expect("an ETag").to_string();
    assert_eq!(
        get(&api, "/estado", Some(&tag)).await.status,
        StatusCode::NOT_MODIFIED
    );
    let none = get(&api, "/estado?q=no-existe-nada", None).await;
    assert!(none.text.contains("Ningún trámite coincide"));
    assert!(!none.text.contains(&api.procedure_homoclave));
}

on_both_backends!(
    every_procedure_has_a_public_state_revalidated_by_etag,
    citizens_read_the_states_on_a_public_page,
);
