//! The incident page (every clock, the portal, the closing checklist, the timeline, the
//! emails, the report form and exactly the actions the caller may take now), the forms
//! that act on it, and the new-incident form.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use incidencias_core::actions::Action;
use incidencias_core::{
    Channel, Command, Folio, FormField, IncidentKind, IncidentReport, OccurredAtCorrection,
    ProcedureId, Severity, Via,
};
use serde::Deserialize;

use super::format;
use super::pages::{Choice, Errors, Layout, html, refused};
use super::session::{Fields, Posted, Viewer};
use super::views::{
    self, ActionView, Check, ClockView, MailItem, Names, ReceivedItem, TimelineItem,
};
use crate::http::AppState;
use crate::service::{NewIncidentInput, ServiceError};

/// A fresh key for the forms of one rendered page.
fn new_key() -> String {
    crate::service::new_secret()
        .map(|s| s.trim_start_matches("inc_")[..24].to_string())
        .unwrap_or_else(|_| "sin-clave".into())
}

pub(super) fn parse_folio(raw: &str) -> Result<Folio, ServiceError> {
    Folio::parse(raw).map_err(|_| ServiceError::NotFound("la incidencia".into()))
}

// ---------------------------------------------------------------- the page

/// One field of the report form.
pub struct FormFieldView {
    pub name: &'static str,
    pub label: &'static str,
    /// `instant`, `line` or `text`.
    pub kind: &'static str,
    pub value: String,
    pub help: Option<&'static str>,
    pub error: Option<String>,
}

pub struct FormLine {
    pub label: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
pub struct IncidentPage {
    layout: Layout,
    folio: String,
    done: Option<String>,
    errors: Errors,
    submitted: Fields,
    /// The action whose form was refused ("" when none).
    refused_action: &'static str,
    state: String,
    severity: String,
    severity_class: String,
    kind: String,
    slow: bool,
    agency: String,
    procedures: Vec<String>,
    channel: String,
    occurred: String,
    occurred_input: String,
    occurred_confirmed: bool,
    reported: String,
    escalation_level: u32,
    description: String,
    actions: Vec<ActionView>,
    form_actions: Vec<ActionView>,
    severity_options: Vec<Choice>,
    idem_key: String,
    clocks: Vec<ClockView>,
    button: String,
    banner: String,
    checklist: Vec<Check>,
    form_state: String,
    form_requested: Vec<String>,
    form_issues: Vec<String>,
    form_editable: bool,
    form_fields: Vec<FormFieldView>,
    form_view: Vec<FormLine>,
    form_reviewable: bool,
    missing_options: Vec<Choice>,
    timeline: Vec<TimelineItem>,
    mails: Vec<MailItem>,
    /// The viewer may put a dead email back in the queue.
    may_retry: bool,
    received: Vec<ReceivedItem>,
}

impl IncidentPage {
    /// What the person had typed in `field` of the form of `action`, if that is the form
    /// the service just refused (several forms share field names such as "reason").
    pub fn kept(&self, action: &str, field: &str) -> String {
        if self.refused_action == action {
            self.submitted.get(field).to_string()
        } else {
            String::new()
        }
    }
}

fn form_state_label(state: &str) -> &'static str {
    match state {
        "not_due" => "aún no corresponde (se entrega después de la validación)",
        "due" => "pendiente de entrega",
        "draft" => "borrador guardado, sin entregar",
        "submitted" => "entregado, en revisión de la Mesa de ayuda",
        "incomplete" => "incompleto: se solicitó información faltante",
        "accepted" => "aceptado",
        _ => "desconocido",
    }
}

fn form_kind(field: FormField) -> (&'static str, Option<&'static str>) {
    match field {
        FormField::DetectedAt | FormField::RestoredAt => ("instant", None),
        FormField::PreparedByName | FormField::PreparedByPosition => ("line", None),
        FormField::ActionsTaken => ("text", Some("Una acción por renglón.")),
        FormField::Attachments => ("text", Some("Opcional. Un archivo o enlace por renglón.")),
        _ => ("text", None),
    }
}

