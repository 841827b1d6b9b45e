//! Request extractors: who is calling ([`Auth`]) and the JSON body with its
//! `Idempotency-Key` ([`Body`]). Their rejections are problem documents.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use incidencias_core::FieldError;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::encoding::sha256_hex;
use crate::service::{Caller, IdemRequest, ServiceError};

/// Name of the session cookie the login endpoint sets.
pub const SESSION_COOKIE: &str = "incidencias_sesion";

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The signed-in caller: a bearer token (programs) or the session cookie (browsers).
pub struct Auth(pub Caller);

/// The value of a cookie, if the request carries it.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A cookie-authenticated request that changes something must come from our own pages:
/// browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); a foreign page
/// riding on the user's cookie is refused.
pub(crate) fn same_origin(parts: &Parts) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return matches!(site, "same-origin" | "none");
    }
    match (
        parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    ) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        (Some(_), None) => false,
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(ServiceError::Unauthenticated)?;
            return Ok(Auth(state.service.authenticate_token(token).await?));
        }
        if let Some(session) = cookie(parts, SESSION_COOKIE) {
            if !same_origin(parts) {
                return Err(ServiceError::Forbidden(
                    "la solicitud no proviene de las páginas de incidencias".into(),
                )
                .into());
            }
            return Ok(Auth(state.service.authenticate_session(session).await?));
        }
        Err(ServiceError::Unauthenticated.into())
    }
}

/// The `Idempotency-Key` header, for the OpenAPI document of every write that hands
/// [`Body::idem`] to the service (and so honours it). Never extracted: [`Body`] reads it.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// De 1 a 200 caracteres visibles. Un reintento con la misma clave y el mismo cuerpo
    /// devuelve la primera respuesta y no cambia nada; la misma clave con otra solicitud se
    /// rechaza (422 `idempotency_key_reused`).
    #[serde(rename = "Idempotency-Key")]
    #[allow(dead_code)]
    pub key: Option<String>,
}

/// A JSON body (an empty body reads as `{}`), with the request's idempotency key and
/// fingerprint when it sent `Idempotency-Key`: read, but not handed over yet. The contract
/// checks the caller's role before the request's content (a caller whose role may not act
/// gets 403 whatever the body), so the extractor never refuses: it keeps what it found,
/// and the handler gets the body only by naming its action ([`Body::for_action`]), which
/// asks the service first. An endpoint no role guards (sign-in) takes [`Body::anyone`].
pub struct Body<T>(Result<Parsed<T>, ApiError>);

/// A body that was read well, and its idempotency key.
pub struct Parsed<T> {
    pub value: T,
    pub idem: Option<IdemRequest>,
}

impl<T> Body<T> {
    /// The body of `action` (a [`incidencias_core::Command::name`] or a catalogue write,
    /// see [`crate::service::Service::may_act`]): 403 if the caller's role may not perform
    /// it, whatever the body; then the body, or why it was refused (400, 413, 415, 422).
    pub fn for_action(
        self,
        state: &AppState,
        caller: &Caller,
        action: &str,
    ) -> Result<Parsed<T>, ApiError> {
        state.service.may_act(caller, action)?;
        self.0
    }

    /// The body of an endpoint open to anyone (no role to check first).
    pub fn anyone(self) -> Result<Parsed<T>, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + utoipa::PartialSchema> FromRequest<AppState> for Body<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _state: &AppState) -> Result<Body<T>, Self::Rejection> {
        Ok(Body(read(req).await))
    }
}

/// Reads a JSON body and its `Idempotency-Key` (see [`Body`]).
pub async fn read<T: DeserializeOwned + utoipa::PartialSchema>(
    req: Request,
) -> Result<Parsed<T>, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    if !blank {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                ct == "application/json" || ct.ends_with("+json")
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let text: &[u8] = if blank { b"{}" } else { &bytes };
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| with_missing_fields::<T>(json_error(e), text))?;
    // Anything after the JSON value is a malformed body, not something to ignore.
    de.end().map_err(|e| {
        ApiError::Malformed(format!(
            "hay contenido después del JSON (línea {}, columna {})",
            e.line(),
            e.column()
        ))
    })?;
    let idem = match parts.headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| (1..=200).contains(&k.len()))
                .ok_or_else(|| {
                    ApiError::Malformed(
                        "Idempotency-Key debe tener entre 1 y 200 caracteres visibles".into(),
                    )
                })?;
            let mut fingerprint = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
            fingerprint.extend_from_slice(&bytes);
            Some(IdemRequest {
                key: key.to_string(),
                request_hash: sha256_hex(&fingerprint),
            })
        }
    };
    Ok(Parsed { value, idem })
}

