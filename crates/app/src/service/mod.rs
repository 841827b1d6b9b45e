//! THE door: every use-case of every front end (the JSON API, the pages, the command line,
//! email replies, the scheduler, the mail workers): load -> core::decide -> store (events,
//! projection, timer, outbox, idempotency record) in one transaction. The store is private
//! here; answers are the service's own documents. Nothing here knows a front end: the one
//! HTTP-shaped thing is [`Reply::status`], kept because an idempotent replay must give back
//! the first answer exactly as it was (201 for a creation, 200 for an action).

mod accounts;
mod admin;
mod catalog;
mod import;
pub mod inbound;
mod incidents;
mod links;
pub mod notify;
mod org;
mod outbox;
pub mod passwords;
mod public;
pub mod reports;
mod timers;
mod views;
mod webhooks;

use std::sync::Arc;

use incidencias_core::{Actor, AgencyId, Command, DecideError, FieldError, Role, UserId};
use jiff::Timestamp;

use crate::clock::Clock;
use crate::store::{Store, StoreError, User};

pub use crate::store::AttemptOutcome;
pub use accounts::{LoginOutcome, SESSION_HOURS, new_secret};
pub use admin::{
    AgencyUpdateInput, CatalogEntity, MAX_CHANGES, NO_SUPERIOR_RESPONSIBLE, NO_SUPERIOR_VALIDATOR,
    ProcedureUpdateInput, UserUpdateInput,
};
pub use catalog::{NewAgencyInput, NewProcedureInput, NewUserInput, PolicyInput};
pub use import::{
    ImportCounts, ImportKind, ImportPreview, ImportRow, MAX_IMPORT_BYTES, RowOutcome,
};
pub use inbound::{InboundOutcome, MAX_MESSAGE_BYTES};
pub use incidents::{IncidentFilter, IncidentPage, NewIncidentInput};
pub use links::{LINK_LIFETIME, LinkMaker, LinkRefusal};
pub use org::OrgChart;
pub use outbox::{InboundDisposition, MASKED_TOKEN, MAX_LIST, OutboxState, OutgoingMail};
pub use public::{
    HISTORY_DAYS, PUBLIC_TTL, PastIncident, ProcedureHistory, PublicSnapshot, what_failed,
};
pub use timers::Fired;
pub use views::IncidentMail;
pub use webhooks::{
    BANNER as WEBHOOK_BANNER, BANNER_CHECK_ATTEMPTS, BANNER_CHECK_RETRY, BUTTON as WEBHOOK_BUTTON,
    BannerJob, BannerSeen, EVENT_TYPES as WEBHOOK_EVENT_TYPES, LOG_ROWS, ROTATION_OVERLAP,
    SECRET_PREFIX, STATE as WEBHOOK_STATE, WebhookAttemptDoc, WebhookDeliveryDoc, WebhookDoc,
    WebhookInput, WebhookJob, WebhookLogDoc, WebhookSecretDoc, new_webhook_secret,
};

/// Who is asking: a signed-in user as the service sees them (never a store row: what the
/// front ends may know of an account is exactly this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// The agency of an agency user.
    pub agency_id: Option<AgencyId>,
}

impl From<&User> for Caller {
    fn from(u: &User) -> Caller {
        Caller {
            id: u.id,
            name: u.name.clone(),
            role: u.role,
            agency_id: u.agency_id,
        }
    }
}

impl Caller {
    /// The person at the terminal of the machine that holds the database (the command
    /// line): whoever can open the database can already change anything in it, so they act
    /// as an administrator. Never built from a request.
    pub fn operator() -> Caller {
        Caller {
            id: UserId(0),
            name: "operador (línea de comandos)".into(),
            role: Role::Admin,
            agency_id: None,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.id,
            role: self.role,
            agency: self.agency_id,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The only agency an agency user may see; `None` for central roles, who see all.
    pub fn agency_scope(&self) -> Option<AgencyId> {
        match self.role {
            Role::Agency => self.agency_id,
            _ => None,
        }
    }

    /// Refuses unless the caller has one of `roles`; `action` names what was refused.
    /// Crate-private: authorization is decided in the service and the core, never by a
    /// front end (tests/layering.rs keeps http/ from the store; this keeps it from roles).
    pub(crate) fn require(&self, roles: &[Role], action: &str) -> Result<(), ServiceError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "su rol no permite {action}"
            )))
        }
    }
}

