//! Bad input through the real router, on both backends: every refusal is a problem document
//! (`application/problem+json`) with a stable `code`, the offending field named, a Spanish
//! `detail`, and nothing changed (the incident's document, its events and the number of
//! incidents are the same before and after).

mod common;

use axum::http::{Method, StatusCode};
use common::api::{Answer, Api};
use jiff::SignedDuration;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const JSON: Option<&str> = Some("application/json");

/// What can be seen of the record: how many incidents, and one incident's document and
/// number of events.
#[derive(Debug, PartialEq)]
struct Snapshot {
    total: u64,
    doc: Value,
    events: usize,
}

async fn snapshot(api: &Api, folio: &str) -> Snapshot {
    Snapshot {
        total: api.total().await,
        doc: api.incident(folio).await,
        events: api.events(folio).await.len(),
    }
}

fn report(api: &Api) -> Value {
    json!({
        "procedure_ids": [api.procedure],
        "kind": "unavailable",
        "description": "El trámite no responde",
        "occurred_at": (api.clock_now() - SignedDuration::from_mins(5)).to_string(),
        "channel": "phone"
    })
}

/// `report(api)` with `field` set to `value` (or removed when `value` is null).
fn report_with(api: &Api, field: &str, value: Value) -> Value {
    let mut body = report(api);
    let map = body.as_object_mut().expect("object");
    if value.is_null() {
        map.remove(field);
    } else {
        map.insert(field.to_string(), value);
    }
    body
}

async fn post_report(api: &Api, body: Value) -> Answer {
    api.post("/api/v1/incidents", &api.helpdesk, body).await
}

fn path(folio: &str, action: &str) -> String {
    format!("/api/v1/incidents/{folio}/{action}")
}

/// An incident the agency is correcting (notified high, acknowledged).
async fn in_correction(api: &Api) -> String {
    let folio = api.report().await;
    api.advance(60);
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.advance(60);
    folio
}

/// An incident waiting for CEDN's verdict.
async fn awaiting_validation(api: &Api) -> String {
    let folio = in_correction(api).await;
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    api.advance(60);
    folio
}