/// The form's value of `field` as an input shows it.
fn form_value(form: Option<&crate::documents::ReportFormBody>, field: FormField) -> String {
    let Some(f) = form else {
        return String::new();
    };
    match field {
        FormField::DetectedAt => f.detected_at.map(format::input_value).unwrap_or_default(),
        FormField::RestoredAt => f.restored_at.map(format::input_value).unwrap_or_default(),
        FormField::Symptoms => f.symptoms.clone(),
        FormField::Impact => f.impact.clone(),
        FormField::RootCause => f.root_cause.clone(),
        FormField::ActionsTaken => f.actions_taken.join("\n"),
        FormField::Verification => f.verification.clone(),
        FormField::PreventiveActions => f.preventive_actions.clone(),
        FormField::PreparedByName => f.prepared_by_name.clone(),
        FormField::PreparedByPosition => f.prepared_by_position.clone(),
        FormField::Attachments => f.attachments.join("\n"),
    }
}

/// The label of a field the service refused, by its API name.
fn field_label(name: &str) -> String {
    let bare = name.strip_prefix("report_form.").unwrap_or(name);
    match bare {
        "summary" => "Resumen de la corrección".into(),
        "observations" => "Observaciones".into(),
        "reason" => "Motivo".into(),
        "severity" => "Severidad".into(),
        "message" => "Mensaje".into(),
        "occurred_at" => "Fecha y hora en que ocurrió".into(),
        "occurred_at_reason" | "occurred_at.reason" => "Motivo de la corrección de la fecha".into(),
        "disable_button" => "Botón del trámite".into(),
        "description" => "Descripción".into(),
        "procedure_ids" => "Trámite".into(),
        "missing" => "Campos por completar".into(),
        "kind" => "Tipo de incidencia".into(),
        "channel" => "Medio".into(),
        "body" => "Datos".into(),
        other => views::form_field_label(other),
    }
}

fn field_anchor(name: &str) -> String {
    let bare = name.strip_prefix("report_form.").unwrap_or(name);
    if FormField::ALL.iter().any(|f| f.as_str() == bare) {
        format!("form-{bare}")
    } else {
        match bare {
            "summary" => "resolution-summary".into(),
            "observations" => "reject-observations".into(),
            "description" => "description".into(),
            "occurred_at" => "notify-occurred".into(),
            "procedure_ids" => "procedure".into(),
            _ => "contenido".into(),
        }
    }
}

