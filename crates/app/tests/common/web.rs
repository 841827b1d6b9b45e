//! A browser without a browser: the web pages driven through the real router with a
//! session cookie, the CSRF token the pages carry and the forms' idempotency keys.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use super::api::{Answer, Api};

pub const PASSWORD: &str = "contraseña-de-prueba";

/// A browser: its session cookie and the CSRF token its pages carry.
pub struct Browser<'a> {
    pub api: &'a Api,
    pub cookie: String,
    pub csrf: String,
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn post_form(
    api: &Api,
    path: &str,
    cookie: &str,
    site: &str,
    fields: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", site);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    api.send(req.body(Body::from(form_body(fields))).expect("request"))
        .await
}

pub async fn get_page(api: &Api, path: &str, cookie: &str) -> Answer {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::ACCEPT, "text/html");
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    api.send(req.body(Body::empty()).expect("request")).await
}

/// Posts the sign-in form from our own page.
pub async fn sign_in_form(api: &Api, email: &str, password: &str, next: &str) -> Answer {
    post_form(
        api,
        "/entrar",
        "",
        "same-origin",
        &[
            ("email", email),
            ("password", password),
            ("siguiente", next),
        ],
    )
    .await
}

pub fn csrf_in(html: &str) -> String {
    html.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_string()
}

pub fn key_in(html: &str, form_action: &str) -> String {
    let form = html
        .split(&format!("action=\"{form_action}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("a form posting to {form_action}"));
    form.split("name=\"_clave\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries its key")
        .to_string()
}

impl<'a> Browser<'a> {
    pub async fn sign_in(api: &'a Api, email: &str) -> Browser<'a> {
        let a = sign_in_form(api, email, PASSWORD, "/").await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "sign-in: {}", a.text);
        let cookie = a
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        let queue = get_page(api, "/", &cookie).await;
        assert_eq!(queue.status, StatusCode::OK);
        Browser {
            api,
            csrf: csrf_in(&queue.text),
            cookie,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        get_page(self.api, path, &self.cookie).await
    }

    /// Posts the action form of the incident page as a person would: with the page's
    /// token and the form's key.
    pub async fn act(&self, folio: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let page = self.get(&format!("/incidencias/{folio}")).await;
        let path = format!("/incidencias/{folio}/acciones/{action}");
        let key = key_in(&page.text, &path);
        let mut all = vec![("_csrf", self.csrf.as_str()), ("_clave", key.as_str())];
        all.extend_from_slice(fields);
        post_form(self.api, &path, &self.cookie, "same-origin", &all).await
    }

    pub async fn state_of(&self, folio: &str) -> String {
        let page = self.get(&format!("/incidencias/{folio}")).await;
        page.text
            .split("data-testid=\"state\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .expect("the state is shown")
            .to_string()
    }
}
