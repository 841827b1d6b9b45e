//! `incidencias demo`: a living system in one command. Seeds a fresh database with three
//! fictitious agencies, their procedures, users of every role with three-level
//! `reports_to` chains, and about twenty incidents in every state with their history,
//! decided through the same service as real traffic (at past instants).
//!
//! [`people`] seeds who works the protocol and what they are responsible for;
//! [`incidents`] walks each incident through the protocol to its stage.

mod incidents;
mod people;

use std::sync::Arc;

use incidencias_core::{Command, Folio, Role};
use jiff::{SignedDuration, Timestamp};

use crate::clock::ManualClock;
use crate::documents::UserDoc;
use crate::service::{Caller, NewUserInput, Service, ServiceError};
use crate::store::Store;

/// The password of every demo user (printed by `demo`; never use it elsewhere).
pub const DEMO_PASSWORD: &str = "demo-incidencias-2026";

/// A demo account and its credentials.
pub struct DemoUser {
    pub user: UserDoc,
    pub token: String,
}

pub struct Demo {
    pub users: Vec<DemoUser>,
    pub procedures: usize,
    pub incidents: usize,
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// A seeded account: as listed, and as it acts.
#[derive(Clone)]
struct Account {
    doc: UserDoc,
    caller: Caller,
}

struct Seeder {
    service: Service,
    clock: ManualClock,
}

impl Seeder {
    async fn user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        agency: Option<i64>,
        reports_to: Option<&Account>,
    ) -> Result<Account, ServiceError> {
        let doc = self
            .service
            .create_user_unchecked(NewUserInput {
                name: name.into(),
                email: email.into(),
                role: role.as_str().into(),
                agency_id: agency,
                reports_to: reports_to.map(|u| u.doc.id),
                password: Some(DEMO_PASSWORD.into()),
            })
            .await?;
        let caller = self.service.caller(doc.id).await?;
        Ok(Account { doc, caller })
    }

    fn at(&self, t: Timestamp) {
        self.clock.set(t);
    }

    async fn act(&self, who: &Caller, folio: Folio, command: Command) -> Result<(), ServiceError> {
        self.service
            .act(who, folio, command, None)
            .await
            .map(|_| ())
    }
}

fn caller(account: &Account) -> Caller {
    account.caller.clone()
}

/// Seeds `store` (fresh, migrated) and returns the accounts to print. `now` anchors the
/// history: incidents happened during the last days up to a few minutes ago. With
/// `link_secret`, the links in the queued emails are signed as the server will check them.
pub async fn seed(
    store: &Store,
    now: Timestamp,
    link_secret: Option<&str>,
) -> Result<Demo, ServiceError> {
    let clock = ManualClock::new(now - SignedDuration::from_hours(80));
    let service = Service::new(store.clone(), Arc::new(clock.clone()));
    if let Some(secret) = link_secret {
        service.use_link_secret(secret);
    }
    let s = Seeder { service, clock };
    let central = s.central_people().await?;
    let mut users = central.all.clone();
    let mut agencies = Vec::new();
    for (n, agency) in people::AGENCIES.iter().enumerate() {
        let side = s.agency_side(&caller(&central.admin), n, *agency).await?;
        users.extend(side.people.iter().cloned());
        agencies.push(side);
    }
    let incidents = s.incidents(now, &central, &agencies).await?;
    s.at(now);
    let mut demo_users = Vec::new();
    for user in users {
        let token = s.service.create_token(&user.doc.email).await?;
        demo_users.push(DemoUser {
            user: user.doc,
            token,
        });
    }
    Ok(Demo {
        users: demo_users,
        procedures: agencies.iter().map(|a| a.procedures.len()).sum(),
        incidents,
    })
}
