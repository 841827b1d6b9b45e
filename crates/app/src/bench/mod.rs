//! `incidencias bench`: the benchmarks whose figures go into docs/benchmarks.md. Each runs
//! side by side with its baseline in the same process, several rounds alternating, and
//! reports medians: this machine is noisy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use incidencias_core::{
    Actor, AgencyId, Channel, Command, IncidentKind, NewReport, ProcedureId, Role, SloPolicy,
    decide,
};
use jiff::Timestamp;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};

use crate::store::{Effects, Store, StoreError};

mod api;
mod burst;
mod import;
mod load;
mod mail;
mod memory;
mod public;
mod reports;
mod timers;
mod web;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Alta de incidencias (paso 1) con 1 y con N escritores contra inserciones SQLite crudas.
    Store(StoreBench),
    /// La API HTTP con 64 conexiones contra un manejador que responde una constante.
    Api(api::ApiBench),
    /// Temporizadores: 100,000 plazos en un minuto, puesta al día y línea base tipo cron.
    Timers(timers::TimersBench),
    /// Bandeja de salida a un servidor SMTP contra lettre enviando directamente.
    Mail(mail::MailBench),
    /// Páginas: la bandeja con 10,000 incidencias abiertas y una incidencia con 200 eventos,
    /// junto a la API JSON sobre los mismos datos.
    Web(web::WebBench),
    /// Importación CSV: vista previa de 10,000 usuarios y de 10,000 trámites (objetivo ≤ 2 s),
    /// su aplicación y una segunda vista previa.
    Import(import::ImportBench),
    /// El estado público de 10,000 trámites (y su revalidación 304) junto a un manejador
    /// constante que responde los mismos bytes.
    Public(public::PublicBench),
    /// Reportes de SLO sobre 1,000,000 de incidencias cerradas: cumplimiento del mes
    /// (objetivo ≤ 1 s) y simulación (≤ 2 s), junto al conteo de los relojes del mes.
    Reports(reports::ReportsBench),
    /// Memoria residente de `serve` (VmRSS y VmHWM de /proc): en reposo (objetivo ≤ 50 MiB),
    /// con 100,000 incidencias abiertas y sus temporizadores (≤ 200 MiB) y tras 200 inicios
    /// de sesión (≤ 100 MiB), junto al cálculo de Argon2 sin grupo fijo.
    Memory(memory::MemoryBench),
    /// Ráfaga sobre varias instancias: 3 procesos `serve` sobre un PostgreSQL, 10,000
    /// incidencias por la API en 60 s, sus relojes y correos, cada uno exactamente una vez.
    Burst(burst::BurstBench),
}

#[derive(Debug, Args)]
pub struct StoreBench {
    /// Segundos por medición.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Escritores concurrentes de la medición con concurrencia.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// PostgreSQL para medir también ese motor (se crea y borra un esquema temporal).
    #[arg(long, env = "INCIDENCIAS_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

pub async fn run(command: BenchCommand) -> Result<i32, StoreError> {
    match command {
        BenchCommand::Store(args) => store_bench(args).await,
        BenchCommand::Api(args) => api::api_bench(args).await,
        BenchCommand::Timers(args) => timers::timers_bench(args).await,
        BenchCommand::Mail(args) => mail::mail_bench(args).await,
        BenchCommand::Web(args) => web::web_bench(args).await,
        BenchCommand::Import(args) => import::import_bench(args).await,
        BenchCommand::Public(args) => public::public_bench(args).await,
        BenchCommand::Reports(args) => reports::reports_bench(args).await,
        BenchCommand::Burst(args) => burst::burst_bench(args).await,
        BenchCommand::Memory(args) => memory::memory_bench(args).await,
    }
}

/// Throughput and latency of one measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The process's CPU time per operation while measuring, in µs (where known).
    pub(crate) cpu_us_per_op: Option<f64>,
    /// The machine's idle and stolen cores while measuring (where known).
    pub(crate) machine: Option<MachineUse>,
}

