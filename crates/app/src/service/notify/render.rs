//! The Spanish emails of the protocol: one per [`Message`], from the step and exception
//! tables plus warnings and escalations. Rendering happens when a message is sent (or
//! previewed), so a template fix reaches queued mail.

use jiff::Timestamp;

use super::{Message, Notice};
use crate::encoding::{escape_html, header_safe};

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An instant as people in Mexico City read it: `27/11/2026 03:00 (hora del centro)`.
pub fn local(instant: Option<Timestamp>) -> String {
    let Some(t) = instant else {
        return "(sin plazo)".to_string();
    };
    let tz = crate::clock::mexico_city();
    let z = t.to_zoned_datetime(tz);
    format!(
        "{:02}/{:02}/{} {:02}:{:02} (hora del centro de México)",
        z.day(),
        z.month(),
        z.year(),
        z.hour(),
        z.minute()
    )
}

fn severity_label(s: Option<&str>) -> &'static str {
    match s.unwrap_or_default() {
        "critical" => "Crítica",
        "high" => "Alta",
        "medium" => "Media",
        "low" => "Baja",
        _ => "sin asignar",
    }
}

fn kind_label(kind: &str) -> &'static str {
    incidencias_core::IncidentKind::parse(kind).map_or("falla", |k| k.label())
}

fn clock_label(clock: &str) -> &'static str {
    match clock.split('#').next().unwrap_or(clock) {
        "ack" => "confirmación de enterado",
        "resolution" => "aviso de resolución",
        "validation" => "validación de CEDN",
        "report_form" => "entrega del formato de incidencias",
        "report" => "reporte de la incidencia",
        _ => "paso del protocolo",
    }
}

/// A line with a one-click action link, if the message carries one.
fn action_link(base_url: &str, token: Option<&str>, label: &str) -> String {
    match token {
        Some(token) => format!(
            "{label}: {}/acciones/{}",
            base_url.trim_end_matches('/'),
            header_safe(token, 300)
        ),
        None => String::new(),
    }
}

