//! The store, on both backends: appends with their chain and projection, optimistic
//! concurrency, the fired-action key, audit verification, export/import, catalogue.

mod common;

use std::collections::HashSet;

use common::{act, at, create, seed};
use incidencias::store::{Effects, NewOutboxMessage, Store, StoreError};
use incidencias_core::escalation::due_actions;
use incidencias_core::{
    Actor, Change, ClockId, Command, Event, Folio, Incident, IncidentState, Severity,
};
use sqlx::Row;

fn notify() -> Command {
    Command::Notify {
        severity: Severity::Critical,
        disable_button: true,
        occurred_at: None,
    }
}

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get(0))
        .expect("scalar query")
}

async fn appends_are_chained_projected_and_replayable(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let created = create(&store, &fx, at(0)).await;
    assert_eq!(created.incident.folio.to_string(), "INC-2026-000001");
    assert_eq!(created.incident.state, IncidentState::Reported);
    let notified = act(&store, &created, &fx.helpdesk(), notify(), at(60))
        .await
        .expect("notify");
    let acked = act(
        &store,
        &notified,
        &fx.agency_actor(),
        Command::Acknowledge,
        at(120),
    )
    .await
    .expect("acknowledge");
    // Notify emits two events (notified, button_set); acknowledge one.
    assert_eq!(acked.incident.version, 4);
    let loaded = store
        .load(acked.incident.folio)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(loaded, acked, "projection equals the state the caller got");
    let stored = store.events(acked.incident.folio).await.expect("events");
    assert_eq!(
        stored.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["reported", "notified", "button_set", "acknowledged"]
    );
    let events: Vec<Event> = stored.iter().map(|e| e.event().expect("decodes")).collect();
    assert_eq!(Incident::replay(&events).expect("replays"), loaded.incident);
    for pair in stored.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "chained");
    }
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.incidents, report.events), (1, 4));
    // A second incident gets the next folio.
    let second = create(&store, &fx, at(200)).await;
    assert_eq!(second.incident.folio.to_string(), "INC-2026-000002");
    store.close().await;
}

async fn two_commands_from_the_same_version_cannot_both_succeed(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let created = create(&store, &fx, at(0)).await;
    let notified = act(&store, &created, &fx.helpdesk(), notify(), at(60))
        .await
        .expect("notify");
    // Both decided on the same state, sent at the same time.
    let (agency, helpdesk) = (fx.agency_actor(), fx.helpdesk());
    let (a, b) = tokio::join!(
        act(&store, &notified, &agency, Command::Acknowledge, at(70)),
        act(
            &store,
            &notified,
            &helpdesk,
            // One event either way, so the winner's version is known.
            Command::ChangeSeverity {
                severity: Severity::Low,
                reason: "Afecta a pocos usuarios".into()
            },
            at(70)
        ),
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one wins: {a:?} {b:?}"
    );
    let loser = if a.is_ok() { b } else { a };
    assert!(matches!(loser, Err(StoreError::Conflict)), "{loser:?}");
    let loaded = store
        .load(created.incident.folio)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(
        loaded.incident.version, 4,
        "only the winner's event was stored"
    );
    assert!(store.verify().await.expect("verify").ok());
    // The loser retries on the fresh state and gets the protocol's answer.
    store.close().await;
}

async fn many_concurrent_writers_all_commit_and_conflicts_stay_isolated(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = std::sync::Arc::new(seed(&store).await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (store, fx) = (store.clone(), fx.clone());
        tasks.push(tokio::spawn(async move {
            let created = create(&store, &fx, at(i)).await;
            let notified = act(&store, &created, &fx.helpdesk(), notify(), at(i + 1))
                .await
                .expect("notify");
            // Half of them also try a stale command that must conflict, in the same
            // batches as everyone else's good writes.
            let stale = if i % 2 == 0 {
                Some(act(&store, &created, &fx.helpdesk(), notify(), at(i + 2)).await)
            } else {
                None
            };
            (notified.incident.folio, stale)
        }));
    }
    let mut folios = HashSet::new();
    for t in tasks {
        let (folio, stale) = t.await.expect("task");
        assert!(folios.insert(folio), "folios are unique");
        if let Some(stale) = stale {
            assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
        }
    }
    assert_eq!(folios.len(), 40);
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, 40 * 3);
    store.close().await;
}

