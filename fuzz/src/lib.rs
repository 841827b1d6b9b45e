//! What the fuzz targets share: fixed incidents in every state of the protocol and the
//! actors who may act on them, built exactly as the core's own tests build them (their
//! fixtures, `crates/core/tests/common/mod.rs`, are included as they are), and a way to
//! run the service's async body reader without a runtime.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use incidencias_core::escalation::Ladder;
use incidencias_core::{Actor, Command, Severity};
use jiff::Timestamp;

// As the core's tests have it (there a private module, here a public one).
#[allow(clippy::new_without_default)]
#[path = "../../crates/core/tests/common/mod.rs"]
pub mod common;

use common::{
    MIN, Run, admin, agency, at, complete_form, helpdesk, ladder, other_agency, report, validator,
};

/// One incident as it stands after a fixed history.
pub struct Fixture {
    pub name: &'static str,
    pub run: Run,
}

impl Fixture {
    /// A copy to decide on (the fixture itself stays as it is).
    pub fn fork(&self) -> Run {
        Run {
            policy: self.run.policy.clone(),
            events: self.run.events.clone(),
            state: self.run.state.clone(),
        }
    }

    /// When its last event happened (`t0` when there is none).
    pub fn last_event_at(&self) -> Timestamp {
        self.run.events.last().map_or(at(0), |e| e.at)
    }
}

fn banner(shown: bool) -> Command {
    Command::SetBanner {
        shown,
        message: None,
    }
}

fn resolution() -> Command {
    Command::NotifyResolution {
        summary: "Corregido: se renovó el certificado".into(),
    }
}

fn validation(passed: bool) -> Command {
    Command::RecordValidation {
        passed,
        observations: if passed {
            vec![]
        } else {
            vec!["El paso 3 sigue fallando".into()]
        },
    }
}

fn review(complete: bool) -> Command {
    Command::ReviewReportForm {
        complete,
        missing: vec![],
        message: None,
    }
}

fn build() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut keep = |name, run: &Run| {
        out.push(Fixture {
            name,
            run: Run {
                policy: run.policy.clone(),
                events: run.events.clone(),
                state: run.state.clone(),
            },
        })
    };
    keep("no incident yet", &Run::new());

    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    keep("reported", &run);
    let mut dismissed = Run {
        policy: run.policy.clone(),
        events: run.events.clone(),
        state: run.state.clone(),
    };
    dismissed.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "Duplicado de otra incidencia".into(),
        },
        at(3 * MIN),
    );
    keep("dismissed", &dismissed);

    let run = Run::notified(Severity::Critical);
    keep("awaiting acknowledgment, critical", &run);

    let mut run = Run::notified(Severity::High);
    keep("awaiting acknowledgment, high", &run);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(&agency(), banner(true), at(7 * MIN));
    keep("in correction, banner shown", &run);
    run.ok(&agency(), resolution(), at(30 * MIN));
    keep("awaiting validation", &run);
    let mut persistence = Run {
        policy: run.policy.clone(),
        events: run.events.clone(),
        state: run.state.clone(),
    };
    persistence.ok(&validator(), validation(false), at(40 * MIN));
    keep("in correction after a failed validation", &persistence);
    run.ok(&validator(), validation(true), at(40 * MIN));
    keep("validated, banner shown", &run);
    run.ok(&agency(), banner(false), at(51 * MIN));
    keep("validated, banner removed", &run);
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(52 * MIN),
    );
    keep("report form under review", &run);
    run.ok(&helpdesk(), review(true), at(53 * MIN));
    keep("ready to close", &run);
    run.ok(&helpdesk(), Command::Close, at(54 * MIN));
    keep("closed", &run);

    let mut run = Run::notified(Severity::Medium);
    run.ok(
        &helpdesk(),
        Command::Escalate {
            reason: "Sin respuesta de la dependencia".into(),
            ladder: ladder(),
        },
        at(20 * MIN),
    );
    keep("escalated by hand, awaiting acknowledgment", &run);
    out
}

/// Every fixture, built once; the first has no incident (for a report).
pub fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(build)
}

/// Who may ask: each role (the agency's own and another agency's user) and the system.
pub fn actors() -> [Actor; 6] {
    [
        helpdesk(),
        agency(),
        other_agency(),
        validator(),
        admin(),
        Actor::System,
    ]
}

/// The incident's escalation ladder as the org chart would give it.
pub fn the_ladder() -> Ladder {
    ladder()
}

/// Runs a future that never waits (the body reader on a body already in memory).
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a body in memory is read without waiting"),
    }
}
