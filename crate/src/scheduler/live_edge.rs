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
//! 4. Within the cap the wait is uniform: `d = U(0, cap)`. With `k` viewers asking at about
//!    the same moment the first fires after about `cap / (k + 1)`.
//! 5. If during the wait a peer announces `Have`/`Downloading`, the segment is requested from
//!    it instead (the engine re-plans on every announcement).
//! 6. The viewer that fetches announces `Downloading{seq, size}` to all its peers as soon as
//!    the size is known (first HTTP progress with a length) and relays chunks to requesters
//!    as they arrive from the CDN, so the peers' copies finish shortly after its own.
//!
//! 7. Collision yield: a viewer whose CDN fetch has not delivered its first byte yet (so it
//!    has not announced) when a peer announces the segment cancels its transfer and takes
//!    the peer's copy (`Engine::yield_untouched_http`).
//!
//! 8. Joining: a viewer that announced itself in the swarm less than `JOIN_WAIT_MS` ago and
//!    has no connected peer yet is being connected to the peers the tracker gave it. It
//!    waits for them (until the join window ends, never into the urgent window) rather than
//!    fetch non-urgent segments over HTTP the moment it joins: in a VOD swarm the player
//!    fills its buffer in a burst at startup, and without the wait that whole burst came
//!    from the CDN although the swarm held it. When a peer connects and announces the
//!    segment, it is taken from that peer at once.
//!
//! 9. Relay worth: the cap of point 4 is scaled by `min(1, bitrate / upload budget)`
//!    (`relay_scaled_cap`, never below `min(cap, UNSCALED_CAP_MS)`), so viewers that can
//!    pass a segment on many times over in its duration fetch first and the rest mostly find
//!    a copy by the time their longer wait ends (`live_edge_delay_max_ms` is 6 s).
//!
//! 10. Beyond one hop: a viewer fetching a segment from peers tells up to
//!     `incoming_fanout` of its peers with `Incoming { hops: 1 }`; a viewer waiting for such a
//!     copy relays `Incoming { hops: h + 1 }` (up to `MAX_INCOMING_HOPS`). A viewer told of an
//!     incoming copy waits for its `Have` until the segment would become urgent
//!     (`incoming_wait`), then the urgent rules decide. A `Lost` for it re-plans the wait.
//!
//! 11. Ahead of the playlist: a live segment past the playlist's end that a peer announced
//!     is fetched from that peer at once (`Engine::prefetch`, at most `PEER_LEARNED_AHEAD`
//!     segments, not with integrity manifests, which name segments by URL), so a new segment
//!     spreads through the mesh as fast as transfers allow rather than with each viewer's
//!     playlist refresh.
//!
//! Why (issue 17, BENCHMARKS.md): with the one-hop rule alone, CDN copies per segment grew
//! with the audience (about `N / peers * ln(1 / miss)`: every CDN fetch covered only its own
//! neighbours), and nearly all CDN fetches came from a wait that ended with no neighbour
//! holding, fetching or expecting the segment. Points 9-11 each cut those; together they
//! took a 300-viewer live cut from 74.4% to 89.7% offload at equal rebuffering.
//!
//! Why uniform and not ranked: giving each viewer a per-segment rank among its peers and a
//! slot per rank was measured worse in the swarm harness (mean steady-state offload 83.2%
//! against 86.9% over six live seeds of 8-16 viewers), because viewers see a new segment at
//! different refresh phases, and ranks then add waiting without removing collisions.
//!
//! Viewers that see the segment at different times (playlist refresh phases) are spread by
//! those times; two viewers whose fetch times still fall within one announce latency (time
//! to first byte plus one peer hop) both fetch from the CDN: one extra CDN copy now and
//! then. The same rule covers VOD segments ahead of the playhead.
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
    by_peers.min(slack as u64)
}

/// How long after announcing itself a viewer with no peer yet waits for its first peers.
/// Tracker round trip, offer/answer relay, ICE, DTLS and the handshake take well under a
/// second between nearby viewers and one to two seconds across the internet.
pub const JOIN_WAIT_MS: u64 = 3_000;

/// The wait of a viewer without connected peers for a segment nobody announced:
/// the rest of its join window (`since_join_ms` since it announced itself; `None`: it did
/// not), never into the urgent window. An unknown deadline gives 0.
pub fn join_wait(
    since_join_ms: Option<u64>,
    join_window_ms: u64,
    urgent_window_ms: u64,
    deadline_ms: Option<i64>,
) -> u64 {
    let (Some(since), Some(deadline)) = (since_join_ms, deadline_ms) else {
        return 0;
    };
    let left = join_window_ms.saturating_sub(since);
    let slack = deadline.saturating_sub(urgent_window_ms.min(i64::MAX as u64) as i64);
    if slack <= 0 {
        return 0;
    }
    left.min(slack as u64)
}