async fn a_planned_action_key_can_be_stored_only_once(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let created = create(&store, &fx, at(0)).await;
    let notified = act(&store, &created, &fx.helpdesk(), notify(), at(60))
        .await
        .expect("notify");
    let ladder = store
        .ladder(fx.responsible.id, Some(fx.validator.id))
        .await
        .expect("ladder");
    assert_eq!(ladder.agency.len(), 4, "responsible and three superiors");
    let due = due_actions(&notified.incident, &ladder, at(60 + 900));
    let breach = due.first().expect("breach due").key;
    let fired = act(
        &store,
        &notified,
        &Actor::System,
        Command::Fire {
            key: breach,
            ladder: ladder.clone(),
        },
        at(60 + 900),
    )
    .await
    .expect("first firing");
    // A buggy or racing scheduler that skips `decide` and appends the same firing again
    // (on the fresh version, so the sequence number is free) is stopped by the key.
    let again = vec![Event {
        at: at(60 + 901),
        via: None,
        actor: Actor::System,
        change: Change::ClockBreached {
            clock: ClockId::ACK,
        },
    }];
    let second = store
        .append(&fired, again, Effects::default(), at(60 + 901))
        .await;
    assert!(matches!(second, Err(StoreError::Conflict)), "{second:?}");
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM fired_actions").await,
        1
    );
    store.close().await;
}

async fn timers_and_outbox_are_written_with_the_event(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let created = create(&store, &fx, at(0)).await;
    let events = incidencias_core::decide(
        Some(&created.incident),
        &fx.helpdesk(),
        &notify(),
        at(60),
        &incidencias_core::SloPolicy::seed(),
    )
    .expect("decide");
    let effects = Effects {
        next_due: Some(at(60 + 675)),
        outbox: vec![NewOutboxMessage {
            kind: "notification".into(),
            to: vec![fx.responsible.email.to_string()],
            cc: vec![],
            payload: serde_json::json!({"severity": "critical"}),
        }],
        idempotency: None,
        used_link: None,
        ..Effects::default()
    };
    let notified = store
        .append(&created, events, effects.clone(), at(60))
        .await
        .expect("append");
    let row = sqlx::query("SELECT due_at FROM timers WHERE folio = $1")
        .bind(notified.incident.folio.to_string())
        .fetch_one(store.pool())
        .await
        .expect("timer row");
    assert_eq!(
        row.try_get::<i64, _>("due_at").expect("due_at"),
        at(735).as_millisecond()
    );
    let row = sqlx::query("SELECT message_id, recipients, state FROM outbox")
        .fetch_one(store.pool())
        .await
        .expect("outbox row");
    assert_eq!(
        row.try_get::<String, _>("message_id").expect("id"),
        "<INC-2026-000001.3.notification.0@incidencias.gob.mx>"
    );
    assert_eq!(row.try_get::<String, _>("state").expect("state"), "pending");
    // A conflicting append writes no timer and no outbox row either: one transaction.
    let stale_events = incidencias_core::decide(
        Some(&created.incident),
        &fx.helpdesk(),
        &Command::Dismiss {
            reason: "Duplicado".into(),
        },
        at(61),
        &incidencias_core::SloPolicy::seed(),
    )
    .expect("decide on the stale state");
    let stale = store
        .append(
            &created,
            stale_events,
            Effects {
                next_due: Some(at(9999)),
                ..effects
            },
            at(61),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM outbox").await, 1);
    assert_eq!(
        scalar(&store, "SELECT MAX(due_at) FROM timers").await,
        at(735).as_millisecond()
    );
    let acked = act(
        &store,
        &notified,
        &fx.agency_actor(),
        Command::Acknowledge,
        at(70),
    )
    .await;
    assert!(acked.is_ok());
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM timers").await,
        0,
        "no next_due: deleted"
    );
    store.close().await;
}

