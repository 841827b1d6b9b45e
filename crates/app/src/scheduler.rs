//! Durable SLO timers: warnings, breaches and escalations fired on time, once.
//!
//! Every append stores the incident's next due instant in `timers` (same transaction). The
//! scheduler sleeps until the earliest one, or until a write offers an earlier one
//! ([`crate::service::TimerWake`]); it never polls faster than that. When it wakes it
//! leases the due timers and, for each incident, asks the service to fire what is due
//! ([`Service::fire`]: the core's `escalation::due_actions`, decided as `Command::Fire` and
//! appended with their notifications and the next due instant in one transaction, through
//! the same use-case loop as every request). Leased timers are fired in chunks
//! ([`Service::fire_many`]): a chunk's incidents are read in one query and appended in one
//! write, so a burst of deadlines costs a few round trips per chunk instead of several per
//! incident; an incident changed meanwhile falls back to its own firing. The events' keys are unique in `fired_actions` and the events' own
//! `(folio, seq)` key makes a stale append fail, so no crash, restart or second instance
//! can fire an action twice. After downtime, everything overdue is due at once and fires in
//! due order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use std::collections::VecDeque;
use tokio::task::{JoinHandle, JoinSet};

use incidencias_core::Folio;

pub use crate::service::Fired;
use crate::service::{Service, ServiceError};

pub type Observer = Arc<dyn Fn(&Fired) + Send + Sync>;

/// Incidents fired together by default: read in one query, appended in one write.
/// 128 and 8 chunks at once (docs/benchmarks.md, issue 15, tenth session): with 64 and 4
/// a catch-up left ~0.4 of the two cores idle, the writer waiting for chunks between its
/// commits; with 1,024 firings in flight it fired +15 %, +22 % and −4 % per second in
/// three alternated pairs against the old defaults.
pub const CHUNK: usize = 128;

