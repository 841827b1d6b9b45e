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

use super::script::Script;
use super::{JobFuture, StoreError};

/// Most jobs in one commit: bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 256;

type Output = Box<dyn Any + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, Output> + Send>;

/// What a request writes.
enum Work {
    /// Any code on the connection, in a savepoint of its own.
    Job(Job),
    /// Statements known in advance: the savepoint, the statements and its release go to
    /// SQLite's thread in one call instead of three.
    Script(Script),
}

struct Request {
    work: Work,
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
    ///
    /// Both run on a thread of their own (with a one-thread runtime): the writer awaits
    /// SQLite's thread twice per job, and on the server's runtime each of those wake-ups
    /// queued behind the requests being parsed and answered, so under load the one
    /// writer, the service's bottleneck, sat idle while the CPUs served requests.
    pub fn start(conn: AnyConnection, checkpointer: AnyConnection) -> Writer {
        let (tx, rx) = mpsc::channel(4096);
        let wal = Arc::new(Checkpoints::default());
        let work = async move {
            let checkpoints = tokio::spawn(checkpoint_loop(checkpointer, wal.clone()));
            run(conn, rx, wal, checkpoints).await;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(rt) => {
                let spawned = std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || rt.block_on(work));
                if let Err(e) = spawned {
                    // The closure (and the connections in it) is gone: every write
                    // fails with `WriterStopped`, loudly, rather than the process abort.
                    tracing::error!(error = %e, "no se pudo iniciar el hilo de escritura");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "escritor en el runtime del servidor");
                tokio::spawn(work);
            }
        }
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
        let out = self.request(Work::Job(job)).await?;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Database("tipo de resultado inesperado del escritor".into()))
    }

    /// Runs `script` as one job, all or nothing (a failed statement undoes the others).
    pub async fn submit_script(&self, script: Script) -> Result<(), StoreError> {
        self.request(Work::Script(script)).await.map(|_| ())
    }

    async fn request(&self, work: Work) -> Result<Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Job(Request { work, reply }))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
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
/// ride along with the jobs' own where they can: a script carries its savepoint and its
/// release in its one call (`SAVEPOINT job; ...; RELEASE job`), and between two code jobs
/// the release of one and the savepoint of the next go together
/// (`RELEASE job; SAVEPOINT job`, or `RELEASE job; COMMIT` at the end), so a job costs
/// about one round trip to SQLite's thread besides its own statements.
async fn commit_batch(conn: &mut AnyConnection, batch: Vec<Request>) {
    let mut pending = batch.into_iter().peekable();
    let mut outcomes: Vec<Outcome> = Vec::new();
    // Whether a savepoint `job` is open for the next code job.
    let mut open = is_job(pending.peek());
    let begin = if open {
        "BEGIN IMMEDIATE; SAVEPOINT job"
    } else {
        "BEGIN IMMEDIATE"
    };
    if let Err(e) = conn.execute(begin).await {
        fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
        return;
    }
    // Whether the last code job's boundary carried the COMMIT.
    let mut committed = false;
    while let Some(Request { work, reply }) = pending.next() {
        let next_is_job = is_job(pending.peek());
        let last = pending.peek().is_none();
        let (result, undo, boundary) = match work {
            Work::Script(script) => {
                let mut wrapped = Script::new();
                wrapped.push("SAVEPOINT job", Vec::new());
                wrapped.extend(script);
                wrapped.push("RELEASE job", Vec::new());
                let result = match AssertUnwindSafe(wrapped.run(conn)).catch_unwind().await {
                    Ok(r) => r.map(|()| Box::new(()) as Output).map_err(StoreError::db),
                    Err(_) => Err(panicked()),
                };
                (result, "ROLLBACK TO job; RELEASE job", None)
            }
            Work::Job(job) => {
                if !open && let Err(e) = conn.execute("SAVEPOINT job").await {
                    outcomes.push((reply, Err(StoreError::db(e))));
                    fail_batch(conn, outcomes, pending.collect(), "SAVEPOINT").await;
                    return;
                }
                // A panicking job must not take the writer down with it (every later
                // write would fail until a restart): it counts as a failed job and is
                // rolled back alone.
                let result = match AssertUnwindSafe(job(conn)).catch_unwind().await {
                    Ok(r) => r,
                    Err(_) => Err(panicked()),
                };
                let boundary = if next_is_job {
                    "RELEASE job; SAVEPOINT job"
                } else if last {
                    "RELEASE job; COMMIT"
                } else {
                    "RELEASE job"
                };
                (result, "ROLLBACK TO job", Some(boundary))
            }
        };
        if result.is_err()
            && let Err(e) = conn.execute(undo).await
        {
            outcomes.push((reply, result));
            fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
            return;
        }
        outcomes.push((reply, result));
        open = false;
        if let Some(boundary) = boundary {
            if let Err(e) = conn.execute(boundary).await {
                fail_batch(conn, outcomes, pending.collect(), &e.to_string()).await;
                return;
            }
            open = next_is_job;
            committed = last;
        }
    }
    if !committed && let Err(e) = conn.execute("COMMIT").await {
        fail_batch(conn, outcomes, Vec::new(), &e.to_string()).await;
        return;
    }
    for (reply, result) in outcomes {
        let _ = reply.send(result);
    }
}

