//! The banner check: some time after the agency reports the banner shown, fetch each of
//! the incident's procedure pages on the portal and look for the banner's marker (the
//! embed, script or iframe, or an element marked `data-incidencias-cortinilla`). Bounded
//! in time and size; redirects are followed only within the portal's domains. A page
//! without the marker is recorded on the incident (`banner_not_seen`), which warns the
//! help desk.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use crate::service::{BannerJob, Service, ServiceError};

/// What shows the banner is on a page: the embed's address (both variants) or the
/// attribute the script's notice carries (for a page that renders its own).
pub const MARKERS: [&str; 2] = ["/embed/cortinilla", "data-incidencias-cortinilla"];

/// How a page is fetched.
#[derive(Debug, Clone)]
pub struct BannerCheckSettings {
    /// The portal's hosts (from INCIDENCIAS_PORTAL_ORIGINS): pages and redirects only there
    /// (a host or any of its subdomains).
    pub domains: Vec<String>,
    /// Bound on the whole fetch.
    pub timeout: Duration,
    /// At most this much of a page is read.
    pub max_bytes: usize,
    pub ca_pem: Option<Vec<u8>>,
}

impl BannerCheckSettings {
    pub fn new(portal_origins: &[String], ca_pem: Option<Vec<u8>>) -> BannerCheckSettings {
        BannerCheckSettings {
            domains: portal_origins
                .iter()
                .filter_map(|o| url::Url::parse(o).ok())
                .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
                .collect(),
            timeout: Duration::from_secs(10),
            max_bytes: 2 * 1024 * 1024,
            ca_pem,
        }
    }
}

/// Whether `host` is one of `domains` or under one of them.
fn on_portal(domains: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    domains
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

pub struct BannerChecker {
    service: Service,
    client: reqwest::Client,
    settings: BannerCheckSettings,
    owner: String,
}

impl BannerChecker {
    pub fn new(service: Service, settings: BannerCheckSettings) -> Result<BannerChecker, String> {
        let domains = settings.domains.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let allowed = attempt
                .url()
                .host_str()
                .is_some_and(|h| on_portal(&domains, h));
            if attempt.previous().len() >= 5 {
                attempt.error("demasiadas redirecciones")
            } else if allowed {
                attempt.follow()
            } else {
                attempt.error("redirección fuera del portal")
            }
        });
        let client =
            super::worker::http_client(settings.ca_pem.as_deref(), settings.timeout, redirects)?;
        let mut nonce = [0u8; 6];
        getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
        Ok(BannerChecker {
            service,
            client,
            owner: format!("cortinilla-{}", crate::encoding::hex(&nonce)),
            settings,
        })
    }

    /// Looks at one page: `Ok(())` when the marker is there, or what was seen instead.
    pub async fn look(&self, url: &str) -> Result<(), String> {
        let parsed = url::Url::parse(url)
            .map_err(|_| "la dirección del trámite no es válida".to_string())?;
        if !parsed
            .host_str()
            .is_some_and(|h| on_portal(&self.settings.domains, h))
        {
            return Err(format!(
                "la página no está en el portal configurado ({})",
                self.settings.domains.join(", ")
            ));
        }
        let fetch = async {
            let mut response = self.client.get(parsed).send().await.map_err(|e| {
                if e.is_redirect() {
                    "la página redirige fuera del portal".to_string()
                } else if e.is_timeout() {
                    format!(
                        "la página no respondió en {}",
                        super::wait_words(self.settings.timeout)
                    )
                } else {
                    format!("no se pudo abrir la página: {e}")
                }
            })?;
            if !response.status().is_success() {
                return Err(format!("la página respondió {}", response.status()));
            }
            let mut body: Vec<u8> = Vec::new();
            loop {
                let chunk = response.chunk().await.map_err(|e| {
                    if e.is_timeout() {
                        format!(
                            "la página no terminó de llegar en {}",
                            super::wait_words(self.settings.timeout)
                        )
                    } else {
                        format!("la página se interrumpió: {e}")
                    }
                })?;
                let Some(chunk) = chunk else {
                    return Err("la página no muestra la cortinilla".to_string());
                };
                // Only the new bytes (and a marker's length before them) are searched.
                let from = body.len().saturating_sub(64);
                let room = self.settings.max_bytes.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                let tail = &body[from..];
                if MARKERS
                    .iter()
                    .any(|m| tail.windows(m.len()).any(|w| w == m.as_bytes()))
                {
                    return Ok(());
                }
                if body.len() >= self.settings.max_bytes {
                    return Err(format!(
                        "la página no muestra la cortinilla en sus primeros {} KiB",
                        self.settings.max_bytes / 1024
                    ));
                }
            }
        };
        match tokio::time::timeout(self.settings.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "la página no respondió en {}",
                super::wait_words(self.settings.timeout)
            )),
        }
    }

    /// One check: every page of the incident's procedures.
    async fn check(&self, job: &BannerJob) -> Result<(), ServiceError> {
        let mut missing = None;
        for (_, url) in &job.pages {
            if let Err(detail) = self.look(url).await {
                missing = Some((url.clone(), detail));
                break;
            }
        }
        if job.pages.is_empty() {
            missing = Some((
                String::new(),
                "el trámite no tiene una página registrada".to_string(),
            ));
        }
        self.service.banner_check_done(job, missing).await
    }

    /// Runs every check due now; returns how many ran.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut done = 0;
        loop {
            let lease = self.settings.timeout * 4 + Duration::from_secs(30);
            let until = self.service.now()
                + SignedDuration::try_from(lease).unwrap_or(SignedDuration::from_mins(2));
            let jobs = self
                .service
                .claim_banner_checks(&self.owner, until, 10)
                .await?;
            if jobs.is_empty() {
                return Ok(done);
            }
            for job in jobs {
                self.check(&job).await?;
                done += 1;
            }
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = self.drain().await {
                tracing::error!(error = %e, "error al revisar cortinillas");
            }
            let now = self.service.now();
            let sleep = match self.service.next_banner_check().await {
                Ok(Some(t)) => Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO),
                Ok(None) => Duration::from_secs(3600),
                Err(_) => Duration::from_secs(5),
            }
            .min(Duration::from_secs(30))
            .max(Duration::from_millis(50));
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = &mut notified => {}
                () = &mut shutdown => return,
            }
        }
    }
}
