//! SQLite's group-commit writer.
//!
//! SQLite allows one writer at a time and, with `synchronous=FULL`, every commit waits for
//! an fsync. Rather than weaken that, one thread owns the writing: it takes every job
//! waiting when it becomes free, runs them inside one `BEGIN IMMEDIATE` transaction (a
//! failed job undone alone, by a savepoint), commits once, and only then answers each
//! job. While that fsync runs, the next jobs queue up and form the next batch: the busier
//! the system, the more each fsync carries, with no timer and no added latency when idle.
//!
//! Two kinds of job, on two connections to the same file, used one after the other by
//! this thread alone (so they never wait for each other's locks):
//! - scripts (statements known in advance: every create, append and scheduler firing) run
//!   on a connection the thread drives itself (rusqlite), synchronously, from a statement
//!   cache. Through sqlx each call went to the connection's own thread and back: two
//!   context switches per job, and on a busy machine each one waited for a free core while
//!   HTTP requests and timers ran, so the one writer, the service's bottleneck, sat idle.
//! - code (`submit`: claims, leases, the catalogue...) runs on an sqlx connection, as the
//!   rest of the store does.
//! - native code (`submit_native`: a folio block's reservation) runs on the scripts'
//!   connection, in their transaction: a commit on the other connection makes SQLite drop
//!   this one's page cache (~37 page reads per commit came back under a burst of creates
//!   when each block of 64 folios was a code job).
//!
//! A batch holding both commits its scripts first, then its code, each in one transaction:
//! jobs waiting together were submitted concurrently, so none of them was promised an
//! order. A caller that awaits one write before the next still sees them in order.
//!
//! Checkpoints (copying the WAL's pages back into the database file and syncing it) run on
//! a connection and thread of their own, woken after a commit at most every 200 ms (the
//! pages a burst keeps rewriting are copied once per pause): by default SQLite runs
//! them inside the commit that crosses the WAL's size limit, so every few commits the
//! writer stopped to write and sync the pages of all the earlier ones. A passive
//! checkpoint never blocks the writer; the writer's own automatic checkpoint stays as a
//! bound on the WAL's size should this one fall behind.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::script::Script;
use super::{JobFuture, StoreError};

/// Most jobs in one commit: bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 256;

/// Least time between two checkpoints (a burst's commits in that time are copied once).
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(200);

/// Distinct statements the scripts use, with room to spare: each stays prepared.
const STATEMENT_CACHE: usize = 256;

type Output = Box<dyn Any + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, Output> + Send>;
type Reply = oneshot::Sender<Result<Output, StoreError>>;
/// A job's answer, held until its batch commits.
type Outcome = (Reply, Result<Output, StoreError>);

/// Code on the writer's own connection, inside its batch's transaction: a write that
/// must read what it wrote (a folio block's reservation). It may run twice: when another job
/// of its batch fails, the batch is rolled back and runs again, one savepoint per job.
type Native = Box<dyn Fn(&rusqlite::Connection) -> Result<Output, StoreError> + Send>;

/// What a request writes.
enum Work {
    /// Any code on the sqlx connection, in a savepoint of its own.
    Job(Job),
    /// Statements known in advance, run on the writer's own connection.
    Script(Script),
    /// Code on the writer's own connection (see [`Native`]).
    Native(Native),
}

/// A job of the writer's own connection: a script or native code.
enum Step {
    Script(Script),
    Native(Native),
}

struct Request {
    work: Work,
    reply: Reply,
}

