//! Refusals and offers at the edges the other suites walk past, each found by a surviving
//! mutant (`cargo mutants`, docs/testing.md): the reason a refusal gives in each state,
//! re-delivering the report form, the instant precision of a saved form, the banner's
//! message, the checker's "banner not seen", and what each role waits on.

mod common;

use common::*;
use incidencias_core::actions::{Action, available_actions, states_awaiting};
use incidencias_core::{
    Command, DecideError, FieldError, IncidentState, ReportFormState, Role, Severity,
};

fn refused(
    run: &mut Run,
    actor: &incidencias_core::Actor,
    command: Command,
    at: jiff::Timestamp,
) -> String {
    match run.exec(actor, command, at) {
        Ok(events) => panic!("accepted: {events:?}"),
        Err(e) => e.to_string(),
    }
}

fn resolution() -> Command {
    Command::NotifyResolution {
        summary: "Se corrigió el certificado".into(),
    }
}

fn banner(shown: bool, message: Option<&str>) -> Command {
    Command::SetBanner {
        shown,
        message: message.map(str::to_string),
    }
}

#[test]
fn a_resolution_notice_is_refused_with_the_reason_of_each_state() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    let before_notice = refused(&mut run, &agency(), resolution(), at(MIN));
    assert!(
        before_notice.contains("aún no ha sido notificada"),
        "{before_notice}"
    );

    let mut run = Run::notified(Severity::High);
    run.ok(&agency(), resolution(), at(20 * MIN));
    let waiting = refused(&mut run, &agency(), resolution(), at(21 * MIN));
    assert!(waiting.contains("en espera de validación"), "{waiting}");

    let mut run = Run::validated();
    let after = refused(&mut run, &agency(), resolution(), at(26 * MIN));
    assert!(after.contains("ya fue validada"), "{after}");
}

#[test]
fn a_closed_incident_says_it_is_closed_and_a_dismissed_one_that_it_was_dismissed() {
    let mut run = Run::validated();
    run.ok(&agency(), banner(true, None), at(26 * MIN));
    run.ok(&agency(), banner(false, None), at(27 * MIN));
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(28 * MIN),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(30 * MIN),
    );
    run.ok(&helpdesk(), Command::Close, at(31 * MIN));
    assert_eq!(run.inc().state, IncidentState::Closed);
    let closed = refused(&mut run, &helpdesk(), Command::Close, at(32 * MIN));
    assert!(closed.contains("la incidencia ya está cerrada"), "{closed}");

    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    run.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "Reporte duplicado".into(),
        },
        at(MIN),
    );
    let dismissed = refused(&mut run, &helpdesk(), Command::Close, at(2 * MIN));
    assert!(
        dismissed.contains("el reporte fue descartado"),
        "{dismissed}"
    );
}

#[test]
fn a_delivered_form_may_be_delivered_again_but_not_taken_back_by_a_draft() {
    let mut run = Run::validated();
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(28 * MIN),
    );
    assert_eq!(run.inc().report_form.state, ReportFormState::Submitted);
    let mut corrected = complete_form();
    corrected.root_cause = "Certificado vencido en el balanceador".into();
    run.ok(
        &agency(),
        Command::SubmitReportForm(corrected.clone()),
        at(29 * MIN),
    );
    assert_eq!(
        run.inc()
            .report_form
            .form
            .as_ref()
            .map(|f| f.root_cause.clone()),
        Some(corrected.root_cause)
    );
    let draft = refused(
        &mut run,
        &agency(),
        Command::SaveReportFormDraft(complete_form()),
        at(30 * MIN),
    );
    assert!(draft.contains("en revisión"), "{draft}");
}

