//! Persistence: event-sourced incidents, the catalogue and the tables the workers fill, on
//! embedded SQLite (default) or PostgreSQL, through sqlx's `Any` driver so that the same
//! SQL runs on both (and the one test suite proves it).
//!
//! Writes go through [`Store::write`]: a job runs inside a transaction and its result is
//! returned only after a durable commit. On SQLite one writer task owns the only write
//! connection and commits the jobs waiting at that moment together (group commit): one
//! fsync for many writers, with `synchronous=FULL` untouched. On PostgreSQL each job is
//! its own transaction on the pool (the server groups concurrent WAL flushes itself).

mod accounts;
mod admin;
mod cache;
mod catalog;
pub mod chain;
mod errors;
mod facts;
mod folios;
mod incidents;
pub mod open;
mod outbox;
mod readers;
mod reports;
mod script;
mod timers;
mod transfer;
mod triage;
mod voids;
mod webhooks;
mod writer;

use std::future::Future;
use std::pin::Pin;

use sqlx::AnyConnection;
use sqlx::AnyPool;

pub use accounts::{IdempotencyRecord, TokenKind, login_wait_ms};
pub use admin::{AdminChange, AgencyUpdate, Audit, ImportWrite, ProcedureUpdate, UserUpdate};
pub use catalog::{Agency, NewAgency, NewProcedure, NewUser, Procedure, User};
pub use errors::StoreError;
pub use folios::{VOID_ABANDONED, VOID_AT_STOP, VOID_IDEMPOTENCY_RACE};
pub use incidents::{
    Effects, ListOrder, ListQuery, NewOutboxMessage, NewWebhook, StoredEvent, StoredIncident,
};
pub use open::DEFAULT_DATABASE_URL;
pub use outbox::{
    InboundDisposition, InboundRecord, InboundRow, OutboxRow, OutboxState, TriageAction,
    TriageResolution,
};
pub use reports::{
    AGE_BUCKETS_MS, BreachRow, ComplianceRow, MeanTime, OperationalFigures, OutcomeCount,
    ReportFilter, Rounds, Split, StateAge, TrialRow, TrialTargets,
};
pub use transfer::{ImportSummary, POSTGRES_BACKUP_HINT, VerifyReport};
pub use webhooks::{
    AttemptOutcome, BannerCheck, WebhookAttempt, WebhookDelivery, WebhookSubscription,
};

