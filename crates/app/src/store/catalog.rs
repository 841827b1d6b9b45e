//! The catalogue: agencies, users (with `reports_to`, the escalation ladder), procedures
//! with their responsible, and SLO policy versions.

use incidencias_core::escalation::Ladder;
use incidencias_core::{AgencyId, Email, Homoclave, ProcedureId, Role, SloPolicy, UserId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::admin::Audit;
use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgency {
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
    /// Deactivated instead of deleted (migration 0004); exports before it had none.
    #[serde(default = "yes")]
    pub active: bool,
    pub created_at: Timestamp,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub agency_id: Option<AgencyId>,
    pub reports_to: Option<UserId>,
    /// An Argon2id PHC string, already hashed by the caller.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub agency_id: Option<AgencyId>,
    pub reports_to: Option<UserId>,
    pub active: bool,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProcedure {
    pub homoclave: Homoclave,
    pub name: String,
    pub agency_id: AgencyId,
    pub url: String,
    pub responsible_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    pub id: ProcedureId,
    pub homoclave: Homoclave,
    pub name: String,
    pub agency_id: AgencyId,
    pub url: String,
    pub responsible_id: UserId,
    /// A deactivated procedure gets no new reports (migration 0004).
    #[serde(default = "yes")]
    pub active: bool,
    pub created_at: Timestamp,
}

pub(super) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("instante fuera de rango ({ms}): {e}")))
}

pub(super) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("columna {col}: {e}")))
}

pub(super) fn agency_from(row: &AnyRow) -> Result<Agency, StoreError> {
    let domains: String = get(row, "email_domains")?;
    Ok(Agency {
        id: AgencyId(get(row, "id")?),
        name: get(row, "name")?,
        acronym: get(row, "acronym")?,
        email_domains: serde_json::from_str(&domains).map_err(StoreError::json)?,
        active: get::<i64>(row, "active")? != 0,
        created_at: ts(get(row, "created_at")?)?,
    })
}

pub(super) fn user_from(row: &AnyRow) -> Result<User, StoreError> {
    let email: String = get(row, "email")?;
    let role: String = get(row, "role")?;
    Ok(User {
        id: UserId(get(row, "id")?),
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: get(row, "name")?,
        role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        agency_id: get::<Option<i64>>(row, "agency_id")?.map(AgencyId),
        reports_to: get::<Option<i64>>(row, "reports_to")?.map(UserId),
        active: get::<i64>(row, "active")? != 0,
        password_hash: get(row, "password_hash")?,
        created_at: ts(get(row, "created_at")?)?,
    })
}

pub(super) fn procedure_from(row: &AnyRow) -> Result<Procedure, StoreError> {
    let homoclave: String = get(row, "homoclave")?;
    Ok(Procedure {
        id: ProcedureId(get(row, "id")?),
        homoclave: Homoclave::parse(&homoclave).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: get(row, "name")?,
        agency_id: AgencyId(get(row, "agency_id")?),
        url: get(row, "url")?,
        responsible_id: UserId(get(row, "responsible_id")?),
        active: get::<i64>(row, "active")? != 0,
        created_at: ts(get(row, "created_at")?)?,
    })
}

pub(super) const AGENCY_COLS: &str = "id, name, acronym, email_domains, active, created_at";
pub(super) const USER_COLS: &str =
    "id, email, name, role, agency_id, reports_to, active, password_hash, created_at";
pub(super) const PROCEDURE_COLS: &str =
    "id, homoclave, name, agency_id, url, responsible_id, active, created_at";

