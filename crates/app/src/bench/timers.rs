//! `incidencias bench timers`: 100,000 open incidents whose first deadlines fall over one
//! minute, on SQLite. Three phases on three copies of the same database:
//!
//! 1. the scheduler, on a clock that replays the minute in real time: firing lateness
//!    (fire instant minus due instant), and CPU while everything waits with nothing due;
//! 2. catch-up: the same 100,000 all overdue at start, fired once each, timed;
//! 3. the cron-style baseline: scan all open incidents every 60 s (as `rt-crontool` runs
//!    from cron) on the same replayed minute, and its lateness.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use incidencias_core::escalation::next_due;
use incidencias_core::{
    Actor, Channel, Command, IncidentKind, NewReport, ProcedureId, Role, Severity, SloPolicy,
    decide,
};
use jiff::{SignedDuration, Timestamp};

use super::{Scratch, invalid, median};
use crate::clock::{Clock, ManualClock};
use crate::scheduler::{Fired, Scheduler};
use crate::service::Service;
use crate::store::{Effects, Store, StoreError};

#[derive(Debug, Args)]
pub struct TimersBench {
    /// Incidents with a pending deadline.
    #[arg(long, default_value_t = 100_000)]
    pub incidents: usize,
    /// Seconds over which their first deadlines are spread.
    #[arg(long, default_value_t = 60)]
    pub spread_s: i64,
}

/// Real time, shifted: `now()` is `origin` at `start` and advances with the wall clock.
struct ReplayClock {
    origin: Timestamp,
    start: Instant,
}

impl Clock for ReplayClock {
    fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::ZERO);
        Timestamp::from_millisecond((self.origin + elapsed).as_millisecond()).unwrap_or(self.origin)
    }
}

/// Process CPU time (user + system) so far, from /proc (Linux); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

