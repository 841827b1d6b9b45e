//! One test (or a few) per row of the seed's step table, asserting the state change and
//! every SLO figure of the row. Rows without an SLO assert that no clock is added.

mod common;

use common::*;
use incidencias_core::{
    ClockId, ClockState, Command, DecideError, IncidentState, ReportFormState, Severity,
};

/// Target, state and elapsed seconds of one clock at `now`.
fn clock(run: &Run, id: ClockId, now: jiff::Timestamp) -> (u32, ClockState, i64) {
    let c = run
        .inc()
        .clock(id)
        .unwrap_or_else(|| panic!("clock {id} exists"));
    (c.target_s, c.state(now), c.elapsed_s(now))
}

// Step 1: failure detected and reported. SLO `report`: 1 h, all severities.

#[test]
fn step_1_report_registers_incident_and_measures_report_clock_of_1_hour() {
    let mut run = Run::new();
    run.ok(&agency(), report(10 * MIN), at(0));
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Reported);
    assert_eq!(inc.reported_at, at(0));
    assert_eq!(inc.occurred_at, at(-10 * MIN));
    assert_eq!(inc.severity, None);
    assert_eq!(
        clock(&run, ClockId::REPORT, at(HOUR)),
        (3600, ClockState::Met, 600),
        "occurred -> reported in 10 min is within 1 h, and stopped at the report"
    );
    assert_eq!(
        inc.clocks.len(),
        1,
        "only the report clock exists before step 2"
    );
}

#[test]
fn step_1_report_after_more_than_1_hour_is_breached() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(HOUR + 1), at(0));
    assert_eq!(
        clock(&run, ClockId::REPORT, at(0)),
        (3600, ClockState::Breached, 3601)
    );
}

#[test]
fn step_1_report_target_is_1_hour_at_every_severity() {
    for severity in Severity::ALL {
        let run = Run::notified(*severity);
        assert_eq!(
            clock(&run, ClockId::REPORT, at(5 * MIN)),
            (3600, ClockState::Met, 600),
            "{severity}"
        );
    }
}

#[test]
fn step_1_occurred_at_in_the_future_is_refused() {
    let mut run = Run::new();
    let err = run
        .exec(&helpdesk(), report(-1), at(0))
        .expect_err("future occurred_at");
    match err {
        DecideError::InvalidFields(f) => assert_eq!(f[0].field, "occurred_at"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(run.state.is_none(), "nothing was recorded");
}

// Step 2: formal notification with severity; acknowledge, banner, button.
// SLO `ack`: Critical 15 min, High 30 min, Medium/Low 1 h.

fn assert_ack_target(severity: Severity, target_s: u32) {
    let mut run = Run::notified(severity);
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::AwaitingAck);
    assert_eq!(inc.severity, Some(severity));
    assert_eq!(inc.notified_at, Some(at(5 * MIN)));
    assert!(
        !inc.portal.button_enabled,
        "notification disables the portal button (CEDN)"
    );
    let ack = inc.clock(ClockId::ACK).expect("ack clock");
    assert_eq!(ack.due_at(), Some(at(5 * MIN + i64::from(target_s))));
    assert_eq!(
        clock(&run, ClockId::ACK, at(5 * MIN + 60)),
        (target_s, ClockState::Running, 60)
    );
    // Acknowledged one second before the target: met, and the incident is in correction.
    let ack_at = at(5 * MIN + i64::from(target_s) - 1);
    run.ok(&agency(), Command::Acknowledge, ack_at);
    assert_eq!(run.inc().state, IncidentState::InCorrection);
    assert_eq!(run.inc().acknowledged_at, Some(ack_at));
    assert_eq!(
        clock(&run, ClockId::ACK, at(10 * HOUR)),
        (target_s, ClockState::Met, i64::from(target_s) - 1)
    );
    // The same acknowledgment at the target is breached.
    let mut late = Run::notified(severity);
    late.ok(
        &agency(),
        Command::Acknowledge,
        at(5 * MIN + i64::from(target_s)),
    );
    assert_eq!(
        clock(&late, ClockId::ACK, at(10 * HOUR)).1,
        ClockState::Breached
    );
}

#[test]
fn step_2_ack_target_critical_is_15_minutes() {
    assert_ack_target(Severity::Critical, 15 * 60);
}

#[test]
fn step_2_ack_target_high_is_30_minutes() {
    assert_ack_target(Severity::High, 30 * 60);
}

#[test]
fn step_2_ack_target_medium_is_1_hour() {
    assert_ack_target(Severity::Medium, 3600);
}

#[test]
fn step_2_ack_target_low_is_1_hour() {
    assert_ack_target(Severity::Low, 3600);
}

/// A step-1 report of a `slow` incident.
fn slow_report() -> Command {
    let Command::Report(mut r) = report(0) else {
        unreachable!("report() builds a report");
    };
    r.kind = incidencias_core::IncidentKind::Slow;
    Command::Report(r)
}

#[test]
fn step_2_slow_incident_may_keep_the_portal_button() {
    let mut run = Run::new();
    run.ok(&helpdesk(), slow_report(), at(0));
    run.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::Low,
            disable_button: false,
            occurred_at: None,
        },
        at(60),
    );
    assert!(run.inc().portal.button_enabled);
}

