//! Durable SLO timers: warnings, breaches and escalations fired on time, once.
//!
//! Every append stores the incident's next due instant in `timers` (same transaction). The
//! scheduler sleeps until the earliest one, or until a write offers an earlier one
//! ([`crate::service::TimerWake`]); it never polls faster than that. When it wakes it
//! leases the due timers, and for each incident asks the core which actions are due
//! (`escalation::due_actions`), decides them as `Command::Fire`, and appends all their
//! events with their notifications (outbox rows) and the next due instant in one
//! transaction. The events' keys are unique in `fired_actions` and the events' own
//! `(folio, seq)` key makes a stale append fail, so no crash, restart or second instance
//! can fire an action twice. After downtime, everything overdue is due at once and fires in
//! due order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use incidencias_core::escalation::{ActionKey, ActionKind, DueAction, due_actions, next_due};
use incidencias_core::{Actor, Command, Folio, Incident, SloPolicy, decide};
use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinSet;

use crate::service::{OrgChart, Service, ServiceError};
use crate::store::{Effects, NewOutboxMessage, StoreError};

/// One executed action, for observers (tests, the benchmark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub key: ActionKey,
    pub due_at: Timestamp,
    pub fired_at: Timestamp,
}

pub type Observer = Arc<dyn Fn(&Fired) + Send + Sync>;

pub struct Scheduler {
    service: Service,
    /// This instance's name in leases.
    owner: String,
    /// How long a claimed timer is ours before another instance may take it over.
    lease: SignedDuration,
    /// Timers claimed per round trip.
    batch: i64,
    /// Incidents fired at once (their appends share SQLite commits).
    parallel: usize,
    /// Without a due timer, look again after this long anyway: another instance may have
    /// written timers (PostgreSQL) or died holding leases. `None`: sleep until woken.
    idle_recheck: Option<Duration>,
    observer: Option<Observer>,
}

