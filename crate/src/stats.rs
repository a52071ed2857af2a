//! Offload accounting (engine helper).
//!
//! Invariants: counters only grow (saturating); `p2p_down` counts only bytes that passed
//! verification, `p2p_discarded` the ones that did not.

use crate::types::{DeliveryTiming, Source};

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub http_down: u64,
    pub p2p_down: u64,
    pub p2p_up: u64,
    pub p2p_discarded: u64,
    pub segments_http: u64,
    pub segments_p2p: u64,
    pub peers_banned: u32,
}

impl Counters {
    /// Counts a segment delivered to the player by where most of its bytes came from.
    pub fn delivered(&mut self, timing: &DeliveryTiming) {
        match majority(timing) {
            Source::P2p => self.segments_p2p = self.segments_p2p.saturating_add(1),
            Source::Http => self.segments_http = self.segments_http.saturating_add(1),
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
        let mut c = Counters::default();
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
        assert_eq!((c.segments_p2p, c.segments_http), (1, 2));
    }
}
