//! Upload serving: which queued request gets the next chunk, paced by a token bucket at
//! `upload_bytes_per_sec`.
//!
//! Invariants: tokens never exceed the capacity; with rate 0 nothing is ever allowed;
//! `wait_ms` is the exact time until `n` bytes are allowed (so the engine can sleep
//! until then instead of polling). [`Uploads::pump`] serves the peers round-robin, one
//! chunk per turn, and stops at the first chunk the budget does not allow yet.

use crate::peers::Session;
use crate::store::SegmentBytes;
use crate::types::{ConnId, Instant, SegmentKey};
use crate::wire::{DataRef, CHUNK_SIZE};
use std::collections::{BTreeMap, VecDeque};

/// Where the next chunk of an upload comes from.
pub enum ChunkSource<'a> {
    /// The chunk, the segment's size, and where the chunk lies in a shared buffer, if it does.
    Ready(&'a [u8], u64, Option<(&'a SegmentBytes, usize)>),
    /// Not received yet (a relay of a segment still downloading).
    NotYet,
    /// Not held any more.
    Gone,
}

/// What a pump served, in order.
pub enum Served<'a> {
    /// A chunk for `conn` (its bytes lie at `shared` in a shared buffer, when they do).
    Data {
        conn: ConnId,
        msg: DataRef<'a>,
        shared: Option<(&'a SegmentBytes, usize)>,
    },
    /// Request `id` asked for a segment no longer held.
    Absent { conn: ConnId, id: u32 },
}

/// The upload budget, the peers with queued requests (round-robin), and when the budget
/// allows the next chunk.
#[derive(Clone, Debug)]
pub struct Uploads {
    bucket: TokenBucket,
    queue: VecDeque<ConnId>,
    wake: Option<Instant>,
}

impl Uploads {
    pub fn new(rate_bytes_per_sec: u64, now: Instant) -> Self {
        Uploads {
            bucket: Self::bucket(rate_bytes_per_sec, now),
            queue: VecDeque::new(),
            wake: None,
        }
    }

    /// A fifth of a second's budget may go out at once, and at least four chunks.
    fn bucket(rate: u64, now: Instant) -> TokenBucket {
        let burst = (rate / 5).max(4 * CHUNK_SIZE as u64);
        TokenBucket::new(rate, burst, now)
    }

    /// A new budget, full from `now`.
    pub fn set_rate(&mut self, rate_bytes_per_sec: u64, now: Instant) {
        self.bucket = Self::bucket(rate_bytes_per_sec, now);
    }

    /// Peers with requests queued.
    pub fn serving(&self) -> usize {
        self.queue.len()
    }

    /// `conn` has a request queued (in its session): serve it in turn.
    pub fn enqueue(&mut self, conn: ConnId) {
        if !self.queue.contains(&conn) {
            self.queue.push_back(conn);
        }
    }

