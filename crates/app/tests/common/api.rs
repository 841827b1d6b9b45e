//! Driving the real router in-process (tower `oneshot`), on a fresh database of either
//! backend, with a manual clock and a seeded catalogue: two agencies, a ladder, a
//! procedure each, and an API token for each role.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use incidencias::clock::ManualClock;
use incidencias::documents::UserDoc;
use incidencias::http::{AppParts, router};
use incidencias::service::{Caller, NewAgencyInput, NewProcedureInput, NewUserInput, Service};
use incidencias::store::Store;
use incidencias_core::Role;
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Api {
    pub router: Router,
    pub service: Service,
    pub clock: ManualClock,
    pub store: Store,
    pub admin: String,
    pub helpdesk: String,
    pub validator: String,
    /// The agency that owns `procedure`.
    pub agency: String,
    /// A user of another agency, which owns `other_procedure`.
    pub other_agency: String,
    pub agency_id: i64,
    pub other_agency_id: i64,
    pub procedure: i64,
    pub procedure_homoclave: String,
    pub other_procedure: i64,
    /// Seeded users: admin, helpdesk, validator, responsible, director, general
    /// director, the other agency's responsible, CEDN's lead (the validator's superior).
    pub users: Vec<UserDoc>,
    /// The same accounts as the service's callers (in the same order).
    pub callers: Vec<Caller>,
}

/// An answer: status, headers and the body parsed as JSON (`Value::Null` if it is not).
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.json.get("code").and_then(Value::as_str).unwrap_or("")
    }

    pub fn field(&self, name: &str) -> &Value {
        self.json.get(name).unwrap_or(&Value::Null)
    }

    /// A response header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The field names of an `invalid_fields` problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem document with this status and stable `code`: the
    /// problem media type, the `status` member equal to the HTTP status, and a `type`,
    /// `title` and non-empty `detail`.
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "status: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem media type: {}",
            self.text
        );
        assert_eq!(self.code(), code, "code: {}", self.text);
        assert_eq!(
            self.json["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "status member equals the HTTP status: {}",
            self.text
        );
        assert!(
            self.json["type"].as_str().is_some_and(|t| !t.is_empty()),
            "type: {}",
            self.text
        );
        assert!(
            self.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "title: {}",
            self.text
        );
        assert!(
            self.json["detail"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "detail: {}",
            self.text
        );
    }

    /// Asserts a 422 `invalid_fields` problem naming `field` in `errors[].field`.
    pub fn assert_invalid_field(&self, field: &str) {
        self.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
        assert!(
            self.error_fields().iter().any(|f| f == field),
            "errors name {field}: {}",
            self.text
        );
    }
}

/// The authserv-id of the receiving mail server the tests' service believes.
pub const MX: &str = "mx.prueba.gob.mx";

/// `raw` as the trusted receiving server hands it over after checking it: with its
/// `Authentication-Results` on top, saying DMARC passed for the domain of `From`.
pub fn authenticated(raw: &[u8]) -> Vec<u8> {
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .expect("a message");
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .expect("an address in From");
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .expect("a domain in From");
    let mut out =
        format!("Authentication-Results: {MX}; dmarc=pass (p=reject) header.from={domain}\r\n")
            .into_bytes();
    out.extend_from_slice(raw);
    out
}

pub fn t0() -> Timestamp {
    "2026-11-27T15:00:00Z".parse().expect("instant")
}

