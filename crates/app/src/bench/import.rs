//! `incidencias bench import`: the CSV import's preview of a 10,000-row file of users (one
//! long chain of superiors, the worst case for the loop check) and of procedures, against
//! the 2 s target of issue 12; then applying them, and previewing them again (every row
//! unchanged, compared against a catalogue that now holds them all).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::{Scratch, bench_catalogue, invalid, median};
use crate::service::{Caller, ImportKind, Service};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct ImportBench {
    /// Rows per file.
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Rounds of each preview (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// The target for a 10,000-row preview (issue 12).
const TARGET: Duration = Duration::from_secs(2);

fn users_file(rows: usize, acronym: &str, domain: &str) -> String {
    let mut out = String::from("correo;nombre;rol;dependencia;superior\n");
    for i in 0..rows {
        let boss = match i {
            0 => String::new(),
            _ => format!("u{}@{domain}", i - 1),
        };
        out.push_str(&format!(
            "u{i}@{domain};Persona Número {i} Peña;agency;{acronym};{boss}\n"
        ));
    }
    out
}

fn procedures_file(rows: usize, acronym: &str, domain: &str) -> String {
    let mut out = String::from("homoclave,nombre,dependencia,url,responsable\n");
    for i in 0..rows {
        out.push_str(&format!(
            "{acronym}-{:02}-{:03},Trámite número {i},{acronym},https://www.gob.mx/t/{i},u{i}@{domain}\n",
            10 + i / 1000,
            i % 1000
        ));
    }
    out
}

async fn timed_preview(
    service: &Service,
    kind: ImportKind,
    file: &str,
    rounds: usize,
) -> Result<(f64, String), StoreError> {
    let operator = Caller::operator();
    let mut ms = Vec::new();
    let mut counts = String::new();
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        let p = service
            .preview_import(&operator, kind, file.as_bytes())
            .await
            .map_err(invalid)?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        counts = format!(
            "nuevas {}, con cambios {}, sin cambios {}, errores {}",
            p.counts.new, p.counts.changed, p.counts.unchanged, p.counts.errors
        );
    }
    Ok((median(ms), counts))
}

pub async fn import_bench(args: ImportBench) -> Result<i32, StoreError> {
    let scratch = Scratch::new("import")?;
    let store = Store::open(&scratch.url()).await?;
    let service = Service::new(store.clone(), Arc::new(crate::clock::SystemClock));
    let catalogue = bench_catalogue(&service).await?;
    let acronym = catalogue.agency.acronym.clone();
    let domain = catalogue.agency.email_domains[0].clone();
    let users = users_file(args.rows, &acronym, &domain);
    let procedures = procedures_file(args.rows, &acronym, &domain);
    let operator = Caller::operator();
    let mut within = true;
    println!("Importación CSV, {} filas por archivo (SQLite)", args.rows);
    for (kind, file) in [
        (ImportKind::Users, &users),
        (ImportKind::Procedures, &procedures),
    ] {
        let (ms, counts) = timed_preview(&service, kind, file, args.rounds).await?;
        within &= ms <= TARGET.as_secs_f64() * 1000.0;
        println!("  {kind:?}: vista previa {ms:.0} ms (mediana) — {counts}");
        let start = Instant::now();
        let applied = service
            .apply_import(&operator, kind, file.as_bytes())
            .await
            .map_err(invalid)?;
        println!(
            "  {kind:?}: aplicación {:.0} ms (aplicada: {})",
            start.elapsed().as_secs_f64() * 1000.0,
            applied.applied
        );
        let (ms, counts) = timed_preview(&service, kind, file, args.rounds).await?;
        within &= ms <= TARGET.as_secs_f64() * 1000.0;
        println!("  {kind:?}: vista previa de nuevo {ms:.0} ms — {counts}");
    }
    println!(
        "Objetivo: vista previa ≤ {} s: {}",
        TARGET.as_secs(),
        if within { "cumplido" } else { "NO cumplido" }
    );
    store.close().await;
    Ok(if within { 0 } else { 1 })
}
