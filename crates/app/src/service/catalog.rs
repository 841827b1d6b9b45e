//! Catalogue use-cases (admin): agencies, users, procedures, SLO policy versions.

use incidencias_core::{AgencyId, Email, FieldError, Homoclave, Role, SloPolicy, UserId};
use jiff::Timestamp;

use super::{Caller, Service, ServiceError};
use crate::documents::{AgencyDoc, ProcedureDoc, UserDoc};
use crate::store::{Agency, Audit, NewAgency, NewProcedure, NewUser, Procedure, User};

#[derive(Debug, Clone)]
pub struct NewAgencyInput {
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewUserInput {
    pub name: String,
    pub email: String,
    /// `admin`, `helpdesk`, `validator` or `agency`; checked with the other fields.
    pub role: String,
    pub agency_id: Option<i64>,
    pub reports_to: Option<i64>,
    pub password: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewProcedureInput {
    pub homoclave: String,
    pub name: String,
    pub agency_id: i64,
    pub url: String,
    pub responsible_id: i64,
}

#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub effective_from: Option<Timestamp>,
    pub targets: incidencias_core::slo::Targets,
    pub warning_ratio: Option<f64>,
    pub escalation_repeat_s: Option<u32>,
    /// The share of clocks to meet, in % (default 95): the reports' error budget.
    pub objective_pct: Option<f64>,
}

/// A document as recorded in `admin_changes`.
fn json<T: serde::Serialize>(doc: &T) -> String {
    // Documents are plain structs of strings and numbers: serializing cannot fail.
    serde_json::to_string(doc).unwrap_or_default()
}

/// How each catalogue write by `actor` is recorded (`admin_changes`, in its transaction).
pub(super) fn agency_audit(actor: UserId) -> Audit<Agency> {
    Audit {
        actor,
        entity: "agency",
        doc: |a| json(&AgencyDoc::from(a.clone())),
    }
}

pub(super) fn user_audit(actor: UserId) -> Audit<User> {
    Audit {
        actor,
        entity: "user",
        doc: |u| json(&UserDoc::from(u.clone())),
    }
}

pub(super) fn procedure_audit(actor: UserId) -> Audit<Procedure> {
    Audit {
        actor,
        entity: "procedure",
        doc: |p| json(&ProcedureDoc::from(p.clone())),
    }
}

fn policy_audit(actor: UserId) -> Audit<SloPolicy> {
    Audit {
        actor,
        entity: "policy",
        doc: json::<SloPolicy>,
    }
}

pub(super) fn required(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "es obligatorio"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("no puede exceder {max} caracteres"),
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "contiene caracteres de control"));
    }
}

pub(super) fn done(errors: Vec<FieldError>) -> Result<(), ServiceError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// A mail domain as agencies write it: lowercase labels of letters, digits and hyphens.
pub(super) fn valid_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks an agency's fields; returns its acronym and domains as stored.
pub(super) fn agency_fields(input: &NewAgencyInput) -> Result<(String, Vec<String>), ServiceError> {
    let mut errors = Vec::new();
    required(&mut errors, "name", &input.name, 300);
    let acronym = input.acronym.trim().to_uppercase();
    if !(2..=12).contains(&acronym.len()) || !acronym.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            "acronym",
            "deben ser de 2 a 12 letras sin acentos",
        ));
    }
    let domains: Vec<String> = input
        .email_domains
        .iter()
        .map(|d| d.trim().to_lowercase())
        .collect();
    if domains.is_empty() {
        errors.push(FieldError::new(
            "email_domains",
            "indique al menos un dominio de correo",
        ));
    }
    for d in &domains {
        if !valid_domain(d) {
            errors.push(FieldError::new(
                "email_domains",
                format!("dominio no válido: {d}"),
            ));
        }
    }
    done(errors)?;
    Ok((acronym, domains))
}

/// Checks a procedure's address; returns it as stored.
pub(super) fn procedure_url(errors: &mut Vec<FieldError>, url: &str) -> String {
    let url = url.trim().to_string();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.len() > 2000
        || url.contains(char::is_whitespace)
    {
        errors.push(FieldError::new(
            "url",
            "debe ser una dirección http:// o https://",
        ));
    }
    url
}

/// Who may change the catalogue (agencies, users, procedures, SLO policies).
pub(super) const WRITERS: &[Role] = &[Role::Admin];

