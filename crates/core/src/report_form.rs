//! The incident report form (step 6, *Formato de incidencias*) and its completeness rules.
//!
//! The agency may save an incomplete form (every field is optional on input); completeness
//! is judged by [`check`], which names each missing or contradictory field. The help desk
//! can only accept a form that `check` finds complete, and its request for complementary
//! information names the fields.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::types::ParseError;

/// What the agency fills in. Missing JSON fields default to empty, so a partial form can be
/// saved; unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentReport {
    /// When the agency detected the failure; not before it occurred.
    pub detected_at: Option<Timestamp>,
    /// When service was restored; not before detection, nor after the latest resolution
    /// notice.
    pub restored_at: Option<Timestamp>,
    /// Description of the failure observed.
    pub symptoms: String,
    /// Users or transactions affected, estimated.
    pub impact: String,
    /// The root cause.
    pub root_cause: String,
    /// One entry per action applied.
    pub actions_taken: Vec<String>,
    /// Verification and validation done by the agency.
    pub verification: String,
    /// Actions to prevent a recurrence.
    pub preventive_actions: String,
    /// Name of who prepared the form.
    pub prepared_by_name: String,
    /// Position (*cargo*) of who prepared the form.
    pub prepared_by_position: String,
    /// Optional evidence: file names or links.
    pub attachments: Vec<String>,
}

/// The form's fields, in the order the form shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormField {
    /// [`IncidentReport::detected_at`].
    DetectedAt,
    /// [`IncidentReport::restored_at`].
    RestoredAt,
    /// [`IncidentReport::symptoms`].
    Symptoms,
    /// [`IncidentReport::impact`].
    Impact,
    /// [`IncidentReport::root_cause`].
    RootCause,
    /// [`IncidentReport::actions_taken`].
    ActionsTaken,
    /// [`IncidentReport::verification`].
    Verification,
    /// [`IncidentReport::preventive_actions`].
    PreventiveActions,
    /// [`IncidentReport::prepared_by_name`].
    PreparedByName,
    /// [`IncidentReport::prepared_by_position`].
    PreparedByPosition,
    /// [`IncidentReport::attachments`]; the only optional one.
    Attachments,
}

impl FormField {
    /// Every field, in form order.
    pub const ALL: [FormField; 11] = [
        FormField::DetectedAt,
        FormField::RestoredAt,
        FormField::Symptoms,
        FormField::Impact,
        FormField::RootCause,
        FormField::ActionsTaken,
        FormField::Verification,
        FormField::PreventiveActions,
        FormField::PreparedByName,
        FormField::PreparedByPosition,
        FormField::Attachments,
    ];

    /// The API name, equal to the [`IncidentReport`] field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FormField::DetectedAt => "detected_at",
            FormField::RestoredAt => "restored_at",
            FormField::Symptoms => "symptoms",
            FormField::Impact => "impact",
            FormField::RootCause => "root_cause",
            FormField::ActionsTaken => "actions_taken",
            FormField::Verification => "verification",
            FormField::PreventiveActions => "preventive_actions",
            FormField::PreparedByName => "prepared_by_name",
            FormField::PreparedByPosition => "prepared_by_position",
            FormField::Attachments => "attachments",
        }
    }

    /// The label the form shows (PROTOCOL.md).
    pub fn label(self) -> &'static str {
        match self {
            FormField::DetectedAt => "Fecha y hora de detección",
            FormField::RestoredAt => "Fecha y hora de restablecimiento del servicio",
            FormField::Symptoms => "Descripción de la falla observada",
            FormField::Impact => "Impacto (usuarios o transacciones afectadas, estimado)",
            FormField::RootCause => "Causa raíz",
            FormField::ActionsTaken => "Acciones aplicadas para la resolución",
            FormField::Verification => "Verificación y validación realizadas por la dependencia",
            FormField::PreventiveActions => "Acciones preventivas para evitar recurrencia",
            FormField::PreparedByName => "Nombre de quien elabora",
            FormField::PreparedByPosition => "Cargo de quien elabora",
            FormField::Attachments => "Evidencias",
        }
    }

    /// Whether [`check`] requires it: all but the attachments.
    pub fn required(self) -> bool {
        !matches!(self, FormField::Attachments)
    }

    /// Parses an API name, ignoring surrounding spaces.
    pub fn parse(input: &str) -> Result<FormField, ParseError> {
        FormField::ALL
            .into_iter()
            .find(|f| f.as_str() == input.trim())
            .ok_or_else(|| ParseError {
                what: "campo del formato",
                input: input.chars().take(80).collect(),
                reason: "no es un campo del formato de incidencias",
            })
    }
}

impl fmt::Display for FormField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormProblem {
    /// Required, and absent or blank.
    Missing,
    /// The value contradicts the record; the text says how, in Spanish.
    Contradictory(&'static str),
}

/// One problem [`check`] found. Its `Display` is Spanish, for the agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormIssue {
    /// The field.
    pub field: FormField,
    /// What is wrong with it.
    pub problem: FormProblem,
}

