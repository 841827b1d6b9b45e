//! Webhooks to the portal (and anyone an administrator subscribes): what an incident's
//! change announces, the JSON body, and the signature of the Standard Webhooks convention
//! (<https://www.standardwebhooks.com>): headers `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
//! one signature per valid secret, separated by spaces (secret rotation). What a change
//! announces is the service's (`service/webhooks.rs`); the deliveries are written with the
//! events and sent by [`worker`].

pub mod address;
pub mod banner;
pub mod worker;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use crate::service::SECRET_PREFIX;

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

/// A name for this process's leases (`{what}-` and 12 random hex digits): several
/// instances never mistake each other's.
pub(crate) fn lease_owner(what: &str) -> Result<String, String> {
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    Ok(format!("{what}-{}", crate::encoding::hex(&nonce)))
}

/// A bound on waiting as people read it: `10 s`, or `500 ms` under a second.
pub(crate) fn wait_words(d: std::time::Duration) -> String {
    if d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
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
        let (a, b) = (
            crate::service::new_webhook_secret().expect("firma"),
            crate::service::new_webhook_secret().expect("firma"),
        );
        let both = signatures(&[&a, &b], "msg_1", 1, b"{}").expect("firma");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&a, "msg_1", 1, b"{}").expect("firma"));
        assert_eq!(parts[1], signature(&b, "msg_1", 1, b"{}").expect("firma"));
        assert_ne!(parts[0], parts[1]);
    }
}
