//! When the player needs a segment: its deadline from the last playhead report.
//!
//! Invariants: a deadline shrinks at the playback rate between reports and changes form only
//! on a report or a delivery; an unknown playhead gives no deadline (`None`: treated as
//! urgent, the safe side for playback).

use crate::types::{Instant, SegmentInfo, SwarmId};

/// The player's last playhead report.
#[derive(Clone, Copy, Debug)]
pub struct Playhead {
    pub swarm: SwarmId,
    pub position_ms: u64,
    pub buffered_ahead_ms: u64,
    /// Playback rate, clamped to `[0, 16]`.
    pub rate: f64,
    pub at: Instant,
    /// A segment was delivered to the player since this report: an empty buffer in it may
    /// be filled by now.
    pub filled: bool,
}

impl Playhead {
    pub fn elapsed_media_ms(&self, now: Instant) -> f64 {
        now.as_millis().saturating_sub(self.at.as_millis()) as f64 * self.rate
    }

    pub fn position(&self, now: Instant) -> f64 {
        self.position_ms as f64 + self.elapsed_media_ms(now)
    }

    /// Milliseconds of media before the player needs `seg` (`None`: a segment the playlist
    /// does not list, due when the buffer runs out). Time until the playhead reaches its
    /// start; but with nothing buffered at the playhead (startup, seek, live join) a segment
    /// further than one segment away is the one the player waits for to start: due now.
    /// Only an empty buffer that no delivery has filled since the report counts as a gap: a
    /// report taken while the player fills its buffer in a burst is soon stale, and would
    /// make every later segment look late.
    pub fn deadline_ms(&self, now: Instant, seg: Option<&SegmentInfo>) -> i64 {
        let buffer_left = self.buffered_ahead_ms as f64 - self.elapsed_media_ms(now);
        match seg {
            Some(seg) => {
                let to_start = seg.start_ms as f64 - self.position(now);
                let past_gap = self.buffered_ahead_ms == 0
                    && !self.filled
                    && to_start > buffer_left + seg.duration_ms as f64;
                (if past_gap { buffer_left } else { to_start }) as i64
            }
            None => buffer_left as i64,
        }
    }
}

/// Whether a segment due in `deadline` ms must be fetched for playback now (unknown: yes).
pub fn is_urgent(deadline: Option<i64>, urgent_window_ms: u64) -> bool {
    deadline.is_none_or(|d| d < urgent_window_ms.min(i64::MAX as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: u64) -> SegmentInfo {
        SegmentInfo {
            seq: 0,
            start_ms,
            duration_ms: 2_000,
            url: String::new(),
            range: None,
        }
    }

    #[test]
    fn deadlines_shrink_with_playback_and_an_empty_buffer_makes_far_segments_due() {
        let ph = Playhead {
            swarm: SwarmId([0; 20]),
            position_ms: 10_000,
            buffered_ahead_ms: 4_000,
            rate: 1.0,
            at: Instant::from_millis(0),
            filled: false,
        };
        let t = Instant::from_millis;
        assert_eq!(ph.deadline_ms(t(0), Some(&seg(16_000))), 6_000);
        assert_eq!(ph.deadline_ms(t(1_000), Some(&seg(16_000))), 5_000);
        assert_eq!(ph.deadline_ms(t(1_000), None), 3_000);
        let empty = Playhead {
            buffered_ahead_ms: 0,
            ..ph
        };
        assert_eq!(
            empty.deadline_ms(t(0), Some(&seg(16_000))),
            0,
            "startup: due now"
        );
        assert_eq!(
            empty.deadline_ms(t(0), Some(&seg(11_000))),
            1_000,
            "within a segment"
        );
        let filled = Playhead {
            filled: true,
            ..empty
        };
        assert_eq!(filled.deadline_ms(t(0), Some(&seg(16_000))), 6_000);
        assert!(is_urgent(None, 1_000));
        assert!(is_urgent(Some(999), 1_000));
        assert!(!is_urgent(Some(1_000), 1_000));
    }
}
