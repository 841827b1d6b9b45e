//! The outbox worker: delivers queued emails through SMTP, in order per incident, with a
//! lease (several instances never send the same row at once), exponential backoff, and a
//! dead-letter state after [`MAX_ATTEMPTS`]. Each row keeps its Message-ID, so a re-send
//! after a crash (sent, then killed before it was marked) is the same message, which mail
//! systems recognise as a duplicate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;

use super::smtp::SmtpTarget;

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
    SmtpTarget::from_settings(settings)?;
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

pub struct OutboxWorker {
    service: Service,
    target: SmtpTarget,
    settings: MailSettings,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    owner: String,
    /// A hard bound on one message's whole SMTP exchange (connecting included): a server
    /// that stops answering costs one attempt, not the worker.
    send_timeout: Duration,
    /// Messages sent at once, each on its own connection (one incident's in order on one).
    connections: usize,
    /// Connections kept open between drains.
    idle: std::sync::Mutex<Vec<Pooled>>,
}

/// An open SMTP connection and when it last carried a message.
struct Pooled {
    conn: AsyncSmtpConnection,
    used: Instant,
}

/// A connection idle longer than this is closed rather than reused: servers drop idle
/// clients (RFC 5321 allows 5 minutes), and a send on a dropped one would fail.
const IDLE_REUSE: Duration = Duration::from_secs(30);

/// Accepted messages are marked sent in one write per this many (and at the end of each
/// lane's share). A crash between a send and its mark re-sends at most this many per
/// connection, each with its original Message-ID, which receiving systems recognise as the
/// same message; one write per message made the database, not SMTP, the bottleneck.
const MARK_EVERY: usize = 8;

/// Default number of connections (and messages in flight) per worker.
pub const CONNECTIONS: usize = 4;

/// Default bound on one message's SMTP exchange.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Backoff after the `attempts`-th failure: 2, 4, 8... seconds, at most one hour.
pub fn backoff(attempts: i64) -> SignedDuration {
    let exp = attempts.clamp(1, 12) as u32;
    SignedDuration::from_secs((1i64 << exp).min(3600))
}

