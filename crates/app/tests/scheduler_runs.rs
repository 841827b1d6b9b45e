//! The scheduler running for real: on the wall clock (firings within a second of their due
//! instants), killed in the middle of a batch and restarted (never a duplicate), and two
//! instances on one PostgreSQL database (each of 1,000 simultaneous timers fired once).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::Api;
use incidencias::clock::{ManualClock, SystemClock};
use incidencias::scheduler::{Fired, Scheduler};
use incidencias::service::{Caller, NewIncidentInput, PolicyInput, Service};
use incidencias::store::Store;
use incidencias_core::escalation::ActionKey;
use incidencias_core::{Channel, Command, Folio, IncidentKind, ProcedureId, Severity};
use jiff::{SignedDuration, Timestamp};

fn caller(api: &Api, email: &str) -> Caller {
    let i = api
        .users
        .iter()
        .position(|u| u.email == email)
        .unwrap_or_else(|| panic!("user {email}"));
    api.callers[i].clone()
}

/// Reports and notifies `n` critical incidents through `service`, 16 at a time.
async fn notified_incidents(api: &Api, service: &Service, n: usize) -> Vec<Folio> {
    let helpdesk = caller(api, "mesa@ugd.gob.mx");
    let procedure = ProcedureId(api.procedure);
    let mut folios = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in chunk {
            let (service, helpdesk) = (service.clone(), helpdesk.clone());
            tasks.spawn(async move {
                let occurred = service.now() - SignedDuration::from_mins(1);
                let created = service
                    .report(
                        &helpdesk,
                        NewIncidentInput {
                            procedure_ids: vec![procedure],
                            kind: IncidentKind::Unavailable,
                            description: "Sin servicio".into(),
                            occurred_at: occurred,
                            channel: Channel::Monitor,
                        },
                        None,
                    )
                    .await
                    .expect("report");
                let doc: serde_json::Value = serde_json::from_str(&created.body).expect("json");
                let folio = Folio::parse(doc["folio"].as_str().expect("folio")).expect("folio");
                service
                    .act(
                        &helpdesk,
                        folio,
                        Command::Notify {
                            severity: Severity::Critical,
                            disable_button: true,
                            occurred_at: None,
                        },
                        None,
                    )
                    .await
                    .expect("notify");
                folio
            });
        }
        while let Some(f) = tasks.join_next().await {
            folios.push(f.expect("task"));
        }
    }
    folios
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_wall_clock_warning_breach_and_level_1_fire_within_a_second() {
    let db = common::TestDb::sqlite();
    let api = Api::new(&db.url).await;
    let service = Service::new(api.store.clone(), Arc::new(SystemClock));
    // A drill policy: critical acknowledgment in 2 s (warning at 1.5 s).
    let admin = caller(&api, "admin@ugd.gob.mx");
    let mut targets = incidencias_core::slo::SEED_TARGETS;
    targets.ack.critical = 2;
    service
        .add_policy(
            &admin,
            PolicyInput {
                effective_from: None,
                targets,
                warning_ratio: Some(0.75),
                escalation_repeat_s: None,
                objective_pct: None,
            },
        )
        .await
        .expect("drill policy");
    let log: Arc<Mutex<Vec<Fired>>> = Arc::default();
    let sink = log.clone();
    let scheduler = Scheduler::new(service.clone()).with_observer(Arc::new(move |f: &Fired| {
        sink.lock().expect("log").push(f.clone())
    }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(scheduler.run(async move {
        let _ = stopped.await;
    }));
    let folios = notified_incidents(&api, &service, 1).await;
    // Wait (at most 10 s) for warning, breach and level 1.
    for _ in 0..100 {
        if log.lock().expect("log").len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    let _ = running.await;
    let fired = log.lock().expect("log").clone();
    let kinds: Vec<(&str, u32)> = fired
        .iter()
        .map(|f| (f.key.kind.as_str(), f.key.level))
        .collect();
    assert_eq!(
        kinds,
        [("warning", 0), ("breach", 0), ("escalation", 1)],
        "{fired:?}"
    );
    let notified = api
        .store
        .load(folios[0])
        .await
        .expect("load")
        .expect("exists")
        .incident
        .notified_at
        .expect("notified");
    for f in &fired {
        let late = f.fired_at.duration_since(f.due_at);
        assert!(
            late >= SignedDuration::ZERO && late <= SignedDuration::from_secs(1),
            "{} fired {late} after its due instant",
            f.key
        );
    }
    assert_eq!(
        fired[0].due_at,
        notified + SignedDuration::from_millis(1500),
        "warning at 75 % of 2 s"
    );
    assert_eq!(fired[1].due_at, notified + SignedDuration::from_secs(2));
}

/// Variable naming the database the child scheduler works on, and the instant it sees.
const CHILD_DB: &str = "INCIDENCIAS_SCHEDULER_CHILD_DB";
const CHILD_NOW: &str = "INCIDENCIAS_SCHEDULER_CHILD_NOW";

/// Child of the kill test: fires everything due at the given instant, then prints DONE.
#[test]
#[ignore = "child process of the kill test; started by it with --ignored"]
fn scheduler_child() {
    let (Ok(url), Ok(now)) = (std::env::var(CHILD_DB), std::env::var(CHILD_NOW)) else {
        return;
    };
    let now: Timestamp = now.parse().expect("instant");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store = Store::open(&url).await.expect("open");
        let service = Service::new(store, Arc::new(ManualClock::new(now)));
        // Small batches, two at a time: a batch long enough to be killed in the middle.
        Scheduler::new(service)
            .with_batching(10, 3, 2)
            .tick()
            .await
            .expect("tick");
        println!("DONE");
    });
}

#[test]
fn killed_in_the_middle_of_a_batch_and_restarted_never_fires_twice() {
    let db = common::TestDb::sqlite();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let later = rt.block_on(async {
        let api = Api::new(&db.url).await;
        notified_incidents(&api, &api.service, 1000).await;
        // Everything of the acknowledgment ladder is overdue two hours later.
        let later = api.clock_now() + SignedDuration::from_hours(2);
        api.store.close().await;
        later
    });
    let exe = std::env::current_exe().expect("test binary");
    let mut seed = (Timestamp::now().as_nanosecond() % 1_000_003) as u64;
    let fired_count = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let store = Store::open(&db.url).await.expect("open");
            let n = sqlx::query("SELECT COUNT(*) FROM fired_actions")
                .fetch_one(store.pool())
                .await
                .and_then(|r| sqlx::Row::try_get::<i64, _>(&r, 0))
                .expect("count");
            store.close().await;
            n
        })
    };
    let mut finished = false;
    let mut mid_batch_kills = 0;
    let mut child_now = later;
    for _ in 0..60 {
        child_now += SignedDuration::from_secs(31);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let before = fired_count(&rt);
        let mut child = Process::new(&exe)
            .args([
                "--exact",
                "scheduler_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db.url)
            // Each run a little later, so the leases a killed run held have expired.
            .env(CHILD_NOW, child_now.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.ends_with("DONE"))
        });
        // Kill at a random moment until two kills have landed mid-batch; then let it end.
        if mid_batch_kills < 2 {
            std::thread::sleep(Duration::from_millis(80 + (seed >> 33) % 400));
            let _ = child.kill();
        }
        let _ = child.wait();
        let done = reader.join().expect("reader");
        let after = fired_count(&rt);
        if done {
            finished = true;
            break;
        }
        if after > before {
            mid_batch_kills += 1;
        }
    }
    assert!(finished, "a child finished the batch");
    assert!(
        mid_batch_kills >= 2,
        "kills landed while firings were being committed"
    );
    let kills = mid_batch_kills;
    rt.block_on(async {
        let store = Store::open(&db.url).await.expect("reopen");
        let mut seen: HashSet<ActionKey> = HashSet::new();
        let mut per_folio: HashMap<String, usize> = HashMap::new();
        for folio in store.folios().await.expect("folios") {
            let folio = Folio::parse(&folio).expect("folio");
            for e in store.events(folio).await.expect("events") {
                let event = e.event().expect("decodes");
                if let Some(key) = ActionKey::of_change(folio, &event.change) {
                    assert!(seen.insert(key), "{key} fired twice");
                    *per_folio.entry(folio.to_string()).or_default() += 1;
                }
            }
        }
        assert_eq!(per_folio.len(), 1000, "every incident fired");
        // And nothing is left due at the last run's instant.
        let org = Service::new(store.clone(), Arc::new(ManualClock::new(common::api::t0())))
            .org_chart()
            .await
            .expect("org");
        for folio in store.folios().await.expect("folios") {
            let stored = store
                .load_fresh(Folio::parse(&folio).expect("folio"))
                .await
                .expect("load")
                .expect("exists");
            let left = incidencias_core::escalation::due_actions(
                &stored.incident,
                &org.ladder(&stored.incident),
                child_now,
            );
            assert!(left.is_empty(), "{folio} still has {left:?}");
        }
        assert!(store.verify().await.expect("verify").ok());
        store.close().await;
    });
    eprintln!("{kills} kills landed mid-batch before a run finished");
}

