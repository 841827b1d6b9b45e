//! Folio numbers, handed out from blocks reserved in the database.
//!
//! Reserving a block of numbers (one durable write) and handing them out from memory keeps
//! the counter row out of every report's transaction: concurrent reports neither queue on
//! that row (PostgreSQL) nor make the single SQLite writer do the allocation. Several
//! instances each reserve their own blocks, so numbers stay unique; numbers of a block not
//! used before a restart are skipped. Folios are unique and never reused, not gapless.

use std::collections::HashMap;

use incidencias_core::Folio;
use sqlx::Row;
use tokio::sync::Mutex;

use super::{Store, StoreError};

/// Numbers reserved per database write.
const BLOCK: i64 = 64;

#[derive(Default)]
pub struct FolioBlocks {
    /// Per year: the next number to hand out and the last one reserved.
    ranges: Mutex<HashMap<i16, (i64, i64)>>,
}

impl FolioBlocks {
    pub async fn take(&self, store: &Store, year: i16) -> Result<Folio, StoreError> {
        // Held across the reservation so concurrent callers wait for one block instead of
        // each reserving their own.
        let mut ranges = self.ranges.lock().await;
        let (next, last) = match ranges.get(&year) {
            Some(&(next, last)) if next <= last => (next, last),
            _ => {
                let last = store
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query(
                                "INSERT INTO folio_counters (year, last_number) VALUES ($1, $2) \
                                 ON CONFLICT (year) DO UPDATE \
                                 SET last_number = folio_counters.last_number + $2 \
                                 RETURNING last_number",
                            )
                            .bind(i64::from(year))
                            .bind(BLOCK)
                            .fetch_one(&mut *conn)
                            .await
                            .and_then(|r| r.try_get::<i64, _>(0))
                            .map_err(StoreError::db)
                        })
                    })
                    .await?;
                (last - BLOCK + 1, last)
            }
        };
        ranges.insert(year, (next + 1, last));
        let folio = u16::try_from(year)
            .ok()
            .zip(u32::try_from(next).ok())
            .and_then(|(y, n)| Folio::new(y, n));
        folio.ok_or_else(|| {
            StoreError::Invalid(format!(
                "no quedan folios disponibles para el año {year} (máximo {})",
                Folio::MAX_NUMBER
            ))
        })
    }
}