fn detail(a: &Answer) -> &str {
    a.json["detail"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// Syntax: 400
// ---------------------------------------------------------------------------------------

async fn malformed_json_is_400_malformed_and_changes_nothing(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;

    for body in [
        r#"{"procedure_ids": [1],"#,
        "no es JSON",
        r#"{"procedure_ids": [1], "kind": 'slow'}"#,
        "{\"description\": \"sin cerrar}",
    ] {
        let a = api
            .raw(Method::POST, "/api/v1/incidents", &api.helpdesk, JSON, body)
            .await;
        a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
        assert!(
            detail(&a).contains("no es JSON válido"),
            "{body}: Spanish detail: {}",
            a.text
        );
    }
    let a = api
        .raw(
            Method::POST,
            &path(&folio, "notify"),
            &api.helpdesk,
            JSON,
            r#"{"severity": high}"#,
        )
        .await;
    a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
    let a = api
        .raw(
            Method::PUT,
            &path(&folio, "report-form"),
            &api.agency,
            JSON,
            "{",
        )
        .await;
    a.assert_problem(StatusCode::BAD_REQUEST, "malformed");

    assert_eq!(snapshot(&api, &folio).await, before);
}

async fn json_that_is_not_an_object_is_422_naming_the_body(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;
    for body in ["[]", "\"high\"", "42", "null"] {
        let a = api
            .raw(
                Method::POST,
                &path(&folio, "notify"),
                &api.helpdesk,
                JSON,
                body,
            )
            .await;
        a.assert_invalid_field("body");
    }
    assert_eq!(snapshot(&api, &folio).await, before);
}

/// A JSON text is one value: anything after it makes the body malformed, and the request
/// must not be acted on.
async fn trailing_data_after_the_json_body_is_400(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;
    let a = api
        .raw(
            Method::POST,
            &path(&folio, "notify"),
            &api.helpdesk,
            JSON,
            r#"{"severity": "high"} sobra"#,
        )
        .await;
    a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
    assert_eq!(snapshot(&api, &folio).await, before);
    let a = api
        .raw(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            JSON,
            format!("{}{{}}", report(&api)),
        )
        .await;
    a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
    assert_eq!(api.total().await, before.total);
}

// ---------------------------------------------------------------------------------------
// Well-formed but invalid: 422 naming the field
// ---------------------------------------------------------------------------------------

async fn wrong_types_are_422_naming_the_field(url: String) {
    let api = Api::new(&url).await;
    let folio = awaiting_validation(&api).await;
    let before = snapshot(&api, &folio).await;

    let cases = [
        ("procedure_ids", json!("uno")),
        ("procedure_ids", json!(["uno"])),
        ("description", json!(123)),
        ("kind", json!(["unavailable"])),
        ("occurred_at", json!(1_764_255_600)),
        ("channel", json!(null)),
    ];
    for (field, value) in cases {
        let named = if value == json!(["uno"]) {
            "procedure_ids[0]".to_string()
        } else {
            field.to_string()
        };
        let body = if value.is_null() {
            let mut b = report(&api);
            b[field] = Value::Null;
            b
        } else {
            report_with(&api, field, value.clone())
        };
        let a = post_report(&api, body).await;
        a.assert_invalid_field(&named);
        assert!(
            detail(&a).contains("tipo de dato incorrecto"),
            "{field}={value}: {}",
            a.text
        );
    }

    let actions = [
        (
            "validation",
            api.validator.as_str(),
            json!({"passed": "sí"}),
            "passed",
        ),
        (
            "validation",
            api.validator.as_str(),
            json!({"passed": false, "observations": "Falla"}),
            "observations",
        ),
        (
            "banner",
            api.agency.as_str(),
            json!({"shown": "true"}),
            "shown",
        ),
        (
            "button",
            api.validator.as_str(),
            json!({"enabled": 1}),
            "enabled",
        ),
        (
            "severity",
            api.helpdesk.as_str(),
            json!({"severity": 3, "reason": "x"}),
            "severity",
        ),
        (
            "report-form/review",
            api.helpdesk.as_str(),
            json!({"complete": "no"}),
            "complete",
        ),
    ];
    for (action, token, body, field) in actions {
        let a = api.post(&path(&folio, action), token, body).await;
        a.assert_invalid_field(field);
    }
    let a = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"actions_taken": "Renovación"}),
        )
        .await;
    a.assert_invalid_field("actions_taken");
    let a = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"detected_at": "ayer por la tarde"}),
        )
        .await;
    a.assert_invalid_field("detected_at");

    assert_eq!(snapshot(&api, &folio).await, before);
}

/// Asserts a 422 refusal of one unknown field, whose name the problem mentions.
fn assert_unknown_field(a: &Answer, field: &str) {
    a.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    assert_eq!(a.error_fields().len(), 1, "{}", a.text);
    assert!(
        a.error_fields()[0].contains(field),
        "names {field}: {}",
        a.text
    );
    assert_eq!(a.json["errors"][0]["message"], "campo desconocido");
    assert!(detail(a).contains("campo desconocido"), "{}", a.text);
}

/// Bodies with an unknown field, as (method, action or "" for the report, token, body,
/// the unknown field).
fn unknown_field_cases(api: &Api) -> Vec<(Method, &'static str, &str, Value, &'static str)> {
    vec![
        (
            Method::POST,
            "",
            api.helpdesk.as_str(),
            report_with(api, "prioridad", json!("alta")),
            "prioridad",
        ),
        (
            Method::POST,
            "validation",
            api.validator.as_str(),
            json!({"passed": true, "aprobado": true}),
            "aprobado",
        ),
        (
            Method::POST,
            "banner",
            api.agency.as_str(),
            json!({"shown": true, "mensaje": "En mantenimiento"}),
            "mensaje",
        ),
        (
            Method::POST,
            "severity",
            api.helpdesk.as_str(),
            json!({"severity": "critical", "reason": "x", "motivo": "y"}),
            "motivo",
        ),
        (
            Method::POST,
            "close",
            api.helpdesk.as_str(),
            json!({"forzar": true}),
            "forzar",
        ),
        (
            Method::PUT,
            "report-form",
            api.agency.as_str(),
            json!({"symptoms": "Error 500", "causa": "Certificado vencido"}),
            "causa",
        ),
    ]
}

