//! Clock facts: what the SLO reports read, derived per event so that a replay of the
//! history always gives the fact table's content, however the events were batched.

mod common;

use common::*;
use incidencias_core::facts::{self, FactChanges};
use incidencias_core::{ClockId, Command, Incident, Severity};

fn replayed(run: &Run) -> std::collections::BTreeMap<ClockId, facts::ClockFact> {
    let (incident, facts) = facts::replay(&run.events).expect("history replays");
    assert_eq!(&incident, run.inc());
    facts
}

#[test]
fn a_clock_stopped_before_a_severity_change_keeps_the_severity_it_ran_against() {
    let mut run = Run::notified(Severity::Low);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &helpdesk(),
        Command::ChangeSeverity {
            severity: Severity::Critical,
            reason: "afecta a todo el país".into(),
        },
        at(8 * MIN),
    );
    let facts = replayed(&run);
    let ack = &facts[&ClockId::ACK];
    assert_eq!(ack.severity, Some(Severity::Low), "ack stopped at low");
    assert_eq!(
        ack.target_s,
        run.policy.target_s(ack.clock.name, Severity::Low)
    );
    assert_eq!(ack.stopped_at, Some(at(6 * MIN)));
    assert_eq!(
        ack.used_ms(at(60 * MIN)),
        MIN * 1000,
        "one minute from +5 to +6"
    );
    let resolution = &facts[&ClockId::RESOLUTION];
    assert_eq!(
        resolution.severity,
        Some(Severity::Critical),
        "still running"
    );
    assert_eq!(
        resolution.target_s,
        run.policy
            .target_s(resolution.clock.name, Severity::Critical)
    );
    assert_eq!(resolution.outcome_at(), None, "running, not breached");
}

#[test]
fn the_report_clock_takes_the_severity_given_at_notification() {
    let run = Run::notified(Severity::High);
    let report = &replayed(&run)[&ClockId::REPORT];
    assert_eq!(report.severity, Some(Severity::High));
    assert_eq!(report.policy_version, Some(1));
    assert_eq!(report.stopped_at, Some(at(0)));
    assert_eq!(report.outcome_at(), Some(at(0)), "met at the report");
    assert_eq!(
        report.used_ms(at(0)),
        10 * MIN * 1000,
        "occurred 10 min before"
    );
}

#[test]
fn resolution_time_paused_while_cedn_validates_is_shown_apart() {
    let run = Run::validated();
    let facts = replayed(&run);
    let resolution = &facts[&ClockId::RESOLUTION];
    // Notified +5, resolution notice +20 (running 15 min), validated +25:
    // whatever the protocol did after the notice, running time is 15 minutes and the rest
    // of the wall time until the stop is paused.
    assert_eq!(resolution.used_ms(at(90 * MIN)), 15 * MIN * 1000);
    let end = resolution.stopped_at.unwrap_or(at(90 * MIN));
    let wall = end.as_millisecond() - at(5 * MIN).as_millisecond();
    assert!(wall > 15 * MIN * 1000, "some of the wall time was paused");
    assert_eq!(resolution.paused_ms(at(90 * MIN)), wall - 15 * MIN * 1000);
    let validation = &facts[&ClockId::validation(1)];
    assert_eq!(validation.used_ms(at(90 * MIN)), 5 * MIN * 1000);
    assert_eq!(validation.paused_ms(at(90 * MIN)), 0);
}

#[test]
fn dismissal_marks_every_clock_without_changing_a_stopped_clocks_severity() {
    let mut run = Run::notified(Severity::Medium);
    run.ok(
        &helpdesk(),
        Command::ChangeSeverity {
            severity: Severity::Low,
            reason: "sólo afecta a un estado".into(),
        },
        at(7 * MIN),
    );
    run.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "duplicado de otra incidencia".into(),
        },
        at(9 * MIN),
    );
    let facts = replayed(&run);
    assert!(facts.values().all(|f| f.dismissed), "{facts:?}");
    assert_eq!(facts[&ClockId::REPORT].severity, Some(Severity::Medium));
    assert_eq!(facts[&ClockId::ACK].severity, Some(Severity::Low));
    assert_eq!(facts[&ClockId::ACK].stopped_at, Some(at(9 * MIN)));
}

#[test]
fn batching_events_into_one_append_gives_the_same_facts_as_one_by_one() {
    let run = Run::validated();
    let expected = replayed(&run);
    // Every split of the history into a prefix applied one by one and a batch: the merged
    // changes of the batch, applied on the prefix's facts, equal the replay.
    for split in 1..run.events.len() {
        let (head, tail) = run.events.split_at(split);
        let (mut incident, mut state) = facts::replay(head).expect("prefix replays");
        let mut merged = FactChanges::default();
        for e in tail {
            let after = Incident::apply(Some(incident.clone()), e).expect("applies");
            merged.add(facts::changes(Some(&incident), &after));
            incident = after;
        }
        for change in merged.into_vec() {
            change.apply(&mut state);
        }
        assert_eq!(state, expected, "split at {split}");
    }
}

#[test]
fn a_warning_changes_no_fact_and_a_breach_puts_the_clock_again() {
    use incidencias_core::escalation::{ActionKind, due_actions};
    let mut run = Run::notified(Severity::High);
    let fire = |run: &mut Run, kind: ActionKind, now: jiff::Timestamp| {
        let key = due_actions(run.inc(), &ladder(), now)
            .into_iter()
            .find(|a| a.key.kind == kind)
            .expect("due")
            .key;
        let before = run.inc().clone();
        run.ok(
            &incidencias_core::Actor::System,
            Command::Fire {
                key,
                ladder: ladder(),
            },
            now,
        );
        facts::changes(Some(&before), run.inc())
    };
    // The warning marks the clock (so it is not warned twice) but moves none of the
    // figures the facts hold: nothing to write.
    let warned = fire(&mut run, ActionKind::Warning, at(5 * MIN + 25 * MIN));
    assert!(
        run.inc().clock(ClockId::ACK).is_some_and(|c| c.warned),
        "the clock was marked"
    );
    assert_eq!(warned, Vec::new(), "a warning writes no fact");
    // The breach does move them.
    let breached = fire(&mut run, ActionKind::Breach, at(5 * MIN + 31 * MIN));
    assert!(
        breached.iter().any(|c| matches!(
            c,
            facts::FactChange::Put(f) if f.clock == ClockId::ACK && f.breached_at.is_some()
        )),
        "{breached:?}"
    );
    // And the facts so written are still the replay's.
    let mut state = facts::replay(&run.events[..run.events.len() - 2])
        .expect("replays")
        .1;
    for change in warned.into_iter().chain(breached) {
        change.apply(&mut state);
    }
    assert_eq!(state, replayed(&run));
}
