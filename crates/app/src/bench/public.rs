//! `incidencias bench public`: the portal's list of every procedure's state
//! (`GET /api/v1/public/procedures`) with 10,000 procedures, under keep-alive connections,
//! side by side with axum answering the same bytes as a constant; and the revalidation
//! (`If-None-Match` → 304) beside a constant 304. Both servers run in this process, over
//! sockets, with the same load generator, alternating in every round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;

use super::api::drive;
use super::load::{Load, RequestFn};
use super::{Scratch, bench_catalogue, invalid, median};
use crate::clock::SystemClock;
use crate::service::{Caller, ImportKind, Service};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct PublicBench {
    /// Trámites publicados.
    #[arg(long, default_value_t = 10_000)]
    pub procedures: usize,
    /// Segundos por medición.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Conexiones concurrentes.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
}

/// The targets of issue 14, as shares of the constant handler's rate.
const TARGET_FULL: f64 = 0.8;
const TARGET_304: f64 = 0.9;

fn procedures_file(rows: usize, acronym: &str, responsible: &str) -> String {
    let mut out = String::from("homoclave,nombre,dependencia,url,responsable\n");
    for i in 0..rows {
        out.push_str(&format!(
            "{acronym}-{:02}-{:03},Trámite número {i},{acronym},https://www.gob.mx/tramites/{i},{responsible}\n",
            10 + i / 1000,
            i % 1000
        ));
    }
    out
}

/// A served service over a fresh SQLite database holding `rows` procedures.
async fn start_service(url: &str, rows: usize) -> Result<SocketAddr, StoreError> {
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let catalogue = bench_catalogue(&service).await?;
    // The responsible bench_catalogue registers.
    let file = procedures_file(
        rows.saturating_sub(1),
        &catalogue.agency.acronym,
        "resp@bench.gob.mx",
    );
    service
        .apply_import(&Caller::operator(), ImportKind::Procedures, file.as_bytes())
        .await
        .map_err(invalid)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(crate::server::serve(
        crate::config::Config::local(store.display_name()),
        store,
        Arc::new(SystemClock),
        listener,
        std::future::pending(),
    ));
    Ok(addr)
}

