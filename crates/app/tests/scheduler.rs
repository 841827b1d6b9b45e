//! SLO timers with a controlled clock, on both backends: every firing rule (warning,
//! breach, escalation levels up to the top, the central side, nothing while paused),
//! notifications written with their events, restarts, two instances on PostgreSQL.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use common::api::Api;
use incidencias::scheduler::{Fired, Scheduler};
use incidencias::store::Store;
use serde_json::json;
use sqlx::Row;

fn observed() -> (Arc<Mutex<Vec<Fired>>>, incidencias::scheduler::Observer) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    (
        log,
        Arc::new(move |f: &Fired| sink.lock().expect("log").push(f.clone())),
    )
}

/// (kind, level, clock) of what fired, in order.
fn shape(log: &Mutex<Vec<Fired>>) -> Vec<(String, u32, String)> {
    log.lock()
        .expect("log")
        .iter()
        .map(|f| {
            (
                f.key.kind.as_str().to_string(),
                f.key.level,
                f.key.clock.to_string(),
            )
        })
        .collect()
}

async fn outbox(store: &Store) -> Vec<(String, String)> {
    // The deadline emails only (the protocol's own steps mail too).
    sqlx::query("SELECT kind, recipients FROM outbox WHERE kind IN ('slo_warning', 'escalation') ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("outbox")
        .iter()
        .map(|r| {
            (
                r.try_get::<String, _>("kind").expect("kind"),
                r.try_get::<String, _>("recipients").expect("recipients"),
            )
        })
        .collect()
}

/// The recipients of every outbox row of `kind`, in order.
async fn recipients_of(store: &Store, kind: &str) -> Vec<serde_json::Value> {
    sqlx::query("SELECT recipients FROM outbox WHERE kind = $1 ORDER BY id")
        .bind(kind.to_string())
        .fetch_all(store.pool())
        .await
        .expect("outbox")
        .iter()
        .map(|r| {
            serde_json::from_str(&r.try_get::<String, _>("recipients").expect("recipients"))
                .expect("json")
        })
        .collect()
}

async fn warning_breach_and_levels_up_to_the_top(url: String) {
    let api = Api::new(&url).await;
    let (log, observer) = observed();
    let scheduler = Scheduler::new(api.service.clone()).with_observer(observer);
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    // The notification stored the first due instant: the ack warning at 75 % of 15 min.
    let next = scheduler.tick().await.expect("tick");
    assert_eq!(
        next.map(|t| t.as_millisecond()),
        Some((api.clock_now() + jiff::SignedDuration::from_secs(675)).as_millisecond())
    );
    assert!(shape(&log).is_empty(), "nothing before its time");

    api.advance(674);
    scheduler.tick().await.expect("tick");
    assert!(shape(&log).is_empty(), "still nothing one second before");
    api.advance(1);
    scheduler.tick().await.expect("tick");
    assert_eq!(shape(&log), [("warning".into(), 0, "ack".into())]);
    let mail = outbox(&api.store).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].0, "slo_warning");
    assert!(mail[0].1.contains("responsable@sepru.gob.mx"), "{mail:?}");

    api.advance(225); // 900 s: breach and level 1
    scheduler.tick().await.expect("tick");
    assert_eq!(
        shape(&log)[1..],
        [
            ("breach".into(), 0, "ack".into()),
            ("escalation".into(), 1, "ack".into())
        ]
    );
    let mail = outbox(&api.store).await;
    assert_eq!(mail[1].0, "escalation");
    let recipients: serde_json::Value = serde_json::from_str(&mail[1].1).expect("json");
    assert_eq!(recipients["to"], json!(["director@sepru.gob.mx"]));
    assert_eq!(
        recipients["cc"],
        json!(["responsable@sepru.gob.mx", "mesa@ugd.gob.mx"]),
        "the help desk is copied on every escalation"
    );

    api.advance(900); // level 2: the top of this agency's ladder
    scheduler.tick().await.expect("tick");
    assert_eq!(shape(&log)[3], ("escalation".into(), 2, "ack".into()));
    let doc = api
        .get(&format!("/api/v1/incidents/{folio}"), &api.helpdesk)
        .await;
    assert_eq!(doc.json["escalation_level"], 2);
    let ack = doc.json["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .find(|c| c["name"] == "ack")
        .cloned()
        .expect("ack clock");
    assert_eq!(ack["state"], "breached");

    api.advance(3 * 900);
    scheduler.tick().await.expect("tick");
    let ack_firings = shape(&log).iter().filter(|s| s.2 == "ack").count();
    assert_eq!(ack_firings, 4, "stops at the top: {:?}", shape(&log));
    // Each key once in the record.
    let keys: Vec<String> = log
        .lock()
        .expect("log")
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len());
    let stored = sqlx::query("SELECT COUNT(*) FROM fired_actions")
        .fetch_one(api.store.pool())
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .expect("count");
    assert_eq!(stored as usize, keys.len());
}

