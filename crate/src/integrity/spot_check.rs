//! Spot checks: the integrity check that needs no cooperation from the origin.
//!
//! Without a manifest, a peer that sends well-formed but altered bytes (a flipped bit inside
//! a TS packet, another stream's segment) passes the structural checks. So a sampled fraction
//! of the segments that peers contributed to is fetched again from the CDN after it was
//! delivered, and compared chunk by chunk (SHA-256 of each wire chunk): the peers that sent
//! a chunk that differs from the CDN's copy are the liars, and the engine bans them.
//!
//! Invariants:
//! - A sample keeps one digest and one sender per chunk (32 bytes per 15 KiB), never the
//!   bytes; the CDN copy is hashed as it streams in. At most `MAX_PENDING` samples wait and
//!   one transfer runs, so memory stays bounded whatever the peers do.
//! - A transfer that fails, is cancelled, goes silent or ends short of its length gives no
//!   verdict: nobody is blamed for the CDN's trouble. Bytes past the response's announced
//!   length are ignored, as for any transfer. A mismatch needs proof: a different announced
//!   length (then every peer that sent chunks agreed on the wrong one), or a chunk whose
//!   bytes differ (then only the peers that sent such chunks).
//! - Sampling draws from its own seeded stream, so turning spot checks on or off never
//!   changes any other decision of the engine.
//! - Every input is the host's (HTTP bytes) or already validated; nothing here panics.

use crate::types::{ByteRange, HttpId, Instant, PeerId, SegmentKey};
use crate::wire::CHUNK_SIZE;
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
const CHUNK: u64 = CHUNK_SIZE as u64;

/// A delivered segment chosen for a spot check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub key: SegmentKey,
    pub url: String,
    pub range: Option<ByteRange>,
    /// Per wire chunk: its SHA-256 as delivered and who sent it (`None`: the CDN).
    chunks: Vec<([u8; 32], Option<PeerId>)>,
    size: u64,
}

