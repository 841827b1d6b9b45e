//! One test per row of the seed's exception table (incomplete form, persistence,
//! escalation), plus severity change and dismissal, and the two-round scenario.

mod common;

use common::*;
use incidencias_core::escalation::{ActionKind, due_actions};
use incidencias_core::{
    Change, ClockId, ClockState, Command, DecideError, IncidentReport, IncidentState,
    ReportFormState, Severity,
};

/// Notified (critical), acknowledged, resolution notice at +30 min.
fn awaiting_validation(severity: Severity) -> Run {
    let mut run = Run::notified(severity);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        at(30 * MIN),
    );
    run
}

#[test]
fn exception_incomplete_form_requests_missing_fields_and_report_form_clock_runs_again_from_the_request()
 {
    let mut run = awaiting_validation(Severity::High);
    // Delivered at +1 h (30 min after the notice), complete by the system's checks.
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(HOUR),
    );
    // The help desk finds it insufficient; with nothing the system can name, it must say
    // which fields.
    let err = run
        .exec(
            &helpdesk(),
            Command::ReviewReportForm {
                complete: false,
                missing: vec![],
                message: None,
            },
            at(2 * HOUR),
        )
        .expect_err("which fields?");
    assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "missing"));
    // The request for complementary information names the fields.
    let events = run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: false,
            missing: vec!["preventive_actions".into(), "root_cause".into()],
            message: Some("Favor de detallar".into()),
        },
        at(2 * HOUR),
    );
    assert!(matches!(
        &events[0].change,
        Change::ReportFormReviewed { complete: false, missing, .. }
            if missing == &["root_cause".to_string(), "preventive_actions".to_string()]
    ));
    let inc = run.inc();
    assert_eq!(inc.report_form.state, ReportFormState::Incomplete);
    assert_eq!(inc.state, IncidentState::AwaitingValidation, "unchanged");
    let form_clock = inc.clock(ClockId::REPORT_FORM).expect("form clock");
    assert_eq!(form_clock.state(at(3 * HOUR)), ClockState::Running);
    assert_eq!(form_clock.target_s, 86_400);
    assert_eq!(
        form_clock.elapsed_s(at(3 * HOUR)),
        (HOUR - 30 * MIN) + HOUR,
        "notice -> delivery, then the request -> now; the review hour is not counted"
    );
    // The agency completes and resends; accepted, the clock stops.
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(4 * HOUR),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(5 * HOUR),
    );
    let clock = run.inc().clock(ClockId::REPORT_FORM).expect("form clock");
    assert_eq!(clock.state(at(50 * HOUR)), ClockState::Met);
    assert_eq!(clock.elapsed_s(at(50 * HOUR)), (HOUR - 30 * MIN) + 2 * HOUR);
}

#[test]
fn exception_incomplete_form_refuses_unknown_field_names() {
    let mut run = awaiting_validation(Severity::High);
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(HOUR),
    );
    let err = run
        .exec(
            &helpdesk(),
            Command::ReviewReportForm {
                complete: false,
                missing: vec!["color_favorito".into()],
                message: None,
            },
            at(2 * HOUR),
        )
        .expect_err("unknown field");
    assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "missing"));
    assert_eq!(run.inc().report_form.state, ReportFormState::Submitted);
}

#[test]
fn exception_persistence_returns_to_correction_and_opens_a_new_round() {
    let mut run = awaiting_validation(Severity::Critical);
    // Failing without observations is not allowed: the agency must know what to fix.
    let err = run
        .exec(
            &validator(),
            Command::RecordValidation {
                passed: false,
                observations: vec![" ".into()],
            },
            at(35 * MIN),
        )
        .expect_err("observations required");
    assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "observations"));

    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: false,
            observations: vec!["El formulario no valida la CURP".into()],
        },
        at(40 * MIN),
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::InCorrection);
    assert!(!inc.portal.button_enabled, "button stays disabled");
    assert_eq!(
        inc.clock(ClockId::validation(1))
            .map(|c| (c.state(at(HOUR)), c.elapsed_s(at(HOUR)))),
        Some((ClockState::Met, 10 * MIN))
    );
    let resolution = inc.clock(ClockId::RESOLUTION).expect("resolution");
    assert_eq!(resolution.state(at(41 * MIN)), ClockState::Running);
    assert_eq!(
        resolution.elapsed_s(at(41 * MIN)),
        25 * MIN + MIN,
        "resumed at the verdict, the 10 min with CEDN excluded"
    );
    // A new resolution notice opens round 2 with its own clock.
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Validación de CURP corregida".into(),
        },
        at(50 * MIN),
    );
    assert_eq!(run.inc().validation_rounds(), 2);
    let round2 = run.inc().clock(ClockId::validation(2)).expect("round 2");
    assert_eq!((round2.started_at, round2.target_s), (at(50 * MIN), 1200));
}