/// Renders `notice`. `base_url` is where the recipient can see the incident.
pub fn render(notice: &Notice, base_url: &str) -> Rendered {
    let about = &notice.about;
    let folio = header_safe(&about.folio, 20);
    let severity = severity_label(about.severity.as_deref());
    // The incident's page (through sign-in when needed), not the JSON API: a person
    // follows this link.
    let link = format!("{}/incidencias/{folio}", base_url.trim_end_matches('/'));
    let procedures = header_safe(&about.procedures, 300);
    let (title, lines): (String, Vec<String>) = match &notice.message {
        Message::Reported { description } => (
            "Incidencia reportada".into(),
            vec![
                format!("Se registró la incidencia {folio} en: {procedures}."),
                format!("Descripción: {description}"),
                "Acción requerida (Mesa de ayuda): notificar formalmente al responsable del trámite con la severidad.".into(),
            ],
        ),
        Message::Notification {
            ack_due_at,
            resolution_due_at,
            ack_link,
            resolution_link,
            button_kept,
            failure,
        } => (
            format!("Notificación de incidencia, severidad {severity}"),
            vec![
                format!("Se le notifica formalmente la incidencia {folio} en: {procedures}."),
                format!("Severidad: {severity}."),
                failure.as_ref().map_or(String::new(), |f| {
                    format!("Qué falla: {}. Descripción: {}", kind_label(&f.kind), f.description)
                }),
                format!("Confirme de enterado a más tardar: {}.", local(*ack_due_at)),
                format!("Tiempo para el aviso de resolución: a más tardar {}.", local(*resolution_due_at)),
                format!("Acciones requeridas: 1) responder este correo confirmando de enterado; 2) iniciar las acciones para corregir la incidencia; 3) desplegar la cortinilla en el trámite. {}", if *button_kept {
                    "Por tratarse de lentitud, el botón del trámite en gob.mx permanece habilitado."
                } else {
                    "CEDN deshabilitó el botón del trámite en gob.mx."
                }),
                action_link(base_url, ack_link.as_deref(), "Confirmar de enterado con un clic"),
                action_link(base_url, resolution_link.as_deref(), "Cuando esté corregida, enviar el aviso de resolución"),
            ],
        ),
        Message::SeverityChanged { reason, deadlines } => {
            let mut lines = vec![
                format!("La severidad de la incidencia {folio} cambió a {severity}."),
                format!("Motivo: {reason}"),
                "Los plazos en curso se recalcularon desde su inicio con la nueva severidad.".into(),
            ];
            lines.extend(deadlines.iter().map(|d| {
                format!("Nuevo plazo de {}: {}.", clock_label(&d.clock), local(Some(d.due_at)))
            }));
            (format!("Cambio de severidad a {severity}"), lines)
        }
        Message::Acknowledged => (
            "Confirmación de enterado recibida".into(),
            vec![format!("La dependencia confirmó de enterado la incidencia {folio}.")],
        ),
        Message::Resolution { summary } => (
            "Aviso de resolución".into(),
            vec![
                format!("La dependencia informa que corrigió la incidencia {folio}."),
                format!("Resumen: {summary}"),
                "Acción requerida (Mesa de ayuda): solicitar a CEDN la validación de normas y estándares.".into(),
            ],
        ),
        Message::ValidationRequest {
            round,
            validation_due_at,
        } => (
            "Solicitud de validación de normas y estándares".into(),
            vec![
                format!("La incidencia {folio} fue corregida según la dependencia (ronda {round})."),
                format!("Valide a más tardar: {}.", local(*validation_due_at)),
                "Acción requerida (CEDN): validar el trámite y habilitar su botón en gob.mx si la validación es exitosa.".into(),
            ],
        ),
        Message::ValidationPassed => (
            "Validación exitosa".into(),
            vec![
                format!("CEDN validó con éxito la corrección de la incidencia {folio}; el botón del trámite está habilitado."),
                "Acción requerida: retirar la cortinilla y entregar el Formato de incidencias dentro de las 24 horas siguientes al aviso de resolución.".into(),
            ],
        ),
        Message::Persistence { observations } => (
            "Persistencia de la incidencia".into(),
            vec![
                format!("La validación de CEDN de la incidencia {folio} no fue exitosa."),
                format!("Observaciones: {observations}"),
                "Acción requerida: implementar las acciones para corregir la incidencia y enviar un nuevo aviso de resolución.".into(),
            ],
        ),
        Message::ReportFormSubmitted => (
            "Formato de incidencias entregado".into(),
            vec![
                format!("La dependencia entregó el Formato de incidencias de {folio}."),
                "Acción requerida (Mesa de ayuda): revisarlo y aceptarlo o solicitar información complementaria.".into(),
            ],
        ),
        Message::ReportFormIncomplete { missing, message } => (
            "Solicitud de información complementaria".into(),
            vec![
                format!("El Formato de incidencias de {folio} está incompleto."),
                format!("Campos por completar: {missing}."),
                format!("Mensaje: {}", message.as_deref().unwrap_or("")),
                "Acción requerida: completar la información del formato y reenviarlo.".into(),
            ],
        ),
        Message::ReportFormAccepted => (
            "Formato de incidencias aceptado".into(),
            vec![format!("La Mesa de ayuda aceptó el Formato de incidencias de {folio}.")],
        ),
        Message::Dismissed { reason } => (
            "Incidencia descartada".into(),
            vec![
                format!("La Mesa de ayuda descartó la incidencia {folio}."),
                format!("Motivo: {reason}"),
                "El botón del trámite se habilitó y la cortinilla se retiró automáticamente. No se requiere ninguna acción.".into(),
            ],
        ),
        Message::BannerNotSeen { url, detail } => (
            "Cortinilla no encontrada en el portal".into(),
            vec![
                format!("La dependencia informó la cortinilla desplegada en la incidencia {folio}, pero no se encontró en la página del trámite."),
                format!("Página revisada: {url}"),
                format!("Resultado: {detail}"),
                "Acción requerida (Mesa de ayuda): confirmar con la dependencia que la cortinilla se muestre en el portal.".into(),
            ],
        ),
        Message::Closed => (
            "Cierre de la incidencia".into(),
            vec![
                format!("Se confirma el cierre de la incidencia {folio}."),
                "No se requiere ninguna acción.".into(),
            ],
        ),
        Message::Breach { clock, target_at } => (
            format!("Plazo excedido: {}", clock_label(clock)),
            vec![
                format!("Se excedió el plazo de {} de la incidencia {folio} (severidad {severity}), que vencía el {}.", clock_label(clock), local(*target_at)),
                "Acción requerida (Mesa de ayuda): dar seguimiento; el escalamiento al superior jerárquico, si lo hay registrado, se envía por separado.".into(),
            ],
        ),
        Message::SloWarning {
            clock, target_at, ..
        } => (
            format!("Aviso preventivo: vence el plazo de {}", clock_label(clock)),
            vec![
                format!("El plazo de {} de la incidencia {folio} (severidad {severity}) vence el {}.", clock_label(clock), local(*target_at)),
                "Acción requerida: completar el paso antes del vencimiento para evitar el escalamiento.".into(),
            ],
        ),
        Message::Escalation {
            clock,
            level,
            reason,
            ..
        } => {
            let why = match clock {
                Some(clock) => format!("Se excedió el plazo de {}.", clock_label(clock)),
                None => format!("Motivo: {}", reason.as_deref().unwrap_or("")),
            };
            (
                format!("Escalamiento nivel {level}"),
                vec![
                    format!("Se escala a usted, como nivel jerárquico superior, la incidencia {folio} (severidad {severity})."),
                    why,
                    "Acción requerida: implementar las acciones para la atención del punto del proceso señalado. Se marca copia al responsable del trámite y a la Mesa de ayuda.".into(),
                ],
            )
        }
    };
    let subject = header_safe(&format!("[{folio}] {title}"), 200);
    let lines: Vec<String> = lines.into_iter().filter(|l| !l.is_empty()).collect();
    let mut text = String::new();
    for line in &lines {
        text.push_str(line);
        text.push_str("\n\n");
    }
    text.push_str(&format!("Consulte la incidencia: {link}\n\n"));
    text.push_str("--\nMesa de ayuda gob.mx · Protocolo de tratamiento de incidencias\n");
    // The deadlines of the message, as a small table in the HTML part (the text part
    // says them in its lines).
    let deadlines: Vec<(String, String)> = match &notice.message {
        Message::Notification {
            ack_due_at,
            resolution_due_at,
            ..
        } => vec![
            ("Confirmación de enterado".to_string(), local(*ack_due_at)),
            ("Aviso de resolución".to_string(), local(*resolution_due_at)),
        ],
        Message::SeverityChanged { deadlines, .. } => deadlines
            .iter()
            .map(|d| (clock_label(&d.clock).to_string(), local(Some(d.due_at))))
            .collect(),
        _ => Vec::new(),
    };
    let html = html_part(&subject, &title, &lines, &deadlines, &link, &folio);
    Rendered {
        subject,
        text,
        html,
    }
}