#[test]
fn step_2_only_a_slow_incident_may_keep_the_portal_button() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(0), at(0)); // unavailable
    let err = run
        .exec(
            &helpdesk(),
            Command::Notify {
                severity: Severity::Low,
                disable_button: false,
                occurred_at: None,
            },
            at(60),
        )
        .expect_err("an unavailable procedure cannot keep its button");
    let DecideError::InvalidFields(fields) = &err else {
        panic!("expected invalid fields: {err:?}");
    };
    assert_eq!(fields[0].field, "disable_button");
    assert!(
        fields[0].message.contains("«Lento»"),
        "{}",
        fields[0].message
    );
    assert_eq!(run.inc().state, IncidentState::Reported, "nothing recorded");
}

#[test]
fn step_2_agency_shows_banner_and_cedn_can_switch_button_by_hand() {
    let mut run = Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: Some("Trámite en mantenimiento".into()),
        },
        at(6 * MIN),
    );
    assert!(run.inc().portal.banner_shown);
    assert_eq!(
        run.inc().portal.banner_message.as_deref(),
        Some("Trámite en mantenimiento")
    );
    let err = run
        .exec(
            &validator(),
            Command::SetButton { enabled: false },
            at(7 * MIN),
        )
        .expect_err("already disabled");
    assert!(matches!(err, DecideError::InvalidTransition { .. }));
    run.ok(
        &validator(),
        Command::SetButton { enabled: true },
        at(7 * MIN),
    );
    assert!(run.inc().portal.button_enabled);
}

// Step 3: resolution notice. SLO `resolution` from notification: Critical 1 h 30 min,
// High 4 h, Medium 8 h, Low 24 h.

fn assert_resolution_target(severity: Severity, target_s: u32) {
    let mut run = Run::notified(severity);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    assert_eq!(
        clock(&run, ClockId::RESOLUTION, at(6 * MIN)),
        (target_s, ClockState::Running, 60)
    );
    let notice_at = 5 * MIN + i64::from(target_s) - 60;
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Certificado renovado".into(),
        },
        at(notice_at),
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::AwaitingValidation);
    assert_eq!(inc.report_form.state, ReportFormState::Due);
    assert_eq!(
        clock(&run, ClockId::RESOLUTION, at(notice_at + 10 * HOUR)),
        (target_s, ClockState::Paused, i64::from(target_s) - 60),
        "paused while CEDN validates: no time accrues"
    );
}

#[test]
fn step_3_resolution_target_critical_is_1_hour_30_minutes() {
    assert_resolution_target(Severity::Critical, 90 * 60);
}

#[test]
fn step_3_resolution_target_high_is_4_hours() {
    assert_resolution_target(Severity::High, 4 * 3600);
}

#[test]
fn step_3_resolution_target_medium_is_8_hours() {
    assert_resolution_target(Severity::Medium, 8 * 3600);
}

#[test]
fn step_3_resolution_target_low_is_24_hours() {
    assert_resolution_target(Severity::Low, 24 * 3600);
}

