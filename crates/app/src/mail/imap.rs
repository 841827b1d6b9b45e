//! IMAP polling with IDLE (`INCIDENCIAS_IMAP_URL`): every unread message in the help
//! desk's mailbox is taken exactly as a message piped by the MTA, then flagged `\Seen`.
//!
//! Order matters for "nothing lost": the message is recorded first and flagged after, so a
//! crash or a cut connection in between reads it again; ingest recognises the same bytes
//! and answers what it did the first time, so it never acts twice. A message that cannot
//! be read is kept in the triage queue with the reason, not retried forever. Between
//! batches the session waits in IDLE, so a reply is taken within moments of arriving; the
//! IDLE is renewed every few minutes (servers drop it after 30) and any failure reconnects
//! with a growing pause (1 s up to a minute).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::service::Service;

/// How the mailbox is reached.
#[derive(Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    /// How long one IDLE lasts before it is renewed.
    pub idle_renewal: Duration,
    /// Extra trusted certificate authorities (PEM) besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// Transport security of the IMAP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `imap://` on a trusted network (or localhost).
    Plain,
    /// `imap://…?tls=required`: STARTTLS, refused if the server does not offer it.
    StartTls,
    /// `imaps://`: TLS from the first byte.
    Tls,
}

impl fmt::Debug for ImapSettings {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

fn decoded(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "la dirección IMAP tiene caracteres mal codificados".to_string())
}

impl ImapSettings {
    /// Reads `imap://usuario:contraseña@host:143/INBOX`, `imap://…?tls=required`
    /// (STARTTLS) or `imaps://usuario:contraseña@host:993/INBOX`. Errors in Spanish.
    pub fn from_url(text: &str) -> Result<ImapSettings, String> {
        let url = url::Url::parse(text).map_err(|e| format!("dirección IMAP no válida: {e}"))?;
        let (mut security, default_port) = match url.scheme() {
            "imap" => (Security::Plain, 143),
            "imaps" => (Security::Tls, 993),
            other => {
                return Err(format!(
                    "la dirección IMAP debe empezar con imap:// o imaps://, no {other}://"
                ));
            }
        };
        let mut idle_renewal = Duration::from_secs(10 * 60);
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("tls", "required") if security == Security::Plain => security = Security::StartTls,
                ("tls", "required") => {}
                ("tls", other) => {
                    return Err(format!(
                        "tls={other} no se reconoce en la dirección IMAP; use tls=required"
                    ));
                }
                ("idle", secs) => match secs.parse::<u64>() {
                    Ok(s) if (1..=1740).contains(&s) => idle_renewal = Duration::from_secs(s),
                    _ => {
                        return Err(
                            "idle debe ser un número de segundos entre 1 y 1740 (29 minutos)"
                                .into(),
                        );
                    }
                },
                (other, _) => {
                    return Err(format!(
                        "el parámetro {other} no se reconoce en la dirección IMAP"
                    ));
                }
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("la dirección IMAP no indica el servidor")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let user = decoded(url.username())?;
        if user.is_empty() {
            return Err(
                "la dirección IMAP no indica el usuario (imap://usuario:contraseña@…)".into(),
            );
        }
        let password = decoded(url.password().unwrap_or_default())?;
        let mailbox = decoded(url.path().trim_start_matches('/'))?;
        Ok(ImapSettings {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            user,
            password,
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
            idle_renewal,
            ca_pem: None,
        })
    }
}

/// Any byte stream the IMAP client can run over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

