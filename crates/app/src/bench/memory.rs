//! `incidencias bench memory`: resident memory of `serve`, read from `/proc/<pid>/status`
//! (VmRSS, and VmHWM, the peak) of real `serve` processes started from this same binary
//! on scratch SQLite databases:
//!
//! 1. idle: an empty database, after the health check answers and a rest;
//! 2. 100,000 open incidents, each with its timer (deadlines years away, so nothing fires
//!    while measuring), after the same rest, and again after random reads of them through
//!    the API (which fill the incident cache);
//! 3. after 200 password logins through the API, 16 at a time, and after a rest.
//!
//! Beside them, the Argon2 verifications alone, 200 at a time 16 in parallel, in a child
//! process of this binary: the old path (`password_auth::verify_password` on plain
//! `spawn_blocking`, default allocator settings), the same with glibc's mmap threshold
//! fixed at 4 MiB (the `mallopt` alternative, set through `GLIBC_TUNABLES`), and the
//! fixed pool of [`crate::passwords`].

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::load::RequestFn;
use super::{Scratch, invalid, median};
use crate::clock::SystemClock;
use crate::service::{NewUserInput, Service};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct MemoryBench {
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Incidencias abiertas con su temporizador.
    #[arg(long, default_value_t = 100_000)]
    pub incidents: usize,
    /// Segundos de lecturas aleatorias de incidencias por la API (0: ninguna).
    #[arg(long, default_value_t = 5)]
    pub read_s: u64,
    /// Inicios de sesión.
    #[arg(long, default_value_t = 200)]
    pub logins: usize,
    /// Inicios de sesión simultáneos.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Segundos de reposo antes de cada lectura en reposo.
    #[arg(long, default_value_t = 5)]
    pub rest_s: u64,
    /// Uso interno: este proceso es el que calcula los hashes de la línea base.
    #[arg(long, hide = true, value_enum)]
    pub baseline_child: Option<HashPath>,
}

/// How the child process verifies passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashPath {
    /// `password_auth::verify_password` on `spawn_blocking`, as before the pool.
    Old,
    /// [`crate::passwords::verify`].
    Pool,
}

/// The password of every login account (long enough, not a common one).
const PASSWORD: &str = "medición de memoria 2026";
/// Deadlines this far ahead: the scheduler loads them and none fires while measuring.
const EPOCH: &str = "2031-01-06T12:00:00Z";
const MIB: f64 = 1024.0 * 1024.0;

/// VmRSS and VmHWM of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: f64,
    hwm: f64,
}

/// Reads VmRSS and VmHWM from `/proc/<pid>/status` (`self` for this process).
fn mem_of(pid: &str) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024.0)
        })
    };
    Some(Mem {
        rss: field("VmRSS")?,
        hwm: field("VmHWM")?,
    })
}

fn mem_of_child(child: &Child) -> Result<Mem, StoreError> {
    let pid = child.id().ok_or_else(|| invalid("el servidor terminó"))?;
    mem_of(&pid.to_string()).ok_or_else(|| invalid("sin /proc/<pid>/status (¿no es Linux?)"))
}

/// One request on its own connection (`Connection: close`); the answer's status.
async fn request_once(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(request).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let head = std::str::from_utf8(answer.get(..answer.len().min(64))?).ok()?;
    head.split(' ').nth(1)?.parse().ok()
}

