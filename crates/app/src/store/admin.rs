//! Catalogue administration: updates (deactivation instead of deletion) and the record of
//! every catalogue change (`admin_changes`, migration 0004), written in the transaction of
//! the change it records.

use incidencias_core::{AgencyId, Email, Homoclave, ProcedureId, Role, UserId};
use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::catalog::{
    AGENCY_COLS, PROCEDURE_COLS, USER_COLS, agency_from, get, procedure_from, ts, user_from,
};
use super::{Agency, Procedure, Store, StoreError, User};

/// Who changes the catalogue, and how the changed thing is written in the record: the
/// service passes its document's JSON (the store knows no documents).
pub struct Audit<T> {
    /// A user id; 0 is the command-line operator.
    pub actor: UserId,
    /// `agency`, `user`, `procedure` or `policy` (the table's CHECK).
    pub entity: &'static str,
    pub doc: fn(&T) -> String,
}

// By hand: a derive would ask `T: Copy`.
impl<T> Clone for Audit<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Audit<T> {}

impl<T> Audit<T> {
    pub(super) async fn created(
        self,
        conn: &mut AnyConnection,
        id: i64,
        after: &T,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let change = (self.entity, id, "created", None, Some((self.doc)(after)));
        insert_change(conn, self.actor, change, now).await
    }

    /// Records an update of `before` into `after`, named by what happened to `active`;
    /// nothing when nothing changed.
    async fn changed(
        self,
        conn: &mut AnyConnection,
        id: i64,
        (before, after): (&T, &T),
        (was_active, is_active): (bool, bool),
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (before, after) = ((self.doc)(before), (self.doc)(after));
        if before == after {
            return Ok(());
        }
        let action = match (was_active, is_active) {
            (true, false) => "deactivated",
            (false, true) => "reactivated",
            _ => "updated",
        };
        let change = (self.entity, id, action, Some(before), Some(after));
        insert_change(conn, self.actor, change, now).await
    }
}

/// (entity, entity id, action, before, after)
type Change = (
    &'static str,
    i64,
    &'static str,
    Option<String>,
    Option<String>,
);

