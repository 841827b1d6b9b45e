//! `incidencias demo`: a living system in one command. Seeds a fresh database with three
//! fictitious agencies, their procedures, users of every role with three-level
//! `reports_to` chains, and about twenty incidents in every state with their history,
//! decided through the same service as real traffic (at past instants).

use std::sync::Arc;

use incidencias_core::escalation::Ladder;
use incidencias_core::{Channel, Command, Folio, IncidentKind, ProcedureId, Role, Severity};
use jiff::{SignedDuration, Timestamp};

use crate::clock::ManualClock;
use crate::documents::ReportFormBody;
use crate::documents::UserDoc;
use crate::service::{
    Caller, NewAgencyInput, NewIncidentInput, NewProcedureInput, NewUserInput, Service,
    ServiceError,
};
use crate::store::Store;

/// The password of every demo user (printed by `demo`; never use it elsewhere).
pub const DEMO_PASSWORD: &str = "demo-incidencias-2026";

/// A demo account and its credentials.
pub struct DemoUser {
    pub user: UserDoc,
    pub token: String,
}

pub struct Demo {
    pub users: Vec<DemoUser>,
    pub procedures: usize,
    pub incidents: usize,
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// A seeded account: as listed, and as it acts.
#[derive(Clone)]
struct Account {
    doc: UserDoc,
    caller: Caller,
}

struct Seeder {
    service: Service,
    clock: ManualClock,
}

impl Seeder {
    async fn user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        agency: Option<i64>,
        reports_to: Option<&Account>,
    ) -> Result<Account, ServiceError> {
        let doc = self
            .service
            .create_user_unchecked(NewUserInput {
                name: name.into(),
                email: email.into(),
                role: role.as_str().into(),
                agency_id: agency,
                reports_to: reports_to.map(|u| u.doc.id),
                password: Some(DEMO_PASSWORD.into()),
            })
            .await?;
        let caller = self.service.caller(doc.id).await?;
        Ok(Account { doc, caller })
    }

    fn at(&self, t: Timestamp) {
        self.clock.set(t);
    }

    async fn act(&self, who: &Caller, folio: Folio, command: Command) -> Result<(), ServiceError> {
        self.service
            .act(who, folio, command, None)
            .await
            .map(|_| ())
    }
}

fn caller(account: &Account) -> Caller {
    account.caller.clone()
}

fn form(restored: Timestamp, detected: Timestamp) -> ReportFormBody {
    ReportFormBody {
        detected_at: Some(detected),
        restored_at: Some(restored),
        symptoms: "El formulario devolvía error 503 al enviar la solicitud.".into(),
        impact: "Alrededor de 850 solicitudes no concluidas durante la falla.".into(),
        root_cause: "Agotamiento del grupo de conexiones a la base de datos del trámite.".into(),
        actions_taken: vec![
            "Reinicio controlado del servicio de aplicación".into(),
            "Aumento del límite de conexiones y alerta de saturación".into(),
        ],
        verification: "Prueba de extremo a extremo con tres solicitudes reales.".into(),
        preventive_actions: "Prueba de carga mensual y monitoreo del grupo de conexiones.".into(),
        prepared_by_name: "Laura Méndez Ortiz".into(),
        prepared_by_position: "Subdirectora de Operación de Sistemas".into(),
        attachments: vec!["bitacora-incidente.pdf".into()],
    }
}