async fn send_case(
    api: &Api,
    folio: &str,
    method: Method,
    action: &str,
    token: &str,
    body: Value,
) -> Answer {
    let route = if action.is_empty() {
        "/api/v1/incidents".to_string()
    } else {
        path(folio, action)
    };
    api.call(method, &route, token, Some(body)).await
}

async fn unknown_fields_are_422_and_change_nothing(url: String) {
    let api = Api::new(&url).await;
    let folio = awaiting_validation(&api).await;
    let before = snapshot(&api, &folio).await;
    for (method, action, token, body, field) in unknown_field_cases(&api) {
        let a = send_case(&api, &folio, method, action, token, body).await;
        assert_unknown_field(&a, field);
    }
    assert_eq!(snapshot(&api, &folio).await, before);
}

/// `errors[].field` is the unknown field's name, as for every other field error.
async fn unknown_field_is_named_exactly(url: String) {
    let api = Api::new(&url).await;
    let folio = awaiting_validation(&api).await;
    for (method, action, token, body, field) in unknown_field_cases(&api) {
        let a = send_case(&api, &folio, method, action, token, body).await;
        a.assert_invalid_field(field);
        assert_eq!(a.error_fields(), [field], "{}", a.text);
    }
}

/// Problem details are Spanish (`Problem.detail`: "Spanish explanation of this
/// occurrence"): no library message in English.
async fn invalid_values_are_explained_in_spanish(url: String) {
    let api = Api::new(&url).await;
    let folio = awaiting_validation(&api).await;
    let answers = [
        post_report(&api, report_with(&api, "procedure_ids", json!("uno"))).await,
        api.post(
            &path(&folio, "validation"),
            &api.validator,
            json!({"passed": "sí"}),
        )
        .await,
        api.put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"detected_at": "ayer por la tarde"}),
        )
        .await,
    ];
    for a in answers {
        a.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
        for english in ["invalid type", "expected", "failed to parse"] {
            assert!(
                !detail(&a).contains(english),
                "English in the detail ({english}): {}",
                a.text
            );
        }
    }
}

/// serde stops at the first missing field; the answer names every one, so a person fixes
/// the form once. The same for the catalogue, where the service checks the fields.
async fn every_missing_field_is_named_at_once(url: String) {
    let api = Api::new(&url).await;
    let before = api.total().await;
    let a = post_report(&api, json!({"description": "Sólo la descripción"})).await;
    a.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    let mut fields = a.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        ["channel", "kind", "occurred_at", "procedure_ids"],
        "{}",
        a.text
    );
    assert_eq!(api.total().await, before, "nothing created");

    let a = api
        .post(
            "/api/v1/users",
            &api.admin,
            json!({"name": "", "email": "no-es-correo", "role": "jefe"}),
        )
        .await;
    let mut fields = a.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name", "role"], "{}", a.text);
}

async fn missing_required_fields_are_422_naming_the_field(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;

    for field in [
        "procedure_ids",
        "kind",
        "description",
        "occurred_at",
        "channel",
    ] {
        let a = post_report(&api, report_with(&api, field, Value::Null)).await;
        a.assert_invalid_field(field);
        assert!(detail(&a).contains("es obligatorio"), "{}", a.text);
    }

    // An empty body reads as `{}`.
    let a = api
        .raw(
            Method::POST,
            &path(&folio, "notify"),
            &api.helpdesk,
            None,
            "",
        )
        .await;
    a.assert_invalid_field("severity");
    let a = api
        .post(&path(&folio, "dismiss"), &api.helpdesk, json!({}))
        .await;
    a.assert_invalid_field("reason");
    let a = api
        .post(
            &path(&folio, "severity"),
            &api.helpdesk,
            json!({"severity": "critical"}),
        )
        .await;
    a.assert_invalid_field("reason");
    let a = api
        .post(&path(&folio, "banner"), &api.agency, json!({}))
        .await;
    a.assert_invalid_field("shown");
    let a = api
        .post(&path(&folio, "validation"), &api.validator, json!({}))
        .await;
    a.assert_invalid_field("passed");
    let a = api
        .post("/api/v1/login", "", json!({"email": "mesa@ugd.gob.mx"}))
        .await;
    a.assert_invalid_field("password");

    assert_eq!(snapshot(&api, &folio).await, before);
}