async fn audit_verify_reports_exactly_the_altered_event(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let mut folios = Vec::new();
    for i in 0..3 {
        let created = create(&store, &fx, at(i * 10)).await;
        let notified = act(&store, &created, &fx.helpdesk(), notify(), at(i * 10 + 1))
            .await
            .expect("notify");
        act(
            &store,
            &notified,
            &fx.agency_actor(),
            Command::Acknowledge,
            at(i * 10 + 2),
        )
        .await
        .expect("ack");
        folios.push(created.incident.folio);
    }
    assert!(store.verify().await.expect("verify").ok());
    // The table refuses changes...
    let blocked = sqlx::query("UPDATE incident_events SET payload = '{}' WHERE seq = 1")
        .execute(store.pool())
        .await;
    assert!(blocked.is_err(), "incident_events is append-only");
    // ...but someone with the database in hand can drop the guard. The chain tells.
    let drop_guard = match store.backend() {
        incidencias::store::Backend::Sqlite => "DROP TRIGGER incident_events_no_update",
        incidencias::store::Backend::Postgres => {
            "DROP TRIGGER incident_events_no_update ON incident_events"
        }
    };
    sqlx::query(drop_guard)
        .execute(store.pool())
        .await
        .expect("drop trigger");
    let target = folios[1];
    sqlx::query(
        "UPDATE incident_events SET payload = REPLACE(payload, 'critical', 'low') \
         WHERE folio = $1 AND seq = 2",
    )
    .bind(target.to_string())
    .execute(store.pool())
    .await
    .expect("tamper");
    let report = store.verify().await.expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(
        (p.folio.as_str(), p.seq),
        (target.to_string().as_str(), Some(2))
    );
    store.close().await;
}

async fn export_then_import_reproduces_state_and_hashes(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    for i in 0..3 {
        let created = create(&store, &fx, at(i * 10)).await;
        let notified = act(&store, &created, &fx.helpdesk(), notify(), at(i * 10 + 1))
            .await
            .expect("notify");
        if i == 1 {
            act(
                &store,
                &notified,
                &fx.agency_actor(),
                Command::Acknowledge,
                at(i * 10 + 2),
            )
            .await
            .expect("ack");
        }
    }
    let mut exported = Vec::new();
    store.export(&mut exported, at(100)).await.expect("export");

    // Into a fresh database of the same backend (a new SQLite file next to it, or a new
    // schema) and into a SQLite file whatever the source backend.
    let target = common::TestDb::sqlite();
    let copy = Store::open(&target.url).await.expect("open target");
    let summary = copy
        .import(&mut exported.as_slice(), at(200))
        .await
        .expect("import");
    assert_eq!((summary.incidents, summary.events), (3, 3 * 3 + 1));
    assert_eq!(summary.users, 6);
    for folio in store.folios().await.expect("folios") {
        let folio = Folio::parse(&folio).expect("folio");
        let a = store.events(folio).await.expect("events");
        let b = copy.events(folio).await.expect("events");
        assert_eq!(a, b, "byte-identical events and hashes for {folio}");
        let sa = store.load(folio).await.expect("load").expect("exists");
        let sb = copy.load(folio).await.expect("load").expect("exists");
        assert_eq!(sa, sb, "identical state for {folio}");
    }
    assert!(copy.verify().await.expect("verify").ok());
    assert_eq!(
        copy.policies().await.expect("policies"),
        store.policies().await.expect("policies")
    );
    assert_eq!(
        copy.admin_changes(None, None, None, 1000)
            .await
            .expect("changes"),
        store
            .admin_changes(None, None, None, 1000)
            .await
            .expect("changes"),
        "the record of catalogue changes travels with the export"
    );
    // New work continues after the imported folios and ids.
    let next = create(&copy, &fx, at(300)).await;
    assert!(next.incident.folio.number() > 3, "{}", next.incident.folio);

    // Importing again into a non-empty database is refused and changes nothing.
    let again = copy.import(&mut exported.as_slice(), at(400)).await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    assert_eq!(copy.folios().await.expect("folios").len(), 4);
    copy.close().await;
    store.close().await;
}

