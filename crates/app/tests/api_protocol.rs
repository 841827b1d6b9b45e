//! The protocol through the real router, on both backends: the seven steps at every
//! severity, its exceptions (persistence, incomplete form, severity change, dismissal),
//! the closing rule, refused transitions, the list, the portal's public status,
//! idempotent retries and browser sign-in.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::{Answer, Api};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("an instant, got {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("RFC 3339 instant {v}: {e}"))
}

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(seconds))
        .expect("in range")
}

/// The clock `name` (validation round `round`; 0 for the other clocks) of a document.
fn clock<'a>(doc: &'a Value, name: &str, round: u64) -> &'a Value {
    doc["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .find(|c| c["name"] == name && c["round"] == round)
        .unwrap_or_else(|| panic!("clock {name}#{round} in {doc}"))
}

fn assert_clock(doc: &Value, name: &str, round: u64, state: &str, target_s: u64) {
    let c = clock(doc, name, round);
    assert_eq!(c["state"], state, "state of clock {name}#{round}: {c}");
    assert_eq!(
        c["target_s"], target_s,
        "target of clock {name}#{round}: {c}"
    );
}

fn clock_names(doc: &Value) -> Vec<(String, u64)> {
    doc["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["round"].as_u64().expect("round"),
            )
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("text").to_string())
        .collect()
}

/// A complete form consistent with the record: detected a minute after the failure began,
/// restored at the latest resolution notice.
fn complete_form(doc: &Value) -> Value {
    let occurred = ts(&doc["occurred_at"]);
    let last_round = doc["rounds"]
        .as_array()
        .and_then(|r| r.last())
        .expect("a resolution notice was sent");
    json!({
        "detected_at": plus(occurred, 60).to_string(),
        "restored_at": ts(&last_round["notified_at"]).to_string(),
        "symptoms": "Error 500 al enviar la solicitud",
        "impact": "Unos 300 usuarios no pudieron concluir el trámite",
        "root_cause": "Certificado TLS vencido en el balanceador",
        "actions_taken": ["Renovación del certificado", "Reinicio del balanceador"],
        "verification": "Prueba de extremo a extremo en producción",
        "preventive_actions": "Alerta 30 días antes del vencimiento",
        "prepared_by_name": "Ana López",
        "prepared_by_position": "Directora de TI"
    })
}

async fn put_form(api: &Api, folio: &str, form: Value) -> Answer {
    api.put(
        &format!("/api/v1/incidents/{folio}/report-form"),
        &api.agency,
        form,
    )
    .await
}

/// Asserts the event list is one hash chain from the genesis hash, with seq 1, 2, ...
fn assert_chained(events: &[Value]) {
    let mut prev = "0".repeat(64);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq of event {i}: {e}"
        );
        assert_eq!(
            e["prev_hash"].as_str(),
            Some(prev.as_str()),
            "event {} chains to the previous hash",
            i + 1
        );
        let hash = e["hash"].as_str().expect("hash");
        assert_eq!(hash.len(), 64, "SHA-256 hex: {hash}");
        assert_ne!(hash, prev, "each event has its own hash");
        prev = hash.to_string();
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}

