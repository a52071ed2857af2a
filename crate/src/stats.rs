//! Offload accounting: the engine's one set of counters ([`Tally`]), read as [`Stats`].
//!
//! Invariants: counters only grow (saturating); `p2p_down` counts only bytes that passed
//! verification, `p2p_discarded` the ones that did not.

use crate::peers::Ewma;
use crate::types::{DeliveryTiming, Source, Stats};

/// The engine's running totals: the cumulative fields of [`Stats`] and the time-to-first-byte
/// averages. The live fields (peers, cache size, CDN state) are the owners' to fill in when a
/// snapshot is taken ([`Tally::snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    totals: Stats,
    http_ttfb: Ewma,
    p2p_ttfb: Ewma,
}

impl Tally {
    /// Media bytes received over HTTP.
    pub fn http_bytes(&mut self, n: u64) {
        self.totals.http_down = self.totals.http_down.saturating_add(n);
    }

    /// Peer bytes of a segment that passed verification.
    pub fn p2p_accepted(&mut self, n: u64) {
        self.totals.p2p_down = self.totals.p2p_down.saturating_add(n);
    }

    /// Peer bytes that failed a check and were thrown away.
    pub fn p2p_discarded(&mut self, n: u64) {
        self.totals.p2p_discarded = self.totals.p2p_discarded.saturating_add(n);
    }

    /// Media bytes sent to peers.
    pub fn uploaded(&mut self, n: u64) {
        self.totals.p2p_up = self.totals.p2p_up.saturating_add(n);
    }

    pub fn peer_banned(&mut self) {
        self.totals.peers_banned = self.totals.peers_banned.saturating_add(1);
    }

    /// Counts a segment delivered to the player by where most of its bytes came from.
    pub fn delivered(&mut self, timing: &DeliveryTiming) {
        let t = &mut self.totals;
        match majority(timing) {
            Source::P2p => t.segments_p2p = t.segments_p2p.saturating_add(1),
            Source::Http => t.segments_http = t.segments_http.saturating_add(1),
        }
    }

    pub fn http_ttfb(&mut self, ms: u64) {
        self.http_ttfb.sample(ms as f64);
    }

    pub fn p2p_ttfb(&mut self, ms: u64) {
        self.p2p_ttfb.sample(ms as f64);
    }

    /// The totals, with the live fields at their defaults.
    pub fn snapshot(&self) -> Stats {
        Stats {
            http_ttfb_ms: self.http_ttfb.get_or(0.0),
            p2p_ttfb_ms: self.p2p_ttfb.get_or(0.0),
            ..self.totals.clone()
        }
    }
}

/// Where most bytes of a transfer came from (ties count as HTTP).
pub fn majority(timing: &DeliveryTiming) -> Source {
    if timing.p2p_bytes > timing.http_bytes {
        Source::P2p
    } else {
        Source::Http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_counted_by_majority_source() {
        let mut c = Tally::default();
        c.delivered(&DeliveryTiming {
            http_bytes: 10,
            p2p_bytes: 90,
            ..Default::default()
        });
        c.delivered(&DeliveryTiming {
            http_bytes: 60,
            p2p_bytes: 40,
            ..Default::default()
        });
        c.delivered(&DeliveryTiming {
            http_bytes: 5,
            p2p_bytes: 5,
            ..Default::default()
        });
        let s = c.snapshot();
        assert_eq!((s.segments_p2p, s.segments_http), (1, 2));
    }
}