/// The roles of a catalogue write by the name front ends give it (see
/// [`Service::may_act`]).
pub(super) fn roles_named(action: &str) -> Option<&'static [Role]> {
    match action {
        "create_agency" | "create_user" | "create_procedure" | "create_policy"
        | "update_agency" | "update_user" | "update_procedure" | "import" => Some(WRITERS),
        "manage_webhooks" => Some(super::webhooks::WEBHOOK_ADMINS),
        _ => None,
    }
}

impl Service {
    pub async fn create_agency(
        &self,
        caller: &Caller,
        input: NewAgencyInput,
    ) -> Result<AgencyDoc, ServiceError> {
        caller.require(WRITERS, "registrar dependencias")?;
        let (acronym, domains) = agency_fields(&input)?;
        Ok(self
            .store
            .create_agency(
                NewAgency {
                    name: input.name.trim().to_string(),
                    acronym,
                    email_domains: domains,
                },
                agency_audit(caller.id),
                self.now(),
            )
            .await?
            .into())
    }

    /// Agencies (an agency user sees their own).
    pub async fn agencies(&self, caller: &Caller) -> Result<Vec<AgencyDoc>, ServiceError> {
        let all = self.store.agencies().await?;
        Ok(all
            .into_iter()
            .filter(|a| caller.agency_scope().is_none_or(|own| a.id == own))
            .map(Into::into)
            .collect())
    }

    /// Creates an account. Passwords are hashed with Argon2id off the async threads.
    /// Without a caller (the command line, the demo, the tests' seed), so recorded as the
    /// operator's (actor 0).
    pub async fn create_user_unchecked(
        &self,
        input: NewUserInput,
    ) -> Result<UserDoc, ServiceError> {
        self.create_account(input, UserId(0)).await.map(Into::into)
    }