async fn acting_in_time_cancels_what_was_planned(url: String) {
    let api = Api::new(&url).await;
    let (log, observer) = observed();
    let scheduler = Scheduler::new(api.service.clone()).with_observer(observer);
    let folio = api.report().await;
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.advance(1800);
    scheduler.tick().await.expect("tick");
    assert!(
        shape(&log).iter().all(|s| s.2 != "ack"),
        "an acknowledged incident is not escalated for ack: {:?}",
        shape(&log)
    );
}

async fn a_breached_validation_escalates_on_the_central_side_and_paused_resolution_waits(
    url: String,
) {
    let api = Api::new(&url).await;
    let (log, observer) = observed();
    let scheduler = Scheduler::new(api.service.clone()).with_observer(observer);
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.advance(60);
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Corregido"}),
    )
    .await;
    // Validation round 1: 20 min. Far beyond the resolution target (90 min) too: the
    // resolution clock is paused while CEDN holds the incident, so it must not fire.
    api.advance(3 * 3600);
    scheduler.tick().await.expect("tick");
    let fired = shape(&log);
    assert!(
        fired.contains(&("escalation".into(), 1, "validation#1".into())),
        "{fired:?}"
    );
    assert!(fired.iter().all(|s| s.2 != "resolution"), "{fired:?}");
    assert!(
        !fired.contains(&("warning".into(), 0, "validation#1".into())),
        "a stale warning is superseded by its breach"
    );
    let mail = outbox(&api.store).await;
    let escalation = mail
        .iter()
        .find(|m| m.0 == "escalation")
        .expect("escalation mail");
    let r: serde_json::Value = serde_json::from_str(&escalation.1).expect("json");
    assert_eq!(r["to"], json!(["jefatura.cedn@ugd.gob.mx"]));
    // PROTOCOL.md, "Escalation": cc the late validator, the procedure's responsible and
    // the help desk.
    assert_eq!(
        r["cc"],
        json!([
            "cedn@ugd.gob.mx",
            "responsable@sepru.gob.mx",
            "mesa@ugd.gob.mx"
        ])
    );
}

