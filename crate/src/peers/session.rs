//! One peer connection: handshake state, what the peer announced, measurements, strikes,
//! and the requests it made of us.
//!
//! Invariants: `avail` never holds more than `MAX_AVAIL` entries and `bits` never more
//! than `MAX_BIT_WORDS` words (oldest dropped first), so a peer cannot grow our memory by
//! announcing; a `Bitfield` costs one map update per 64 segments, not per segment (a
//! flood of them stays cheap); all counters saturate.

use super::scoring::{self, Ewma};
use crate::types::{ConnId, Instant, PeerId, SegmentKey, Seq, SwarmId};
use std::collections::BTreeMap;
use std::time::Duration;

/// `Absent` answers for announced segments, with no completed request between, per strike.
pub const ABSENTS_TO_STRIKE: u32 = 3;

/// Upper bound on availability entries remembered per peer.
pub const MAX_AVAIL: usize = crate::wire::MAX_ANNOUNCED_SEGMENTS;
/// Upper bound on 64-segment words of `Bitfield` availability remembered per peer.
pub const MAX_BIT_WORDS: usize = MAX_AVAIL / 64;
/// Requests a peer may have outstanding with us at once.
pub const MAX_UP_REQUESTS: usize = crate::wire::MAX_OUTSTANDING_REQUESTS;
/// Requests we keep outstanding with one peer.
pub const MAX_DOWN_REQUESTS: u32 = 4;
/// Completed requests that forgive one strike.
pub const FORGIVE_AFTER: u32 = 8;
/// Messages per second a peer may send before it is banned (a 15 KiB chunk each: ~60 MB/s).
pub const MAX_MSGS_PER_SEC: u32 = 4_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// `ConnectPeer` sent, data channel not open yet.
    Connecting,
    /// Channel open, our handshake sent, theirs not received.
    Open,
    /// Handshakes exchanged.
    Ready,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avail {
    pub size: Option<u32>,
    /// `Have` (complete) rather than `Downloading`.
    pub complete: bool,
}

/// A request a peer made of us, served chunk by chunk.
#[derive(Clone, Debug)]
pub struct UpRequest {
    pub id: u32,
    pub key: SegmentKey,
    pub next_chunk: u32,
    /// Exclusive; clamped to the segment's chunk count once known.
    pub end_chunk: u32,
    /// The store entry is pinned for this request (released when it ends).
    pub pinned: bool,
}

#[derive(Debug)]
pub struct Session {
    pub conn: ConnId,
    pub swarm: SwarmId,
    pub peer: PeerId,
    pub inbound: bool,
    pub state: PeerState,
    /// `Have`/`Downloading` announcements (with sizes).
    avail: BTreeMap<Seq, Avail>,
    /// `Bitfield` announcements: word `seq / 64`, bit `seq % 64` (complete, size unknown).
    bits: BTreeMap<u64, u64>,
    pub(super) strikes: u32,
    /// Stall marks: each halves the score and doubles the stall back-off; a completed
    /// request removes one. Never leads to a ban.
    pub(super) slow: u32,
    /// Requests abandoned because the peer sent nothing (cumulative, for stats).
    pub(super) stalls: u32,
    /// `Absent` answers for segments it had announced, since its last completed request.
    pub(super) absents: u32,
    pub throughput: Ewma,
    pub rtt: Ewma,
    /// Do not send requests before this (after `Busy`, a stall or a slow transfer).
    pub(super) backoff_until: Instant,
    /// Our requests outstanding with this peer.
    pub(super) down_reqs: u32,
    /// Their requests we are serving, in arrival order.
    pub up: Vec<UpRequest>,
    pub(super) ping: Option<(u32, Instant)>,
    pub(super) next_ping: Instant,
    pub down_bytes: u64,
    pub up_bytes: u64,
    /// Last `Data` from this peer (on any request).
    pub(super) last_data_at: Instant,
    /// Requests completed since the last forgiven strike.
    good: u32,
    msg_window: Instant,
    msg_count: u32,
    /// Our recent requests to this peer that ended before it answered them all: late
    /// `Data` for these is normal, `Data` for any other id was never asked for.
    released: std::collections::VecDeque<u32>,
    /// Segments we announced to this peer (`Bitfield`, `Have`, `Downloading`) and have not
    /// withdrawn: only these need a `Lost` when we drop them. At most `MAX_AVAIL` entries;
    /// anything below `told_floor` was dropped from the set and counts as announced.
    told: std::collections::BTreeSet<Seq>,
    told_floor: Seq,
    /// What `holds` answers for the 64 segments up to `win_top`, kept inside the session so
    /// the scheduler's per-peer checks do not walk two maps each (bit `i` = `win_top - i`):
    /// held at all, and held complete.
    win_top: Seq,
    win_held: u64,
    win_full: u64,
    /// The peer has announced something (kept when the announcements are later forgotten).
    heard: bool,
    /// Capability bits of its `Handshake`.
    caps: u32,
    /// Segments the peer announced as `Incoming` (on their way from its own peers), with
    /// their hop counts, not yet followed by `Have`, `Downloading` or `Lost`. At most
    /// `MAX_INCOMING` entries.
    incoming: BTreeMap<Seq, u8>,
}