    async fn create_account(
        &self,
        input: NewUserInput,
        actor: UserId,
    ) -> Result<User, ServiceError> {
        let mut errors = Vec::new();
        required(&mut errors, "name", &input.name, 300);
        let email = match Email::parse(&input.email) {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(FieldError::new("email", e.to_string()));
                None
            }
        };
        let parsed = Role::parse(&input.role);
        if let Err(e) = &parsed {
            errors.push(FieldError::new("role", e.to_string()));
        }
        // Without a valid role, the checks that depend on it wait for the next attempt; the
        // other fields' errors still come now.
        let role_known = parsed.is_ok();
        let role = parsed.unwrap_or(Role::Helpdesk);
        let agency = match (role, input.agency_id) {
            _ if !role_known => None,
            (Role::Agency, Some(id)) => match self.store.agency(AgencyId(id)).await? {
                Some(a) => Some(a.id),
                None => {
                    errors.push(FieldError::new(
                        "agency_id",
                        format!("no existe la dependencia {id}"),
                    ));
                    None
                }
            },
            (Role::Agency, None) => {
                errors.push(FieldError::new(
                    "agency_id",
                    "un usuario de dependencia necesita su dependencia",
                ));
                None
            }
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "agency_id",
                    "sólo los usuarios de dependencia pertenecen a una dependencia",
                ));
                None
            }
            (_, None) => None,
        };
        if let Some(boss) = input.reports_to {
            match self.store.user(UserId(boss)).await? {
                Some(_) if !role_known => {}
                None => errors.push(FieldError::new(
                    "reports_to",
                    format!("no existe el usuario {boss}"),
                )),
                Some(b) if b.agency_id != agency && role == Role::Agency => errors.push(
                    FieldError::new("reports_to", "el superior debe ser de la misma dependencia"),
                ),
                Some(b) if (b.role == Role::Agency) != (role == Role::Agency) => {
                    errors.push(FieldError::new(
                        "reports_to",
                        "el superior debe ser del mismo ámbito (dependencia o central)",
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(problem) = input
            .password
            .as_deref()
            .and_then(|p| super::passwords::password_problem(p, &input.email))
        {
            errors.push(FieldError::new("password", problem));
        }
        done(errors)?;
        let password_hash = match input.password {
            Some(p) => Some(
                crate::passwords::hash(p)
                    .await
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let Some(email) = email else {
            return Err(ServiceError::invalid("email", "es obligatorio"));
        };
        self.org_changed();
        Ok(self
            .store
            .create_user(
                NewUser {
                    email,
                    name: input.name.trim().to_string(),
                    role,
                    agency_id: agency,
                    reports_to: input.reports_to.map(UserId),
                    password_hash,
                },
                user_audit(actor),
                self.now(),
            )
            .await?)
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        input: NewUserInput,
    ) -> Result<UserDoc, ServiceError> {
        caller.require(WRITERS, "registrar usuarios")?;
        self.create_account(input, caller.id).await.map(Into::into)
    }

    /// Every account (admin).
    pub async fn users(&self, caller: &Caller) -> Result<Vec<UserDoc>, ServiceError> {
        caller.require(&[Role::Admin], "consultar los usuarios")?;
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn create_procedure(
        &self,
        caller: &Caller,
        input: NewProcedureInput,
    ) -> Result<ProcedureDoc, ServiceError> {
        caller.require(WRITERS, "registrar trámites")?;
        let mut errors = Vec::new();
        let homoclave = match Homoclave::parse(&input.homoclave) {
            Ok(h) => Some(h),
            Err(e) => {
                errors.push(FieldError::new("homoclave", e.to_string()));
                None
            }
        };
        required(&mut errors, "name", &input.name, 500);
        let url = procedure_url(&mut errors, &input.url);
        match self.store.agency(AgencyId(input.agency_id)).await? {
            None => errors.push(FieldError::new(
                "agency_id",
                format!("no existe la dependencia {}", input.agency_id),
            )),
            Some(a) if !a.active => errors.push(FieldError::new(
                "agency_id",
                format!("la dependencia {} está dada de baja", a.acronym),
            )),
            Some(_) => {}
        }
        match self.store.user(UserId(input.responsible_id)).await? {
            Some(u) if u.role == Role::Agency && u.agency_id == Some(AgencyId(input.agency_id)) => {
            }
            Some(_) => errors.push(FieldError::new(
                "responsible_id",
                "el responsable debe ser un usuario de la misma dependencia",
            )),
            None => errors.push(FieldError::new(
                "responsible_id",
                format!("no existe el usuario {}", input.responsible_id),
            )),
        }
        done(errors)?;
        self.org_changed();
        let Some(homoclave) = homoclave else {
            return Err(ServiceError::invalid("homoclave", "es obligatoria"));
        };
        Ok(self
            .store
            .create_procedure(
                NewProcedure {
                    homoclave,
                    name: input.name.trim().to_string(),
                    agency_id: AgencyId(input.agency_id),
                    url,
                    responsible_id: UserId(input.responsible_id),
                },
                procedure_audit(caller.id),
                self.now(),
            )
            .await?
            .into())
    }

    /// Procedures (an agency user sees their agency's).
    pub async fn procedures(&self, caller: &Caller) -> Result<Vec<ProcedureDoc>, ServiceError> {
        let all = self.store.procedures().await?;
        Ok(all
            .into_iter()
            .filter(|p| caller.agency_scope().is_none_or(|own| p.agency_id == own))
            .map(Into::into)
            .collect())
    }

    pub async fn policies(&self) -> Result<Vec<SloPolicy>, ServiceError> {
        Ok(self.store.policies().await?)
    }

    pub async fn add_policy(
        &self,
        caller: &Caller,
        input: PolicyInput,
    ) -> Result<SloPolicy, ServiceError> {
        caller.require(WRITERS, "publicar políticas de SLO")?;
        let now = self.now();
        let policy = SloPolicy {
            version: 0,
            effective_from: input.effective_from.unwrap_or(now),
            targets: input.targets,
            warning_ratio: input
                .warning_ratio
                .unwrap_or(incidencias_core::slo::DEFAULT_WARNING_RATIO),
            escalation_repeat_s: input.escalation_repeat_s,
            objective_pct: input
                .objective_pct
                .unwrap_or(incidencias_core::slo::DEFAULT_OBJECTIVE_PCT),
        };
        let problems = policy.problems();
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(
                problems
                    .into_iter()
                    .map(|(f, m)| FieldError::new(f, m))
                    .collect(),
            ));
        }
        let added = self
            .store
            .add_policy(policy, policy_audit(caller.id), now)
            .await?;
        self.org_changed();
        Ok(added)
    }
}
