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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use jiff::{SignedDuration, Timestamp};
use sqlx::Row;

use super::{PgScratch, Scratch, invalid};
use crate::clock::SystemClock;
use crate::service::{NewProcedureInput, NewUserInput, PolicyInput, Service, UserUpdateInput};
use crate::store::{Store, StoreError};

mod processes;
mod record;
mod report;

use processes::{Children, check_aiosmtpd, random_hex, start_instance, start_smtp, wait_ready};
use record::{analyze_every, count_text, fired_keys, outbox, read_maildir, record, wait_done};

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
    if args.instances == 0 || args.incidents == 0 || args.seconds == 0 {
        return Err(invalid(
            "--instances, --incidents y --seconds deben ser mayores que 0",
        ));
    }
    // Homoclaves BENCH-02-NNN: three digits.
    if !(1..=999).contains(&args.procedures) {
        return Err(invalid("--procedures debe estar entre 1 y 999"));
    }
    check_aiosmtpd(&args.python)?;
    let scratch = Scratch::new("burst")?;
    let dir = scratch.dir().to_path_buf();
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
    let plan = record(&store, &org).await?;
    eprintln!(
        "esperando {} acciones de reloj y la bandeja de salida vacía...",
        plan.due.len()
    );
    let timed_out = wait_done(&store, &plan, args.wait_s, &mut children).await?;
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
    let ok = report::report(
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
    for i in 2..=args.procedures {
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