enum Msg {
    Job(Request),
    /// Finish what was queued before, close the connections, answer.
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

/// The writer's connections to one SQLite file.
pub struct Connections {
    /// For code jobs.
    pub sqlx: AnyConnection,
    /// For scripts.
    pub native: rusqlite::Connection,
    /// For checkpoints.
    pub checkpointer: rusqlite::Connection,
}

impl Writer {
    /// Starts the writer on `conns`, which must be the only connections that write (see
    /// the module's notes), on a thread of its own with a one-thread runtime for the code
    /// jobs, and the checkpoints on another thread.
    pub fn start(conns: Connections) -> Writer {
        let (tx, rx) = mpsc::channel(4096);
        let Connections {
            sqlx,
            native,
            checkpointer,
        } = conns;
        native.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let spawned = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        // `rx` is dropped with this thread: every write fails with
                        // `WriterStopped`, loudly, rather than hang.
                        tracing::error!(error = %e, "no se pudo iniciar el hilo de escritura");
                        return;
                    }
                };
                let checkpoints = Checkpoints::start(checkpointer);
                runtime.block_on(run(sqlx, native, rx, checkpoints));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no se pudo iniciar el hilo de escritura");
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
        typed(self.request(Work::Job(job)).await?)
    }

    /// Runs `script` as one job, all or nothing (a failed statement undoes the others).
    /// The script comes back with the answer and is dropped here, on the caller's thread.
    pub async fn submit_script(&self, script: Script) -> Result<(), StoreError> {
        self.request(Work::Script(script)).await.map(drop)
    }

    /// Runs `job` on the writer's own connection, with the scripts, all or nothing. A write
    /// on the other connection (a code job) makes SQLite drop this connection's page
    /// cache, so every page the next scripts touch is read back from the file: a write
    /// that comes often and must read what it wrote (a folio block) runs here instead.
    /// `job` may run twice (see [`Native`]). Timer claims stay code jobs: run here, the
    /// scheduler's catch-up was no faster, and each commit then spent ~12 % of the
    /// writer's time in SQLite's page-cache truncation (`pcache1TruncateUnsafe`).
    pub async fn submit_native<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let native: Native = Box::new(move |conn| job(conn).map(|v| Box::new(v) as Output));
        typed(self.request(Work::Native(native)).await?)
    }

    async fn request(&self, work: Work) -> Result<Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Job(Request { work, reply }))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Finishes the jobs submitted before this call and closes the connections; later
    /// submissions fail with [`StoreError::WriterStopped`].
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// A job's answer as the type its caller submitted it with.
fn typed<T: 'static>(out: Output) -> Result<T, StoreError> {
    out.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| StoreError::Database("tipo de resultado inesperado del escritor".into()))
}

/// The checkpoint thread and the way to wake it.
struct Checkpoints {
    /// One pending wake-up at most: wake-ups while a checkpoint runs count as one more.
    wake: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    fn start(conn: rusqlite::Connection) -> Checkpoints {
        let (wake, woken) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &woken));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // The writer's automatic checkpoint still bounds the WAL.
                tracing::warn!(error = %e, "sin hilo de copia del registro WAL");
                None
            }
        };
        Checkpoints { wake, thread }
    }

    fn after_commit(&self) {
        // Full: a wake-up is already pending. Disconnected: no checkpoint thread.
        let _ = self.wake.try_send(());
    }

    /// Lets the running checkpoint finish and closes its connection.
    fn stop(self) {
        drop(self.wake);
        if let Some(t) = self.thread {
            let _ = t.join();
        }
    }
}

/// Passive checkpoints: each copies what the WAL holds into the database without waiting
/// for, or blocking, anyone. One when woken, then a pause: wake-ups during it make one more
/// checkpoint after it. Ends as soon as the writer drops its sender, pause or not (the
/// writer's connections, closing last, checkpoint what is left).
fn checkpoint_loop(conn: &rusqlite::Connection, woken: &Receiver<()>) {
    let mut due = woken.recv().is_ok();
    while due {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "no se pudo copiar el registro WAL a la base de datos");
        }
        due = false;
        let until = Instant::now() + CHECKPOINT_PAUSE;
        loop {
            match woken.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(()) => due = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if !due {
            due = woken.recv().is_ok();
        }
    }
}

async fn run(
    mut conn: AnyConnection,
    native: rusqlite::Connection,
    mut rx: mpsc::Receiver<Msg>,
    checkpoints: Checkpoints,
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
        let mut scripts = Vec::new();
        let mut jobs = Vec::new();
        for Request { work, reply } in batch {
            match work {
                Work::Script(s) => scripts.push((Step::Script(s), reply)),
                Work::Native(n) => scripts.push((Step::Native(n), reply)),
                Work::Job(j) => jobs.push((j, reply)),
            }
        }
        if !scripts.is_empty() {
            commit_scripts(&native, scripts);
            checkpoints.after_commit();
        }
        if !jobs.is_empty() {
            commit_jobs(&mut conn, jobs).await;
            checkpoints.after_commit();
        }
        if closing.is_some() {
            break;
        }
    }
    rx.close();
    // The checkpointer finishes the checkpoint it is running and closes; the writer's
    // connections, the last ones, then checkpoint what is left as they close.
    checkpoints.stop();
    let _ = conn.close().await;
    drop(native);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// A native statement of the writer's own (a savepoint, the transaction's bounds).
