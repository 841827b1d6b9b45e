//! The outbox worker: delivers queued emails through SMTP, in order per incident, with a
//! lease (several instances never send the same row at once), exponential backoff, and a
//! dead-letter state after [`MAX_ATTEMPTS`]. Each row keeps its Message-ID, so a re-send
//! after a crash (sent, then killed before it was marked) is the same message, which mail
//! systems recognise as a duplicate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::service::{OutgoingMail, Service, ServiceError};

/// `Auto-Submitted: auto-generated` (RFC 3834): tells mail systems these messages come
/// from a program, so vacation responders do not answer them (and loops cannot start).
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Attempts before a row is set aside as dead (`incidencias outbox retry` revives it).
pub const MAX_ATTEMPTS: i64 = 10;

/// Where and as whom mail is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://host:587?tls=required` (STARTTLS) or
    /// `smtps://user:password@host:465` (TLS).
    pub smtp_url: String,
    pub from: String,
    pub reply_to: Option<String>,
    /// Base of the links in the emails.
    pub base_url: String,
    /// Extra trusted certificate authorities (PEM), for a server whose certificate an
    /// internal CA signed; the public roots stay trusted.
    pub ca_pem: Option<Vec<u8>>,
}

/// Checks `settings` (URL, CA file, From, Reply-To) without connecting.
pub fn check_settings(settings: &MailSettings) -> Result<(), String> {
    transport(settings)?;
    addresses(settings)?;
    Ok(())
}

/// From and Reply-To of `settings`, parsed.
fn addresses(settings: &MailSettings) -> Result<(Mailbox, Option<Mailbox>), String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("remitente no válido «{}»: {e}", settings.from))?;
    let reply_to = match &settings.reply_to {
        Some(r) => Some(
            r.parse()
                .map_err(|e| format!("Reply-To no válido «{r}»: {e}"))?,
        ),
        None => None,
    };
    Ok((from, reply_to))
}

