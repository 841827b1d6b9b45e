//! Escalation planning: warning, breach, level 1, 2, 3 and a stop at the top of the
//! ladder; stable keys that never fire twice; the central side's ladder; pauses.

mod common;

use std::collections::HashSet;

use common::*;
use incidencias_core::escalation::{ActionKey, ActionKind, due_actions, next_due, planned};
use incidencias_core::{Actor, ClockId, Command, DecideError, Severity, SloPolicy, UserId};
use jiff::Timestamp;

/// One firing as the walk saw it: key, instant, to, cc.
type Fired = (ActionKey, Timestamp, Vec<UserId>, Vec<UserId>);
/// An action's shape for comparisons: kind, level, instant, to, cc.
type Shape = (ActionKind, u32, Timestamp, Vec<UserId>, Vec<UserId>);

/// Fires everything due at each successive `next_due` instant until nothing is left or
/// `until` is passed. Returns (key, fired at, to, cc) in firing order.
fn walk(run: &mut Run, until: Timestamp) -> Vec<Fired> {
    let mut fired = Vec::new();
    while let Some(when) = next_due(run.inc(), &ladder()) {
        if when > until {
            break;
        }
        let due = due_actions(run.inc(), &ladder(), when);
        assert!(!due.is_empty(), "next_due {when} must have something due");
        for action in due {
            run.ok(
                &Actor::System,
                Command::Fire {
                    key: action.key,
                    ladder: ladder(),
                },
                when,
            );
            fired.push((action.key, when, action.to, action.cc));
        }
    }
    fired
}

#[test]
fn three_level_ladder_walks_warning_breach_levels_1_2_3_and_stops_at_top() {
    let mut run = Run::notified(Severity::Critical); // notified at +5 min
    let n = 5 * MIN;
    assert!(
        due_actions(run.inc(), &ladder(), at(n + 674)).is_empty(),
        "nothing before 75 % of 15 min"
    );
    let fired = walk(&mut run, at(100 * HOUR));
    let ack: Vec<Shape> = fired
        .iter()
        .filter(|(k, ..)| k.clock == ClockId::ACK)
        .map(|(k, when, to, cc)| (k.kind, k.level, *when, to.clone(), cc.clone()))
        .collect();
    assert_eq!(
        ack,
        vec![
            (
                ActionKind::Warning,
                0,
                at(n + 675),
                vec![RESPONSIBLE],
                vec![]
            ),
            (ActionKind::Breach, 0, at(n + 900), vec![], vec![]),
            (
                ActionKind::Escalation,
                1,
                at(n + 900),
                vec![SUPERIOR_1],
                vec![RESPONSIBLE]
            ),
            (
                ActionKind::Escalation,
                2,
                at(n + 1800),
                vec![SUPERIOR_2],
                vec![RESPONSIBLE]
            ),
            (
                ActionKind::Escalation,
                3,
                at(n + 2700),
                vec![SUPERIOR_3],
                vec![RESPONSIBLE]
            ),
        ]
    );
    // The resolution clock (90 min) ran alongside and climbed the same ladder.
    let resolution: Vec<(ActionKind, u32, Timestamp)> = fired
        .iter()
        .filter(|(k, ..)| k.clock == ClockId::RESOLUTION)
        .map(|(k, when, ..)| (k.kind, k.level, *when))
        .collect();
    assert_eq!(
        resolution,
        vec![
            (ActionKind::Warning, 0, at(n + 4050)),
            (ActionKind::Breach, 0, at(n + 5400)),
            (ActionKind::Escalation, 1, at(n + 5400)),
            (ActionKind::Escalation, 2, at(n + 10_800)),
            (ActionKind::Escalation, 3, at(n + 16_200)),
        ]
    );
    // Top reached on both clocks: nothing more will ever be due.
    assert_eq!(next_due(run.inc(), &ladder()), None);
    assert!(planned(run.inc(), &ladder()).is_empty());
    assert_eq!(run.inc().escalation_level, 3);
    let keys: HashSet<ActionKey> = fired.iter().map(|(k, ..)| *k).collect();
    assert_eq!(keys.len(), fired.len(), "no key appears twice");
}

