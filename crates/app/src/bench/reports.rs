//! `incidencias bench reports`: the SLO reports over a large history. A fresh database
//! (SQLite, and PostgreSQL when given) gets `--incidents` closed incidents spread evenly
//! over the 24 months before December 2026, about five clock facts each (one in ten has a
//! second validation round, about 9 % of clocks breached), written by SQL set operations
//! straight into the tables the reports read (`incidents` and `clock_facts`): the
//! benchmark measures the reading, and writing a million incidents through the protocol
//! would take hours. Then, in rounds, side by side:
//!
//! - the baseline: counting the month's clocks (`COUNT(*)` over the period's index range),
//!   the least any report over them has to read;
//! - the monthly compliance report (November 2026), exactly as the API computes it: rows by
//!   clock, severity and agency, totals by clock and severity, exact percentiles;
//! - the what-if over the same month: the seed's targets against a draft (acknowledgment
//!   targets halved);
//! - and, for scale, the compliance report over all 24 months.
//!
//! Figures: medians of the rounds, the ratio to the baseline, and the database's size.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use incidencias_core::{Role, SloPolicy, UserId};
use jiff::Timestamp;
use sqlx::Executor;

use super::{PgScratch, Scratch, invalid, median};
use crate::clock::SystemClock;
use crate::service::reports::{ReportQuery, Trial};
use crate::service::{Caller, Service};
use crate::store::{Backend, Store, StoreError};

#[derive(Debug, Args)]
pub struct ReportsBench {
    /// Incidencias cerradas en la historia (cinco relojes cada una, aproximadamente).
    #[arg(long, default_value_t = 1_000_000)]
    pub incidents: u64,
    /// Rondas (se reporta la mediana).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// PostgreSQL para medir también ese motor (se crea y borra un esquema temporal).
    #[arg(long, env = "INCIDENCIAS_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Conservar la base SQLite generada (se imprime su ruta) para examinarla.
    #[arg(long)]
    pub keep: bool,
}

/// The targets of issue 13, in seconds.
const TARGET_COMPLIANCE_S: f64 = 1.0;
const TARGET_WHAT_IF_S: f64 = 2.0;

/// 2024-12-01T00:00 in Mexico City: the history's first instant.
const HISTORY_START_MS: i64 = 1_733_032_800_000;
/// 730 days: to 2026-12-01 in Mexico City.
const HISTORY_SPAN_MS: i64 = 730 * 86_400_000;

/// A target per severity as SQL over the incident's `severity`, in seconds.
fn by_severity(critical: u32, high: u32, medium: u32, low: u32) -> String {
    format!(
        "CASE severity WHEN 'critical' THEN {critical} WHEN 'high' THEN {high} \
         WHEN 'medium' THEN {medium} ELSE {low} END"
    )
}