impl fmt::Display for FormIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            FormProblem::Missing => write!(f, "{}: falta", self.field.label()),
            FormProblem::Contradictory(why) => write!(f, "{}: {why}", self.field.label()),
        }
    }
}

/// What the record says, against which the form's instants are checked.
#[derive(Debug, Clone, Copy)]
pub struct FormContext {
    /// When the failure occurred: detection cannot be earlier.
    pub occurred_at: Timestamp,
    /// The latest resolution notice: service must have been restored by then.
    pub last_resolution_at: Option<Timestamp>,
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Every missing or contradictory field, in form order. Empty means complete.
pub fn check(form: &IncidentReport, ctx: &FormContext) -> Vec<FormIssue> {
    let mut issues = Vec::new();
    let mut missing = |field, is_missing: bool| {
        if is_missing {
            issues.push(FormIssue {
                field,
                problem: FormProblem::Missing,
            });
        }
    };
    missing(FormField::DetectedAt, form.detected_at.is_none());
    missing(FormField::RestoredAt, form.restored_at.is_none());
    missing(FormField::Symptoms, blank(&form.symptoms));
    missing(FormField::Impact, blank(&form.impact));
    missing(FormField::RootCause, blank(&form.root_cause));
    missing(
        FormField::ActionsTaken,
        form.actions_taken.iter().all(|a| blank(a)),
    );
    missing(FormField::Verification, blank(&form.verification));
    missing(
        FormField::PreventiveActions,
        blank(&form.preventive_actions),
    );
    missing(FormField::PreparedByName, blank(&form.prepared_by_name));
    missing(
        FormField::PreparedByPosition,
        blank(&form.prepared_by_position),
    );

    let mut contradiction = |field, why| {
        issues.push(FormIssue {
            field,
            problem: FormProblem::Contradictory(why),
        })
    };
    if let Some(detected) = form.detected_at
        && detected < ctx.occurred_at
    {
        contradiction(
            FormField::DetectedAt,
            "es anterior a la fecha en que ocurrió la falla",
        );
    }
    if let Some(restored) = form.restored_at {
        if form.detected_at.is_some_and(|d| restored < d) {
            contradiction(FormField::RestoredAt, "es anterior a la detección");
        }
        if ctx.last_resolution_at.is_some_and(|r| restored > r) {
            contradiction(
                FormField::RestoredAt,
                "es posterior al aviso de resolución de la dependencia",
            );
        }
    }
    issues.sort_by_key(|i| i.field);
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("in range")
    }

    pub(crate) fn complete_form() -> IncidentReport {
        IncidentReport {
            detected_at: Some(t(10)),
            restored_at: Some(t(20)),
            symptoms: "Error 500 al enviar".into(),
            impact: "Unos 300 usuarios".into(),
            root_cause: "Certificado vencido".into(),
            actions_taken: vec!["Renovación del certificado".into()],
            verification: "Prueba de extremo a extremo".into(),
            preventive_actions: "Alerta de vencimiento".into(),
            prepared_by_name: "Ana López".into(),
            prepared_by_position: "Directora de TI".into(),
            attachments: vec![],
        }
    }

    fn ctx() -> FormContext {
        FormContext {
            occurred_at: t(0),
            last_resolution_at: Some(t(30)),
        }
    }

    #[test]
    fn complete_form_has_no_issues() {
        assert_eq!(check(&complete_form(), &ctx()), vec![]);
    }

    #[test]
    fn empty_form_lists_every_required_field_in_order() {
        let fields: Vec<FormField> = check(&IncidentReport::default(), &ctx())
            .into_iter()
            .map(|i| i.field)
            .collect();
        let required: Vec<FormField> = FormField::ALL
            .into_iter()
            .filter(|f| f.required())
            .collect();
        assert_eq!(fields, required);
    }

    #[test]
    fn contradictory_instants_are_named() {
        let mut f = complete_form();
        f.detected_at = Some(t(-5));
        f.restored_at = Some(t(-10));
        let issues = check(&f, &ctx());
        assert_eq!(
            issues.iter().map(|i| i.field).collect::<Vec<_>>(),
            vec![FormField::DetectedAt, FormField::RestoredAt]
        );
        let mut f = complete_form();
        f.restored_at = Some(t(31));
        assert_eq!(check(&f, &ctx())[0].field, FormField::RestoredAt);
    }

    #[test]
    fn blank_strings_and_blank_actions_count_as_missing() {
        let mut f = complete_form();
        f.symptoms = "   ".into();
        f.actions_taken = vec![" ".into()];
        let fields: Vec<FormField> = check(&f, &ctx()).into_iter().map(|i| i.field).collect();
        assert_eq!(fields, vec![FormField::Symptoms, FormField::ActionsTaken]);
    }
}
