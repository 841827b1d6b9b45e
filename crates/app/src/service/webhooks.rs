//! Webhook subscriptions (administrators), what the webhook worker and the banner checker
//! need, and what they record.

use incidencias_core::{Actor, Command, FieldError, Folio, Role, decide};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, Service, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use incidencias_core::Incident;
use serde_json::json;

use crate::store::{
    AttemptOutcome, NewWebhook, WebhookAttempt, WebhookDelivery, WebhookSubscription,
};

/// The event types a subscription may choose: name and what it is, in Spanish.
pub const EVENT_TYPES: [(&str, &str); 3] = [
    (
        BUTTON,
        "Botón del trámite: se deshabilitó o se habilitó en el portal",
    ),
    (
        BANNER,
        "Cortinilla: la dependencia la desplegó, cambió su mensaje o la retiró",
    ),
    (STATE, "Estado de la incidencia: cambió de etapa"),
];

pub const BUTTON: &str = "procedure.button";
pub const BANNER: &str = "procedure.banner";
pub const STATE: &str = "incident.state";
/// What the types of a procedure's combined state ([`BUTTON`], [`BANNER`]) start with.
pub const PROCEDURE_PREFIX: &str = "procedure.";

/// The prefix of a secret as Standard Webhooks writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// One procedure of the incident: its homoclave and the other open incidents touching it
/// (their combined state is what the portal shows).
pub(crate) struct ProcedureView {
    pub id: incidencias_core::ProcedureId,
    pub homoclave: String,
    pub others: Vec<Incident>,
}

/// A webhook body: `{type, timestamp, data}`.
fn webhook(
    event_type: &'static str,
    scope: Option<&str>,
    at: Timestamp,
    data: serde_json::Value,
) -> NewWebhook {
    NewWebhook {
        event_type: event_type.to_string(),
        scope: scope.map(str::to_string),
        body: json!({
            "type": event_type,
            "timestamp": at.to_string(),
            "data": data,
        })
        .to_string(),
    }
}

/// What a procedure's combined state going from `before` to `now` announces, caused by
/// `after` (its folio and version).
pub(crate) fn procedure_events(
    after: &Incident,
    homoclave: &str,
    before: &incidencias_core::portal::ProcedureStatus,
    now: &incidencias_core::portal::ProcedureStatus,
    at: Timestamp,
) -> Vec<NewWebhook> {
    let mut out = Vec::new();
    let folio = after.folio.to_string();
    if before.button_enabled != now.button_enabled {
        out.push(webhook(
            BUTTON,
            Some(homoclave),
            at,
            json!({
                "folio": folio,
                "version": after.version,
                "procedure": homoclave,
                "button_enabled": now.button_enabled,
            }),
        ));
    }
    if before.banner_shown != now.banner_shown || before.banner_message != now.banner_message {
        out.push(webhook(
            BANNER,
            Some(homoclave),
            at,
            json!({
                "folio": folio,
                "version": after.version,
                "procedure": homoclave,
                "shown": now.banner_shown,
                "message": now.banner_message,
            }),
        ));
    }
    out
}

