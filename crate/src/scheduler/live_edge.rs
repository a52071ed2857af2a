//! Live-edge coordination: who fetches a segment nobody has announced from the CDN.
//!
//! Policy (it decides the live offload):
//! 1. When the player asks for a segment that no connected peer has announced (`Have` or
//!    `Downloading`) and it is not urgent, the viewer waits `d` before fetching it over HTTP.
//! 2. Cap: `cap = live_edge_delay_max_ms * min(n, FULL_DELAY_PEERS) / FULL_DELAY_PEERS`,
//!    where `n` is the number of connected peers in the swarm (who could fetch it first):
//!    with no peers there is no one to wait for (`cap = 0`); with few peers the chance that
//!    one of them beats us is small, so waiting long buys little.
//! 3. The wait never eats into the urgent window: `cap <= deadline - urgent_window_ms` (the
//!    urgent window is the time budget of the HTTP transfer itself). An unknown deadline
//!    gives 0 (fetch at once).
//! 4. Ranked slots: each viewer ranks itself among itself and its `n` peers by a
//!    per-segment hash of the peer ids (`priority`, identical on every viewer, different
//!    for every segment so the CDN work and the upload it causes rotate). Rank `r` waits
//!    `d = min(cap, r * slot + U(0, slot / 2))` with `slot = max(cap / (n + 1), MIN_SLOT_MS)`.
//!    Viewers that see the new segment at the same moment thus fetch one after the other,
//!    a slot apart, and the second one normally hears the first one's `Downloading` before
//!    its turn. (A plain uniform draw collides whenever two draws fall within one announce
//!    latency, which with 8 viewers and a 1-2 s cap happens for a third of the segments.)
//! 5. If during the wait a peer announces `Have`/`Downloading`, the segment is requested from
//!    it instead (the engine re-plans on every announcement).
//! 6. The viewer that fetches announces `Downloading{seq, size}` to all its peers as soon as
//!    the size is known (first HTTP progress with a length) and relays chunks to requesters
//!    as they arrive from the CDN, so the peers' copies finish shortly after its own.
//!
//! Viewers that see the segment at different times (playlist refresh phases) are spread by
//! those times; two viewers whose fetch times still fall within one announce latency (time
//! to first byte plus one peer hop) both fetch from the CDN: one extra CDN copy now and
//! then. The same rule covers VOD segments ahead of the playhead.
//!
//! Invariants: the delay is always `<= cap`, and `cap` never pushes a segment into the
//! urgent window.

use crate::types::{PeerId, SegmentKey};

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
    by_peers.min(slack as u64)
}

/// Smallest spacing between two ranks: about one announce latency (time to first byte of
/// the leader's HTTP response plus one peer hop), so rank `r + 1` hears rank `r`'s
/// `Downloading` before its own turn.
pub const MIN_SLOT_MS: u64 = 200;

/// Per-segment priority of a viewer: every viewer computes the same value for the same
/// (peer, segment), and the order changes from segment to segment so the CDN fetches (and
/// the upload they cause) rotate among viewers.
pub fn priority(peer: &PeerId, key: SegmentKey) -> u64 {
    let mut h = 0x5348_4f41_4c21_u64 ^ key.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in peer.0.chunks(8).chain(key.swarm.0.chunks(8)) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    h
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The wait before fetching from the CDN: the viewer's rank among itself and its
/// `candidates` peers (0 = highest priority for this segment) picks a slot of
/// `max(cap / (candidates + 1), MIN_SLOT_MS)`, plus a random offset within the first half
/// of the slot to break ties; never more than `cap`.
pub fn delay(cap: u64, rank: usize, candidates: usize, random: u64) -> u64 {
    if cap == 0 {
        return 0;
    }
    let slot = (cap / (candidates as u64 + 1)).max(MIN_SLOT_MS.min(cap));
    let base = (rank as u64).saturating_mul(slot);
    base.saturating_add(random % (slot / 2 + 1)).min(cap)
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
                    (cap as i64) <= deadline - 3000,
                    "deadline {deadline} cap {cap}"
                );
            }
        }
        assert_eq!(delay_cap(2000, 3000, Some(4000), 8), 1000);
    }

    #[test]
    fn ranked_delays_are_ordered_spaced_and_capped() {
        let cap = 2000;
        let mut last = None;
        for rank in 0..=8 {
            let lo = delay(cap, rank, 8, 0);
            let hi = delay(cap, rank, 8, u64::MAX);
            assert!(lo <= hi && hi <= cap);
            if let Some((plo, _)) = last {
                if hi < cap {
                    assert!(
                        lo >= plo + MIN_SLOT_MS.min(cap / 9).max(MIN_SLOT_MS),
                        "rank {rank}"
                    );
                }
            }
            last = Some((lo, hi));
        }
        assert_eq!(delay(0, 3, 8, 99), 0);
        assert_eq!(delay(2000, 20, 8, 0), 2000);
        // A small cap still separates rank 0 from rank 1 by the whole cap.
        assert!(delay(150, 0, 8, u64::MAX) <= 75);
        assert_eq!(delay(150, 1, 8, 0), 150);
    }

    #[test]
    fn priority_is_deterministic_and_rotates() {
        let key = |seq| SegmentKey {
            swarm: crate::types::SwarmId([3; 20]),
            seq,
        };
        let (a, b) = (PeerId([1; 20]), PeerId([2; 20]));
        assert_eq!(priority(&a, key(5)), priority(&a, key(5)));
        let a_first = (0..200)
            .filter(|&s| priority(&a, key(s)) < priority(&b, key(s)))
            .count();
        assert!((60..140).contains(&a_first), "{a_first}");
    }

    #[test]
    fn jitter_covers_the_first_half_slot() {
        let (mut low, mut high) = (false, false);
        for r in 0..5000u64 {
            let d = delay(1800, 0, 8, r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(d <= 100);
            low |= d < 10;
            high |= d > 90;
        }
        assert!(low && high);
    }
}
