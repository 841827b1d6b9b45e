//! A clock's arithmetic at its edges, found untested by surviving mutants
//! (docs/testing.md): the breach instant when the target is reached in a later running
//! segment, saturation at the ends of time, and the warning ratio's open bounds.

use incidencias_core::slo::add_millis;
use incidencias_core::{Clock, ClockId, SloPolicy};
use jiff::{SignedDuration, Timestamp};

fn at(min: i64) -> Timestamp {
    let t0: Timestamp = "2026-11-27T15:00:00Z".parse().expect("instant");
    t0 + SignedDuration::from_mins(min)
}

#[test]
fn a_breach_in_a_later_segment_is_dated_inside_that_segment() {
    // 15 minutes of target: 10 counted before a pause, 5 more after resuming at +20.
    let mut clock = Clock::start(ClockId::RESOLUTION, 15 * 60, at(0));
    clock.pause(at(10));
    clock.resume(at(20));
    clock.pause(at(40));
    assert_eq!(clock.crossing(15 * 60 * 1000), Some(at(25)));
    assert_eq!(clock.breached_at, Some(at(25)));
}

#[test]
fn adding_past_the_ends_of_time_saturates_in_the_direction_added() {
    assert_eq!(add_millis(Timestamp::MAX, 1), Timestamp::MAX);
    assert_eq!(add_millis(Timestamp::MIN, -1), Timestamp::MIN);
    assert_eq!(add_millis(at(0), 60_000), at(1));
}

#[test]
fn the_warning_ratio_lies_strictly_between_zero_and_one() {
    for (ratio, valid) in [(0.0, false), (1.0, false), (0.75, true), (0.01, true)] {
        let mut policy = SloPolicy::seed();
        policy.warning_ratio = ratio;
        let refused = policy.problems().iter().any(|(f, _)| f == "warning_ratio");
        assert_eq!(refused, !valid, "warning ratio {ratio}");
    }
}

#[test]
fn an_address_may_reach_its_length_limits_but_not_pass_them() {
    use incidencias_core::Email;
    let domain = "sepru.gob.mx";
    let local64 = "a".repeat(64);
    assert!(Email::parse(&format!("{local64}@{domain}")).is_ok());
    let local65 = "a".repeat(65);
    let refused = Email::parse(&format!("{local65}@{domain}")).expect_err("65 before @");
    assert!(
        refused.to_string().contains("antes de la arroba"),
        "{refused}"
    );
    // 254 in all (labels of at most 63): accepted; 255: refused for its length.
    let long_domain = |total: usize| {
        let mut d = String::new();
        while d.len() + 1 + 64 < total {
            let room = total - 64 - 1 - d.len();
            let label = room.min(63).min(room.saturating_sub(1).max(1));
            if !d.is_empty() {
                d.push('.');
            }
            d.push_str(&"b".repeat(label.min(total - 64 - 1 - d.len())));
        }
        format!("{local64}@{d}")
    };
    let at254 = long_domain(254);
    assert_eq!(at254.len(), 254, "{at254}");
    assert!(Email::parse(&at254).is_ok(), "{at254}");
    let at255 = format!("{at254}b");
    let refused = Email::parse(&at255).expect_err("255 in all");
    assert!(refused.to_string().contains("entre 1 y 254"), "{refused}");
    let empty = Email::parse("   ").expect_err("blank");
    assert!(empty.to_string().contains("entre 1 y 254"), "{empty}");
}