/// Expects a 409 `invalid_transition` naming `state`.
fn assert_refused_in(a: &Answer, state: &str) {
    a.assert_problem(StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(a.json["state"], state, "current state named: {}", a.text);
}

async fn act(api: &Api, folio: &str, action: &str, token: &str, body: Value) -> Answer {
    api.post(&format!("/api/v1/incidents/{folio}/{action}"), token, body)
        .await
}

// ---------------------------------------------------------------------------------------
// The seven steps at every severity
// ---------------------------------------------------------------------------------------

async fn happy_path(url: String, severity: &str, ack_s: u64, resolution_s: u64, validation_s: u64) {
    let api = Api::new(&url).await;
    let occurred = api.clock_now() - SignedDuration::from_mins(5);

    // Step 1.
    let created = api
        .post(
            "/api/v1/incidents",
            &api.helpdesk,
            json!({
                "procedure_ids": [api.procedure],
                "kind": "unavailable",
                "description": "El trámite devuelve error 500",
                "occurred_at": occurred.to_string(),
                "channel": "phone"
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let doc = &created.json;
    let folio = doc["folio"].as_str().expect("folio").to_string();
    assert!(folio.starts_with("INC-2026-"), "folio {folio}");
    assert_eq!(doc["state"], "reported");
    assert_eq!(doc["severity"], Value::Null);
    assert_eq!(doc["agency_id"], api.agency_id);
    assert_eq!(doc["procedure_ids"], json!([api.procedure]));
    assert_eq!(doc["channel"], "phone");
    assert_eq!(doc["kind"], "unavailable");
    assert_eq!(ts(&doc["occurred_at"]), occurred);
    assert_eq!(ts(&doc["reported_at"]), api.clock_now());
    assert_eq!(doc["portal"]["button_enabled"], true);
    assert_eq!(doc["portal"]["banner_shown"], false);
    assert_eq!(doc["report_form"]["state"], "not_due");
    assert_eq!(doc["validation_rounds"], 0);
    assert_eq!(doc["version"], 1);
    assert_eq!(clock_names(doc), vec![("report".to_string(), 0)]);
    assert_clock(doc, "report", 0, "met", 3600);
    assert_eq!(clock(doc, "report", 0)["elapsed_s"], 300);

    // Step 2: notification with severity; the portal button goes off.
    api.advance(120);
    let notified = api
        .step(
            &folio,
            "notify",
            &api.helpdesk,
            json!({"severity": severity}),
        )
        .await;
    let doc = &notified.json;
    let notified_at = api.clock_now();
    assert_eq!(doc["state"], "awaiting_ack");
    assert_eq!(doc["severity"], severity);
    assert_eq!(ts(&doc["notified_at"]), notified_at);
    assert_eq!(doc["policy_version"], 1);
    assert_eq!(doc["portal"]["button_enabled"], false);
    assert_eq!(doc["portal"]["banner_shown"], false);
    assert_clock(doc, "ack", 0, "running", ack_s);
    assert_clock(doc, "resolution", 0, "running", resolution_s);
    let ack_s_i = i64::try_from(ack_s).expect("small");
    let resolution_s_i = i64::try_from(resolution_s).expect("small");
    assert_eq!(
        ts(&clock(doc, "ack", 0)["due_at"]),
        plus(notified_at, ack_s_i)
    );
    assert_eq!(
        ts(&clock(doc, "resolution", 0)["due_at"]),
        plus(notified_at, resolution_s_i)
    );

    // Step 2 (1): acknowledgment; (3) the banner.
    api.advance(300);
    let acked = api
        .step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    let doc = &acked.json;
    assert_eq!(doc["state"], "in_correction");
    assert_eq!(ts(&doc["acknowledged_at"]), api.clock_now());
    assert_clock(doc, "ack", 0, "met", ack_s);
    assert_eq!(clock(doc, "ack", 0)["elapsed_s"], 300);
    assert_clock(doc, "resolution", 0, "running", resolution_s);

    let banner = api
        .step(
            &folio,
            "banner",
            &api.agency,
            json!({"shown": true, "message": "Trámite en mantenimiento"}),
        )
        .await;
    assert_eq!(banner.json["portal"]["banner_shown"], true);
    assert_eq!(
        banner.json["portal"]["banner_message"],
        "Trámite en mantenimiento"
    );
    assert_eq!(banner.json["state"], "in_correction");

    // Step 3: resolution notice; validation round 1 starts, the resolution clock pauses.
    api.advance(600);
    let resolved = api
        .step(
            &folio,
            "resolution",
            &api.agency,
            json!({"summary": "Se renovó el certificado y se verificó el envío"}),
        )
        .await;
    let doc = &resolved.json;
    assert_eq!(doc["state"], "awaiting_validation");
    assert_eq!(doc["validation_rounds"], 1);
    assert_eq!(doc["report_form"]["state"], "due");
    assert_clock(doc, "resolution", 0, "paused", resolution_s);
    assert_eq!(clock(doc, "resolution", 0)["elapsed_s"], 900);
    assert_eq!(clock(doc, "resolution", 0)["due_at"], Value::Null);
    assert_clock(doc, "validation", 1, "running", validation_s);
    assert_clock(doc, "report_form", 0, "running", 86_400);
    assert_eq!(doc["rounds"][0]["round"], 1);
    assert_eq!(doc["rounds"][0]["passed"], Value::Null);

    // Step 4: CEDN validates; the button comes back.
    api.advance(240);
    let validated = api
        .step(
            &folio,
            "validation",
            &api.validator,
            json!({"passed": true, "observations": []}),
        )
        .await;
    let doc = &validated.json;
    assert_eq!(doc["state"], "validated");
    assert_eq!(doc["portal"]["button_enabled"], true);
    assert_eq!(doc["portal"]["banner_shown"], true);
    assert_clock(doc, "validation", 1, "met", validation_s);
    assert_eq!(clock(doc, "validation", 1)["elapsed_s"], 240);
    assert_clock(doc, "resolution", 0, "met", resolution_s);
    assert_eq!(
        clock(doc, "resolution", 0)["elapsed_s"],
        900,
        "the time CEDN held the notice is not the agency's"
    );
    assert_eq!(doc["rounds"][0]["passed"], true);

    // Step 5: the banner comes off.
    let unbanner = api
        .step(&folio, "banner", &api.agency, json!({"shown": false}))
        .await;
    assert_eq!(unbanner.json["portal"]["banner_shown"], false);
    assert_eq!(unbanner.json["portal"]["banner_message"], Value::Null);

    // Step 6: the form, delivered and accepted.
    api.advance(3600);
    let form = complete_form(&unbanner.json);
    let submitted = put_form(&api, &folio, form.clone()).await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.text);
    assert_eq!(submitted.json["report_form"]["state"], "submitted");
    assert_eq!(submitted.json["report_form"]["issues"], json!([]));
    assert_eq!(
        submitted.json["report_form"]["form"]["root_cause"],
        form["root_cause"]
    );
    let accepted = api
        .step(
            &folio,
            "report-form/review",
            &api.helpdesk,
            json!({"complete": true}),
        )
        .await;
    let doc = &accepted.json;
    assert_eq!(doc["report_form"]["state"], "accepted");
    assert_clock(doc, "report_form", 0, "met", 86_400);
    assert_eq!(clock(doc, "report_form", 0)["elapsed_s"], 240 + 3600);
    assert_eq!(doc["closing_unmet"], json!([]));

    // Step 7.
    api.advance(60);
    let closed = api.step(&folio, "close", &api.helpdesk, json!({})).await;
    let doc = &closed.json;
    assert_eq!(doc["state"], "closed");
    assert_eq!(ts(&doc["closed_at"]), api.clock_now());
    for c in doc["clocks"].as_array().expect("clocks") {
        assert_ne!(c["state"], "running", "no clock runs after closing: {c}");
        assert_ne!(
            c["state"], "paused",
            "no clock is paused after closing: {c}"
        );
    }

    // The reads agree with the answers.
    let read = api.incident(&folio).await;
    assert_eq!(
        read, closed.json,
        "GET answers the document of the last action"
    );
    let events = api.events(&folio).await;
    assert_chained(&events);
    assert_eq!(
        kinds(&events),
        [
            "reported",
            "notified",
            "button_set",
            "acknowledged",
            "banner_set",
            "resolution_notified",
            "validation_recorded",
            "button_set",
            "banner_set",
            "report_form_submitted",
            "report_form_reviewed",
            "closed",
        ]
    );
    assert_eq!(read["version"], events.len() as u64);
    assert_eq!(events[1]["data"]["severity"], severity);
    assert_eq!(
        events[2]["data"],
        json!({"enabled": false, "cause": "notification"})
    );
    assert_eq!(
        events[7]["data"],
        json!({"enabled": true, "cause": "validation"})
    );
    assert_eq!(ts(&events[0]["at"]), ts(&read["reported_at"]));
    assert_eq!(ts(&events[11]["at"]), ts(&read["closed_at"]));
    assert_eq!(events[3]["actor"]["role"], "agency");
    assert_eq!(events[6]["actor"]["role"], "validator");
}

async fn critical_incident_runs_all_seven_steps_to_closed(url: String) {
    happy_path(url, "critical", 900, 5400, 1200).await;
}

async fn high_incident_runs_all_seven_steps_to_closed(url: String) {
    happy_path(url, "high", 1800, 14_400, 3600).await;
}

async fn medium_incident_runs_all_seven_steps_to_closed(url: String) {
    happy_path(url, "medium", 3600, 28_800, 7200).await;
}

async fn low_incident_runs_all_seven_steps_to_closed(url: String) {
    happy_path(url, "low", 3600, 86_400, 28_800).await;
}

// ---------------------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------------------

async fn failed_validation_returns_to_correction_and_opens_a_second_round(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.advance(600);
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    api.advance(300);

    // Persistence: a failed verdict needs observations.
    let no_obs = act(
        &api,
        &folio,
        "validation",
        &api.validator,
        json!({"passed": false}),
    )
    .await;
    no_obs.assert_invalid_field("observations");

    let failed = api
        .step(
            &folio,
            "validation",
            &api.validator,
            json!({"passed": false, "observations": ["El formulario sigue sin enviar"]}),
        )
        .await;
    let doc = &failed.json;
    assert_eq!(doc["state"], "in_correction");
    assert_eq!(doc["validation_rounds"], 1);
    assert_eq!(
        doc["portal"]["button_enabled"], false,
        "a failed validation keeps it off"
    );
    assert_eq!(doc["rounds"][0]["passed"], false);
    assert_eq!(
        doc["rounds"][0]["observations"],
        json!(["El formulario sigue sin enviar"])
    );
    assert_clock(doc, "validation", 1, "met", 3600);
    assert_clock(doc, "resolution", 0, "running", 14_400);
    assert_eq!(clock(doc, "resolution", 0)["elapsed_s"], 660);
    assert!(
        doc["closing_unmet"]
            .as_array()
            .expect("unmet")
            .contains(&json!("validation_passed"))
    );

    // A second resolution notice opens round 2.
    api.advance(900);
    let second = api
        .step(
            &folio,
            "resolution",
            &api.agency,
            json!({"summary": "Se corrigió también el envío"}),
        )
        .await;
    let doc = &second.json;
    assert_eq!(doc["state"], "awaiting_validation");
    assert_eq!(doc["validation_rounds"], 2);
    assert_clock(doc, "validation", 1, "met", 3600);
    assert_clock(doc, "validation", 2, "running", 3600);
    assert_eq!(
        ts(&clock(doc, "validation", 2)["started_at"]),
        api.clock_now()
    );
    assert_clock(doc, "resolution", 0, "paused", 14_400);
    assert_eq!(clock(doc, "resolution", 0)["elapsed_s"], 660 + 900);
    assert_eq!(doc["rounds"][1]["round"], 2);
    assert_eq!(doc["rounds"][1]["passed"], Value::Null);
    // The form clock started at the first notice and is not restarted.
    assert_eq!(
        clock_names(doc)
            .iter()
            .filter(|(n, _)| n == "report_form")
            .count(),
        1
    );

    api.advance(120);
    let passed = api
        .step(
            &folio,
            "validation",
            &api.validator,
            json!({"passed": true}),
        )
        .await;
    let doc = &passed.json;
    assert_eq!(doc["state"], "validated");
    assert_eq!(doc["validation_rounds"], 2);
    assert_eq!(doc["portal"]["button_enabled"], true);
    assert_clock(doc, "validation", 2, "met", 3600);
    assert_eq!(clock(doc, "validation", 2)["elapsed_s"], 120);
    assert_clock(doc, "resolution", 0, "met", 14_400);
    assert_eq!(doc["rounds"][1]["passed"], true);

    let events = api.events(&folio).await;
    assert_chained(&events);
    assert_eq!(
        kinds(&events),
        [
            "reported",
            "notified",
            "button_set",
            "acknowledged",
            "resolution_notified",
            "validation_recorded",
            "resolution_notified",
            "validation_recorded",
            "button_set",
        ]
    );
    assert_eq!(events[5]["data"]["passed"], false);
    assert_eq!(events[6]["data"]["round"], 2);
}

async fn incomplete_form_is_refused_on_delivery_and_requested_again_by_the_help_desk(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "medium"}),
    )
    .await;
    api.advance(60);
    let resolved = api
        .step(
            &folio,
            "resolution",
            &api.agency,
            json!({"summary": "Corregido"}),
        )
        .await;
    // A resolution notice straight from awaiting_ack also acknowledges.
    assert_eq!(
        resolved.json["acknowledged_at"],
        resolved.json["rounds"][0]["notified_at"]
    );
    let mut form = complete_form(&resolved.json);
    form.as_object_mut().expect("object").remove("root_cause");

    // Delivered without its root cause, the form is refused naming the field; saved as a
    // draft, it is kept with no clock effect.
    api.advance(600);
    let refused = put_form(&api, &folio, form.clone()).await;
    refused.assert_invalid_field("root_cause");
    assert_eq!(refused.error_fields(), ["root_cause"]);
    let mut draft = form.clone();
    draft["draft"] = json!(true);
    let saved = put_form(&api, &folio, draft).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(saved.json["report_form"]["state"], "draft");
    assert_clock(&saved.json, "report_form", 0, "running", 86_400);

    // Delivered complete but with a root cause the help desk finds insufficient: the clock
    // pauses while the form awaits review (it measures delivery).
    form["root_cause"] = json!("Por determinar");
    let submitted = put_form(&api, &folio, form.clone()).await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.text);
    assert_eq!(submitted.json["report_form"]["state"], "submitted");
    assert_eq!(submitted.json["report_form"]["issues"], json!([]));
    assert_eq!(clock(&submitted.json, "report_form", 0)["elapsed_s"], 600);

    // It asks for the root cause again; the clock runs from the request.
    api.advance(600);
    let requested = api
        .step(
            &folio,
            "report-form/review",
            &api.helpdesk,
            json!({"complete": false, "missing": ["root_cause"], "message": "Falta la causa raíz"}),
        )
        .await;
    let doc = &requested.json;
    assert_eq!(doc["report_form"]["state"], "incomplete");
    assert_eq!(doc["report_form"]["requested"], json!(["root_cause"]));
    assert_clock(doc, "report_form", 0, "running", 86_400);
    assert_eq!(
        clock(doc, "report_form", 0)["elapsed_s"],
        600,
        "the help desk's review is not charged to the agency"
    );

    // The agency completes and resends; the help desk accepts.
    api.advance(600);
    form["root_cause"] = json!("Certificado vencido");
    let resent = put_form(&api, &folio, form).await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.text);
    assert_eq!(resent.json["report_form"]["state"], "submitted");
    let accepted = api
        .step(
            &folio,
            "report-form/review",
            &api.helpdesk,
            json!({"complete": true}),
        )
        .await;
    let doc = &accepted.json;
    assert_eq!(doc["report_form"]["state"], "accepted");
    assert_eq!(doc["report_form"]["requested"], json!([]));
    assert_clock(doc, "report_form", 0, "met", 86_400);
    assert_eq!(
        clock(doc, "report_form", 0)["elapsed_s"],
        1200,
        "two deliveries of 600 s each; the reviews are not counted"
    );

    // Once accepted it cannot be replaced.
    let late = put_form(&api, &folio, complete_form(doc)).await;
    late.assert_problem(StatusCode::CONFLICT, "invalid_transition");

    let events = api.events(&folio).await;
    assert_chained(&events);
    let reviews: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "report_form_reviewed")
        .collect();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["data"]["complete"], false);
    assert_eq!(reviews[0]["data"]["missing"], json!(["root_cause"]));
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "report_form_draft_saved"),
        "the draft is part of the record"
    );
    assert_eq!(reviews[0]["data"]["message"], "Falta la causa raíz");
    assert_eq!(reviews[1]["data"]["complete"], true);
}