impl Sample {
    /// Cores busy while measuring: CPU time over wall time (where the CPU time is known).
    pub(crate) fn cores_busy(&self) -> Option<f64> {
        self.cpu_us_per_op.map(|us| us * self.per_second / 1e6)
    }
}

fn sample(count: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Sample {
    latencies.sort();
    Sample {
        per_second: count as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        cpu_us_per_op: None,
        machine: None,
    }
}

/// The whole machine over a measurement, from `/proc/stat`: the cores left idle (or waiting
/// for the disk) and the cores the hypervisor gave to other guests of a shared host
/// ("steal"). A round that had cores stolen measured a smaller machine; one with cores idle
/// was not bound by the CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MachineUse {
    pub(crate) idle: f64,
    pub(crate) stolen: f64,
}

/// `/proc/stat`'s first line at the start of a measurement.
pub(crate) struct MachineClock(Option<(Instant, [u64; 3])>);

impl MachineClock {
    pub(crate) fn start() -> MachineClock {
        MachineClock(machine_ticks().map(|t| (Instant::now(), t)))
    }

    /// The machine's use since [`MachineClock::start`] (`None` off Linux).
    pub(crate) fn stop(&self) -> Option<MachineUse> {
        let (started, before) = self.0?;
        let after = machine_ticks()?;
        machine_use(before, after, started.elapsed())
    }
}