/// What changed between `prior` (none: a new report) and `after`, as webhook bodies.
/// Only what is published: nothing about a report before it is notified (it may still be
/// dismissed as a false alarm, and nobody outside the help desk knew of it). The button
/// and the banner are announced per procedure as the portal must show them: combined
/// with the procedure's other open incidents, and only when that combination changed
/// (and only with `combined`: when those incidents were read for someone to tell).
pub(crate) fn events_of(
    prior: Option<&Incident>,
    after: &Incident,
    procedures: &[ProcedureView],
    combined: bool,
    at: Timestamp,
) -> Vec<NewWebhook> {
    let mut out = Vec::new();
    if after.notified_at.is_none() {
        return out;
    }
    let combinations = if combined { procedures } else { &[] };
    for p in combinations {
        let status = |incident: Option<&Incident>| {
            incidencias_core::procedure_status(p.others.iter().chain(incident))
        };
        let (before, now) = (status(prior), status(Some(after)));
        out.extend(procedure_events(after, &p.homoclave, &before, &now, at));
    }
    // The first state published is the notified one: "previous" is then none.
    let previous = prior
        .filter(|p| p.notified_at.is_some())
        .map(|p| p.state.as_str());
    if previous != Some(after.state.as_str()) {
        out.push(webhook(
            STATE,
            None,
            at,
            json!({
                "folio": after.folio.to_string(),
                "version": after.version,
                "procedures": procedures.iter().map(|p| p.homoclave.as_str()).collect::<Vec<_>>(),
                "state": after.state.as_str(),
                "previous_state": previous,
                "severity": after.severity.map(|s| s.as_str()),
            }),
        ));
    }
    out
}

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn new_webhook_secret() -> Result<String, String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("sin fuente de azar: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// Who manages subscriptions and reads their logs.
pub const WEBHOOK_ADMINS: &[Role] = &[Role::Admin];

/// How long a replaced secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Most rows a delivery log shows.
pub const LOG_ROWS: i64 = 200;

/// A subscription as administrators see it: the secret only as a hint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDoc {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// Event types: `procedure.button`, `procedure.banner`, `incident.state`.
    pub events: Vec<String>,
    pub active: bool,
    /// The first characters of the current secret, to tell which one a receiver holds.
    pub secret_hint: String,
    /// While a replaced secret still signs (after a rotation), until when.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A subscription just created or rotated, with its secret: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSecretDoc {
    pub subscription: WebhookDoc,
    /// `whsec_` + base64: the key of the HMAC-SHA256 signatures.
    pub secret: String,
}

/// One event to one subscription and how its delivery goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveryDoc {
    /// The `webhook-id` header: the same on every retry.
    pub message_id: String,
    pub event_type: String,
    pub folio: Option<String>,
    /// `pending`, `delivered` or `dead` (no more retries).
    pub state: String,
    pub attempts: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The next attempt, while pending.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, in Spanish.
    pub last_error: Option<String>,
    /// The body, exactly as signed and sent.
    pub payload: String,
}