// ---------------------------------------------------------------------------------------
// Size and media type
// ---------------------------------------------------------------------------------------

async fn body_over_one_mib_is_413(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;

    let big = report_with(&api, "description", json!("a".repeat(1_100_000)));
    let a = post_report(&api, big).await;
    a.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(detail(&a).contains("1 MiB"), "{}", a.text);

    let a = api
        .post(
            &path(&folio, "notify"),
            &api.helpdesk,
            json!({"severity": "high", "relleno": "x".repeat(1_100_000)}),
        )
        .await;
    a.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Just under the limit the body is read, and judged on its fields.
    let under = report_with(&api, "description", json!("a".repeat(1_000_000)));
    let a = post_report(&api, under).await;
    a.assert_invalid_field("description");
    assert!(detail(&a).contains("10000"), "{}", a.text);

    assert_eq!(snapshot(&api, &folio).await, before);
}

async fn non_json_content_type_is_415(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;
    let body = report(&api).to_string();

    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let a = api
            .raw(
                Method::POST,
                "/api/v1/incidents",
                &api.helpdesk,
                ct,
                body.clone(),
            )
            .await;
        a.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(detail(&a).contains("JSON"), "{ct:?}: {}", a.text);
    }
    let a = api
        .raw(
            Method::POST,
            &path(&folio, "notify"),
            &api.helpdesk,
            Some("text/plain"),
            r#"{"severity": "high"}"#,
        )
        .await;
    a.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    assert_eq!(snapshot(&api, &folio).await, before);

    // JSON with parameters is JSON.
    let ok = api
        .raw(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            Some("application/json; charset=utf-8"),
            body,
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
}

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

async fn bad_folios_are_400_and_unknown_ones_404(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;

    for bad in ["INC-26-1", "hola", "INC-2026-000000", "INC-2026-12345X"] {
        let a = api
            .get(&format!("/api/v1/incidents/{bad}"), &api.helpdesk)
            .await;
        a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
        assert!(detail(&a).contains("folio"), "{bad}: {}", a.text);
        let a = api
            .get(&format!("/api/v1/incidents/{bad}/events"), &api.helpdesk)
            .await;
        a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
        let a = api
            .post(
                &path(bad, "notify"),
                &api.helpdesk,
                json!({"severity": "high"}),
            )
            .await;
        a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
    }

    let unknown = "INC-2026-999999";
    let a = api
        .get(&format!("/api/v1/incidents/{unknown}"), &api.helpdesk)
        .await;
    a.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert!(detail(&a).contains(unknown), "{}", a.text);
    let a = api
        .get(
            &format!("/api/v1/incidents/{unknown}/events"),
            &api.helpdesk,
        )
        .await;
    a.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let a = api
        .post(
            &path(unknown, "notify"),
            &api.helpdesk,
            json!({"severity": "high"}),
        )
        .await;
    a.assert_problem(StatusCode::NOT_FOUND, "not_found");

    assert_eq!(snapshot(&api, &folio).await, before);
}

async fn bad_homoclaves_are_422_and_unknown_ones_404(url: String) {
    let api = Api::new(&url).await;
    for bad in ["SEPRU_01_001", "SEPRU-1-001", "no-valida", "S-01-001"] {
        let a = api
            .get(&format!("/api/v1/public/procedures/{bad}/status"), "")
            .await;
        a.assert_invalid_field("homoclave");
        assert!(detail(&a).contains("homoclave"), "{bad}: {}", a.text);
    }
    let a = api
        .get("/api/v1/public/procedures/NADA-01-001/status", "")
        .await;
    a.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert!(detail(&a).contains("NADA-01-001"), "{}", a.text);
}

// ---------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------

