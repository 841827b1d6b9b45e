//! `incidencias bench api`: the HTTP API under 64 keep-alive connections, side by side with
//! a handler that returns a constant on the same framework (the framework's own limit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use incidencias_core::{Actor, NewReport};
use jiff::Timestamp;

use super::load::{self, Load, RequestFn};
use super::{Sample, Scratch, invalid, median};
use crate::clock::SystemClock;
use crate::service::{NewIncidentInput, Service};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct ApiBench {
    /// Segundos por medición.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Conexiones concurrentes.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// A served API over a fresh SQLite database with one agency, one procedure, a help desk
/// token and one incident to read; and the length of that incident's document, the body a
/// POST answers.
async fn start_api(url: &str) -> Result<(SocketAddr, String, i64, String, usize), StoreError> {
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let super::BenchCatalogue {
        helpdesk,
        procedure,
        ..
    } = super::bench_catalogue(&service).await?;
    let token = service
        .create_token("mesa@bench.gob.mx")
        .await
        .map_err(invalid)?;
    let created = service
        .report(
            &helpdesk,
            NewIncidentInput {
                procedure_ids: vec![incidencias_core::ProcedureId(procedure.id)],
                kind: incidencias_core::IncidentKind::Unavailable,
                description: "Lectura de referencia".into(),
                occurred_at: Timestamp::now(),
                channel: incidencias_core::Channel::Api,
            },
            None,
        )
        .await
        .map_err(invalid)?;
    let folio = serde_json::from_str::<serde_json::Value>(&created.body)
        .ok()
        .and_then(|v| v["folio"].as_str().map(str::to_string))
        .ok_or_else(|| invalid("folio"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(crate::server::serve(
        crate::config::Config::local(store.display_name()),
        store,
        Arc::new(SystemClock),
        listener,
        std::future::pending(),
    ));
    Ok((addr, token, procedure.id, folio, created.body.len()))
}

/// The baseline: axum answering a constant JSON body, nothing else.
async fn start_constant() -> Result<SocketAddr, StoreError> {
    let app = Router::new().route(
        "/constant",
        get(|| async { ([("content-type", "application/json")], "{\"ok\":true}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// The intake's own work behind HTTP: axum on the same runtime answering each POST with
/// one [`super::intake_one`] on its own SQLite database and a constant body of `reply_len`
/// bytes (the size of the API's answer). No authentication, no reading of the JSON, no
/// email, no reply rendered: what HTTP alone adds to the intake on this machine, the floor
/// under the API's POST.
async fn start_intake_over_http(url: &str, reply_len: usize) -> Result<SocketAddr, StoreError> {
    let (store, report, actor) = super::seeded(url).await?;
    let floor = Arc::new(Floor {
        store,
        report,
        actor,
        policy: incidencias_core::SloPolicy::seed(),
        // `{"pad":""}` is 10 bytes; the padding makes up the rest.
        reply: Bytes::from(format!(
            "{{\"pad\":\"{}\"}}",
            "x".repeat(reply_len.saturating_sub(10))
        )),
    });
    let app = Router::new()
        .route("/api/v1/incidents", post(floor_create))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// What the floor's handler shares across requests.
struct Floor {
    store: Store,
    report: NewReport,
    actor: Actor,
    policy: incidencias_core::SloPolicy,
    /// Handed out by reference count, not copied per request.
    reply: Bytes,
}

async fn floor_create(State(floor): State<Arc<Floor>>, _body: Bytes) -> Response {
    match super::intake_one(&floor.store, &floor.report, &floor.actor, &floor.policy).await {
        Ok(()) => (
            StatusCode::CREATED,
            [("content-type", "application/json")],
            floor.reply.clone(),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Runs the load generator on its own thread and runtime, so that it does not share the
/// server's worker threads (it still shares the machine's two cores, like wrk would).
pub(super) fn drive(
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    expect: u16,
    request: RequestFn,
) -> Load {
    drive_counted(addr, connections, seconds, expect, request).0
}

/// CPU time of one measurement, in seconds: the whole process's (server and load
/// generator) and the load generator's thread alone.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuUse {
    pub process: f64,
    pub client: f64,
    /// The machine's idle and stolen cores over the measurement.
    pub machine: Option<super::MachineUse>,
}

/// [`drive`], with the CPU time it took (zero where `/proc` cannot tell).
pub(super) fn drive_counted(
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    expect: u16,
    request: RequestFn,
) -> (Load, CpuUse) {
    let failed = || Load {
        requests: 0,
        errors: 1,
        elapsed: Duration::from_secs(1),
        latencies: vec![],
    };
    let process_before = super::cpu_seconds("self");
    let machine = super::MachineClock::start();
    let handle = std::thread::spawn(move || {
        let client_before = super::cpu_seconds("thread-self");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let load = match rt {
            Ok(rt) => rt.block_on(load::run(
                addr,
                connections,
                Duration::from_secs(seconds),
                expect,
                request,
            )),
            Err(_) => failed(),
        };
        let client = client_before
            .zip(super::cpu_seconds("thread-self"))
            .map_or(0.0, |(a, b)| b - a);
        (load, client)
    });
    let (load, client) = handle.join().unwrap_or_else(|_| (failed(), 0.0));
    let process = process_before
        .zip(super::cpu_seconds("self"))
        .map_or(0.0, |(a, b)| b - a);
    let machine = machine.stop();
    (
        load,
        CpuUse {
            process,
            client,
            machine,
        },
    )
}

pub async fn api_bench(args: ApiBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("api")?;
    let (api, token, procedure, folio, reply_len) = start_api(&scratch.url()).await?;
    let constant = start_constant().await?;
    let bare = start_intake_over_http(&scratch.url_of("floor.db"), reply_len).await?;
    let get_constant: RequestFn =
        Arc::new(|_| b"GET /constant HTTP/1.1\r\nHost: bench\r\n\r\n".to_vec());
    let get_incident: RequestFn = {
        let req = format!("GET /api/v1/incidents/{folio} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes();
        Arc::new(move |_| req.clone())
    };
    let post_incident: RequestFn = {
        let body = format!(
            "{{\"procedure_ids\":[{procedure}],\"kind\":\"unavailable\",\"description\":\"Carga de prueba\",\"occurred_at\":\"{}\",\"channel\":\"api\"}}",
            Timestamp::now()
        );
        let req = format!(
            "POST /api/v1/incidents HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        Arc::new(move |_| req.clone())
    };
    let names = [
        "GET constant (axum baseline)",
        "GET /api/v1/incidents/{folio}",
        "POST /api/v1/incidents (durable)",
        "POST, the intake's work behind axum (floor)",
    ];
    let mut results: Vec<Vec<(Load, CpuUse)>> = vec![Vec::new(); names.len()];
    // `bench store`'s intake with 64 writers (no HTTP), each round beside the POSTs.
    let mut intakes = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        intakes.push(
            super::intake(
                &scratch.url_of(&format!("intake{round}.db")),
                64,
                args.seconds,
            )
            .await?,
        );
        let targets = [
            (constant, 200, &get_constant),
            (api, 200, &get_incident),
            (api, 201, &post_incident),
            (bare, 201, &post_incident),
        ];
        for (i, (addr, status, request)) in targets.into_iter().enumerate() {
            eprintln!("  {}...", names[i]);
            results[i].push(drive_counted(
                addr,
                args.connections,
                args.seconds,
                status,
                request.clone(),
            ));
        }
    }
    println!(
        "| measurement ({} connections, {} s) | req/s (median of {}) | p50 ms | p99 ms | errors | CPU µs/req (load generator's) | cores busy | machine: idle / stolen cores | per round req/s |",
        args.connections, args.seconds, args.rounds
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (name, runs) in names.iter().zip(&results) {
        let rate = median(runs.iter().map(|(l, _)| l.per_second()).collect());
        medians.push(rate);
        let per_round: Vec<String> = runs
            .iter()
            .map(|(l, _)| format!("{:.0}", l.per_second()))
            .collect();
        let per_request = |cpu: f64, l: &Load| cpu * 1e6 / l.requests.max(1) as f64;
        println!(
            "| {name} | {rate:.0} | {:.2} | {:.2} | {} | {:.0} ({:.0}) | {:.2} | {} | {} |",
            median(runs.iter().map(|(l, _)| l.percentile_ms(0.50)).collect()),
            median(runs.iter().map(|(l, _)| l.percentile_ms(0.99)).collect()),
            runs.iter().map(|(l, _)| l.errors).sum::<u64>(),
            median(
                runs.iter()
                    .map(|(l, c)| per_request(c.process, l))
                    .collect()
            ),
            median(runs.iter().map(|(l, c)| per_request(c.client, l)).collect()),
            median(
                runs.iter()
                    .map(|(l, c)| c.process / l.elapsed.as_secs_f64())
                    .collect()
            ),
            super::machine_cell(&runs.iter().map(|(_, c)| c.machine).collect::<Vec<_>>()),
            per_round.join(", ")
        );
    }
    let intake = median(intakes.iter().map(|s| s.per_second).collect());
    let intake_cpu: Vec<f64> = intakes.iter().filter_map(|s| s.cpu_us_per_op).collect();
    let intake_cores: Vec<f64> = intakes.iter().filter_map(Sample::cores_busy).collect();
    println!(
        "| intake, SQLite, 64 writers (`bench store`, no HTTP) | {intake:.0} | | | | {:.0} | {:.2} | {} | {} |",
        median(intake_cpu),
        median(intake_cores),
        super::machine_cell(&intakes.iter().map(|s| s.machine).collect::<Vec<_>>()),
        intakes
            .iter()
            .map(|s| format!("{:.0}", s.per_second))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if medians[0] > 0.0 {
        println!(
            "\nratio GET incident / constant baseline: {:.2}",
            medians[1] / medians[0]
        );
    }
    if intake > 0.0 {
        println!(
            "ratio POST / intake (64 writers): {:.2}",
            medians[2] / intake
        );
        println!(
            "ratio floor (the intake's work behind axum) / intake: {:.2}; POST / floor: {:.2}",
            medians[3] / intake,
            if medians[3] > 0.0 {
                medians[2] / medians[3]
            } else {
                0.0
            }
        );
    }
    println!(
        "(CPU: user and system time of this whole process over the measurement, per request; \
         in brackets the load generator's own thread; cores busy = CPU time / wall time, of {} cores; \
         machine: cores idle or waiting for the disk / cores stolen by the hypervisor, from /proc/stat, medians)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(0)
}
