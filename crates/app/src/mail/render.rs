//! The Spanish emails of the protocol: one per communication of the step and exception
//! tables, plus warnings and escalations. Each outbox row carries a template name (`kind`)
//! and its data; rendering happens when it is sent, so a template fix reaches queued mail.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Text safe inside a header: no line breaks or other control characters (they would let
/// a name or description add headers), at most `max` characters.
pub fn header_safe(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

/// Text safe inside HTML (emails and the link pages).
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An instant as people in Mexico City read it: `27/11/2026 03:00 (hora del centro)`.
pub fn local(instant: &str) -> String {
    let Ok(t) = instant.parse::<Timestamp>() else {
        return instant.to_string();
    };
    let tz = TimeZone::get("America/Mexico_City").unwrap_or(TimeZone::UTC);
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

fn severity_label(s: &str) -> &'static str {
    match s {
        "critical" => "Crítica",
        "high" => "Alta",
        "medium" => "Media",
        "low" => "Baja",
        _ => "sin asignar",
    }
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

fn s<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A line with a one-click action link, if the data carries one.
fn action_link(base_url: &str, data: &Value, key: &str, label: &str) -> String {
    match data.get(key).and_then(Value::as_str) {
        Some(token) => format!(
            "{label}: {}/acciones/{}",
            base_url.trim_end_matches('/'),
            header_safe(token, 300)
        ),
        None => String::new(),
    }
}

/// Renders the template `kind` with `data` (which always has `folio`). `base_url` is where
/// the recipient can see the incident.
pub fn render(kind: &str, data: &Value, base_url: &str) -> Rendered {
    let folio = header_safe(s(data, "folio"), 20);
    let severity = severity_label(s(data, "severity"));
    let link = format!(
        "{}/api/v1/incidents/{folio}",
        base_url.trim_end_matches('/')
    );
    let procedures = header_safe(s(data, "procedures"), 300);
    let (title, lines): (String, Vec<String>) = match kind {
        "reported" => (
            "Incidencia reportada".into(),
            vec![
                format!("Se registró la incidencia {folio} en: {procedures}."),
                format!("Descripción: {}", s(data, "description")),
                "Acción requerida (Mesa de ayuda): notificar formalmente al responsable del trámite con la severidad.".into(),
            ],
        ),
        "notification" => (
            format!("Notificación de incidencia, severidad {severity}"),
            vec![
                format!("Se le notifica formalmente la incidencia {folio} en: {procedures}."),
                format!("Severidad: {severity}."),
                format!("Confirme de enterado a más tardar: {}.", local(s(data, "ack_due_at"))),
                format!("Tiempo para el aviso de resolución: a más tardar {}.", local(s(data, "resolution_due_at"))),
                "Acciones requeridas: 1) responder este correo confirmando de enterado; 2) iniciar las acciones para corregir la incidencia; 3) desplegar la cortinilla en el trámite. CEDN deshabilitará el botón del trámite en gob.mx.".into(),
                action_link(base_url, data, "ack_link", "Confirmar de enterado con un clic"),
                action_link(base_url, data, "resolution_link", "Cuando esté corregida, enviar el aviso de resolución"),
            ],
        ),
        "severity_changed" => (
            format!("Cambio de severidad a {severity}"),
            vec![
                format!("La severidad de la incidencia {folio} cambió a {severity}."),
                format!("Motivo: {}", s(data, "reason")),
                "Los plazos en curso se recalcularon desde su inicio con la nueva severidad.".into(),
            ],
        ),
        "acknowledged" => (
            "Confirmación de enterado recibida".into(),
            vec![format!("La dependencia confirmó de enterado la incidencia {folio}.")],
        ),
        "resolution" => (
            "Aviso de resolución".into(),
            vec![
                format!("La dependencia informa que corrigió la incidencia {folio}."),
                format!("Resumen: {}", s(data, "summary")),
                "Acción requerida (Mesa de ayuda): solicitar a CEDN la validación de normas y estándares.".into(),
            ],
        ),
        "validation_request" => (
            "Solicitud de validación de normas y estándares".into(),
            vec![
                format!("La incidencia {folio} fue corregida según la dependencia (ronda {}).", data.get("round").and_then(Value::as_u64).unwrap_or(1)),
                format!("Valide a más tardar: {}.", local(s(data, "validation_due_at"))),
                "Acción requerida (CEDN): validar el trámite y habilitar su botón en gob.mx si la validación es exitosa.".into(),
            ],
        ),
        "validation_passed" => (
            "Validación exitosa".into(),
            vec![
                format!("CEDN validó con éxito la corrección de la incidencia {folio}; el botón del trámite está habilitado."),
                "Acción requerida: retirar la cortinilla y entregar el Formato de incidencias dentro de las 24 horas siguientes al aviso de resolución.".into(),
            ],
        ),
        "persistence" => (
            "Persistencia de la incidencia".into(),
            vec![
                format!("La validación de CEDN de la incidencia {folio} no fue exitosa."),
                format!("Observaciones: {}", s(data, "observations")),
                "Acción requerida: implementar las acciones para corregir la incidencia y enviar un nuevo aviso de resolución.".into(),
            ],
        ),
        "report_form_submitted" => (
            "Formato de incidencias entregado".into(),
            vec![
                format!("La dependencia entregó el Formato de incidencias de {folio}."),
                "Acción requerida (Mesa de ayuda): revisarlo y aceptarlo o solicitar información complementaria.".into(),
            ],
        ),
        "report_form_incomplete" => (
            "Solicitud de información complementaria".into(),
            vec![
                format!("El Formato de incidencias de {folio} está incompleto."),
                format!("Campos por completar: {}.", s(data, "missing")),
                format!("Mensaje: {}", s(data, "message")),
                "Acción requerida: completar la información del formato y reenviarlo.".into(),
            ],
        ),
        "report_form_accepted" => (
            "Formato de incidencias aceptado".into(),
            vec![format!("La Mesa de ayuda aceptó el Formato de incidencias de {folio}.")],
        ),
        "closed" => (
            "Cierre de la incidencia".into(),
            vec![
                format!("Se confirma el cierre de la incidencia {folio}."),
                "No se requiere ninguna acción.".into(),
            ],
        ),
        "slo_warning" => (
            format!("Aviso preventivo: vence el plazo de {}", clock_label(s(data, "clock"))),
            vec![
                format!("El plazo de {} de la incidencia {folio} (severidad {severity}) vence el {}.", clock_label(s(data, "clock")), local(s(data, "target_at"))),
                "Acción requerida: completar el paso antes del vencimiento para evitar el escalamiento.".into(),
            ],
        ),
        "escalation" => {
            let level = data.get("level").and_then(Value::as_u64).unwrap_or(1);
            let why = match data.get("clock").and_then(Value::as_str) {
                Some(clock) => format!("Se excedió el plazo de {}.", clock_label(clock)),
                None => format!("Motivo: {}", s(data, "reason")),
            };
            (
                format!("Escalamiento nivel {level}"),
                vec![
                    format!("Se escala a usted, como nivel jerárquico superior, la incidencia {folio} (severidad {severity})."),
                    why,
                    "Acción requerida: implementar las acciones para la atención del punto del proceso señalado. Se marca copia al responsable del trámite.".into(),
                ],
            )
        }
        _ => (
            "Aviso del protocolo de incidencias".into(),
            vec![format!("Hay una novedad en la incidencia {folio}.")],
        ),
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
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"es-MX\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>",
        escape_html(&subject)
    );
    html.push_str(&format!("<h1>{}</h1>", escape_html(&title)));
    for line in &lines {
        html.push_str(&format!("<p>{}</p>", escape_html(line)));
    }
    html.push_str(&format!(
        "<p><a href=\"{0}\">Consultar la incidencia {1}</a></p><hr><p>Mesa de ayuda gob.mx · Protocolo de tratamiento de incidencias</p></body></html>",
        escape_html(&link),
        escape_html(&folio)
    ));
    Rendered {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subject_starts_with_the_folio_and_deadlines_are_in_mexico_city_time() {
        let r = render(
            "notification",
            &json!({"folio": "INC-2026-000123", "severity": "critical",
                    "ack_due_at": "2026-11-27T15:15:00Z", "resolution_due_at": "2026-11-27T16:30:00Z",
                    "procedures": "SEPRU-01-001 Constancia"}),
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
    fn header_injection_through_data_is_neutralized() {
        let r = render(
            "reported",
            &json!({"folio": "INC-2026-000001\r\nBcc: intruso@example.com", "description": "<script>x</script>"}),
            "http://x",
        );
        assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
        assert!(!r.html.contains("<script>"));
    }
}
