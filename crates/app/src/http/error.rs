//! The one mapping from errors to HTTP for the JSON API: RFC 9457
//! `application/problem+json` with a stable machine `code`. The API's status codes are
//! chosen here and nowhere else; the one-click pages (`actions.rs`) answer HTML, not
//! problem documents, and map a link's refusals to their pages in one function there.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incidencias_core::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::ServiceError;

/// A problem document (RFC 9457) as this API writes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short Spanish summary of the kind.
    pub title: String,
    pub status: u16,
    /// Spanish explanation of this occurrence.
    pub detail: String,
    /// Stable machine code: `malformed`, `unauthenticated`, `forbidden`, `not_found`,
    /// `invalid_transition`, `conflict`, `invalid_fields`, `payload_too_large`,
    /// `method_not_allowed`,
    /// `unsupported_media_type`, `too_many_attempts`, `idempotency_key_reused`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// For `invalid_transition`: the incident's current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// For a refused close: the closing-rule conditions still unmet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<String>,
    /// For `invalid_fields`: each offending field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    Service(ServiceError),
    /// Body or parameters that are not what the endpoint reads (syntax).
    Malformed(String),
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        ApiError::Service(e)
    }
}

impl ApiError {
    pub fn fields(errors: Vec<FieldError>) -> ApiError {
        ApiError::Service(ServiceError::Invalid(errors))
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Service(ServiceError::invalid(field, message))
    }
}

fn problem(status: StatusCode, code: &str, title: &str, detail: String) -> Problem {
    Problem {
        kind: format!("https://incidencias.gob.mx/problemas/{code}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        code: code.to_string(),
        state: None,
        unmet: Vec::new(),
        errors: Vec::new(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let p = match self {
            ApiError::Malformed(detail) => problem(
                StatusCode::BAD_REQUEST,
                "malformed",
                "Solicitud mal formada",
                detail,
            ),
            ApiError::PayloadTooLarge => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Contenido demasiado grande",
                "el cuerpo de la solicitud excede el tamaño permitido (1 MiB; 10 MB para un \
                 correo recibido)"
                    .into(),
            ),
            ApiError::MethodNotAllowed => problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Método no permitido",
                "esta dirección no admite ese método".into(),
            ),
            ApiError::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Tipo de contenido no admitido",
                "envíe el cuerpo como JSON (Content-Type: application/json)".into(),
            ),
            ApiError::Service(e) => {
                let detail = e.to_string();
                match e {
                    ServiceError::Unauthenticated => problem(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "Sin credenciales válidas",
                        detail,
                    ),
                    ServiceError::Forbidden(_) => problem(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "Acción no permitida",
                        detail,
                    ),
                    ServiceError::NotFound(_) => {
                        problem(StatusCode::NOT_FOUND, "not_found", "No encontrado", detail)
                    }
                    ServiceError::InvalidTransition {
                        state,
                        message,
                        unmet,
                    } => {
                        let mut p = problem(
                            StatusCode::CONFLICT,
                            "invalid_transition",
                            "Acción no permitida en el estado actual",
                            message,
                        );
                        p.state = state;
                        p.unmet = unmet;
                        p
                    }
                    ServiceError::Conflict(_) => {
                        problem(StatusCode::CONFLICT, "conflict", "Conflicto", detail)
                    }
                    ServiceError::Invalid(fields) => {
                        let mut p = problem(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_fields",
                            "Datos no válidos",
                            fields
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; "),
                        );
                        p.errors = fields
                            .into_iter()
                            .map(|f| ProblemField {
                                field: f.field,
                                message: f.message,
                            })
                            .collect();
                        p
                    }
                    ServiceError::TooManyAttempts { retry_after_s } => {
                        retry_after = Some(retry_after_s);
                        problem(
                            StatusCode::TOO_MANY_REQUESTS,
                            "too_many_attempts",
                            "Demasiados intentos",
                            detail,
                        )
                    }
                    ServiceError::IdempotencyKeyReused => problem(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "Idempotency-Key reutilizada",
                        detail,
                    ),
                    ServiceError::Unavailable => problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Servicio no disponible",
                        detail,
                    ),
                    ServiceError::Internal(internal) => {
                        // The detail is for the logs; the caller learns nothing of internals.
                        tracing::error!(error = %internal, "error interno");
                        problem(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "Error interno",
                            "ocurrió un error interno; intente de nuevo más tarde".into(),
                        )
                    }
                }
            }
        };
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&p).unwrap_or_else(|_| "{}".into());
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
