//! The administration and mail pages through the real router, on both backends: who sees
//! which page, SLO policy versions edited as a table of durations in words, catalogue
//! registrations by form with the ladder shown as a chain, the outbox with its subjects,
//! and the received mail awaiting review.

mod common;

use axum::http::{Method, StatusCode};
use common::api::Api;
use common::web::{Browser, post_form};

/// The links of the page's main navigation.
fn nav(html: &str) -> String {
    html.split("aria-label=\"Principal\"")
        .nth(1)
        .and_then(|r| r.split("</nav>").next())
        .unwrap_or("")
        .to_string()
}

async fn each_role_sees_and_may_open_only_its_pages(url: String) {
    let api = Api::new(&url).await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let admin = Browser::sign_in(&api, "admin@ugd.gob.mx").await;
    let agency = Browser::sign_in(&api, "responsable@sepru.gob.mx").await;
    let links = nav(&desk.get("/").await.text);
    for word in [
        "Correos por revisar",
        "Políticas de SLO",
        "Bandeja de salida",
    ] {
        assert!(links.contains(word), "the help desk sees {word}");
    }
    assert!(!links.contains("Catálogo"));
    assert!(nav(&admin.get("/").await.text).contains("Catálogo"));
    let links = nav(&agency.get("/").await.text);
    for word in [
        "Correos por revisar",
        "Catálogo",
        "Políticas de SLO",
        "Bandeja de salida",
    ] {
        assert!(!links.contains(word), "an agency does not see {word}");
    }
    for path in ["/catalogo", "/salida", "/correos", "/politicas"] {
        assert_eq!(
            agency.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(desk.get("/catalogo").await.status, StatusCode::FORBIDDEN);
    for path in ["/salida", "/correos", "/politicas"] {
        assert_eq!(desk.get(path).await.status, StatusCode::OK, "{path}");
    }
}

/// Posts the new-version form with `targets` (name, value) and fixed other fields.
async fn publish(
    api: &Api,
    admin: &Browser<'_>,
    targets: Vec<(String, String)>,
) -> common::api::Answer {
    let mut all = vec![
        ("_csrf".to_string(), admin.csrf.clone()),
        ("warning_percent".to_string(), "80".to_string()),
        ("escalation_repeat".to_string(), "1 h 30 min".to_string()),
        ("effective_from".to_string(), String::new()),
    ];
    all.extend(targets);
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post_form(api, "/politicas", &admin.cookie, "same-origin", &refs).await
}

async fn a_new_policy_version_is_written_as_durations_in_words(url: String) {
    let api = Api::new(&url).await;
    let admin = Browser::sign_in(&api, "admin@ugd.gob.mx").await;
    let page = admin.get("/politicas").await;
    assert!(page.text.contains("Versión 1"));
    assert!(
        page.text.contains("ninguna incidencia abierta cambia"),
        "the preview says nothing changes"
    );
    // The form comes prefilled with the version in force, in words; change two cells.
    let mut fields: Vec<(String, String)> = Vec::new();
    for clock in ["report", "ack", "resolution", "validation", "report_form"] {
        for severity in ["critical", "high", "medium", "low"] {
            let name = format!("{clock}_{severity}");
            let value = page
                .text
                .split(&format!(
                    "name=\"{name}\" type=\"text\" size=\"9\" value=\""
                ))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("{name} is prefilled"))
                .to_string();
            fields.push((name, value));
        }
    }
    let set = |fields: &mut Vec<(String, String)>, name: &str, value: &str| {
        if let Some(f) = fields.iter_mut().find(|(k, _)| k == name) {
            f.1 = value.to_string();
        }
    };
    set(&mut fields, "ack_critical", "10 min");
    set(&mut fields, "resolution_low", "pronto");
    let refused = publish(&api, &admin, fields.clone()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.text.contains("Resolución, Baja"),
        "the bad cell is named"
    );
    assert!(
        refused.text.contains("value=\"pronto\""),
        "what was typed is kept"
    );
    let before = api.get("/api/v1/slo-policies", &api.admin).await.text;
    set(&mut fields, "resolution_low", "1 d 2 h");
    assert_eq!(
        api.get("/api/v1/slo-policies", &api.admin).await.text,
        before,
        "a refused version publishes nothing"
    );
    let published = publish(&api, &admin, fields).await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.text
    );
    let policies = api.get("/api/v1/slo-policies", &api.admin).await;
    let newest = &policies.json.as_array().expect("a list")[0];
    assert_eq!(newest["targets"]["ack"]["critical"], 600);
    assert_eq!(newest["targets"]["resolution"]["low"], 93_600);
    assert_eq!(newest["escalation_repeat_s"], 5400);
    assert_eq!(newest["warning_ratio"], 0.8);
    // The help desk reads the versions but has no form.
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let read = desk.get("/politicas").await;
    assert!(read.text.contains("Versión 2"));
    assert!(!read.text.contains("Publicar versión"));
}

