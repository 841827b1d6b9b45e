//! Received email through the MTA-pipe endpoint, on both backends: a reply to the step-2
//! email acknowledges; a 25 MB message is refused with a clear problem and changes nothing;
//! the help desk lists what was received (the triage queue), page by page; an MTA retry of
//! the same message acts once.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::{Api, authenticated};
use serde_json::json;

async fn deliver(api: &Api, raw: Vec<u8>) -> common::api::Answer {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/inbound-email")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.helpdesk))
        .header(header::CONTENT_TYPE, "message/rfc822")
        .body(Body::from(raw))
        .expect("request");
    api.send(req).await
}

async fn a_reply_to_the_step_2_email_acknowledges_records_how_and_a_huge_message_is_refused(
    url: String,
) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let huge = {
        let mut m =
            b"From: responsable@sepru.gob.mx\r\nTo: mesa@ugd.gob.mx\r\nSubject: Anexos\r\n\r\n"
                .to_vec();
        m.extend(std::iter::repeat_n(b'A', 25 * 1024 * 1024));
        m
    };
    let refused = deliver(&api, huge).await;
    refused.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    assert_eq!(doc.json["state"], "awaiting_ack", "nothing changed");

    let reply = format!(
        "From: Responsable <responsable@sepru.gob.mx>\r\n\
         To: Mesa de ayuda <mesa@incidencias.gob.mx>\r\n\
         Subject: RE: [{folio}] =?UTF-8?B?Tm90aWZpY2FjacOzbg==?=\r\n\
         Message-ID: <respuesta-1@sepru.gob.mx>\r\n\
         In-Reply-To: <{folio}.3.notification.0@incidencias.gob.mx>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Enterado, ya trabajamos en la correcci\u{f3}n.\r\n\r\n\
         El jue, 27 nov 2026 a las 9:05, Mesa de ayuda escribi\u{f3}:\r\n\
         > Se le notifica formalmente la incidencia; cuando quede corregido avise.\r\n"
    );
    let ok = deliver(&api, authenticated(reply.as_bytes())).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    assert_eq!(ok.json["outcome"], "acknowledged");
    assert_eq!(ok.json["folio"], folio.as_str());
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    assert_eq!(doc.json["state"], "in_correction");

    // The record says how each action arrived, and who took it by name; the reply is on
    // the incident's own list of received mail.
    let events = api.events(&folio).await;
    let notified = events
        .iter()
        .find(|e| e["kind"] == "notified")
        .expect("notified");
    assert_eq!(notified["via"], json!({"channel": "api"}));
    assert_eq!(notified["actor_name"], "Mesa");
    let acknowledged = events
        .iter()
        .find(|e| e["kind"] == "acknowledged")
        .expect("acknowledged");
    assert_eq!(acknowledged["via"]["channel"], "email");
    assert_eq!(acknowledged["actor_name"], "Responsable");
    let messages = api
        .get(&format!("/api/v1/incidents/{folio}/messages"), &api.agency)
        .await;
    assert_eq!(messages.status, StatusCode::OK, "{}", messages.text);
    let list = messages.json.as_array().expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["outcome"], "acknowledged");
    assert_eq!(list[0]["message_id"], "respuesta-1@sepru.gob.mx");
    assert_eq!(
        acknowledged["via"]["message_sha256"].as_str().map(str::len),
        Some(64),
        "the event names the message by its hash"
    );
}

fn unknown_sender(n: usize) -> Vec<u8> {
    format!(
        "From: alguien{n}@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\nSubject: Consulta {n}\r\n\
         Message-ID: <consulta-{n}@ejemplo.com>\r\n\r\n¿Cómo hago el trámite?\r\n"
    )
    .into_bytes()
}

