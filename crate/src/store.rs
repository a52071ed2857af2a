//! Memory-bounded segment cache.
//!
//! Invariants: `used_bytes() <= budget` after every call; eviction prefers segments that
//! slid out of the live window, then those behind the playhead (oldest first), then those
//! furthest ahead; a pinned segment (being uploaded or delivered) is never evicted.

use crate::types::{SegmentKey, Seq, SwarmId};

pub struct Store {
    _private: (),
}

impl Store {
    pub fn new(_budget_bytes: u64) -> Self {
        todo!("store helper")
    }
    pub fn budget(&self) -> u64 {
        todo!()
    }
    pub fn used_bytes(&self) -> u64 {
        todo!()
    }
    /// Inserts a complete segment, evicting others as needed. Returns the keys evicted
    /// (the engine announces them as `Lost`). A segment larger than the budget is not kept
    /// (returns it in the evicted list).
    pub fn insert(&mut self, _key: SegmentKey, _data: Vec<u8>) -> Vec<SegmentKey> {
        todo!()
    }
    pub fn get(&self, _key: &SegmentKey) -> Option<&[u8]> {
        todo!()
    }
    pub fn contains(&self, _key: &SegmentKey) -> bool {
        todo!()
    }
    pub fn remove(&mut self, _key: &SegmentKey) -> Option<Vec<u8>> {
        todo!()
    }
    /// Playhead position in a swarm, as the seq being played.
    pub fn set_playhead(&mut self, _swarm: SwarmId, _seq: Seq) {
        todo!()
    }
    /// Live window of a swarm: segments below `min_seq` are no longer listed.
    pub fn set_window_start(&mut self, _swarm: SwarmId, _min_seq: Seq) {
        todo!()
    }
    pub fn pin(&mut self, _key: SegmentKey) {
        todo!()
    }
    pub fn unpin(&mut self, _key: &SegmentKey) {
        todo!()
    }
    /// Complete segments of a swarm as `(base, bitmap)`, bit i MSB-first = `base + i`,
    /// bitmap at most `max_bytes` long (the newest segments win if it would be longer).
    pub fn bitfield(&self, _swarm: SwarmId, _max_bytes: usize) -> (Seq, Vec<u8>) {
        todo!()
    }
    /// Complete segment seqs of a swarm, ascending.
    pub fn seqs(&self, _swarm: SwarmId) -> Vec<Seq> {
        todo!()
    }
}