async fn severity_change_retargets_running_clocks_from_their_starts(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.advance(60);
    let notified = api
        .step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let notified_at = ts(&notified.json["notified_at"]);
    assert_clock(&notified.json, "ack", 0, "running", 1800);
    assert_clock(&notified.json, "resolution", 0, "running", 14_400);

    // A reason is required, and the new severity must differ.
    let no_reason = act(
        &api,
        &folio,
        "severity",
        &api.helpdesk,
        json!({"severity": "critical", "reason": "  "}),
    )
    .await;
    no_reason.assert_invalid_field("reason");
    let same = act(
        &api,
        &folio,
        "severity",
        &api.helpdesk,
        json!({"severity": "high", "reason": "Sin cambio"}),
    )
    .await;
    same.assert_invalid_field("severity");

    api.advance(1000);
    let changed = api
        .step(
            &folio,
            "severity",
            &api.helpdesk,
            json!({"severity": "critical", "reason": "Afecta a todos los usuarios"}),
        )
        .await;
    let doc = &changed.json;
    assert_eq!(doc["severity"], "critical");
    assert_eq!(
        doc["state"], "awaiting_ack",
        "a severity change is no transition"
    );
    // From the original start: 1000 s of a 900 s target have passed, so the ack clock is
    // already over, since notified + 900 s.
    assert_clock(doc, "ack", 0, "breached", 900);
    assert_eq!(
        ts(&clock(doc, "ack", 0)["started_at"]),
        notified_at,
        "same start"
    );
    assert_eq!(
        ts(&clock(doc, "ack", 0)["breached_at"]),
        plus(notified_at, 900)
    );
    assert_clock(doc, "resolution", 0, "running", 5400);
    assert_eq!(
        ts(&clock(doc, "resolution", 0)["due_at"]),
        plus(notified_at, 5400)
    );
    // The stopped report clock is history: its target stays.
    assert_clock(doc, "report", 0, "met", 3600);

    let events = api.events(&folio).await;
    assert_chained(&events);
    let last = events.last().expect("an event");
    assert_eq!(last["kind"], "severity_changed");
    assert_eq!(
        last["data"],
        json!({"from": "high", "to": "critical", "reason": "Afecta a todos los usuarios"})
    );
    assert_eq!(doc["version"], events.len() as u64);
}

