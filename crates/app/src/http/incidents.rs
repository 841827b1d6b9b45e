//! The protocol over HTTP: one handler per step and exception, plus reads. Handlers parse,
//! call the service, answer; the core decides.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incidencias_core::escalation::Ladder;
use incidencias_core::{
    Channel, Command, FieldError, Folio, IncidentKind, IncidentState, ProcedureId, Severity,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Auth, Body, IdempotencyKey};
use crate::documents::EventDoc;
use crate::documents::{IncidentDoc, ReportFormBody};
use crate::service::{IncidentFilter, NewIncidentInput, Reply};

const TAG: &str = "incidencias";

/// The answer of a service call: its status and pre-rendered JSON (byte for byte the same
/// on an idempotent replay, which says so in `Idempotent-Replayed`).
pub(super) fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut response = (status, r.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if r.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn folio(text: &str) -> Result<Folio, ApiError> {
    Folio::parse(text).map_err(|e| ApiError::Malformed(e.to_string()))
}

fn parse_or<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    r: Result<T, impl ToString>,
) -> Option<T> {
    r.map_err(|e| errors.push(FieldError::new(field, e.to_string())))
        .ok()
}

pub(super) fn done(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// An instant with any UTC offset (RFC 3339), between 2000 and 2100 (see
/// [`crate::documents::instant`]).
fn instant(text: &str) -> Result<Timestamp, &'static str> {
    crate::documents::instant::parse(text)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncidentBody {
    /// Affected procedures, all of one agency.
    pub procedure_ids: Vec<i64>,
    /// `unavailable`, `intermittent`, `slow` or `cannot_complete`.
    pub kind: String,
    pub description: String,
    /// When the failure began (RFC 3339, any offset); not in the future.
    #[schema(example = "2026-11-27T08:45:00-06:00")]
    pub occurred_at: String,
    /// `email`, `phone`, `web`, `api` or `monitor`.
    pub channel: String,
}

/// Step 1: report an incident.
#[utoipa::path(post, path = "/api/v1/incidents", tag = TAG,
    request_body = NewIncidentBody,
    params(IdempotencyKey),
    responses((status = 201, body = IncidentDoc), (status = 422, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_incident(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewIncidentBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "report")?;
    let b = body.value;
    let mut errors = Vec::new();
    let kind = parse_or(&mut errors, "kind", IncidentKind::parse(&b.kind));
    let channel = parse_or(&mut errors, "channel", Channel::parse(&b.channel));
    let occurred_at = parse_or(&mut errors, "occurred_at", instant(&b.occurred_at));
    done(errors)?;
    let (Some(kind), Some(channel), Some(occurred_at)) = (kind, channel, occurred_at) else {
        return Err(ApiError::Malformed("datos incompletos".into()));
    };
    let input = NewIncidentInput {
        procedure_ids: b.procedure_ids.into_iter().map(ProcedureId).collect(),
        kind,
        description: b.description,
        occurred_at,
        channel,
    };
    Ok(reply(
        state.service.report(&caller, input, body.idem).await?,
    ))
}

/// Runs one command on the incident at `folio`.
async fn act(
    state: &AppState,
    caller: &crate::service::Caller,
    folio_text: &str,
    command: Command,
    idem: Option<crate::service::IdemRequest>,
) -> Result<Response, ApiError> {
    let folio = folio(folio_text)?;
    Ok(reply(
        state.service.act(caller, folio, command, idem).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyBody {
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// Whether CEDN disables the portal button (default true; a `slow` incident may keep it).
    pub disable_button: Option<bool>,
    /// When the failure began, confirmed or corrected (RFC 3339); a report by email
    /// starts with the message's date, unconfirmed.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(
        default,
        deserialize_with = "crate::documents::instant::deserialize_option"
    )]
    pub occurred_at: Option<Timestamp>,
    /// Why `occurred_at` changes; required when it differs from the recorded instant.
    pub occurred_at_reason: Option<String>,
}

/// Step 2: formal notification with severity.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/notify", tag = TAG,
    params(("folio" = String, Path, example = "INC-2026-000123"), IdempotencyKey),
    request_body = NotifyBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn notify(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<NotifyBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "notify")?;
    let severity = Severity::parse(&body.value.severity)
        .map_err(|e| ApiError::field("severity", e.to_string()))?;
    let command = Command::Notify {
        severity,
        disable_button: body.value.disable_button.unwrap_or(true),
        occurred_at: body
            .value
            .occurred_at
            .map(|at| incidencias_core::OccurredAtCorrection {
                occurred_at: at,
                reason: body.value.occurred_at_reason.clone(),
            }),
    };
    act(&state, &caller, &f, command, body.idem).await
}

/// An empty body (`{}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Step 2: the responsible acknowledges.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/acknowledge", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = EmptyBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<EmptyBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "acknowledge")?;
    act(&state, &caller, &f, Command::Acknowledge, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerBody {
    pub shown: bool,
    /// The notice shown on the procedure page (optional).
    pub message: Option<String>,
}

/// The closing rule's alternative to the banner: the help desk records why the banner was
/// not shown during the incident.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/banner-exemption", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ReasonBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn banner_exemption(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "banner_exemption")?;
    let command = Command::ExemptBanner {
        reason: body.value.reason,
    };
    act(&state, &caller, &f, command, body.idem).await
}

/// Steps 2 and 5: the agency shows or removes the banner.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/banner", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = BannerBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn banner(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<BannerBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "banner")?;
    let command = Command::SetBanner {
        shown: body.value.shown,
        message: body.value.message,
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonBody {
    pub enabled: bool,
}

/// Steps 2 and 4, or by hand: CEDN switches the portal button.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/button", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ButtonBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn button(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ButtonBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "button")?;
    let command = Command::SetButton {
        enabled: body.value.enabled,
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    /// What was corrected and how it was verified.
    pub summary: String,
}

/// Step 3: the resolution notice.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/resolution", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ResolutionBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn resolution(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ResolutionBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "resolution")?;
    let command = Command::NotifyResolution {
        summary: body.value.summary,
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationBody {
    pub passed: bool,
    /// Required when not passed (persistence).
    #[serde(default)]
    pub observations: Vec<String>,
}

/// Steps 4 and 5: CEDN's verdict; not passed is the persistence exception.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/validation", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ValidationBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn validation(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ValidationBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "validation")?;
    let command = Command::RecordValidation {
        passed: body.value.passed,
        observations: body.value.observations,
    };
    act(&state, &caller, &f, command, body.idem).await
}

/// Step 6: the agency delivers (or saves) the incident report form.
#[utoipa::path(put, path = "/api/v1/incidents/{folio}/report-form", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ReportFormBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn report_form(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ReportFormBody>,
) -> Result<Response, ApiError> {
    // Saving a draft and delivering the form are the same role's.
    let body = body.for_action(&state, &caller, "report_form")?;
    let command = if body.value.draft {
        Command::SaveReportFormDraft(body.value.into())
    } else {
        Command::SubmitReportForm(body.value.into())
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub complete: bool,
    /// Fields to complete (default: those the system finds missing).
    #[serde(default)]
    pub missing: Vec<String>,
    pub message: Option<String>,
}

/// Step 6 or the incomplete-form exception: the help desk reviews the form.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/report-form/review", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ReviewBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn review(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ReviewBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "report_form_review")?;
    let command = Command::ReviewReportForm {
        complete: body.value.complete,
        missing: body.value.missing,
        message: body.value.message,
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

/// The escalation exception, by hand: to the next superior, cc the responsible.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/escalate", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ReasonBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn escalate(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "escalate")?;
    let command = Command::Escalate {
        reason: body.value.reason,
        ladder: Ladder::default(),
    };
    act(&state, &caller, &f, command, body.idem).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityBody {
    pub severity: String,
    pub reason: String,
}

/// Severity change: running clocks get the new targets from their original starts.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/severity", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = SeverityBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn severity(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<SeverityBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "severity")?;
    let severity = Severity::parse(&body.value.severity)
        .map_err(|e| ApiError::field("severity", e.to_string()))?;
    let command = Command::ChangeSeverity {
        severity,
        reason: body.value.reason,
    };
    act(&state, &caller, &f, command, body.idem).await
}

/// Step 7: closure, refused (409) until the closing rule holds.
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/close", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = EmptyBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn close(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<EmptyBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "close")?;
    act(&state, &caller, &f, Command::Close, body.idem).await
}

/// Dismissal of a report that is not an incident (kept, never deleted).
#[utoipa::path(post, path = "/api/v1/incidents/{folio}/dismiss", tag = TAG,
    params(("folio" = String, Path), IdempotencyKey), request_body = ReasonBody,
    responses((status = 200, body = IncidentDoc), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn dismiss(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
    body: Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "dismiss")?;
    let command = Command::Dismiss {
        reason: body.value.reason,
    };
    act(&state, &caller, &f, command, body.idem).await
}

/// The list's filters, as OpenAPI shows them: query parameters, all optional (the handler
/// reads the query by hand so that each refusal names its parameter).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Protocol state.
    pub state: Option<String>,
    pub agency_id: Option<i64>,
    pub severity: Option<String>,
    /// Only incidents with a breached clock.
    pub breached: Option<bool>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Items per page (1 to 200, default 50).
    pub per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentList {
    pub items: Vec<IncidentDoc>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// Incidents visible to the caller, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/incidents", tag = TAG, params(ListParams),
    responses((status = 200, body = IncidentList), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IncidentList>, ApiError> {
    let Query(pairs) = pairs.map_err(|_| {
        ApiError::field(
            "query",
            "los parámetros de la consulta no están bien codificados",
        )
    })?;
    let mut errors = Vec::new();
    let mut filter = IncidentFilter {
        page: 1,
        per_page: 50,
        ..IncidentFilter::default()
    };
    // Parsed by hand so that every refusal names its parameter, in Spanish.
    for (name, value) in pairs {
        let v = value.trim();
        match name.as_str() {
            "state" => match IncidentState::ALL.into_iter().find(|x| x.as_str() == v) {
                Some(s) => filter.state = Some(s),
                None => errors.push(FieldError::new(
                    "state",
                    "debe ser reported, awaiting_ack, in_correction, awaiting_validation, \
                     validated, closed o dismissed",
                )),
            },
            "severity" => match Severity::parse(v) {
                Ok(s) => filter.severity = Some(s),
                Err(e) => errors.push(FieldError::new("severity", e.to_string())),
            },
            "agency_id" => match v.parse::<i64>() {
                Ok(a) => filter.agency_id = Some(a),
                Err(_) => errors.push(FieldError::new("agency_id", "debe ser un número entero")),
            },
            "breached" => match v {
                "true" => filter.breached = Some(true),
                "false" => filter.breached = Some(false),
                _ => errors.push(FieldError::new("breached", "debe ser true o false")),
            },
            "page" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => filter.page = p,
                _ => errors.push(FieldError::new("page", "debe ser un número entero desde 1")),
            },
            "per_page" => match v.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => filter.per_page = n,
                _ => errors.push(FieldError::new("per_page", "debe estar entre 1 y 200")),
            },
            other => errors.push(FieldError::new(other, "parámetro desconocido")),
        }
    }
    done(errors)?;
    let page = state.service.list(&caller, filter).await?;
    Ok(Json(IncidentList {
        items: page.items,
        page: page.page,
        per_page: page.per_page,
        total: page.total,
    }))
}

/// One incident, with its clocks as of now.
#[utoipa::path(get, path = "/api/v1/incidents/{folio}", tag = TAG,
    params(("folio" = String, Path)),
    responses((status = 200, body = IncidentDoc), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
) -> Result<Json<IncidentDoc>, ApiError> {
    Ok(Json(state.service.incident(&caller, folio(&f)?).await?))
}

/// The emails received about the incident: replies recorded on it, the ones that acted
/// (acknowledgment, resolution notice), the report that opened it; oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{folio}/messages", tag = TAG,
    params(("folio" = String, Path)),
    responses((status = 200, body = Vec<crate::documents::ReceivedDoc>), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn messages(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
) -> Result<Json<Vec<crate::documents::ReceivedDoc>>, ApiError> {
    Ok(Json(
        state.service.incident_messages(&caller, folio(&f)?).await?,
    ))
}

/// The incident's record: every event with its hash chain.
#[utoipa::path(get, path = "/api/v1/incidents/{folio}/events", tag = TAG,
    params(("folio" = String, Path)),
    responses((status = 200, body = Vec<EventDoc>), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(f): Path<String>,
) -> Result<Json<Vec<EventDoc>>, ApiError> {
    let events = state.service.events(&caller, folio(&f)?).await?;
    Ok(Json(events))
}
