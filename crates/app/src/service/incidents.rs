//! The protocol's use-cases: report, every action on an incident, reads, the public status.

use incidencias_core::escalation::{Ladder, next_due};
use incidencias_core::{
    Channel, Command, Event, Folio, Incident, IncidentKind, IncidentState, NewReport, ProcedureId,
    Role, Severity, SloPolicy, Via, decide, policy_in_force,
};
use jiff::Timestamp;

use super::{Caller, IdemRequest, LinkMaker, OrgChart, Reply, Service, ServiceError, notify};
use crate::documents::{EventDoc, IncidentDoc};
use crate::store::{Effects, IdempotencyRecord, StoreError, StoredIncident};

/// Step 1 as the API receives it.
#[derive(Debug, Clone)]
pub struct NewIncidentInput {
    pub procedure_ids: Vec<ProcedureId>,
    pub kind: IncidentKind,
    pub description: String,
    pub occurred_at: Timestamp,
    pub channel: Channel,
}

#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub agency_id: Option<i64>,
    pub severity: Option<Severity>,
    pub breached: Option<bool>,
    /// Only open incidents (not closed nor dismissed).
    pub open_only: bool,
    /// Only the incidents whose next step is the caller's role's ("pendiente de mí").
    pub awaiting_me: bool,
    /// Nearest deadline first (the queue) instead of newest report first (the API).
    pub nearest_deadline_first: bool,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone)]
pub struct IncidentPage {
    pub items: Vec<IncidentDoc>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// How many times a command is re-decided on fresh state after losing a race.
const ATTEMPTS: usize = 5;

/// Folio years follow the calendar where the help desk works.
fn mexico_year(now: Timestamp) -> i16 {
    let tz = crate::clock::mexico_city();
    now.to_zoned_datetime(tz).year()
}

impl Service {
    /// The policy version in force now (the seed's if none is stored).
    pub(super) async fn policy_now(&self, now: Timestamp) -> Result<SloPolicy, ServiceError> {
        let policies = self.policy_versions().await?;
        Ok(policy_in_force(&policies, now)
            .cloned()
            .unwrap_or_else(SloPolicy::seed))
    }

    /// The policy `incident` is decided under: the version it was reported under, or (an
    /// incident stored before policies were recorded on it) the one in force `now`.
    pub(super) async fn policy_of(
        &self,
        incident: &Incident,
        now: Timestamp,
    ) -> Result<SloPolicy, ServiceError> {
        match &incident.policy {
            Some(p) => Ok(p.clone()),
            None => self.policy_now(now).await,
        }
    }

    /// The stored first answer for this key, or a refusal if the key came with another
    /// request.
    pub(super) async fn replay(
        &self,
        caller: &Caller,
        idem: &Option<IdemRequest>,
    ) -> Result<Option<Reply>, ServiceError> {
        let Some(idem) = idem else { return Ok(None) };
        match self.store.idempotency_record(caller.id, &idem.key).await? {
            None => Ok(None),
            Some(r) if r.request_hash == idem.request_hash => Ok(Some(Reply {
                status: r.status,
                body: r.response,
                replayed: true,
            })),
            Some(_) => Err(ServiceError::IdempotencyKeyReused),
        }
    }

    pub(super) fn record(
        caller: &Caller,
        idem: &Option<IdemRequest>,
        status: u16,
        body: &str,
    ) -> Option<IdempotencyRecord> {
        idem.as_ref().map(|i| IdempotencyRecord {
            user_id: caller.id,
            key: i.key.clone(),
            request_hash: i.request_hash.clone(),
            status,
            response: body.to_string(),
        })
    }

    /// Step 1. The agency comes from the procedures, which must all exist, be visible to
    /// the caller and belong to one agency.
    pub async fn report(
        &self,
        caller: &Caller,
        input: NewIncidentInput,
        idem: Option<IdemRequest>,
    ) -> Result<Reply, ServiceError> {
        self.report_via(caller, input, idem, Via::Api).await
    }