impl OutboxWorker {
    pub fn new(service: Service, settings: &MailSettings) -> Result<OutboxWorker, String> {
        let target = SmtpTarget::from_settings(settings)?;
        let (from, reply_to) = addresses(settings)?;
        Ok(OutboxWorker {
            service,
            target,
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
            connections: CONNECTIONS,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Another number of connections than [`CONNECTIONS`] (at least one).
    pub fn with_connections(mut self, connections: usize) -> OutboxWorker {
        self.connections = connections.max(1);
        self
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

    /// How long claimed rows stay ours: room for a minute of sending plus one send that
    /// runs into the time limit, so no row is claimed by another instance while we work.
    fn lease(&self) -> Duration {
        self.send_timeout * 2 + Duration::from_secs(60)
    }

    /// Sends everything due now; returns how many were sent. Each claimed batch is split
    /// by incident; incidents are dealt to up to `connections` lanes that send at once,
    /// each lane on its own connection and one incident's messages in order.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut sent = 0;
        loop {
            // Counted from before the claim: the claim's own wait is part of the lease.
            let claimed = Instant::now();
            let now = self.service.now();
            let lease = self.lease();
            let rows = self
                .service
                .claim_mail(
                    &self.owner,
                    now + SignedDuration::try_from(lease).unwrap_or(SignedDuration::from_mins(3)),
                    i64::try_from(100 * self.connections).unwrap_or(100),
                    &self.settings.base_url,
                )
                .await?;
            if rows.is_empty() {
                return Ok(sent);
            }
            // Per incident, in the order claimed; mail of no incident goes alone.
            let mut groups: Vec<Vec<OutgoingMail>> = Vec::new();
            let mut of_folio: HashMap<String, usize> = HashMap::new();
            for row in rows {
                match row.folio.clone() {
                    Some(folio) => match of_folio.get(&folio) {
                        Some(&i) => groups[i].push(row),
                        None => {
                            of_folio.insert(folio, groups.len());
                            groups.push(vec![row]);
                        }
                    },
                    None => groups.push(vec![row]),
                }
            }
            let lanes = self.connections.min(groups.len()).max(1);
            let mut dealt: Vec<Vec<Vec<OutgoingMail>>> = (0..lanes).map(|_| Vec::new()).collect();
            for (i, group) in groups.into_iter().enumerate() {
                dealt[i % lanes].push(group);
            }
            let hung = AtomicBool::new(false);
            let outcomes = futures_util::future::join_all(
                dealt
                    .into_iter()
                    .map(|groups| self.lane(groups, claimed, lease, &hung)),
            )
            .await;
            let mut progressed = false;
            for outcome in outcomes {
                let (n, moved) = outcome?;
                sent += n;
                progressed |= moved;
            }
            if !progressed || hung.load(Ordering::SeqCst) {
                return Ok(sent);
            }
        }
    }

    /// Sends `groups` (each one incident's messages, in order) on one connection; returns
    /// how many were sent and whether any was.
    async fn lane(
        &self,
        groups: Vec<Vec<OutgoingMail>>,
        claimed: Instant,
        lease: Duration,
        hung: &AtomicBool,
    ) -> Result<(usize, bool), ServiceError> {
        let mut conn = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (mut sent, mut progressed) = (0, false);
        // Accepted by the server, not yet marked sent.
        let mut accepted = Vec::with_capacity(MARK_EVERY);
        for group in groups {
            // An incident whose earlier mail failed keeps its later mail back.
            let mut blocked = false;
            for row in group {
                // Rows go back to the queue, not to another sender, when this batch could
                // outlive its lease, when the server hung, or behind a failed row.
                let out_of_time =
                    claimed.elapsed() + self.send_timeout + Duration::from_secs(10) > lease;
                if hung.load(Ordering::SeqCst) || out_of_time || blocked {
                    self.service.mail_released(row.id, &self.owner).await?;
                    continue;
                }
                let result = match self.message(&row) {
                    Ok(m) => self.send_on(&mut conn, &m, hung).await,
                    Err(e) => Err(e),
                };
                let now = self.service.now();
                match result {
                    Ok(()) => {
                        accepted.push(row.id);
                        if accepted.len() >= MARK_EVERY {
                            self.service.mail_sent(&accepted).await?;
                            accepted.clear();
                        }
                        sent += 1;
                        progressed = true;
                    }
                    Err(e) => {
                        blocked = true;
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
        }
        self.service.mail_sent(&accepted).await?;
        if let Some(c) = conn
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.connections
        {
            idle.push(c);
        }
        Ok((sent, progressed))
    }

    /// Sends `message` on `slot`'s connection (a new one when it has none, it broke or it
    /// sat idle too long), within the send time limit. A connection that failed or timed
    /// out is dropped: it may still owe a reply, and reusing it could pair answers with
    /// the wrong commands.
    async fn send_on(
        &self,
        slot: &mut Option<Pooled>,
        message: &Message,
        hung: &AtomicBool,
    ) -> Result<(), String> {
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let reusable = slot
            .take()
            .filter(|p| !p.conn.has_broken() && p.used.elapsed() < IDLE_REUSE);
        let exchange = async {
            let mut pooled = match reusable {
                Some(p) => p,
                None => Pooled {
                    conn: self.target.connect_unbounded().await?,
                    used: Instant::now(),
                },
            };
            pooled
                .conn
                .send(&envelope, &bytes)
                .await
                .map_err(|e| e.to_string())?;
            pooled.used = Instant::now();
            Ok::<Pooled, String>(pooled)
        };
        match tokio::time::timeout(self.send_timeout, exchange).await {
            Ok(Ok(pooled)) => {
                *slot = Some(pooled);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                hung.store(true, Ordering::SeqCst);
                Err(format!(
                    "el servidor SMTP dejó de responder ({} s sin terminar el envío)",
                    self.send_timeout.as_secs()
                ))
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
