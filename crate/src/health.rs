//! CDN path health from HTTP goodput: can the CDN deliver what the viewer plays in real time?
//!
//! The engine reports, before it handles each input, how long HTTP bodies were flowing since
//! the last report and the highest play rate (bit/s) among the segments they carried
//! ([`Goodput::advance`]), then every body byte after a transfer's first piece
//! ([`Goodput::bytes`]). [`Goodput::verdict`] compares the bytes of the last `WINDOW_MS` of
//! flowing time with what that play rate needs over the same time.
//!
//! Invariants:
//! - Time before a transfer's first byte is not flowing time (the engine's no-first-byte
//!   check owns it), and a silence longer than `GAP_MS` counts as `GAP_MS` (the stall check
//!   owns it): this measures the rate while bytes flow, so a stall that ends is not held
//!   against the path's throughput.
//! - No verdict on less than `MIN_EVIDENCE_MS` of flowing time, and spans older than
//!   `STALE_MS` are forgotten: a fast CDN gives almost no flowing time, hence no verdict.
//! - Concurrent transfers are judged together (their aggregate against the highest play
//!   rate): two segments fetched side by side at 0.6x each keep up with the player.
//! - Memory is bounded (`MAX_SPANS`), arithmetic saturates, no timers of its own.

use crate::types::Instant;
use std::collections::VecDeque;
use std::time::Duration;

/// Flowing time judged by one verdict.
pub const WINDOW_MS: u64 = 2_000;
/// Flowing time needed before any verdict: a throttled path is noticed about this long
/// after its bytes start to arrive.
pub const MIN_EVIDENCE_MS: u64 = 500;
/// A silence between body bytes counts at most this much flowing time.
pub const GAP_MS: u64 = 1_000;
/// Spans that ended longer ago than this are not evidence any more.
pub const STALE_MS: u64 = 4_000;
/// Slow: goodput below this fraction of the play rate (the player would drain its buffer).
pub const SLOW_RATIO: f64 = 1.0;
/// A transfer shows the path is fine again at this fraction of the play rate or more.
pub const RECOVER_RATIO: f64 = 1.25;
/// Spans shorter than this are merged with the next report.
const BUCKET_MS: u64 = 100;
const MAX_SPANS: usize = 128;

#[derive(Clone, Copy, Debug)]
struct Span {
    end: Instant,
    flow_ms: u64,
    bytes: u64,
    /// Bytes the play rate needs over `flow_ms`.
    need: f64,
}

/// What a slow verdict saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slow {
    pub goodput_bps: f64,
    pub need_bps: f64,
}

/// Sliding goodput window over HTTP body flow (see the module header).
#[derive(Debug, Default)]
pub struct Goodput {
    spans: VecDeque<Span>,
    last: Option<Instant>,
    last_byte: Option<Instant>,
}

impl Goodput {
    /// Accounts the time since the previous call. `need_bps`: the highest play rate among
    /// transfers that had received their first byte during that time (`None`: none had).
    pub fn advance(&mut self, now: Instant, need_bps: Option<f64>) {
        let last = self.last.replace(now);
        let (Some(last), Some(need), Some(byte)) = (last, need_bps, self.last_byte) else {
            return;
        };
        let end = now.as_millis().min(byte.as_millis().saturating_add(GAP_MS));
        let dt = end.saturating_sub(last.as_millis());
        if dt == 0 || !need.is_finite() || need <= 0.0 {
            return;
        }
        let need_bytes = need * dt as f64 / 8_000.0;
        match self.spans.back_mut() {
            Some(s) if s.flow_ms < BUCKET_MS => {
                s.end = now;
                s.flow_ms = s.flow_ms.saturating_add(dt);
                s.need += need_bytes;
            }
            _ => {
                if self.spans.len() >= MAX_SPANS {
                    self.spans.pop_front();
                }
                self.spans.push_back(Span {
                    end: now,
                    flow_ms: dt,
                    bytes: 0,
                    need: need_bytes,
                });
            }
        }
    }

    /// A transfer received its first piece: flowing time starts now (its bytes are not
    /// counted, they measure latency, not rate).
    pub fn first_byte(&mut self, now: Instant) {
        self.last_byte = Some(now);
    }

