//! The demo's incidents: each reported at a past instant and taken, step by step, as far
//! as its plan says, so every state of the protocol has examples with a real history.

use incidencias_core::escalation::Ladder;
use incidencias_core::{Channel, Command, Folio, IncidentKind, ProcedureId, Severity};
use jiff::Timestamp;

use super::people::{AgencySide, Central};
use super::{Seeder, caller, mins};
use crate::documents::ReportFormBody;
use crate::service::{Caller, NewIncidentInput, ServiceError};

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

impl Seeder {
    /// The incidents of [`PLANS`], spread over the procedures (round robin), each taken
    /// from its report to its stage through the same commands real users send. Returns
    /// how many.
    pub(super) async fn incidents(
        &self,
        now: Timestamp,
        central: &Central,
        agencies: &[AgencySide],
    ) -> Result<usize, ServiceError> {
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
        Ok(PLANS.len())
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
            occurred_at: None,
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

    /// Step 6's report form; `incomplete` delivers a root cause too vague to accept (the
    /// form is complete by its rules: only the help desk can judge it insufficient).
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
            f.root_cause = "Por determinar.".into();
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
            missing: vec!["root_cause".into()],
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
        draft: false,
    }
}
