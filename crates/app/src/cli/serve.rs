//! `serve` and `demo`: read the Config, claim the database, listen, serve until a signal.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::CliError;
use crate::clock::SystemClock;
use crate::config::{Config, GlobalArgs, ServeArgs};
use crate::store::open::sqlite_file;
use crate::store::{Store, lock_serving};

pub async fn serve(global: &GlobalArgs, args: &ServeArgs) -> Result<i32, CliError> {
    let config = Config::new(global.database_url().to_string(), global, args)?;
    init_logs(&config.log);
    // The claim before the open: a second server must be refused before it migrates the
    // database under the first one's feet.
    let claim = match sqlite_file(&config.database_url) {
        Some(file) => Some(lock_serving(&file)?),
        None => None,
    };
    let store = Store::open(&config.database_url).await?;
    if let Some(claim) = claim {
        store.hold_claim(claim);
    }
    let listener = listen(&config.bind).await?;
    let addr = listener.local_addr()?;
    println!(
        "incidencias escuchando en http://{addr} (base de datos: {})",
        store.display_name()
    );
    tracing::info!(%addr, base = store.display_name(), "incidencias escuchando");
    serve_until_signal(config, store, listener).await
}

/// A fresh demo database (never the operator's: see `GlobalArgs::demo_database_url`),
/// seeded, then served.
pub async fn demo(global: &GlobalArgs, args: &ServeArgs) -> Result<i32, CliError> {
    let mut config = Config::new(global.demo_database_url()?, global, args)?;
    let path = sqlite_file(&config.database_url).unwrap_or_default();
    // Never delete a demo database another process is serving.
    let claim = lock_serving(&path)?;
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{path}{suffix}");
        if std::path::Path::new(&f).exists() {
            std::fs::remove_file(&f)?;
        }
    }
    let store = Store::open(&config.database_url).await?;
    store.hold_claim(claim);
    let seeded = crate::demo::seed(
        &store,
        jiff::Timestamp::now(),
        config.link_secret.as_deref(),
    )
    .await
    .map_err(|e| {
        CliError::Refused(format!(
            "no se pudieron crear los datos de ejemplo: {}",
            CliError::Service(e)
        ))
    })?;
    config.demo_accounts = seeded
        .users
        .iter()
        .map(|u| crate::config::DemoAccount {
            email: u.user.email.clone(),
            name: u.user.name.clone(),
            role: crate::web::views::role_label(&u.user.role),
        })
        .collect();
    // The demo's procedures point at gob.mx, which it cannot check: no banner checks.
    config.banner_check_grace = None;
    let listener = listen(&config.bind).await?;
    let addr = listener.local_addr()?;
    println!("incidencias (demostración) en http://{addr}");
    println!("  Páginas:      http://{addr}/entrar (las cuentas de demostración aparecen ahí)");
    println!("  API:          http://{addr}/api/v1/incidents");
    println!("  Documentación: http://{addr}/api/docs");
    println!("  Estado público: http://{addr}/estado");
    println!("  Simulador del portal (con la cortinilla real): http://{addr}/demo/portal");
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
    init_logs(&config.log);
    serve_until_signal(config, store, listener).await
}

async fn listen(bind: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(bind).await.map_err(|e| {
        CliError::Refused(format!(
            "no se pudo escuchar en {bind}: {}",
            super::error::io_reason(&e)
        ))
    })
}

/// Serves on the system clock until SIGINT/SIGTERM.
async fn serve_until_signal(
    config: Config,
    store: Store,
    listener: TcpListener,
) -> Result<i32, CliError> {
    crate::server::serve(
        config,
        store,
        Arc::new(SystemClock),
        listener,
        crate::server::shutdown_signal(),
    )
    .await?;
    Ok(0)
}

/// Logs to stderr at the level of INCIDENCIAS_LOG (checked by the Config).
fn init_logs(filter: &str) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
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
