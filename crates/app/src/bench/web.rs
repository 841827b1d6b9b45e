//! `incidencias bench web`: server time of the pages beside the JSON API on the same data:
//! the queue with 10,000 open incidents (first page, nearest deadline first, as the help
//! desk sees it) beside `GET /api/v1/incidents`, and the page of an incident with 200
//! events beside `GET /api/v1/incidents/{folio}` + `/events`. Requests go through the whole
//! router in process (no socket), so the figures are the server's own time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use clap::Args;
use incidencias_core::{Channel, Command, IncidentKind, ProcedureId, Severity};
use jiff::{SignedDuration, Timestamp};
use tower::ServiceExt;

use super::{Scratch, invalid, median, percentile_ms};
use crate::clock::SystemClock;
use crate::http::{AppParts, router};
use crate::service::{NewIncidentInput, NewUserInput, Service};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct WebBench {
    /// Incidencias abiertas en la bandeja.
    #[arg(long, default_value_t = 10_000)]
    pub incidents: usize,
    /// Eventos de la incidencia cuya página se mide.
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// Solicitudes por medición y ronda.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// p50, p99 and max of one measurement, in milliseconds.
struct Timing {
    p50: f64,
    p99: f64,
    max: f64,
}

async fn time(
    app: &axum::Router,
    request: &dyn Fn() -> Request<Body>,
    n: usize,
) -> Result<Timing, StoreError> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = app.clone().oneshot(request()).await.map_err(invalid)?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(invalid)?;
        latencies.push(started.elapsed());
        if !status.is_success() {
            return Err(invalid(format!(
                "respuesta {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
    latencies.sort();
    Ok(Timing {
        p50: percentile_ms(&latencies, 0.50),
        p99: percentile_ms(&latencies, 0.99),
        max: latencies
            .last()
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0,
    })
}

pub async fn web_bench(args: WebBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("web")?;
    let store = Store::open(&scratch.url()).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let catalogue = super::bench_catalogue(&service).await?;
    let password = "contraseña-de-medición";
    service
        .create_user_unchecked(NewUserInput {
            name: "Mesa (medición)".into(),
            email: "mesa.web@bench.gob.mx".into(),
            role: "helpdesk".into(),
            agency_id: None,
            reports_to: None,
            password: Some(password.into()),
        })
        .await
        .map_err(invalid)?;
    let session = service
        .login("mesa.web@bench.gob.mx", password)
        .await
        .map_err(invalid)?
        .session;
    let token = service
        .create_token("mesa@bench.gob.mx")
        .await
        .map_err(invalid)?;

    eprintln!(
        "sembrando {} incidencias abiertas y notificadas...",
        args.incidents
    );
    let seeded = Instant::now();
    let report = |service: Service, helpdesk: crate::service::Caller, procedure: i64, i: usize| async move {
        let reply = service
            .report(
                &helpdesk,
                NewIncidentInput {
                    procedure_ids: vec![ProcedureId(procedure)],
                    kind: IncidentKind::Unavailable,
                    description: format!("Incidencia de medición {i}"),
                    occurred_at: Timestamp::now() - SignedDuration::from_mins(5),
                    channel: Channel::Phone,
                },
                None,
            )
            .await
            .map_err(invalid)?;
        let folio = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["folio"].as_str().map(str::to_string))
            .ok_or_else(|| invalid("folio"))?;
        let folio = incidencias_core::Folio::parse(&folio).map_err(invalid)?;
        let severity = Severity::ALL[i % Severity::ALL.len()];
        service
            .act(
                &helpdesk,
                folio,
                Command::Notify {
                    severity,
                    disable_button: true,
                    occurred_at: None,
                },
                None,
            )
            .await
            .map_err(invalid)?;
        Ok::<_, StoreError>(folio)
    };
    let mut folios = Vec::with_capacity(args.incidents);
    let mut next = 0;
    while next < args.incidents {
        let batch: Vec<_> = (next..(next + 64).min(args.incidents))
            .map(|i| {
                tokio::spawn(report(
                    service.clone(),
                    catalogue.helpdesk.clone(),
                    catalogue.procedure.id,
                    i,
                ))
            })
            .collect();
        for task in batch {
            folios.push(task.await.map_err(invalid)??);
        }
        next += 64;
    }
    let busy = *folios.first().ok_or_else(|| invalid("sin incidencias"))?;
    // The measured incident gets its events from severity changes (one event each).
    let mut severity = Severity::Critical;
    let have = service
        .events(&catalogue.helpdesk, busy)
        .await
        .map_err(invalid)?
        .len();
    for i in have..args.events {
        severity = if severity == Severity::Low {
            Severity::High
        } else {
            Severity::Low
        };
        service
            .act(
                &catalogue.helpdesk,
                busy,
                Command::ChangeSeverity {
                    severity,
                    reason: format!("medición {i}"),
                },
                None,
            )
            .await
            .map_err(invalid)?;
    }
    eprintln!("sembrado en {:.1} s", seeded.elapsed().as_secs_f64());

    // Where the incident page's time goes: each service call it makes, alone.
    let caller = service
        .authenticate_session(&session)
        .await
        .map_err(invalid)?;
    let mut parts: Vec<(&str, Vec<Duration>)> = Vec::new();
    macro_rules! part {
        ($name:expr, $call:expr) => {{
            let mut times = Vec::with_capacity(args.requests);
            for _ in 0..args.requests {
                let started = Instant::now();
                $call.await.map_err(invalid)?;
                times.push(started.elapsed());
            }
            times.sort();
            parts.push(($name, times));
        }};
    }
    part!("Service::incident", service.incident(&caller, busy));
    part!("Service::events", service.events(&caller, busy));
    part!(
        "Service::available_actions",
        service.available_actions(&caller, busy)
    );
    part!(
        "Service::incident_mail",
        service.incident_mail(&caller, busy)
    );
    part!(
        "Service::incident_messages",
        service.incident_messages(&caller, busy)
    );
    part!("Service::procedures", service.procedures(&caller));
    part!("Service::agencies", service.agencies(&caller));

    let app = router(
        AppParts {
            service: service.clone(),
            secure_cookies: false,
            base_url: "https://incidencias.gob.mx".into(),
            demo_accounts: Default::default(),
            portal_origins: Default::default(),
            metrics_token: None,
        }
        .into(),
    );
    let cookie = format!("{}={session}", crate::http::extract::SESSION_COOKIE);
    let page = |path: String| {
        let cookie = cookie.clone();
        move || {
            Request::builder()
                .uri(&path)
                .header(header::COOKIE, &cookie)
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap_or_default()
        }
    };
    let api = |path: String| {
        let bearer = format!("Bearer {token}");
        move || {
            Request::builder()
                .uri(&path)
                .header(header::AUTHORIZATION, &bearer)
                .body(Body::empty())
                .unwrap_or_default()
        }
    };
    let queue_page = page("/".into());
    let queue_api = api("/api/v1/incidents?per_page=50".into());
    let incident_page = page(format!("/incidencias/{busy}"));
    let incident_api = api(format!("/api/v1/incidents/{busy}"));
    let events_api = api(format!("/api/v1/incidents/{busy}/events"));
    let names = [
        "queue page `/` (help desk, first page of 50, nearest deadline first)",
        "GET /api/v1/incidents?per_page=50 (newest first)",
        "incident page `/incidencias/{folio}`",
        "GET /api/v1/incidents/{folio} + /events (two requests)",
    ];
    let mut results: Vec<Vec<Timing>> = (0..4).map(|_| Vec::new()).collect();
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        results[0].push(time(&app, &queue_page, args.requests).await?);
        results[1].push(time(&app, &queue_api, args.requests).await?);
        results[2].push(time(&app, &incident_page, args.requests).await?);
        let both = time(&app, &incident_api, args.requests).await?;
        let events = time(&app, &events_api, args.requests).await?;
        results[3].push(Timing {
            p50: both.p50 + events.p50,
            p99: both.p99 + events.p99,
            max: both.max + events.max,
        });
    }
    println!(
        "| measurement ({} open incidents, {} events on the page's incident, {} requests × {} rounds) | p50 ms | p99 ms | max ms |",
        args.incidents, args.events, args.requests, args.rounds
    );
    println!("|---|---|---|---|");
    for (name, timings) in names.iter().zip(&results) {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            median(timings.iter().map(|t| t.p50).collect()),
            median(timings.iter().map(|t| t.p99).collect()),
            median(timings.iter().map(|t| t.max).collect()),
        );
    }
    println!(
        "\nThe incident page's service calls, each alone ({} calls):\n",
        args.requests
    );
    println!("| call | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (name, times) in &parts {
        println!(
            "| {name} | {:.3} | {:.3} |",
            percentile_ms(times, 0.50),
            percentile_ms(times, 0.99)
        );
    }
    Ok(0)
}
