//! Urgent segments (due within `urgent_window_ms`): HTTP at once, unless peers will make it
//! with HTTP's takeover time to spare.
//!
//! Policy:
//! - HTTP's takeover time is twice the last segment's HTTP time; the reserve an urgent
//!   segment keeps in hand when peers are tried first adds `HTTP_RESERVE_MIN_MS`. Before any
//!   segment came over HTTP there is no reserve, and urgent segments go to HTTP at once.
//! - A complete holder is asked for an urgent segment when, at its measured throughput, it
//!   delivers within the deadline less the reserve ([`peer_makes_it`]).
//! - Peers already delivering keep it while they are on pace: at their rate the rest arrives
//!   before the deadline less the takeover time (at least `PACE_MARGIN_MS`) ([`on_pace`]).
//! - A joining viewer may hold an urgent segment for the peers it expects while its join
//!   window is open and a peer could still deliver with the reserve to spare ([`join_hold_ms`]).
//!
//! All functions are pure; the engine gathers the facts and applies the answer.

/// The smallest reserve an urgent segment keeps for HTTP when peers are tried first.
pub const HTTP_RESERVE_MIN_MS: i64 = 500;
/// The least margin before the deadline that peers delivering an urgent segment must keep.
pub const PACE_MARGIN_MS: i64 = 300;
/// A size probe (one chunk asked of a holder known by its Bitfield) for an urgent segment
/// counts as on pace for this long.
pub const URGENT_FIRST_BYTE_MS: u64 = 500;

/// What HTTP would need to take a segment over: twice the last segment's HTTP time.
pub fn http_takeover_ms(last_http_ms: Option<u64>) -> Option<i64> {
    let last = last_http_ms?;
    Some((last.min(i64::MAX as u64 / 4) as i64) * 2)
}

/// The time an urgent segment keeps in hand for HTTP when peers are tried first.
pub fn http_reserve_ms(last_http_ms: Option<u64>) -> Option<i64> {
    Some(HTTP_RESERVE_MIN_MS.saturating_add(http_takeover_ms(last_http_ms)?))
}

/// Whether a peer delivering `size` bytes at `rate` bytes/s (media playing at `playback`)
/// finishes with `reserve` ms to spare before `deadline`.
pub fn peer_makes_it(size: u64, rate: f64, playback: f64, reserve: i64, deadline: i64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let eta_ms = (size as f64 * 1000.0 / rate * playback) as i64;
    eta_ms.saturating_add(reserve) <= deadline
}

/// Whether peers delivering the `remaining` bytes at `rate` bytes/s finish before `deadline`
/// with HTTP's `takeover` time (at least `PACE_MARGIN_MS`) in hand.
pub fn on_pace(remaining: f64, rate: f64, playback: f64, takeover: i64, deadline: i64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let eta_ms = remaining * 1000.0 / rate * playback;
    (eta_ms as i64).saturating_add(PACE_MARGIN_MS.max(takeover)) <= deadline
}

/// How long a joining viewer holds an urgent segment for the peers it expects (`expected`:
/// sessions still connecting or silent, or the tracker counted more): the rest of its join
/// window (`since_join_ms` of `join_window_ms`), and only while a peer at `prior_rate`
/// bytes/s could still deliver `size` bytes with `reserve` to spare. 0: fetch it now.
pub fn join_hold_ms(
    expected: bool,
    since_join_ms: Option<u64>,
    join_window_ms: u64,
    size: u64,
    prior_rate: f64,
    reserve: i64,
    deadline: i64,
) -> u64 {
    let Some(since) = since_join_ms.filter(|_| expected) else {
        return 0;
    };
    let fetch_ms = (size as f64 * 1000.0 / prior_rate) as i64;
    let slack = deadline.saturating_sub(reserve).saturating_sub(fetch_ms);
    if slack <= 0 {
        return 0;
    }
    join_window_ms.saturating_sub(since).min(slack as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_twice_the_last_http_time_plus_the_minimum() {
        assert_eq!(http_reserve_ms(None), None);
        assert_eq!(http_takeover_ms(Some(400)), Some(800));
        assert_eq!(http_reserve_ms(Some(400)), Some(1_300));
    }

    #[test]
    fn peers_are_trusted_with_an_urgent_segment_only_with_time_to_spare() {
        // 100 kB at 100 kB/s: 1 s.
        assert!(peer_makes_it(100_000, 100_000.0, 1.0, 500, 1_500));
        assert!(!peer_makes_it(100_000, 100_000.0, 1.0, 500, 1_499));
        assert!(!peer_makes_it(100_000, 0.0, 1.0, 0, i64::MAX));
        assert!(
            on_pace(100_000.0, 100_000.0, 1.0, 0, 1_300),
            "margin 300 ms"
        );
        assert!(
            !on_pace(100_000.0, 100_000.0, 1.0, 800, 1_799),
            "takeover 800 ms"
        );
        assert!(!on_pace(1.0, 0.0, 1.0, 0, i64::MAX));
    }

    #[test]
    fn a_joiner_holds_only_within_its_window_and_its_slack() {
        // 50 kB at the 50 kB/s prior: 1 s to fetch; 500 ms reserve.
        let hold = |expected, since, deadline| {
            join_hold_ms(expected, since, 3_000, 50_000, 50_000.0, 500, deadline)
        };
        assert_eq!(hold(true, Some(1_000), 10_000), 2_000, "rest of the window");
        assert_eq!(hold(true, Some(1_000), 2_000), 500, "the slack");
        assert_eq!(hold(true, Some(1_000), 1_500), 0);
        assert_eq!(hold(false, Some(1_000), 10_000), 0, "nobody expected");
        assert_eq!(hold(true, None, 10_000), 0, "not joined");
    }
}
