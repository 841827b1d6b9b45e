//! SQLite's group-commit writer.
//!
//! SQLite allows one writer at a time and, with `synchronous=FULL`, every commit waits for
//! an fsync. Rather than weaken that, one task owns the write connection: it takes every
//! job waiting when it becomes free, runs each in its own savepoint inside one
//! `BEGIN IMMEDIATE` transaction, commits once, and only then answers each job. While that
//! fsync runs, the next jobs queue up and form the next batch: the busier the system, the
//! more each fsync carries, with no timer and no added latency when idle.
//!
//! Checkpoints (copying the WAL's pages back into the database file and syncing it) run on
//! a connection of their own, woken after each commit: by default SQLite runs them inside
//! the commit that crosses the WAL's size limit, so every few commits the writer stopped
//! to write and sync the pages of all the earlier ones. A passive checkpoint never blocks
//! the writer; the writer's own automatic checkpoint stays as a bound on the WAL's size
//! should this one fall behind.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::FutureExt;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{JobFuture, StoreError};

/// Most jobs in one commit: bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 256;

type Output = Box<dyn Any + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, Output> + Send>;

struct Request {
    job: Job,
    reply: oneshot::Sender<Result<Output, StoreError>>,
}

enum Msg {
    Job(Request),
    /// Finish what was queued before, close the connection, answer.
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

/// Gives the closure its higher-ranked signature (a closure passed straight to a function
/// with this bound is inferred as `for<'c>`; one built inside `Box::new` is not).
fn erase<F>(f: F) -> Job
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, Output> + Send + 'static,
{
    Box::new(f)
}

impl Writer {
    /// Starts the writer task on `conn`, which must be the only connection that writes,
    /// and the checkpoints on `checkpointer` (see the module's notes).
    pub fn start(conn: AnyConnection, checkpointer: AnyConnection) -> Writer {
        let (tx, rx) = mpsc::channel(4096);
        let wal = Arc::new(Checkpoints::default());
        let checkpoints = tokio::spawn(checkpoint_loop(checkpointer, wal.clone()));
        tokio::spawn(run(conn, rx, wal, checkpoints));
        Writer { tx }
    }

    pub async fn submit<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + 'static,
    {
        let job = erase(move |conn| {
            let fut = job(conn);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
        });
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Job(Request { job, reply }))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        let out = answer.await.map_err(|_| StoreError::WriterStopped)??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Database("tipo de resultado inesperado del escritor".into()))
    }

    /// Finishes the jobs submitted before this call and closes the connection; later
    /// submissions fail with [`StoreError::WriterStopped`].
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Wakes the checkpoint task after a commit; tells it to stop.
#[derive(Default)]
struct Checkpoints {
    wake: Notify,
    closing: AtomicBool,
}

/// One passive checkpoint per wake-up (wake-ups while one runs count as one more): it
/// copies what the WAL holds into the database without waiting for, or blocking, anyone.
async fn checkpoint_loop(mut conn: AnyConnection, wal: Arc<Checkpoints>) {
    loop {
        wal.wake.notified().await;
        if wal.closing.load(Ordering::SeqCst) {
            break;
        }
        if let Err(e) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(error = %e, "no se pudo copiar el registro WAL a la base de datos");
        }
    }
    let _ = conn.close().await;
}

async fn run(
    mut conn: AnyConnection,
    mut rx: mpsc::Receiver<Msg>,
    wal: Arc<Checkpoints>,
    checkpoints: tokio::task::JoinHandle<()>,
) {
    let mut closing = None;
    while let Some(msg) = rx.recv().await {
        let mut batch = match msg {
            Msg::Job(r) => vec![r],
            Msg::Close(done) => {
                closing = Some(done);
                break;
            }
        };
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(r)) => batch.push(r),
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch).await;
        wal.wake.notify_one();
        if closing.is_some() {
            break;
        }
    }
    rx.close();
    // The checkpointer finishes the checkpoint it is running and closes; the writer's
    // connection, the last one, then checkpoints what is left as it closes.
    wal.closing.store(true, Ordering::SeqCst);
    wal.wake.notify_one();
    let _ = checkpoints.await;
    let _ = conn.close().await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

type Outcome = (
    oneshot::Sender<Result<Output, StoreError>>,
    Result<Output, StoreError>,
);

/// One transaction for the whole batch, one savepoint per job. The savepoint statements
/// ride along with the transaction's own (`BEGIN IMMEDIATE; SAVEPOINT job`,
/// `RELEASE job; SAVEPOINT job` between jobs, `RELEASE job; COMMIT` at the end), so a job
/// costs one round trip to SQLite's thread besides its own.
async fn commit_batch(conn: &mut AnyConnection, batch: Vec<Request>) {
    let mut pending = batch.into_iter().peekable();
    let mut outcomes: Vec<Outcome> = Vec::new();
    if let Err(e) = conn.execute("BEGIN IMMEDIATE; SAVEPOINT job").await {
        fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
        return;
    }
    while let Some(Request { job, reply }) = pending.next() {
        // A panicking job must not take the writer down with it (every later write would
        // fail until a restart): it counts as a failed job and is rolled back alone.
        let result = match AssertUnwindSafe(job(conn)).catch_unwind().await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Database(
                "un trabajo de escritura falló de forma inesperada".into(),
            )),
        };
        if result.is_err()
            && let Err(e) = conn.execute("ROLLBACK TO job").await
        {
            outcomes.push((reply, result));
            fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
            return;
        }
        outcomes.push((reply, result));
        let boundary = if pending.peek().is_some() {
            "RELEASE job; SAVEPOINT job"
        } else {
            "RELEASE job; COMMIT"
        };
        if let Err(e) = conn.execute(boundary).await {
            fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
            return;
        }
    }
    for (reply, result) in outcomes {
        let _ = reply.send(result);
    }
}

/// Rolls back and answers every job of the batch with a failure: none of them was
/// committed, so none may be acknowledged.
async fn fail_batch(
    conn: &mut AnyConnection,
    outcomes: Vec<Outcome>,
    unrun: Vec<Request>,
    why: &str,
) {
    let _ = conn.execute("ROLLBACK").await;
    let failed = || StoreError::Database(format!("la confirmación del lote falló: {why}"));
    for (reply, result) in outcomes {
        let _ = reply.send(Err(result.err().unwrap_or_else(failed)));
    }
    for r in unrun {
        let _ = r.reply.send(Err(failed()));
    }
}
