//! Catalogue over HTTP: agencies, users, procedures, SLO policies.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use incidencias_core::SloPolicy;
use incidencias_core::slo::SeverityTargets;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Auth, Body, IdempotencyKey};
use crate::documents::{AgencyDoc, ProcedureDoc, UserDoc};
use crate::service::{NewAgencyInput, NewProcedureInput, NewUserInput, PolicyInput, ServiceError};

const TAG: &str = "catálogo";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgencyBody {
    pub name: String,
    #[schema(example = "SEGOB")]
    pub acronym: String,
    /// Mail domains of the agency's staff, e.g. `segob.gob.mx`.
    pub email_domains: Vec<String>,
}

/// Register an agency (admin).
#[utoipa::path(post, path = "/api/v1/agencies", tag = TAG, params(IdempotencyKey), request_body = NewAgencyBody,
    responses((status = 201, body = AgencyDoc), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_agency(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewAgencyBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "create_agency")?;
    let b = body.value;
    let service = &state.service;
    let reply = service
        .idempotent(&caller, body.idem, 201, || async {
            let agency = service
                .create_agency(
                    &caller,
                    NewAgencyInput {
                        name: b.name,
                        acronym: b.acronym,
                        email_domains: b.email_domains,
                    },
                )
                .await?;
            json(&agency)
        })
        .await?;
    Ok(super::incidents::reply(reply))
}

