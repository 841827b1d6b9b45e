//! Who is looking at a page: the API's cookie session, and the CSRF token every form
//! carries. A page asked without a session sends the person to sign in and back.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::encoding::sha256_hex;
use crate::http::AppState;
use crate::http::extract::{SESSION_COOKIE, cookie, same_origin};
use crate::service::Caller;
use crate::service::IdemRequest;

/// A signed-in person and their session's CSRF token.
#[derive(Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The session secret (to end it, or keep it when the password changes).
    pub session: String,
    pub csrf: String,
}

/// The form token of a session: derived from the session's secret, which only the
/// browser holding the HttpOnly cookie knows, so another site cannot forge it.
pub fn csrf_token(session: &str) -> String {
    sha256_hex(format!("formulario\0{session}").as_bytes())[..40].to_string()
}

/// Where a person goes to sign in, coming back to `path` afterwards.
pub fn to_login(path: &str) -> Response {
    let back = if path == "/" || path.is_empty() {
        String::new()
    } else {
        format!(
            "?siguiente={}",
            percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    Redirect::to(&format!("/entrar{back}")).into_response()
}

/// A path we may send a person back to after signing in: one of our own pages.
pub fn safe_return(path: &str) -> &str {
    // Browsers drop tabs and newlines from URLs, so "/\t/evil" would become "//evil":
    // only a plain local path is followed.
    let plain = path.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '?' | '=' | '&' | '%')
    });
    let mut chars = path.chars();
    let local = chars.next() == Some('/') && !matches!(chars.next(), Some('/') | Some('\\'));
    if plain && local { path } else { "/" }
}

async fn viewer(parts: &Parts, state: &AppState) -> Option<Viewer> {
    let session = cookie(parts, SESSION_COOKIE)?;
    let caller = state.service.authenticate_session(session).await.ok()?;
    Some(Viewer {
        caller,
        session: session.to_string(),
        csrf: csrf_token(session),
    })
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        match viewer(parts, state).await {
            Some(v) => Ok(v),
            None => {
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                // Only a page read comes back after signing in; a form posted without a
                // session would be lost anyway.
                let back = if parts.method == axum::http::Method::GET {
                    path
                } else {
                    "/"
                };
                Err(to_login(back))
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Viewer>, Self::Rejection> {
        Ok(viewer(parts, state).await)
    }
}

/// A posted form comes from our own pages: the browser says so (`Sec-Fetch-Site`,
/// `Origin`), and, for a signed-in person, it carries the session's token.
pub struct FromOurPages(pub bool);

impl FromRequestParts<AppState> for FromOurPages {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<FromOurPages, Self::Rejection> {
        // A browser says where a form comes from; a request that says nothing is not
        // taken as ours (sign-in has no session token to fall back on).
        let says = parts.headers.contains_key("sec-fetch-site")
            || parts.headers.contains_key(header::ORIGIN);
        Ok(FromOurPages(says && same_origin(parts)))
    }
}

/// The session cookie for `secret` (empty and expired to end it).
pub fn session_cookie(secret: Option<&str>, secure: bool) -> HeaderMap {
    let value = match secret {
        Some(s) => format!(
            "{SESSION_COOKIE}={s}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            crate::service::SESSION_HOURS * 3600,
            if secure { "; Secure" } else { "" }
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(header::SET_COOKIE, v);
    }
    headers
}

/// Refused: the form did not come from our pages (or its page is too old).
pub fn forged() -> Response {
    (
        StatusCode::FORBIDDEN,
        super::pages::message_page(
            None,
            "Solicitud rechazada",
            "El formulario no proviene de esta página o su sesión cambió. Vuelva a la página, \
             recárguela e intente de nuevo.",
        ),
    )
        .into_response()
}

/// A posted form's fields, in order (a field may repeat: checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An id chosen in a `<select>` (`None` for "Ninguno" or anything else).
    pub fn id(&self, name: &str) -> Option<i64> {
        self.get(name).trim().parse().ok()
    }

    /// A list typed in one field, separated by commas, semicolons or spaces.
    pub fn words(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split([',', ';', ' '])
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Non-blank lines of a textarea.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The form's idempotency key (one per rendered form): sending the same form twice
    /// (a double click, a reload after a lost answer) acts once.
    pub fn idem(&self, path: &str) -> Option<IdemRequest> {
        let key = self.get("_clave");
        if key.is_empty() || key.len() > 200 {
            return None;
        }
        let mut fingerprint = format!("POST {path}\n");
        for (k, v) in &self.0 {
            if k != "_csrf" {
                fingerprint.push_str(&format!("{k}={v}\n"));
            }
        }
        Some(IdemRequest {
            key: format!("web:{key}"),
            request_hash: sha256_hex(fingerprint.as_bytes()),
        })
    }
}

/// A form posted by a signed-in person from our own pages: the session, the browser's word
/// that the form is ours (`Sec-Fetch-Site`, `Origin`) and the session's token in `_csrf`,
/// checked before any handler sees the fields. Anything else is refused with nothing done.
pub struct Posted {
    pub viewer: Viewer,
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer =
            <Viewer as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        let ours = same_origin(&parts);
        let form =
            Form::<Vec<(String, String)>>::from_request(Request::from_parts(parts, body), state)
                .await;
        let fields = Fields(form.map(|Form(f)| f).unwrap_or_default());
        if !ours || fields.get("_csrf") != viewer.csrf {
            return Err(forged());
        }
        Ok(Posted { viewer, fields })
    }
}
