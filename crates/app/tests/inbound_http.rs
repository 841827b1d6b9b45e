//! Received email through the MTA-pipe endpoint, on both backends: a reply to the step-2
//! email acknowledges; a 25 MB message is refused with a clear problem and changes nothing.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::Api;
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

async fn a_reply_to_the_step_2_email_acknowledges_and_a_huge_message_is_refused(url: String) {
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
    let ok = deliver(&api, reply.into_bytes()).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    assert_eq!(ok.json["outcome"], "acknowledged");
    assert_eq!(ok.json["folio"], folio.as_str());
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    assert_eq!(doc.json["state"], "in_correction");
}

on_both_backends!(a_reply_to_the_step_2_email_acknowledges_and_a_huge_message_is_refused);