/// A boxed future borrowing the connection for `'c`: what a write job returns.
pub type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// Which database the URL chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The database. Cheap to clone; all clones share the pool and the writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Readers (and, on PostgreSQL, writers).
    pool: AnyPool,
    /// SQLite's single writer; `None` on PostgreSQL.
    writer: Option<writer::Writer>,
    /// SQLite's connections for the scheduler's bulk reads (`readers.rs`); `None` on
    /// PostgreSQL and on a read-only SQLite store.
    readers: Option<std::sync::Arc<readers::Readers>>,
    /// What the user called the database, for messages (file path or URL without password).
    display: String,
    /// Folio numbers reserved by this process and not yet used (and their voids).
    folios: std::sync::Arc<folios::FolioBlocks>,
    /// Incidents as last written or read (SQLite only; see `cache.rs`).
    cache: std::sync::Arc<cache::IncidentCache>,
    /// The lock file held while this process serves a SQLite database.
    serving: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
    /// How many writes this process committed: what caches of derived documents compare.
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database as named in messages: the SQLite file, or the PostgreSQL URL without
    /// its password.
    pub fn display_name(&self) -> &str {
        &self.display
    }

    /// How many writes this process has committed so far (any table). A document derived
    /// from the database and cached in memory is current while this number is unchanged
    /// (for this process's writes; another instance's are seen when the cache expires).
    pub fn write_generation(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// What this process can know of writes made by others: on a SQLite database it
    /// serves, the marker the command line touches after its writes (`cache.rs`), so an
    /// unchanged marker and an unchanged [`Store::write_generation`] mean nothing changed.
    /// `None` where other processes write unannounced (PostgreSQL, several instances).
    pub fn outside_writes(&self) -> Option<Option<std::time::SystemTime>> {
        (self.backend == Backend::Sqlite && self.writer.is_some()).then(|| self.cache.stamp())
    }

    /// Runs `job` in a write transaction and returns its result once durably committed.
    /// If the job fails, nothing it did is kept. On SQLite the job may share the commit
    /// with other writers' jobs (each in its own savepoint, so one failure never undoes
    /// another's work).
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + 'static,
    {
        self.write_counted(job, true).await
    }

    /// [`Store::write`] of the workers' own bookkeeping (leases, attempts, timers): not
    /// counted in [`Store::write_generation`], since no document derived from incidents
    /// or the catalogue changes with it (a worker polling must not make them stale).
    pub(super) async fn write_untracked<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + 'static,
    {
        self.write_counted(job, false).await
    }

    /// Runs `script` as one write, all or nothing: on SQLite one call to the writer's
    /// connection (see `writer.rs`), on PostgreSQL a transaction.
    pub(super) async fn write_script(&self, script: script::Script) -> Result<(), StoreError> {
        match &self.writer {
            Some(w) => self.settled(w.submit_script(script).await, true),
            None => {
                self.write(move |conn| {
                    Box::pin(async move { script.run(conn).await.map_err(StoreError::db) })
                })
                .await
            }
        }
    }

    /// [`Store::write`] of a write that reads what it writes, done often (folio blocks): on
    /// SQLite `native` runs on the writer's script connection (`Writer::submit_native`
    /// says why), on PostgreSQL `job` runs in a transaction. Both must do the same.
    pub(super) async fn write_native<T, N, F>(&self, native: N, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        N: Fn(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + 'static,
    {
        match &self.writer {
            Some(w) => self.settled(w.submit_native(native).await, true),
            None => self.write(job).await,
        }
    }

    async fn write_counted<T, F>(&self, job: F, counted: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + 'static,
    {
        match &self.writer {
            Some(w) => self.settled(w.submit(job).await, counted),
            None => {
                let mut tx = self.pool.begin().await.map_err(StoreError::db)?;
                let out = job(&mut tx).await?;
                let committed = tx.commit().await.map_err(StoreError::db);
                // Counted even when the commit's answer was lost: a stale cache is worse
                // than one rebuilt for nothing.
                if counted {
                    self.written();
                }
                committed?;
                Ok(out)
            }
        }
    }

    /// The writer's answer to a write, with its bookkeeping: counted (when `counted`)
    /// even if it failed, the cache told of it once it succeeded.
    fn settled<T>(&self, out: Result<T, StoreError>, counted: bool) -> Result<T, StoreError> {
        if counted {
            self.written();
        }
        let out = out?;
        self.cache.written();
        Ok(out)
    }

    fn written(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Claims a SQLite database for this serving process: one `serve` per database file,
    /// because this process's cache and folio blocks assume every incident write passes
    /// through it. Held until the process ends. PostgreSQL needs no claim.
    pub fn claim_for_serving(&self) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let file = lock_serving(&self.display)?;
        self.hold_claim(file);
        Ok(())
    }

    /// This process writes to a SQLite database another process may be serving (the
    /// command line): each commit is announced to that server's cache (`cache.rs`).
    pub fn announce_writes(&self) {
        self.cache.announce_writes();
    }

    /// Keeps a lock taken with [`lock_serving`] for as long as this store lives.
    pub fn hold_claim(&self, file: std::fs::File) {
        if let Ok(mut slot) = self.serving.lock() {
            *slot = Some(file);
        }
    }

    /// Closes the pool and stops the writer after the jobs already submitted.
    pub async fn close(&self) {
        // The unused numbers of this process's folio blocks are recorded void before the
        // writer stops (folios.rs); if this fails, the next start does it.
        if let Err(e) = self.folios.release(self).await {
            tracing::warn!(error = %e, "no se pudieron anular los folios reservados sin usar");
        }
        // Before the writer: its connection must be the last, to checkpoint as it closes.
        if let Some(r) = &self.readers {
            r.close();
        }
        if let Some(w) = &self.writer {
            w.close().await;
        }
        self.pool.close().await;
    }
}

/// Takes the serving lock of the SQLite database at `path` (`PATH.lock`), or says who
/// holds it.
pub fn lock_serving(path: &str) -> Result<std::fs::File, StoreError> {
    open::try_lock_serving(path)?.ok_or_else(|| {
        StoreError::Invalid(format!(
            "otro proceso de incidencias ya está sirviendo {path}; con SQLite sólo puede haber \
             uno (use PostgreSQL para varias instancias)"
        ))
    })
}