impl Sample {
    /// The peers that sent any chunk, sorted, once each.
    pub fn contributors(&self) -> Vec<PeerId> {
        let mut p: Vec<PeerId> = self.chunks.iter().filter_map(|c| c.1).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

struct Running {
    id: HttpId,
    sample: Sample,
    /// Hash of the current chunk of the CDN's copy.
    hasher: Sha256,
    received: u64,
    /// The response's length (`total` of its first progress), if the host knew it.
    total: Option<u64>,
    /// Chunks whose CDN bytes differ from the delivered ones.
    bad: Vec<u32>,
    last_at: Instant,
}

/// The outcome of a finished spot-check transfer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The CDN served the same bytes the peers delivered.
    Match(Sample),
    /// The CDN's copy differs; `liars` sent the chunks that differ (all contributors when
    /// the length differs).
    Mismatch { sample: Sample, liars: Vec<PeerId> },
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

    /// A segment was delivered; `senders[i]` sent wire chunk `i` (`None`: the CDN). Draws
    /// whether to check it (only when a peer sent something). Returns true when queued.
    pub fn offer(
        &mut self,
        key: SegmentKey,
        url: &str,
        range: Option<ByteRange>,
        data: &[u8],
        senders: &[Option<PeerId>],
    ) -> bool {
        if !self.enabled() || senders.iter().all(Option::is_none) {
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
        let chunks = data
            .chunks(CHUNK_SIZE)
            .enumerate()
            .map(|(i, c)| (super::sha256(c), senders.get(i).copied().flatten()))
            .collect();
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Sample {
            key,
            url: url.to_string(),
            range,
            chunks,
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
            total: None,
            bad: Vec::new(),
            last_at: now,
        });
        Some(fetch)
    }

    pub fn owns(&self, id: HttpId) -> bool {
        self.running.as_ref().is_some_and(|r| r.id == id)
    }

    /// Bytes of the running transfer, in order; `total` as the host reported it.
    pub fn progress(&mut self, id: HttpId, mut bytes: &[u8], total: Option<u64>, now: Instant) {
        let Some(r) = self.running.as_mut().filter(|r| r.id == id) else {
            return;
        };
        r.last_at = now;
        if r.received == 0 && r.total.is_none() {
            r.total = total;
        }
        // Only the delivered copy's length is compared chunk by chunk; a different total
        // is decided in `done`.
        let len = r.total.unwrap_or(r.sample.size).min(r.sample.size);
        while !bytes.is_empty() && r.received < len {
            let chunk_end = (r.received / CHUNK + 1).saturating_mul(CHUNK).min(len);
            let want = usize::try_from(chunk_end - r.received).unwrap_or(usize::MAX);
            let (now_part, rest) = bytes.split_at(want.min(bytes.len()));
            r.hasher.update(now_part);
            r.received = r.received.saturating_add(now_part.len() as u64);
            bytes = rest;
            if r.received == chunk_end {
                let index = (chunk_end - 1) / CHUNK;
                let digest: [u8; 32] = std::mem::take(&mut r.hasher).finalize().into();
                let delivered = usize::try_from(index)
                    .ok()
                    .and_then(|i| r.sample.chunks.get(i));
                if delivered.is_none_or(|c| c.0 != digest) {
                    r.bad.push(index as u32);
                }
            }
        }
    }

    /// The running transfer completed: the verdict, or `None` when there is no proof either
    /// way (cut short, or only chunks the CDN itself had sent differ).
    pub fn done(&mut self, id: HttpId) -> Option<Verdict> {
        if !self.owns(id) {
            return None;
        }
        let r = self.running.take()?;
        if r.total.is_some_and(|t| t != r.sample.size) {
            let liars = r.sample.contributors();
            return Some(Verdict::Mismatch {
                sample: r.sample,
                liars,
            });
        }
        if r.received < r.sample.size {
            return None;
        }
        if r.bad.is_empty() {
            return Some(Verdict::Match(r.sample));
        }
        let mut liars: Vec<PeerId> = r
            .bad
            .iter()
            .filter_map(|&i| r.sample.chunks.get(i as usize).and_then(|c| c.1))
            .collect();
        liars.sort_unstable();
        liars.dedup();
        if liars.is_empty() {
            return None;
        }
        Some(Verdict::Mismatch {
            sample: r.sample,
            liars,
        })
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
    const Q: PeerId = PeerId([8; 20]);
    const ALL_P: &[Option<PeerId>] = &[Some(P); 8];

    #[test]
    fn ratio_zero_samples_nothing_and_one_samples_everything() {
        let mut off = SpotChecker::new(0.0, 1);
        let mut all = SpotChecker::new(1.0, 1);
        for seq in 0..4 {
            assert!(!off.offer(key(seq), "u", None, b"x", ALL_P));
            assert!(all.offer(key(seq), "u", None, b"x", ALL_P));
        }
        assert_eq!(off.queued(), 0);
        assert_eq!(all.queued(), 4);
        // Nothing from peers: nothing to check.
        assert!(!all.offer(key(9), "u", None, b"x", &[None]));
        assert!(!SpotChecker::new(f64::NAN, 1).enabled());
    }

    #[test]
    fn sampled_fraction_follows_the_ratio() {
        let mut s = SpotChecker::new(0.1, 42);
        let n = 20_000u64;
        let mut hits = 0u64;
        for seq in 0..n {
            if s.offer(key(seq), "u", None, b"x", ALL_P) {
                hits += 1;
            }
            s.pending.clear();
        }
        let frac = hits as f64 / n as f64;
        assert!((0.09..0.11).contains(&frac), "sampled {frac}");
    }

    /// Offers `delivered` (chunk senders `senders`), serves `cdn` in odd pieces with `total`.
    fn check(
        s: &mut SpotChecker,
        seq: u64,
        delivered: &[u8],
        senders: &[Option<PeerId>],
        cdn: &[u8],
        total: Option<u64>,
    ) -> Option<Verdict> {
        let id = HttpId(100 + seq as u32);
        assert!(s.offer(key(seq), "a.ts", None, delivered, senders));
        assert_eq!(s.start(id, Instant(0)), Some(("a.ts".to_string(), None)));
        for (i, piece) in cdn.chunks(9_999).enumerate() {
            s.progress(id, piece, if i == 0 { total } else { None }, Instant(0));
        }
        s.done(id)
    }

    fn liars(v: Option<Verdict>) -> Vec<PeerId> {
        match v {
            Some(Verdict::Mismatch { liars, .. }) => liars,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn only_the_senders_of_differing_chunks_are_blamed() {
        // 40000 bytes = 3 chunks: P sent 0 and 2, Q sent 1.
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let pqp = [Some(P), Some(Q), Some(P)];
        let n = Some(data.len() as u64);
        let mut s = SpotChecker::new(1.0, 7);
        assert!(matches!(
            check(&mut s, 1, &data, &pqp, &data, n),
            Some(Verdict::Match(_))
        ));
        let flip = |at: usize| {
            let mut d = data.clone();
            d[at] ^= 1;
            d
        };
        // The CDN is the reference: a chunk that differs there was altered by its sender.
        assert_eq!(
            liars(check(&mut s, 2, &flip(20_000), &pqp, &data, n)),
            vec![Q]
        );
        assert_eq!(
            liars(check(&mut s, 3, &flip(39_999), &pqp, &data, n)),
            vec![P]
        );
        // Also without a known length, as long as the body is complete.
        assert_eq!(
            liars(check(&mut s, 4, &flip(0), &pqp, &data, None)),
            vec![P]
        );
        // A different length: every contributor agreed on it.
        let longer = [&data[..], &[0]].concat();
        let mut both = vec![P, Q];
        both.sort_unstable();
        assert_eq!(
            liars(check(&mut s, 5, &data, &pqp, &longer, Some(40_001))),
            both
        );
        assert_eq!(
            liars(check(&mut s, 6, &data, &pqp, &data[..39_999], Some(39_999))),
            both
        );
        // Only a chunk the CDN itself sent differs: nobody to blame.
        let http_first = [None, Some(Q), Some(P)];
        assert_eq!(check(&mut s, 7, &flip(5), &http_first, &data, n), None);
        // Cut short: no verdict. Junk past the announced length: ignored.
        assert_eq!(check(&mut s, 8, &data, &pqp, &data[..100], None), None);
        assert!(matches!(
            check(&mut s, 9, &data, &pqp, &longer, n),
            Some(Verdict::Match(_))
        ));
        // Unknown ids are ignored.
        assert_eq!(s.done(HttpId(99)), None);
        assert!(!s.failed(HttpId(99)));
    }

    #[test]
    fn one_transfer_at_a_time_bounded_queue_and_no_verdict_on_failure() {
        let mut s = SpotChecker::new(1.0, 3);
        for seq in 0..(MAX_PENDING as u64 + 5) {
            s.offer(key(seq), "u", None, b"abc", ALL_P);
        }
        assert_eq!(s.queued(), MAX_PENDING);
        // The same segment twice is one sample.
        assert!(!s.offer(key(MAX_PENDING as u64 + 4), "u", None, b"abc", ALL_P));
        assert!(s.start(HttpId(1), Instant(0)).is_some());
        assert!(!s.wants_transfer());
        assert!(s.start(HttpId(2), Instant(0)).is_none());
        assert!(s.failed(HttpId(1)));
        assert!(s.wants_transfer());
        assert!(s.start(HttpId(3), Instant(0)).is_some());
        assert_eq!(s.stalled(Instant(STALL_MS - 1)), None);
        assert_eq!(s.stalled(Instant(STALL_MS)), Some(HttpId(3)));
        assert!(!s.owns(HttpId(3)));
    }
}
