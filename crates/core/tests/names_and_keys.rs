//! Names the API and the store rely on, the ladder's depth bound, and the key each fired
//! event records (what makes a planned action fire once): found untested by surviving
//! mutants (docs/testing.md).

mod common;

use common::*;
use incidencias_core::escalation::{
    ActionKey, ActionKind, Ladder, MAX_LADDER_DEPTH, due_actions, next_due,
};
use incidencias_core::{Actor, Command, IncidentState, Severity, Side, UserId};

#[test]
fn states_and_sides_are_named_as_the_api_and_serde_name_them() {
    let names: Vec<&str> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "reported",
            "awaiting_ack",
            "in_correction",
            "awaiting_validation",
            "validated",
            "closed",
            "dismissed"
        ]
    );
    for s in IncidentState::ALL {
        assert_eq!(s.to_string(), s.as_str());
        assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
    }
    for (side, name) in [(Side::Agency, "agency"), (Side::Central, "central")] {
        assert_eq!(side.as_str(), name);
        assert_eq!(serde_json::to_value(side).expect("json"), name);
    }
}

#[test]
fn a_ladder_stops_at_its_depth_bound() {
    let chain = Ladder::chain(UserId(1), |u| Some(UserId(u.0 + 1)));
    assert_eq!(chain.len(), MAX_LADDER_DEPTH);
    assert_eq!(chain.last(), Some(&UserId(MAX_LADDER_DEPTH as i64)));
}

#[test]
fn every_fired_event_names_the_key_it_executed_and_a_manual_escalation_none() {
    let mut run = Run::notified(Severity::Critical);
    let mut kinds = Vec::new();
    while let Some(when) = next_due(run.inc(), &ladder()) {
        if when > at(10 * HOUR) {
            break;
        }
        for action in due_actions(run.inc(), &ladder(), when) {
            let events = run.ok(
                &Actor::System,
                Command::Fire {
                    key: action.key,
                    ladder: ladder(),
                },
                when,
            );
            let keys: Vec<ActionKey> = events
                .iter()
                .filter_map(|e| ActionKey::of_change(folio(), &e.change))
                .collect();
            assert_eq!(keys, [action.key], "{events:?}");
            kinds.push(action.key.kind);
        }
    }
    for kind in [
        ActionKind::Warning,
        ActionKind::Breach,
        ActionKind::Escalation,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} fired: {kinds:?}");
    }
    let mut run = Run::notified(Severity::Critical);
    let manual = run.ok(
        &helpdesk(),
        Command::Escalate {
            reason: "Sin respuesta por teléfono".into(),
            ladder: ladder(),
        },
        at(6 * MIN),
    );
    assert!(!manual.is_empty());
    assert!(
        manual
            .iter()
            .all(|e| ActionKey::of_change(folio(), &e.change).is_none()),
        "a manual escalation is its own decision: {manual:?}"
    );
}

#[test]
fn an_acknowledgment_after_the_deadline_plans_nothing_more_for_its_clock() {
    // Critical: 15 minutes to acknowledge from +5 min; acknowledged at +25 min, before the
    // scheduler fired anything (it was down): the overrun is recorded, and a stopped clock
    // neither warns nor escalates afterwards.
    let mut run = Run::notified(Severity::Critical);
    run.ok(&agency(), Command::Acknowledge, at(25 * MIN));
    let ack = run
        .inc()
        .clock(incidencias_core::ClockId::ACK)
        .expect("the acknowledgment clock");
    assert!(ack.breached_at.is_some(), "the overrun is kept");
    let due = due_actions(run.inc(), &ladder(), at(10 * HOUR));
    assert!(
        due.iter()
            .all(|a| a.key.clock != incidencias_core::ClockId::ACK),
        "{due:?}"
    );
}
