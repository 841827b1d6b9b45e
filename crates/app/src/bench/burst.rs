//! `incidencias bench burst`: the scale-out story. Several `serve` processes of this very
//! binary share one PostgreSQL schema and one SMTP server, and nothing of ours coordinates
//! them but the database's leases. A burst of incidents is created and notified through
//! their HTTP API, spread evenly over a short window, with an acknowledgment target so
//! short that every warning, breach and escalation of the `ack` clock falls within the
//! minute after notification. Reported: the creation rate reached, the firing lateness of
//! each kind of action, the outbox drain, and the proofs that every clock action and every
//! email happened exactly once, counted by key in the database and in the received Maildir.
//!
//! The due instants are not stored anywhere: they are recomputed here by the core's own
//! planner (`escalation::planned`) from each incident's events up to its first firing, so
//! the expected set of actions and their deadlines come from the record, not from numbers
//! repeated in this file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use incidencias_core::escalation::{ActionKey, ActionKind, planned};
use incidencias_core::slo::ClockId;
use incidencias_core::{Folio, Incident};
use jiff::{SignedDuration, Timestamp};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{PgScratch, Scratch, invalid, percentile_ms};
use crate::clock::SystemClock;
use crate::service::{NewProcedureInput, NewUserInput, PolicyInput, Service, UserUpdateInput};
use crate::store::{Store, StoreError, StoredEvent};

#[derive(Debug, Args)]
pub struct BurstBench {
    /// PostgreSQL que comparten las instancias (se crea y borra un esquema temporal).
    #[arg(
        long,
        env = "INCIDENCIAS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
    /// Procesos `serve` sobre la misma base.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Incidencias creadas y notificadas por la API.
    #[arg(long, default_value_t = 10_000)]
    pub incidents: usize,
    /// Segundos sobre los que se reparten las altas, a ritmo parejo.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Trámites entre los que se reparten las incidencias (todos del mismo responsable).
    #[arg(long, default_value_t = 100)]
    pub procedures: usize,
    /// Meta de acuse de una incidencia crítica, en segundos: el aviso, el incumplimiento
    /// y los escalamientos deben caer dentro del minuto siguiente a la notificación.
    #[arg(long, default_value_t = 20)]
    pub ack_target_s: u32,
    /// Solicitudes en curso a la vez en el generador de carga.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Puerto del servidor SMTP local (aiosmtpd), que debe estar libre.
    #[arg(long, default_value_t = 2526)]
    pub smtp_port: u16,
    /// Python con aiosmtpd instalado (pip install aiosmtpd==1.4.6).
    #[arg(long, env = "INCIDENCIAS_BENCH_PYTHON", default_value = "python3")]
    pub python: String,
    /// Cada cuántos segundos la medición corre ANALYZE sobre las tablas de su esquema, como
    /// haría el autovacuum del servidor (0: nunca; el informe dice si el autovacuum está
    /// activo: sin estadísticas, los planes de las consultas son otros).
    #[arg(long, default_value_t = 0)]
    pub analyze_every_s: u64,
    /// Segundos que se espera, terminada la carga, a que todo se dispare y se envíe.
    #[arg(long, default_value_t = 600)]
    pub wait_s: u64,
    /// Conservar el esquema y el directorio temporal (Maildir y bitácoras) al terminar.
    #[arg(long)]
    pub keep: bool,
}

/// The severity every incident is notified with; only its `ack` target is shortened.
const SEVERITY: incidencias_core::Severity = incidencias_core::Severity::Critical;