impl WebhookDeliveryDoc {
    fn of(d: &WebhookDelivery) -> WebhookDeliveryDoc {
        WebhookDeliveryDoc {
            message_id: d.message_id.clone(),
            event_type: d.event_type.clone(),
            folio: d.folio.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            created_at: ts(d.created_at),
            next_attempt_at: (d.state == "pending").then(|| ts(d.next_attempt_at)),
            delivered_at: d.delivered_at.map(ts),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            payload: d.payload.clone(),
        }
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttemptDoc {
    pub message_id: String,
    pub event_type: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i64>,
    /// Why it failed, in Spanish; null when delivered.
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl WebhookAttemptDoc {
    fn of(a: &WebhookAttempt) -> WebhookAttemptDoc {
        WebhookAttemptDoc {
            message_id: a.message_id.clone(),
            event_type: a.event_type.clone(),
            at: ts(a.at),
            status: a.status,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

/// A subscription's delivery log: its latest deliveries and attempts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookLogDoc {
    pub subscription: WebhookDoc,
    pub deliveries: Vec<WebhookDeliveryDoc>,
    pub attempts: Vec<WebhookAttemptDoc>,
}

/// A new subscription as asked.
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
}

/// A delivery to send now: where, the body, and every secret that signs it.
#[derive(Debug, Clone)]
pub struct WebhookJob {
    pub delivery: WebhookDelivery,
    pub url: String,
    pub secrets: Vec<String>,
}

/// A banner check due: the incident and the pages (homoclave, URL) of its procedures.
#[derive(Debug, Clone)]
pub struct BannerJob {
    pub id: i64,
    pub folio: String,
    /// The `banner_set` event checked.
    pub seq: i64,
    /// Earlier looks that could not tell.
    pub attempts: i64,
    pub pages: Vec<(String, String)>,
}

/// What a look at the incident's pages found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerSeen {
    /// Every page shows the banner.
    Found,
    /// A page answered and does not show it: (URL, what was seen).
    Missing(String, String),
    /// A page could not tell (it did not answer, answered an error, redirected outside the
    /// portal, or is not on the portal): (URL, why). Looked at again later; never a
    /// warning by itself.
    Unknown(String, String),
}

/// The longest description of what a look saw that is recorded.
const MAX_DETAIL_CHARS: usize = 300;

/// How many looks that could not tell a check makes before it gives up (quietly: the page
/// may be down for reasons the help desk hears of otherwise).
pub const BANNER_CHECK_ATTEMPTS: i64 = 3;

/// The wait between two looks that could not tell.
pub const BANNER_CHECK_RETRY: jiff::SignedDuration = jiff::SignedDuration::from_mins(2);

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl WebhookDoc {
    fn of(s: &WebhookSubscription, now: Timestamp) -> WebhookDoc {
        WebhookDoc {
            id: s.id,
            url: s.url.clone(),
            description: s.description.clone(),
            events: s.events.clone(),
            active: s.active,
            secret_hint: format!("{}…", s.secret.chars().take(12).collect::<String>()),
            previous_secret_until: s
                .previous_until
                .map(ts)
                .filter(|u| s.previous_secret.is_some() && *u > now),
            created_at: ts(s.created_at),
        }
    }
}

/// The secrets that sign now: the current one, and the replaced one during its overlap.
fn signing_secrets(s: &WebhookSubscription, now: Timestamp) -> Vec<String> {
    let mut out = vec![s.secret.clone()];
    if let (Some(prev), Some(until)) = (&s.previous_secret, s.previous_until)
        && until > now.as_millisecond()
    {
        out.push(prev.clone());
    }
    out
}

/// Checks a receiver's address: http or https, with a host, no credentials in it.
fn check_url(url: &str) -> Result<String, FieldError> {
    let url = url.trim();
    let parsed = url::Url::parse(url).map_err(|_| {
        FieldError::new(
            "url",
            "escriba una dirección completa, como https://portal.gob.mx/webhooks",
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(FieldError::new(
            "url",
            "la dirección debe comenzar con https:// (o http://) y tener un dominio",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FieldError::new(
            "url",
            "la dirección no debe llevar usuario ni contraseña: la firma autentica los envíos",
        ));
    }
    if url.len() > 2000 {
        return Err(FieldError::new("url", "la dirección es demasiado larga"));
    }
    Ok(parsed.to_string())
}

fn check_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for e in events {
        let e = e.trim();
        if !EVENT_TYPES.iter().any(|(name, _)| *name == e) {
            return Err(FieldError::new(
                "events",
                format!(
                    "«{e}» no es un tipo de evento; elija entre procedure.button, procedure.banner e incident.state"
                ),
            ));
        }
        if !out.iter().any(|x: &String| x == e) {
            out.push(e.to_string());
        }
    }
    if out.is_empty() {
        return Err(FieldError::new(
            "events",
            "elija al menos un tipo de evento",
        ));
    }
    Ok(out)
}

impl Service {
    /// Every subscription, newest first.
    pub async fn webhooks(&self, caller: &Caller) -> Result<Vec<WebhookDoc>, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        let now = self.now();
        Ok(self
            .store
            .webhooks()
            .await?
            .iter()
            .map(|s| WebhookDoc::of(s, now))
            .collect())
    }

    /// A new subscription; its secret is in the answer, and nowhere else after.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        input: WebhookInput,
    ) -> Result<WebhookSecretDoc, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        let mut errors: Vec<FieldError> = Vec::new();
        let url = check_url(&input.url).map_err(|e| errors.push(e)).ok();
        let events = check_events(&input.events).map_err(|e| errors.push(e)).ok();
        let description = input.description.trim().to_string();
        if description.chars().count() > 200 {
            errors.push(FieldError::new(
                "description",
                "la descripción admite hasta 200 caracteres",
            ));
        }
        let (Some(url), Some(events), true) = (url, events, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let secret = new_webhook_secret().map_err(ServiceError::Internal)?;
        let now = self.now();
        let stored = self
            .store
            .create_webhook(url, description, events, secret.clone(), caller.id.0, now)
            .await?;
        tracing::info!(
            id = stored.id,
            by = caller.id.0,
            "suscripción de webhook creada"
        );
        Ok(WebhookSecretDoc {
            subscription: WebhookDoc::of(&stored, now),
            secret,
        })
    }

    async fn subscription(&self, id: i64) -> Result<WebhookSubscription, ServiceError> {
        self.store
            .webhook(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("la suscripción".into()))
    }

    /// A new secret; the one it replaces keeps signing for [`ROTATION_OVERLAP`] (every
    /// delivery carries both signatures meanwhile).
    pub async fn rotate_webhook(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<WebhookSecretDoc, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        self.subscription(id).await?;
        let secret = new_webhook_secret().map_err(ServiceError::Internal)?;
        let now = self.now();
        self.store
            .rotate_webhook_secret(id, secret.clone(), now + ROTATION_OVERLAP)
            .await?;
        tracing::info!(id, by = caller.id.0, "secreto de webhook rotado");
        let stored = self.subscription(id).await?;
        Ok(WebhookSecretDoc {
            subscription: WebhookDoc::of(&stored, now),
            secret,
        })
    }

    /// Pauses or resumes a subscription.
    pub async fn set_webhook_active(
        &self,
        caller: &Caller,
        id: i64,
        active: bool,
    ) -> Result<WebhookDoc, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        self.subscription(id).await?;
        self.store.set_webhook_active(id, active).await?;
        if active {
            self.webhook_wake.notify_one();
        }
        Ok(WebhookDoc::of(&self.subscription(id).await?, self.now()))
    }

    /// Sends the subscription's dead deliveries again.
    /// Answers how many go out again (a dead delivery superseded by a later one of the
    /// same incident and type stays dead: see [`crate::store::Store::retry_webhook`]).
    pub async fn retry_webhook(&self, caller: &Caller, id: i64) -> Result<u64, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        self.subscription(id).await?;
        let n = self.store.retry_webhook(id, self.now()).await?;
        self.webhook_wake.notify_one();
        Ok(n)
    }

    /// A subscription with its latest deliveries and attempts (the delivery log).
    pub async fn webhook_log(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<WebhookLogDoc, ServiceError> {
        caller.require(WEBHOOK_ADMINS, "administrar los webhooks")?;
        let s = self.subscription(id).await?;
        let (deliveries, attempts) = tokio::try_join!(
            self.store.webhook_deliveries(id, LOG_ROWS),
            self.store.webhook_attempts(id, LOG_ROWS),
        )?;
        Ok(WebhookLogDoc {
            subscription: WebhookDoc::of(&s, self.now()),
            deliveries: deliveries.iter().map(WebhookDeliveryDoc::of).collect(),
            attempts: attempts.iter().map(WebhookAttemptDoc::of).collect(),
        })
    }

    /// Leases the deliveries due now, with where and how to sign each.
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<WebhookJob>, ServiceError> {
        let now = self.now();
        let rows = self
            .store
            .claim_webhooks(owner, now, lease_until, limit)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let subscriptions = self.store.webhooks().await?;
        Ok(rows
            .into_iter()
            .filter_map(|delivery| {
                let s = subscriptions
                    .iter()
                    .find(|s| s.id == delivery.subscription_id)?;
                Some(WebhookJob {
                    url: s.url.clone(),
                    secrets: signing_secrets(s, now),
                    delivery,
                })
            })
            .collect())
    }

    /// Records an attempt (see [`crate::store::Store::webhook_attempted`]).
    pub async fn webhook_attempted(
        &self,
        id: i64,
        owner: &str,
        outcome: AttemptOutcome,
        delivered: bool,
        next: Option<Timestamp>,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .webhook_attempted(id, owner, outcome, delivered, next)
            .await?)
    }

    pub async fn webhook_released(&self, id: i64, owner: &str) -> Result<(), ServiceError> {
        Ok(self.store.webhook_release(id, owner).await?)
    }

    pub async fn next_webhook_attempt(&self) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.next_webhook_attempt(self.now()).await?)
    }

    /// Leases the banner checks due now, with the pages to look at.
    pub async fn claim_banner_checks(
        &self,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<BannerJob>, ServiceError> {
        let rows = self
            .store
            .claim_banner_checks(owner, self.now(), lease_until, limit)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let org = self.org_chart().await?;
        let mut out = Vec::new();
        for row in rows {
            let folio = Folio::parse(&row.folio)
                .map_err(|e| ServiceError::Internal(format!("folio guardado no válido: {e}")))?;
            let pages = match self.store.load(folio).await? {
                Some(stored) => org.portal_pages(&stored.incident),
                None => Vec::new(),
            };
            out.push(BannerJob {
                id: row.id,
                folio: row.folio,
                seq: row.seq,
                attempts: row.attempts,
                pages,
            });
        }
        Ok(out)
    }

    pub async fn next_banner_check(&self) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.next_banner_check(self.now()).await?)
    }

    /// Gives a leased check back untouched (the checker ran out of lease time).
    pub async fn banner_check_released(
        &self,
        job: &BannerJob,
        owner: &str,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .banner_check_later(job.id, owner, self.now(), None)
            .await?)
    }

    /// The check's result. Found: recorded with the check. Missing: recorded on the
    /// incident (the `banner_not_seen` event, which warns the help desk by email) unless
    /// the banner is no longer reported shown or the incident ended (the check is then
    /// marked skipped). Unknown: looked at again after [`BANNER_CHECK_RETRY`], at most
    /// [`BANNER_CHECK_ATTEMPTS`] times, then skipped. The event is recorded once even if
    /// the check runs again after a crash between the two writes.
    pub async fn banner_check_done(
        &self,
        job: &BannerJob,
        owner: &str,
        seen: BannerSeen,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        let (url, detail) = match seen {
            BannerSeen::Found => {
                let pages: Vec<&str> = job.pages.iter().map(|(_, u)| u.as_str()).collect();
                let note = format!("encontrada en {}", pages.join(", "));
                self.store
                    .banner_checked(job.id, owner, "found", note, now)
                    .await?;
                return Ok(());
            }
            BannerSeen::Unknown(url, why) => {
                let note = format!("{url}: {why}");
                if job.attempts + 1 < BANNER_CHECK_ATTEMPTS {
                    self.store
                        .banner_check_later(job.id, owner, now + BANNER_CHECK_RETRY, Some(note))
                        .await?;
                } else {
                    tracing::warn!(folio = %job.folio, %url, reason = %why, "no se pudo revisar la cortinilla");
                    let note = format!("no se pudo revisar: {note}");
                    self.store
                        .banner_checked(job.id, owner, "skipped", note, now)
                        .await?;
                }
                return Ok(());
            }
            BannerSeen::Missing(url, detail) => (url, detail),
        };
        let folio = Folio::parse(&job.folio)
            .map_err(|e| ServiceError::Internal(format!("folio guardado no válido: {e}")))?;
        // Already recorded (this check ran before and stopped short of marking itself)?
        let recorded_before = self
            .store
            .events(folio)
            .await?
            .iter()
            .any(|e| e.seq > job.seq && e.kind == "banner_not_seen");
        let detail: String = detail.chars().take(MAX_DETAIL_CHARS).collect();
        let command = Command::RecordBannerNotSeen {
            url: url.clone(),
            detail: detail.clone(),
        };
        let recorded = if recorded_before {
            Ok(())
        } else {
            self.act_as_system(folio, &command).await
        };
        let (state, note) = match recorded {
            Ok(()) => ("missing", format!("{url}: {detail}")),
            Err(ServiceError::InvalidTransition { message, .. }) => (
                "skipped",
                format!("{url}: {detail} (no se registró: {message})"),
            ),
            Err(e) => return Err(e),
        };
        self.store
            .banner_checked(job.id, owner, state, note, now)
            .await?;
        Ok(())
    }

    /// Runs a command of the service's own on an incident (the banner check's record).
    async fn act_as_system(&self, folio: Folio, command: &Command) -> Result<(), ServiceError> {
        use super::incidents::{Plan, applied};
        self.on_latest(folio, true, None, |prior, cx| {
            let Some(prior) = prior else {
                return Err(ServiceError::NotFound(format!("la incidencia {folio}")));
            };
            let events = decide(Some(prior), &Actor::System, command, cx.now, cx.policy)?;
            let state = applied(prior, &events)?;
            Ok(Plan::Append {
                mail: super::notify::for_events(cx.org, &state, &events, cx.links),
                idempotency: None,
                used_link: None,
                events,
                state: Box::new(state),
                answer: (),
            })
        })
        .await
        .map(|_| ())
    }
}