/// `Incoming` announcements remembered per peer (the newest win): a live viewer has a few
/// segments in flight at once.
pub const MAX_INCOMING: usize = 16;

/// How many ended request ids are remembered per peer (late data comes within a round trip).
const RELEASED_IDS: usize = 64;

impl Session {
    pub fn new(conn: ConnId, swarm: SwarmId, peer: PeerId, inbound: bool, now: Instant) -> Self {
        Session {
            conn,
            swarm,
            peer,
            inbound,
            state: PeerState::Connecting,
            avail: BTreeMap::new(),
            bits: BTreeMap::new(),
            strikes: 0,
            slow: 0,
            stalls: 0,
            absents: 0,
            throughput: Ewma::default(),
            rtt: Ewma::default(),
            backoff_until: now,
            down_reqs: 0,
            up: Vec::new(),
            ping: None,
            next_ping: now,
            down_bytes: 0,
            up_bytes: 0,
            last_data_at: now,
            good: 0,
            msg_window: now,
            msg_count: 0,
            released: std::collections::VecDeque::new(),
            told: std::collections::BTreeSet::new(),
            told_floor: 0,
            win_top: 0,
            win_held: 0,
            win_full: 0,
            heard: false,
            caps: 0,
            incoming: BTreeMap::new(),
        }
    }

    /// The capability bits the peer's `Handshake` announced.
    pub fn set_capabilities(&mut self, caps: u32) {
        self.caps = caps;
    }

    /// Whether the peer's `Handshake` announced all of `caps`.
    pub fn has_capabilities(&self, caps: u32) -> bool {
        self.caps & caps == caps
    }

    /// `Incoming`: the peer is getting `seq` from its own peers and will announce it.
    pub fn announce_incoming(&mut self, seq: Seq, hops: u8) {
        self.heard = true;
        if self.holds(seq).is_some() {
            return;
        }
        self.incoming.insert(seq, hops);
        while self.incoming.len() > MAX_INCOMING {
            self.incoming.pop_first();
        }
    }

    /// The hops of the peer's `Incoming` for `seq`, if it announced one (and nothing since).
    pub fn incoming_hops(&self, seq: Seq) -> Option<u8> {
        self.incoming.get(&seq).copied()
    }

    /// Our request `id` to this peer ended (cancelled, abandoned or complete).
    pub fn note_released(&mut self, id: u32) {
        if self.released.len() >= RELEASED_IDS {
            self.released.pop_front();
        }
        self.released.push_back(id);
    }

    /// Whether `id` is one of our recent requests to this peer that has ended.
    pub fn was_released(&self, id: u32) -> bool {
        self.released.contains(&id)
    }