impl Scheduler {
    pub fn new(service: Service) -> Scheduler {
        let multi_instance = service.store.backend() == crate::store::Backend::Postgres;
        Scheduler {
            owner: format!(
                "{}-{}",
                std::process::id(),
                Timestamp::now().as_nanosecond() % 1_000_000_000
            ),
            service,
            lease: SignedDuration::from_secs(30),
            batch: 1000,
            parallel: 64,
            idle_recheck: multi_instance.then_some(Duration::from_secs(5)),
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

    /// Timers claimed per round trip and incidents fired at once.
    pub fn with_batching(mut self, batch: i64, parallel: usize) -> Scheduler {
        self.batch = batch.max(1);
        self.parallel = parallel.max(1);
        self
    }

    pub fn with_observer(mut self, observer: Observer) -> Scheduler {
        self.observer = Some(observer);
        self
    }

    /// Gives a timer to open incidents that lack one (after an import, say). Run at start.
    pub async fn reconcile(&self) -> Result<usize, ServiceError> {
        let missing = self.service.store.incidents_without_timer().await?;
        if missing.is_empty() {
            return Ok(0);
        }
        let org = OrgChart::load(&self.service.store).await?;
        let mut set = 0;
        for folio in missing {
            if let Some(stored) = self.service.store.load_fresh(folio).await?
                && let Some(due) = next_due(&stored.incident, &org.ladder(&stored.incident))
            {
                self.service
                    .store
                    .set_timer(folio, Some(due), stored.incident.version)
                    .await?;
                set += 1;
            }
        }
        Ok(set)
    }

    /// Fires everything due now; returns when to look again (`None`: no timer at all).
    pub async fn tick(&self) -> Result<Option<Timestamp>, ServiceError> {
        // Loaded once per tick, and only when something is due: most wake-ups (every write
        // wakes the scheduler) find nothing and need no org chart.
        let mut org: Option<Arc<OrgChart>> = None;
        loop {
            let now = self.service.now();
            let lease_until = now.checked_add(self.lease).unwrap_or(Timestamp::MAX);
            let claimed = self
                .service
                .store
                .claim_due_timers(&self.owner, now, lease_until, self.batch)
                .await?;
            if claimed.is_empty() {
                break;
            }
            let org = match &org {
                Some(org) => org.clone(),
                None => org
                    .insert(Arc::new(OrgChart::load(&self.service.store).await?))
                    .clone(),
            };
            let mut tasks = JoinSet::new();
            for (folio, _) in claimed {
                while tasks.len() >= self.parallel {
                    if let Some(r) = tasks.join_next().await {
                        log_failure(r);
                    }
                }
                let (service, org, observer) =
                    (self.service.clone(), org.clone(), self.observer.clone());
                tasks.spawn(async move { fire_incident(&service, &org, folio, observer).await });
            }
            while let Some(r) = tasks.join_next().await {
                log_failure(r);
            }
        }
        Ok(self.service.store.next_timer(self.service.now()).await?)
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        if let Err(e) = self.reconcile().await {
            tracing::error!(error = %e, "no se pudieron revisar los temporizadores al inicio");
        }
        let wake = self.service.timers.clone();
        loop {
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

fn log_failure(r: Result<Result<usize, ServiceError>, tokio::task::JoinError>) {
    match r {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "no se pudo disparar un temporizador"),
        Err(e) => tracing::error!(error = %e, "tarea de temporizador interrumpida"),
    }
}

/// The notification an action sends (none for a breach: its escalation says it).
fn notification(
    org: &OrgChart,
    incident: &Incident,
    action: &DueAction,
) -> Option<NewOutboxMessage> {
    let kind = match action.key.kind {
        ActionKind::Warning => "slo_warning",
        ActionKind::Escalation => "escalation",
        ActionKind::Breach => return None,
    };
    let emails = |ids: &[incidencias_core::UserId]| -> Vec<String> {
        ids.iter().filter_map(|id| org.email(*id)).collect()
    };
    Some(NewOutboxMessage {
        kind: kind.into(),
        to: emails(&action.to),
        cc: emails(&action.cc),
        payload: serde_json::json!({
            "folio": incident.folio.to_string(),
            "clock": action.key.clock.to_string(),
            "level": action.key.level,
            "due_at": action.due_at.to_string(),
            // The deadline itself (a warning comes before it).
            "target_at": incident
                .clock(action.key.clock)
                .and_then(|c| c.instant_at_elapsed(c.target_ms()))
                .map(|t| t.to_string()),
            "severity": incident.severity.map(|s| s.as_str()),
            "procedures": org.procedures_of(incident),
        }),
    })
}

/// Fires what is due on one incident, in one append. Returns how many actions fired.
pub async fn fire_incident(
    service: &Service,
    org: &OrgChart,
    folio: Folio,
    observer: Option<Observer>,
) -> Result<usize, ServiceError> {
    for _ in 0..5 {
        let Some(prior) = service.store.load_fresh(folio).await? else {
            service.store.set_timer(folio, None, 0).await?;
            return Ok(0);
        };
        let now = service.now();
        let ladder = org.ladder(&prior.incident);
        let due = due_actions(&prior.incident, &ladder, now);
        if due.is_empty() {
            service
                .store
                .set_timer(
                    folio,
                    next_due(&prior.incident, &ladder),
                    prior.incident.version,
                )
                .await?;
            return Ok(0);
        }
        let policy = prior
            .incident
            .policy
            .clone()
            .unwrap_or_else(SloPolicy::seed);
        let mut state = prior.incident.clone();
        let mut events = Vec::new();
        let mut outbox = Vec::new();
        let mut fired = Vec::new();
        for action in due {
            let command = Command::Fire {
                key: action.key,
                ladder: ladder.clone(),
            };
            // Deciding on the evolving state: an action the previous one made moot is
            // refused here and simply not fired.
            let Ok(new) = decide(Some(&state), &Actor::System, &command, now, &policy) else {
                continue;
            };
            for e in &new {
                state = Incident::apply(Some(state), e)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
            }
            events.extend(new);
            outbox.extend(notification(org, &state, &action));
            fired.push(Fired {
                key: action.key,
                due_at: action.due_at,
                fired_at: now,
            });
        }
        if events.is_empty() {
            service
                .store
                .set_timer(folio, next_due(&state, &ladder), prior.incident.version)
                .await?;
            return Ok(0);
        }
        let effects = Effects {
            next_due: next_due(&state, &ladder),
            outbox,
            idempotency: None,
            used_link: None,
        };
        match service.store.append(&prior, events, effects, now).await {
            Ok(_) => {
                service.mail_wake.notify_one();
                if let Some(observe) = &observer {
                    fired.iter().for_each(|f| observe(f));
                }
                return Ok(fired.len());
            }
            // Another instance or a person changed the incident first: look again.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Conflict(format!(
        "{folio}: demasiados cambios simultáneos al disparar sus temporizadores"
    )))
}