/// The statements that fill an empty, migrated database.
fn population(incidents: u64) -> Vec<String> {
    let seed = SloPolicy::seed().targets;
    let t = |s: &incidencias_core::slo::SeverityTargets| {
        by_severity(s.critical, s.high, s.medium, s.low)
    };
    let step = HISTORY_SPAN_MS / i64::try_from(incidents.max(1)).unwrap_or(1);
    let mut out = vec![
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
         INSERT INTO agencies (id, name, acronym, email_domains, created_at) \
         SELECT i, 'Dependencia ' || CAST(i AS TEXT), 'D' || CAST(i AS TEXT), '[]', 0 FROM n"
            .to_string(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < {incidents}) \
             INSERT INTO incidents (folio, agency_id, state, severity, kind, channel, reported_at, \
                 updated_at, escalation_level, breached, breach_due_at, version, last_hash, body) \
             SELECT 'B' || CAST(i AS TEXT), (i * 7) % 40 + 1, 'closed', \
                 CASE WHEN (i * 2654435761) % 1000 < 50 THEN 'critical' \
                      WHEN (i * 2654435761) % 1000 < 300 THEN 'high' \
                      WHEN (i * 2654435761) % 1000 < 750 THEN 'medium' ELSE 'low' END, \
                 'unavailable', 'phone', {HISTORY_START_MS} + (i - 1) * {step}, \
                 {HISTORY_START_MS} + (i - 1) * {step}, 0, 0, NULL, i, '', '{{}}' FROM n"
        ),
    ];
    // (clock, round, target, start offset from the report in ms, hash multiplier, who):
    // the running time is the target × (0.05 + 1.15 v²), v pseudo-random in [0, 1): about
    // 9 % reach the target.
    let clocks = [
        ("report", 0, t(&seed.report), None, 40_503i64),
        ("ack", 0, t(&seed.ack), Some(60_000i64), 69_069),
        (
            "resolution",
            0,
            t(&seed.resolution),
            Some(60_000),
            22_695_477,
        ),
        (
            "validation",
            1,
            t(&seed.validation),
            Some(3_600_000),
            1_103_515_245,
        ),
        (
            "report_form",
            0,
            t(&seed.report_form),
            Some(3_600_000),
            134_775_813,
        ),
        (
            "validation",
            2,
            t(&seed.validation),
            Some(7_200_000),
            214_013,
        ),
    ];
    for (clock, round, target, offset, mul) in clocks {
        // One incident in ten has a second validation round.
        let only = if round == 2 {
            " WHERE version % 10 = 0"
        } else {
            ""
        };
        let (start, stop) = match offset {
            // The report clock runs from the failure to the report.
            None => ("reported_at - used".to_string(), "reported_at".to_string()),
            // The resolution clock pauses 10 minutes while CEDN validates.
            Some(o) if clock == "resolution" => (
                format!("reported_at + {o}"),
                format!("reported_at + {o} + used + 600000"),
            ),
            Some(o) => (
                format!("reported_at + {o}"),
                format!("reported_at + {o} + used"),
            ),
        };
        out.push(format!(
            "INSERT INTO clock_facts (folio, clock, round, agency_id, severity, policy_version, \
                 dismissed, target_s, started_at, accumulated_ms, running_since, stopped_at, \
                 breached_at, outcome_at, escalation_level) \
             SELECT folio, '{clock}', {round}, agency_id, severity, 1, 0, target_s, \
                 {start}, used, NULL, {stop}, \
                 CASE WHEN used >= target_s * 1000 THEN {start} + target_s * 1000 ELSE NULL END, \
                 CASE WHEN used >= target_s * 1000 THEN {start} + target_s * 1000 ELSE {stop} END, \
                 CASE WHEN used >= target_s * 1000 THEN 1 ELSE 0 END \
             FROM (SELECT folio, agency_id, severity, reported_at, version, target_s, \
                          target_s * (50 + 1150 * ((version * {mul}) % 1000) * ((version * {mul}) % 1000) / 1000000) AS used \
                   FROM (SELECT folio, agency_id, severity, reported_at, version, {target} AS target_s \
                         FROM incidents{only}) a) b"
        ));
    }
    out.push("ANALYZE".to_string());
    out
}

/// What one backend measured, in seconds (medians) and bytes.
struct Figures {
    backend: &'static str,
    clocks: i64,
    month_clocks: i64,
    bytes: i64,
    fill_s: f64,
    baseline_s: f64,
    compliance_s: f64,
    what_if_s: f64,
    all_months_s: f64,
}

fn admin() -> Caller {
    Caller {
        id: UserId(0),
        name: "bench".into(),
        role: Role::Admin,
        agency_id: None,
    }
}

fn month() -> ReportQuery {
    ReportQuery {
        from: Some("2026-11-01".into()),
        to: Some("2026-11-30".into()),
        ..ReportQuery::default()
    }
}