#[test]
fn a_fired_key_cannot_fire_again() {
    let mut run = Run::notified(Severity::High);
    let due = due_actions(run.inc(), &ladder(), at(5 * MIN + 30 * MIN));
    let breach = due
        .iter()
        .find(|a| a.key.kind == ActionKind::Breach)
        .expect("breach due")
        .key;
    let fire = Command::Fire {
        key: breach,
        ladder: ladder(),
    };
    run.ok(&Actor::System, fire.clone(), at(35 * MIN));
    let err = run
        .exec(&Actor::System, fire, at(35 * MIN))
        .expect_err("second firing");
    assert_eq!(err, DecideError::NotDue { key: breach });
    assert!(
        !planned(run.inc(), &ladder())
            .iter()
            .any(|a| a.key == breach)
    );
}

#[test]
fn firing_before_due_is_refused_and_only_the_system_fires() {
    let mut run = Run::notified(Severity::High);
    let warning = planned(run.inc(), &ladder())[0].key;
    assert_eq!(warning.kind, ActionKind::Warning);
    let fire = Command::Fire {
        key: warning,
        ladder: ladder(),
    };
    let early = run.exec(&Actor::System, fire.clone(), at(6 * MIN));
    assert_eq!(early, Err(DecideError::NotDue { key: warning }));
    let human = run.exec(&helpdesk(), fire, at(HOUR));
    assert!(matches!(human, Err(DecideError::RoleNotAllowed { .. })));
}

#[test]
fn validation_breach_escalates_on_the_central_side() {
    let mut run = Run::notified(Severity::Critical);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(20 * MIN),
    );
    let fired = walk(&mut run, at(10 * HOUR));
    let validation: Vec<(ActionKind, u32, Vec<UserId>, Vec<UserId>)> = fired
        .iter()
        .filter(|(k, ..)| k.clock == ClockId::validation(1))
        .map(|(k, _, to, cc)| (k.kind, k.level, to.clone(), cc.clone()))
        .collect();
    assert_eq!(
        validation,
        vec![
            (ActionKind::Warning, 0, vec![VALIDATOR_ID], vec![]),
            (ActionKind::Breach, 0, vec![], vec![]),
            (
                ActionKind::Escalation,
                1,
                vec![CEDN_LEAD],
                vec![VALIDATOR_ID, RESPONSIBLE]
            ),
        ],
        "the central ladder has one level above the validator; cc the validator and the \
         procedure's responsible"
    );
    assert!(
        !fired.iter().any(|(k, ..)| k.clock == ClockId::RESOLUTION),
        "the paused resolution clock plans nothing while CEDN holds the incident"
    );
}

#[test]
fn escalation_repeat_from_policy_and_catch_up_after_downtime_fires_in_order_once() {
    let mut policy = SloPolicy::seed();
    policy.targets.ack.critical = 10;
    policy.escalation_repeat_s = Some(5);
    let mut run = Run::with_policy(policy);
    run.ok(&helpdesk(), report(0), at(0));
    run.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::Critical,
            disable_button: true,
            occurred_at: None,
        },
        at(0),
    );
    // The scheduler was down for a minute: everything overdue is due at once, in order,
    // and the stale warning is left out.
    let due = due_actions(run.inc(), &ladder(), at(60));
    let ack: Vec<(ActionKind, u32, Timestamp)> = due
        .iter()
        .filter(|a| a.key.clock == ClockId::ACK)
        .map(|a| (a.key.kind, a.key.level, a.due_at))
        .collect();
    assert_eq!(
        ack,
        vec![
            (ActionKind::Breach, 0, at(10)),
            (ActionKind::Escalation, 1, at(10)),
            (ActionKind::Escalation, 2, at(15)),
            (ActionKind::Escalation, 3, at(20)),
        ]
    );
    for a in &due {
        run.ok(
            &Actor::System,
            Command::Fire {
                key: a.key,
                ladder: ladder(),
            },
            at(60),
        );
    }
    assert!(
        due_actions(run.inc(), &ladder(), at(61))
            .iter()
            .all(|a| a.key.clock != ClockId::ACK),
        "each fired once"
    );
}

