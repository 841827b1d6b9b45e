//! What the program is told: flags and their `INCIDENCIAS_*` variables (clap reads both, and
//! `--help` lists each variable), read once at start into a checked [`Config`]. Nothing
//! else reads the environment, so the settings a process runs with are the ones it was
//! started with and a mistake stops the start with its reason, instead of leaving mail
//! silently off or surfacing hours later in a worker.

use std::path::PathBuf;

use crate::mail::imap::ImapSettings;
use crate::mail::worker::MailSettings;
use crate::store::DEFAULT_DATABASE_URL;

/// The demo's own database when none is named: never the operator's real one.
pub const DEFAULT_DEMO_DATABASE_URL: &str = "sqlite://./data/demo.db";

/// Shortest INCIDENCIAS_LINK_SECRET accepted: 256 bits of a random hexadecimal or base64
/// secret fit in it, a guessable word does not.
pub const MIN_LINK_SECRET: usize = 32;

/// Options every command understands (before or after the command's name).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Base de datos: sqlite://RUTA o postgres://USUARIO@HOST/BASE (predeterminada:
    /// sqlite://./data/incidencias.db; sólo migrate, serve e import la crean). El demo no
    /// la toca: usa su propia base, sqlite://./data/demo.db, o RUTA-demo.db junto a la
    /// base SQLite indicada.
    #[arg(
        long,
        global = true,
        env = "INCIDENCIAS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Secreto (al menos 32 caracteres) con que se firman los enlaces de un clic de los
    /// correos; el mismo en todas las instancias. Sin él, se usa uno guardado en la base.
    #[arg(
        long,
        global = true,
        env = "INCIDENCIAS_LINK_SECRET",
        value_name = "SECRETO",
        hide_env_values = true,
        value_parser = link_secret
    )]
    pub link_secret: Option<String>,

    /// Nombre (authserv-id) del servidor de correo que recibe los mensajes de la mesa de
    /// ayuda y escribe su encabezado Authentication-Results (RFC 8601): sólo un correo que
    /// ese servidor da por auténtico (DMARC, o SPF y DKIM, del dominio del remitente)
    /// actúa sobre una incidencia. Sin él, una respuesta actúa sólo si responde a un correo
    /// firmado de este sistema, y los reportes nuevos por correo quedan en revisión.
    #[arg(
        long,
        global = true,
        env = "INCIDENCIAS_MAIL_AUTHSERV_ID",
        value_name = "NOMBRE"
    )]
    pub mail_authserv_id: Option<String>,
}

impl GlobalArgs {
    /// The database of every command but `demo`.
    pub fn database_url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The demo's database: its own file, even when the operator's variable names the real
    /// one, because the demo deletes and recreates it on every start.
    pub fn demo_database_url(&self) -> Result<String, ConfigError> {
        match self.database_url.as_deref().map(str::trim) {
            None => Ok(DEFAULT_DEMO_DATABASE_URL.to_string()),
            Some(url) if url == DEFAULT_DATABASE_URL => Ok(DEFAULT_DEMO_DATABASE_URL.to_string()),
            Some(url) if url.starts_with("sqlite:") => {
                Ok(format!("{}-demo.db", url.trim_end_matches(".db")))
            }
            Some(_) => Err(ConfigError(
                "el demo usa una base SQLite propia; no lo apunte a PostgreSQL".into(),
            )),
        }
    }
}

fn link_secret(text: &str) -> Result<String, String> {
    if text.chars().count() < MIN_LINK_SECRET {
        return Err(format!(
            "el secreto de los enlaces debe tener al menos {MIN_LINK_SECRET} caracteres"
        ));
    }
    Ok(text.to_string())
}

