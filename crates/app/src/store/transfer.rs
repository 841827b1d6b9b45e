//! Audit verification, backup, export and import.

use std::io::{BufRead, Write};
use std::path::Path;

use incidencias_core::{Folio, Incident, SloPolicy};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::admin::{AdminChangeRow, fetch_admin_changes, insert_admin_change_row};
use super::catalog::{
    fetch_agencies, fetch_policies, fetch_procedures, fetch_users, insert_policy,
};
use super::chain::GENESIS;
use super::incidents::{
    ProjectionRow, StoredEvent, StoredIncident, fetch_events, fetch_folios, push_new_incident,
};
use super::script::Script;
use super::voids::{
    FolioBlock, FolioVoid, after_import, fetch_blocks, fetch_voids, folio_problems,
    insert_block_row, insert_void_row,
};
use super::{Agency, Backend, Procedure, Store, StoreError, User};

/// One finding of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub folio: String,
    /// The first event whose link is broken; `None` for a projection-level finding.
    pub seq: Option<i64>,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub incidents: u64,
    pub events: u64,
    /// Folios recorded void (reserved, never an incident).
    pub voids: u64,
    /// One per incident at most: the first broken link of its chain; then one per folio
    /// number missing from the sequence (neither an incident nor a void).
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one incident's chain; returns the first broken link.
pub fn verify_chain(folio: &str, events: &[StoredEvent]) -> Option<Problem> {
    let mut prev = GENESIS.to_string();
    for (expected, e) in (1i64..).zip(events) {
        let problem = |what: &str| {
            Some(Problem {
                folio: folio.to_string(),
                seq: Some(e.seq),
                what: what.to_string(),
            })
        };
        if e.seq != expected {
            return problem("falta un evento o la secuencia está alterada");
        }
        if e.prev_hash != prev {
            return problem("el hash previo no coincide con el evento anterior");
        }
        if e.fields().hash() != e.hash {
            return problem("el contenido del evento no coincide con su hash");
        }
        prev = e.hash.clone();
    }
    None
}

/// One line of an export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        exported_at: Timestamp,
    },
    Agency(Agency),
    User {
        #[serde(flatten)]
        user: User,
        password_hash: Option<String>,
    },
    Procedure(Procedure),
    Policy(SloPolicy),
    /// A reserved block of folio numbers (version 2).
    FolioBlock(FolioBlock),
    /// A folio recorded void (version 2).
    Void(FolioVoid),
    /// A recorded catalogue change (version 3).
    AdminChange(AdminChangeRow),
    FolioCounter {
        year: i64,
        last_number: i64,
    },
    Event(StoredEvent),
    /// The last line: what the file holds, so a cut file is refused.
    End {
        incidents: u64,
        events: u64,
    },
}

/// What `backup` says for PostgreSQL, whose own tool does it better.
pub const POSTGRES_BACKUP_HINT: &str = "para PostgreSQL use pg_dump (por ejemplo: pg_dump \
     --format=custom --file=respaldo.dump URL); incidencias backup sólo copia bases SQLite";

const EXPORT_FORMAT: &str = "incidencias-export";
/// 2 added the folio blocks and voids, 3 the record of catalogue changes; older files
/// (without them) still import.
const EXPORT_VERSION: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub agencies: u64,
    pub users: u64,
    pub procedures: u64,
    pub policies: u64,
    pub incidents: u64,
    pub events: u64,
}

