//! Behaviour added after review, on both backends: idempotent catalogue writes, login
//! guesses sent in parallel, manual escalations mailed, `breached=false`, and timers never
//! overwritten by a stale computation.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::Api;
use serde_json::json;
use sqlx::Row;

fn policy_body() -> serde_json::Value {
    let t = json!({"critical": 120, "high": 240, "medium": 480, "low": 960});
    json!({"targets": {"report": t, "ack": t, "resolution": t, "validation": t, "report_form": t}})
}

async fn keyed(api: &Api, path: &str, key: &str, body: serde_json::Value) -> common::api::Answer {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .expect("request");
    api.send(req).await
}

async fn a_retried_catalogue_post_returns_the_first_answer_and_creates_once(url: String) {
    let api = Api::new(&url).await;
    let first = keyed(
        &api,
        "/api/v1/slo-policies",
        "politica-2026-11",
        policy_body(),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = keyed(
        &api,
        "/api/v1/slo-policies",
        "politica-2026-11",
        policy_body(),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.text, first.text, "byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let versions = api.get("/api/v1/slo-policies", &api.admin).await;
    assert_eq!(
        versions.json.as_array().map(Vec::len),
        Some(2),
        "seed + one, not two"
    );
    let mut other = policy_body();
    other["warning_ratio"] = json!(0.5);
    let reused = keyed(&api, "/api/v1/slo-policies", "politica-2026-11", other).await;
    reused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");

    let agency = json!({"name": "Nueva", "acronym": "NUEVA", "email_domains": ["nueva.gob.mx"]});
    let a1 = keyed(&api, "/api/v1/agencies", "dep-1", agency.clone()).await;
    let a2 = keyed(&api, "/api/v1/agencies", "dep-1", agency).await;
    assert_eq!(
        (a1.status, a2.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(a1.text, a2.text);
}

async fn parallel_login_guesses_cannot_slip_past_the_growing_wait(url: String) {
    let api = Api::new(&url).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let router = api.router.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"email": "mesa@ugd.gob.mx", "password": "adivinanza-123"}).to_string(),
                ))
                .expect("request");
            router.oneshot(req).await.expect("answer").status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let held = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + held, 10, "{statuses:?}");
    assert!(
        checked <= 3,
        "at most three guesses are checked at once: {statuses:?}"
    );
}

async fn a_manual_escalation_is_mailed_to_the_superior_cc_the_responsible_and_the_help_desk(
    url: String,
) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.step(
        &folio,
        "escalate",
        &api.helpdesk,
        json!({"reason": "Sin respuesta del responsable"}),
    )
    .await;
    let row = sqlx::query("SELECT kind, recipients, payload FROM outbox WHERE kind = 'escalation'")
        .fetch_one(api.store.pool())
        .await
        .expect("one outbox row");
    assert_eq!(
        row.try_get::<String, _>("kind").expect("kind"),
        "escalation"
    );
    let r: serde_json::Value =
        serde_json::from_str(&row.try_get::<String, _>("recipients").expect("r")).expect("json");
    assert_eq!(r["to"], json!(["director@sepru.gob.mx"]));
    // PROTOCOL.md, "Escalation": the help desk is copied on every escalation.
    assert_eq!(
        r["cc"],
        json!(["responsable@sepru.gob.mx", "mesa@ugd.gob.mx"])
    );
    let p: serde_json::Value =
        serde_json::from_str(&row.try_get::<String, _>("payload").expect("p")).expect("json");
    assert_eq!(p["reason"], "Sin respuesta del responsable");
}

/// The severity-change notice is as complete as step 2's: new deadlines for the running
/// clocks, and CEDN copied while it validates (its target changed too).
async fn a_severity_change_while_cedn_validates_is_mailed_to_cedn_with_the_new_deadlines(
    url: String,
) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    api.step(
        &folio,
        "severity",
        &api.helpdesk,
        json!({"severity": "critical", "reason": "Afecta a todos los usuarios"}),
    )
    .await;
    let row = sqlx::query("SELECT recipients, payload FROM outbox WHERE kind = 'severity_changed'")
        .fetch_one(api.store.pool())
        .await
        .expect("one severity notice");
    let r: serde_json::Value =
        serde_json::from_str(&row.try_get::<String, _>("recipients").expect("r")).expect("json");
    assert_eq!(r["to"], json!(["responsable@sepru.gob.mx"]));
    assert_eq!(r["cc"], json!(["mesa@ugd.gob.mx", "cedn@ugd.gob.mx"]));
    let p: serde_json::Value =
        serde_json::from_str(&row.try_get::<String, _>("payload").expect("p")).expect("json");
    let clocks: Vec<&str> = p["deadlines"]
        .as_array()
        .expect("deadlines")
        .iter()
        .filter_map(|d| d["clock"].as_str())
        .collect();
    assert!(clocks.contains(&"validation#1"), "{p}");
}

async fn breached_false_lists_the_incidents_without_a_breach(url: String) {
    let api = Api::new(&url).await;
    let late = api.report().await;
    api.step(
        &late,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    api.advance(1000);
    let calm = api.report().await;
    let breached = api
        .get("/api/v1/incidents?breached=true", &api.helpdesk)
        .await;
    let not = api
        .get("/api/v1/incidents?breached=false", &api.helpdesk)
        .await;
    let folios = |a: &common::api::Answer| -> Vec<String> {
        a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["folio"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(folios(&breached), [late]);
    assert_eq!(folios(&not), [calm]);
}

async fn a_stale_timer_computation_never_overwrites_a_newer_one(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let notified = api
        .step(&folio, "notify", &api.helpdesk, json!({"severity": "low"}))
        .await;
    let v = notified.json["version"].as_u64().expect("version");
    let f = incidencias_core::Folio::parse(&folio).expect("folio");
    let due = || async {
        sqlx::query("SELECT due_at FROM timers WHERE folio = $1")
            .bind(folio.clone())
            .fetch_one(api.store.pool())
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .expect("timer")
    };
    let written = due().await;
    // A newer command moves the deadlines (critical is stricter).
    api.step(
        &folio,
        "severity",
        &api.helpdesk,
        json!({"severity": "critical", "reason": "Todos"}),
    )
    .await;
    let newer = due().await;
    assert!(newer < written);
    // A computation from the older version arrives late: ignored.
    api.store
        .set_timer(
            f,
            Some(jiff::Timestamp::from_millisecond(written).expect("t")),
            v,
        )
        .await
        .expect("set");
    assert_eq!(due().await, newer);
}

on_both_backends!(
    a_retried_catalogue_post_returns_the_first_answer_and_creates_once,
    parallel_login_guesses_cannot_slip_past_the_growing_wait,
    a_manual_escalation_is_mailed_to_the_superior_cc_the_responsible_and_the_help_desk,
    a_severity_change_while_cedn_validates_is_mailed_to_cedn_with_the_new_deadlines,
    breached_false_lists_the_incidents_without_a_breach,
    a_stale_timer_computation_never_overwrites_a_newer_one,
);