    pub fn score(&self) -> f64 {
        scoring::score(
            self.throughput.get(),
            self.rtt.get(),
            self.strikes.saturating_add(self.slow),
        )
    }

    /// Counts one incoming message; false when the peer exceeds the message rate.
    pub fn count_message(&mut self, now: Instant) -> bool {
        if now.as_millis().saturating_sub(self.msg_window.as_millis()) >= 1000 {
            self.msg_window = now;
            self.msg_count = 0;
        }
        self.msg_count = self.msg_count.saturating_add(1);
        self.msg_count <= MAX_MSGS_PER_SEC
    }

    /// The handshake's transport is up: our `Handshake` goes out.
    pub fn opened(&mut self) {
        self.state = PeerState::Open;
    }

    /// We asked this peer for chunks.
    pub fn request_sent(&mut self) {
        self.down_reqs = self.down_reqs.saturating_add(1);
    }

    /// Our request `id` to this peer ended before it answered it all (cancelled, abandoned,
    /// or the segment was dropped).
    pub fn request_released(&mut self, id: u32) {
        self.down_reqs = self.down_reqs.saturating_sub(1);
        self.note_released(id);
    }

    /// `Data` from this peer: `bytes` of payload at `now`.
    pub fn data_received(&mut self, bytes: u64, now: Instant) {
        self.down_bytes = self.down_bytes.saturating_add(bytes);
        self.last_data_at = now;
    }

    pub fn strikes(&self) -> u32 {
        self.strikes
    }

    /// Requests abandoned because the peer sent nothing (cumulative).
    pub fn stalls(&self) -> u32 {
        self.stalls
    }

    /// Our requests outstanding with this peer.
    pub fn down_reqs(&self) -> u32 {
        self.down_reqs
    }

    /// One more strike; returns the count.
    pub fn add_strike(&mut self) -> u32 {
        self.strikes = self.strikes.saturating_add(1);
        self.strikes
    }

    /// `Absent` for a segment it had announced. An honest peer may evict between its
    /// announce and our request; only a run of `ABSENTS_TO_STRIKE` (no completed request in
    /// between) looks like lying: true then, and the run starts again.
    pub fn absent_after_announce(&mut self) -> bool {
        self.absents = self.absents.saturating_add(1);
        if self.absents < ABSENTS_TO_STRIKE {
            return false;
        }
        self.absents = 0;
        true
    }

    /// `Busy`: no requests before `retry_after_ms` (at least 100 ms) from `now`.
    pub fn busy(&mut self, now: Instant, retry_after_ms: u16) {
        self.backoff_until = now + Duration::from_millis(u64::from(retry_after_ms).max(100));
    }

    /// `Pong`: true if it answers our outstanding `Ping` (the RTT is sampled).
    pub fn pong(&mut self, nonce: u32, now: Instant) -> bool {
        match self.ping {
            Some((n, sent)) if n == nonce => {
                self.rtt
                    .sample(now.as_millis().saturating_sub(sent.as_millis()) as f64);
                self.ping = None;
                true
            }
            _ => false,
        }
    }

    /// We gave up on a request that ran `elapsed_ms` and brought `bytes`. Its rate is a
    /// throughput sample; if the peer sent nothing at all for `stall_ms` (`stalled`), a stall
    /// mark. Either way a back-off of twice `stall_ms`, doubled per stall mark (up to 16x).
    pub fn gave_up(
        &mut self,
        now: Instant,
        bytes: u64,
        elapsed_ms: f64,
        stalled: bool,
        stall_ms: u64,
    ) {
        let ms = Duration::from_millis;
        self.throughput.sample(bytes as f64 * 1000.0 / elapsed_ms);
        if stalled && now >= self.last_data_at + ms(stall_ms) {
            self.slow = self.slow.saturating_add(1);
            self.stalls = self.stalls.saturating_add(1);
        }
        let factor = 1u64 << self.slow.min(4);
        self.backoff_until = now + ms(stall_ms.saturating_mul(2).saturating_mul(factor));
    }

