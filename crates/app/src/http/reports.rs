//! SLO reports: compliance and the breach list, as JSON and as CSV for spreadsheets.
//! Filters (all optional): `from`, `to` (a date, both included, in Mexico City; or RFC 3339
//! instants, `to` excluded; default the current month), `clock`, `severity`, `agency_id`,
//! `procedure_id`. An agency user reads its own agency only.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use incidencias_core::FieldError;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Auth;
use crate::service::reports::{
    self, BreachPageDoc, BudgetDoc, ComplianceDoc, ListTable, ListsDoc, MAX_PAGE, ReportQuery,
    Trial, WhatIfDoc, breaches_csv, compliance_csv,
};

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The report's filters; `extra` takes the other names it knows (true) or not (false).
fn report_query(
    pairs: Pairs,
    mut extra: impl FnMut(&str, String, &mut Vec<FieldError>) -> bool,
) -> Result<ReportQuery, ApiError> {
    let Query(pairs) = pairs.map_err(|_| ApiError::field("query", "parámetros mal codificados"))?;
    let mut errors = Vec::new();
    let query = ReportQuery::from_pairs(pairs, |name, value| {
        if !extra(name, value, &mut errors) {
            errors.push(FieldError::new(name, "parámetro desconocido"));
        }
    });
    super::incidents::done(errors)?;
    Ok(query)
}

fn csv_response(body: Vec<u8>, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Compliance of each clock by severity and agency over a period: clocks measured, met
/// and breached, compliance, percentiles of the time used, time paused and who held it.
/// A clock counts in the period in which its outcome became known (the breach, or else
/// the stop); reports dismissed as not incidents are not measured.
#[utoipa::path(get, path = "/api/v1/reports/compliance", tag = "reportes",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, body = ComplianceDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn compliance(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Json<ComplianceDoc>, ApiError> {
    let query = report_query(pairs, |_, _, _| false)?;
    let now = state.service.now();
    Ok(Json(
        state
            .service
            .compliance_report(&caller, &query, now)
            .await?,
    ))
}

/// The compliance report as CSV (UTF-8 with BOM, for Excel): the rows by agency, then the
/// totals. Same filters.
#[utoipa::path(get, path = "/api/v1/reports/compliance.csv", tag = "reportes",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn compliance_export(
    state: State<AppState>,
    auth: Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Json(doc) = compliance(state, auth, pairs).await?;
    Ok(csv_response(compliance_csv(&doc), "cumplimiento.csv"))
}

/// The breached clocks of the period (by the instant of the breach), newest first, with
/// their incident, agency, overrun and escalation level. `limit` 1 to 500 (default 100),
/// `offset` (default 0); `total` counts them all.
#[utoipa::path(get, path = "/api/v1/reports/breaches", tag = "reportes",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = BreachPageDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn breaches(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Json<BreachPageDoc>, ApiError> {
    let (mut limit, mut offset) = (100i64, 0i64);
    let query = report_query(pairs, |name, value, errors| {
        let target = match name {
            "limit" => &mut limit,
            "offset" => &mut offset,
            _ => return false,
        };
        match value.trim().parse::<i64>() {
            Ok(n) => *target = n,
            Err(_) => errors.push(FieldError::new(name, "debe ser un número entero")),
        }
        true
    })?;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("debe estar entre 1 y {MAX_PAGE}"),
        ));
    }
    let now = state.service.now();
    Ok(Json(
        state
            .service
            .breach_list(&caller, &query, limit, offset, now)
            .await?,
    ))
}

/// Every breached clock of the period as CSV (UTF-8 with BOM, for Excel; no row cap).
/// Same filters.
#[utoipa::path(get, path = "/api/v1/reports/breaches.csv", tag = "reportes",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn breaches_export(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let query = report_query(pairs, |_, _, _| false)?;
    let now = state.service.now();
    let items = state.service.all_breaches(&caller, &query, now).await?;
    Ok(csv_response(breaches_csv(&items), "relojes-excedidos.csv"))
}

