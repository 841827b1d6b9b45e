//! The report form check (`report_form::check`), on forms built from the input (the core
//! tests' complete form with fields replaced: texts empty, blank in several ways or
//! anything; instants by the minute around the fixtures' history, within days, or anywhere
//! jiff allows) against the fixtures' context or one built from the input; then the same
//! form saved, delivered and reviewed through `decide` on each fixed incident that may take
//! a form.
//!
//! Beyond "no panic": the issues come in form order; a required field is reported missing
//! exactly when it is absent or blank, the optional one never; only the two instants can
//! contradict; every issue reads in Spanish and names a field that parses back; a draft is
//! saved unless a text has control characters; a form is delivered only if, besides, the
//! check finds it complete (at the store's millisecond precision), and the help desk can
//! then accept it.

#![no_main]

use incidencias_core::report_form::{FormContext, FormProblem, check};
use incidencias_core::{Command, FormField, IncidentReport, ReportFormState};
use incidencias_fuzz::common::{agency, at, complete_form, helpdesk};
use incidencias_fuzz::fixtures;
use jiff::Timestamp;
use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn text(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=4)? {
        0 => String::new(),
        1 => " \t\r\n".into(),
        // Blank to `str::trim` too: no-break and ideographic spaces.
        2 => "\u{a0}\u{3000}\u{2028}".into(),
        3 => "Error 500 al enviar la solicitud".into(),
        _ => String::arbitrary(u)?,
    })
}

fn instant(u: &mut Unstructured) -> Result<Timestamp> {
    let second = match u.int_in_range(0..=2)? {
        // Around the fixtures' history, by the minute: t0 = 2026-11-27T09:00:00Z, the
        // failure at t0 - 10 min, the resolution notice at t0 + 30 min.
        0 => at(0).as_second() + 60 * u.int_in_range(-120..=120)?,
        // A few days either way.
        1 => at(0).as_second() + u.int_in_range(-400_000..=400_000)?,
        _ => u.int_in_range(Timestamp::MIN.as_second() + 1..=Timestamp::MAX.as_second() - 1)?,
    };
    let nanos = if u.arbitrary()? {
        u.int_in_range(0..=999_999_999)?
    } else {
        0
    };
    Ok(Timestamp::new(second, nanos).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn maybe_instant(u: &mut Unstructured) -> Result<Option<Timestamp>> {
    Ok(if u.ratio(1, 5)? {
        None
    } else {
        Some(instant(u)?)
    })
}

fn list(u: &mut Unstructured) -> Result<Vec<String>> {
    let n = u.int_in_range(0..=4)?;
    (0..n).map(|_| text(u)).collect()
}

/// The core tests' complete form (complete for the fixtures), each field replaced by the
/// input one time in four: forms complete, nearly complete and anything.
fn form(u: &mut Unstructured) -> Result<IncidentReport> {
    let mut f = complete_form();
    if u.ratio(1, 4)? {
        f.detected_at = maybe_instant(u)?;
    }
    if u.ratio(1, 4)? {
        f.restored_at = maybe_instant(u)?;
    }
    for field in [
        &mut f.symptoms,
        &mut f.impact,
        &mut f.root_cause,
        &mut f.verification,
        &mut f.preventive_actions,
        &mut f.prepared_by_name,
        &mut f.prepared_by_position,
    ] {
        if u.ratio(1, 4)? {
            *field = text(u)?;
        }
    }
    if u.ratio(1, 4)? {
        f.actions_taken = list(u)?;
    }
    if u.ratio(1, 4)? {
        f.attachments = list(u)?;
    }
    Ok(f)
}

/// Every text of the form.
fn texts(form: &IncidentReport) -> impl Iterator<Item = &String> {
    [
        &form.symptoms,
        &form.impact,
        &form.root_cause,
        &form.verification,
        &form.preventive_actions,
        &form.prepared_by_name,
        &form.prepared_by_position,
    ]
    .into_iter()
    .chain(&form.actions_taken)
    .chain(&form.attachments)
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn is_missing(form: &IncidentReport, field: FormField) -> bool {
    match field {
        FormField::DetectedAt => form.detected_at.is_none(),
        FormField::RestoredAt => form.restored_at.is_none(),
        FormField::Symptoms => blank(&form.symptoms),
        FormField::Impact => blank(&form.impact),
        FormField::RootCause => blank(&form.root_cause),
        FormField::ActionsTaken => form.actions_taken.iter().all(|a| blank(a)),
        FormField::Verification => blank(&form.verification),
        FormField::PreventiveActions => blank(&form.preventive_actions),
        FormField::PreparedByName => blank(&form.prepared_by_name),
        FormField::PreparedByPosition => blank(&form.prepared_by_position),
        FormField::Attachments => false,
    }
}

fn at_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).expect("in range")
}

fn checked(form: &IncidentReport, ctx: &FormContext) {
    let issues = check(form, ctx);
    assert!(
        issues.windows(2).all(|w| w[0].field <= w[1].field),
        "{issues:?}"
    );
    for field in FormField::ALL {
        let reported = issues
            .iter()
            .any(|i| i.field == field && i.problem == FormProblem::Missing);
        assert_eq!(reported, is_missing(form, field), "{field:?} in {issues:?}");
    }
    for issue in &issues {
        if let FormProblem::Contradictory(_) = issue.problem {
            assert!(matches!(
                issue.field,
                FormField::DetectedAt | FormField::RestoredAt
            ));
        }
        assert!(!issue.to_string().is_empty());
        assert_eq!(
            FormField::parse(issue.field.as_str()).ok(),
            Some(issue.field)
        );
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let form = form(u)?;
    let ctx = if u.arbitrary()? {
        FormContext {
            occurred_at: at(-600),
            last_resolution_at: Some(at(1800)),
        }
    } else {
        FormContext {
            occurred_at: instant(u)?,
            last_resolution_at: maybe_instant(u)?,
        }
    };
    checked(&form, &ctx);

    // Delivered, saved, and reviewed on each incident that may take a form.
    for fixture in fixtures() {
        let Some(incident) = fixture.run.state.as_ref() else {
            continue;
        };
        let state = incident.report_form.state;
        if matches!(state, ReportFormState::NotDue | ReportFormState::Accepted) {
            continue;
        }
        let now = fixture.last_event_at().max(at(0)) + jiff::SignedDuration::from_mins(5);
        let precise = IncidentReport {
            detected_at: form.detected_at.map(at_millis),
            restored_at: form.restored_at.map(at_millis),
            ..form.clone()
        };
        checked(&precise, &incident.form_context());
        let complete = check(&precise, &incident.form_context()).is_empty();

        // The inputs are far below the size limits; control characters are refused.
        let clean = texts(&form).all(|t| {
            !t.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        });

        // A draft cannot take back a form under review.
        if state != ReportFormState::Submitted {
            let mut draft = fixture.fork();
            let saved = draft.exec(&agency(), Command::SaveReportFormDraft(form.clone()), now);
            assert_eq!(saved.is_ok(), clean, "draft on {}: {saved:?}", fixture.name);
        }

        let mut delivered = fixture.fork();
        let result = delivered.exec(&agency(), Command::SubmitReportForm(form.clone()), now);
        assert_eq!(
            result.is_ok(),
            clean && complete,
            "delivery on {}: {result:?}",
            fixture.name
        );
        if result.is_ok() {
            delivered
                .exec(
                    &helpdesk(),
                    Command::ReviewReportForm {
                        complete: true,
                        missing: vec![],
                        message: None,
                    },
                    now,
                )
                .expect("a complete form delivered can be accepted");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