#[test]
fn exception_escalation_by_hand_goes_to_superior_cc_responsible_and_climbs() {
    let mut run = Run::notified(Severity::Medium);
    let escalate = |reason: &str| Command::Escalate {
        reason: reason.into(),
        ladder: ladder(),
    };
    let err = run
        .exec(&helpdesk(), escalate(" "), at(6 * MIN))
        .expect_err("reason required");
    assert!(matches!(err, DecideError::InvalidFields(ref f) if f[0].field == "reason"));
    let events = run.ok(
        &helpdesk(),
        escalate("El responsable no contesta el teléfono"),
        at(6 * MIN),
    );
    assert_eq!(
        events[0].change,
        Change::Escalated {
            clock: None,
            side: incidencias_core::Side::Agency,
            level: 1,
            to: SUPERIOR_1,
            cc: vec![RESPONSIBLE],
            reason: Some("El responsable no contesta el teléfono".into()),
        }
    );
    assert_eq!(run.inc().escalation_level, 1);
    assert_eq!(
        run.inc().state,
        IncidentState::AwaitingAck,
        "state unchanged"
    );
    for (minute, expected) in [(7, SUPERIOR_2), (8, SUPERIOR_3)] {
        let events = run.ok(&helpdesk(), escalate("Sin respuesta"), at(minute * MIN));
        assert!(
            matches!(events[0].change, Change::Escalated { to, .. } if to == expected),
            "minute {minute}"
        );
    }
    assert_eq!(run.inc().escalation_level, 3, "the ladder's top");
    assert_eq!(run.inc().manual_escalations, 3);
}

#[test]
fn exception_escalation_by_hand_at_the_top_of_the_ladder_is_refused() {
    let mut run = Run::notified(Severity::Medium);
    let escalate = || Command::Escalate {
        reason: "Sin respuesta".into(),
        ladder: ladder(),
    };
    for minute in 6..9 {
        run.ok(&helpdesk(), escalate(), at(minute * MIN));
    }
    assert_eq!(run.inc().agency_escalation_level, 3);
    let err = run
        .exec(&helpdesk(), escalate(), at(9 * MIN))
        .expect_err("never the same top official again");
    assert_eq!(
        err,
        DecideError::NoSuperior {
            side: incidencias_core::Side::Agency,
            level: 3
        }
    );
    assert!(err.to_string().contains("nivel más alto"), "{err}");
    assert_eq!(run.inc().manual_escalations, 3, "nothing recorded");
}

#[test]
fn exception_escalation_without_superior_is_refused_with_the_reason() {
    let mut run = Run::notified(Severity::Medium);
    let mut short = ladder();
    short.agency.truncate(1);
    let err = run
        .exec(
            &helpdesk(),
            Command::Escalate {
                reason: "SLO excedido".into(),
                ladder: short,
            },
            at(6 * MIN),
        )
        .expect_err("no superior");
    assert_eq!(
        err,
        DecideError::NoSuperior {
            side: incidencias_core::Side::Agency,
            level: 0
        }
    );
    assert!(
        err.to_string()
            .contains("no tiene registrado un nivel jerárquico superior"),
        "{err}"
    );
}

#[test]
fn exception_escalation_automatic_when_slo_exceeded() {
    let mut run = Run::notified(Severity::Critical);
    let due = due_actions(run.inc(), &ladder(), at(5 * MIN + 15 * MIN));
    let kinds: Vec<(ClockId, ActionKind, u32)> = due
        .iter()
        .map(|a| (a.key.clock, a.key.kind, a.key.level))
        .collect();
    assert_eq!(
        kinds,
        [
            (ClockId::ACK, ActionKind::Breach, 0),
            (ClockId::ACK, ActionKind::Escalation, 1),
        ],
        "warning superseded by the breach; level 1 at the target"
    );
    for action in due {
        run.ok(
            &incidencias_core::Actor::System,
            Command::Fire {
                key: action.key,
                ladder: ladder(),
            },
            at(20 * MIN),
        );
    }
    let inc = run.inc();
    assert_eq!(inc.escalation_level, 1);
    let ack = inc.clock(ClockId::ACK).expect("ack");
    assert!(ack.breach_recorded);
    assert_eq!(ack.breached_at, Some(at(20 * MIN)));
}

