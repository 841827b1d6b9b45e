//! What the folded record says at its edges, found untested by surviving mutants
//! (docs/testing.md): when the banner was first shown, the first and last resolution
//! notices, whether a clock is breached, and the invariant checker itself (fed
//! incidents altered by hand, since no sequence of decided events can break them).

mod common;

use common::*;
use incidencias_core::{Command, IncidentState, Severity};

fn banner(shown: bool) -> Command {
    Command::SetBanner {
        shown,
        message: None,
    }
}

#[test]
fn the_banner_keeps_when_it_was_first_shown() {
    let mut run = Run::notified(Severity::High);
    run.ok(&agency(), banner(true), at(6 * MIN));
    run.ok(&agency(), banner(false), at(7 * MIN));
    run.ok(&agency(), banner(true), at(8 * MIN));
    run.ok(&agency(), banner(false), at(9 * MIN));
    assert_eq!(run.inc().banner_first_shown_at, Some(at(6 * MIN)));
}

#[test]
fn first_and_last_resolution_notices_are_told_apart() {
    let mut run = Run::notified(Severity::High);
    assert_eq!(run.inc().first_resolution_at(), None);
    let notice = || Command::NotifyResolution {
        summary: "Corregido".into(),
    };
    run.ok(&agency(), notice(), at(20 * MIN));
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: false,
            observations: vec!["El trámite sigue sin concluir".into()],
        },
        at(25 * MIN),
    );
    run.ok(&agency(), notice(), at(40 * MIN));
    assert_eq!(run.inc().first_resolution_at(), Some(at(20 * MIN)));
    assert_eq!(run.inc().last_resolution_at(), Some(at(40 * MIN)));
}

#[test]
fn a_clock_is_breached_only_once_its_target_passes() {
    // Critical: 15 minutes to acknowledge, from the notification at +5 min.
    let run = Run::notified(Severity::Critical);
    assert!(!run.inc().any_breached(at(6 * MIN)));
    assert!(!run.inc().any_breached(at(19 * MIN)));
    assert!(run.inc().any_breached(at(21 * MIN)));
}

#[test]
fn the_invariant_checker_names_what_a_broken_record_breaks() {
    let run = Run::notified(Severity::High);
    let now = at(6 * MIN);
    assert!(run.inc().invariant_violations(now).is_empty());

    let mut closed = run.inc().clone();
    closed.state = IncidentState::Closed;
    let found = closed.invariant_violations(now);
    assert!(
        found
            .iter()
            .any(|v| v.contains("closed without a passed validation")),
        "{found:?}"
    );

    // Dismissed with the button back but the banner still up: not restored.
    let mut dismissed = run.inc().clone();
    dismissed.state = IncidentState::Dismissed;
    dismissed.portal.button_enabled = true;
    dismissed.portal.banner_shown = true;
    let found = dismissed.invariant_violations(now);
    assert!(
        found
            .iter()
            .any(|v| v.contains("without restoring the portal")),
        "{found:?}"
    );
    // ...and with the banner down but the button still disabled.
    dismissed.portal.banner_shown = false;
    dismissed.portal.button_enabled = false;
    let found = dismissed.invariant_violations(now);
    assert!(
        found
            .iter()
            .any(|v| v.contains("without restoring the portal")),
        "{found:?}"
    );

    // A running clock whose stored part alone is negative (its elapsed time is not).
    let mut negative = run.inc().clone();
    let ack = negative
        .clocks
        .iter_mut()
        .find(|c| c.id == incidencias_core::ClockId::ACK)
        .expect("the acknowledgment clock");
    ack.accumulated_ms = -1;
    assert!(ack.elapsed_ms(now) > 0);
    let found = negative.invariant_violations(now);
    assert!(
        found.iter().any(|v| v.contains("negative elapsed time")),
        "{found:?}"
    );
}

#[test]
fn a_record_stored_before_the_confirmation_flag_reads_as_confirmed() {
    let run = Run::notified(Severity::High);
    let mut stored = serde_json::to_value(run.inc()).expect("json");
    stored
        .as_object_mut()
        .expect("an object")
        .remove("occurred_at_confirmed");
    let read: incidencias_core::Incident = serde_json::from_value(stored).expect("reads");
    assert!(read.occurred_at_confirmed);
}

#[test]
fn the_validation_invariant_holds_for_open_incidents_only() {
    let mut run = Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(20 * MIN),
    );
    let now = at(21 * MIN);
    // Awaiting validation with an open round: as it should be.
    assert!(run.inc().invariant_violations(now).is_empty());
    // Open, but said to be in correction while the round waits: flagged.
    let mut wrong = run.inc().clone();
    wrong.state = IncidentState::InCorrection;
    let found = wrong.invariant_violations(now);
    assert!(
        found.iter().any(|v| v.contains("awaiting_validation iff")),
        "{found:?}"
    );
}

#[test]
fn the_report_form_clock_stops_exactly_when_the_form_is_accepted() {
    let run = Run::validated();
    let now = at(26 * MIN);
    assert!(run.inc().invariant_violations(now).is_empty());
    // An open incident whose form clock stopped while the form is still due: flagged.
    let mut wrong = run.inc().clone();
    let clock = wrong
        .clocks
        .iter_mut()
        .find(|c| c.id == incidencias_core::ClockId::REPORT_FORM)
        .expect("the form's clock runs after validation");
    clock.pause(now);
    clock.stopped_at = Some(now);
    let found = wrong.invariant_violations(now);
    assert!(
        found
            .iter()
            .any(|v| v.contains("report_form clock stopped iff")),
        "{found:?}"
    );
}
