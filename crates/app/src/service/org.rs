//! Who is above whom: the escalation ladders of incidents, from the users' `reports_to`
//! and the procedures' responsibles, loaded once and used for many incidents.

use std::collections::HashMap;

use incidencias_core::escalation::Ladder;
use incidencias_core::{Incident, ProcedureId, Role, UserId};

use crate::store::{Store, StoreError, User};

pub struct OrgChart {
    users: HashMap<UserId, User>,
    responsible: HashMap<ProcedureId, UserId>,
    /// "HOMOCLAVE Nombre" per procedure, for emails.
    procedure_labels: HashMap<ProcedureId, String>,
    /// Homoclave and page (URL) on the portal per procedure.
    portal_pages: HashMap<ProcedureId, (String, String)>,
    /// Who acts for CEDN: the first front-line validator (see `load`).
    validator: Option<UserId>,
    /// Every procedure as loaded (a report checks its agency and that it is active).
    procedures: HashMap<ProcedureId, crate::store::Procedure>,
}

impl OrgChart {
    /// Reads every user and procedure (the service caches the result: see
    /// [`super::ORG_CHART_TTL`]).
    pub(super) async fn load(store: &Store) -> Result<OrgChart, StoreError> {
        let users = store.users().await?;
        // The front line of CEDN: an active validator nobody reports to (lowest id); the
        // chain above them is the central escalation ladder.
        let bosses: std::collections::HashSet<UserId> =
            users.iter().filter_map(|u| u.reports_to).collect();
        let validator = users
            .iter()
            .filter(|u| u.role == Role::Validator && u.active && !bosses.contains(&u.id))
            .map(|u| u.id)
            .min();
        let procedures = store.procedures().await?;
        let responsible = procedures
            .iter()
            .map(|p| (p.id, p.responsible_id))
            .collect();
        let procedure_labels = procedures
            .iter()
            .map(|p| (p.id, format!("{} {}", p.homoclave, p.name)))
            .collect();
        let portal_pages = procedures
            .iter()
            .map(|p| (p.id, (p.homoclave.as_str().to_string(), p.url.clone())))
            .collect();
        Ok(OrgChart {
            users: users.into_iter().map(|u| (u.id, u)).collect(),
            responsible,
            procedure_labels,
            portal_pages,
            validator,
            procedures: procedures.into_iter().map(|p| (p.id, p)).collect(),
        })
    }

    /// A procedure as loaded with the chart (`None`: not in it; it may be newer).
    pub fn procedure(&self, id: ProcedureId) -> Option<&crate::store::Procedure> {
        self.procedures.get(&id)
    }

    /// The incident's ladder: its first procedure's responsible and their `reports_to`
    /// chain; on the central side, the validator's chain.
    pub fn ladder(&self, incident: &Incident) -> Ladder {
        let reports_to = |u: UserId| self.users.get(&u).and_then(|x| x.reports_to);
        let agency = incident
            .procedure_ids
            .first()
            .and_then(|p| self.responsible.get(p))
            .map(|r| Ladder::chain(*r, reports_to))
            .unwrap_or_default();
        let central = self
            .validator
            .map(|v| Ladder::chain(v, reports_to))
            .unwrap_or_default();
        Ladder { agency, central }
    }

    /// The incident's responsibles: the responsible of each of its procedures, in
    /// procedure order, without repeats (PROTOCOL.md, "Escalation").
    pub fn responsibles(&self, incident: &Incident) -> Vec<UserId> {
        let mut out = Vec::new();
        for p in &incident.procedure_ids {
            if let Some(r) = self.responsible.get(p)
                && !out.contains(r)
            {
                out.push(*r);
            }
        }
        out
    }

    /// `user`'s superior `level` steps up their `reports_to` chain (1: the immediate one).
    pub fn superior(&self, user: UserId, level: u32) -> Option<UserId> {
        let chain = Ladder::chain(user, |u| self.users.get(&u).and_then(|x| x.reports_to));
        chain.get(usize::try_from(level).ok()?).copied()
    }

    /// The person's name, as the record shows who acted.
    pub fn name(&self, id: UserId) -> Option<String> {
        self.users.get(&id).map(|u| u.name.clone())
    }

    pub fn email(&self, id: UserId) -> Option<String> {
        self.users.get(&id).map(|u| u.email.to_string())
    }

    /// Every active help desk account: the help desk's mailbox in the protocol's emails.
    pub fn helpdesk_emails(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .users
            .values()
            .filter(|u| u.role == Role::Helpdesk && u.active)
            .map(|u| u.email.to_string())
            .collect();
        out.sort();
        out
    }

    /// The homoclaves of the incident's procedures, in order.
    pub fn homoclaves(&self, incident: &Incident) -> Vec<String> {
        incident
            .procedure_ids
            .iter()
            .filter_map(|p| self.portal_pages.get(p).map(|(h, _)| h.clone()))
            .collect()
    }

    /// The portal page (URL) of the incident's procedures, with their homoclaves.
    pub fn portal_pages(&self, incident: &Incident) -> Vec<(String, String)> {
        incident
            .procedure_ids
            .iter()
            .filter_map(|p| self.portal_pages.get(p).cloned())
            .collect()
    }

    /// The incident's procedures as people name them.
    pub fn procedures_of(&self, incident: &Incident) -> String {
        incident
            .procedure_ids
            .iter()
            .map(|p| {
                self.procedure_labels
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| format!("trámite {p}"))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