async fn the_catalogue_registers_by_form_and_shows_each_ladder_as_a_chain(url: String) {
    let api = Api::new(&url).await;
    let admin = Browser::sign_in(&api, "admin@ugd.gob.mx").await;
    let a = post_form(
        &api,
        "/catalogo/dependencias",
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("name", "Instituto de Pruebas Ñandú"),
            ("acronym", "IPRU"),
            ("email_domains", "ipru.gob.mx, pruebas.gob.mx"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let agencies = api.get("/api/v1/agencies", &api.admin).await;
    let agency = agencies
        .json
        .as_array()
        .and_then(|l| l.iter().find(|a| a["acronym"] == "IPRU"))
        .expect("registered")
        .clone();
    assert_eq!(
        agency["email_domains"],
        serde_json::json!(["ipru.gob.mx", "pruebas.gob.mx"])
    );
    let agency_id = agency["id"].to_string();
    let mut above = String::new();
    for (name, email) in [
        ("Titular IPRU", "titular@ipru.gob.mx"),
        ("Dirección IPRU", "direccion@ipru.gob.mx"),
        ("Responsable IPRU", "responsable@ipru.gob.mx"),
    ] {
        let a = post_form(
            &api,
            "/catalogo/usuarios",
            &admin.cookie,
            "same-origin",
            &[
                ("_csrf", &admin.csrf),
                ("name", name),
                ("email", email),
                ("role", "agency"),
                ("agency_id", &agency_id),
                ("reports_to", &above),
                ("password", ""),
            ],
        )
        .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{name}: {}", a.text);
        let users = api.get("/api/v1/users", &api.admin).await;
        above = users
            .json
            .as_array()
            .and_then(|l| l.iter().find(|u| u["email"] == email))
            .map(|u| u["id"].to_string())
            .expect("registered");
    }
    let page = admin.get("/catalogo").await;
    assert!(
        page.text.contains("Dirección IPRU → Titular IPRU"),
        "the responsible's ladder is shown as a chain"
    );
    // A refused registration names the field and keeps what was typed.
    let a = post_form(
        &api,
        "/catalogo/tramites",
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("homoclave", "no es homoclave"),
            ("name", "Trámite de prueba"),
            ("agency_id", &agency_id),
            ("url", "https://www.gob.mx/tramites/prueba"),
            ("responsible_id", &above),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert!(a.text.contains("role=\"alert\"") && a.text.contains("Homoclave"));
    assert!(a.text.contains("value=\"Trámite de prueba\""));
    let a = post_form(
        &api,
        "/catalogo/tramites",
        &admin.cookie,
        "same-origin",
        &[
            ("_csrf", &admin.csrf),
            ("homoclave", "IPRU-01-001"),
            ("name", "Trámite de prueba"),
            ("agency_id", &agency_id),
            ("url", "https://www.gob.mx/tramites/prueba"),
            ("responsible_id", &above),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert!(admin.get("/catalogo").await.text.contains("IPRU-01-001"));
}

async fn the_outbox_lists_subjects_and_the_triage_page_shows_why(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let page = desk.get("/salida").await;
    assert!(
        page.text
            .contains(&format!("[{folio}] Incidencia reportada")),
        "{}",
        page.text
    );
    assert!(page.text.contains("en cola"));
    let dead = desk.get("/salida?estado=dead").await;
    assert!(dead.text.contains("No hay correos en este estado"));

    let raw = "From: alguien@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\nSubject: Consulta sin folio\r\n\
               Message-ID: <consulta@ejemplo.com>\r\n\r\nHola, el portal no carga.\r\n";
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
    let triage = desk.get("/correos").await;
    assert!(triage.text.contains("Consulta sin folio"));
    assert!(triage.text.contains("alguien@ejemplo.com"));
    assert!(triage.text.contains("Por qué está aquí"));
}

on_both_backends!(
    each_role_sees_and_may_open_only_its_pages,
    a_new_policy_version_is_written_as_durations_in_words,
    the_catalogue_registers_by_form_and_shows_each_ladder_as_a_chain,
    the_outbox_lists_subjects_and_the_triage_page_shows_why,
);