/// serde stops at the first problem; a person fixing a form wants them all. To a refused
/// body's error this adds every other required field (by the body's OpenAPI schema) that
/// the JSON object lacks, so four missing fields are answered at once.
fn with_missing_fields<T: utoipa::PartialSchema>(error: ApiError, text: &[u8]) -> ApiError {
    use utoipa::openapi::{RefOr, Schema};
    let ApiError::Service(ServiceError::Invalid(mut errors)) = error else {
        return error;
    };
    let Ok(serde_json::Value::Object(given)) = serde_json::from_slice(text) else {
        return ApiError::fields(errors);
    };
    if let RefOr::T(Schema::Object(schema)) = T::schema() {
        for name in &schema.required {
            if !given.contains_key(name) && !errors.iter().any(|e| &e.field == name) {
                errors.push(FieldError::new(name, "es obligatorio"));
            }
        }
    }
    ApiError::fields(errors)
}

/// serde_json's errors, for people: syntax errors are 400; a well-formed body with wrong
/// fields is 422 naming the field (its path, e.g. `procedure_ids[0]`), in Spanish.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::Malformed(format!(
            "el cuerpo no es JSON válido (línea {}, columna {})",
            inner.line(),
            inner.column()
        )),
        Category::Data => {
            let text = inner.to_string();
            let text = text.split(" at line").next().unwrap_or(&text).to_string();
            let quoted = text.split('`').nth(1).map(str::to_string);
            let here = if path == "." { String::new() } else { path };
            let (field, message) = if text.starts_with("unknown field") {
                // The path already ends at the unknown key.
                let field = if here.is_empty() {
                    quoted.unwrap_or_else(|| "body".into())
                } else {
                    here
                };
                (field, "campo desconocido".to_string())
            } else if text.starts_with("missing field") {
                let name = quoted.unwrap_or_else(|| "body".into());
                let field = if here.is_empty() {
                    name
                } else {
                    format!("{here}.{name}")
                };
                (field, "es obligatorio".to_string())
            } else {
                let field = if here.is_empty() {
                    "body".to_string()
                } else {
                    here
                };
                let message = spanish_data_error(&field, &text);
                (field, message)
            };
            ApiError::fields(vec![FieldError::new(field, message)])
        }
    }
}

/// What serde's data errors mean, in Spanish.
fn spanish_data_error(field: &str, text: &str) -> String {
    let last = field.rsplit('.').next().unwrap_or(field);
    let instant = last.ends_with("_at") || last == "effective_from";
    const RFC3339: &str = "un instante RFC 3339 con zona, por ejemplo 2026-11-27T09:30:00-06:00";
    if instant {
        // The instant parser's own words (an instant out of span, say) are already Spanish.
        if crate::documents::instant::is_own_message(text) {
            return text.to_string();
        }
        return if text.starts_with("invalid type") {
            format!("tipo de dato incorrecto: se esperaba un texto con {RFC3339}")
        } else {
            format!("debe ser {RFC3339}")
        };
    }
    let expected = text.rsplit("expected ").next().unwrap_or("");
    let want = if expected.contains("sequence") {
        "una lista"
    } else if expected.contains("boolean") {
        "verdadero o falso (true/false)"
    } else if expected.contains("string") {
        "un texto"
    } else if expected.contains("u32") || expected.contains("u64") || expected.contains("u16") {
        "un número entero no negativo"
    } else if expected.contains("i64") || expected.contains("integer") {
        "un número entero"
    } else if expected.contains("f64") || expected.contains("float") {
        "un número"
    } else if expected.contains("map") || expected.contains("struct") {
        "un objeto"
    } else {
        return "valor no válido".into();
    };
    format!("tipo de dato incorrecto: se esperaba {want}")
}