pub async fn burst_bench(args: BurstBench) -> Result<i32, StoreError> {
    sqlx::any::install_default_drivers();
    if args.instances == 0 || args.incidents == 0 || args.seconds == 0 || args.procedures == 0 {
        return Err(invalid(
            "--instances, --incidents, --seconds y --procedures deben ser mayores que 0",
        ));
    }
    check_aiosmtpd(&args.python)?;
    let scratch = Scratch::new("burst")?;
    let dir = PathBuf::from(
        scratch
            .url()
            .trim_start_matches("sqlite://")
            .trim_end_matches("/bench.db"),
    );
    let schema = PgScratch::new(&args.postgres_url).await?;
    let result = burst(&args, &schema.url, &dir).await;
    if args.keep {
        eprintln!(
            "se conservan el esquema ({}) y {}",
            schema.url,
            dir.display()
        );
        std::mem::forget(scratch);
    } else {
        schema.drop().await;
    }
    result
}

async fn burst(args: &BurstBench, url: &str, dir: &Path) -> Result<i32, StoreError> {
    eprintln!("preparando el catálogo, la política y los tokens...");
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let seed = seed(&service, args).await?;
    let maildir = dir.join("Maildir");
    let mut children = Children::default();
    children.push(start_smtp(args, &maildir, dir).await?);
    let secret = random_hex(32)?;
    let mut bases = Vec::new();
    for i in 0..args.instances {
        let (child, base) = start_instance(args, url, &secret, dir, i).await?;
        children.push(child);
        bases.push(base);
    }
    let client = crate::webhooks::worker::http_client(
        None,
        Duration::from_secs(60),
        reqwest::redirect::Policy::none(),
    )
    .map_err(invalid)?;
    for base in &bases {
        wait_ready(&client, base, &mut children).await?;
    }
    eprintln!(
        "{} instancias listas ({}); carga: {} incidencias en {} s...",
        bases.len(),
        bases.join(", "),
        args.incidents,
        args.seconds
    );
    eprintln!(
        "  política v{}: acuse de una incidencia crítica en {} s; \
         escalera: responsable, jefa, dirección",
        seed.policy_version, args.ack_target_s
    );
    let autovacuum = count_text(&store, "SHOW autovacuum").await?;
    let analyzed = Arc::new(AtomicUsize::new(0));
    let analyzer = if args.analyze_every_s > 0 {
        let tables: Vec<String> = sqlx::query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(|r| r.try_get(0).map_err(StoreError::db))
        .collect::<Result<_, _>>()?;
        Some(tokio::spawn(analyze_every(
            store.clone(),
            tables,
            Duration::from_secs(args.analyze_every_s),
            analyzed.clone(),
        )))
    } else {
        None
    };
    let load = drive(args, &client, &bases, &seed).await;
    let load_end = Timestamp::now();
    eprintln!(
        "  carga terminada: {} creadas, {} notificadas, {} errores",
        load.created, load.notified, load.errors
    );

    let org = service.org_chart().await.map_err(invalid)?;
    let expected = record(&store, &org).await?.due.len();
    eprintln!("esperando {expected} acciones de reloj y la bandeja de salida vacía...");
    let timed_out = wait_done(&store, expected, args.wait_s, &mut children).await?;
    // Anything done twice (a second firing, a second send by another instance) would show
    // up within an instance's idle recheck (5 s): look once more after it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    // A still picture: nothing fires or sends while the record is read (an email the
    // server accepted and an instance had not yet marked sent stays pending, as it would
    // after a crash).
    children.kill().await;
    if let Some(task) = analyzer {
        task.abort();
    }
    let rec = record(&store, &org).await?;
    let keys = fired_keys(&store).await?;
    let mail = outbox(&store, &secret).await?;
    let received = read_maildir(&maildir)?;
    store.close().await;

    println!(
        "autovacuum del servidor: {autovacuum}; ANALYZE de la medición: {}",
        match args.analyze_every_s {
            0 => "ninguno".to_string(),
            s => format!("cada {s} s ({} pasadas)", analyzed.load(Ordering::Relaxed)),
        }
    );
    println!();
    let ok = report(
        args, &load, load_end, &rec, &keys, &mail, &received, timed_out,
    );
    Ok(if ok { 0 } else { 1 })
}

/// Everything the load needs: the procedures to report on and the help desk's token.
struct Seed {
    procedures: Vec<i64>,
    token: String,
    policy_version: u32,
}