/// What a change means for the portal's side (see [`Service::portal_effects`]).
pub(crate) struct PortalEffects {
    pub webhooks: Vec<crate::store::NewWebhook>,
    pub banner_check: Option<Timestamp>,
    /// The procedures whose combined state may have moved, with the other incidents as
    /// read before the write.
    pub procedures: Option<Vec<webhooks::ProcedureView>>,
    /// Whether the other incidents were left unread (nobody took `procedure.*` events
    /// when the change was decided): see [`Service::reconcile_portal`].
    pub unread: bool,
}

/// A part of the service beyond incidents, with the roles its use-cases require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Received mail awaiting the help desk's review.
    Triage,
    /// Agencies, procedures, users (writes: admin).
    Catalog,
    /// SLO policy versions (read: help desk too).
    Policies,
    /// Emails queued, sent and dead.
    Outbox,
    /// Webhook subscriptions and their delivery logs.
    Webhooks,
    /// SLO reports (an agency user: its own agency's).
    Reports,
}

impl Area {
    /// Whether the caller's role may use this part: the same roles its use-cases require
    /// (the pages only use it to show or hide a link; the use-cases check for themselves).
    pub fn allows(self, caller: &Caller) -> bool {
        self.roles().contains(&caller.role)
    }

    pub fn roles(self) -> &'static [Role] {
        match self {
            Area::Triage => &[Role::Helpdesk, Role::Admin],
            Area::Catalog => &[Role::Admin],
            Area::Policies => &[Role::Admin, Role::Helpdesk],
            Area::Outbox => outbox::READERS,
            Area::Webhooks => webhooks::WEBHOOK_ADMINS,
            Area::Reports => reports::READERS,
        }
    }
}

/// A request's `Idempotency-Key` and a fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct IdemRequest {
    pub key: String,
    pub request_hash: String,
}

/// A rendered answer: HTTP status and JSON body. Idempotent replays return the first one
/// byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

