//! `serve`: the HTTP API over a store, its workers (scheduler, outbox, IMAP) under one
//! supervisor, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::{AppParts, router};
use crate::mail::imap::ImapPoller;
use crate::mail::worker::OutboxWorker;
use crate::scheduler::Scheduler;
use crate::service::Service;
use crate::store::Store;
use crate::webhooks::banner::{BannerCheckSettings, BannerChecker};
use crate::webhooks::worker::{WebhookSettings, WebhookWorker};

/// Default address: local only, so a newcomer does not expose anything by accident.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// How long a worker that panicked waits before it runs again: long enough not to spin
/// on a fault that repeats at once, short enough that deadlines stay on time.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// Serves the API on `listener` until `shutdown` completes; requests in flight finish,
/// then the workers stop between two units of work, then the store closes.
pub async fn serve(
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = Service::new(store.clone(), clock.clone())
        .with_banner_check(config.banner_check_grace)
        .with_mail_authserv(config.mail_authserv_id.as_deref());
    if let Some(secret) = &config.link_secret {
        service.use_link_secret(secret);
    }
    let base_url = match &config.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", listener.local_addr()?),
    };
    // One signal stops the HTTP server (after the requests in flight) and every worker.
    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    {
        let service = service.clone();
        workers.push(tokio::spawn(supervise(
            "el programador de plazos",
            stopped.clone(),
            move |stop| Scheduler::new(service.clone()).run(until(stop)),
        )));
    }
    match config.smtp {
        Some(mut settings) => {
            settings.base_url = base_url.clone();
            // Checked when the Config was built; a failure here is a bug worth a log line,
            // not a reason to refuse the API.
            match OutboxWorker::new(service.clone(), &settings) {
                Ok(_) => {
                    let (service, wake) = (service.clone(), service.mail_wake.clone());
                    workers.push(tokio::spawn(supervise(
                        "la bandeja de salida",
                        stopped.clone(),
                        move |stop| {
                            let worker = OutboxWorker::new(service.clone(), &settings);
                            let wake = wake.clone();
                            async move {
                                match worker {
                                    Ok(worker) => worker.run(wake, until(stop)).await,
                                    Err(e) => tracing::error!(error = %e, "correo desactivado"),
                                }
                            }
                        },
                    )));
                }
                Err(e) => tracing::error!(error = %e, "correo desactivado"),
            }
        }
        None => tracing::warn!(
            "sin INCIDENCIAS_SMTP_URL: los correos se conservan en la bandeja de salida y \
             no se envían"
        ),
    }
    {
        let settings = WebhookSettings {
            ca_pem: config.ca_pem.clone(),
            allow_internal: config.webhook_allow_internal,
            ..WebhookSettings::default()
        };
        let (service, wake) = (service.clone(), service.webhook_wake.clone());
        workers.push(tokio::spawn(supervise(
            "los webhooks",
            stopped.clone(),
            move |stop| {
                let worker = WebhookWorker::new(service.clone(), settings.clone());
                let wake = wake.clone();
                async move {
                    match worker {
                        Ok(worker) => worker.run(wake, until(stop)).await,
                        Err(e) => tracing::error!(error = %e, "webhooks desactivados"),
                    }
                }
            },
        )));
    }
    if config.banner_check_grace.is_some() {
        let settings = BannerCheckSettings::new(&config.portal_origins, config.ca_pem.clone());
        let (service, wake) = (service.clone(), service.banner_wake.clone());
        workers.push(tokio::spawn(supervise(
            "la revisión de cortinillas",
            stopped.clone(),
            move |stop| {
                let checker = BannerChecker::new(service.clone(), settings.clone());
                let wake = wake.clone();
                async move {
                    match checker {
                        Ok(checker) => checker.run(wake, until(stop)).await,
                        Err(e) => {
                            tracing::error!(error = %e, "revisión de cortinillas desactivada")
                        }
                    }
                }
            },
        )));
    }
    if let Some(settings) = config.imap {
        let service = service.clone();
        workers.push(tokio::spawn(supervise(
            "el lector del buzón IMAP",
            stopped.clone(),
            move |stop| ImapPoller::new(service.clone(), settings.clone()).run(stop),
        )));
    }
    let app = router(
        AppParts {
            service,
            secure_cookies: config.secure_cookies,
            base_url: base_url.clone(),
            demo_accounts: Arc::new(config.demo_accounts.clone()),
            portal_origins: Arc::new(config.portal_origins.clone()),
            metrics_token: config.metrics_token.clone(),
        }
        .into(),
    );
    let served = crate::listen::serve(listener, app, config.limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    for worker in workers {
        let _ = worker.await;
    }
    store.close().await;
    served
}

/// Completes once `stop` turns true (or its sender is gone): the shutdown future the
/// scheduler and the outbox worker take.
async fn until(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the worker `make` builds until `stop` turns true, building and running it again,
/// after [`RESTART_PAUSE`], whenever it ends otherwise (a panic, or a return nobody asked
/// for): the API must never keep serving while deadlines, mail or the mailbox silently
/// stopped. Every worker is started, stopped and restarted this one way.
pub async fn supervise<F, Fut>(name: &'static str, stop: watch::Receiver<bool>, make: F)
where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let run = tokio::spawn(make(stop.clone()));
        let outcome = run.await;
        if *stop.borrow() {
            return;
        }
        match outcome {
            Err(e) if e.is_panic() => {
                tracing::error!(
                    worker = name,
                    "{name} se detuvo por un error interno; se reinicia en 1 s"
                );
            }
            Err(e) => {
                tracing::error!(worker = name, error = %e, "{name} se detuvo; se reinicia en 1 s");
            }
            Ok(()) => {
                tracing::error!(
                    worker = name,
                    "{name} terminó sin que se le pidiera; se reinicia en 1 s"
                );
            }
        }
        let mut waiting = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(RESTART_PAUSE) => {}
            _ = waiting.wait_for(|s| *s) => return,
        }
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_worker_that_panics_is_restarted_after_a_pause_and_stops_when_asked() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let counted = runs.clone();
        let started = Instant::now();
        let supervisor = tokio::spawn(supervise("la prueba", stopped, move |stop| {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                assert!(run > 1, "the first run fails on purpose");
                until(stop).await;
            }
        }));
        while runs.load(Ordering::SeqCst) < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never restarted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            started.elapsed() >= RESTART_PAUSE,
            "restarted only after the pause"
        );
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("the supervisor returns once stopped")
            .expect("the supervisor itself never panics");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one restart, no more");
    }

    #[tokio::test]
    async fn a_stop_during_the_pause_is_obeyed_at_once() {
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise("la prueba", stopped, |_stop| async {
            panic!("always fails");
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("returns")
            .expect("no panic");
        assert!(asked.elapsed() < RESTART_PAUSE, "did not sit out the pause");
    }
}