/// Idle (with I/O wait) and steal ticks of all cores, from `/proc/stat`.
fn machine_ticks() -> Option<[u64; 3]> {
    machine_ticks_in(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `cpu  user nice system idle iowait irq softirq steal ...`: idle, iowait and steal.
fn machine_ticks_in(stat: &str) -> Option<[u64; 3]> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some([*fields.get(3)?, *fields.get(4)?, *fields.get(7)?])
}

/// Clock ticks per second in `/proc`'s figures (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Ticks to cores: idle (with I/O wait) and steal over `wall`.
fn machine_use(before: [u64; 3], after: [u64; 3], wall: Duration) -> Option<MachineUse> {
    let seconds = wall.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let ticks = |i: usize| after[i].saturating_sub(before[i]) as f64 / USER_HZ;
    Some(MachineUse {
        idle: (ticks(0) + ticks(1)) / seconds,
        stolen: ticks(2) / seconds,
    })
}

/// A table cell: the median idle and stolen cores of `uses` ("" when unknown).
pub(crate) fn machine_cell(uses: &[Option<MachineUse>]) -> String {
    let known: Vec<MachineUse> = uses.iter().flatten().copied().collect();
    if known.is_empty() {
        return String::new();
    }
    format!(
        "{:.2} / {:.2}",
        median(known.iter().map(|m| m.idle).collect()),
        median(known.iter().map(|m| m.stolen).collect())
    )
}

/// The `p` percentile (0 to 1) of `sorted` latencies, in milliseconds; 0 when empty.
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// CPU time (user and system) consumed so far by `/proc/{of}/stat`'s task: `"self"` for
/// this whole process, `"thread-self"` for the calling thread. `None` off Linux. The
/// kernel counts it in USER_HZ ticks, 100 per second on every Linux ABI, so a figure is
/// good to 10 ms: measurements of several seconds only.
pub(crate) fn cpu_seconds(of: &str) -> Option<f64> {
    cpu_seconds_in(&std::fs::read_to_string(format!("/proc/{of}/stat")).ok()?)
}

/// utime + stime of a `/proc/.../stat` line, in seconds.
fn cpu_seconds_in(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parens: count fields after the last
    // closing paren.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Any failure of a benchmark's own setup, as a store error the command reports.
pub(crate) fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(crate) fn new(tag: &str) -> Result<Scratch, StoreError> {
        let dir = std::env::temp_dir().join(format!(
            "incidencias-bench-{}-{tag}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch { dir })
    }

    /// The SQLite URL of the bench's main database.
    pub(crate) fn url(&self) -> String {
        self.url_of("bench.db")
    }

    /// The SQLite URL of another database `file` in the same directory.
    pub(crate) fn url_of(&self, file: &str) -> String {
        format!("sqlite://{}/{file}", self.dir.display())
    }

    /// The directory, removed with everything in it when the scratch is dropped.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The raw limit: single-row inserts, WAL, `synchronous=FULL`, one commit each.
async fn raw_inserts(seconds: u64) -> Result<Sample, StoreError> {
    let scratch = Scratch::new("raw")?;
    let options: AnyConnectOptions = format!("{}?mode=rwc", scratch.url())
        .parse()
        .map_err(StoreError::db)?;
    let mut conn = AnyConnection::connect_with(&options.disable_statement_logging())
        .await
        .map_err(StoreError::db)?;
    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .await
        .map_err(StoreError::db)?;
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at BIGINT NOT NULL, body TEXT NOT NULL)")
        .await
        .map_err(StoreError::db)?;
    let body = "x".repeat(400);
    let mut latencies = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    while Instant::now() < end {
        let t = Instant::now();
        sqlx::query("INSERT INTO t (at, body) VALUES ($1, $2)")
            .bind(Timestamp::now().as_millisecond())
            .bind(body.clone())
            .execute(&mut conn)
            .await
            .map_err(StoreError::db)?;
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let _ = conn.close().await;
    Ok(sample(latencies.len(), elapsed, latencies))
}

/// What every benchmark needs in its catalogue: an agency, its responsible (who reports to
/// a chief, so escalations have somewhere to go), the help desk and one procedure.
pub(crate) struct BenchCatalogue {
    pub agency: crate::documents::AgencyDoc,
    pub responsible: crate::service::Caller,
    pub helpdesk: crate::service::Caller,
    pub procedure: crate::documents::ProcedureDoc,
}

pub(crate) async fn bench_catalogue(
    service: &crate::service::Service,
) -> Result<BenchCatalogue, StoreError> {
    use crate::service::{NewAgencyInput, NewProcedureInput, NewUserInput};
    let invalid = |e: crate::service::ServiceError| StoreError::Invalid(e.to_string());
    let user = |email: &str, role: Role, agency: Option<i64>, boss: Option<i64>| NewUserInput {
        name: "Bench".into(),
        email: email.into(),
        role: role.as_str().into(),
        agency_id: agency,
        reports_to: boss,
        password: None,
    };
    let admin = service
        .create_user_unchecked(user("admin@bench.gob.mx", Role::Admin, None, None))
        .await
        .map_err(invalid)?;
    let admin = service.caller(admin.id).await.map_err(invalid)?;
    let agency = service
        .create_agency(
            &admin,
            NewAgencyInput {
                name: "Secretaría de Pruebas".into(),
                acronym: "BENCH".into(),
                email_domains: vec!["bench.gob.mx".into()],
            },
        )
        .await
        .map_err(invalid)?;
    let a = Some(agency.id);
    let chief = service
        .create_user_unchecked(user("jefa@bench.gob.mx", Role::Agency, a, None))
        .await
        .map_err(invalid)?;
    let responsible = service
        .create_user_unchecked(user("resp@bench.gob.mx", Role::Agency, a, Some(chief.id)))
        .await
        .map_err(invalid)?;
    let helpdesk = service
        .create_user_unchecked(user("mesa@bench.gob.mx", Role::Helpdesk, None, None))
        .await
        .map_err(invalid)?;
    let helpdesk = service.caller(helpdesk.id).await.map_err(invalid)?;
    let procedure = service
        .create_procedure(
            &admin,
            NewProcedureInput {
                homoclave: "BENCH-01-001".into(),
                name: "Trámite de prueba".into(),
                agency_id: agency.id,
                url: "https://www.gob.mx/tramites/prueba".into(),
                responsible_id: responsible.id,
            },
        )
        .await
        .map_err(invalid)?;
    let responsible = service.caller(responsible.id).await.map_err(invalid)?;
    Ok(BenchCatalogue {
        agency,
        responsible,
        helpdesk,
        procedure,
    })
}

/// A store with the bench catalogue, a step-1 report to repeat and its reporter.
pub(crate) async fn seeded(url: &str) -> Result<(Store, NewReport, Actor), StoreError> {
    let store = Store::open(url).await?;
    let now = Timestamp::now();
    let service = crate::service::Service::new(store.clone(), Arc::new(crate::clock::SystemClock));
    let c = bench_catalogue(&service).await?;
    let report = NewReport {
        folio: incidencias_core::Folio::new(2026, 1).ok_or(StoreError::Invalid("folio".into()))?,
        agency_id: AgencyId(c.agency.id),
        procedure_ids: vec![ProcedureId(c.procedure.id)],
        kind: IncidentKind::Unavailable,
        description: "El trámite no responde al enviar la solicitud".into(),
        occurred_at: now,
        channel: Channel::Phone,
    };
    let actor = Actor::User {
        id: c.responsible.id,
        role: Role::Agency,
        agency: Some(AgencyId(c.agency.id)),
    };
    Ok((store, report, actor))
}

/// One intake operation: `report` under a fresh folio, decided by the core and stored with
/// its events, projection and chain, durably committed (no email, no idempotency record).
pub(crate) async fn intake_one(
    store: &Store,
    report: &NewReport,
    actor: &Actor,
    policy: &SloPolicy,
) -> Result<(), StoreError> {
    let now = Timestamp::now();
    store
        .create_incident(
            2026,
            now,
            |folio| {
                let command = Command::Report(NewReport {
                    folio,
                    ..report.clone()
                });
                decide(None, actor, &command, now, policy)
                    .map_err(|e| StoreError::Invalid(e.to_string()))
            },
            |_, _| Effects::default(),
        )
        .await
        .map(|_| ())
}

/// Incident intake: each operation is [`intake_one`].
pub(crate) async fn intake(url: &str, writers: usize, seconds: u64) -> Result<Sample, StoreError> {
    let (store, report, actor) = seeded(url).await?;
    let policy = Arc::new(SloPolicy::seed());
    let end = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let cpu_before = cpu_seconds("self");
    let machine = MachineClock::start();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (store, report, actor, policy) =
            (store.clone(), report.clone(), actor.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                intake_one(&store, &report, &actor, &policy).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let latencies = t
            .await
            .map_err(|e| StoreError::Database(format!("tarea de medición: {e}")))??;
        all.extend(latencies);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_before.zip(cpu_seconds("self")).map(|(a, b)| b - a);
    let machine = machine.stop();
    store.close().await;
    let count = all.len();
    Ok(Sample {
        cpu_us_per_op: cpu.filter(|_| count > 0).map(|c| c * 1e6 / count as f64),
        machine,
        ..sample(count, elapsed, all)
    })
}

async fn sqlite_intake(writers: usize, seconds: u64) -> Result<Sample, StoreError> {
    let scratch = Scratch::new("intake")?;
    intake(&scratch.url(), writers, seconds).await
}

async fn postgres_intake(base: &str, writers: usize, seconds: u64) -> Result<Sample, StoreError> {
    let schema = PgScratch::new(base).await?;
    let result = intake(&schema.url, writers, seconds).await;
    schema.drop().await;
    result
}

/// A temporary schema on the PostgreSQL server at `base`, and the URL that uses it.
pub(crate) struct PgScratch {
    admin: AnyConnection,
    name: String,
    pub(crate) url: String,
}

impl PgScratch {
    pub(crate) async fn new(base: &str) -> Result<PgScratch, StoreError> {
        let name = format!(
            "bench_{}_{}",
            std::process::id(),
            Timestamp::now().as_microsecond()
        );
        let mut admin = AnyConnection::connect(base).await.map_err(StoreError::db)?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .map_err(StoreError::db)?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Ok(PgScratch { admin, name, url })
    }

    /// Drops the schema and everything in it.
    pub(crate) async fn drop(mut self) {
        let _ = self
            .admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.name
            )))
            .await;
        let _ = self.admin.close().await;
    }
}

struct Row {
    name: String,
    samples: Vec<Sample>,
}

impl Row {
    fn median_rate(&self) -> f64 {
        median(self.samples.iter().map(|s| s.per_second).collect())
    }
}

async fn store_bench(args: StoreBench) -> Result<i32, StoreError> {
    sqlx::any::install_default_drivers();
    let mut rows = vec![
        Row {
            name: "raw SQLite insert (WAL, synchronous=FULL, 1 commit/row)".into(),
            samples: vec![],
        },
        Row {
            name: "intake SQLite, 1 writer".into(),
            samples: vec![],
        },
        Row {
            name: format!("intake SQLite, {} writers", args.writers),
            samples: vec![],
        },
    ];
    if args.postgres_url.is_some() {
        rows.push(Row {
            name: "intake PostgreSQL, 1 writer".into(),
            samples: vec![],
        });
        rows.push(Row {
            name: format!("intake PostgreSQL, {} writers", args.writers),
            samples: vec![],
        });
    }
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        rows[0].samples.push(raw_inserts(args.seconds).await?);
        rows[1].samples.push(sqlite_intake(1, args.seconds).await?);
        rows[2]
            .samples
            .push(sqlite_intake(args.writers, args.seconds).await?);
        if let Some(pg) = &args.postgres_url {
            rows[3]
                .samples
                .push(postgres_intake(pg, 1, args.seconds).await?);
            rows[4]
                .samples
                .push(postgres_intake(pg, args.writers, args.seconds).await?);
        }
    }
    println!(
        "| measurement | ops/s (median of {}) | p50 ms | p99 ms | per round ops/s |",
        args.rounds
    );
    println!("|---|---|---|---|---|");
    for row in &rows {
        let per_round: Vec<String> = row
            .samples
            .iter()
            .map(|s| format!("{:.0}", s.per_second))
            .collect();
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} |",
            row.name,
            row.median_rate(),
            median(row.samples.iter().map(|s| s.p50_ms).collect()),
            median(row.samples.iter().map(|s| s.p99_ms).collect()),
            per_round.join(", ")
        );
    }
    let raw = rows[0].median_rate();
    if raw > 0.0 {
        println!(
            "\nratio intake({} writers) / raw: {:.2}",
            args.writers,
            rows[2].median_rate() / raw
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{cpu_seconds_in, machine_ticks_in, machine_use};

    #[test]
    fn machine_use_counts_idle_with_io_wait_and_steal_in_cores_over_the_wall_time() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let before = "cpu  100 0 50 1000 20 0 5 30 0 0\ncpu0 50 0 25 500 10 0 2 15 0 0\n";
        let after = "cpu  300 0 90 1150 70 0 9 130 0 0\ncpu0 150 0 45 575 35 0 4 65 0 0\n";
        let (b, a) = (machine_ticks_in(before), machine_ticks_in(after));
        assert_eq!(b, Some([1000, 20, 30]));
        // Over 2 s: idle 150 + iowait 50 ticks = 2 s = 1 core; steal 100 ticks = 0.5 core.
        let used = machine_use(
            b.unwrap_or_default(),
            a.unwrap_or_default(),
            std::time::Duration::from_secs(2),
        );
        let used = used.expect("a measurement with a duration");
        assert!((used.idle - 1.0).abs() < 1e-9, "{used:?}");
        assert!((used.stolen - 0.5).abs() < 1e-9, "{used:?}");
        // Not the aggregate line, or too short: nothing is made up.
        assert_eq!(machine_ticks_in("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks_in("cpu  1 2 3 4\n"), None);
        assert!(machine_use([0; 3], [0; 3], std::time::Duration::ZERO).is_none());
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks_even_with_a_command_name_holding_spaces_and_parens() {
        // Fields 14 and 15 (utime, stime) are 250 and 50 ticks: 3 s at USER_HZ = 100.
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0";
        assert_eq!(cpu_seconds_in(stat), Some(3.0));
        assert_eq!(cpu_seconds_in("4242 (truncated) S 1"), None);
        assert_eq!(cpu_seconds_in(""), None);
    }

    #[test]
    fn this_process_cpu_time_grows_while_it_works() {
        let Some(before) = super::cpu_seconds("self") else {
            eprintln!("SKIPPED: no /proc/self/stat here (not Linux)");
            return;
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = super::cpu_seconds("self").unwrap_or(before);
        assert!(after - before >= 0.1, "{before} -> {after}");
    }
}
