//! Spot checks: the integrity check that needs no cooperation from the origin.
//!
//! Without a manifest, a peer that sends well-formed but altered bytes (a flipped bit inside
//! a TS packet, another stream's segment) passes the structural checks. So a sampled fraction
//! of the segments that peers contributed to is fetched again from the CDN after it was
//! delivered, and the SHA-256 of both copies is compared. A mismatch proves that one of the
//! contributors lied (the CDN copy is the reference), and the engine bans them all.
//!
//! Invariants:
//! - A sample keeps the digest of the delivered bytes and the contributing peers, never the
//!   bytes; the CDN copy is hashed as it streams in. At most `MAX_PENDING` samples wait and
//!   one transfer runs, so memory stays bounded whatever the peers do.
//! - A transfer that fails, is cancelled or goes silent gives no verdict: nobody is blamed
//!   for the CDN's trouble.
//! - Sampling draws from its own seeded stream, so turning spot checks on or off never
//!   changes any other decision of the engine.
//! - Every input is the host's (HTTP bytes) or already validated; nothing here panics.

use crate::types::{ByteRange, HttpId, Instant, PeerId, SegmentKey};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Samples waiting for the CDN: when the CDN is busy for long, the oldest are dropped (a
/// missed sample only lowers the effective ratio for a while).
pub const MAX_PENDING: usize = 8;
/// A spot-check transfer without a byte for this long is abandoned without a verdict.
pub const STALL_MS: u64 = 20_000;
/// Mixed into the engine's seed for the sampling stream.
const SEED_SALT: u64 = 0x5907_C4EC_0000_0001;

/// A delivered segment chosen for a spot check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub key: SegmentKey,
    pub url: String,
    pub range: Option<ByteRange>,
    /// Peers whose chunks were in the delivered copy.
    pub peers: Vec<PeerId>,
    digest: [u8; 32],
    size: u64,
}

struct Running {
    id: HttpId,
    sample: Sample,
    hasher: Sha256,
    received: u64,
    last_at: Instant,
}

/// The outcome of a finished spot-check transfer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The CDN served the same bytes the peers delivered.
    Match(Sample),
    /// The CDN's copy differs: every peer in `sample.peers` is suspect.
    Mismatch(Sample),
}

pub struct SpotChecker {
    ratio: f64,
    rng: ChaCha8Rng,
    pending: VecDeque<Sample>,
    running: Option<Running>,
}