impl Store {
    pub async fn create_agency(
        &self,
        new: NewAgency,
        audit: Audit<Agency>,
        now: Timestamp,
    ) -> Result<Agency, StoreError> {
        let domains = serde_json::to_string(&new.email_domains).map_err(StoreError::json)?;
        let sql = format!(
            "INSERT INTO agencies (name, acronym, email_domains, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {AGENCY_COLS}"
        );
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.name)
                    .bind(new.acronym)
                    .bind(domains)
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let agency = agency_from(&row)?;
                audit.created(conn, agency.id.0, &agency, now).await?;
                Ok(agency)
            })
        })
        .await
    }

    pub async fn create_user(
        &self,
        new: NewUser,
        audit: Audit<User>,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (email, name, role, agency_id, reports_to, password_hash, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7) RETURNING {USER_COLS}"
        );
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.email.as_str().to_string())
                    .bind(new.name)
                    .bind(new.role.as_str())
                    .bind(new.agency_id.map(|a| a.0))
                    .bind(new.reports_to.map(|u| u.0))
                    .bind(new.password_hash)
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let user = user_from(&row)?;
                audit.created(conn, user.id.0, &user, now).await?;
                Ok(user)
            })
        })
        .await
    }

    pub async fn create_procedure(
        &self,
        new: NewProcedure,
        audit: Audit<Procedure>,
        now: Timestamp,
    ) -> Result<Procedure, StoreError> {
        let sql = format!(
            "INSERT INTO procedures (homoclave, name, agency_id, url, responsible_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {PROCEDURE_COLS}"
        );
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.homoclave.as_str().to_string())
                    .bind(new.name)
                    .bind(new.agency_id.0)
                    .bind(new.url)
                    .bind(new.responsible_id.0)
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let procedure = procedure_from(&row)?;
                audit.created(conn, procedure.id.0, &procedure, now).await?;
                Ok(procedure)
            })
        })
        .await
    }

    pub async fn agencies(&self) -> Result<Vec<Agency>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_agencies(&mut conn).await
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_users(&mut conn).await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.as_str().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn procedures(&self) -> Result<Vec<Procedure>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_procedures(&mut conn).await
    }

    pub async fn procedure(&self, id: ProcedureId) -> Result<Option<Procedure>, StoreError> {
        let sql = format!("SELECT {PROCEDURE_COLS} FROM procedures WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(procedure_from).transpose()
    }

    pub async fn procedure_by_homoclave(
        &self,
        homoclave: &Homoclave,
    ) -> Result<Option<Procedure>, StoreError> {
        let sql = format!("SELECT {PROCEDURE_COLS} FROM procedures WHERE homoclave = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(homoclave.as_str().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(procedure_from).transpose()
    }

    pub async fn agency(&self, id: AgencyId) -> Result<Option<Agency>, StoreError> {
        let sql = format!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db)?;
        row.as_ref().map(agency_from).transpose()
    }

    /// The escalation ladder of `responsible` (agency side) and of `central` (CEDN side),
    /// each following `reports_to` up to the top.
    pub async fn ladder(
        &self,
        responsible: UserId,
        central: Option<UserId>,
    ) -> Result<Ladder, StoreError> {
        let rows = sqlx::query("SELECT id, reports_to FROM users")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        let mut up = std::collections::HashMap::new();
        for row in &rows {
            let id: i64 = get(row, "id")?;
            let to: Option<i64> = get(row, "reports_to")?;
            up.insert(UserId(id), to.map(UserId));
        }
        let reports_to = |u: UserId| up.get(&u).copied().flatten();
        Ok(Ladder {
            agency: Ladder::chain(responsible, reports_to),
            central: central
                .map(|c| Ladder::chain(c, reports_to))
                .unwrap_or_default(),
        })
    }

    /// Adds a policy version (number assigned here: the highest plus one). Two admins
    /// publishing at once on PostgreSQL may pick the same number; the loser retries.
    pub async fn add_policy(
        &self,
        policy: SloPolicy,
        audit: Audit<SloPolicy>,
        now: Timestamp,
    ) -> Result<SloPolicy, StoreError> {
        // The command-line operator (id 0) is no row of `users`.
        let created_by = Some(audit.actor).filter(|a| a.0 != 0);
        let mut last = StoreError::Conflict;
        for _ in 0..5 {
            let mut policy = policy.clone();
            let result = self
                .write(move |conn| {
                    Box::pin(async move {
                        let next: i64 =
                            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM slo_policies")
                                .fetch_one(&mut *conn)
                                .await
                                .and_then(|r| r.try_get(0))
                                .map_err(StoreError::db)?;
                        policy.version = u32::try_from(next).map_err(|_| {
                            StoreError::Invalid("demasiadas versiones de política".into())
                        })?;
                        insert_policy(conn, &policy, created_by, now).await?;
                        audit
                            .created(conn, i64::from(policy.version), &policy, now)
                            .await?;
                        Ok(policy)
                    })
                })
                .await;
            match result {
                Err(StoreError::Duplicate(d)) => last = StoreError::Duplicate(d),
                other => return other,
            }
        }
        Err(last)
    }

    /// Every policy version, newest first.
    pub async fn policies(&self) -> Result<Vec<SloPolicy>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db)?;
        fetch_policies(&mut conn).await
    }

    /// Records the seed's table as version 1 if no policy exists yet.
    pub(super) async fn ensure_seed_policy(&self, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let count: i64 = sqlx::query("SELECT COUNT(*) FROM slo_policies")
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(StoreError::db)?;
                if count == 0 {
                    // Another instance starting at the same moment may insert it first.
                    let body =
                        serde_json::to_string(&SloPolicy::seed()).map_err(StoreError::json)?;
                    sqlx::query(
                        "INSERT INTO slo_policies (version, effective_from, body, created_at) \
                         VALUES (1, $1, $2, $3) ON CONFLICT (version) DO NOTHING",
                    )
                    .bind(SloPolicy::seed().effective_from.as_millisecond())
                    .bind(body)
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                }
                Ok(())
            })
        })
        .await
    }
}

pub(super) async fn insert_policy(
    conn: &mut AnyConnection,
    policy: &SloPolicy,
    created_by: Option<UserId>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(policy).map_err(StoreError::json)?;
    sqlx::query(
        "INSERT INTO slo_policies (version, effective_from, body, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(i64::from(policy.version))
    .bind(policy.effective_from.as_millisecond())
    .bind(body)
    .bind(now.as_millisecond())
    .bind(created_by.map(|u| u.0))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

pub(super) async fn fetch_agencies(conn: &mut AnyConnection) -> Result<Vec<Agency>, StoreError> {
    let sql = format!("SELECT {AGENCY_COLS} FROM agencies ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    rows.iter().map(agency_from).collect()
}

pub(super) async fn fetch_users(conn: &mut AnyConnection) -> Result<Vec<User>, StoreError> {
    let sql = format!("SELECT {USER_COLS} FROM users ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    rows.iter().map(user_from).collect()
}

pub(super) async fn fetch_procedures(
    conn: &mut AnyConnection,
) -> Result<Vec<Procedure>, StoreError> {
    let sql = format!("SELECT {PROCEDURE_COLS} FROM procedures ORDER BY homoclave");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    rows.iter().map(procedure_from).collect()
}

/// Every policy version, newest first.
pub(super) async fn fetch_policies(conn: &mut AnyConnection) -> Result<Vec<SloPolicy>, StoreError> {
    let rows = sqlx::query("SELECT body FROM slo_policies ORDER BY version DESC")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            let body: String = get(r, "body")?;
            serde_json::from_str(&body).map_err(StoreError::json)
        })
        .collect()
}