/// The HTML part: the pages' look (guinda header with a gold line, deadlines as a small
/// table, the link as a button), with inline styles because mail clients drop style
/// sheets. Everything in it is also in the text part.
fn html_part(
    subject: &str,
    title: &str,
    lines: &[String],
    deadlines: &[(String, String)],
    link: &str,
    folio: &str,
) -> String {
    const FONT: &str = "font-family:Montserrat,Arial,Helvetica,sans-serif";
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"es-MX\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"margin:0;background:#f5f5f5;color:#212121;{FONT}\">\
         <div style=\"background:#611232;color:#ffffff;padding:12px 20px;border-bottom:4px solid #b38e5d;font-size:18px\">\
         <strong>gob.mx</strong> &nbsp;|&nbsp; Incidencias</div>\
         <div style=\"background:#ffffff;max-width:640px;margin:16px auto;padding:16px 20px;border:1px solid #cfcfcf\">",
        escape_html(subject)
    );
    html.push_str(&format!(
        "<h1 style=\"color:#611232;font-size:20px;margin:0 0 12px\">{}</h1>",
        escape_html(title)
    ));
    for line in lines {
        html.push_str(&format!(
            "<p style=\"margin:0 0 10px;line-height:1.5\">{}</p>",
            escape_html(line)
        ));
    }
    if !deadlines.is_empty() {
        html.push_str(
            "<table style=\"border-collapse:collapse;margin:8px 0 14px\">\
             <caption style=\"text-align:left;font-weight:bold;padding:0 0 4px\">Plazos (hora del centro de México)</caption>\
             <thead><tr><th scope=\"col\" style=\"text-align:left;padding:4px 10px;border-bottom:2px solid #b38e5d\">Paso</th>\
             <th scope=\"col\" style=\"text-align:left;padding:4px 10px;border-bottom:2px solid #b38e5d\">A más tardar</th></tr></thead><tbody>",
        );
        for (step, due) in deadlines {
            html.push_str(&format!(
                "<tr><td style=\"padding:4px 10px;border-bottom:1px solid #cfcfcf\">{}</td>\
                 <td style=\"padding:4px 10px;border-bottom:1px solid #cfcfcf\">{}</td></tr>",
                escape_html(step),
                escape_html(due)
            ));
        }
        html.push_str("</tbody></table>");
    }
    html.push_str(&format!(
        "<p style=\"margin:16px 0\"><a href=\"{0}\" style=\"background:#9d2449;color:#ffffff;padding:10px 16px;text-decoration:none;border-radius:4px;display:inline-block\">Consultar la incidencia {1}</a></p>\
         </div><p style=\"text-align:center;color:#545454;font-size:13px;margin:0 0 16px\">Mesa de ayuda gob.mx · Protocolo de tratamiento de incidencias</p></body></html>",
        escape_html(link),
        escape_html(folio)
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::notify::About;

    fn about(folio: &str) -> About {
        About {
            folio: folio.into(),
            severity: Some("critical".into()),
            procedures: "SEPRU-01-001 Constancia".into(),
        }
    }

    #[test]
    fn subject_starts_with_the_folio_and_deadlines_are_in_mexico_city_time() {
        let r = render(
            &Notice {
                about: about("INC-2026-000123"),
                message: Message::Notification {
                    ack_due_at: "2026-11-27T15:15:00Z".parse().ok(),
                    resolution_due_at: "2026-11-27T16:30:00Z".parse().ok(),
                    ack_link: None,
                    resolution_link: None,
                    button_kept: false,
                    failure: None,
                },
            },
            "https://incidencias.gob.mx",
        );
        assert!(r.subject.starts_with("[INC-2026-000123] "), "{}", r.subject);
        assert!(r.subject.contains("Crítica"));
        assert!(
            r.text
                .contains("27/11/2026 09:15 (hora del centro de México)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("confirmando de enterado"));
        assert!(r.html.contains("lang=\"es-MX\""));
    }

    #[test]
    fn the_step_2_email_says_what_happened_to_the_portal_button() {
        let notice = |button_kept| Notice {
            about: about("INC-2026-000123"),
            message: Message::Notification {
                ack_due_at: None,
                resolution_due_at: None,
                ack_link: None,
                resolution_link: None,
                button_kept,
                failure: None,
            },
        };
        let kept = render(&notice(true), "https://x").text;
        assert!(kept.contains("permanece habilitado"), "{kept}");
        assert!(!kept.contains("deshabilit"), "{kept}");
        let disabled = render(&notice(false), "https://x").text;
        assert!(disabled.contains("CEDN deshabilitó el botón"), "{disabled}");
    }

    #[test]
    fn a_dismissal_after_notification_says_the_portal_was_restored() {
        let r = render(
            &Notice {
                about: about("INC-2026-000123"),
                message: Message::Dismissed {
                    reason: "Falsa alarma".into(),
                },
            },
            "https://x",
        );
        assert!(r.subject.contains("Incidencia descartada"), "{}", r.subject);
        assert!(r.text.contains("Motivo: Falsa alarma"), "{}", r.text);
        assert!(r.text.contains("se habilitó"), "{}", r.text);
    }

    #[test]
    fn a_severity_change_lists_the_new_deadlines_in_mexico_city_time() {
        let r = render(
            &Notice {
                about: about("INC-2026-000123"),
                message: Message::SeverityChanged {
                    reason: "Afecta a todos".into(),
                    deadlines: vec![super::super::Deadline {
                        clock: "validation#1".into(),
                        due_at: "2026-11-27T15:20:00Z".parse().expect("instant"),
                    }],
                },
            },
            "https://x",
        );
        assert!(
            r.text.contains(
                "Nuevo plazo de validación de CEDN: 27/11/2026 09:20 (hora del centro de México)."
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn header_injection_through_data_is_neutralized() {
        let r = render(
            &Notice {
                about: about("INC-2026-000001\r\nBcc: intruso@example.com"),
                message: Message::Reported {
                    description: "<script>x</script>".into(),
                },
            },
            "http://x",
        );
        assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
        assert!(!r.html.contains("<script>"));
    }

    #[test]
    fn a_stored_row_without_its_templates_data_is_refused_not_rendered_blank() {
        let payload = serde_json::json!({"folio": "INC-2026-000001", "severity": null,
            "procedures": "X"});
        let missing = Notice::from_stored("notification", &payload);
        assert!(
            missing.is_ok(),
            "optional deadlines may be absent: {missing:?}"
        );
        let refused = Notice::from_stored("resolution", &payload);
        assert!(
            refused.is_err(),
            "a resolution without its summary must not render"
        );
        let unknown = Notice::from_stored("no_such_template", &payload);
        assert!(
            unknown.is_err(),
            "an unknown kind must not render a generic mail"
        );
    }

    #[test]
    fn a_notice_survives_the_outbox_round_trip() {
        let notice = Notice {
            about: about("INC-2026-000009"),
            message: Message::Escalation {
                clock: Some("validation#2".into()),
                level: 2,
                reason: None,
                due_at: "2026-11-27T15:15:00Z".parse().ok(),
                target_at: None,
            },
        };
        let row = crate::service::notify::Outgoing {
            to: vec!["jefa@x.gob.mx".into()],
            cc: vec![],
            notice: notice.clone(),
        }
        .into_row();
        assert_eq!(row.kind, "escalation");
        assert!(
            row.payload.get("kind").is_none(),
            "the kind has its own column"
        );
        assert_eq!(Notice::from_stored(&row.kind, &row.payload), Ok(notice));
    }
}