/// Builds the page; `errors` and `submitted` come from a refused form.
async fn build(
    state: &AppState,
    viewer: &Viewer,
    folio: Folio,
    done: Option<String>,
    errors: Errors,
    submitted: Fields,
    refused_action: &'static str,
) -> Result<IncidentPage, ServiceError> {
    let service = &state.service;
    let caller = &viewer.caller;
    let (doc, events, actions, mail, received, procedures, agencies, org) = tokio::try_join!(
        service.incident(caller, folio),
        service.events(caller, folio),
        service.available_actions(caller, folio),
        service.incident_mail(caller, folio),
        service.incident_messages(caller, folio),
        service.procedures(caller),
        service.agencies(caller),
        service.org_chart(),
    )?;
    let now = service.now();
    let names = Names::new(&procedures, &agencies);
    let people = views::people_of(&events, &org);
    let (main_actions, form_actions) = views::split_actions(&actions);
    let form_editable = form_actions.iter().any(|a| {
        a.name == Action::SubmitReportForm.name() || a.name == Action::SaveReportFormDraft.name()
    });
    let form_reviewable = form_actions.iter().any(|a| {
        a.name == Action::AcceptReportForm.name()
            || a.name == Action::RequestMissingInformation.name()
    });
    let kept = doc.report_form.form.as_ref();
    let refused_form = submitted.0.iter().any(|(k, _)| k == "_accion");
    let form_fields = FormField::ALL
        .iter()
        .map(|f| {
            let (kind, help) = form_kind(*f);
            let mut value = if refused_form {
                submitted.get(f.as_str()).to_string()
            } else {
                form_value(kept, *f)
            };
            // A new form starts from what the record already says.
            if value.is_empty() && !refused_form {
                value = match f {
                    FormField::DetectedAt => format::input_value(doc.occurred_at),
                    FormField::RestoredAt => doc
                        .rounds
                        .last()
                        .map(|r| format::input_value(r.notified_at))
                        .unwrap_or_default(),
                    FormField::PreparedByName => caller.name.clone(),
                    _ => String::new(),
                };
            }
            FormFieldView {
                name: f.as_str(),
                label: f.label(),
                kind,
                value,
                help,
                error: errors
                    .fields
                    .iter()
                    .find(|e| {
                        e.field.strip_prefix("report_form.").unwrap_or(&e.field) == f.as_str()
                    })
                    .map(|e| e.message.clone()),
            }
        })
        .collect();
    let form_view = match kept {
        Some(_) => FormField::ALL
            .iter()
            .map(|f| FormLine {
                label: f.label(),
                value: match f {
                    FormField::DetectedAt => kept
                        .and_then(|k| k.detected_at)
                        .map(format::instant)
                        .unwrap_or_default(),
                    FormField::RestoredAt => kept
                        .and_then(|k| k.restored_at)
                        .map(format::instant)
                        .unwrap_or_default(),
                    other => form_value(kept, *other),
                },
            })
            .collect(),
        None => Vec::new(),
    };
    let issues_fields: Vec<&str> = doc
        .report_form
        .issues
        .iter()
        .map(|i| i.field.as_str())
        .collect();
    let missing_options: Vec<Choice> = FormField::ALL
        .iter()
        .map(|f| Choice {
            value: f.as_str().into(),
            label: f.label().into(),
            // A refused request keeps the fields the person ticked.
            selected: if refused_action == Action::RequestMissingInformation.name() {
                submitted.all("missing").iter().any(|m| m == f.as_str())
            } else {
                issues_fields.contains(&f.as_str())
            },
        })
        .collect();
    Ok(IncidentPage {
        layout: Layout::new(Some(viewer), &format!("Incidencia {}", doc.folio), ""),
        folio: doc.folio.clone(),
        done,
        errors,
        submitted,
        refused_action,
        state: views::state_label(&doc.state),
        severity: views::severity_label(doc.severity.as_deref()),
        severity_class: doc.severity.clone().unwrap_or_else(|| "none".into()),
        kind: views::kind_label(&doc.kind),
        slow: doc.kind == IncidentKind::Slow.as_str(),
        agency: names.agency_name(doc.agency_id),
        procedures: names.procedures_of(&doc),
        channel: views::channel_label(&doc.channel),
        occurred: format!(
            "{} ({})",
            format::instant(doc.occurred_at),
            format::relative(doc.occurred_at, now)
        ),
        occurred_input: format::input_value(doc.occurred_at),
        occurred_confirmed: doc.occurred_at_confirmed,
        reported: format!(
            "{} ({})",
            format::instant(doc.reported_at),
            format::relative(doc.reported_at, now)
        ),
        escalation_level: doc.escalation_level,
        description: doc.description.clone(),
        actions: main_actions,
        form_actions,
        severity_options: Severity::ALL
            .iter()
            .map(|s| Choice {
                value: s.as_str().into(),
                label: s.label().into(),
                selected: false,
            })
            .collect(),
        idem_key: new_key(),
        clocks: doc
            .clocks
            .iter()
            .map(|c| views::clock_view(c, now))
            .collect(),
        button: if doc.portal.button_enabled {
            "Habilitado".into()
        } else {
            "Deshabilitado".into()
        },
        banner: match (doc.portal.banner_shown, &doc.portal.banner_message) {
            (true, Some(m)) => format!("Desplegada: «{m}»"),
            (true, None) => "Desplegada (aviso predeterminado)".into(),
            (false, _) => "No desplegada".into(),
        },
        checklist: views::checklist(&doc),
        form_state: form_state_label(&doc.report_form.state).into(),
        form_requested: doc
            .report_form
            .requested
            .iter()
            .map(|f| views::form_field_label(f))
            .collect(),
        form_issues: doc
            .report_form
            .issues
            .iter()
            .map(|i| format!("{}: {}", views::form_field_label(&i.field), i.message))
            .collect(),
        form_editable,
        form_fields,
        form_view,
        form_reviewable,
        missing_options,
        timeline: views::timeline(&events, &people, now),
        mails: views::mail_items(&mail),
        may_retry: crate::service::Area::Outbox.allows(caller),
        received: views::received_items(&received),
    })
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    hecho: Option<String>,
}

