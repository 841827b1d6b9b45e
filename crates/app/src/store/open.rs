//! Opening a database from its URL: backend choice, SQLite file checks and PRAGMAs, the
//! schema-version check, migrations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor, Row};

use super::writer::{Connections, Writer};
use super::{Backend, Store, StoreError};

/// Where a newcomer's data goes: created on first run, next to where the command runs.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/incidencias.db";

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Every SQLite file starts with these 16 bytes.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether opening may create the database or change its schema. Only the commands that
/// set a database up may create one: a typo in another command's URL must be answered with
/// "no existe", not with a fresh empty database that then looks like lost data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the SQLite file if missing and apply pending migrations (serve, migrate,
    /// demo, and import once its input has been read and checked).
    Migrate,
    /// The database must exist with the current schema and is only read: no writer, no
    /// WAL switch, so evidence on read-only media stays byte for byte as it was (audit,
    /// export, backup, outbox list).
    Existing,
    /// The database must exist with the current schema; rows may be written, but nothing
    /// is created or migrated (user, token, outbox retry, mail ingest).
    ExistingWritable,
}

/// PRAGMAs for every SQLite connection. `synchronous=FULL`: a commit that returned has
/// reached the disk (the WAL is fsynced), which is the product's durability promise.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
     PRAGMA synchronous = FULL;";

/// PRAGMAs for the writer's connections (`writer.rs`). `temp_store = MEMORY` keeps a
/// job's savepoint journal (how a failed job is undone alone) in memory: by default one
/// over 64 KiB, such as a scheduler chunk's, spills to a temporary file and every page it
/// touches is written twice. Checkpoints run on a connection of their own; the writer
/// checkpoints itself only if the WAL reaches 16,000 pages (64 MiB) all the same, so a
/// checkpointer that falls behind still leaves the WAL bounded.
const WRITER_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16000;";

/// Page size of a new SQLite database (an existing one keeps its own: SQLite changes it
/// only by rebuilding the file, `VACUUM`, outside WAL mode). With 4 KiB pages a notified
/// incident's row (a ~2 KiB body) took a page of its own; with 8 KiB three share one, so a
/// scheduler chunk, whose incidents are neighbours by folio, reads and rewrites a third of
/// the pages. `bench timers --catch-up-only` (docs/benchmarks.md, issue 15, eleventh
/// session): with memory-mapped reads besides, firing/intake 1.16, 1.07 and 1.07 against
/// 0.88, 0.88 and 0.94 without either, alternated in the same minutes.
const PAGE_SIZE_PRAGMA: &str = "PRAGMA page_size = 8192;";

/// For the connections that read the database file most (the scheduler's bulk readers and
/// the writer's two, as measured; the script connection's B-tree seeks read pages the
/// readers just read): pages not in the
/// WAL are read straight from a memory map of the file, up to its first GiB, instead of
/// copied into each connection's cache with a `pread` (and a `malloc` for the copy, freed
/// again whenever another connection's commit makes the cache stale). The writer still
/// writes with `pwrite`: SQLite maps the file read-only.
const MMAP_PRAGMA: &str = "PRAGMA mmap_size = 1073741824;";

/// For the connection that runs the scripts (every create, append and firing): a page
/// cache of 64 MiB at most, filled only as pages are touched, keeps the B-tree pages a
/// burst of updates keeps rewriting out of `pread`.
const SCRIPT_PRAGMAS: &str = "PRAGMA cache_size = -65536;";

impl Store {
    /// Opens (creating and migrating as needed) the database at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, OpenMode::Migrate).await
    }

    pub async fn open_with(url: &str, mode: OpenMode) -> Result<Store, StoreError> {
        install_default_drivers();
        let url = url.trim();
        let store = if url.starts_with("sqlite:") {
            open_sqlite(url, mode).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            open_postgres(url, mode).await?
        } else {
            return Err(StoreError::Open {
                path: redact_password(url),
                reason: "URL no reconocida: use sqlite://RUTA o postgres://USUARIO@HOST/BASE"
                    .into(),
            });
        };
        if mode == OpenMode::Migrate {
            store.ensure_seed_policy(jiff::Timestamp::now()).await?;
        }
        // Folios reserved by processes that ended without using them are recorded void
        // (folios.rs): the audited sequence has no unexplained gap.
        if mode != OpenMode::Existing {
            store.settle_abandoned().await?;
        }
        // Incidents stored before the clock fact table existed get their rows (facts.rs).
        if mode == OpenMode::Migrate {
            let filled = store.fill_missing_facts_once().await?;
            if filled > 0 {
                tracing::info!(incidents = filled, "hechos de reloj reconstruidos");
            }
        }
        // A command writing to a database that a server may be serving tells that
        // server's cache about each commit (cache.rs).
        if mode == OpenMode::ExistingWritable {
            store.announce_writes();
        }
        Ok(store)
    }
}