/// The bench catalogue plus what a burst needs: a director above the responsible's chief
/// (two escalation levels), CEDN's validator, more procedures, the short `ack` policy and
/// a help desk token (the help desk both reports and notifies, API.md).
async fn seed(service: &Service, args: &BurstBench) -> Result<Seed, StoreError> {
    let c = super::bench_catalogue(service).await?;
    let admin_token = service
        .create_token("admin@bench.gob.mx")
        .await
        .map_err(invalid)?;
    let admin = service
        .authenticate_token(&admin_token)
        .await
        .map_err(invalid)?;
    let user = |email: &str, role: &str, agency: Option<i64>| NewUserInput {
        name: "Bench".into(),
        email: email.into(),
        role: role.into(),
        agency_id: agency,
        reports_to: None,
        password: None,
    };
    let director = service
        .create_user_unchecked(user("direccion@bench.gob.mx", "agency", Some(c.agency.id)))
        .await
        .map_err(invalid)?;
    let chief = service
        .users(&admin)
        .await
        .map_err(invalid)?
        .into_iter()
        .find(|u| u.email == "jefa@bench.gob.mx")
        .ok_or_else(|| invalid("no está la jefa del catálogo de pruebas"))?;
    service
        .update_user(
            &admin,
            chief.id,
            UserUpdateInput {
                name: chief.name.clone(),
                role: chief.role.clone(),
                agency_id: chief.agency_id,
                reports_to: Some(director.id),
                active: true,
            },
        )
        .await
        .map_err(invalid)?;
    service
        .create_user_unchecked(user("cedn@bench.gob.mx", "validator", None))
        .await
        .map_err(invalid)?;
    let mut procedures = vec![c.procedure.id];
    for i in 2..=args.procedures.min(999) {
        let p = service
            .create_procedure(
                &admin,
                NewProcedureInput {
                    homoclave: format!("BENCH-02-{i:03}"),
                    name: format!("Trámite de ráfaga {i}"),
                    agency_id: c.agency.id,
                    url: format!("https://www.gob.mx/tramites/rafaga-{i}"),
                    responsible_id: c.responsible.id.0,
                },
            )
            .await
            .map_err(invalid)?;
        procedures.push(p.id);
    }
    let mut targets = incidencias_core::SloPolicy::seed().targets;
    targets.ack.critical = args.ack_target_s;
    let policy = service
        .add_policy(
            &admin,
            PolicyInput {
                effective_from: None,
                targets,
                warning_ratio: None,
                escalation_repeat_s: None,
                objective_pct: None,
            },
        )
        .await
        .map_err(invalid)?;
    let token = service
        .create_token("mesa@bench.gob.mx")
        .await
        .map_err(invalid)?;
    Ok(Seed {
        procedures,
        token,
        policy_version: policy.version,
    })
}

/// `n` random bytes in hexadecimal.
fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(invalid)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The processes started here: killed when the bench ends, also on an error (drop).
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    fn push(&mut self, child: (String, Child)) {
        self.0.push(child);
    }

    /// An error naming the first child that has exited, if any.
    fn check(&mut self) -> Result<(), StoreError> {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(invalid(format!(
                    "{name} terminó antes de tiempo ({status})"
                )));
            }
        }
        Ok(())
    }

    async fn kill(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.start_kill();
        }
        for (_, child) in &mut self.0 {
            let _ = child.wait().await;
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.start_kill();
        }
    }
}

fn check_aiosmtpd(python: &str) -> Result<(), StoreError> {
    let found = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(())
    } else {
        Err(invalid(format!(
            "esta medición necesita un servidor SMTP local: «{python} -c 'import aiosmtpd'» \
             falló. Instálelo con «{python} -m pip install aiosmtpd==1.4.6» o indique otro \
             Python con --python (INCIDENCIAS_BENCH_PYTHON)"
        )))
    }
}