    pub fn forget(&mut self, conn: ConnId) {
        self.queue.retain(|c| *c != conn);
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// When the budget allows the chunk the last pump stopped at.
    pub fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Serves queued requests round-robin, a chunk per peer per turn, until the budget or
    /// the chunks run out. `source` finds a chunk; what is served goes to `serve` in order.
    /// Returns the segments of finished or dropped requests that held a pin.
    pub fn pump<'a>(
        &mut self,
        now: Instant,
        sessions: &mut BTreeMap<ConnId, Session>,
        source: impl Fn(SegmentKey, u32) -> ChunkSource<'a>,
        mut serve: impl FnMut(Served<'a>),
    ) -> Vec<SegmentKey> {
        self.wake = None;
        let mut unpins = Vec::new();
        if self.queue.is_empty() {
            return unpins;
        }
        self.bucket.refill(now);
        let mut idle = 0usize;
        while idle < self.queue.len() {
            let Some(conn) = self.queue.pop_front() else {
                break;
            };
            let Some(s) = sessions.get_mut(&conn) else {
                continue;
            };
            let mut sent = false;
            let mut blocked = None;
            let mut absents = Vec::new();
            let mut i = 0;
            while i < s.up.len() {
                let u = &s.up[i];
                if u.next_chunk >= u.end_chunk {
                    let u = s.up.remove(i);
                    if u.pinned {
                        unpins.push(u.key);
                    }
                    continue;
                }
                match source(u.key, u.next_chunk) {
                    ChunkSource::Gone => {
                        let u = s.up.remove(i);
                        absents.push(u.id);
                        if u.pinned {
                            unpins.push(u.key);
                        }
                    }
                    ChunkSource::NotYet => i += 1,
                    ChunkSource::Ready(bytes, total, shared) => {
                        if !self.bucket.try_take(bytes.len() as u64) {
                            blocked = self.bucket.ready_at(now, bytes.len() as u64);
                            break;
                        }
                        let msg = DataRef {
                            id: u.id,
                            chunk: u.next_chunk,
                            total_size: total as u32,
                            payload: bytes,
                        };
                        s.up[i].next_chunk += 1;
                        s.up_bytes = s.up_bytes.saturating_add(bytes.len() as u64);
                        serve(Served::Data { conn, msg, shared });
                        sent = true;
                        break;
                    }
                }
            }
            let keep = !s.up.is_empty();
            for id in absents {
                serve(Served::Absent { conn, id });
            }
            if keep {
                self.queue.push_back(conn);
            }
            if let Some(at) = blocked {
                self.wake = Some(at);
                break;
            }
            if sent {
                idle = 0;
            } else {
                idle += 1;
            }
        }
        unpins
    }
}

#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `burst` bytes may go out at once (at least one chunk so pacing never deadlocks).
    pub fn new(rate_bytes_per_sec: u64, burst: u64, now: Instant) -> Self {
        let capacity = burst.max(1) as f64;
        TokenBucket {
            rate: rate_bytes_per_sec,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn refill(&mut self, now: Instant) {
        let dt = now.as_millis().saturating_sub(self.last.as_millis());
        if dt > 0 {
            self.tokens = (self.tokens + self.rate as f64 * dt as f64 / 1000.0).min(self.capacity);
            self.last = now;
        }
    }

    /// Takes `n` tokens if available.
    pub fn try_take(&mut self, n: u64) -> bool {
        if self.rate == 0 {
            return false;
        }
        let n = (n as f64).min(self.capacity);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// When `n` tokens will be available (`None` if never). Counted from the last refill
    /// when that is later than `now`: a host clock that stepped back refills nothing until it
    /// passes `last` again, so a retry before then would find the bucket unchanged.
    pub fn ready_at(&self, now: Instant, n: u64) -> Option<Instant> {
        let wait = self.wait_ms(n)?;
        Some(now.max(self.last) + std::time::Duration::from_millis(wait.max(1)))
    }

    /// Milliseconds until `n` tokens are available (`None` if never).
    pub fn wait_ms(&self, n: u64) -> Option<u64> {
        if self.rate == 0 {
            return None;
        }
        let n = (n as f64).min(self.capacity);
        let missing = (n - self.tokens).max(0.0);
        Some((missing * 1000.0 / self.rate as f64).ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_to_rate() {
        let t0 = Instant::from_millis(1000);
        let mut b = TokenBucket::new(10_000, 5_000, t0);
        assert!(b.try_take(5_000));
        assert!(!b.try_take(1_000));
        assert_eq!(b.wait_ms(1_000), Some(100));
        b.refill(Instant::from_millis(1050));
        assert!(!b.try_take(1_000));
        b.refill(Instant::from_millis(1100));
        assert!(b.try_take(1_000));
        // Capacity caps accumulation.
        b.refill(Instant::from_millis(60_000));
        assert!(b.try_take(5_000));
        assert!(!b.try_take(1));
    }

    #[test]
    fn zero_rate_never_allows() {
        let mut b = TokenBucket::new(0, 10_000, Instant::from_millis(0));
        assert!(!b.try_take(1));
        assert_eq!(b.wait_ms(1), None);
    }
}
