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
use crate::service::{
    Caller, NewAgencyInput, NewIncidentInput, NewProcedureInput, NewUserInput, Service,
    ServiceError,
};
use crate::store::{Store, User};

/// The password of every demo user (printed by `demo`; never use it elsewhere).
pub const DEMO_PASSWORD: &str = "demo-incidencias-2026";

/// A demo account and its credentials.
pub struct DemoUser {
    pub user: User,
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
        reports_to: Option<&User>,
    ) -> Result<User, ServiceError> {
        self.service
            .create_user_unchecked(NewUserInput {
                name: name.into(),
                email: email.into(),
                role,
                agency_id: agency,
                reports_to: reports_to.map(|u| u.id.0),
                password: Some(DEMO_PASSWORD.into()),
            })
            .await
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

fn caller(user: &User) -> Caller {
    Caller { user: user.clone() }
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

/// The central side's people, the ones the incidents' steps need by name.
struct Central {
    admin: User,
    mesa: User,
    cedn: User,
    /// Everyone created, in creation order (the order `demo` prints them in).
    all: Vec<User>,
}

/// One agency's side: its responsible (who acts on its incidents) and its procedures.
struct AgencySide {
    responsible: User,
    people: Vec<User>,
    procedures: Vec<ProcedureId>,
}

/// Three fictitious agencies: name, acronym, mail domain.
const AGENCIES: [(&str, &str, &str); 3] = [
    ("Secretaría de Bienestar Digital", "SBD", "sbd.gob.mx"),
    ("Instituto Nacional de Trámites", "INT", "int.gob.mx"),
    ("Comisión Federal de Registros", "CFR", "cfr.gob.mx"),
];

/// The procedures of each agency of [`AGENCIES`], in the same order.
const PROCEDURE_NAMES: [&[&str]; 3] = [
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

/// How far an incident of the demo gets.
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

/// Each incident: how far it gets, and how many minutes ago it was reported. Every state
/// appears, some more than once, so lists, filters and the portal have something to show.
const PLANS: [(Stage, i64); 20] = {
    use Stage::*;
    [
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
    ]
};

const DESCRIPTIONS: [&str; 4] = [
    "El trámite no carga: la página muestra error 503.",
    "Intermitencia al enviar el formulario; uno de cada tres envíos falla.",
    "Tiempos de respuesta de más de 40 segundos al consultar el estado.",
    "El pago en línea no concluye: se queda en «procesando».",
];
const KINDS: [IncidentKind; 4] = [
    IncidentKind::Unavailable,
    IncidentKind::Intermittent,
    IncidentKind::Slow,
    IncidentKind::CannotComplete,
];
const SEVERITIES: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];
const CHANNELS: [Channel; 4] = [
    Channel::Phone,
    Channel::Email,
    Channel::Web,
    Channel::Monitor,
];

/// Seeds `store` (fresh, migrated) and returns the accounts to print. `now` anchors the
/// history: incidents happened during the last days up to a few minutes ago. With
/// `link_secret`, the links in the queued emails are signed as the server will check them.
pub async fn seed(
    store: &Store,
    now: Timestamp,
    link_secret: Option<&str>,
) -> Result<Demo, ServiceError> {
    let clock = ManualClock::new(now - SignedDuration::from_hours(80));
    let service = Service::new(store.clone(), Arc::new(clock.clone()));
    if let Some(secret) = link_secret {
        service.use_link_secret(secret);
    }
    let s = Seeder { service, clock };
    let central = s.central_people().await?;
    let mut users = central.all.clone();
    let mut agencies = Vec::new();
    for (n, agency) in AGENCIES.iter().enumerate() {
        let side = s.agency_side(&caller(&central.admin), n, *agency).await?;
        users.extend(side.people.iter().cloned());
        agencies.push(side);
    }
    s.incidents(now, &central, &agencies).await?;
    s.at(now);
    let mut demo_users = Vec::new();
    for user in users {
        let token = s.service.create_token(user.email.as_str()).await?;
        demo_users.push(DemoUser { user, token });
    }
    Ok(Demo {
        users: demo_users,
        procedures: agencies.iter().map(|a| a.procedures.len()).sum(),
        incidents: PLANS.len(),
    })
}

impl Seeder {
    /// The administrator, the help desk and CEDN, each with a chain of superiors: the
    /// central side's escalation ladder (three levels for CEDN, two for the help desk).
    async fn central_people(&self) -> Result<Central, ServiceError> {
        let admin = self
            .user(
                "admin@incidencias.gob.mx",
                "Administración del sistema",
                Role::Admin,
                None,
                None,
            )
            .await?;
        let mesa_jefa = self
            .user(
                "coordinacion.mesa@ugd.gob.mx",
                "Rocío Osnaya (Coordinación Mesa de ayuda)",
                Role::Helpdesk,
                None,
                None,
            )
            .await?;
        let mesa = self
            .user(
                "mesa@ugd.gob.mx",
                "Mesa de ayuda gob.mx",
                Role::Helpdesk,
                None,
                Some(&mesa_jefa),
            )
            .await?;
        let cedn_dir = self
            .user(
                "direccion.cedn@ugd.gob.mx",
                "Dirección de CEDN",
                Role::Validator,
                None,
                None,
            )
            .await?;
        let cedn_jefe = self
            .user(
                "jefatura.cedn@ugd.gob.mx",
                "Jefatura de validación CEDN",
                Role::Validator,
                None,
                Some(&cedn_dir),
            )
            .await?;
        let cedn = self
            .user(
                "validacion.cedn@ugd.gob.mx",
                "Validación CEDN",
                Role::Validator,
                None,
                Some(&cedn_jefe),
            )
            .await?;
        let all = vec![
            admin.clone(),
            mesa_jefa,
            mesa.clone(),
            cedn_dir,
            cedn_jefe,
            cedn.clone(),
        ];
        Ok(Central {
            admin,
            mesa,
            cedn,
            all,
        })
    }

    /// The `n`-th agency of [`AGENCIES`] with its people and its procedures.
    async fn agency_side(
        &self,
        admin: &Caller,
        n: usize,
        (name, acronym, domain): (&str, &str, &str),
    ) -> Result<AgencySide, ServiceError> {
        let agency = self
            .service
            .create_agency(
                admin,
                NewAgencyInput {
                    name: name.into(),
                    acronym: acronym.into(),
                    email_domains: vec![domain.into()],
                },
            )
            .await?;
        let people = self.agency_ladder(agency.id.0, domain).await?;
        let responsible = people[3].clone();
        let procedures = self
            .procedures(admin, n, acronym, agency.id.0, &responsible)
            .await?;
        Ok(AgencySide {
            responsible,
            people,
            procedures,
        })
    }

    /// An agency's people: its responsible for procedures and three levels above, so an
    /// unanswered incident has somewhere to escalate to. Returned top down.
    async fn agency_ladder(&self, agency: i64, domain: &str) -> Result<Vec<User>, ServiceError> {
        let a = Some(agency);
        let sub = self
            .user(
                &format!("subsecretaria@{domain}"),
                "Subsecretaría",
                Role::Agency,
                a,
                None,
            )
            .await?;
        let dg = self
            .user(
                &format!("direccion.general@{domain}"),
                "Dirección General de TI",
                Role::Agency,
                a,
                Some(&sub),
            )
            .await?;
        let dir = self
            .user(
                &format!("direccion.sistemas@{domain}"),
                "Dirección de Sistemas",
                Role::Agency,
                a,
                Some(&dg),
            )
            .await?;
        let resp = self
            .user(
                &format!("responsable@{domain}"),
                "Responsable de trámites",
                Role::Agency,
                a,
                Some(&dir),
            )
            .await?;
        Ok(vec![sub, dg, dir, resp])
    }

    /// The `n`-th agency's procedures, all in the care of its responsible. The fourth has
    /// a modality suffix (`-A`), so the homoclave parser's longer form shows up too.
    async fn procedures(
        &self,
        admin: &Caller,
        n: usize,
        acronym: &str,
        agency: i64,
        responsible: &User,
    ) -> Result<Vec<ProcedureId>, ServiceError> {
        let mut ids = Vec::new();
        for (k, name) in PROCEDURE_NAMES[n].iter().enumerate() {
            let modality = if k == 3 { "-A" } else { "" };
            let p = self
                .service
                .create_procedure(
                    admin,
                    NewProcedureInput {
                        homoclave: format!("{acronym}-0{}-00{}{modality}", n + 1, k + 1),
                        name: (*name).into(),
                        agency_id: agency,
                        url: format!(
                            "https://www.gob.mx/tramites/{}-{}",
                            acronym.to_lowercase(),
                            k + 1
                        ),
                        responsible_id: responsible.id.0,
                    },
                )
                .await?;
            ids.push(p.id);
        }
        Ok(ids)
    }

    /// The incidents of [`PLANS`], spread over the procedures (round robin), each taken
    /// from its report to its stage through the same commands real users send.
    async fn incidents(
        &self,
        now: Timestamp,
        central: &Central,
        agencies: &[AgencySide],
    ) -> Result<(), ServiceError> {
        let procedures: Vec<(ProcedureId, usize)> = agencies
            .iter()
            .enumerate()
            .flat_map(|(n, a)| a.procedures.iter().map(move |p| (*p, n)))
            .collect();
        let mesa = caller(&central.mesa);
        let cedn = caller(&central.cedn);
        for (i, (stage, ago)) in PLANS.iter().enumerate() {
            let (procedure, n) = procedures[i % procedures.len()];
            let resp = caller(&agencies[n].responsible);
            let t0 = now - mins(*ago);
            // Every third incident reported by the agency itself, the rest by the help desk.
            let reporter = if i % 3 == 0 { &resp } else { &mesa };
            let folio = self.report(i, procedure, reporter, t0).await?;
            let people = People {
                mesa: &mesa,
                cedn: &cedn,
                resp: &resp,
            };
            let timeline = Timeline { t0, ago: *ago };
            self.advance(i, *stage, folio, &people, timeline).await?;
        }
        Ok(())
    }

    /// Step 1: the `i`-th incident reported at `t0`, a few minutes after it began.
    async fn report(
        &self,
        i: usize,
        procedure: ProcedureId,
        reporter: &Caller,
        t0: Timestamp,
    ) -> Result<Folio, ServiceError> {
        self.at(t0);
        let created = self
            .service
            .report(
                reporter,
                NewIncidentInput {
                    procedure_ids: vec![procedure],
                    kind: KINDS[i % 4],
                    description: DESCRIPTIONS[i % 4].into(),
                    occurred_at: t0 - mins(6 + (i as i64 % 4) * 7),
                    channel: CHANNELS[i % 4],
                },
                None,
            )
            .await?;
        serde_json::from_str::<serde_json::Value>(&created.body)
            .ok()
            .and_then(|v| v.get("folio").and_then(|f| f.as_str()).map(str::to_string))
            .and_then(|f| Folio::parse(&f).ok())
            .ok_or_else(|| ServiceError::Internal("folio del demo".into()))
    }

    /// Takes a reported incident as far as `stage`, one protocol step after another; each
    /// step happens at its point of the incident's [`Timeline`].
    async fn advance(
        &self,
        i: usize,
        stage: Stage,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        use Stage::*;
        match stage {
            Reported => return Ok(()),
            Dismissed => return self.dismiss(folio, p, t).await,
            _ => {}
        }
        self.notify(i, folio, p, t).await?;
        if stage == AwaitingAck {
            // The oldest unanswered one has already been escalated by hand.
            if t.ago > 200 {
                self.escalate(folio, p, t).await?;
            }
            return Ok(());
        }
        self.acknowledge(folio, p, t).await?;
        if stage == InCorrection {
            return Ok(());
        }
        self.notify_resolution(folio, p, t).await?;
        match stage {
            AwaitingValidation => return Ok(()),
            SecondRound => return self.fail_validation(folio, p, t).await,
            _ => {}
        }
        self.validate(folio, p, t).await?;
        // Half the validated ones still owe their report form.
        if stage == Validated && i % 2 == 1 {
            return Ok(());
        }
        self.submit_form(folio, p, t, stage == FormIncomplete)
            .await?;
        match stage {
            Validated => Ok(()),
            FormIncomplete => self.refuse_form(folio, p, t).await,
            _ => self.close(folio, p, t).await,
        }
    }

    async fn dismiss(&self, folio: Folio, p: &People<'_>, t: Timeline) -> Result<(), ServiceError> {
        self.at(t.step(2));
        let reason = "Reporte duplicado de una incidencia ya registrada.".into();
        self.act(p.mesa, folio, Command::Dismiss { reason }).await
    }

    /// Step 2's notice; the button is disabled unless the procedure is merely slow.
    async fn notify(
        &self,
        i: usize,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(1));
        let command = Command::Notify {
            severity: SEVERITIES[i % 4],
            disable_button: KINDS[i % 4] != IncidentKind::Slow,
        };
        self.act(p.mesa, folio, command).await
    }

    async fn escalate(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(6));
        let command = Command::Escalate {
            reason: "El responsable no ha confirmado de enterado.".into(),
            ladder: Ladder::default(),
        };
        self.act(p.mesa, folio, command).await
    }

    /// The agency acknowledges and puts up the portal's banner.
    async fn acknowledge(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(2));
        self.act(p.resp, folio, Command::Acknowledge).await?;
        let banner = Command::SetBanner {
            shown: true,
            message: Some(
                "Este trámite presenta intermitencia; estamos trabajando para restablecerlo."
                    .into(),
            ),
        };
        self.act(p.resp, folio, banner).await
    }

    async fn notify_resolution(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(4));
        let summary = "Se reinició el servicio y se amplió el grupo de conexiones; verificado \
                       con pruebas de extremo a extremo."
            .into();
        self.act(p.resp, folio, Command::NotifyResolution { summary })
            .await
    }

    /// CEDN finds a fault; the agency fixes it and notifies again: a second round waits.
    async fn fail_validation(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(5));
        let observations = vec!["El acuse de recibo no muestra el folio del trámite.".into()];
        let command = Command::RecordValidation {
            passed: false,
            observations,
        };
        self.act(p.cedn, folio, command).await?;
        self.at(t.step(7));
        let summary = "Se corrigió la plantilla del acuse de recibo.".into();
        self.act(p.resp, folio, Command::NotifyResolution { summary })
            .await
    }

    /// CEDN validates; the agency takes the banner down.
    async fn validate(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(5));
        let command = Command::RecordValidation {
            passed: true,
            observations: vec![],
        };
        self.act(p.cedn, folio, command).await?;
        self.at(t.step(6));
        let banner = Command::SetBanner {
            shown: false,
            message: None,
        };
        self.act(p.resp, folio, banner).await
    }

    /// Step 6's report form; `incomplete` leaves out the root cause.
    async fn submit_form(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
        incomplete: bool,
    ) -> Result<(), ServiceError> {
        self.at(t.step(7));
        let mut f = form(t.step(4), t.t0);
        if incomplete {
            f.root_cause = String::new();
        }
        self.act(p.resp, folio, Command::SubmitReportForm(f.into()))
            .await
    }

    async fn refuse_form(
        &self,
        folio: Folio,
        p: &People<'_>,
        t: Timeline,
    ) -> Result<(), ServiceError> {
        self.at(t.step(8));
        let command = Command::ReviewReportForm {
            complete: false,
            missing: vec![],
            message: Some("Favor de indicar la causa raíz.".into()),
        };
        self.act(p.mesa, folio, command).await
    }

    /// The help desk accepts the form, then closes: the closing rule holds by now.
    async fn close(&self, folio: Folio, p: &People<'_>, t: Timeline) -> Result<(), ServiceError> {
        self.at(t.step(8));
        let command = Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        };
        self.act(p.mesa, folio, command).await?;
        self.at(t.step(9));
        self.act(p.mesa, folio, Command::Close).await
    }
}

/// Who acts on one incident.
struct People<'a> {
    mesa: &'a Caller,
    cedn: &'a Caller,
    resp: &'a Caller,
}

/// When one incident's steps happen: reported `ago` minutes before now, at `t0`; step
/// `k` comes `k` tenths of that time later, so older incidents have longer histories.
#[derive(Clone, Copy)]
struct Timeline {
    t0: Timestamp,
    ago: i64,
}

impl Timeline {
    fn step(self, k: i64) -> Timestamp {
        self.t0 + mins(self.ago * k / 10)
    }
}
