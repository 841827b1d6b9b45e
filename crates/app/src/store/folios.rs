//! Folio numbers, handed out from blocks reserved in the database, and when a number that
//! will never be an incident is recorded void (the record itself, as audited and
//! exported, is `voids.rs`).
//!
//! Reserving a block of numbers (one durable write) and handing them out from memory keeps
//! the counter row out of every report's transaction: concurrent reports neither queue on
//! that row (PostgreSQL) nor make the single SQLite writer do the allocation. Several
//! processes (PostgreSQL instances; on SQLite the server and `mail ingest`) each reserve
//! their own blocks, so numbers stay unique.
//!
//! The folio sequence is audited (issue 10, item 13): every number from 1 to the highest
//! used must be an incident or a recorded void, so a missing number is a finding. Hence:
//! - a create the protocol refuses gives its number back, and the next create reuses it
//!   before any later number (`give_back`);
//! - a create whose transaction failed after taking its number (an idempotency race) is
//!   recorded void with that reason (`void_lost`);
//! - the unused rest of a block is recorded void when its owner closes the store
//!   (`release`), or, if the owner died, by whichever process next opens the database or
//!   reserves a block once the block's lease has run out (`settle_abandoned`);
//! - a void folio can never become an incident (trigger `incidents_not_void`): a process
//!   that finds its block settled under it drops the block (`forget`).
//!
//! Why a lease and not "void everything unused at start": with several instances, a
//! number reserved by a LIVE other instance is not abandoned, it just has not been used
//! yet. Each block is recorded (`folio_blocks`) with its owner and `lease_until`; the owner
//! stops handing out numbers of a block at `lease_until` unless it first renews the lease,
//! and nobody else voids its numbers before `lease_until + GRACE`. GRACE covers a create
//! that took its number just before the lease ended and is still committing, and clock
//! skew between hosts, so a void and an incident for the same number cannot both be
//! written. Renewing and settling are both guarded UPDATEs of the block's row (renew only
//! an unsettled block; settle only a block whose lease is over), so they serialize on that
//! row and exactly one wins: an idle process keeps its numbers instead of voiding them.
//! Until then `audit verify` counts those numbers as reserved by a live process, not as
//! gaps. The price: a process that crashed leaves its numbers pending for up to
//! LEASE + GRACE (and until the next start or block reservation settles them; a verify
//! in between reports them as gaps if later numbers are in use).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use incidencias_core::Folio;
use jiff::Timestamp;
use sqlx::{AnyConnection, Row};
use tokio::sync::Mutex;

use super::{Store, StoreError};

/// How often a process reserving blocks also looks for blocks abandoned by dead ones.
const SETTLE_EVERY_MS: i64 = 60 * 1000;

/// Numbers reserved per database write, at first and whenever demand is low.
const MIN_BLOCK: i64 = 64;

/// Most numbers reserved per database write, under a burst.
const MAX_BLOCK: i64 = 4096;

/// A block used up sooner than this after it was reserved makes the next one twice as
/// large; one used up within `KEEP_WITHIN_MS` keeps its size; a slower one (or one whose
/// lease ended) goes back to `MIN_BLOCK`.
const GROW_WITHIN_MS: i64 = 1000;
const KEEP_WITHIN_MS: i64 = 10 * 1000;

/// Reserves `$2` numbers of year `$1`: the last of them.
const RESERVE: &str = "INSERT INTO folio_counters (year, last_number) VALUES ($1, $2) \
                       ON CONFLICT (year) DO UPDATE \
                       SET last_number = folio_counters.last_number + $2 \
                       RETURNING last_number";

/// Records a reserved block, with its owner and lease.
const RECORD_BLOCK: &str = "INSERT INTO folio_blocks (year, first_number, last_number, owner, \
                            reserved_at, lease_until) VALUES ($1, $2, $3, $4, $5, $6)";

/// How many numbers the next block of a year reserves, from the one it follows (its
/// size, whether it was used up, how long ago it was reserved, in ms).
///
/// Each reservation is a commit of its own, and every create of the process waits for it
/// (the block is reserved under a lock). Under a burst a block of 64 lasted a few
/// milliseconds, and those waits held SQLite's intake to about three quarters of what it
/// does now (docs/benchmarks.md, issue 15, seventh session); a block that lasts about a
/// second makes them rare. What a graceful stop voids stays within about two seconds of
/// the demand that made the block grow, and a quiet process keeps blocks of 64.
pub(super) fn next_block_size(previous: Option<(i64, bool, i64)>) -> i64 {
    match previous {
        Some((size, true, age)) if age < GROW_WITHIN_MS => (size * 2).clamp(MIN_BLOCK, MAX_BLOCK),
        Some((size, true, age)) if age < KEEP_WITHIN_MS => size.clamp(MIN_BLOCK, MAX_BLOCK),
        _ => MIN_BLOCK,
    }
}

