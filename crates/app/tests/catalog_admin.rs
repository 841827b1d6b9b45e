//! Catalogue administration (issue 12) through the service, on both backends: updates and
//! deactivation, the record of changes, the ladders, and the CSV import's preview and
//! all-or-nothing application.

mod common;

use common::api::Api;
use incidencias::service::{
    AgencyUpdateInput, CatalogEntity, ImportKind, ImportPreview, NO_SUPERIOR_RESPONSIBLE,
    NO_SUPERIOR_VALIDATOR, NewIncidentInput, ProcedureUpdateInput, RowOutcome, ServiceError,
    UserUpdateInput,
};
use incidencias_core::{Channel, IncidentKind, ProcedureId};

on_both_backends!(
    procedure_import_outcomes_row_by_row,
    user_import_outcomes_and_superiors_within_the_file,
    bom_semicolon_and_formula_cells_are_data,
    apply_is_all_or_nothing_and_reimport_changes_nothing,
    changes_are_recorded_with_before_and_after,
    deactivated_user_cannot_sign_in_and_procedure_takes_no_reports,
    ladder_chain_and_warnings,
    user_updates_keep_the_ladder_sound,
    only_admins_administer,
);

fn outcome_of(p: &ImportPreview, line: usize) -> &RowOutcome {
    &p.rows
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("line {line} in {p:#?}"))
        .outcome
}

fn error_of(p: &ImportPreview, line: usize) -> String {
    match outcome_of(p, line) {
        RowOutcome::Error(e) => e.clone(),
        other => panic!("line {line} should be an error, is {other:?}"),
    }
}

