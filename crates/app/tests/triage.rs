//! The help desk's triage of received mail, on both backends: messages ingested through
//! the same service path as every received email land in the queue; the raw message is
//! kept and readable; a message is attached to an incident, discarded with a reason, or
//! opens an incident (channel email, tied to the message), each once and recorded with who
//! and when; suggestions come from a homoclave or the sender's domain; only the help desk
//! acts (admin reads). Also the outbox preview: rendered as the worker sends it, with the
//! one-click tokens masked.

mod common;

use common::api::Api;
use incidencias::service::{
    Caller, InboundDisposition, MASKED_TOKEN, NewIncidentInput, OutboxState, ServiceError,
};
use incidencias_core::{Channel, Folio, IncidentKind, ProcedureId};
use serde_json::json;

const FOLIO: &str = "INC-2026-000001";

fn helpdesk(api: &Api) -> &Caller {
    &api.callers[1]
}

fn admin(api: &Api) -> &Caller {
    &api.callers[0]
}

/// The callers that may not work the queue: the validator and an agency user.
fn outsiders(api: &Api) -> [&Caller; 2] {
    [&api.callers[2], &api.callers[3]]
}

fn folio(text: &str) -> Folio {
    Folio::parse(text).expect("folio")
}

/// A plain message from `from` with `subject` and `body`, dated 08:50 UTC on the tests'
/// day (ten minutes before the API fixture's clock starts).
fn message(from: &str, subject: &str, body: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\n\
         To: Mesa de ayuda <mesa@incidencias.gob.mx>\r\n\
         Subject: {subject}\r\n\
         Date: Fri, 27 Nov 2026 14:50:00 +0000\r\n\
         Message-ID: <{id}@example.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}\r\n"
    )
    .into_bytes()
}

/// Ingests `raw` as every received email is, expects triage, and returns its queue id.
async fn into_triage(api: &Api, raw: &[u8]) -> i64 {
    let outcome = api.service.ingest(raw).await.expect("ingest");
    assert_eq!(
        outcome.outcome,
        InboundDisposition::Triage,
        "lands in triage: {outcome:?}"
    );
    let queue = api
        .service
        .triage_queue(helpdesk(api), None, 50)
        .await
        .expect("queue");
    queue.first().expect("the newest message first").id
}