/// How long a process hands out numbers of a block it reserved.
const LEASE_MS: i64 = 60 * 60 * 1000;

/// After a lease ends, how long before others may void the block's unused numbers.
pub(super) const GRACE_MS: i64 = 10 * 60 * 1000;

/// Why the rest of a block was voided by its owner at a graceful stop.
pub const VOID_AT_STOP: &str = "reservado y no usado al detenerse el servicio";
/// Why numbers of a block whose owner is gone were voided by another process.
pub const VOID_ABANDONED: &str = "reservado por un proceso que terminó sin usarlo";
/// Why a create that lost an idempotency race left its number void.
pub const VOID_IDEMPOTENCY_RACE: &str =
    "el alta perdió la carrera con otra solicitud de la misma clave de idempotencia";

/// The block a process is handing out numbers from, for one year.
struct YearBlock {
    /// The block's key in `folio_blocks` (with the year).
    first: i64,
    next: i64,
    last: i64,
    /// Real time (epoch ms) after which no number of this block is handed out.
    lease_until: i64,
    /// Real time (epoch ms) the block was reserved (for the next block's size).
    reserved_at: i64,
    /// Numbers given back by refused creates, with the lease of their block: handed out
    /// again before any later number, while that lease runs.
    returned: BTreeMap<i64, i64>,
}

pub struct FolioBlocks {
    /// Who reserves, as written in `folio_blocks.owner`: unique per process and store.
    owner: String,
    ranges: Mutex<HashMap<i16, YearBlock>>,
    /// Whether this store ever reserved a block (only then does `release` write).
    reserved: std::sync::atomic::AtomicBool,
    /// When this store last looked for abandoned blocks (ms): at most once a minute, and
    /// never while holding `ranges` (the look is a round trip every create would wait on).
    last_settle_ms: std::sync::atomic::AtomicI64,
}

impl Default for FolioBlocks {
    fn default() -> Self {
        FolioBlocks {
            owner: format!(
                "pid {} desde {}",
                std::process::id(),
                Timestamp::now().as_nanosecond()
            ),
            ranges: Mutex::default(),
            reserved: Default::default(),
            last_settle_ms: Default::default(),
        }
    }
}

/// A number handed out: the folio and the lease of its block (for `give_back`).
pub struct Taken {
    pub folio: Folio,
    year: i16,
    lease_until: i64,
}

pub(super) fn folio_of(year: i64, number: i64) -> Result<Folio, StoreError> {
    u16::try_from(year)
        .ok()
        .zip(u32::try_from(number).ok())
        .and_then(|(y, n)| Folio::new(y, n))
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "no quedan folios disponibles para el año {year} (máximo {})",
                Folio::MAX_NUMBER
            ))
        })
}