#[test]
fn step_3_resolution_notice_before_acknowledging_also_acknowledges() {
    let mut run = Run::notified(Severity::Critical);
    let events = run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(10 * MIN),
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.change.kind()).collect();
    assert_eq!(kinds, ["acknowledged", "resolution_notified"]);
    assert_eq!(
        clock(&run, ClockId::ACK, at(HOUR)),
        (900, ClockState::Met, 300)
    );
}

// Step 4: CEDN validates; the portal button is enabled again.
// SLO `validation`: Critical 20 min, High 1 h, Medium 2 h, Low 8 h.

fn assert_validation_target(severity: Severity, target_s: u32) {
    let mut run = Run::notified(severity);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(30 * MIN),
    );
    assert_eq!(
        clock(&run, ClockId::validation(1), at(31 * MIN)),
        (target_s, ClockState::Running, 60)
    );
    let verdict = 30 * MIN + i64::from(target_s) - 1;
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(verdict),
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Validated);
    assert!(inc.portal.button_enabled, "a passed validation enables it");
    assert_eq!(inc.validation_rounds(), 1);
    assert_eq!(
        clock(&run, ClockId::validation(1), at(verdict + HOUR)),
        (target_s, ClockState::Met, i64::from(target_s) - 1)
    );
    assert_eq!(
        clock(&run, ClockId::RESOLUTION, at(verdict + HOUR)).2,
        25 * 60,
        "resolution measured notification -> notice only"
    );
}

#[test]
fn step_4_validation_target_critical_is_20_minutes() {
    assert_validation_target(Severity::Critical, 20 * 60);
}

#[test]
fn step_4_validation_target_high_is_1_hour() {
    assert_validation_target(Severity::High, 3600);
}

#[test]
fn step_4_validation_target_medium_is_2_hours() {
    assert_validation_target(Severity::Medium, 2 * 3600);
}

#[test]
fn step_4_validation_target_low_is_8_hours() {
    assert_validation_target(Severity::Low, 8 * 3600);
}

/// Notified, acknowledged, resolution notice at +30 min, validated at +40 min.
fn validated(severity: Severity) -> Run {
    let mut run = Run::notified(severity);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: None,
        },
        at(7 * MIN),
    );
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(30 * MIN),
    );
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(40 * MIN),
    );
    run
}

// Step 5: validation confirmed; the agency removes the banner. No SLO.

#[test]
fn step_5_agency_removes_banner_after_validation_without_new_clock() {
    let mut run = validated(Severity::High);
    assert!(run.inc().portal.banner_shown);
    let clocks_before = run.inc().clocks.len();
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: false,
            message: None,
        },
        at(45 * MIN),
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Validated);
    assert!(!inc.portal.banner_shown);
    assert_eq!(inc.portal.banner_message, None);
    assert_eq!(inc.clocks.len(), clocks_before, "step 5 has no SLO clock");
}

// Step 6: report form delivered. SLO `report_form`: 24 h from the resolution notice.

#[test]
fn step_6_report_form_target_is_24_hours_from_resolution_notice() {
    for severity in Severity::ALL {
        let mut run = validated(*severity);
        let form_clock = run.inc().clock(ClockId::REPORT_FORM).expect("started");
        assert_eq!(form_clock.started_at, at(30 * MIN), "{severity}");
        assert_eq!(form_clock.target_s, 24 * 3600, "{severity}");
        run.ok(
            &agency(),
            Command::SubmitReportForm(complete_form()),
            at(2 * HOUR),
        );
        assert_eq!(run.inc().report_form.state, ReportFormState::Submitted);
        run.ok(
            &helpdesk(),
            Command::ReviewReportForm {
                complete: true,
                missing: vec![],
                message: None,
            },
            at(3 * HOUR),
        );
        assert_eq!(run.inc().report_form.state, ReportFormState::Accepted);
        assert_eq!(
            clock(&run, ClockId::REPORT_FORM, at(100 * HOUR)),
            (86_400, ClockState::Met, 2 * HOUR - 30 * MIN),
            "{severity}: notice -> delivery; the help desk's review is not counted"
        );
    }
}

#[test]
fn step_6_report_form_delivered_after_24_hours_is_breached() {
    let mut run = validated(Severity::Low);
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(30 * MIN + 24 * HOUR),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(25 * HOUR),
    );
    assert_eq!(
        clock(&run, ClockId::REPORT_FORM, at(100 * HOUR)).1,
        ClockState::Breached
    );
}