/// aiosmtpd on `--smtp-port`, writing every message it accepts into `maildir`.
async fn start_smtp(
    args: &BurstBench,
    maildir: &Path,
    dir: &Path,
) -> Result<(String, Child), StoreError> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub))?;
    }
    let port = args.smtp_port;
    // A server already there would receive nothing of ours and answer for us.
    std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        invalid(format!(
            "el puerto SMTP {port} no está libre ({e}); elija otro con --smtp-port"
        ))
    })?;
    let log = std::fs::File::create(dir.join("smtp.log"))?;
    let child = Command::new(&args.python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| invalid(format!("no se pudo iniciar aiosmtpd: {e}")))?;
    let mut smtp = ("el servidor SMTP".to_string(), child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(smtp);
        }
        if let Ok(Some(status)) = smtp.1.try_wait() {
            return Err(invalid(format!(
                "aiosmtpd terminó al iniciar ({status}); ver {}",
                dir.join("smtp.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = smtp.1.start_kill();
    Err(invalid(format!(
        "aiosmtpd no aceptó conexiones en el puerto {port}"
    )))
}

/// One `serve` process of this binary on a port of its own choosing; its address, read
/// from the line it prints once listening.
async fn start_instance(
    args: &BurstBench,
    url: &str,
    secret: &str,
    dir: &Path,
    i: usize,
) -> Result<((String, Child), String), StoreError> {
    let exe = std::env::current_exe()?;
    let log_path = dir.join(format!("instance-{i}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(exe);
    // Only what is set here: none of the operator's own INCIDENCIAS_* settings (an IMAP
    // mailbox, a metrics token...) leak into the measured instances.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INCIDENCIAS_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .arg("serve")
        .env("INCIDENCIAS_DATABASE_URL", url)
        .env("INCIDENCIAS_BIND", "127.0.0.1:0")
        .env(
            "INCIDENCIAS_SMTP_URL",
            format!("smtp://127.0.0.1:{}", args.smtp_port),
        )
        .env("INCIDENCIAS_LINK_SECRET", secret)
        // One public address, as behind a load balancer: the same links from every one.
        .env("INCIDENCIAS_PUBLIC_URL", "https://incidencias.bench.gob.mx")
        .env("INCIDENCIAS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| invalid(format!("no se pudo iniciar la instancia {i}: {e}")))?;
    let name = format!("la instancia {i} (pid {})", child.id().unwrap_or_default());
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| invalid("sin salida de la instancia"))?;
    let mut lines = BufReader::new(stdout).lines();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("escuchando en ").nth(1) {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    })
    .await;
    let Ok(Some(base)) = read else {
        let _ = child.start_kill();
        return Err(invalid(format!(
            "{name} no empezó a escuchar; ver {}",
            log_path.display()
        )));
    };
    // Keep reading what it prints, so that a write to its stdout never blocks it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(((name, child), base))
}

async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    children: &mut Children,
) -> Result<(), StoreError> {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        children.check()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(invalid(format!("{base}/readyz no respondió 200")))
}

/// What the load generator saw.
struct Load {
    created: usize,
    notified: usize,
    errors: usize,
    /// The first few failures, to print.
    samples: Vec<String>,
    create_ms: Vec<Duration>,
    notify_ms: Vec<Duration>,
    /// From the first slot to the last creation answered.
    elapsed: Duration,
    /// How far behind its slot the latest request started: the generator kept the pace
    /// when this stays small.
    behind: Duration,
}

/// `--incidents` creations, the i-th due at `i * seconds / incidents`, each on instance
/// `i % instances` and notified there as soon as it is created; `--connections` requests
/// in flight at most.
async fn drive(args: &BurstBench, client: &reqwest::Client, bases: &[String], seed: &Seed) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let (n, span) = (args.incidents, Duration::from_secs(args.seconds));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections.max(1) {
        let (next, client, bases) = (next.clone(), client.clone(), bases.to_vec());
        let (token, procedures) = (seed.token.clone(), seed.procedures.clone());
        tasks.spawn(async move {
            let mut out = Load::empty();
            let mut last_done = start;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let slot = start + span.mul_f64(i as f64 / n as f64);
                tokio::time::sleep_until(slot).await;
                out.behind = out.behind.max(slot.elapsed());
                let base = &bases[i % bases.len()];
                let body = serde_json::json!({
                    "procedure_ids": [procedures[i % procedures.len()]],
                    "kind": "unavailable",
                    "description": format!("Ráfaga de prueba {i}"),
                    "occurred_at": (Timestamp::now() - SignedDuration::from_mins(1)).to_string(),
                    "channel": "api",
                });
                let t = Instant::now();
                let url = format!("{base}/api/v1/incidents");
                let created = match post(&client, &url, &token, body, 201).await {
                    Ok(doc) => doc["folio"].as_str().map(str::to_string),
                    Err(e) => {
                        out.fail(format!("alta {i}: {e}"));
                        continue;
                    }
                };
                out.create_ms.push(t.elapsed());
                out.created += 1;
                last_done = last_done.max(tokio::time::Instant::now());
                let Some(folio) = created else {
                    out.fail(format!("alta {i}: respuesta sin folio"));
                    continue;
                };
                let t = Instant::now();
                let url = format!("{base}/api/v1/incidents/{folio}/notify");
                let notify = serde_json::json!({ "severity": SEVERITY.as_str() });
                match post(&client, &url, &token, notify, 200).await {
                    Ok(doc) if doc["state"] == "awaiting_ack" => {
                        out.notify_ms.push(t.elapsed());
                        out.notified += 1;
                    }
                    Ok(doc) => {
                        out.fail(format!("notificación de {folio}: estado {}", doc["state"]))
                    }
                    Err(e) => out.fail(format!("notificación de {folio}: {e}")),
                }
            }
            out.elapsed = last_done.saturating_duration_since(start);
            out
        });
    }
    let mut all = Load::empty();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(l) => {
                all.created += l.created;
                all.notified += l.notified;
                all.errors += l.errors;
                all.samples.extend(l.samples);
                all.create_ms.extend(l.create_ms);
                all.notify_ms.extend(l.notify_ms);
                all.elapsed = all.elapsed.max(l.elapsed);
                all.behind = all.behind.max(l.behind);
            }
            Err(e) => all.fail(format!("tarea de carga: {e}")),
        }
    }
    all.samples.truncate(10);
    all.create_ms.sort();
    all.notify_ms.sort();
    all
}