impl Store {
    /// Walks every incident's chain and compares each projection (every column and the
    /// procedure links) with a replay of its events, all in one read snapshot so that
    /// appends running meanwhile cannot look like tampering.
    ///
    /// Then the folio sequence: every number of every year from 1 to the highest used is
    /// an incident or a recorded void (`folios.rs`), so removing a whole incident shows as
    /// a gap, unless its number is also recorded void.
    ///
    /// Limits, by design of per-incident chains without an external anchor: removing the
    /// last events of an incident *and* rewriting its projection to match is not
    /// detectable here.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut tx = self.snapshot().await?;
        let mut report = VerifyReport::default();
        let folios = fetch_folios(&mut tx).await?;
        let voids = fetch_voids(&mut tx).await?;
        let blocks = fetch_blocks(&mut tx).await?;
        report.voids = voids.len() as u64;
        let gaps = folio_problems(&folios, &voids, &blocks, Timestamp::now().as_millisecond());
        for folio in folios {
            report.incidents += 1;
            let events = fetch_events(&mut tx, &folio).await?;
            report.events += events.len() as u64;
            if Folio::parse(&folio).map(|f| f.to_string()).ok().as_deref() != Some(folio.as_str()) {
                report.problems.push(Problem {
                    folio,
                    seq: None,
                    what: "folio con formato no válido".into(),
                });
                continue;
            }
            if let Some(p) = verify_chain(&folio, &events) {
                report.problems.push(p);
                continue;
            }
            if let Some(what) = projection_problem(&mut tx, &folio, &events).await? {
                report.problems.push(Problem {
                    folio,
                    seq: None,
                    what,
                });
            }
        }
        report.problems.extend(gaps);
        let _ = tx.rollback().await;
        Ok(report)
    }

    /// An online copy of the database to `target` (SQLite: `VACUUM INTO`, consistent while
    /// the service runs), fsynced before it is reported written. PostgreSQL backups are
    /// `pg_dump`'s job.
    pub async fn backup(&self, target: &Path) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Invalid(POSTGRES_BACKUP_HINT.into()));
        }
        if target.exists() {
            return Err(StoreError::Invalid(format!(
                "{} ya existe; elija otro nombre para no sobrescribirlo",
                target.display()
            )));
        }
        let path = target.to_str().ok_or_else(|| {
            StoreError::Invalid("la ruta del respaldo debe ser texto UTF-8".into())
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::Invalid(format!("no se pudo escribir {path}: {e}")))?;
        // Readable by its owner only: it holds password hashes.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600))?;
        }
        // VACUUM INTO does not fsync its output; a backup must survive a power cut too.
        sync_file_and_dir(target)?;
        Ok(())
    }

    /// Writes the catalogue, the policies, the folio counters, blocks and voids and every
    /// event as JSON
    /// lines, from one read snapshot, ending with a line that counts them.
    pub async fn export(&self, out: &mut dyn Write, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.snapshot().await?;
        let mut lines = 0u64;
        let mut put = |line: &Line| -> Result<(), StoreError> {
            serde_json::to_writer(&mut *out, line).map_err(StoreError::json)?;
            out.write_all(b"\n")?;
            lines += 1;
            Ok(())
        };
        put(&Line::Header {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: now,
        })?;
        for a in fetch_agencies(&mut tx).await? {
            put(&Line::Agency(a))?;
        }
        for u in fetch_users(&mut tx).await? {
            let password_hash = u.password_hash.clone();
            put(&Line::User {
                user: u,
                password_hash,
            })?;
        }
        for p in fetch_procedures(&mut tx).await? {
            put(&Line::Procedure(p))?;
        }
        let mut policies = fetch_policies(&mut tx).await?;
        policies.reverse();
        for p in policies {
            put(&Line::Policy(p))?;
        }
        let counters = sqlx::query("SELECT year, last_number FROM folio_counters ORDER BY year")
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db)?;
        for r in &counters {
            put(&Line::FolioCounter {
                year: r.try_get("year").map_err(StoreError::db)?,
                last_number: r.try_get("last_number").map_err(StoreError::db)?,
            })?;
        }
        for b in fetch_blocks(&mut tx).await? {
            put(&Line::FolioBlock(b))?;
        }
        for v in fetch_voids(&mut tx).await? {
            put(&Line::Void(v))?;
        }
        for c in fetch_admin_changes(&mut tx).await? {
            put(&Line::AdminChange(c))?;
        }
        let (mut incidents, mut events) = (0u64, 0u64);
        for folio in fetch_folios(&mut tx).await? {
            incidents += 1;
            for e in fetch_events(&mut tx, &folio).await? {
                events += 1;
                put(&Line::Event(e))?;
            }
        }
        put(&Line::End { incidents, events })?;
        out.flush()?;
        let _ = tx.rollback().await;
        Ok(lines)
    }

    /// Loads an export into this database, which must be empty (fresh from `migrate`).
    /// Every chain is verified on the way in and every projection rebuilt by replay; one
    /// transaction, so a bad line leaves the database as it was.
    pub async fn import(
        &self,
        input: &mut dyn BufRead,
        now: Timestamp,
    ) -> Result<ImportSummary, StoreError> {
        let lines = parse_export(input)?;
        let backend = self.backend;
        self.write(move |conn| {
            Box::pin(async move { import_lines(conn, lines, backend, now).await })
        })
        .await
    }
}

