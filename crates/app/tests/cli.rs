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
            occurred_at: None,
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

/// A run with nothing on stdin, from inside `dir` (so a default path would land there).
fn incidencias_in(dir: &Path, url: &str, args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(args)
        .current_dir(dir)
        .env("INCIDENCIAS_DATABASE_URL", url)
        .env_remove("INCIDENCIAS_LINK_SECRET")
        .output()
        .expect("run incidencias")
}

/// Bytes of a file and its companions, to prove a command left them as they were.
fn snapshot(path: &Path) -> Vec<Option<Vec<u8>>> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| std::fs::read(format!("{}{s}", path.display())).ok())
        .collect()
}

/// Words clap prints in English when its help is not replaced.
const ENGLISH: &[&str] = &[
    "Usage",
    "Options",
    "Commands",
    "Arguments",
    "Print help",
    "Print version",
    "[default",
    "[env",
    "[possible values",
    "[OPTIONS]",
];

#[test]
fn help_is_spanish_for_the_program_and_its_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["--help"][..],
        &["-h"],
        &["outbox", "list", "--help"],
        &["demo", "--help"],
        &["serve", "--help"],
        &["user", "create", "--help"],
        &["import", "--help"],
        &["backup", "-h"],
    ] {
        let out = incidencias_in(dir.path(), "sqlite://x.db", args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let help = text(&out.stdout);
        assert!(help.contains("Uso: incidencias"), "{args:?}: {help}");
        assert!(help.contains("Opciones:"), "{args:?}: {help}");
        for word in ENGLISH {
            assert!(!help.contains(word), "{args:?} shows «{word}»: {help}");
        }
    }
    let root = text(&incidencias_in(dir.path(), "sqlite://x.db", &["--help"]).stdout);
    assert!(
        root.contains("Comandos:") && root.contains("Muestra la versión"),
        "{root}"
    );
    let version = incidencias_in(dir.path(), "sqlite://x.db", &["--version"]);
    assert_eq!(
        text(&version.stdout).trim(),
        format!("incidencias {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_help_lists_every_variable_of_the_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = incidencias_in(dir.path(), "sqlite://x.db", &["serve", "--help"]);
    let help = text(&out.stdout);
    for variable in [
        "INCIDENCIAS_DATABASE_URL",
        "INCIDENCIAS_LINK_SECRET",
        "INCIDENCIAS_BIND",
        "INCIDENCIAS_SECURE_COOKIES",
        "INCIDENCIAS_SMTP_URL",
        "INCIDENCIAS_MAIL_FROM",
        "INCIDENCIAS_MAIL_REPLY_TO",
        "INCIDENCIAS_IMAP_URL",
        "INCIDENCIAS_PUBLIC_URL",
        "INCIDENCIAS_TLS_CA_FILE",
        "INCIDENCIAS_LOG",
    ] {
        assert!(
            help.contains(&format!("[variable: {variable}]")),
            "{variable}: {help}"
        );
    }
}

#[test]
fn a_short_link_secret_stops_the_start_without_echoing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Process::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .env("INCIDENCIAS_LINK_SECRET", "corto-y-secreto")
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--link-secret") && err.contains("al menos 32"),
        "{err}"
    );
    assert!(
        !err.contains("corto-y-secreto"),
        "the secret is not echoed: {err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn a_log_filter_that_does_not_parse_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Process::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .env("INCIDENCIAS_LOG", "incidencias=muchisimo")
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("INCIDENCIAS_LOG «incidencias=muchisimo» no es un filtro válido"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("escuchando"));
    assert!(
        !dir.path().join("data").exists(),
        "checked before anything was created"
    );
}

#[test]
fn demo_help_names_the_database_the_demo_really_uses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = incidencias_in(dir.path(), "sqlite://x.db", &["demo", "--help"]);
    let help = text(&out.stdout);
    assert!(
        help.contains("La base de demostración es ./data/demo.db")
            && help.contains("incidencias --database-url sqlite://./data/demo.db outbox list"),
        "{help}"
    );
}

