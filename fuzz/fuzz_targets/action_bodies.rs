//! The JSON request body of every incident action, read by the API's own body reader
//! (`http::extract::read`: Content-Type, blank body as `{}`, serde with the field's path,
//! trailing content, every missing required field named, `Idempotency-Key`), turned into
//! the core `Command` as its handler does, and decided by the core on a fixed incident
//! (`decide`; on success the events are applied and the whole history replayed, as the
//! core's tests do).
//!
//! Input: four selector bytes, then the body.
//! - byte 0: the action (the 14 write endpoints of `http/incidents.rs`, in file order);
//! - byte 1: the incident (`incidencias_fuzz::fixtures`; a report always gets none);
//! - byte 2: who asks (`incidencias_fuzz::actors`);
//! - byte 3: bits 0-1 the Content-Type, bits 2-3 the Idempotency-Key, bits 4-7 when.
//!
//! Beyond "no panic": a refused body answers 400, 415 or 422 (never 413 below the limit,
//! never 5xx); a refused command answers 403, 404, 409 or 422; decided events apply, the
//! history replays to the same state and the protocol's invariants hold after them.
//!
//! The handler's mapping from body to command is repeated below (`command`), one arm per
//! handler: it is a few field moves per action, inline in each handler.

#![no_main]

use axum::body::Body;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use incidencias::documents::{ReportFormBody, instant};
use incidencias::http::error::ApiError;
use incidencias::http::extract::read;
use incidencias::http::incidents::{
    BannerBody, ButtonBody, EmptyBody, NewIncidentBody, NotifyBody, ReasonBody, ResolutionBody,
    ReviewBody, SeverityBody, ValidationBody,
};
use incidencias::service::ServiceError;
use incidencias_core::{
    AgencyId, Channel, Command, FieldError, Folio, IncidentKind, NewReport, OccurredAtCorrection,
    ProcedureId, Severity,
};
use incidencias_fuzz::{actors, fixtures, now_or_never, the_ladder};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;

const FOLIO: &str = "INC-2026-000123";

/// The endpoints, in the order of `http/incidents.rs`: (path after the folio, method).
const ACTIONS: [(&str, &str); 14] = [
    ("", "POST"), // create_incident: POST /api/v1/incidents
    ("notify", "POST"),
    ("acknowledge", "POST"),
    ("banner-exemption", "POST"),
    ("banner", "POST"),
    ("button", "POST"),
    ("resolution", "POST"),
    ("validation", "POST"),
    ("report-form", "PUT"),
    ("report-form/review", "POST"),
    ("escalate", "POST"),
    ("severity", "POST"),
    ("close", "POST"),
    ("dismiss", "POST"),
];

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/merge-patch+json; charset=utf-8"),
    None,
    Some("text/plain"),
];

/// Minutes after the incident's last event (the first: before it).
const LATER_MIN: [i64; 16] = [
    -60, 0, 1, 10, 20, 45, 60, 90, 240, 480, 1440, 2880, 10080, 43200, 525600, 5256000,
];

macro_rules! body {
    ($ty:ty, $req:expr) => {
        now_or_never(read::<$ty>($req)).map(|parsed| parsed.value)
    };
}

