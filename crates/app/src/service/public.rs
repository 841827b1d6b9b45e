//! What citizens and the portal read without signing in: every procedure's state (kept
//! built in memory, see [`PublicSnapshot`]), one procedure's state, and a procedure's
//! history of published incidents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use incidencias_core::{Incident, IncidentKind, IncidentState, ProcedureId, procedure_status};
use jiff::Timestamp;

use super::{Service, ServiceError};
use crate::documents::{BannerDoc, PublicProcedureDoc, PublicProceduresDoc, PublicStatusDoc};

/// How long a built list of every procedure's state is served before it is rebuilt in the
/// background (it keeps being served meanwhile) when this process wrote nothing since:
/// what another instance (or the command line) changed shows within about this time. A
/// write of this process makes the next request rebuild it first. Clients may cache the
/// list for 30 s anyway (`Cache-Control`).
pub const PUBLIC_TTL: Duration = Duration::from_secs(2);

/// How many days of history a procedure's public page shows.
pub const HISTORY_DAYS: i64 = 90;

/// The list of every procedure's state as last built: the document, its JSON and the
/// JSON's `ETag`, so that a request costs a lookup (the portal may poll it often).
#[derive(Debug)]
pub struct PublicSnapshot {
    pub doc: PublicProceduresDoc,
    /// Each listed procedure's status document, by homoclave (what the banner's script
    /// and iframe read on every page view of the portal).
    statuses: HashMap<String, PublicStatusDoc>,
    pub json: bytes::Bytes,
    pub etag: String,
    /// The same tag, shared (a response header made from it copies nothing).
    pub etag_bytes: bytes::Bytes,
    generation: u64,
    /// What [`crate::store::Store::outside_writes`] said before it was built.
    outside: Option<Option<std::time::SystemTime>>,
    built: Instant,
    /// When it was last found still current, in ms after `built` (an atomic: every
    /// request reads it).
    checked_ms: std::sync::atomic::AtomicU64,
}

