//! What each role is offered in each state comes from `decide`: the actions a page shows
//! are exactly the ones the protocol would accept.

mod common;

use common::*;
use incidencias_core::actions::{Action, available_actions};
use incidencias_core::{Actor, Command, DecideError, Severity};

fn offered(run: &Run, actor: &Actor, now: jiff::Timestamp) -> Vec<Action> {
    available_actions(run.inc(), actor, now, &run.policy, &ladder())
}

use Action as A;

#[test]
fn a_reported_incident_offers_the_help_desk_notify_escalate_and_dismiss_and_nobody_else_anything() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    let now = at(MIN);
    assert_eq!(
        offered(&run, &helpdesk(), now),
        vec![A::Notify, A::Escalate, A::Dismiss]
    );
    assert!(offered(&run, &agency(), now).is_empty());
    assert!(offered(&run, &validator(), now).is_empty());
    assert!(offered(&run, &admin(), now).is_empty());
    assert!(offered(&run, &other_agency(), now).is_empty());
}

#[test]
fn each_step_offers_the_next_step_to_its_party_through_the_whole_protocol() {
    let mut run = Run::notified(Severity::High);
    let now = at(6 * MIN);
    assert_eq!(
        offered(&run, &agency(), now),
        vec![A::Acknowledge, A::ShowBanner, A::NotifyResolution]
    );
    assert_eq!(
        offered(&run, &validator(), now),
        vec![A::EnableButton],
        "the button was disabled at notification"
    );
    let desk = offered(&run, &helpdesk(), now);
    assert!(desk.contains(&A::Escalate) && desk.contains(&A::ChangeSeverity));
    assert!(
        desk.contains(&A::Dismiss),
        "dismissal before acknowledgment"
    );
    assert!(!desk.contains(&A::Close) && !desk.contains(&A::Notify));

    run.ok(&agency(), Command::Acknowledge, now);
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: None,
        },
        now,
    );
    let agency_now = offered(&run, &agency(), now);
    assert!(!agency_now.contains(&A::Acknowledge));
    assert!(!agency_now.contains(&A::ShowBanner), "already shown");
    assert!(agency_now.contains(&A::RemoveBanner));
    assert!(agency_now.contains(&A::NotifyResolution));
    assert!(
        !offered(&run, &helpdesk(), now).contains(&A::Dismiss),
        "no dismissal after acknowledgment"
    );

    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(20 * MIN),
    );
    let cedn = offered(&run, &validator(), at(21 * MIN));
    assert!(cedn.contains(&A::ApproveValidation) && cedn.contains(&A::RejectValidation));
    assert!(!offered(&run, &agency(), at(21 * MIN)).contains(&A::NotifyResolution));

    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(25 * MIN),
    );
    let cedn = offered(&run, &validator(), at(26 * MIN));
    assert!(!cedn.contains(&A::ApproveValidation));
    let agency_now = offered(&run, &agency(), at(26 * MIN));
    assert!(agency_now.contains(&A::SubmitReportForm));
    assert!(agency_now.contains(&A::SaveReportFormDraft));
    assert!(
        !offered(&run, &helpdesk(), at(26 * MIN)).contains(&A::Close),
        "the closing rule does not hold yet"
    );

    run.ok(
        &agency(),
        Command::SetBanner {
            shown: false,
            message: None,
        },
        at(27 * MIN),
    );
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(28 * MIN),
    );
    let desk = offered(&run, &helpdesk(), at(29 * MIN));
    assert!(desk.contains(&A::AcceptReportForm) && desk.contains(&A::RequestMissingInformation));
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(30 * MIN),
    );
    assert!(offered(&run, &helpdesk(), at(31 * MIN)).contains(&A::Close));
    run.ok(&helpdesk(), Command::Close, at(31 * MIN));
    for actor in [helpdesk(), agency(), validator(), admin()] {
        assert!(
            offered(&run, &actor, at(32 * MIN)).is_empty(),
            "a closed incident offers nothing"
        );
    }
}

#[test]
fn every_offered_action_is_one_decide_accepts_and_every_hidden_one_it_refuses() {
    // Whatever the state, "offered" is decide's own answer: an offered action never meets
    // a role, agency or state refusal.
    let mut run = Run::notified(Severity::Medium);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    for actor in [helpdesk(), agency(), validator(), admin(), other_agency()] {
        for action in offered(&run, &actor, at(7 * MIN)) {
            assert_ne!(action, A::Acknowledge);
            let refused = matches!(action, A::Notify | A::Dismiss);
            assert!(!refused, "{action:?} offered after acknowledgment");
        }
    }
    let refusal = incidencias_core::decide(
        Some(run.inc()),
        &agency(),
        &Command::Acknowledge,
        at(7 * MIN),
        &run.policy,
    );
    assert!(matches!(
        refusal,
        Err(DecideError::InvalidTransition { .. })
    ));
}

#[test]
fn manual_escalation_is_not_offered_with_nobody_above() {
    let run = Run::notified(Severity::High);
    let empty = incidencias_core::Ladder::default();
    let with_empty = available_actions(run.inc(), &helpdesk(), at(6 * MIN), &run.policy, &empty);
    assert!(!with_empty.contains(&A::Escalate));
    assert!(offered(&run, &helpdesk(), at(6 * MIN)).contains(&A::Escalate));
}

#[test]
fn action_names_round_trip_and_labels_are_the_copy_deck_words() {
    for action in A::ALL {
        assert_eq!(A::named(action.name()), Some(action));
    }
    assert_eq!(A::Acknowledge.label(), "Confirmar de enterado");
    assert_eq!(A::Close.label(), "Cerrar incidencia");
    assert_eq!(
        A::RequestMissingInformation.label(),
        "Solicitar información faltante"
    );
}

#[test]
fn the_public_state_says_unusable_usable_with_notice_or_operating() {
    use incidencias_core::{PublicState, procedure_status};
    let run = Run::notified(Severity::High);
    let status = procedure_status([run.inc()]);
    assert_eq!(
        PublicState::of(&status),
        PublicState::Incident,
        "button disabled"
    );
    assert_eq!(PublicState::Incident.label(), "Con incidencia");
    let none = procedure_status(std::iter::empty());
    assert_eq!(PublicState::of(&none), PublicState::Operating);
    let mut slow = Run::new();
    let Command::Report(mut new) = report(10 * MIN) else {
        unreachable!("report() builds a report")
    };
    new.kind = incidencias_core::IncidentKind::Slow;
    slow.ok(&helpdesk(), Command::Report(new), at(0));
    slow.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::Low,
            disable_button: false,
            occurred_at: None,
        },
        at(MIN),
    );
    let kept = procedure_status([slow.inc()]);
    assert_eq!(
        PublicState::of(&kept),
        PublicState::Operating,
        "no banner yet"
    );
    slow.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: None,
        },
        at(2 * MIN),
    );
    let noticed = procedure_status([slow.inc()]);
    assert_eq!(PublicState::of(&noticed), PublicState::Maintenance);
}