#[test]
fn a_saved_form_keeps_its_instants_at_the_stores_precision() {
    let mut run = Run::validated();
    let mut form = complete_form();
    let fine = at(MIN) + jiff::SignedDuration::from_nanos(123_456_789);
    form.detected_at = Some(fine);
    form.restored_at = Some(fine);
    run.ok(&agency(), Command::SaveReportFormDraft(form), at(28 * MIN));
    let kept = run.inc().report_form.form.clone().expect("the draft");
    let millis = jiff::Timestamp::from_millisecond(fine.as_millisecond()).expect("instant");
    assert_eq!(kept.detected_at, Some(millis));
    assert_eq!(kept.restored_at, Some(millis));
}

#[test]
fn the_banner_is_refused_only_when_nothing_would_change() {
    let mut run = Run::notified(Severity::High);
    let hidden = refused(&mut run, &agency(), banner(false, None), at(6 * MIN));
    assert!(hidden.contains("no está desplegada"), "{hidden}");
    run.ok(
        &agency(),
        banner(true, Some("Servicio intermitente")),
        at(7 * MIN),
    );
    let same = refused(
        &mut run,
        &agency(),
        banner(true, Some("Servicio intermitente")),
        at(8 * MIN),
    );
    assert!(same.contains("ya está desplegada"), "{same}");
    run.ok(
        &agency(),
        banner(true, Some("Servicio restablecido en parte")),
        at(9 * MIN),
    );
    assert_eq!(
        run.inc().portal.banner_message.as_deref(),
        Some("Servicio restablecido en parte")
    );
    // Shown with a message: "show it" is not offered again (only a new message would do).
    let offered = available_actions(run.inc(), &agency(), at(10 * MIN), &run.policy, &ladder());
    assert!(!offered.contains(&Action::ShowBanner), "{offered:?}");
    assert!(offered.contains(&Action::RemoveBanner), "{offered:?}");
}

#[test]
fn banner_not_seen_is_recorded_only_while_the_banner_is_shown() {
    let mut run = Run::notified(Severity::High);
    let not_seen = || Command::RecordBannerNotSeen {
        url: "https://www.gob.mx/tramites/1".into(),
        detail: "la página no muestra la cortinilla".into(),
    };
    let hidden = refused(
        &mut run,
        &incidencias_core::Actor::System,
        not_seen(),
        at(6 * MIN),
    );
    assert!(hidden.contains("ya no está desplegada"), "{hidden}");
    run.ok(&agency(), banner(true, None), at(7 * MIN));
    let events = run.ok(&incidencias_core::Actor::System, not_seen(), at(8 * MIN));
    assert_eq!(events.len(), 1, "{events:?}");
}

#[test]
fn each_role_waits_on_its_own_steps() {
    use IncidentState as S;
    assert_eq!(states_awaiting(Role::Helpdesk), [S::Reported, S::Validated]);
    assert_eq!(
        states_awaiting(Role::Agency),
        [S::AwaitingAck, S::InCorrection, S::Validated]
    );
    assert_eq!(states_awaiting(Role::Validator), [S::AwaitingValidation]);
    assert!(states_awaiting(Role::Admin).is_empty());
}

#[test]
fn system_only_commands_name_no_role_and_unknown_names_none() {
    assert_eq!(Command::roles_named("fire"), Some(&[][..]));
    assert_eq!(Command::roles_named("banner_not_seen"), Some(&[][..]));
    assert_eq!(
        Command::roles_named("acknowledge"),
        Some(&[Role::Agency][..])
    );
    assert_eq!(Command::roles_named("no_existe"), None);
}

#[test]
fn field_errors_read_as_field_and_reason_joined_by_semicolons() {
    let one = FieldError::new("reason", "es obligatorio");
    assert_eq!(one.to_string(), "reason: es obligatorio");
    let two = DecideError::InvalidFields(vec![
        one,
        FieldError::new("severity", "es la severidad actual de la incidencia"),
    ]);
    assert_eq!(
        two.to_string(),
        "datos no válidos: reason: es obligatorio; severity: es la severidad actual de la \
         incidencia"
    );
}

fn review(complete: bool, message: Option<&str>) -> Command {
    Command::ReviewReportForm {
        complete,
        missing: vec![],
        message: message.map(str::to_string),
    }
}

