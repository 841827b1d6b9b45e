//! The folio sequence is audited (issue 10, item 13): every number from 1 to the highest
//! used is an incident or a recorded void, so a missing number is a finding. On both
//! backends.

mod common;

use axum::http::StatusCode;
use common::api::Api;
use common::{at, create, seed};
use incidencias::store::{
    Effects, IdempotencyRecord, Store, StoreError, VOID_ABANDONED, VOID_AT_STOP,
    VOID_IDEMPOTENCY_RACE,
};
use incidencias_core::{SloPolicy, decide};
use jiff::SignedDuration;
use serde_json::json;
use sqlx::Row;

async fn voids(store: &Store) -> Vec<(String, String)> {
    sqlx::query("SELECT folio, reason FROM folio_voids ORDER BY folio")
        .fetch_all(store.pool())
        .await
        .expect("voids")
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

fn folio(n: u32) -> String {
    format!("INC-2026-{n:06}")
}

async fn a_refused_create_leaves_no_gap(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    assert_eq!(
        create(&store, &fx, at(0)).await.incident.folio.to_string(),
        folio(1)
    );
    // The protocol refuses a report of something that has not happened yet (a 422).
    let actor = fx.helpdesk();
    let refused = store
        .create_incident(
            2026,
            at(10),
            |f| {
                decide(
                    None,
                    &actor,
                    &fx.report(f, at(3600)),
                    at(10),
                    &SloPolicy::seed(),
                )
                .map_err(|e| StoreError::Invalid(e.to_string()))
            },
            |_, _| Effects::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let next = create(&store, &fx, at(20)).await;
    assert_eq!(next.incident.folio.to_string(), folio(2), "no number lost");
    assert!(voids(&store).await.is_empty());
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    store.close().await;
}

async fn a_restart_records_the_unused_numbers_as_void_and_audit_verify_is_clean(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    create(&store, &fx, at(10)).await;
    store.close().await;

    let store = Store::open(&url).await.expect("reopen");
    let recorded = voids(&store).await;
    assert_eq!(recorded.len(), 62, "3..=64 of the first block");
    assert_eq!(recorded[0], (folio(3), VOID_AT_STOP.to_string()));
    assert_eq!(recorded[61].0, folio(64));
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.incidents, report.voids), (2, 62));
    let next = create(&store, &fx, at(20)).await;
    assert_eq!(next.incident.folio.to_string(), folio(65));
    store.close().await;
}

async fn a_crashed_process_numbers_are_voided_once_its_lease_is_over(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    // No close: the process died. Its block is still leased, so a process starting now
    // must not void numbers the owner might still hand out, and they are no gap yet.
    drop(store);
    let store = Store::open(&url).await.expect("reopen");
    assert!(voids(&store).await.is_empty());
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    // Once the lease (and its grace) is over, the next start records them void.
    sqlx::query("UPDATE folio_blocks SET lease_until = 0")
        .execute(store.pool())
        .await
        .expect("expire the lease");
    store.close().await;
    let store = Store::open(&url).await.expect("reopen");
    let recorded = voids(&store).await;
    assert_eq!(recorded.len(), 63);
    assert_eq!(recorded[0], (folio(2), VOID_ABANDONED.to_string()));
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    store.close().await;
}

async fn deleting_a_void_makes_audit_verify_report_the_gap(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    store.close().await;
    let store = Store::open(&url).await.expect("reopen");
    create(&store, &fx, at(10)).await;
    assert!(store.verify().await.expect("verify").ok());
    // The table is append-only...
    let plain = sqlx::query("DELETE FROM folio_voids WHERE folio = $1")
        .bind(folio(10))
        .execute(store.pool())
        .await;
    assert!(plain.is_err(), "a void cannot be deleted");
    // ...but an intruder with the database's owner rights drops the guard first.
    let drop_guard = match store.backend() {
        incidencias::store::Backend::Sqlite => "DROP TRIGGER folio_voids_no_delete",
        incidencias::store::Backend::Postgres => {
            "DROP TRIGGER folio_voids_no_update ON folio_voids"
        }
    };
    sqlx::query(drop_guard)
        .execute(store.pool())
        .await
        .expect("drop trigger");
    sqlx::query("DELETE FROM folio_voids WHERE folio = $1")
        .bind(folio(10))
        .execute(store.pool())
        .await
        .expect("delete void");
    let report = store.verify().await.expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].folio, folio(10));
    assert_eq!(
        report.problems[0].what,
        "falta: ni incidencia ni anulación registrada"
    );
    store.close().await;
}

