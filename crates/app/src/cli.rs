//! Command line. Every option can also come from an `INCIDENCIAS_*` environment variable.

use std::io::{BufReader, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::service::{NewUserInput, Service, ServiceError};
use crate::store::{DEFAULT_DATABASE_URL, Store, StoreError, open::OpenMode};

/// Servicio del Protocolo de tratamiento de incidencias de los trámites digitales
/// publicados en gob.mx: registra cada incidencia, lleva sus tiempos (SLO) y escala
/// automáticamente cuando se exceden.
#[derive(Debug, Parser)]
#[command(name = "incidencias", version, about, long_about = None)]
pub struct Cli {
    /// Base de datos: sqlite://RUTA (predeterminada, se crea sola) o postgres://...
    #[arg(long, env = "INCIDENCIAS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inicia el servicio (API JSON) y aplica las migraciones pendientes.
    Serve(ServeArgs),
    /// Inicia el servicio sobre una base de demostración nueva (./data/demo.db) con datos
    /// de ejemplo, e imprime la dirección y las credenciales de cada usuario.
    Demo(ServeArgs),
    /// Crea la base de datos si no existe y aplica las migraciones pendientes.
    Migrate,
    /// Cuentas de usuario.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Correo recibido.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Bandeja de salida de correos.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Tokens de acceso a la API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Verificaciones del registro de auditoría.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copia en línea de la base SQLite a un archivo nuevo (con el servicio en marcha).
    Backup {
        /// Archivo de destino; no debe existir.
        path: PathBuf,
    },
    /// Exporta catálogo, políticas y todos los eventos como líneas JSON.
    Export {
        /// Archivo de salida (predeterminado: salida estándar).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Importa una exportación en una base de datos vacía, verificando cada cadena.
    Import {
        /// Archivo de entrada (predeterminado: entrada estándar).
        path: Option<PathBuf>,
    },
    /// Mediciones de rendimiento (ver docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Dirección y puerto donde escuchar.
    #[arg(long, env = "INCIDENCIAS_BIND", default_value = crate::server::DEFAULT_BIND)]
    pub bind: String,
    /// Marcar la cookie de sesión como Secure (detrás de HTTPS).
    #[arg(long, env = "INCIDENCIAS_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Servidor SMTP: smtp://host:puerto, smtp://host:587?tls=required (STARTTLS) o
    /// smtps://usuario:contraseña@host:465. Sin él, los correos quedan en la bandeja.
    #[arg(long, env = "INCIDENCIAS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Remitente de los correos.
    #[arg(
        long,
        env = "INCIDENCIAS_MAIL_FROM",
        default_value = "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>"
    )]
    pub mail_from: String,
    /// Dirección de respuesta de los correos.
    #[arg(long, env = "INCIDENCIAS_MAIL_REPLY_TO")]
    pub mail_reply_to: Option<String>,
    /// Buzón de la mesa de ayuda, leído con IMAP IDLE: imap://usuario:contraseña@host:143/INBOX,
    /// imap://…?tls=required (STARTTLS) o imaps://usuario:contraseña@host:993/INBOX.
    #[arg(long, env = "INCIDENCIAS_IMAP_URL", hide_env_values = true)]
    pub imap_url: Option<String>,
    /// Dirección pública del servicio, para los enlaces de los correos.
    #[arg(long, env = "INCIDENCIAS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Certificados de autoridad adicionales (PEM) en los que confiar para SMTP e IMAP,
    /// además de los públicos (por ejemplo, la autoridad interna de la dependencia).
    #[arg(long, env = "INCIDENCIAS_TLS_CA_FILE")]
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl ServeArgs {
    fn ca_pem(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(path) = &self.tls_ca_file else {
            return Ok(None);
        };
        let invalid = |e: String| {
            StoreError::Invalid(format!("INCIDENCIAS_TLS_CA_FILE ({}): {e}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| invalid(format!("no se pudo leer: {e}")))?;
        crate::mail::ca_certificates(&pem).map_err(invalid)?;
        Ok(Some(pem))
    }

    /// Every mail setting, read and checked once before anything is served: a mistake
    /// stops the start with its reason instead of leaving mail silently off. Without
    /// INCIDENCIAS_PUBLIC_URL the links' base is filled in once the address is bound.
    fn mail_config(&self) -> Result<MailConfig, StoreError> {
        let ca_pem = self.ca_pem()?;
        let imap = match self.imap_url.as_deref() {
            Some(url) => {
                let mut settings = crate::mail::imap::ImapSettings::from_url(url)
                    .map_err(|e| StoreError::Invalid(format!("INCIDENCIAS_IMAP_URL: {e}")))?;
                settings.ca_pem = ca_pem.clone();
                Some(settings)
            }
            None => None,
        };
        let smtp = match &self.smtp_url {
            Some(url) => {
                let settings = crate::mail::worker::MailSettings {
                    smtp_url: url.clone(),
                    from: self.mail_from.clone(),
                    reply_to: self.mail_reply_to.clone(),
                    base_url: self.public_url.clone().unwrap_or_default(),
                    ca_pem,
                };
                crate::mail::worker::check_settings(&settings)
                    .map_err(|e| StoreError::Invalid(format!("correo: {e}")))?;
                Some(settings)
            }
            None => None,
        };
        Ok(MailConfig { smtp, imap })
    }
}

/// The mail settings of `serve` and `demo`, checked.
struct MailConfig {
    smtp: Option<crate::mail::worker::MailSettings>,
    imap: Option<crate::mail::imap::ImapSettings>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Crea un usuario.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, helpdesk, validator o agency.
        #[arg(long)]
        role: String,
        /// Dependencia (siglas o id), para el rol agency.
        #[arg(long)]
        agency: Option<String>,
        /// Superior inmediato (correo o id): el siguiente nivel de escalamiento.
        #[arg(long)]
        reports_to: Option<String>,
        /// Contraseña (mínimo 10 caracteres); sin ella, sólo acceso con token.
        #[arg(long, env = "INCIDENCIAS_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Procesa un correo recibido (RFC 822) leído de la entrada estándar.
    Ingest,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Lista los correos, del más reciente al más antiguo.
    List {
        /// pending, sent o dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Vuelve a poner en cola los correos muertos (uno con --id, o todos).
    Retry {
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Crea un token de API e imprime sólo el token (se muestra una sola vez).
    Create {
        #[arg(long)]
        email: String,
    },
    /// Revoca todos los tokens de API de un usuario.
    Revoke {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recorre la cadena de hashes de cada incidencia; sale con código 1 si algo se alteró.
    Verify,
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let Some(command) = cli.command else {
        println!(
            "incidencias {}: use --help para ver los comandos disponibles.",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: no se pudo iniciar el entorno de ejecución: {e}");
            return 1;
        }
    };
    match runtime.block_on(execute(&cli.database_url, command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn execute(url: &str, command: Command) -> Result<i32, StoreError> {
    let now = jiff::Timestamp::now();
    match command {
        Command::Serve(args) => {
            let store = Store::open(url).await?;
            serve_on(store, &args).await
        }
        Command::Demo(args) => demo(url, &args).await,
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    name,
                    role,
                    agency,
                    reports_to,
                    password,
                },
        } => {
            let store = Store::open(url).await?;
            let service = Service::new(store.clone(), Arc::new(SystemClock));
            let result =
                create_user(&service, email, name, role, agency, reports_to, password).await;
            store.close().await;
            match result {
                Ok(user) => {
                    println!(
                        "Usuario {} creado (id {}, rol {}).",
                        user.email,
                        user.id,
                        user.role.as_str()
                    );
                    Ok(0)
                }
                Err(e) => Err(StoreError::Invalid(service_message(e))),
            }
        }
        Command::Mail {
            command: MailCommand::Ingest,
        } => {
            use std::io::Read;
            let mut raw = Vec::new();
            std::io::stdin()
                .take(crate::service::MAX_MESSAGE_BYTES as u64 + 1)
                .read_to_end(&mut raw)?;
            let store = Store::open(url).await?;
            let service = Service::new(store.clone(), Arc::new(SystemClock));
            let result = service.ingest(&raw).await;
            store.close().await;
            let r = result.map_err(|e| StoreError::Invalid(service_message(e)))?;
            println!(
                "{}{}{}",
                r.outcome,
                r.folio.map(|f| format!(" {f}")).unwrap_or_default(),
                r.reason.map(|w| format!(" ({w})")).unwrap_or_default()
            );
            Ok(0)
        }
        Command::Outbox { command } => {
            let store = Store::open(url).await?;
            let service = Service::new(store.clone(), Arc::new(SystemClock));
            let operator = crate::service::Caller::operator();
            let result = match command {
                OutboxCommand::List { state, limit } => {
                    let state = match state.as_deref().map(crate::service::OutboxState::parse) {
                        Some(None) => {
                            return Err(StoreError::Invalid(
                                "--state debe ser pending, sent o dead".into(),
                            ));
                        }
                        Some(s) => s,
                        None => None,
                    };
                    let rows = service.outbox(&operator, state, limit).await;
                    rows.map(|rows| {
                        for r in rows {
                            println!(
                                "{:>6}  {:<8} {:<16} {:<24} {} intentos  {}{}",
                                r.id,
                                r.state,
                                r.folio.unwrap_or_default(),
                                r.kind,
                                r.attempts,
                                r.to.join(", "),
                                r.last_error.map(|e| format!("  ({e})")).unwrap_or_default()
                            );
                        }
                    })
                }
                OutboxCommand::Retry { id } => service
                    .retry_outbox(&operator, id)
                    .await
                    .map(|n| println!("{n} correos de nuevo en cola.")),
            };
            store.close().await;
            result.map_err(|e| StoreError::Invalid(service_message(e)))?;
            Ok(0)
        }
        Command::Token { command } => {
            let store = Store::open(url).await?;
            let service = Service::new(store.clone(), Arc::new(SystemClock));
            let result = match command {
                TokenCommand::Create { email } => service.create_token(&email).await.map(|t| {
                    // Only the token on stdout, so scripts can capture it.
                    println!("{t}");
                }),
                TokenCommand::Revoke { email } => service.revoke_tokens(&email).await.map(|n| {
                    println!("{n} tokens revocados.");
                }),
            };
            store.close().await;
            result.map_err(|e| StoreError::Invalid(service_message(e)))?;
            Ok(0)
        }
        Command::Migrate => {
            let store = Store::open(url).await?;
            println!("Base de datos lista: {}", store.display_name());
            store.close().await;
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let store = Store::open_with(url, OpenMode::Existing).await?;
            let report = store.verify().await?;
            store.close().await;
            println!(
                "{} incidencias y {} eventos revisados.",
                report.incidents, report.events
            );
            match report.problems.first() {
                None => {
                    println!("Todas las cadenas son íntegras.");
                    Ok(0)
                }
                Some(first) => {
                    let at = first.seq.map_or(String::new(), |s| format!(", evento {s}"));
                    println!(
                        "ALTERACIÓN DETECTADA: primer eslabón roto en {}{at}: {}",
                        first.folio, first.what
                    );
                    for p in report.problems.iter().skip(1) {
                        let at = p.seq.map_or(String::new(), |s| format!(", evento {s}"));
                        println!("también: {}{at}: {}", p.folio, p.what);
                    }
                    Ok(1)
                }
            }
        }
        Command::Backup { path } => {
            if url.starts_with("postgres") {
                // No need to connect to say so.
                return Err(StoreError::Invalid(
                    crate::store::POSTGRES_BACKUP_HINT.into(),
                ));
            }
            let store = Store::open_with(url, OpenMode::Existing).await?;
            let result = store.backup(&path).await;
            store.close().await;
            result?;
            println!("Respaldo escrito en {}", path.display());
            Ok(0)
        }
        Command::Export { output } => {
            let store = Store::open_with(url, OpenMode::Existing).await?;
            let lines = match &output {
                Some(path) => {
                    // Never overwrite; readable by its owner only (it holds password hashes).
                    let file = private_new_file(path)?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = store.export(&mut w, now).await?;
                    w.flush()?;
                    w.get_ref().sync_all()?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    store.export(&mut w, now).await?
                }
            };
            store.close().await;
            eprintln!("{lines} líneas exportadas.");
            Ok(0)
        }
        Command::Import { path } => {
            // The input first: a mistyped path must not create or migrate a database.
            let mut input: Box<dyn std::io::BufRead> = match &path {
                Some(p) => Box::new(BufReader::new(std::fs::File::open(p).map_err(|e| {
                    StoreError::Invalid(format!("no se pudo abrir {}: {e}", p.display()))
                })?)),
                None => Box::new(std::io::stdin().lock()),
            };
            let store = Store::open(url).await?;
            let summary = store.import(&mut input, now).await;
            store.close().await;
            let name = path
                .as_ref()
                .map_or("la entrada estándar".to_string(), |p| {
                    p.display().to_string()
                });
            let s = summary.map_err(|e| StoreError::Invalid(format!("{name}: {e}")))?;
            println!(
                "Importados: {} dependencias, {} usuarios, {} trámites, {} políticas, \
                 {} incidencias con {} eventos.",
                s.agencies, s.users, s.procedures, s.policies, s.incidents, s.events
            );
            Ok(0)
        }
        Command::Bench { command } => crate::bench::run(command).await,
    }
}

/// Creates `path` for writing, refusing to overwrite, with permissions for its owner only.
fn private_new_file(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Invalid(format!(
            "{} ya existe; elija otro nombre para no sobrescribirlo",
            path.display()
        )),
        _ => StoreError::Invalid(format!("no se pudo crear {}: {e}", path.display())),
    })
}

/// A service error as one Spanish line, with the offending fields.
fn service_message(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid(fields) => fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

async fn create_user(
    service: &Service,
    email: String,
    name: String,
    role: String,
    agency: Option<String>,
    reports_to: Option<String>,
    password: Option<String>,
) -> Result<crate::documents::UserDoc, ServiceError> {
    let agency_id = match agency {
        None => None,
        Some(a) => match a.trim().parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                let acronym = a.trim().to_uppercase();
                let found = service
                    .agencies(&crate::service::Caller::operator())
                    .await?
                    .into_iter()
                    .find(|x| x.acronym == acronym);
                Some(
                    found
                        .ok_or_else(|| {
                            ServiceError::invalid(
                                "agency",
                                format!("no existe la dependencia {acronym}"),
                            )
                        })?
                        .id,
                )
            }
        },
    };
    let reports_to = match reports_to {
        None => None,
        Some(r) => match r.trim().parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                let email = incidencias_core::Email::parse(&r)
                    .map_err(|e| ServiceError::invalid("reports_to", e.to_string()))?;
                Some(
                    service
                        .users(&crate::service::Caller::operator())
                        .await?
                        .into_iter()
                        .find(|u| u.email == email.as_str())
                        .ok_or_else(|| {
                            ServiceError::invalid(
                                "reports_to",
                                format!("no existe el usuario {email}"),
                            )
                        })?
                        .id,
                )
            }
        },
    };
    service
        .create_user_unchecked(NewUserInput {
            name,
            email,
            role,
            agency_id,
            reports_to,
            password,
        })
        .await
}

fn init_logs() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("INCIDENCIAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // async-imap traces every command, LOGIN with its password included: whatever
    // INCIDENCIAS_LOG asks, nothing of it below warn (a second filter, not a directive a
    // more specific one could override).
    let quiet = tracing_subscriber::filter::Targets::new()
        .with_default(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_target("async_imap", tracing_subscriber::filter::LevelFilter::WARN);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter)
                .with_filter(quiet),
        )
        .try_init();
}

async fn serve_on(store: Store, args: &ServeArgs) -> Result<i32, StoreError> {
    init_logs();
    let mail = args.mail_config()?;
    store.claim_for_serving()?;
    let listener = listen(&args.bind).await?;
    let addr = listener.local_addr()?;
    println!(
        "incidencias escuchando en http://{addr} (base de datos: {})",
        store.display_name()
    );
    tracing::info!(%addr, base = store.display_name(), "incidencias escuchando");
    serve_until_signal(store, listener, args, mail).await
}

async fn listen(bind: &str) -> Result<tokio::net::TcpListener, StoreError> {
    tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StoreError::Invalid(format!("no se pudo escuchar en {bind}: {e}")))
}

/// Serves on the system clock until SIGINT/SIGTERM.
async fn serve_until_signal(
    store: Store,
    listener: tokio::net::TcpListener,
    args: &ServeArgs,
    mail: MailConfig,
) -> Result<i32, StoreError> {
    let addr = listener.local_addr()?;
    let smtp = mail.smtp.map(|mut settings| {
        if settings.base_url.is_empty() {
            settings.base_url = format!("http://{addr}");
        }
        settings
    });
    crate::server::serve(
        store,
        Arc::new(SystemClock),
        listener,
        args.secure_cookies,
        smtp,
        mail.imap,
        crate::server::shutdown_signal(),
    )
    .await?;
    Ok(0)
}

/// A fresh demo database next to the default one (or the SQLite file named by the URL
/// with `-demo` appended), seeded, then served.
async fn demo(url: &str, args: &ServeArgs) -> Result<i32, StoreError> {
    let mail = args.mail_config()?;
    let demo_url = if url == DEFAULT_DATABASE_URL {
        "sqlite://./data/demo.db".to_string()
    } else if url.starts_with("sqlite:") {
        format!("{}-demo.db", url.trim_end_matches(".db"))
    } else {
        return Err(StoreError::Invalid(
            "el demo usa una base SQLite propia; no lo apunte a PostgreSQL".into(),
        ));
    };
    let path = demo_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .to_string();
    // Never delete a demo database another process is serving.
    let claim = crate::store::lock_serving(&path)?;
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{path}{suffix}");
        if std::path::Path::new(&f).exists() {
            std::fs::remove_file(&f)?;
        }
    }
    let store = Store::open(&demo_url).await?;
    store.hold_claim(claim);
    let seeded = crate::demo::seed(&store, jiff::Timestamp::now())
        .await
        .map_err(|e| {
            StoreError::Invalid(format!(
                "no se pudieron crear los datos de ejemplo: {}",
                service_message(e)
            ))
        })?;
    let listener = listen(&args.bind).await?;
    let addr = listener.local_addr()?;
    println!("incidencias (demostración) en http://{addr}");
    println!("  API:          http://{addr}/api/v1/incidents");
    println!("  Documentación: http://{addr}/api/docs");
    println!("  Base de datos de demostración (se recrea en cada arranque): {path}");
    println!(
        "  {} trámites y {} incidencias de ejemplo. Contraseña de todos los usuarios: {}",
        seeded.procedures,
        seeded.incidents,
        crate::demo::DEMO_PASSWORD
    );
    println!();
    println!("{:<36} {:<10} token de API", "usuario", "rol");
    for u in &seeded.users {
        println!("{:<36} {:<10} {}", u.user.email, u.user.role, u.token);
    }
    println!();
    println!("Ejemplo: curl -H 'Authorization: Bearer <token>' http://{addr}/api/v1/incidents");
    init_logs();
    serve_until_signal(store, listener, args, mail).await
}