#[test]
fn report_form_clock_measures_delivery_and_pauses_during_review() {
    // Delivered in 20 h, accepted by the help desk 10 h later: the agency met its 24 h.
    let mut run = validated(Severity::Low); // resolution notice at +30 min
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(30 * MIN + 20 * HOUR),
    );
    let (_, state, elapsed) = clock(&run, ClockId::REPORT_FORM, at(30 * MIN + 29 * HOUR));
    assert_eq!(
        (state, elapsed),
        (ClockState::Paused, 20 * HOUR),
        "paused while the form awaits review"
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(30 * MIN + 30 * HOUR),
    );
    assert_eq!(
        clock(&run, ClockId::REPORT_FORM, at(100 * HOUR)),
        (86_400, ClockState::Met, 20 * HOUR)
    );
}

#[test]
fn step_6_form_before_resolution_notice_is_refused() {
    let mut run = Run::notified(Severity::High);
    let err = run
        .exec(
            &agency(),
            Command::SubmitReportForm(complete_form()),
            at(6 * MIN),
        )
        .expect_err("not due yet");
    assert!(
        matches!(
            err,
            DecideError::InvalidTransition {
                state: Some(IncidentState::AwaitingAck),
                ..
            }
        ),
        "{err:?}"
    );
}

// Step 7: closure notice, only when the closing rule holds. No SLO.

#[test]
fn step_7_close_only_when_closing_rule_holds() {
    use incidencias_core::ClosingCondition as C;
    let mut run = validated(Severity::Critical);
    let err = run
        .exec(&helpdesk(), Command::Close, at(50 * MIN))
        .expect_err("banner shown, form missing");
    assert_eq!(
        err,
        DecideError::ClosingRuleNotMet(vec![C::BannerRemoved, C::ReportFormAccepted])
    );
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: false,
            message: None,
        },
        at(51 * MIN),
    );
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(52 * MIN),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(53 * MIN),
    );
    let clocks_before = run.inc().clocks.len();
    run.ok(&helpdesk(), Command::Close, at(54 * MIN));
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Closed);
    assert_eq!(inc.closed_at, Some(at(54 * MIN)));
    assert_eq!(inc.clocks.len(), clocks_before, "step 7 has no SLO clock");
    assert!(inc.clocks.iter().all(|c| c.is_stopped()));
    let err = run
        .exec(&helpdesk(), Command::Close, at(55 * MIN))
        .expect_err("already closed");
    assert!(matches!(
        err,
        DecideError::InvalidTransition {
            state: Some(IncidentState::Closed),
            ..
        }
    ));
}

#[test]
fn step_7_close_before_validation_names_every_unmet_condition() {
    let mut run = Run::notified(Severity::Medium);
    let err = run
        .exec(&helpdesk(), Command::Close, at(6 * MIN))
        .expect_err("nothing done");
    let DecideError::ClosingRuleNotMet(unmet) = err else {
        panic!("expected closing rule error");
    };
    use incidencias_core::ClosingCondition as C;
    assert_eq!(
        unmet,
        [
            C::ValidationPassed,
            C::ButtonEnabled,
            C::BannerShownOrExempted,
            C::ReportFormAccepted
        ]
    );
}

#[test]
fn automatic_button_changes_are_recorded_as_the_system_with_a_cause() {
    use incidencias_core::{Actor, ButtonCause, Change};
    let button_events = |run: &Run| -> Vec<(Actor, bool, ButtonCause)> {
        run.events
            .iter()
            .filter_map(|e| match e.change {
                Change::ButtonSet { enabled, cause } => Some((e.actor.clone(), enabled, cause)),
                _ => None,
            })
            .collect()
    };
    let mut run = validated(Severity::High);
    assert_eq!(
        button_events(&run),
        vec![
            (Actor::System, false, ButtonCause::Notification),
            (Actor::System, true, ButtonCause::Validation),
        ],
        "the help desk notified and CEDN validated; the button changes were automatic"
    );
    // A validator's own switch is theirs.
    run.ok(
        &validator(),
        Command::SetButton { enabled: false },
        at(HOUR),
    );
    assert_eq!(
        button_events(&run)[2],
        (validator(), false, ButtonCause::Manual)
    );
}