fn parse_export(input: &mut dyn BufRead) -> Result<Vec<Line>, StoreError> {
    let mut lines = Vec::new();
    let mut buf = String::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        if input.read_line(&mut buf)? == 0 {
            break;
        }
        number += 1;
        if buf.trim().is_empty() {
            continue;
        }
        if matches!(lines.last(), Some(Line::End { .. })) {
            return Err(StoreError::Invalid(format!(
                "línea {number}: hay contenido después de la línea final"
            )));
        }
        let line: Line = serde_json::from_str(buf.trim_end()).map_err(|e| {
            StoreError::Invalid(format!("línea {number} del archivo de exportación: {e}"))
        })?;
        if lines.is_empty() {
            match &line {
                Line::Header {
                    format, version, ..
                } if format == EXPORT_FORMAT && (1..=EXPORT_VERSION).contains(version) => {}
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "el archivo no es una exportación de incidencias (versiones 1 a \
                         {EXPORT_VERSION})"
                    )));
                }
            }
        }
        lines.push(line);
    }
    let (incidents, events) = match lines.last() {
        Some(Line::End { incidents, events }) => (*incidents, *events),
        _ => {
            return Err(StoreError::Invalid(
                "el archivo está incompleto: falta la línea final (¿se cortó la copia?)".into(),
            ));
        }
    };
    let found_events = lines.iter().filter(|l| matches!(l, Line::Event(_))).count() as u64;
    let mut folios: Vec<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Event(e) => Some(e.folio.as_str()),
            _ => None,
        })
        .collect();
    folios.dedup();
    if found_events != events || folios.len() as u64 != incidents {
        return Err(StoreError::Invalid(format!(
            "el archivo dice contener {incidents} incidencias y {events} eventos, pero tiene \
             {} y {found_events}",
            folios.len()
        )));
    }
    Ok(lines)
}

async fn count(conn: &mut AnyConnection, table: &str) -> Result<i64, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db)
}