impl FolioBlocks {
    pub async fn take(&self, store: &Store, year: i16) -> Result<Taken, StoreError> {
        // Held across the reservation so concurrent callers wait for one block instead of
        // each reserving their own.
        let mut ranges = self.ranges.lock().await;
        let now = Timestamp::now().as_millisecond();
        if let Some(block) = ranges.get_mut(&year) {
            let in_block = |n: &i64| (block.first..=block.last).contains(n);
            let unused = block.next <= block.last || block.returned.keys().any(in_block);
            if unused && now >= block.lease_until {
                let renewed = now + LEASE_MS;
                if renew(store, year, block.first, &self.owner, renewed).await? {
                    block.lease_until = renewed;
                    for (number, lease) in block.returned.iter_mut() {
                        if (block.first..=block.last).contains(number) {
                            *lease = renewed;
                        }
                    }
                }
            }
            while let Some((number, lease_until)) = block.returned.pop_first() {
                // A returned number whose lease ended is left to the settlement.
                if now < lease_until {
                    return Ok(Taken {
                        folio: folio_of(year.into(), number)?,
                        year,
                        lease_until,
                    });
                }
            }
            if block.next <= block.last && now < block.lease_until {
                let number = block.next;
                block.next += 1;
                return Ok(Taken {
                    folio: folio_of(year.into(), number)?,
                    year,
                    lease_until: block.lease_until,
                });
            }
        }
        let size = next_block_size(ranges.get(&year).map(|b| {
            let used_up = b.next > b.last && now < b.lease_until;
            (b.last - b.first + 1, used_up, now - b.reserved_at)
        }));
        let owner = self.owner.clone();
        let native_owner = owner.clone();
        let lease_until = now + LEASE_MS;
        let y = i64::from(year);
        let last = store
            .write_native(
                move |conn| {
                    let native = super::writer::native_error;
                    let last = conn
                        .prepare_cached(RESERVE)
                        .and_then(|mut s| s.query_row((y, size), |r| r.get::<_, i64>(0)))
                        .map_err(native)?;
                    conn.prepare_cached(RECORD_BLOCK)
                        .and_then(|mut s| {
                            s.execute((y, last - size + 1, last, &native_owner, now, lease_until))
                        })
                        .map_err(native)?;
                    Ok(last)
                },
                move |conn| {
                    Box::pin(async move {
                        let last = sqlx::query(RESERVE)
                            .bind(y)
                            .bind(size)
                            .fetch_one(&mut *conn)
                            .await
                            .and_then(|r| r.try_get::<i64, _>(0))
                            .map_err(StoreError::db)?;
                        sqlx::query(RECORD_BLOCK)
                            .bind(y)
                            .bind(last - size + 1)
                            .bind(last)
                            .bind(owner)
                            .bind(now)
                            .bind(lease_until)
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                        Ok(last)
                    })
                },
            )
            .await?;
        self.reserved
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let first = last - size + 1;
        let returned = ranges.remove(&year).map(|b| b.returned).unwrap_or_default();
        ranges.insert(
            year,
            YearBlock {
                first,
                next: first + 1,
                last,
                lease_until,
                reserved_at: now,
                returned,
            },
        );
        drop(ranges);
        // Anything a dead process left behind is settled now and then, not only at start:
        // at most once a minute, after the lock is released.
        let last_settle = self
            .last_settle_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - last_settle >= SETTLE_EVERY_MS
            && self
                .last_settle_ms
                .compare_exchange(
                    last_settle,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
            && let Err(e) = store.settle_abandoned().await
        {
            tracing::warn!(error = %e, "no se pudieron anular los folios abandonados");
        }
        Ok(Taken {
            folio: folio_of(year.into(), first)?,
            year,
            lease_until,
        })
    }

    /// A number taken for a create that was refused before anything was written: the next
    /// create of the year gets it (before any later number).
    pub async fn give_back(&self, taken: &Taken) {
        let mut ranges = self.ranges.lock().await;
        if let Some(block) = ranges.get_mut(&taken.year) {
            block
                .returned
                .insert(i64::from(taken.folio.number()), taken.lease_until);
        }
    }

    /// Stops handing out numbers of this year's block (it was settled by another
    /// process): the next take reserves a new one.
    pub async fn forget(&self, year: i16) {
        self.ranges.lock().await.remove(&year);
    }

    /// At a graceful stop: every block this process reserved and has not settled gets its
    /// unused numbers recorded void. Nothing is handed out afterwards.
    pub async fn release(&self, store: &Store) -> Result<(), StoreError> {
        let mut ranges = self.ranges.lock().await;
        ranges.clear();
        if !self.reserved.load(std::sync::atomic::Ordering::Relaxed) {
            // This process never reserved a number (and may be a read-only store).
            return Ok(());
        }
        let owner = self.owner.clone();
        let now = Timestamp::now().as_millisecond();
        store
            .write(move |conn| {
                Box::pin(async move {
                    let blocks = sqlx::query(
                        "SELECT year, first_number, last_number FROM folio_blocks \
                         WHERE owner = $1 AND settled = 0",
                    )
                    .bind(owner)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    for b in blocks_of(&blocks)? {
                        settle_block(conn, b, VOID_AT_STOP, now, i64::MAX).await?;
                    }
                    Ok(())
                })
            })
            .await
    }
}

/// (year, first, last) of `folio_blocks` rows.
fn blocks_of(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("year").map_err(StoreError::db)?,
                r.try_get("first_number").map_err(StoreError::db)?,
                r.try_get("last_number").map_err(StoreError::db)?,
            ))
        })
        .collect()
}

/// Extends the lease of this process's block, unless it was settled meanwhile (then the
/// owner must reserve a new block). See the module comment.
async fn renew(
    store: &Store,
    year: i16,
    first: i64,
    owner: &str,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let owner = owner.to_string();
    store
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE folio_blocks SET lease_until = $1 \
                     WHERE year = $2 AND first_number = $3 AND owner = $4 AND settled = 0",
                )
                .bind(lease_until)
                .bind(i64::from(year))
                .bind(first)
                .bind(owner)
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected() == 1)
                .map_err(StoreError::db)
            })
        })
        .await
}

