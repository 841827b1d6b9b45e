//! The authorization matrix: every endpoint of the served OpenAPI document, called as every
//! role, as a user of another agency and without credentials, with the status each must
//! get. The paths come from the served document: an endpoint without a row fails the test,
//! so none can be forgotten. The role is judged first: a user of another agency gets 403 on
//! an action their role may not take (it says nothing about the folio) and 404 only on
//! one it may (the folio is not theirs to see).

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::api::{Answer, Api};
use serde_json::{Value, json};

/// The state an incident must be in for the endpoint's allowed role to succeed.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// No incident needed.
    None,
    Reported,
    Notified,
    InCorrection,
    AwaitingValidation,
    FormSubmitted,
    Closable,
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Admin,
    Helpdesk,
    Validator,
    Agency,
    OtherAgency,
    Anonymous,
}

const WHO: [Who; 6] = [
    Who::Admin,
    Who::Helpdesk,
    Who::Validator,
    Who::Agency,
    Who::OtherAgency,
    Who::Anonymous,
];

struct Row {
    method: &'static str,
    path: &'static str,
    setup: Setup,
    body: fn(&Api, usize) -> Option<Value>,
    /// Expected status per `WHO` entry.
    expect: [u16; 6],
}

fn none(_: &Api, _: usize) -> Option<Value> {
    None
}

fn empty(_: &Api, _: usize) -> Option<Value> {
    Some(json!({}))
}

fn token(api: &Api, who: Who) -> &str {
    match who {
        Who::Admin => &api.admin,
        Who::Helpdesk => &api.helpdesk,
        Who::Validator => &api.validator,
        Who::Agency => &api.agency,
        Who::OtherAgency => &api.other_agency,
        Who::Anonymous => "",
    }
}