async fn dismissed_report_is_kept_and_refuses_every_further_action(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;

    let no_reason = act(
        &api,
        &folio,
        "dismiss",
        &api.helpdesk,
        json!({"reason": ""}),
    )
    .await;
    no_reason.assert_invalid_field("reason");

    api.advance(60);
    let dismissed = api
        .step(
            &folio,
            "dismiss",
            &api.helpdesk,
            json!({"reason": "Duplicado de otro reporte"}),
        )
        .await;
    let doc = dismissed.json.clone();
    assert_eq!(doc["state"], "dismissed");
    assert_eq!(doc["dismissal_reason"], "Duplicado de otro reporte");
    assert_eq!(ts(&doc["closed_at"]), api.clock_now());
    assert_eq!(doc["closing_unmet"], json!([]));

    // Kept: readable and listed.
    assert_eq!(api.incident(&folio).await, doc);
    let listed = api
        .get("/api/v1/incidents?state=dismissed", &api.helpdesk)
        .await;
    assert_eq!(listed.json["total"], 1);
    assert_eq!(listed.json["items"][0]["folio"], folio.as_str());

    // Nothing more can happen to it.
    api.advance(60);
    let attempts = [
        ("notify", api.helpdesk.as_str(), json!({"severity": "high"})),
        ("acknowledge", api.agency.as_str(), json!({})),
        ("banner", api.agency.as_str(), json!({"shown": true})),
        ("button", api.validator.as_str(), json!({"enabled": false})),
        (
            "resolution",
            api.agency.as_str(),
            json!({"summary": "Corregido"}),
        ),
        (
            "validation",
            api.validator.as_str(),
            json!({"passed": true}),
        ),
        (
            "severity",
            api.helpdesk.as_str(),
            json!({"severity": "low", "reason": "x"}),
        ),
        (
            "escalate",
            api.helpdesk.as_str(),
            json!({"reason": "Sin respuesta"}),
        ),
        ("close", api.helpdesk.as_str(), json!({})),
        (
            "dismiss",
            api.helpdesk.as_str(),
            json!({"reason": "Otra vez"}),
        ),
    ];
    for (action, token, body) in attempts {
        let a = act(&api, &folio, action, token, body).await;
        assert_refused_in(&a, "dismissed");
    }
    let form = put_form(&api, &folio, json!({"symptoms": "Error"})).await;
    assert_refused_in(&form, "dismissed");

    let after = api.incident(&folio).await;
    assert_eq!(after, doc, "refused actions change nothing");
    let events = api.events(&folio).await;
    assert_eq!(kinds(&events), ["reported", "dismissed"]);
    assert_eq!(events[1]["data"]["reason"], "Duplicado de otro reporte");
    assert_chained(&events);
}

// ---------------------------------------------------------------------------------------
// The closing rule and refused transitions
// ---------------------------------------------------------------------------------------

