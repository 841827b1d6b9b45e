//! The administration pages that act, through the real router on both backends: a
//! received email turned into an incident, attached or discarded from "Correos por
//! revisar"; a message previewed as it will be sent; a catalogue entry edited and
//! deactivated with its change recorded; a CSV imported with a preview first.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::api::{Answer, Api};
use common::web::{Browser, post_form};

/// Delivers a message to the help desk's inbound endpoint (as the MTA would).
async fn deliver(api: &Api, subject: &str, body: &str, id: &str) {
    let raw = format!(
        "From: ciudadano@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@ejemplo.com>\r\nDate: Thu, 26 Nov 2026 09:00:00 -0600\r\n\r\n{body}\r\n"
    );
    let a = api
        .raw(
            Method::POST,
            "/api/v1/inbound-email",
            &api.helpdesk,
            Some("message/rfc822"),
            raw,
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
}

/// The id of the received message whose card shows `subject` on /correos.
fn message_id_in(html: &str, subject: &str) -> String {
    let card = html
        .split("<article")
        .find(|c| c.contains(subject))
        .unwrap_or_else(|| panic!("a card for «{subject}»"));
    card.split("/correos/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("the card links its message")
        .to_string()
}

async fn received_mail_becomes_an_incident_or_is_attached_or_discarded(url: String) {
    let api = Api::new(&url).await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let homoclave = api.procedure_homoclave.clone();
    deliver(
        &api,
        "Falla en el trámite",
        &format!("El trámite {homoclave} no carga desde la mañana."),
        "uno",
    )
    .await;
    deliver(&api, "Publicidad", "Oferta especial", "dos").await;
    let folio = api.report().await;
    deliver(
        &api,
        "Dato adicional",
        "Ocurre también en el celular.",
        "tres",
    )
    .await;

    let queue = desk.get("/correos").await;
    let first = message_id_in(&queue.text, "Falla en el trámite");
    let original = desk.get(&format!("/correos/{first}/original")).await;
    assert_eq!(original.status, StatusCode::OK);
    assert!(
        original
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert!(original.text.contains("Message-ID: <uno@ejemplo.com>"));

    // "Abrir una incidencia con este correo": the form comes prefilled from the message.
    let new = desk
        .get(&format!("/incidencias/nueva?correo={first}"))
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
    assert!(
        new.text.contains("no carga desde la mañana"),
        "description from the message"
    );
    assert!(
        new.text.contains("value=\"email\" selected"),
        "channel: email"
    );
    assert!(
        new.text
            .contains(&format!("value=\"{}\" selected", api.procedure)),
        "the procedure the message names"
    );
    let key = common::web::key_in(&new.text, "/incidencias/nueva");
    let created = post_form(
        &api,
        "/incidencias/nueva",
        &desk.cookie,
        "same-origin",
        &[
            ("_csrf", &desk.csrf),
            ("_clave", &key),
            ("correo", &first),
            ("procedure_id", &api.procedure.to_string()),
            ("kind", "unavailable"),
            ("description", "El trámite no carga desde la mañana."),
            ("occurred_at", "2026-11-26T09:00"),
            ("channel", "email"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let opened = created
        .header("location")
        .and_then(|l| l.strip_prefix("/incidencias/"))
        .and_then(|l| l.split('?').next())
        .expect("to the new incident")
        .to_string();
    assert_eq!(api.incident(&opened).await["channel"], "email");

    // Discard needs a reason; with one, the message leaves the queue (and is kept).
    let second = message_id_in(&queue.text, "Publicidad");
    let path = format!("/correos/{second}/descartar");
    let refused = post_form(
        &api,
        &path,
        &desk.cookie,
        "same-origin",
        &[("_csrf", &desk.csrf), ("reason", " ")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("role=\"alert\""));
    let discarded = post_form(
        &api,
        &path,
        &desk.cookie,
        "same-origin",
        &[("_csrf", &desk.csrf), ("reason", "correo publicitario")],
    )
    .await;
    assert_eq!(discarded.status, StatusCode::SEE_OTHER);

    // Attach to an existing incident: it shows among the incident's received mail.
    let third = message_id_in(&queue.text, "Dato adicional");
    let attached = post_form(
        &api,
        &format!("/correos/{third}/adjuntar"),
        &desk.cookie,
        "same-origin",
        &[("_csrf", &desk.csrf), ("folio", &folio), ("note", "")],
    )
    .await;
    assert_eq!(attached.status, StatusCode::SEE_OTHER, "{}", attached.text);
    let page = desk.get(&format!("/incidencias/{folio}")).await;
    assert!(
        page.text.contains("Dato adicional"),
        "the attached message is on the incident"
    );

    let queue = desk.get("/correos").await;
    for subject in ["Falla en el trámite", "Publicidad", "Dato adicional"] {
        assert!(
            !queue.text.contains(subject),
            "{subject} left the queue: {}",
            queue.text.split("<main").nth(1).unwrap_or("")
        );
    }
    // Nothing was deleted: the received list still has all three.
    let received = api.get("/api/v1/inbound-email", &api.helpdesk).await;
    assert_eq!(
        received.json.as_array().map(Vec::len),
        Some(3),
        "{}",
        received.text
    );
}

async fn an_outbox_message_is_previewed_as_it_will_be_sent(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        serde_json::json!({"severity": "high"}),
    )
    .await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let list = desk.get("/salida").await;
    let notification = list
        .text
        .split("<tr>")
        .find(|r| r.contains("Notificación de incidencia"))
        .expect("the notification is listed");
    let id = notification
        .split("href=\"/salida/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a preview link")
        .to_string();
    let preview = desk.get(&format!("/salida/{id}")).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview
            .text
            .contains("Notificación de incidencia, severidad Alta")
    );
    assert!(
        preview.text.contains("/acciones/[firma oculta]"),
        "signatures masked"
    );
    let html = desk.get(&format!("/salida/{id}/html")).await;
    assert!(html.text.contains(&format!("/incidencias/{folio}")));
    assert!(!html.text.contains("/acciones/inc") && html.text.contains("[firma oculta]"));
    let csp = html.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let agency = Browser::sign_in(&api, "responsable@sepru.gob.mx").await;
    assert_eq!(
        agency.get(&format!("/salida/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn a_user_is_edited_and_deactivated_with_the_change_recorded(url: String) {
    let api = Api::new(&url).await;
    let admin = Browser::sign_in(&api, "admin@ugd.gob.mx").await;
    let users = api.get("/api/v1/users", &api.admin).await;
    let list = users.json.as_array().expect("users");
    let find = |email: &str| {
        list.iter()
            .find(|u| u["email"] == email)
            .expect("the user")
            .clone()
    };
    let responsible = find("responsable@sepru.gob.mx");
    let id = responsible["id"].to_string();
    let page = admin.get(&format!("/catalogo/usuarios/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Cadena jerárquica"));
    // Remove the superior: the catalogue then warns that the responsible has nobody above.
    let agency_id = responsible["agency_id"].to_string();
    let saved = post_form(
        &api,
        &format!("/catalogo/usuarios/{id}"),
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("name", "Responsable renombrado"),
            ("role", "agency"),
            ("agency_id", &agency_id),
            ("reports_to", ""),
            ("active", "si"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let catalogue = admin.get("/catalogo").await;
    assert!(
        catalogue
            .text
            .contains("Cadenas de escalamiento incompletas")
    );
    assert!(catalogue.text.contains("Responsable renombrado"));
    let record = admin.get("/catalogo/cambios").await;
    assert!(
        record
            .text
            .contains("Nombre: Responsable → Responsable renombrado"),
        "the change is recorded with before and after"
    );
    // Deactivating: no checkbox sent.
    let other = find("responsable@otra.gob.mx");
    let other_id = other["id"].to_string();
    let other_agency = other["agency_id"].to_string();
    let saved = post_form(
        &api,
        &format!("/catalogo/usuarios/{other_id}"),
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("name", other["name"].as_str().unwrap_or("")),
            ("role", "agency"),
            ("agency_id", &other_agency),
            ("reports_to", ""),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert!(admin.get("/catalogo").await.text.contains("inactivo"));
    let login = post_form(
        &api,
        "/entrar",
        "",
        "same-origin",
        &[
            ("email", "responsable@otra.gob.mx"),
            ("password", common::web::PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        login.status,
        StatusCode::UNAUTHORIZED,
        "a deactivated user cannot sign in"
    );
}

/// A multipart upload of the import form.
async fn upload(api: &Api, browser: &Browser<'_>, kind: &str, csv: &str) -> Answer {
    let boundary = "----limite-de-prueba";
    let mut body = String::new();
    for (name, value) in [
        ("_csrf", browser.csrf.as_str()),
        ("paso", "vista"),
        ("tipo", kind),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"archivo\"; filename=\"catalogo.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    ));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/catalogo/importar")
        .header(header::COOKIE, &browser.cookie)
        .header("sec-fetch-site", "same-origin")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    api.send(req).await
}

async fn a_csv_is_previewed_then_applied_and_a_bad_row_applies_nothing(url: String) {
    let api = Api::new(&url).await;
    let admin = Browser::sign_in(&api, "admin@ugd.gob.mx").await;
    let bad = "\u{feff}homoclave;nombre;dependencia;url;responsable\n\
               SEPRU-02-001;=cmd|' /C calc'!A0;SEPRU;https://www.gob.mx/a;responsable@sepru.gob.mx\n\
               SEPRU-02-002;Sin dependencia;NADA;https://www.gob.mx/b;responsable@sepru.gob.mx\n";
    let preview = upload(&api, &admin, "procedures", bad).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    assert!(preview.text.contains("nuevo") && preview.text.contains("error"));
    assert!(
        preview.text.contains("=cmd|&#39; /C calc&#39;!A0"),
        "the formula cell is shown as text: {}",
        preview.text.split("<table").nth(1).unwrap_or(&preview.text)
    );
    assert!(
        !preview.text.contains("Aplicar importación"),
        "no apply while a row is wrong"
    );
    let good = "homoclave,nombre,dependencia,url,responsable\n\
                SEPRU-02-001,Trámite importado,SEPRU,https://www.gob.mx/a,responsable@sepru.gob.mx\n";
    let preview = upload(&api, &admin, "procedures", good).await;
    assert!(
        preview.text.contains("Aplicar importación"),
        "{}",
        preview.text
    );
    assert!(
        api.get("/api/v1/procedures", &api.admin)
            .await
            .text
            .find("SEPRU-02-001")
            .is_none(),
        "a preview changes nothing"
    );
    let content = preview
        .text
        .split("name=\"contenido\" hidden aria-hidden=\"true\">")
        .nth(1)
        .and_then(|r| r.split("</textarea>").next())
        .expect("the file travels with the preview")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/");
    let applied = post_form(
        &api,
        "/catalogo/importar",
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("tipo", "procedures"),
            ("paso", "aplicar"),
            ("contenido", &content),
        ],
    )
    .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert!(
        applied.text.contains("Importación aplicada"),
        "{}",
        applied.text
    );
    assert!(
        api.get("/api/v1/procedures", &api.admin)
            .await
            .text
            .contains("Trámite importado")
    );
    // The same file again: nothing to change.
    let again = upload(&api, &admin, "procedures", good).await;
    assert!(again.text.contains("Nada que cambiar"), "{}", again.text);
}

on_both_backends!(
    received_mail_becomes_an_incident_or_is_attached_or_discarded,
    an_outbox_message_is_previewed_as_it_will_be_sent,
    a_user_is_edited_and_deactivated_with_the_change_recorded,
    a_csv_is_previewed_then_applied_and_a_bad_row_applies_nothing,
);