#[test]
fn a_review_needs_a_delivered_form_and_keeps_only_a_real_message() {
    let mut run = Run::validated();
    let nothing = refused(&mut run, &helpdesk(), review(true, None), at(27 * MIN));
    assert!(nothing.contains("no hay un formato entregado"), "{nothing}");
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(28 * MIN),
    );
    let events = run.ok(&helpdesk(), review(true, Some("  Gracias  ")), at(29 * MIN));
    assert!(
        events.iter().any(|e| matches!(
            &e.change,
            incidencias_core::Change::ReportFormReviewed { message: Some(m), .. } if m == "Gracias"
        )),
        "{events:?}"
    );
    let again = refused(&mut run, &helpdesk(), review(true, None), at(30 * MIN));
    assert!(again.contains("ya fue aceptado"), "{again}");

    let mut run = Run::validated();
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(28 * MIN),
    );
    let events = run.ok(&helpdesk(), review(true, Some("   ")), at(29 * MIN));
    assert!(
        events.iter().any(|e| matches!(
            &e.change,
            incidencias_core::Change::ReportFormReviewed { message: None, .. }
        )),
        "a blank message is no message: {events:?}"
    );
}

#[test]
fn texts_and_lists_may_reach_their_limits_but_not_pass_them() {
    use incidencias_core::decide::{MAX_LIST_ITEMS, MAX_SHORT_TEXT_CHARS};
    let dismiss = |chars: usize| Command::Dismiss {
        reason: "x".repeat(chars),
    };
    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    let over = refused(
        &mut run,
        &helpdesk(),
        dismiss(MAX_SHORT_TEXT_CHARS + 1),
        at(MIN),
    );
    assert!(over.contains(&format!("{MAX_SHORT_TEXT_CHARS}")), "{over}");
    run.ok(&helpdesk(), dismiss(MAX_SHORT_TEXT_CHARS), at(MIN));

    let validation = |n: usize| Command::RecordValidation {
        passed: false,
        observations: (0..n).map(|i| format!("Observación {i}")).collect(),
    };
    let mut run = Run::notified(Severity::High);
    run.ok(&agency(), resolution(), at(20 * MIN));
    let over = refused(
        &mut run,
        &validator(),
        validation(MAX_LIST_ITEMS + 1),
        at(21 * MIN),
    );
    assert!(over.contains(&format!("más de {MAX_LIST_ITEMS}")), "{over}");
    run.ok(&validator(), validation(MAX_LIST_ITEMS), at(21 * MIN));
}

#[test]
fn the_failure_may_be_moved_back_to_the_very_instant_of_the_report() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(10 * MIN), at(0));
    let notify = |to: jiff::Timestamp| Command::Notify {
        severity: Severity::High,
        disable_button: true,
        occurred_at: Some(incidencias_core::OccurredAtCorrection {
            occurred_at: to,
            reason: Some("El monitoreo registra la caída al reportarse".into()),
        }),
    };
    // Notified at the instant of the report: "now" and the report coincide.
    let later = refused(&mut run, &helpdesk(), notify(at(1)), at(0));
    assert!(later.contains("posterior al registro"), "{later}");
    run.ok(&helpdesk(), notify(at(0)), at(0));
    assert_eq!(run.inc().occurred_at, at(0));
}

#[test]
fn even_a_draft_keeps_the_forms_texts_within_their_limits() {
    use incidencias_core::decide::MAX_TEXT_CHARS;
    let mut run = Run::validated();
    let mut form = complete_form();
    form.symptoms = "x".repeat(MAX_TEXT_CHARS + 1);
    form.actions_taken = vec!["Reinicio\u{0}".into()];
    match run.exec(&agency(), Command::SaveReportFormDraft(form), at(28 * MIN)) {
        Err(DecideError::InvalidFields(fields)) => {
            let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(named, ["symptoms", "actions_taken"], "{fields:?}");
        }
        other => panic!("refused on its fields: {other:?}"),
    }
}
