//! Received email acts only when its sender is vouched for (issue 16): by the trusted
//! receiving server's `Authentication-Results` (DMARC, or SPF and DKIM, for the domain of
//! `From`), or by the signed Message-ID of the message it answers, sent to that sender.
//! Tried as an attacker would, on both backends: a forged reply naming the predictable
//! Message-ID of the step-2 email with "Ya quedó resuelto", a forged new report from an
//! agency address, a DMARC failure, a forged `Authentication-Results` below the trusted
//! one, a forged or borrowed mark.

mod common;

use std::sync::Arc;

use common::api::{Api, MX, authenticated};
use incidencias::service::{InboundOutcome, Service};
use jiff::SignedDuration;
use serde_json::{Value, json};

/// The seeded catalogue with one incident notified (awaiting acknowledgment).
async fn notified(url: &str) -> (Api, String) {
    let api = Api::new(url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(60);
    (api, folio)
}

/// A reply from `from` to the step-2 email of `folio`, naming `reference`, saying `text`.
fn reply(from: &str, folio: &str, reference: &str, text: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Mesa de ayuda <mesa@incidencias.gob.mx>\r\n\
         Subject: RE: [{folio}] Notificacion de incidencia\r\n\
         Message-ID: <{}@atacante.example>\r\n\
         In-Reply-To: {reference}\r\nReferences: {reference}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        text.len()
    )
    .into_bytes()
}

/// The predictable Message-ID of the step-2 email: the folio, the event, the template.
fn predictable(folio: &str) -> String {
    format!("<{folio}.3.notification.0@incidencias.gob.mx>")
}

/// What the outbox queued for `folio`, by kind.
async fn queued_kinds(api: &Api, folio: &str) -> Vec<String> {
    api.store
        .outbox_of(folio)
        .await
        .expect("outbox")
        .into_iter()
        .map(|m| m.kind)
        .collect()
}

async fn state(api: &Api, folio: &str) -> Value {
    api.incident(folio).await["state"].clone()
}

fn said(r: &InboundOutcome) -> (&str, Option<&str>) {
    (r.outcome.as_str(), r.reason.as_deref())
}

/// With the trusted server configured: a reply that did not pass through it (no header),
/// naming the predictable Message-ID and saying the failure is fixed, is only recorded:
/// no resolution notice, no validation request to CEDN. A forged new report from an
/// agency address opens nothing. The same reply vouched for by the server acts.
async fn forged_replies_and_reports_never_act(url: String) {
    let (api, folio) = notified(&url).await;
    let before = queued_kinds(&api, &folio).await;
    let forged = reply(
        "Responsable <responsable@sepru.gob.mx>",
        &folio,
        &predictable(&folio),
        "Ya quedó resuelto.",
    );
    let r = api.service.ingest(&forged).await.expect("ingested");
    assert_eq!(r.outcome.as_str(), "recorded", "{r:?}");
    assert!(
        r.reason.as_deref().is_some_and(|w| w.contains("no actúa")),
        "the reason says it did not act: {r:?}"
    );
    assert_eq!(state(&api, &folio).await, "awaiting_ack");
    assert_eq!(
        queued_kinds(&api, &folio).await,
        before,
        "no resolution notice and no validation request were queued"
    );

    let total = api.total().await;
    let report = format!(
        "From: Responsable <responsable@sepru.gob.mx>\r\nTo: mesa@incidencias.gob.mx\r\n\
         Subject: Falla en {}\r\nMessage-ID: <reporte-falso@atacante.example>\r\n\r\n\
         El trámite {} no carga desde la mañana.\r\n",
        api.procedure_homoclave, api.procedure_homoclave
    )
    .into_bytes();
    let r = api.service.ingest(&report).await.expect("ingested");
    assert_eq!(r.outcome.as_str(), "triage", "{r:?}");
    assert_eq!(api.total().await, total, "no incident was opened");

    // The genuine article: the trusted server vouches for the sender's domain.
    let genuine = reply(
        "Responsable <responsable@sepru.gob.mx>",
        &folio,
        &predictable(&folio),
        "Enterado.",
    );
    let r = api
        .service
        .ingest(&authenticated(&genuine))
        .await
        .expect("ingested");
    assert_eq!(said(&r), ("acknowledged", None));
    assert_eq!(state(&api, &folio).await, "in_correction");
    let r = api
        .service
        .ingest(&authenticated(&report))
        .await
        .expect("ingested");
    assert_eq!(r.outcome.as_str(), "new_incident", "{r:?}");
    assert_eq!(api.total().await, total + 1);
}