fn exec(native: &rusqlite::Connection, sql: &str) -> Result<(), rusqlite::Error> {
    native.prepare_cached(sql)?.raw_execute().map(|_| ())
}

/// Runs one step, a panic counting as a failure: a panic must not take the writer down
/// (every later write would fail until a restart). A native job's answer comes back;
/// a script has none.
fn run_one(native: &rusqlite::Connection, step: &Step) -> Result<Option<Output>, StoreError> {
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| match step {
        Step::Script(script) => script
            .run_native(native)
            .map(|()| None)
            .map_err(native_error),
        Step::Native(job) => job(native).map(Some),
    }));
    ran.unwrap_or_else(|_| Err(panicked()))
}

/// What a committed step answers: a native job its output; a script itself, to be
/// dropped on the caller's thread.
fn answer(step: Step, output: Option<Output>) -> Output {
    output.unwrap_or_else(|| Box::new(step) as Output)
}

/// The scripts of a batch, in one transaction. First all of them straight, with no
/// savepoints: a savepoint makes SQLite copy every page a job touches into its journal
/// before changing it, the writer's largest cost after the disk, and scripts almost never
/// fail. If one does, the transaction is rolled back and the batch runs again, one
/// savepoint per script, so the failed one is undone alone and the others commit.
fn commit_scripts(native: &rusqlite::Connection, scripts: Vec<(Step, Reply)>) {
    // A transaction an earlier failure could not roll back would hold the write lock
    // for good: every later batch would fail.
    if !native.is_autocommit() {
        let _ = exec(native, "ROLLBACK");
    }
    if let Err(e) = exec(native, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        fail_all(native, scripts.into_iter().map(|(_, r)| (r, None)), &why);
        return;
    }
    let mut outputs = Vec::with_capacity(scripts.len());
    let mut failed = None;
    for (i, (step, _)) in scripts.iter().enumerate() {
        match run_one(native, step) {
            Ok(output) => outputs.push(output),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    match failed {
        None => match exec(native, "COMMIT") {
            Ok(()) => {
                // Each script goes back with its answer, to be freed on the caller's
                // thread: its values are most of what a batch allocated, and freeing
                // them here kept the one writer from the next batch (~7 % of its time
                // in a scheduler catch-up).
                for ((step, reply), output) in scripts.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(answer(step, output)));
                }
            }
            Err(e) => {
                let why = e.to_string();
                fail_all(native, scripts.into_iter().map(|(_, r)| (r, None)), &why);
            }
        },
        Some((failed_at, error)) => {
            // Some errors (a full disk, an I/O error) end the transaction themselves.
            if !native.is_autocommit()
                && let Err(e) = exec(native, "ROLLBACK")
            {
                // The failed script keeps its own error (a caller acts on it: a void
                // folio, a duplicate), the others get the batch's.
                let why = e.to_string();
                let mut own = Some(Err(error));
                let replies = scripts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (_, r))| (r, if i == failed_at { own.take() } else { None }));
                fail_all(native, replies, &why);
                return;
            }
            if scripts.len() == 1 {
                // Alone in its batch: its error is the batch's, nothing else to commit.
                if let Some((_, reply)) = scripts.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
                return;
            }
            commit_in_savepoints(native, scripts);
        }
    }
}