/// Every way a use-case can fail. The HTTP layer maps each to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("se requiere iniciar sesión o un token válido")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("no se encontró {0}")]
    NotFound(String),
    /// The action does not fit the incident's state; `state` is its current state.
    #[error("{message}")]
    InvalidTransition {
        state: Option<String>,
        message: String,
        unmet: Vec<String>,
    },
    #[error("datos no válidos")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    #[error("demasiados intentos fallidos; espere {retry_after_s} s antes de volver a intentar")]
    TooManyAttempts { retry_after_s: u64 },
    #[error("esta Idempotency-Key ya se usó con otra solicitud")]
    IdempotencyKeyReused,
    #[error("la base de datos no está disponible")]
    Unavailable,
    /// Logged with its detail, answered as a generic error.
    #[error("error interno")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<DecideError> for ServiceError {
    fn from(e: DecideError) -> ServiceError {
        let message = e.to_string();
        match e {
            DecideError::InvalidTransition { state, .. } => ServiceError::InvalidTransition {
                state: state.map(|s| s.as_str().to_string()),
                message,
                unmet: Vec::new(),
            },
            DecideError::ClosingRuleNotMet(unmet) => ServiceError::InvalidTransition {
                state: None,
                message,
                unmet: unmet.iter().map(|c| c.as_str().to_string()).collect(),
            },
            DecideError::RoleNotAllowed { .. } => ServiceError::Forbidden(message),
            DecideError::NotYourAgency => ServiceError::NotFound("la incidencia".into()),
            DecideError::InvalidFields(fields) => ServiceError::Invalid(fields),
            // Nobody above on the ladder: about the incident's state, like a refused step.
            DecideError::NotDue { .. } | DecideError::NoSuperior { .. } => {
                ServiceError::InvalidTransition {
                    state: None,
                    message,
                    unmet: Vec::new(),
                }
            }
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::Conflict => ServiceError::Conflict(e.to_string()),
            StoreError::Duplicate(what) => ServiceError::Conflict(duplicate_message(&what)),
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::Invalid(msg) => ServiceError::invalid("body", msg),
            StoreError::WriterStopped => ServiceError::Unavailable,
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// A unique violation, named for the person who caused it.
fn duplicate_message(constraint: &str) -> String {
    let c = constraint.to_lowercase();
    if c.contains("homoclave") {
        "ya existe un trámite con esa homoclave".into()
    } else if c.contains("email") {
        "ya existe un usuario con ese correo electrónico".into()
    } else if c.contains("acronym") {
        "ya existe una dependencia con esas siglas".into()
    } else {
        "ya existe un registro con esos datos".into()
    }
}

/// How long a checked credential is trusted without asking the database again. A token
/// revoked from another process stops working within this time; a logout, at once.
pub const CREDENTIAL_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

/// Credentials checked recently: SHA-256 of the secret -> (caller, when checked).
type CredentialCache =
    std::sync::Mutex<std::collections::HashMap<String, (Caller, std::time::Instant)>>;

/// How a write tells the scheduler that something became due earlier than it planned to
/// wake up: it sleeps until its target or until notified.
#[derive(Debug)]
pub struct TimerWake {
    pub notify: tokio::sync::Notify,
    /// The instant (ms) the scheduler will wake up at; `i64::MAX` when it sleeps unbounded.
    pub target_ms: std::sync::atomic::AtomicI64,
}

impl Default for TimerWake {
    fn default() -> Self {
        TimerWake {
            notify: tokio::sync::Notify::new(),
            target_ms: std::sync::atomic::AtomicI64::new(i64::MAX),
        }
    }
}

impl TimerWake {
    /// Wakes the scheduler if `due` is before the instant it planned to wake up at.
    pub fn offer(&self, due: Option<Timestamp>) {
        use std::sync::atomic::Ordering;
        let Some(due) = due else { return };
        let ms = due.as_millisecond();
        if self.target_ms.fetch_min(ms, Ordering::SeqCst) > ms {
            self.notify.notify_one();
        }
    }
}

/// The application's use-cases over one store and one clock.
#[derive(Clone)]
pub struct Service {
    /// Private: every front end goes through the use-cases below.
    store: Store,
    pub clock: Arc<dyn Clock>,
    credentials: Arc<CredentialCache>,
    /// Shared with this process's scheduler.
    pub timers: Arc<TimerWake>,
    /// Wakes this process's outbox worker when a write queued mail.
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// Signs one-click links (loaded once).
    signer: Arc<std::sync::Mutex<Option<Arc<crate::links::LinkSigner>>>>,
    /// The org chart, reloaded when older than [`ORG_CHART_TTL`] or after a catalogue
    /// change made here.
    org: Arc<OrgSlot>,
    /// The SLO policy versions (SQLite only: see [`Service::policy_versions`]).
    policies: Arc<PolicySlot>,
    /// Every procedure's public state as last built (`public.rs`).
    public: Arc<public::PublicSlot>,
    /// Wakes this process's webhook worker when a write queued deliveries.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Wakes this process's banner checker when a write planned a check.
    pub banner_wake: Arc<tokio::sync::Notify>,
    /// How long after the agency reports the banner shown its page is checked; `None`:
    /// never (see [`Service::with_banner_check`]).
    banner_grace: Option<std::time::Duration>,
    /// The authserv-id of the receiving mail server whose `Authentication-Results` we
    /// believe (INCIDENCIAS_MAIL_AUTHSERV_ID); `None`: replies act only by their mark.
    mail_authserv: Option<Arc<str>>,
}

/// The cached org chart and when it was loaded.
type OrgSlot = std::sync::Mutex<Option<(std::time::Instant, Arc<OrgChart>)>>;

/// The cached policy versions and when they were loaded.
type PolicySlot =
    std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<incidencias_core::SloPolicy>>)>>;

/// How long a loaded org chart serves: a superior registered on another instance counts
/// for escalations within this time.
pub const ORG_CHART_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Service {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Service {
        Service {
            store,
            clock,
            credentials: Arc::default(),
            timers: Arc::default(),
            mail_wake: Arc::default(),
            signer: Arc::default(),
            org: Arc::default(),
            policies: Arc::default(),
            public: Arc::default(),
            webhook_wake: Arc::default(),
            banner_wake: Arc::default(),
            banner_grace: None,
            mail_authserv: None,
        }
    }

    /// Believes the `Authentication-Results` written by the receiving mail server
    /// `authserv_id` (INCIDENCIAS_MAIL_AUTHSERV_ID; see `inbound/authenticity.rs`).
    pub fn with_mail_authserv(mut self, authserv_id: Option<&str>) -> Service {
        self.mail_authserv = authserv_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Arc::from);
        self
    }

    /// Checks the procedure's page for the banner `grace` after the agency reports it
    /// shown (INCIDENCIAS_BANNER_CHECK_GRACE).
    pub fn with_banner_check(mut self, grace: Option<std::time::Duration>) -> Service {
        self.banner_grace = grace;
        self
    }

    /// What a change means for the portal's side besides emails: the webhook deliveries
    /// it announces (reading the other open incidents of its procedures when the portal's
    /// state may have changed) and, when the agency just reported the banner shown, when
    /// to look for it on the procedure's page.
    pub(crate) async fn portal_effects(
        &self,
        prior: Option<&incidencias_core::Incident>,
        after: &incidencias_core::Incident,
        events: &[incidencias_core::Event],
        org: Option<&OrgChart>,
        now: Timestamp,
    ) -> Result<PortalEffects, ServiceError> {
        let homoclaves = org.map(|o| o.homoclaves(after)).unwrap_or_default();
        // The procedure's combined state can only move when this incident's portal state
        // does, or when it is first published (closing needs the portal restored first;
        // a notified dismissal restores it with its own events).
        let portal_moved = prior.is_none_or(|p| {
            p.portal != after.portal || p.notified_at.is_some() != after.notified_at.is_some()
        });
        // The procedure's state is computed (from every other open incident touching
        // it) only for someone to tell it to: without a subscription to `procedure.*`
        // events no such delivery is written. A subscription created between this look
        // and the write's commit is told the procedure's whole state once the write is
        // done (`reconcile_portal`).
        let moved = portal_moved && after.notified_at.is_some();
        let combined = moved
            && self
                .store
                .webhooks_subscribed(webhooks::PROCEDURE_PREFIX)
                .await?;
        let mut procedures = Vec::new();
        for (id, homoclave) in after.procedure_ids.iter().zip(homoclaves) {
            let others = if combined {
                self.store
                    .open_incidents_of(*id)
                    .await?
                    .into_iter()
                    .filter(|i| i.folio != after.folio)
                    .collect()
            } else {
                Vec::new()
            };
            procedures.push(webhooks::ProcedureView {
                id: *id,
                homoclave,
                others,
            });
        }
        let hooks = webhooks::events_of(prior, after, &procedures, combined, now);
        let shown_by_agency = events.iter().any(|e| {
            matches!(
                &e.change,
                incidencias_core::Change::BannerSet {
                    shown: true,
                    cause: incidencias_core::BannerCause::Agency,
                    ..
                }
            )
        });
        let check = self
            .banner_grace
            .filter(|_| shown_by_agency)
            .and_then(|g| jiff::SignedDuration::try_from(g).ok())
            .and_then(|g| now.checked_add(g).ok());
        Ok(PortalEffects {
            webhooks: hooks,
            banner_check: check,
            // What to look at again once written (see `reconcile_portal`).
            procedures: moved.then_some(procedures),
            unread: !combined,
        })
    }

    /// After a change of the portal's state is written: each procedure's combined state
    /// as the database has it now, against the one announced (computed before the write,
    /// from the other incidents as they were). Two incidents of one procedure written at
    /// the same instant each miss the other's change; the later of them sees both here and
    /// announces the procedure's true state (ids ending `_r`). Best effort: a failure is
    /// logged (the change itself is written), and the status document stays exact.
    ///
    /// When the other incidents were left `unread` (nobody took `procedure.*` events
    /// before the write), nothing was announced: there is nothing to correct unless a
    /// subscription appeared meanwhile, which then hears the procedure's whole state as
    /// it is now (it may have heard a state without this change from a write that looked
    /// after it appeared).
    pub(crate) async fn reconcile_portal(
        &self,
        after: &incidencias_core::Incident,
        procedures: &[webhooks::ProcedureView],
        unread: bool,
        now: Timestamp,
    ) {
        if unread {
            match self
                .store
                .webhooks_subscribed(webhooks::PROCEDURE_PREFIX)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "no se pudo revisar si hay suscripciones nuevas");
                    return;
                }
            }
        }
        let mut hooks = Vec::new();
        for p in procedures {
            let fresh = match self.store.open_incidents_of(p.id).await {
                Ok(open) => incidencias_core::procedure_status(&open),
                Err(e) => {
                    tracing::warn!(error = %e, "no se pudo revisar el estado del trámite anunciado");
                    return;
                }
            };
            let announced = if unread {
                // Unlike the state now in every field announced: all of it is told.
                incidencias_core::portal::ProcedureStatus {
                    button_enabled: !fresh.button_enabled,
                    banner_shown: !fresh.banner_shown,
                    ..fresh.clone()
                }
            } else {
                incidencias_core::procedure_status(p.others.iter().chain(std::iter::once(after)))
            };
            hooks.extend(webhooks::procedure_events(
                after,
                &p.homoclave,
                &announced,
                &fresh,
                now,
            ));
        }
        if hooks.is_empty() {
            return;
        }
        let seq = i64::try_from(after.version).unwrap_or(i64::MAX);
        match self
            .store
            .add_webhooks(after.folio, seq, hooks, now, "_r")
            .await
        {
            Ok(()) => self.webhook_wake.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "no se pudo corregir el estado anunciado del trámite")
            }
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs a write that is not an incident append under the caller's `Idempotency-Key`:
    /// a retry with the same key and request gets the first answer, a reuse with another
    /// request is refused. The record is kept right after the write (not in its
    /// transaction): a crash in between lets one retry run the write again, which the
    /// catalogue's unique keys then refuse.
    pub async fn idempotent<F, Fut>(
        &self,
        caller: &Caller,
        idem: Option<IdemRequest>,
        status: u16,
        write: F,
    ) -> Result<Reply, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, ServiceError>>,
    {
        if let Some(reply) = self.replay(caller, &idem).await? {
            return Ok(reply);
        }
        let body = write().await?;
        if let Some(record) = Self::record(caller, &idem, status, &body) {
            match self.store.save_idempotency(record, self.now()).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    if let Some(reply) = self.replay(caller, &idem).await? {
                        return Ok(reply);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Reply {
            status,
            body,
            replayed: false,
        })
    }

    /// The org chart (see [`ORG_CHART_TTL`]).
    pub async fn org_chart(&self) -> Result<Arc<OrgChart>, ServiceError> {
        if let Ok(slot) = self.org.lock()
            && let Some((loaded, chart)) = slot.as_ref()
            && loaded.elapsed() < ORG_CHART_TTL
        {
            return Ok(chart.clone());
        }
        let chart = Arc::new(OrgChart::load(&self.store).await?);
        if let Ok(mut slot) = self.org.lock() {
            *slot = Some((std::time::Instant::now(), chart.clone()));
        }
        Ok(chart)
    }

    /// Forgets the org chart (and the policy versions) after a catalogue change.
    pub(crate) fn org_changed(&self) {
        if let Ok(mut slot) = self.org.lock() {
            *slot = None;
        }
        if let Ok(mut slot) = self.policies.lock() {
            *slot = None;
        }
    }

    /// Every SLO policy version. With SQLite, where this process makes the changes, kept
    /// like the org chart (for [`ORG_CHART_TTL`], forgotten at once after a change made
    /// here); with PostgreSQL read each time, so that a version published on another
    /// instance applies from its first instant.
    pub(crate) async fn policy_versions(
        &self,
    ) -> Result<Arc<Vec<incidencias_core::SloPolicy>>, ServiceError> {
        let cached = !self.shared_database();
        if cached
            && let Ok(slot) = self.policies.lock()
            && let Some((loaded, versions)) = slot.as_ref()
            && loaded.elapsed() < ORG_CHART_TTL
        {
            return Ok(versions.clone());
        }
        let versions = Arc::new(self.store.policies().await?);
        if cached && let Ok(mut slot) = self.policies.lock() {
            *slot = Some((std::time::Instant::now(), versions.clone()));
        }
        Ok(versions)
    }

    /// Whether the caller's role may perform `action` at all: an incident command by its
    /// [`incidencias_core::Command::name`] (the core's table), or a catalogue write
    /// (`create_agency`, `create_user`, `create_procedure`, `create_policy`, `update_agency`,
    /// `update_user`, `update_procedure`, `import`). Asked by a
    /// front end before it reads the rest of the request, so that a caller whose role may
    /// not act is refused whatever the request says (the API's 403 before 400 or 422). It
    /// judges the role only: the incident's agency and state are the use-case's to check.
    pub fn may_act(&self, caller: &Caller, action: &str) -> Result<(), ServiceError> {
        let roles = Command::roles_named(action)
            .or_else(|| catalog::roles_named(action))
            .ok_or_else(|| ServiceError::Internal(format!("acción desconocida: {action}")))?;
        if roles.contains(&caller.role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "el rol «{}» no permite esta acción",
                caller.role.label()
            )))
        }
    }

    /// `/readyz`: the database answers.
    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1")
            .execute(self.store.pool())
            .await
            .is_ok()
    }
}