struct Lateness {
    fired: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn lateness(fired: &[Fired]) -> Lateness {
    let mut ms: Vec<f64> = fired
        .iter()
        .map(|f| f.fired_at.duration_since(f.due_at).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if ms.is_empty() {
            return 0.0;
        }
        ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1]
    };
    Lateness {
        fired: ms.len(),
        p50_ms: median(ms.clone()),
        p99_ms: pct(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
    }
}

/// Builds the dataset: `n` critical incidents, notified so that their acknowledgment
/// warnings (600 s after notification) fall at `epoch + i * spread / n`.
async fn dataset(url: &str, n: usize, epoch: Timestamp, spread_s: i64) -> Result<(), StoreError> {
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(ManualClock::new(epoch)));
    let super::BenchCatalogue {
        agency,
        helpdesk,
        procedure,
        ..
    } = super::bench_catalogue(&service).await?;
    // Acknowledgment of a critical incident in 800 s: the warning comes at 600 s.
    let mut policy = SloPolicy::seed();
    policy.targets.ack.critical = 800;
    let org = service.org_chart().await.map_err(invalid)?;
    let actor = Actor::User {
        id: helpdesk.id,
        role: Role::Helpdesk,
        agency: None,
    };
    let per_task = n.div_ceil(64);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64 {
        let (store, org, actor, policy) =
            (store.clone(), org.clone(), actor.clone(), policy.clone());
        let procedure = ProcedureId(procedure.id);
        let agency_id = incidencias_core::AgencyId(agency.id);
        tasks.spawn(async move {
            for i in (t * per_task)..((t + 1) * per_task).min(n) {
                let offset_ms = (i as i64) * spread_s * 1000 / (n as i64);
                let due = epoch + SignedDuration::from_millis(offset_ms);
                let notified = due - SignedDuration::from_secs(600);
                let (actor, policy, org) = (actor.clone(), policy.clone(), org.clone());
                store
                    .create_incident(
                        2026,
                        notified,
                        |folio| {
                            let report = Command::Report(NewReport {
                                folio,
                                agency_id,
                                procedure_ids: vec![procedure],
                                kind: IncidentKind::Unavailable,
                                description: "Carga de temporizadores".into(),
                                occurred_at: notified - SignedDuration::from_mins(2),
                                channel: Channel::Monitor,
                            });
                            let refused = StoreError::Invalid;
                            let mut events = decide(None, &actor, &report, notified, &policy)
                                .map_err(|e| refused(e.to_string()))?;
                            let state = incidencias_core::Incident::replay(&events)
                                .map_err(|e| refused(e.to_string()))?;
                            let notify = Command::Notify {
                                severity: Severity::Critical,
                                disable_button: true,
                                occurred_at: None,
                            };
                            events.extend(
                                decide(Some(&state), &actor, &notify, notified, &policy)
                                    .map_err(|e| refused(e.to_string()))?,
                            );
                            Ok::<_, StoreError>(events)
                        },
                        |stored, _| Effects {
                            next_due: next_due(&stored.incident, &org.ladder(&stored.incident)),
                            ..Effects::default()
                        },
                    )
                    .await?;
            }
            Ok::<(), StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(invalid)??;
    }
    store.close().await;
    Ok(())
}

fn recorder() -> (Arc<Mutex<Vec<Fired>>>, crate::scheduler::Observer) {
    let log: Arc<Mutex<Vec<Fired>>> = Arc::default();
    let sink = log.clone();
    (
        log,
        Arc::new(move |f: &Fired| {
            if let Ok(mut l) = sink.lock() {
                l.push(f.clone());
            }
        }),
    )
}

fn taken(log: &Mutex<Vec<Fired>>) -> Vec<Fired> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

pub async fn timers_bench(args: TimersBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("timers")?;
    let dir = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("/bench.db")
        .to_string();
    let url_a = format!("sqlite://{dir}/a.db");
    // The virtual minute: deadlines from `epoch` to `epoch + spread`.
    let epoch: Timestamp = "2026-11-27T12:00:00Z".parse().map_err(invalid)?;
    let setup = Instant::now();
    eprintln!("creando {} incidencias...", args.incidents);
    dataset(&url_a, args.incidents, epoch, args.spread_s).await?;
    eprintln!("  listo en {:.1} s", setup.elapsed().as_secs_f64());
    {
        let a = Store::open(&url_a).await?;
        a.backup(std::path::Path::new(&format!("{dir}/b.db")))
            .await?;
        a.backup(std::path::Path::new(&format!("{dir}/c.db")))
            .await?;
        a.close().await;
    }

    // Phase 1: the scheduler on the replayed minute, starting 8 s before the first deadline.
    eprintln!(
        "fase 1: programador sobre el minuto ({} s)...",
        args.spread_s + 11
    );
    let store = Store::open(&url_a).await?;
    let clock = Arc::new(ReplayClock {
        origin: epoch - SignedDuration::from_secs(8),
        start: Instant::now(),
    });
    let service = Service::new(store.clone(), clock.clone());
    let (log, observer) = recorder();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(
        Scheduler::new(service)
            .with_observer(observer)
            .run(async move {
                let _ = stopped.await;
            }),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu = cpu_time()
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64() / wall0.elapsed().as_secs_f64());
    let until = epoch + SignedDuration::from_secs(args.spread_s + 3);
    while clock.now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    let _ = running.await;
    store.close().await;
    let phase1 = lateness(&taken(&log));

    // Phase 2: catch-up, everything overdue at start.
    eprintln!("fase 2: puesta al día...");
    let store = Store::open(&format!("sqlite://{dir}/b.db")).await?;
    let after = epoch + SignedDuration::from_secs(args.spread_s + 1);
    let service = Service::new(store.clone(), Arc::new(ManualClock::new(after)));
    let (log, observer) = recorder();
    let started = Instant::now();
    Scheduler::new(service)
        .with_observer(observer)
        .tick()
        .await
        .map_err(invalid)?;
    let catch_up = started.elapsed();
    let fired = taken(&log);
    let unique: std::collections::HashSet<_> = fired.iter().map(|f| f.key).collect();
    let stored_keys: i64 = sqlx::query("SELECT COUNT(*) FROM fired_actions")
        .fetch_one(store.pool())
        .await
        .and_then(|r| sqlx::Row::try_get(&r, 0))
        .map_err(StoreError::db)?;
    store.close().await;

    // Phase 3: the cron-style baseline on the same replayed minute: every 60 s, read all
    // open incidents and fire what is due.
    eprintln!(
        "fase 3: línea base tipo cron ({} s)...",
        args.spread_s * 2 + 10
    );
    let store = Store::open(&format!("sqlite://{dir}/c.db")).await?;
    let clock = Arc::new(ReplayClock {
        origin: epoch - SignedDuration::from_secs(5),
        start: Instant::now(),
    });
    let service = Service::new(store.clone(), clock.clone());
    let org = service.org_chart().await.map_err(invalid)?;
    let (log, observer) = recorder();
    let mut scans = 0;
    let last_deadline = epoch + SignedDuration::from_secs(args.spread_s);
    loop {
        scans += 1;
        let scan_at = clock.now();
        let (open, _) = store
            .list_incidents(crate::store::ListQuery {
                state: Some(incidencias_core::IncidentState::AwaitingAck),
                limit: u64::MAX >> 1,
                ..Default::default()
            })
            .await?;
        for incident in open {
            let ladder = org.ladder(&incident);
            if !incidencias_core::escalation::due_actions(&incident, &ladder, clock.now())
                .is_empty()
            {
                let fired = service.fire(incident.folio).await.map_err(invalid)?;
                fired.iter().for_each(|f| observer(f));
            }
        }
        // Every deadline has passed and been scanned after: done.
        if scan_at > last_deadline {
            break;
        }
        // Like cron: the next run starts at the next minute mark, whatever this one took.
        let next_mark =
            epoch - SignedDuration::from_secs(5) + SignedDuration::from_secs(60 * scans);
        let wait = next_mark.duration_since(clock.now());
        if let Ok(wait) = Duration::try_from(wait) {
            tokio::time::sleep(wait).await;
        }
    }
    store.close().await;
    let cron = lateness(&taken(&log));

    println!(
        "| measurement ({} incidents, deadlines over {} s, SQLite) | fired | lateness p50 | p99 | max |",
        args.incidents, args.spread_s
    );
    println!("|---|---|---|---|---|");
    println!(
        "| scheduler (sleep until due / woken) | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
        phase1.fired, phase1.p50_ms, phase1.p99_ms, phase1.max_ms
    );
    println!(
        "| cron-style scan every 60 s ({scans} scans) | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
        cron.fired, cron.p50_ms, cron.p99_ms, cron.max_ms
    );
    println!();
    println!(
        "catch-up: {} overdue at start fired in {:.1} s ({} firings, {} distinct keys, {} stored keys)",
        args.incidents,
        catch_up.as_secs_f64(),
        fired.len(),
        unique.len(),
        stored_keys
    );
    match idle_cpu {
        Some(c) => println!(
            "CPU while {} timers wait with nothing due: {:.2} % of one core",
            args.incidents,
            c * 100.0
        ),
        None => println!("CPU while waiting: not measurable on this system"),
    }
    Ok(0)
}
