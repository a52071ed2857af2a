//! Memory-bounded segment cache.
//!
//! Invariants: `used_bytes() <= budget` after every call; eviction prefers segments that
//! slid out of the live window, then those behind the playhead (oldest first), then those
//! furthest ahead; a pinned segment (being uploaded or delivered) is never evicted.
//!
//! Within one of those three classes, swarms whose playhead was set least recently give
//! up their segments first (a swarm that never had a playhead comes first): after a level
//! switch the rendition no longer played is emptied before the one being watched. An
//! insert never evicts a segment that the policy would keep in preference to the new one;
//! in that case (or when pins leave too little room) the new segment is the one dropped,
//! and nothing else is touched. Everything is deterministic (no hashing order involved).

use crate::types::{DeliveryTiming, SegmentKey, Seq, SwarmId};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A cached segment's bytes. Reference-counted so that a host running many engines in one
/// process (the simulator) can hand them one shared copy of identical bytes
/// (`Engine::set_shared_copies`); a browser's engine owns each buffer alone.
pub type SegmentBytes = Rc<Vec<u8>>;

pub struct Store {
    budget: u64,
    used: u64,
    swarms: BTreeMap<SwarmId, SwarmState>,
    /// Incremented by each `set_playhead`; orders swarms by how recently they were played.
    activity_clock: u64,
}

#[derive(Default)]
struct SwarmState {
    segments: BTreeMap<Seq, SegmentBytes>,
    /// How each cached segment was fetched (`set_timing`), gone with the segment.
    timings: BTreeMap<Seq, DeliveryTiming>,
    playhead: Option<Seq>,
    /// Segments below this seq slid out of the live window (0: nothing did).
    window_start: Seq,
    /// Pin counts: a segment can be uploaded to several peers at once.
    pins: BTreeMap<Seq, u32>,
    last_active: u64,
}

/// Eviction classes, in the order they give up segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    OutOfWindow,
    Behind,
    Ahead,
}

/// Position of a segment in the eviction order: lower goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    class: Class,
    /// Index of the swarm in the activity order (least recently played first).
    swarm_order: usize,
    /// Within the class: ascending seq, except `Ahead` which goes furthest first.
    pos: u64,
}

impl SwarmState {
    fn is_empty_state(&self) -> bool {
        self.segments.is_empty()
            && self.pins.is_empty()
            && self.playhead.is_none()
            && self.window_start == 0
    }

    fn class_of(&self, seq: Seq) -> Class {
        if seq < self.window_start {
            Class::OutOfWindow
        } else {
            match self.playhead {
                Some(p) if seq >= p => Class::Ahead,
                _ => Class::Behind,
            }
        }
    }

    fn is_pinned(&self, seq: Seq) -> bool {
        self.pins.contains_key(&seq)
    }

    /// Unpinned segments of one class in eviction order, with their sizes.
    fn candidates(&self, class: Class) -> Box<dyn Iterator<Item = (Seq, u64)> + '_> {
        let size = |(s, d): (&Seq, &SegmentBytes)| (*s, d.len() as u64);
        let ws = self.window_start;
        let it: Box<dyn Iterator<Item = (Seq, u64)> + '_> = match (class, self.playhead) {
            (Class::OutOfWindow, _) => Box::new(self.segments.range(..ws).map(size)),
            (Class::Behind, None) => Box::new(self.segments.range(ws..).map(size)),
            (Class::Behind, Some(p)) if ws < p => Box::new(self.segments.range(ws..p).map(size)),
            (Class::Behind, Some(_)) => Box::new(std::iter::empty()),
            (Class::Ahead, None) => Box::new(std::iter::empty()),
            (Class::Ahead, Some(p)) => Box::new(self.segments.range(p.max(ws)..).rev().map(size)),
        };
        Box::new(it.filter(move |(s, _)| !self.is_pinned(*s)))
    }
}

fn pos_in_class(class: Class, seq: Seq) -> u64 {
    match class {
        Class::Ahead => u64::MAX - seq,
        Class::OutOfWindow | Class::Behind => seq,
    }
}