fn conflict<T: std::fmt::Debug>(r: Result<T, ServiceError>, what: &str) {
    match r {
        Err(ServiceError::Conflict(m)) => assert!(!m.is_empty(), "{what}: a Spanish reason"),
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, ServiceError>, what: &str) {
    assert!(
        matches!(r, Err(ServiceError::Forbidden(_))),
        "{what}: expected forbidden, got {r:?}"
    );
}

fn not_found<T: std::fmt::Debug>(r: Result<T, ServiceError>, what: &str) {
    assert!(
        matches!(r, Err(ServiceError::NotFound(_))),
        "{what}: expected not found, got {r:?}"
    );
}

/// A reply naming an existing folio from an unknown sender: in the queue with the folio
/// suggested; its raw bytes readable; attached, it shows among the incident's messages and
/// leaves the queue; a second resolution is refused.
async fn a_message_in_triage_is_attached_to_its_incident(url: String) {
    let api = Api::new(&url).await;
    assert_eq!(api.report().await, FOLIO);
    let raw = message(
        "Proveedor <soporte@proveedor.com.mx>",
        "Re: [INC-2026-000001] Seguimiento",
        "El servicio volvió a responder a las 9:10.",
        "adjuntar.1",
    );
    let id = into_triage(&api, &raw).await;
    let queue = api
        .service
        .triage_queue(helpdesk(&api), None, 50)
        .await
        .expect("queue");
    assert_eq!(queue.len(), 1, "{queue:?}");
    let item = &queue[0];
    assert_eq!(item.sender, "soporte@proveedor.com.mx");
    assert_eq!(item.subject, "Re: [INC-2026-000001] Seguimiento");
    assert!(item.excerpt.contains("volvió a responder"), "{item:?}");
    assert_eq!(item.reason.as_deref(), Some("remitente desconocido"));
    assert_eq!(item.folio.as_deref(), Some(FOLIO));
    assert_eq!(item.suggestion.attach_to.as_deref(), Some(FOLIO));

    // Kept as received, readable by the help desk and the admin.
    let text = api
        .service
        .inbound_raw(helpdesk(&api), id)
        .await
        .expect("raw");
    assert_eq!(text.as_bytes(), raw.as_slice(), "the bytes as received");
    api.service
        .inbound_raw(admin(&api), id)
        .await
        .expect("admin reads");
    not_found(
        api.service.inbound_raw(helpdesk(&api), id + 1000).await,
        "raw of an unknown id",
    );

    api.advance(60);
    let done = api
        .service
        .attach_inbound(
            helpdesk(&api),
            id,
            folio(FOLIO),
            Some("Aviso del proveedor"),
        )
        .await
        .expect("attach");
    assert_eq!(done.folio.as_deref(), Some(FOLIO));
    assert_eq!(done.triage_action.as_deref(), Some("attached"));
    assert_eq!(done.triaged_by, Some(helpdesk(&api).id.0));
    assert_eq!(done.triaged_at, Some(api.clock_now()));
    assert_eq!(done.triage_note.as_deref(), Some("Aviso del proveedor"));
    let messages = api
        .service
        .incident_messages(helpdesk(&api), folio(FOLIO))
        .await
        .expect("incident messages");
    assert!(
        messages.iter().any(|m| m.id == id),
        "recorded on the incident: {messages:?}"
    );
    // The agency sees it on its incident too.
    let theirs = api
        .service
        .incident_messages(&api.callers[3], folio(FOLIO))
        .await
        .expect("agency reads its incident's messages");
    assert!(theirs.iter().any(|m| m.id == id), "{theirs:?}");
    assert!(
        api.service
            .triage_queue(helpdesk(&api), None, 50)
            .await
            .expect("queue")
            .is_empty(),
        "no longer pending"
    );
    conflict(
        api.service
            .attach_inbound(helpdesk(&api), id, folio(FOLIO), None)
            .await,
        "attach twice",
    );
    conflict(
        api.service
            .discard_inbound(helpdesk(&api), id, "duplicado")
            .await,
        "discard after attach",
    );
    // A reply the router recorded on receipt is not in triage: nothing to resolve.
    let recorded = api
        .service
        .ingest(&message(
            "responsable@sepru.gob.mx",
            "Re: [INC-2026-000001] Notificación",
            "Seguimos revisando.",
            "adjuntar.3",
        ))
        .await
        .expect("ingest");
    assert_eq!(
        recorded.outcome,
        InboundDisposition::Recorded,
        "{recorded:?}"
    );
    let recorded_id = api
        .service
        .received(helpdesk(&api), None, None, 1)
        .await
        .expect("received")[0]
        .id;
    conflict(
        api.service
            .discard_inbound(helpdesk(&api), recorded_id, "no aplica")
            .await,
        "a message not in triage",
    );
    // An unknown incident is not found, and the message stays pending.
    let other = into_triage(
        &api,
        &message(
            "x@proveedor.com.mx",
            "[INC-2026-000001] otra nota",
            "Nota",
            "adjuntar.2",
        ),
    )
    .await;
    not_found(
        api.service
            .attach_inbound(helpdesk(&api), other, folio("INC-2026-000099"), None)
            .await,
        "attach to an unknown incident",
    );
    assert_eq!(
        api.service
            .triage_queue(helpdesk(&api), None, 50)
            .await
            .expect("queue")
            .len(),
        1
    );
}

/// Discarding needs a reason; the row stays (in the received list, with who and when) and
/// is pending nowhere; a second action is refused.
async fn a_discarded_message_is_kept_with_who_and_when(url: String) {
    let api = Api::new(&url).await;
    let id = into_triage(
        &api,
        &message(
            "promociones@tienda.example",
            "Ofertas de temporada",
            "Compre ahora.",
            "descartar.1",
        ),
    )
    .await;
    match api.service.discard_inbound(helpdesk(&api), id, "   ").await {
        Err(ServiceError::Invalid(errors)) => assert!(
            errors
                .iter()
                .any(|e| e.field == "reason" && e.message.contains("motivo")),
            "{errors:?}"
        ),
        other => panic!("a blank reason is refused, got {other:?}"),
    }
    api.advance(120);
    let done = api
        .service
        .discard_inbound(helpdesk(&api), id, "Publicidad, no es una incidencia")
        .await
        .expect("discard");
    assert_eq!(done.triage_action.as_deref(), Some("discarded"));
    assert_eq!(
        done.triage_note.as_deref(),
        Some("Publicidad, no es una incidencia")
    );
    assert!(
        api.service
            .triage_queue(helpdesk(&api), None, 50)
            .await
            .expect("queue")
            .is_empty()
    );
    let received = api
        .service
        .received(helpdesk(&api), None, None, 50)
        .await
        .expect("received");
    let row = received
        .iter()
        .find(|r| r.id == id)
        .expect("kept in the received list");
    assert_eq!(
        row.outcome, "triage",
        "the router's outcome is not rewritten"
    );
    assert_eq!(row.triage_action.as_deref(), Some("discarded"));
    assert_eq!(row.triaged_by, Some(helpdesk(&api).id.0));
    assert_eq!(row.triaged_at, Some(api.clock_now()));
    assert!(
        api.service
            .received_one(admin(&api), id)
            .await
            .expect("one")
            .triage_action
            .is_some()
    );
    conflict(
        api.service
            .discard_inbound(helpdesk(&api), id, "otra vez")
            .await,
        "discard twice",
    );
    conflict(
        api.service
            .open_incident_from_inbound(
                helpdesk(&api),
                id,
                NewIncidentInput {
                    procedure_ids: vec![ProcedureId(api.procedure)],
                    kind: IncidentKind::Unavailable,
                    description: "x".into(),
                    occurred_at: api.clock_now(),
                    channel: Channel::Email,
                },
            )
            .await,
        "open after discard",
    );
    not_found(
        api.service
            .discard_inbound(helpdesk(&api), id + 1000, "x")
            .await,
        "discard an unknown id",
    );
}

/// The procedure from a homoclave in the message, else from the sender's mail domain (one
/// procedure: that one; several: none, but the agency named); occurred_at is the Date.
async fn suggestions_by_homoclave_and_by_domain(url: String) {
    let api = Api::new(&url).await;
    let date: jiff::Timestamp = "2026-11-27T14:50:00Z".parse().expect("instant");
    let by_homoclave = into_triage(
        &api,
        &message(
            "ciudadana@gmail.com",
            "Falla en el trámite",
            "El trámite SEPRU-01-001 marca error 500 al enviar.",
            "sugerir.1",
        ),
    )
    .await;
    let s = api
        .service
        .suggest_report(helpdesk(&api), by_homoclave)
        .await
        .expect("suggest");
    assert_eq!(s.procedure_id, Some(api.procedure), "{s:?}");
    assert_eq!(s.agency_id, Some(api.agency_id), "{s:?}");
    assert!(s.reason.contains("SEPRU-01-001"), "{s:?}");
    assert!(s.description.contains("error 500"), "{s:?}");
    assert!(s.description.contains("Falla en el trámite"), "{s:?}");
    assert_eq!(s.occurred_at, date, "the message's Date");
    let queued = api
        .service
        .triage_queue(admin(&api), None, 50)
        .await
        .expect("admin reads the queue");
    assert_eq!(
        queued[0].suggestion.report.procedure_id,
        Some(api.procedure)
    );

    // A sender of the agency's domain that is not a user: its only procedure.
    let by_domain = into_triage(
        &api,
        &message(
            "Juan <juan.perez@sepru.gob.mx>",
            "No funciona la constancia",
            "Desde hoy no se puede descargar.",
            "sugerir.2",
        ),
    )
    .await;
    let s = api
        .service
        .suggest_report(helpdesk(&api), by_domain)
        .await
        .expect("suggest");
    assert_eq!(s.procedure_id, Some(api.procedure), "{s:?}");
    assert!(s.reason.contains("SEPRU"), "{s:?}");

    // An agency with two procedures: none chosen, the agency named.
    let admin_c = admin(&api).clone();
    api.service
        .create_procedure(
            &admin_c,
            incidencias::service::NewProcedureInput {
                homoclave: "OTRA-01-002".into(),
                name: "Segundo trámite".into(),
                agency_id: api.other_agency_id,
                url: "https://www.gob.mx/segundo".into(),
                responsible_id: api.users[6].id,
            },
        )
        .await
        .expect("second procedure");
    let ambiguous = into_triage(
        &api,
        &message(
            "ana@otra.gob.mx",
            "Falla",
            "No abre la página.",
            "sugerir.3",
        ),
    )
    .await;
    let s = api
        .service
        .suggest_report(helpdesk(&api), ambiguous)
        .await
        .expect("suggest");
    assert_eq!(s.procedure_id, None, "{s:?}");
    assert_eq!(s.agency_id, Some(api.other_agency_id), "{s:?}");
    assert!(s.reason.contains("OTRA"), "{s:?}");

    let nothing = into_triage(
        &api,
        &message("a@gmail.com", "Hola", "¿Me ayudan?", "sugerir.4"),
    )
    .await;
    let s = api
        .service
        .suggest_report(helpdesk(&api), nothing)
        .await
        .expect("suggest");
    assert_eq!((s.procedure_id, s.agency_id), (None, None), "{s:?}");
}

/// Opening an incident from a message: channel email, the event tied to the message, the
/// row resolved with the new folio; a second action is refused; outsiders are forbidden.
async fn an_incident_is_opened_from_a_message(url: String) {
    let api = Api::new(&url).await;
    let raw = message(
        "juan.perez@sepru.gob.mx",
        "No funciona la constancia",
        "Desde hoy el trámite está muy lento.",
        "abrir.1",
    );
    let id = into_triage(&api, &raw).await;
    let s = api
        .service
        .suggest_report(helpdesk(&api), id)
        .await
        .expect("suggest");
    assert_eq!(s.kind, "slow", "{s:?}");
    let input = NewIncidentInput {
        procedure_ids: vec![ProcedureId(s.procedure_id.expect("a procedure"))],
        kind: IncidentKind::Slow,
        description: s.description.clone(),
        occurred_at: s.occurred_at,
        // The help desk's form may say otherwise; a report from an email is by email.
        channel: Channel::Phone,
    };
    for caller in outsiders(&api) {
        forbidden(
            api.service
                .open_incident_from_inbound(caller, id, input.clone())
                .await,
            "open by an outsider",
        );
    }
    forbidden(
        api.service
            .open_incident_from_inbound(admin(&api), id, input.clone())
            .await,
        "admin only reads",
    );
    let done = api
        .service
        .open_incident_from_inbound(helpdesk(&api), id, input.clone())
        .await
        .expect("open");
    let new_folio = done.folio.clone().expect("the new folio on the row");
    assert_eq!(done.triage_action.as_deref(), Some("opened"));
    assert_eq!(done.triaged_by, Some(helpdesk(&api).id.0));
    let doc = api.incident(&new_folio).await;
    assert_eq!(doc["channel"], "email", "{doc}");
    assert_eq!(doc["state"], "reported", "{doc}");
    let events = api.events(&new_folio).await;
    assert_eq!(events[0]["via"]["channel"], "email", "{:?}", events[0]);
    assert_eq!(
        events[0]["via"]["message_sha256"].as_str(),
        Some(incidencias::encoding::sha256_hex(&raw).as_str()),
        "tied to the message"
    );
    let messages = api
        .service
        .incident_messages(helpdesk(&api), folio(&new_folio))
        .await
        .expect("messages");
    assert!(messages.iter().any(|m| m.id == id), "{messages:?}");
    assert!(
        api.service
            .triage_queue(helpdesk(&api), None, 50)
            .await
            .expect("queue")
            .is_empty()
    );
    conflict(
        api.service
            .open_incident_from_inbound(helpdesk(&api), id, input)
            .await,
        "open twice",
    );
    assert_eq!(api.total().await, 1, "one incident");
}

/// Only the help desk works the queue; the admin reads; others are forbidden everywhere.
async fn outsiders_are_forbidden(url: String) {
    let api = Api::new(&url).await;
    assert_eq!(api.report().await, FOLIO);
    let id = into_triage(&api, &message("x@gmail.com", "Hola", "Texto", "roles.1")).await;
    for caller in outsiders(&api) {
        forbidden(api.service.triage_queue(caller, None, 50).await, "queue");
        forbidden(api.service.inbound_raw(caller, id).await, "raw");
        forbidden(api.service.received_one(caller, id).await, "one");
        forbidden(api.service.suggest_report(caller, id).await, "suggest");
        forbidden(
            api.service
                .attach_inbound(caller, id, folio(FOLIO), None)
                .await,
            "attach",
        );
        forbidden(
            api.service.discard_inbound(caller, id, "motivo").await,
            "discard",
        );
        forbidden(
            api.service.outbox_preview(caller, 1, "https://x").await,
            "preview",
        );
        forbidden(
            api.service.outbox_page(caller, None, None, 10).await,
            "outbox page",
        );
    }
    forbidden(
        api.service
            .attach_inbound(admin(&api), id, folio(FOLIO), None)
            .await,
        "admin attach",
    );
    forbidden(
        api.service.discard_inbound(admin(&api), id, "motivo").await,
        "admin discard",
    );
    api.service
        .suggest_report(admin(&api), id)
        .await
        .expect("admin reads the suggestion");
}

/// The preview is the worker's rendering with the one-click tokens masked; unknown ids
/// are not found; the outbox pages by id.
async fn outbox_preview_masks_link_tokens(url: String) {
    let api = Api::new(&url).await;
    assert_eq!(api.report().await, FOLIO);
    api.step(FOLIO, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let rows = api.store.list_outbox(None, 100).await.expect("outbox");
    let n = rows
        .iter()
        .find(|r| r.kind == "notification")
        .expect("notification queued");
    let token = n.payload["ack_link"]
        .as_str()
        .expect("ack link")
        .to_string();
    let base = "https://incidencias.example.gob.mx";
    let preview = api
        .service
        .outbox_preview(helpdesk(&api), n.id, base)
        .await
        .expect("preview");
    assert_eq!(preview.doc.id, n.id);
    assert!(preview.error.is_none(), "{preview:?}");
    assert!(
        preview.subject.starts_with("[INC-2026-000001] "),
        "{}",
        preview.subject
    );
    let masked = format!("{base}/acciones/{MASKED_TOKEN}");
    assert!(preview.text.contains(&masked), "{}", preview.text);
    assert!(
        preview.html.contains("/acciones/[firma oculta]"),
        "{}",
        preview.html
    );
    for part in [&preview.subject, &preview.text, &preview.html] {
        assert!(!part.contains(&token), "the token is masked: {part}");
    }
    // Exactly what the worker sends, but for the tokens. Per incident mail goes out in
    // order: the earlier emails are claimed and marked sent first.
    let mut sent = None;
    for _ in 0..5 {
        let claimed = api
            .service
            .claim_mail(
                "prueba",
                api.clock_now() + jiff::SignedDuration::from_mins(5),
                100,
                base,
            )
            .await
            .expect("claim");
        for m in claimed {
            if m.id == n.id {
                sent = m.content.ok();
            } else {
                api.service.mail_sent(&[m.id]).await.expect("sent");
            }
        }
        if sent.is_some() {
            break;
        }
    }
    let sent = sent.expect("rendered by the worker");
    let resolution = n.payload["resolution_link"]
        .as_str()
        .expect("resolution link");
    let unmask = |s: &str| {
        s.replace(&token, MASKED_TOKEN)
            .replace(resolution, MASKED_TOKEN)
    };
    assert_eq!(unmask(&sent.subject), preview.subject);
    assert_eq!(unmask(&sent.text), preview.text);
    assert_eq!(unmask(&sent.html), preview.html);
    // The admin may preview; an unknown id is not found.
    api.service
        .outbox_preview(admin(&api), n.id, base)
        .await
        .expect("admin previews");
    not_found(
        api.service
            .outbox_preview(helpdesk(&api), n.id + 1000, base)
            .await,
        "unknown outbox id",
    );

    // Paging: newest first, then the ones before the last id seen.
    let all = api
        .service
        .outbox(helpdesk(&api), None, 100)
        .await
        .expect("outbox");
    assert!(
        all.len() >= 2,
        "at least the report and the notification: {all:?}"
    );
    let first = api
        .service
        .outbox_page(helpdesk(&api), None, None, 1)
        .await
        .expect("page 1");
    assert_eq!(first, all[..1].to_vec());
    let second = api
        .service
        .outbox_page(helpdesk(&api), None, Some(first[0].id), 100)
        .await
        .expect("page 2");
    assert_eq!(second, all[1..].to_vec());
    let sent = api
        .service
        .outbox_page(helpdesk(&api), Some(OutboxState::Sent), None, 100)
        .await
        .expect("sent");
    assert!(
        !sent.is_empty() && sent.iter().all(|d| d.state == "sent" && d.id != n.id),
        "the emails before the notification were sent: {sent:?}"
    );
}

/// The bytes are kept exactly (8-bit text that is not UTF-8 included) and shown lossily;
/// a message too large to read lands in triage without its bytes, and its raw view is
/// not found.
async fn raw_bytes_are_kept_exactly(url: String) {
    let api = Api::new(&url).await;
    let mut raw = message("x@gmail.com", "Falla", "Tr", "crudo.1");
    raw.truncate(raw.len() - 2);
    raw.extend_from_slice(b"\xe1mite sin acento UTF-8\r\n");
    let id = into_triage(&api, &raw).await;
    assert_eq!(
        api.store.inbound_raw(id).await.expect("raw"),
        Some(Some(raw.clone())),
        "stored byte for byte"
    );
    let text = api
        .service
        .inbound_raw(helpdesk(&api), id)
        .await
        .expect("raw as text");
    assert!(text.contains("Tr\u{fffd}mite"), "{text}");

    let mut big = message("x@gmail.com", "Grande", "Anexo", "crudo.2");
    big.resize(incidencias::service::MAX_MESSAGE_BYTES + 1, b'A');
    let outcome = api.service.ingest_or_triage(&big).await.expect("kept");
    assert_eq!(outcome.outcome, InboundDisposition::Triage);
    let queue = api
        .service
        .triage_queue(helpdesk(&api), None, 50)
        .await
        .expect("queue");
    assert_eq!(queue.len(), 2, "{queue:?}");
    not_found(
        api.service.inbound_raw(helpdesk(&api), queue[0].id).await,
        "bytes too large to keep",
    );
    // Paging the queue.
    let older = api
        .service
        .triage_queue(helpdesk(&api), Some(queue[0].id), 50)
        .await
        .expect("page");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].id, id);
}

on_both_backends!(
    raw_bytes_are_kept_exactly,
    a_message_in_triage_is_attached_to_its_incident,
    a_discarded_message_is_kept_with_who_and_when,
    suggestions_by_homoclave_and_by_domain,
    an_incident_is_opened_from_a_message,
    outsiders_are_forbidden,
    outbox_preview_masks_link_tokens,
);