    /// [`Service::report`], asked through `via` (recorded on the event).
    pub async fn report_via(
        &self,
        caller: &Caller,
        input: NewIncidentInput,
        idem: Option<IdemRequest>,
        via: Via,
    ) -> Result<Reply, ServiceError> {
        caller.require(&[Role::Helpdesk, Role::Agency], "reportar incidencias")?;
        if let Some(reply) = self.replay(caller, &idem).await? {
            return Ok(reply);
        }
        let mut agency = None;
        // The org chart (cached for a few seconds) knows every procedure; one it does not
        // know yet (created a moment ago on another instance) is read from the database.
        let chart = self.org_chart().await?;
        for id in &input.procedure_ids {
            let procedure = match chart.procedure(*id) {
                Some(p) => Some(p.clone()),
                None => self.store.procedure(*id).await?,
            };
            let visible =
                procedure.filter(|p| caller.agency_scope().is_none_or(|a| a == p.agency_id));
            let Some(p) = visible else {
                return Err(ServiceError::invalid(
                    "procedure_ids",
                    format!("no existe el trámite {id}"),
                ));
            };
            if !p.active {
                return Err(ServiceError::invalid(
                    "procedure_ids",
                    format!(
                        "el trámite {} está dado de baja y no admite reportes nuevos",
                        p.homoclave
                    ),
                ));
            }
            match agency {
                None => agency = Some(p.agency_id),
                Some(a) if a != p.agency_id => {
                    return Err(ServiceError::invalid(
                        "procedure_ids",
                        "todos los trámites de una incidencia deben ser de la misma dependencia",
                    ));
                }
                Some(_) => {}
            }
        }
        // No procedure named (refused below by the protocol): an agency caller's own agency,
        // so the refusal names the missing field instead of reading as someone else's.
        let agency_id = agency
            .or(caller.agency_scope())
            .unwrap_or(incidencias_core::AgencyId(0));
        let now = self.now();
        let policy = self.policy_now(now).await?;
        let actor = caller.actor();

        // The reply, rendered once where the effects need it (for the idempotency record).
        let mut body = String::new();
        let created = self
            .store
            .create_incident(
                mexico_year(now),
                now,
                |folio| {
                    let command = Command::Report(NewReport {
                        folio,
                        agency_id,
                        procedure_ids: input.procedure_ids.clone(),
                        kind: input.kind,
                        description: input.description.clone(),
                        occurred_at: input.occurred_at,
                        channel: input.channel,
                    });
                    decide(None, &actor, &command, now, &policy)
                        .map(|events| with_via(events, &via))
                        .map_err(Creating::Refused)
                },
                |stored, events| {
                    body = render(&stored.incident, now);
                    // A new report is not published, and nobody can have shown a banner for
                    // it yet: no webhook, no banner check.
                    Effects {
                        next_due: None,
                        outbox: notify::for_events(&chart, &stored.incident, events, None)
                            .into_iter()
                            .map(notify::Outgoing::into_row)
                            .collect(),
                        idempotency: Self::record(caller, &idem, 201, &body),
                        used_link: None,
                        ..Effects::default()
                    }
                },
            )
            .await;
        match created {
            Ok(_) => Ok(Reply {
                status: 201,
                body,
                replayed: false,
            }),
            // A concurrent request with the same key won the race: its answer is ours.
            Err(Creating::Store(StoreError::Conflict)) if idem.is_some() => self
                .replay(caller, &idem)
                .await?
                .ok_or_else(|| ServiceError::Conflict(StoreError::Conflict.to_string())),
            Err(Creating::Store(e)) => Err(e.into()),
            Err(Creating::Refused(e)) => Err(e.into()),
        }
    }

