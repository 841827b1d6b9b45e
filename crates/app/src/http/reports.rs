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
    BreachPageDoc, ComplianceDoc, MAX_PAGE, ReportQuery, breaches_csv, compliance_csv,
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
    State(state): State<AppState>,
    Auth(caller): Auth,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let query = report_query(pairs, |_, _, _| false)?;
    let now = state.service.now();
    let doc = state
        .service
        .compliance_report(&caller, &query, now)
        .await?;
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