/// The error budget of each clock and severity this month so far (Mexico City): SLI
/// (share met), what the objective allows, what is left, the burn rate over the last 1 h,
/// 6 h and 3 d (breach rate over the budget: above 1 it runs out before the month ends),
/// and the agencies burning it fastest. `objective` in % (default 95). Filters as in
/// compliance, without the period.
#[utoipa::path(get, path = "/api/v1/reports/budget", tag = "reportes",
    params(("objective" = Option<f64>, Query), ("clock" = Option<String>, Query),
        ("severity" = Option<String>, Query), ("agency_id" = Option<i64>, Query),
        ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, body = BudgetDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn budget(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Json<BudgetDoc>, ApiError> {
    let mut objective = None;
    let query = report_query(pairs, |name, value, _| {
        (name == "objective")
            .then(|| objective = Some(value))
            .is_some()
    })?;
    let mut errors = Vec::new();
    for (field, given) in [("from", &query.from), ("to", &query.to)] {
        if given.is_some() {
            errors.push(FieldError::new(
                field,
                "el presupuesto de error es el del mes en curso; no lleva periodo",
            ));
        }
    }
    super::incidents::done(errors)?;
    let objective = reports::objective(objective.as_deref())?;
    let now = state.service.now();
    Ok(Json(
        state
            .service
            .error_budget(&caller, &query, objective, now)
            .await?,
    ))
}

/// What-if between two stored policy versions: over the period (as in compliance), the
/// share of the clocks that stopped in it each version would have met, beside how they
/// were recorded. `version_a` defaults to the version in force; `version_b` is required.
#[utoipa::path(get, path = "/api/v1/reports/what-if", tag = "reportes",
    params(("version_a" = Option<u32>, Query), ("version_b" = u32, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, body = WhatIfDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn what_if_versions(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Json<WhatIfDoc>, ApiError> {
    let (mut a, mut b) = (Trial::InForce, None);
    let query = report_query(pairs, |name, value, errors| {
        let slot = match name {
            "version_a" | "version_b" => name,
            _ => return false,
        };
        match value.trim().parse::<u32>() {
            Ok(v) if v > 0 && slot == "version_a" => a = Trial::Version(v),
            Ok(v) if v > 0 => b = Some(Trial::Version(v)),
            _ => errors.push(FieldError::new(slot, "debe ser un número de versión")),
        }
        true
    })?;
    let b = b.ok_or_else(|| ApiError::field("version_b", "indique la versión a comparar"))?;
    let now = state.service.now();
    Ok(Json(
        state.service.what_if(&caller, &query, a, b, now).await?,
    ))
}

/// A what-if request with a draft policy.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfBody {
    /// The draft's targets, in seconds, as for a new policy version.
    pub targets: super::catalog::TargetsDoc,
    /// The version to compare it with (default: the one in force).
    pub compare_version: Option<u32>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub clock: Option<String>,
    pub severity: Option<String>,
    pub agency_id: Option<i64>,
    pub procedure_id: Option<i64>,
}

/// What-if with a draft: "with these targets, over this period, compliance would have
/// been ...", computed from history beside the version in force (or `compare_version`).
/// Nothing is stored.
#[utoipa::path(post, path = "/api/v1/reports/what-if", tag = "reportes",
    request_body = WhatIfBody,
    responses((status = 200, body = WhatIfDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn what_if_draft(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: super::extract::Body<WhatIfBody>,
) -> Result<Json<WhatIfDoc>, ApiError> {
    // The role first, whatever the body (as every endpoint).
    state.service.may_read_reports(&caller)?;
    let b = body.anyone()?.value;
    let query = ReportQuery {
        from: b.from,
        to: b.to,
        clock: b.clock,
        severity: b.severity,
        agency_id: b.agency_id.map(|v| v.to_string()),
        procedure_id: b.procedure_id.map(|v| v.to_string()),
    };
    let compare = b.compare_version.map_or(Trial::InForce, Trial::Version);
    let now = state.service.now();
    Ok(Json(
        state
            .service
            .what_if(
                &caller,
                &query,
                Trial::Draft(b.targets.into_targets()),
                compare,
                now,
            )
            .await?,
    ))
}

/// The error budget as CSV (UTF-8 with BOM, for Excel). Same parameters.
#[utoipa::path(get, path = "/api/v1/reports/budget.csv", tag = "reportes",
    params(("objective" = Option<f64>, Query), ("clock" = Option<String>, Query),
        ("severity" = Option<String>, Query), ("agency_id" = Option<i64>, Query),
        ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn budget_export(
    state: State<AppState>,
    auth: Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Json(doc) = budget(state, auth, pairs).await?;
    Ok(csv_response(
        reports::budget_csv(&doc),
        "presupuesto-de-error.csv",
    ))
}

/// The what-if between two versions as CSV (UTF-8 with BOM, for Excel). Same parameters.
#[utoipa::path(get, path = "/api/v1/reports/what-if.csv", tag = "reportes",
    params(("version_a" = Option<u32>, Query), ("version_b" = u32, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("clock" = Option<String>, Query), ("severity" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn what_if_export(
    state: State<AppState>,
    auth: Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Json(doc) = what_if_versions(state, auth, pairs).await?;
    Ok(csv_response(reports::what_if_csv(&doc), "simulacion.csv"))
}

/// Operational lists: open incidents by state and age since their report (now), mean
/// time to acknowledge and to resolve by agency, and validation rounds per incident (over
/// the period, as in compliance).
#[utoipa::path(get, path = "/api/v1/reports/lists", tag = "reportes",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("agency_id" = Option<i64>, Query), ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, body = ListsDoc), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn lists(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Json<ListsDoc>, ApiError> {
    let query = report_query(pairs, |_, _, _| false)?;
    let now = state.service.now();
    Ok(Json(
        state.service.report_lists(&caller, &query, now).await?,
    ))
}

/// Which operational list a CSV export holds (the documented values of `table`).
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListTableName {
    OpenByAge,
    MeanTimes,
    Rounds,
}

/// One operational list as CSV (UTF-8 with BOM): `table` is `open_by_age`, `mean_times`
/// or `rounds`. Same filters.
#[utoipa::path(get, path = "/api/v1/reports/lists.csv", tag = "reportes",
    params(("table" = inline(ListTableName), Query), ("from" = Option<String>, Query),
        ("to" = Option<String>, Query), ("agency_id" = Option<i64>, Query),
        ("procedure_id" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn lists_export(
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let mut table = None;
    let query = report_query(pairs, |name, value, errors| {
        if name != "table" {
            return false;
        }
        table = match value.trim() {
            "open_by_age" => Some(ListTable::OpenByAge),
            "mean_times" => Some(ListTable::MeanTimes),
            "rounds" => Some(ListTable::Rounds),
            _ => {
                errors.push(FieldError::new(
                    "table",
                    "debe ser open_by_age, mean_times o rounds",
                ));
                None
            }
        };
        true
    })?;
    let table = table.ok_or_else(|| {
        ApiError::field(
            "table",
            "indique la tabla: open_by_age, mean_times o rounds",
        )
    })?;
    let now = state.service.now();
    let doc = state.service.report_lists(&caller, &query, now).await?;
    let name = match table {
        ListTable::OpenByAge => "abiertas-por-antiguedad.csv",
        ListTable::MeanTimes => "tiempos-medios.csv",
        ListTable::Rounds => "rondas-de-validacion.csv",
    };
    Ok(csv_response(reports::lists_csv(&doc, table), name))
}

#[cfg(test)]
mod tests {
    use crate::service::reports::neutralise;

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        for cell in ["=1+1", "+52 55", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(cell.into()), format!("'{cell}"));
        }
        for cell in ["INC-2026-000001", "Crítica", "12", ""] {
            assert_eq!(neutralise(cell.into()), cell);
        }
    }
}
