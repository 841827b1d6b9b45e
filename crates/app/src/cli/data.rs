//! The database as a whole: `migrate`, `audit verify`, `backup`, `export`, `import`. Only
//! `migrate` (and `import`, once its input is known to be good) may create a database;
//! both refuse to change a SQLite database while a server holds it.

use std::io::Write;
use std::path::Path;

use super::CliError;
use super::error::io_reason;
use crate::store::open::{OpenMode, sqlite_file, sqlite_needs_migration, try_lock_serving};
use crate::store::{POSTGRES_BACKUP_HINT, Store};

pub async fn migrate(url: &str) -> Result<i32, CliError> {
    // Held while migrating, so no server starts on a half-migrated schema.
    let _claim = match sqlite_file(url) {
        Some(file) => {
            let pending = sqlite_needs_migration(&file).await?;
            match try_lock_serving(&file)? {
                Some(lock) => Some(lock),
                None if pending => return Err(refused_while_serving(&file, "migrar")),
                None => {
                    println!("Base de datos lista: {file} (ya al día; la atiende un servidor).");
                    return Ok(0);
                }
            }
        }
        None => None,
    };
    let store = Store::open(url).await?;
    println!("Base de datos lista: {}", store.display_name());
    store.close().await;
    Ok(0)
}

pub async fn audit_verify(url: &str) -> Result<i32, CliError> {
    let store = Store::open_with(url, OpenMode::Existing).await?;
    let report = store.verify().await;
    store.close().await;
    let report = report?;
    println!(
        "{} incidencias y {} eventos revisados; {} folios anulados registrados.",
        report.incidents, report.events, report.voids
    );
    let Some(first) = report.problems.first() else {
        println!("Todas las cadenas son íntegras.");
        return Ok(0);
    };
    let at = |seq: Option<i64>| seq.map_or(String::new(), |s| format!(", evento {s}"));
    println!(
        "ALTERACIÓN DETECTADA: primer eslabón roto en {}{}: {}",
        first.folio,
        at(first.seq),
        first.what
    );
    for p in report.problems.iter().skip(1) {
        println!("también: {}{}: {}", p.folio, at(p.seq), p.what);
    }
    Ok(1)
}

pub async fn backup(url: &str, path: &Path) -> Result<i32, CliError> {
    if url.trim().starts_with("postgres") {
        // No need to connect to say so.
        return Err(CliError::Refused(POSTGRES_BACKUP_HINT.into()));
    }
    let store = Store::open_with(url, OpenMode::Existing).await?;
    let result = store.backup(path).await;
    store.close().await;
    result?;
    println!("Respaldo escrito en {}", path.display());
    Ok(0)
}

pub async fn export(url: &str, output: Option<&Path>) -> Result<i32, CliError> {
    let store = Store::open_with(url, OpenMode::Existing).await?;
    let result = export_to(&store, output).await;
    store.close().await;
    eprintln!("{} líneas exportadas.", result?);
    Ok(0)
}

async fn export_to(store: &Store, output: Option<&Path>) -> Result<u64, CliError> {
    let now = jiff::Timestamp::now();
    match output {
        Some(path) => {
            // Never overwrite; readable by its owner only (it holds password hashes).
            let file = private_new_file(path)?;
            let mut w = std::io::BufWriter::new(file);
            let n = store.export(&mut w, now).await?;
            w.flush()?;
            w.get_ref().sync_all()?;
            Ok(n)
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            Ok(store.export(&mut w, now).await?)
        }
    }
}

/// Reads and checks the whole input before the target database is touched: a wrong
/// file must neither create nor migrate a database, and a refused import must not leave
/// behind the empty one it created.
pub async fn import(url: &str, path: Option<&Path>) -> Result<i32, CliError> {
    let name = path.map_or("la entrada estándar".to_string(), |p| {
        p.display().to_string()
    });
    let text = read_input(path).map_err(|e| CliError::Refused(format!("{name}: {e}")))?;
    check_json_lines(&text).map_err(|e| CliError::Refused(format!("{name}: {e}")))?;
    let file = sqlite_file(url);
    // What this import creates, to be taken back if the store refuses the file after all:
    // the database and, when it was missing, its folder.
    let created = file.as_deref().filter(|f| !Path::new(f).exists()).map(|f| {
        let folder = Path::new(f)
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf);
        (f, folder)
    });
    let _claim = match &file {
        Some(f) => Some(try_lock_serving(f)?.ok_or_else(|| refused_while_serving(f, "importar"))?),
        None => None,
    };
    let result = import_into(url, &text).await;
    if result.is_err()
        && let Some((f, folder)) = created
    {
        remove_database(f, folder.as_deref());
    }
    let s = result.map_err(|e| match e {
        CliError::Store(e) => CliError::Refused(format!("{name}: {e}")),
        other => other,
    })?;
    println!(
        "Importados: {} dependencias, {} usuarios, {} trámites, {} políticas, \
         {} incidencias con {} eventos.",
        s.agencies, s.users, s.procedures, s.policies, s.incidents, s.events
    );
    Ok(0)
}

async fn import_into(url: &str, text: &str) -> Result<crate::store::ImportSummary, CliError> {
    let store = Store::open(url).await?;
    let summary = store
        .import(&mut text.as_bytes(), jiff::Timestamp::now())
        .await;
    store.close().await;
    Ok(summary?)
}

/// The whole export: it is held in memory by the import anyway.
fn read_input(path: Option<&Path>) -> Result<String, String> {
    let read = match path {
        Some(p) => std::fs::read_to_string(p),
        None => std::io::read_to_string(std::io::stdin()),
    };
    read.map_err(|e| format!("no se pudo leer: {}", io_reason(&e)))
}

/// Every non-blank line must be JSON; the first bad one is named, with its column, in
/// Spanish (serde's own message is English).
fn check_json_lines(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("está vacío; se esperaba un archivo de `incidencias export`".into());
    }
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            return Err(format!(
                "la línea {} no es JSON válido (columna {}); se esperaba un archivo de \
                 `incidencias export`",
                n + 1,
                e.column()
            ));
        }
    }
    Ok(())
}

/// Removes a SQLite database this command created (its companions and the folder it
/// made for it too), best effort.
fn remove_database(path: &str, folder: Option<&Path>) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    if let Some(folder) = folder {
        // Only succeeds on an empty folder: nothing else in it is ever removed.
        let _ = std::fs::remove_dir(folder);
    }
}

fn refused_while_serving(file: &str, what: &str) -> CliError {
    CliError::Refused(format!(
        "no se puede {what} mientras un servidor de incidencias atiende {file}; deténgalo \
         (Ctrl-C o SIGTERM) y vuelva a intentarlo. No se modificó nada."
    ))
}

/// Creates `path` for writing, refusing to overwrite, with permissions for its owner only.
fn private_new_file(path: &Path) -> Result<std::fs::File, CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::Refused(format!(
            "{} ya existe; elija otro nombre para no sobrescribirlo",
            path.display()
        )),
        _ => CliError::Refused(format!(
            "no se pudo crear {}: {}",
            path.display(),
            io_reason(&e)
        )),
    })
}
