//! Catalogue administration (admin only): updating agencies, users and procedures,
//! deactivating instead of deleting, the record of changes, and the escalation ladders as
//! the org chart draws them (with what is missing from them).

use std::collections::{HashMap, HashSet};

use incidencias_core::escalation::Ladder;
use incidencias_core::{AgencyId, FieldError, ProcedureId, Role, UserId};

use super::catalog::{
    WRITERS, agency_audit, agency_fields, done, procedure_audit, procedure_url, required,
    user_audit,
};
use super::{Caller, NewAgencyInput, Service, ServiceError};
use crate::documents::{AdminChangeDoc, AgencyDoc, ProcedureDoc, UserDoc};
use crate::store::{AgencyUpdate, ProcedureUpdate, User, UserUpdate};

/// The new values of an agency: every field, as on creation, plus whether it is active.
#[derive(Debug, Clone)]
pub struct AgencyUpdateInput {
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
    pub active: bool,
}

/// The new values of an account. The address is the account's key and does not change;
/// the password has its own use-cases.
#[derive(Debug, Clone)]
pub struct UserUpdateInput {
    pub name: String,
    /// `admin`, `helpdesk`, `validator` or `agency`.
    pub role: String,
    pub agency_id: Option<i64>,
    pub reports_to: Option<i64>,
    /// False: the account cannot sign in (password or token) and is out of the ladders.
    pub active: bool,
}

/// The new values of a procedure. The homoclave and the agency do not change.
#[derive(Debug, Clone)]
pub struct ProcedureUpdateInput {
    pub name: String,
    pub url: String,
    pub responsible_id: i64,
    /// False: the procedure takes no new reports; its incidents stay as they are.
    pub active: bool,
}

/// What [`Service::set_active`] switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogEntity {
    Agency,
    User,
    Procedure,
}

/// Most changes [`Service::admin_changes`] answers at once.
pub const MAX_CHANGES: u32 = 500;

/// Why a user is a ladder warning: an agency user responsible for an active procedure
/// with nobody above them (an escalation of that procedure stops at once).
pub const NO_SUPERIOR_RESPONSIBLE: &str = "es responsable de un trámite activo y no tiene superior: las escalaciones de sus trámites \
     no tienen a quién subir";
/// Why a validator is a ladder warning: front line (nobody reports to them) and nobody
/// above them, so the central escalation has nowhere to go. The top of a chain (someone
/// reports to them) is not warned about: somebody has to be the top.
pub const NO_SUPERIOR_VALIDATOR: &str = "es validador sin superior y nadie depende de él: las \
     escalaciones del lado central no tienen a quién subir";

impl Service {
    pub async fn update_agency(
        &self,
        caller: &Caller,
        id: i64,
        input: AgencyUpdateInput,
    ) -> Result<AgencyDoc, ServiceError> {
        caller.require(WRITERS, "modificar dependencias")?;
        let (acronym, email_domains) = agency_fields(&NewAgencyInput {
            name: input.name.clone(),
            acronym: input.acronym,
            email_domains: input.email_domains,
        })?;
        let update = AgencyUpdate {
            name: input.name.trim().to_string(),
            acronym,
            email_domains,
            active: input.active,
        };
        let agency = self
            .store
            .update_agency(AgencyId(id), update, agency_audit(caller.id), self.now())
            .await?;
        self.org_changed();
        Ok(agency.into())
    }