async fn insert_change(
    conn: &mut AnyConnection,
    actor: UserId,
    (entity, id, action, before, after): Change,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO admin_changes (at, actor_id, entity, entity_id, action, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now.as_millisecond())
    .bind(actor.0)
    .bind(entity)
    .bind(id)
    .bind(action)
    .bind(before)
    .bind(after)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

/// One row of `admin_changes`, with the actor's name when the actor is a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    pub id: i64,
    pub at: Timestamp,
    pub actor_id: i64,
    pub actor_name: Option<String>,
    pub entity: String,
    pub entity_id: i64,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A row of `admin_changes` as exported and imported (`transfer.rs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct AdminChangeRow {
    id: i64,
    at: Timestamp,
    actor_id: i64,
    entity: String,
    entity_id: i64,
    action: String,
    before: Option<String>,
    after: Option<String>,
}

pub(super) async fn fetch_admin_changes(
    conn: &mut AnyConnection,
) -> Result<Vec<AdminChangeRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor_id, entity, entity_id, action, before, after \
         FROM admin_changes ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            Ok(AdminChangeRow {
                id: get(r, "id")?,
                at: ts(get(r, "at")?)?,
                actor_id: get(r, "actor_id")?,
                entity: get(r, "entity")?,
                entity_id: get(r, "entity_id")?,
                action: get(r, "action")?,
                before: get(r, "before")?,
                after: get(r, "after")?,
            })
        })
        .collect()
}

pub(super) async fn insert_admin_change_row(
    conn: &mut AnyConnection,
    c: &AdminChangeRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO admin_changes (id, at, actor_id, entity, entity_id, action, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id)
    .bind(c.at.as_millisecond())
    .bind(c.actor_id)
    .bind(c.entity.clone())
    .bind(c.entity_id)
    .bind(c.action.clone())
    .bind(c.before.clone())
    .bind(c.after.clone())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

/// The new values of an agency (the whole row but its id and creation instant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyUpdate {
    pub name: String,
    pub acronym: String,
    pub email_domains: Vec<String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpdate {
    pub name: String,
    pub role: Role,
    pub agency_id: Option<AgencyId>,
    pub reports_to: Option<UserId>,
    pub active: bool,
}

/// The homoclave and the agency of a procedure do not change (a procedure moving to
/// another agency is a new procedure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureUpdate {
    pub name: String,
    pub url: String,
    pub responsible_id: UserId,
    pub active: bool,
}

/// One row of a checked CSV import, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportWrite {
    Procedure {
        homoclave: Homoclave,
        name: String,
        agency_id: AgencyId,
        url: String,
        responsible_id: UserId,
    },
    /// The superior is named by address: it may be a user created by the same file.
    User {
        email: Email,
        name: String,
        role: Role,
        agency_id: Option<AgencyId>,
        superior: Option<Email>,
    },
}

async fn one<T>(
    conn: &mut AnyConnection,
    sql: String,
    id: i64,
    from: fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    what: &str,
) -> Result<T, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    match row {
        Some(r) => from(&r),
        None => Err(StoreError::NotFound(format!("{what} {id}"))),
    }
}

async fn user_by_email(
    conn: &mut AnyConnection,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email.as_str().to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    row.as_ref().map(user_from).transpose()
}

impl Store {
    pub async fn update_agency(
        &self,
        id: AgencyId,
        new: AgencyUpdate,
        audit: Audit<Agency>,
        now: Timestamp,
    ) -> Result<Agency, StoreError> {
        let domains = serde_json::to_string(&new.email_domains).map_err(StoreError::json)?;
        self.write(move |conn| {
            Box::pin(async move {
                let select = format!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1");
                let before = one(conn, select, id.0, agency_from, "la dependencia").await?;
                let sql = format!(
                    "UPDATE agencies SET name = $1, acronym = $2, email_domains = $3, \
                     active = $4 WHERE id = $5 RETURNING {AGENCY_COLS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.name)
                    .bind(new.acronym)
                    .bind(domains)
                    .bind(i64::from(new.active))
                    .bind(id.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let after = agency_from(&row)?;
                let active = (before.active, after.active);
                audit
                    .changed(conn, id.0, (&before, &after), active, now)
                    .await?;
                Ok(after)
            })
        })
        .await
    }

    pub async fn update_user(
        &self,
        id: UserId,
        new: UserUpdate,
        audit: Audit<User>,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let select = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                let before = one(conn, select, id.0, user_from, "el usuario").await?;
                let sql = format!(
                    "UPDATE users SET name = $1, role = $2, agency_id = $3, reports_to = $4, \
                     active = $5 WHERE id = $6 RETURNING {USER_COLS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.name)
                    .bind(new.role.as_str())
                    .bind(new.agency_id.map(|a| a.0))
                    .bind(new.reports_to.map(|u| u.0))
                    .bind(i64::from(new.active))
                    .bind(id.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let after = user_from(&row)?;
                let active = (before.active, after.active);
                audit
                    .changed(conn, id.0, (&before, &after), active, now)
                    .await?;
                Ok(after)
            })
        })
        .await
    }

    pub async fn update_procedure(
        &self,
        id: ProcedureId,
        new: ProcedureUpdate,
        audit: Audit<Procedure>,
        now: Timestamp,
    ) -> Result<Procedure, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let select = format!("SELECT {PROCEDURE_COLS} FROM procedures WHERE id = $1");
                let before = one(conn, select, id.0, procedure_from, "el trámite").await?;
                let sql = format!(
                    "UPDATE procedures SET name = $1, url = $2, responsible_id = $3, active = $4 \
                     WHERE id = $5 RETURNING {PROCEDURE_COLS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.name)
                    .bind(new.url)
                    .bind(new.responsible_id.0)
                    .bind(i64::from(new.active))
                    .bind(id.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                let after = procedure_from(&row)?;
                let active = (before.active, after.active);
                audit
                    .changed(conn, id.0, (&before, &after), active, now)
                    .await?;
                Ok(after)
            })
        })
        .await
    }

    /// Writes every row of a checked import in one transaction, recording each as
    /// `imported`. Users first without superiors, then the superiors by address, so that a
    /// row may name a superior created by a later row. Returns how many rows changed.
    pub async fn apply_import(
        &self,
        rows: Vec<ImportWrite>,
        users: Audit<User>,
        procedures: Audit<Procedure>,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                // (entity id, document before, whether a user) of each row, in order.
                let mut touched: Vec<(i64, Option<String>, bool)> = Vec::new();
                for row in &rows {
                    match row {
                        ImportWrite::Procedure {
                            homoclave,
                            name,
                            agency_id,
                            url,
                            responsible_id,
                        } => {
                            let select = format!(
                                "SELECT {PROCEDURE_COLS} FROM procedures WHERE homoclave = $1"
                            );
                            let before = sqlx::query(sqlx::AssertSqlSafe(select))
                                .bind(homoclave.as_str().to_string())
                                .fetch_optional(&mut *conn)
                                .await
                                .map_err(StoreError::db)?
                                .as_ref()
                                .map(procedure_from)
                                .transpose()?;
                            let sql = if before.is_some() {
                                "UPDATE procedures SET name = $2, agency_id = $3, url = $4, \
                                 responsible_id = $5 WHERE homoclave = $1 RETURNING id"
                            } else {
                                "INSERT INTO procedures (homoclave, name, agency_id, url, \
                                 responsible_id, active, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, 1, $6) RETURNING id"
                            };
                            let mut q = sqlx::query(sql)
                                .bind(homoclave.as_str().to_string())
                                .bind(name.clone())
                                .bind(agency_id.0)
                                .bind(url.clone())
                                .bind(responsible_id.0);
                            if before.is_none() {
                                q = q.bind(now.as_millisecond());
                            }
                            let id: i64 = q
                                .fetch_one(&mut *conn)
                                .await
                                .and_then(|r| r.try_get(0))
                                .map_err(StoreError::db)?;
                            touched.push((id, before.as_ref().map(procedures.doc), false));
                        }
                        ImportWrite::User {
                            email,
                            name,
                            role,
                            agency_id,
                            ..
                        } => {
                            let before = user_by_email(conn, email).await?;
                            let sql = if before.is_some() {
                                "UPDATE users SET name = $2, role = $3, agency_id = $4 \
                                 WHERE email = $1 RETURNING id"
                            } else {
                                "INSERT INTO users (email, name, role, agency_id, active, \
                                 created_at) VALUES ($1, $2, $3, $4, 1, $5) RETURNING id"
                            };
                            let mut q = sqlx::query(sql)
                                .bind(email.as_str().to_string())
                                .bind(name.clone())
                                .bind(role.as_str())
                                .bind(agency_id.map(|a| a.0));
                            if before.is_none() {
                                q = q.bind(now.as_millisecond());
                            }
                            let id: i64 = q
                                .fetch_one(&mut *conn)
                                .await
                                .and_then(|r| r.try_get(0))
                                .map_err(StoreError::db)?;
                            touched.push((id, before.as_ref().map(users.doc), true));
                        }
                    }
                }
                for row in &rows {
                    if let ImportWrite::User {
                        email, superior, ..
                    } = row
                    {
                        let boss = match superior {
                            Some(s) => Some(
                                user_by_email(conn, s)
                                    .await?
                                    .ok_or_else(|| {
                                        StoreError::Invalid(format!("no existe el superior {s}"))
                                    })?
                                    .id
                                    .0,
                            ),
                            None => None,
                        };
                        sqlx::query("UPDATE users SET reports_to = $1 WHERE email = $2")
                            .bind(boss)
                            .bind(email.as_str().to_string())
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                    }
                }
                let count = touched.len();
                for (id, before, is_user) in touched {
                    let (entity, after) = if is_user {
                        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                        let u = one(conn, sql, id, user_from, "el usuario").await?;
                        (users.entity, (users.doc)(&u))
                    } else {
                        let sql = format!("SELECT {PROCEDURE_COLS} FROM procedures WHERE id = $1");
                        let p = one(conn, sql, id, procedure_from, "el trámite").await?;
                        (procedures.entity, (procedures.doc)(&p))
                    };
                    let actor = if is_user {
                        users.actor
                    } else {
                        procedures.actor
                    };
                    let change = (entity, id, "imported", before, Some(after));
                    insert_change(conn, actor, change, now).await?;
                }
                Ok(count)
            })
        })
        .await
    }

    /// Recorded catalogue changes, newest first: of one kind of entity, of one entity, and
    /// older than `before_id` (the previous page's last id).
    pub async fn admin_changes(
        &self,
        entity: Option<&str>,
        entity_id: Option<i64>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AdminChange>, StoreError> {
        // The filters are written into the text only when present: PostgreSQL cannot
        // type a `$1 IS NULL` test of an untyped parameter through the Any driver.
        let mut sql = String::from(
            "SELECT c.id, c.at, c.actor_id, u.name AS actor_name, c.entity, c.entity_id, \
             c.action, c.before, c.after FROM admin_changes c \
             LEFT JOIN users u ON u.id = c.actor_id WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if entity.is_some() {
            sql.push_str(&format!(" AND c.entity = ${}", next()));
        }
        if entity_id.is_some() {
            sql.push_str(&format!(" AND c.entity_id = ${}", next()));
        }
        if before_id.is_some() {
            sql.push_str(&format!(" AND c.id < ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY c.id DESC LIMIT ${}", next()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(e) = entity {
            q = q.bind(e.to_string());
        }
        if let Some(id) = entity_id {
            q = q.bind(id);
        }
        if let Some(b) = before_id {
            q = q.bind(b);
        }
        let rows = q
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok(AdminChange {
                    id: get(r, "id")?,
                    at: ts(get(r, "at")?)?,
                    actor_id: get(r, "actor_id")?,
                    actor_name: get(r, "actor_name")?,
                    entity: get(r, "entity")?,
                    entity_id: get(r, "entity_id")?,
                    action: get(r, "action")?,
                    before: get(r, "before")?,
                    after: get(r, "after")?,
                })
            })
            .collect()
    }
}