async fn an_idempotency_race_records_the_lost_folio_as_void(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    let actor = fx.helpdesk();
    let record = IdempotencyRecord {
        user_id: fx.helpdesk.id,
        key: "clave-1".into(),
        request_hash: "h".into(),
        status: 201,
        response: "{}".into(),
    };
    // Two requests with the same key: the first commits, the second (decided before it
    // could see the first's record) fails on the key after taking its number.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let out = store
            .create_incident(
                2026,
                at(0),
                |f| {
                    decide(
                        None,
                        &actor,
                        &fx.report(f, at(-60)),
                        at(0),
                        &SloPolicy::seed(),
                    )
                    .map_err(|e| StoreError::Invalid(e.to_string()))
                },
                |_, _| Effects {
                    idempotency: Some(record.clone()),
                    ..Effects::default()
                },
            )
            .await;
        outcomes.push(out);
    }
    assert!(outcomes[0].is_ok());
    assert!(
        matches!(outcomes[1], Err(StoreError::Conflict)),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(
        voids(&store).await,
        vec![(folio(2), VOID_IDEMPOTENCY_RACE.to_string())]
    );
    let next = create(&store, &fx, at(20)).await;
    assert_eq!(next.incident.folio.to_string(), folio(3));
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    store.close().await;
}

async fn export_and_import_carry_the_voids_so_the_copy_verifies(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    store.close().await;
    let store = Store::open(&url).await.expect("reopen");
    create(&store, &fx, at(10)).await;
    let mut exported = Vec::new();
    store.export(&mut exported, at(100)).await.expect("export");
    let target = common::TestDb::sqlite();
    let copy = Store::open(&target.url).await.expect("open target");
    copy.import(&mut exported.as_slice(), at(200))
        .await
        .expect("import");
    let report = copy.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.incidents, report.voids), (2, 63));
    assert_eq!(voids(&copy).await, voids(&store).await);
    copy.close().await;
    store.close().await;
}

async fn a_version_1_export_imports_and_its_unused_numbers_become_void(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    store.close().await;
    let store = Store::open(&url).await.expect("reopen");
    create(&store, &fx, at(10)).await;
    let mut exported = Vec::new();
    store.export(&mut exported, at(100)).await.expect("export");
    store.close().await;
    // What an older binary wrote: no blocks, no voids, version 1.
    let text = String::from_utf8(exported).expect("utf-8");
    let v1: String = text
        .lines()
        .filter(|l| !l.contains("\"type\":\"folio_block\"") && !l.contains("\"type\":\"void\""))
        .map(|l| l.replace("\"version\":2", "\"version\":1") + "\n")
        .collect();
    let target = common::TestDb::sqlite();
    let copy = Store::open(&target.url).await.expect("open target");
    copy.import(&mut v1.as_bytes(), at(200))
        .await
        .expect("import version 1");
    copy.close().await;
    // The next start records void what no incident used under the imported counter.
    let copy = Store::open(&target.url).await.expect("reopen target");
    let report = copy.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.incidents, report.voids), (2, 126));
    assert_eq!(
        voids(&copy).await[0],
        (folio(2), VOID_ABANDONED.to_string())
    );
    copy.close().await;
}

