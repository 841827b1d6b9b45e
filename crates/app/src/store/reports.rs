//! The SLO reports' queries over the clock fact table (`facts.rs`): compliance with exact
//! nearest-rank percentiles (the database groups, the percentiles are taken here from each
//! group's running times), outcome counts for the error budget, the what-if, the lists and
//! the breached clocks. The same SQL on SQLite and PostgreSQL.
//!
//! A clock is measured in the period in which its outcome became known (`outcome_at`: the
//! breach, or else the stop), once; clocks of dismissed reports are not measured. The time
//! used is its running time, up to `now` for a breached clock still running.

use incidencias_core::slo::parse_clock_name;
use incidencias_core::{AgencyId, ClockId, ClockName, ProcedureId, Severity};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::catalog::ts;
use super::script::{Value, bind};
use super::{Store, StoreError};

/// Which clocks a report reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFilter {
    /// Outcomes from this instant (inclusive).
    pub from: Timestamp,
    /// Outcomes before this instant.
    pub to: Timestamp,
    /// The instant the running time of a clock still running is taken at.
    pub now: Timestamp,
    pub clock: Option<ClockName>,
    pub severity: Option<Severity>,
    pub agency_id: Option<AgencyId>,
    pub procedure_id: Option<ProcedureId>,
}

impl ReportFilter {
    /// The WHERE clause (parameters from `$1`) and its values. `$1` is always `now`.
    fn clause(&self) -> (String, Vec<Value>) {
        self.clause_on("f.outcome_at")
    }

    /// [`ReportFilter::clause`] with the period on `column` instead of the outcome.
    fn clause_on(&self, column: &str) -> (String, Vec<Value>) {
        let mut values: Vec<Value> = vec![
            self.now.as_millisecond().into(),
            self.from.as_millisecond().into(),
            self.to.as_millisecond().into(),
        ];
        let mut sql = format!("f.dismissed = 0 AND {column} >= $2 AND {column} < $3");
        let mut add = |cond: &str, v: Value| {
            values.push(v);
            sql.push_str(&format!(" AND {cond} ${}", values.len()));
        };
        if let Some(c) = self.clock {
            add("f.clock =", c.as_str().into());
        }
        if let Some(s) = self.severity {
            add("f.severity =", s.as_str().into());
        }
        if let Some(a) = self.agency_id {
            add("f.agency_id =", a.0.into());
        }
        if let Some(p) = self.procedure_id {
            add(
                "f.folio IN (SELECT folio FROM incident_procedures WHERE procedure_id =",
                p.0.into(),
            );
            sql.push(')');
        }
        (sql, values)
    }
}

/// Running time at `$1` (now) of a fact row `f`, in milliseconds.
const USED: &str = "(f.accumulated_ms + CASE WHEN f.running_since IS NULL OR f.running_since > $1 \
     THEN 0 ELSE $1 - f.running_since END)";

/// Wall time from start to stop (or `$1`) of a fact row `f`, in milliseconds.
const WALL: &str = "(CASE WHEN f.stopped_at IS NULL THEN $1 ELSE f.stopped_at END - f.started_at)";

/// One group of a compliance report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceRow {
    pub clock: ClockName,
    /// `None`: a clock measured before the incident had a severity (a dismissed report's
    /// are not measured, so in practice only a `report` clock of an incident never
    /// notified), or the group spans every severity.
    pub severity: Option<Severity>,
    /// `None` when the report is not split by agency.
    pub agency_id: Option<AgencyId>,
    pub measured: i64,
    pub breached: i64,
    /// Nearest-rank percentiles and the maximum of the time used, in milliseconds.
    pub p50_ms: i64,
    pub p90_ms: i64,
    pub p95_ms: i64,
    pub max_ms: i64,
    /// Time the clocks spent paused (the central side's time), in milliseconds.
    pub paused_ms: i64,
    /// The smallest and largest target the group's clocks ran against (they differ when
    /// policy versions did), in seconds.
    pub target_min_s: i64,
    pub target_max_s: i64,
}

