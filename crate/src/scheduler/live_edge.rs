//! Live-edge coordination: who fetches a segment nobody has announced from the CDN.
//!
//! Policy (it decides the live offload):
//! 1. When the player asks for a segment that no connected peer has announced (`Have` or
//!    `Downloading`) and it is not urgent, the viewer waits a random delay
//!    `d = U(0, cap)` before fetching it over HTTP.
//! 2. `cap = live_edge_delay_max_ms * min(n, FULL_DELAY_PEERS) / FULL_DELAY_PEERS`, where `n`
//!    is the number of connected peers that could fetch it first: with no peers there is
//!    no one to wait for (`cap = 0`); with few peers the chance that one of them beats us is
//!    small, so waiting long buys little.
//! 3. The wait never eats into the urgent window: `cap <= (deadline - urgent_window_ms) / 2`,
//!    keeping half of the slack for the HTTP transfer itself. An unknown deadline gives 0.
//! 4. If during the wait a peer announces `Have`/`Downloading`, the segment is requested from
//!    it instead (the engine re-plans on every announcement).
//! 5. The viewer whose delay expires first fetches over HTTP and announces
//!    `Downloading{seq, size}` to all its peers as soon as the size is known; it relays
//!    chunks to requesters as they arrive from the CDN, so the peers' copies finish shortly
//!    after its own.
//!
//! With `k` viewers drawing independent delays the first fires after about `cap / (k + 1)`;
//! two viewers whose draws are within one RTT + time-to-first-byte both fetch from the
//! CDN. That costs one extra CDN copy now and then, which is acceptable.
//!
//! Invariants: the delay is always `<= cap`, and `cap` never pushes a segment into the
//! urgent window.

/// Number of candidate peers at which the full `live_edge_delay_max_ms` applies.
pub const FULL_DELAY_PEERS: u64 = 4;

/// Upper bound of the random wait, in ms.
///
/// `deadline_ms`: time until the playhead reaches the segment (negative = late, `None` =
/// unknown). `candidates`: connected peers in the swarm that could announce it.
pub fn delay_cap(
    delay_max_ms: u64,
    urgent_window_ms: u64,
    deadline_ms: Option<i64>,
    candidates: usize,
) -> u64 {
    let n = (candidates as u64).min(FULL_DELAY_PEERS);
    if n == 0 {
        return 0;
    }
    let by_peers = delay_max_ms.saturating_mul(n) / FULL_DELAY_PEERS;
    let Some(deadline) = deadline_ms else {
        return 0;
    };
    let slack = deadline.saturating_sub(urgent_window_ms.min(i64::MAX as u64) as i64);
    if slack <= 0 {
        return 0;
    }
    by_peers.min(slack as u64 / 2)
}

/// Draws the delay from a uniform random `u64`.
pub fn draw(cap: u64, random: u64) -> u64 {
    if cap == 0 {
        0
    } else {
        random % (cap + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_peers_or_unknown_deadline_means_no_wait() {
        assert_eq!(delay_cap(2000, 3000, Some(20_000), 0), 0);
        assert_eq!(delay_cap(2000, 3000, None, 5), 0);
    }

    #[test]
    fn cap_scales_with_peers_and_saturates() {
        assert_eq!(delay_cap(2000, 3000, Some(60_000), 1), 500);
        assert_eq!(delay_cap(2000, 3000, Some(60_000), 2), 1000);
        assert_eq!(delay_cap(2000, 3000, Some(60_000), 4), 2000);
        assert_eq!(delay_cap(2000, 3000, Some(60_000), 40), 2000);
    }

    #[test]
    fn wait_never_reaches_the_urgent_window() {
        for deadline in [
            -5000i64, 0, 2999, 3000, 3001, 3500, 4000, 5000, 7000, 100_000,
        ] {
            let cap = delay_cap(2000, 3000, Some(deadline), 8);
            assert!(cap <= 2000);
            if deadline <= 3000 {
                assert_eq!(cap, 0, "deadline {deadline}");
            } else {
                assert!(
                    (cap as i64) <= (deadline - 3000) / 2,
                    "deadline {deadline} cap {cap}"
                );
            }
        }
        assert_eq!(delay_cap(2000, 3000, Some(4000), 8), 500);
    }

    #[test]
    fn draw_stays_within_cap_and_covers_it() {
        let mut seen_high = false;
        let mut seen_low = false;
        for r in 0..5000u64 {
            let x = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let d = draw(1000, x);
            assert!(d <= 1000);
            seen_high |= d > 900;
            seen_low |= d < 100;
        }
        assert!(seen_high && seen_low);
        assert_eq!(draw(0, 12345), 0);
    }
}