#[test]
fn outbox_list_refuses_an_unknown_state_and_a_limit_out_of_bounds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    let out = incidencias_in(dir.path(), &url, &["outbox", "list", "--state", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("«bogus» no es un valor válido para --state")
            && err.contains("pending, sent, dead"),
        "{err}"
    );
    for limit in ["0", "501", "muchos"] {
        let out = incidencias_in(dir.path(), &url, &["outbox", "list", "--limit", limit]);
        assert_eq!(out.status.code(), Some(2), "--limit {limit}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--limit") && err.contains("de 1 a 500"),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("cli.db").exists(),
        "refused before opening"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_create_names_the_flag_not_the_api_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = populated(dir.path()).await;
    let create = |extra: &[&str]| {
        let mut args = vec![
            "user",
            "create",
            "--email",
            "nueva@ugd.gob.mx",
            "--name",
            "Nueva",
        ];
        args.extend_from_slice(extra);
        incidencias_in(dir.path(), &url, &args)
    };
    for (extra, flag) in [
        (
            &["--role", "helpdesk", "--reports-to", "nadie@ugd.gob.mx"][..],
            "--reports-to",
        ),
        (
            &["--role", "helpdesk", "--reports-to", "99999"],
            "--reports-to",
        ),
        (
            &["--role", "helpdesk", "--reports-to", "no es correo"],
            "--reports-to",
        ),
        (&["--role", "agency", "--agency", "XYZ"], "--agency"),
        (&["--role", "agency", "--agency", "99999"], "--agency"),
        (&["--role", "agency"], "--agency"),
        (&["--role", "jefe"], "--role"),
        (&["--role", "helpdesk", "--password", "corta"], "--password"),
    ] {
        let out = create(extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = text(&out.stderr);
        assert!(err.contains(flag), "{extra:?} names {flag}: {err}");
        let without_flags = ["--role", "--password", "--agency"]
            .iter()
            .fold(err.clone(), |e, flag| e.replace(flag, ""));
        for field in ["reports_to", "agency_id", "agency:", "password:", "role:"] {
            assert!(
                !without_flags.contains(field),
                "{extra:?} shows the API field {field}: {err}"
            );
        }
    }
    let out = create(&["--role", "helpdesk"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = incidencias_in(
        dir.path(),
        &url,
        &["token", "create", "--email", "no es correo"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--email"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn only_migrate_creates_a_database_every_other_command_names_the_missing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("datos").join("falta.db");
    let url = format!("sqlite://{}", file.display());
    let backup_target = dir.path().join("respaldo.db").display().to_string();
    let export_target = dir.path().join("salida.jsonl").display().to_string();
    let commands: &[&[&str]] = &[
        &["outbox", "list"],
        &["outbox", "retry"],
        &[
            "user",
            "create",
            "--email",
            "a@ugd.gob.mx",
            "--name",
            "A",
            "--role",
            "admin",
        ],
        &["token", "create", "--email", "a@ugd.gob.mx"],
        &["token", "revoke", "--email", "a@ugd.gob.mx"],
        &["mail", "ingest"],
        &["audit", "verify"],
        &["backup", &backup_target],
        &["export", "--output", &export_target],
        &["export"],
    ];
    for args in commands {
        let out = incidencias_in(dir.path(), &url, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("falta.db") && err.contains("el archivo no existe"),
            "{args:?}: {err}"
        );
        assert!(!file.exists(), "{args:?} created the database");
        assert!(
            !dir.path().join("datos").exists(),
            "{args:?} created its folder"
        );
    }
    assert!(!dir.path().join("salida.jsonl").exists());
    // An empty file (a `touch`, a failed copy) is not a database either.
    std::fs::create_dir_all(dir.path().join("datos")).expect("dir");
    std::fs::write(&file, b"").expect("empty file");
    let out = incidencias_in(dir.path(), &url, &["outbox", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("vacío"), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&file).expect("file").len(), 0);

    let out = incidencias_in(dir.path(), &url, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = incidencias_in(dir.path(), &url, &["outbox", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn import_of_a_bad_file_answers_in_spanish_and_leaves_no_database_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("nueva").join("importada.db");
    let url = format!("sqlite://{}", target.display());
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "hoja.csv",
            b"folio,estado\nINC-1,abierta\n",
            "la línea 1 no es JSON válido (columna 2)",
        ),
        (
            "cortado.jsonl",
            b"{\"type\":\"header\"}\n{\"type\": \n",
            "la línea 2 no es JSON válido",
        ),
        ("vacio.jsonl", b"", "está vacío"),
        ("ajeno.jsonl", b"{\"a\":1}\n", "ajeno.jsonl"),
        (
            "binario.db",
            b"SQLite format 3\0\xff\xfe",
            "no es texto UTF-8",
        ),
    ];
    for (name, bytes, expected) in cases {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).expect("write");
        let out = incidencias_in(dir.path(), &url, &["import", &input.display().to_string()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!err.contains("expected"), "{name}: serde's English: {err}");
        assert!(!target.exists(), "{name} left a database behind");
        assert!(
            !Path::new(&format!("{}-wal", target.display())).exists(),
            "{name} left a WAL behind"
        );
    }
    let out = incidencias_in(dir.path(), &url, &["import", "no-existe.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no-existe.jsonl: no se pudo leer: no existe"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());
    assert!(
        !dir.path().join("nueva").exists(),
        "nor the folder made for it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_and_a_pending_migrate_refuse_while_a_server_holds_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = populated(dir.path()).await;
    let live = dir.path().join("cli.db");
    let export = dir.path().join("export.jsonl");
    let export_s = export.display().to_string();
    let out = incidencias_in(dir.path(), &url, &["export", "--output", &export_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Taken the way `serve` takes it.
    let _serving = incidencias::store::lock_serving(&live.display().to_string()).expect("lock");
    let before = snapshot(&live);
    let out = incidencias_in(dir.path(), &url, &["import", &export_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no se puede importar mientras un servidor de incidencias atiende"),
        "{err}"
    );
    assert_eq!(
        snapshot(&live),
        before,
        "import left the database untouched"
    );
    // Nothing to apply: migrate says so and changes nothing.
    let out = incidencias_in(dir.path(), &url, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ya al día"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        snapshot(&live),
        before,
        "migrate left the database untouched"
    );

    // A database that would be created (or migrated) while locked is refused.
    let fresh = dir.path().join("nueva.db");
    let _also = incidencias::store::lock_serving(&fresh.display().to_string()).expect("lock");
    let fresh_url = format!("sqlite://{}", fresh.display());
    for args in [&["migrate"][..], &["import", &export_s]] {
        let out = incidencias_in(dir.path(), &fresh_url, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("mientras un servidor") && err.contains("nueva.db"),
            "{args:?}: {err}"
        );
        assert!(!fresh.exists(), "{args:?} created the database");
    }
}
