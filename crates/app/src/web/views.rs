//! View models: what a page shows, computed from the service's documents so that the
//! templates only print. Which actions a page offers comes from the service (which asks
//! the core's `available_actions`); nothing here or in a template decides a protocol rule.

use std::collections::HashMap;

use incidencias_core::actions::Action;
use incidencias_core::{
    Channel, ClockName, ClosingCondition, FormField, IncidentKind, IncidentState, Role, Severity,
};
use jiff::Timestamp;

use super::format;
use crate::documents::{AgencyDoc, ClockDoc, EventDoc, IncidentDoc, ProcedureDoc, ReceivedDoc};
use crate::service::IncidentMail;

/// Names the pages need to say what an id is.
#[derive(Debug, Default)]
pub struct Names {
    pub procedures: HashMap<i64, (String, String)>,
    pub agencies: HashMap<i64, (String, String)>,
}

impl Names {
    pub fn new(procedures: &[ProcedureDoc], agencies: &[AgencyDoc]) -> Names {
        Names {
            procedures: procedures
                .iter()
                .map(|p| (p.id, (p.homoclave.clone(), p.name.clone())))
                .collect(),
            agencies: agencies
                .iter()
                .map(|a| (a.id, (a.acronym.clone(), a.name.clone())))
                .collect(),
        }
    }

    /// `HOMOCLAVE — Nombre` of each procedure.
    pub fn procedures_of(&self, doc: &IncidentDoc) -> Vec<String> {
        doc.procedure_ids
            .iter()
            .map(|id| match self.procedures.get(id) {
                Some((key, name)) => format!("{key} — {name}"),
                None => format!("trámite {id}"),
            })
            .collect()
    }

    pub fn agency_acronym(&self, id: i64) -> String {
        self.agencies
            .get(&id)
            .map(|a| a.0.clone())
            .unwrap_or_else(|| format!("dependencia {id}"))
    }

    pub fn agency_name(&self, id: i64) -> String {
        self.agencies
            .get(&id)
            .map(|a| a.1.clone())
            .unwrap_or_else(|| format!("dependencia {id}"))
    }
}

/// The copy deck's label of an API name, or the name itself if it is unknown.
fn label_of<T: Copy>(
    all: &[T],
    name: &str,
    as_str: fn(T) -> &'static str,
    label: fn(T) -> &'static str,
) -> String {
    all.iter()
        .find(|v| as_str(**v) == name)
        .map(|v| label(*v).to_string())
        .unwrap_or_else(|| name.to_string())
}

pub fn state_label(name: &str) -> String {
    label_of(
        &IncidentState::ALL,
        name,
        IncidentState::as_str,
        IncidentState::label,
    )
}

pub fn severity_label(name: Option<&str>) -> String {
    match name {
        Some(n) => label_of(Severity::ALL, n, Severity::as_str, Severity::label),
        None => "Sin asignar".to_string(),
    }
}

pub fn kind_label(name: &str) -> String {
    label_of(
        IncidentKind::ALL,
        name,
        IncidentKind::as_str,
        IncidentKind::label,
    )
}

pub fn channel_label(name: &str) -> String {
    label_of(Channel::ALL, name, Channel::as_str, Channel::label)
}

pub fn role_label(name: &str) -> String {
    label_of(Role::ALL, name, Role::as_str, Role::label)
}

/// A form field's label by its API name (`detected_at`, ...).
pub fn form_field_label(name: &str) -> String {
    label_of(&FormField::ALL, name, FormField::as_str, FormField::label)
}

/// One clock as a person reads it: its name, its state in words, how much of its target
/// is used (a bar, with the same in words: colour is never alone).
#[derive(Debug, Clone)]
pub struct ClockView {
    pub label: String,
    /// en curso, en pausa, cumplido, excedido.
    pub state: &'static str,
    /// A CSS class: `ok`, `warn` (75 % used), `late`, `done`, `paused`.
    pub tone: &'static str,
    pub target: String,
    pub elapsed: String,
    /// "vence en 12 min", "excedido hace 3 h", "cumplido", "en pausa".
    pub phrase: String,
    /// Share of the target used, 0 to 100 in steps of 5 (the bar's class).
    pub percent: u32,
    /// The deadline, `dd/mm/aaaa hh:mm`, while it runs.
    pub due: Option<String>,
    /// The deadline as RFC 3339, for the live countdown.
    pub due_iso: Option<String>,
}