/// PROTOCOL.md, "Escalation": an incident's responsibles are those of all its procedures;
/// each hears step 2 (with its own one-click links), and an escalation goes to each one's
/// immediate superior, cc all of them and the help desk.
async fn every_responsible_of_a_several_procedure_incident_is_told_and_escalated(url: String) {
    let api = Api::new(&url).await;
    let director = api
        .users
        .iter()
        .find(|u| u.email == "director@sepru.gob.mx")
        .expect("director")
        .id;
    let second = api
        .post(
            "/api/v1/procedures",
            &api.admin,
            json!({"homoclave": "SEPRU-01-002", "name": "Permiso", "agency_id": api.agency_id,
                   "url": "https://www.gob.mx/permiso", "responsible_id": director}),
        )
        .await;
    assert_eq!(second.status.as_u16(), 201, "{}", second.text);
    let occurred = api.clock_now() - jiff::SignedDuration::from_mins(5);
    let created = api
        .post(
            "/api/v1/incidents",
            &api.helpdesk,
            json!({"procedure_ids": [api.procedure, second.json["id"]], "kind": "unavailable",
                   "description": "Ambos trámites fallan", "occurred_at": occurred.to_string(),
                   "channel": "phone"}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let folio = created.json["folio"].as_str().expect("folio").to_string();
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    let notices = recipients_of(&api.store, "notification").await;
    assert_eq!(
        notices.iter().map(|r| r["to"].clone()).collect::<Vec<_>>(),
        [
            json!(["responsable@sepru.gob.mx"]),
            json!(["director@sepru.gob.mx"])
        ],
        "one step-2 notice per responsible"
    );
    let scheduler = Scheduler::new(api.service.clone());
    api.advance(15 * 60);
    scheduler.tick().await.expect("tick");
    let escalations = recipients_of(&api.store, "escalation").await;
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(
        escalations[0]["to"],
        json!(["director@sepru.gob.mx", "dg@sepru.gob.mx"]),
        "each responsible's immediate superior"
    );
    assert_eq!(
        escalations[0]["cc"],
        json!([
            "responsable@sepru.gob.mx",
            "director@sepru.gob.mx",
            "mesa@ugd.gob.mx"
        ])
    );
}

/// PROTOCOL.md, "Escalation": the help desk is told of every breach, also when nobody is
/// left above on the ladder (here CEDN's front-line validator has no superior at all).
async fn every_breach_is_told_to_the_help_desk_even_with_nobody_above(url: String) {
    let api = Api::new(&url).await;
    let scheduler = Scheduler::new(api.service.clone());
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    api.advance(30 * 60);
    scheduler.tick().await.expect("tick");
    let breaches = recipients_of(&api.store, "breach").await;
    assert!(!breaches.is_empty(), "the ack breach is mailed");
    assert!(
        breaches
            .iter()
            .all(|r| r["to"] == json!(["mesa@ugd.gob.mx"])),
        "{breaches:?}"
    );
}

async fn after_downtime_everything_overdue_fires_once_in_due_order(url: String) {
    let api = Api::new(&url).await;
    let mut folios = Vec::new();
    for _ in 0..5 {
        let folio = api.report().await;
        api.step(
            &folio,
            "notify",
            &api.helpdesk,
            json!({"severity": "critical"}),
        )
        .await;
        folios.push(folio);
        api.advance(10);
    }
    // Down for two hours: a new process (new store, new scheduler) starts.
    api.advance(2 * 3600);
    let (log, observer) = observed();
    let restarted = Store::open(&url).await.expect("reopen");
    let service = incidencias::service::Service::new(restarted, Arc::new(api.clock.clone()));
    let scheduler = Scheduler::new(service).with_observer(observer);
    scheduler.tick().await.expect("catch up");
    let fired = log.lock().expect("log").clone();
    let mut by_folio: BTreeMap<String, Vec<&Fired>> = BTreeMap::new();
    for f in &fired {
        by_folio.entry(f.key.folio.to_string()).or_default().push(f);
    }
    assert_eq!(by_folio.len(), 5, "every incident caught up");
    for (folio, list) in &by_folio {
        let dues: Vec<_> = list.iter().map(|f| f.due_at).collect();
        let mut sorted = dues.clone();
        sorted.sort();
        assert_eq!(dues, sorted, "{folio} fired in due order");
    }
    let before = fired.len();
    scheduler.tick().await.expect("again");
    assert_eq!(log.lock().expect("log").len(), before, "each once");
}

async fn a_due_timer_left_by_a_dead_instance_is_taken_over_when_its_lease_ends(url: String) {
    let api = Api::new(&url).await;
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    api.advance(700);
    // An instance claims the due timer and dies before firing.
    let now = api.clock_now();
    let claimed = api
        .store
        .claim_due_timers("muerta", now, now + jiff::SignedDuration::from_secs(30), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let lease_end = now + jiff::SignedDuration::from_secs(30);
    assert_eq!(
        api.service.next_timer().await.expect("next"),
        Some(lease_end),
        "with its only timer leased, the scheduler looks again when the lease ends"
    );
    let (log, observer) = observed();
    let scheduler = Scheduler::new(api.service.clone()).with_observer(observer);
    scheduler.tick().await.expect("tick");
    assert!(shape(&log).is_empty(), "leased to another instance");
    api.advance(31);
    assert_eq!(
        api.service.next_timer().await.expect("next"),
        Some(claimed[0].1),
        "an expired lease counts by its due instant again"
    );
    scheduler.tick().await.expect("tick");
    assert_eq!(shape(&log), [("warning".into(), 0, "ack".into())]);
    let next = api.service.next_timer().await.expect("next");
    assert!(
        next.is_some_and(|at| at > api.clock_now()),
        "after the warning, the breach is the next instant: {next:?}"
    );
}

on_both_backends!(
    every_breach_is_told_to_the_help_desk_even_with_nobody_above,
    every_responsible_of_a_several_procedure_incident_is_told_and_escalated,
    warning_breach_and_levels_up_to_the_top,
    acting_in_time_cancels_what_was_planned,
    a_breached_validation_escalates_on_the_central_side_and_paused_resolution_waits,
    after_downtime_everything_overdue_fires_once_in_due_order,
    a_due_timer_left_by_a_dead_instance_is_taken_over_when_its_lease_ends,
);