/// The scripts of a batch in one transaction, one savepoint each, so a failed script is
/// undone alone and the others commit.
fn commit_in_savepoints(native: &rusqlite::Connection, scripts: Vec<(Step, Reply)>) {
    if let Err(e) = exec(native, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        fail_all(native, scripts.into_iter().map(|(_, r)| (r, None)), &why);
        return;
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(scripts.len());
    let mut scripts = scripts.into_iter();
    while let Some((script, reply)) = scripts.next() {
        let ran = exec(native, "SAVEPOINT job")
            .map_err(native_error)
            .and_then(|()| run_one(native, &script));
        let closed = match &ran {
            Ok(_) => exec(native, "RELEASE job"),
            Err(_) => exec(native, "ROLLBACK TO job").and_then(|()| exec(native, "RELEASE job")),
        };
        outcomes.push((reply, ran.map(|output| answer(script, output))));
        if let Err(e) = closed {
            let why = e.to_string();
            let done = outcomes.into_iter().map(|(r, out)| (r, Some(out)));
            let unrun = scripts.map(|(_, r)| (r, None));
            fail_all(native, done.chain(unrun), &why);
            return;
        }
    }
    if let Err(e) = exec(native, "COMMIT") {
        let why = e.to_string();
        fail_all(
            native,
            outcomes.into_iter().map(|(r, out)| (r, Some(out))),
            &why,
        );
        return;
    }
    for (reply, result) in outcomes {
        let _ = reply.send(result);
    }
}

/// Rolls back the scripts' transaction and answers each with a failure: none of them was
/// committed, so none may be acknowledged (one that failed on its own keeps its error).
fn fail_all(
    native: &rusqlite::Connection,
    replies: impl Iterator<Item = (Reply, Option<Result<Output, StoreError>>)>,
    why: &str,
) {
    if !native.is_autocommit() {
        let _ = exec(native, "ROLLBACK");
    }
    for (reply, result) in replies {
        let own = result.and_then(Result::err);
        let _ = reply.send(Err(own.unwrap_or_else(|| batch_failed(why))));
    }
}

/// A native error as the store's: unique violations become `Duplicate`, as
/// [`StoreError::db`] does for sqlx's.
pub(super) fn native_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, message) = &e
        && matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        return StoreError::Duplicate(message.clone().unwrap_or_else(|| e.to_string()));
    }
    StoreError::Database(e.to_string())
}

/// The code jobs of a batch: one transaction, one savepoint per job. The release of one
/// job's savepoint and the savepoint of the next go to SQLite's thread together
/// (`RELEASE job; SAVEPOINT job`, or `RELEASE job; COMMIT` at the end), so a job costs
/// one round trip besides its own statements.
async fn commit_jobs(conn: &mut AnyConnection, jobs: Vec<(Job, Reply)>) {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
    if let Err(e) = conn.execute("BEGIN IMMEDIATE; SAVEPOINT job").await {
        let unrun = jobs.into_iter().map(|(_, r)| r).collect();
        fail_batch(conn, outcomes, unrun, &e.to_string()).await;
        return;
    }
    let mut pending = jobs.into_iter().peekable();
    while let Some((job, reply)) = pending.next() {
        let last = pending.peek().is_none();
        // A panicking job must not take the writer down with it: it counts as a failed
        // job and is rolled back alone.
        let result = match AssertUnwindSafe(job(conn)).catch_unwind().await {
            Ok(r) => r,
            Err(_) => Err(panicked()),
        };
        if result.is_err()
            && let Err(e) = conn.execute("ROLLBACK TO job").await
        {
            outcomes.push((reply, result));
            let unrun = pending.map(|(_, r)| r).collect();
            fail_batch(conn, outcomes, unrun, &e.to_string()).await;
            return;
        }
        outcomes.push((reply, result));
        let boundary = if last {
            "RELEASE job; COMMIT"
        } else {
            "RELEASE job; SAVEPOINT job"
        };
        if let Err(e) = conn.execute(boundary).await {
            let unrun = pending.map(|(_, r)| r).collect();
            fail_batch(conn, outcomes, unrun, &e.to_string()).await;
            return;
        }
    }
    for (reply, result) in outcomes {
        let _ = reply.send(result);
    }
}

fn panicked() -> StoreError {
    StoreError::Database("un trabajo de escritura falló de forma inesperada".into())
}

fn batch_failed(why: &str) -> StoreError {
    StoreError::Database(format!("la confirmación del lote falló: {why}"))
}

