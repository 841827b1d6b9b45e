//! "Catálogo" (admin): agencies, procedures and users, each with its registration form;
//! each user's escalation ladder shown as a chain up to the top.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use incidencias_core::Role;
use serde::Deserialize;

use super::pages::{Choice, Errors, Layout, html, refused, status_of};
use super::session::{Fields, Posted, Viewer};
use super::views;
use crate::documents::UserDoc;
use crate::http::AppState;
use crate::service::{NewAgencyInput, NewProcedureInput, NewUserInput, ServiceError};

pub struct AgencyLine {
    pub id: i64,
    pub active: bool,
    pub acronym: String,
    pub name: String,
    pub domains: String,
}

pub struct ProcedureLine {
    pub id: i64,
    pub active: bool,
    pub homoclave: String,
    pub name: String,
    pub url: String,
    pub agency: String,
    pub responsible: String,
}

pub struct UserLine {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: String,
    pub agency: String,
    pub active: bool,
    /// "Dirección de Sistemas → Dirección General → Subsecretaría".
    pub chain: String,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    layout: Layout,
    done: Option<String>,
    errors: Errors,
    /// Which form was refused, and what it held.
    refused_form: &'static str,
    submitted: Fields,
    agencies: Vec<AgencyLine>,
    procedures: Vec<ProcedureLine>,
    users: Vec<UserLine>,
    /// Users whose ladder is empty where the protocol needs one, and why.
    warnings: Vec<(String, String)>,
    agency_options: Vec<Choice>,
    agency_user_options: Vec<Choice>,
    user_options: Vec<Choice>,
    role_options: Vec<Choice>,
}

impl CatalogPage {
    /// What the person typed in `field` of the refused `form` (blank otherwise).
    pub fn value(&self, form: &str, field: &str) -> String {
        if self.refused_form == form {
            self.submitted.get(field).to_string()
        } else {
            String::new()
        }
    }
}

/// The chain above `user` by `reports_to`, names joined by arrows; stops at a cycle.
fn chain(user: &UserDoc, by_id: &HashMap<i64, &UserDoc>) -> String {
    let mut names = Vec::new();
    let mut seen = vec![user.id];
    let mut next = user.reports_to;
    while let Some(id) = next {
        if seen.contains(&id) {
            break;
        }
        seen.push(id);
        match by_id.get(&id) {
            Some(u) => {
                names.push(u.name.clone());
                next = u.reports_to;
            }
            None => break,
        }
    }
    names.join(" → ")
}