impl Load {
    fn empty() -> Load {
        Load {
            created: 0,
            notified: 0,
            errors: 0,
            samples: Vec::new(),
            create_ms: Vec::new(),
            notify_ms: Vec::new(),
            elapsed: Duration::ZERO,
            behind: Duration::ZERO,
        }
    }

    fn fail(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 10 {
            self.samples.push(what);
        }
    }
}

/// POSTs `body` with the token; the answer's JSON when its status is `expect`.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: serde_json::Value,
    expect: u16,
) -> Result<serde_json::Value, String> {
    let r = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    if status != expect {
        let text = String::from_utf8_lossy(&bytes);
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Polls the database until `expected` actions have fired and no email is pending, or
/// `wait_s` have passed (then `true`: timed out).
async fn wait_done(
    store: &Store,
    expected: usize,
    wait_s: u64,
    children: &mut Children,
) -> Result<bool, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut last_print = Instant::now();
    loop {
        children.check()?;
        // Fired first: the mail of those firings was committed with them.
        let fired = count(store, "SELECT COUNT(*) FROM fired_actions").await?;
        let pending = count(store, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await?;
        if fired >= expected as i64 && pending == 0 {
            return Ok(false);
        }
        if Instant::now() > deadline {
            eprintln!(
                "  tiempo agotado: {fired}/{expected} disparadas, {pending} correos pendientes"
            );
            return Ok(true);
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!("  {fired}/{expected} acciones disparadas, {pending} correos pendientes");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The one text value `sql` answers.
async fn count_text(store: &Store, sql: &'static str) -> Result<String, StoreError> {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db)
}

/// ANALYZE of every table of the bench's schema (only there: the server is shared), every
/// `every`, until aborted; counts the passes in `passes`.
async fn analyze_every(
    store: Store,
    tables: Vec<String>,
    every: Duration,
    passes: Arc<AtomicUsize>,
) {
    loop {
        tokio::time::sleep(every).await;
        for t in &tables {
            let sql = format!("ANALYZE \"{}\"", t.replace('"', "\"\""));
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(store.pool())
                .await
            {
                eprintln!("  ANALYZE {t}: {e}");
            }
        }
        passes.fetch_add(1, Ordering::Relaxed);
    }
}

async fn count(store: &Store, sql: &'static str) -> Result<i64, StoreError> {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db)
}

/// The clock actions as the record has them: what the core's planner expected of each
/// incident as it stood before its first firing (its `ack` clock's actions, with their
/// due instants, in epoch ms) and what the events say was fired (key, kind, instant).
struct Record {
    due: HashMap<String, (ActionKind, i64)>,
    fired: Vec<(String, ActionKind, i64)>,
    /// The last due instant, epoch ms.
    last_due: i64,
}

async fn record(store: &Store, org: &crate::service::OrgChart) -> Result<Record, StoreError> {
    let rows = sqlx::query(
        "SELECT folio, seq, at, actor, kind, payload, prev_hash, hash FROM incident_events \
         ORDER BY folio, seq",
    )
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::db)?;
    let mut rec = Record {
        due: HashMap::new(),
        fired: Vec::new(),
        last_due: 0,
    };
    let mut current: Option<(Folio, Option<Incident>, bool)> = None;
    let plan = |state: Option<Incident>, rec: &mut Record| {
        let Some(incident) = state else { return };
        for a in planned(&incident, &org.ladder(&incident)) {
            if a.key.clock == ClockId::ACK {
                rec.last_due = rec.last_due.max(a.due_at.as_millisecond());
                rec.due
                    .insert(a.key.to_string(), (a.key.kind, a.due_at.as_millisecond()));
            }
        }
    };
    for row in &rows {
        let get = |e| StoreError::db(e);
        let stored = StoredEvent {
            folio: row.try_get("folio").map_err(get)?,
            seq: row.try_get("seq").map_err(get)?,
            at: row.try_get("at").map_err(get)?,
            actor: row.try_get("actor").map_err(get)?,
            kind: row.try_get("kind").map_err(get)?,
            payload: row.try_get("payload").map_err(get)?,
            prev_hash: row.try_get("prev_hash").map_err(get)?,
            hash: row.try_get("hash").map_err(get)?,
        };
        let folio = Folio::parse(&stored.folio).map_err(invalid)?;
        if current.as_ref().is_none_or(|(f, _, _)| *f != folio) {
            if let Some((_, state, _)) = current.take() {
                plan(state, &mut rec);
            }
            current = Some((folio, None, false));
        }
        let event = stored.event()?;
        let Some((_, state, firing)) = current.as_mut() else {
            continue;
        };
        if let Some(key) = ActionKey::of_change(folio, &event.change) {
            rec.fired
                .push((key.to_string(), key.kind, event.at.as_millisecond()));
            *firing = true;
        } else if !*firing {
            *state = Some(Incident::apply(state.take(), &event).map_err(invalid)?);
        }
    }
    if let Some((_, state, _)) = current.take() {
        plan(state, &mut rec);
    }
    Ok(rec)
}

/// `fired_actions`: each key and when it was stored.
async fn fired_keys(store: &Store) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT action_key FROM fired_actions")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(StoreError::db))
        .collect()
}

/// One outbox row: the Message-ID it is sent with (without angle brackets), state, queued
/// and sent instants (epoch ms).
struct Mail {
    message_id: String,
    state: String,
    created_at: i64,
    sent_at: Option<i64>,
}

/// The rows of the outbox. A row keeps the base of its Message-ID; it is sent with a mark
/// signed with the link secret (`LinkSigner::mark_message_id`), the same from every
/// instance since they share the secret: that is the ID the Maildir must hold.
async fn outbox(store: &Store, secret: &str) -> Result<Vec<Mail>, StoreError> {
    let signer = crate::links::LinkSigner::new(secret);
    let rows = sqlx::query("SELECT message_id, state, created_at, sent_at FROM outbox")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("message_id").map_err(StoreError::db)?;
            Ok(Mail {
                message_id: signer
                    .mark_message_id(&id)
                    .trim_matches(['<', '>'])
                    .to_string(),
                state: r.try_get("state").map_err(StoreError::db)?,
                created_at: r.try_get("created_at").map_err(StoreError::db)?,
                sent_at: r.try_get("sent_at").map_err(StoreError::db)?,
            })
        })
        .collect()
}

/// The Message-ID of every file in the Maildir (`new/` and `cur/`; `tmp/` holds only
/// messages still being written), `None` for a file without one.
fn read_maildir(maildir: &Path) -> Result<Vec<Option<String>>, StoreError> {
    let parser = mail_parser::MessageParser::default();
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(maildir.join(sub))? {
            let raw = std::fs::read(entry?.path())?;
            let id = parser.parse_headers(&raw).and_then(|m| {
                m.message_id()
                    .map(|id| id.trim_matches(['<', '>']).to_string())
            });
            out.push(id);
        }
    }
    Ok(out)
}