/// What a successful action says after the redirect.
fn done_message(action: &str) -> Option<String> {
    let label = match action {
        "reportar" => "Registrar incidencia",
        "formato" => "Formato de incidencias",
        other => Action::named(other)?.label(),
    };
    Some(format!("Acción registrada: {label}."))
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let folio = match parse_folio(&raw) {
        Ok(f) => f,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let done = query
        .ok()
        .and_then(|q| q.0.hecho)
        .and_then(|h| done_message(&h));
    match build(
        &state,
        &viewer,
        folio,
        done,
        Errors::default(),
        Fields::default(),
        "",
    )
    .await
    {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => refused(Some(&viewer), &e),
    }
}

// ---------------------------------------------------------------- acting

/// The command a form asks for.
fn command_of(
    action: Action,
    f: &Fields,
    current_occurred: Option<String>,
) -> Result<Command, ServiceError> {
    let severity = |name: &str| {
        Severity::parse(f.get(name))
            .map_err(|_| ServiceError::invalid("severity", "elija una severidad"))
    };
    let text = |name: &str| f.get(name).to_string();
    let optional = |name: &str| Some(f.get(name).trim().to_string()).filter(|s| !s.is_empty());
    Ok(match action {
        Action::Notify => {
            let occurred = f.get("occurred_at");
            let occurred_at =
                if occurred.is_empty() || Some(occurred.to_string()) == current_occurred {
                    None
                } else {
                    let at = format::parse_input(occurred).ok_or_else(|| {
                        ServiceError::invalid("occurred_at", "no es una fecha y hora válida")
                    })?;
                    Some(OccurredAtCorrection {
                        occurred_at: at,
                        reason: optional("occurred_at_reason"),
                    })
                };
            Command::Notify {
                severity: severity("severity")?,
                disable_button: f.get("keep_button") != "si",
                occurred_at,
            }
        }
        Action::Acknowledge => Command::Acknowledge,
        Action::ShowBanner => Command::SetBanner {
            shown: true,
            message: optional("message"),
        },
        Action::RemoveBanner => Command::SetBanner {
            shown: false,
            message: None,
        },
        Action::NotifyResolution => Command::NotifyResolution {
            summary: text("summary"),
        },
        Action::ApproveValidation => Command::RecordValidation {
            passed: true,
            observations: Vec::new(),
        },
        Action::RejectValidation => Command::RecordValidation {
            passed: false,
            observations: f.lines("observations"),
        },
        Action::EnableButton => Command::SetButton { enabled: true },
        Action::DisableButton => Command::SetButton { enabled: false },
        Action::SaveReportFormDraft => Command::SaveReportFormDraft(report_of(f)?),
        Action::SubmitReportForm => Command::SubmitReportForm(report_of(f)?),
        Action::AcceptReportForm => Command::ReviewReportForm {
            complete: true,
            missing: Vec::new(),
            message: optional("message"),
        },
        Action::RequestMissingInformation => Command::ReviewReportForm {
            complete: false,
            missing: f.all("missing"),
            message: optional("message"),
        },
        Action::ExemptBanner => Command::ExemptBanner {
            reason: text("reason"),
        },
        Action::Escalate => Command::Escalate {
            reason: text("reason"),
            ladder: incidencias_core::Ladder::default(),
        },
        Action::ChangeSeverity => Command::ChangeSeverity {
            severity: severity("severity")?,
            reason: text("reason"),
        },
        Action::Close => Command::Close,
        Action::Dismiss => Command::Dismiss {
            reason: text("reason"),
        },
    })
}

/// The report form as posted; instants that do not read are named, all at once.
fn report_of(f: &Fields) -> Result<IncidentReport, ServiceError> {
    let mut errors = Vec::new();
    let mut instant = |field: FormField| {
        let raw = f.get(field.as_str());
        if raw.trim().is_empty() {
            return None;
        }
        let parsed = format::parse_input(raw);
        if parsed.is_none() {
            errors.push(incidencias_core::FieldError::new(
                format!("report_form.{}", field.as_str()),
                "no es una fecha y hora válida",
            ));
        }
        parsed
    };
    let detected_at = instant(FormField::DetectedAt);
    let restored_at = instant(FormField::RestoredAt);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(IncidentReport {
        detected_at,
        restored_at,
        symptoms: f.get("symptoms").to_string(),
        impact: f.get("impact").to_string(),
        root_cause: f.get("root_cause").to_string(),
        actions_taken: f.lines("actions_taken"),
        verification: f.get("verification").to_string(),
        preventive_actions: f.get("preventive_actions").to_string(),
        prepared_by_name: f.get("prepared_by_name").to_string(),
        prepared_by_position: f.get("prepared_by_position").to_string(),
        attachments: f.lines("attachments"),
    })
}

/// Performs `action` from a posted form: on success back to the page (POST-redirect-GET);
/// refused, the page again with the reason and what was typed.
async fn perform(state: &AppState, posted: Posted, raw_folio: &str, action: Action) -> Response {
    let Posted { viewer, fields } = posted;
    let viewer = &viewer;
    // The idempotency fingerprint names the action, whichever form carried it.
    let path = format!("/incidencias/{raw_folio}/acciones/{}", action.name());
    let done = action.name();
    let folio = match parse_folio(raw_folio) {
        Ok(f) => f,
        Err(e) => return refused(Some(viewer), &e),
    };
    // Only notifying reads the incident first: its form shows the recorded instant, and
    // an unchanged one is no correction.
    let current = if action == Action::Notify {
        match state.service.incident(&viewer.caller, folio).await {
            Ok(doc) => Some(format::input_value(doc.occurred_at)),
            Err(e) => return refused(Some(viewer), &e),
        }
    } else {
        None
    };
    let result = match command_of(action, &fields, current) {
        Ok(command) => {
            state
                .service
                .act_via(&viewer.caller, folio, command, fields.idem(&path), Via::Web)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/incidencias/{folio}?hecho={done}")).into_response(),
        Err(e @ (ServiceError::NotFound(_) | ServiceError::Unauthenticated)) => {
            refused(Some(viewer), &e)
        }
        Err(e) => {
            let status = super::pages::status_of(&e);
            let errors = Errors::from_service(&e, field_label, field_anchor);
            match build(state, viewer, folio, None, errors, fields, action.name()).await {
                Ok(page) => html(status, &page),
                Err(e) => refused(Some(viewer), &e),
            }
        }
    }
}

pub async fn act(
    State(state): State<AppState>,
    Path((folio, name)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    match Action::named(&name) {
        Some(action) => perform(&state, posted, &folio, action).await,
        None => refused(
            Some(&posted.viewer),
            &ServiceError::NotFound("esa acción".into()),
        ),
    }
}

/// The report form's buttons (save a draft, deliver) and the help desk's review (accept,
/// ask for the missing fields): one form each, the button pressed names the action.
pub async fn form_buttons(
    State(state): State<AppState>,
    Path(folio): Path<String>,
    posted: Posted,
) -> Response {
    let action = Action::named(posted.fields.get("_accion")).filter(|a| {
        matches!(
            a,
            Action::SaveReportFormDraft
                | Action::SubmitReportForm
                | Action::AcceptReportForm
                | Action::RequestMissingInformation
        )
    });
    match action {
        Some(action) => perform(&state, posted, &folio, action).await,
        None => refused(
            Some(&posted.viewer),
            &ServiceError::NotFound("esa acción".into()),
        ),
    }
}

// ---------------------------------------------------------------- new incident

#[derive(Template)]
#[template(path = "new_incident.html")]
struct NewIncidentPage {
    layout: Layout,
    errors: Errors,
    idem_key: String,
    procedures: Vec<Choice>,
    kinds: Vec<Choice>,
    channels: Vec<Choice>,
    description: String,
    occurred_at: String,
    /// The received email this report comes from, if any.
    message: Option<String>,
    /// Why the fields came prefilled, in words.
    suggestion: Option<String>,
}

async fn new_form(
    state: &AppState,
    viewer: &Viewer,
    errors: Errors,
    fields: &Fields,
) -> Result<NewIncidentPage, ServiceError> {
    let procedures = state.service.procedures(&viewer.caller).await?;
    let now = state.service.now();
    // Opened from a received email: the service's suggestion fills what was not typed.
    let message = fields.get("correo").parse::<i64>().ok();
    let suggestion = match message {
        Some(id) => Some(state.service.suggest_report(&viewer.caller, id).await?),
        None => None,
    };
    let suggested = |name: &str| -> Option<String> {
        let s = suggestion.as_ref()?;
        match name {
            "procedure_id" => s.procedure_id.map(|p| p.to_string()),
            "kind" => Some(s.kind.clone()),
            "description" => Some(s.description.clone()),
            "occurred_at" => Some(format::input_value(s.occurred_at)),
            "channel" => Some(Channel::Email.as_str().to_string()),
            _ => None,
        }
    };
    let picked = |name: &str, default: &str| {
        let v = fields.get(name);
        if !v.is_empty() {
            v.to_string()
        } else {
            suggested(name).unwrap_or_else(|| default.to_string())
        }
    };
    let procedure = picked("procedure_id", "");
    let kind = picked("kind", IncidentKind::Unavailable.as_str());
    // The help desk mostly takes calls; an agency reports through this page.
    let default_channel = if viewer.caller.role == incidencias_core::Role::Agency {
        Channel::Web
    } else {
        Channel::Phone
    };
    let channel = picked("channel", default_channel.as_str());
    Ok(NewIncidentPage {
        layout: Layout::new(Some(viewer), "Nueva incidencia", "/incidencias/nueva"),
        errors,
        idem_key: new_key(),
        procedures: procedures
            .iter()
            .map(|p| Choice {
                value: p.id.to_string(),
                label: format!("{} — {}", p.homoclave, p.name),
                selected: p.id.to_string() == procedure,
            })
            .collect(),
        kinds: IncidentKind::ALL
            .iter()
            .map(|k| Choice {
                value: k.as_str().into(),
                label: k.label().into(),
                selected: k.as_str() == kind,
            })
            .collect(),
        channels: Channel::ALL
            .iter()
            .map(|c| Choice {
                value: c.as_str().into(),
                label: c.label().into(),
                selected: c.as_str() == channel,
            })
            .collect(),
        description: picked("description", ""),
        occurred_at: picked("occurred_at", &format::input_value(now)),
        message: message.map(|id| id.to_string()),
        suggestion: suggestion.map(|s| s.reason),
    })
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    /// A received email to open the incident from.
    #[serde(default)]
    correo: Option<i64>,
}

pub async fn new_page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<axum::extract::Query<NewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = state.service.may_act(&viewer.caller, "report") {
        return refused(Some(&viewer), &e);
    }
    let mut fields = Fields::default();
    if let Some(id) = query.ok().and_then(|q| q.0.correo) {
        fields.0.push(("correo".into(), id.to_string()));
    }
    match new_form(&state, &viewer, Errors::default(), &fields).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => refused(Some(&viewer), &e),
    }
}

fn new_input(f: &Fields) -> Result<NewIncidentInput, ServiceError> {
    let mut errors = Vec::new();
    let procedure = f.get("procedure_id").parse::<i64>().ok();
    if procedure.is_none() {
        errors.push(incidencias_core::FieldError::new(
            "procedure_ids",
            "elija el trámite afectado",
        ));
    }
    let kind = IncidentKind::parse(f.get("kind"));
    if kind.is_err() {
        errors.push(incidencias_core::FieldError::new(
            "kind",
            "elija el tipo de incidencia",
        ));
    }
    let channel = Channel::parse(f.get("channel"));
    if channel.is_err() {
        errors.push(incidencias_core::FieldError::new(
            "channel",
            "elija el medio",
        ));
    }
    let occurred = format::parse_input(f.get("occurred_at"));
    if occurred.is_none() {
        errors.push(incidencias_core::FieldError::new(
            "occurred_at",
            "escriba la fecha y hora en que ocurrió",
        ));
    }
    match (procedure, kind, channel, occurred) {
        (Some(p), Ok(kind), Ok(channel), Some(occurred_at)) if errors.is_empty() => {
            Ok(NewIncidentInput {
                procedure_ids: vec![ProcedureId(p)],
                kind,
                description: f.get("description").to_string(),
                occurred_at,
                channel,
            })
        }
        _ => Err(ServiceError::Invalid(errors)),
    }
}

pub async fn create(State(state): State<AppState>, Posted { viewer, fields }: Posted) -> Response {
    let message = fields.get("correo").parse::<i64>().ok();
    let result = match (new_input(&fields), message) {
        // From a received email: the service opens it and records the message's outcome.
        (Ok(input), Some(id)) => state
            .service
            .open_incident_from_inbound(&viewer.caller, id, input)
            .await
            .map(|received| received.folio.unwrap_or_default()),
        (Ok(input), None) => state
            .service
            .report_via(
                &viewer.caller,
                input,
                fields.idem("/incidencias/nueva"),
                Via::Web,
            )
            .await
            .map(|reply| {
                serde_json::from_str::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|v| v["folio"].as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
        (Err(e), _) => Err(e),
    };
    match result {
        Ok(folio) => Redirect::to(&format!("/incidencias/{folio}?hecho=reportar")).into_response(),
        Err(e @ ServiceError::Forbidden(_)) => refused(Some(&viewer), &e),
        Err(e) => {
            let status = super::pages::status_of(&e);
            let errors = Errors::from_service(&e, field_label, field_anchor);
            match new_form(&state, &viewer, errors, &fields).await {
                Ok(page) => html(status, &page),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}
