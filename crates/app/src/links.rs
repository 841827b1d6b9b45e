//! Signed one-click actions in emails: acknowledge (step 2) and the resolution notice
//! (step 3). A link is bound to an incident, an action and its recipient, expires, and
//! works once. Opening it (GET) only shows a Spanish confirmation page, because mail
//! scanners follow links; the button on the page (POST) acts, as the recipient.
//!
//! Token: `FOLIO.ACTION.USER.EXPIRES_MS.NONCE.SIGNATURE`, the signature being
//! HMAC-SHA256 (RFC 2104, over SHA-256) of everything before it, with the instance's link
//! secret (kept in `settings`, shared by every instance).

use incidencias_core::{Folio, UserId};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::encoding::hex;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Acknowledge,
    Resolution,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Acknowledge => "ack",
            LinkAction::Resolution => "resolution",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LinkAction::Acknowledge => "Confirmar de enterado",
            LinkAction::Resolution => "Enviar el aviso de resolución",
        }
    }

    fn parse(s: &str) -> Option<LinkAction> {
        match s {
            "ack" => Some(LinkAction::Acknowledge),
            "resolution" => Some(LinkAction::Resolution),
            _ => None,
        }
    }
}

/// A verified link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub folio: Folio,
    pub action: LinkAction,
    pub recipient: UserId,
    pub expires_at: Timestamp,
    pub nonce: String,
}

/// Why a link does not work, for the page that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Altered or not ours.
    Forged,
    Expired,
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without an early exit, so the time taken says nothing about where a forged
/// signature first differs.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct LinkSigner {
    secret: Vec<u8>,
}

impl LinkSigner {
    pub fn new(secret: &str) -> LinkSigner {
        LinkSigner {
            secret: secret.as_bytes().to_vec(),
        }
    }

    pub fn sign(
        &self,
        folio: Folio,
        action: LinkAction,
        recipient: UserId,
        expires_at: Timestamp,
        nonce: &str,
    ) -> String {
        let body = format!(
            "{folio}.{}.{}.{}.{nonce}",
            action.as_str(),
            recipient.0,
            expires_at.as_millisecond()
        );
        let sig = hex(&hmac_sha256(&self.secret, body.as_bytes()));
        format!("{body}.{sig}")
    }

    /// Our Message-ID `<BASE@domain>` as sent: `<BASE.MARK@domain>`, MARK a signature of
    /// BASE only we can make. A reply names it in `In-Reply-To`/`References`, which shows
    /// the reply answers a message we really sent (the bases are predictable from the
    /// folio). Deterministic: a re-send is the same message.
    pub fn mark_message_id(&self, id: &str) -> String {
        let inner = id.trim().trim_start_matches('<').trim_end_matches('>');
        match inner.rsplit_once('@') {
            Some((base, domain)) => format!("<{base}.{}@{domain}>", self.mark(base)),
            None => id.to_string(),
        }
    }

    /// Whether `mark` is the mark of the Message-ID base `base`.
    pub fn check_mark(&self, base: &str, mark: &str) -> bool {
        same(self.mark(base).as_bytes(), mark.as_bytes())
    }

    /// 96 bits of HMAC-SHA256 over the base, in lower-case hexadecimal.
    fn mark(&self, base: &str) -> String {
        let mac = hmac_sha256(&self.secret, format!("message-id:{base}").as_bytes());
        hex(&mac[..12])
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Link, LinkError> {
        let (body, sig) = token.rsplit_once('.').ok_or(LinkError::Forged)?;
        let expected = hex(&hmac_sha256(&self.secret, body.as_bytes()));
        if !same(expected.as_bytes(), sig.as_bytes()) {
            return Err(LinkError::Forged);
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [folio, action, user, expires, nonce] = parts.as_slice() else {
            return Err(LinkError::Forged);
        };
        let link = Link {
            folio: Folio::parse(folio).map_err(|_| LinkError::Forged)?,
            action: LinkAction::parse(action).ok_or(LinkError::Forged)?,
            recipient: UserId(user.parse().map_err(|_| LinkError::Forged)?),
            expires_at: expires
                .parse::<i64>()
                .ok()
                .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                .ok_or(LinkError::Forged)?,
            nonce: (*nonce).to_string(),
        };
        if link.expires_at <= now {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_marked_message_id_checks_only_with_its_base_and_secret() {
        let signer = LinkSigner::new("secreto");
        let base = "INC-2026-000007.3.notification.0";
        let sent = signer.mark_message_id(&format!("<{base}@incidencias.gob.mx>"));
        let inner = sent.trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = inner.rsplit_once('@').expect("an address");
        assert_eq!(domain, "incidencias.gob.mx");
        let (sent_base, mark) = local.rsplit_once('.').expect("a mark");
        assert_eq!(sent_base, base);
        assert_eq!(mark.len(), 24);
        assert!(signer.check_mark(base, mark));
        assert!(!signer.check_mark("INC-2026-000008.3.notification.0", mark));
        assert!(!LinkSigner::new("otro").check_mark(base, mark));
        assert_eq!(
            sent,
            signer.mark_message_id(&format!("<{base}@incidencias.gob.mx>"))
        );
    }

    #[test]
    fn a_link_verifies_and_any_change_is_forged() {
        let signer = LinkSigner::new("secreto");
        let t0 = Timestamp::from_second(1_800_000_000).expect("t");
        let later = Timestamp::from_second(1_800_003_600).expect("t");
        let folio = Folio::parse("INC-2026-000007").expect("folio");
        let token = signer.sign(folio, LinkAction::Acknowledge, UserId(4), later, "n1");
        let link = signer.verify(&token, t0).expect("valid");
        assert_eq!(
            (link.folio, link.action, link.recipient),
            (folio, LinkAction::Acknowledge, UserId(4))
        );
        assert_eq!(signer.verify(&token, later), Err(LinkError::Expired));
        let other_user = token.replacen(".4.", ".5.", 1);
        assert_eq!(signer.verify(&other_user, t0), Err(LinkError::Forged));
        assert_eq!(
            LinkSigner::new("otro").verify(&token, t0),
            Err(LinkError::Forged)
        );
    }
}
