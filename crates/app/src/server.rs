//! `serve`: the HTTP API over a store, with graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::http::{AppState, router};
use crate::mail::imap::{ImapPoller, ImapSettings};
use crate::mail::worker::{MailSettings, OutboxWorker};
use crate::scheduler::Scheduler;
use crate::service::Service;
use crate::store::Store;

/// Default address: local only, so a newcomer does not expose anything by accident.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Serves the API on `listener` until `shutdown` completes; requests in flight finish.
pub async fn serve(
    store: Store,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    secure_cookies: bool,
    mail: Option<MailSettings>,
    imap: Option<ImapSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = Service::new(store.clone(), clock.clone());
    // One signal stops both the HTTP server (after the requests in flight) and the
    // scheduler (between firings; a firing is one transaction, so never half done).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(supervise(service.clone(), stopped.clone()));
    let mailer = match mail {
        Some(settings) => match OutboxWorker::new(service.clone(), &settings) {
            Ok(worker) => {
                let mut stop = stopped.clone();
                Some(tokio::spawn(worker.run(
                    service.mail_wake.clone(),
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "correo desactivado");
                None
            }
        },
        None => {
            tracing::warn!(
                "sin INCIDENCIAS_SMTP_URL: los correos se conservan en la bandeja de salida y \
                 no se envían"
            );
            None
        }
    };
    let poller = imap.map(|settings| {
        tokio::spawn(ImapPoller::new(service.clone(), settings).run(stopped.clone()))
    });
    let app = router(AppState {
        service,
        secure_cookies,
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    let _ = scheduler.await;
    if let Some(m) = mailer {
        let _ = m.await;
    }
    if let Some(p) = poller {
        let _ = p.await;
    }
    store.close().await;
    served
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("señal de término recibida; terminando las solicitudes en curso");
}

/// Runs the scheduler, restarting it if it ever stops by a panic: the HTTP side must never
/// keep serving while deadlines silently stop firing.
async fn supervise(service: Service, stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        let mut stop = stopped.clone();
        let run = tokio::spawn(Scheduler::new(service.clone()).run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        match run.await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "el programador de plazos se detuvo; reiniciando en 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if *stopped.borrow() {
                    return;
                }
            }
        }
    }
}