/// The file path of a `sqlite:` URL and its query string, if any.
fn sqlite_path(url: &str) -> (String, Option<String>) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    match rest.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (rest.to_string(), None),
    }
}

async fn open_sqlite(url: &str, mode: OpenMode) -> Result<Store, StoreError> {
    let (path, query) = sqlite_path(url);
    if path.is_empty()
        || path.contains(":memory:")
        || query.as_deref().is_some_and(|q| q.contains("mode=memory"))
    {
        return Err(StoreError::Open {
            path,
            reason: "se necesita un archivo; las bases en memoria no son durables".into(),
        });
    }
    let file = PathBuf::from(&path);
    check_sqlite_file(&file, mode)?;
    let access = if mode == OpenMode::Migrate {
        "rwc"
    } else {
        "rw"
    };
    if mode == OpenMode::Migrate
        && let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: format!("no se pudo crear la carpeta {}: {e}", dir.display()),
        })?;
    }
    let classify = |e: sqlx::Error| classify_sqlite_error(&path, e);
    let connect = |access: &str| -> Result<AnyConnectOptions, StoreError> {
        let full = format!("sqlite://{path}?mode={access}");
        let options: AnyConnectOptions =
            full.parse().map_err(|e: sqlx::Error| StoreError::Open {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(options.disable_statement_logging())
    };

    // First look without the right to write: a foreign or too-new database must be refused
    // before anything (even the WAL switch, which rewrites the header) touches it.
    if std::fs::metadata(&file).is_ok_and(|m| m.len() > 0) {
        let mut probe = AnyConnection::connect_with(&connect("ro")?)
            .await
            .map_err(classify)?;
        let checked = check_schema(&mut probe, &SQLITE_MIGRATIONS, &path, mode).await;
        let _ = probe.close().await;
        checked.map_err(|e| match e {
            StoreError::Database(msg) => classify_sqlite_message(&path, msg),
            other => other,
        })?;
    }

    if mode == OpenMode::Existing {
        // Read-only commands (audit, export, backup, outbox list) never write: no writer, no WAL switch,
        // so a backup can be verified on read-only media and stays as it was.
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect("ro")?)
            .await
            .map_err(classify)?;
        return Ok(Store {
            backend: Backend::Sqlite,
            pool,
            writer: None,
            readers: None,
            display: path,
            folios: Default::default(),
            cache: Default::default(),
            serving: Default::default(),
            writes: Default::default(),
        });
    }

    let options = connect(access)?;
    // The writer connection first: it sets WAL (persistent in the file) and runs the
    // migrations before anyone else touches the database.
    let open_with = |pragmas: &'static [&'static str]| {
        let options = options.clone();
        async move {
            let mut conn = AnyConnection::connect_with(&options)
                .await
                .map_err(classify)?;
            for p in pragmas {
                conn.execute(*p).await.map_err(classify)?;
            }
            Ok::<_, StoreError>(conn)
        }
    };
    let mut writer_conn = open_with(&[
        PAGE_SIZE_PRAGMA,
        "PRAGMA journal_mode = WAL;",
        SQLITE_PRAGMAS,
        WRITER_PRAGMAS,
    ])
    .await?;
    prepare_schema(&mut writer_conn, &SQLITE_MIGRATIONS, &path, mode)
        .await
        .map_err(|e| match e {
            StoreError::Database(msg) => classify_sqlite_message(&path, msg),
            other => other,
        })?;

    // The writer's own connections (`writer.rs`), opened on the file the migrations
    // just prepared.
    let native = |pragmas: &[&str]| -> Result<rusqlite::Connection, StoreError> {
        let failed = |e: rusqlite::Error| classify_sqlite_message(&path, e.to_string());
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&file, flags).map_err(failed)?;
        for p in pragmas {
            conn.execute_batch(p).map_err(failed)?;
        }
        Ok(conn)
    };
    let connections = Connections {
        sqlx: writer_conn,
        native: native(&[SQLITE_PRAGMAS, WRITER_PRAGMAS, SCRIPT_PRAGMAS, MMAP_PRAGMA])?,
        checkpointer: native(&[SQLITE_PRAGMAS, MMAP_PRAGMA])?,
    };
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(classify)?;
    Ok(Store {
        backend: Backend::Sqlite,
        pool,
        writer: Some(Writer::start(connections)),
        readers: Some(std::sync::Arc::new(super::readers::Readers::new(
            file.clone(),
            &[SQLITE_PRAGMAS, MMAP_PRAGMA],
        ))),
        folios: Default::default(),
        cache: std::sync::Arc::new(super::cache::IncidentCache::new(&path)),
        display: path,
        serving: Default::default(),
        writes: Default::default(),
    })
}

