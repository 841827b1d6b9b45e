//! The catalogue as the service answers it: agencies, users, procedures.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{Agency, Procedure, User};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgencyDoc {
    pub id: i64,
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
}

impl From<Agency> for AgencyDoc {
    fn from(a: Agency) -> AgencyDoc {
        AgencyDoc {
            id: a.id.0,
            name: a.name,
            acronym: a.acronym,
            email_domains: a.email_domains,
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
        }
    }
}