pub fn clock_label(doc: &ClockDoc) -> String {
    let name = label_of(
        &ClockName::ALL,
        &doc.name,
        ClockName::as_str,
        ClockName::label,
    );
    if doc.name == "validation" {
        format!("{name} (ronda {})", doc.round)
    } else {
        name
    }
}

pub fn clock_view(doc: &ClockDoc, now: Timestamp) -> ClockView {
    let target = i64::from(doc.target_s);
    let percent = if target > 0 {
        let used = (doc.elapsed_s.max(0) * 100 / target).min(100);
        u32::try_from(used / 5 * 5).unwrap_or(100)
    } else {
        100
    };
    let running = doc.stopped_at.is_none();
    let (state, tone, phrase) = match (doc.state.as_str(), running) {
        ("breached", true) => (
            "excedido",
            "late",
            doc.due_at
                .map(|d| format::deadline(d, now))
                .unwrap_or_else(|| "excedido".into()),
        ),
        ("breached", false) => (
            "excedido",
            "late",
            format!("excedido por {}", format::span(doc.elapsed_s - target)),
        ),
        ("met", _) => ("cumplido", "done", "cumplido".to_string()),
        ("paused", _) => (
            "en pausa",
            "paused",
            format!("en pausa; quedan {}", format::span(target - doc.elapsed_s)),
        ),
        _ => (
            "en curso",
            if percent >= 75 { "warn" } else { "ok" },
            doc.due_at
                .map(|d| format::deadline(d, now))
                .unwrap_or_default(),
        ),
    };
    ClockView {
        label: clock_label(doc),
        state,
        tone,
        target: format::span(target),
        elapsed: format::span(doc.elapsed_s),
        phrase,
        percent,
        due: doc.due_at.filter(|_| running).map(format::instant),
        due_iso: doc.due_at.filter(|_| running).map(|d| d.to_string()),
    }
}

/// The clock that matters now: the running one with the nearest deadline (a breached one
/// first), else a paused one.
pub fn current_clock(doc: &IncidentDoc, now: Timestamp) -> Option<ClockView> {
    let running = doc
        .clocks
        .iter()
        .filter(|c| c.stopped_at.is_none() && c.due_at.is_some())
        .min_by_key(|c| c.due_at);
    running
        .or_else(|| doc.clocks.iter().find(|c| c.state == "paused"))
        .map(|c| clock_view(c, now))
}

/// One row of the queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub folio: String,
    pub procedures: Vec<String>,
    pub agency: String,
    pub severity: String,
    pub severity_class: String,
    pub state: String,
    pub clock: Option<ClockView>,
    pub escalation_level: u32,
}

pub fn queue_row(doc: &IncidentDoc, names: &Names, now: Timestamp) -> QueueRow {
    QueueRow {
        folio: doc.folio.clone(),
        procedures: names.procedures_of(doc),
        agency: names.agency_acronym(doc.agency_id),
        severity: severity_label(doc.severity.as_deref()),
        severity_class: doc.severity.clone().unwrap_or_else(|| "none".into()),
        state: state_label(&doc.state),
        clock: current_clock(doc, now),
        escalation_level: doc.escalation_level,
    }
}

/// An action the page offers, as a form: its copy-deck word and where it posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionView {
    pub name: &'static str,
    pub label: &'static str,
    /// Asks "are you sure" first (with JavaScript; the server needs a reason anyway).
    pub confirm: Option<&'static str>,
}

impl From<Action> for ActionView {
    fn from(a: Action) -> ActionView {
        ActionView {
            name: a.name(),
            label: a.label(),
            confirm: match a {
                Action::Close => Some("¿Cerrar la incidencia? Ya no admitirá más acciones."),
                Action::Dismiss => Some("¿Descartar el reporte? Ya no admitirá más acciones."),
                _ => None,
            },
        }
    }
}