#[test]
fn public_status_shows_an_incident_only_once_notified() {
    use incidencias_core::procedure_status;
    let mut run = Run::new();
    run.ok(&helpdesk(), report(0), at(0));
    let status = procedure_status([run.inc()]);
    assert_eq!(
        (status.incident, status.button_enabled, status.banner_shown),
        (None, true, false),
        "a report that may still be dismissed is not published"
    );
    // Nor can CEDN switch the button of a report not yet notified.
    let err = run
        .exec(&validator(), Command::SetButton { enabled: false }, at(60))
        .expect_err("not notified");
    assert!(matches!(
        err,
        DecideError::InvalidTransition {
            state: Some(IncidentState::Reported),
            ..
        }
    ));
    run.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::High,
            disable_button: true,
            occurred_at: None,
        },
        at(2 * MIN),
    );
    let status = procedure_status([run.inc()]);
    assert_eq!(
        (status.incident, status.since, status.button_enabled),
        (Some(folio()), Some(at(0)), false)
    );
}

#[test]
fn report_form_draft_is_saved_without_clock_effect_and_only_a_complete_form_is_delivered() {
    use incidencias_core::{Change, IncidentReport};
    let mut run = validated(Severity::High); // resolution notice at +30 min
    let partial = IncidentReport {
        root_cause: String::new(),
        preventive_actions: "  ".into(),
        ..complete_form()
    };
    // A partial form cannot be delivered: every missing field is named at once.
    let err = run
        .exec(
            &agency(),
            Command::SubmitReportForm(partial.clone()),
            at(HOUR),
        )
        .expect_err("incomplete delivery");
    let DecideError::InvalidFields(fields) = err else {
        panic!("expected invalid fields");
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["root_cause", "preventive_actions"]);
    assert_eq!(run.inc().report_form.state, ReportFormState::Due);
    // It can be saved as a draft: kept, not delivered, the clock still running.
    let events = run.ok(
        &agency(),
        Command::SaveReportFormDraft(partial.clone()),
        at(HOUR),
    );
    assert!(matches!(
        events[0].change,
        Change::ReportFormDraftSaved { .. }
    ));
    let inc = run.inc();
    assert_eq!(inc.report_form.state, ReportFormState::Draft);
    assert_eq!(inc.report_form.state.as_str(), "draft");
    assert_eq!(inc.report_form.form.as_ref(), Some(&partial));
    assert_eq!(
        clock(&run, ClockId::REPORT_FORM, at(2 * HOUR)),
        (86_400, ClockState::Running, 2 * HOUR - 30 * MIN)
    );
    // A draft is not for review.
    let err = run
        .exec(
            &helpdesk(),
            Command::ReviewReportForm {
                complete: true,
                missing: vec![],
                message: None,
            },
            at(2 * HOUR),
        )
        .expect_err("nothing delivered");
    assert!(matches!(err, DecideError::InvalidTransition { .. }));
    // Delivered complete: submitted, the clock paused.
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(2 * HOUR),
    );
    assert_eq!(run.inc().report_form.state, ReportFormState::Submitted);
    assert_eq!(
        clock(&run, ClockId::REPORT_FORM, at(3 * HOUR)).1,
        ClockState::Paused
    );
    // While under review, a draft would take the delivery back: refused.
    let err = run
        .exec(
            &agency(),
            Command::SaveReportFormDraft(partial),
            at(3 * HOUR),
        )
        .expect_err("under review");
    assert!(matches!(err, DecideError::InvalidTransition { .. }));
}