#[test]
fn severity_change_recomputes_running_targets_from_original_starts_and_keeps_breaches() {
    let mut run = Run::notified(Severity::Low);
    // 40 min in: under low (1 h) nothing is breached.
    run.ok(&agency(), Command::Acknowledge, at(45 * MIN));
    let events = run.ok(
        &helpdesk(),
        Command::ChangeSeverity {
            severity: Severity::Critical,
            reason: "Afecta a todos los usuarios".into(),
        },
        at(HOUR + 40 * MIN),
    );
    assert!(matches!(
        events[0].change,
        Change::SeverityChanged {
            from: Severity::Low,
            to: Severity::Critical,
            ..
        }
    ));
    let inc = run.inc();
    assert_eq!(
        inc.clock(ClockId::ACK).map(|c| c.target_s),
        Some(3600),
        "stopped clocks keep their target"
    );
    let resolution = inc.clock(ClockId::RESOLUTION).expect("resolution");
    assert_eq!(resolution.target_s, 90 * 60, "critical target, same start");
    assert_eq!(resolution.started_at, at(5 * MIN));
    assert_eq!(
        resolution.breached_at,
        Some(at(5 * MIN + 90 * MIN)),
        "95 min elapsed > 90: breached as of its due instant"
    );
    // Back to low: the breach stays.
    run.ok(
        &helpdesk(),
        Command::ChangeSeverity {
            severity: Severity::Low,
            reason: "Reclasificada".into(),
        },
        at(2 * HOUR),
    );
    let resolution = run.inc().clock(ClockId::RESOLUTION).expect("resolution");
    assert_eq!(resolution.target_s, 24 * 3600);
    assert_eq!(resolution.state(at(2 * HOUR)), ClockState::Breached);
}

#[test]
fn dismissal_keeps_the_report_and_stops_everything() {
    let mut run = Run::new();
    run.ok(&helpdesk(), report(0), at(0));
    let err = run
        .exec(&helpdesk(), Command::Dismiss { reason: "".into() }, at(60))
        .expect_err("reason required");
    assert!(matches!(err, DecideError::InvalidFields(_)));
    run.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "Duplicado de INC-2026-000122".into(),
        },
        at(60),
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Dismissed);
    assert_eq!(
        inc.dismissal_reason.as_deref(),
        Some("Duplicado de INC-2026-000122")
    );
    assert_eq!(run.events.len(), 2, "the report is kept in the history");
    let err = run
        .exec(
            &helpdesk(),
            Command::Notify {
                severity: Severity::Low,
                disable_button: true,
                occurred_at: None,
            },
            at(120),
        )
        .expect_err("dismissed is final");
    assert!(err.to_string().contains("descartado"), "{err}");
}

#[test]
fn two_validation_rounds_exclude_cedn_time_from_resolution_and_each_round_has_its_clock() {
    // Critical: resolution 90 min, validation 20 min per round.
    let mut run = Run::notified(Severity::Critical); // notified at +5 min
    run.ok(&agency(), Command::Acknowledge, at(10 * MIN));
    // Agency works 40 min, then notifies resolution (round 1).
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Primer intento".into(),
        },
        at(45 * MIN),
    );
    // CEDN takes 30 min (breaches its 20 min round-1 target) and fails it.
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: false,
            observations: vec!["Persiste el error en el pago".into()],
        },
        at(75 * MIN),
    );
    // Agency works 30 more minutes, round 2.
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Segundo intento".into(),
        },
        at(105 * MIN),
    );
    // CEDN passes round 2 after 15 min.
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(120 * MIN),
    );
    let inc = run.inc();
    let late = at(100 * HOUR);
    let resolution = inc.clock(ClockId::RESOLUTION).expect("resolution");
    assert_eq!(
        resolution.elapsed_s(late),
        (40 + 30) * MIN,
        "only the agency's time: 115 min of wall time minus 30 + 15 min with CEDN"
    );
    assert_eq!(
        resolution.state(late),
        ClockState::Met,
        "70 min < 90 min although 115 min of wall time passed"
    );
    let rounds: Vec<(u32, ClockState, i64)> = inc
        .validation_clocks()
        .map(|c| (c.id.round, c.state(late), c.elapsed_s(late)))
        .collect();
    assert_eq!(
        rounds,
        [
            (1, ClockState::Breached, 30 * MIN),
            (2, ClockState::Met, 15 * MIN)
        ]
    );
    assert_eq!(inc.rounds.len(), 2);
    assert_eq!(inc.rounds[0].passed, Some(false));
    assert_eq!(inc.rounds[1].passed, Some(true));
    assert_eq!(inc.state, IncidentState::Validated);
    // The report form clock started at the first notice, not the second.
    assert_eq!(
        inc.clock(ClockId::REPORT_FORM).map(|c| c.started_at),
        Some(at(45 * MIN))
    );
}

#[test]
fn form_instants_are_kept_at_millisecond_precision_so_the_notice_instant_is_not_after_them() {
    // A client sends the resolution instant with nanoseconds; the notice was recorded at
    // milliseconds. Restored "at the notice" must not read as after it.
    let mut run = awaiting_validation(Severity::High);
    let notice = run.inc().last_resolution_at().expect("notice");
    let precise = notice
        .checked_add(jiff::SignedDuration::from_nanos(700_000))
        .expect("in range");
    let form = IncidentReport {
        restored_at: Some(precise),
        ..complete_form()
    };
    run.ok(&agency(), Command::SubmitReportForm(form), at(HOUR));
    let stored = run.inc().report_form.form.clone().expect("form");
    assert_eq!(stored.restored_at, Some(notice));
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(2 * HOUR),
    );
    assert_eq!(run.inc().report_form.state, ReportFormState::Accepted);
}