impl Api {
    pub async fn new(url: &str) -> Api {
        let store = Store::open(url).await.expect("open store");
        let clock = ManualClock::new(t0());
        let service =
            Service::new(store.clone(), Arc::new(clock.clone())).with_mail_authserv(Some(MX));
        let mk = |email: &str, name: &str, role: Role, agency: Option<i64>, boss: Option<i64>| {
            NewUserInput {
                name: name.into(),
                email: email.into(),
                role: role.as_str().into(),
                agency_id: agency,
                reports_to: boss,
                password: Some("contraseña-de-prueba".into()),
            }
        };
        let admin = service
            .create_user_unchecked(mk("admin@ugd.gob.mx", "Admin", Role::Admin, None, None))
            .await
            .expect("admin");
        let admin_c = service.caller(admin.id).await.expect("admin caller");
        let agency = service
            .create_agency(
                &admin_c,
                NewAgencyInput {
                    name: "Secretaría de Pruebas".into(),
                    acronym: "SEPRU".into(),
                    email_domains: vec!["sepru.gob.mx".into()],
                },
            )
            .await
            .expect("agency");
        let other = service
            .create_agency(
                &admin_c,
                NewAgencyInput {
                    name: "Otra Secretaría".into(),
                    acronym: "OTRA".into(),
                    email_domains: vec!["otra.gob.mx".into()],
                },
            )
            .await
            .expect("other agency");
        let boss2 = service
            .create_user_unchecked(mk(
                "dg@sepru.gob.mx",
                "Dirección General",
                Role::Agency,
                Some(agency.id),
                None,
            ))
            .await
            .expect("dg");
        let boss1 = service
            .create_user_unchecked(mk(
                "director@sepru.gob.mx",
                "Director",
                Role::Agency,
                Some(agency.id),
                Some(boss2.id),
            ))
            .await
            .expect("director");
        let responsible = service
            .create_user_unchecked(mk(
                "responsable@sepru.gob.mx",
                "Responsable",
                Role::Agency,
                Some(agency.id),
                Some(boss1.id),
            ))
            .await
            .expect("responsible");
        let other_user = service
            .create_user_unchecked(mk(
                "responsable@otra.gob.mx",
                "Otra responsable",
                Role::Agency,
                Some(other.id),
                None,
            ))
            .await
            .expect("other responsible");
        let helpdesk = service
            .create_user_unchecked(mk("mesa@ugd.gob.mx", "Mesa", Role::Helpdesk, None, None))
            .await
            .expect("helpdesk");
        let cedn_lead = service
            .create_user_unchecked(mk(
                "jefatura.cedn@ugd.gob.mx",
                "Jefatura CEDN",
                Role::Validator,
                None,
                None,
            ))
            .await
            .expect("cedn lead");
        let validator = service
            .create_user_unchecked(mk(
                "cedn@ugd.gob.mx",
                "CEDN",
                Role::Validator,
                None,
                Some(cedn_lead.id),
            ))
            .await
            .expect("validator");
        let procedure = service
            .create_procedure(
                &admin_c,
                NewProcedureInput {
                    homoclave: "SEPRU-01-001".into(),
                    name: "Constancia".into(),
                    agency_id: agency.id,
                    url: "https://www.gob.mx/constancia".into(),
                    responsible_id: responsible.id,
                },
            )
            .await
            .expect("procedure");
        let other_procedure = service
            .create_procedure(
                &admin_c,
                NewProcedureInput {
                    homoclave: "OTRA-01-001".into(),
                    name: "Otro trámite".into(),
                    agency_id: other.id,
                    url: "https://www.gob.mx/otro".into(),
                    responsible_id: other_user.id,
                },
            )
            .await
            .expect("other procedure");
        let token = |u: &UserDoc| {
            let service = service.clone();
            let email = u.email.clone();
            async move { service.create_token(&email).await.expect("token") }
        };
        let users = vec![
            admin.clone(),
            helpdesk.clone(),
            validator.clone(),
            responsible.clone(),
            boss1,
            boss2,
            other_user.clone(),
            cedn_lead,
        ];
        let mut callers = Vec::new();
        for u in &users {
            callers.push(service.caller(u.id).await.expect("caller"));
        }
        Api {
            router: router(
                AppParts {
                    service: service.clone(),
                    secure_cookies: false,
                    base_url: "https://incidencias.gob.mx".into(),
                    demo_accounts: Default::default(),
                    portal_origins: std::sync::Arc::new(vec!["https://www.gob.mx".into()]),
                    metrics_token: None,
                }
                .into(),
            ),
            admin: token(&admin).await,
            helpdesk: token(&helpdesk).await,
            validator: token(&validator).await,
            agency: token(&responsible).await,
            other_agency: token(&other_user).await,
            agency_id: agency.id,
            other_agency_id: other.id,
            procedure: procedure.id,
            procedure_homoclave: procedure.homoclave.clone(),
            other_procedure: other_procedure.id,
            users,
            callers,
            service,
            clock,
            store,
        }
    }