/// Agencies (an agency user sees their own).
#[utoipa::path(get, path = "/api/v1/agencies", tag = TAG,
    responses((status = 200, body = Vec<AgencyDoc>)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_agencies(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<AgencyDoc>>, ApiError> {
    Ok(Json(state.service.agencies(&caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub name: String,
    pub email: String,
    /// `admin`, `helpdesk`, `validator` or `agency`.
    pub role: String,
    /// Required for role `agency`.
    pub agency_id: Option<i64>,
    /// The user's immediate superior: the next step of the escalation ladder.
    pub reports_to: Option<i64>,
    /// Optional; without it the user signs in with API tokens only.
    pub password: Option<String>,
}

/// Register a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = TAG, params(IdempotencyKey), request_body = NewUserBody,
    responses((status = 201, body = UserDoc), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewUserBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "create_user")?;
    let b = body.value;
    let service = &state.service;
    let reply = service
        .idempotent(&caller, body.idem, 201, || async {
            let user = service
                .create_user(
                    &caller,
                    NewUserInput {
                        name: b.name,
                        email: b.email,
                        role: b.role,
                        agency_id: b.agency_id,
                        reports_to: b.reports_to,
                        password: b.password,
                    },
                )
                .await?;
            json(&user)
        })
        .await?;
    Ok(super::incidents::reply(reply))
}

/// Users (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = TAG,
    responses((status = 200, body = Vec<UserDoc>), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<UserDoc>>, ApiError> {
    Ok(Json(state.service.users(&caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProcedureBody {
    #[schema(example = "SEGOB-01-001")]
    pub homoclave: String,
    pub name: String,
    pub agency_id: i64,
    pub url: String,
    /// An agency user of the same agency.
    pub responsible_id: i64,
}

/// Register a procedure (admin).
#[utoipa::path(post, path = "/api/v1/procedures", tag = TAG, params(IdempotencyKey), request_body = NewProcedureBody,
    responses((status = 201, body = ProcedureDoc), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_procedure(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewProcedureBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "create_procedure")?;
    let b = body.value;
    let service = &state.service;
    let reply = service
        .idempotent(&caller, body.idem, 201, || async {
            let p = service
                .create_procedure(
                    &caller,
                    NewProcedureInput {
                        homoclave: b.homoclave,
                        name: b.name,
                        agency_id: b.agency_id,
                        url: b.url,
                        responsible_id: b.responsible_id,
                    },
                )
                .await?;
            json(&p)
        })
        .await?;
    Ok(super::incidents::reply(reply))
}

/// Procedures (an agency user sees their agency's).
#[utoipa::path(get, path = "/api/v1/procedures", tag = TAG,
    responses((status = 200, body = Vec<ProcedureDoc>)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_procedures(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<ProcedureDoc>>, ApiError> {
    Ok(Json(state.service.procedures(&caller).await?))
}

/// Targets of one clock by severity, in seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityTargetsDoc {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsDoc {
    pub report: SeverityTargetsDoc,
    pub ack: SeverityTargetsDoc,
    pub resolution: SeverityTargetsDoc,
    pub validation: SeverityTargetsDoc,
    pub report_form: SeverityTargetsDoc,
}

impl TargetsDoc {
    /// The core's targets.
    pub fn into_targets(self) -> incidencias_core::slo::Targets {
        incidencias_core::slo::Targets {
            report: targets_in(self.report),
            ack: targets_in(self.ack),
            resolution: targets_in(self.resolution),
            validation: targets_in(self.validation),
            report_form: targets_in(self.report_form),
        }
    }
}

fn targets_in(t: SeverityTargetsDoc) -> SeverityTargets {
    SeverityTargets {
        critical: t.critical,
        high: t.high,
        medium: t.medium,
        low: t.low,
    }
}

fn targets_out(t: &SeverityTargets) -> SeverityTargetsDoc {
    SeverityTargetsDoc {
        critical: t.critical,
        high: t.high,
        medium: t.medium,
        low: t.low,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicyBody {
    /// When it takes effect (default: now). Incidents keep the version in force when they
    /// were notified.
    pub effective_from: Option<String>,
    pub targets: TargetsDoc,
    /// Share of a target at which a warning is sent (default 0.75).
    pub warning_ratio: Option<f64>,
    /// One more escalation level every this many seconds after a breach (default: the
    /// clock's own target).
    pub escalation_repeat_s: Option<u32>,
    /// The share of clocks to meet, in % (above 0, below 100; default 95): the error
    /// budget of the reports is the rest.
    pub objective_pct: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDoc {
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub effective_from: Timestamp,
    pub targets: TargetsDoc,
    pub warning_ratio: f64,
    pub escalation_repeat_s: Option<u32>,
    /// The share of clocks to meet, in %.
    pub objective_pct: f64,
}

impl From<SloPolicy> for PolicyDoc {
    fn from(p: SloPolicy) -> PolicyDoc {
        PolicyDoc {
            version: p.version,
            effective_from: p.effective_from,
            targets: TargetsDoc {
                report: targets_out(&p.targets.report),
                ack: targets_out(&p.targets.ack),
                resolution: targets_out(&p.targets.resolution),
                validation: targets_out(&p.targets.validation),
                report_form: targets_out(&p.targets.report_form),
            },
            warning_ratio: p.warning_ratio,
            escalation_repeat_s: p.escalation_repeat_s,
            objective_pct: p.objective_pct,
        }
    }
}

/// SLO policy versions, newest first.
#[utoipa::path(get, path = "/api/v1/slo-policies", tag = TAG,
    responses((status = 200, body = Vec<PolicyDoc>)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_policies(
    State(state): State<AppState>,
    Auth(_caller): Auth,
) -> Result<Json<Vec<PolicyDoc>>, ApiError> {
    let list = state.service.policies().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Publish a new SLO policy version (admin).
#[utoipa::path(post, path = "/api/v1/slo-policies", tag = TAG, params(IdempotencyKey), request_body = NewPolicyBody,
    responses((status = 201, body = PolicyDoc), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_policy(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: Body<NewPolicyBody>,
) -> Result<Response, ApiError> {
    let body = body.for_action(&state, &caller, "create_policy")?;
    let b = body.value;
    let effective_from = match b.effective_from.as_deref() {
        None => None,
        Some(text) => Some(
            crate::documents::instant::parse(text)
                .map_err(|why| ApiError::field("effective_from", why))?,
        ),
    };
    let t = b.targets;
    let service = &state.service;
    let reply = service
        .idempotent(&caller, body.idem, 201, || async {
            let policy = service
                .add_policy(
                    &caller,
                    PolicyInput {
                        effective_from,
                        targets: t.into_targets(),
                        warning_ratio: b.warning_ratio,
                        escalation_repeat_s: b.escalation_repeat_s,
                        objective_pct: b.objective_pct,
                    },
                )
                .await?;
            json(&PolicyDoc::from(policy))
        })
        .await?;
    Ok(super::incidents::reply(reply))
}

/// A document as the JSON text an idempotent answer keeps.
fn json<T: Serialize>(doc: &T) -> Result<String, ServiceError> {
    serde_json::to_string(doc).map_err(|e| ServiceError::Internal(e.to_string()))
}