/// Tries to close and expects a 409 listing exactly `unmet`, equal to the document's
/// `closing_unmet`, with nothing changed.
async fn assert_close_refused(api: &Api, folio: &str, unmet: &[&str]) {
    let before = api.incident(folio).await;
    let a = act(api, folio, "close", &api.helpdesk, json!({})).await;
    a.assert_problem(StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(strings(&a.json["unmet"]), unmet, "unmet: {}", a.text);
    assert_eq!(
        before["closing_unmet"], a.json["unmet"],
        "the document says the same"
    );
    assert!(
        a.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no es posible cerrar")),
        "Spanish detail: {}",
        a.text
    );
    let after = api.incident(folio).await;
    assert_eq!(
        after["version"], before["version"],
        "a refused close changes nothing"
    );
    assert_ne!(after["state"], "closed");
}

async fn close_is_refused_with_unmet_conditions_until_the_closing_rule_holds(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    assert_close_refused(
        &api,
        &folio,
        &[
            "validation_passed",
            "banner_shown_or_exempted",
            "report_form_accepted",
        ],
    )
    .await;

    api.advance(60);
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    assert_close_refused(
        &api,
        &folio,
        &[
            "validation_passed",
            "button_enabled",
            "banner_shown_or_exempted",
            "report_form_accepted",
        ],
    )
    .await;

    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.step(&folio, "banner", &api.agency, json!({"shown": true}))
        .await;
    assert_close_refused(
        &api,
        &folio,
        &[
            "validation_passed",
            "button_enabled",
            "banner_removed",
            "report_form_accepted",
        ],
    )
    .await;

    api.advance(60);
    let resolved = api
        .step(
            &folio,
            "resolution",
            &api.agency,
            json!({"summary": "Corregido"}),
        )
        .await;
    api.advance(60);
    api.step(
        &folio,
        "validation",
        &api.validator,
        json!({"passed": true}),
    )
    .await;
    // Validated, but the banner is still shown.
    assert_close_refused(&api, &folio, &["banner_removed", "report_form_accepted"]).await;

    api.step(&folio, "banner", &api.agency, json!({"shown": false}))
        .await;
    // After validation, before the form is accepted.
    assert_close_refused(&api, &folio, &["report_form_accepted"]).await;
    let put = put_form(&api, &folio, complete_form(&resolved.json)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_close_refused(&api, &folio, &["report_form_accepted"]).await;

    // A validator switching the button off by hand blocks closing again.
    api.step(&folio, "button", &api.validator, json!({"enabled": false}))
        .await;
    api.step(
        &folio,
        "report-form/review",
        &api.helpdesk,
        json!({"complete": true}),
    )
    .await;
    assert_close_refused(&api, &folio, &["button_enabled"]).await;
    api.step(&folio, "button", &api.validator, json!({"enabled": true}))
        .await;

    let closed = api.step(&folio, "close", &api.helpdesk, json!({})).await;
    assert_eq!(closed.json["state"], "closed");
    assert_eq!(closed.json["closing_unmet"], json!([]));
    let again = act(&api, &folio, "close", &api.helpdesk, json!({})).await;
    assert_refused_in(&again, "closed");
}

/// A refused close is an `invalid_transition` like any other: the problem names the
/// incident's current state (API.md; `Problem.state` "for invalid_transition").
async fn close_refusal_names_the_current_state(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let a = act(&api, &folio, "close", &api.helpdesk, json!({})).await;
    a.assert_problem(StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(a.json["state"], "reported", "{}", a.text);
}

/// Each attempt is refused with 409 naming `state`, with a Spanish detail, and changes
/// nothing.
async fn assert_all_refused_in(
    api: &Api,
    folio: &str,
    state: &str,
    attempts: &[(&str, &str, Value)],
) {
    for (action, token, body) in attempts {
        let before = api.incident(folio).await;
        let a = act(api, folio, action, token, body.clone()).await;
        assert_refused_in(&a, state);
        let detail = a.json["detail"].as_str().unwrap_or("");
        assert!(
            detail.starts_with("no es posible"),
            "{action}: Spanish detail: {detail}"
        );
        let after = api.incident(folio).await;
        assert_eq!(
            after["version"], before["version"],
            "{action} changed nothing"
        );
    }
}

async fn refused_transition_names_the_current_state(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let (h, ag, v) = (
        api.helpdesk.as_str(),
        api.agency.as_str(),
        api.validator.as_str(),
    );

    assert_all_refused_in(
        &api,
        &folio,
        "reported",
        &[
            ("acknowledge", ag, json!({})),
            ("banner", ag, json!({"shown": true})),
            ("resolution", ag, json!({"summary": "Corregido"})),
            ("validation", v, json!({"passed": true})),
            ("severity", h, json!({"severity": "low", "reason": "Menor"})),
            ("report-form/review", h, json!({"complete": true})),
            ("button", v, json!({"enabled": true})),
        ],
    )
    .await;
    let form = put_form(&api, &folio, json!({"symptoms": "Error"})).await;
    assert_refused_in(&form, "reported");

    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "low"}))
        .await;
    assert_all_refused_in(
        &api,
        &folio,
        "awaiting_ack",
        &[
            ("notify", h, json!({"severity": "high"})),
            ("validation", v, json!({"passed": true})),
            ("button", v, json!({"enabled": false})),
            ("banner", ag, json!({"shown": false})),
        ],
    )
    .await;

    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    assert_all_refused_in(
        &api,
        &folio,
        "in_correction",
        &[
            ("acknowledge", ag, json!({})),
            (
                "validation",
                v,
                json!({"passed": false, "observations": ["x"]}),
            ),
            ("notify", h, json!({"severity": "high"})),
        ],
    )
    .await;
    let form = put_form(&api, &folio, json!({"symptoms": "Error"})).await;
    assert_refused_in(&form, "in_correction");

    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    assert_all_refused_in(
        &api,
        &folio,
        "awaiting_validation",
        &[
            ("resolution", ag, json!({"summary": "Otra vez"})),
            ("acknowledge", ag, json!({})),
            ("report-form/review", h, json!({"complete": false})),
        ],
    )
    .await;

    api.step(
        &folio,
        "validation",
        &api.validator,
        json!({"passed": true}),
    )
    .await;
    assert_all_refused_in(
        &api,
        &folio,
        "validated",
        &[
            ("acknowledge", ag, json!({})),
            ("resolution", ag, json!({"summary": "Otra vez"})),
            ("validation", v, json!({"passed": true})),
            ("button", v, json!({"enabled": true})),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------

/// Owned copies, to compare with `folios`.
fn owned(folios: &[&String]) -> Vec<String> {
    folios.iter().map(|f| (*f).clone()).collect()
}

fn folios(a: &Answer) -> Vec<String> {
    a.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", a.text))
        .iter()
        .map(|i| i["folio"].as_str().expect("folio").to_string())
        .collect()
}

async fn list_as(api: &Api, token: &str, query: &str) -> Answer {
    let a = api.get(&format!("/api/v1/incidents{query}"), token).await;
    assert_eq!(a.status, StatusCode::OK, "list {query}: {}", a.text);
    a
}

async fn list_filters_paginates_and_hides_other_agencies(url: String) {
    let api = Api::new(&url).await;
    // Oldest to newest: a reported, b notified high, c notified critical, d of the other
    // agency.
    let a = api.report().await;
    api.advance(10);
    let b = api.report().await;
    api.step(&b, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(10);
    let c = api.report().await;
    api.step(&c, "notify", &api.helpdesk, json!({"severity": "critical"}))
        .await;
    api.advance(10);
    let other = api
        .post(
            "/api/v1/incidents",
            &api.other_agency,
            json!({
                "procedure_ids": [api.other_procedure],
                "kind": "slow",
                "description": "Lento",
                "occurred_at": (api.clock_now() - SignedDuration::from_mins(1)).to_string(),
                "channel": "web"
            }),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let d = other.json["folio"].as_str().expect("folio").to_string();
    assert_eq!(other.json["agency_id"], api.other_agency_id);

    let all = list_as(&api, &api.helpdesk, "").await;
    assert_eq!(all.json["total"], 4);
    assert_eq!(all.json["page"], 1);
    assert_eq!(all.json["per_page"], 50);
    assert_eq!(folios(&all), owned(&[&d, &c, &b, &a]), "newest first");

    let reported = list_as(&api, &api.helpdesk, "?state=reported").await;
    assert_eq!(reported.json["total"], 2);
    assert_eq!(folios(&reported), owned(&[&d, &a]));
    let awaiting = list_as(&api, &api.helpdesk, "?state=awaiting_ack").await;
    assert_eq!(folios(&awaiting), owned(&[&c, &b]));
    let closed = list_as(&api, &api.helpdesk, "?state=closed").await;
    assert_eq!(closed.json["total"], 0);
    assert_eq!(closed.json["items"], json!([]));

    let critical = list_as(&api, &api.helpdesk, "?severity=critical").await;
    assert_eq!(folios(&critical), owned(&[&c]));
    assert_eq!(critical.json["total"], 1);
    let high = list_as(&api, &api.helpdesk, "?severity=high&state=awaiting_ack").await;
    assert_eq!(folios(&high), owned(&[&b]));

    let first_agency = list_as(
        &api,
        &api.helpdesk,
        &format!("?agency_id={}", api.agency_id),
    )
    .await;
    assert_eq!(folios(&first_agency), owned(&[&c, &b, &a]));
    let second_agency = list_as(
        &api,
        &api.helpdesk,
        &format!("?agency_id={}", api.other_agency_id),
    )
    .await;
    assert_eq!(folios(&second_agency), owned(&[&d]));

    // Nothing is breached yet; past the critical ack target (900 s) only c is.
    let none = list_as(&api, &api.helpdesk, "?breached=true").await;
    assert_eq!(none.json["total"], 0);
    api.advance(901);
    let breached = list_as(&api, &api.helpdesk, "?breached=true").await;
    assert_eq!(breached.json["total"], 1);
    assert_eq!(folios(&breached), owned(&[&c]));
    assert_clock(&breached.json["items"][0], "ack", 0, "breached", 900);
    let breached_high = list_as(&api, &api.helpdesk, "?breached=true&severity=high").await;
    assert_eq!(breached_high.json["total"], 0);
    api.advance(1800);
    let both = list_as(&api, &api.helpdesk, "?breached=true").await;
    assert_eq!(
        folios(&both),
        owned(&[&c, &b]),
        "b's 30 min ack target has passed too"
    );

    // Pagination.
    let p1 = list_as(&api, &api.helpdesk, "?per_page=3&page=1").await;
    assert_eq!(p1.json["total"], 4);
    assert_eq!(p1.json["page"], 1);
    assert_eq!(p1.json["per_page"], 3);
    assert_eq!(folios(&p1), owned(&[&d, &c, &b]));
    let p2 = list_as(&api, &api.helpdesk, "?per_page=3&page=2").await;
    assert_eq!(p2.json["total"], 4);
    assert_eq!(p2.json["page"], 2);
    assert_eq!(folios(&p2), owned(&[&a]));
    let p3 = list_as(&api, &api.helpdesk, "?per_page=3&page=3").await;
    assert_eq!(p3.json["total"], 4);
    assert_eq!(p3.json["items"], json!([]));
    let filtered_page = list_as(&api, &api.helpdesk, "?state=reported&per_page=1&page=2").await;
    assert_eq!(filtered_page.json["total"], 2);
    assert_eq!(folios(&filtered_page), owned(&[&a]));

    // Agencies see only their own incidents, whatever they ask for.
    let mine = list_as(&api, &api.agency, "").await;
    assert_eq!(mine.json["total"], 3);
    assert_eq!(folios(&mine), owned(&[&c, &b, &a]));
    let theirs = list_as(&api, &api.other_agency, "").await;
    assert_eq!(theirs.json["total"], 1);
    assert_eq!(folios(&theirs), owned(&[&d]));
    for query in [
        format!("?agency_id={}", api.agency_id),
        "?state=awaiting_ack".to_string(),
        "?breached=true".to_string(),
        "?severity=critical".to_string(),
    ] {
        let peek = list_as(&api, &api.other_agency, &query).await;
        assert_eq!(peek.json["total"], 0, "{query}: {}", peek.text);
        assert_eq!(peek.json["items"], json!([]), "{query}");
    }
    // Nor can they read them one by one.
    let peek = api
        .get(&format!("/api/v1/incidents/{a}"), &api.other_agency)
        .await;
    peek.assert_problem(StatusCode::NOT_FOUND, "not_found");
}

// ---------------------------------------------------------------------------------------
// The portal's public status
// ---------------------------------------------------------------------------------------

async fn public_status(api: &Api, homoclave: &str) -> Answer {
    let a = api
        .get(&format!("/api/v1/public/procedures/{homoclave}/status"), "")
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "status of {homoclave}: {}",
        a.text
    );
    assert_eq!(
        a.header("cache-control"),
        Some("public, max-age=30"),
        "public and cacheable"
    );
    a
}

fn assert_idle(status: &Value, homoclave: &str) {
    assert_eq!(
        status,
        &json!({
            "homoclave": homoclave,
            "button_enabled": true,
            "banner": {"shown": false, "message": null},
            "incident": null
        })
    );
}

async fn public_status_follows_the_incident_and_is_cacheable(url: String) {
    let api = Api::new(&url).await;
    let hc = api.procedure_homoclave.clone();
    assert_idle(&public_status(&api, &hc).await.json, &hc);
    // The key is read in any case.
    assert_idle(&public_status(&api, &hc.to_lowercase()).await.json, &hc);

    let folio = api.report().await;
    let reported_at = ts(&api.incident(&folio).await["reported_at"]);
    // A report not yet notified may still be a false alarm: it is not public.
    assert_idle(&public_status(&api, &hc).await.json, &hc);

    api.advance(60);
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["button_enabled"], false);
    assert_eq!(s["banner"]["shown"], false);
    assert_eq!(s["banner"]["message"], Value::Null);
    assert_eq!(s["incident"]["folio"], folio.as_str());
    assert_eq!(ts(&s["incident"]["since"]), reported_at);
    // The other agency's procedure is not affected.
    assert_idle(
        &public_status(&api, "OTRA-01-001").await.json,
        "OTRA-01-001",
    );

    api.step(
        &folio,
        "banner",
        &api.agency,
        json!({"shown": true, "message": "Trámite en mantenimiento, regrese en una hora"}),
    )
    .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["button_enabled"], false);
    assert_eq!(
        s["banner"],
        json!({"shown": true, "message": "Trámite en mantenimiento, regrese en una hora"})
    );

    api.advance(60);
    let resolved = api
        .step(
            &folio,
            "resolution",
            &api.agency,
            json!({"summary": "Corregido"}),
        )
        .await;
    api.advance(60);
    api.step(
        &folio,
        "validation",
        &api.validator,
        json!({"passed": true}),
    )
    .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["button_enabled"], true, "a passed validation enables it");
    assert_eq!(s["banner"]["shown"], true, "until the agency removes it");
    assert_eq!(s["incident"]["folio"], folio.as_str());

    api.step(&folio, "banner", &api.agency, json!({"shown": false}))
        .await;
    let put = put_form(&api, &folio, complete_form(&resolved.json)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    api.step(
        &folio,
        "report-form/review",
        &api.helpdesk,
        json!({"complete": true}),
    )
    .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["banner"]["shown"], false);
    assert_eq!(s["incident"]["folio"], folio.as_str(), "open until closed");
    api.step(&folio, "close", &api.helpdesk, json!({})).await;
    assert_idle(&public_status(&api, &hc).await.json, &hc);
}

/// PROTOCOL.md, "Closing rule", dismissal: after notification a dismissal restores the
/// portal and is mailed to the responsible and CEDN; before it, nobody outside the help
/// desk hears of it; once acknowledged, the incident can no longer be dismissed.
async fn dismissal_after_notification_is_mailed_to_the_responsible_and_cedn(url: String) {
    let api = Api::new(&url).await;
    let mails = |folio: String| {
        let api = &api;
        async move {
            let list = api.get("/api/v1/outbox?limit=500", &api.helpdesk).await;
            list.json
                .as_array()
                .expect("outbox")
                .iter()
                .filter(|m| m["folio"] == folio.as_str() && m["kind"] == "dismissed")
                .cloned()
                .collect::<Vec<Value>>()
        }
    };
    let early = api.report().await;
    api.step(
        &early,
        "dismiss",
        &api.helpdesk,
        json!({"reason": "Duplicado"}),
    )
    .await;
    assert!(
        mails(early).await.is_empty(),
        "a dismissed report is not mailed"
    );

    let notified = api.report().await;
    api.step(
        &notified,
        "notify",
        &api.helpdesk,
        json!({"severity": "high"}),
    )
    .await;
    let dismissed = api
        .step(
            &notified,
            "dismiss",
            &api.helpdesk,
            json!({"reason": "Falsa alarma del monitoreo"}),
        )
        .await;
    assert_eq!(dismissed.json["portal"]["button_enabled"], true);
    let sent = mails(notified).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["to"],
        json!(["responsable@sepru.gob.mx", "cedn@ugd.gob.mx"])
    );
    assert_eq!(sent[0]["cc"], json!(["mesa@ugd.gob.mx"]));

    let real = api.report().await;
    api.step(&real, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.step(&real, "acknowledge", &api.agency, json!({})).await;
    let refused = act(
        &api,
        &real,
        "dismiss",
        &api.helpdesk,
        json!({"reason": "Ya no"}),
    )
    .await;
    assert_refused_in(&refused, "in_correction");
}

/// PROTOCOL.md, "Portal state": only a `slow` incident may keep the portal button.
async fn only_a_slow_incident_may_keep_the_portal_button(url: String) {
    let api = Api::new(&url).await;
    let down = api.report().await;
    let a = act(
        &api,
        &down,
        "notify",
        &api.helpdesk,
        json!({"severity": "high", "disable_button": false}),
    )
    .await;
    a.assert_invalid_field("disable_button");
    let slow = api.report_kind("slow").await;
    let kept = api
        .step(
            &slow,
            "notify",
            &api.helpdesk,
            json!({"severity": "low", "disable_button": false}),
        )
        .await;
    assert_eq!(kept.json["portal"]["button_enabled"], true);
}

async fn public_banner_without_message_shows_the_default_notice(url: String) {
    let api = Api::new(&url).await;
    let hc = api.procedure_homoclave.clone();
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "low"}))
        .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["button_enabled"], false);
    api.step(&folio, "banner", &api.agency, json!({"shown": true}))
        .await;
    let s = public_status(&api, &hc).await.json;
    assert_eq!(s["banner"]["shown"], true);
    assert!(
        s["banner"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("falla")),
        "a Spanish default notice: {s}"
    );
    // A report dismissed before acknowledgment no longer counts, and the portal it had
    // changed is restored by the system, the cause recorded.
    let dismissed = api
        .step(
            &folio,
            "dismiss",
            &api.helpdesk,
            json!({"reason": "Falsa alarma"}),
        )
        .await;
    assert_eq!(dismissed.json["portal"]["button_enabled"], true);
    assert_eq!(dismissed.json["portal"]["banner_shown"], false);
    assert_idle(&public_status(&api, &hc).await.json, &hc);
    let events = api.events(&folio).await;
    let automatic: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["cause"] == "dismissal")
        .collect();
    assert_eq!(automatic.len(), 2, "button and banner restored: {events:?}");
    assert!(automatic.iter().all(|e| e["actor"]["type"] == "system"));
}