async fn a_database_from_before_migration_0002_gets_its_unused_numbers_recorded_void(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    create(&store, &fx, at(10)).await;
    // Back to schema 0001, as a database written by an older binary: a counter at 64, no
    // record of blocks or voids.
    let mut undo = vec![
        "DROP TRIGGER incidents_not_void",
        "DROP TABLE folio_voids",
        "DROP TABLE folio_blocks",
        "DELETE FROM _sqlx_migrations WHERE version = 2",
    ];
    if store.backend() == incidencias::store::Backend::Postgres {
        undo[0] = "DROP TRIGGER incidents_not_void ON incidents";
        undo.push("DROP FUNCTION folio_voids_append_only()");
        undo.push("DROP FUNCTION incidents_not_void()");
    }
    for sql in undo {
        sqlx::query(sql).execute(store.pool()).await.expect(sql);
    }
    drop(store);
    let store = Store::open(&url).await.expect("migrate to 0002");
    let recorded = voids(&store).await;
    assert_eq!(recorded.len(), 62, "3..=64");
    assert_eq!(recorded[0], (folio(3), VOID_ABANDONED.to_string()));
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    store.close().await;
}

async fn a_void_folio_never_becomes_an_incident(url: String) {
    let a = Store::open(&url).await.expect("open");
    let fx = seed(&a).await;
    create(&a, &fx, at(0)).await;
    // A's lease is over as far as the database knows (as if its clock lagged by more
    // than the grace): another process starting now settles A's block.
    sqlx::query("UPDATE folio_blocks SET lease_until = 0")
        .execute(a.pool())
        .await
        .expect("expire the lease");
    let b = Store::open(&url).await.expect("open b");
    assert_eq!(voids(&b).await.len(), 63);
    // A still thinks INC-2026-000002 is its to hand out: the database refuses it, and A
    // moves to a new block instead of writing an incident over a void.
    let actor = fx.helpdesk();
    let refused = a
        .create_incident(
            2026,
            at(10),
            |f| {
                decide(
                    None,
                    &actor,
                    &fx.report(f, at(5)),
                    at(10),
                    &SloPolicy::seed(),
                )
                .map_err(|e| StoreError::Invalid(e.to_string()))
            },
            |_, _| Effects::default(),
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Database(m)) if m.contains("folio is void")),
        "{refused:?}"
    );
    let next = create(&a, &fx, at(20)).await;
    assert_eq!(next.incident.folio.to_string(), folio(65));
    let report = b.verify().await.expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    b.close().await;
    a.close().await;
}

/// Through the real router: a report refused with 422 (future occurred_at, duplicate
/// procedures, blank description) consumes no folio.
async fn a_refused_report_consumes_no_folio(url: String) {
    let api = Api::new(&url).await;
    let first = api.report().await;
    let future = (api.clock_now() + SignedDuration::from_hours(1)).to_string();
    let occurred = (api.clock_now() - SignedDuration::from_mins(5)).to_string();
    let report = |field: &str, value: serde_json::Value| {
        let mut body = json!({
            "procedure_ids": [api.procedure],
            "kind": "unavailable",
            "description": "El trámite no responde",
            "occurred_at": occurred,
            "channel": "phone"
        });
        body[field] = value;
        body
    };
    for body in [
        report("occurred_at", json!(future)),
        report("procedure_ids", json!([api.procedure, api.procedure])),
        report("description", json!("   ")),
    ] {
        let a = api.post("/api/v1/incidents", &api.helpdesk, body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    }
    let next = api.report().await;
    let number = |f: &str| -> u32 {
        f.rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("number")
    };
    assert_eq!(number(&next), number(&first) + 1, "{first} then {next}");
}

on_both_backends!(
    a_refused_create_leaves_no_gap,
    a_restart_records_the_unused_numbers_as_void_and_audit_verify_is_clean,
    a_crashed_process_numbers_are_voided_once_its_lease_is_over,
    deleting_a_void_makes_audit_verify_report_the_gap,
    an_idempotency_race_records_the_lost_folio_as_void,
    export_and_import_carry_the_voids_so_the_copy_verifies,
    a_version_1_export_imports_and_its_unused_numbers_become_void,
    a_database_from_before_migration_0002_gets_its_unused_numbers_recorded_void,
    a_void_folio_never_becomes_an_incident,
    a_refused_report_consumes_no_folio,
);