impl PublicSnapshot {
    fn age_ms(&self) -> u64 {
        u64::try_from(self.built.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long since it was built or last found current, in TTLs (0: fresh).
    fn staleness(&self) -> u64 {
        let checked = self.checked_ms.load(std::sync::atomic::Ordering::Relaxed);
        let ttl = u64::try_from(PUBLIC_TTL.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.age_ms().saturating_sub(checked) / ttl
    }

    fn still_current(&self) {
        self.checked_ms
            .store(self.age_ms(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// The last snapshot, and who is building the next one: one build at a time, however
/// many requests find the snapshot stale (the others wait for it, or keep the old one
/// while a refresh runs in the background).
#[derive(Default)]
pub(super) struct PublicSlot {
    current: std::sync::RwLock<Option<Arc<PublicSnapshot>>>,
    building: tokio::sync::Mutex<()>,
    refreshing: std::sync::atomic::AtomicBool,
}

impl PublicSlot {
    fn current(&self) -> Option<Arc<PublicSnapshot>> {
        self.current.read().ok().and_then(|s| s.clone())
    }

    /// Keeps `snapshot` unless a newer one (a later generation) is there already.
    fn offer(&self, snapshot: &Arc<PublicSnapshot>) {
        if let Ok(mut slot) = self.current.write()
            && slot
                .as_ref()
                .is_none_or(|s| s.generation <= snapshot.generation)
        {
            *slot = Some(snapshot.clone());
        }
    }
}

/// A published incident of a procedure, in plain words (no folio, no internal names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastIncident {
    /// What failed, e.g. "El trámite no estuvo disponible".
    pub what: &'static str,
    /// When the failure began.
    pub from: Timestamp,
    /// When the procedure was restored (CEDN validated the correction, or the incident
    /// closed); `None` while it lasts.
    pub until: Option<Timestamp>,
}

/// A procedure's published incidents over the last [`HISTORY_DAYS`] days.
#[derive(Debug, Clone)]
pub struct ProcedureHistory {
    pub procedure: PublicProcedureDoc,
    /// Oldest first.
    pub incidents: Vec<PastIncident>,
}

/// The plain Spanish sentence for what failed.
pub fn what_failed(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Unavailable => "El trámite no estuvo disponible",
        IncidentKind::Intermittent => "El trámite falló de forma intermitente",
        IncidentKind::Slow => "El trámite respondió con lentitud",
        IncidentKind::CannotComplete => "No fue posible concluir el trámite",
    }
}

/// A published incident as a citizen hears of it; `None` for what is never published (a
/// report not notified, a dismissed one).
fn past_incident(i: &Incident) -> Option<PastIncident> {
    if i.notified_at.is_none() || i.state == IncidentState::Dismissed {
        return None;
    }
    let restored = i
        .rounds
        .iter()
        .filter(|r| r.passed == Some(true))
        .filter_map(|r| r.decided_at)
        .min();
    Some(PastIncident {
        what: what_failed(i.kind),
        from: i.occurred_at,
        until: restored.or(i.closed_at),
    })
}

impl Service {
    /// Every active procedure's public state, by agency then homoclave: what the portal
    /// and the public status page read. Built at most once per write of this process (or
    /// per [`PUBLIC_TTL`]), however many ask.
    pub async fn public_snapshot(&self) -> Result<Arc<PublicSnapshot>, ServiceError> {
        use std::sync::atomic::Ordering;
        let generation = self.store.write_generation();
        // Current for this process's writes, and checked within two TTLs (or nobody else
        // can have written): served; past one TTL, refreshed in the background meanwhile.
        let usable = |s: &PublicSnapshot| {
            if s.generation < generation {
                return false;
            }
            match s.staleness() {
                0 => true,
                _ if s.outside.is_some() && self.store.outside_writes() == s.outside => {
                    // Nobody else writes unannounced, and nobody announced.
                    s.still_current();
                    true
                }
                1 => {
                    if !self.public.refreshing.swap(true, Ordering::AcqRel) {
                        let service = self.clone();
                        tokio::spawn(async move {
                            let _building = service.public.building.lock().await;
                            if let Err(e) = service.build_public(generation).await {
                                tracing::warn!(error = %e, "no se pudo renovar el estado público");
                            }
                            service.public.refreshing.store(false, Ordering::Release);
                        });
                    }
                    true
                }
                // Unchecked for two TTLs or more (nobody asked for a while): what another
                // process wrote meanwhile must not be served; rebuilt first.
                _ => false,
            }
        };
        if let Some(s) = self.public.current()
            && usable(&s)
        {
            return Ok(s);
        }
        // Written since, too old, or never built: built now, once for every request
        // waiting (the others find it built when they get the lock).
        let _building = self.public.building.lock().await;
        if let Some(s) = self.public.current()
            && s.generation >= generation
            && s.staleness() == 0
        {
            return Ok(s);
        }
        self.build_public(generation).await
    }

    /// Builds the snapshot as of `generation` (read before the queries: a write during
    /// them makes it stale at once) and keeps it.
    async fn build_public(&self, generation: u64) -> Result<Arc<PublicSnapshot>, ServiceError> {
        let outside = self.store.outside_writes();
        let (doc, statuses) = self.public_procedures().await?;
        let json = serde_json::to_vec(&doc).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let etag = crate::encoding::etag(&json);
        let snapshot = Arc::new(PublicSnapshot {
            doc,
            statuses,
            json: bytes::Bytes::from(json),
            etag_bytes: bytes::Bytes::from(etag.clone()),
            etag,
            generation,
            outside,
            built: Instant::now(),
            checked_ms: std::sync::atomic::AtomicU64::new(0),
        });
        self.public.offer(&snapshot);
        Ok(snapshot)
    }

    /// The list itself, read now (see [`Service::public_snapshot`]).
    async fn public_procedures(
        &self,
    ) -> Result<(PublicProceduresDoc, HashMap<String, PublicStatusDoc>), ServiceError> {
        let (procedures, agencies, open) = tokio::try_join!(
            self.store.procedures(),
            self.store.agencies(),
            self.store.open_incidents_by_procedure(),
        )?;
        let mut by_procedure: HashMap<ProcedureId, Vec<Incident>> = HashMap::new();
        for (procedure, incident) in open {
            by_procedure.entry(procedure).or_default().push(incident);
        }
        let agencies: HashMap<i64, &crate::store::Agency> =
            agencies.iter().map(|a| (a.id.0, a)).collect();
        let mut statuses = HashMap::new();
        let mut list: Vec<PublicProcedureDoc> = procedures
            .iter()
            .filter(|p| p.active)
            .filter_map(|p| {
                let agency = agencies.get(&p.agency_id.0).filter(|a| a.active)?;
                let status = procedure_status(by_procedure.get(&p.id).into_iter().flatten());
                let state = incidencias_core::PublicState::of(&status);
                statuses.insert(
                    p.homoclave.as_str().to_string(),
                    PublicStatusDoc::of(p.homoclave.as_str(), status.clone()),
                );
                Some(PublicProcedureDoc {
                    homoclave: p.homoclave.as_str().to_string(),
                    name: p.name.clone(),
                    url: p.url.clone(),
                    agency_acronym: agency.acronym.clone(),
                    agency_name: agency.name.clone(),
                    state: state.as_str().to_string(),
                    button_enabled: status.button_enabled,
                    banner: BannerDoc {
                        shown: status.banner_shown,
                        message: status.banner_message.clone(),
                    },
                    since: status.since,
                })
            })
            .collect();
        list.sort_by(|a, b| {
            (a.agency_acronym.as_str(), a.homoclave.as_str())
                .cmp(&(b.agency_acronym.as_str(), b.homoclave.as_str()))
        });
        Ok((PublicProceduresDoc { procedures: list }, statuses))
    }

    /// What the portal shows for a procedure: from the snapshot for a listed one (the
    /// banner's embed asks on every page view), from the database otherwise (a procedure
    /// or agency deactivated, which the list leaves out).
    pub async fn public_status(&self, homoclave: &str) -> Result<PublicStatusDoc, ServiceError> {
        let key = incidencias_core::Homoclave::parse(homoclave)
            .map_err(|e| ServiceError::invalid("homoclave", e.to_string()))?;
        if let Some(doc) = self.public_snapshot().await?.statuses.get(key.as_str()) {
            return Ok(doc.clone());
        }
        let Some(procedure) = self.store.procedure_by_homoclave(&key).await? else {
            return Err(ServiceError::NotFound(format!("el trámite {key}")));
        };
        let open = self.store.open_incidents_of(procedure.id).await?;
        Ok(PublicStatusDoc::of(key.as_str(), procedure_status(&open)))
    }

    /// A published procedure's state and its published incidents of the last
    /// [`HISTORY_DAYS`] days. An unknown, inactive or unpublished procedure is not found.
    pub async fn public_history(&self, homoclave: &str) -> Result<ProcedureHistory, ServiceError> {
        let key = incidencias_core::Homoclave::parse(homoclave)
            .map_err(|e| ServiceError::invalid("homoclave", e.to_string()))?;
        let snapshot = self.public_snapshot().await?;
        let Some(procedure) = snapshot
            .doc
            .procedures
            .iter()
            .find(|p| p.homoclave == key.as_str())
            .cloned()
        else {
            return Err(ServiceError::NotFound(format!("el trámite {key}")));
        };
        let Some(stored) = self.store.procedure_by_homoclave(&key).await? else {
            return Err(ServiceError::NotFound(format!("el trámite {key}")));
        };
        let window_start = self.now() - jiff::SignedDuration::from_hours(24 * HISTORY_DAYS);
        let mut incidents: Vec<PastIncident> = self
            .store
            .incidents_of_since(stored.id, window_start)
            .await?
            .iter()
            .filter_map(past_incident)
            .filter(|p| p.until.is_none_or(|u| u >= window_start))
            .collect();
        incidents.sort_by_key(|p| p.from);
        Ok(ProcedureHistory {
            procedure,
            incidents,
        })
    }
}
