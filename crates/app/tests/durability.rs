//! Durability and bad input: SIGKILL at random moments loses no acknowledged append;
//! foreign, damaged or too-new databases are refused by name and left untouched.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use common::{act, at, create, seed};
use incidencias::store::open::OpenMode;
use incidencias::store::{Store, StoreError};
use incidencias_core::{Command, Folio, Severity};

/// Environment variable that turns `crash_child` into the appending child process.
const CHILD_DB: &str = "INCIDENCIAS_CRASH_CHILD_DB";

/// The child of `sigkill_at_random_moments_never_loses_an_acknowledged_append`: appends
/// in a loop and prints `ACK folio version` after each append returned success. Not a
/// test on its own (it does nothing without the variable), hence ignored.
#[test]
#[ignore = "child process of the crash test; started by it with --ignored"]
fn crash_child() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store = Store::open(&url).await.expect("child open");
        // The parent seeded the database before the first round: a kill can never land
        // inside the seeding and leave every later round without its fixture.
        let fx = common::fixture_from(&store).await;
        let mut tasks = Vec::new();
        // Several concurrent writers so that kills land inside group commits too.
        for w in 0..8 {
            let (store, fx) = (store.clone(), fx.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0i64;
                loop {
                    i += 1;
                    let now = at(w * 1_000_000 + i * 10);
                    let created = create(&store, &fx, now).await;
                    println!(
                        "ACK {} {}",
                        created.incident.folio, created.incident.version
                    );
                    let notify = Command::Notify {
                        severity: Severity::High,
                        disable_button: true,
                        occurred_at: None,
                    };
                    let notified = act(&store, &created, &fx.helpdesk(), notify, now)
                        .await
                        .expect("notify");
                    println!(
                        "ACK {} {}",
                        notified.incident.folio, notified.incident.version
                    );
                    let acked = act(
                        &store,
                        &notified,
                        &fx.agency_actor(),
                        Command::Acknowledge,
                        now,
                    )
                    .await
                    .expect("ack");
                    println!("ACK {} {}", acked.incident.folio, acked.incident.version);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_append() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/crash.db", dir.path().display());
    let exe = std::env::current_exe().expect("test binary");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // A simple LCG seeded from the clock: random kill moments, printed for reproduction.
    let mut seed = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1)
        % 1_000_003) as u64;
    eprintln!("crash test seed {seed}");
    rt.block_on(async {
        let store = Store::open(&url).await.expect("create database");
        common::seed(&store).await;
        store.close().await;
    });
    let mut acked_total = 0usize;
    for round in 0..12 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(20 + (seed >> 33) % 600);
        let mut child = Process::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let (first_ack, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some(parsed) = (|| {
                    let mut parts = line.strip_prefix("ACK ")?.split(' ');
                    let folio = Folio::parse(parts.next()?).ok()?;
                    let version: u64 = parts.next()?.parse().ok()?;
                    Some((folio, version))
                })() else {
                    continue;
                };
                if acked.is_empty() {
                    let _ = first_ack.send(());
                }
                acked.push(parsed);
            }
            acked
        });
        // The random moment counts from the child's first acknowledged append, so a slow
        // machine (process start, opening the database) cannot turn every round into a
        // kill before anything happened.
        let waited = started.recv_timeout(Duration::from_secs(60));
        let start = Instant::now();
        if waited.is_ok() {
            std::thread::sleep(kill_after);
        }
        // SIGKILL: no destructor, no flush, no checkpoint.
        child.kill().expect("kill child");
        let killed_at = start.elapsed();
        let _ = child.wait();
        let acked = reader.join().expect("reader");
        let child_errors = errors.join().unwrap_or_default();
        assert!(
            !acked.is_empty(),
            "round {round}: the child acknowledged nothing within 60 s; its stderr:\n{child_errors}"
        );
        acked_total += acked.len();
        rt.block_on(async {
            let store = Store::open(&url).await.expect("reopen after kill");
            for (folio, version) in &acked {
                let stored = store.load(*folio).await.expect("load").unwrap_or_else(|| {
                    panic!("round {round}: acknowledged {folio} lost after kill")
                });
                assert!(
                    stored.incident.version >= *version,
                    "round {round}: {folio} acknowledged at version {version}, found {}",
                    stored.incident.version
                );
                assert!(store.events(*folio).await.expect("events").len() as u64 >= *version);
            }
            let report = store.verify().await.expect("verify");
            assert!(report.ok(), "round {round}: {:?}", report.problems);
            store.close().await;
        });
        eprintln!(
            "round {round}: killed {killed_at:?} after the first ack, {} acknowledged appends checked",
            acked.len()
        );
    }
    assert!(
        acked_total > 100,
        "the child must have made progress to prove anything ({acked_total} acks)"
    );
}