    /// `n` body bytes arrived (after the transfer's first piece), at the time of the last
    /// `advance`.
    pub fn bytes(&mut self, now: Instant, n: u64) {
        self.last_byte = Some(now);
        // Without a span (no flowing time yet) there is nothing to measure them against.
        if let Some(s) = self.spans.back_mut() {
            s.bytes = s.bytes.saturating_add(n);
        }
    }

    /// Slow if the last `WINDOW_MS` of recent flowing time carried less than `SLOW_RATIO`
    /// of what the play rate needs; `None` if fine or not enough evidence.
    pub fn verdict(&mut self, now: Instant) -> Option<Slow> {
        let horizon = now.as_millis().saturating_sub(STALE_MS);
        while self
            .spans
            .front()
            .is_some_and(|s| s.end.as_millis() < horizon)
        {
            self.spans.pop_front();
        }
        let (mut flow, mut bytes, mut need) = (0u64, 0.0f64, 0.0f64);
        for s in self.spans.iter().rev() {
            let left = WINDOW_MS.saturating_sub(flow);
            if left == 0 {
                break;
            }
            // The oldest span counted only in part: scale it (bytes arrive evenly enough
            // within a span of at most a bucket or a gap).
            let part = if s.flow_ms > left {
                left as f64 / s.flow_ms as f64
            } else {
                1.0
            };
            flow = flow.saturating_add(s.flow_ms.min(left));
            bytes += s.bytes as f64 * part;
            need += s.need * part;
        }
        if flow < MIN_EVIDENCE_MS || need <= 0.0 || bytes >= SLOW_RATIO * need {
            return None;
        }
        let secs = flow as f64 / 1_000.0;
        Some(Slow {
            goodput_bps: bytes * 8.0 / secs,
            need_bps: need * 8.0 / secs,
        })
    }

    /// Forgets all evidence (the path recovered: old slow spans must not re-trigger).
    pub fn reset(&mut self) {
        self.spans.clear();
    }
}

/// Whether one finished transfer shows a healthy path for segments playing at `need_bps`:
/// `bytes` in `total_ms` from request to end, of which `flow_bytes` came in `flow_ms` of
/// flowing time after the first piece. Either rate at `RECOVER_RATIO` or better will do (the
/// whole-transfer one judges small bodies that arrive in one piece, the flowing one a body
/// that stalled once and then came fast). Unknown play rate: healthy.
pub fn transfer_healthy(
    (flow_ms, flow_bytes): (u64, u64),
    (total_ms, bytes): (u64, u64),
    need_bps: Option<f64>,
) -> bool {
    let Some(need) = need_bps.filter(|n| n.is_finite() && *n > 0.0) else {
        return true;
    };
    let fast = |ms: u64, b: u64| b as f64 * 8_000.0 / ms.max(1) as f64 >= RECOVER_RATIO * need;
    fast(total_ms, bytes) || (flow_ms >= BUCKET_MS && fast(flow_ms, flow_bytes))
}

/// After the CDN fails, how long peers come first before HTTP is tried again: for a segment
/// whose HTTP transfer failed, and, while the path is degraded, for urgent segments (the
/// next HTTP transfer after it probes the path).
pub const CDN_RETRY_MS: u64 = 4_000;

/// The viewer's view of its CDN path: degraded or not, when to probe it again, the last
/// HTTP segment time, and the goodput window. The engine reports what its transfers do and
/// reacts (events, announcements) to what this decides.
#[derive(Debug, Default)]
pub struct CdnHealth {
    /// Degraded since (`CdnDegraded` was emitted).
    degraded: Option<Instant>,
    /// While degraded, urgent segments go to peers first until this; the next HTTP
    /// transfer started after it is the recovery probe.
    probe_at: Option<Instant>,
    /// How long the last segment fetched over HTTP took, request to last byte.
    last_transfer_ms: Option<u64>,
    goodput: Goodput,
}