/// Why a session ended early (it is then opened again).
#[derive(Debug)]
pub struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<async_imap::error::Error> for Failure {
    fn from(e: async_imap::error::Error) -> Failure {
        Failure(format!("IMAP: {e}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure(format!("conexión IMAP: {e}"))
    }
}

impl From<crate::service::ServiceError> for Failure {
    fn from(e: crate::service::ServiceError) -> Failure {
        Failure(format!("al registrar el correo: {e}"))
    }
}

/// The public roots plus the extra authorities of `ca_pem`.
fn tls_connector(ca_pem: Option<&[u8]>) -> Result<tokio_rustls::TlsConnector, Failure> {
    let config = super::tls_config(ca_pem).map_err(Failure)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls(settings: &ImapSettings, tcp: TcpStream) -> Result<Box<dyn Io>, Failure> {
    let host = &settings.host;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| Failure(format!("nombre de servidor no válido para TLS: {host}")))?;
    let stream = tls_connector(settings.ca_pem.as_deref())?
        .connect(name, tcp)
        .await?;
    Ok(Box::new(stream))
}

/// Opens, authenticates and selects the mailbox.
async fn open(settings: &ImapSettings) -> Result<(Session, Option<u32>), Failure> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    .map_err(|_| Failure("el servidor IMAP no respondió en 30 s".into()))??;
    let _ = tcp.set_nodelay(true);
    let client = match settings.security {
        Security::Tls => {
            let mut client = async_imap::Client::new(tls(settings, tcp).await?);
            greeting(&mut client).await?;
            client
        }
        Security::Plain => {
            let mut client = async_imap::Client::new(Box::new(tcp) as Box<dyn Io>);
            greeting(&mut client).await?;
            client
        }
        Security::StartTls => {
            let mut plain = async_imap::Client::new(tcp);
            greeting(&mut plain).await?;
            plain
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| Failure(format!("el servidor IMAP no aceptó STARTTLS: {e}")))?;
            // No second greeting after STARTTLS (RFC 3501, 6.2.1).
            async_imap::Client::new(tls(settings, plain.into_inner()).await?)
        }
    };
    let mut session = client
        .login(&settings.user, &settings.password)
        .await
        .map_err(|(e, _)| Failure(format!("el servidor IMAP rechazó el acceso: {e}")))?;
    let mailbox = session.select(&settings.mailbox).await.map_err(|e| {
        Failure(format!(
            "no se pudo abrir el buzón {}: {e}",
            settings.mailbox
        ))
    })?;
    Ok((session, mailbox.uid_validity))
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug>(
    client: &mut async_imap::Client<T>,
) -> Result<(), Failure> {
    client
        .read_response()
        .await?
        .ok_or_else(|| Failure("el servidor IMAP cerró la conexión sin saludar".into()))?;
    Ok(())
}

/// How long one IMAP exchange (opening, a search, reading one message) may take before
/// the connection is given up and opened again.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(120);

/// `work` within [`EXCHANGE_LIMIT`], or a failure naming `what`.
async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(EXCHANGE_LIMIT, work)
        .await
        .map_err(|_| {
            Failure(format!(
                "el servidor IMAP no respondió en {} s al {what}",
                EXCHANGE_LIMIT.as_secs()
            ))
        })
}

/// `UID FETCH uid query`, bounded; `what` names it in a failure.
async fn fetch(
    session: &mut Session,
    uid: u32,
    query: &str,
    what: &str,
) -> Result<Vec<async_imap::types::Fetch>, Failure> {
    Ok(bounded(what, async {
        session
            .uid_fetch(uid.to_string(), query)
            .await?
            .try_collect()
            .await
    })
    .await??)
}

/// Empties the channel of what the server said on its own (`next` takes one response
/// from it); whether it announced mail.
fn announced_mail(
    mut next: impl FnMut() -> Option<async_imap::types::UnsolicitedResponse>,
) -> bool {
    let mut announced = false;
    while let Some(response) = next() {
        announced |= matches!(
            response,
            async_imap::types::UnsolicitedResponse::Exists(_)
                | async_imap::types::UnsolicitedResponse::Recent(_)
        );
    }
    announced
}

/// The IMAP side of inbound mail, one per serving process.
pub struct ImapPoller {
    service: Service,
    settings: ImapSettings,
    /// Messages (by UID) whose processing failed for a passing reason, and how often: after
    /// [`MAX_TRIES`] they go to triage instead of holding up the mailbox.
    failed: std::sync::Mutex<std::collections::HashMap<u32, u32>>,
    /// The mailbox's UIDVALIDITY when the counts above were made.
    uid_validity: std::sync::Mutex<Option<u32>>,
}