fn rows() -> Vec<Row> {
    // Columns: admin, helpdesk, validator, agency, other agency, anonymous.
    vec![
        Row {
            method: "GET",
            path: "/healthz",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 200],
        },
        Row {
            method: "GET",
            path: "/readyz",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 200],
        },
        Row {
            method: "GET",
            path: "/api/v1/public/procedures",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 200],
        },
        Row {
            method: "GET",
            path: "/api/v1/public/procedures/{homoclave}/status",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 200],
        },
        Row {
            method: "POST",
            path: "/api/v1/login",
            setup: Setup::None,
            body: |_, n| {
                Some(json!({"email": format!("nadie{n}@ugd.gob.mx"), "password": "incorrecta-123"}))
            },
            expect: [401, 401, 401, 401, 401, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/logout",
            setup: Setup::None,
            body: none,
            expect: [204, 204, 204, 204, 204, 204],
        },
        Row {
            method: "GET",
            path: "/api/v1/me",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/agencies",
            setup: Setup::None,
            body: |_, n| {
                Some(
                    json!({"name": "Nueva", "acronym": format!("NUEVA{}", ["A","B","C","D","E","F"][n % 6]), "email_domains": ["nueva.gob.mx"]}),
                )
            },
            expect: [201, 403, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/agencies",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/users",
            setup: Setup::None,
            body: |_, n| {
                Some(
                    json!({"name": "Nuevo", "email": format!("nuevo{n}@ugd.gob.mx"), "role": "helpdesk"}),
                )
            },
            expect: [201, 403, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/users",
            setup: Setup::None,
            body: none,
            expect: [200, 403, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/procedures",
            setup: Setup::None,
            body: |api, n| {
                let responsible = api
                    .users
                    .iter()
                    .find(|u| u.email.as_str() == "responsable@sepru.gob.mx")
                    .map(|u| u.id);
                Some(
                    json!({"homoclave": format!("SEPRU-09-00{n}"), "name": "Nuevo", "agency_id": api.agency_id,
                              "url": "https://www.gob.mx/nuevo", "responsible_id": responsible}),
                )
            },
            expect: [201, 403, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/procedures",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/slo-policies",
            setup: Setup::None,
            body: |_, _| {
                let t = json!({"critical": 60, "high": 60, "medium": 60, "low": 60});
                Some(
                    json!({"targets": {"report": t, "ack": t, "resolution": t, "validation": t, "report_form": t}}),
                )
            },
            expect: [201, 403, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/slo-policies",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents",
            setup: Setup::None,
            body: |api, _| {
                Some(
                    json!({"procedure_ids": [api.procedure], "kind": "slow", "description": "Lento",
                                         "occurred_at": "2026-11-27T14:00:00Z", "channel": "api"}),
                )
            },
            // Another agency's procedure is not visible to its users: an unknown field value.
            expect: [403, 201, 403, 201, 422, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/incidents",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/incidents/{folio}",
            setup: Setup::Reported,
            body: none,
            expect: [200, 200, 200, 200, 404, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/incidents/{folio}/events",
            setup: Setup::Reported,
            body: none,
            expect: [200, 200, 200, 200, 404, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/incidents/{folio}/messages",
            setup: Setup::Reported,
            body: none,
            expect: [200, 200, 200, 200, 404, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/notify",
            setup: Setup::Reported,
            body: |_, _| Some(json!({"severity": "high"})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/acknowledge",
            setup: Setup::Notified,
            body: empty,
            expect: [403, 403, 403, 200, 404, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/banner",
            setup: Setup::Notified,
            body: |_, _| Some(json!({"shown": true})),
            expect: [403, 403, 403, 200, 404, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/banner-exemption",
            setup: Setup::Notified,
            body: |_, _| Some(json!({"reason": "El portal no admite cortinilla en este trámite"})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/button",
            setup: Setup::Notified,
            body: |_, _| Some(json!({"enabled": true})),
            expect: [403, 403, 200, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/resolution",
            setup: Setup::InCorrection,
            body: |_, _| Some(json!({"summary": "Corregido"})),
            expect: [403, 403, 403, 200, 404, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/validation",
            setup: Setup::AwaitingValidation,
            body: |_, _| Some(json!({"passed": true})),
            expect: [403, 403, 200, 403, 403, 401],
        },
        Row {
            method: "PUT",
            path: "/api/v1/incidents/{folio}/report-form",
            setup: Setup::AwaitingValidation,
            body: |_, _| Some(json!({"symptoms": "Error 500", "draft": true})),
            expect: [403, 403, 403, 200, 404, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/report-form/review",
            setup: Setup::FormSubmitted,
            body: |_, _| Some(json!({"complete": false, "missing": ["root_cause"]})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/escalate",
            setup: Setup::Notified,
            body: |_, _| Some(json!({"reason": "Sin respuesta"})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/severity",
            setup: Setup::Notified,
            body: |_, _| Some(json!({"severity": "critical", "reason": "Afecta a todos"})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/close",
            setup: Setup::Closable,
            body: empty,
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/incidents/{folio}/dismiss",
            setup: Setup::Reported,
            body: |_, _| Some(json!({"reason": "Duplicado"})),
            expect: [403, 200, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/inbound-email",
            setup: Setup::None,
            body: |_, _| Some(json!("no es un correo")),
            // Allowed roles reach the reader, which refuses a body that is no email.
            expect: [422, 422, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/inbound-email",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/outbox",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/webhooks",
            setup: Setup::None,
            body: none,
            expect: [200, 403, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/webhooks",
            setup: Setup::None,
            body: |_, _| {
                Some(json!({"url": "https://www.gob.mx/avisos", "events": ["procedure.button"]}))
            },
            expect: [201, 403, 403, 403, 403, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/webhooks/{id}/rotate",
            setup: Setup::None,
            body: none,
            expect: [200, 403, 403, 403, 403, 401],
        },
        Row {
            method: "PATCH",
            path: "/api/v1/webhooks/{id}",
            setup: Setup::None,
            body: |_, _| Some(json!({"active": true})),
            expect: [200, 403, 403, 403, 403, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/webhooks/{id}/deliveries",
            setup: Setup::None,
            body: none,
            expect: [200, 403, 403, 403, 403, 401],
        },
        // Reports: every role reads them (an agency, its own agency's figures); the
        // lists' export needs `table` and the versions' what-if `version_b` (422).
        Row {
            method: "GET",
            path: "/api/v1/reports/compliance",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/compliance.csv",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/breaches",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/breaches.csv",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/budget",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/budget.csv",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/lists",
            setup: Setup::None,
            body: none,
            expect: [200, 200, 200, 200, 200, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/lists.csv",
            setup: Setup::None,
            body: none,
            expect: [422, 422, 422, 422, 422, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/what-if",
            setup: Setup::None,
            body: none,
            expect: [422, 422, 422, 422, 422, 401],
        },
        Row {
            method: "GET",
            path: "/api/v1/reports/what-if.csv",
            setup: Setup::None,
            body: none,
            expect: [422, 422, 422, 422, 422, 401],
        },
        Row {
            method: "POST",
            path: "/api/v1/reports/what-if",
            setup: Setup::None,
            body: |_, _| {
                let t = json!({"critical": 900, "high": 1800, "medium": 3600, "low": 3600});
                Some(json!({"targets": {"report": t, "ack": t, "resolution": t,
                                        "validation": t, "report_form": t}}))
            },
            expect: [200, 200, 200, 200, 200, 401],
        },
    ]
}

/// An incident in the state `setup` asks for.
async fn prepare(api: &Api, setup: Setup) -> Option<String> {
    if matches!(setup, Setup::None) {
        return None;
    }
    let folio = api.report().await;
    if matches!(setup, Setup::Reported) {
        return Some(folio);
    }
    api.advance(60);
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    if matches!(setup, Setup::Notified) {
        return Some(folio);
    }
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    if matches!(setup, Setup::InCorrection) {
        return Some(folio);
    }
    // The closing rule needs the banner shown during the incident (and removed by the end).
    api.step(&folio, "banner", &api.agency, json!({"shown": true}))
        .await;
    api.step(&folio, "banner", &api.agency, json!({"shown": false}))
        .await;
    api.advance(60);
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    if matches!(setup, Setup::AwaitingValidation) {
        return Some(folio);
    }
    let now = api.clock_now();
    let form = json!({
        "detected_at": (now - jiff::SignedDuration::from_mins(8)).to_string(),
        "restored_at": now.to_string(),
        "symptoms": "Error 500", "impact": "300 usuarios", "root_cause": "Certificado vencido",
        "actions_taken": ["Renovación"], "verification": "Prueba", "preventive_actions": "Alerta",
        "prepared_by_name": "Ana López", "prepared_by_position": "Directora"
    });
    let put = api
        .call(
            Method::PUT,
            &format!("/api/v1/incidents/{folio}/report-form"),
            &api.agency,
            Some(form),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    if matches!(setup, Setup::FormSubmitted) {
        return Some(folio);
    }
    api.advance(60);
    api.step(
        &folio,
        "validation",
        &api.validator,
        json!({"passed": true}),
    )
    .await;
    api.step(
        &folio,
        "report-form/review",
        &api.helpdesk,
        json!({"complete": true}),
    )
    .await;
    Some(folio)
}

async fn matrix(url: String) {
    let api = Api::new(&url).await;
    let doc = api.get("/api/v1/openapi.json", "").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(
        doc.json["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    let mut served = BTreeSet::new();
    for (path, item) in doc.json["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                served.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let rows = rows();
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a row in the matrix: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "rows for endpoints the API does not serve: {stale:?}"
    );

    // The subscription the `{id}` rows act on.
    let created = api
        .call(
            Method::POST,
            "/api/v1/webhooks",
            &api.admin,
            Some(json!({"url": "https://www.gob.mx/avisos", "events": ["incident.state"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let webhook = created.json["subscription"]["id"].to_string();
    for row in &rows {
        for (n, who) in WHO.iter().enumerate() {
            let folio = prepare(&api, row.setup).await;
            let path = row
                .path
                .replace("{folio}", folio.as_deref().unwrap_or(""))
                .replace("{homoclave}", &api.procedure_homoclave)
                .replace("{id}", &webhook);
            let method = Method::from_bytes(row.method.as_bytes()).expect("method");
            let answer = api
                .call(method, &path, token(&api, *who), (row.body)(&api, n))
                .await;
            assert_eq!(
                answer.status.as_u16(),
                row.expect[n],
                "{} {} as {who:?}: {}",
                row.method,
                row.path,
                answer.text
            );
            if answer.status.is_client_error() {
                assert!(
                    answer.headers["content-type"]
                        .to_str()
                        .is_ok_and(|ct| ct == "application/problem+json"),
                    "{} {} as {who:?} answers a problem document",
                    row.method,
                    row.path
                );
                assert!(!answer.code().is_empty(), "stable code: {}", answer.text);
            }
        }
    }
}

on_both_backends!(matrix);

/// Sends `body` as is (JSON content type) as `token`.
async fn send_raw(api: &Api, method: Method, path: &str, token: &str, body: &str) -> Answer {
    api.raw(
        method,
        path,
        token,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

async fn a_wrong_role_gets_403_before_any_body_validation(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let on = |action: &str| format!("/api/v1/incidents/{folio}/{action}");
    let before = api.incident(&folio).await["version"].clone();
    // (method, path, a caller whose role may not act, bodies that are malformed or invalid)
    let cases: Vec<(Method, String, &str, Vec<&str>)> = vec![
        (
            Method::POST,
            "/api/v1/incidents".into(),
            &api.validator,
            vec![
                "{",
                "[]",
                r#"{"kind": 7}"#,
                r#"{"procedure_ids": [], "bogus": 1}"#,
            ],
        ),
        (
            Method::POST,
            on("notify"),
            &api.agency,
            vec!["{", r#"{"severity": "enorme"}"#, r#"{"severity": 3}"#, "{}"],
        ),
        (
            Method::POST,
            on("severity"),
            &api.validator,
            vec!["{", r#"{"severity": "enorme", "reason": ""}"#, "{}"],
        ),
        (
            Method::POST,
            on("acknowledge"),
            &api.helpdesk,
            vec!["{", r#"{"extra": true}"#],
        ),
        (
            Method::PUT,
            on("report-form"),
            &api.validator,
            vec!["{", r#"{"detected_at": "ayer"}"#],
        ),
        (
            Method::POST,
            "/api/v1/agencies".into(),
            &api.helpdesk,
            vec!["{", r#"{"name": 1}"#],
        ),
    ];
    for (method, path, token, bodies) in cases {
        for body in bodies {
            let answer = send_raw(&api, method.clone(), &path, token, body).await;
            answer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
            assert!(
                answer.json["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no permite")),
                "{method} {path} {body}: {}",
                answer.text
            );
        }
        // Not even a body that is not JSON gets past the role check.
        let answer = api
            .raw(method.clone(), &path, token, Some("text/plain"), "hola")
            .await;
        answer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    // The right role still gets the body's own errors.
    send_raw(&api, Method::POST, &on("notify"), &api.helpdesk, "{")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "malformed");
    send_raw(
        &api,
        Method::POST,
        &on("notify"),
        &api.helpdesk,
        r#"{"severity": "enorme"}"#,
    )
    .await
    .assert_invalid_field("severity");
    assert_eq!(
        api.incident(&folio).await["version"],
        before,
        "nothing changed"
    );
}

on_both_backends!(a_wrong_role_gets_403_before_any_body_validation);