async fn report_field_values_are_checked(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;
    let future = (api.clock_now() + SignedDuration::from_hours(1)).to_string();

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            report_with(&api, "occurred_at", json!(future)),
            vec!["occurred_at"],
        ),
        (
            report_with(&api, "occurred_at", json!("27/11/2026 09:00")),
            vec!["occurred_at"],
        ),
        (
            report_with(&api, "occurred_at", json!("2026-11-27T09:00:00")),
            vec!["occurred_at"],
        ),
        (
            report_with(&api, "occurred_at", json!("")),
            vec!["occurred_at"],
        ),
        (report_with(&api, "kind", json!("caido")), vec!["kind"]),
        (report_with(&api, "channel", json!("fax")), vec!["channel"]),
        (
            {
                let mut b = report_with(&api, "kind", json!("lento"));
                b["channel"] = json!("paloma");
                b
            },
            vec!["kind", "channel"],
        ),
        (
            report_with(&api, "procedure_ids", json!([999_999])),
            vec!["procedure_ids"],
        ),
        (
            report_with(&api, "procedure_ids", json!([])),
            vec!["procedure_ids"],
        ),
        (
            report_with(&api, "procedure_ids", json!([api.procedure, api.procedure])),
            vec!["procedure_ids"],
        ),
        (
            report_with(
                &api,
                "procedure_ids",
                json!([api.procedure, api.other_procedure]),
            ),
            vec!["procedure_ids"],
        ),
        (
            report_with(&api, "description", json!("   ")),
            vec!["description"],
        ),
        (
            report_with(&api, "description", json!("Error\u{0}500")),
            vec!["description"],
        ),
    ];
    for (body, fields) in cases {
        let a = post_report(&api, body.clone()).await;
        for f in &fields {
            a.assert_invalid_field(f);
        }
        assert_eq!(a.error_fields().len(), fields.len(), "{body}: {}", a.text);
        for f in &fields {
            assert!(detail(&a).contains(f), "detail names {f}: {}", a.text);
        }
    }
    // Another agency's procedure is, for an agency user, one that does not exist.
    let a = api
        .post("/api/v1/incidents", &api.other_agency, report(&api))
        .await;
    a.assert_invalid_field("procedure_ids");

    let a = api
        .post(
            &path(&folio, "notify"),
            &api.helpdesk,
            json!({"severity": "urgente"}),
        )
        .await;
    a.assert_invalid_field("severity");
    assert_eq!(snapshot(&api, &folio).await, before);

    // Any offset is accepted; the answer is in UTC.
    let ok = post_report(
        &api,
        report_with(&api, "occurred_at", json!("2026-11-27T08:50:00-06:00")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.json["occurred_at"], "2026-11-27T14:50:00Z");
    assert_eq!(api.total().await, before.total + 1);
}