/// A `serve` of this binary on `url`, listening on a free local port, with none of this
/// process's `INCIDENCIAS_*` settings (no mail, no IMAP), banner checks off.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    async fn start(url: &str) -> Result<Server, StoreError> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("INCIDENCIAS_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--banner-check-grace",
                "no",
            ])
            .env("INCIDENCIAS_DATABASE_URL", url)
            .env("INCIDENCIAS_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| invalid("sin salida del servidor"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("escuchando en http://").nth(1) {
                    return rest.split_whitespace().next().and_then(|a| a.parse().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| invalid("el servidor no anunció su dirección"))?;
        // Keep reading what it prints, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while request_once(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
        )
        .await
            != Some(200)
        {
            if Instant::now() > deadline {
                return Err(invalid("el servidor no respondió /healthz"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    fn mem(&self) -> Result<Mem, StoreError> {
        mem_of_child(&self.child)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn rest(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// 1: an empty database, after the health check and a rest.
async fn idle(rest_s: u64) -> Result<Mem, StoreError> {
    let scratch = Scratch::new("memory-idle")?;
    let server = Server::start(&scratch.url()).await?;
    rest(rest_s).await;
    let mem = server.mem();
    server.stop().await;
    mem
}

/// 2: `n` open incidents with their timers (built once, served each round); the memory
/// after the rest, then after `read_s` seconds of random reads (and how many answered).
async fn open_incidents(
    url: &str,
    token: &str,
    n: usize,
    rest_s: u64,
    read_s: u64,
) -> Result<(Mem, Option<(Mem, u64, u64)>), StoreError> {
    let server = Server::start(url).await?;
    rest(rest_s).await;
    let loaded = server.mem()?;
    let mut read = None;
    if read_s > 0 {
        let n = n.max(1) as u64;
        let token = token.to_string();
        let request: RequestFn = Arc::new(move |i| {
            // A cheap hash of the request number: folios all over the 1..=n range.
            let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
            let folio = format!("INC-2026-{:06}", mixed % n + 1);
            format!(
                "GET /api/v1/incidents/{folio} HTTP/1.1\r\nHost: bench\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            )
            .into_bytes()
        });
        let addr = server.addr;
        let load =
            tokio::task::spawn_blocking(move || super::api::drive(addr, 8, read_s, 200, request))
                .await
                .map_err(invalid)?;
        read = Some((server.mem()?, load.requests, load.errors));
    }
    server.stop().await;
    Ok((loaded, read))
}

/// The accounts the logins use, one per concurrent client (sequential logins of one
/// address never reach the waits that follow three failures).
fn login_email(i: usize) -> String {
    format!("sesion{i}@bench.gob.mx")
}

async fn login_accounts(url: &str, count: usize) -> Result<(), StoreError> {
    let store = Store::open(url).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    for i in 0..count {
        service
            .create_user_unchecked(NewUserInput {
                name: "Bench".into(),
                email: login_email(i),
                role: "helpdesk".into(),
                agency_id: None,
                reports_to: None,
                password: Some(PASSWORD.into()),
            })
            .await
            .map_err(invalid)?;
    }
    store.close().await;
    Ok(())
}

/// 3: `logins` password logins through the API, `concurrency` at a time; the memory right
/// after them and after the rest, and how many failed.
async fn logins(
    url: &str,
    logins: usize,
    concurrency: usize,
    rest_s: u64,
) -> Result<(Mem, Mem, usize), StoreError> {
    let server = Server::start(url).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let addr = server.addr;
        let count = (c..logins).step_by(concurrency).count();
        tasks.spawn(async move {
            let body = format!(
                "{{\"email\":\"{}\",\"password\":\"{PASSWORD}\"}}",
                login_email(c)
            );
            let request = format!(
                "POST /api/v1/login HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let mut failed = 0;
            for _ in 0..count {
                if request_once(addr, request.as_bytes()).await != Some(200) {
                    failed += 1;
                }
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        failed += r.map_err(invalid)?;
    }
    let after = server.mem()?;
    rest(rest_s).await;
    let rested = server.mem()?;
    server.stop().await;
    Ok((after, rested, failed))
}

/// The child side of the baseline: one hash, then `logins` verifications of it,
/// `concurrency` at a time, by `path`; prints VmRSS and VmHWM in bytes before, right
/// after, and after the rest, and the count of failed verifications.
async fn baseline_child(path: HashPath, args: &MemoryBench) -> Result<i32, StoreError> {
    let before = mem_of("self").unwrap_or_default();
    let hash = match path {
        HashPath::Old => tokio::task::spawn_blocking(|| password_auth::generate_hash(PASSWORD))
            .await
            .map_err(invalid)?,
        HashPath::Pool => crate::passwords::hash(PASSWORD.into())
            .await
            .map_err(invalid)?,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.concurrency.max(1) {
        let hash = hash.clone();
        let count = (c..args.logins).step_by(args.concurrency.max(1)).count();
        tasks.spawn(async move {
            let mut failed = 0;
            for _ in 0..count {
                let ok = match path {
                    HashPath::Old => {
                        let hash = hash.clone();
                        tokio::task::spawn_blocking(move || {
                            password_auth::verify_password(PASSWORD, &hash).is_ok()
                        })
                        .await
                        .unwrap_or(false)
                    }
                    HashPath::Pool => {
                        crate::passwords::verify(PASSWORD.into(), Some(hash.clone())).await
                    }
                };
                failed += usize::from(!ok);
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        failed += r.map_err(invalid)?;
    }
    let after = mem_of("self").unwrap_or_default();
    rest(args.rest_s).await;
    let rested = mem_of("self").unwrap_or_default();
    println!(
        "{} {} {} {} {} {} {failed}",
        before.rss, before.hwm, after.rss, after.hwm, rested.rss, rested.hwm
    );
    Ok(0)
}

/// Runs a baseline child (`tunables`: a `GLIBC_TUNABLES` value for it); its memory right
/// after the verifications and after the rest, and the failed count.
async fn baseline(
    path: HashPath,
    tunables: Option<&str>,
    args: &MemoryBench,
) -> Result<(Mem, Mem, usize), StoreError> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.env_remove("GLIBC_TUNABLES");
    if let Some(t) = tunables {
        command.env("GLIBC_TUNABLES", t);
    }
    let output = command
        .args(["bench", "memory", "--baseline-child"])
        .arg(match path {
            HashPath::Old => "old",
            HashPath::Pool => "pool",
        })
        .args(["--logins", &args.logins.to_string()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--rest-s", &args.rest_s.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let [_, _, rss_after, hwm_after, rss_rest, hwm_rest, failed] = numbers[..] else {
        return Err(invalid(format!("línea base: salida inesperada «{text}»")));
    };
    Ok((
        Mem {
            rss: rss_after,
            hwm: hwm_after,
        },
        Mem {
            rss: rss_rest,
            hwm: hwm_rest,
        },
        failed as usize,
    ))
}

struct Row {
    name: String,
    /// `None`: a reference figure, without a target.
    target_mib: Option<f64>,
    samples: Vec<Mem>,
}

impl Row {
    fn new(name: impl Into<String>, target_mib: Option<f64>) -> Row {
        Row {
            name: name.into(),
            target_mib,
            samples: Vec::new(),
        }
    }
}

pub async fn memory_bench(args: MemoryBench) -> Result<i32, StoreError> {
    if let Some(path) = args.baseline_child {
        return baseline_child(path, &args).await;
    }
    sqlx::any::install_default_drivers();
    if mem_of("self").is_none() {
        return Err(invalid(
            "esta medición lee /proc/<pid>/status: sólo en Linux",
        ));
    }
    let concurrency = args.concurrency.max(1);

    let scratch = Scratch::new("memory")?;
    let incidents_url = scratch.url_of("incidents.db");
    let logins_url = scratch.url_of("logins.db");
    let epoch: Timestamp = EPOCH.parse().map_err(invalid)?;
    eprintln!("creando {} incidencias abiertas...", args.incidents);
    let setup = Instant::now();
    super::timers::dataset(
        &incidents_url,
        args.incidents,
        epoch,
        3600,
        super::timers::DeadlineOrder::Creation,
    )
    .await?;
    let token = {
        let store = Store::open(&incidents_url).await?;
        let service = Service::new(store.clone(), Arc::new(SystemClock));
        let token = service
            .create_token("mesa@bench.gob.mx")
            .await
            .map_err(invalid)?;
        store.close().await;
        token
    };
    login_accounts(&logins_url, concurrency).await?;
    eprintln!("  listo en {:.1} s", setup.elapsed().as_secs_f64());

    let n = args.incidents;
    let mut rows = vec![
        Row::new("serve, empty database, idle", Some(50.0)),
        Row::new(
            format!("serve, {n} open incidents with timers, idle"),
            Some(200.0),
        ),
        Row::new(
            format!(
                "serve, {n} open incidents, after {} s of random GETs",
                args.read_s
            ),
            Some(200.0),
        ),
        Row::new(
            format!(
                "serve, right after {} logins ({concurrency} at a time)",
                args.logins
            ),
            Some(100.0),
        ),
        Row::new(
            format!("serve, {} logins + {} s rest", args.logins, args.rest_s),
            Some(100.0),
        ),
        Row::new(
            "baseline: old path (spawn_blocking, no pool), right after",
            None,
        ),
        Row::new(
            format!("baseline: old path, + {} s rest", args.rest_s),
            None,
        ),
        Row::new(
            format!(
                "old path + glibc mmap_threshold=4 MiB, + {} s rest",
                args.rest_s
            ),
            None,
        ),
        Row::new(
            format!("new pool path (passwords.rs), + {} s rest", args.rest_s),
            None,
        ),
    ];
    let mut notes = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        rows[0].samples.push(idle(args.rest_s).await?);
        let (loaded, read) =
            open_incidents(&incidents_url, &token, n, args.rest_s, args.read_s).await?;
        rows[1].samples.push(loaded);
        if let Some((mem, requests, errors)) = read {
            rows[2].samples.push(mem);
            notes.push(format!(
                "round {round}: {requests} GETs answered, {errors} errors"
            ));
        }
        let (after, rested, failed) =
            logins(&logins_url, args.logins, concurrency, args.rest_s).await?;
        rows[3].samples.push(after);
        rows[4].samples.push(rested);
        if failed > 0 {
            notes.push(format!("round {round}: {failed} logins failed"));
        }
        let (after, rested, failed) = baseline(HashPath::Old, None, &args).await?;
        rows[5].samples.push(after);
        rows[6].samples.push(rested);
        let tunable = "glibc.malloc.mmap_threshold=4194304";
        let (_, tuned, failed_tuned) = baseline(HashPath::Old, Some(tunable), &args).await?;
        rows[7].samples.push(tuned);
        let (_, pooled, failed_pool) = baseline(HashPath::Pool, None, &args).await?;
        rows[8].samples.push(pooled);
        if failed + failed_tuned + failed_pool > 0 {
            notes.push(format!(
                "round {round}: baseline verifications failed: {failed} / {failed_tuned} / {failed_pool}"
            ));
        }
    }

    println!(
        "| measurement (median of {} rounds) | VmRSS MiB | VmHWM MiB | target | met | per round VmRSS MiB |",
        args.rounds.max(1)
    );
    println!("|---|---|---|---|---|---|");
    for row in rows.iter().filter(|r| !r.samples.is_empty()) {
        let rss = median(row.samples.iter().map(|m| m.rss / MIB).collect());
        let hwm = median(row.samples.iter().map(|m| m.hwm / MIB).collect());
        let per_round: Vec<String> = row
            .samples
            .iter()
            .map(|m| format!("{:.1}", m.rss / MIB))
            .collect();
        let (target, met) = match row.target_mib {
            Some(t) => (
                format!("≤ {t:.0} MiB"),
                if rss <= t { "met" } else { "not met" },
            ),
            None => ("(reference)".to_string(), "—"),
        };
        println!(
            "| {} | {rss:.1} | {hwm:.1} | {target} | {met} | {} |",
            row.name,
            per_round.join(", ")
        );
    }
    println!();
    println!(
        "baseline rows: {} verifications of one hash, {concurrency} at a time, in a child \
         process of this binary (no server); VmRSS read from /proc/<pid>/status.",
        args.logins
    );
    for note in notes {
        println!("{note}");
    }
    Ok(0)
}