impl SpotChecker {
    /// `ratio` outside `[0, 1]` is clamped; NaN disables.
    pub fn new(ratio: f64, seed: u64) -> Self {
        SpotChecker {
            ratio: if ratio.is_nan() {
                0.0
            } else {
                ratio.clamp(0.0, 1.0)
            },
            rng: ChaCha8Rng::seed_from_u64(seed ^ SEED_SALT),
            pending: VecDeque::new(),
            running: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.ratio > 0.0
    }

    /// A segment that peers contributed to was delivered: draw whether to check it. Returns
    /// true when it was queued.
    pub fn offer(
        &mut self,
        key: SegmentKey,
        url: &str,
        range: Option<ByteRange>,
        data: &[u8],
        peers: Vec<PeerId>,
    ) -> bool {
        if peers.is_empty() || !self.enabled() {
            return false;
        }
        // 53 random bits: uniform in [0, 1).
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.ratio {
            return false;
        }
        if self.pending.iter().any(|s| s.key == key)
            || self.running.as_ref().is_some_and(|r| r.sample.key == key)
        {
            return false;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Sample {
            key,
            url: url.to_string(),
            range,
            peers,
            digest: super::sha256(data),
            size: data.len() as u64,
        });
        true
    }

    /// Whether a transfer could start now (the engine also checks that the CDN is idle).
    pub fn wants_transfer(&self) -> bool {
        self.running.is_none() && !self.pending.is_empty()
    }

    /// Starts the oldest waiting sample under `id`: the URL and range to fetch.
    pub fn start(&mut self, id: HttpId, now: Instant) -> Option<(String, Option<ByteRange>)> {
        if self.running.is_some() {
            return None;
        }
        let sample = self.pending.pop_front()?;
        let fetch = (sample.url.clone(), sample.range);
        self.running = Some(Running {
            id,
            sample,
            hasher: Sha256::new(),
            received: 0,
            last_at: now,
        });
        Some(fetch)
    }

    pub fn owns(&self, id: HttpId) -> bool {
        self.running.as_ref().is_some_and(|r| r.id == id)
    }

    /// Bytes of the running transfer, in order.
    pub fn progress(&mut self, id: HttpId, bytes: &[u8], now: Instant) {
        if let Some(r) = self.running.as_mut().filter(|r| r.id == id) {
            r.hasher.update(bytes);
            r.received = r.received.saturating_add(bytes.len() as u64);
            r.last_at = now;
        }
    }

    /// The running transfer completed: compare.
    pub fn done(&mut self, id: HttpId) -> Option<Verdict> {
        if !self.owns(id) {
            return None;
        }
        let r = self.running.take()?;
        let digest: [u8; 32] = r.hasher.finalize().into();
        Some(
            if r.received == r.sample.size && digest == r.sample.digest {
                Verdict::Match(r.sample)
            } else {
                Verdict::Mismatch(r.sample)
            },
        )
    }

    /// The running transfer failed: no verdict, the sample is dropped.
    pub fn failed(&mut self, id: HttpId) -> bool {
        if self.owns(id) {
            self.running = None;
            return true;
        }
        false
    }

    /// A transfer silent for `STALL_MS`: dropped; the caller cancels it.
    pub fn stalled(&mut self, now: Instant) -> Option<HttpId> {
        let r = self.running.as_ref()?;
        if now.as_millis().saturating_sub(r.last_at.as_millis()) < STALL_MS {
            return None;
        }
        let id = r.id;
        self.running = None;
        Some(id)
    }

    /// Samples waiting plus the one running (for tests and diagnostics).
    pub fn queued(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SwarmId;

    fn key(seq: u64) -> SegmentKey {
        SegmentKey {
            swarm: SwarmId([1; 20]),
            seq,
        }
    }
    const P: PeerId = PeerId([9; 20]);

    #[test]
    fn ratio_zero_samples_nothing_and_one_samples_everything() {
        let mut off = SpotChecker::new(0.0, 1);
        let mut all = SpotChecker::new(1.0, 1);
        for seq in 0..4 {
            assert!(!off.offer(key(seq), "u", None, b"x", vec![P]));
            assert!(all.offer(key(seq), "u", None, b"x", vec![P]));
        }
        assert_eq!(off.queued(), 0);
        assert_eq!(all.queued(), 4);
        // Nothing from peers: nothing to check.
        assert!(!all.offer(key(9), "u", None, b"x", vec![]));
        assert!(!SpotChecker::new(f64::NAN, 1).enabled());
    }

    #[test]
    fn sampled_fraction_follows_the_ratio() {
        let mut s = SpotChecker::new(0.1, 42);
        let n = 20_000u64;
        let mut hits = 0u64;
        for seq in 0..n {
            if s.offer(key(seq), "u", None, b"x", vec![P]) {
                hits += 1;
            }
            s.pending.clear();
        }
        let frac = hits as f64 / n as f64;
        assert!((0.09..0.11).contains(&frac), "sampled {frac}");
    }

    #[test]
    fn same_bytes_match_and_any_difference_is_a_mismatch() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let t0 = Instant(0);
        // Same bytes, streamed in odd pieces.
        let mut s = SpotChecker::new(1.0, 7);
        assert!(s.offer(key(1), "a.ts", None, &data, vec![P]));
        assert_eq!(s.start(HttpId(5), t0), Some(("a.ts".to_string(), None)));
        for piece in data.chunks(9_999) {
            s.progress(HttpId(5), piece, t0);
        }
        assert!(matches!(s.done(HttpId(5)), Some(Verdict::Match(_))));

        // One flipped bit, then a truncated copy, then one byte too many.
        let mut flipped = data.clone();
        flipped[20_000] ^= 1;
        let variants = [flipped, data[..39_999].to_vec(), [&data[..], &[0]].concat()];
        for (i, cdn) in variants.iter().enumerate() {
            let id = HttpId(10 + i as u32);
            assert!(s.offer(key(2 + i as u64), "b.ts", None, &data, vec![P]));
            assert!(s.start(id, t0).is_some());
            s.progress(id, cdn, t0);
            match s.done(id) {
                Some(Verdict::Mismatch(sample)) => assert_eq!(sample.peers, vec![P]),
                other => panic!("variant {i}: {other:?}"),
            }
        }
        // Unknown ids are ignored.
        assert_eq!(s.done(HttpId(99)), None);
        assert!(!s.failed(HttpId(99)));
    }

    #[test]
    fn one_transfer_at_a_time_bounded_queue_and_no_verdict_on_failure() {
        let mut s = SpotChecker::new(1.0, 3);
        for seq in 0..(MAX_PENDING as u64 + 5) {
            s.offer(key(seq), "u", None, b"abc", vec![P]);
        }
        assert_eq!(s.queued(), MAX_PENDING);
        // The same segment twice is one sample.
        assert!(!s.offer(key(MAX_PENDING as u64 + 4), "u", None, b"abc", vec![P]));
        assert!(s.start(HttpId(1), Instant(0)).is_some());
        assert!(s.start(HttpId(2), Instant(0)).is_none());
        assert!(!s.wants_transfer() || s.running.is_none());
        assert!(s.failed(HttpId(1)));
        assert!(s.wants_transfer());
        assert!(s.start(HttpId(3), Instant(0)).is_some());
        assert_eq!(s.stalled(Instant(STALL_MS - 1)), None);
        assert_eq!(s.stalled(Instant(STALL_MS)), Some(HttpId(3)));
        assert!(!s.owns(HttpId(3)));
    }
}
