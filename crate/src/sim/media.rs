//! The simulated stream: segment sizes, URLs and the bytes the CDN publishes.
//!
//! Invariants: the bytes of segment `(rendition, seq)` depend only on those two numbers and
//! the scenario (sizes jittered deterministically), so any copy delivered to a player can be
//! compared with what the origin published. Every segment is a whole number of 188-byte
//! MPEG-TS packets starting with 0x47, so honest data passes the engine's structural
//! checks and the simple corrupter's data does not.

use super::rng::Rng;
use super::scenario::Stream;
use crate::store::SegmentBytes;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Published bytes by (rendition, seq), shared with the engines' interners.
pub type Published = Rc<RefCell<BTreeMap<(usize, u64), SegmentBytes>>>;

pub use crate::testkit::TS_PACKET;

pub struct Media {
    live: bool,
    segment_ms: u64,
    bitrates: Vec<u64>,
    byte_scale: f64,
    jitter: f64,
    seed: u64,
    live_window: u64,
    vod_segments: u64,
    cache: Published,
}

impl Media {
    pub fn new(stream: &Stream, byte_scale: f64, seed: u64) -> Self {
        Media {
            live: stream.live,
            segment_ms: stream.segment_ms,
            bitrates: stream.bitrates.clone(),
            byte_scale,
            jitter: stream.size_jitter,
            seed,
            live_window: stream.live_window,
            vod_segments: stream.vod_segments,
            cache: Published::default(),
        }
    }

    pub fn renditions(&self) -> usize {
        self.bitrates.len()
    }

    pub fn bitrate(&self, r: usize) -> u64 {
        self.bitrates.get(r).copied().unwrap_or(0)
    }

    pub fn segment_ms(&self) -> u64 {
        self.segment_ms
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Newest segment published at `now_ms`. Live: the event has been running for a full
    /// window when the simulation starts (so the first viewers find a normal playlist), and
    /// seq k is complete at `(k + 1 - live_window) * segment_ms`.
    pub fn newest(&self, now_ms: u64) -> Option<u64> {
        if self.live {
            (now_ms / self.segment_ms + self.live_window).checked_sub(1)
        } else {
            self.vod_segments.checked_sub(1)
        }
    }

    /// Segments listed by the playlist at `now_ms`, as an inclusive range.
    pub fn window(&self, now_ms: u64) -> Option<(u64, u64)> {
        let newest = self.newest(now_ms)?;
        if self.live {
            Some((newest.saturating_sub(self.live_window - 1), newest))
        } else {
            Some((0, newest))
        }
    }

    /// Whether the CDN serves the segment at `now_ms` (live: a little longer than listed).
    pub fn served(&self, seq: u64, now_ms: u64) -> bool {
        match self.newest(now_ms) {
            None => false,
            Some(n) if self.live => seq <= n && seq + 2 * self.live_window > n,
            Some(n) => seq <= n,
        }
    }

    /// Simulated size in bytes (after `byte_scale`), whole TS packets.
    pub fn size(&self, r: usize, seq: u64) -> usize {
        let nominal = self.bitrate(r) as f64 * self.segment_ms as f64 / 8_000.0;
        let mut rng = Rng::derive(self.seed ^ 0x517E, (r as u64) << 48 ^ seq);
        let f = 1.0 + self.jitter * (2.0 * rng.f64() - 1.0);
        let bytes = nominal * f * self.byte_scale;
        ((bytes as usize) / TS_PACKET).max(1) * TS_PACKET
    }

    /// The file name repeats the rendition: manifest keys are the last path component.
    pub fn url(r: usize, seq: u64) -> String {
        format!("https://cdn.sim/r{r}/r{r}-s{seq}.ts")
    }

    /// Inverse of `url`.
    pub fn parse_url(url: &str) -> Option<(usize, u64)> {
        let rest = url.strip_prefix("https://cdn.sim/r")?;
        let (r, rest) = rest.split_once('/')?;
        let seq = rest.strip_prefix(&format!("r{r}-s"))?.strip_suffix(".ts")?;
        Some((r.parse().ok()?, seq.parse().ok()?))
    }

    /// The published bytes generated so far (and not pruned), for sharing them with the
    /// engines' caches.
    pub fn published(&self) -> Published {
        self.cache.clone()
    }

    /// The published bytes (generated once, shared).
    pub fn bytes(&mut self, r: usize, seq: u64) -> SegmentBytes {
        if let Some(b) = self.cache.borrow().get(&(r, seq)) {
            return b.clone();
        }
        let size = self.size(r, seq);
        let mut out = vec![0u8; size];
        let mut state = (r as u64).wrapping_mul(0x9E37_79B9) ^ seq.wrapping_mul(0x85EB_CA6B);
        for (k, p) in out.chunks_mut(TS_PACKET).enumerate() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let fill = (state >> 33) as u8;
            p[0] = 0x47;
            p[1] = 0x01;
            p[2] = 0x00;
            p[3] = 0x10 | (k as u8 & 0x0f);
            for (i, b) in p.iter_mut().enumerate().skip(4) {
                *b = fill.wrapping_add(i as u8);
            }
        }
        let rc = Rc::new(out);
        self.cache.borrow_mut().insert((r, seq), rc.clone());
        rc
    }

    /// Forgets generated bytes no longer served (live), bounding memory.
    pub fn prune(&mut self, now_ms: u64) {
        if !self.live {
            return;
        }
        if let Some(n) = self.newest(now_ms) {
            let keep_from = n.saturating_sub(3 * self.live_window);
            self.cache
                .borrow_mut()
                .retain(|&(_, seq), _| seq >= keep_from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip_and_bytes_are_ts() {
        let mut m = Media::new(&Stream::default(), 0.1, 5);
        assert_eq!(Media::parse_url(&Media::url(1, 42)), Some((1, 42)));
        assert_eq!(Media::parse_url("https://cdn.sim/r1/s4x.ts"), None);
        let b = m.bytes(1, 42);
        assert_eq!(b.len() % TS_PACKET, 0);
        assert!(b.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        assert_eq!(b.len(), m.size(1, 42));
        assert_ne!(&m.bytes(1, 43)[..100], &b[..100]);
    }

    #[test]
    fn live_window_slides() {
        let m = Media::new(&Stream::default(), 1.0, 1);
        assert_eq!(m.window(0), Some((0, 9)));
        assert_eq!(m.window(5_999), Some((0, 9)));
        assert_eq!(m.window(6_000), Some((1, 10)));
        assert_eq!(m.window(120_000), Some((20, 29)));
        assert!(m.served(29, 120_000) && !m.served(30, 120_000));
    }
}
