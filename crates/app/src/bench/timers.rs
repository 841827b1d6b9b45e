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

use super::{Sample, Scratch, invalid, median};
use crate::clock::{Clock, ManualClock};
use crate::scheduler::{Fired, Scheduler};
use crate::service::Service;
use crate::store::{Effects, Store, StoreError};

#[derive(Debug, Args)]
pub struct TimersBench {
    /// Incidents with a pending deadline.
    #[arg(long, default_value_t = 100_000)]
    pub incidents: usize,
    /// Seconds over which their first deadlines are spread (the fixed replay).
    #[arg(long, default_value_t = 60)]
    pub spread_s: i64,
    /// Rounds of catch-up and of the intake baseline (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds of each intake round (`bench store`'s 64-writer intake, the baseline).
    #[arg(long, default_value_t = 5)]
    pub intake_seconds: u64,
    /// Only the catch-up and intake rounds (for profiling).
    #[arg(long)]
    pub catch_up_only: bool,
    /// Without the cron-style baseline (it takes two minutes).
    #[arg(long)]
    pub no_cron: bool,
    /// Incidents fired together in one write (the scheduler's default when absent).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Chunks fired at once (the scheduler's default when absent).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Timers claimed at once (the scheduler's default when absent).
    #[arg(long)]
    pub batch: Option<i64>,
    /// How the deadlines follow the order the incidents were created in.
    #[arg(long, value_enum, default_value_t = DeadlineOrder::Creation)]
    pub order: DeadlineOrder,
}

