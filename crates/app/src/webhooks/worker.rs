//! Sends the webhook deliveries the events wrote: signed, leased (several instances never
//! send the same delivery at once), retried with exponential backoff, dead after
//! [`WebhookSettings::max_attempts`], in order per subscription and incident. Every
//! attempt is recorded (the delivery log). At least once: a receiver tells a retry by its
//! `webhook-id`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;

use crate::service::{AttemptOutcome, Service, ServiceError, WebhookJob};

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Bound on one request, connection included.
    pub timeout: Duration,
    /// The first retry waits this long; each next one twice as long, at most an hour.
    pub retry_base: Duration,
    /// After this many failed attempts a delivery is dead (an administrator may send it
    /// again).
    pub max_attempts: i64,
    /// Extra trusted authorities (INCIDENCIAS_TLS_CA_FILE).
    pub ca_pem: Option<Vec<u8>>,
    /// Send to internal addresses too (INCIDENCIAS_WEBHOOK_ALLOW_INTERNAL; see
    /// [`super::address`]). Off by default.
    pub allow_internal: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(5),
            max_attempts: 8,
            ca_pem: None,
            allow_internal: false,
        }
    }
}

impl WebhookSettings {
    /// The wait after the `attempts`-th failure.
    pub fn backoff(&self, attempts: i64) -> SignedDuration {
        let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let wait = self
            .retry_base
            .saturating_mul(1u32 << exp.min(16))
            .min(Duration::from_secs(3600));
        SignedDuration::try_from(wait).unwrap_or(SignedDuration::from_hours(1))
    }
}

/// An HTTP client for our outgoing requests: our TLS settings, no redirects followed
/// unless `redirects` allows them, bounded in time.
pub fn http_client(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, String> {
    http_builder(ca_pem, timeout, redirects)?
        .build()
        .map_err(|e| format!("no se pudo preparar el cliente HTTP: {e}"))
}

/// The messages of `e` and of its sources, joined: what a resolver said is inside.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        out.push(err.to_string());
        next = err.source();
    }
    out.into_iter()
        .find(|m| m.contains("es interna"))
        .unwrap_or_default()
}

/// [`http_client`] before it is built, for a caller that adds to it.
fn http_builder(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::ClientBuilder, String> {
    let tls = crate::mail::tls_config(ca_pem)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(redirects)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("incidencias/", env!("CARGO_PKG_VERSION"))))
}

pub struct WebhookWorker {
    service: Service,
    client: reqwest::Client,
    settings: WebhookSettings,
    owner: String,
}

impl WebhookWorker {
    pub fn new(service: Service, settings: WebhookSettings) -> Result<WebhookWorker, String> {
        let mut client = http_builder(
            settings.ca_pem.as_deref(),
            settings.timeout,
            reqwest::redirect::Policy::none(),
        )?;
        if !settings.allow_internal {
            client = client.dns_resolver(Arc::new(super::address::PublicOnly));
        }
        let client = client
            .build()
            .map_err(|e| format!("no se pudo preparar el cliente HTTP: {e}"))?;
        Ok(WebhookWorker {
            service,
            client,
            owner: super::lease_owner("webhooks")?,
            settings,
        })
    }

    fn lease(&self) -> Duration {
        self.settings.timeout * 4 + Duration::from_secs(60)
    }

    /// One POST, signed; its outcome.
    async fn send(&self, job: &WebhookJob) -> (Result<(), String>, AttemptOutcome) {
        let started = Instant::now();
        let at = self.service.now();
        let timestamp = at.as_second();
        let body = job.delivery.payload.as_bytes();
        let secrets: Vec<&str> = job.secrets.iter().map(String::as_str).collect();
        let internal = if self.settings.allow_internal {
            None
        } else {
            super::address::literal_refusal(&job.url)
        };
        let signed = match internal {
            Some(why) => Err(why),
            None => {
                crate::webhooks::signatures(&secrets, &job.delivery.message_id, timestamp, body)
            }
        };
        let result = match signed {
            Err(e) => Err((None, e)),
            Ok(signature) => {
                let request = self
                    .client
                    .post(&job.url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &job.delivery.message_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(job.delivery.payload.clone());
                match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(i64::from(r.status().as_u16())),
                    Ok(r) => Err((
                        Some(i64::from(r.status().as_u16())),
                        format!(
                            "el receptor respondió con el código {}",
                            r.status().as_u16()
                        ),
                    )),
                    Err(e) if e.is_timeout() => Err((
                        None,
                        format!(
                            "el receptor no respondió en {}",
                            super::wait_words(self.settings.timeout)
                        ),
                    )),
                    // The resolver's refusal of a name that resolves only internally.
                    Err(e) if e.is_connect() && error_chain(&e).contains("es interna") => {
                        Err((None, error_chain(&e)))
                    }
                    Err(e) if e.is_connect() => {
                        Err((None, "no se pudo conectar con el receptor".to_string()))
                    }
                    Err(e) if e.is_redirect() => Err((
                        None,
                        "el receptor respondió con una redirección (no se siguen)".to_string(),
                    )),
                    Err(_) => Err((None, "el envío al receptor se interrumpió".to_string())),
                }
            }
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok(status) => (
                Ok(()),
                AttemptOutcome {
                    at,
                    status: Some(status),
                    error: None,
                    duration_ms,
                },
            ),
            Err((status, error)) => (
                Err(error.clone()),
                AttemptOutcome {
                    at,
                    status,
                    error: Some(error),
                    duration_ms,
                },
            ),
        }
    }

    /// Sends everything due now; returns how many were delivered.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut delivered = 0;
        loop {
            let claimed = Instant::now();
            let lease = self.lease();
            let until = self.service.now()
                + SignedDuration::try_from(lease).unwrap_or(SignedDuration::from_mins(2));
            let jobs = self.service.claim_webhooks(&self.owner, until, 50).await?;
            if jobs.is_empty() {
                return Ok(delivered);
            }
            // A failed delivery holds back the later ones of its subscription and incident.
            let mut blocked: HashSet<(i64, Option<String>)> = HashSet::new();
            let mut progressed = false;
            for job in jobs {
                let key = (job.delivery.subscription_id, job.delivery.folio.clone());
                let out_of_time =
                    claimed.elapsed() + self.settings.timeout + Duration::from_secs(10) > lease;
                if out_of_time || blocked.contains(&key) {
                    self.service
                        .webhook_released(job.delivery.id, &self.owner)
                        .await?;
                    continue;
                }
                let (result, outcome) = self.send(&job).await;
                match result {
                    Ok(()) => {
                        self.service
                            .webhook_attempted(job.delivery.id, &self.owner, outcome, true, None)
                            .await?;
                        delivered += 1;
                        progressed = true;
                    }
                    Err(e) => {
                        blocked.insert(key);
                        let attempts = job.delivery.attempts + 1;
                        tracing::warn!(
                            id = job.delivery.id,
                            subscription = job.delivery.subscription_id,
                            attempts,
                            error = %e,
                            "no se pudo entregar un webhook"
                        );
                        let next = (attempts < self.settings.max_attempts)
                            .then(|| self.service.now() + self.settings.backoff(attempts));
                        self.service
                            .webhook_attempted(job.delivery.id, &self.owner, outcome, false, next)
                            .await?;
                    }
                }
            }
            if !progressed {
                return Ok(delivered);
            }
        }
    }

    /// Runs until `shutdown` (see [`crate::polling`]).
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        crate::polling::drain_until(
            &self.service,
            "la entrega de webhooks",
            wake,
            shutdown,
            || self.drain(),
            || self.service.next_webhook_attempt(),
        )
        .await;
    }
}
