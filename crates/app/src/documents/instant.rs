//! Instants as the API reads them: RFC 3339 with an offset, any offset, between the years
//! 2000 and 2100 (UTC). Outside that span an instant is a typo (`0226` for `2026`) or a
//! placeholder (`1970-01-01`), never a failure of a government procedure, and it would
//! skew every clock and report computed from it. One parser for every instant of every
//! body (`occurred_at`, `effective_from`, the report form's `detected_at` and
//! `restored_at`), so the rule and its Spanish words are the same everywhere.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// What a text that is not an RFC 3339 instant is told.
pub const NOT_RFC3339: &str =
    "debe ser un instante RFC 3339 con zona, por ejemplo 2026-11-27T09:30:00-06:00";

/// What an instant outside the accepted span is told.
pub const OUT_OF_RANGE: &str = "debe ser un instante entre los años 2000 y 2100; revise el año";

/// The first instant accepted: 2000-01-01T00:00:00Z.
const EARLIEST_S: i64 = 946_684_800;
/// The first instant refused after the span: 2101-01-01T00:00:00Z.
const AFTER_S: i64 = 4_133_980_800;

/// Parses an instant the API reads (see the module).
pub fn parse(text: &str) -> Result<Timestamp, &'static str> {
    let t = text.trim().parse::<Timestamp>().map_err(|_| NOT_RFC3339)?;
    check(t)
}

/// Refuses an instant outside the years 2000 to 2100 (UTC).
pub fn check(t: Timestamp) -> Result<Timestamp, &'static str> {
    if (EARLIEST_S..AFTER_S).contains(&t.as_second()) {
        Ok(t)
    } else {
        Err(OUT_OF_RANGE)
    }
}

/// `#[serde(deserialize_with)]` for an optional instant field of a request body.
pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Whether a serde error's text is one of this module's own (Spanish) messages.
pub fn is_own_message(text: &str) -> bool {
    text.starts_with(NOT_RFC3339) || text.starts_with(OUT_OF_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_is_the_years_2000_to_2100_in_utc() {
        assert_eq!(parse("1999-12-31T23:59:59Z"), Err(OUT_OF_RANGE));
        assert!(parse("2000-01-01T00:00:00Z").is_ok());
        // 18:00 on 1999-12-31 in Mexico City is already 2000 in UTC.
        assert!(parse("1999-12-31T18:00:00-06:00").is_ok());
        assert!(parse("2100-12-31T23:59:59Z").is_ok());
        assert_eq!(parse("2101-01-01T00:00:00Z"), Err(OUT_OF_RANGE));
        assert_eq!(parse("ayer"), Err(NOT_RFC3339));
    }
}
