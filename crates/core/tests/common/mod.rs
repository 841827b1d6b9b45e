//! Shared fixtures for the core's integration tests: actors, instants, and a `Run` that
//! decides commands, applies their events and checks, after every step, that replaying the
//! whole history gives the same state.

#![allow(dead_code)]

use incidencias_core::escalation::Ladder;
use incidencias_core::{
    Actor, AgencyId, Channel, Command, DecideError, Event, Folio, Incident, IncidentKind,
    IncidentReport, NewReport, ProcedureId, Role, Severity, SloPolicy, UserId, decide,
};
use jiff::Timestamp;

pub const AGENCY: AgencyId = AgencyId(1);
pub const OTHER_AGENCY: AgencyId = AgencyId(2);

/// The agency's ladder: responsible (10) -> director (11) -> general director (12) ->
/// undersecretary (13). The central side: validator (20) -> CEDN lead (21).
pub const RESPONSIBLE: UserId = UserId(10);
pub const SUPERIOR_1: UserId = UserId(11);
pub const SUPERIOR_2: UserId = UserId(12);
pub const SUPERIOR_3: UserId = UserId(13);
pub const VALIDATOR_ID: UserId = UserId(20);
pub const CEDN_LEAD: UserId = UserId(21);

pub fn ladder() -> Ladder {
    Ladder {
        agency: vec![RESPONSIBLE, SUPERIOR_1, SUPERIOR_2, SUPERIOR_3],
        central: vec![VALIDATOR_ID, CEDN_LEAD],
    }
}

pub fn helpdesk() -> Actor {
    Actor::User {
        id: UserId(1),
        role: Role::Helpdesk,
        agency: None,
    }
}

pub fn agency() -> Actor {
    Actor::User {
        id: RESPONSIBLE,
        role: Role::Agency,
        agency: Some(AGENCY),
    }
}

pub fn other_agency() -> Actor {
    Actor::User {
        id: UserId(30),
        role: Role::Agency,
        agency: Some(OTHER_AGENCY),
    }
}

pub fn validator() -> Actor {
    Actor::User {
        id: VALIDATOR_ID,
        role: Role::Validator,
        agency: None,
    }
}

pub fn admin() -> Actor {
    Actor::User {
        id: UserId(2),
        role: Role::Admin,
        agency: None,
    }
}

/// The epoch of every scenario: 2026-11-27T09:00:00Z (03:00 in Mexico City).
pub fn t0() -> Timestamp {
    "2026-11-27T09:00:00Z".parse().expect("valid instant")
}

/// `t0` plus `s` seconds.
pub fn at(s: i64) -> Timestamp {
    t0().checked_add(jiff::SignedDuration::from_secs(s))
        .expect("in range")
}

pub const MIN: i64 = 60;
pub const HOUR: i64 = 3600;

pub fn folio() -> Folio {
    Folio::parse("INC-2026-000123").expect("valid folio")
}

/// A step-1 report of an outage that occurred `ago` seconds before `t0`.
pub fn report(ago: i64) -> Command {
    Command::Report(NewReport {
        folio: folio(),
        agency_id: AGENCY,
        procedure_ids: vec![ProcedureId(100)],
        kind: IncidentKind::Unavailable,
        description: "El trámite devuelve error 500 al enviar la solicitud".into(),
        occurred_at: at(-ago),
        channel: Channel::Phone,
    })
}

/// A form the system finds complete for an incident that occurred before `t0`, was
/// detected at `t0` and restored 10 minutes later.
pub fn complete_form() -> IncidentReport {
    IncidentReport {
        detected_at: Some(at(0)),
        restored_at: Some(at(10 * MIN)),
        symptoms: "Error 500 al enviar la solicitud".into(),
        impact: "Aproximadamente 1,200 solicitudes no concluidas".into(),
        root_cause: "Certificado TLS del servicio de firma vencido".into(),
        actions_taken: vec![
            "Renovación del certificado".into(),
            "Reinicio del servicio".into(),
        ],
        verification: "Prueba de extremo a extremo con una solicitud real".into(),
        preventive_actions: "Alerta 30 días antes del vencimiento".into(),
        prepared_by_name: "Ana López".into(),
        prepared_by_position: "Directora de Tecnologías de la Información".into(),
        attachments: vec![],
    }
}

/// One incident's life: its history and current state, under a policy.
pub struct Run {
    pub policy: SloPolicy,
    pub events: Vec<Event>,
    pub state: Option<Incident>,
}

impl Run {
    pub fn new() -> Run {
        Run::with_policy(SloPolicy::seed())
    }

    pub fn with_policy(policy: SloPolicy) -> Run {
        Run {
            policy,
            events: Vec::new(),
            state: None,
        }
    }

    /// Decides and applies; returns the new events. Panics (the test fails) if replay
    /// of the whole history does not equal the folded state.
    pub fn exec(
        &mut self,
        actor: &Actor,
        command: Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, DecideError> {
        let events = decide(self.state.as_ref(), actor, &command, now, &self.policy)?;
        for e in &events {
            let next = Incident::apply(self.state.take(), e).expect("decided events apply");
            self.state = Some(next);
            self.events.push(e.clone());
        }
        let replayed = Incident::replay(&self.events).expect("history replays");
        assert_eq!(Some(&replayed), self.state.as_ref(), "replay equals state");
        Ok(events)
    }

    /// `exec` that must succeed.
    pub fn ok(&mut self, actor: &Actor, command: Command, now: Timestamp) -> Vec<Event> {
        let name = command.name();
        self.exec(actor, command, now)
            .unwrap_or_else(|e| panic!("{name} refused: {e}"))
    }

    pub fn inc(&self) -> &Incident {
        self.state.as_ref().expect("incident exists")
    }

    /// Notified (high), acknowledged at +6 min, resolution notified at +20 min and
    /// validated at +25 min: the report form is due.
    pub fn validated() -> Run {
        let mut run = Run::notified(Severity::High);
        run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
        run.ok(
            &agency(),
            Command::NotifyResolution {
                summary: "Se corrigió el certificado".into(),
            },
            at(20 * MIN),
        );
        run.ok(
            &validator(),
            Command::RecordValidation {
                passed: true,
                observations: vec![],
            },
            at(25 * MIN),
        );
        run
    }

    /// Reported at `t0` (occurred 10 minutes before), notified at `t0 + 5 min`.
    pub fn notified(severity: Severity) -> Run {
        let mut run = Run::new();
        run.ok(&helpdesk(), report(10 * MIN), at(0));
        run.ok(
            &helpdesk(),
            Command::Notify {
                severity,
                disable_button: true,
                occurred_at: None,
            },
            at(5 * MIN),
        );
        run
    }
}