#[test]
fn nothing_is_planned_before_notification_or_after_acknowledgment() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(0), at(0));
    assert_eq!(next_due(run.inc(), &ladder()), None);
    run.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::Medium,
            disable_button: true,
            occurred_at: None,
        },
        at(0),
    );
    assert_eq!(next_due(run.inc(), &ladder()), Some(at(2700)));
    run.ok(&agency(), Command::Acknowledge, at(60));
    assert!(
        planned(run.inc(), &ladder())
            .iter()
            .all(|a| a.key.clock == ClockId::RESOLUTION)
    );
}

#[test]
fn ladder_chain_follows_reports_to_and_survives_cycles() {
    use incidencias_core::escalation::Ladder;
    let reports_to = |u: UserId| match u.0 {
        10 => Some(UserId(11)),
        11 => Some(UserId(12)),
        12 => Some(UserId(10)), // a cycle in bad data
        _ => None,
    };
    assert_eq!(
        Ladder::chain(UserId(10), reports_to),
        vec![UserId(10), UserId(11), UserId(12)]
    );
    assert_eq!(Ladder::chain(UserId(99), reports_to), vec![UserId(99)]);
    assert_eq!(
        ActionKey {
            folio: folio(),
            clock: ClockId::validation(2),
            kind: ActionKind::Escalation,
            level: 1
        }
        .to_string(),
        "INC-2026-000123/validation#2/escalation/1"
    );
}

#[test]
fn escalation_levels_are_counted_per_side() {
    use incidencias_core::{Change, Side};
    let mut run = Run::notified(Severity::Critical);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(20 * MIN),
    );
    // CEDN is late (20 min): the central side escalates to the validator's superior, cc
    // the validator and the procedure's responsible.
    let due = due_actions(run.inc(), &ladder(), at(40 * MIN));
    let escalation = due
        .iter()
        .find(|a| a.key.kind == ActionKind::Escalation)
        .expect("central escalation due")
        .key;
    let events = run.ok(
        &Actor::System,
        Command::Fire {
            key: escalation,
            ladder: ladder(),
        },
        at(40 * MIN),
    );
    assert_eq!(
        events[0].change,
        Change::Escalated {
            clock: Some(ClockId::validation(1)),
            side: Side::Central,
            level: 1,
            to: CEDN_LEAD,
            cc: vec![VALIDATOR_ID, RESPONSIBLE],
            reason: None,
        }
    );
    let inc = run.inc();
    assert_eq!(
        (
            inc.agency_escalation_level,
            inc.central_escalation_level,
            inc.escalation_level
        ),
        (0, 1, 1)
    );
    // Persistence: back with the agency. A manual escalation now goes to the agency's
    // immediate superior: the central level does not count on the agency's ladder.
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: false,
            observations: vec!["Persiste".into()],
        },
        at(41 * MIN),
    );
    let events = run.ok(
        &helpdesk(),
        Command::Escalate {
            reason: "Sin avance".into(),
            ladder: ladder(),
        },
        at(42 * MIN),
    );
    assert!(
        matches!(
            events[0].change,
            Change::Escalated {
                side: Side::Agency,
                level: 1,
                to: SUPERIOR_1,
                ..
            }
        ),
        "{:?}",
        events[0].change
    );
    let inc = run.inc();
    assert_eq!(
        (
            inc.agency_escalation_level,
            inc.central_escalation_level,
            inc.escalation_level
        ),
        (1, 1, 1)
    );
}

#[test]
fn manual_escalation_while_cedn_validates_goes_up_the_central_side() {
    use incidencias_core::{Change, Side};
    let mut run = Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(10 * MIN),
    );
    let events = run.ok(
        &helpdesk(),
        Command::Escalate {
            reason: "CEDN no ha validado".into(),
            ladder: ladder(),
        },
        at(11 * MIN),
    );
    assert_eq!(
        events[0].change,
        Change::Escalated {
            clock: None,
            side: Side::Central,
            level: 1,
            to: CEDN_LEAD,
            cc: vec![VALIDATOR_ID, RESPONSIBLE],
            reason: Some("CEDN no ha validado".into()),
        }
    );
    assert_eq!(run.inc().agency_escalation_level, 0);
}
