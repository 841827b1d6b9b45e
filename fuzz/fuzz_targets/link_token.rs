//! One-click link tokens (`links::LinkSigner::verify`) and the Message-ID marks
//! (`mark_message_id`, `check_mark`). Random bytes almost never carry a valid HMAC, so the
//! parsing after the signature check would stay unreached: the first byte chooses whether
//! the rest is verified as it is, or first signed with the test secret (what a holder of
//! the secret could send), or read as the parts of a link to sign and verify.
//!
//! Beyond "no panic": a token verified is unexpired and signs back to a token that
//! verifies to the same link; any token under another secret is forged; a link signed
//! from well-formed parts verifies to exactly them (unless expired, or a nonce with `.`);
//! a marked Message-ID's mark checks for its base only.

#![no_main]

use incidencias::encoding::hex;
use incidencias::links::{LinkAction, LinkError, LinkSigner, hmac_sha256};
use incidencias_core::{Folio, UserId};
use jiff::Timestamp;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "secreto-de-prueba";

fn now() -> Timestamp {
    Timestamp::from_second(1_795_770_000).expect("an instant")
}

/// Whatever verified must sign back to a token that verifies to the same link.
fn verified(signer: &LinkSigner, token: &str) {
    match signer.verify(token, now()) {
        Ok(link) => {
            assert!(link.expires_at > now());
            let again = signer.sign(
                link.folio,
                link.action,
                link.recipient,
                link.expires_at,
                &link.nonce,
            );
            assert_eq!(signer.verify(&again, now()), Ok(link));
            assert_eq!(
                LinkSigner::new("otro secreto").verify(token, now()),
                Err(LinkError::Forged)
            );
        }
        Err(LinkError::Forged | LinkError::Expired) => {}
    }
}

fn structured(signer: &LinkSigner, u: &mut Unstructured) -> Result<()> {
    let year = u.int_in_range(0..=10_000)?;
    let number = u.int_in_range(0..=1_000_000)?;
    let Some(folio) = Folio::new(year, number) else {
        return Ok(());
    };
    let action = if u.arbitrary()? {
        LinkAction::Acknowledge
    } else {
        LinkAction::Resolution
    };
    let recipient = UserId(u.arbitrary()?);
    let ms = u.int_in_range(Timestamp::MIN.as_millisecond()..=Timestamp::MAX.as_millisecond())?;
    let Ok(expires_at) = Timestamp::from_millisecond(ms) else {
        return Ok(());
    };
    let nonce: String = u.arbitrary()?;
    let token = signer.sign(folio, action, recipient, expires_at, &nonce);
    let result = signer.verify(&token, now());
    if nonce.contains('.') {
        assert_eq!(result, Err(LinkError::Forged));
    } else if expires_at <= now() {
        assert_eq!(result, Err(LinkError::Expired));
    } else {
        let link = result.expect("a link signed from good parts verifies");
        assert_eq!(
            (
                link.folio,
                link.action,
                link.recipient,
                link.expires_at,
                link.nonce
            ),
            (folio, action, recipient, expires_at, nonce)
        );
    }
    // The Message-ID mark of a base built from the same input.
    let base = format!("{folio}.{}.notification.0", recipient.0);
    let sent = signer.mark_message_id(&format!("<{base}@incidencias.gob.mx>"));
    let (local, _) = sent
        .trim_start_matches('<')
        .trim_end_matches('>')
        .rsplit_once('@')
        .expect("an address");
    let (sent_base, mark) = local.rsplit_once('.').expect("a mark");
    assert_eq!(sent_base, base);
    assert!(signer.check_mark(&base, mark));
    assert!(!signer.check_mark(&format!("{base}x"), mark));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let signer = LinkSigner::new(SECRET);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        // As it came, in the path of `/acciones/{token}`.
        0 => verified(&signer, &text),
        // Signed with our secret: the parts are read.
        1 => {
            let sig = hex(&hmac_sha256(SECRET.as_bytes(), text.as_bytes()));
            verified(&signer, &format!("{text}.{sig}"));
        }
        2 => {
            let _ = structured(&signer, &mut Unstructured::new(rest));
        }
        // A Message-ID and a mark, as a reply names them.
        _ => {
            let marked = signer.mark_message_id(&text);
            let _ = signer.check_mark(&text, &marked);
            if let Some((base, mark)) = text.rsplit_once('.') {
                let _ = signer.check_mark(base, mark);
            }
        }
    }
});