/// The clocks of one group of a compliance report, as they are read.
#[derive(Debug, Default)]
struct Group {
    used: Vec<i64>,
    breached: i64,
    paused: i64,
    target_min: i64,
    target_max: i64,
}

impl Group {
    fn merge(&mut self, other: &Group) {
        if self.used.is_empty() || other.target_min < self.target_min {
            self.target_min = other.target_min;
        }
        self.target_max = self.target_max.max(other.target_max);
        self.used.extend_from_slice(&other.used);
        self.breached += other.breached;
        self.paused += other.paused;
    }

    /// The group's row; `key` is clock × 10 + severity index (9: none).
    fn row(&mut self, key: i64, agency: Option<i64>) -> Result<ComplianceRow, StoreError> {
        self.used.sort_unstable();
        let n = self.used.len();
        // Nearest rank: the smallest rank r with r × 100 ≥ n × p.
        let pct = |p: usize| self.used[(n * p).div_ceil(100).clamp(1, n) - 1];
        let clock = usize::try_from(key / 10)
            .ok()
            .and_then(|i| ClockName::ALL.get(i).copied())
            .ok_or_else(|| corrupt("reloj desconocido en los hechos"))?;
        let severity = usize::try_from(key % 10)
            .ok()
            .and_then(|i| Severity::ALL.get(i).copied());
        Ok(ComplianceRow {
            clock,
            severity,
            agency_id: agency.map(AgencyId),
            measured: i64::try_from(n).unwrap_or(i64::MAX),
            breached: self.breached,
            p50_ms: pct(50),
            p90_ms: pct(90),
            p95_ms: pct(95),
            max_ms: self.used[n - 1],
            paused_ms: self.paused,
            target_min_s: self.target_min,
            target_max_s: self.target_max,
        })
    }
}

/// How outcome counts are grouped: always by clock, then by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub severity: bool,
    pub agency: bool,
}

/// A clock's target under a policy being tried, for the what-if: in milliseconds, by
/// clock and severity; `lenient` for a clock without severity (a report never notified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialTargets {
    /// (clock, severity, target in milliseconds).
    pub targets: Vec<(ClockName, Severity, i64)>,
    /// (clock, target in milliseconds) when the clock has no severity.
    pub lenient: Vec<(ClockName, i64)>,
}

impl TrialTargets {
    /// A SQL expression: the target of fact `f` (numbers only, from typed integers).
    fn expression(&self) -> String {
        let mut sql = String::from("CASE");
        for (clock, severity, ms) in &self.targets {
            sql.push_str(&format!(
                " WHEN f.clock = '{}' AND f.severity = '{}' THEN {ms}",
                clock.as_str(),
                severity.as_str()
            ));
        }
        for (clock, ms) in &self.lenient {
            sql.push_str(&format!(
                " WHEN f.clock = '{}' AND f.severity IS NULL THEN {ms}",
                clock.as_str()
            ));
        }
        sql.push_str(" ELSE 0 END");
        sql
    }
}

/// The what-if counts of one clock and severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialRow {
    pub clock: ClockName,
    pub severity: Option<Severity>,
    pub measured: i64,
    /// Met as recorded, against the targets the incidents ran under.
    pub recorded_met: i64,
    /// Met under each policy tried, in order.
    pub met: Vec<i64>,
}

/// Clocks measured and breached in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    pub clock: ClockName,
    pub severity: Option<Severity>,
    pub agency_id: Option<AgencyId>,
    pub measured: i64,
    pub breached: i64,
}

/// A breached clock, for the breach list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachRow {
    pub folio: String,
    pub clock: ClockId,
    pub agency_id: AgencyId,
    pub severity: Option<Severity>,
    pub target_s: i64,
    pub breached_at: Timestamp,
    /// Running time (at the stop, or now), in milliseconds.
    pub used_ms: i64,
    /// Whether the step is done (the clock stopped).
    pub stopped: bool,
    pub escalation_level: i64,
}