/// Why one message was not taken.
enum Taking {
    /// The database did not answer: try again later, the message is not at fault.
    Database(Failure),
    /// Something about this message or its fetching.
    Message(Failure),
}

/// How often a message may fail before it is put in triage.
const MAX_TRIES: u32 = 3;

/// How often a server without IDLE is asked for new mail.
const POLL_WITHOUT_IDLE: Duration = Duration::from_secs(60);

impl ImapPoller {
    pub fn new(service: Service, settings: ImapSettings) -> ImapPoller {
        ImapPoller {
            service,
            settings,
            failed: std::sync::Mutex::new(std::collections::HashMap::new()),
            uid_validity: std::sync::Mutex::new(None),
        }
    }

    /// Failures so far of `uid`, this one counted.
    fn count_failure(&self, uid: u32) -> u32 {
        match self.failed.lock() {
            Ok(mut failed) => {
                let n = failed.entry(uid).or_insert(0);
                *n += 1;
                *n
            }
            Err(_) => MAX_TRIES,
        }
    }

    fn failures_of(&self, uid: u32) -> u32 {
        self.failed
            .lock()
            .map(|f| f.get(&uid).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Forgets the counts (another mailbox, or a new UIDVALIDITY: the numbers are others).
    fn forget_failures(&self) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.clear();
        }
    }

    /// One message, with its failures counted: a message that fails [`MAX_TRIES`] times
    /// for a reason of its own (the server will not hand it over, it cannot be processed)
    /// goes to triage instead of holding up the mailbox. A database that does not answer
    /// is not the message's fault and is not counted.
    async fn take(&self, session: &mut Session, uid: u32) -> Result<bool, Failure> {
        if self.failures_of(uid) >= MAX_TRIES {
            return self.give_up(session, uid).await;
        }
        let failure = match self.try_take(session, uid).await {
            Ok(true) => return Ok(true),
            Ok(false) => Failure("el servidor IMAP no entregó el correo".into()),
            Err(Taking::Database(e)) => return Err(e),
            Err(Taking::Message(e)) => e,
        };
        let n = self.count_failure(uid);
        tracing::warn!(uid, intento = n, error = %failure, "buzón IMAP: un correo no se pudo tomar");
        if n >= MAX_TRIES {
            self.give_up(session, uid).await
        } else {
            Err(failure)
        }
    }

    /// Puts a message that could not be taken in triage (with its header, if the server
    /// still hands that over) and flags it.
    async fn give_up(&self, session: &mut Session, uid: u32) -> Result<bool, Failure> {
        let header = fetch(
            session,
            uid,
            "BODY.PEEK[HEADER]",
            "leer el encabezado de un correo",
        )
        .await
        .ok()
        .and_then(|f| f.iter().find_map(|f| f.header().map(<[u8]>::to_vec)));
        let raw = header.unwrap_or_else(|| {
            format!(
                "Subject: (correo {uid} del buzón {}, ilegible)\r\n\r\n",
                self.settings.mailbox
            )
            .into_bytes()
        });
        let reason = format!(
            "no se pudo tomar tras {MAX_TRIES} intentos; el original quedó en el buzón {}",
            self.settings.mailbox
        );
        self.service.triage_unprocessable(&raw, &reason).await?;
        self.flag_seen(session, uid).await?;
        if let Ok(mut failed) = self.failed.lock() {
            failed.remove(&uid);
        }
        Ok(true)
    }

    async fn flag_seen(&self, session: &mut Session, uid: u32) -> Result<(), Failure> {
        let _: Vec<_> = bounded("marcar un correo como leído", async {
            session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await
        })
        .await??;
        Ok(())
    }

    /// Whether a failed processing was the database's doing (then it is not counted).
    async fn database_failing(&self, e: &crate::service::ServiceError) -> bool {
        use crate::service::ServiceError;
        match e {
            ServiceError::Unavailable | ServiceError::Conflict(_) => true,
            ServiceError::Internal(_) => !self.service.ready().await,
            _ => false,
        }
    }

