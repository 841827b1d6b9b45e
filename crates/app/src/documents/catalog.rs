//! The catalogue as the service answers it: agencies, users, procedures.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use jiff::Timestamp;

use crate::store::{AdminChange, Agency, Procedure, User};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgencyDoc {
    pub id: i64,
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
    /// False once deactivated (agencies are never deleted).
    pub active: bool,
}

impl From<Agency> for AgencyDoc {
    fn from(a: Agency) -> AgencyDoc {
        AgencyDoc {
            id: a.id.0,
            name: a.name,
            acronym: a.acronym,
            email_domains: a.email_domains,
            active: a.active,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDoc {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: String,
    pub agency_id: Option<i64>,
    pub reports_to: Option<i64>,
    pub active: bool,
}

impl From<User> for UserDoc {
    fn from(u: User) -> UserDoc {
        UserDoc {
            id: u.id.0,
            name: u.name,
            email: u.email.to_string(),
            role: u.role.as_str().to_string(),
            agency_id: u.agency_id.map(|a| a.0),
            reports_to: u.reports_to.map(|r| r.0),
            active: u.active,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProcedureDoc {
    pub id: i64,
    pub homoclave: String,
    pub name: String,
    pub agency_id: i64,
    pub url: String,
    pub responsible_id: i64,
    /// False once deactivated: it takes no new reports (procedures are never deleted).
    pub active: bool,
}

impl From<Procedure> for ProcedureDoc {
    fn from(p: Procedure) -> ProcedureDoc {
        ProcedureDoc {
            id: p.id.0,
            homoclave: p.homoclave.to_string(),
            name: p.name,
            agency_id: p.agency_id.0,
            url: p.url,
            responsible_id: p.responsible_id.0,
            active: p.active,
        }
    }
}

/// One recorded catalogue change (`admin_changes`): who, when, what, and the document
/// before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminChangeDoc {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// 0 is the command-line operator.
    pub actor_id: i64,
    /// The actor's name, or the operator's description for id 0.
    pub actor_name: String,
    /// `agency`, `user`, `procedure` or `policy`.
    pub entity: String,
    /// The agency, user or procedure id; a policy's version.
    pub entity_id: i64,
    /// `created`, `updated`, `deactivated`, `reactivated` or `imported`.
    pub action: String,
    /// The document (`AgencyDoc`, `UserDoc`, `ProcedureDoc` or the policy) before the
    /// change; null for a creation.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl AdminChangeDoc {
    /// `operator` names actor 0 (who is no row of `users`).
    pub fn of(c: AdminChange, operator: &str) -> AdminChangeDoc {
        let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
        AdminChangeDoc {
            id: c.id,
            at: c.at,
            actor_id: c.actor_id,
            actor_name: match c.actor_name {
                Some(n) => n,
                None if c.actor_id == 0 => operator.to_string(),
                None => format!("usuario {}", c.actor_id),
            },
            entity: c.entity,
            entity_id: c.entity_id,
            action: c.action,
            before: parse(c.before),
            after: parse(c.after),
        }
    }
}