impl Store {
    pub fn new(budget_bytes: u64) -> Self {
        Store {
            budget: budget_bytes,
            used: 0,
            swarms: BTreeMap::new(),
            activity_clock: 0,
        }
    }
    pub fn budget(&self) -> u64 {
        self.budget
    }
    pub fn used_bytes(&self) -> u64 {
        self.used
    }
    /// Inserts a complete segment, evicting others as needed. Returns the keys evicted
    /// (the engine announces them as `Lost`). A segment larger than the budget is not kept
    /// (returns it in the evicted list).
    ///
    /// The new segment is also not kept (and returned) when the room it needs could only
    /// be made by evicting pinned segments or segments that rank as more worth keeping
    /// than itself (e.g. a segment that already slid out of the live window never
    /// displaces one ahead of the playhead). Re-inserting a key replaces its bytes; if the
    /// replacement is not kept, the old bytes are gone too and the key is returned.
    pub fn insert(&mut self, key: SegmentKey, data: Vec<u8>) -> Vec<SegmentKey> {
        self.insert_shared(key, Rc::new(data))
    }

    /// `insert` of bytes that may be shared with other holders.
    pub fn insert_shared(&mut self, key: SegmentKey, data: SegmentBytes) -> Vec<SegmentKey> {
        // The old bytes of a re-inserted key must neither count against the budget nor
        // be picked as a victim.
        self.remove(&key);
        let len = data.len() as u64;
        if len > self.budget {
            self.cleanup_swarm(key.swarm);
            return vec![key];
        }
        let need = self.used.saturating_add(len).saturating_sub(self.budget);
        let mut evicted = Vec::new();
        if need > 0 {
            match self.plan_eviction(key, need) {
                Some(victims) => {
                    for v in victims {
                        if self.remove(&v).is_some() {
                            evicted.push(v);
                        }
                    }
                }
                None => {
                    self.cleanup_swarm(key.swarm);
                    return vec![key];
                }
            }
        }
        self.used = self.used.saturating_add(len);
        self.swarms
            .entry(key.swarm)
            .or_default()
            .segments
            .insert(key.seq, data);
        evicted
    }

    /// Victims (in eviction order) that free at least `need` bytes while all ranking
    /// below `new_key`, or `None` if there are not enough of them.
    fn plan_eviction(&self, new_key: SegmentKey, need: u64) -> Option<Vec<SegmentKey>> {
        let mut order: Vec<(u64, SwarmId)> = self
            .swarms
            .iter()
            .map(|(id, s)| (s.last_active, *id))
            .collect();
        if !self.swarms.contains_key(&new_key.swarm) {
            order.push((0, new_key.swarm));
        }
        order.sort_unstable();
        let new_rank = match self.swarms.get(&new_key.swarm) {
            Some(s) if s.is_pinned(new_key.seq) => None, // never ranks as a victim
            state => {
                let class = state.map_or(Class::Behind, |s| s.class_of(new_key.seq));
                let swarm_order = order
                    .iter()
                    .position(|(_, id)| *id == new_key.swarm)
                    .unwrap_or(0);
                Some(Rank {
                    class,
                    swarm_order,
                    pos: pos_in_class(class, new_key.seq),
                })
            }
        };
        let mut victims = Vec::new();
        let mut freed = 0u64;
        for class in [Class::OutOfWindow, Class::Behind, Class::Ahead] {
            for (swarm_order, (_, id)) in order.iter().enumerate() {
                let Some(state) = self.swarms.get(id) else {
                    continue;
                };
                for (seq, size) in state.candidates(class) {
                    let rank = Rank {
                        class,
                        swarm_order,
                        pos: pos_in_class(class, seq),
                    };
                    if let Some(nr) = new_rank {
                        if rank.cmp(&nr) == Ordering::Greater {
                            return None;
                        }
                    }
                    victims.push(SegmentKey { swarm: *id, seq });
                    freed = freed.saturating_add(size);
                    if freed >= need {
                        return Some(victims);
                    }
                }
            }
        }
        None
    }

