//! Inbound mail, the pure part of `Service::ingest`: any bytes, as the MTA, the command line
//! or IMAP may hand them over, are read (`read::read`, or `read::best_effort_headers` for
//! what triage keeps of an unreadable message), and then every decision `route` takes
//! without the database is taken on what was read, in its order: the authenticity verdict
//! (with and without a trusted receiving server), the sender as an address, the folio, the
//! intents of the new text, the text kept as a resolution summary, and for a new report
//! its kind and first guess of when the failure began. Then what `ingest` records.
//!
//! Beyond "no panic", it checks the contracts the service relies on: a message read has a
//! sender with `@`; a folio found has the shape `INC-NNNN-NNNNNN` and comes from the
//! reference replied to when there is one; no trusted server means no verdict but
//! `Unknown`; kept texts have no control characters and respect their bounds; a first
//! guess is never after the message was received.

#![no_main]

use incidencias::encoding::header_safe;
use incidencias::service::inbound::authenticity::{self, Verdict};
use incidencias::service::inbound::{clean, first_guess, guess_kind, read};
use incidencias_core::{Email, Folio};
use libfuzzer_sys::fuzz_target;

/// The authserv-id the service's tests trust (`tests/common/api.rs`).
const TRUSTED: &str = "mx.prueba.gob.mx";

fn folio_shaped(f: &str) -> bool {
    let b = f.as_bytes();
    b.len() == 15
        && &b[..4] == b"INC-"
        && b[4..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..].iter().all(u8::is_ascii_digit)
}

fn no_controls(text: &str, but_newline: bool) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && !(but_newline && c == '\n'))
}

fuzz_target!(|raw: &[u8]| {
    // A message that cannot be taken goes to triage with whatever its headers say.
    let (sender, subject) = read::best_effort_headers(raw);
    assert!(!sender.is_empty());
    let _ = (header_safe(&sender, 300), header_safe(&subject, 500));

    let Ok(m) = read::read(raw) else {
        return;
    };
    assert!(
        m.sender.contains('@'),
        "read a sender without @: {:?}",
        m.sender
    );
    if let Some(folio) = &m.folio {
        assert!(folio_shaped(folio), "folio {folio:?}");
    }
    if let Some(r) = &m.replied {
        assert_eq!(m.folio.as_deref(), Some(r.folio.as_str()));
        assert_eq!(r.stored_id, format!("<{}@incidencias.gob.mx>", r.base));
        assert!(r.base.to_ascii_uppercase().starts_with(&r.folio));
    }

    // `route`, in its order.
    for trusted in [None, Some(TRUSTED)] {
        let verdict = authenticity::verdict(trusted, m.auth_results.as_deref(), &m.sender);
        if trusted.is_none() {
            assert!(matches!(verdict, Verdict::Unknown(_)), "{verdict:?}");
        }
    }
    if let Some(header) = m.auth_results.as_deref() {
        let _ = authenticity::parse(header);
    }
    let _ = Email::parse(&m.sender);
    if let Some(folio) = m.folio.as_deref() {
        let _ = Folio::parse(folio);
    }
    let _ = read::intents(&m.new_text);
    let summary = clean(&m.new_text, 10_000);
    assert!(summary.chars().count() <= 10_000);
    assert!(no_controls(&summary, true));
    // A new report (no folio).
    let _ = guess_kind(&m.searchable);
    let description = clean(&format!("{}\n\n{}", m.subject, m.new_text), 10_000);
    assert!(description.chars().count() <= 10_000);
    let received = jiff::Timestamp::from_second(1_795_770_000).expect("an instant");
    assert!(first_guess(m.date, received) <= received);

    // What `ingest` records.
    for (text, max) in [(&m.sender, 300), (&m.subject, 500)] {
        let kept = header_safe(text, max);
        assert!(no_controls(&kept, false) && kept.chars().count() <= max);
    }
    if let Some(id) = &m.message_id {
        assert!(no_controls(&header_safe(id, 300), false));
    }
    let excerpt = clean(&m.new_text, 2000);
    assert!(excerpt.chars().count() <= 2000);
});