/// The baseline: axum answering `body` (the same bytes, with the same headers, the
/// protective ones included) and, to a matching `If-None-Match`, a constant 304 (with the
/// same headers too), served by the same connection loop as the service (`listen.rs`:
/// header-read timeout, connection cap), so both sides pay the same transport. Beside it,
/// for the reference rows, a bare `axum::serve` answering "ok".
async fn start_constant(
    body: bytes::Bytes,
    etag: String,
) -> Result<(SocketAddr, SocketAddr), StoreError> {
    use crate::http::security::OTHER_POLICY;
    let bare = Router::new().route("/ok", get(|| async { "ok" }));
    let app = Router::new().route(
        "/constant",
        get(move |headers: HeaderMap| {
            let (body, etag) = (body.clone(), etag.clone());
            async move {
                let same = [
                    (header::ETAG, etag.clone()),
                    (header::CACHE_CONTROL, "public, max-age=30".to_string()),
                    (header::VARY, "Origin".to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::REFERRER_POLICY, "no-referrer".to_string()),
                    (header::CONTENT_SECURITY_POLICY, OTHER_POLICY.to_string()),
                ];
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == etag.as_bytes())
                {
                    return (StatusCode::NOT_MODIFIED, same).into_response();
                }
                (
                    same,
                    [(header::CONTENT_TYPE, "application/json".to_string())],
                    body,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(crate::listen::serve(
        listener,
        app,
        crate::listen::Limits::default(),
        std::future::pending(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bare_addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, bare).await;
    });
    Ok((addr, bare_addr))
}

/// Fetches the list once (to size and tag the baseline): its body and `ETag`.
async fn fetch_once(addr: SocketAddr) -> Result<(bytes::Bytes, String), StoreError> {
    let client = crate::webhooks::worker::http_client(
        None,
        Duration::from_secs(30),
        reqwest::redirect::Policy::none(),
    )
    .map_err(invalid)?;
    let response = client
        .get(format!("http://{addr}/api/v1/public/procedures"))
        .send()
        .await
        .map_err(invalid)?;
    let etag = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| invalid("la lista pública no trae ETag"))?;
    let body = response.bytes().await.map_err(invalid)?;
    Ok((body, etag))
}

fn request(path: &str, etag: Option<&str>) -> RequestFn {
    let conditional = etag
        .map(|t| format!("If-None-Match: {t}\r\n"))
        .unwrap_or_default();
    let bytes = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{conditional}\r\n").into_bytes();
    Arc::new(move |_| bytes.clone())
}

pub async fn public_bench(args: PublicBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("public")?;
    let service = start_service(&scratch.url(), args.procedures).await?;
    let (body, etag) = fetch_once(service).await?;
    let count = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["procedures"].as_array().map(Vec::len))
        .unwrap_or(0);
    let (constant, bare) = start_constant(body.clone(), etag.clone()).await?;
    println!(
        "Lista pública: {count} trámites, {} KiB por respuesta; {} conexiones, {} s por medición",
        body.len() / 1024,
        args.connections,
        args.seconds
    );
    let cases: [(&str, SocketAddr, RequestFn, u16); 6] = [
        (
            "GET constante (axum, los mismos bytes y encabezados, el mismo bucle de conexiones)",
            constant,
            request("/constant", None),
            200,
        ),
        (
            "GET /api/v1/public/procedures",
            service,
            request("/api/v1/public/procedures", None),
            200,
        ),
        (
            "GET constante con If-None-Match → 304",
            constant,
            request("/constant", Some(&etag)),
            304,
        ),
        (
            "GET /api/v1/public/procedures con If-None-Match → 304",
            service,
            request("/api/v1/public/procedures", Some(&etag)),
            304,
        ),
        (
            "(referencia) GET \"ok\" en axum solo",
            bare,
            request("/ok", None),
            200,
        ),
        (
            "(referencia) GET /healthz: \"ok\" tras el enrutador y las capas del servicio",
            service,
            request("/healthz", None),
            200,
        ),
    ];
    let mut results: Vec<Vec<Load>> = vec![Vec::new(); cases.len()];
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        for (i, (_, addr, req, expect)) in cases.iter().enumerate() {
            results[i].push(drive(
                *addr,
                args.connections,
                args.seconds,
                *expect,
                req.clone(),
            ));
        }
    }
    println!(
        "| medición | req/s (mediana de {}) | p50 ms | p99 ms | errores | req/s por ronda |",
        args.rounds
    );
    println!("|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    for ((name, ..), loads) in cases.iter().zip(&results) {
        let rate = median(loads.iter().map(Load::per_second).collect());
        rates.push(rate);
        let per_round: Vec<String> = loads
            .iter()
            .map(|l| format!("{:.0}", l.per_second()))
            .collect();
        println!(
            "| {name} | {rate:.0} | {:.2} | {:.2} | {} | {} |",
            median(loads.iter().map(|l| l.percentile_ms(0.50)).collect()),
            median(loads.iter().map(|l| l.percentile_ms(0.99)).collect()),
            loads.iter().map(|l| l.errors).sum::<u64>(),
            per_round.join(", ")
        );
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let full = ratio(rates[1], rates[0]);
    let revalidated = ratio(rates[3], rates[2]);
    println!(
        "Proporción frente a la constante: documento {full:.2}× (objetivo ≥ {TARGET_FULL}), \
         304 {revalidated:.2}× (objetivo ≥ {TARGET_304}); el enrutador y las capas solos: \
         {:.2}×",
        ratio(rates[5], rates[4])
    );
    let met = full >= TARGET_FULL && revalidated >= TARGET_304;
    println!(
        "Objetivos: {}",
        if met { "cumplidos" } else { "NO cumplidos" }
    );
    // Let the served service's workers be dropped with the runtime.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(if met { 0 } else { 1 })
}
