//! Where every use-case reads "now": the service's clock. Production reads the system
//! clock; tests hold a `ManualClock` and move it, so deadlines can be tested without
//! waiting. The system clock is read directly only where no use-case runs: stamping the
//! seed policy of a database being created (`store::open`), the command line's export and
//! import, and the demo's anchor instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The help desk's time zone: every instant a person reads, the folio's year and a
/// report's calendar month are in it.
pub fn mexico_city() -> TimeZone {
    TimeZone::get("America/Mexico_City").unwrap_or(TimeZone::UTC)
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (milliseconds).
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            ms: Arc::new(AtomicI64::new(start.as_millisecond())),
        }
    }

    pub fn set(&self, t: Timestamp) {
        self.ms.store(t.as_millisecond(), Ordering::SeqCst);
    }

    pub fn advance(&self, d: jiff::SignedDuration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.ms.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}
