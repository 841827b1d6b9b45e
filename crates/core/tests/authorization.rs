//! Who may do what: roles per command, agency isolation, and refusals that name the
//! current state and the command.

mod common;

use common::*;
use incidencias_core::{
    Actor, Command, DecideError, IncidentState, Role, Severity, SloPolicy, decide,
};

/// One representative of every command a person can send (the scheduler's `Fire` is
/// covered in the escalation tests).
fn commands() -> Vec<Command> {
    vec![
        report(0),
        Command::Notify {
            severity: Severity::High,
            disable_button: true,
            occurred_at: None,
        },
        Command::Acknowledge,
        Command::SetBanner {
            shown: true,
            message: None,
        },
        Command::SetButton { enabled: false },
        Command::ExemptBanner { reason: "x".into() },
        Command::NotifyResolution {
            summary: "x".into(),
        },
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        Command::SubmitReportForm(complete_form()),
        Command::SaveReportFormDraft(complete_form()),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        Command::ChangeSeverity {
            severity: Severity::Low,
            reason: "x".into(),
        },
        Command::Escalate {
            reason: "x".into(),
            ladder: ladder(),
        },
        Command::Close,
        Command::Dismiss { reason: "x".into() },
    ]
}

#[test]
fn each_command_is_refused_to_every_role_outside_its_column() {
    let run = Run::notified(Severity::High);
    let actors = [helpdesk(), agency(), validator(), admin(), Actor::System];
    for command in commands() {
        for actor in &actors {
            let allowed = actor
                .role()
                .is_some_and(|r| command.allowed_roles().contains(&r));
            let result = decide(
                run.state.as_ref(),
                actor,
                &command,
                at(HOUR),
                &SloPolicy::seed(),
            );
            let refused_for_role = matches!(result, Err(DecideError::RoleNotAllowed { .. }));
            assert_eq!(
                refused_for_role,
                !allowed,
                "{} by {:?}: {result:?}",
                command.name(),
                actor.role()
            );
        }
    }
    // The table itself, as API.md has it.
    let roles = |c: &Command| c.allowed_roles().to_vec();
    assert_eq!(roles(&report(0)), [Role::Helpdesk, Role::Agency]);
    assert_eq!(roles(&Command::Acknowledge), [Role::Agency]);
    assert_eq!(
        roles(&Command::SetButton { enabled: true }),
        [Role::Validator]
    );
    assert_eq!(roles(&Command::Close), [Role::Helpdesk]);
}

#[test]
fn another_agency_can_neither_act_on_nor_report_for_an_incident() {
    let mut run = Run::notified(Severity::High);
    for command in [
        Command::Acknowledge,
        Command::SetBanner {
            shown: true,
            message: None,
        },
        Command::NotifyResolution {
            summary: "x".into(),
        },
    ] {
        assert_eq!(
            run.exec(&other_agency(), command, at(HOUR)),
            Err(DecideError::NotYourAgency)
        );
    }
    let mut fresh = Run::new();
    assert_eq!(
        fresh.exec(&other_agency(), report(0), at(0)),
        Err(DecideError::NotYourAgency)
    );
    assert_eq!(run.inc().state, IncidentState::AwaitingAck, "unchanged");
}

#[test]
fn invalid_transition_names_current_state_and_command() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(0), at(0));
    let err = run
        .exec(&agency(), Command::Acknowledge, at(60))
        .expect_err("not notified yet");
    assert_eq!(
        err,
        DecideError::InvalidTransition {
            state: Some(IncidentState::Reported),
            command: "acknowledge",
            action: "confirmar de enterado",
            reason: "la incidencia aún no ha sido notificada",
        }
    );
    assert_eq!(
        err.to_string(),
        "no es posible confirmar de enterado en el estado «Reportada»: \
         la incidencia aún no ha sido notificada"
    );
    let none = decide(
        None,
        &helpdesk(),
        &Command::Close,
        at(0),
        &SloPolicy::seed(),
    );
    assert!(matches!(
        none,
        Err(DecideError::InvalidTransition { state: None, .. })
    ));
}

#[test]
fn invalid_fields_are_all_named_at_once() {
    let mut run = Run::new();
    let Command::Report(mut bad) = report(0) else {
        unreachable!("report() builds a report");
    };
    bad.description = "  ".into();
    bad.procedure_ids = vec![];
    bad.occurred_at = at(10);
    let err = run
        .exec(&helpdesk(), Command::Report(bad), at(0))
        .expect_err("three bad fields");
    let DecideError::InvalidFields(fields) = err else {
        panic!("expected invalid fields");
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["occurred_at", "procedure_ids", "description"]);
}

#[test]
fn control_characters_and_oversized_text_are_refused() {
    let mut run = Run::notified(Severity::High);
    run.ok(&agency(), Command::Acknowledge, at(HOUR));
    for summary in ["ok\u{0}".to_string(), "a".repeat(10_001)] {
        let err = run
            .exec(&agency(), Command::NotifyResolution { summary }, at(HOUR))
            .expect_err("bad summary");
        assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "summary"));
    }
    assert_eq!(run.inc().state, IncidentState::InCorrection);
}

#[test]
fn commands_earlier_than_the_last_event_are_decided_at_the_last_event() {
    let mut run = Run::notified(Severity::High); // notified at +5 min
    let events = run.ok(&agency(), Command::Acknowledge, at(MIN));
    assert_eq!(
        events[0].at,
        at(5 * MIN),
        "clamped, never before the notification"
    );
    let ack = run
        .inc()
        .clock(incidencias_core::ClockId::ACK)
        .expect("ack");
    assert_eq!(ack.elapsed_ms(at(0)), 0);
}