async fn build(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    errors: Errors,
    refused_form: &'static str,
    submitted: Fields,
) -> Result<CatalogPage, ServiceError> {
    let caller = &viewer.caller;
    let (agencies, procedures, users, warnings) = tokio::try_join!(
        state.service.agencies(caller),
        state.service.procedures(caller),
        state.service.users(caller),
        state.service.ladder_warnings(caller),
    )?;
    let by_id: HashMap<i64, &UserDoc> = users.iter().map(|u| (u.id, u)).collect();
    let agency_name: HashMap<i64, String> =
        agencies.iter().map(|a| (a.id, a.acronym.clone())).collect();
    let choice = |value: String, label: String| Choice {
        value,
        label,
        selected: false,
    };
    Ok(CatalogPage {
        layout: Layout::new(Some(viewer), "Catálogo", "/catalogo"),
        done,
        errors,
        refused_form,
        submitted,
        warnings: warnings
            .into_iter()
            .map(|(u, why)| (format!("{} ({})", u.name, u.email), why))
            .collect(),
        agency_options: agencies
            .iter()
            .map(|a| choice(a.id.to_string(), format!("{} — {}", a.acronym, a.name)))
            .collect(),
        agency_user_options: users
            .iter()
            .filter(|u| u.role == Role::Agency.as_str() && u.active)
            .map(|u| {
                let agency = u
                    .agency_id
                    .and_then(|a| agency_name.get(&a).cloned())
                    .unwrap_or_default();
                choice(
                    u.id.to_string(),
                    format!("{} ({agency}) — {}", u.name, u.email),
                )
            })
            .collect(),
        user_options: users
            .iter()
            .filter(|u| u.active)
            .map(|u| choice(u.id.to_string(), format!("{} — {}", u.name, u.email)))
            .collect(),
        role_options: Role::ALL
            .iter()
            .map(|r| choice(r.as_str().to_string(), r.label().to_string()))
            .collect(),
        agencies: agencies
            .iter()
            .map(|a| AgencyLine {
                id: a.id,
                active: a.active,
                acronym: a.acronym.clone(),
                name: a.name.clone(),
                domains: a.email_domains.join(", "),
            })
            .collect(),
        procedures: procedures
            .iter()
            .map(|p| ProcedureLine {
                id: p.id,
                active: p.active,
                homoclave: p.homoclave.clone(),
                name: p.name.clone(),
                url: p.url.clone(),
                agency: agency_name.get(&p.agency_id).cloned().unwrap_or_default(),
                responsible: by_id
                    .get(&p.responsible_id)
                    .map(|u| u.name.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        users: users
            .iter()
            .map(|u| UserLine {
                id: u.id,
                name: u.name.clone(),
                email: u.email.clone(),
                role: views::role_label(&u.role),
                agency: u
                    .agency_id
                    .and_then(|a| agency_name.get(&a).cloned())
                    .unwrap_or_else(|| "—".into()),
                active: u.active,
                chain: chain(u, &by_id),
            })
            .collect(),
    })
}

#[derive(Deserialize, Default)]
pub struct CatalogQuery {
    #[serde(default)]
    hecho: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<CatalogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = query.ok().and_then(|Query(q)| q.hecho).and_then(|h| {
        let text = match h.as_str() {
            "dependencia" => "Se registró la dependencia.",
            "tramite" => "Se registró el trámite.",
            "usuario" => "Se registró el usuario.",
            _ => return None,
        };
        Some(text.to_string())
    });
    match build(
        &state,
        &viewer,
        done,
        Errors::default(),
        "",
        Fields::default(),
    )
    .await
    {
        Ok(p) => html(StatusCode::OK, &p),
        Err(e) => refused(Some(&viewer), &e),
    }
}

fn label(field: &str) -> String {
    match field {
        "name" => "Nombre",
        "acronym" => "Siglas",
        "email_domains" => "Dominios de correo",
        "homoclave" => "Homoclave",
        "agency_id" => "Dependencia",
        "url" => "Dirección del trámite",
        "responsible_id" => "Responsable",
        "email" => "Correo electrónico",
        "role" => "Rol",
        "reports_to" => "Superior jerárquico",
        "password" => "Contraseña inicial",
        other => other,
    }
    .to_string()
}

/// After a registration: back to the catalogue, or the page again with the refusal and
/// what was typed.
async fn answer<T>(
    state: &AppState,
    viewer: Viewer,
    fields: Fields,
    form: &'static str,
    done: &str,
    result: Result<T, ServiceError>,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/catalogo?hecho={done}")).into_response(),
        Err(e @ ServiceError::Forbidden(_)) => refused(Some(&viewer), &e),
        Err(e) => {
            let errors = Errors::from_service(&e, label, |f| format!("{form}-{f}"));
            match build(state, &viewer, None, errors, form, fields).await {
                Ok(p) => html(status_of(&e), &p),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}

pub async fn create_agency(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { viewer, fields } = posted;
    let input = NewAgencyInput {
        name: fields.get("name").to_string(),
        acronym: fields.get("acronym").to_string(),
        email_domains: fields.words("email_domains"),
    };
    let result = state.service.create_agency(&viewer.caller, input).await;
    answer(&state, viewer, fields, "agency", "dependencia", result).await
}

pub async fn create_procedure(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { viewer, fields } = posted;
    let result = match (fields.id("agency_id"), fields.id("responsible_id")) {
        (Some(agency_id), Some(responsible_id)) => {
            let input = NewProcedureInput {
                homoclave: fields.get("homoclave").to_string(),
                name: fields.get("name").to_string(),
                agency_id,
                url: fields.get("url").to_string(),
                responsible_id,
            };
            state.service.create_procedure(&viewer.caller, input).await
        }
        (agency, responsible) => {
            let mut errors = Vec::new();
            if agency.is_none() {
                errors.push(incidencias_core::FieldError::new(
                    "agency_id",
                    "elija la dependencia",
                ));
            }
            if responsible.is_none() {
                errors.push(incidencias_core::FieldError::new(
                    "responsible_id",
                    "elija al responsable",
                ));
            }
            Err(ServiceError::Invalid(errors))
        }
    };
    answer(&state, viewer, fields, "procedure", "tramite", result).await
}

pub async fn create_user(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { viewer, fields } = posted;
    let password = fields.get("password");
    let input = NewUserInput {
        name: fields.get("name").to_string(),
        email: fields.get("email").to_string(),
        role: fields.get("role").to_string(),
        agency_id: fields.id("agency_id"),
        reports_to: fields.id("reports_to"),
        password: (!password.is_empty()).then(|| password.to_string()),
    };
    let result = state.service.create_user(&viewer.caller, input).await;
    answer(&state, viewer, fields, "user", "usuario", result).await
}