async fn resolution_summary_text_is_checked(url: String) {
    let api = Api::new(&url).await;
    let folio = in_correction(&api).await;
    let before = snapshot(&api, &folio).await;

    for summary in [
        String::new(),
        "   ".to_string(),
        "Corregido\u{0}".to_string(),
        "Corregido \u{7} con campana".to_string(),
        "Corregido\u{1b}[31m".to_string(),
        "a".repeat(10_001),
    ] {
        let a = api
            .post(
                &path(&folio, "resolution"),
                &api.agency,
                json!({"summary": summary}),
            )
            .await;
        a.assert_invalid_field("summary");
        assert_eq!(a.error_fields(), ["summary"]);
    }
    let a = api
        .post(
            &path(&folio, "resolution"),
            &api.agency,
            json!({"summary": "é".repeat(10_001)}),
        )
        .await;
    a.assert_invalid_field("summary");
    assert!(detail(&a).contains("10000 caracteres"), "{}", a.text);
    assert_eq!(snapshot(&api, &folio).await, before);

    // Exactly at the limit, counted in characters, with line breaks and tabs: accepted.
    let at_limit = format!("{}\n\t{}", "é".repeat(5_000), "a".repeat(4_998));
    assert_eq!(at_limit.chars().count(), 10_000);
    let ok = api
        .post(
            &path(&folio, "resolution"),
            &api.agency,
            json!({"summary": at_limit}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["rounds"][0]["summary"], at_limit);
}

async fn report_form_values_are_checked(url: String) {
    let api = Api::new(&url).await;
    let folio = awaiting_validation(&api).await;
    let before = snapshot(&api, &folio).await;

    let a = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"root_cause": "x".repeat(10_001)}),
        )
        .await;
    a.assert_invalid_field("root_cause");
    let a = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"actions_taken": ["Renovación", "Reinicio\u{0}"]}),
        )
        .await;
    a.assert_invalid_field("actions_taken");
    let a = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"attachments": vec!["evidencia.pdf"; 101]}),
        )
        .await;
    a.assert_invalid_field("attachments");
    assert_eq!(snapshot(&api, &folio).await, before);

    // A partial form is saved as a draft (no clock effect); delivered, it is refused naming
    // every field it lacks; the review names only real form fields.
    let draft = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"symptoms": "Error 500", "draft": true}),
        )
        .await;
    assert_eq!(draft.status, StatusCode::OK, "{}", draft.text);
    assert_eq!(draft.json["report_form"]["state"], "draft");
    let partial = api
        .put(
            &path(&folio, "report-form"),
            &api.agency,
            json!({"symptoms": "Error 500"}),
        )
        .await;
    partial.assert_invalid_field("root_cause");
    partial.assert_invalid_field("impact");
    // Detected after the failure began, restored by the resolution notice.
    let doc = api.incident(&folio).await;
    let mut form = api.form();
    form["detected_at"] = doc["occurred_at"].clone();
    form["restored_at"] = doc["rounds"][0]["notified_at"].clone();
    let delivered = api
        .put(&path(&folio, "report-form"), &api.agency, form)
        .await;
    assert_eq!(delivered.status, StatusCode::OK, "{}", delivered.text);
    assert_eq!(delivered.json["report_form"]["state"], "submitted");
    let before = snapshot(&api, &folio).await;
    let a = api
        .post(
            &path(&folio, "report-form/review"),
            &api.helpdesk,
            json!({"complete": false, "missing": ["causa"]}),
        )
        .await;
    a.assert_invalid_field("missing");
    assert_eq!(snapshot(&api, &folio).await, before);
}

/// Query strings the query extractor refuses, with the parameter each must name.
const QUERY_TYPE_ERRORS: [(&str, &str); 4] = [
    ("?breached=quizas", "breached"),
    ("?agency_id=uno", "agency_id"),
    ("?page=-1", "page"),
    ("?estado=abierta", "estado"),
];

/// A query parameter of the wrong type, or unknown, is named like a body field, with a
/// Spanish explanation.
async fn bad_query_parameter_is_named_in_spanish(url: String) {
    let api = Api::new(&url).await;
    for (query, field) in QUERY_TYPE_ERRORS {
        let a = api
            .get(&format!("/api/v1/incidents{query}"), &api.helpdesk)
            .await;
        a.assert_invalid_field(field);
        assert!(
            !detail(&a).contains("Failed to deserialize"),
            "Spanish detail: {}",
            a.text
        );
    }
}

