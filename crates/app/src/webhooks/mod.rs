//! Webhooks to the portal (and anyone an administrator subscribes): what an incident's
//! change announces, the JSON body, and the signature of the Standard Webhooks convention
//! (<https://www.standardwebhooks.com>): headers `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
//! one signature per valid secret, separated by spaces (secret rotation). Pure: the
//! deliveries are written with the events (store) and sent by [`worker`].

pub mod banner;
pub mod worker;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use incidencias_core::Incident;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

/// The event types a subscription may choose: name and what it is, in Spanish.
pub const EVENT_TYPES: [(&str, &str); 3] = [
    (
        BUTTON,
        "Botón del trámite: se deshabilitó o se habilitó en el portal",
    ),
    (
        BANNER,
        "Cortinilla: la dependencia la desplegó, cambió su mensaje o la retiró",
    ),
    (STATE, "Estado de la incidencia: cambió de etapa"),
];

pub const BUTTON: &str = "procedure.button";
pub const BANNER: &str = "procedure.banner";
pub const STATE: &str = "incident.state";

/// The prefix of a secret as Standard Webhooks writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// A delivery to write with the events that caused it: one per subscription to its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewWebhook {
    pub event_type: &'static str,
    /// The exact JSON body sent (and signed).
    pub body: String,
}

/// What changed between `prior` (none: a new report) and `after`, as webhook bodies.
/// `homoclaves` are the incident's procedures on the portal.
pub fn events_of(
    prior: Option<&Incident>,
    after: &Incident,
    homoclaves: &[String],
    at: Timestamp,
) -> Vec<NewWebhook> {
    let mut out = Vec::new();
    let folio = after.folio.to_string();
    let body = |event_type: &'static str, data: serde_json::Value| NewWebhook {
        event_type,
        body: json!({
            "type": event_type,
            "timestamp": at.to_string(),
            "data": data,
        })
        .to_string(),
    };
    let before = prior.map(|p| &p.portal).cloned().unwrap_or_default();
    let now = &after.portal;
    if before.button_enabled != now.button_enabled {
        out.push(body(
            BUTTON,
            json!({
                "folio": folio,
                "procedures": homoclaves,
                "button_enabled": now.button_enabled,
            }),
        ));
    }
    if before.banner_shown != now.banner_shown
        || (now.banner_shown && before.banner_message != now.banner_message)
    {
        let message = now.banner_shown.then(|| {
            now.banner_message
                .clone()
                .unwrap_or_else(|| incidencias_core::portal::DEFAULT_BANNER_MESSAGE.to_string())
        });
        out.push(body(
            BANNER,
            json!({
                "folio": folio,
                "procedures": homoclaves,
                "shown": now.banner_shown,
                "message": message,
            }),
        ));
    }
    if prior.map(|p| p.state) != Some(after.state) {
        out.push(body(
            STATE,
            json!({
                "folio": folio,
                "procedures": homoclaves,
                "state": after.state.as_str(),
                "previous_state": prior.map(|p| p.state.as_str()),
                "severity": after.severity.map(|s| s.as_str()),
            }),
        ));
    }
    out
}

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn new_secret() -> Result<String, String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("sin fuente de azar: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` value for one secret: `v1,` + base64 of the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` keyed with the secret's bytes (base64 after `whsec_`).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| "secreto de webhook no válido".to_string())?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| "secreto de webhook no válido".to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The header with every valid secret's signature (the current first).
pub fn signatures(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    secrets
        .iter()
        .map(|s| signature(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its reference libraries test
    /// the same values).
    #[test]
    fn signature_matches_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).expect("firma"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one() {
        let (a, b) = (new_secret().expect("firma"), new_secret().expect("firma"));
        let both = signatures(&[&a, &b], "msg_1", 1, b"{}").expect("firma");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&a, "msg_1", 1, b"{}").expect("firma"));
        assert_eq!(parts[1], signature(&b, "msg_1", 1, b"{}").expect("firma"));
        assert_ne!(parts[0], parts[1]);
    }
}