async fn a_tampered_export_is_refused_on_import(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    let mut exported = Vec::new();
    store.export(&mut exported, at(100)).await.expect("export");
    let text = String::from_utf8(exported).expect("utf-8");
    let tampered = text.replace("error 500", "error 404");
    assert_ne!(tampered, text);
    let target = common::TestDb::sqlite();
    let copy = Store::open(&target.url).await.expect("open target");
    let err = copy
        .import(&mut tampered.as_bytes(), at(200))
        .await
        .expect_err("tampered");
    assert!(err.to_string().contains("INC-2026-000001"), "{err}");
    assert_eq!(
        copy.folios().await.expect("folios").len(),
        0,
        "nothing imported"
    );
    assert_eq!(
        copy.users().await.expect("users").len(),
        0,
        "not even the catalogue"
    );
    copy.close().await;
    store.close().await;
}

async fn catalogue_round_trips_and_duplicates_are_named(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let procedures = store.procedures().await.expect("procedures");
    assert_eq!(procedures, vec![fx.procedure.clone()]);
    let dup = store
        .create_procedure(
            incidencias::store::NewProcedure {
                homoclave: fx.procedure.homoclave.clone(),
                name: "Otro".into(),
                agency_id: fx.agency,
                url: "https://www.gob.mx/otro".into(),
                responsible_id: fx.responsible.id,
            },
            common::audit("procedure"),
            at(0),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    let found = store
        .user_by_email(&fx.responsible.email)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(found, fx.responsible);
    let policies = store.policies().await.expect("policies");
    assert_eq!(policies.len(), 1, "the seed's table is version 1");
    assert_eq!(policies[0], incidencias_core::SloPolicy::seed());
    let mut v2 = incidencias_core::SloPolicy::seed();
    v2.targets.ack.critical = 10;
    let added = store
        .add_policy(
            v2,
            incidencias::store::Audit {
                actor: fx.helpdesk.id,
                ..common::audit("policy")
            },
            at(5),
        )
        .await
        .expect("add");
    assert_eq!(added.version, 2);
    assert_eq!(
        store.policies().await.expect("policies")[0].version,
        2,
        "newest first"
    );
    store.close().await;
}

async fn audit_verify_catches_edited_projection_columns_and_links(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let created = create(&store, &fx, at(0)).await;
    let folio = created.incident.folio.to_string();
    assert!(store.verify().await.expect("verify").ok());
    // Moving an incident into another agency's list would be a quiet, serious change.
    let other = store
        .create_agency(
            incidencias::store::NewAgency {
                name: "Otra dependencia".into(),
                acronym: "OTRA".into(),
                email_domains: vec!["otra.gob.mx".into()],
            },
            common::audit("agency"),
            at(1),
        )
        .await
        .expect("other agency");
    sqlx::query("UPDATE incidents SET agency_id = $1 WHERE folio = $2")
        .bind(other.id.0)
        .bind(folio.clone())
        .execute(store.pool())
        .await
        .expect("edit projection");
    let report = store.verify().await.expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].folio, folio);
    assert!(report.problems[0].what.contains("proyección"));
    sqlx::query("UPDATE incidents SET agency_id = $1 WHERE folio = $2")
        .bind(fx.agency.0)
        .bind(folio.clone())
        .execute(store.pool())
        .await
        .expect("restore");
    assert!(store.verify().await.expect("verify").ok());
    sqlx::query("DELETE FROM incident_procedures WHERE folio = $1")
        .bind(folio.clone())
        .execute(store.pool())
        .await
        .expect("unlink");
    let report = store.verify().await.expect("verify");
    assert!(
        report.problems[0].what.contains("trámites"),
        "{:?}",
        report.problems
    );
    store.close().await;
}