/// The transport for `settings`: lettre reads the URL; an extra CA replaces the TLS
/// parameters with ones that also trust it, in the same mode the URL asked for.
fn transport(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
        .map_err(|e| format!("INCIDENCIAS_SMTP_URL no válida: {e}"))?
        .timeout(Some(Duration::from_secs(20)));
    if let Some(pem) = &settings.ca_pem {
        let url = url::Url::parse(&settings.smtp_url)
            .map_err(|e| format!("INCIDENCIAS_SMTP_URL no válida: {e}"))?;
        let host = url.host_str().unwrap_or_default().to_string();
        super::ca_certificates(pem)?;
        let cert = Certificate::from_pem(pem)
            .map_err(|e| format!("los certificados de autoridad no son PEM válidos: {e}"))?;
        let params = TlsParameters::builder(host)
            .add_root_certificate(cert)
            .build()
            .map_err(|e| format!("configuración TLS no válida: {e}"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        builder = match (url.scheme(), tls.as_deref()) {
            ("smtps", _) => builder.tls(Tls::Wrapper(params)),
            (_, Some("required")) => builder.tls(Tls::Required(params)),
            (_, Some("opportunistic")) => builder.tls(Tls::Opportunistic(params)),
            _ => builder,
        };
    }
    Ok(builder.build())
}

pub struct OutboxWorker {
    service: Service,
    /// Replaced after a timed-out send: its pooled connection may still owe a reply, and
    /// reusing it could pair answers with the wrong commands.
    transport: std::sync::Mutex<AsyncSmtpTransport<Tokio1Executor>>,
    settings: MailSettings,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    owner: String,
    /// A hard bound on one message's whole SMTP exchange: a server that stops answering
    /// (lettre's own timeout does not cover every read) costs one attempt, not the worker.
    send_timeout: Duration,
}

/// Default bound on one message's SMTP exchange.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Backoff after the `attempts`-th failure: 2, 4, 8... seconds, at most one hour.
pub fn backoff(attempts: i64) -> SignedDuration {
    let exp = attempts.clamp(1, 12) as u32;
    SignedDuration::from_secs((1i64 << exp).min(3600))
}

impl OutboxWorker {
    pub fn new(service: Service, settings: &MailSettings) -> Result<OutboxWorker, String> {
        let transport = transport(settings)?;
        let (from, reply_to) = addresses(settings)?;
        Ok(OutboxWorker {
            service,
            transport: std::sync::Mutex::new(transport),
            settings: settings.clone(),
            from,
            reply_to,
            // Unique per worker, also where every instance is process 1 (containers).
            owner: format!("mail-{}-{:016x}", std::process::id(), {
                let mut bytes = [0u8; 8];
                let _ = getrandom::fill(&mut bytes);
                u64::from_le_bytes(bytes)
            }),
            send_timeout: SEND_TIMEOUT,
        })
    }

    /// Another bound on one message's SMTP exchange than [`SEND_TIMEOUT`].
    pub fn with_send_timeout(mut self, limit: Duration) -> OutboxWorker {
        self.send_timeout = limit;
        self
    }

    /// The email a claimed message becomes (public for the benchmark's baseline).
    pub fn message_for(&self, mail: &OutgoingMail) -> Result<Message, String> {
        self.message(mail)
    }

    fn message(&self, row: &OutgoingMail) -> Result<Message, String> {
        let r = row.content.clone()?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(r.subject)
            .message_id(Some(row.message_id.clone()))
            .header(AutoSubmitted);
        if let Some(rt) = &self.reply_to {
            b = b.reply_to(rt.clone());
        }
        for to in &row.to {
            b = b.to(to
                .parse()
                .map_err(|e| format!("destinatario no válido {to}: {e}"))?);
        }
        for cc in &row.cc {
            b = b.cc(cc
                .parse()
                .map_err(|e| format!("copia no válida {cc}: {e}"))?);
        }
        b.multipart(MultiPart::alternative_plain_html(r.text, r.html))
            .map_err(|e| format!("no se pudo armar el correo: {e}"))
    }

    fn current_transport(&self) -> Option<AsyncSmtpTransport<Tokio1Executor>> {
        self.transport.lock().ok().map(|t| t.clone())
    }

    /// A fresh transport (new connections) in place of one whose connection hung.
    fn renew_transport(&self) {
        match transport(&self.settings) {
            Ok(fresh) => {
                if let Ok(mut t) = self.transport.lock() {
                    *t = fresh;
                }
            }
            Err(e) => tracing::error!(error = %e, "no se pudo renovar la conexión SMTP"),
        }
    }

    /// How long claimed rows stay ours: room for a minute of sending plus one send that
    /// runs into the time limit, so no row is claimed by another instance while we work.
    fn lease(&self) -> Duration {
        self.send_timeout * 2 + Duration::from_secs(60)
    }

    /// Sends everything due now; returns how many were sent.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut sent = 0;
        loop {
            // Counted from before the claim: the claim's own wait is part of the lease.
            let claimed = std::time::Instant::now();
            let now = self.service.now();
            let lease = self.lease();
            let rows = self
                .service
                .claim_mail(
                    &self.owner,
                    now + SignedDuration::try_from(lease).unwrap_or(SignedDuration::from_mins(3)),
                    100,
                    &self.settings.base_url,
                )
                .await?;
            if rows.is_empty() {
                return Ok(sent);
            }
            let mut hung = false;
            // An incident whose earlier mail failed keeps its later mail back: per incident,
            // messages arrive in order.
            let mut blocked: HashSet<String> = HashSet::new();
            let mut progressed = false;
            for row in rows {
                let folio = row.folio.clone().unwrap_or_default();
                // Rows go back to the queue, not to another sender, when this batch could
                // outlive its lease, when the server hung, or behind a failed row.
                let out_of_time =
                    claimed.elapsed() + self.send_timeout + Duration::from_secs(10) > lease;
                if hung || out_of_time || blocked.contains(&folio) {
                    self.service.mail_released(row.id, &self.owner).await?;
                    continue;
                }
                let result = match (self.message(&row), self.current_transport()) {
                    (Ok(m), Some(transport)) => {
                        match tokio::time::timeout(self.send_timeout, transport.send(m)).await {
                            Ok(sent) => sent.map(|_| ()).map_err(|e| e.to_string()),
                            Err(_) => {
                                hung = true;
                                self.renew_transport();
                                Err(format!(
                                    "el servidor SMTP dejó de responder ({} s sin terminar el envío)",
                                    self.send_timeout.as_secs()
                                ))
                            }
                        }
                    }
                    (Ok(_), None) => Err("la conexión SMTP no está disponible".into()),
                    (Err(e), _) => Err(e),
                };
                let now = self.service.now();
                match result {
                    Ok(()) => {
                        self.service.mail_sent(row.id).await?;
                        sent += 1;
                        progressed = true;
                    }
                    Err(e) => {
                        blocked.insert(folio);
                        let attempts = row.attempts + 1;
                        tracing::warn!(id = row.id, attempts, error = %e, "no se pudo enviar un correo");
                        self.service
                            .mail_failed(
                                row.id,
                                &self.owner,
                                now + backoff(attempts),
                                e,
                                attempts >= MAX_ATTEMPTS,
                            )
                            .await?;
                    }
                }
            }
            if !progressed || hung {
                return Ok(sent);
            }
        }
    }

    /// Runs until `shutdown`: drains, then sleeps until the next attempt is due or a write
    /// queues mail (see [`crate::polling`]).
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        crate::polling::drain_until(
            &self.service,
            "la bandeja de salida",
            wake,
            shutdown,
            || self.drain(),
            || self.service.next_mail_attempt(),
        )
        .await;
    }
}
