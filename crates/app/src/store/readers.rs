//! SQLite reads made in bulk by the scheduler, on connections of their own driven directly
//! (rusqlite) on a blocking thread.
//!
//! A scheduler chunk reads its incidents' projections (128 bodies of ~2 KB) in one go. Through
//! sqlx's `Any` driver each row went from SQLite to the connection's own thread, was copied
//! into a `SqliteRow`, sent back, converted into an `AnyRow` and copied again into a `String`
//! before being parsed: a profile of a 100,000-timer catch-up put that read at about a fifth
//! of its CPU (sqlx's reader threads 13.5 %, the conversions on the workers ~5 %). Here the
//! statement runs where it is stepped and each body is parsed from SQLite's own buffer.
//!
//! Read-only connections, opened when first needed and kept (a few) for the next read; every
//! read is one implicit read transaction, so it sees the last commit, as sqlx's readers do.
//! [`Readers::close`] drops them before the writer closes, so that the writer's connection
//! is the last and, as it closes, checkpoints the WAL.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::StoreError;

/// Idle connections kept for the next read: one per chunk the scheduler fires at once by
/// default (`scheduler::PARALLEL`, which the store may not name: tests/layering.rs); a
/// connection opened for each read beyond those kept would parse the schema every time.
const KEEP: usize = 8;

pub(super) struct Readers {
    file: PathBuf,
    /// Run on each connection as it opens: those of every SQLite connection and the
    /// memory map (`open.rs`).
    pragmas: &'static [&'static str],
    /// `None` once closed: a read after [`Readers::close`] fails like the closed pool's.
    idle: Mutex<Option<Vec<rusqlite::Connection>>>,
}

impl Readers {
    pub(super) fn new(file: PathBuf, pragmas: &'static [&'static str]) -> Readers {
        Readers {
            file,
            pragmas,
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    fn open(&self) -> Result<rusqlite::Connection, StoreError> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.file, flags)
            .map_err(super::writer::native_error)?;
        for p in self.pragmas {
            conn.execute_batch(p).map_err(super::writer::native_error)?;
        }
        Ok(conn)
    }

    fn closed() -> StoreError {
        StoreError::Database("la base de datos ya se cerró".into())
    }

    /// Runs `read` on an idle connection (or a new one) on a blocking thread.
    pub(super) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = match me.idle.lock() {
                Ok(mut idle) => match idle.as_mut() {
                    Some(idle) => idle.pop(),
                    None => return Err(Self::closed()),
                },
                Err(_) => None,
            };
            let conn = match taken {
                Some(conn) => conn,
                None => me.open()?,
            };
            let out = read(&conn);
            // A connection whose read failed may be in any state: it is not kept.
            if out.is_ok()
                && let Ok(mut idle) = me.idle.lock()
                && let Some(idle) = idle.as_mut()
                && idle.len() < KEEP
            {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Database(format!("lectura interrumpida: {e}")))?
    }

    /// Closes the idle connections; later reads fail. One in use closes when its read ends.
    pub(super) fn close(&self) {
        let idle = match self.idle.lock() {
            Ok(mut idle) => idle.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_sees_the_last_commit_and_fails_once_closed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("r.db");
        let writer = rusqlite::Connection::open(&file).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .expect("schema");
        let readers = Arc::new(Readers::new(file, &["PRAGMA busy_timeout = 10000;"]));
        let count = |readers: Arc<Readers>| async move {
            readers
                .read(|c| {
                    c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                        .map_err(super::super::writer::native_error)
                })
                .await
        };
        assert_eq!(count(readers.clone()).await.expect("read"), 1);
        // The kept connection must not answer from a stale snapshot.
        writer
            .execute("INSERT INTO t VALUES (2)", [])
            .expect("insert");
        assert_eq!(count(readers.clone()).await.expect("read"), 2);
        readers.close();
        assert!(count(readers.clone()).await.is_err());
    }
}