/// The actions the incident page lists as forms, and the report form's, which live in
/// their own section.
pub fn split_actions(actions: &[Action]) -> (Vec<ActionView>, Vec<ActionView>) {
    let form = |a: &Action| {
        matches!(
            a,
            Action::SaveReportFormDraft
                | Action::SubmitReportForm
                | Action::AcceptReportForm
                | Action::RequestMissingInformation
        )
    };
    (
        actions
            .iter()
            .filter(|a| !form(a))
            .map(|a| (*a).into())
            .collect(),
        actions
            .iter()
            .filter(|a| form(a))
            .map(|a| (*a).into())
            .collect(),
    )
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct TimelineItem {
    pub at: String,
    pub ago: String,
    pub actor: String,
    pub via: String,
    pub text: String,
}

fn clock_name_of(data: &serde_json::Value) -> String {
    let name = data["name"].as_str().unwrap_or("");
    let round = data["round"].as_u64().unwrap_or(0);
    let doc = ClockDoc {
        name: name.to_string(),
        round: u32::try_from(round).unwrap_or(0),
        state: String::new(),
        target_s: 0,
        started_at: Timestamp::UNIX_EPOCH,
        due_at: None,
        stopped_at: None,
        breached_at: None,
        elapsed_s: 0,
    };
    clock_label(&doc)
}

/// What an event did, in plain Spanish.
pub fn describe(event: &EventDoc, people: &HashMap<i64, String>) -> String {
    let d = &event.data;
    let text = |k: &str| d[k].as_str().unwrap_or("").to_string();
    let person = |v: &serde_json::Value| {
        v.as_i64()
            .map(|id| {
                people
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("usuario {id}"))
            })
            .unwrap_or_default()
    };
    match event.kind.as_str() {
        "reported" => format!(
            "Reportó la incidencia ({}, por {}): {}",
            kind_label(&text("kind")),
            channel_label(&text("channel")).to_lowercase(),
            text("description")
        ),
        "occurred_at_corrected" => format!(
            "Corrigió el momento en que ocurrió la falla: {}",
            text("reason")
        ),
        "notified" => format!(
            "Notificó la incidencia con severidad {}",
            severity_label(d["severity"].as_str())
        ),
        "button_set" => {
            if d["enabled"].as_bool() == Some(true) {
                "Se habilitó el botón del trámite en el portal".into()
            } else {
                "Se deshabilitó el botón del trámite en el portal".into()
            }
        }
        "acknowledged" => "Confirmó de enterado".into(),
        "banner_set" => {
            if d["shown"].as_bool() == Some(true) {
                match d["message"].as_str() {
                    Some(m) => format!("Desplegó la cortinilla: «{m}»"),
                    None => "Desplegó la cortinilla".into(),
                }
            } else {
                "Retiró la cortinilla".into()
            }
        }
        "banner_not_seen" => format!(
            "No se encontró la cortinilla en {}: {}",
            text("url"),
            text("detail")
        ),
        "banner_exempted" => format!(
            "Registró por qué no se desplegó la cortinilla: {}",
            text("reason")
        ),
        "resolution_notified" => format!(
            "Avisó la resolución (ronda {}): {}",
            d["round"].as_u64().unwrap_or(0),
            text("summary")
        ),
        "validation_recorded" => {
            let round = d["round"].as_u64().unwrap_or(0);
            if d["passed"].as_bool() == Some(true) {
                format!("Aprobó la validación (ronda {round})")
            } else {
                let obs: Vec<&str> = d["observations"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|o| o.as_str()).collect())
                    .unwrap_or_default();
                format!("Rechazó la validación (ronda {round}): {}", obs.join("; "))
            }
        }
        "report_form_submitted" => "Envió el formato de incidencias".into(),
        "report_form_draft_saved" => "Guardó un borrador del formato de incidencias".into(),
        "report_form_reviewed" => {
            if d["complete"].as_bool() == Some(true) {
                "Aceptó el formato de incidencias".into()
            } else {
                let fields: Vec<String> = d["missing"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f.as_str())
                            .map(form_field_label)
                            .collect()
                    })
                    .unwrap_or_default();
                if fields.is_empty() {
                    "Solicitó información faltante del formato".into()
                } else {
                    format!("Solicitó información faltante: {}", fields.join(", "))
                }
            }
        }
        "severity_changed" => format!(
            "Cambió la severidad de {} a {}: {}",
            severity_label(d["from"].as_str()),
            severity_label(d["to"].as_str()),
            text("reason")
        ),
        "warning_issued" => format!(
            "Aviso preventivo: el plazo de {} está por vencer",
            clock_name_of(&d["clock"])
        ),
        "clock_breached" => format!("Se excedió el plazo de {}", clock_name_of(&d["clock"])),
        "escalated" => {
            let why = match d["clock"].is_null() {
                true => text("reason"),
                false => format!("plazo de {} excedido", clock_name_of(&d["clock"])),
            };
            let to = person(&d["to"]);
            let to = if to.is_empty() {
                String::new()
            } else {
                format!(" ({to})")
            };
            format!(
                "Escaló al nivel {}{to}: {}",
                d["level"].as_u64().unwrap_or(0),
                why
            )
        }
        "closed" => "Cerró la incidencia".into(),
        "dismissed" => format!("Descartó el reporte: {}", text("reason")),
        other => other.to_string(),
    }
}