/// The trusted server says DMARC failed: the message goes to triage with that reason and
/// never acts, even with a genuine mark; a forged header the sender put below the
/// server's (naming the trusted server, saying pass) changes nothing; a header from any
/// other server is not believed.
async fn a_failed_check_goes_to_triage_whatever_else_the_message_says(url: String) {
    let (api, folio) = notified(&url).await;
    let forged = reply(
        "Responsable <responsable@sepru.gob.mx>",
        &folio,
        &predictable(&folio),
        "Ya quedó resuelto.",
    );
    let with = |headers: &str| {
        let mut m = headers.as_bytes().to_vec();
        m.extend_from_slice(&forged);
        m
    };
    let failed = with(&format!(
        "Authentication-Results: {MX}; spf=fail smtp.mailfrom=sepru.gob.mx;\r\n \
         dkim=none; dmarc=fail (p=reject) header.from=sepru.gob.mx\r\n\
         Received: from atacante.example by {MX}\r\n\
         Authentication-Results: {MX}; dmarc=pass header.from=sepru.gob.mx\r\n"
    ));
    let r = api.service.ingest(&failed).await.expect("ingested");
    assert_eq!(r.outcome.as_str(), "triage", "{r:?}");
    assert_eq!(r.folio.as_deref(), Some(folio.as_str()));
    assert!(
        r.reason
            .as_deref()
            .is_some_and(|w| w.contains("DMARC «fail» para sepru.gob.mx")),
        "the reason names the failed check: {r:?}"
    );
    assert_eq!(state(&api, &folio).await, "awaiting_ack");
    let queue = api
        .get("/api/v1/inbound-email?outcome=triage", &api.helpdesk)
        .await;
    assert!(
        queue.text.contains("DMARC"),
        "the help desk sees why: {}",
        queue.text
    );

    // Only the topmost header counts: another server's, or one lower down, never does.
    let elsewhere = with(
        "Authentication-Results: mx.atacante.example; dmarc=pass header.from=sepru.gob.mx\r\n",
    );
    let r = api.service.ingest(&elsewhere).await.expect("ingested");
    assert_eq!(r.outcome.as_str(), "recorded", "{r:?}");
    assert_eq!(state(&api, &folio).await, "awaiting_ack");
    let spf_only = with(&format!(
        "Authentication-Results: {MX}; spf=pass smtp.mailfrom=sepru.gob.mx\r\n"
    ));
    let r = api.service.ingest(&spf_only).await.expect("ingested");
    assert_eq!(
        r.outcome.as_str(),
        "recorded",
        "SPF alone vouches for nothing: {r:?}"
    );
    assert_eq!(state(&api, &folio).await, "awaiting_ack");
}

/// Without a trusted server: a reply acts only when it names the signed Message-ID of the
/// message it answers and comes from one of that message's recipients; the predictable
/// Message-ID, a forged mark, or a genuine mark from someone the message was not sent to
/// only record.
async fn without_a_trusted_server_only_the_mark_of_our_message_acts(url: String) {
    let (api, folio) = notified(&url).await;
    let plain = Service::new(api.store.clone(), Arc::new(api.clock.clone()));
    // Sent in order per incident: the messages before the step-2 email go out first.
    let lease = api.clock_now() + SignedDuration::from_mins(5);
    let mut step2 = None;
    for _ in 0..10 {
        let claimed = plain
            .claim_mail("prueba", lease, 100, "http://127.0.0.1")
            .await
            .expect("claimed");
        step2 = claimed
            .iter()
            .find(|m| m.message_id.contains(".notification."))
            .cloned();
        for m in &claimed {
            plain.mail_sent(&[m.id]).await.expect("sent");
        }
        if step2.is_some() || claimed.is_empty() {
            break;
        }
    }
    let step2 = step2.expect("the step-2 email was queued");
    let sent_id = step2.message_id.clone();
    assert_ne!(sent_id, predictable(&folio), "sent with a mark: {sent_id}");
    assert!(
        step2
            .to
            .iter()
            .any(|t| t.contains("responsable@sepru.gob.mx")),
        "{:?}",
        step2.to
    );

    // Vouched for by nobody: the predictable id.
    let r = plain
        .ingest(&reply(
            "responsable@sepru.gob.mx",
            &folio,
            &predictable(&folio),
            "Enterado.",
        ))
        .await
        .expect("ingested");
    assert_eq!(r.outcome.as_str(), "recorded", "{r:?}");
    // A mark that is not ours.
    let forged_mark = sent_id.replacen(".notification.0.", ".notification.0.f", 1);
    let r = plain
        .ingest(&reply(
            "responsable@sepru.gob.mx",
            &folio,
            &forged_mark,
            "Enterado",
        ))
        .await
        .expect("ingested");
    assert_eq!(r.outcome.as_str(), "recorded", "{r:?}");
    // Our mark, from an agency user the message was not sent to.
    let r = plain
        .ingest(&reply(
            "director@sepru.gob.mx",
            &folio,
            &sent_id,
            "Enterado, gracias",
        ))
        .await
        .expect("ingested");
    assert_eq!(r.outcome.as_str(), "recorded", "{r:?}");
    assert_eq!(
        state(&api, &folio).await,
        "awaiting_ack",
        "nothing acted yet"
    );
    // A new report by email waits for the help desk.
    let total = api.total().await;
    let report = format!(
        "From: responsable@sepru.gob.mx\r\nTo: mesa@incidencias.gob.mx\r\n\
         Subject: Falla en {}\r\n\r\nNo carga.\r\n",
        api.procedure_homoclave
    );
    let r = plain.ingest(report.as_bytes()).await.expect("ingested");
    assert_eq!(r.outcome.as_str(), "triage", "{r:?}");
    assert_eq!(api.total().await, total);

    // The recipient answering the message it received: acts.
    let r = plain
        .ingest(&reply(
            "Responsable <responsable@sepru.gob.mx>",
            &folio,
            &sent_id,
            "Enterado.",
        ))
        .await
        .expect("ingested");
    assert_eq!(said(&r), ("acknowledged", None));
    assert_eq!(state(&api, &folio).await, "in_correction");
}

on_both_backends!(
    forged_replies_and_reports_never_act,
    a_failed_check_goes_to_triage_whatever_else_the_message_says,
    without_a_trusted_server_only_the_mark_of_our_message_acts,
);