fn snapshot(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_by_name_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notas.db");
    std::fs::write(&path, "Minuta de la reunión del lunes\n".repeat(200)).expect("write");
    let before = snapshot(&path);
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("notas.db") && msg.contains("no tiene el formato de SQLite"),
        "{msg}"
    );
    assert_eq!(snapshot(&path), before, "nothing written");
    assert!(!dir.path().join("notas.db-wal").exists());
}

#[tokio::test]
async fn a_damaged_database_is_refused_by_name_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("danada.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&path, &bytes).expect("write");
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("danada.db"), "{msg}");
    assert!(
        matches!(err, StoreError::NotADatabase { .. }),
        "a damaged file is named as such: {err:?}"
    );
    assert_eq!(snapshot(&path), bytes, "nothing written");
}

#[tokio::test]
async fn a_database_of_another_application_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("otra.db");
    {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        sqlx::any::install_default_drivers();
        use sqlx::{Connection, Executor};
        let mut c = sqlx::AnyConnection::connect(&url)
            .await
            .expect("create foreign db");
        c.execute("CREATE TABLE nomina (id INTEGER PRIMARY KEY, empleado TEXT)")
            .await
            .expect("foreign table");
        c.close().await.expect("close");
    }
    let before = snapshot(&path);
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("otra aplicación"), "{err}");
    assert_eq!(
        snapshot(&path),
        before,
        "nothing written, not even the WAL switch"
    );
}

#[tokio::test]
async fn read_only_commands_leave_a_backup_byte_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/live.db", dir.path().display());
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    let backup = dir.path().join("respaldo.db");
    store.backup(&backup).await.expect("backup");
    store.close().await;
    let before = snapshot(&backup);
    let copy = Store::open_with(
        &format!("sqlite://{}", backup.display()),
        OpenMode::Existing,
    )
    .await
    .expect("open backup read-only");
    assert!(copy.verify().await.expect("verify").ok());
    let mut out = Vec::new();
    copy.export(&mut out, at(10)).await.expect("export");
    copy.close().await;
    assert_eq!(snapshot(&backup), before, "evidence untouched");
    assert!(!dir.path().join("respaldo.db-wal").exists());
}

#[tokio::test]
async fn a_missing_database_is_not_created_by_read_only_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-existe.db");
    let err = Store::open_with(&format!("sqlite://{}", path.display()), OpenMode::Existing)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no existe"), "{err}");
    assert!(!path.exists());
}

async fn a_newer_schema_is_refused_and_left_untouched(url: String) {
    let store = Store::open(&url).await.expect("open");
    let fx = seed(&store).await;
    create(&store, &fx, at(0)).await;
    let bytes = match store.backend() {
        incidencias::store::Backend::Sqlite => "x'00'",
        incidencias::store::Backend::Postgres => "'\\x00'::bytea",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', TRUE, {bytes}, 0)"
    )))
    .execute(store.pool())
    .await
    .expect("pretend a newer binary migrated");
    store.close().await;
    let before = url
        .strip_prefix("sqlite://")
        .map(|p| snapshot(Path::new(p)));
    let err = Store::open(&url).await.err().expect("refused");
    match &err {
        StoreError::SchemaTooNew { found, known, .. } => {
            assert_eq!(*found, 99999);
            assert!(*known < 99999);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("actualice incidencias"), "{err}");
    if let Some(before) = before {
        let path = url.strip_prefix("sqlite://").expect("sqlite path");
        assert_eq!(snapshot(Path::new(path)), before, "nothing written");
    }
}

on_both_backends!(a_newer_schema_is_refused_and_left_untouched);

/// Checkpoints run on their own connection after each commit, not inside the writer's
/// commits: the database file itself takes the writes soon after they are committed, long
/// before the WAL would reach the writer's own checkpoint limit (16,000 pages).
#[tokio::test]
async fn committed_writes_reach_the_database_file_without_waiting_for_the_wal_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("incidencias.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    let fx = seed(&store).await;
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    for i in 0..200 {
        create(&store, &fx, at(i * 1000)).await;
    }
    let wal = std::fs::metadata(dir.path().join("incidencias.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal < 16_000 * 4096,
        "the WAL ({wal} bytes) stays under the writer's own checkpoint limit"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while size() <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        size() > before,
        "200 incidents later the database file is still {before} bytes: nothing was \
         checkpointed"
    );
    store.close().await;
}
