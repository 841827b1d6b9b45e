//! What the portal shows for a procedure (button, banner) and the closing rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::incident::{Incident, ReportFormState};

/// The portal's side of an incident. The button starts enabled (the procedure was live
/// when the failure happened) and the banner hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalState {
    /// The portal's entry button: disabled at step 2 (unless kept), enabled again at
    /// step 4; a validator may switch it by hand.
    pub button_enabled: bool,
    /// The agency's maintenance banner: shown at step 2 (3), removed at step 5.
    pub banner_shown: bool,
    /// The maintenance notice the agency shows, if it gave one.
    pub banner_message: Option<String>,
}

impl Default for PortalState {
    fn default() -> Self {
        PortalState {
            button_enabled: true,
            banner_shown: false,
            banner_message: None,
        }
    }
}

/// Default text of the banner when the agency did not write its own.
pub const DEFAULT_BANNER_MESSAGE: &str = "Este trámite presenta una falla y se encuentra en \
     atención. Le ofrecemos una disculpa por las molestias.";

/// One condition of the closing rule (PROTOCOL.md, "Closing rule").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosingCondition {
    /// CEDN passed the latest validation round (step 4).
    ValidationPassed,
    /// The portal button is enabled again.
    ButtonEnabled,
    /// The banner was shown during the incident, or the help desk recorded why not.
    BannerShownOrExempted,
    /// The agency removed the banner (step 5).
    BannerRemoved,
    /// The help desk accepted the report form (step 6).
    ReportFormAccepted,
}

impl ClosingCondition {
    /// Every condition of the closing rule, in the order the protocol meets them.
    pub const ALL: [ClosingCondition; 5] = [
        ClosingCondition::ValidationPassed,
        ClosingCondition::ButtonEnabled,
        ClosingCondition::BannerShownOrExempted,
        ClosingCondition::BannerRemoved,
        ClosingCondition::ReportFormAccepted,
    ];

    /// The condition itself, in Spanish (a checklist's line).
    pub fn label(self) -> &'static str {
        match self {
            ClosingCondition::ValidationPassed => "Validación de CEDN aprobada",
            ClosingCondition::ButtonEnabled => "Botón del trámite habilitado",
            ClosingCondition::BannerShownOrExempted => {
                "Cortinilla desplegada durante la incidencia (o excepción registrada)"
            }
            ClosingCondition::BannerRemoved => "Cortinilla retirada",
            ClosingCondition::ReportFormAccepted => "Formato de incidencias aceptado",
        }
    }

    /// The API / code name (`snake_case`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosingCondition::ValidationPassed => "validation_passed",
            ClosingCondition::ButtonEnabled => "button_enabled",
            ClosingCondition::BannerShownOrExempted => "banner_shown_or_exempted",
            ClosingCondition::BannerRemoved => "banner_removed",
            ClosingCondition::ReportFormAccepted => "report_form_accepted",
        }
    }

    /// What is still missing, in Spanish.
    pub fn pending_label(self) -> &'static str {
        match self {
            ClosingCondition::ValidationPassed => "CEDN no ha validado la corrección",
            ClosingCondition::ButtonEnabled => "el botón del trámite sigue deshabilitado",
            ClosingCondition::BannerShownOrExempted => {
                "la cortinilla no se desplegó y no se registró por qué"
            }
            ClosingCondition::BannerRemoved => "la cortinilla sigue desplegada",
            ClosingCondition::ReportFormAccepted => "el formato de incidencias no ha sido aceptado",
        }
    }
}

impl fmt::Display for ClosingCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pending_label())
    }
}

/// The closing-rule conditions that do not hold yet; empty when the incident may close.
pub fn closing_conditions_unmet(incident: &Incident) -> Vec<ClosingCondition> {
    let mut unmet = Vec::new();
    if !incident.validation_passed() {
        unmet.push(ClosingCondition::ValidationPassed);
    }
    if !incident.portal.button_enabled {
        unmet.push(ClosingCondition::ButtonEnabled);
    }
    if incident.banner_first_shown_at.is_none() && incident.banner_exemption.is_none() {
        unmet.push(ClosingCondition::BannerShownOrExempted);
    }
    if incident.portal.banner_shown {
        unmet.push(ClosingCondition::BannerRemoved);
    }
    if incident.report_form.state != ReportFormState::Accepted {
        unmet.push(ClosingCondition::ReportFormAccepted);
    }
    unmet
}

/// What the portal shows for one procedure, given the incidents that touch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureStatus {
    /// False when any open incident disabled the button.
    pub button_enabled: bool,
    /// True when any open incident shows the banner.
    pub banner_shown: bool,
    /// The banner's text while shown: the agency's own or [`DEFAULT_BANNER_MESSAGE`].
    pub banner_message: Option<String>,
    /// The open, notified incident that determines the status, if any (the most recently
    /// reported).
    pub incident: Option<crate::types::Folio>,
    /// When that incident was reported.
    pub since: Option<jiff::Timestamp>,
}

/// Combines the incidents of one procedure into its public status. Only open incidents
/// that have been notified count: closed ones have, by the closing rule, the button
/// enabled and no banner, a dismissed report never was an incident, and a report not yet
/// notified may still be dismissed as a false alarm, so it is not published (PROTOCOL.md,
/// "Portal state"). The button is disabled if any of them disabled it; the banner is shown
/// if any shows it.
pub fn procedure_status<'a>(incidents: impl IntoIterator<Item = &'a Incident>) -> ProcedureStatus {
    let open: Vec<&Incident> = incidents
        .into_iter()
        .filter(|i| !i.state.is_terminal() && i.notified_at.is_some())
        .collect();
    let latest = open
        .iter()
        .max_by_key(|i| (i.reported_at, i.folio))
        .copied();
    let banner = open.iter().find(|i| i.portal.banner_shown);
    ProcedureStatus {
        button_enabled: open.iter().all(|i| i.portal.button_enabled),
        banner_shown: banner.is_some(),
        banner_message: banner.map(|i| {
            i.portal
                .banner_message
                .clone()
                .unwrap_or_else(|| DEFAULT_BANNER_MESSAGE.to_string())
        }),
        incident: latest.map(|i| i.folio),
        since: latest.map(|i| i.reported_at),
    }
}

/// What a citizen is told about a procedure on the public status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicState {
    /// No published incident, or the service is restored (button enabled, no banner)
    /// while the incident's paperwork finishes.
    Operating,
    /// A published incident disabled the procedure's button: it cannot be used now.
    Incident,
    /// The procedure can be used (its button stays enabled, as for a slow one) but the
    /// agency shows the banner: it works with a notice.
    Maintenance,
}

impl PublicState {
    /// The state of a procedure with `status` ([`procedure_status`]).
    pub fn of(status: &ProcedureStatus) -> PublicState {
        match (
            status.incident.is_some(),
            status.button_enabled,
            status.banner_shown,
        ) {
            (false, _, _) => PublicState::Operating,
            (true, false, _) => PublicState::Incident,
            (true, true, true) => PublicState::Maintenance,
            (true, true, false) => PublicState::Operating,
        }
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            PublicState::Operating => "operating",
            PublicState::Incident => "incident",
            PublicState::Maintenance => "maintenance",
        }
    }

    /// The words of the public page.
    pub fn label(self) -> &'static str {
        match self {
            PublicState::Operating => "Operando",
            PublicState::Incident => "Con incidencia",
            PublicState::Maintenance => "En mantenimiento",
        }
    }
}
