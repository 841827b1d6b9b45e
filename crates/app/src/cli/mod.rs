//! Command line. Every option can also come from an `INCIDENCIAS_*` environment variable
//! (see [`crate::config`]); everything printed is Spanish, clap's own words included
//! ([`spanish`]). `execute` only dispatches: each subcommand is one function, in the
//! module of what it works on.

mod accounts;
mod data;
mod error;
mod mail;
mod serve;
mod spanish;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{FromArgMatches, Parser, Subcommand};

pub use error::CliError;

use crate::clock::SystemClock;
use crate::config::{GlobalArgs, ServeArgs};
use crate::service::Service;
use crate::store::Store;

/// Servicio del Protocolo de tratamiento de incidencias de los trámites digitales
/// publicados en gob.mx: registra cada incidencia, lleva sus tiempos (SLO) y escala
/// automáticamente cuando se exceden.
#[derive(Debug, Parser)]
#[command(name = "incidencias", version, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inicia el servicio (API JSON) y aplica las migraciones pendientes.
    Serve(ServeArgs),
    /// Inicia el servicio sobre una base de demostración nueva, con datos de ejemplo, e
    /// imprime la dirección y las credenciales de cada usuario.
    ///
    /// La base de demostración es ./data/demo.db (con --database-url sqlite://RUTA.db,
    /// RUTA-demo.db), nunca la base de --database-url: se borra y se recrea en cada
    /// arranque. Para revisarla con los demás comandos, nómbrela: incidencias
    /// --database-url sqlite://./data/demo.db outbox list
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
        #[arg(value_name = "RUTA")]
        path: PathBuf,
    },
    /// Exporta catálogo, políticas y todos los eventos como líneas JSON.
    Export {
        /// Archivo de salida, que no debe existir (predeterminado: salida estándar).
        #[arg(long, short, value_name = "ARCHIVO")]
        output: Option<PathBuf>,
    },
    /// Importa una exportación en una base de datos vacía, verificando cada cadena; la
    /// base se crea sólo si el archivo es válido.
    Import {
        /// Archivo de entrada (predeterminado: entrada estándar).
        #[arg(value_name = "ARCHIVO")]
        path: Option<PathBuf>,
    },
    /// Mediciones de rendimiento (ver docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Crea un usuario.
    Create(NewUserArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewUserArgs {
    /// Correo del usuario, con el que inicia sesión.
    #[arg(long, value_name = "CORREO")]
    pub email: String,
    /// Nombre completo o del puesto.
    #[arg(long, value_name = "NOMBRE")]
    pub name: String,
    /// admin, helpdesk, validator o agency.
    #[arg(long, value_name = "ROL")]
    pub role: String,
    /// Dependencia (siglas o id), para el rol agency.
    #[arg(long, value_name = "DEPENDENCIA")]
    pub agency: Option<String>,
    /// Superior inmediato (correo o id): el siguiente nivel de escalamiento.
    #[arg(long, value_name = "SUPERIOR")]
    pub reports_to: Option<String>,
    /// Contraseña (mínimo 12 caracteres, ni el correo ni una común); sin ella, sólo acceso con token.
    #[arg(
        long,
        env = "INCIDENCIAS_NEW_PASSWORD",
        hide_env_values = true,
        value_name = "CONTRASEÑA"
    )]
    pub password: Option<String>,
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
        /// Sólo los correos en ese estado: pending (por enviar), sent (enviados) o dead
        /// (sin entregar tras todos los intentos).
        #[arg(long, value_parser = outbox_state(), value_name = "ESTADO")]
        state: Option<crate::service::OutboxState>,
        /// Cuántos correos mostrar, de 1 a 500.
        #[arg(long, default_value_t = 50, value_parser = limit, value_name = "N")]
        limit: i64,
    },
    /// Vuelve a poner en cola los correos muertos (uno con --id, o todos).
    Retry {
        /// El correo a reintentar (la primera columna de `outbox list`); sin él, todos
        /// los muertos.
        #[arg(long, value_name = "ID")]
        id: Option<i64>,
    },
}

/// `--state`: the outbox's own state names (clap lists them in the help and refuses any
/// other with its "valores posibles" message).
fn outbox_state() -> impl clap::builder::TypedValueParser<Value = crate::service::OutboxState> {
    use crate::service::OutboxState;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(OutboxState::ALL.map(OutboxState::as_str))
        .try_map(|name| OutboxState::parse(&name).ok_or(format!("estado desconocido: {name}")))
}

/// Most rows one `outbox list` prints: the service's bound for every list.
const MAX_LIMIT: i64 = crate::service::MAX_LIST;

fn limit(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "«{text}» no sirve: debe ser un número entero de 1 a {MAX_LIMIT}"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Crea un token de API e imprime sólo el token (se muestra una sola vez).
    Create {
        /// Correo del usuario dueño del token.
        #[arg(long, value_name = "CORREO")]
        email: String,
    },
    /// Revoca todos los tokens de API de un usuario.
    Revoke {
        /// Correo del usuario cuyos tokens se revocan.
        #[arg(long, value_name = "CORREO")]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recorre la cadena de hashes de cada incidencia; sale con código 1 si algo se alteró.
    Verify,
}

/// The binary's entry point: parses the command line (answering in Spanish, clap's own
/// messages included) and runs it; returns the process exit code.
pub fn main() -> i32 {
    let parsed = spanish::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => run(cli),
        Err(e) => spanish::report(&e),
    }
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
    match runtime.block_on(execute(&cli.global, command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn execute(global: &GlobalArgs, command: Command) -> Result<i32, CliError> {
    let url = global.database_url();
    match command {
        Command::Serve(args) => serve::serve(global, &args).await,
        Command::Demo(args) => serve::demo(global, &args).await,
        Command::Migrate => data::migrate(url).await,
        Command::User {
            command: UserCommand::Create(args),
        } => accounts::create_user(global, args).await,
        Command::Token {
            command: TokenCommand::Create { email },
        } => accounts::create_token(global, &email).await,
        Command::Token {
            command: TokenCommand::Revoke { email },
        } => accounts::revoke_tokens(global, &email).await,
        Command::Mail {
            command: MailCommand::Ingest,
        } => mail::ingest(global).await,
        Command::Outbox {
            command: OutboxCommand::List { state, limit },
        } => mail::outbox_list(global, state, limit).await,
        Command::Outbox {
            command: OutboxCommand::Retry { id },
        } => mail::outbox_retry(global, id).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => data::audit_verify(url).await,
        Command::Backup { path } => data::backup(url, &path).await,
        Command::Export { output } => data::export(url, output.as_deref()).await,
        Command::Import { path } => data::import(url, path.as_deref()).await,
        Command::Bench { command } => Ok(crate::bench::run(command).await?),
    }
}

/// The service the account and mail commands go through (the same door as the API), with
/// the link secret the servers use, so links it mints work there.
fn service(store: &Store, global: &GlobalArgs) -> Service {
    let service = Service::new(store.clone(), Arc::new(SystemClock))
        .with_mail_authserv(global.mail_authserv_id.as_deref());
    if let Some(secret) = &global.link_secret {
        service.use_link_secret(secret);
    }
    service
}