// ---------------------------------------------------------------------------------------
// Idempotency-Key
// ---------------------------------------------------------------------------------------

fn keyed(method: Method, path: &str, token: &str, key: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .expect("request")
}

fn report_body(api: &Api, description: &str) -> String {
    json!({
        "procedure_ids": [api.procedure],
        "kind": "intermittent",
        "description": description,
        "occurred_at": (api.clock_now() - SignedDuration::from_mins(3)).to_string(),
        "channel": "email"
    })
    .to_string()
}

async fn idempotent_report_is_replayed_byte_for_byte_and_created_once(url: String) {
    let api = Api::new(&url).await;
    let body = report_body(&api, "Falla intermitente");
    let send = || {
        api.send(keyed(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            "reporte-0001",
            &body,
        ))
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let folio = first.json["folio"].as_str().expect("folio").to_string();

    api.advance(30);
    let second = send().await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.text, first.text, "byte-identical answer");
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.header("content-type"), Some("application/json"));

    assert_eq!(api.total().await, 1, "one incident");
    assert_eq!(api.events(&folio).await.len(), 1, "one event");

    // The same key with another request is refused, and creates nothing.
    let other = report_body(&api, "Otra falla");
    let reused = api
        .send(keyed(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            "reporte-0001",
            &other,
        ))
        .await;
    reused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(api.total().await, 1);

    // A refused request does not use up its key: corrected, it goes through.
    let bad = report_body(&api, "Con error").replace("intermittent", "caido");
    let refused = api
        .send(keyed(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            "reporte-0002",
            &bad,
        ))
        .await;
    refused.assert_invalid_field("kind");
    let fixed = api
        .send(keyed(
            Method::POST,
            "/api/v1/incidents",
            &api.helpdesk,
            "reporte-0002",
            &report_body(&api, "Con error"),
        ))
        .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.text);
    assert_eq!(fixed.header("idempotent-replayed"), None);
    assert_eq!(api.total().await, 2);

    // Keys belong to their user: the agency's same key is a new request.
    let agency_first = api
        .send(keyed(
            Method::POST,
            "/api/v1/incidents",
            &api.agency,
            "reporte-0001",
            &other,
        ))
        .await;
    assert_eq!(
        agency_first.status,
        StatusCode::CREATED,
        "{}",
        agency_first.text
    );
    assert_ne!(agency_first.json["folio"], first.json["folio"]);
    assert_eq!(api.total().await, 3);
}