#[test]
fn dismissal_only_while_reported_or_awaiting_ack() {
    let mut run = Run::notified(Severity::High);
    run.ok(&agency(), Command::Acknowledge, at(6 * MIN));
    let err = run
        .exec(
            &helpdesk(),
            Command::Dismiss {
                reason: "Falsa alarma".into(),
            },
            at(7 * MIN),
        )
        .expect_err("acknowledged: the incident is real");
    assert!(
        matches!(
            err,
            DecideError::InvalidTransition {
                state: Some(IncidentState::InCorrection),
                command: "dismiss",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(run.inc().state, IncidentState::InCorrection);
}

#[test]
fn dismissal_after_notification_restores_the_portal_as_automatic_changes() {
    use incidencias_core::{Actor, BannerCause, ButtonCause};
    let mut run = Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: None,
        },
        at(6 * MIN),
    );
    let events = run.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "Falsa alarma del monitoreo".into(),
        },
        at(7 * MIN),
    );
    let record: Vec<(Actor, Change)> = events
        .iter()
        .map(|e| (e.actor.clone(), e.change.clone()))
        .collect();
    assert_eq!(
        record,
        vec![
            (
                Actor::System,
                Change::ButtonSet {
                    enabled: true,
                    cause: ButtonCause::Dismissal,
                }
            ),
            (
                Actor::System,
                Change::BannerSet {
                    shown: false,
                    message: None,
                    cause: BannerCause::Dismissal,
                }
            ),
            (
                helpdesk(),
                Change::Dismissed {
                    reason: "Falsa alarma del monitoreo".into(),
                    notified: true,
                }
            ),
        ]
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::Dismissed);
    assert!(inc.portal.button_enabled && !inc.portal.banner_shown);

    // Before notification nothing was changed on the portal and nobody outside the help
    // desk knew: the dismissal alone.
    let mut early = Run::new();
    early.ok(&helpdesk(), report(0), at(0));
    let events = early.ok(
        &helpdesk(),
        Command::Dismiss {
            reason: "Duplicado".into(),
        },
        at(60),
    );
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0].change,
        Change::Dismissed {
            notified: false,
            ..
        }
    ));
}

#[test]
fn exception_persistence_after_the_form_was_accepted_sends_the_form_back_to_due() {
    let mut run = awaiting_validation(Severity::High); // resolution notice at +30 min
    run.ok(
        &agency(),
        Command::SubmitReportForm(complete_form()),
        at(HOUR),
    );
    run.ok(
        &helpdesk(),
        Command::ReviewReportForm {
            complete: true,
            missing: vec![],
            message: None,
        },
        at(2 * HOUR),
    );
    assert_eq!(run.inc().report_form.state, ReportFormState::Accepted);
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: false,
            observations: vec!["El pago en línea sigue fallando".into()],
        },
        at(3 * HOUR),
    );
    let inc = run.inc();
    assert_eq!(inc.report_form.state, ReportFormState::Due);
    assert_eq!(inc.report_form.requested, ["restored_at", "root_cause"]);
    assert!(
        inc.report_form.form.is_some(),
        "kept as the basis to revise"
    );
    let form_clock = inc.clock(ClockId::REPORT_FORM).expect("form clock");
    assert_eq!(
        (
            form_clock.state(at(5 * HOUR)),
            form_clock.elapsed_s(at(5 * HOUR))
        ),
        (ClockState::Paused, 30 * MIN),
        "not running until the next resolution notice"
    );
    // The next resolution notice: the clock runs again from there.
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Pasarela de pago corregida".into(),
        },
        at(5 * HOUR),
    );
    let form_clock = run.inc().clock(ClockId::REPORT_FORM).expect("form clock");
    assert_eq!(
        (
            form_clock.state(at(6 * HOUR)),
            form_clock.elapsed_s(at(6 * HOUR))
        ),
        (ClockState::Running, 30 * MIN + HOUR)
    );
    // Closing needs the revised form accepted again.
    run.ok(
        &validator(),
        Command::RecordValidation {
            passed: true,
            observations: vec![],
        },
        at(6 * HOUR),
    );
    let err = run
        .exec(&helpdesk(), Command::Close, at(6 * HOUR))
        .expect_err("form owed again");
    assert!(
        matches!(err, DecideError::ClosingRuleNotMet(ref u)
            if u.contains(&incidencias_core::ClosingCondition::ReportFormAccepted)),
        "{err:?}"
    );
}