fn bind_all(
    q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>,
    values: Vec<Value>,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    values.into_iter().fold(q, bind)
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn severity_of(row: &AnyRow) -> Result<Option<Severity>, StoreError> {
    let v: Option<String> = row.try_get("severity").map_err(StoreError::db)?;
    v.map(|s| Severity::parse(&s).map_err(corrupt)).transpose()
}

impl Store {
    /// Compliance of the clocks `filter` selects: one row per clock, severity and agency,
    /// and the totals per clock and severity; each in clock, severity, agency order.
    ///
    /// The database filters and groups; each group comes with its running times as one
    /// text (`string_agg`, the same on SQLite 3.44+ and PostgreSQL), from which the exact
    /// percentiles of both splits are computed here. (Window functions in SQL gave the
    /// same figures but sorted the month's clocks once per split: 0.7 s per split for
    /// 210,000 clocks on SQLite; reading them row by row through the driver, 1 s.)
    pub async fn compliance(
        &self,
        filter: &ReportFilter,
    ) -> Result<(Vec<ComplianceRow>, Vec<ComplianceRow>), StoreError> {
        let (clause, values) = filter.clause();
        let clock_index = ClockName::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| format!(" WHEN '{}' THEN {i}", c.as_str()))
            .collect::<String>();
        let severity_index = Severity::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| format!(" WHEN '{}' THEN {i}", s.as_str()))
            .collect::<String>();
        // key = clock index × 10 + severity index (9: none).
        let sql = format!(
            "SELECT (CASE f.clock{clock_index} ELSE 9 END) * 10 \
                    + (CASE f.severity{severity_index} ELSE 9 END) AS grp, \
                    f.agency_id AS agency_id, COUNT(*) AS n, \
                    CAST(SUM(CASE WHEN f.breached_at IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS breached, \
                    CAST(SUM(CASE WHEN {WALL} > {USED} THEN {WALL} - {USED} ELSE 0 END) AS BIGINT) AS paused, \
                    MIN(f.target_s) AS target_min, MAX(f.target_s) AS target_max, \
                    string_agg(CAST({USED} AS TEXT), ',') AS used \
             FROM clock_facts f WHERE {clause} \
             GROUP BY (CASE f.clock{clock_index} ELSE 9 END) * 10 \
                    + (CASE f.severity{severity_index} ELSE 9 END), f.agency_id"
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        let mut by_agency: std::collections::BTreeMap<(i64, i64), Group> = Default::default();
        for row in &rows {
            let int = |c: &str| row.try_get::<i64, _>(c).map_err(StoreError::db);
            let text: String = row.try_get("used").map_err(StoreError::db)?;
            let used = text
                .split(',')
                .map(|v| v.trim().parse::<i64>().map_err(corrupt))
                .collect::<Result<Vec<_>, _>>()?;
            if i64::try_from(used.len()).ok() != Some(int("n")?) {
                return Err(corrupt(
                    "los tiempos de un grupo no coinciden con su cuenta",
                ));
            }
            by_agency.insert(
                (int("grp")?, int("agency_id")?),
                Group {
                    used,
                    breached: int("breached")?,
                    paused: int("paused")?,
                    target_min: int("target_min")?,
                    target_max: int("target_max")?,
                },
            );
        }
        drop(rows);
        let mut totals: std::collections::BTreeMap<i64, Group> = Default::default();
        let mut out_rows = Vec::with_capacity(by_agency.len());
        for ((key, agency), mut g) in by_agency {
            totals.entry(key).or_default().merge(&g);
            out_rows.push(g.row(key, Some(agency))?);
        }
        let out_totals = totals
            .into_iter()
            .map(|(key, mut g)| g.row(key, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((out_rows, out_totals))
    }

    /// How many clocks `filter` selects and how many of them breached, per clock, severity
    /// and (as `split` says) agency: the compliance counts without the percentiles, for
    /// the error budget's several windows.
    pub async fn outcome_counts(
        &self,
        filter: &ReportFilter,
        split: Split,
    ) -> Result<Vec<OutcomeCount>, StoreError> {
        let (clause, values) = filter.clause();
        let severity = if split.severity {
            "f.severity"
        } else {
            "CAST(NULL AS TEXT)"
        };
        let agency = if split.agency {
            "f.agency_id"
        } else {
            "CAST(NULL AS BIGINT)"
        };
        // `$1` (now) is not used here; it still has to be bound and typed.
        let sql = format!(
            "SELECT f.clock AS clock, {severity} AS severity, {agency} AS agency_id, \
                    COUNT(*) AS measured, \
                    CAST(SUM(CASE WHEN f.breached_at IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS breached \
             FROM clock_facts f WHERE {clause} AND CAST($1 AS BIGINT) IS NOT NULL \
             GROUP BY f.clock, {severity}, {agency}"
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|row| {
                let clock: String = row.try_get("clock").map_err(StoreError::db)?;
                let agency: Option<i64> = row.try_get("agency_id").map_err(StoreError::db)?;
                Ok(OutcomeCount {
                    clock: parse_clock_name(&clock).map_err(corrupt)?,
                    severity: severity_of(row)?,
                    agency_id: agency.map(AgencyId),
                    measured: row.try_get("measured").map_err(StoreError::db)?,
                    breached: row.try_get("breached").map_err(StoreError::db)?,
                })
            })
            .collect()
    }

    /// What-if: the clocks `filter` selects that stopped in its period, each judged met
    /// against every one of `trials` (running time below the target), per clock and
    /// severity, beside how they were recorded.
    pub async fn trial(
        &self,
        filter: &ReportFilter,
        trials: &[TrialTargets],
    ) -> Result<Vec<TrialRow>, StoreError> {
        let (clause, values) = filter.clause_on("f.stopped_at");
        let judged: String = trials
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    ", CAST(SUM(CASE WHEN {USED} < ({}) THEN 1 ELSE 0 END) AS BIGINT) AS met_{i}",
                    t.expression()
                )
            })
            .collect();
        let sql = format!(
            "SELECT f.clock AS clock, f.severity AS severity, COUNT(*) AS measured, \
                    CAST(SUM(CASE WHEN f.breached_at IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS recorded_met\
                    {judged} \
             FROM clock_facts f WHERE {clause} GROUP BY f.clock, f.severity"
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|row| {
                let clock: String = row.try_get("clock").map_err(StoreError::db)?;
                let int = |c: &str| row.try_get::<i64, _>(c).map_err(StoreError::db);
                Ok(TrialRow {
                    clock: parse_clock_name(&clock).map_err(corrupt)?,
                    severity: severity_of(row)?,
                    measured: int("measured")?,
                    recorded_met: int("recorded_met")?,
                    met: (0..trials.len())
                        .map(|i| int(&format!("met_{i}")))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// The breached clocks `filter` selects (by the instant of the breach), newest breach
    /// first, `limit` from `offset`, and how many there are in all.
    pub async fn breaches(
        &self,
        filter: &ReportFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<BreachRow>, i64), StoreError> {
        let (clause, mut values) = filter.clause();
        let clause = format!("{clause} AND f.breached_at IS NOT NULL");
        let count_sql = format!("SELECT COUNT(*) FROM clock_facts f WHERE {clause}");
        let total: i64 = bind_all(sqlx::query(AssertSqlSafe(count_sql)), values.clone())
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::db)?;
        values.push(limit.into());
        values.push(offset.into());
        let n = values.len();
        let sql = format!(
            "SELECT f.folio AS folio, f.clock AS clock, f.round AS round, \
                    f.agency_id AS agency_id, f.severity AS severity, f.target_s AS target_s, \
                    f.breached_at AS breached_at, {USED} AS used, \
                    CASE WHEN f.stopped_at IS NULL THEN 0 ELSE 1 END AS stopped, \
                    f.escalation_level AS escalation_level \
             FROM clock_facts f WHERE {clause} \
             ORDER BY f.breached_at DESC, f.folio, f.clock, f.round LIMIT ${} OFFSET ${n}",
            n - 1
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        let list = rows
            .iter()
            .map(|row| {
                let int = |c: &str| row.try_get::<i64, _>(c).map_err(StoreError::db);
                let clock: String = row.try_get("clock").map_err(StoreError::db)?;
                Ok(BreachRow {
                    folio: row.try_get("folio").map_err(StoreError::db)?,
                    clock: ClockId {
                        name: parse_clock_name(&clock).map_err(corrupt)?,
                        round: u32::try_from(int("round")?).map_err(corrupt)?,
                    },
                    agency_id: AgencyId(int("agency_id")?),
                    severity: severity_of(row)?,
                    target_s: int("target_s")?,
                    breached_at: ts(int("breached_at")?)?,
                    used_ms: int("used")?,
                    stopped: int("stopped")? != 0,
                    escalation_level: int("escalation_level")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((list, total))
    }
}

/// Age buckets of open incidents (since their report), in milliseconds: under 1 h, 4 h,
/// 1 d, 3 d, and older.
pub const AGE_BUCKETS_MS: [i64; 4] = [3_600_000, 14_400_000, 86_400_000, 259_200_000];

/// Open incidents of one state in one age bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateAge {
    pub state: String,
    /// Index into [`AGE_BUCKETS_MS`]; `AGE_BUCKETS_MS.len()` for the oldest.
    pub bucket: usize,
    pub count: i64,
    /// The oldest report of the group.
    pub oldest_reported_at: i64,
}

/// One agency's mean time on one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeanTime {
    pub agency_id: AgencyId,
    pub clock: ClockName,
    pub count: i64,
    pub mean_ms: i64,
}

/// An incident's validation rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rounds {
    pub folio: String,
    pub agency_id: AgencyId,
    pub rounds: i64,
}

impl Store {
    /// Open incidents (neither closed nor dismissed) by state and age since their report
    /// at `now`, of `agency` if given.
    pub async fn state_ages(
        &self,
        now: Timestamp,
        agency: Option<AgencyId>,
        procedure: Option<ProcedureId>,
    ) -> Result<Vec<StateAge>, StoreError> {
        let [b0, b1, b2, b3] = AGE_BUCKETS_MS;
        let sql = format!(
            "SELECT state, CASE WHEN $1 - reported_at < {b0} THEN 0 \
                    WHEN $1 - reported_at < {b1} THEN 1 WHEN $1 - reported_at < {b2} THEN 2 \
                    WHEN $1 - reported_at < {b3} THEN 3 ELSE 4 END AS bucket, \
                    COUNT(*) AS n, MIN(reported_at) AS oldest \
             FROM incidents WHERE state NOT IN ('closed', 'dismissed') \
               AND ($2 IS NULL OR agency_id = $2) \
               AND ($3 IS NULL OR folio IN (SELECT folio FROM incident_procedures WHERE procedure_id = $3)) \
             GROUP BY state, bucket"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now.as_millisecond())
            .bind(agency.map(|a| a.0))
            .bind(procedure.map(|p| p.0))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let int = |c: &str| r.try_get::<i64, _>(c).map_err(StoreError::db);
                Ok(StateAge {
                    state: r.try_get("state").map_err(StoreError::db)?,
                    bucket: usize::try_from(int("bucket")?).map_err(corrupt)?,
                    count: int("n")?,
                    oldest_reported_at: int("oldest")?,
                })
            })
            .collect()
    }

    /// Mean running time of the `ack` and `resolution` clocks that stopped in `filter`'s
    /// period, by agency.
    pub async fn mean_times(&self, filter: &ReportFilter) -> Result<Vec<MeanTime>, StoreError> {
        let (clause, values) = filter.clause_on("f.stopped_at");
        let sql = format!(
            "SELECT f.agency_id AS agency_id, f.clock AS clock, COUNT(*) AS n, \
                    CAST(AVG({USED}) AS BIGINT) AS mean_ms \
             FROM clock_facts f WHERE {clause} AND f.clock IN ('ack', 'resolution') \
             GROUP BY f.agency_id, f.clock ORDER BY f.agency_id, f.clock"
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let int = |c: &str| r.try_get::<i64, _>(c).map_err(StoreError::db);
                let clock: String = r.try_get("clock").map_err(StoreError::db)?;
                Ok(MeanTime {
                    agency_id: AgencyId(int("agency_id")?),
                    clock: parse_clock_name(&clock).map_err(corrupt)?,
                    count: int("n")?,
                    mean_ms: int("mean_ms")?,
                })
            })
            .collect()
    }

    /// Incidents whose validation ended in `filter`'s period (every round decided, the
    /// last in the period) and how many rounds each took, most rounds first.
    pub async fn validation_rounds(
        &self,
        filter: &ReportFilter,
    ) -> Result<Vec<Rounds>, StoreError> {
        // The period applies to the incident's last verdict, not to each round.
        let mut whole = filter.clone();
        whole.from = Timestamp::UNIX_EPOCH;
        whole.to = Timestamp::MAX;
        whole.clock = Some(ClockName::Validation);
        let (clause, mut values) = whole.clause_on("f.started_at");
        values.push(filter.from.as_millisecond().into());
        values.push(filter.to.as_millisecond().into());
        let n = values.len();
        let sql = format!(
            "SELECT f.folio AS folio, MAX(f.agency_id) AS agency_id, \
                    CAST(MAX(f.round) AS BIGINT) AS rounds \
             FROM clock_facts f WHERE {clause} GROUP BY f.folio \
             HAVING COUNT(*) = COUNT(f.stopped_at) AND MAX(f.stopped_at) >= ${} \
                AND MAX(f.stopped_at) < ${n} \
             ORDER BY rounds DESC, folio",
            n - 1
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok(Rounds {
                    folio: r.try_get("folio").map_err(StoreError::db)?,
                    agency_id: AgencyId(r.try_get("agency_id").map_err(StoreError::db)?),
                    rounds: r.try_get("rounds").map_err(StoreError::db)?,
                })
            })
            .collect()
    }
}

/// What an operator watches, as the database holds it now (`/metrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationalFigures {
    /// (state, severity, count) of the incidents neither closed nor dismissed.
    pub open: Vec<(String, Option<String>, i64)>,
    /// Clocks breached, of incidents not dismissed.
    pub clocks_breached: i64,
    pub outbox_pending: i64,
    /// Age in seconds of the oldest pending email at `now` (0: none).
    pub outbox_oldest_age_s: f64,
    /// Received emails awaiting review.
    pub triage_pending: i64,
}