/// The wait of a viewer for a segment that a connected peer announced as `Incoming` (on
/// its way there from other peers): until the segment would enter the urgent window. The
/// peer's `Have` ends the wait earlier (the segment is then taken from it); at the urgent
/// window the urgent rules take over. An unknown deadline gives 0.
pub fn incoming_wait(urgent_window_ms: u64, deadline_ms: Option<i64>) -> u64 {
    let Some(deadline) = deadline_ms else {
        return 0;
    };
    let slack = deadline.saturating_sub(urgent_window_ms.min(i64::MAX as u64) as i64);
    slack.max(0) as u64
}

/// The part of the wait cap that no viewer's is scaled below (the whole cap when it is
/// smaller): every viewer waits at least as long as before relay scaling existed.
pub const UNSCALED_CAP_MS: u64 = 1_000;

/// Scales the wait cap by the viewer's worth as a relay: `cap * min(1, bitrate / upload)`
/// (upload in bit/s, from its budget), never below `min(cap, UNSCALED_CAP_MS)`. A viewer
/// that can upload a segment many times over in its duration fetches early; one that cannot
/// even pass one copy on waits the full cap and mostly finds a copy by then. An unknown
/// bitrate or no upload budget leaves the cap whole.
pub fn relay_scaled_cap(cap: u64, bitrate_bps: u64, upload_bytes_per_sec: u64) -> u64 {
    let up_bps = upload_bytes_per_sec.saturating_mul(8);
    if bitrate_bps == 0 || up_bps <= bitrate_bps {
        return cap;
    }
    let scaled = (cap as u128 * bitrate_bps as u128 / up_bps as u128) as u64;
    scaled.max(cap.min(UNSCALED_CAP_MS))
}

/// An `Incoming` goes to as many peers as our upload budget can serve the segment to in
/// this many segment durations: telling more would have them wait on a relay too slow for
/// all of them. Measured (BENCHMARKS.md, issue 17): 6 gained 0.9 points on a 300-viewer cut
/// of live-1000 but cost 5.7 on free-riders-1000 (more viewers waiting on the uploaders
/// that half the audience leaves alone), so 3; peers told but not served in time fall back
/// to the urgent rules.
pub const INCOMING_FANOUT_SEGMENTS: u64 = 3;

/// How many peers to tell that a segment is on its way here (`Incoming`): copies our upload
/// budget can serve in `INCOMING_FANOUT_SEGMENTS` segment durations. 0 (tell nobody) when the
/// bitrate is unknown.
pub fn incoming_fanout(upload_bytes_per_sec: u64, bitrate_bps: u64) -> usize {
    if bitrate_bps == 0 {
        return 0;
    }
    let copies = upload_bytes_per_sec
        .saturating_mul(8)
        .saturating_mul(INCOMING_FANOUT_SEGMENTS)
        / bitrate_bps;
    usize::try_from(copies).unwrap_or(usize::MAX)
}

/// What a viewer does with a wanted, non-urgent segment that no peer holds and nothing
/// fetches yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchDelay {
    /// Wait this long, then fetch from the CDN (0: now).
    Wait(u64),
    /// Wait a uniform draw below this cap ([`draw`]), then fetch from the CDN.
    Draw(u64),
}

/// The live-edge rule (points 1–4 and 8 above). `avoid_http`: the viewer's CDN path is
/// degraded, so the fetch is left to peers with a healthy one as long as the deadline
/// allows. `candidates`: connected peers that could announce it. `since_join_ms`: time since
/// the viewer announced itself, if peers are expected (connecting, or counted by the
/// tracker); a viewer with no peer and none expected fetches at once.
#[allow(clippy::too_many_arguments)]
pub fn fetch_delay(
    avoid_http: bool,
    candidates: usize,
    incoming: bool,
    since_join_ms: Option<u64>,
    deadline_ms: Option<i64>,
    delay_max_ms: u64,
    urgent_window_ms: u64,
) -> FetchDelay {
    if avoid_http {
        FetchDelay::Wait(delay_cap(
            u64::MAX,
            urgent_window_ms,
            deadline_ms,
            candidates,
        ))
    } else if incoming {
        FetchDelay::Wait(incoming_wait(urgent_window_ms, deadline_ms))
    } else if candidates == 0 {
        FetchDelay::Wait(join_wait(
            since_join_ms,
            JOIN_WAIT_MS,
            urgent_window_ms,
            deadline_ms,
        ))
    } else {
        FetchDelay::Draw(delay_cap(
            delay_max_ms,
            urgent_window_ms,
            deadline_ms,
            candidates,
        ))
    }
}