/// The request as the handler receives it, and the command it hands to the service.
fn command(action: usize, req: Request<Body>) -> Result<Command, ApiError> {
    Ok(match action {
        // create_incident; the service then checks the procedures (in the database) and
        // takes the agency and a folio from them.
        0 => {
            let b = body!(NewIncidentBody, req)?;
            let mut errors = Vec::new();
            let kind = IncidentKind::parse(&b.kind)
                .map_err(|e| errors.push(FieldError::new("kind", e.to_string())))
                .ok();
            let channel = Channel::parse(&b.channel)
                .map_err(|e| errors.push(FieldError::new("channel", e.to_string())))
                .ok();
            let occurred_at = instant::parse(&b.occurred_at)
                .map_err(|e| errors.push(FieldError::new("occurred_at", e)))
                .ok();
            if !errors.is_empty() {
                return Err(ApiError::fields(errors));
            }
            let (Some(kind), Some(channel), Some(occurred_at)) = (kind, channel, occurred_at)
            else {
                return Err(ApiError::Malformed("datos incompletos".into()));
            };
            Command::Report(NewReport {
                folio: Folio::parse(FOLIO).expect("a folio"),
                agency_id: AgencyId(1),
                procedure_ids: b.procedure_ids.into_iter().map(ProcedureId).collect(),
                kind,
                description: b.description,
                occurred_at,
                channel,
            })
        }
        1 => {
            let b = body!(NotifyBody, req)?;
            let severity = Severity::parse(&b.severity)
                .map_err(|e| ApiError::field("severity", e.to_string()))?;
            Command::Notify {
                severity,
                disable_button: b.disable_button.unwrap_or(true),
                occurred_at: b.occurred_at.map(|at| OccurredAtCorrection {
                    occurred_at: at,
                    reason: b.occurred_at_reason.clone(),
                }),
            }
        }
        2 => {
            body!(EmptyBody, req)?;
            Command::Acknowledge
        }
        3 => Command::ExemptBanner {
            reason: body!(ReasonBody, req)?.reason,
        },
        4 => {
            let b = body!(BannerBody, req)?;
            Command::SetBanner {
                shown: b.shown,
                message: b.message,
            }
        }
        5 => Command::SetButton {
            enabled: body!(ButtonBody, req)?.enabled,
        },
        6 => Command::NotifyResolution {
            summary: body!(ResolutionBody, req)?.summary,
        },
        7 => {
            let b = body!(ValidationBody, req)?;
            Command::RecordValidation {
                passed: b.passed,
                observations: b.observations,
            }
        }
        8 => {
            let b = body!(ReportFormBody, req)?;
            if b.draft {
                Command::SaveReportFormDraft(b.into())
            } else {
                Command::SubmitReportForm(b.into())
            }
        }
        9 => {
            let b = body!(ReviewBody, req)?;
            Command::ReviewReportForm {
                complete: b.complete,
                missing: b.missing,
                message: b.message,
            }
        }
        // escalate; the service puts in the ladder of the org chart as it stands.
        10 => Command::Escalate {
            reason: body!(ReasonBody, req)?.reason,
            ladder: the_ladder(),
        },
        11 => {
            let b = body!(SeverityBody, req)?;
            let severity = Severity::parse(&b.severity)
                .map_err(|e| ApiError::field("severity", e.to_string()))?;
            Command::ChangeSeverity {
                severity,
                reason: b.reason,
            }
        }
        12 => {
            body!(EmptyBody, req)?;
            Command::Close
        }
        13 => Command::Dismiss {
            reason: body!(ReasonBody, req)?.reason,
        },
        _ => unreachable!("the action is taken modulo 14"),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut head = [0u8; 4];
    let n = data.len().min(4);
    head[..n].copy_from_slice(&data[..n]);
    let body = data[n..].to_vec();

    let action = head[0] as usize % ACTIONS.len();
    let all = fixtures();
    // A report has no incident yet; an action always has one.
    let fixture = if action == 0 {
        &all[0]
    } else {
        &all[1 + head[1] as usize % (all.len() - 1)]
    };
    let actors = actors();
    let actor = &actors[head[2] as usize % actors.len()];
    let content_type = CONTENT_TYPES[(head[3] & 0b11) as usize];
    let idempotency_key = match (head[3] >> 2) & 0b11 {
        0 => None,
        1 => Some("clave-1".to_string()),
        2 => Some(" ".to_string()),
        _ => Some("k".repeat(201)),
    };
    let later = LATER_MIN[(head[3] >> 4) as usize];
    let now = fixture
        .last_event_at()
        .checked_add(SignedDuration::from_mins(later))
        .expect("in range");

    let (suffix, method) = ACTIONS[action];
    let uri = if suffix.is_empty() {
        "/api/v1/incidents".to_string()
    } else {
        format!("/api/v1/incidents/{FOLIO}/{suffix}")
    };
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if let Some(key) = idempotency_key {
        req = req.header("idempotency-key", key);
    }
    let req = req.body(Body::from(body)).expect("a request");

    let command = match command(action, req) {
        Ok(command) => command,
        Err(refused) => {
            let status = refused.into_response().status().as_u16();
            assert!(
                matches!(status, 400 | 415 | 422),
                "a body refused with {status}"
            );
            return;
        }
    };

    let mut run = fixture.fork();
    match run.exec(actor, command, now) {
        Ok(events) => {
            let last: Timestamp = events.last().map_or(now, |e| e.at);
            let incident = run.state.as_ref().expect("an incident after its events");
            let broken = incident.invariant_violations(last);
            assert!(broken.is_empty(), "invariants broken: {broken:?}");
        }
        Err(refused) => {
            assert!(!refused.to_string().is_empty());
            let status = ApiError::from(ServiceError::from(refused))
                .into_response()
                .status()
                .as_u16();
            assert!(
                matches!(status, 403 | 404 | 409 | 422),
                "a command refused with {status}"
            );
        }
    }
});