/// The flags of `serve` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Dirección y puerto donde escuchar (la predeterminada sólo acepta conexiones locales).
    #[arg(long, env = "INCIDENCIAS_BIND", default_value = crate::server::DEFAULT_BIND, value_name = "DIRECCIÓN")]
    pub bind: String,
    /// Servido detrás de HTTPS: cookie de sesión Secure y Strict-Transport-Security
    /// (también sin esta opción cuando INCIDENCIAS_PUBLIC_URL empieza con https://).
    #[arg(long, env = "INCIDENCIAS_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Servidor SMTP: smtp://host:puerto, smtp://host:587?tls=required (STARTTLS) o
    /// smtps://usuario:contraseña@host:465. Sin él, los correos quedan en la bandeja.
    #[arg(
        long,
        env = "INCIDENCIAS_SMTP_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub smtp_url: Option<String>,
    /// Remitente de los correos.
    #[arg(
        long,
        env = "INCIDENCIAS_MAIL_FROM",
        default_value = "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>",
        value_name = "DIRECCIÓN"
    )]
    pub mail_from: String,
    /// Dirección de respuesta de los correos.
    #[arg(long, env = "INCIDENCIAS_MAIL_REPLY_TO", value_name = "DIRECCIÓN")]
    pub mail_reply_to: Option<String>,
    /// Buzón de la mesa de ayuda, leído con IMAP IDLE: imap://usuario:contraseña@host:143/INBOX,
    /// imap://…?tls=required (STARTTLS) o imaps://usuario:contraseña@host:993/INBOX.
    #[arg(
        long,
        env = "INCIDENCIAS_IMAP_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub imap_url: Option<String>,
    /// Dirección pública del servicio, para los enlaces de los correos (sin ella, la
    /// dirección donde escucha).
    #[arg(long, env = "INCIDENCIAS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Orígenes del portal (https://www.gob.mx, separados por comas) que pueden incluir la
    /// cortinilla y leer el estado público de los trámites; sus dominios son también los
    /// únicos a los que la revisión de la cortinilla sigue redirecciones.
    #[arg(
        long,
        env = "INCIDENCIAS_PORTAL_ORIGINS",
        default_value = DEFAULT_PORTAL_ORIGINS,
        value_name = "ORÍGENES"
    )]
    pub portal_origins: String,
    /// Cuánto esperar, después de que la dependencia informa la cortinilla desplegada,
    /// para buscarla en la página del trámite (por ejemplo 15m, 1h; 0s: de inmediato; «no»
    /// desactiva la revisión).
    #[arg(
        long,
        env = "INCIDENCIAS_BANNER_CHECK_GRACE",
        default_value = "15m",
        value_name = "DURACIÓN"
    )]
    pub banner_check_grace: String,
    /// Permitir webhooks a direcciones internas (127.0.0.1, 10.x, 192.168.x, 169.254.x…);
    /// sin esta opción no se envían, para que una suscripción no alcance la red interna.
    #[arg(long, env = "INCIDENCIAS_WEBHOOK_ALLOW_INTERNAL")]
    pub webhook_allow_internal: bool,
    /// Cuánto puede tardar un cliente en enviar los encabezados de una solicitud antes de
    /// que se cierre su conexión (por ejemplo 10s).
    #[arg(
        long,
        env = "INCIDENCIAS_HEADER_READ_TIMEOUT",
        default_value = "10s",
        value_name = "DURACIÓN"
    )]
    pub header_read_timeout: String,
    /// Conexiones abiertas al mismo tiempo; al llegar a este número, las nuevas esperan a
    /// que se cierre alguna.
    #[arg(
        long,
        env = "INCIDENCIAS_MAX_CONNECTIONS",
        default_value_t = crate::listen::MAX_CONNECTIONS as u32,
        value_name = "NÚMERO",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_connections: u32,
    /// Token que debe enviar quien lee las métricas de operación en /metrics (encabezado
    /// Authorization: Bearer TOKEN; al menos 24 caracteres). Sin él, /metrics no existe.
    #[arg(
        long,
        env = "INCIDENCIAS_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Certificados de autoridad adicionales (PEM) en los que confiar para SMTP e IMAP,
    /// además de los públicos (por ejemplo, la autoridad interna de la dependencia).
    #[arg(long, env = "INCIDENCIAS_TLS_CA_FILE", value_name = "ARCHIVO")]
    pub tls_ca_file: Option<PathBuf>,
    /// Qué registrar en la salida de errores: info, debug, warn o por módulo
    /// (incidencias=debug,warn).
    #[arg(
        long,
        env = "INCIDENCIAS_LOG",
        default_value = "info",
        value_name = "FILTRO"
    )]
    pub log: String,
}