async fn import_lines(
    conn: &mut AnyConnection,
    lines: Vec<Line>,
    backend: Backend,
    now: Timestamp,
) -> Result<ImportSummary, StoreError> {
    for table in [
        "agencies",
        "users",
        "procedures",
        "incident_events",
        "incidents",
        "folio_voids",
        "admin_changes",
    ] {
        if count(conn, table).await? > 0 {
            return Err(StoreError::Invalid(format!(
                "la base de datos de destino no está vacía (tabla {table}); importe en una base nueva"
            )));
        }
    }
    // The policies table only holds the seed a fresh database gets; the export's replace it.
    sqlx::query("DELETE FROM slo_policies")
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let mut summary = ImportSummary::default();
    let mut chain: Vec<StoredEvent> = Vec::new();
    for line in lines {
        match line {
            Line::Header { .. } => {}
            Line::Agency(a) => {
                summary.agencies += 1;
                sqlx::query(
                    "INSERT INTO agencies (id, name, acronym, email_domains, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(a.id.0)
                .bind(a.name)
                .bind(a.acronym)
                .bind(serde_json::to_string(&a.email_domains).map_err(StoreError::json)?)
                .bind(i64::from(a.active))
                .bind(a.created_at.as_millisecond())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
            }
            Line::User {
                user: u,
                password_hash,
            } => {
                summary.users += 1;
                sqlx::query(
                    "INSERT INTO users (id, email, name, role, agency_id, reports_to, \
                     password_hash, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(u.id.0)
                .bind(u.email.as_str().to_string())
                .bind(u.name)
                .bind(u.role.as_str())
                .bind(u.agency_id.map(|a| a.0))
                .bind(u.reports_to.map(|r| r.0))
                .bind(password_hash)
                .bind(i64::from(u.active))
                .bind(u.created_at.as_millisecond())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
            }
            Line::Procedure(p) => {
                summary.procedures += 1;
                sqlx::query(
                    "INSERT INTO procedures (id, homoclave, name, agency_id, url, responsible_id, \
                     active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(p.id.0)
                .bind(p.homoclave.as_str().to_string())
                .bind(p.name)
                .bind(p.agency_id.0)
                .bind(p.url)
                .bind(p.responsible_id.0)
                .bind(i64::from(p.active))
                .bind(p.created_at.as_millisecond())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
            }
            Line::Policy(p) => {
                summary.policies += 1;
                insert_policy(conn, &p, None, now).await?;
            }
            Line::FolioCounter { year, last_number } => {
                sqlx::query("INSERT INTO folio_counters (year, last_number) VALUES ($1, $2)")
                    .bind(year)
                    .bind(last_number)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
            }
            Line::FolioBlock(b) => insert_block_row(conn, &b).await?,
            Line::Void(v) => insert_void_row(conn, &v).await?,
            Line::AdminChange(c) => insert_admin_change_row(conn, &c).await?,
            Line::Event(e) => {
                if chain.last().is_some_and(|last| last.folio != e.folio) {
                    import_incident(conn, std::mem::take(&mut chain), now, &mut summary).await?;
                }
                chain.push(e);
            }
            Line::End { .. } => {}
        }
    }
    if !chain.is_empty() {
        import_incident(conn, chain, now, &mut summary).await?;
    }
    // Counters never behind the folios present: the next report must get a new number
    // even if the file's counter lines were older than its events.
    sqlx::query(
        "INSERT INTO folio_counters (year, last_number) \
         SELECT CAST(SUBSTR(folio, 5, 4) AS BIGINT), MAX(CAST(SUBSTR(folio, 10, 6) AS BIGINT)) \
         FROM incidents GROUP BY CAST(SUBSTR(folio, 5, 4) AS BIGINT) \
         ON CONFLICT (year) DO UPDATE SET last_number = \
         CASE WHEN excluded.last_number > folio_counters.last_number \
         THEN excluded.last_number ELSE folio_counters.last_number END",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    after_import(conn).await?;
    if backend == Backend::Postgres {
        // Explicit ids do not advance identity sequences.
        for table in ["agencies", "users", "procedures", "admin_changes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        }
    }
    Ok(summary)
}

async fn import_incident(
    conn: &mut AnyConnection,
    chain: Vec<StoredEvent>,
    now: Timestamp,
    summary: &mut ImportSummary,
) -> Result<(), StoreError> {
    let folio_text = chain.first().map(|e| e.folio.clone()).unwrap_or_default();
    if let Some(p) = verify_chain(&folio_text, &chain) {
        return Err(StoreError::Invalid(format!(
            "la cadena de {} se rompe en el evento {}: {}",
            p.folio,
            p.seq.unwrap_or(0),
            p.what
        )));
    }
    let folio = Folio::parse(&folio_text).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if folio.to_string() != folio_text {
        return Err(StoreError::Invalid(format!(
            "el folio «{folio_text}» no está escrito en su forma canónica {folio}"
        )));
    }
    let events: Vec<_> = chain
        .iter()
        .map(StoredEvent::event)
        .collect::<Result<_, _>>()?;
    let incident = Incident::replay(&events).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if incident.folio != folio {
        return Err(StoreError::Invalid(format!(
            "los eventos de {folio_text} dicen pertenecer a {}",
            incident.folio
        )));
    }
    let last_hash = chain.last().map_or(GENESIS.to_string(), |e| e.hash.clone());
    let updated_at = chain
        .last()
        .and_then(|e| Timestamp::from_millisecond(e.at).ok())
        .unwrap_or(now);
    let stored = StoredIncident {
        incident,
        last_hash,
    };
    let mut script = Script::new();
    push_new_incident(&mut script, &stored, &chain, &events, updated_at)?;
    script.run(conn).await.map_err(StoreError::db)?;
    summary.incidents += 1;
    summary.events += chain.len() as u64;
    Ok(())
}

/// What is wrong with the projection of a chain that verified, if anything.
async fn projection_problem(
    conn: &mut AnyConnection,
    folio: &str,
    events: &[StoredEvent],
) -> Result<Option<String>, StoreError> {
    let Some(stored) = ProjectionRow::fetch(conn, folio).await? else {
        return Ok(Some("hay eventos pero no hay proyección".into()));
    };
    let tail = events.last();
    if tail.map(|e| e.seq) != Some(stored.version)
        || tail.map(|e| e.hash.as_str()) != Some(stored.last_hash.as_str())
    {
        return Ok(Some(format!(
            "la proyección dice {} eventos pero la cadena termina en {} \
             (¿eventos borrados al final?)",
            stored.version,
            tail.map_or(0, |e| e.seq)
        )));
    }
    let decoded: Result<Vec<_>, _> = events.iter().map(StoredEvent::event).collect();
    let (replayed, expected_facts) = match decoded.map(|ev| incidencias_core::facts::replay(&ev)) {
        Ok(Ok(replay)) => replay,
        Ok(Err(e)) => return Ok(Some(format!("el historial no se puede reproducir: {e}"))),
        Err(e) => return Ok(Some(format!("un evento no se puede leer: {e}"))),
    };
    let updated_at =
        Timestamp::from_millisecond(stored.updated_at).unwrap_or(Timestamp::UNIX_EPOCH);
    let expected = ProjectionRow::of(
        &StoredIncident {
            incident: replayed.clone(),
            last_hash: stored.last_hash.clone(),
        },
        updated_at,
    )?;
    if expected != stored {
        return Ok(Some(
            "la proyección no coincide con la reproducción de sus eventos".into(),
        ));
    }
    let links = sqlx::query(
        "SELECT procedure_id FROM incident_procedures WHERE folio = $1 ORDER BY procedure_id",
    )
    .bind(folio.to_string())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let mut linked = links
        .iter()
        .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::db))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wanted: Vec<i64> = replayed.procedure_ids.iter().map(|p| p.0).collect();
    linked.sort_unstable();
    wanted.sort_unstable();
    if linked != wanted {
        return Ok(Some(
            "los trámites vinculados no coinciden con los del reporte".into(),
        ));
    }
    let stored_facts = match super::facts::fetch_facts(conn, folio).await {
        Ok(f) => f,
        Err(StoreError::Corrupt(what)) => return Ok(Some(what)),
        Err(e) => return Err(e),
    };
    Ok(super::facts::facts_problem(&stored_facts, &expected_facts))
}

/// fsync of a new file and of its folder (so its directory entry survives too).
pub(super) fn sync_file_and_dir(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)?.sync_all()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