#[test]
fn closing_requires_the_banner_shown_or_an_exemption_recorded() {
    use incidencias_core::ClosingCondition as C;
    // Validated, form accepted, button enabled, but the banner never shown.
    let mut run = Run::notified(Severity::Medium);
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(30 * MIN),
    );
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(40 * MIN),
    );
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(50 * MIN),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(55 * MIN),
    );
    let err = run
        .exec(&helpdesk(), Command::Close, at(HOUR))
        .expect_err("banner never shown, no reason recorded");
    assert_eq!(
        err,
        DecideError::ClosingRuleNotMet(vec![C::BannerShownOrExempted])
    );
    assert_eq!(
        C::BannerShownOrExempted.as_str(),
        "banner_shown_or_exempted"
    );
    let err = run
        .exec(
            &helpdesk(),
            Command::ExemptBanner { reason: " ".into() },
            at(HOUR),
        )
        .expect_err("reason required");
    assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "reason"));
    run.ok(
        &helpdesk(),
        Command::ExemptBanner {
            reason: "El trámite no tiene página propia donde desplegarla".into(),
        },
        at(HOUR),
    );
    assert_eq!(
        run.inc().banner_exemption.as_deref(),
        Some("El trámite no tiene página propia donde desplegarla")
    );
    run.ok(&helpdesk(), Command::Close, at(HOUR));
    assert_eq!(run.inc().state, IncidentState::Closed);

    // With the banner shown, an exemption is refused: the record says it was shown.
    let mut shown = validated(Severity::Medium);
    assert_eq!(shown.inc().banner_first_shown_at, Some(at(7 * MIN)));
    let err = shown
        .exec(
            &helpdesk(),
            Command::ExemptBanner { reason: "x".into() },
            at(HOUR),
        )
        .expect_err("it was shown");
    assert!(matches!(err, DecideError::InvalidTransition { .. }));
}

// Step 1 by email: the message's date is a first guess the help desk confirms or corrects
// when notifying (step 2); a correction is recorded with its reason and the `report`
// clock follows it.

fn email_report(ago: i64) -> Command {
    match report(ago) {
        Command::Report(mut r) => {
            r.channel = incidencias_core::Channel::Email;
            Command::Report(r)
        }
        other => other,
    }
}

fn notify_with(at_: Option<jiff::Timestamp>, reason: Option<&str>) -> Command {
    Command::Notify {
        severity: Severity::High,
        disable_button: true,
        occurred_at: at_.map(|occurred_at| incidencias_core::OccurredAtCorrection {
            occurred_at,
            reason: reason.map(str::to_string),
        }),
    }
}

#[test]
fn step_2_the_help_desk_corrects_when_an_emailed_failure_began_and_the_report_clock_follows() {
    let mut run = Run::new();
    run.ok(&helpdesk(), email_report(5 * MIN), at(0));
    assert!(
        !run.inc().occurred_at_confirmed,
        "an emailed report's instant is a guess"
    );
    let events = run.ok(
        &helpdesk(),
        notify_with(
            Some(at(-2 * HOUR)),
            Some("El usuario llamó: falla desde las 7:00"),
        ),
        at(MIN),
    );
    assert_eq!(events[0].change.kind(), "occurred_at_corrected");
    let inc = run.inc();
    assert!(inc.occurred_at_confirmed);
    assert_eq!(inc.occurred_at, at(-2 * HOUR));
    let report_clock = inc.clock(ClockId::REPORT).expect("report clock");
    assert_eq!(report_clock.started_at, at(-2 * HOUR));
    assert_eq!(
        report_clock.state(at(MIN)),
        ClockState::Breached,
        "reported two hours after the failure: the 1 h report target was missed"
    );
}

#[test]
fn step_2_a_correction_without_reason_or_after_the_report_is_refused_and_changes_nothing() {
    let mut run = Run::new();
    run.ok(&helpdesk(), email_report(5 * MIN), at(0));
    let before = run.inc().clone();
    let no_reason = run.exec(&helpdesk(), notify_with(Some(at(-HOUR)), None), at(MIN));
    assert!(
        matches!(&no_reason, Err(DecideError::InvalidFields(f)) if f[0].field == "occurred_at_reason"),
        "{no_reason:?}"
    );
    let later = run.exec(
        &helpdesk(),
        notify_with(Some(at(30)), Some("Otra hora")),
        at(MIN),
    );
    assert!(
        matches!(&later, Err(DecideError::InvalidFields(f)) if f[0].field == "occurred_at"),
        "{later:?}"
    );
    assert_eq!(run.inc(), &before);
    // The same instant is a confirmation, not a correction.
    let events = run.ok(&helpdesk(), notify_with(Some(at(-5 * MIN)), None), at(MIN));
    assert!(
        events
            .iter()
            .all(|e| e.change.kind() != "occurred_at_corrected")
    );
    assert!(run.inc().occurred_at_confirmed);
}