async fn two_instances_fire_each_of_1000_simultaneous_timers_once(url: String) {
    let api = Api::new(&url).await;
    notified_incidents(&api, &api.service, 1000).await;
    // All 1,000 acknowledgment warnings are due at the same moment.
    api.advance(700);
    let log: Arc<Mutex<Vec<(String, Fired)>>> = Arc::default();
    let instance = |name: &'static str| {
        let log = log.clone();
        let url = url.clone();
        let clock = api.clock.clone();
        async move {
            let store = Store::open(&url).await.expect("instance store");
            let service = Service::new(store, Arc::new(clock));
            Scheduler::new(service)
                .with_owner(name)
                .with_observer(Arc::new(move |f: &Fired| {
                    log.lock().expect("log").push((name.to_string(), f.clone()))
                }))
                .tick()
                .await
                .expect("tick")
        }
    };
    tokio::join!(instance("a"), instance("b"));
    let fired = log.lock().expect("log").clone();
    let keys: HashSet<ActionKey> = fired.iter().map(|(_, f)| f.key).collect();
    assert_eq!(fired.len(), 1000, "1,000 firings in all");
    assert_eq!(keys.len(), 1000, "each timer fired exactly once");
    let by_a = fired.iter().filter(|(n, _)| n == "a").count();
    eprintln!("instance a fired {by_a}, instance b {}", 1000 - by_a);
    let stored = sqlx::query("SELECT COUNT(*) FROM fired_actions")
        .fetch_one(api.store.pool())
        .await
        .and_then(|r| sqlx::Row::try_get::<i64, _>(&r, 0))
        .expect("count");
    assert_eq!(stored, 1000);
}

/// PostgreSQL is where several instances share a database; SQLite serves one process.
mod two_instances {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = crate::common::TestDb::postgres().await else {
            return;
        };
        super::two_instances_fire_each_of_1000_simultaneous_timers_once(db.url.clone()).await;
        db.cleanup().await;
    }
}