    /// One message: its bytes (or, over the size limit, its header only) through ingest;
    /// `Ok(false)` when the server handed nothing over.
    async fn try_take(&self, session: &mut Session, uid: u32) -> Result<bool, Taking> {
        let sizes = fetch(session, uid, "RFC822.SIZE", "medir un correo")
            .await
            .map_err(Taking::Message)?;
        let Some(size) = sizes.iter().find_map(|f| f.size) else {
            return Ok(false);
        };
        let limit = crate::service::MAX_MESSAGE_BYTES;
        let oversized = size as usize > limit;
        let part = if oversized {
            "BODY.PEEK[HEADER]"
        } else {
            "BODY.PEEK[]"
        };
        let fetched = fetch(session, uid, part, "leer un correo")
            .await
            .map_err(Taking::Message)?;
        let Some(raw) = fetched
            .iter()
            .find_map(|f| f.header().or_else(|| f.body()).map(<[u8]>::to_vec))
        else {
            return Ok(false);
        };
        let taken = if oversized {
            let reason = format!(
                "el mensaje mide {:.1} MB y excede el máximo de {} MB; quedó en el buzón sin procesar",
                f64::from(size) / 1_048_576.0,
                limit / 1_048_576
            );
            self.service.triage_unprocessable(&raw, &reason).await
        } else {
            self.service.ingest_or_triage(&raw).await
        };
        let outcome = match taken {
            Ok(outcome) => outcome,
            Err(e) if self.database_failing(&e).await => {
                return Err(Taking::Database(e.into()));
            }
            Err(e) => return Err(Taking::Message(e.into())),
        };
        tracing::debug!(uid, outcome = %outcome.outcome, "correo IMAP tomado");
        self.flag_seen(session, uid)
            .await
            .map_err(Taking::Message)?;
        Ok(true)
    }

    /// Takes every unread message now, in arrival order, until none is left (mail that
    /// arrives meanwhile is announced while we work, not in the IDLE that follows).
    async fn take_unread(&self, session: &mut Session) -> Result<usize, Failure> {
        let mut taken = 0;
        loop {
            // What the server announced so far is covered by the search below.
            announced_mail(|| session.unsolicited_responses.try_recv().ok());
            let mut uids: Vec<u32> =
                bounded("buscar correos no leídos", session.uid_search("UNSEEN"))
                    .await??
                    .into_iter()
                    .collect();
            uids.sort_unstable();
            for uid in &uids {
                if self.take(session, *uid).await? {
                    taken += 1;
                }
            }
            if !announced_mail(|| session.unsolicited_responses.try_recv().ok()) || uids.is_empty()
            {
                return Ok(taken);
            }
        }
    }