/// Refuses, before SQLite sees it, a file that is not an SQLite database: nothing is
/// written to it. A missing file is fine when it may be created.
fn check_sqlite_file(file: &Path, mode: OpenMode) -> Result<(), StoreError> {
    let path = file.display().to_string();
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode != OpenMode::Migrate {
                return Err(StoreError::Open {
                    path,
                    reason: "el archivo no existe (se crea con `incidencias migrate` o \
                             `incidencias serve`; revise --database-url)"
                        .into(),
                });
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Open {
            path,
            reason: e.to_string(),
        }),
        Ok(meta) if meta.is_dir() => Err(StoreError::NotADatabase {
            path,
            detail: "es una carpeta, no un archivo".into(),
        }),
        Ok(meta) if meta.len() == 0 && mode != OpenMode::Migrate => Err(StoreError::Open {
            path,
            reason: "el archivo está vacío; prepárelo con `incidencias migrate`".into(),
        }),
        Ok(meta) if meta.len() == 0 => Ok(()),
        Ok(_) => {
            use std::io::Read;
            let mut header = [0u8; 16];
            let read = std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut header));
            match read {
                Ok(()) if &header == SQLITE_HEADER => Ok(()),
                Ok(()) => Err(StoreError::NotADatabase {
                    path,
                    detail: "el archivo no tiene el formato de SQLite".into(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Err(StoreError::NotADatabase {
                        path,
                        detail: "el archivo es demasiado corto para ser una base SQLite".into(),
                    })
                }
                Err(e) => Err(StoreError::Open {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
    }
}

fn classify_sqlite_error(path: &str, e: sqlx::Error) -> StoreError {
    classify_sqlite_message(path, e.to_string())
}

/// SQLite's "not a database" and "malformed" errors name a damaged file: say so, with the
/// file. Anything else stays a database error.
fn classify_sqlite_message(path: &str, msg: String) -> StoreError {
    let lower = msg.to_lowercase();
    if lower.contains("not a database") || lower.contains("malformed") || lower.contains("corrupt")
    {
        StoreError::NotADatabase {
            path: path.to_string(),
            detail: format!("el archivo está dañado ({msg})"),
        }
    } else {
        StoreError::Open {
            path: path.to_string(),
            reason: msg,
        }
    }
}

async fn open_postgres(url: &str, mode: OpenMode) -> Result<Store, StoreError> {
    let display = redact_password(url);
    let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| StoreError::Open {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    let options = options.disable_statement_logging();
    let open_err = |e: sqlx::Error| StoreError::Open {
        path: display.clone(),
        reason: e.to_string(),
    };
    let mut conn = AnyConnection::connect_with(&options)
        .await
        .map_err(open_err)?;
    let prepared = prepare_schema(&mut conn, &POSTGRES_MIGRATIONS, &display, mode).await;
    let _ = conn.close().await;
    prepared?;
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(open_err)?;
    Ok(Store {
        backend: Backend::Postgres,
        pool,
        writer: None,
        readers: None,
        display,
        folios: Default::default(),
        cache: Default::default(),
        serving: Default::default(),
        writes: Default::default(),
    })
}

/// `postgres://user:secret@host/db?password=x` -> `postgres://user:***@host/db`, for
/// messages: the password never appears, wherever it was given.
pub fn redact_password(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return base.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{userinfo}@{host}"),
    }
}

/// Refuses what must not be opened, before anything is written: a schema newer than this
/// binary knows, a database of another application (tables but no migration record), or,
/// for commands that may not migrate, a schema with pending migrations.
async fn check_schema(
    conn: &mut AnyConnection,
    migrator: &Migrator,
    path: &str,
    mode: OpenMode,
) -> Result<(), StoreError> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let found = applied_version(conn).await?;
    if found > known {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found,
            known,
        });
    }
    if found == 0 && foreign_tables(conn).await? > 0 {
        return Err(StoreError::NotADatabase {
            path: path.to_string(),
            detail: "contiene tablas de otra aplicación; use una base de datos (o esquema) propia"
                .into(),
        });
    }
    if mode != OpenMode::Migrate && found == 0 {
        return Err(StoreError::Open {
            path: path.to_string(),
            reason: "no tiene el esquema de incidencias; prepárela con `incidencias migrate`"
                .into(),
        });
    }
    if mode != OpenMode::Migrate && found < known {
        return Err(StoreError::Open {
            path: path.to_string(),
            reason: format!(
                "el esquema está en la versión {found} y este programa usa la {known}; \
                 ejecute `incidencias migrate` primero"
            ),
        });
    }
    Ok(())
}