/// Lateness (ms) of each kind: p50, p99, max and how many.
fn lateness(rec: &Record, kind: ActionKind) -> (usize, f64, f64, f64) {
    let mut late: Vec<Duration> = rec
        .fired
        .iter()
        .filter(|(_, k, _)| *k == kind)
        .filter_map(|(key, _, at)| rec.due.get(key).map(|(_, due)| at - due))
        .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
        .collect();
    late.sort();
    (
        late.len(),
        percentile_ms(&late, 0.50),
        percentile_ms(&late, 0.99),
        percentile_ms(&late, 1.0),
    )
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Prints the results and the proofs; `true` when every proof holds.
#[allow(clippy::too_many_arguments)]
fn report(
    args: &BurstBench,
    load: &Load,
    load_end: Timestamp,
    rec: &Record,
    keys: &[String],
    mail: &[Mail],
    received: &[Option<String>],
    timed_out: bool,
) -> bool {
    let n = args.incidents;
    println!(
        "| ráfaga: {} instancias, 1 PostgreSQL, {n} incidencias en {} s | valor |",
        args.instances, args.seconds
    );
    println!("|---|---|");
    let rate = load.created as f64 / load.elapsed.as_secs_f64().max(1e-9);
    println!(
        "| altas por la API (creadas / notificadas / errores) | {} / {} / {} |",
        load.created, load.notified, load.errors
    );
    println!(
        "| ritmo de altas logrado (objetivo {:.1}/s) | {rate:.1}/s |",
        n as f64 / args.seconds as f64
    );
    let p = |v: &[Duration]| {
        format!(
            "{:.1} / {:.1} ms",
            percentile_ms(v, 0.5),
            percentile_ms(v, 0.99)
        )
    };
    println!("| alta: latencia p50 / p99 | {} |", p(&load.create_ms));
    println!(
        "| notificación: latencia p50 / p99 | {} |",
        p(&load.notify_ms)
    );
    println!(
        "| máximo retraso del generador respecto a su calendario | {:.0} ms |",
        load.behind.as_secs_f64() * 1000.0
    );
    println!(
        "| último vencimiento de acuse, después del fin de la carga | {:.1} s |",
        secs(rec.last_due - load_end.as_millisecond())
    );
    println!();
    println!("| acción del reloj de acuse | disparadas | retraso p50 | p99 | máximo |");
    println!("|---|---|---|---|---|");
    for (name, kind) in [
        ("avisos", ActionKind::Warning),
        ("incumplimientos", ActionKind::Breach),
        ("escalamientos", ActionKind::Escalation),
    ] {
        let (count, p50, p99, max) = lateness(rec, kind);
        println!("| {name} | {count} | {p50:.0} ms | {p99:.0} ms | {max:.0} ms |");
    }
    println!();
    let sent: Vec<&Mail> = mail.iter().filter(|m| m.state == "sent").collect();
    let first_queued = mail.iter().map(|m| m.created_at).min().unwrap_or(0);
    let first_sent = sent.iter().filter_map(|m| m.sent_at).min().unwrap_or(0);
    let last_sent = sent.iter().filter_map(|m| m.sent_at).max().unwrap_or(0);
    let mut delay: Vec<Duration> = sent
        .iter()
        .filter_map(|m| m.sent_at.map(|s| s - m.created_at))
        .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
        .collect();
    delay.sort();
    let span = secs(last_sent - first_queued);
    println!("| bandeja de salida al SMTP local | valor |");
    println!("|---|---|");
    println!("| correos enviados | {} |", sent.len());
    println!(
        "| del primer correo encolado al último enviado | {span:.1} s (ritmo medio {:.0} correos/s) |",
        sent.len() as f64 / span.max(1e-9)
    );
    println!(
        "| del primer envío al último | {:.1} s |",
        secs(last_sent - first_sent)
    );
    println!(
        "| del fin de la carga al último enviado | {:.1} s |",
        secs(last_sent - load_end.as_millisecond())
    );
    println!(
        "| espera en la bandeja p50 / p99 / máximo | {:.0} / {:.0} / {:.0} ms |",
        percentile_ms(&delay, 0.5),
        percentile_ms(&delay, 0.99),
        percentile_ms(&delay, 1.0)
    );
    println!();

    let mut ok = true;
    let mut proof = |holds: bool, text: String| {
        println!("{} {text}", if holds { "OK   " } else { "FALLA" });
        ok &= holds;
    };
    proof(
        load.errors == 0 && load.created == n && load.notified == n,
        format!(
            "carga: {} de {n} creadas y {} notificadas, {} errores",
            load.created, load.notified, load.errors
        ),
    );
    for s in &load.samples {
        println!("      {s}");
    }
    proof(
        !timed_out,
        format!("todo terminó antes de {} s de espera", args.wait_s),
    );
    let expected: HashSet<&String> = rec.due.keys().collect();
    let event_keys: HashSet<&String> = rec.fired.iter().map(|(k, _, _)| k).collect();
    let stored: HashSet<&String> = keys.iter().collect();
    proof(
        rec.fired.len() == event_keys.len()
            && keys.len() == stored.len()
            && event_keys == stored
            && stored == expected,
        format!(
            "acciones de reloj una vez cada una: esperadas {}, eventos {} ({} claves distintas), \
             fired_actions {} ({} claves distintas), esperadas sin disparar {}, disparadas sin \
             esperarse {}",
            expected.len(),
            rec.fired.len(),
            event_keys.len(),
            keys.len(),
            stored.len(),
            expected.difference(&stored).count(),
            stored.difference(&expected).count()
        ),
    );
    let sent_ids: HashSet<&str> = sent.iter().map(|m| m.message_id.as_str()).collect();
    let got: HashSet<&str> = received.iter().flatten().map(String::as_str).collect();
    let unsent = mail.len() - sent.len();
    proof(
        unsent == 0
            && sent_ids.len() == sent.len()
            && received.len() == sent.len()
            && got.len() == received.len()
            && got == sent_ids,
        format!(
            "correos una vez cada uno: {} filas en la bandeja ({} enviadas, {unsent} sin enviar), \
             {} archivos en el Maildir ({} Message-ID distintos, {} sin Message-ID), enviados \
             que no llegaron {}, llegados que no se enviaron {}",
            mail.len(),
            sent.len(),
            received.len(),
            got.len(),
            received.iter().filter(|r| r.is_none()).count(),
            sent_ids.difference(&got).count(),
            got.difference(&sent_ids).count()
        ),
    );
    ok
}