async fn list_filters_are_checked(url: String) {
    let api = Api::new(&url).await;
    let cases = [
        ("?state=abierta", "state"),
        ("?severity=urgente", "severity"),
        ("?per_page=0", "per_page"),
        ("?per_page=201", "per_page"),
        ("?page=0", "page"),
    ];
    for (query, field) in cases {
        let a = api
            .get(&format!("/api/v1/incidents{query}"), &api.helpdesk)
            .await;
        a.assert_invalid_field(field);
        assert_eq!(a.error_fields(), [field]);
    }
    // Values of the wrong type and unknown parameters are refused too.
    for (query, _) in QUERY_TYPE_ERRORS {
        let a = api
            .get(&format!("/api/v1/incidents{query}"), &api.helpdesk)
            .await;
        a.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
        assert_eq!(a.error_fields().len(), 1, "{query}: {}", a.text);
    }
    let ok = api
        .get("/api/v1/incidents?per_page=200&page=1", &api.helpdesk)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

async fn bad_idempotency_key_is_400(url: String) {
    let api = Api::new(&url).await;
    let body = report(&api).to_string();
    for key in ["x".repeat(201), "   ".to_string()] {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/incidents")
            .header("authorization", format!("Bearer {}", api.helpdesk))
            .header("content-type", "application/json")
            .header("idempotency-key", key.as_str())
            .body(axum::body::Body::from(body.clone()))
            .expect("request");
        let a = api.send(req).await;
        a.assert_problem(StatusCode::BAD_REQUEST, "malformed");
        assert!(detail(&a).contains("Idempotency-Key"), "{}", a.text);
    }
    assert_eq!(api.total().await, 0);
}

// ---------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------

async fn unknown_route_is_404_problem_document(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    for route in [
        "/api/v1/nada".to_string(),
        "/api/v2/incidents".to_string(),
        format!("/api/v1/incidents/{folio}/nada"),
        // Outside /api/ a program (no `Accept: text/html`) still gets a problem document;
        // `/` itself is the web interface's queue now.
        "/nada".to_string(),
    ] {
        let a = api.get(&route, &api.helpdesk).await;
        a.assert_problem(StatusCode::NOT_FOUND, "not_found");
        let a = api.get(&route, "").await;
        a.assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let a = api
        .post("/api/v1/nada", &api.helpdesk, json!({"x": 1}))
        .await;
    a.assert_problem(StatusCode::NOT_FOUND, "not_found");
}

/// A 405 problem document; the checks `assert_problem` makes except the `status` member
/// (see `method_not_allowed_problem_says_405`).
fn assert_405(a: &Answer) {
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", a.text);
    assert!(
        a.header("allow").is_some_and(|m| !m.is_empty()),
        "Allow: {:?}",
        a.headers
    );
    assert_eq!(
        a.header("content-type"),
        Some("application/problem+json"),
        "{}",
        a.text
    );
    assert!(!a.code().is_empty(), "stable code: {}", a.text);
    assert!(!detail(a).is_empty(), "detail: {}", a.text);
    assert!(detail(a).contains("método"), "Spanish detail: {}", a.text);
}

async fn wrong_method_is_405_problem_document(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let before = snapshot(&api, &folio).await;
    let cases = [
        (Method::DELETE, "/api/v1/incidents".to_string()),
        (Method::PUT, format!("/api/v1/incidents/{folio}/notify")),
        (Method::GET, format!("/api/v1/incidents/{folio}/close")),
        (Method::DELETE, format!("/api/v1/incidents/{folio}")),
        (Method::POST, "/api/v1/me".to_string()),
        (
            Method::POST,
            "/api/v1/public/procedures/SEPRU-01-001/status".to_string(),
        ),
    ];
    for (method, route) in cases {
        let a = api
            .call(method.clone(), &route, &api.helpdesk, Some(json!({})))
            .await;
        assert_405(&a);
    }
    assert_eq!(snapshot(&api, &folio).await, before);
}

/// RFC 9457: the `status` member, when present, is the response's status code.
async fn method_not_allowed_problem_says_405(url: String) {
    let api = Api::new(&url).await;
    let a = api
        .call(Method::DELETE, "/api/v1/incidents", &api.helpdesk, None)
        .await;
    assert_405(&a);
    a.assert_problem(StatusCode::METHOD_NOT_ALLOWED, a.code());
}

/// An instant outside the years 2000 to 2100 is a typo or a placeholder: every instant
/// the API reads is refused with a Spanish message that names the span, and nothing
/// changes.
async fn instants_before_2000_or_after_2100_are_refused_in_spanish(url: String) {
    let api = Api::new(&url).await;
    let says_the_span = |a: &Answer, field: &str| {
        a.assert_invalid_field(field);
        let message = a.json["errors"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["field"] == field))
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains("2000") && message.contains("2100"),
            "{field}: the message names the span: {}",
            a.text
        );
    };
    let before = api.total().await;
    for occurred in [
        "1999-12-31T23:59:59Z",
        "0226-11-27T09:00:00-06:00",
        "1970-01-01T00:00:00Z",
    ] {
        let a = post_report(&api, report_with(&api, "occurred_at", json!(occurred))).await;
        says_the_span(&a, "occurred_at");
    }
    assert_eq!(api.total().await, before, "nothing reported");

    // The help desk's correction at notification.
    let reported = api.report().await;
    let version = api.incident(&reported).await["version"].clone();
    let a = api
        .post(
            &path(&reported, "notify"),
            &api.helpdesk,
            json!({"severity": "high", "occurred_at": "1899-11-27T09:00:00-06:00",
                   "occurred_at_reason": "dato del usuario"}),
        )
        .await;
    says_the_span(&a, "occurred_at");
    assert_eq!(
        api.incident(&reported).await["version"],
        version,
        "not notified"
    );

    let folio = awaiting_validation(&api).await;
    let version = api.incident(&folio).await["version"].clone();
    for (field, value) in [
        ("detected_at", "2101-01-01T00:00:00Z"),
        ("restored_at", "1999-06-01T10:00:00-06:00"),
    ] {
        let mut form = api.form();
        form[field] = json!(value);
        let a = api
            .put(&path(&folio, "report-form"), &api.agency, form)
            .await;
        says_the_span(&a, field);
    }
    assert_eq!(
        api.incident(&folio).await["version"],
        version,
        "nothing changed"
    );

    let t = json!({"critical": 120, "high": 240, "medium": 480, "low": 960});
    let policy = json!({
        "effective_from": "2200-01-01T00:00:00Z",
        "targets": {"report": t, "ack": t, "resolution": t, "validation": t, "report_form": t}
    });
    let a = api.post("/api/v1/slo-policies", &api.admin, policy).await;
    says_the_span(&a, "effective_from");
    let versions = api.get("/api/v1/slo-policies", &api.admin).await;
    assert_eq!(
        versions.json.as_array().map(Vec::len),
        Some(1),
        "only the seed"
    );

    // The span's edges are accepted.
    let a = post_report(
        &api,
        report_with(&api, "occurred_at", json!("1999-12-31T18:00:00-06:00")),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::CREATED,
        "2000-01-01T00:00Z is in: {}",
        a.text
    );
}