/// Marks the block settled, if its lease ended before `cutoff` and nobody settled it, and
/// then records void, with `reason`, every number of it that is neither an incident nor
/// already void. The guarded UPDATE comes first: it takes the block's row, so a renewal
/// by the owner and this settlement cannot both succeed.
async fn settle_block(
    conn: &mut AnyConnection,
    (year, first, last): (i64, i64, i64),
    reason: &str,
    now: i64,
    cutoff: i64,
) -> Result<(), StoreError> {
    let claimed = sqlx::query(
        "UPDATE folio_blocks SET settled = 1 \
         WHERE year = $1 AND first_number = $2 AND settled = 0 AND lease_until < $3",
    )
    .bind(year)
    .bind(first)
    .bind(cutoff)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?
    .rows_affected();
    if claimed == 0 {
        return Ok(());
    }
    let used: BTreeSet<String> =
        sqlx::query("SELECT folio FROM incidents WHERE folio >= $1 AND folio <= $2")
            .bind(folio_of(year, first)?.to_string())
            .bind(folio_of(year, last)?.to_string())
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::db))
            .collect::<Result<_, _>>()?;
    for number in first..=last {
        let folio = folio_of(year, number)?.to_string();
        if !used.contains(&folio) {
            insert_void(conn, &folio, reason, now).await?;
        }
    }
    Ok(())
}

/// Records `folio` void unless it is an incident or already void.
async fn insert_void(
    conn: &mut AnyConnection,
    folio: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let parsed = Folio::parse(folio).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query(
        "INSERT INTO folio_voids (folio, year, number, voided_at, reason) \
         SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM incidents WHERE folio = $1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(folio.to_string())
    .bind(i64::from(parsed.year()))
    .bind(i64::from(parsed.number()))
    .bind(now)
    .bind(reason.to_string())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

impl Store {
    /// Settles the blocks whose owner can no longer use them (lease ended more than GRACE
    /// ago, or reserved before migration 0002): their unused numbers are recorded void.
    pub(super) async fn settle_abandoned(&self) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millisecond();
        self.write(move |conn| {
            Box::pin(async move {
                let blocks = sqlx::query(
                    "SELECT year, first_number, last_number FROM folio_blocks \
                     WHERE settled = 0 AND lease_until < $1",
                )
                .bind(now - GRACE_MS)
                .fetch_all(&mut *conn)
                .await
                .map_err(StoreError::db)?;
                for b in blocks_of(&blocks)? {
                    settle_block(conn, b, VOID_ABANDONED, now, now - GRACE_MS).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// A create whose transaction failed after its number was taken: the number is
    /// recorded void with `reason` (unless, after an ambiguous failure, the incident was
    /// written after all). If even that fails, the block's settlement voids it later.
    pub(super) async fn void_lost(&self, folio: Folio, reason: String) {
        let now = Timestamp::now().as_millisecond();
        let text = folio.to_string();
        let done = self
            .write(move |conn| {
                Box::pin(async move { insert_void(conn, &text, &reason, now).await })
            })
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, %folio, "no se pudo registrar la anulación del folio");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_BLOCK, MIN_BLOCK, next_block_size};

    /// A first block, and the block after one that lasted long or whose lease ended,
    /// reserve 64; a block used up within a second doubles, up to the most; one used up
    /// within ten seconds keeps its size.
    #[test]
    fn blocks_grow_under_a_burst_and_shrink_when_demand_falls() {
        assert_eq!(next_block_size(None), MIN_BLOCK);
        assert_eq!(next_block_size(Some((64, true, 200))), 128);
        assert_eq!(next_block_size(Some((2048, true, 999))), 4096);
        assert_eq!(next_block_size(Some((MAX_BLOCK, true, 10))), MAX_BLOCK);
        assert_eq!(next_block_size(Some((512, true, 1000))), 512);
        assert_eq!(next_block_size(Some((512, true, 9_999))), 512);
        assert_eq!(next_block_size(Some((512, true, 10_000))), MIN_BLOCK);
        // Not used up: its lease ended before its numbers did.
        assert_eq!(next_block_size(Some((512, false, 100))), MIN_BLOCK);
        // A block row written by hand or by another size rule stays within the bounds.
        assert_eq!(next_block_size(Some((10, true, 10))), MIN_BLOCK);
        assert_eq!(next_block_size(Some((100_000, true, 5_000))), MAX_BLOCK);
    }
}
