//! The command line's one error type: every failure of a subcommand becomes one Spanish
//! line on stderr and exit code 1. Input problems name the FLAG the operator typed, not
//! the API field the service speaks of.

use incidencias_core::FieldError;

use crate::config::ConfigError;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The database refused or failed; its messages are already Spanish and name the file.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", service_message(.0))]
    Service(#[from] ServiceError),
    #[error("error de entrada/salida: {}", io_reason(.0))]
    Io(#[from] std::io::Error),
    /// A setting that cannot be used; the start stops before anything is served.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command will not do what was asked; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    /// A service error of a command whose input came from flags: each invalid field is
    /// named by its flag in `flags` (field, flag), so the operator knows what to retype.
    pub fn with_flags(e: ServiceError, flags: &[(&str, &str)]) -> CliError {
        match e {
            ServiceError::Invalid(fields) => CliError::Service(ServiceError::Invalid(
                fields
                    .into_iter()
                    .map(|f| {
                        let flag = flags
                            .iter()
                            .find(|(field, _)| *field == f.field)
                            .map_or(f.field, |(_, flag)| (*flag).to_string());
                        FieldError::new(flag, f.message)
                    })
                    .collect(),
            )),
            other => CliError::Service(other),
        }
    }
}

/// A service error as one Spanish line: each invalid field with its reason; an internal
/// error with its detail (the operator at the terminal is the one who needs it, unlike an
/// API client).
fn service_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Invalid(fields) => format!(
            "datos no válidos: {}",
            fields
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ServiceError::Internal(detail) => format!("error interno: {detail}"),
        other => other.to_string(),
    }
}

/// The reason of an IO error in Spanish for the usual cases (the system's own text, in
/// English, otherwise).
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no existe".into(),
        ErrorKind::PermissionDenied => "permiso denegado".into(),
        ErrorKind::AlreadyExists => "ya existe".into(),
        ErrorKind::IsADirectory => "es una carpeta, no un archivo".into(),
        ErrorKind::InvalidData => "no es texto UTF-8".into(),
        ErrorKind::StorageFull => "no queda espacio en el disco".into(),
        _ => e.to_string(),
    }
}