impl Store {
    /// The figures `/metrics` reports, at `now`.
    pub async fn operational_figures(
        &self,
        now: Timestamp,
    ) -> Result<OperationalFigures, StoreError> {
        let open = sqlx::query(
            "SELECT state, severity, COUNT(*) AS n FROM incidents \
             WHERE state NOT IN ('closed', 'dismissed') GROUP BY state, severity",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("state").map_err(StoreError::db)?,
                r.try_get::<Option<String>, _>("severity")
                    .map_err(StoreError::db)?,
                r.try_get::<i64, _>("n").map_err(StoreError::db)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let scalar = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get::<Option<i64>, _>(0))
                .map_err(StoreError::db)
        };
        let clocks_breached = scalar(
            "SELECT COUNT(*) FROM clock_facts WHERE breached_at IS NOT NULL AND dismissed = 0",
        )
        .await?
        .unwrap_or(0);
        let outbox_pending = scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            .await?
            .unwrap_or(0);
        let oldest = scalar("SELECT MIN(created_at) FROM outbox WHERE state = 'pending'").await?;
        let triage_pending = scalar(
            "SELECT COUNT(*) FROM inbound_messages WHERE outcome = 'triage' AND triaged_at IS NULL",
        )
        .await?
        .unwrap_or(0);
        Ok(OperationalFigures {
            open,
            clocks_breached,
            outbox_pending,
            outbox_oldest_age_s: oldest
                .map_or(0.0, |t| ((now.as_millisecond() - t).max(0)) as f64 / 1000.0),
            triage_pending,
        })
    }
}
