//! The store's one error type. Messages are Spanish: operators read them on the command
//! line. Database internals are kept for the logs in `Database`, never shown to API users
//! (the HTTP layer maps that variant to a generic 500).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no se pudo abrir la base de datos {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("{path} no es una base de datos de incidencias utilizable: {detail}")]
    NotADatabase { path: String, detail: String },
    #[error(
        "la base de datos {path} tiene el esquema versión {found}, más reciente que el que \
         conoce este programa (versión {known}); actualice incidencias antes de usarla. \
         No se modificó nada."
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    /// Another command changed the incident first (optimistic concurrency); retry.
    #[error("la incidencia cambió mientras se procesaba la acción; vuelva a intentarlo")]
    Conflict,
    /// A unique constraint: the named thing already exists.
    #[error("ya existe un registro con ese valor ({0})")]
    Duplicate(String),
    #[error("no se encontró {0}")]
    NotFound(String),
    /// Bad input to a store operation (import file, backup path...).
    #[error("{0}")]
    Invalid(String),
    /// Stored data that cannot be read back (a damaged row, a foreign file).
    #[error("datos almacenados ilegibles: {0}")]
    Corrupt(String),
    #[error("error de entrada/salida: {0}")]
    Io(#[from] std::io::Error),
    #[error("el proceso de escritura de la base de datos se detuvo")]
    WriterStopped,
    #[error("error de la base de datos: {0}")]
    Database(String),
}

impl StoreError {
    /// Classifies a sqlx error: unique violations become `Duplicate` (naming the constraint
    /// or the message), everything else `Database`.
    pub fn db(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(d) = &e
            && d.is_unique_violation()
        {
            return StoreError::Duplicate(
                d.constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.message().to_string()),
            );
        }
        StoreError::Database(e.to_string())
    }

    pub fn json(e: serde_json::Error) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}