    /// Updates an account, keeping the rules of its creation (an agency user belongs to
    /// an agency, only they do; a superior of the same scope and agency) and refusing a
    /// superior that would close a loop in the ladder.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: i64,
        input: UserUpdateInput,
    ) -> Result<UserDoc, ServiceError> {
        caller.require(WRITERS, "modificar usuarios")?;
        let users: HashMap<UserId, User> = self
            .store
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        if !users.contains_key(&UserId(id)) {
            return Err(ServiceError::NotFound(format!("el usuario {id}")));
        }
        let mut errors = Vec::new();
        required(&mut errors, "name", &input.name, 300);
        if caller.id == UserId(id) && !input.active {
            errors.push(FieldError::new(
                "active",
                "no puede dar de baja su propia cuenta",
            ));
        }
        let role = match Role::parse(&input.role) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(FieldError::new("role", e.to_string()));
                None
            }
        };
        if let Some(role) = role {
            match (role, input.agency_id) {
                (Role::Agency, Some(a)) => match self.store.agency(AgencyId(a)).await? {
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        "agency_id",
                        format!("no existe la dependencia {a}"),
                    )),
                },
                (Role::Agency, None) => errors.push(FieldError::new(
                    "agency_id",
                    "un usuario de dependencia necesita su dependencia",
                )),
                (_, Some(_)) => errors.push(FieldError::new(
                    "agency_id",
                    "sólo los usuarios de dependencia pertenecen a una dependencia",
                )),
                (_, None) => {}
            }
            if let Some(boss) = input.reports_to {
                let agency = input.agency_id.map(AgencyId);
                match users.get(&UserId(boss)) {
                    None => errors.push(FieldError::new(
                        "reports_to",
                        format!("no existe el usuario {boss}"),
                    )),
                    Some(_) if boss == id => errors.push(FieldError::new(
                        "reports_to",
                        "un usuario no puede ser su propio superior",
                    )),
                    Some(b) if role == Role::Agency && b.agency_id != agency => {
                        errors.push(FieldError::new(
                            "reports_to",
                            "el superior debe ser de la misma dependencia",
                        ))
                    }
                    Some(b) if (b.role == Role::Agency) != (role == Role::Agency) => {
                        errors.push(FieldError::new(
                            "reports_to",
                            "el superior debe ser del mismo ámbito (dependencia o central)",
                        ))
                    }
                    Some(_) => {
                        let up = |u: UserId| {
                            if u == UserId(id) {
                                Some(UserId(boss))
                            } else {
                                users.get(&u).and_then(|x| x.reports_to)
                            }
                        };
                        if Ladder::chain(UserId(boss), up).contains(&UserId(id)) {
                            errors.push(FieldError::new(
                                "reports_to",
                                "el superior elegido depende (directa o indirectamente) de este \
                                 usuario: la cadena de escalación sería un ciclo",
                            ));
                        }
                    }
                }
            }
        }
        // A procedure's responsible is an agency user of its agency (create_procedure's
        // rule): moving them out of it would leave the procedure with a wrong one.
        if role.is_some_and(|r| r != Role::Agency)
            || input.agency_id.map(AgencyId) != users[&UserId(id)].agency_id
        {
            let owned: Vec<String> = self
                .store
                .procedures()
                .await?
                .into_iter()
                .filter(|p| p.responsible_id == UserId(id))
                .map(|p| p.homoclave.to_string())
                .collect();
            if !owned.is_empty() {
                errors.push(FieldError::new(
                    if role == Some(Role::Agency) {
                        "agency_id"
                    } else {
                        "role"
                    },
                    format!(
                        "es responsable de {}: asigne otro responsable antes de cambiar su rol \
                         o dependencia",
                        owned.join(", ")
                    ),
                ));
            }
        }
        done(errors)?;
        let Some(role) = role else {
            return Err(ServiceError::invalid("role", "es obligatorio"));
        };
        let update = UserUpdate {
            name: input.name.trim().to_string(),
            role,
            agency_id: input.agency_id.map(AgencyId),
            reports_to: input.reports_to.map(UserId),
            active: input.active,
        };
        let user = self
            .store
            .update_user(UserId(id), update, user_audit(caller.id), self.now())
            .await?;
        // A deactivated account or a changed role takes effect at once here (other
        // instances: within the credential cache's lifetime).
        if let Ok(mut cache) = self.credentials.lock() {
            cache.clear();
        }
        self.org_changed();
        Ok(user.into())
    }

    pub async fn update_procedure(
        &self,
        caller: &Caller,
        id: i64,
        input: ProcedureUpdateInput,
    ) -> Result<ProcedureDoc, ServiceError> {
        caller.require(WRITERS, "modificar trámites")?;
        let Some(current) = self.store.procedure(ProcedureId(id)).await? else {
            return Err(ServiceError::NotFound(format!("el trámite {id}")));
        };
        let mut errors = Vec::new();
        required(&mut errors, "name", &input.name, 500);
        let url = procedure_url(&mut errors, &input.url);
        match self.store.user(UserId(input.responsible_id)).await? {
            Some(u) if u.role == Role::Agency && u.agency_id == Some(current.agency_id) => {}
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
        let update = ProcedureUpdate {
            name: input.name.trim().to_string(),
            url,
            responsible_id: UserId(input.responsible_id),
            active: input.active,
        };
        let procedure = self
            .store
            .update_procedure(
                ProcedureId(id),
                update,
                procedure_audit(caller.id),
                self.now(),
            )
            .await?;
        self.org_changed();
        Ok(procedure.into())
    }

    /// Deactivates (`active` false) or reactivates an agency, user or procedure, leaving
    /// the rest as it is. Nothing in the catalogue is deleted: incidents and the record
    /// keep pointing at it. Recorded as `deactivated` or `reactivated` (nothing if it was
    /// already so).
    pub async fn set_active(
        &self,
        caller: &Caller,
        entity: CatalogEntity,
        id: i64,
        active: bool,
    ) -> Result<(), ServiceError> {
        caller.require(WRITERS, "dar de baja o reactivar elementos del catálogo")?;
        match entity {
            CatalogEntity::Agency => {
                let Some(a) = self.store.agency(AgencyId(id)).await? else {
                    return Err(ServiceError::NotFound(format!("la dependencia {id}")));
                };
                let input = AgencyUpdateInput {
                    name: a.name,
                    acronym: a.acronym,
                    email_domains: a.email_domains,
                    active,
                };
                self.update_agency(caller, id, input).await.map(drop)
            }
            CatalogEntity::User => {
                let Some(u) = self.store.user(UserId(id)).await? else {
                    return Err(ServiceError::NotFound(format!("el usuario {id}")));
                };
                let input = UserUpdateInput {
                    name: u.name,
                    role: u.role.as_str().to_string(),
                    agency_id: u.agency_id.map(|a| a.0),
                    reports_to: u.reports_to.map(|r| r.0),
                    active,
                };
                self.update_user(caller, id, input).await.map(drop)
            }
            CatalogEntity::Procedure => {
                let Some(p) = self.store.procedure(ProcedureId(id)).await? else {
                    return Err(ServiceError::NotFound(format!("el trámite {id}")));
                };
                let input = ProcedureUpdateInput {
                    name: p.name,
                    url: p.url,
                    responsible_id: p.responsible_id.0,
                    active,
                };
                self.update_procedure(caller, id, input).await.map(drop)
            }
        }
    }

    /// The record of catalogue changes, newest first, at most `limit` (capped at
    /// [`MAX_CHANGES`]): all, of one kind (`entity`: `agency`, `user`, `procedure`,
    /// `policy`), of one thing (`entity_id` too), older than `before_id` (paging: pass the
    /// last id of the previous page).
    pub async fn admin_changes(
        &self,
        caller: &Caller,
        entity: Option<&str>,
        entity_id: Option<i64>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AdminChangeDoc>, ServiceError> {
        caller.require(
            &[Role::Admin],
            "consultar el registro de cambios del catálogo",
        )?;
        if let Some(e) = entity
            && !["agency", "user", "procedure", "policy"].contains(&e)
        {
            return Err(ServiceError::invalid(
                "entity",
                "debe ser agency, user, procedure o policy",
            ));
        }
        let operator = Caller::operator().name;
        Ok(self
            .store
            .admin_changes(entity, entity_id, before_id, limit.clamp(1, MAX_CHANGES))
            .await?
            .into_iter()
            .map(|c| AdminChangeDoc::of(c, &operator))
            .collect())
    }

    /// The escalation chain of a user: the user, their superior, the superior's superior
    /// and so on to the top, stopping before anyone repeated (a loop in the org chart).
    pub async fn ladder(
        &self,
        caller: &Caller,
        user_id: i64,
    ) -> Result<Vec<UserDoc>, ServiceError> {
        caller.require(&[Role::Admin], "consultar las cadenas de escalación")?;
        let users: HashMap<UserId, User> = self
            .store
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        if !users.contains_key(&UserId(user_id)) {
            return Err(ServiceError::NotFound(format!("el usuario {user_id}")));
        }
        let chain = Ladder::chain(UserId(user_id), |u| {
            users.get(&u).and_then(|x| x.reports_to)
        });
        Ok(chain
            .into_iter()
            .filter_map(|u| users.get(&u).cloned().map(UserDoc::from))
            .collect())
    }

    /// Active users whose escalations would have nowhere to go, with the reason
    /// ([`NO_SUPERIOR_RESPONSIBLE`], [`NO_SUPERIOR_VALIDATOR`]); ordered by user id. A
    /// deactivated superior counts as none.
    pub async fn ladder_warnings(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(UserDoc, String)>, ServiceError> {
        caller.require(&[Role::Admin], "consultar las cadenas de escalación")?;
        let users = self.store.users().await?;
        let active: HashSet<UserId> = users.iter().filter(|u| u.active).map(|u| u.id).collect();
        let superior = |u: &User| u.reports_to.filter(|b| active.contains(b));
        let responsibles: HashSet<UserId> = self
            .store
            .procedures()
            .await?
            .into_iter()
            .filter(|p| p.active)
            .map(|p| p.responsible_id)
            .collect();
        let bosses: HashSet<UserId> = users
            .iter()
            .filter(|u| u.active)
            .filter_map(|u| u.reports_to)
            .collect();
        let mut warnings = Vec::new();
        for u in &users {
            if !u.active || superior(u).is_some() {
                continue;
            }
            let reason = match u.role {
                Role::Agency if responsibles.contains(&u.id) => NO_SUPERIOR_RESPONSIBLE,
                Role::Validator if !bosses.contains(&u.id) => NO_SUPERIOR_VALIDATOR,
                _ => continue,
            };
            warnings.push((UserDoc::from(u.clone()), reason.to_string()));
        }
        Ok(warnings)
    }
}