async fn idempotent_action_replays_its_first_answer_without_acting_again(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let path = format!("/api/v1/incidents/{folio}/notify");
    let body = r#"{"severity": "medium"}"#;
    let first = api
        .send(keyed(
            Method::POST,
            &path,
            &api.helpdesk,
            "notificar-1",
            body,
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json["state"], "awaiting_ack");
    let version = first.json["version"].clone();

    // Later (clocks' elapsed time would differ in a fresh rendering), the retry gets the
    // first answer itself, and nothing is notified twice.
    api.advance(120);
    let retry = api
        .send(keyed(
            Method::POST,
            &path,
            &api.helpdesk,
            "notificar-1",
            body,
        ))
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.text, first.text, "byte-identical answer");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let now = api.incident(&folio).await;
    assert_eq!(now["version"], version);
    assert_eq!(
        kinds(&api.events(&folio).await),
        ["reported", "notified", "button_set"]
    );

    // A retried PUT too.
    let resolved = api
        .send(keyed(
            Method::POST,
            &format!("/api/v1/incidents/{folio}/resolution"),
            &api.agency,
            "aviso-1",
            r#"{"summary": "Corregido"}"#,
        ))
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    let form = complete_form(&resolved.json).to_string();
    let form_path = format!("/api/v1/incidents/{folio}/report-form");
    let put1 = api
        .send(keyed(
            Method::PUT,
            &form_path,
            &api.agency,
            "formato-1",
            &form,
        ))
        .await;
    assert_eq!(put1.status, StatusCode::OK, "{}", put1.text);
    let put2 = api
        .send(keyed(
            Method::PUT,
            &form_path,
            &api.agency,
            "formato-1",
            &form,
        ))
        .await;
    assert_eq!(put2.text, put1.text);
    assert_eq!(put2.header("idempotent-replayed"), Some("true"));
    let count = api.events(&folio).await.len();
    assert_eq!(
        count as u64,
        put1.json["version"].as_u64().expect("version"),
        "the retry appended nothing"
    );

    // Same key, other body on an action: refused, nothing changes.
    let reused = api
        .send(keyed(
            Method::POST,
            &path,
            &api.helpdesk,
            "notificar-1",
            r#"{"severity": "low"}"#,
        ))
        .await;
    reused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(api.events(&folio).await.len(), count);
}

// ---------------------------------------------------------------------------------------
// Browser sign-in
// ---------------------------------------------------------------------------------------

const PASSWORD: &str = "contraseña-de-prueba";
const APP_HOST: &str = "incidencias.gob.mx";

async fn login(api: &Api, email: &str, password: &str) -> Answer {
    api.post(
        "/api/v1/login",
        "",
        json!({"email": email, "password": password}),
    )
    .await
}

/// The `name=value` pair of the session cookie a login answer sets.
fn session_cookie(a: &Answer) -> String {
    let set = a
        .header("set-cookie")
        .unwrap_or_else(|| panic!("Set-Cookie: {:?}", a.headers));
    assert!(set.starts_with("incidencias_sesion="), "{set}");
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "HttpOnly: {set}");
    assert!(attrs.contains(&"SameSite=Lax"), "SameSite: {set}");
    assert!(attrs.contains(&"Path=/"), "Path: {set}");
    let pair = attrs[0].to_string();
    assert!(
        pair.len() > "incidencias_sesion=".len() + 20,
        "a secret: {pair}"
    );
    pair
}

fn with_cookie(method: Method, path: &str, cookie: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::HOST, APP_HOST)
}

