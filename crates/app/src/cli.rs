//! Command line. Every option can also come from an `INCIDENCIAS_*` environment variable.

use std::io::{BufReader, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Crea la base de datos si no existe y aplica las migraciones pendientes.
    Migrate,
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
