//! The loop every queue worker runs (the outbox, webhooks, banner checks): drain what is
//! due, then sleep until the next item is due, a write of this process wakes it, or at
//! most [`POLL`] (what other instances queued is seen within that time); stop between
//! two passes when asked.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::service::{Service, ServiceError};

/// The longest sleep: rows queued by other instances are seen within this time.
pub const POLL: Duration = Duration::from_secs(30);

/// The shortest sleep between passes: a queue whose head is held back never spins.
pub const PAUSE: Duration = Duration::from_millis(50);

/// Runs `drain` until `shutdown`. `next` says when the next item is due (`None`:
/// nothing queued). A failed pass is logged under `what` and retried within 5 s.
pub async fn drain_until<D, DF, N, NF>(
    service: &Service,
    what: &'static str,
    wake: Arc<tokio::sync::Notify>,
    shutdown: impl Future<Output = ()>,
    drain: D,
    next: N,
) where
    D: Fn() -> DF,
    DF: Future<Output = Result<usize, ServiceError>>,
    N: Fn() -> NF,
    NF: Future<Output = Result<Option<Timestamp>, ServiceError>>,
{
    tokio::pin!(shutdown);
    loop {
        // Armed before the pass: a write during it is not missed.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Err(e) = drain().await {
            tracing::error!(error = %e, "error en {what}");
        }
        let now = service.now();
        let sleep = match next().await {
            Ok(Some(t)) => Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO),
            Ok(None) => POLL,
            Err(_) => Duration::from_secs(5),
        }
        .clamp(PAUSE, POLL);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = &mut notified => {}
            () = &mut shutdown => return,
        }
    }
}