/// Whether `request` runs code (and not a script).
fn is_job(request: Option<&Request>) -> bool {
    matches!(
        request,
        Some(Request {
            work: Work::Job(_),
            ..
        })
    )
}

fn panicked() -> StoreError {
    StoreError::Database("un trabajo de escritura falló de forma inesperada".into())
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

#[cfg(test)]
mod tests {
    use sqlx::{AnyConnection, Connection, Executor, Row};

    use super::Writer;
    use crate::store::StoreError;
    use crate::store::script::Script;

    async fn connect(url: &str) -> AnyConnection {
        AnyConnection::connect(url).await.expect("connect")
    }

    fn insert(ids: &[i64]) -> Script {
        let mut s = Script::new();
        for id in ids {
            s.push("INSERT INTO t (id) VALUES ($1)", vec![(*id).into()]);
        }
        s
    }

    /// Jobs that fail, whether a script failing halfway, code returning an error or code
    /// that panics, are undone alone: the jobs committed with them keep every row, the
    /// failed ones leave none, and the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_is_undone_alone_and_its_batch_commits() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let mut conn = connect(&url).await;
        conn.execute("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .expect("schema");
        let writer = Writer::start(conn, connect(&url).await);
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                match i % 4 {
                    // Two rows; the second of every 8th collides with row 0.
                    0 if i % 8 == 0 && i > 0 => w.submit_script(insert(&[1000 + i, 0])).await,
                    0 | 1 => w.submit_script(insert(&[i, 1000 + i])).await,
                    // Code jobs: one row, then every 8th returns an error or panics.
                    _ => {
                        w.submit(move |c| {
                            Box::pin(async move {
                                sqlx::query("INSERT INTO t (id) VALUES ($1)")
                                    .bind(i)
                                    .execute(&mut *c)
                                    .await
                                    .map_err(StoreError::db)?;
                                assert!(i % 8 != 3, "a job that panics");
                                if i % 8 == 2 {
                                    return Err(StoreError::Invalid("rechazado".into()));
                                }
                                Ok(())
                            })
                        })
                        .await
                    }
                }
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("task"));
        }
        let reader = &mut connect(&url).await;
        let rows: Vec<i64> = sqlx::query("SELECT id FROM t ORDER BY id")
            .fetch_all(&mut *reader)
            .await
            .expect("read")
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        for (i, result) in (0..40i64).zip(&results) {
            let fails = i > 0 && matches!(i % 8, 0 | 2 | 3);
            assert_eq!(result.is_err(), fails, "job {i}: {result:?}");
            let mine: Vec<i64> = match i % 4 {
                // Its other row, 0, is job 0's.
                0 if fails => vec![1000 + i],
                0 | 1 => vec![i, 1000 + i],
                _ => vec![i],
            };
            for id in mine {
                assert_eq!(rows.contains(&id), !fails, "row {id} of job {i}");
            }
        }
        assert!(
            matches!(&results[8], Err(StoreError::Duplicate(_))),
            "{:?}",
            results[8]
        );
        writer
            .submit_script(insert(&[7777]))
            .await
            .expect("the writer goes on");
        writer.close().await;
    }
}