    /// Drops the bookkeeping of a swarm that holds nothing and has no state worth keeping.
    fn cleanup_swarm(&mut self, swarm: SwarmId) {
        if self
            .swarms
            .get(&swarm)
            .is_some_and(SwarmState::is_empty_state)
        {
            self.swarms.remove(&swarm);
        }
    }

    pub fn get(&self, key: &SegmentKey) -> Option<&[u8]> {
        self.get_buffer(key).map(|d| d.as_slice())
    }

    /// `get`, as the shared buffer itself.
    pub fn get_buffer(&self, key: &SegmentKey) -> Option<&SegmentBytes> {
        self.swarms.get(&key.swarm)?.segments.get(&key.seq)
    }
    /// The segment's buffer itself (a reference, not a copy).
    pub fn get_shared(&self, key: &SegmentKey) -> Option<SegmentBytes> {
        self.swarms
            .get(&key.swarm)?
            .segments
            .get(&key.seq)
            .map(Rc::clone)
    }
    pub fn contains(&self, key: &SegmentKey) -> bool {
        self.swarms
            .get(&key.swarm)
            .is_some_and(|s| s.segments.contains_key(&key.seq))
    }
    /// Records how a cached segment was fetched (delivered with it from the cache later).
    /// Does nothing for a segment not held.
    pub fn set_timing(&mut self, key: SegmentKey, timing: DeliveryTiming) {
        if let Some(s) = self
            .swarms
            .get_mut(&key.swarm)
            .filter(|s| s.segments.contains_key(&key.seq))
        {
            s.timings.insert(key.seq, timing);
        }
    }

    /// How a cached segment was fetched, if recorded.
    pub fn timing(&self, key: &SegmentKey) -> Option<&DeliveryTiming> {
        self.swarms.get(&key.swarm)?.timings.get(&key.seq)
    }