    /// Sends a request; `token` empty means no credentials; `body` `None` means none.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    /// Sends `body` as is, with `content_type` if given (for bodies that are not JSON or
    /// not well-formed).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        self.send(req.body(body.into()).expect("request")).await
    }

    /// The incident document as the help desk reads it (expects 200).
    pub async fn incident(&self, folio: &str) -> Value {
        let a = self
            .get(&format!("/api/v1/incidents/{folio}"), &self.helpdesk)
            .await;
        assert_eq!(a.status, StatusCode::OK, "GET {folio}: {}", a.text);
        a.json
    }

    /// The incident's events as the help desk reads them (expects 200).
    pub async fn events(&self, folio: &str) -> Vec<Value> {
        let a = self
            .get(&format!("/api/v1/incidents/{folio}/events"), &self.helpdesk)
            .await;
        assert_eq!(a.status, StatusCode::OK, "events of {folio}: {}", a.text);
        a.json.as_array().cloned().expect("events are a list")
    }

    /// How many incidents the help desk sees.
    pub async fn total(&self) -> u64 {
        let a = self.get("/api/v1/incidents", &self.helpdesk).await;
        assert_eq!(a.status, StatusCode::OK, "list: {}", a.text);
        a.json["total"].as_u64().expect("total")
    }

    /// Moves the manual clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(jiff::SignedDuration::from_secs(seconds));
    }

    /// Reports an incident on the agency's procedure (occurred 5 minutes ago) and returns
    /// its folio.
    pub async fn report(&self) -> String {
        self.report_kind("unavailable").await
    }

    /// Step 1 of an incident of `kind` (`unavailable`, `slow`, ...), by phone.
    pub async fn report_kind(&self, kind: &str) -> String {
        let occurred = self.clock_now() - jiff::SignedDuration::from_mins(5);
        let a = self
            .post(
                "/api/v1/incidents",
                &self.helpdesk,
                json!({
                    "procedure_ids": [self.procedure],
                    "kind": kind,
                    "description": "El trámite no responde",
                    "occurred_at": occurred.to_string(),
                    "channel": "phone"
                }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "report: {}", a.text);
        a.field("folio").as_str().expect("folio").to_string()
    }

    pub fn clock_now(&self) -> Timestamp {
        use incidencias::clock::Clock;
        self.clock.now()
    }

    /// Runs `action` on `folio` with `body` and expects 200.
    pub async fn step(&self, folio: &str, action: &str, token: &str, body: Value) -> Answer {
        let a = self
            .post(&format!("/api/v1/incidents/{folio}/{action}"), token, body)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{action}: {}", a.text);
        a
    }

    /// A complete report form.
    pub fn form(&self) -> Value {
        let now = self.clock_now();
        json!({
            "detected_at": (now - jiff::SignedDuration::from_mins(30)).to_string(),
            "restored_at": (now - jiff::SignedDuration::from_mins(20)).to_string(),
            "symptoms": "Error 500",
            "impact": "300 usuarios",
            "root_cause": "Certificado vencido",
            "actions_taken": ["Renovación del certificado"],
            "verification": "Prueba de extremo a extremo",
            "preventive_actions": "Alerta de vencimiento",
            "prepared_by_name": "Ana López",
            "prepared_by_position": "Directora de TI"
        })
    }
}