/// The relation between the order incidents are created in (their folios, and their
/// rows' places in the database) and the order their deadlines fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeadlineOrder {
    /// As in service: an incident notified later has its deadline later (the 64 writers
    /// take the next deadline from one counter).
    Creation,
    /// Each of the 64 writers creates its own block of consecutive deadlines, all at
    /// once: neighbouring deadlines belong to incidents created ~64 apart (a worst case
    /// for locality; the dataset of the earlier sessions' figures).
    Blocks,
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
pub(super) async fn dataset(
    url: &str,
    n: usize,
    epoch: Timestamp,
    spread_s: i64,
    order: DeadlineOrder,
) -> Result<(), StoreError> {
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
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64 {
        let (store, org, actor, policy, next) = (
            store.clone(),
            org.clone(),
            actor.clone(),
            policy.clone(),
            next.clone(),
        );
        let procedure = ProcedureId(procedure.id);
        let agency_id = incidencias_core::AgencyId(agency.id);
        let mut block = (t * per_task)..((t + 1) * per_task).min(n);
        tasks.spawn(async move {
            let mut take = || match order {
                DeadlineOrder::Creation => {
                    Some(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).filter(|i| *i < n)
                }
                DeadlineOrder::Blocks => block.next(),
            };
            while let Some(i) = take() {
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

/// Phase 1: the scheduler on a clock that replays `[epoch, epoch + spread_s]` in real time,
/// starting 8 s before the first deadline; lateness per firing, and the process CPU while
/// everything waits with nothing due (measured in those 8 s).
async fn replay(
    url: &str,
    epoch: Timestamp,
    spread_s: i64,
) -> Result<(Lateness, Option<f64>), StoreError> {
    let store = Store::open(url).await?;
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
    let until = epoch + SignedDuration::from_secs(spread_s + 3);
    while clock.now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    let _ = running.await;
    store.close().await;
    Ok((lateness(&taken(&log)), idle_cpu))
}

/// One catch-up: everything overdue at start, fired by one scheduler's `tick`.
struct CatchUp {
    seconds: f64,
    /// The process's CPU time over the catch-up, in seconds (`None` where `/proc` cannot
    /// tell).
    cpu: Option<f64>,
    /// The machine's idle and stolen cores over the catch-up.
    machine: Option<super::MachineUse>,
    fired: usize,
    distinct: usize,
    stored: i64,
}

async fn catch_up(url: &str, after: Timestamp, args: &TimersBench) -> Result<CatchUp, StoreError> {
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(ManualClock::new(after)));
    let (log, observer) = recorder();
    let started = Instant::now();
    let cpu_before = super::cpu_seconds("self");
    let machine = super::MachineClock::start();
    let mut scheduler = Scheduler::new(service).with_observer(observer);
    if args.chunk.is_some() || args.parallel.is_some() || args.batch.is_some() {
        scheduler = scheduler.with_batching(
            args.batch.unwrap_or(crate::scheduler::BATCH),
            args.chunk.unwrap_or(crate::scheduler::CHUNK),
            args.parallel.unwrap_or(crate::scheduler::PARALLEL),
        );
    }
    scheduler.tick().await.map_err(invalid)?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(super::cpu_seconds("self"))
        .map(|(a, b)| b - a);
    let machine = machine.stop();
    let fired = taken(&log);
    let distinct: std::collections::HashSet<_> = fired.iter().map(|f| f.key).collect();
    let stored: i64 = sqlx::query("SELECT COUNT(*) FROM fired_actions")
        .fetch_one(store.pool())
        .await
        .and_then(|r| sqlx::Row::try_get(&r, 0))
        .map_err(StoreError::db)?;
    store.close().await;
    Ok(CatchUp {
        seconds,
        cpu,
        machine,
        fired: fired.len(),
        distinct: distinct.len(),
        stored,
    })
}

pub async fn timers_bench(args: TimersBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("timers")?;
    let url_a = scratch.url_of("a.db");
    let rounds = args.rounds.max(1);
    // The virtual minute: deadlines from `epoch` to `epoch + spread`.
    let epoch: Timestamp = "2026-11-27T12:00:00Z".parse().map_err(invalid)?;
    let setup = Instant::now();
    eprintln!(
        "creando {} incidencias (orden de los plazos: {:?})...",
        args.incidents, args.order
    );
    dataset(&url_a, args.incidents, epoch, args.spread_s, args.order).await?;
    eprintln!("  listo en {:.1} s", setup.elapsed().as_secs_f64());
    {
        let a = Store::open(&url_a).await?;
        for copy in (0..rounds)
            .map(|r| format!("catch{r}.db"))
            .chain(["cron.db".to_string()])
        {
            a.backup(&scratch.dir().join(&copy)).await?;
        }
        a.close().await;
    }

    // Catch-up rounds, each beside a round of `bench store`'s intake (64 writers), the
    // rate the store takes new incidents at the same moment.
    let mut catch_ups = Vec::new();
    let mut intakes = Vec::new();
    for r in 0..rounds {
        eprintln!("ronda {}/{rounds}: alta (64 escritores)...", r + 1);
        let sample = super::intake(
            &scratch.url_of(&format!("intake{r}.db")),
            64,
            args.intake_seconds,
        )
        .await?;
        intakes.push(sample);
        eprintln!("ronda {}/{rounds}: puesta al día...", r + 1);
        let after = epoch + SignedDuration::from_secs(args.spread_s + 1);
        catch_ups.push(catch_up(&scratch.url_of(&format!("catch{r}.db")), after, &args).await?);
    }
    let rates: Vec<f64> = catch_ups
        .iter()
        .map(|c| c.fired as f64 / c.seconds)
        .collect();
    let capacity = median(rates.clone());
    let intake_rates: Vec<f64> = intakes.iter().map(|s| s.per_second).collect();
    let intake_rate = median(intake_rates.clone());
    let each = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("deadline order: {:?} (`--order`)\n", args.order);
    // CPU time per operation (whole process) and cores busy: on a shared machine they move
    // far less than the rates, and tell a CPU-bound measurement from one that waits.
    let (catch_cpu, catch_cores): (Vec<f64>, Vec<f64>) = catch_ups
        .iter()
        .filter_map(|c| {
            c.cpu.map(|cpu| {
                (
                    cpu * 1e6 / c.fired.max(1) as f64,
                    cpu / c.seconds.max(f64::MIN_POSITIVE),
                )
            })
        })
        .unzip();
    let intake_cpu: Vec<f64> = intakes.iter().filter_map(|s| s.cpu_us_per_op).collect();
    let intake_cores: Vec<f64> = intakes.iter().filter_map(Sample::cores_busy).collect();
    let cpu_cells = |us: &[f64], cores: &[f64]| {
        if us.is_empty() {
            return " | ".to_string();
        }
        format!("{:.0} | {:.2}", median(us.to_vec()), median(cores.to_vec()))
    };
    println!(
        "| measurement (rounds: {rounds}) | per second (median) | CPU µs per operation | cores busy | machine: idle / stolen cores | per round |"
    );
    println!("|---|---|---|---|---|---|");
    let intake_machine: Vec<_> = intakes.iter().map(|s| s.machine).collect();
    let catch_machine: Vec<_> = catch_ups.iter().map(|c| c.machine).collect();
    println!(
        "| intake, SQLite, 64 writers (`bench store`) | {intake_rate:.0} | {} | {} | {} |",
        cpu_cells(&intake_cpu, &intake_cores),
        super::machine_cell(&intake_machine),
        each(&intake_rates)
    );
    println!(
        "| catch-up firing, {} overdue at start | {capacity:.0} | {} | {} | {} |",
        args.incidents,
        cpu_cells(&catch_cpu, &catch_cores),
        super::machine_cell(&catch_machine),
        each(&rates)
    );
    println!(
        "\nratio catch-up firing / intake: {:.2}",
        capacity / intake_rate.max(f64::MIN_POSITIVE)
    );
    for (r, c) in catch_ups.iter().enumerate() {
        println!(
            "catch-up round {}: {} overdue fired in {:.1} s ({} firings, {} distinct keys, {} stored keys)",
            r + 1,
            args.incidents,
            c.seconds,
            c.fired,
            c.distinct,
            c.stored
        );
    }
    if args.catch_up_only {
        return Ok(0);
    }

    // The replay at half the measured capacity: as many incidents, their deadlines
    // arriving at `capacity / 2` per second.
    let half = (capacity / 2.0).max(1.0);
    let spread_half = ((args.incidents as f64 / half).ceil() as i64).max(10);
    eprintln!(
        "réplica a la mitad de la capacidad: {} plazos en {spread_half} s ({half:.0}/s)...",
        args.incidents
    );
    let url_half = scratch.url_of("half.db");
    dataset(&url_half, args.incidents, epoch, spread_half, args.order).await?;
    let (at_half, _) = replay(&url_half, epoch, spread_half).await?;

    eprintln!(
        "réplica fija: {} plazos en {} s...",
        args.incidents, args.spread_s
    );
    let (phase1, idle_cpu) = replay(&url_a, epoch, args.spread_s).await?;

    let cron = if args.no_cron {
        None
    } else {
        Some(cron_baseline(&scratch.url_of("cron.db"), epoch, args.spread_s).await?)
    };

    println!();
    println!("| replay (SQLite) | deadlines | fired | lateness p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, over: String, l: &Lateness| {
        println!(
            "| {name} | {} over {over} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            args.incidents, l.fired, l.p50_ms, l.p99_ms, l.max_ms
        );
    };
    row(
        &format!("scheduler at half the capacity ({half:.0} deadlines/s)"),
        format!("{spread_half} s"),
        &at_half,
    );
    row(
        "scheduler, fixed replay",
        format!("{} s", args.spread_s),
        &phase1,
    );
    if let Some((scans, cron)) = &cron {
        row(
            &format!("cron-style scan every 60 s ({scans} scans)"),
            format!("{} s", args.spread_s),
            cron,
        );
    }
    println!();
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

/// Phase 3: the cron-style baseline on the replayed minute: every 60 s, read all open
/// incidents and fire what is due (as `rt-crontool` does from cron). The scans and the
/// lateness.
async fn cron_baseline(
    url: &str,
    epoch: Timestamp,
    spread_s: i64,
) -> Result<(i64, Lateness), StoreError> {
    eprintln!("línea base tipo cron ({} s)...", spread_s * 2 + 10);
    let store = Store::open(url).await?;
    let clock = Arc::new(ReplayClock {
        origin: epoch - SignedDuration::from_secs(5),
        start: Instant::now(),
    });
    let service = Service::new(store.clone(), clock.clone());
    let org = service.org_chart().await.map_err(invalid)?;
    let (log, observer) = recorder();
    let mut scans = 0;
    let last_deadline = epoch + SignedDuration::from_secs(spread_s);
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

    Ok((scans, cron))
}
