//! The SLO timers as the scheduler drives them: which incidents are due, and firing what is
//! due on one of them through the same use-case loop as every request
//! ([`Service::on_latest`]).

use incidencias_core::escalation::{ActionKey, due_actions, next_due};
use incidencias_core::{Actor, Command, Folio, Incident, decide};
use jiff::Timestamp;

use super::incidents::{Context, Latest, Plan, applied_to};
use super::{Service, ServiceError, notify};
use crate::store::StoreError;

/// One executed action, for observers (tests, the benchmark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub key: ActionKey,
    pub due_at: Timestamp,
    pub fired_at: Timestamp,
}

impl Service {
    /// Whether other instances may write timers too (PostgreSQL): then the scheduler looks
    /// again now and then even without a due timer.
    pub fn shared_database(&self) -> bool {
        self.store.backend() == crate::store::Backend::Postgres
    }

    /// Leases up to `limit` due timers to `owner` until `lease_until`; their folios.
    pub async fn claim_due_timers(
        &self,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<Folio>, ServiceError> {
        let claimed = self
            .store
            .claim_due_timers(owner, self.now(), lease_until, limit)
            .await?;
        Ok(claimed.into_iter().map(|(folio, _)| folio).collect())
    }

    /// The earliest instant a timer is due (`None`: no timer at all).
    pub async fn next_timer(&self) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.next_timer(self.now()).await?)
    }

    /// Gives a timer to open incidents that lack one (after an import, say).
    pub async fn reconcile_timers(&self) -> Result<usize, ServiceError> {
        let missing = self.store.incidents_without_timer().await?;
        if missing.is_empty() {
            return Ok(0);
        }
        let org = self.org_chart().await?;
        let mut set = 0;
        for folio in missing {
            if let Some(stored) = self.store.load_fresh(folio).await?
                && let Some(due) = next_due(&stored.incident, &org.ladder(&stored.incident))
            {
                self.store
                    .set_timer(folio, Some(due), stored.incident.version)
                    .await?;
                set += 1;
            }
        }
        Ok(set)
    }

    /// Fires what is due on several incidents (a scheduler's batch): one read for all,
    /// each decided as [`Service::fire`] decides it, and all their appends in one write
    /// ([`crate::store::Store::append_many`]). An incident with nothing due, gone, or
    /// changed meanwhile (the batch's write then fails as a whole and stores nothing) is
    /// fired on its own by [`Service::fire`]. The database's keys make each action fire
    /// once whichever path it takes.
    pub async fn fire_many(&self, folios: &[Folio]) -> Result<Vec<Fired>, ServiceError> {
        let loaded = self.store.load_fresh_many(folios).await?;
        let now = self.now();
        let org = self.org_chart().await?;
        let links = self.link_maker(now).await.ok();
        // Not found: `fire` clears their timers.
        let found: std::collections::HashSet<Folio> =
            loaded.iter().map(|s| s.incident.folio).collect();
        let mut alone: Vec<Folio> = folios
            .iter()
            .filter(|f| !found.contains(f))
            .copied()
            .collect();
        let mut planned = Vec::new();
        for stored in &loaded {
            let ladder = org.ladder(&stored.incident);
            let policy = self.policy_of(&stored.incident, now).await?;
            let cx = Context {
                now,
                org: &org,
                ladder: &ladder,
                policy: &policy,
                links: links.as_ref(),
            };
            let Plan::Append {
                events,
                state,
                mail,
                answer: Idle::Fired(fired),
                ..
            } = fire_plan(Some(&stored.incident), &cx)?
            else {
                alone.push(stored.incident.folio);
                continue;
            };
            let (effects, written) = self
                .effects_of(&stored.incident, &state, &events, mail, &org, now)
                .await?;
            planned.push((stored, events, effects, state, written, fired));
        }
        let mut out = Vec::new();
        if !planned.is_empty() {
            let (items, after): (Vec<_>, Vec<_>) = planned
                .into_iter()
                .map(|(stored, events, effects, state, written, fired)| {
                    ((stored, events, effects), (state, written, fired))
                })
                .unzip();
            match self.store.append_many(items, now).await {
                Ok(_) => {
                    for (state, written, fired) in after {
                        self.after_append(&state, written, now).await;
                        out.extend(fired);
                    }
                }
                Err(StoreError::Conflict) => {
                    alone.extend(after.iter().map(|(state, ..)| state.folio));
                }
                Err(e) => return Err(e.into()),
            }
        }
        for folio in alone {
            out.extend(self.fire(folio).await?);
        }
        Ok(out)
    }

    /// Fires what is due on one incident, in one append, as the system. Each due action is
    /// decided on the state the previous one left: one made moot is refused there and
    /// simply not fired. Returns the actions fired.
    pub async fn fire(&self, folio: Folio) -> Result<Vec<Fired>, ServiceError> {
        let latest = self.on_latest(folio, true, None, fire_plan).await?;
        match latest {
            Latest::Done(Idle::Fired(fired)) => Ok(fired),
            // Nothing due after all (fired by another instance, or moved by a change):
            // the timer moves to the incident's next due instant.
            Latest::Done(Idle::NotDue(next, version)) => {
                self.store.set_timer(folio, next, version).await?;
                Ok(Vec::new())
            }
            Latest::Done(Idle::Gone) => {
                self.store.set_timer(folio, None, 0).await?;
                Ok(Vec::new())
            }
            Latest::Replayed(_) => Ok(Vec::new()),
        }
    }
}

/// What firing finds on `prior`: each due action decided on the state the previous one
/// left (one made moot is refused there and simply not fired).
fn fire_plan(prior: Option<&Incident>, cx: &Context<'_>) -> Result<Plan<Idle>, ServiceError> {
    let Some(prior) = prior else {
        return Ok(Plan::Nothing(Idle::Gone));
    };
    let mut state = prior.clone();
    let mut events = Vec::new();
    let mut mail = Vec::new();
    let mut fired = Vec::new();
    for action in due_actions(prior, cx.ladder, cx.now) {
        let command = Command::Fire {
            key: action.key,
            ladder: cx.ladder.clone(),
        };
        let Ok(new) = decide(Some(&state), &Actor::System, &command, cx.now, cx.policy) else {
            continue;
        };
        state = applied_to(state, &new)?;
        events.extend(new);
        mail.extend(notify::for_action(cx.org, &state, &action));
        fired.push(Fired {
            key: action.key,
            due_at: action.due_at,
            fired_at: cx.now,
        });
    }
    if events.is_empty() {
        return Ok(Plan::Nothing(Idle::NotDue(
            next_due(&state, cx.ladder),
            prior.version,
        )));
    }
    Ok(Plan::Append {
        events,
        state: Box::new(state),
        mail,
        idempotency: None,
        used_link: None,
        answer: Idle::Fired(fired),
    })
}

/// What a firing found.
enum Idle {
    Fired(Vec<Fired>),
    /// Nothing due: the next due instant and the version it was computed on.
    NotDue(Option<Timestamp>, u64),
    /// No such incident.
    Gone,
}