/// Draws the delay from a uniform random `u64`: `U(0, cap)`.
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
                    (cap as i64) <= deadline - 3000,
                    "deadline {deadline} cap {cap}"
                );
            }
        }
        assert_eq!(delay_cap(2000, 3000, Some(4000), 8), 1000);
    }

    #[test]
    fn join_wait_ends_with_the_window_and_before_the_urgent_window() {
        // Just joined, deadline far: wait the whole window.
        assert_eq!(join_wait(Some(0), 3000, 3000, Some(60_000)), 3000);
        // Part of the window is over.
        assert_eq!(join_wait(Some(2000), 3000, 3000, Some(60_000)), 1000);
        assert_eq!(join_wait(Some(5000), 3000, 3000, Some(60_000)), 0);
        // Never into the urgent window.
        assert_eq!(join_wait(Some(0), 3000, 3000, Some(4500)), 1500);
        assert_eq!(join_wait(Some(0), 3000, 3000, Some(3000)), 0);
        assert_eq!(join_wait(Some(0), 3000, 3000, Some(-10)), 0);
        // Not joined (P2P off) or no playhead: no wait.
        assert_eq!(join_wait(None, 3000, 3000, Some(60_000)), 0);
        assert_eq!(join_wait(Some(0), 3000, 3000, None), 0);
    }

    #[test]
    fn strong_relays_wait_less_but_never_below_the_unscaled_cap() {
        // 2.5 Mbit/s stream. Upload budget 1 MB/s = 8 Mbit/s: 2.5 / 8 of the cap.
        assert_eq!(relay_scaled_cap(6_000, 2_500_000, 1_000_000), 1_875);
        // 80 Mbit/s: scaled to 187 ms, held at the unscaled 1 s.
        assert_eq!(
            relay_scaled_cap(6_000, 2_500_000, 10_000_000),
            UNSCALED_CAP_MS
        );
        // Cannot pass one copy on, unknown bitrate, free rider: the whole cap.
        assert_eq!(relay_scaled_cap(6_000, 2_500_000, 200_000), 6_000);
        assert_eq!(relay_scaled_cap(6_000, 0, 1_000_000), 6_000);
        assert_eq!(relay_scaled_cap(6_000, 2_500_000, 0), 6_000);
        // A cap below the floor is never raised.
        assert_eq!(relay_scaled_cap(400, 2_500_000, 10_000_000), 400);
        assert_eq!(relay_scaled_cap(0, 2_500_000, 10_000_000), 0);
    }

    #[test]
    fn incoming_fanout_is_what_the_upload_budget_serves() {
        // 8 Mbit/s budget, 2.5 Mbit/s stream: 3.2 copies per segment duration, 9 in three.
        assert_eq!(incoming_fanout(1_000_000, 2_500_000), 9);
        // Less than a third of the bitrate: nobody is told.
        assert_eq!(incoming_fanout(100_000, 2_500_000), 0);
        assert_eq!(incoming_fanout(1_000_000, 0), 0);
        assert_eq!(incoming_fanout(u64::MAX, 1), usize::MAX);
    }

    #[test]
    fn an_incoming_copy_is_waited_for_until_the_urgent_window() {
        assert_eq!(incoming_wait(3_000, Some(12_000)), 9_000);
        assert_eq!(incoming_wait(3_000, Some(2_000)), 0);
        assert_eq!(incoming_wait(3_000, None), 0);
        // It wins over the draw and the join wait, not over a degraded CDN path.
        assert_eq!(
            fetch_delay(false, 3, true, Some(0), Some(12_000), 6_000, 3_000),
            FetchDelay::Wait(9_000)
        );
        assert_eq!(
            fetch_delay(false, 3, false, Some(0), Some(12_000), 6_000, 3_000),
            FetchDelay::Draw(4_500)
        );
        assert_eq!(
            fetch_delay(true, 3, true, Some(0), Some(12_000), 6_000, 3_000),
            FetchDelay::Wait(9_000)
        );
    }

    #[test]
    fn draw_stays_within_cap_and_covers_it() {
        let (mut low, mut high) = (false, false);
        for r in 0..5000u64 {
            let d = draw(1000, r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(d <= 1000);
            low |= d < 100;
            high |= d > 900;
        }
        assert!(low && high);
        assert_eq!(draw(0, 12345), 0);
    }
}
