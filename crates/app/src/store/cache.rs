//! The incidents this process wrote or read, for reads that need no round trip to SQLite.
//!
//! Only with SQLite, where one `serve` process owns the database (it takes a lock file) and
//! most writes pass through it. The command line may still write beside it (`incidencias
//! mail ingest`, `user create`, `outbox retry`...): such a process announces its writes by
//! touching a marker file next to the database (`PATH.changes`) after each commit, and the
//! serving process looks at the marker (one `stat`, no round trip to SQLite) before using
//! an entry: when it moved, the whole cache is forgotten. So a write from another process
//! is seen at once, and a read the cache answers costs no query. Entries only move forward
//! in version: a slow reader that loaded an older version can never put it back over a
//! newer one. Retries after a conflict read the database, not the cache. On PostgreSQL,
//! where other instances write, it is off.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use incidencias_core::Folio;

use super::StoredIncident;

/// Entries kept before the cache starts over (bounded memory, about 3 KB each).
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct IncidentCache {
    enabled: bool,
    map: Mutex<HashMap<Folio, Arc<StoredIncident>>>,
    /// `PATH.changes`: touched by other processes after they write (SQLite only).
    marker: Option<PathBuf>,
    /// The marker's modification time when the entries were last known good.
    seen: Mutex<Option<SystemTime>>,
    /// Set in a process that writes beside a server (the command line): its commits
    /// touch the marker.
    announce: AtomicBool,
}

impl IncidentCache {
    /// A cache for the SQLite database at `path` (the marker sits next to it).
    pub fn new(path: &str) -> IncidentCache {
        IncidentCache {
            enabled: true,
            marker: Some(PathBuf::from(format!("{path}.changes"))),
            ..IncidentCache::default()
        }
    }

    /// The marker's modification time (`None`: no marker yet).
    fn marker_time(&self) -> Option<SystemTime> {
        let marker = self.marker.as_ref()?;
        std::fs::metadata(marker).and_then(|m| m.modified()).ok()
    }

    pub fn get(&self, folio: Folio) -> Option<StoredIncident> {
        if !self.enabled {
            return None;
        }
        // The marker is looked at before taking the lock: no syscall while others wait.
        let now = self.marker_time();
        let mut map = self.map.lock().ok()?;
        if let Ok(mut seen) = self.seen.lock()
            && *seen != now
        {
            // Another process wrote since the entries were loaded: forget them all.
            map.clear();
            *seen = now;
            return None;
        }
        map.get(&folio).map(|s| (**s).clone())
    }

    /// The marker as a reader sees it before reading the database: pass it to
    /// [`IncidentCache::put_read`] so that a read that raced another process's write is
    /// not kept.
    pub fn stamp(&self) -> Option<SystemTime> {
        if self.enabled {
            self.marker_time()
        } else {
            None
        }
    }

    /// Keeps what a read found, unless another process announced a write since `stamp`.
    pub fn put_read(&self, stored: &StoredIncident, stamp: Option<SystemTime>) {
        if self.seen.lock().is_ok_and(|seen| *seen == stamp) {
            self.put(stored);
        }
    }

    /// This process writes beside a server: its commits announce themselves.
    pub fn announce_writes(&self) {
        self.announce.store(true, Ordering::SeqCst);
    }

    /// After a commit: touches the marker if this process announces its writes. A failure
    /// to touch it is logged (the server would answer from its cache until its next
    /// write of that incident).
    pub fn written(&self) {
        if !self.announce.load(Ordering::SeqCst) {
            return;
        }
        let Some(marker) = &self.marker else { return };
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        if let Err(e) = std::fs::write(marker, stamp.to_string()) {
            tracing::warn!(error = %e, marker = %marker.display(), "no se pudo avisar del cambio al servicio");
        }
    }

    /// Keeps a copy of `stored` unless a newer version of it is already kept.
    pub fn put(&self, stored: &StoredIncident) {
        self.put_with(stored.incident.folio, stored.incident.version, || {
            stored.clone()
        });
    }

    /// Keeps `stored` itself (no copy) unless a newer version of it is already kept.
    pub fn keep(&self, stored: StoredIncident) {
        self.put_with(stored.incident.folio, stored.incident.version, || stored);
    }

    /// What the entries it replaces held is freed after the lock is let go.
    fn put_with(&self, folio: Folio, version: u64, make: impl FnOnce() -> StoredIncident) {
        if !self.enabled {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        if map
            .get(&folio)
            .is_some_and(|s| s.incident.version >= version)
        {
            return;
        }
        let dropped = (map.len() >= CAPACITY).then(|| std::mem::take(&mut *map));
        let replaced = map.insert(folio, Arc::new(make()));
        drop(map);
        drop((dropped, replaced));
    }
}