async fn procedure_import_outcomes_row_by_row(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let file = "homoclave,nombre,dependencia (siglas),url,responsable (correo)\n\
        SEPRU-01-002,Licencia de pesca,SEPRU,https://www.gob.mx/pesca,responsable@sepru.gob.mx\n\
        SEPRU-01-001,Constancia de años,sepru,https://www.gob.mx/constancia,director@sepru.gob.mx\n\
        OTRA-01-001,Otro trámite,OTRA,https://www.gob.mx/otro,responsable@otra.gob.mx\n\
        NADA-01-001,Sin dependencia,NADA,https://www.gob.mx/x,responsable@sepru.gob.mx\n\
        mal homoclave,Mala,SEPRU,https://www.gob.mx/y,responsable@sepru.gob.mx\n\
        SEPRU-01-003,Sin responsable,SEPRU,https://www.gob.mx/z,nadie@sepru.gob.mx\n\
        SEPRU-01-002,Repetido,SEPRU,https://www.gob.mx/pesca,responsable@sepru.gob.mx\n\
        SEPRU-01-004,Ajeno,SEPRU,https://www.gob.mx/w,responsable@otra.gob.mx\n";
    let p = api
        .service
        .preview_import(admin, ImportKind::Procedures, file.as_bytes())
        .await
        .expect("preview");
    assert_eq!(p.rows.len(), 8);
    assert_eq!(outcome_of(&p, 2), &RowOutcome::New);
    assert_eq!(
        outcome_of(&p, 3),
        &RowOutcome::Changed(vec!["nombre".into(), "responsable".into()])
    );
    assert_eq!(outcome_of(&p, 4), &RowOutcome::Unchanged);
    assert!(
        error_of(&p, 5).contains("no existe la dependencia"),
        "{p:?}"
    );
    assert!(error_of(&p, 6).contains("homoclave"), "{p:?}");
    assert!(
        error_of(&p, 7).contains("no existe el usuario responsable nadie@sepru.gob.mx"),
        "{p:?}"
    );
    assert!(
        error_of(&p, 8).contains("ya aparece en la línea 2"),
        "{p:?}"
    );
    assert!(error_of(&p, 9).contains("debe ser un usuario de la dependencia SEPRU"));
    assert_eq!(
        (
            p.counts.new,
            p.counts.changed,
            p.counts.unchanged,
            p.counts.errors
        ),
        (1, 1, 1, 5)
    );
    assert_eq!(
        p.rows[1].values[1],
        ("nombre".to_string(), "Constancia de años".to_string()),
        "values are kept as read, accents included"
    );
    assert!(!p.applied);
    // A file that is not UTF-8 is refused naming the line.
    let mut latin1 = b"homoclave,nombre,dependencia,url,responsable\n".to_vec();
    latin1.extend_from_slice(
        b"SEPRU-01-009,Tr\xe1mite,SEPRU,https://www.gob.mx/a,responsable@sepru.gob.mx\n",
    );
    match api
        .service
        .preview_import(admin, ImportKind::Procedures, &latin1)
        .await
    {
        Err(ServiceError::Invalid(errors)) => {
            assert!(errors[0].message.contains("línea 2"), "{errors:?}");
            assert!(errors[0].message.contains("UTF-8"), "{errors:?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // So is a header with a column nobody knows.
    let bad = "homoclave,nombre,color\n";
    assert!(matches!(
        api.service
            .preview_import(admin, ImportKind::Procedures, bad.as_bytes())
            .await,
        Err(ServiceError::Invalid(_))
    ));
}

async fn user_import_outcomes_and_superiors_within_the_file(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    // The API names are accepted as headers too; a row may name a superior defined later.
    let file = "email,name,role,agency,reports_to\n\
        nuevo@sepru.gob.mx,Nuevo Enlace,agency,SEPRU,jefa@sepru.gob.mx\n\
        jefa@sepru.gob.mx,Jefa Nueva,agency,SEPRU,dg@sepru.gob.mx\n\
        Director@sepru.gob.mx,Director,agency,SEPRU,\n\
        mesa@ugd.gob.mx,Mesa,helpdesk,,\n\
        raro@ugd.gob.mx,Raro,jefe,,\n\
        central@ugd.gob.mx,Central,validator,SEPRU,\n\
        nuevo@sepru.gob.mx,Otra vez,agency,SEPRU,\n";
    let p = api
        .service
        .preview_import(admin, ImportKind::Users, file.as_bytes())
        .await
        .expect("preview");
    assert_eq!(outcome_of(&p, 2), &RowOutcome::New);
    assert_eq!(outcome_of(&p, 3), &RowOutcome::New);
    // The director reported to the DG; the file leaves the superior empty.
    assert_eq!(
        outcome_of(&p, 4),
        &RowOutcome::Changed(vec!["superior".into()])
    );
    assert_eq!(outcome_of(&p, 5), &RowOutcome::Unchanged);
    assert!(error_of(&p, 6).contains("rol"), "{p:?}");
    assert!(
        error_of(&p, 7).contains("sólo los usuarios de dependencia"),
        "{p:?}"
    );
    assert!(error_of(&p, 8).contains("ya aparece en la línea 2"));

    // Without the bad rows the file applies, superiors resolved within it.
    let good: String = file.lines().take(5).map(|l| format!("{l}\n")).collect();
    let applied = api
        .service
        .apply_import(admin, ImportKind::Users, good.as_bytes())
        .await
        .expect("apply");
    assert!(applied.applied, "{applied:?}");
    let users = api.service.users(admin).await.expect("users");
    let id_of = |email: &str| users.iter().find(|u| u.email == email).expect(email).id;
    let nuevo = users
        .iter()
        .find(|u| u.email == "nuevo@sepru.gob.mx")
        .expect("nuevo");
    assert_eq!(nuevo.reports_to, Some(id_of("jefa@sepru.gob.mx")));
    assert_eq!(nuevo.agency_id, Some(api.agency_id));
    assert!(nuevo.active);
    let director = users
        .iter()
        .find(|u| u.email == "director@sepru.gob.mx")
        .expect("dir");
    assert_eq!(director.reports_to, None);
    // Imported users have no password: they cannot sign in with one.
    assert!(api.service.login("nuevo@sepru.gob.mx", "").await.is_err());

    // A loop through the file is an error on the rows that close it.
    let cycle = "correo;nombre;rol;dependencia;superior\n\
        dg@sepru.gob.mx;Dirección General;agency;SEPRU;nuevo@sepru.gob.mx\n";
    let p = api
        .service
        .preview_import(admin, ImportKind::Users, cycle.as_bytes())
        .await
        .expect("preview");
    assert!(error_of(&p, 2).contains("ciclo"), "{p:?}");
}

async fn bom_semicolon_and_formula_cells_are_data(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let formula = "=cmd|' /C calc'!A0";
    let file = format!(
        "\u{feff}Homoclave;Nombre;Dependencia (siglas);URL;Responsable (correo)\r\n\
         SEPRU-02-001;\"{formula}\";SEPRU;https://www.gob.mx/año;  responsable@sepru.gob.mx  \r\n\
         SEPRU-02-002;Señalización vial, trámite;SEPRU;https://www.gob.mx/señal;responsable@sepru.gob.mx\r\n"
    );
    let p = api
        .service
        .apply_import(admin, ImportKind::Procedures, file.as_bytes())
        .await
        .expect("apply");
    assert!(p.applied, "{p:#?}");
    assert_eq!(p.counts.new, 2);
    let procedures = api.service.procedures(admin).await.expect("procedures");
    let named = |h: &str| {
        procedures
            .iter()
            .find(|p| p.homoclave == h)
            .unwrap_or_else(|| panic!("{h}"))
            .clone()
    };
    assert_eq!(named("SEPRU-02-001").name, formula, "kept verbatim");
    assert_eq!(named("SEPRU-02-001").url, "https://www.gob.mx/año");
    assert_eq!(named("SEPRU-02-002").name, "Señalización vial, trámite");
    let responsible = api.users[3].id;
    assert_eq!(
        named("SEPRU-02-002").responsible_id,
        responsible,
        "cells trimmed"
    );
}

async fn apply_is_all_or_nothing_and_reimport_changes_nothing(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let before = api.service.procedures(admin).await.expect("procedures");
    let with_error = "homoclave,nombre,dependencia,url,responsable\n\
        SEPRU-03-001,Uno,SEPRU,https://www.gob.mx/1,responsable@sepru.gob.mx\n\
        SEPRU-01-001,Constancia renombrada,SEPRU,https://www.gob.mx/constancia,responsable@sepru.gob.mx\n\
        SEPRU-03-002,Dos,NADA,https://www.gob.mx/2,responsable@sepru.gob.mx\n";
    let p = api
        .service
        .apply_import(admin, ImportKind::Procedures, with_error.as_bytes())
        .await
        .expect("answer");
    assert!(!p.applied);
    assert_eq!(p.counts.errors, 1);
    assert_eq!(
        api.service.procedures(admin).await.expect("procedures"),
        before,
        "nothing written"
    );
    assert!(
        api.service
            .admin_changes(admin, None, None, None, 100)
            .await
            .expect("changes")
            .iter()
            .all(|c| c.action != "imported")
    );
    let good: String = with_error
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let p = api
        .service
        .apply_import(admin, ImportKind::Procedures, good.as_bytes())
        .await
        .expect("apply");
    assert!(p.applied);
    assert_eq!((p.counts.new, p.counts.changed), (1, 1));
    let after = api.service.procedures(admin).await.expect("procedures");
    let again = api
        .service
        .apply_import(admin, ImportKind::Procedures, good.as_bytes())
        .await
        .expect("again");
    assert!(again.applied);
    assert_eq!(again.counts.unchanged, 2, "{again:?}");
    assert_eq!((again.counts.new, again.counts.changed), (0, 0));
    assert_eq!(
        api.service.procedures(admin).await.expect("procedures"),
        after
    );
    let imported = api
        .service
        .admin_changes(admin, Some("procedure"), None, None, 100)
        .await
        .expect("changes")
        .into_iter()
        .filter(|c| c.action == "imported")
        .count();
    assert_eq!(
        imported, 2,
        "one change per applied row, none for the re-import"
    );
}

async fn changes_are_recorded_with_before_and_after(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    // The seed's writes are recorded too (the agencies and procedures by the admin).
    let agencies = api
        .service
        .admin_changes(admin, Some("agency"), Some(api.agency_id), None, 10)
        .await
        .expect("changes");
    assert_eq!(agencies.len(), 1);
    assert_eq!(agencies[0].action, "created");
    assert_eq!(agencies[0].actor_name, "Admin");
    assert!(agencies[0].before.is_none());
    assert_eq!(
        agencies[0].after.as_ref().expect("after")["acronym"],
        "SEPRU"
    );

    api.service
        .update_agency(
            admin,
            api.agency_id,
            AgencyUpdateInput {
                name: "Secretaría de Pruebas y Ensayos".into(),
                acronym: "SEPRU".into(),
                email_domains: vec!["sepru.gob.mx".into()],
                active: true,
            },
        )
        .await
        .expect("update");
    let changes = api
        .service
        .admin_changes(admin, Some("agency"), Some(api.agency_id), None, 10)
        .await
        .expect("changes");
    assert_eq!(changes.len(), 2);
    let last = &changes[0];
    assert_eq!(last.action, "updated");
    assert_eq!(last.actor_id, admin.id.0);
    assert_eq!(
        last.before.as_ref().expect("before")["name"],
        "Secretaría de Pruebas"
    );
    assert_eq!(
        last.after.as_ref().expect("after")["name"],
        "Secretaría de Pruebas y Ensayos"
    );

    api.service
        .set_active(admin, CatalogEntity::Procedure, api.procedure, false)
        .await
        .expect("deactivate");
    let p = &api
        .service
        .admin_changes(admin, Some("procedure"), Some(api.procedure), None, 1)
        .await
        .expect("changes")[0];
    assert_eq!(p.action, "deactivated");
    assert_eq!(p.before.as_ref().expect("before")["active"], true);
    assert_eq!(p.after.as_ref().expect("after")["active"], false);

    let file = "homoclave,nombre,dependencia,url,responsable\n\
        SEPRU-01-001,Constancia nueva,SEPRU,https://www.gob.mx/constancia,responsable@sepru.gob.mx\n";
    api.service
        .apply_import(admin, ImportKind::Procedures, file.as_bytes())
        .await
        .expect("import");
    let i = &api
        .service
        .admin_changes(admin, Some("procedure"), Some(api.procedure), None, 1)
        .await
        .expect("changes")[0];
    assert_eq!(i.action, "imported");
    assert_eq!(i.before.as_ref().expect("before")["name"], "Constancia");
    assert_eq!(i.after.as_ref().expect("after")["name"], "Constancia nueva");

    // A policy version is recorded by its number.
    let policy = api
        .service
        .add_policy(
            admin,
            incidencias::service::PolicyInput {
                effective_from: None,
                targets: incidencias_core::slo::SEED_TARGETS,
                warning_ratio: None,
                escalation_repeat_s: None,
                objective_pct: None,
            },
        )
        .await
        .expect("policy");
    let recorded = &api
        .service
        .admin_changes(admin, Some("policy"), None, None, 10)
        .await
        .expect("changes")[0];
    assert_eq!(recorded.entity_id, i64::from(policy.version));
    assert_eq!(recorded.action, "created");
    assert_eq!(recorded.actor_id, admin.id.0);

    // Paging: newest first, then older than the last id seen.
    let all = api
        .service
        .admin_changes(admin, None, None, None, 500)
        .await
        .expect("all");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let page = api
        .service
        .admin_changes(admin, None, None, Some(all[1].id), 2)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![all[2].id, all[3].id]
    );
    // Users created without a caller are the operator's.
    let seeded = api
        .service
        .admin_changes(admin, Some("user"), Some(api.users[0].id), None, 10)
        .await
        .expect("user changes");
    assert_eq!(seeded[0].actor_id, 0);
    assert_eq!(seeded[0].actor_name, "operador (línea de comandos)");
}

async fn deactivated_user_cannot_sign_in_and_procedure_takes_no_reports(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let helpdesk = api.callers[1].clone();
    assert!(
        api.service
            .login("mesa@ugd.gob.mx", "contraseña-de-prueba")
            .await
            .is_ok()
    );
    assert!(api.service.authenticate_token(&api.helpdesk).await.is_ok());
    api.service
        .set_active(admin, CatalogEntity::User, helpdesk.id.0, false)
        .await
        .expect("deactivate");
    assert!(matches!(
        api.service
            .login("mesa@ugd.gob.mx", "contraseña-de-prueba")
            .await,
        Err(ServiceError::Unauthenticated)
    ));
    assert!(matches!(
        api.service.authenticate_token(&api.helpdesk).await,
        Err(ServiceError::Unauthenticated)
    ));
    api.service
        .set_active(admin, CatalogEntity::User, helpdesk.id.0, true)
        .await
        .expect("reactivate");
    assert!(api.service.authenticate_token(&api.helpdesk).await.is_ok());
    // An admin cannot lock themself out.
    assert!(matches!(
        api.service
            .set_active(admin, CatalogEntity::User, admin.id.0, false)
            .await,
        Err(ServiceError::Invalid(_))
    ));

    let report = |helpdesk: incidencias::service::Caller| {
        let service = api.service.clone();
        let procedure = api.procedure;
        let occurred = api.clock_now() - jiff::SignedDuration::from_mins(5);
        async move {
            service
                .report(
                    &helpdesk,
                    NewIncidentInput {
                        procedure_ids: vec![ProcedureId(procedure)],
                        kind: IncidentKind::Unavailable,
                        description: "No carga".into(),
                        occurred_at: occurred,
                        channel: Channel::Phone,
                    },
                    None,
                )
                .await
        }
    };
    assert!(report(helpdesk.clone()).await.is_ok());
    let current = api
        .service
        .procedures(admin)
        .await
        .expect("procedures")
        .into_iter()
        .find(|p| p.id == api.procedure)
        .expect("procedure");
    api.service
        .update_procedure(
            admin,
            api.procedure,
            ProcedureUpdateInput {
                name: current.name,
                url: current.url,
                responsible_id: current.responsible_id,
                active: false,
            },
        )
        .await
        .expect("deactivate");
    match report(helpdesk.clone()).await {
        Err(ServiceError::Invalid(errors)) => {
            assert_eq!(errors[0].field, "procedure_ids");
            assert!(errors[0].message.contains("dado de baja"), "{errors:?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn ladder_chain_and_warnings(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let responsible = api.users[3].id;
    let chain = api
        .service
        .ladder(admin, responsible)
        .await
        .expect("ladder");
    let emails: Vec<&str> = chain.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        vec![
            "responsable@sepru.gob.mx",
            "director@sepru.gob.mx",
            "dg@sepru.gob.mx"
        ]
    );
    // The other agency's responsible has nobody above; the validator's chain is fine.
    let warnings = api.service.ladder_warnings(admin).await.expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0.email, "responsable@otra.gob.mx");
    assert_eq!(warnings[0].1, NO_SUPERIOR_RESPONSIBLE);
    // Deactivating the CEDN lead leaves the validator without a superior.
    let lead = api.users[7].id;
    api.service
        .set_active(admin, CatalogEntity::User, lead, false)
        .await
        .expect("deactivate");
    let warnings = api.service.ladder_warnings(admin).await.expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|(u, why)| u.email == "cedn@ugd.gob.mx" && why == NO_SUPERIOR_VALIDATOR),
        "{warnings:?}"
    );
}

async fn user_updates_keep_the_ladder_sound(url: String) {
    let api = Api::new(&url).await;
    let admin = &api.callers[0];
    let [responsible, dg] = [api.users[3].id, api.users[5].id];
    let input = |reports_to: Option<i64>| UserUpdateInput {
        name: "Dirección General".into(),
        role: "agency".into(),
        agency_id: Some(api.agency_id),
        reports_to,
        active: true,
    };
    let fields = |r: Result<incidencias::documents::UserDoc, ServiceError>| match r {
        Err(ServiceError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>(),
        other => panic!("expected Invalid, got {other:?}"),
    };
    // dg -> responsible would close responsible -> director -> dg -> responsible.
    let e = fields(
        api.service
            .update_user(admin, dg, input(Some(responsible)))
            .await,
    );
    assert!(e[0].contains("ciclo"), "{e:?}");
    let e = fields(api.service.update_user(admin, dg, input(Some(dg))).await);
    assert!(e[0].contains("propio superior"), "{e:?}");
    // Keeping the role/agency rule.
    let mut central = input(None);
    central.role = "helpdesk".into();
    let e = fields(api.service.update_user(admin, dg, central).await);
    assert!(e[0].starts_with("agency_id"), "{e:?}");
    // A valid change goes through and is recorded.
    let mut renamed = input(None);
    renamed.name = "Dirección General Adjunta".into();
    let doc = api
        .service
        .update_user(admin, dg, renamed)
        .await
        .expect("update");
    assert_eq!(doc.name, "Dirección General Adjunta");
    let change = &api
        .service
        .admin_changes(admin, Some("user"), Some(dg), None, 1)
        .await
        .expect("changes")[0];
    assert_eq!(change.action, "updated");
    // A procedure's responsible stays an agency user of its agency.
    let mut moved = input(None);
    moved.name = "Responsable".into();
    moved.agency_id = Some(api.other_agency_id);
    let e = fields(api.service.update_user(admin, responsible, moved).await);
    assert!(e[0].contains("es responsable de SEPRU-01-001"), "{e:?}");
    let file = "correo,nombre,rol,dependencia
        responsable@sepru.gob.mx,Responsable,helpdesk,
";
    let p = api
        .service
        .preview_import(admin, ImportKind::Users, file.as_bytes())
        .await
        .expect("preview");
    assert!(
        error_of(&p, 2).contains("es responsable de SEPRU-01-001"),
        "{p:?}"
    );
}

async fn only_admins_administer(url: String) {
    let api = Api::new(&url).await;
    let helpdesk = &api.callers[1];
    let forbidden = |r: Result<(), ServiceError>| {
        assert!(matches!(r, Err(ServiceError::Forbidden(_))), "{r:?}");
    };
    let s = &api.service;
    forbidden(
        s.set_active(helpdesk, CatalogEntity::Procedure, api.procedure, false)
            .await,
    );
    forbidden(
        s.admin_changes(helpdesk, None, None, None, 10)
            .await
            .map(drop),
    );
    forbidden(s.ladder(helpdesk, api.users[3].id).await.map(drop));
    forbidden(s.ladder_warnings(helpdesk).await.map(drop));
    forbidden(
        s.preview_import(helpdesk, ImportKind::Users, b"correo,nombre,rol\n")
            .await
            .map(drop),
    );
    forbidden(
        s.apply_import(helpdesk, ImportKind::Procedures, b"homoclave\n")
            .await
            .map(drop),
    );
    for caller in &api.callers[1..] {
        forbidden(
            s.update_agency(
                caller,
                api.agency_id,
                AgencyUpdateInput {
                    name: "X".into(),
                    acronym: "SEPRU".into(),
                    email_domains: vec!["sepru.gob.mx".into()],
                    active: false,
                },
            )
            .await
            .map(drop),
        );
    }
}
