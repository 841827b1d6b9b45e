//! "Políticas de SLO": every version read-only (help desk and admin), and a new version
//! edited as a table clock × severity (admin). Durations are written as people say them.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use incidencias_core::slo::{SeverityTargets, Targets};
use incidencias_core::{ClockName, FieldError, Severity, SloPolicy};
use serde::Deserialize;

use super::format;
use super::pages::{Choice, Errors, Layout, html, refused};
use super::session::{Fields, Posted, Viewer};
use crate::http::AppState;
use crate::service::{Area, IncidentFilter, PolicyInput, ServiceError};

/// "1 h 30 min", "45 min", "2 d", "1 d 4 h", "90" (minutes) -> seconds.
pub fn parse_duration(text: &str) -> Option<u32> {
    let text = text.trim().to_lowercase();
    if text.is_empty() {
        return None;
    }
    if let Ok(minutes) = text.parse::<u32>() {
        return minutes.checked_mul(60).filter(|s| *s > 0);
    }
    let mut total: u64 = 0;
    let mut words = text.split_whitespace().peekable();
    let mut any = false;
    while let Some(word) = words.next() {
        // "1h", "30min" as well as "1 h", "30 min".
        let split = word
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(word.len());
        let (number, unit) = word.split_at(split);
        let number: u64 = number.parse().ok()?;
        let unit = if unit.is_empty() {
            words.next()?.to_string()
        } else {
            unit.to_string()
        };
        let scale = match unit.trim_end_matches('.') {
            "d" | "día" | "días" | "dia" | "dias" => 86_400,
            "h" | "hr" | "hrs" | "hora" | "horas" => 3600,
            "min" | "mins" | "minuto" | "minutos" | "m" => 60,
            "s" | "seg" | "segundos" => 1,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(scale)?)?;
        any = true;
    }
    u32::try_from(total).ok().filter(|s| any && *s > 0)
}

/// A duration as an input shows it: every unit kept, so that posting it back is exact.
fn exact(seconds: u32) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} d"));
    }
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

pub struct PolicyRow {
    pub label: &'static str,
    pub cells: Vec<String>,
}

pub struct PolicyView {
    pub version: u32,
    pub current: bool,
    pub future: bool,
    pub effective: String,
    pub warning: String,
    pub objective: String,
    pub repeat: String,
    pub rows: Vec<PolicyRow>,
}

pub struct DraftInput {
    pub name: String,
    pub severity: &'static str,
    pub value: String,
}

pub struct DraftRow {
    pub label: &'static str,
    pub inputs: Vec<DraftInput>,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    policies: Vec<PolicyView>,
    severities: Vec<Choice>,
    editable: bool,
    preview: String,
    draft: Vec<DraftRow>,
    warning: String,
    objective: String,
    repeat: String,
    effective: String,
}

fn field(clock: ClockName, severity: Severity) -> String {
    format!("{}_{}", clock.as_str(), severity.as_str())
}

fn view(policy: &SloPolicy, in_force: Option<u32>, now: jiff::Timestamp) -> PolicyView {
    PolicyView {
        version: policy.version,
        current: in_force == Some(policy.version),
        future: policy.effective_from > now,
        effective: if policy.effective_from == jiff::Timestamp::UNIX_EPOCH {
            "siempre (los tiempos de la Guía)".into()
        } else {
            format::instant(policy.effective_from)
        },
        warning: format!("{:.0}", policy.warning_ratio * 100.0),
        objective: format!("{}", policy.objective_pct),
        repeat: match policy.escalation_repeat_s {
            Some(s) => format!("cada {}", format::span(i64::from(s))),
            None => "cada vez que transcurre el plazo del reloj".into(),
        },
        rows: ClockName::ALL
            .iter()
            .map(|c| PolicyRow {
                label: c.label(),
                cells: Severity::ALL
                    .iter()
                    .map(|s| format::span(i64::from(policy.target_s(*c, *s))))
                    .collect(),
            })
            .collect(),
    }
}