    /// Removes a segment whether pinned or not (its pin count is kept).
    pub fn remove(&mut self, key: &SegmentKey) -> Option<SegmentBytes> {
        let state = self.swarms.get_mut(&key.swarm)?;
        let data = state.segments.remove(&key.seq)?;
        state.timings.remove(&key.seq);
        self.used = self.used.saturating_sub(data.len() as u64);
        self.cleanup_swarm(key.swarm);
        Some(data)
    }
    /// Playhead position in a swarm, as the seq being played.
    pub fn set_playhead(&mut self, swarm: SwarmId, seq: Seq) {
        self.activity_clock = self.activity_clock.saturating_add(1);
        let clock = self.activity_clock;
        let state = self.swarms.entry(swarm).or_default();
        state.playhead = Some(seq);
        state.last_active = clock;
    }
    /// Live window of a swarm: segments below `min_seq` are no longer listed.
    pub fn set_window_start(&mut self, swarm: SwarmId, min_seq: Seq) {
        self.swarms.entry(swarm).or_default().window_start = min_seq;
        self.cleanup_swarm(swarm);
    }
    /// Protects a segment (held or not yet inserted) from eviction. Pins nest: each `pin`
    /// needs its own `unpin`, so two concurrent uploads of one segment can pin it
    /// independently.
    pub fn pin(&mut self, key: SegmentKey) {
        let count = self
            .swarms
            .entry(key.swarm)
            .or_default()
            .pins
            .entry(key.seq)
            .or_insert(0);
        *count = count.saturating_add(1);
    }
    /// Undoes one `pin`; unpinning an unpinned segment does nothing.
    pub fn unpin(&mut self, key: &SegmentKey) {
        let Some(state) = self.swarms.get_mut(&key.swarm) else {
            return;
        };
        if let Some(count) = state.pins.get_mut(&key.seq) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.pins.remove(&key.seq);
            }
        }
        self.cleanup_swarm(key.swarm);
    }
    pub fn is_pinned(&self, key: &SegmentKey) -> bool {
        self.swarms
            .get(&key.swarm)
            .is_some_and(|s| s.is_pinned(key.seq))
    }
    /// Number of segments held over all swarms.
    pub fn segment_count(&self) -> usize {
        self.swarms.values().map(|s| s.segments.len()).sum()
    }
    /// Complete segments of a swarm as `(base, bitmap)`, bit i MSB-first = `base + i`,
    /// bitmap at most `max_bytes` long (the newest segments win if it would be longer).
    /// An empty swarm (or `max_bytes == 0`) gives `(0, vec![])`.
    pub fn bitfield(&self, swarm: SwarmId, max_bytes: usize) -> (Seq, Vec<u8>) {
        let Some(state) = self.swarms.get(&swarm) else {
            return (0, Vec::new());
        };
        let (Some((&lo, _)), Some((&hi, _))) = (
            state.segments.first_key_value(),
            state.segments.last_key_value(),
        ) else {
            return (0, Vec::new());
        };
        let max_bits = (max_bytes as u64).saturating_mul(8);
        if max_bits == 0 {
            return (0, Vec::new());
        }
        // `hi - lo` is compared, never `hi - lo + 1`, so a span of u64::MAX cannot overflow.
        let base = if hi - lo >= max_bits {
            hi - (max_bits - 1)
        } else {
            lo
        };
        let len = usize::try_from((hi - base) / 8 + 1).unwrap_or(max_bytes);
        let mut bitmap = vec![0u8; len.min(max_bytes)];
        for &seq in state.segments.range(base..=hi).map(|(s, _)| s) {
            let i = seq - base;
            if let Some(byte) = usize::try_from(i / 8).ok().and_then(|b| bitmap.get_mut(b)) {
                *byte |= 0x80u8 >> (i % 8);
            }
        }
        while bitmap.last() == Some(&0) {
            bitmap.pop();
        }
        if bitmap.is_empty() {
            return (0, bitmap);
        }
        (base, bitmap)
    }
    /// Complete segment seqs of a swarm, ascending.
    pub fn seqs(&self, swarm: SwarmId) -> Vec<Seq> {
        self.swarms
            .get(&swarm)
            .map(|s| s.segments.keys().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn swarm(n: u8) -> SwarmId {
        SwarmId([n; 20])
    }
    fn key(n: u8, seq: Seq) -> SegmentKey {
        SegmentKey {
            swarm: swarm(n),
            seq,
        }
    }
    fn seg(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }
    #[test]
    fn a_segments_timing_lives_and_goes_with_it() {
        let mut st = Store::new(1_000);
        let t = DeliveryTiming {
            p2p_bytes: 7,
            ..Default::default()
        };
        st.set_timing(key(1, 1), t.clone());
        assert!(st.timing(&key(1, 1)).is_none(), "not held: not recorded");
        assert!(st.insert(key(1, 1), seg(600, 1)).is_empty());
        st.set_timing(key(1, 1), t.clone());
        assert_eq!(st.timing(&key(1, 1)), Some(&t));
        // Evicted to make room: its timing goes too.
        assert_eq!(st.insert(key(1, 2), seg(600, 2)), vec![key(1, 1)]);
        assert!(st.timing(&key(1, 1)).is_none());
        st.set_timing(key(1, 2), t.clone());
        st.remove(&key(1, 2));
        assert!(st.timing(&key(1, 2)).is_none());
    }

    /// Inverse of the bitfield encoding, as a peer would read it.
    fn decode(base: Seq, bitmap: &[u8]) -> Vec<Seq> {
        let mut out = Vec::new();
        for (i, b) in bitmap.iter().enumerate() {
            for bit in 0..8u64 {
                if b & (0x80 >> bit) != 0 {
                    out.push(base + i as u64 * 8 + bit);
                }
            }
        }
        out
    }

    #[test]
    fn insert_get_remove_accounting() {
        let mut s = Store::new(100);
        assert!(s.insert(key(1, 5), seg(30, 1)).is_empty());
        assert!(s.insert(key(1, 6), seg(40, 2)).is_empty());
        assert_eq!(s.used_bytes(), 70);
        assert_eq!(s.get(&key(1, 5)), Some(&[1u8; 30][..]));
        assert!(s.contains(&key(1, 6)));
        assert!(!s.contains(&key(2, 6)));
        // Re-insert replaces and re-accounts.
        assert!(s.insert(key(1, 5), seg(10, 3)).is_empty());
        assert_eq!(s.used_bytes(), 50);
        assert_eq!(s.get(&key(1, 5)), Some(&[3u8; 10][..]));
        assert_eq!(s.remove(&key(1, 6)).map(|d| d.len()), Some(40));
        assert_eq!(s.used_bytes(), 10);
        assert_eq!(s.seqs(swarm(1)), vec![5]);
        assert_eq!(s.segment_count(), 1);
    }

    #[test]
    fn too_large_segment_is_not_kept() {
        let mut s = Store::new(100);
        s.insert(key(1, 1), seg(50, 0));
        assert_eq!(s.insert(key(1, 2), seg(101, 0)), vec![key(1, 2)]);
        assert!(!s.contains(&key(1, 2)));
        assert!(s.contains(&key(1, 1)), "an oversized insert evicts nothing");
        assert_eq!(s.used_bytes(), 50);
    }

    #[test]
    fn eviction_order_window_then_behind_then_furthest_ahead() {
        let mut s = Store::new(100);
        for seq in 1..=10 {
            assert!(s.insert(key(1, seq), seg(10, seq as u8)).is_empty());
        }
        s.set_window_start(swarm(1), 3); // 1, 2 slid out of the live window
        s.set_playhead(swarm(1), 6); // 3, 4, 5 behind; 6..=10 ahead
                                     // Fill a second, more recently played swarm to observe the first swarm's order.
        let mut order = Vec::new();
        s.set_playhead(swarm(2), 100);
        for seq in 100..110 {
            order.extend(s.insert(key(2, seq), seg(10, 0)));
        }
        // Swarm 2 is the most recently played, so swarm 1 gives up everything first,
        // class by class.
        assert_eq!(
            order,
            [1, 2, 3, 4, 5, 10, 9, 8, 7, 6]
                .iter()
                .map(|&q| key(1, q))
                .collect::<Vec<_>>()
        );
        assert!(s.used_bytes() <= 100);
    }

    #[test]
    fn within_one_swarm_behind_goes_before_ahead() {
        let mut s = Store::new(50);
        s.set_playhead(swarm(1), 3);
        for seq in 1..=5 {
            s.insert(key(1, seq), seg(10, 0));
        }
        // Behind segments go first, lowest seq first.
        assert_eq!(s.insert(key(1, 6), seg(10, 0)), vec![key(1, 1)]);
        assert_eq!(s.insert(key(1, 7), seg(10, 0)), vec![key(1, 2)]);
        // Now only ahead segments remain (3..=7); seq 8 would be the furthest ahead, so it
        // is the one not kept.
        assert_eq!(s.insert(key(1, 8), seg(10, 0)), vec![key(1, 8)]);
        assert_eq!(s.seqs(swarm(1)), vec![3, 4, 5, 6, 7]);
        // A nearer segment displaces the furthest one.
        s.set_playhead(swarm(1), 2);
        assert_eq!(s.insert(key(1, 2), seg(10, 0)), vec![key(1, 7)]);
        assert_eq!(s.seqs(swarm(1)), vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn out_of_window_insert_does_not_displace_live_segments() {
        let mut s = Store::new(30);
        s.set_window_start(swarm(1), 10);
        s.set_playhead(swarm(1), 10);
        for seq in 10..13 {
            s.insert(key(1, seq), seg(10, 0));
        }
        assert_eq!(s.insert(key(1, 5), seg(10, 0)), vec![key(1, 5)]);
        assert_eq!(s.seqs(swarm(1)), vec![10, 11, 12]);
    }

    #[test]
    fn swarm_without_playhead_counts_as_behind() {
        let mut s = Store::new(40);
        s.set_playhead(swarm(1), 0);
        s.insert(key(1, 0), seg(10, 0));
        s.insert(key(1, 1), seg(10, 0));
        s.insert(key(2, 7), seg(10, 0)); // swarm 2: no playhead
        s.insert(key(2, 8), seg(10, 0));
        assert_eq!(s.insert(key(1, 2), seg(10, 0)), vec![key(2, 7)]);
        assert_eq!(s.insert(key(1, 3), seg(10, 0)), vec![key(2, 8)]);
    }

    #[test]
    fn least_recently_played_swarm_goes_first_within_a_class() {
        let mut s = Store::new(40);
        s.set_playhead(swarm(1), 10);
        s.set_playhead(swarm(2), 10);
        s.insert(key(1, 1), seg(10, 0));
        s.insert(key(2, 1), seg(10, 0));
        s.insert(key(1, 2), seg(10, 0));
        s.insert(key(2, 2), seg(10, 0));
        // Swarm 2 was played more recently than swarm 1: swarm 1's behind segments go first.
        assert_eq!(s.insert(key(2, 11), seg(10, 0)), vec![key(1, 1)]);
        s.set_playhead(swarm(1), 10); // now swarm 1 is the active one
        assert_eq!(s.insert(key(1, 11), seg(10, 0)), vec![key(2, 1)]);
    }

    #[test]
    fn pinned_segments_survive_and_block() {
        let mut s = Store::new(30);
        s.set_playhead(swarm(1), 10);
        for seq in 1..=3 {
            s.insert(key(1, seq), seg(10, 0));
        }
        s.pin(key(1, 1));
        s.pin(key(1, 1)); // nested pin
        assert!(s.is_pinned(&key(1, 1)));
        assert_eq!(s.insert(key(1, 10), seg(10, 0)), vec![key(1, 2)]);
        s.pin(key(1, 3));
        s.pin(key(1, 10));
        // Everything is pinned: the new segment cannot be stored.
        assert_eq!(s.insert(key(1, 11), seg(10, 0)), vec![key(1, 11)]);
        assert_eq!(s.seqs(swarm(1)), vec![1, 3, 10]);
        s.unpin(&key(1, 1));
        assert!(s.is_pinned(&key(1, 1)), "one unpin per pin");
        assert_eq!(s.insert(key(1, 11), seg(10, 0)), vec![key(1, 11)]);
        s.unpin(&key(1, 1));
        assert!(!s.is_pinned(&key(1, 1)));
        assert_eq!(s.insert(key(1, 11), seg(10, 0)), vec![key(1, 1)]);
        // A pin placed before the segment arrives also protects it, and a pinned new
        // segment is stored even when it ranks lowest.
        s.unpin(&key(1, 3));
        s.pin(key(1, 12));
        s.unpin(&key(1, 10));
        let ev = s.insert(key(1, 12), seg(10, 0));
        assert_eq!(ev, vec![key(1, 3)]);
        assert!(s.contains(&key(1, 12)));
        assert!(s.used_bytes() <= s.budget());
    }

    #[test]
    fn failed_replacement_loses_the_key() {
        let mut s = Store::new(20);
        s.insert(key(1, 1), seg(10, 1));
        assert_eq!(s.insert(key(1, 1), seg(30, 2)), vec![key(1, 1)]);
        assert!(!s.contains(&key(1, 1)));
        assert_eq!(s.used_bytes(), 0);
    }

    #[test]
    fn bitfield_encoding() {
        let mut s = Store::new(1 << 20);
        assert_eq!(s.bitfield(swarm(1), 16), (0, vec![]));
        for seq in [100, 101, 103, 108, 115] {
            s.insert(key(1, seq), seg(1, 0));
        }
        // bits: 100 101 _ 103 _ _ _ _ | 108 _ _ _ _ _ _ 115
        assert_eq!(
            s.bitfield(swarm(1), 16),
            (100, vec![0b1101_0000, 0b1000_0001])
        );
        // Only one byte allowed: the newest 8 seqs (108..=115) win.
        assert_eq!(s.bitfield(swarm(1), 1), (108, vec![0b1000_0001]));
        assert_eq!(s.bitfield(swarm(1), 0), (0, vec![]));
        // Far apart seqs (DASH $Time$): no giant allocation, newest win.
        s.insert(key(2, 0), seg(1, 0));
        s.insert(key(2, u64::MAX), seg(1, 0));
        let (base, bm) = s.bitfield(swarm(2), 4);
        assert_eq!(base, u64::MAX - 31);
        assert_eq!(decode(base, &bm), vec![u64::MAX]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, Seq, usize),
        Playhead(u8, Seq),
        Window(u8, Seq),
        Pin(u8, Seq),
        Unpin(u8, Seq),
        Remove(u8, Seq),
    }

    fn op() -> impl Strategy<Value = Op> {
        let sw = 0u8..3;
        let sq = 0u64..40;
        prop_oneof![
            6 => (sw.clone(), sq.clone(), 0usize..400).prop_map(|(a, b, c)| Op::Insert(a, b, c)),
            1 => (sw.clone(), sq.clone()).prop_map(|(a, b)| Op::Playhead(a, b)),
            1 => (sw.clone(), sq.clone()).prop_map(|(a, b)| Op::Window(a, b)),
            1 => (sw.clone(), sq.clone()).prop_map(|(a, b)| Op::Pin(a, b)),
            1 => (sw.clone(), sq.clone()).prop_map(|(a, b)| Op::Unpin(a, b)),
            1 => (sw, sq).prop_map(|(a, b)| Op::Remove(a, b)),
        ]
    }

    proptest! {
        #[test]
        fn budget_and_pins_hold_under_random_ops(
            budget in 0u64..2000,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let mut s = Store::new(budget);
            // Reference model: what is held, and pin counts.
            let mut held: HashMap<SegmentKey, usize> = HashMap::new();
            let mut pins: HashMap<SegmentKey, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(w, q, len) => {
                        let k = key(w, q);
                        let before: BTreeSet<SegmentKey> = held.keys().copied().collect();
                        let evicted = s.insert(k, seg(len, q as u8));
                        held.remove(&k);
                        for e in &evicted {
                            prop_assert!(*e == k || before.contains(e), "evicted unknown {:?}", e);
                            prop_assert!(*e == k || !pins.contains_key(e), "evicted pinned {:?}", e);
                            prop_assert!(!s.contains(e));
                            held.remove(e);
                        }
                        if s.contains(&k) {
                            prop_assert!(!evicted.contains(&k));
                            held.insert(k, len);
                        } else {
                            prop_assert!(evicted.contains(&k));
                        }
                        if (len as u64) <= budget && pins.contains_key(&k) {
                            // A pinned new segment is refused only if pins leave no room.
                            let pinned_bytes: u64 = held.iter()
                                .filter(|(h, _)| pins.contains_key(h))
                                .map(|(_, l)| *l as u64).sum();
                            if !s.contains(&k) {
                                prop_assert!(pinned_bytes + len as u64 > budget);
                            }
                        }
                    }
                    Op::Playhead(w, q) => s.set_playhead(swarm(w), q),
                    Op::Window(w, q) => s.set_window_start(swarm(w), q),
                    Op::Pin(w, q) => {
                        s.pin(key(w, q));
                        *pins.entry(key(w, q)).or_insert(0) += 1;
                    }
                    Op::Unpin(w, q) => {
                        s.unpin(&key(w, q));
                        if let Some(c) = pins.get_mut(&key(w, q)) {
                            *c -= 1;
                            if *c == 0 { pins.remove(&key(w, q)); }
                        }
                    }
                    Op::Remove(w, q) => {
                        let got = s.remove(&key(w, q)).map(|d| d.len());
                        prop_assert_eq!(got, held.remove(&key(w, q)));
                    }
                }
                prop_assert!(s.used_bytes() <= s.budget());
                let total: u64 = held.values().map(|l| *l as u64).sum();
                prop_assert_eq!(s.used_bytes(), total);
                prop_assert_eq!(s.segment_count(), held.len());
                for w in 0..3u8 {
                    let expect: Vec<Seq> = {
                        let mut v: Vec<Seq> = held.keys().filter(|k| k.swarm == swarm(w)).map(|k| k.seq).collect();
                        v.sort_unstable();
                        v
                    };
                    prop_assert_eq!(&s.seqs(swarm(w)), &expect);
                    let (base, bm) = s.bitfield(swarm(w), 2);
                    let newest: Vec<Seq> = expect.iter().copied()
                        .filter(|q| expect.last().is_some_and(|hi| hi - q < 16)).collect();
                    prop_assert_eq!(decode(base, &bm), newest);
                    prop_assert!(bm.last() != Some(&0));
                }
            }
        }
    }
}
