//! The binary's store commands, as an operator runs them: exit codes and Spanish messages.

mod common;

use std::path::Path;
use std::process::{Command as Process, Output};

use common::{act, at, create, seed};
use incidencias::store::Store;
use incidencias_core::{Command, Severity};

fn incidencias(url: &str, args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(args)
        .env("INCIDENCIAS_DATABASE_URL", url)
        .output()
        .expect("run incidencias")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// A SQLite database with two incidents of four events each.
async fn populated(dir: &Path) -> String {
    let url = format!("sqlite://{}/cli.db", dir.display());
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    for i in 0..2 {
        let created = create(&store, &fx, at(i * 100)).await;
        let notify = Command::Notify {
            severity: Severity::Critical,
            disable_button: true,
        };
        let notified = act(&store, &created, &fx.helpdesk(), notify, at(i * 100 + 1))
            .await
            .expect("notify");
        act(
            &store,
            &notified,
            &fx.agency_actor(),
            Command::Acknowledge,
            at(i * 100 + 2),
        )
        .await
        .expect("ack");
    }
    store.close().await;
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_passes_then_names_the_first_broken_link_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = populated(dir.path()).await;
    let ok = incidencias(&url, &["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("2 incidencias y 8 eventos revisados"),
        "{}",
        text(&ok.stdout)
    );

    let store = Store::open(&url).await.expect("open");
    sqlx::query("DROP TRIGGER incident_events_no_update")
        .execute(store.pool())
        .await
        .expect("drop guard");
    sqlx::query(
        "UPDATE incident_events SET at = at + 1 WHERE folio = 'INC-2026-000002' AND seq = 3",
    )
    .execute(store.pool())
    .await
    .expect("tamper");
    store.close().await;

    let bad = incidencias(&url, &["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let out = text(&bad.stdout);
    assert!(
        out.contains("ALTERACIÓN DETECTADA: primer eslabón roto en INC-2026-000002, evento 3"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_copies_online_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = populated(dir.path()).await;
    let target = dir.path().join("respaldo.db");
    let target_s = target.display().to_string();
    let out = incidencias(&url, &["backup", &target_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let copy_url = format!("sqlite://{target_s}");
    let verify = incidencias(&copy_url, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("8 eventos"));

    let again = incidencias(&url, &["backup", &target_s]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("ya existe"),
        "{}",
        text(&again.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_and_import_through_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = populated(dir.path()).await;
    let file = dir.path().join("export.jsonl");
    let file_s = file.display().to_string();
    let out = incidencias(&url, &["export", "--output", &file_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let target = format!("sqlite://{}/importada.db", dir.path().display());
    let imported = incidencias(&target, &["import", &file_s]);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    assert!(
        text(&imported.stdout).contains("2 incidencias con 8 eventos"),
        "{}",
        text(&imported.stdout)
    );
    let verify = incidencias(&target, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0));
    // Exporting over an existing file is refused.
    let out = incidencias(&url, &["export", "--output", &file_s]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_non_database_file_is_named_in_the_error_and_exit_is_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hoja.xlsx");
    std::fs::write(&path, b"PK\x03\x04 esto es una hoja de calculo").expect("write");
    let out = incidencias(&format!("sqlite://{}", path.display()), &["migrate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("hoja.xlsx") && err.contains("no es una base de datos"),
        "{err}"
    );
}

#[test]
fn backup_of_postgresql_points_to_pg_dump_without_connecting() {
    // Port 1: nothing listens there; the answer must not depend on a server.
    let out = incidencias(
        "postgres://postgres@127.0.0.1:1/test",
        &["backup", "/tmp/x.db"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
}