async fn session_cookie_signs_in_refuses_foreign_origins_and_ends_at_logout(url: String) {
    let api = Api::new(&url).await;
    let wrong = login(&api, "responsable@sepru.gob.mx", "no-es-la-contraseña").await;
    wrong.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(wrong.header("set-cookie"), None);

    // The domain is read in any case.
    let ok = login(&api, "responsable@SEPRU.gob.mx", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["email"], "responsable@sepru.gob.mx");
    assert_eq!(ok.json["role"], "agency");
    assert_eq!(ok.json.get("password_hash"), None);
    let cookie = session_cookie(&ok);

    let me = api
        .send(
            with_cookie(Method::GET, "/api/v1/me", &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["email"], "responsable@sepru.gob.mx");
    assert_eq!(me.json["agency_id"], api.agency_id);

    let body = report_body(&api, "Reportado desde el navegador");
    let post = |origin: Option<&str>, fetch_site: Option<&str>| {
        let mut req = with_cookie(Method::POST, "/api/v1/incidents", &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        if let Some(s) = fetch_site {
            req = req.header("sec-fetch-site", s);
        }
        api.send(req.body(Body::from(body.clone())).expect("request"))
    };
    // A foreign page riding on the cookie is refused, and nothing is created.
    let evil = post(Some("https://evil.example"), None).await;
    evil.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let cross = post(None, Some("cross-site")).await;
    cross.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.total().await, 0);
    // Our own pages may.
    let own = post(Some(&format!("https://{APP_HOST}")), None).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    assert_eq!(api.total().await, 1);

    let out = api
        .send(
            with_cookie(Method::POST, "/api/v1/logout", &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let cleared = out.header("set-cookie").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let after = api
        .send(
            with_cookie(Method::GET, "/api/v1/me", &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    after.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn repeated_wrong_passwords_make_logins_wait(url: String) {
    let api = Api::new(&url).await;
    let email = "cedn@ugd.gob.mx";
    for n in 1..=3 {
        let a = login(&api, email, "incorrecta-123").await;
        a.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(
            a.header("retry-after"),
            None,
            "attempt {n} is not throttled"
        );
    }
    // Even the right password must wait now.
    let blocked = login(&api, email, PASSWORD).await;
    blocked.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let wait: i64 = blocked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(wait >= 1, "Retry-After {wait}");
    assert!(
        blocked.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("espere")),
        "Spanish detail: {}",
        blocked.text
    );
    // Another address is not affected.
    let other = login(&api, "mesa@ugd.gob.mx", PASSWORD).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);

    api.advance(wait);
    let ok = login(&api, email, PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "after the wait: {}", ok.text);
    assert_eq!(ok.json["role"], "validator");
    session_cookie(&ok);
    // A success clears the count: one new failure does not throttle.
    let again = login(&api, email, "incorrecta-123").await;
    again.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let ok = login(&api, email, PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

on_both_backends!(
    critical_incident_runs_all_seven_steps_to_closed,
    high_incident_runs_all_seven_steps_to_closed,
    medium_incident_runs_all_seven_steps_to_closed,
    low_incident_runs_all_seven_steps_to_closed,
    failed_validation_returns_to_correction_and_opens_a_second_round,
    incomplete_form_is_refused_on_delivery_and_requested_again_by_the_help_desk,
    dismissal_after_notification_is_mailed_to_the_responsible_and_cedn,
    only_a_slow_incident_may_keep_the_portal_button,
    severity_change_retargets_running_clocks_from_their_starts,
    dismissed_report_is_kept_and_refuses_every_further_action,
    close_is_refused_with_unmet_conditions_until_the_closing_rule_holds,
    refused_transition_names_the_current_state,
    list_filters_paginates_and_hides_other_agencies,
    public_status_follows_the_incident_and_is_cacheable,
    public_banner_without_message_shows_the_default_notice,
    idempotent_report_is_replayed_byte_for_byte_and_created_once,
    idempotent_action_replays_its_first_answer_without_acting_again,
    session_cookie_signs_in_refuses_foreign_origins_and_ends_at_logout,
    repeated_wrong_passwords_make_logins_wait,
);

on_both_backends!(close_refusal_names_the_current_state);

/// The served OpenAPI document.
async fn openapi(api: &Api) -> Value {
    let doc = api.get("/api/v1/openapi.json", "").await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    doc.json
}

/// The parameters of one operation, by name.
fn parameters<'a>(doc: &'a Value, method: &str, path: &str) -> Vec<&'a Value> {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .map(|ps| ps.iter().collect())
        .unwrap_or_default()
}

/// What schemathesis checks (scripts/api-conformance), held here too: problem documents
/// under their own media type, the shared refusals documented on every operation that can
/// give them, and the accepted names of text fields taken from the core's lists.
async fn the_openapi_document_says_what_the_shared_code_answers(url: String) {
    use incidencias::http::openapi::{FOLIO_PATTERN, IDEMPOTENCY_KEY_PATTERN};
    let api = Api::new(&url).await;
    let doc = openapi(&api).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            operations += 1;
            let what = format!("{method} {path}");
            for (status, r) in responses {
                let problem_as_json = r["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("/Problem"));
                assert!(
                    !problem_as_json,
                    "{what} {status}: a problem is application/problem+json"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| {
                !s.is_empty()
                    && s.iter()
                        .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            });
            if secured {
                for status in ["401", "403"] {
                    assert!(
                        responses[status]["content"]["application/problem+json"].is_object(),
                        "{what} documents {status}"
                    );
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" && p["name"] == "folio" {
                    assert_eq!(p["schema"]["pattern"], FOLIO_PATTERN, "{what}");
                    assert!(responses.contains_key("404"), "{what} documents 404");
                }
                if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                    assert_eq!(p["schema"]["pattern"], IDEMPOTENCY_KEY_PATTERN, "{what}");
                    assert_eq!(p["schema"]["maxLength"], 200, "{what}");
                }
            }
        }
    }
    assert!(operations > 30, "{operations} operations");
    let body = &doc["components"]["schemas"]["NewIncidentBody"]["properties"];
    let kinds: Vec<&str> = incidencias_core::IncidentKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(body["kind"]["enum"], json!(kinds));
    assert_eq!(body["occurred_at"]["format"], "date-time");
    let page = parameters(&doc, "get", "/api/v1/incidents")
        .into_iter()
        .find(|p| p["name"] == "page")
        .expect("page");
    assert_eq!(page["schema"]["maximum"], u32::MAX as u64, "{page}");
}

async fn list_filters_are_optional_query_parameters_in_the_openapi_document(url: String) {
    let api = Api::new(&url).await;
    let doc = openapi(&api).await;
    let params = parameters(&doc, "get", "/api/v1/incidents");
    for name in [
        "state",
        "agency_id",
        "severity",
        "breached",
        "page",
        "per_page",
    ] {
        let p = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is documented: {params:?}"));
        assert_eq!(p["in"], "query", "{name}: {p}");
        assert_ne!(p["required"], true, "{name} is optional: {p}");
    }
}

async fn idempotency_key_is_documented_on_every_write_that_honours_it(url: String) {
    let api = Api::new(&url).await;
    let doc = openapi(&api).await;
    let incident = "/api/v1/incidents/{folio}";
    let mut writes = vec![
        ("post", "/api/v1/incidents".to_string()),
        ("put", format!("{incident}/report-form")),
        ("post", "/api/v1/agencies".to_string()),
        ("post", "/api/v1/users".to_string()),
        ("post", "/api/v1/procedures".to_string()),
        ("post", "/api/v1/slo-policies".to_string()),
    ];
    for action in [
        "notify",
        "acknowledge",
        "banner",
        "banner-exemption",
        "button",
        "resolution",
        "validation",
        "report-form/review",
        "escalate",
        "severity",
        "close",
        "dismiss",
    ] {
        writes.push(("post", format!("{incident}/{action}")));
    }
    for (method, path) in &writes {
        let params = parameters(&doc, method, path);
        let key = params
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{method} {path} documents Idempotency-Key: {params:?}"));
        assert_eq!(key["in"], "header", "{method} {path}: {key}");
        assert_ne!(key["required"], true, "{method} {path}: optional");
    }
}

async fn validation_rounds_is_documented_as_the_rounds_opened(url: String) {
    let api = Api::new(&url).await;
    let doc = openapi(&api).await;
    let field = &doc["components"]["schemas"]["IncidentDoc"]["properties"]["validation_rounds"];
    let text = field["description"].as_str().unwrap_or_default();
    assert!(
        text.contains("rounds opened") && text.contains("awaiting a verdict included"),
        "validation_rounds description: {field}"
    );
}

/// Every key of `doc` ending in `_at` is an RFC 3339 instant in UTC (or null), and no
/// key names epoch milliseconds.
fn assert_rfc3339_instants(doc: &Value, what: &str) {
    let object = doc
        .as_object()
        .unwrap_or_else(|| panic!("{what}: an object: {doc}"));
    for (key, value) in object {
        assert!(
            !key.ends_with("_ms"),
            "{what}: {key} is epoch milliseconds: {doc}"
        );
        if key.ends_with("_at") && !value.is_null() {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{what}.{key}: {value}"));
            assert!(
                text.ends_with('Z') && text.parse::<Timestamp>().is_ok(),
                "{what}.{key} is RFC 3339 in UTC: {text}"
            );
        }
    }
}

async fn every_instant_in_the_mail_documents_is_rfc3339(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let outbox = api.get("/api/v1/outbox", &api.helpdesk).await;
    assert_eq!(outbox.status, StatusCode::OK, "{}", outbox.text);
    let rows = outbox.json.as_array().expect("a list");
    assert!(!rows.is_empty(), "the notification is queued");
    for row in rows {
        assert_rfc3339_instants(row, "outbox");
        for key in ["created_at", "next_attempt_at"] {
            assert_eq!(
                row[key].as_str().map(|t| t.parse::<Timestamp>().ok()),
                Some(Some(api.clock_now())),
                "{key}: {row}"
            );
        }
    }

    let raw = "From: alguien@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\nSubject: Consulta\r\n\
               Message-ID: <consulta@ejemplo.com>\r\n\r\nHola.\r\n";
    let delivered = api
        .raw(
            Method::POST,
            "/api/v1/inbound-email",
            &api.helpdesk,
            Some("message/rfc822"),
            raw,
        )
        .await;
    assert_eq!(delivered.status, StatusCode::ACCEPTED, "{}", delivered.text);
    let received = api.get("/api/v1/inbound-email", &api.helpdesk).await;
    let rows = received.json.as_array().expect("a list");
    assert_eq!(rows.len(), 1, "{}", received.text);
    assert_rfc3339_instants(&rows[0], "inbound-email");
    assert!(rows[0]["received_at"].is_string(), "{}", received.text);

    let doc = openapi(&api).await;
    for (schema, field) in [
        ("OutboxDoc", "created_at"),
        ("OutboxDoc", "next_attempt_at"),
        ("OutboxDoc", "sent_at"),
        ("ReceivedDoc", "received_at"),
    ] {
        let property = &doc["components"]["schemas"][schema]["properties"][field];
        assert_eq!(
            property["format"], "date-time",
            "{schema}.{field}: {property}"
        );
    }
}

on_both_backends!(
    list_filters_are_optional_query_parameters_in_the_openapi_document,
    the_openapi_document_says_what_the_shared_code_answers,
    idempotency_key_is_documented_on_every_write_that_honours_it,
    validation_rounds_is_documented_as_the_rounds_opened,
    every_instant_in_the_mail_documents_is_rfc3339,
);
