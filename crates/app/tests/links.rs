//! One-click links in emails, on both backends: GET only shows a confirmation page; the
//! button acts once, as the recipient; forged, expired, reused and other-recipient links
//! are refused with a Spanish page and change nothing; a link whose action was already
//! recorded says so on opening, without a button.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::Api;
use incidencias::links::LinkAction;
use serde_json::json;

/// The ack and resolution tokens of the notification email of `folio`.
async fn tokens(api: &Api, folio: &str) -> (String, String) {
    let rows = api.store.list_outbox(None, 100).await.expect("outbox");
    let n = rows
        .iter()
        .find(|r| r.kind == "notification" && r.folio.as_deref() == Some(folio))
        .expect("notification queued");
    (
        n.payload["ack_link"]
            .as_str()
            .expect("ack link")
            .to_string(),
        n.payload["resolution_link"]
            .as_str()
            .expect("resolution link")
            .to_string(),
    )
}

async fn open(api: &Api, token: &str) -> common::api::Answer {
    api.call(Method::GET, &format!("/acciones/{token}"), "", None)
        .await
}

async fn press(api: &Api, token: &str, form: &str) -> common::api::Answer {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/acciones/{token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request");
    api.send(req).await
}

async fn version(api: &Api, folio: &str) -> (String, u64) {
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    (
        doc.json["state"].as_str().expect("state").to_string(),
        doc.json["version"].as_u64().expect("version"),
    )
}

async fn opening_shows_a_page_and_only_the_button_acts_once(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let (ack, resolution) = tokens(&api, &folio).await;
    let before = version(&api, &folio).await;
    let page = open(&api, &ack).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Confirmar de enterado") && page.text.contains(&folio));
    assert!(page.text.contains("lang=\"es-MX\""));
    assert_eq!(version(&api, &folio).await, before, "GET never acts");

    let done = press(&api, &ack, "").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("Acción registrada"));
    assert_eq!(version(&api, &folio).await.0, "in_correction");
    let events = api
        .get(&format!("/api/v1/incidents/{folio}/events"), &api.helpdesk)
        .await;
    let actor = &events
        .json
        .as_array()
        .expect("events")
        .last()
        .expect("event")["actor"];
    let responsible = api
        .users
        .iter()
        .find(|u| u.email.as_str() == "responsable@sepru.gob.mx")
        .expect("responsible");
    assert_eq!(actor["id"], responsible.id, "acted as the recipient");
    let last = events
        .json
        .as_array()
        .and_then(|e| e.last())
        .expect("event");
    assert_eq!(
        last["via"],
        serde_json::json!({"channel": "link"}),
        "the record says the action came by one-click link"
    );

    let again = press(&api, &ack, "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text.contains("ya se usó"), "{}", again.text);
    assert_eq!(open(&api, &ack).await.status, StatusCode::CONFLICT);

    // The resolution link asks for the summary, then works.
    let empty = press(&api, &resolution, "summary=").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text.contains("summary"), "{}", empty.text);
    assert_eq!(version(&api, &folio).await.0, "in_correction");
    let sent = press(&api, &resolution, "summary=Se+renov%C3%B3+el+certificado").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(version(&api, &folio).await.0, "awaiting_validation");
}

async fn forged_expired_and_other_recipient_links_are_refused_and_change_nothing(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let (ack, _) = tokens(&api, &folio).await;
    let before = version(&api, &folio).await;

    let mut forged = ack.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("utf-8");
    for answer in [open(&api, &forged).await, press(&api, &forged, "").await] {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text.contains("Enlace no válido"));
    }

    // A link minted for a user of another agency, for this incident.
    let other = api
        .users
        .iter()
        .find(|u| u.email.as_str() == "responsable@otra.gob.mx")
        .expect("other agency user");
    let maker = api
        .service
        .link_maker(api.clock_now())
        .await
        .expect("maker");
    let foreign = maker
        .token(
            incidencias_core::Folio::parse(&folio).expect("folio"),
            LinkAction::Acknowledge,
            incidencias_core::UserId(other.id),
        )
        .expect("token");
    let refused = press(&api, &foreign, "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("no autorizado"));

    api.advance(73 * 3600);
    for answer in [open(&api, &ack).await, press(&api, &ack, "").await] {
        assert_eq!(answer.status, StatusCode::GONE);
        assert!(answer.text.contains("venció"));
    }
    assert_eq!(version(&api, &folio).await, before, "nothing changed");
}

async fn a_resolution_without_summary_through_its_link_is_422_and_changes_nothing(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let (_, resolution) = tokens(&api, &folio).await;
    let before = version(&api, &folio).await;
    for form in ["", "summary=", "summary=+++"] {
        let answer = press(&api, &resolution, form).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{form:?}: {}",
            answer.text
        );
        assert!(
            answer.text.contains("summary") && answer.text.contains("lang=\"es-MX\""),
            "{}",
            answer.text
        );
        assert_eq!(version(&api, &folio).await, before, "nothing changed");
    }
    // Still usable once the summary is given.
    let sent = press(&api, &resolution, "summary=Se+renov%C3%B3+el+certificado").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
}

async fn a_link_whose_action_was_already_recorded_says_so_on_opening_without_a_button(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let (ack, resolution) = tokens(&api, &folio).await;
    // Acknowledged through the API, not through the link.
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    let page = open(&api, &ack).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text);
    assert!(
        page.text.contains("ya se registró") && page.text.contains("confirmada de enterado"),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("<button") && !page.text.contains("<form"),
        "{}",
        page.text
    );

    // The resolution is still to be sent: its page offers the button.
    let pending = open(&api, &resolution).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text);
    assert!(pending.text.contains("<button"), "{}", pending.text);
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Se renovó el certificado"}),
    )
    .await;
    let before = version(&api, &folio).await;
    let page = open(&api, &resolution).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text);
    assert!(
        page.text.contains("ya se registró") && page.text.contains("aviso de resolución"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("<button"), "{}", page.text);
    let pressed = press(&api, &resolution, "summary=Otra+vez").await;
    assert_eq!(pressed.status, StatusCode::CONFLICT, "{}", pressed.text);
    assert_eq!(version(&api, &folio).await, before, "nothing changed");
}

on_both_backends!(
    opening_shows_a_page_and_only_the_button_acts_once,
    forged_expired_and_other_recipient_links_are_refused_and_change_nothing,
    a_resolution_without_summary_through_its_link_is_422_and_changes_nothing,
    a_link_whose_action_was_already_recorded_says_so_on_opening_without_a_button,
);
