//! The record of the folio sequence as audited and exported: the reserved blocks
//! (`folio_blocks`), the voids (`folio_voids`), and `audit verify`'s check that every
//! number from 1 to the highest used is an incident or a void (`folios.rs` says how the
//! blocks are handed out and when numbers become void).

use std::collections::{BTreeMap, BTreeSet};

use incidencias_core::Folio;
use sqlx::{AnyConnection, Row};

use super::StoreError;
use super::folios::{GRACE_MS, folio_of};
use super::transfer::Problem;

/// One row of `folio_voids`, as exported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolioVoid {
    pub folio: String,
    pub year: i64,
    pub number: i64,
    pub voided_at: i64,
    pub reason: String,
}

/// One row of `folio_blocks`, as exported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolioBlock {
    pub year: i64,
    pub first_number: i64,
    pub last_number: i64,
    pub owner: String,
    pub reserved_at: i64,
    pub lease_until: i64,
    pub settled: i64,
}

pub(super) async fn fetch_voids(conn: &mut AnyConnection) -> Result<Vec<FolioVoid>, StoreError> {
    let rows = sqlx::query(
        "SELECT folio, year, number, voided_at, reason FROM folio_voids ORDER BY year, number",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            Ok(FolioVoid {
                folio: r.try_get("folio").map_err(StoreError::db)?,
                year: r.try_get("year").map_err(StoreError::db)?,
                number: r.try_get("number").map_err(StoreError::db)?,
                voided_at: r.try_get("voided_at").map_err(StoreError::db)?,
                reason: r.try_get("reason").map_err(StoreError::db)?,
            })
        })
        .collect()
}

pub(super) async fn fetch_blocks(conn: &mut AnyConnection) -> Result<Vec<FolioBlock>, StoreError> {
    // `settled` is INTEGER (INT4 on PostgreSQL): read as BIGINT on both.
    let rows = sqlx::query(
        "SELECT year, first_number, last_number, owner, reserved_at, lease_until, \
         CAST(settled AS BIGINT) AS settled FROM folio_blocks ORDER BY year, first_number",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    rows.iter()
        .map(|r| {
            Ok(FolioBlock {
                year: r.try_get("year").map_err(StoreError::db)?,
                first_number: r.try_get("first_number").map_err(StoreError::db)?,
                last_number: r.try_get("last_number").map_err(StoreError::db)?,
                owner: r.try_get("owner").map_err(StoreError::db)?,
                reserved_at: r.try_get("reserved_at").map_err(StoreError::db)?,
                lease_until: r.try_get("lease_until").map_err(StoreError::db)?,
                settled: r.try_get("settled").map_err(StoreError::db)?,
            })
        })
        .collect()
}

pub(super) async fn insert_void_row(
    conn: &mut AnyConnection,
    v: &FolioVoid,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO folio_voids (folio, year, number, voided_at, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(v.folio.clone())
    .bind(v.year)
    .bind(v.number)
    .bind(v.voided_at)
    .bind(v.reason.clone())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

pub(super) async fn insert_block_row(
    conn: &mut AnyConnection,
    b: &FolioBlock,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO folio_blocks (year, first_number, last_number, owner, reserved_at, \
         lease_until, settled) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(b.year)
    .bind(b.first_number)
    .bind(b.last_number)
    .bind(b.owner.clone())
    .bind(b.reserved_at)
    .bind(b.lease_until)
    .bind(b.settled)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

/// `audit verify`'s folio check: per year, every number from 1 to the highest used (by an
/// incident or a void) must be exactly one of the two. A number of a block whose owner may
/// still hand it out (lease plus GRACE not over at `now`) is not a gap yet.
pub(super) fn folio_problems(
    incidents: &[String],
    voids: &[FolioVoid],
    blocks: &[FolioBlock],
    now: i64,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Per year: numbers that are incidents, numbers that are voids.
    let mut years: BTreeMap<i64, (BTreeSet<i64>, BTreeSet<i64>)> = BTreeMap::new();
    for text in incidents {
        // A folio that does not parse is reported by the incident checks.
        if let Ok(f) = Folio::parse(text) {
            let entry = years.entry(f.year().into()).or_default();
            entry.0.insert(f.number().into());
        }
    }
    for v in voids {
        if folio_of(v.year, v.number)
            .map(|f| f.to_string())
            .ok()
            .as_deref()
            != Some(&v.folio)
        {
            problems.push(Problem {
                folio: v.folio.clone(),
                seq: None,
                what: format!(
                    "anulación con año o número que no coinciden ({}, {})",
                    v.year, v.number
                ),
            });
            continue;
        }
        years.entry(v.year).or_default().1.insert(v.number);
    }
    let pending = |year: i64, n: i64| {
        blocks.iter().any(|b| {
            b.year == year
                && b.settled == 0
                && (b.first_number..=b.last_number).contains(&n)
                && now <= b.lease_until + GRACE_MS
        })
    };
    for (year, (used, voided)) in &years {
        let highest = used.iter().chain(voided).max().copied().unwrap_or(0);
        for n in 1..=highest {
            let folio =
                folio_of(*year, n).map_or_else(|_| format!("{year}-{n}"), |f| f.to_string());
            match (used.contains(&n), voided.contains(&n)) {
                (true, true) => problems.push(Problem {
                    folio,
                    seq: None,
                    what: "es una incidencia y también está registrado como anulado".into(),
                }),
                (false, false) if !pending(*year, n) => problems.push(Problem {
                    folio,
                    seq: None,
                    what: "falta: ni incidencia ni anulación registrada".into(),
                }),
                _ => {}
            }
        }
    }
    problems
}

/// After an import: the counters are never behind the voids and reserved blocks, and
/// numbers under a counter that no block covers (a version 1 file, from before blocks
/// were recorded) get one expired block, so the next start records the unused ones void,
/// as migration 0002 does for a database.
pub(super) async fn after_import(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO folio_counters (year, last_number) \
         SELECT year, MAX(last_number) FROM folio_blocks GROUP BY year \
         ON CONFLICT (year) DO UPDATE SET last_number = \
         CASE WHEN excluded.last_number > folio_counters.last_number \
         THEN excluded.last_number ELSE folio_counters.last_number END",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    sqlx::query(
        "INSERT INTO folio_counters (year, last_number) \
         SELECT year, MAX(number) FROM folio_voids GROUP BY year \
         ON CONFLICT (year) DO UPDATE SET last_number = \
         CASE WHEN excluded.last_number > folio_counters.last_number \
         THEN excluded.last_number ELSE folio_counters.last_number END",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    sqlx::query(
        "INSERT INTO folio_blocks (year, first_number, last_number, owner, reserved_at, \
         lease_until) \
         SELECT c.year, COALESCE(MAX(b.last_number), 0) + 1, c.last_number, \
         'importado sin bloque', 0, 0 \
         FROM folio_counters c LEFT JOIN folio_blocks b ON b.year = c.year \
         GROUP BY c.year, c.last_number \
         HAVING COALESCE(MAX(b.last_number), 0) < c.last_number",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}