async fn audit_verify_on_a_busy_database_reports_no_false_alarm(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = std::sync::Arc::new(seed(&store).await);
    let writer = {
        let (store, fx) = (store.clone(), fx.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                let created = create(&store, &fx, at(i)).await;
                act(&store, &created, &fx.helpdesk(), notify(), at(i + 1))
                    .await
                    .expect("notify");
            }
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() {
        let report = store.verify().await.expect("verify");
        assert!(
            report.ok(),
            "false alarm while appending: {:?}",
            report.problems
        );
        rounds += 1;
    }
    writer.await.expect("writer");
    assert!(rounds > 0);
    assert!(store.verify().await.expect("verify").ok());
    store.close().await;
}

async fn a_cut_or_foreign_export_file_is_refused(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    let mut exported = Vec::new();
    store.export(&mut exported, at(100)).await.expect("export");
    let text = String::from_utf8(exported).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n");
    let header_only = lines[0].to_string();
    for (bad, why) in [
        (cut.as_str(), "incompleto"),
        (header_only.as_str(), "incompleto"),
        (
            "{\"type\":\"header\",\"format\":\"otro\",\"version\":1,\"exported_at\":\"2026-01-01T00:00:00Z\"}",
            "no es una exportación",
        ),
        ("esto no es json", "línea 1"),
    ] {
        let target = common::TestDb::sqlite();
        let copy = Store::open(&target.url).await.expect("open target");
        let err = copy
            .import(&mut bad.as_bytes(), at(200))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(
            copy.policies().await.expect("policies").len(),
            1,
            "seed kept"
        );
        copy.close().await;
    }
    store.close().await;
}

on_both_backends!(
    audit_verify_catches_edited_projection_columns_and_links,
    audit_verify_on_a_busy_database_reports_no_false_alarm,
    a_cut_or_foreign_export_file_is_refused,
);

on_both_backends!(
    appends_are_chained_projected_and_replayable,
    two_commands_from_the_same_version_cannot_both_succeed,
    many_concurrent_writers_all_commit_and_conflicts_stay_isolated,
    a_planned_action_key_can_be_stored_only_once,
    timers_and_outbox_are_written_with_the_event,
    audit_verify_reports_exactly_the_altered_event,
    export_then_import_reproduces_state_and_hashes,
    a_tampered_export_is_refused_on_import,
    catalogue_round_trips_and_duplicates_are_named,
);

/// SQLite only: a new database gets 8 KiB pages (three notified incidents to a page, where
/// with 4 KiB each took its own: `store/open.rs`), and one that exists keeps the page size
/// it was created with, with its data intact.
#[tokio::test]
async fn a_new_sqlite_database_has_8_kib_pages_and_an_old_one_keeps_its_own() {
    let new = common::TestDb::sqlite();
    let store = Store::open(&new.url).await.expect("open new");
    assert_eq!(scalar(&store, "PRAGMA page_size").await, 8192);
    store.close().await;

    let old = common::TestDb::sqlite();
    let file = old.url.trim_start_matches("sqlite://").to_string();
    {
        let conn = rusqlite::Connection::open(&file).expect("create with 4 KiB pages");
        conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; VACUUM;")
            .expect("4 KiB pages");
    }
    let store = Store::open(&old.url).await.expect("open old");
    let fixture = seed(&store).await;
    let folio = create(&store, &fixture, at(0)).await.incident.folio;
    store.close().await;
    let store = Store::open(&old.url).await.expect("reopen old");
    assert_eq!(scalar(&store, "PRAGMA page_size").await, 4096);
    assert!(
        store.load(folio).await.expect("load").is_some(),
        "the incident written in the old database is still there"
    );
    store.close().await;
}
