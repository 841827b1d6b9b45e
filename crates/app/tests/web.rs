//! The web pages through the real router, on both backends: sign-in with the API's
//! sessions, CSRF on every form, the same authorization as the API (another agency's
//! incident is a 404 page), the protocol run by posting the pages' forms (no JavaScript),
//! and the pages' security headers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::api::Api;
use common::web::{Browser, PASSWORD, get_page, key_in, post_form, sign_in_form};

async fn pages_require_a_session_and_send_people_to_sign_in_and_back(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let a = get_page(&api, &format!("/incidencias/{folio}"), "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let to = a.header("location").expect("a redirect");
    assert!(
        to.starts_with("/entrar?siguiente=%2Fincidencias%2F"),
        "{to}"
    );
    // Signing in with that return address lands on the incident.
    let back = format!("/incidencias/{folio}");
    let a = sign_in_form(&api, "mesa@ugd.gob.mx", PASSWORD, &back).await;
    assert_eq!(a.header("location"), Some(back.as_str()));
    // A return address elsewhere is not followed.
    let a = sign_in_form(&api, "mesa@ugd.gob.mx", PASSWORD, "//evil.example/").await;
    assert_eq!(a.header("location"), Some("/"));
    // A wrong password says so in Spanish, as an alert, and sets no cookie.
    let a = post_form(
        &api,
        "/entrar",
        "",
        "same-origin",
        &[("email", "mesa@ugd.gob.mx"), ("password", "otra-cosa-123")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("role=\"alert\""));
    assert!(a.text.contains("no son correctos"));
    assert!(a.header("set-cookie").is_none());
}

async fn forms_without_the_sessions_token_or_from_another_site_change_nothing(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let path = format!("/incidencias/{folio}/acciones/notify");
    let no_token = post_form(
        &api,
        &path,
        &desk.cookie,
        "same-origin",
        &[("severity", "high")],
    )
    .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let other_site = post_form(
        &api,
        &path,
        &desk.cookie,
        "cross-site",
        &[("_csrf", &desk.csrf), ("severity", "high")],
    )
    .await;
    assert_eq!(other_site.status, StatusCode::FORBIDDEN);
    assert_eq!(api.incident(&folio).await["state"], "reported");
    // A cross-site sign-in is refused too (login CSRF).
    let a = post_form(
        &api,
        "/entrar",
        "",
        "cross-site",
        &[("email", "mesa@ugd.gob.mx"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

async fn the_whole_protocol_runs_through_the_pages_forms(url: String) {
    let api = Api::new(&url).await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    // Step 1 through the new-incident form.
    let new = desk.get("/incidencias/nueva").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.text.contains("Registrar incidencia"));
    let key = key_in(&new.text, "/incidencias/nueva");
    let procedure = api.procedure.to_string();
    let occurred = incidencias::web::format::input_value(
        api.clock_now() - jiff::SignedDuration::from_mins(10),
    );
    let created = post_form(
        &api,
        "/incidencias/nueva",
        &desk.cookie,
        "same-origin",
        &[
            ("_csrf", &desk.csrf),
            ("_clave", &key),
            ("procedure_id", &procedure),
            ("kind", "unavailable"),
            ("description", "No carga la página de pago"),
            ("occurred_at", &occurred),
            ("channel", "phone"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let to = created
        .header("location")
        .expect("to the incident")
        .to_string();
    let folio = to
        .trim_start_matches("/incidencias/")
        .split('?')
        .next()
        .expect("a folio")
        .to_string();
    assert_eq!(desk.state_of(&folio).await, "Reportada");
    let events = api.events(&folio).await;
    assert_eq!(
        events[0]["via"]["channel"], "web",
        "the event says it came from a page"
    );

    // A refused form shows the reason and changes nothing.
    let refused = desk.act(&folio, "notify", &[("severity", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("role=\"alert\""));
    assert_eq!(api.incident(&folio).await["state"], "reported");

    let a = desk.act(&folio, "notify", &[("severity", "high")]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(desk.state_of(&folio).await, "En espera de confirmación");

    let agency = Browser::sign_in(&api, "responsable@sepru.gob.mx").await;
    let page = agency.get(&format!("/incidencias/{folio}")).await;
    assert!(page.text.contains(">Confirmar de enterado</button>"));
    assert!(
        !page.text.contains(">Notificar</button>"),
        "only the caller's actions"
    );
    agency.act(&folio, "acknowledge", &[]).await;
    agency
        .act(
            &folio,
            "show_banner",
            &[("message", "Trámite en mantenimiento")],
        )
        .await;
    let a = agency
        .act(
            &folio,
            "resolution",
            &[("summary", "Se renovó el certificado")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(agency.state_of(&folio).await, "En validación");

    let cedn = Browser::sign_in(&api, "cedn@ugd.gob.mx").await;
    let a = cedn.act(&folio, "approve", &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(cedn.state_of(&folio).await, "Validada");

    agency.act(&folio, "remove_banner", &[]).await;
    // The report form, delivered through its own form.
    let page = agency.get(&format!("/incidencias/{folio}")).await;
    assert!(page.text.contains("aria-label=\"Formato de incidencias\""));
    let key = key_in(&page.text, &format!("/incidencias/{folio}/formato"));
    let now = api.clock_now();
    let detected = incidencias::web::format::input_value(now - jiff::SignedDuration::from_mins(9));
    let restored = incidencias::web::format::input_value(now);
    let a = post_form(
        &api,
        &format!("/incidencias/{folio}/formato"),
        &agency.cookie,
        "same-origin",
        &[
            ("_csrf", &agency.csrf),
            ("_clave", &key),
            ("_accion", "report_form"),
            ("detected_at", &detected),
            ("restored_at", &restored),
            ("symptoms", "Error 500"),
            ("impact", "300 usuarios"),
            ("root_cause", "Certificado vencido"),
            (
                "actions_taken",
                "Renovación del certificado\nReinicio del servicio",
            ),
            ("verification", "Prueba de extremo a extremo"),
            ("preventive_actions", "Alerta de vencimiento"),
            ("prepared_by_name", "Ana López"),
            ("prepared_by_position", "Directora de TI"),
            ("attachments", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let doc = api.incident(&folio).await;
    assert_eq!(doc["report_form"]["state"], "submitted");
    assert_eq!(
        doc["report_form"]["form"]["actions_taken"],
        serde_json::json!(["Renovación del certificado", "Reinicio del servicio"])
    );

    let page = desk.get(&format!("/incidencias/{folio}")).await;
    let key = key_in(&page.text, &format!("/incidencias/{folio}/revision"));
    let a = post_form(
        &api,
        &format!("/incidencias/{folio}/revision"),
        &desk.cookie,
        "same-origin",
        &[
            ("_csrf", &desk.csrf),
            ("_clave", &key),
            ("_accion", "accept_report_form"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let a = desk.act(&folio, "close", &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(desk.state_of(&folio).await, "Cerrada");
    let page = desk.get(&format!("/incidencias/{folio}")).await;
    assert!(
        page.text
            .contains("No hay acciones que usted pueda realizar")
    );
}

async fn a_form_sent_twice_acts_once(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let page = desk.get(&format!("/incidencias/{folio}")).await;
    let path = format!("/incidencias/{folio}/acciones/notify");
    let key = key_in(&page.text, &path);
    let fields = [
        ("_csrf", desk.csrf.as_str()),
        ("_clave", key.as_str()),
        ("severity", "low"),
    ];
    let first = post_form(&api, &path, &desk.cookie, "same-origin", &fields).await;
    let again = post_form(&api, &path, &desk.cookie, "same-origin", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "the replay answers as the first"
    );
    let notified = api
        .events(&folio)
        .await
        .iter()
        .filter(|e| e["kind"] == "notified")
        .count();
    assert_eq!(notified, 1);
}

async fn another_agency_gets_404_pages_and_an_empty_queue(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let other = Browser::sign_in(&api, "responsable@otra.gob.mx").await;
    let page = other.get(&format!("/incidencias/{folio}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.text.contains(&folio) || page.text.contains("No encontrado"));
    let queue = other.get("/").await;
    assert!(queue.text.contains("No hay incidencias"));
    assert!(!queue.text.contains(&folio));
    // Its own agency's responsible sees it in the queue.
    let own = Browser::sign_in(&api, "responsable@sepru.gob.mx").await;
    assert!(own.get("/").await.text.contains(&folio));
    // Acting on it by form is refused the same way.
    let a = post_form(
        &api,
        &format!("/incidencias/{folio}/acciones/acknowledge"),
        &other.cookie,
        "same-origin",
        &[("_csrf", &other.csrf)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

async fn pages_carry_a_strict_content_security_policy_and_assets_revalidate(url: String) {
    let api = Api::new(&url).await;
    let login = get_page(&api, "/entrar", "").await;
    let csp = login.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(!login.text.contains("<script>"), "no inline script");
    assert!(!login.text.contains("style=\""), "no inline style");
    let css = get_page(&api, "/estaticos/app.css", "").await;
    assert_eq!(css.status, StatusCode::OK);
    let tag = css.header("etag").expect("an ETag").to_string();
    let req = Request::builder()
        .uri("/estaticos/app.css")
        .header(header::IF_NONE_MATCH, &tag)
        .body(Body::empty())
        .expect("request");
    assert_eq!(api.send(req).await.status, StatusCode::NOT_MODIFIED);
    let unknown = get_page(&api, "/no-existe", "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.contains("<html"), "a person gets a page");
    assert!(
        api.get("/api/v1/no-existe", "")
            .await
            .text
            .contains("not_found"),
        "a program gets a problem document"
    );
}

async fn the_queue_refreshes_by_etag_and_lists_nearest_deadline_first(url: String) {
    let api = Api::new(&url).await;
    let low = api.report().await;
    let critical = api.report().await;
    api.step(
        &low,
        "notify",
        &api.helpdesk,
        serde_json::json!({"severity": "low"}),
    )
    .await;
    api.step(
        &critical,
        "notify",
        &api.helpdesk,
        serde_json::json!({"severity": "critical"}),
    )
    .await;
    let desk = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let page = desk.get("/").await;
    let (a, b) = (
        page.text.find(&critical).expect("listed"),
        page.text.find(&low).expect("listed"),
    );
    assert!(a < b, "the critical incident's acknowledgment is due first");
    let partial = |etag: Option<String>| {
        let mut req = Request::builder()
            .uri("/")
            .header(header::COOKIE, &desk.cookie)
            .header("x-parcial", "bandeja");
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        api.send(req.body(Body::empty()).expect("request"))
    };
    let first = partial(None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.text.contains("<html"), "only the table");
    let tag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(
        partial(Some(tag.clone())).await.status,
        StatusCode::NOT_MODIFIED
    );
    api.step(
        &low,
        "dismiss",
        &api.helpdesk,
        serde_json::json!({"reason": "duplicado"}),
    )
    .await;
    assert_eq!(
        partial(Some(tag)).await.status,
        StatusCode::OK,
        "a change shows"
    );
}

async fn my_account_changes_the_password_and_shows_a_new_token_once(url: String) {
    let api = Api::new(&url).await;
    let me = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let wrong = post_form(
        &api,
        "/cuenta/contrasena",
        &me.cookie,
        "same-origin",
        &[
            ("_csrf", &me.csrf),
            ("current_password", "no-es-esta-1"),
            ("new_password", "nueva-contraseña-1"),
            ("confirmation", "otra-distinta-1"),
        ],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text.contains("Contraseña actual") && wrong.text.contains("no coincide"));
    let created = post_form(
        &api,
        "/cuenta/tokens",
        &me.cookie,
        "same-origin",
        &[("_csrf", &me.csrf)],
    )
    .await;
    let token = created
        .text
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the token is shown")
        .to_string();
    assert_eq!(api.get("/api/v1/me", &token).await.status, StatusCode::OK);
    assert!(!me.get("/cuenta").await.text.contains(&token), "shown once");
    let a = post_form(
        &api,
        "/cuenta/contrasena",
        &me.cookie,
        "same-origin",
        &[
            ("_csrf", &me.csrf),
            ("current_password", PASSWORD),
            ("new_password", "nueva-contraseña-1"),
            ("confirmation", "nueva-contraseña-1"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(
        me.get("/").await.status,
        StatusCode::OK,
        "this session stays"
    );
    let old = post_form(
        &api,
        "/entrar",
        "",
        "same-origin",
        &[("email", "mesa@ugd.gob.mx"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
}

async fn return_paths_browsers_would_rewrite_and_origin_less_sign_ins_are_refused(url: String) {
    let api = Api::new(&url).await;
    // Browsers drop tabs and newlines from URLs: "/\t/evil" would become "//evil".
    for next in [
        "/\t/evil.example",
        "/\\evil.example",
        "/\n/evil.example",
        "https://evil.example/",
    ] {
        let a = sign_in_form(&api, "mesa@ugd.gob.mx", PASSWORD, next).await;
        assert_eq!(a.header("location"), Some("/"), "{next:?} is not followed");
    }
    // A sign-in form that says nothing of where it comes from is not taken as ours.
    let req = Request::builder()
        .method(axum::http::Method::POST)
        .uri("/entrar")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "email=mesa%40ugd.gob.mx&password=contrase%C3%B1a-de-prueba",
        ))
        .expect("request");
    assert_eq!(api.send(req).await.status, StatusCode::FORBIDDEN);
}

async fn the_current_password_is_guessed_no_faster_than_at_sign_in(url: String) {
    let api = Api::new(&url).await;
    let me = Browser::sign_in(&api, "mesa@ugd.gob.mx").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = post_form(
            &api,
            "/cuenta/contrasena",
            &me.cookie,
            "same-origin",
            &[
                ("_csrf", &me.csrf),
                ("current_password", "adivinanza-123"),
                ("new_password", "nueva-contraseña-1"),
                ("confirmation", "nueva-contraseña-1"),
            ],
        )
        .await;
        statuses.push(a.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "after three failures the next guess waits: {statuses:?}"
    );
}

async fn a_refused_form_comes_back_with_what_was_typed(url: String) {
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
    // The same severity is refused; the reason typed comes back in that form only.
    let refused = desk
        .act(
            &folio,
            "severity",
            &[("severity", "high"), ("reason", "Afecta a más usuarios")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    let form = refused
        .text
        .split("aria-label=\"Cambiar severidad\"")
        .nth(1)
        .and_then(|r| r.split("</form>").next())
        .expect("the severity form");
    assert!(form.contains("value=\"Afecta a más usuarios\""), "{form}");
    assert!(form.contains("value=\"high\" selected"), "{form}");
    let other = refused
        .text
        .split("aria-label=\"Escalar\"")
        .nth(1)
        .and_then(|r| r.split("</form>").next())
        .unwrap_or("");
    assert!(
        !other.contains("Afecta a más usuarios"),
        "not copied into other forms"
    );
    // A form's address opened as a page answers with a page.
    let page = get_page(&api, "/salir", &desk.cookie).await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.text.contains("Esta dirección recibe formularios"));
}

on_both_backends!(
    a_refused_form_comes_back_with_what_was_typed,
    return_paths_browsers_would_rewrite_and_origin_less_sign_ins_are_refused,
    the_current_password_is_guessed_no_faster_than_at_sign_in,
    pages_require_a_session_and_send_people_to_sign_in_and_back,
    forms_without_the_sessions_token_or_from_another_site_change_nothing,
    the_whole_protocol_runs_through_the_pages_forms,
    a_form_sent_twice_acts_once,
    another_agency_gets_404_pages_and_an_empty_queue,
    pages_carry_a_strict_content_security_policy_and_assets_revalidate,
    the_queue_refreshes_by_etag_and_lists_nearest_deadline_first,
    my_account_changes_the_password_and_shows_a_new_token_once,
);