/// The portal's origin when none is configured.
pub const DEFAULT_PORTAL_ORIGINS: &str = "https://www.gob.mx";

/// Reads a comma-separated list of origins (`https://host[:port]`, nothing after).
pub fn portal_origins(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| {
            ConfigError(format!(
                "INCIDENCIAS_PORTAL_ORIGINS: «{item}» no es un origen ({why}); \
                 escriba por ejemplo https://www.gob.mx"
            ))
        };
        let url = url::Url::parse(item).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("debe ser http:// o https:// con un dominio"));
        }
        if url.path() != "/" || url.query().is_some() || item.ends_with('/') {
            return Err(bad("sin ruta ni / final"));
        }
        out.push(url.origin().ascii_serialization());
    }
    Ok(out)
}

/// A duration such as `15m`, `90s`, `1h` or `0`.
pub fn duration(text: &str, variable: &str) -> Result<std::time::Duration, ConfigError> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| {
        ConfigError(format!(
            "{variable}: «{text}» no es una duración (escriba por ejemplo 15m, 90s o 1h)"
        ))
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => {
            return Err(ConfigError(format!(
                "{variable}: unidad «{unit}» desconocida (use s, m o h)"
            )));
        }
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// A setting that cannot be used, in Spanish, naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The settings `serve` and `demo` run with, checked. Built once by [`Config::new`];
/// tests and benchmarks start from [`Config::local`].
#[derive(Clone)]
pub struct Config {
    /// The database served (for messages; the store is opened by the caller).
    pub database_url: String,
    /// Where to listen (INCIDENCIAS_BIND).
    pub bind: String,
    /// Mark the session cookie Secure: only behind HTTPS, or browsers drop it.
    pub secure_cookies: bool,
    /// Base of the links in emails; `None`: the address actually bound, which is what a
    /// newcomer's local run needs.
    pub public_url: Option<String>,
    /// Outgoing mail, checked; `None`: emails wait in the outbox.
    pub smtp: Option<MailSettings>,
    /// The help desk's mailbox, checked; `None`: inbound mail only by the API and CLI.
    pub imap: Option<ImapSettings>,
    /// INCIDENCIAS_LINK_SECRET; `None`: the secret kept in the database.
    pub link_secret: Option<String>,
    /// INCIDENCIAS_MAIL_AUTHSERV_ID: the receiving mail server we believe.
    pub mail_authserv_id: Option<String>,
    /// The tracing filter (INCIDENCIAS_LOG), checked.
    pub log: String,
    /// The accounts the sign-in page lists: only `incidencias demo` fills it.
    pub demo_accounts: Vec<DemoAccount>,
    /// Extra trusted authorities for our outgoing HTTPS (webhooks, the banner check).
    pub ca_pem: Option<Vec<u8>>,
    /// Origins of the portal (INCIDENCIAS_PORTAL_ORIGINS).
    pub portal_origins: Vec<String>,
    /// Wait before looking for the banner on the procedure's page; `None`: never look.
    pub banner_check_grace: Option<std::time::Duration>,
    /// Header-read timeout and connection cap (INCIDENCIAS_HEADER_READ_TIMEOUT,
    /// INCIDENCIAS_MAX_CONNECTIONS).
    pub limits: crate::listen::Limits,
    /// Webhooks may go to internal addresses (INCIDENCIAS_WEBHOOK_ALLOW_INTERNAL).
    pub webhook_allow_internal: bool,
    /// The bearer token of `/metrics` (INCIDENCIAS_METRICS_TOKEN); `None`: no `/metrics`.
    pub metrics_token: Option<String>,
}

/// The shortest metrics token accepted.
pub const METRICS_TOKEN_MIN: usize = 24;

fn metrics_token(value: Option<&str>) -> Result<Option<String>, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() < METRICS_TOKEN_MIN || t.contains(char::is_whitespace) => {
            Err(ConfigError(format!(
                "INCIDENCIAS_METRICS_TOKEN debe tener al menos {METRICS_TOKEN_MIN} caracteres y \
                 ningún espacio"
            )))
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// An account of the demo, listed on its sign-in page so a newcomer clicks straight in.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub email: String,
    pub name: String,
    /// The role as people say it.
    pub role: String,
}

impl Config {
    /// Reads and checks every serving setting before anything is served.
    pub fn new(
        database_url: String,
        global: &GlobalArgs,
        args: &ServeArgs,
    ) -> Result<Config, ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&args.log).map_err(|e| {
            ConfigError(format!(
                "INCIDENCIAS_LOG «{}» no es un filtro válido: {e}",
                args.log
            ))
        })?;
        let ca_pem = ca_pem(args.tls_ca_file.as_deref())?;
        let imap = match args.imap_url.as_deref() {
            Some(url) => {
                let mut settings = ImapSettings::from_url(url)
                    .map_err(|e| ConfigError(format!("INCIDENCIAS_IMAP_URL: {e}")))?;
                settings.ca_pem = ca_pem.clone();
                Some(settings)
            }
            None => None,
        };
        let smtp = match &args.smtp_url {
            Some(url) => {
                let settings = MailSettings {
                    smtp_url: url.clone(),
                    from: args.mail_from.clone(),
                    reply_to: args.mail_reply_to.clone(),
                    // Filled in by `serve` from `public_url` or the bound address.
                    base_url: String::new(),
                    ca_pem: ca_pem.clone(),
                };
                crate::mail::worker::check_settings(&settings)
                    .map_err(|e| ConfigError(format!("correo: {e}")))?;
                Some(settings)
            }
            None => None,
        };
        Ok(Config {
            database_url,
            bind: args.bind.clone(),
            // Reached over HTTPS: a Secure cookie, and HSTS.
            secure_cookies: args.secure_cookies
                || args
                    .public_url
                    .as_deref()
                    .is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://")),
            public_url: args.public_url.clone(),
            smtp,
            imap,
            link_secret: global.link_secret.clone(),
            mail_authserv_id: global.mail_authserv_id.clone(),
            log: args.log.clone(),
            demo_accounts: Vec::new(),
            ca_pem,
            portal_origins: portal_origins(&args.portal_origins)?,
            banner_check_grace: match args.banner_check_grace.trim() {
                "no" => None,
                text => Some(duration(text, "INCIDENCIAS_BANNER_CHECK_GRACE")?),
            },
            limits: crate::listen::Limits {
                header_read_timeout: match duration(
                    &args.header_read_timeout,
                    "INCIDENCIAS_HEADER_READ_TIMEOUT",
                )? {
                    d if d.is_zero() => {
                        return Err(ConfigError(
                            "INCIDENCIAS_HEADER_READ_TIMEOUT debe ser mayor que cero".into(),
                        ));
                    }
                    d => d,
                },
                max_connections: args.max_connections as usize,
            },
            webhook_allow_internal: args.webhook_allow_internal,
            metrics_token: metrics_token(args.metrics_token.as_deref())?,
        })
    }

    /// Serving without mail on a local address: what tests and benchmarks start from.
    pub fn local(database_url: &str) -> Config {
        Config {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".into(),
            secure_cookies: false,
            public_url: None,
            smtp: None,
            imap: None,
            link_secret: None,
            mail_authserv_id: None,
            log: "info".into(),
            demo_accounts: Vec::new(),
            ca_pem: None,
            portal_origins: vec![DEFAULT_PORTAL_ORIGINS.to_string()],
            banner_check_grace: None,
            limits: crate::listen::Limits::default(),
            webhook_allow_internal: false,
            metrics_token: None,
        }
    }
}

/// The extra certificate authorities, read and checked once (INCIDENCIAS_TLS_CA_FILE).
fn ca_pem(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let invalid =
        |e: String| ConfigError(format!("INCIDENCIAS_TLS_CA_FILE ({}): {e}", path.display()));
    let pem = std::fs::read(path).map_err(|e| invalid(format!("no se pudo leer: {e}")))?;
    crate::mail::ca_certificates(&pem).map_err(invalid)?;
    Ok(Some(pem))
}
