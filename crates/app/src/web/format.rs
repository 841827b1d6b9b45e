//! How pages write instants and durations: `03/12/2026 14:05` in America/Mexico_City, and
//! the relative phrases of shared/UI.md ("vence en 12 min", "excedido hace 3 h 10 min").

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The help desk's time zone: every instant a person reads is in it.
pub fn mexico() -> TimeZone {
    crate::clock::mexico_city()
}

/// `dd/mm/aaaa hh:mm`, Mexico City time.
pub fn instant(t: Timestamp) -> String {
    t.to_zoned_datetime(mexico())
        .strftime("%d/%m/%Y %H:%M")
        .to_string()
}

/// The value of an `<input type="datetime-local">` for `t`, Mexico City time.
pub fn input_value(t: Timestamp) -> String {
    t.to_zoned_datetime(mexico())
        .strftime("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Reads an `<input type="datetime-local">` value (Mexico City time, seconds optional).
pub fn parse_input(value: &str) -> Option<Timestamp> {
    let value = value.trim();
    let civil: jiff::civil::DateTime = value.parse().ok()?;
    mexico()
        .to_ambiguous_zoned_datetime(civil)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

/// A duration in words: `3 h 10 min`, `2 d 4 h`, `45 min`, `menos de 1 min`.
pub fn span(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => "menos de 1 min".to_string(),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// "hace 5 min" / "en 5 min" for an instant relative to now.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let secs = t.as_second() - now.as_second();
    if secs >= 0 {
        format!("en {}", span(secs))
    } else {
        format!("hace {}", span(secs))
    }
}

/// A deadline as the queue and the incident page say it: "vence en 12 min" before, and
/// "excedido hace 3 h 10 min" after.
pub fn deadline(due: Timestamp, now: Timestamp) -> String {
    let secs = due.as_second() - now.as_second();
    if secs >= 0 {
        format!("vence en {}", span(secs))
    } else {
        format!("excedido hace {}", span(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a valid instant")
    }

    #[test]
    fn instants_are_written_in_mexico_city_as_dd_mm_yyyy_hh_mm() {
        // 20:05 UTC is 14:05 in Mexico City (UTC-6, no daylight saving since 2022).
        assert_eq!(instant(at("2026-12-03T20:05:00Z")), "03/12/2026 14:05");
        assert_eq!(input_value(at("2026-12-03T20:05:00Z")), "2026-12-03T14:05");
        assert_eq!(
            parse_input("2026-12-03T14:05"),
            Some(at("2026-12-03T20:05:00Z"))
        );
        assert_eq!(parse_input("ayer"), None);
    }

    #[test]
    fn deadlines_read_as_remaining_or_exceeded_time_in_words() {
        let now = at("2026-12-03T20:00:00Z");
        assert_eq!(deadline(at("2026-12-03T20:12:00Z"), now), "vence en 12 min");
        assert_eq!(
            deadline(at("2026-12-03T16:50:00Z"), now),
            "excedido hace 3 h 10 min"
        );
        assert_eq!(relative(at("2026-12-01T19:00:00Z"), now), "hace 2 d 1 h");
        assert_eq!(span(30), "menos de 1 min");
        assert_eq!(span(7200), "2 h");
    }
}