    /// One session: take what is unread, wait in IDLE (or, on a server without it, a
    /// minute), repeat, until `stop`.
    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        opened: &mut Option<std::time::Instant>,
    ) -> Result<(), Failure> {
        let (mut session, validity) = bounded("abrir el buzón", open(&self.settings)).await??;
        *opened = Some(std::time::Instant::now());
        let renumbered = match self.uid_validity.lock() {
            Ok(mut known) => {
                let changed = known.is_some_and(|k| Some(k) != validity);
                *known = validity;
                changed
            }
            Err(_) => false,
        };
        if renumbered {
            self.forget_failures();
        }
        let idle_supported = bounded("consultar las capacidades", session.capabilities())
            .await??
            .has_str("IDLE");
        tracing::info!(
            host = %self.settings.host,
            mailbox = %self.settings.mailbox,
            idle = idle_supported,
            "buzón IMAP abierto; esperando correos"
        );
        loop {
            self.take_unread(&mut session).await?;
            if !idle_supported {
                let stopping = tokio::select! {
                    () = tokio::time::sleep(POLL_WITHOUT_IDLE) => false,
                    _ = stop.wait_for(|s| *s) => true,
                };
                if stopping {
                    let _ = session.logout().await;
                    return Ok(());
                }
                bounded("consultar el buzón", session.noop()).await??;
                continue;
            }
            let announcements = session.unsolicited_responses.clone();
            let mut idle = session.idle();
            bounded("iniciar IDLE", idle.init()).await??;
            // Mail announced between the last search and the server's "+ idling" lands in
            // the channel, not in the wait below: take it now.
            if announced_mail(|| announcements.try_recv().ok()) {
                session = bounded("terminar IDLE", idle.done()).await??;
                continue;
            }
            let stopping = {
                let (wait, _interrupt) = idle.wait_with_timeout(self.settings.idle_renewal);
                tokio::select! {
                    answer = wait => {
                        match answer? {
                            IdleResponse::NewData(_) | IdleResponse::Timeout
                            | IdleResponse::ManualInterrupt => false,
                        }
                    }
                    // Keep-alives reset the inactivity timeout above: renew on the clock too.
                    () = tokio::time::sleep(self.settings.idle_renewal) => false,
                    _ = stop.wait_for(|s| *s) => true,
                }
            };
            session = bounded("terminar IDLE", idle.done()).await??;
            if stopping {
                let _ = session.logout().await;
                return Ok(());
            }
        }
    }

    /// Runs until `stop` turns true, reconnecting after any failure. A stop is obeyed at
    /// any moment: a session in IDLE leaves it and logs out; one stuck elsewhere (a server
    /// that stopped answering) gets five seconds, then is dropped: what it had taken is
    /// recorded, and what it had not flagged is read again (and recognised) next time.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut opened = None;
            let mut inner_stop = stop.clone();
            let result = {
                let session = self.session(&mut inner_stop, &mut opened);
                tokio::pin!(session);
                tokio::select! {
                    r = &mut session => r,
                    () = async { let _ = stop.wait_for(|s| *s).await; } => {
                        let _ = tokio::time::timeout(Duration::from_secs(5), &mut session).await;
                        return;
                    }
                }
            };
            match result {
                Ok(()) => return,
                Err(e) => {
                    // A session that worked for a minute starts the pauses over; one that
                    // fails right after opening (a refused IDLE, a database that does not
                    // answer) keeps them growing, so the server is not hammered.
                    let lasted = opened.is_some_and(|at: std::time::Instant| {
                        at.elapsed() >= Duration::from_secs(60)
                    });
                    failures = if lasted {
                        1
                    } else {
                        failures.saturating_add(1)
                    };
                    let pause =
                        Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60));
                    tracing::warn!(error = %e, pause_s = pause.as_secs(), "buzón IMAP: se reintentará");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_urls_are_read_with_their_security_and_decoded_credentials() {
        let s = ImapSettings::from_url(
            "imaps://mesa%40ugd.gob.mx:p%C3%A1ss%2Fw@correo.gob.mx/Recibidos",
        )
        .expect("valid");
        assert_eq!(
            (
                s.host.as_str(),
                s.port,
                s.security,
                s.user.as_str(),
                s.password.as_str()
            ),
            (
                "correo.gob.mx",
                993,
                Security::Tls,
                "mesa@ugd.gob.mx",
                "páss/w"
            )
        );
        assert_eq!(s.mailbox, "Recibidos");
        let s = ImapSettings::from_url("imap://mesa:x@127.0.0.1:10143?tls=required&idle=60")
            .expect("valid");
        assert_eq!(
            (s.port, s.security, s.mailbox.as_str()),
            (10143, Security::StartTls, "INBOX")
        );
        assert_eq!(s.idle_renewal, Duration::from_secs(60));
    }

    #[test]
    fn bad_imap_urls_are_refused_in_spanish() {
        for (url, says) in [
            ("pop3://a:b@h", "imap:// o imaps://"),
            ("imap://h", "no indica el usuario"),
            ("imap://a:b@h?tls=maybe", "tls=maybe no se reconoce"),
            ("imap://a:b@h?idle=0", "idle debe ser"),
            ("imap://a:b@h?color=azul", "color no se reconoce"),
            ("no es una dirección", "dirección IMAP no válida"),
        ] {
            let err = ImapSettings::from_url(url).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn settings_never_print_the_password() {
        let s = ImapSettings::from_url("imap://mesa:secreto-largo@h").expect("valid");
        assert!(!format!("{s:?}").contains("secreto-largo"));
    }
}
