//! The words people read and the names programs read, for every value the core names:
//! the Spanish labels are the copy deck's (PROTOCOL.md, UI.md), the API names equal the
//! serde form, and `Display` says what each type's documentation promises. Found
//! untested by surviving mutants (docs/testing.md): the app's pages show them, the core's
//! tests did not pin them.

use incidencias_core::report_form::{FormContext, check};
use incidencias_core::{ClockName, ClockState, ClosingCondition, FormField, PublicState};

#[test]
fn closing_conditions_read_as_a_checklist_and_as_what_is_missing() {
    let expected = [
        (
            ClosingCondition::ValidationPassed,
            "Validación de CEDN aprobada",
            "CEDN no ha validado la corrección",
        ),
        (
            ClosingCondition::ButtonEnabled,
            "Botón del trámite habilitado",
            "el botón del trámite sigue deshabilitado",
        ),
        (
            ClosingCondition::BannerShownOrExempted,
            "Cortinilla desplegada durante la incidencia (o excepción registrada)",
            "la cortinilla no se desplegó y no se registró por qué",
        ),
        (
            ClosingCondition::BannerRemoved,
            "Cortinilla retirada",
            "la cortinilla sigue desplegada",
        ),
        (
            ClosingCondition::ReportFormAccepted,
            "Formato de incidencias aceptado",
            "el formato de incidencias no ha sido aceptado",
        ),
    ];
    for (condition, label, pending) in expected {
        assert_eq!(condition.label(), label);
        assert_eq!(condition.pending_label(), pending);
        assert_eq!(
            condition.to_string(),
            pending,
            "Display says what is missing"
        );
    }
}

#[test]
fn public_states_clock_states_and_clock_names_have_their_words() {
    for (state, name, label) in [
        (PublicState::Operating, "operating", "Operando"),
        (PublicState::Incident, "incident", "Con incidencia"),
        (PublicState::Maintenance, "maintenance", "En mantenimiento"),
    ] {
        assert_eq!((state.as_str(), state.label()), (name, label));
    }
    for (state, name) in [
        (ClockState::Running, "running"),
        (ClockState::Paused, "paused"),
        (ClockState::Met, "met"),
        (ClockState::Breached, "breached"),
    ] {
        assert_eq!(state.as_str(), name);
        assert_eq!(serde_json::to_value(state).expect("json"), name);
    }
    for (clock, label) in [
        (ClockName::Report, "Reporte"),
        (ClockName::Ack, "Confirmación de enterado"),
        (ClockName::Resolution, "Resolución"),
        (ClockName::Validation, "Validación"),
        (ClockName::ReportForm, "Formato de incidencias"),
    ] {
        assert_eq!(clock.label(), label);
    }
}

#[test]
fn form_fields_show_the_annexs_labels_and_display_their_api_names() {
    let labels: Vec<&str> = FormField::ALL.iter().map(|f| f.label()).collect();
    assert_eq!(
        labels,
        [
            "Fecha y hora de detección",
            "Fecha y hora de restablecimiento del servicio",
            "Descripción de la falla observada",
            "Impacto (usuarios o transacciones afectadas, estimado)",
            "Causa raíz",
            "Acciones aplicadas para la resolución",
            "Verificación y validación realizadas por la dependencia",
            "Acciones preventivas para evitar recurrencia",
            "Nombre de quien elabora",
            "Cargo de quien elabora",
            "Evidencias",
        ]
    );
    for f in FormField::ALL {
        assert_eq!(f.to_string(), f.as_str());
    }
}

#[test]
fn service_restored_the_instant_it_was_detected_is_no_contradiction() {
    let t: jiff::Timestamp = "2026-11-27T15:00:00Z".parse().expect("instant");
    let form = incidencias_core::IncidentReport {
        detected_at: Some(t),
        restored_at: Some(t),
        symptoms: "Error 500".into(),
        impact: "Todas las solicitudes".into(),
        root_cause: "Certificado vencido".into(),
        actions_taken: vec!["Renovación".into()],
        verification: "Prueba real".into(),
        preventive_actions: "Alerta de vencimiento".into(),
        prepared_by_name: "Ana López".into(),
        prepared_by_position: "Directora".into(),
        attachments: vec![],
    };
    let ctx = FormContext {
        occurred_at: t,
        last_resolution_at: Some(t),
    };
    assert_eq!(check(&form, &ctx), vec![]);
}