/// Timers claimed at once.
pub const BATCH: i64 = 1000;
/// Chunks fired at once by default (the store keeps as many idle read connections for
/// them: `store/readers.rs`).
pub const PARALLEL: usize = 8;
/// Shortest time between the starts of two ticks by default. Deadlines spread over a
/// burst (one every few milliseconds) are then fired a few at a time instead of one
/// round of claim, firing and look-ahead each, and instances sharing a database do not
/// all wake for each single deadline to race for it; a firing is at most this much later.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The running claim's answer (pending forever when there is none: that branch is off).
async fn claimed<T>(claim: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match claim {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

pub struct Scheduler {
    service: Service,
    /// This instance's name in leases.
    owner: String,
    /// How long a claimed timer is ours before another instance may take it over.
    lease: SignedDuration,
    /// Timers claimed per round trip.
    batch: i64,
    /// Incidents fired together: read in one query, appended in one write.
    chunk: usize,
    /// Chunks fired at once (while one is written, the next are read and decided).
    parallel: usize,
    /// Without a due timer, look again after this long anyway: another instance may have
    /// written timers (PostgreSQL) or died holding leases. `None`: sleep until woken.
    idle_recheck: Option<Duration>,
    /// Shortest time between the starts of two ticks.
    min_interval: Duration,
    observer: Option<Observer>,
}

impl Scheduler {
    pub fn new(service: Service) -> Scheduler {
        let multi_instance = service.shared_database();
        Scheduler {
            owner: format!(
                "{}-{}",
                std::process::id(),
                Timestamp::now().as_nanosecond() % 1_000_000_000
            ),
            service,
            lease: SignedDuration::from_secs(30),
            batch: BATCH,
            chunk: CHUNK,
            parallel: PARALLEL,
            idle_recheck: multi_instance.then_some(Duration::from_secs(5)),
            min_interval: MIN_INTERVAL,
            observer: None,
        }
    }

    pub fn with_owner(mut self, owner: &str) -> Scheduler {
        self.owner = owner.to_string();
        self
    }

    pub fn with_lease(mut self, lease: SignedDuration) -> Scheduler {
        self.lease = lease;
        self
    }

    /// Timers claimed per round trip, incidents fired together in one write, and such
    /// chunks fired at once.
    pub fn with_batching(mut self, batch: i64, chunk: usize, parallel: usize) -> Scheduler {
        self.batch = batch.max(1);
        self.chunk = chunk.max(1);
        self.parallel = parallel.max(1);
        self
    }

    pub fn with_observer(mut self, observer: Observer) -> Scheduler {
        self.observer = Some(observer);
        self
    }

    /// Gives a timer to open incidents that lack one (after an import, say). Run at start.
    pub async fn reconcile(&self) -> Result<usize, ServiceError> {
        self.service.reconcile_timers().await
    }

    /// Fires everything due now; returns when to look again (`None`: no timer at all).
    ///
    /// A pipeline: up to `parallel` chunks fire at once, and the next batch is claimed
    /// while the current one fires (its leases keep the chunks in flight out of it), so
    /// the writer never waits for a claim between batches.
    pub async fn tick(&self) -> Result<Option<Timestamp>, ServiceError> {
        let mut queue: VecDeque<Folio> = VecDeque::new();
        let mut tasks: JoinSet<Result<Vec<Fired>, ServiceError>> = JoinSet::new();
        let mut claim: Option<JoinHandle<Result<Vec<Folio>, ServiceError>>> = None;
        // A claim came back empty while chunks were firing: claim again once they are done
        // (they may have left timers due); one that comes back empty with nothing in
        // flight ends the tick.
        let mut empty_while_busy = false;
        let mut exhausted = false;
        let mut failed = None;
        loop {
            let low = queue.len() < self.chunk * self.parallel;
            if !exhausted
                && failed.is_none()
                && claim.is_none()
                && low
                && (!empty_while_busy || tasks.is_empty())
            {
                claim = Some(self.spawn_claim());
            }
            while tasks.len() < self.parallel && !queue.is_empty() {
                let chunk: Vec<Folio> = queue.drain(..self.chunk.min(queue.len())).collect();
                let service = self.service.clone();
                tasks.spawn(async move { service.fire_many(&chunk).await });
            }
            if tasks.is_empty() && claim.is_none() {
                break;
            }
            tokio::select! {
                Some(r) = tasks.join_next(), if !tasks.is_empty() => self.observe(r),
                r = claimed(&mut claim), if claim.is_some() => {
                    claim = None;
                    match r {
                        Ok(Ok(folios)) if folios.is_empty() => {
                            if tasks.is_empty() && queue.is_empty() {
                                exhausted = true;
                            } else {
                                empty_while_busy = true;
                            }
                        }
                        Ok(Ok(mut folios)) => {
                            empty_while_busy = false;
                            // A short batch took every timer due when it was claimed:
                            // claiming again now would only race the other instances
                            // for the few that fell due since. Those (and any a fallback
                            // firing left due) are the next tick's, which `next_timer`
                            // makes start at once.
                            exhausted = (folios.len() as i64) < self.batch;
                            // All of them are due now; in folio order, a chunk's rows
                            // sit close together in every table and index keyed by
                            // folio, so its write touches fewer pages.
                            folios.sort_unstable();
                            queue.extend(folios);
                        }
                        Ok(Err(e)) => failed = Some(e),
                        Err(e) => failed = Some(ServiceError::Internal(e.to_string())),
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.service.next_timer().await
    }

    /// Leases the next batch of due timers, in a task of its own.
    fn spawn_claim(&self) -> JoinHandle<Result<Vec<Folio>, ServiceError>> {
        let service = self.service.clone();
        let owner = self.owner.clone();
        let (lease, batch) = (self.lease, self.batch);
        tokio::spawn(async move {
            let lease_until = service.now().checked_add(lease).unwrap_or(Timestamp::MAX);
            service.claim_due_timers(&owner, lease_until, batch).await
        })
    }

    /// Reports a firing to the observer, or logs its failure.
    fn observe(&self, r: Result<Result<Vec<Fired>, ServiceError>, tokio::task::JoinError>) {
        match r {
            Ok(Ok(fired)) => {
                for f in &fired {
                    let late = f.fired_at.duration_since(f.due_at).as_secs_f64();
                    crate::metrics::metrics().timer_fired(late);
                }
                if let Some(observe) = &self.observer {
                    fired.iter().for_each(|f| observe(f));
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "no se pudo disparar un temporizador"),
            Err(e) => tracing::error!(error = %e, "tarea de temporizador interrumpida"),
        }
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        if let Err(e) = self.reconcile().await {
            tracing::error!(error = %e, "no se pudieron revisar los temporizadores al inicio");
        }
        let wake = self.service.timers.clone();
        let mut last_tick: Option<std::time::Instant> = None;
        loop {
            // Ticks start at least `min_interval` apart (writes meanwhile are seen by
            // the tick itself: it claims whatever is due when it starts).
            if let Some(wait) = last_tick.and_then(|t| self.min_interval.checked_sub(t.elapsed()))
                && !wait.is_zero()
            {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut shutdown => return,
                }
            }
            last_tick = Some(std::time::Instant::now());
            // Listen before looking, so a write between the look and the sleep still wakes.
            let notified = wake.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            wake.target_ms.store(i64::MAX, Ordering::SeqCst);
            let next = match self.tick().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "error al disparar temporizadores; reintento en 1 s");
                    Some(self.service.now() + SignedDuration::from_secs(1))
                }
            };
            let now = self.service.now();
            let sleep = match next {
                Some(at) => {
                    wake.target_ms
                        .fetch_min(at.as_millisecond(), Ordering::SeqCst);
                    let wait = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
                    Some(self.idle_recheck.map_or(wait, |r| wait.min(r)))
                }
                None => self.idle_recheck,
            };
            match sleep {
                Some(d) => tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = &mut notified => {}
                    () = &mut shutdown => return,
                },
                None => tokio::select! {
                    () = &mut notified => {}
                    () = &mut shutdown => return,
                },
            }
        }
    }
}