/// Rolls back and answers every job of the batch with a failure: none of them was
/// committed, so none may be acknowledged.
async fn fail_batch(
    conn: &mut AnyConnection,
    outcomes: Vec<Outcome>,
    unrun: Vec<Reply>,
    why: &str,
) {
    let _ = conn.execute("ROLLBACK").await;
    for (reply, result) in outcomes {
        let _ = reply.send(Err(result.err().unwrap_or_else(|| batch_failed(why))));
    }
    for reply in unrun {
        let _ = reply.send(Err(batch_failed(why)));
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{AnyConnection, Connection, Executor, Row};

    use super::{Connections, Writer};
    use crate::store::StoreError;
    use crate::store::script::Script;

    async fn connect(url: &str) -> AnyConnection {
        AnyConnection::connect(url).await.expect("connect")
    }

    /// A writer on a fresh WAL file whose table `t` holds row -1, written before any job.
    /// The directory lives as long as the first value.
    async fn fresh_writer() -> (tempfile::TempDir, String, Writer) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let mut conn = connect(&url).await;
        conn.execute(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY); \
             INSERT INTO t (id) VALUES (-1)",
        )
        .await
        .expect("schema");
        let native = || rusqlite::Connection::open(dir.path().join("w.db")).expect("open");
        let writer = Writer::start(Connections {
            sqlx: conn,
            native: native(),
            checkpointer: native(),
        });
        (dir, url, writer)
    }

    /// The ids in `t`, in order, read on a connection of its own.
    async fn ids(url: &str) -> Vec<i64> {
        let reader = &mut connect(url).await;
        sqlx::query("SELECT id FROM t ORDER BY id")
            .fetch_all(&mut *reader)
            .await
            .expect("read")
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect()
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
        let (_dir, url, writer) = fresh_writer().await;
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                match i % 4 {
                    // Two rows; the second of every 8th collides with row -1, written
                    // before any job, so which job runs first does not matter.
                    0 if i % 8 == 0 => w.submit_script(insert(&[1000 + i, -1])).await,
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
        let rows = ids(&url).await;
        for (i, result) in (0..40i64).zip(&results) {
            let fails = matches!(i % 8, 0 | 2 | 3);
            assert_eq!(result.is_err(), fails, "job {i}: {result:?}");
            let mine: Vec<i64> = match i % 4 {
                // Its other row, -1, was there before.
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

    /// A native job runs on the scripts' connection, in their transaction, and answers
    /// what it read there. When another job of its batch fails, the batch runs again, one
    /// savepoint per job: the native job runs a second time and its row is written once
    /// (its primary key would refuse a second copy), and a native job that fails or
    /// panics is undone alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_native_job_answers_from_its_batch_and_is_written_once_when_the_batch_runs_again() {
        let (_dir, url, writer) = fresh_writer().await;
        // A slow code job holds the writer, so everything below queues and forms one batch.
        let hold = {
            let w = writer.clone();
            tokio::spawn(async move {
                w.submit(|_| {
                    Box::pin(async {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        Ok(())
                    })
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut natives = Vec::new();
        for i in 1..=6i64 {
            let w = writer.clone();
            natives.push(tokio::spawn(async move {
                w.submit_native(move |c| {
                    c.execute("INSERT INTO t (id) VALUES (?1)", [i])
                        .map_err(super::native_error)?;
                    assert!(i != 5, "a native job that panics");
                    if i == 6 {
                        return Err(StoreError::Invalid("rechazado".into()));
                    }
                    c.query_row("SELECT count(*) FROM t WHERE id = ?1", [i], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(super::native_error)
                })
                .await
            }));
        }
        // A script that fails (row -1 exists): the batch runs again in savepoints.
        let failing = {
            let w = writer.clone();
            tokio::spawn(async move { w.submit_script(insert(&[100, -1])).await })
        };
        hold.await.expect("task").expect("the slow job");
        let mut answers = Vec::new();
        for t in natives {
            answers.push(t.await.expect("task"));
        }
        assert!(
            matches!(failing.await.expect("task"), Err(StoreError::Duplicate(_))),
            "the failing script keeps its own error"
        );
        for (i, answer) in (1..=6i64).zip(&answers) {
            match i {
                1..=4 => assert_eq!(answer.as_ref().ok(), Some(&1), "job {i}: {answer:?}"),
                _ => assert!(answer.is_err(), "job {i}: {answer:?}"),
            }
        }
        let rows = ids(&url).await;
        assert_eq!(rows, vec![-1, 1, 2, 3, 4]);
        writer.close().await;
    }
}
