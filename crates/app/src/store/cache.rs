//! The incidents this process wrote or read, for reads that need no round trip to SQLite.
//!
//! Only with SQLite, where one `serve` process owns the database (it takes a lock file) and
//! most writes pass through it. Other processes may still write (`incidencias mail
//! ingest`, `user create`), so an entry is used only after the database confirms the row
//! still has its version ([`super::Store::load`]): the cache saves reading and parsing the
//! body, never freshness. Entries only move forward in version: a slow reader that loaded
//! an older version can never put it back over a newer one. Retries after a conflict read
//! the database, not the cache. On PostgreSQL, where other instances write, it is off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use incidencias_core::Folio;

use super::StoredIncident;

/// Entries kept before the cache starts over (bounded memory, about 3 KB each).
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct IncidentCache {
    enabled: bool,
    map: Mutex<HashMap<Folio, Arc<StoredIncident>>>,
}

impl IncidentCache {
    pub fn new(enabled: bool) -> IncidentCache {
        IncidentCache {
            enabled,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, folio: Folio) -> Option<StoredIncident> {
        if !self.enabled {
            return None;
        }
        let map = self.map.lock().ok()?;
        map.get(&folio).map(|s| (**s).clone())
    }

    /// Keeps `stored` unless a newer version of it is already kept.
    pub fn put(&self, stored: &StoredIncident) {
        if !self.enabled {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        let folio = stored.incident.folio;
        if map
            .get(&folio)
            .is_some_and(|s| s.incident.version >= stored.incident.version)
        {
            return;
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(folio, Arc::new(stored.clone()));
    }
}