async fn build(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    errors: Errors,
    posted: Option<&Fields>,
) -> Result<PoliciesPage, ServiceError> {
    let mut policies = state.service.policies().await?;
    if policies.is_empty() {
        policies.push(SloPolicy::seed());
    }
    let now = state.service.now();
    let in_force = incidencias_core::policy_in_force(&policies, now).map(|p| p.version);
    let base = policies
        .iter()
        .find(|p| Some(p.version) == in_force)
        .cloned()
        .unwrap_or_else(SloPolicy::seed);
    // How many open incidents there are, and how many are not notified yet (those will
    // take whatever version is in force when they are notified).
    let open = IncidentFilter {
        open_only: true,
        per_page: 1,
        ..Default::default()
    };
    let reported = IncidentFilter {
        state: Some(incidencias_core::IncidentState::Reported),
        per_page: 1,
        ..Default::default()
    };
    let (open, reported) = tokio::try_join!(
        state.service.list(&viewer.caller, open),
        state.service.list(&viewer.caller, reported),
    )?;
    let preview = format!(
        "Vista previa: ninguna incidencia abierta cambia de plazos ({} abiertas; las políticas \
         se aplican al notificar). Las que aún no se notifican ({}) tomarán la versión vigente \
         en el momento en que se notifiquen.",
        open.total, reported.total
    );
    let value = |name: &str, default: String| match posted {
        Some(f) => f.get(name).to_string(),
        None => default,
    };
    Ok(PoliciesPage {
        layout: Layout::new(Some(viewer), "Políticas de SLO", "/politicas"),
        done,
        errors,
        policies: policies.iter().map(|p| view(p, in_force, now)).collect(),
        severities: Severity::ALL
            .iter()
            .map(|s| Choice {
                value: s.as_str().into(),
                label: s.label().into(),
                selected: false,
            })
            .collect(),
        editable: state
            .service
            .may_act(&viewer.caller, "create_policy")
            .is_ok(),
        preview,
        draft: ClockName::ALL
            .iter()
            .map(|c| DraftRow {
                label: c.label(),
                inputs: Severity::ALL
                    .iter()
                    .map(|s| {
                        let name = field(*c, *s);
                        DraftInput {
                            value: value(&name, exact(base.target_s(*c, *s))),
                            name,
                            severity: s.label(),
                        }
                    })
                    .collect(),
            })
            .collect(),
        warning: value(
            "warning_percent",
            format!("{:.0}", base.warning_ratio * 100.0),
        ),
        objective: value("objective_pct", format!("{}", base.objective_pct)),
        repeat: value(
            "escalation_repeat",
            base.escalation_repeat_s.map(exact).unwrap_or_default(),
        ),
        effective: value("effective_from", String::new()),
    })
}

#[derive(Deserialize, Default)]
pub struct PoliciesQuery {
    #[serde(default)]
    hecho: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<PoliciesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !Area::Policies.allows(&viewer.caller) {
        return refused(
            Some(&viewer),
            &ServiceError::Forbidden("su rol no permite consultar las políticas de SLO".into()),
        );
    }
    let done = query
        .ok()
        .and_then(|Query(q)| q.hecho)
        .and_then(|v| v.parse::<u32>().ok())
        .map(|v| format!("Se publicó la versión {v}."));
    match build(&state, &viewer, done, Errors::default(), None).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(e) => refused(Some(&viewer), &e),
    }
}

