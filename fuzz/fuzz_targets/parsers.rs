//! The core's text parsers on any input: `Folio::parse`, `Homoclave::parse`,
//! `Email::parse` (and, being as cheap, the API's instant parser, the enums' API names,
//! the report form's field names and the mail reader's `find_folio`).
//!
//! Beyond "no panic": whatever a parser accepts, its canonical text parses back to the
//! same value (also through serde), and is what the rest of the product assumes it is: a
//! folio is 15 characters and `find_folio` finds exactly it in the text it came from; a
//! homoclave is upper-case ASCII; an address is lower case, at most 254 bytes and already
//! header-safe; an instant lies between the years 2000 and 2100.

#![no_main]

use incidencias::documents::instant;
use incidencias::encoding::header_safe;
use incidencias::service::inbound::read::find_folio;
use incidencias_core::{Channel, Email, Folio, FormField, Homoclave, IncidentKind, Role, Severity};
use libfuzzer_sys::fuzz_target;

fn serde_roundtrip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).expect("its own text deserializes");
    assert_eq!(&back, value);
}

macro_rules! enum_roundtrip {
    ($text:expr, $($ty:ty),+) => {
        $(
            if let Ok(v) = <$ty>::parse($text) {
                assert_eq!(<$ty>::parse(v.as_str()).ok(), Some(v));
            }
        )+
    };
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    if let Ok(folio) = Folio::parse(text) {
        let canonical = folio.to_string();
        assert_eq!(canonical.len(), 15);
        assert_eq!(Folio::parse(&canonical).ok(), Some(folio));
        assert_eq!(Folio::new(folio.year(), folio.number()), Some(folio));
        assert_eq!(find_folio(text), Some(canonical));
        serde_roundtrip(&folio);
    }
    if let Some(found) = find_folio(text) {
        assert_eq!(found.len(), 15);
        assert!(found.starts_with("INC-"), "{found:?}");
    }

    if let Ok(h) = Homoclave::parse(text) {
        assert!(
            h.as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
            "{h:?}"
        );
        assert_eq!(Homoclave::parse(h.as_str()).ok(), Some(h.clone()));
        serde_roundtrip(&h);
    }

    if let Ok(e) = Email::parse(text) {
        let s = e.as_str();
        assert!(s.len() <= 254);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(header_safe(s, 254), s, "an address is header-safe as it is");
        assert!(e.domain().contains('.'));
        assert_eq!(Email::parse(s).ok(), Some(e.clone()));
        serde_roundtrip(&e);
    }

    if let Ok(t) = instant::parse(text) {
        assert!((946_684_800..4_133_980_800).contains(&t.as_second()));
    }

    enum_roundtrip!(text, Severity, IncidentKind, Channel, Role, FormField);
});