on_both_backends!(instants_before_2000_or_after_2100_are_refused_in_spanish);

on_both_backends!(
    malformed_json_is_400_malformed_and_changes_nothing,
    json_that_is_not_an_object_is_422_naming_the_body,
    wrong_types_are_422_naming_the_field,
    unknown_fields_are_422_and_change_nothing,
    missing_required_fields_are_422_naming_the_field,
    body_over_one_mib_is_413,
    non_json_content_type_is_415,
    bad_folios_are_400_and_unknown_ones_404,
    bad_homoclaves_are_422_and_unknown_ones_404,
    report_field_values_are_checked,
    resolution_summary_text_is_checked,
    report_form_values_are_checked,
    list_filters_are_checked,
    bad_idempotency_key_is_400,
    unknown_route_is_404_problem_document,
    wrong_method_is_405_problem_document,
);

on_both_backends!(trailing_data_after_the_json_body_is_400);
on_both_backends!(every_missing_field_is_named_at_once);
on_both_backends!(unknown_field_is_named_exactly);
on_both_backends!(method_not_allowed_problem_says_405);
on_both_backends!(invalid_values_are_explained_in_spanish);
on_both_backends!(bad_query_parameter_is_named_in_spanish);

/// A new account's password (ASVS V2.1): at least 12 characters, not the address, not a
/// common password; each refused with its reason on `password`, and no account is made.
async fn weak_passwords_are_refused_with_the_reason(url: String) {
    let api = Api::new(&url).await;
    let before = api.get("/api/v1/users", &api.admin).await.json.clone();
    for (password, says) in [
        ("once-letras", "12 caracteres"),
        ("nueva.persona@ugd.gob.mx", "correo"),
        ("Contraseña123", "común"),
        ("qwertyuiop12", "común"),
    ] {
        let a = api
            .post(
                "/api/v1/users",
                &api.admin,
                json!({"name": "Nueva Persona", "email": "nueva.persona@ugd.gob.mx",
                       "role": "helpdesk", "password": password}),
            )
            .await;
        a.assert_invalid_field("password");
        assert!(a.text.contains(says), "{password}: {}", a.text);
    }
    assert_eq!(api.get("/api/v1/users", &api.admin).await.json, before);
    let ok = api
        .post(
            "/api/v1/users",
            &api.admin,
            json!({"name": "Nueva Persona", "email": "nueva.persona@ugd.gob.mx",
                   "role": "helpdesk", "password": "caballo-bateria-grapa"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
}

on_both_backends!(weak_passwords_are_refused_with_the_reason);