pub fn via_label(via: Option<&serde_json::Value>) -> String {
    match via.and_then(|v| v["channel"].as_str()) {
        Some("api") => "API".into(),
        Some("web") => "página web".into(),
        Some("link") => "enlace de correo".into(),
        Some("email") => "respuesta por correo".into(),
        _ => String::new(),
    }
}

/// Who acted in an event, as the timeline names them.
pub fn actor_label(e: &EventDoc) -> String {
    match &e.actor_name {
        Some(name) => name.clone(),
        None if e.actor["type"] == "system" => "Sistema".into(),
        None => "—".into(),
    }
}

/// The names of the people the events name as recipients (`data.to`), for [`describe`].
pub fn people_of(events: &[EventDoc], org: &crate::service::OrgChart) -> HashMap<i64, String> {
    events
        .iter()
        .filter_map(|e| {
            let id = e.data["to"].as_i64()?;
            Some((id, org.name(incidencias_core::UserId(id))?))
        })
        .collect()
}

pub fn timeline(
    events: &[EventDoc],
    people: &HashMap<i64, String>,
    now: Timestamp,
) -> Vec<TimelineItem> {
    events
        .iter()
        .rev()
        .map(|e| TimelineItem {
            at: format::instant(e.at),
            ago: format::relative(e.at, now),
            actor: actor_label(e),
            via: via_label(e.via.as_ref()),
            text: describe(e, people),
        })
        .collect()
}

/// One email of the incident as its page lists it.
#[derive(Debug, Clone)]
pub struct MailItem {
    pub id: i64,
    pub dead: bool,
    pub at: String,
    pub subject: String,
    pub to: String,
    pub state: String,
    pub error: Option<String>,
}

pub fn outbox_state_label(state: &str) -> &'static str {
    match state {
        "pending" => "en cola",
        "sent" => "enviado",
        "dead" => "no entregado",
        _ => "desconocido",
    }
}

pub fn mail_items(mail: &[IncidentMail]) -> Vec<MailItem> {
    mail.iter()
        .map(|m| MailItem {
            id: m.doc.id,
            dead: m.doc.state == "dead",
            at: format::instant(m.doc.created_at),
            subject: m.subject.clone(),
            to: m.doc.to.join(", "),
            state: outbox_state_label(&m.doc.state).to_string(),
            error: m.doc.last_error.clone(),
        })
        .collect()
}

/// One received email of the incident.
#[derive(Debug, Clone)]
pub struct ReceivedItem {
    pub at: String,
    pub sender: String,
    pub subject: String,
    pub outcome: String,
    pub excerpt: String,
}

pub fn received_items(mail: &[ReceivedDoc]) -> Vec<ReceivedItem> {
    mail.iter()
        .map(|m| ReceivedItem {
            at: format::instant(m.received_at),
            sender: m.sender.clone(),
            subject: m.subject.clone(),
            outcome: m.reason.clone().unwrap_or_else(|| m.outcome.clone()),
            excerpt: m.excerpt.clone(),
        })
        .collect()
}

/// One line of the closing checklist.
#[derive(Debug, Clone)]
pub struct Check {
    pub label: &'static str,
    pub met: bool,
}