impl CdnHealth {
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }

    /// Degraded and not yet due for a probe: urgent segments should come from peers.
    pub fn prefers_peers(&self, now: Instant) -> bool {
        self.degraded.is_some() && self.probe_at.is_none_or(|t| now < t)
    }

    /// The path failed or stalled. True when this degrades a healthy path (report it once).
    /// Even a viewer that peers serve entirely probes the CDN now and then: without an
    /// HTTP transfer it could never see the path recover.
    pub fn trouble(&mut self, now: Instant) -> bool {
        if self.degraded.is_some() {
            return false;
        }
        self.degraded = Some(now);
        self.probe_at = Some(now + Duration::from_millis(CDN_RETRY_MS));
        true
    }

    /// A transfer showed a healthy path. True when this ends a degradation.
    pub fn ok(&mut self) -> bool {
        self.probe_at = None;
        self.goodput.reset();
        self.degraded.take().is_some()
    }

    /// An HTTP transfer starts: while degraded, it is the probe, and the next one waits.
    pub fn transfer_started(&mut self, now: Instant) {
        if self.degraded.is_some() {
            self.probe_at = Some(now + Duration::from_millis(CDN_RETRY_MS));
        }
    }

    /// A segment's whole HTTP time, request to last byte (the engine's or the player's).
    pub fn note_transfer_ms(&mut self, ms: u64) {
        self.last_transfer_ms = Some(ms);
    }

    pub fn last_transfer_ms(&self) -> Option<u64> {
        self.last_transfer_ms
    }

    /// The goodput window ([`Goodput::advance`], [`Goodput::first_byte`], [`Goodput::bytes`]).
    pub fn goodput(&mut self) -> &mut Goodput {
        &mut self.goodput
    }

    /// A healthy path whose bodies arrive slower than the media plays (see [`Goodput`]).
    pub fn slow_goodput(&mut self, now: Instant) -> Option<Slow> {
        if self.degraded.is_some() {
            return None;
        }
        self.goodput.verdict(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BITRATE: f64 = 1_000_000.0; // 125 kB/s

    /// Feeds a transfer delivering `rate` bytes/s in pieces of `piece` bytes from `start`
    /// for `dur_ms`, the way the engine does; returns the first verdict and its time.
    fn run(rate: u64, piece: u64, start: u64, dur_ms: u64) -> Option<(u64, Slow)> {
        let mut g = Goodput::default();
        let every = (piece * 1_000).div_ceil(rate);
        g.advance(Instant(start), None);
        g.first_byte(Instant(start));
        let mut t = start;
        while t + every <= start + dur_ms {
            t += every;
            g.advance(Instant(t), Some(BITRATE));
            g.bytes(Instant(t), piece);
            if let Some(v) = g.verdict(Instant(t)) {
                return Some((t - start, v));
            }
        }
        None
    }

    #[test]
    fn throttled_path_is_slow_within_about_a_second() {
        // Half the bitrate, 32 kB pieces every 0.5 s.
        let (after, v) = run(62_500, 32 * 1024, 1_000, 10_000).expect("never judged slow");
        assert!(after <= 1_200, "noticed after {after} ms");
        assert!((v.goodput_bps - 500_000.0).abs() < 50_000.0, "{v:?}");
        assert!((v.need_bps - BITRATE).abs() < 1.0, "{v:?}");
    }

    #[test]
    fn path_above_the_bitrate_is_never_slow() {
        // 1.3x the bitrate for 20 s of continuous flow: plenty of evidence, all fine.
        assert_eq!(run(162_500, 16 * 1024, 0, 20_000), None);
    }

    #[test]
    fn fast_transfers_give_no_verdict() {
        // A segment at 20x the bitrate every 2 s: flowing time never adds up to evidence.
        let mut g = Goodput::default();
        for seg in 0..20u64 {
            let t0 = seg * 2_000;
            g.advance(Instant(t0), None);
            g.first_byte(Instant(t0));
            for k in 1..=8 {
                let t = t0 + k * 12;
                g.advance(Instant(t), Some(BITRATE));
                g.bytes(Instant(t), 32 * 1024);
                assert_eq!(g.verdict(Instant(t)), None);
            }
            // Done: nothing flows until the next one.
            g.advance(Instant(t0 + 1_000), None);
        }
        // Even a slow reading would need evidence: 20 transfers of ~100 ms inside
        // `STALE_MS` hold at most ~200 ms of flowing time.
    }

    #[test]
    fn a_stall_that_ends_is_not_a_throughput_problem() {
        // Flow at 4x, 10 s of silence, then 4x again: the silence counts `GAP_MS` only.
        let mut g = Goodput::default();
        g.advance(Instant(0), None);
        g.first_byte(Instant(0));
        let mut t = 0;
        for _ in 0..4 {
            t += 64;
            g.advance(Instant(t), Some(BITRATE));
            g.bytes(Instant(t), 32 * 1024);
        }
        t += 10_000;
        g.advance(Instant(t), Some(BITRATE));
        g.bytes(Instant(t), 32 * 1024);
        let resumed = t;
        for _ in 0..30 {
            t += 64;
            g.advance(Instant(t), Some(BITRATE));
            g.bytes(Instant(t), 32 * 1024);
            // Counted in full, the silence would hold the window below the bitrate for
            // as long as the window lasts; capped, half a second of flow outweighs it.
            if t >= resumed + 500 {
                assert_eq!(g.verdict(Instant(t)), None, "at {t}");
            }
        }
    }

    #[test]
    fn old_evidence_goes_stale_and_reset_forgets() {
        let mut g = Goodput::default();
        g.advance(Instant(0), None);
        g.first_byte(Instant(0));
        // 1.5 s at a quarter of the bitrate.
        for k in 1..=6u64 {
            g.advance(Instant(k * 250), Some(BITRATE));
            g.bytes(Instant(k * 250), 7_800);
        }
        assert!(g.verdict(Instant(1_500)).is_some());
        assert_eq!(g.verdict(Instant(1_500 + STALE_MS + 1)), None);
        for k in 7..=12u64 {
            g.advance(Instant(k * 250), Some(BITRATE));
            g.bytes(Instant(k * 250), 7_800);
        }
        assert!(g.verdict(Instant(3_000)).is_some());
        g.reset();
        assert_eq!(g.verdict(Instant(3_000)), None);
    }

    #[test]
    fn concurrent_transfers_count_together() {
        // Two transfers at 0.6x each share the time: 1.2x in all, not slow.
        let mut g = Goodput::default();
        g.advance(Instant(0), None);
        g.first_byte(Instant(0));
        for k in 1..=40u64 {
            g.advance(Instant(k * 100), Some(BITRATE));
            g.bytes(Instant(k * 100), 7_500);
            g.bytes(Instant(k * 100), 7_500);
            assert_eq!(g.verdict(Instant(k * 100)), None);
        }
    }

    #[test]
    fn no_play_rate_no_verdict() {
        let mut g = Goodput::default();
        g.advance(Instant(0), None);
        g.first_byte(Instant(0));
        for k in 1..=20u64 {
            g.advance(Instant(k * 100), None);
            g.bytes(Instant(k * 100), 10);
            assert_eq!(g.verdict(Instant(k * 100)), None);
        }
        g.advance(Instant(3_000), Some(f64::NAN));
        assert_eq!(g.verdict(Instant(3_000)), None);
    }

    #[test]
    fn transfer_health() {
        let b = Some(BITRATE);
        // 250 kB in 200 ms: fast.
        assert!(transfer_healthy((150, 200_000), (200, 250_000), b));
        // 1 s at exactly the bitrate: not enough margin.
        assert!(!transfer_healthy((1_000, 125_000), (1_100, 130_000), b));
        // A 16 kB body in one piece after 200 ms (throttled): no flowing time, and slow.
        assert!(!transfer_healthy((0, 0), (200, 16_384), b));
        // The same body after 20 ms: fine.
        assert!(transfer_healthy((0, 0), (20, 16_384), b));
        // Stalled for 5 s, then 250 kB at 4x: the flowing rate shows the path is back.
        assert!(transfer_healthy((1_500, 240_000), (6_500, 250_000), b));
        assert!(transfer_healthy((1_000, 1), (1_000, 1), None));
    }

    #[test]
    fn cdn_health_degrades_once_probes_after_the_retry_time_and_recovers() {
        let t = Instant::from_millis;
        let mut h = CdnHealth::default();
        assert!(!h.prefers_peers(t(0)));
        assert!(h.trouble(t(1_000)));
        assert!(!h.trouble(t(1_500)), "reported once");
        assert!(h.is_degraded());
        assert!(h.prefers_peers(t(1_000 + CDN_RETRY_MS - 1)));
        assert!(!h.prefers_peers(t(1_000 + CDN_RETRY_MS)), "probe due");
        h.transfer_started(t(6_000));
        assert!(
            h.prefers_peers(t(6_000 + CDN_RETRY_MS - 1)),
            "the next probe waits"
        );
        assert!(
            h.slow_goodput(t(7_000)).is_none(),
            "no verdict while degraded"
        );
        assert!(h.ok());
        assert!(!h.ok(), "recovered once");
        assert!(!h.prefers_peers(t(7_000)));
    }
}
