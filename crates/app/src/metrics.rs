//! Operators' metrics at `GET /metrics` (OpenMetrics text, which Prometheus reads), kept by
//! the `prometheus-client` crate. What the process observes as it works (HTTP requests by
//! route and status with their latency, how late each timer fired) is recorded where it
//! happens; what the database holds (open incidents by state and severity, clocks breached,
//! outbox depth and age, the triage queue) is read at each scrape, so every instance
//! behind a shared PostgreSQL reports the same figures.
//!
//! Exposed only when a token is configured (`INCIDENCIAS_METRICS_TOKEN`): the scraper sends
//! it as `Authorization: Bearer ...`. Without a token `/metrics` does not exist (404).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::store::OperationalFigures;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpenLabels {
    state: String,
    severity: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily<HttpLabels>,
    timer_lateness: Histogram,
    open_incidents: Family<OpenLabels, Gauge>,
    clocks_breached: Counter,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    triage_depth: Gauge,
    /// Serialises the scrape-time update and encoding (two scrapes at once would race on
    /// the breached counter's catch-up).
    scrape: tokio::sync::Mutex<()>,
}

/// The one set of metrics of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("incidencias");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_latency: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route and status",
            http_latency.clone(),
        );
        // 10 ms to about 80 s.
        let timer_lateness = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "timer_lateness_seconds",
            "How long after its due instant each SLO action (warning, breach, escalation) fired",
            timer_lateness.clone(),
        );
        let open_incidents = Family::<OpenLabels, Gauge>::default();
        registry.register(
            "open_incidents",
            "Incidents neither closed nor dismissed, by state and severity",
            open_incidents.clone(),
        );
        let clocks_breached = Counter::default();
        registry.register(
            "clocks_breached",
            "SLO clocks whose running time reached their target, of incidents not dismissed",
            clocks_breached.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_pending",
            "Emails waiting in the outbox to be sent",
            outbox_depth.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest email waiting in the outbox (0: none)",
            outbox_oldest_age.clone(),
        );
        let triage_depth = Gauge::default();
        registry.register(
            "inbound_triage_pending",
            "Received emails awaiting the help desk's review",
            triage_depth.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_latency,
            timer_lateness,
            open_incidents,
            clocks_breached,
            outbox_depth,
            outbox_oldest_age,
            triage_depth,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// One answered request.
    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(seconds);
    }

    /// One SLO action fired `seconds` after it was due.
    pub fn timer_fired(&self, seconds: f64) {
        self.timer_lateness.observe(seconds.max(0.0));
    }

    fn set_figures(&self, f: &OperationalFigures) {
        self.open_incidents.clear();
        for (state, severity, n) in &f.open {
            self.open_incidents
                .get_or_create(&OpenLabels {
                    state: state.clone(),
                    severity: severity.clone().unwrap_or_else(|| "none".into()),
                })
                .set(*n);
        }
        // A counter only grows: it catches up with the database's count.
        let seen = self.clocks_breached.get();
        let now = u64::try_from(f.clocks_breached).unwrap_or(0);
        if now > seen {
            self.clocks_breached.inc_by(now - seen);
        }
        self.outbox_depth.set(f.outbox_pending);
        self.outbox_oldest_age.set(f.outbox_oldest_age_s);
        self.triage_depth.set(f.triage_pending);
    }

    /// The text a scrape answers, with the database's figures `f`.
    pub async fn encode(&self, f: &OperationalFigures) -> Result<String, std::fmt::Error> {
        let _one = self.scrape.lock().await;
        self.set_figures(f);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware (a route layer, so the route is the matched pattern, never a raw path with
/// folios or tokens in it): counts and times every request.
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "otra".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics().http(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Equal, in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(token) = state.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !given.is_some_and(|g| same_secret(g, token)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "se requiere el token de métricas (Authorization: Bearer ...)\n",
        )
            .into_response();
    }
    let figures = match state.service.operational_figures().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "no se pudieron leer las cifras para /metrics");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match metrics().encode(&figures).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
