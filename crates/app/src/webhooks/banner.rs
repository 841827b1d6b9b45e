//! The banner check: some time after the agency reports the banner shown, fetch each of
//! the incident's procedure pages on the portal and look for the banner's marker (the
//! embed, script or iframe, or an element marked `data-incidencias-cortinilla`). Bounded
//! in time and size; redirects are followed only within the portal's domains. A page
//! without the marker is recorded on the incident (`banner_not_seen`), which warns the
//! help desk.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use crate::service::{BannerJob, BannerSeen, Service, ServiceError};

/// What shows a procedure's banner is on its page: the embed for that procedure (the
/// script's `data-tramite`, or the iframe's address), or an element the page renders
/// itself marked `data-incidencias-cortinilla` with the homoclave.
pub fn markers(homoclave: &str) -> Vec<String> {
    vec![
        format!("data-tramite=\"{homoclave}\""),
        format!("data-tramite='{homoclave}'"),
        // The iframe's address, ended (SEGOB-01-001 is not SEGOB-01-001-A).
        format!("/embed/cortinilla/{homoclave}\""),
        format!("/embed/cortinilla/{homoclave}'"),
        format!("/embed/cortinilla/{homoclave}?"),
        format!("/embed/cortinilla/{homoclave}#"),
        format!("data-incidencias-cortinilla=\"{homoclave}\""),
        format!("data-incidencias-cortinilla='{homoclave}'"),
    ]
}

/// Why a look found no banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The page answered and does not show it.
    Missing(String),
    /// The page could not tell (see [`BannerSeen::Unknown`]).
    Unknown(String),
}

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
        if settings.domains.is_empty() {
            return Err(
                "sin INCIDENCIAS_PORTAL_ORIGINS no hay páginas del portal que revisar".into(),
            );
        }
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
        Ok(BannerChecker {
            service,
            client,
            owner: super::lease_owner("cortinilla")?,
            settings,
        })
    }

    /// Looks at one procedure's page: `Ok(())` when its banner's marker is there.
    pub async fn look(&self, url: &str, homoclave: &str) -> Result<(), Miss> {
        let wait = super::wait_words(self.settings.timeout);
        let Ok(parsed) = url::Url::parse(url) else {
            return Err(Miss::Unknown(
                "el trámite no tiene una dirección válida en el catálogo".into(),
            ));
        };
        if !parsed
            .host_str()
            .is_some_and(|h| on_portal(&self.settings.domains, h))
        {
            return Err(Miss::Unknown(format!(
                "la página no está en el portal configurado ({})",
                self.settings.domains.join(", ")
            )));
        }
        let wanted = markers(homoclave);
        let longest = wanted.iter().map(String::len).max().unwrap_or(0);
        let fetch = async {
            let mut response = self
                .client
                .get(parsed)
                .send()
                .await
                .map_err(|e| Miss::Unknown(failure(&e, &wait)))?;
            if !response.status().is_success() {
                return Err(Miss::Unknown(format!(
                    "la página respondió con el código {}",
                    response.status().as_u16()
                )));
            }
            let mut body: Vec<u8> = Vec::new();
            loop {
                let chunk = response
                    .chunk()
                    .await
                    .map_err(|e| Miss::Unknown(failure(&e, &wait)))?;
                let Some(chunk) = chunk else {
                    return Err(Miss::Missing(
                        "la página no incluye la cortinilla de este trámite".to_string(),
                    ));
                };
                // Only the new bytes (and a marker's length before them) are searched.
                let from = body.len().saturating_sub(longest);
                let room = self.settings.max_bytes.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                let tail = &body[from..];
                if wanted
                    .iter()
                    .any(|m| tail.windows(m.len()).any(|w| w == m.as_bytes()))
                {
                    return Ok(());
                }
                if body.len() >= self.settings.max_bytes {
                    return Err(Miss::Missing(format!(
                        "la página no incluye la cortinilla de este trámite en sus primeros {} KiB",
                        self.settings.max_bytes / 1024
                    )));
                }
            }
        };
        match tokio::time::timeout(self.settings.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(Miss::Unknown(format!("la página no respondió en {wait}"))),
        }
    }

    /// One check: every page of the incident's procedures.
    async fn check(&self, job: &BannerJob) -> BannerSeen {
        if job.pages.is_empty() {
            return BannerSeen::Unknown(
                String::new(),
                "el trámite no tiene una página registrada".to_string(),
            );
        }
        let mut unknown = None;
        for (homoclave, url) in &job.pages {
            match self.look(url, homoclave).await {
                Ok(()) => {}
                Err(Miss::Missing(detail)) => return BannerSeen::Missing(url.clone(), detail),
                Err(Miss::Unknown(why)) => unknown = Some((url.clone(), why)),
            }
        }
        match unknown {
            Some((url, why)) => BannerSeen::Unknown(url, why),
            None => BannerSeen::Found,
        }
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
            let claimed = std::time::Instant::now();
            let per_page = self.settings.timeout + Duration::from_secs(5);
            for (n, job) in jobs.into_iter().enumerate() {
                // A check that might outlive the lease goes back, for whoever is free;
                // never the first of a batch (it may have more pages than a lease fits:
                // it runs anyway, and a second run by another instance records nothing
                // twice).
                let pages = u32::try_from(job.pages.len().max(1)).unwrap_or(u32::MAX);
                if n > 0 && claimed.elapsed() + per_page.saturating_mul(pages) > lease {
                    self.service
                        .banner_check_released(&job, &self.owner)
                        .await?;
                    continue;
                }
                let seen = self.check(&job).await;
                self.service
                    .banner_check_done(&job, &self.owner, seen)
                    .await?;
                done += 1;
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
            "la revisión de cortinillas",
            wake,
            shutdown,
            || self.drain(),
            || self.service.next_banner_check(),
        )
        .await;
    }
}

/// A failed request in Spanish: what a person can act on, without the library's words.
fn failure(e: &reqwest::Error, wait: &str) -> String {
    if e.is_timeout() {
        format!("la página no respondió en {wait}")
    } else if e.is_redirect() {
        "la página redirige fuera del portal".into()
    } else if e.is_connect() {
        "no se pudo conectar con el servidor de la página".into()
    } else {
        "no se pudo leer la página".into()
    }
}