pub fn checklist(doc: &IncidentDoc) -> Vec<Check> {
    ClosingCondition::ALL
        .iter()
        .map(|c| Check {
            label: c.label(),
            met: !doc.closing_unmet.iter().any(|u| u == c.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use incidencias_core::actions::available_actions;
    use incidencias_core::{
        Actor, AgencyId, Command, Folio, Incident, Ladder, NewReport, ProcedureId, SloPolicy,
        UserId, decide,
    };

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("in range")
    }

    fn desk() -> Actor {
        Actor::User {
            id: UserId(1),
            role: Role::Helpdesk,
            agency: None,
        }
    }

    fn agency() -> Actor {
        Actor::User {
            id: UserId(2),
            role: Role::Agency,
            agency: Some(AgencyId(1)),
        }
    }

    fn apply(state: Option<Incident>, actor: &Actor, command: Command, now: Timestamp) -> Incident {
        let policy = SloPolicy::seed();
        let events = decide(state.as_ref(), actor, &command, now, &policy).expect("accepted");
        events
            .iter()
            .fold(state, |s, e| Some(Incident::apply(s, e).expect("applies")))
            .expect("an incident")
    }

    fn reported() -> Incident {
        apply(
            None,
            &desk(),
            Command::Report(NewReport {
                folio: Folio::parse("INC-2027-000001").expect("a folio"),
                agency_id: AgencyId(1),
                procedure_ids: vec![ProcedureId(1)],
                kind: IncidentKind::Unavailable,
                description: "No abre".into(),
                occurred_at: t(-600),
                channel: Channel::Phone,
            }),
            t(0),
        )
    }

    fn offered(incident: &Incident, actor: &Actor, now: Timestamp) -> Vec<&'static str> {
        let actions =
            available_actions(incident, actor, now, &SloPolicy::seed(), &Ladder::default());
        let (main, form) = split_actions(&actions);
        main.iter().chain(form.iter()).map(|a| a.label).collect()
    }

    #[test]
    fn the_buttons_a_role_sees_are_the_cores_answer_for_the_state() {
        let incident = reported();
        assert_eq!(
            offered(&incident, &desk(), t(60)),
            ["Notificar", "Descartar"]
        );
        assert!(offered(&incident, &agency(), t(60)).is_empty());
        let notified = apply(
            Some(incident),
            &desk(),
            Command::Notify {
                severity: Severity::High,
                disable_button: true,
                occurred_at: None,
            },
            t(120),
        );
        assert_eq!(
            offered(&notified, &agency(), t(180)),
            [
                "Confirmar de enterado",
                "Desplegar cortinilla",
                "Avisar resolución"
            ]
        );
        let desk_now = offered(&notified, &desk(), t(180));
        assert!(!desk_now.contains(&"Notificar"));
        assert!(desk_now.contains(&"Cambiar severidad"));
    }

    #[test]
    fn a_clock_says_its_state_in_words_and_by_how_much_it_was_exceeded() {
        let incident = reported();
        let notified = apply(
            Some(incident),
            &desk(),
            Command::Notify {
                severity: Severity::Critical,
                disable_button: true,
                occurred_at: None,
            },
            t(120),
        );
        // Critical: acknowledgment within 15 min. 20 minutes later it is exceeded by 5.
        let doc = IncidentDoc::of(&notified, t(120 + 20 * 60));
        let ack = doc
            .clocks
            .iter()
            .find(|c| c.name == "ack")
            .expect("an ack clock");
        let view = clock_view(ack, t(120 + 20 * 60));
        assert_eq!(view.label, "Confirmación de enterado");
        assert_eq!(view.state, "excedido");
        assert_eq!(view.phrase, "excedido hace 5 min");
        assert_eq!(view.percent, 100);
        let early = IncidentDoc::of(&notified, t(120 + 12 * 60));
        let ack = early.clocks.iter().find(|c| c.name == "ack").expect("ack");
        let view = clock_view(ack, t(120 + 12 * 60));
        assert_eq!((view.state, view.tone), ("en curso", "warn"));
        assert_eq!(view.phrase, "vence en 3 min");
        assert_eq!(view.percent, 80);
    }

    #[test]
    fn the_checklist_marks_what_the_closing_rule_still_needs() {
        let doc = IncidentDoc::of(&reported(), t(60));
        let checks = checklist(&doc);
        assert_eq!(checks.len(), 5);
        assert!(!checks[0].met, "validation has not passed");
        assert!(checks[1].met, "the button was never disabled");
    }
}