    /// Loads an incident the caller may see (an agency user never learns that another
    /// agency's folio exists).
    pub(super) async fn visible(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<StoredIncident, ServiceError> {
        self.visible_as_of(caller, folio, false).await
    }

    /// `fresh`: read the database itself, not this process's cache (after a conflict).
    async fn visible_as_of(
        &self,
        caller: &Caller,
        folio: Folio,
        fresh: bool,
    ) -> Result<StoredIncident, ServiceError> {
        let stored = if fresh {
            self.store.load_fresh(folio).await?
        } else {
            self.store.load(folio).await?
        };
        match stored {
            Some(s)
                if caller
                    .agency_scope()
                    .is_none_or(|a| a == s.incident.agency_id) =>
            {
                Ok(s)
            }
            _ => Err(ServiceError::NotFound(format!("la incidencia {folio}"))),
        }
    }

    /// Any action on an existing incident, asked through the JSON API: decided on the
    /// latest state, retried on fresh state if another command got there first.
    pub async fn act(
        &self,
        caller: &Caller,
        folio: Folio,
        command: Command,
        idem: Option<IdemRequest>,
    ) -> Result<Reply, ServiceError> {
        self.act_via(caller, folio, command, idem, Via::Api).await
    }

    /// [`Service::act`], asked through `via` (recorded on the events).
    pub async fn act_via(
        &self,
        caller: &Caller,
        folio: Folio,
        command: Command,
        idem: Option<IdemRequest>,
        via: Via,
    ) -> Result<Reply, ServiceError> {
        self.act_using(caller, folio, command, idem, None, via)
            .await
    }

    /// `act`, using up a one-click link (its nonce) in the same transaction.
    pub(super) async fn act_using(
        &self,
        caller: &Caller,
        folio: Folio,
        command: Command,
        idem: Option<IdemRequest>,
        used_link: Option<String>,
        via: Via,
    ) -> Result<Reply, ServiceError> {
        if let Some(reply) = self.replay(caller, &idem).await? {
            return Ok(reply);
        }
        let actor = caller.actor();
        let not_found = || ServiceError::NotFound(format!("la incidencia {folio}"));
        let answer = self
            .on_latest(folio, false, Some((caller, &idem)), |prior, cx| {
                // An agency user never learns that another agency's folio exists.
                let Some(prior) =
                    prior.filter(|p| caller.agency_scope().is_none_or(|a| a == p.agency_id))
                else {
                    return Err(not_found());
                };
                let command = match &command {
                    Command::Escalate { reason, .. } => Command::Escalate {
                        reason: reason.clone(),
                        ladder: cx.ladder.clone(),
                    },
                    other => other.clone(),
                };
                let events = match decide(Some(prior), &actor, &command, cx.now, cx.policy) {
                    Ok(events) => with_via(events, &via),
                    Err(e) => return Err(with_state(e.into(), prior)),
                };
                let state = applied(prior, &events)?;
                let body = render(&state, cx.now);
                Ok(Plan::Append {
                    mail: notify::for_events(cx.org, &state, &events, cx.links),
                    idempotency: Self::record(caller, &idem, 200, &body),
                    used_link: used_link.clone(),
                    events,
                    state: Box::new(state),
                    answer: Reply {
                        status: 200,
                        body,
                        replayed: false,
                    },
                })
            })
            .await;
        match answer {
            Ok(Latest::Done(reply) | Latest::Replayed(reply)) => Ok(reply),
            // A retry racing its own first attempt sees the state that attempt made and is
            // refused; its answer is the first one's.
            Err(e @ (ServiceError::InvalidTransition { .. } | ServiceError::Invalid(_))) => {
                match self.replay(caller, &idem).await? {
                    Some(reply) => Ok(reply),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// THE use-case loop, for requests, email replies, one-click links and the scheduler
    /// alike: load the incident's latest state, let `plan` decide on it, append the events
    /// with their emails, next due instant and idempotency record in one transaction, wake
    /// the scheduler and the outbox worker. When another writer got there first (the
    /// append's version check), it starts over on fresh state; a request with an
    /// `Idempotency-Key` first looks whether that writer was its own retry.
    pub(super) async fn on_latest<T>(
        &self,
        folio: Folio,
        always_fresh: bool,
        requester: Option<(&Caller, &Option<IdemRequest>)>,
        mut plan: impl FnMut(Option<&Incident>, &Context<'_>) -> Result<Plan<T>, ServiceError>,
    ) -> Result<Latest<T>, ServiceError> {
        for attempt in 0..ATTEMPTS {
            let stored = if always_fresh || attempt > 0 {
                self.store.load_fresh(folio).await?
            } else {
                self.store.load(folio).await?
            };
            let now = self.now();
            let org = self.org_chart().await?;
            let (ladder, policy) = match &stored {
                Some(s) => (
                    org.ladder(&s.incident),
                    self.policy_of(&s.incident, now).await?,
                ),
                None => (Ladder::default(), SloPolicy::seed()),
            };
            let links = self.link_maker(now).await.ok();
            let cx = Context {
                now,
                org: &org,
                ladder: &ladder,
                policy: &policy,
                links: links.as_ref(),
            };
            let (prior, events, state, mail, idempotency, used_link, answer) =
                match (plan(stored.as_ref().map(|s| &s.incident), &cx)?, stored) {
                    (Plan::Nothing(answer), _) => return Ok(Latest::Done(answer)),
                    (Plan::Append { .. }, None) => {
                        return Err(ServiceError::NotFound(format!("la incidencia {folio}")));
                    }
                    (
                        Plan::Append {
                            events,
                            state,
                            mail,
                            idempotency,
                            used_link,
                            answer,
                        },
                        Some(prior),
                    ) => (prior, events, state, mail, idempotency, used_link, answer),
                };
            let (effects, written) = self
                .effects_of(&prior.incident, &state, &events, mail, &org, now)
                .await?;
            let effects = Effects {
                idempotency,
                used_link,
                ..effects
            };
            match self.store.append(&prior, events, effects, now).await {
                Ok(_) => {
                    self.after_append(&state, written, now).await;
                    return Ok(Latest::Done(answer));
                }
                Err(StoreError::Conflict) => {
                    if let Some((caller, idem)) = requester
                        && let Some(reply) = self.replay(caller, idem).await?
                    {
                        return Ok(Latest::Replayed(reply));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(
            "la incidencia está recibiendo muchos cambios a la vez; vuelva a intentarlo".into(),
        ))
    }

    /// What an append of `events` (from `prior` to `state`) writes besides them: the next
    /// due instant, the emails, the portal's webhooks and banner check; and what to do once
    /// it is written ([`Service::after_append`]).
    pub(super) async fn effects_of(
        &self,
        prior: &Incident,
        state: &Incident,
        events: &[Event],
        mail: Vec<notify::Outgoing>,
        org: &OrgChart,
        now: Timestamp,
    ) -> Result<(Effects, Written), ServiceError> {
        let due = next_due(state, &org.ladder(state));
        let portal = self
            .portal_effects(Some(prior), state, events, Some(org), now)
            .await?;
        let effects = Effects {
            next_due: due,
            outbox: mail.into_iter().map(notify::Outgoing::into_row).collect(),
            idempotency: None,
            used_link: None,
            webhooks: portal.webhooks,
            banner_check: portal.banner_check,
        };
        let written = Written {
            due,
            mails: !effects.outbox.is_empty(),
            hooks: !effects.webhooks.is_empty(),
            check: effects.banner_check.is_some(),
            procedures: portal.procedures,
            unread: portal.unread,
        };
        Ok((effects, written))
    }

    /// Once an append is written: wakes the scheduler and the workers it gave work to, and
    /// re-checks the procedures whose combined state may have moved.
    pub(super) async fn after_append(&self, state: &Incident, written: Written, now: Timestamp) {
        self.timers.offer(written.due);
        if written.mails {
            self.mail_wake.notify_one();
        }
        if written.hooks {
            self.webhook_wake.notify_one();
        }
        if written.check {
            self.banner_wake.notify_one();
        }
        if let Some(procedures) = &written.procedures {
            self.reconcile_portal(state, procedures, written.unread, now)
                .await;
        }
    }

    pub async fn incident(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<IncidentDoc, ServiceError> {
        let stored = self.visible(caller, folio).await?;
        Ok(IncidentDoc::of(&stored.incident, self.now()))
    }

    pub async fn events(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<Vec<EventDoc>, ServiceError> {
        self.visible(caller, folio).await?;
        let org = self.org_chart().await?;
        Ok(self
            .store
            .events(folio)
            .await?
            .into_iter()
            .map(|e| {
                let mut doc = EventDoc::from(e);
                doc.actor_name = doc.actor["id"]
                    .as_i64()
                    .and_then(|id| org.name(incidencias_core::UserId(id)));
                doc
            })
            .collect())
    }

    /// The emails received about an incident (replies recorded on it, the ones that
    /// acted, the report that opened it), for whoever may see the incident.
    pub async fn incident_messages(
        &self,
        caller: &Caller,
        folio: Folio,
    ) -> Result<Vec<crate::documents::ReceivedDoc>, ServiceError> {
        self.visible(caller, folio).await?;
        Ok(self
            .store
            .inbound_of(&folio.to_string())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn list(
        &self,
        caller: &Caller,
        filter: IncidentFilter,
    ) -> Result<IncidentPage, ServiceError> {
        let now = self.now();
        let per_page = filter.per_page.clamp(1, 200);
        let page = filter.page.max(1);
        let agency = match (caller.agency_scope(), filter.agency_id) {
            (Some(own), Some(asked)) if own.0 != asked => {
                return Ok(IncidentPage {
                    items: Vec::new(),
                    page,
                    per_page,
                    total: 0,
                });
            }
            (Some(own), _) => Some(own.0),
            (None, asked) => asked,
        };
        let (rows, total) = self
            .store
            .list_incidents(crate::store::ListQuery {
                state: filter.state,
                agency_id: agency,
                severity: filter.severity,
                breached: filter.breached.map(|b| (b, now)),
                open_only: filter.open_only,
                states_in: if filter.awaiting_me {
                    // A role that never has the next step gets an impossible filter, not
                    // every incident.
                    let states = incidencias_core::actions::states_awaiting(caller.role());
                    if states.is_empty() {
                        return Ok(IncidentPage {
                            items: Vec::new(),
                            page,
                            per_page,
                            total: 0,
                        });
                    }
                    states.to_vec()
                } else {
                    Vec::new()
                },
                order: if filter.nearest_deadline_first {
                    crate::store::ListOrder::NearestDeadline
                } else {
                    crate::store::ListOrder::NewestReport
                },
                offset: u64::from(page - 1) * u64::from(per_page),
                limit: u64::from(per_page),
            })
            .await?;
        Ok(IncidentPage {
            items: rows.iter().map(|i| IncidentDoc::of(i, now)).collect(),
            page,
            per_page,
            total,
        })
    }
}

/// What the use-case loop knows when a plan is made: the instant, the org chart, the
/// incident's escalation ladder and SLO policy, and the link signer.
pub(super) struct Context<'a> {
    pub now: Timestamp,
    pub org: &'a OrgChart,
    pub ladder: &'a Ladder,
    pub policy: &'a SloPolicy,
    pub links: Option<&'a LinkMaker>,
}

/// What an append leaves to do once it is written (see [`Service::after_append`]).
pub(super) struct Written {
    due: Option<Timestamp>,
    mails: bool,
    hooks: bool,
    check: bool,
    procedures: Option<Vec<super::webhooks::ProcedureView>>,
    unread: bool,
}

/// What a use-case makes of an incident's latest state.
pub(super) enum Plan<T> {
    /// Nothing to write; answer this.
    Nothing(T),
    /// Append `events` (which lead to `state`) with their emails and records.
    Append {
        events: Vec<Event>,
        /// Boxed: an incident is large, and most plans that append are small otherwise.
        state: Box<Incident>,
        mail: Vec<notify::Outgoing>,
        idempotency: Option<IdempotencyRecord>,
        used_link: Option<String>,
        answer: T,
    },
}

/// Why step 1 stored nothing: the store failed, or the protocol refused the report.
enum Creating {
    Store(StoreError),
    Refused(incidencias_core::DecideError),
}

impl From<StoreError> for Creating {
    fn from(e: StoreError) -> Creating {
        Creating::Store(e)
    }
}

/// The events a person asked for, with how the request arrived (the system's automatic
/// consequences keep none: nobody asked for them).
fn with_via(events: Vec<Event>, via: &Via) -> Vec<Event> {
    events
        .into_iter()
        .map(|mut e| {
            if e.actor != incidencias_core::Actor::System {
                e.via = Some(via.clone());
            }
            e
        })
        .collect()
}

/// How the use-case loop ended.
pub(super) enum Latest<T> {
    /// The plan's answer (after its append, if it made one).
    Done(T),
    /// Another writer was this request's own earlier attempt: its first answer.
    Replayed(Reply),
}

/// `prior` after `events`.
pub(super) fn applied(prior: &Incident, events: &[Event]) -> Result<Incident, ServiceError> {
    applied_to(prior.clone(), events)
}

/// `state` after `events`, without a copy of it.
pub(super) fn applied_to(mut state: Incident, events: &[Event]) -> Result<Incident, ServiceError> {
    for e in events {
        state =
            Incident::apply(Some(state), e).map_err(|e| ServiceError::Internal(e.to_string()))?;
    }
    Ok(state)
}

fn render(incident: &Incident, now: Timestamp) -> String {
    serde_json::to_string(&IncidentDoc::of(incident, now)).unwrap_or_else(|_| "{}".to_string())
}

/// A refusal names the incident's current state even when the core's error does not carry
/// it (a refused close lists the unmet conditions instead).
fn with_state(e: ServiceError, incident: &Incident) -> ServiceError {
    match e {
        ServiceError::InvalidTransition {
            state: None,
            message,
            unmet,
        } => ServiceError::InvalidTransition {
            state: Some(incident.state.as_str().to_string()),
            message,
            unmet,
        },
        other => other,
    }
}