async fn received_mail_is_listed_for_the_help_desk_and_a_redelivery_acts_once(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let reply = format!(
        "From: responsable@sepru.gob.mx\r\nTo: mesa@ugd.gob.mx\r\nSubject: RE: [{folio}]\r\n\
         Message-ID: <r-1@sepru.gob.mx>\r\n\
         In-Reply-To: <{folio}.3.notification.0@incidencias.gob.mx>\r\n\r\nEnterado.\r\n"
    )
    .into_bytes();
    let reply = authenticated(&reply);
    let first = deliver(&api, reply.clone()).await;
    assert_eq!(first.json["outcome"], "acknowledged", "{}", first.text);
    let version = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await
        .json["version"]
        .clone();
    // The MTA retries the same delivery: the same answer, nothing acts again.
    let again = deliver(&api, reply).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json["outcome"], "acknowledged");
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    assert_eq!(doc.json["version"], version, "acted once");

    for n in 0..3 {
        let r = deliver(&api, unknown_sender(n)).await;
        assert_eq!(r.json["outcome"], "triage", "{}", r.text);
    }
    let all = api.get("/api/v1/inbound-email", &api.helpdesk).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let all = all.json.as_array().expect("a list").clone();
    assert_eq!(all.len(), 4, "one row per distinct message: {all:?}");
    let triage = api
        .get(
            "/api/v1/inbound-email?outcome=triage&limit=2",
            &api.helpdesk,
        )
        .await
        .json;
    let page: Vec<&str> = triage
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(page, ["Consulta 2", "Consulta 1"], "newest first");
    assert_eq!(
        triage[0]["reason"],
        "sin folio y de un remitente desconocido"
    );
    assert_eq!(triage[0]["sender"], "alguien2@ejemplo.com");
    let last = triage[1]["id"].as_i64().expect("id");
    let next = api
        .get(
            &format!("/api/v1/inbound-email?outcome=triage&before={last}"),
            &api.helpdesk,
        )
        .await
        .json;
    assert_eq!(next.as_array().map(Vec::len), Some(1));
    assert_eq!(next[0]["subject"], "Consulta 0");
    let bad = api
        .get("/api/v1/inbound-email?outcome=spam&limit=0", &api.helpdesk)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(
        bad.text.contains("debe estar entre 1 y 500"),
        "{}",
        bad.text
    );
    assert!(bad.text.contains("triage"), "{}", bad.text);
}

/// A report by email starts with the message's date as an unconfirmed guess of when the
/// failure began; the help desk corrects it when notifying, with a reason, and the record
/// keeps both.
async fn an_emailed_report_begins_at_the_messages_date_until_the_help_desk_corrects_it(
    url: String,
) {
    let api = Api::new(&url).await;
    let raw = "From: Responsable <responsable@sepru.gob.mx>\r\n\
               To: Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>\r\n\
               Subject: Falla en el tramite SEPRU-01-001\r\n\
               Date: Fri, 27 Nov 2026 13:00:00 +0000\r\n\
               Message-ID: <falla.1@sepru.gob.mx>\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\
               \r\n\
               El tramite SEPRU-01-001 no permite concluir la solicitud.\r\n";
    let taken = deliver(&api, authenticated(raw.as_bytes())).await;
    assert_eq!(taken.status, StatusCode::ACCEPTED, "{}", taken.text);
    assert_eq!(taken.json["outcome"], "new_incident");
    let folio = taken.json["folio"].as_str().expect("folio").to_string();
    let doc = api.incident(&folio).await;
    assert_eq!(doc["occurred_at"], "2026-11-27T13:00:00Z");
    assert_eq!(doc["occurred_at_confirmed"], false);

    let no_reason = api
        .post(
            &format!("/api/v1/incidents/{folio}/notify"),
            &api.helpdesk,
            json!({"severity": "high", "occurred_at": "2026-11-27T12:30:00Z"}),
        )
        .await;
    no_reason.assert_invalid_field("occurred_at_reason");
    let notified = api
        .step(
            &folio,
            "notify",
            &api.helpdesk,
            json!({"severity": "high", "occurred_at": "2026-11-27T12:30:00Z",
                   "occurred_at_reason": "El monitoreo registra la caída a las 6:30"}),
        )
        .await;
    assert_eq!(notified.json["occurred_at"], "2026-11-27T12:30:00Z");
    assert_eq!(notified.json["occurred_at_confirmed"], true);
    let events = api.events(&folio).await;
    let corrected = events
        .iter()
        .find(|e| e["kind"] == "occurred_at_corrected")
        .expect("the correction is an event");
    assert_eq!(corrected["data"]["previous"], "2026-11-27T13:00:00Z");
    assert_eq!(
        corrected["data"]["reason"],
        "El monitoreo registra la caída a las 6:30"
    );
}

on_both_backends!(
    an_emailed_report_begins_at_the_messages_date_until_the_help_desk_corrects_it,
    a_reply_to_the_step_2_email_acknowledges_records_how_and_a_huge_message_is_refused,
    received_mail_is_listed_for_the_help_desk_and_a_redelivery_acts_once,
);