    /// A request of ours completed: every `FORGIVE_AFTER` of them forgive one strike, so an
    /// honest peer that stalled now and then (a busy uplink) is not banned over a long session.
    pub fn completed_request(&mut self) {
        self.slow = self.slow.saturating_sub(1);
        self.absents = 0;
        self.good = self.good.saturating_add(1);
        if self.good >= FORGIVE_AFTER {
            self.good = 0;
            self.strikes = self.strikes.saturating_sub(1);
        }
    }

    pub fn announce(&mut self, seq: Seq, avail: Avail) {
        self.heard = true;
        self.incoming.remove(&seq);
        self.avail.insert(seq, avail);
        let mut popped = false;
        while self.avail.len() > MAX_AVAIL {
            popped |= self.avail.pop_first().is_some();
        }
        self.raise_window(seq);
        if popped {
            self.rebuild_window();
        } else {
            self.refresh_bit(seq);
        }
    }

    /// Adds a `Bitfield` (bit `i`, most significant first in each byte, is `base + i`).
    pub fn announce_bits(&mut self, base: Seq, bytes: &[u8]) {
        self.heard = true;
        let mut top = None;
        'bytes: for (i, byte) in bytes.iter().enumerate() {
            if *byte == 0 {
                continue;
            }
            for bit in 0..8u64 {
                if byte & (0x80 >> bit) == 0 {
                    continue;
                }
                let Some(seq) = base.checked_add(i as u64 * 8 + bit) else {
                    break 'bytes;
                };
                *self.bits.entry(seq / 64).or_insert(0) |= 1 << (seq % 64);
                top = Some(seq);
            }
        }
        while self.bits.len() > MAX_BIT_WORDS {
            self.bits.pop_first();
        }
        if let Some(top) = top {
            self.raise_window(top);
        }
        self.rebuild_window();
    }

    /// Moves the window's top up to `seq` (segments falling out of it are answered from the
    /// maps again).
    fn raise_window(&mut self, seq: Seq) {
        if seq <= self.win_top {
            return;
        }
        let k = seq - self.win_top;
        if k >= 64 {
            self.win_held = 0;
            self.win_full = 0;
        } else {
            self.win_held <<= k;
            self.win_full <<= k;
        }
        self.win_top = seq;
    }

    fn window_bit(&self, seq: Seq) -> Option<u64> {
        let d = self.win_top.checked_sub(seq)?;
        (d < 64).then(|| 1u64 << d)
    }

    fn refresh_bit(&mut self, seq: Seq) {
        let Some(b) = self.window_bit(seq) else {
            return;
        };
        let a = self.holds_in_maps(seq);
        self.win_held = if a.is_some() {
            self.win_held | b
        } else {
            self.win_held & !b
        };
        let full = a.is_some_and(|a| a.complete);
        self.win_full = if full {
            self.win_full | b
        } else {
            self.win_full & !b
        };
    }

    fn rebuild_window(&mut self) {
        for d in 0..64 {
            if let Some(seq) = self.win_top.checked_sub(d) {
                self.refresh_bit(seq);
            }
        }
    }

    /// We announced `seq` to this peer.
    pub fn note_told(&mut self, seq: Seq) {
        if seq < self.told_floor {
            return;
        }
        self.told.insert(seq);
        while self.told.len() > MAX_AVAIL {
            if let Some(first) = self.told.pop_first() {
                self.told_floor = self.told_floor.max(first.saturating_add(1));
            }
        }
    }

    /// We withdraw `seq`: true if this peer may believe we hold it (so it needs the `Lost`).
    pub fn take_told(&mut self, seq: Seq) -> bool {
        self.told.remove(&seq) || seq < self.told_floor
    }

    /// Forgets `seq` (after `Lost` or `Absent`); true if it had been announced.
    pub fn forget(&mut self, seq: Seq) -> bool {
        self.incoming.remove(&seq);
        let mut had = self.avail.remove(&seq).is_some();
        if let Some(w) = self.bits.get_mut(&(seq / 64)) {
            let mask = 1u64 << (seq % 64);
            had |= *w & mask != 0;
            *w &= !mask;
            if *w == 0 {
                self.bits.remove(&(seq / 64));
            }
        }
        self.refresh_bit(seq);
        had
    }

    /// Forgets every announcement below `seq` (segments that left the live window: nobody
    /// asks for them any more, and a peer that still holds them owes us no `Lost`).
    pub fn forget_below(&mut self, seq: Seq) {
        // Entry by entry: few fall out per call, and `split_off` would build a new tree.
        while let Some(e) = self.avail.first_entry().filter(|e| *e.key() < seq) {
            e.remove();
        }
        while let Some(e) = self.incoming.first_entry().filter(|e| *e.key() < seq) {
            e.remove();
        }
        while let Some(e) = self.bits.first_entry().filter(|e| *e.key() < seq / 64) {
            e.remove();
        }
        if let Some(w) = self.bits.get_mut(&(seq / 64)) {
            *w &= u64::MAX << (seq % 64);
            if *w == 0 {
                self.bits.remove(&(seq / 64));
            }
        }
        // Window bit i is `win_top - i`: keep the bits of seqs >= `seq`.
        let keep = match self.win_top.checked_sub(seq) {
            None => 0,
            Some(d) if d >= 63 => u64::MAX,
            Some(d) => (1u64 << (d + 1)) - 1,
        };
        self.win_held &= keep;
        self.win_full &= keep;
    }

    /// Whether we may send this peer a request now.
    pub fn can_request(&self, now: Instant) -> bool {
        self.state == PeerState::Ready
            && now >= self.backoff_until
            && self.down_reqs < MAX_DOWN_REQUESTS
    }

    /// Whether the peer told us anything it holds yet (a `Bitfield`, `Have` or `Downloading`).
    pub fn announced_any(&self) -> bool {
        self.heard
    }

    /// What the peer announced of `seq`: `Have`/`Downloading` (with size) or a `Bitfield`.
    pub fn holds(&self, seq: Seq) -> Option<Avail> {
        if self.window_bit(seq).is_some_and(|b| self.win_held & b == 0) {
            return None;
        }
        self.holds_in_maps(seq)
    }

    /// Whether the peer announced `seq`, and if so whether all of it; answered without the
    /// maps for recent segments.
    pub fn holds_complete(&self, seq: Seq) -> Option<bool> {
        match self.window_bit(seq) {
            Some(b) => (self.win_held & b != 0).then_some(self.win_full & b != 0),
            None => self.holds_in_maps(seq).map(|a| a.complete),
        }
    }

    fn holds_in_maps(&self, seq: Seq) -> Option<Avail> {
        if let Some(a) = self.avail.get(&seq) {
            return Some(*a);
        }
        let w = self.bits.get(&(seq / 64))?;
        (w & (1u64 << (seq % 64)) != 0).then_some(Avail {
            size: None,
            complete: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> Session {
        Session::new(
            ConnId(1),
            SwarmId([1; 20]),
            PeerId([2; 20]),
            false,
            Instant::from_millis(0),
        )
    }

    #[test]
    fn availability_is_bounded() {
        let mut s = session();
        for seq in 0..(MAX_AVAIL as u64 + 10) {
            s.announce(
                seq,
                Avail {
                    size: None,
                    complete: true,
                },
            );
        }
        assert_eq!(s.avail.len(), MAX_AVAIL);
        assert!(s.holds(0).is_none());
        assert!(s.holds(MAX_AVAIL as u64 + 9).is_some());
    }

    #[test]
    fn bitfields_are_bounded_and_forgettable() {
        let mut s = session();
        s.announce_bits(100, &[0b1010_0000, 0x01]);
        assert!(s.holds(100).is_some() && s.holds(102).is_some() && s.holds(115).is_some());
        assert!(s.holds(101).is_none() && s.holds(99).is_none());
        assert!(s.forget(102));
        assert!(!s.forget(102));
        assert!(s.holds(102).is_none());
        for k in 0..4u64 {
            s.announce_bits(k * 8192 + 1_000_000, &[0xFF; 1024]);
        }
        assert!(s.bits.len() <= MAX_BIT_WORDS);
        assert!(s.holds(3 * 8192 + 1_000_000).is_some());
        assert!(s.holds(100).is_none());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Announce(Seq, bool),
        Bits(Seq, Vec<u8>),
        Forget(Seq),
        ForgetBelow(Seq),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Seqs around a moving live edge, with jumps far back and far ahead (past the
        // 64-segment window and the map bounds).
        let seq = prop_oneof![
            8 => 0u64..200,
            1 => 0u64..40_000,
        ];
        prop_oneof![
            5 => (seq.clone(), any::<bool>()).prop_map(|(q, c)| Op::Announce(q, c)),
            1 => (seq.clone(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(q, b)| Op::Bits(q, b)),
            3 => seq.clone().prop_map(Op::Forget),
            1 => seq.prop_map(Op::ForgetBelow),
        ]
    }

    proptest! {
        /// The in-session window answers exactly what the maps say.
        #[test]
        fn window_agrees_with_the_maps(ops in proptest::collection::vec(op(), 1..200)) {
            let mut s = session();
            for op in ops {
                match op {
                    Op::Announce(q, complete) => s.announce(q, Avail { size: Some(1), complete }),
                    Op::Bits(q, b) => s.announce_bits(q, &b),
                    Op::Forget(q) => {
                        s.forget(q);
                    }
                    Op::ForgetBelow(q) => {
                        s.forget_below(q);
                        prop_assert!(s.avail.range(..q).next().is_none());
                        prop_assert!(s.bits.range(..q / 64).next().is_none());
                        for x in q.saturating_sub(130)..q {
                            prop_assert_eq!(s.holds_in_maps(x), None);
                        }
                    }
                }
                let top = s.win_top;
                for q in top.saturating_sub(70)..=top.saturating_add(3) {
                    let truth = s.holds_in_maps(q);
                    prop_assert_eq!(s.holds(q), truth);
                    prop_assert_eq!(s.holds_complete(q), truth.map(|a| a.complete));
                }
            }
        }
    }

    #[test]
    fn completed_requests_forgive_strikes() {
        let mut s = session();
        s.strikes = 2;
        for _ in 0..FORGIVE_AFTER - 1 {
            s.completed_request();
        }
        assert_eq!(s.strikes, 2);
        s.completed_request();
        assert_eq!(s.strikes, 1);
        for _ in 0..3 * FORGIVE_AFTER {
            s.completed_request();
        }
        assert_eq!(s.strikes, 0);
    }

    #[test]
    fn message_rate_limit_resets_each_second() {
        let mut s = session();
        let t = Instant::from_millis(10);
        for _ in 0..MAX_MSGS_PER_SEC {
            assert!(s.count_message(t));
        }
        assert!(!s.count_message(t));
        assert!(s.count_message(Instant::from_millis(1010)));
    }

    #[test]
    fn requests_gated_by_state_backoff_and_outstanding() {
        let mut s = session();
        let now = Instant::from_millis(100);
        assert!(!s.can_request(now));
        s.state = PeerState::Ready;
        assert!(s.can_request(now));
        s.backoff_until = Instant::from_millis(200);
        assert!(!s.can_request(now));
        assert!(s.can_request(Instant::from_millis(200)));
        s.down_reqs = MAX_DOWN_REQUESTS;
        assert!(!s.can_request(Instant::from_millis(200)));
    }
}