/// The posted table as a policy input, naming every field that does not read.
fn input_of(f: &Fields) -> Result<PolicyInput, ServiceError> {
    let mut errors = Vec::new();
    let mut target = |clock: ClockName, severity: Severity| {
        let name = field(clock, severity);
        parse_duration(f.get(&name)).unwrap_or_else(|| {
            errors.push(FieldError::new(
                name,
                "escriba una duración como «1 h 30 min» o en minutos",
            ));
            0
        })
    };
    let mut row = |clock| SeverityTargets {
        critical: target(clock, Severity::Critical),
        high: target(clock, Severity::High),
        medium: target(clock, Severity::Medium),
        low: target(clock, Severity::Low),
    };
    let targets = Targets {
        report: row(ClockName::Report),
        ack: row(ClockName::Ack),
        resolution: row(ClockName::Resolution),
        validation: row(ClockName::Validation),
        report_form: row(ClockName::ReportForm),
    };
    let warning = f.get("warning_percent").trim().trim_end_matches('%').trim();
    let warning_ratio = match warning.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Some(p / 100.0),
        _ => {
            errors.push(FieldError::new(
                "warning_percent",
                "debe ser un porcentaje mayor que 0 y menor que 100",
            ));
            None
        }
    };
    let repeat_text = f.get("escalation_repeat");
    let escalation_repeat_s = if repeat_text.trim().is_empty() {
        None
    } else {
        let parsed = parse_duration(repeat_text);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "escalation_repeat",
                "escriba una duración como «1 h 30 min» o en minutos",
            ));
        }
        parsed
    };
    let effective_text = f.get("effective_from");
    let effective_from = if effective_text.trim().is_empty() {
        None
    } else {
        let parsed = format::parse_input(effective_text);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "effective_from",
                "no es una fecha y hora válida",
            ));
        }
        parsed
    };
    let objective = f.get("objective_pct").trim().trim_end_matches('%').trim();
    let objective_pct = match objective.replace(',', ".").parse::<f64>() {
        // Left empty: the default (95 %).
        _ if objective.is_empty() => None,
        Ok(p) if p > 0.0 && p < 100.0 => Some(p),
        _ => {
            errors.push(FieldError::new(
                "objective_pct",
                "debe ser un porcentaje mayor que 0 y menor que 100, por ejemplo 95 o 99.5",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(PolicyInput {
        effective_from,
        targets,
        warning_ratio,
        escalation_repeat_s,
        objective_pct,
    })
}

fn label(name: &str) -> String {
    match name {
        "warning_percent" | "warning_ratio" => "Aviso preventivo".into(),
        "escalation_repeat" | "escalation_repeat_s" => "Periodo entre escalamientos".into(),
        "effective_from" => "Vigente desde".into(),
        "objective_pct" => "Objetivo de cumplimiento".into(),
        other => {
            let (clock, severity) = other.rsplit_once('_').unwrap_or((other, ""));
            let clock = clock.trim_start_matches("targets.");
            let clock = ClockName::ALL
                .iter()
                .find(|c| c.as_str() == clock)
                .map_or(clock.to_string(), |c| c.label().to_string());
            let severity =
                Severity::parse(severity).map_or(String::new(), |s| format!(", {}", s.label()));
            format!("{clock}{severity}")
        }
    }
}

pub async fn create(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { viewer, fields } = posted;
    let result = match input_of(&fields) {
        Ok(input) => state.service.add_policy(&viewer.caller, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(policy) => Redirect::to(&format!("/politicas?hecho={}", policy.version)).into_response(),
        Err(e @ ServiceError::Forbidden(_)) => refused(Some(&viewer), &e),
        Err(e) => {
            let status = super::pages::status_of(&e);
            let errors = Errors::from_service(&e, label, |f| f.to_string());
            match build(&state, &viewer, None, errors, Some(&fields)).await {
                Ok(p) => html(status, &p),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{exact, parse_duration};

    #[test]
    fn durations_are_read_as_people_write_them() {
        assert_eq!(parse_duration("1 h 30 min"), Some(5400));
        assert_eq!(parse_duration("90"), Some(5400));
        assert_eq!(parse_duration("45 min"), Some(2700));
        assert_eq!(parse_duration("2 d"), Some(172_800));
        assert_eq!(parse_duration("1d 4h"), Some(100_800));
        assert_eq!(parse_duration("1 hora"), Some(3600));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("pronto"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("3 semanas"), None);
        for s in [60, 5400, 86_400, 88_230, 90_061] {
            assert_eq!(parse_duration(&exact(s)), Some(s), "{s} round-trips");
        }
    }
}