/// Seeds `store` (fresh, migrated) and returns the accounts to print. `now` anchors the
/// history: incidents happened during the last days up to a few minutes ago.
pub async fn seed(store: &Store, now: Timestamp) -> Result<Demo, ServiceError> {
    let clock = ManualClock::new(now - SignedDuration::from_hours(80));
    let service = Service::new(store.clone(), Arc::new(clock.clone()));
    let s = Seeder { service, clock };

    let admin = s
        .user(
            "admin@incidencias.gob.mx",
            "Administración del sistema",
            Role::Admin,
            None,
            None,
        )
        .await?;
    let admin_c = caller(&admin);
    let mesa_jefa = s
        .user(
            "coordinacion.mesa@ugd.gob.mx",
            "Rocío Osnaya (Coordinación Mesa de ayuda)",
            Role::Helpdesk,
            None,
            None,
        )
        .await?;
    let mesa = s
        .user(
            "mesa@ugd.gob.mx",
            "Mesa de ayuda gob.mx",
            Role::Helpdesk,
            None,
            Some(&mesa_jefa),
        )
        .await?;
    let cedn_dir = s
        .user(
            "direccion.cedn@ugd.gob.mx",
            "Dirección de CEDN",
            Role::Validator,
            None,
            None,
        )
        .await?;
    let cedn_jefe = s
        .user(
            "jefatura.cedn@ugd.gob.mx",
            "Jefatura de validación CEDN",
            Role::Validator,
            None,
            Some(&cedn_dir),
        )
        .await?;
    let cedn = s
        .user(
            "validacion.cedn@ugd.gob.mx",
            "Validación CEDN",
            Role::Validator,
            None,
            Some(&cedn_jefe),
        )
        .await?;
    let mut users = vec![
        admin,
        mesa_jefa,
        mesa.clone(),
        cedn_dir,
        cedn_jefe,
        cedn.clone(),
    ];

    // Three fictitious agencies, each with a three-level ladder above its responsibles.
    let agencies = [
        ("Secretaría de Bienestar Digital", "SBD", "sbd.gob.mx"),
        ("Instituto Nacional de Trámites", "INT", "int.gob.mx"),
        ("Comisión Federal de Registros", "CFR", "cfr.gob.mx"),
    ];
    let procedure_names: [&[&str]; 3] = [
        &[
            "Solicitud de apoyo para adultos mayores",
            "Constancia de inscripción al padrón",
            "Actualización de datos del beneficiario",
            "Consulta de pagos",
        ],
        &[
            "Registro de trámites en línea",
            "Cita para atención presencial",
            "Certificado de cumplimiento",
        ],
        &[
            "Inscripción en el registro federal",
            "Aviso de modificación",
            "Copia certificada de asiento",
        ],
    ];
    let mut agency_people = Vec::new();
    let mut procedures = Vec::new();
    for (n, (name, acronym, domain)) in agencies.iter().enumerate() {
        let agency = s
            .service
            .create_agency(
                &admin_c,
                NewAgencyInput {
                    name: (*name).into(),
                    acronym: (*acronym).into(),
                    email_domains: vec![(*domain).into()],
                },
            )
            .await?;
        let a = Some(agency.id);
        let sub = s
            .user(
                &format!("subsecretaria@{domain}"),
                "Subsecretaría",
                Role::Agency,
                a,
                None,
            )
            .await?;
        let dg = s
            .user(
                &format!("direccion.general@{domain}"),
                "Dirección General de TI",
                Role::Agency,
                a,
                Some(&sub),
            )
            .await?;
        let dir = s
            .user(
                &format!("direccion.sistemas@{domain}"),
                "Dirección de Sistemas",
                Role::Agency,
                a,
                Some(&dg),
            )
            .await?;
        let resp = s
            .user(
                &format!("responsable@{domain}"),
                "Responsable de trámites",
                Role::Agency,
                a,
                Some(&dir),
            )
            .await?;
        users.extend([sub, dg, dir, resp.clone()]);
        for (k, pname) in procedure_names[n].iter().enumerate() {
            let modality = if k == 3 { "-A" } else { "" };
            let p = s
                .service
                .create_procedure(
                    &admin_c,
                    NewProcedureInput {
                        homoclave: format!("{acronym}-0{}-00{}{modality}", n + 1, k + 1),
                        name: (*pname).into(),
                        agency_id: agency.id,
                        url: format!(
                            "https://www.gob.mx/tramites/{}-{}",
                            acronym.to_lowercase(),
                            k + 1
                        ),
                        responsible_id: resp.doc.id,
                    },
                )
                .await?;
            procedures.push((p.id, n));
        }
        agency_people.push(resp);
    }

    let mesa_c = caller(&mesa);
    let cedn_c = caller(&cedn);
    let procedure_of = |i: usize| procedures[i % procedures.len()];
    let descriptions = [
        "El trámite no carga: la página muestra error 503.",
        "Intermitencia al enviar el formulario; uno de cada tres envíos falla.",
        "Tiempos de respuesta de más de 40 segundos al consultar el estado.",
        "El pago en línea no concluye: se queda en «procesando».",
    ];
    let kinds = [
        IncidentKind::Unavailable,
        IncidentKind::Intermittent,
        IncidentKind::Slow,
        IncidentKind::CannotComplete,
    ];
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    // Each plan: (how far the incident gets, minutes ago it was reported).
    #[derive(Clone, Copy, PartialEq)]
    enum Stage {
        Reported,
        AwaitingAck,
        InCorrection,
        AwaitingValidation,
        SecondRound,
        Validated,
        FormIncomplete,
        Closed,
        Dismissed,
    }
    use Stage::*;
    let plans = [
        (Reported, 12),
        (Reported, 35),
        (Reported, 95),
        (AwaitingAck, 8),
        (AwaitingAck, 50),
        (AwaitingAck, 240),
        (InCorrection, 70),
        (InCorrection, 300),
        (AwaitingValidation, 110),
        (AwaitingValidation, 600),
        (SecondRound, 900),
        (Validated, 1500),
        (FormIncomplete, 2000),
        (Closed, 2900),
        (Closed, 3500),
        (Closed, 4200),
        (Closed, 4600),
        (Dismissed, 400),
        (Dismissed, 3000),
        (Validated, 700),
    ];
    for (i, (stage, ago)) in plans.iter().enumerate() {
        let (procedure, agency_n) = procedure_of(i);
        let resp = caller(&agency_people[agency_n]);
        let t0 = now - mins(*ago);
        s.at(t0);
        let reporter = if i % 3 == 0 { &resp } else { &mesa_c };
        let created = s
            .service
            .report(
                reporter,
                NewIncidentInput {
                    procedure_ids: vec![ProcedureId(procedure)],
                    kind: kinds[i % 4],
                    description: descriptions[i % 4].into(),
                    occurred_at: t0 - mins(6 + (i as i64 % 4) * 7),
                    channel: [
                        Channel::Phone,
                        Channel::Email,
                        Channel::Web,
                        Channel::Monitor,
                    ][i % 4],
                },
                None,
            )
            .await?;
        let folio = serde_json::from_str::<serde_json::Value>(&created.body)
            .ok()
            .and_then(|v| v.get("folio").and_then(|f| f.as_str()).map(str::to_string))
            .and_then(|f| Folio::parse(&f).ok())
            .ok_or_else(|| ServiceError::Internal("folio del demo".into()))?;
        let step = |k: i64| t0 + mins(*ago * k / 10);
        match stage {
            Reported => continue,
            Dismissed => {
                s.at(step(2));
                s.act(
                    &mesa_c,
                    folio,
                    Command::Dismiss {
                        reason: "Reporte duplicado de una incidencia ya registrada.".into(),
                    },
                )
                .await?;
                continue;
            }
            _ => {}
        }
        s.at(step(1));
        let severity = severities[i % 4];
        s.act(
            &mesa_c,
            folio,
            Command::Notify {
                severity,
                disable_button: kinds[i % 4] != IncidentKind::Slow,
            },
        )
        .await?;
        if *stage == AwaitingAck {
            if *ago > 200 {
                s.at(step(6));
                s.act(
                    &mesa_c,
                    folio,
                    Command::Escalate {
                        reason: "El responsable no ha confirmado de enterado.".into(),
                        ladder: Ladder::default(),
                    },
                )
                .await?;
            }
            continue;
        }
        s.at(step(2));
        s.act(&resp, folio, Command::Acknowledge).await?;
        s.act(
            &resp,
            folio,
            Command::SetBanner {
                shown: true,
                message: Some(
                    "Este trámite presenta intermitencia; estamos trabajando para restablecerlo."
                        .into(),
                ),
            },
        )
        .await?;
        if *stage == InCorrection {
            continue;
        }
        s.at(step(4));
        s.act(&resp, folio, Command::NotifyResolution { summary: "Se reinició el servicio y se amplió el grupo de conexiones; verificado con pruebas de extremo a extremo.".into() }).await?;
        if *stage == AwaitingValidation {
            continue;
        }
        if *stage == SecondRound {
            s.at(step(5));
            s.act(
                &cedn_c,
                folio,
                Command::RecordValidation {
                    passed: false,
                    observations: vec![
                        "El acuse de recibo no muestra el folio del trámite.".into(),
                    ],
                },
            )
            .await?;
            s.at(step(7));
            s.act(
                &resp,
                folio,
                Command::NotifyResolution {
                    summary: "Se corrigió la plantilla del acuse de recibo.".into(),
                },
            )
            .await?;
            continue;
        }
        s.at(step(5));
        s.act(
            &cedn_c,
            folio,
            Command::RecordValidation {
                passed: true,
                observations: vec![],
            },
        )
        .await?;
        s.at(step(6));
        s.act(
            &resp,
            folio,
            Command::SetBanner {
                shown: false,
                message: None,
            },
        )
        .await?;
        if *stage == Validated && i % 2 == 1 {
            continue;
        }
        s.at(step(7));
        let mut f = form(step(4), t0);
        if *stage == FormIncomplete {
            f.root_cause = String::new();
        }
        s.act(&resp, folio, Command::SubmitReportForm(f.into()))
            .await?;
        if *stage == Validated {
            continue;
        }
        s.at(step(8));
        if *stage == FormIncomplete {
            s.act(
                &mesa_c,
                folio,
                Command::ReviewReportForm {
                    complete: false,
                    missing: vec![],
                    message: Some("Favor de indicar la causa raíz.".into()),
                },
            )
            .await?;
            continue;
        }
        s.act(
            &mesa_c,
            folio,
            Command::ReviewReportForm {
                complete: true,
                missing: vec![],
                message: None,
            },
        )
        .await?;
        s.at(step(9));
        s.act(&mesa_c, folio, Command::Close).await?;
    }

    s.at(now);
    let mut demo_users = Vec::new();
    for user in users {
        let token = s.service.create_token(&user.doc.email).await?;
        demo_users.push(DemoUser {
            user: user.doc,
            token,
        });
    }
    Ok(Demo {
        users: demo_users,
        procedures: procedures.len(),
        incidents: plans.len(),
    })
}
