//! SMTP connections the outbox opens itself, so that their sockets carry `TCP_NODELAY`.
//!
//! lettre's transport opens its own sockets without `TCP_NODELAY`; it writes a message's
//! terminator in a segment of its own and then waits for the reply, so every message paid
//! the server's delayed ACK (about 40 ms on Linux): 20 messages a second. lettre's
//! lower-level [`AsyncSmtpConnection`] takes a stream we open, and does the SMTP itself:
//! EHLO, STARTTLS, AUTH and the mail transaction. For TLS from the first byte the stream
//! is wrapped here with rustls (the same roots as IMAP: the public ones plus the CA of
//! INCIDENCIAS_TLS_CA_FILE).

use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::worker::MailSettings;

/// How the connection is protected.
#[derive(Clone)]
enum Security {
    /// `smtp://host:port`: plain text.
    Plain,
    /// `smtp://host:587?tls=required` (or `opportunistic`: only if the server offers it).
    StartTls {
        params: Box<TlsParameters>,
        required: bool,
    },
    /// `smtps://host:465`: TLS from the first byte.
    Wrapper {
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    },
}

/// Where and how to connect, read once from INCIDENCIAS_SMTP_URL.
#[derive(Clone)]
pub struct SmtpTarget {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

fn invalid_url(e: impl std::fmt::Display) -> String {
    format!("INCIDENCIAS_SMTP_URL no válida: {e}")
}

impl SmtpTarget {
    /// Reads `settings.smtp_url` as lettre's transport reads it (`smtp`, `smtp?tls=required`,
    /// `smtp?tls=opportunistic`, `smtps`; user and password percent-encoded; a path names
    /// the EHLO host), with the extra certificate authority of `settings.ca_pem`.
    pub fn from_settings(settings: &MailSettings) -> Result<SmtpTarget, String> {
        let url = url::Url::parse(&settings.smtp_url).map_err(invalid_url)?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid_url("falta el servidor"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let starttls = |required: bool| -> Result<Security, String> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(pem) = &settings.ca_pem {
                super::ca_certificates(pem)?;
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    format!("los certificados de autoridad no son PEM válidos: {e}")
                })?;
                builder = builder.add_root_certificate(cert);
            }
            let params = builder
                .build()
                .map_err(|e| format!("configuración TLS no válida: {e}"))?;
            Ok(Security::StartTls {
                params: Box::new(params),
                required,
            })
        };
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (starttls(true)?, 587),
            ("smtp", Some("opportunistic")) => (starttls(false)?, 587),
            ("smtps", _) => (
                Security::Wrapper {
                    config: Arc::new(super::tls_config(settings.ca_pem.as_deref())?),
                },
                465,
            ),
            (scheme, tls) => {
                return Err(invalid_url(format!(
                    "esquema «{scheme}» o tls «{}» desconocidos",
                    tls.unwrap_or_default()
                )));
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(invalid_url)
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        let hello = if url.path().len() > 1 {
            ClientId::Domain(url.path().trim_matches('/').to_string())
        } else {
            ClientId::default()
        };
        Ok(SmtpTarget {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
        })
    }

    /// A new connection, greeted, protected and authenticated as the URL asks, within
    /// `limit`.
    pub async fn connect(&self, limit: Duration) -> Result<AsyncSmtpConnection, String> {
        tokio::time::timeout(limit, self.connect_unbounded())
            .await
            .map_err(|_| {
                format!(
                    "el servidor SMTP {}:{} no respondió en {} s",
                    self.host,
                    self.port,
                    limit.as_secs()
                )
            })?
    }

    /// A new connection as [`SmtpTarget::connect`] opens it, without a time limit of its
    /// own: for a caller that bounds the whole exchange.
    pub async fn connect_unbounded(&self) -> Result<AsyncSmtpConnection, String> {
        let failed = |e: &dyn std::fmt::Display| {
            format!(
                "no se pudo conectar con el servidor SMTP {}:{}: {e}",
                self.host, self.port
            )
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| failed(&e))?;
        // The whole point: each command and the terminator leave at once, without waiting
        // for the ACK of the previous segment.
        tcp.set_nodelay(true).map_err(|e| failed(&e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Wrapper { config } => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| failed(&e))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failed(&e))?;
                Box::new(TlsStream(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| failed(&e))?;
        if let Security::StartTls { params, required } = &self.security
            && (*required || conn.can_starttls())
        {
            conn.starttls((**params).clone(), &self.hello)
                .await
                .map_err(|e| failed(&e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| failed(&e))?;
        }
        Ok(conn)
    }
}

/// A rustls stream as lettre's connection wants it (it asks for the peer's address).
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