async fn measure(
    url: &str,
    backend: &'static str,
    args: &ReportsBench,
    size: impl AsyncFnOnce(&Store) -> Result<i64, StoreError>,
) -> Result<Figures, StoreError> {
    let store = Store::open(url).await?;
    eprintln!("{backend}: escribiendo {} incidencias...", args.incidents);
    let started = Instant::now();
    let mut conn = store.pool().acquire().await.map_err(StoreError::db)?;
    for sql in population(args.incidents) {
        conn.execute(sqlx::AssertSqlSafe(sql))
            .await
            .map_err(StoreError::db)?;
    }
    drop(conn);
    let fill_s = started.elapsed().as_secs_f64();
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let caller = admin();
    let now = service.now();
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(store.pool())
                .await
                .map_err(StoreError::db)
        }
    };
    let clocks = count("SELECT COUNT(*) FROM clock_facts").await?;
    // November 2026 in Mexico City, as the report reads `from=2026-11-01&to=2026-11-30`.
    let mid_november: Timestamp = "2026-11-15T12:00:00Z".parse().map_err(invalid)?;
    let (from, to) = crate::service::reports::current_month(mid_november);
    let (from, to) = (from.as_millisecond(), to.as_millisecond());
    let baseline_sql = format!(
        "SELECT COUNT(*) FROM clock_facts f WHERE f.dismissed = 0 AND f.outcome_at >= {from} \
         AND f.outcome_at < {to}"
    );
    let month_clocks: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(baseline_sql.clone()))
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::db)?;
    let mut draft = SloPolicy::seed().targets;
    for s in incidencias_core::Severity::ALL {
        let half = draft.ack.get(*s) / 2;
        draft.ack.set(*s, half);
    }
    let all = ReportQuery {
        from: Some("2024-12-01".into()),
        to: Some("2026-11-30".into()),
        ..ReportQuery::default()
    };
    let (mut base, mut comp, mut what, mut whole) = (vec![], vec![], vec![], vec![]);
    for round in 1..=args.rounds.max(1) {
        eprintln!("{backend}: ronda {round}/{}", args.rounds);
        let t = Instant::now();
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(baseline_sql.clone()))
            .fetch_one(store.pool())
            .await
            .map_err(StoreError::db)?;
        base.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let doc = service
            .compliance_report(&caller, &month(), now)
            .await
            .map_err(invalid)?;
        comp.push(t.elapsed().as_secs_f64());
        let measured: i64 = doc.totals.iter().map(|r| r.measured).sum();
        if measured != n {
            return Err(invalid(format!(
                "el reporte midió {measured} relojes y el conteo da {n}"
            )));
        }
        let t = Instant::now();
        service
            .what_if(&caller, &month(), Trial::InForce, Trial::Draft(draft), now)
            .await
            .map_err(invalid)?;
        what.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        service
            .compliance_report(&caller, &all, now)
            .await
            .map_err(invalid)?;
        whole.push(t.elapsed().as_secs_f64());
    }
    let bytes = size(&store).await?;
    store.close().await;
    Ok(Figures {
        backend,
        clocks,
        month_clocks,
        bytes,
        fill_s,
        baseline_s: median(base),
        compliance_s: median(comp),
        what_if_s: median(what),
        all_months_s: median(whole),
    })
}

async fn sqlite_figures(args: &ReportsBench) -> Result<Figures, StoreError> {
    let scratch = Scratch::new("reports")?;
    let url = scratch.url();
    if args.keep {
        eprintln!("la base se conserva: {url}");
        std::mem::forget(scratch);
    }
    let path = url.trim_start_matches("sqlite://").to_string();
    measure(&url, "SQLite", args, async move |store: &Store| {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(store.pool())
            .await;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(i64::try_from(size).unwrap_or(i64::MAX))
    })
    .await
}

async fn postgres_figures(base: &str, args: &ReportsBench) -> Result<Figures, StoreError> {
    let schema = PgScratch::new(base).await?;
    let result = measure(&schema.url, "PostgreSQL", args, async |store: &Store| {
        if store.backend() != Backend::Postgres {
            return Ok(0);
        }
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(pg_total_relation_size('clock_facts') + pg_total_relation_size('incidents') AS BIGINT)",
        )
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::db)
    })
    .await;
    schema.drop().await;
    result
}

pub async fn reports_bench(args: ReportsBench) -> Result<i32, StoreError> {
    let mut all = vec![sqlite_figures(&args).await?];
    if let Some(pg) = &args.postgres_url {
        all.push(postgres_figures(pg, &args).await?);
    }
    println!(
        "{} closed incidents over 24 months; medians of {} rounds, seconds",
        args.incidents, args.rounds
    );
    println!();
    println!(
        "| backend | clocks | clocks in Nov 2026 | database | fill | baseline COUNT(*) | compliance Nov (≤ {TARGET_COMPLIANCE_S} s) | × baseline | what-if Nov (≤ {TARGET_WHAT_IF_S} s) | compliance 24 months |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut ok = true;
    for f in &all {
        ok &= f.compliance_s <= TARGET_COMPLIANCE_S && f.what_if_s <= TARGET_WHAT_IF_S;
        println!(
            "| {} | {} | {} | {:.0} MB | {:.0} s | {:.3} | {:.3} | {:.1}× | {:.3} | {:.3} |",
            f.backend,
            f.clocks,
            f.month_clocks,
            f.bytes as f64 / 1e6,
            f.fill_s,
            f.baseline_s,
            f.compliance_s,
            f.compliance_s / f.baseline_s.max(1e-9),
            f.what_if_s,
            f.all_months_s,
        );
    }
    println!();
    println!("targets {}", if ok { "met" } else { "NOT met" });
    Ok(0)
}
