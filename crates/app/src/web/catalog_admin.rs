//! The catalogue's administration beyond registration: editing (and deactivating) an
//! agency, procedure or user, the record of every change, and CSV import with a preview.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use incidencias_core::Role;
use serde::Deserialize;

use super::format;
use super::pages::{Choice, Errors, Layout, html, refused, status_of};
use super::session::{Fields, Posted, Viewer, csrf_token};
use crate::documents::AdminChangeDoc;
use crate::http::AppState;
use crate::service::{
    AgencyUpdateInput, ImportKind, ImportPreview, ProcedureUpdateInput, RowOutcome, ServiceError,
    UserUpdateInput,
};

/// One change as the record lists it.
pub struct ChangeLine {
    pub at: String,
    pub actor: String,
    pub what: String,
    /// "campo: antes → después", one per changed field.
    pub diff: Vec<String>,
}

fn entity_label(entity: &str) -> &'static str {
    match entity {
        "agency" => "dependencia",
        "user" => "usuario",
        "procedure" => "trámite",
        "policy" => "política de SLO",
        _ => "elemento",
    }
}

fn action_label(action: &str) -> &'static str {
    match action {
        "created" => "alta",
        "updated" => "modificación",
        "deactivated" => "baja",
        "reactivated" => "reactivación",
        "imported" => "importación",
        _ => "cambio",
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "Sí".into(),
        Some(Value::Bool(false)) => "No".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| show(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A recorded field, as the catalogue's forms call it.
fn field_name(key: &str) -> &str {
    match key {
        "name" => "Nombre",
        "acronym" => "Siglas",
        "email_domains" => "Dominios de correo",
        "email" => "Correo electrónico",
        "role" => "Rol",
        "agency_id" => "Dependencia (id)",
        "reports_to" => "Superior jerárquico (id)",
        "active" => "Activo",
        "homoclave" => "Homoclave",
        "url" => "Dirección del trámite",
        "responsible_id" => "Responsable (id)",
        "effective_from" => "Vigente desde",
        "warning_ratio" => "Aviso preventivo",
        "escalation_repeat_s" => "Periodo entre escalamientos (s)",
        "targets" => "Tiempos objetivo",
        "version" => "Versión",
        other => other,
    }
}

/// What changed between `before` and `after`, field by field.
fn diff(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.and_then(|v| v.as_object()).unwrap_or(&empty);
    let a = after.and_then(|v| v.as_object()).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| format!("{}: {} → {}", field_name(k), show(b.get(k)), show(a.get(k))))
        .collect()
}

pub fn change_lines(changes: &[AdminChangeDoc]) -> Vec<ChangeLine> {
    changes
        .iter()
        .map(|c| ChangeLine {
            at: format::instant(c.at),
            actor: c.actor_name.clone(),
            what: format!(
                "{} de {} {}",
                action_label(&c.action),
                entity_label(&c.entity),
                c.entity_id
            ),
            diff: diff(c.before.as_ref(), c.after.as_ref()),
        })
        .collect()
}

// ---------------------------------------------------------------- the record

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage {
    layout: Layout,
    changes: Vec<ChangeLine>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ChangesQuery {
    #[serde(default)]
    antes: Option<i64>,
}

const CHANGES_PAGE: u32 = 100;

pub async fn changes(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let before = query.ok().and_then(|Query(q)| q.antes);
    let changes = match state
        .service
        .admin_changes(&viewer.caller, None, None, before, CHANGES_PAGE)
        .await
    {
        Ok(c) => c,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let next = (changes.len() == CHANGES_PAGE as usize)
        .then(|| {
            changes
                .last()
                .map(|c| format!("/catalogo/cambios?antes={}", c.id))
        })
        .flatten();
    let page = ChangesPage {
        layout: Layout::new(Some(&viewer), "Registro de cambios", "/catalogo"),
        changes: change_lines(&changes),
        next,
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- editing

/// One field of an edit form.
pub struct EditField {
    pub name: String,
    pub label: &'static str,
    /// An input type (`text`, `url`), `select` or `check`.
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub help: Option<&'static str>,
}

fn text(name: &str, label: &'static str, value: String) -> EditField {
    EditField {
        name: name.into(),
        label,
        kind: "text",
        value,
        options: Vec::new(),
        help: None,
    }
}

fn active(value: bool) -> EditField {
    EditField {
        name: "active".into(),
        label: "Activo (sin marcar: dado de baja; su historia se conserva)",
        kind: "check",
        value: if value { "si".into() } else { String::new() },
        options: Vec::new(),
        help: None,
    }
}

#[derive(Template)]
#[template(path = "catalog_edit.html")]
struct EditPage {
    layout: Layout,
    heading: String,
    what: &'static str,
    action: String,
    done: Option<String>,
    errors: Errors,
    chain: String,
    fields: Vec<EditField>,
    changes: Vec<ChangeLine>,
}

/// Which catalogue entity a path names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agency,
    Procedure,
    User,
}

impl Kind {
    fn parse(segment: &str) -> Option<Kind> {
        match segment {
            "dependencias" => Some(Kind::Agency),
            "tramites" => Some(Kind::Procedure),
            "usuarios" => Some(Kind::User),
            _ => None,
        }
    }

    fn entity(self) -> &'static str {
        match self {
            Kind::Agency => "agency",
            Kind::Procedure => "procedure",
            Kind::User => "user",
        }
    }
}

/// The edit page of one entity; `posted` overrides the stored values after a refusal.
#[allow(clippy::too_many_arguments)] // one page, its target, and what a refusal carries
async fn edit_page(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    segment: &str,
    id: i64,
    done: Option<String>,
    errors: Errors,
    posted: Option<&Fields>,
) -> Result<EditPage, ServiceError> {
    let caller = &viewer.caller;
    let (agencies, procedures, users) = tokio::try_join!(
        state.service.agencies(caller),
        state.service.procedures(caller),
        state.service.users(caller),
    )?;
    let changes = state
        .service
        .admin_changes(caller, Some(kind.entity()), Some(id), None, 50)
        .await?;
    let agency_choices = || {
        let mut list = vec![Choice {
            value: String::new(),
            label: "Ninguna".into(),
            selected: false,
        }];
        list.extend(agencies.iter().map(|a| Choice {
            value: a.id.to_string(),
            label: format!("{} — {}", a.acronym, a.name),
            selected: false,
        }));
        list
    };
    let (heading, what, mut fields, chain) = match kind {
        Kind::Agency => {
            let a = agencies
                .iter()
                .find(|a| a.id == id)
                .ok_or_else(|| ServiceError::NotFound("la dependencia".into()))?;
            let mut domains = text(
                "email_domains",
                "Dominios de correo",
                a.email_domains.join(", "),
            );
            domains.help = Some("Separados por comas.");
            (
                format!("Dependencia {}", a.acronym),
                "la dependencia",
                vec![
                    text("name", "Nombre", a.name.clone()),
                    text("acronym", "Siglas", a.acronym.clone()),
                    domains,
                    active(a.active),
                ],
                String::new(),
            )
        }
        Kind::Procedure => {
            let p = procedures
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| ServiceError::NotFound("el trámite".into()))?;
            let mut url = text("url", "Dirección del trámite en gob.mx", p.url.clone());
            url.kind = "url";
            (
                format!("Trámite {}", p.homoclave),
                "el trámite",
                vec![
                    text("name", "Nombre", p.name.clone()),
                    url,
                    EditField {
                        name: "responsible_id".into(),
                        label: "Responsable",
                        kind: "select",
                        value: p.responsible_id.to_string(),
                        options: users
                            .iter()
                            .filter(|u| {
                                u.role == Role::Agency.as_str() && u.agency_id == Some(p.agency_id)
                            })
                            .map(|u| Choice {
                                value: u.id.to_string(),
                                label: format!("{} — {}", u.name, u.email),
                                selected: false,
                            })
                            .collect(),
                        help: None,
                    },
                    active(p.active),
                ],
                String::new(),
            )
        }
        Kind::User => {
            let u = users
                .iter()
                .find(|u| u.id == id)
                .ok_or_else(|| ServiceError::NotFound("el usuario".into()))?;
            let ladder = state.service.ladder(caller, id).await?;
            let chain = ladder
                .iter()
                .skip_while(|l| l.id == id)
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
                .join(" → ");
            let mut bosses = vec![Choice {
                value: String::new(),
                label: "Ninguno".into(),
                selected: false,
            }];
            bosses.extend(users.iter().filter(|b| b.id != id).map(|b| Choice {
                value: b.id.to_string(),
                label: format!("{} — {}", b.name, b.email),
                selected: false,
            }));
            (
                format!("Usuario {}", u.email),
                "el usuario",
                vec![
                    text("name", "Nombre", u.name.clone()),
                    EditField {
                        name: "role".into(),
                        label: "Rol",
                        kind: "select",
                        value: u.role.clone(),
                        options: Role::ALL
                            .iter()
                            .map(|r| Choice {
                                value: r.as_str().into(),
                                label: r.label().into(),
                                selected: false,
                            })
                            .collect(),
                        help: None,
                    },
                    EditField {
                        name: "agency_id".into(),
                        label: "Dependencia (solo para el rol Dependencia)",
                        kind: "select",
                        value: u.agency_id.map(|a| a.to_string()).unwrap_or_default(),
                        options: agency_choices(),
                        help: None,
                    },
                    EditField {
                        name: "reports_to".into(),
                        label: "Superior jerárquico (a quien se escala)",
                        kind: "select",
                        value: u.reports_to.map(|r| r.to_string()).unwrap_or_default(),
                        options: bosses,
                        help: None,
                    },
                    active(u.active),
                ],
                chain,
            )
        }
    };
    if let Some(posted) = posted {
        for f in &mut fields {
            f.value = posted.get(&f.name).to_string();
        }
    }
    Ok(EditPage {
        layout: Layout::new(Some(viewer), &heading, "/catalogo"),
        action: format!("/catalogo/{segment}/{id}"),
        heading,
        what,
        done,
        errors,
        chain: if chain.is_empty() && kind == Kind::User {
            "sin superior".into()
        } else {
            chain
        },
        fields,
        changes: change_lines(&changes),
    })
}

#[derive(Deserialize, Default)]
pub struct EditQuery {
    #[serde(default)]
    hecho: Option<String>,
}

fn target(segment: &str, id: &str) -> Result<(Kind, i64), ServiceError> {
    let kind = Kind::parse(segment).ok_or_else(|| ServiceError::NotFound("esa página".into()))?;
    let id = id
        .parse()
        .map_err(|_| ServiceError::NotFound("ese elemento del catálogo".into()))?;
    Ok((kind, id))
}

pub async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((segment, id)): Path<(String, String)>,
    query: Result<Query<EditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (kind, id) = match target(&segment, &id) {
        Ok(t) => t,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let done = query
        .ok()
        .and_then(|Query(q)| q.hecho)
        .map(|_| "Se guardaron los cambios; quedaron en el registro.".to_string());
    match edit_page(
        &state,
        &viewer,
        kind,
        &segment,
        id,
        done,
        Errors::default(),
        None,
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
        "url" => "Dirección del trámite",
        "responsible_id" => "Responsable",
        "role" => "Rol",
        "agency_id" => "Dependencia",
        "reports_to" => "Superior jerárquico",
        other => other,
    }
    .to_string()
}

pub async fn update(
    State(state): State<AppState>,
    Path((segment, id)): Path<(String, String)>,
    Posted { viewer, fields }: Posted,
) -> Response {
    let (kind, id) = match target(&segment, &id) {
        Ok(t) => t,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let caller = &viewer.caller;
    let is_active = fields.get("active") == "si";
    let result = match kind {
        Kind::Agency => state
            .service
            .update_agency(
                caller,
                id,
                AgencyUpdateInput {
                    name: fields.get("name").into(),
                    acronym: fields.get("acronym").into(),
                    email_domains: fields.words("email_domains"),
                    active: is_active,
                },
            )
            .await
            .map(|_| ()),
        Kind::Procedure => match fields.id("responsible_id") {
            Some(responsible_id) => state
                .service
                .update_procedure(
                    caller,
                    id,
                    ProcedureUpdateInput {
                        name: fields.get("name").into(),
                        url: fields.get("url").into(),
                        responsible_id,
                        active: is_active,
                    },
                )
                .await
                .map(|_| ()),
            None => Err(ServiceError::invalid(
                "responsible_id",
                "elija al responsable",
            )),
        },
        Kind::User => state
            .service
            .update_user(
                caller,
                id,
                UserUpdateInput {
                    name: fields.get("name").into(),
                    role: fields.get("role").into(),
                    agency_id: fields.id("agency_id"),
                    reports_to: fields.id("reports_to"),
                    active: is_active,
                },
            )
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/catalogo/{segment}/{id}?hecho=1")).into_response(),
        Err(e @ (ServiceError::Forbidden(_) | ServiceError::NotFound(_))) => {
            refused(Some(&viewer), &e)
        }
        Err(e) => {
            let errors = Errors::from_service(&e, label, |f| format!("e-{f}"));
            match edit_page(
                &state,
                &viewer,
                kind,
                &segment,
                id,
                None,
                errors,
                Some(&fields),
            )
            .await
            {
                Ok(p) => html(status_of(&e), &p),
                Err(e) => refused(Some(&viewer), &e),
            }
        }
    }
}

// ---------------------------------------------------------------- import

pub struct ImportLine {
    pub line: usize,
    pub outcome: &'static str,
    pub tone: &'static str,
    pub detail: String,
    pub values: Vec<String>,
}

pub struct PreviewView {
    pub kind: &'static str,
    pub applied: bool,
    pub can_apply: bool,
    pub summary: String,
    pub columns: Vec<String>,
    pub rows: Vec<ImportLine>,
    /// The file, carried to the apply step.
    pub content: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    layout: Layout,
    errors: Errors,
    preview: Option<PreviewView>,
}

fn kind_name(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Procedures => "procedures",
        ImportKind::Users => "users",
    }
}

/// "1 renglón", "3 renglones".
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn preview_view(p: &ImportPreview, content: String) -> PreviewView {
    let c = &p.counts;
    let tally = format!(
        "{}, {}, {}",
        count(c.new, "nuevo", "nuevos"),
        count(c.changed, "modificado", "modificados"),
        count(c.unchanged, "sin cambios", "sin cambios")
    );
    let summary = if p.applied {
        format!("Se aplicó en una sola operación: {tally}.")
    } else if c.errors > 0 {
        format!(
            "{} con error: corríjalos en el archivo y vuelva a cargarlo; nada se aplica \
             mientras haya errores. ({tally}.)",
            count(c.errors, "renglón", "renglones")
        )
    } else if c.new + c.changed == 0 {
        format!(
            "Nada que cambiar: el archivo coincide con el catálogo ({}).",
            count(c.unchanged, "renglón", "renglones")
        )
    } else {
        format!("Al aplicar: {tally}. Nada ha cambiado todavía.")
    };
    PreviewView {
        kind: kind_name(p.kind),
        applied: p.applied,
        can_apply: !p.applied && c.errors == 0 && c.new + c.changed > 0,
        summary,
        columns: p
            .rows
            .first()
            .map(|r| r.values.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default(),
        rows: p
            .rows
            .iter()
            .map(|r| {
                let (outcome, tone, detail) = match &r.outcome {
                    RowOutcome::New => ("nuevo", "ok", String::new()),
                    RowOutcome::Changed(cols) => ("modificado", "warn", cols.join(", ")),
                    RowOutcome::Unchanged => ("sin cambios", "done", String::new()),
                    RowOutcome::Error(why) => ("error", "late", why.clone()),
                };
                ImportLine {
                    line: r.line,
                    outcome,
                    tone,
                    detail,
                    values: r.values.iter().map(|(_, v)| v.clone()).collect(),
                }
            })
            .collect(),
        content,
    }
}

pub async fn import_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Err(e) = state.service.may_act(&viewer.caller, "import") {
        return refused(Some(&viewer), &e);
    }
    let page = ImportPage {
        layout: Layout::new(Some(&viewer), "Importar", "/catalogo"),
        errors: Errors::default(),
        preview: None,
    };
    html(StatusCode::OK, &page)
}

/// Both steps: the file uploaded (multipart) for a preview, or the previewed content
/// posted back (urlencoded) to apply it.
pub async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    request: axum::extract::Request,
) -> Response {
    // From our pages only (like every form: see session::Posted), then the token below.
    let (parts, body) = request.into_parts();
    if !crate::http::extract::same_origin(&parts) {
        return super::session::forged();
    }
    let request = axum::extract::Request::from_parts(parts, body);
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (csrf, step, kind, content) = if is_multipart {
        match read_upload(request, &state).await {
            Ok(parts) => parts,
            Err(e) => return refused(Some(&viewer), &e),
        }
    } else {
        match axum::Form::<Vec<(String, String)>>::from_request(request, &state).await {
            Ok(axum::Form(f)) => {
                let f = Fields(f);
                (
                    f.get("_csrf").to_string(),
                    f.get("paso").to_string(),
                    f.get("tipo").to_string(),
                    f.get("contenido").as_bytes().to_vec(),
                )
            }
            Err(_) => return super::session::forged(),
        }
    };
    if csrf != csrf_token(&viewer.session) {
        return super::session::forged();
    }
    let kind = match kind.as_str() {
        "users" => ImportKind::Users,
        _ => ImportKind::Procedures,
    };
    let result = if step == "aplicar" {
        state
            .service
            .apply_import(&viewer.caller, kind, &content)
            .await
    } else {
        state
            .service
            .preview_import(&viewer.caller, kind, &content)
            .await
    };
    let content = String::from_utf8_lossy(&content).into_owned();
    match result {
        Ok(preview) => {
            let page = ImportPage {
                layout: Layout::new(Some(&viewer), "Importar", "/catalogo"),
                errors: Errors::default(),
                preview: Some(preview_view(&preview, content)),
            };
            html(StatusCode::OK, &page)
        }
        Err(e @ ServiceError::Forbidden(_)) => refused(Some(&viewer), &e),
        Err(e) => {
            let page = ImportPage {
                layout: Layout::new(Some(&viewer), "Importar", "/catalogo"),
                errors: Errors::from_service(&e, |f| f.to_string(), |_| "archivo".into()),
                preview: None,
            };
            html(status_of(&e), &page)
        }
    }
}

/// The fields of the upload form: token, step, kind and the file's bytes.
async fn read_upload(
    request: axum::extract::Request,
    state: &AppState,
) -> Result<(String, String, String, Vec<u8>), ServiceError> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|_| ServiceError::invalid("archivo", "el formulario no se pudo leer"))?;
    let (mut csrf, mut step, mut kind, mut content) =
        (String::new(), String::new(), String::new(), Vec::new());
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ServiceError::invalid("archivo", "el archivo no se pudo leer completo"))?
    {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|_| ServiceError::invalid("archivo", "el archivo no se pudo leer completo"))?;
        match name.as_str() {
            "_csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "paso" => step = String::from_utf8_lossy(&bytes).into_owned(),
            "tipo" => kind = String::from_utf8_lossy(&bytes).into_owned(),
            "archivo" => content = bytes.to_vec(),
            _ => {}
        }
    }
    if content.is_empty() {
        return Err(ServiceError::invalid(
            "archivo",
            "elija un archivo CSV con contenido",
        ));
    }
    Ok((csrf, step, kind, content))
}
