//! `user create`, `token create`, `token revoke`: accounts, through the service.

use incidencias_core::Email;

use super::{CliError, NewUserArgs, service};
use crate::config::GlobalArgs;
use crate::documents::UserDoc;
use crate::service::{Caller, NewUserInput, Service, ServiceError};
use crate::store::Store;
use crate::store::open::OpenMode;

/// The flag of each field the service may complain about, for `user create`.
const USER_FLAGS: &[(&str, &str)] = &[
    ("email", "--email"),
    ("name", "--name"),
    ("role", "--role"),
    ("agency", "--agency"),
    ("agency_id", "--agency"),
    ("reports_to", "--reports-to"),
    ("password", "--password"),
];

/// The flag of the only field the token commands take.
const TOKEN_FLAGS: &[(&str, &str)] = &[("email", "--email")];

pub async fn create_user(global: &GlobalArgs, args: NewUserArgs) -> Result<i32, CliError> {
    let store = Store::open_with(global.database_url(), OpenMode::ExistingWritable).await?;
    let result = create(&service(&store, global), args).await;
    store.close().await;
    let user = result.map_err(|e| CliError::with_flags(e, USER_FLAGS))?;
    println!(
        "Usuario {} creado (id {}, rol {}).",
        user.email, user.id, user.role
    );
    Ok(0)
}

pub async fn create_token(global: &GlobalArgs, email: &str) -> Result<i32, CliError> {
    let store = Store::open_with(global.database_url(), OpenMode::ExistingWritable).await?;
    let result = service(&store, global).create_token(email).await;
    store.close().await;
    let token = result.map_err(|e| CliError::with_flags(e, TOKEN_FLAGS))?;
    // Only the token on stdout, so scripts can capture it.
    println!("{token}");
    Ok(0)
}

pub async fn revoke_tokens(global: &GlobalArgs, email: &str) -> Result<i32, CliError> {
    let store = Store::open_with(global.database_url(), OpenMode::ExistingWritable).await?;
    let result = service(&store, global).revoke_tokens(email).await;
    store.close().await;
    let n = result.map_err(|e| CliError::with_flags(e, TOKEN_FLAGS))?;
    println!("{n} tokens revocados.");
    Ok(0)
}

/// The flags as the service's input: the agency by acronym or id, the superior by email
/// or id (what an operator has at hand), the rest as typed.
async fn create(service: &Service, args: NewUserArgs) -> Result<UserDoc, ServiceError> {
    let agency_id = match args.agency {
        None => None,
        Some(a) => Some(agency_id(service, a.trim()).await?),
    };
    let reports_to = match args.reports_to {
        None => None,
        Some(r) => Some(user_id(service, r.trim()).await?),
    };
    service
        .create_user_unchecked(NewUserInput {
            name: args.name,
            email: args.email,
            role: args.role,
            agency_id,
            reports_to,
            password: args.password,
        })
        .await
}

async fn agency_id(service: &Service, text: &str) -> Result<i64, ServiceError> {
    if let Ok(id) = text.parse::<i64>() {
        return Ok(id);
    }
    let acronym = text.to_uppercase();
    service
        .agencies(&Caller::operator())
        .await?
        .into_iter()
        .find(|a| a.acronym == acronym)
        .map(|a| a.id)
        .ok_or_else(|| {
            ServiceError::invalid("agency", format!("no existe la dependencia {acronym}"))
        })
}

async fn user_id(service: &Service, text: &str) -> Result<i64, ServiceError> {
    if let Ok(id) = text.parse::<i64>() {
        return Ok(id);
    }
    let email =
        Email::parse(text).map_err(|e| ServiceError::invalid("reports_to", e.to_string()))?;
    service
        .users(&Caller::operator())
        .await?
        .into_iter()
        .find(|u| u.email == email.as_str())
        .map(|u| u.id)
        .ok_or_else(|| ServiceError::invalid("reports_to", format!("no existe el usuario {email}")))
}