/// Checks, then applies pending migrations (Migrate mode).
async fn prepare_schema(
    conn: &mut AnyConnection,
    migrator: &Migrator,
    path: &str,
    mode: OpenMode,
) -> Result<(), StoreError> {
    check_schema(conn, migrator, path, mode).await?;
    if mode == OpenMode::Migrate {
        migrator
            .run(conn)
            .await
            .map_err(|e| StoreError::Database(format!("migración fallida: {e}")))?;
    }
    Ok(())
}

/// Tables in the database (SQLite) or current schema (PostgreSQL).
async fn foreign_tables(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let sql = match conn.backend_name() {
        "SQLite" => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    };
    sqlx::query(sql)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// The highest migration recorded as applied, 0 for a fresh database.
async fn applied_version(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let exists_sql = match conn.backend_name() {
        "SQLite" => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
        }
    };
    let exists: i64 = sqlx::query(exists_sql)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| StoreError::Database(e.to_string()))?;
    if exists == 0 {
        return Ok(0);
    }
    sqlx::query("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// The file of a `sqlite:` URL; `None` for any other database.
pub fn sqlite_file(url: &str) -> Option<String> {
    let url = url.trim();
    url.starts_with("sqlite:").then(|| sqlite_path(url).0)
}

/// Takes the serving lock of the SQLite database at `path` (the file `PATH.lock`): `None`
/// when another process holds it. The lock is the operating system's (released when the
/// holder exits, even by a crash), so a stale lock file never blocks anyone.
pub fn try_lock_serving(path: &str) -> Result<Option<std::fs::File>, StoreError> {
    let lock = format!("{path}.lock");
    if let Some(dir) = Path::new(&lock)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
    }
}

/// Whether `incidencias migrate` would change the SQLite database at `path`: it is
/// missing or empty, or has migrations pending. Only reads (a read-only connection), so
/// it may ask beside a running server.
pub async fn sqlite_needs_migration(path: &str) -> Result<bool, StoreError> {
    install_default_drivers();
    let file = PathBuf::from(path);
    check_sqlite_file(&file, OpenMode::Migrate)?;
    if !std::fs::metadata(&file).is_ok_and(|m| m.len() > 0) {
        return Ok(true);
    }
    let options: AnyConnectOptions = format!("sqlite://{path}?mode=ro")
        .parse()
        .map_err(|e: sqlx::Error| classify_sqlite_error(path, e))?;
    let mut probe = AnyConnection::connect_with(&options.disable_statement_logging())
        .await
        .map_err(|e| classify_sqlite_error(path, e))?;
    let checked = check_schema(&mut probe, &SQLITE_MIGRATIONS, path, OpenMode::Migrate).await;
    let found = applied_version(&mut probe).await;
    let _ = probe.close().await;
    checked?;
    let known = SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    Ok(found? < known)
}
