//! The event queue of a discrete-event loop: events pop in (time, scheduling order), so
//! events due at the same time run in the order they were pushed, and a run is
//! deterministic.
//!
//! One binary heap of every pending event gives that order, but at 10,000 viewers (hundreds
//! of thousands of pending events) it costs a cache miss per level on every pop. So events
//! are bucketed by `bucket` time units in a ring covering the next `RING` buckets; only the
//! current bucket is a heap (a few hundred entries), events further ahead wait in `far`.
//! The pop order is exactly the one heap's.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Buckets of future covered by the ring.
const RING: u64 = 4_096;

struct Entry<E> {
    at: u64,
    order: u64,
    ev: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: the heap is a max-heap, the earliest event must come first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

pub struct EventQueue<E> {
    /// Time units per bucket (the simulator: 1,000 µs; a loop in milliseconds: 1).
    bucket: u64,
    /// The bucket being served: `cur` holds its events (and any pushed for earlier
    /// times), the ring the later ones.
    now: u64,
    cur: BinaryHeap<Entry<E>>,
    ring: Vec<Vec<Entry<E>>>,
    far: BinaryHeap<Entry<E>>,
    len: usize,
    order: u64,
}

impl<E> EventQueue<E> {
    /// A queue whose ring buckets span `bucket` time units each.
    pub fn new(bucket: u64) -> Self {
        EventQueue {
            bucket: bucket.max(1),
            now: 0,
            cur: BinaryHeap::new(),
            ring: (0..RING).map(|_| Vec::new()).collect(),
            far: BinaryHeap::new(),
            len: 0,
            order: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `ev` at `at`, after every event already scheduled at `at`.
    pub fn push(&mut self, at: u64, ev: E) {
        self.order += 1;
        self.len += 1;
        let e = Entry {
            at,
            order: self.order,
            ev,
        };
        let b = at / self.bucket;
        if b <= self.now {
            self.cur.push(e);
        } else if b < self.now + RING {
            self.ring[(b % RING) as usize].push(e);
        } else {
            self.far.push(e);
        }
    }

    /// The time of the next event.
    pub fn peek_at(&mut self) -> Option<u64> {
        self.fill();
        self.cur.peek().map(|e| e.at)
    }

    /// The next event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.fill();
        let e = self.cur.pop()?;
        self.len -= 1;
        Some((e.at, e.ev))
    }

    /// Moves on bucket by bucket until the current one holds an event (or none is left).
    fn fill(&mut self) {
        while self.cur.is_empty() && self.len > 0 {
            self.now += 1;
            let slot = (self.now % RING) as usize;
            self.cur.extend(self.ring[slot].drain(..));
            let horizon = self.now + RING;
            while self
                .far
                .peek()
                .is_some_and(|e| e.at / self.bucket < horizon)
            {
                let Some(e) = self.far.pop() else { break };
                let b = e.at / self.bucket;
                if b <= self.now {
                    self.cur.push(e);
                } else {
                    self.ring[(b % RING) as usize].push(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;

    /// Pops exactly as one heap of (time, push order) would, across the current bucket,
    /// the ring and the far heap, with events pushed mid-run for times already passed,
    /// the same bucket and far ahead.
    #[test]
    fn pops_as_one_heap_would() {
        let mut q = EventQueue::new(10);
        let mut heap = BinaryHeap::new();
        let mut order = 0u64;
        let mut push = |q: &mut EventQueue<u64>, heap: &mut BinaryHeap<_>, at: u64| {
            order += 1;
            q.push(at, order);
            heap.push(Reverse((at, order)));
        };
        for at in [5, 70_000, 5, 0, 41_000, 999, 41_000, 12, 3] {
            push(&mut q, &mut heap, at);
        }
        let mut popped = 0;
        while let Some((at, id)) = q.pop() {
            assert_eq!(Some(Reverse((at, id))), heap.pop());
            popped += 1;
            if popped % 3 == 0 && popped < 30 {
                for later in [0, 1, 9, 10, 40_960, 41_000, 50_000_000] {
                    push(&mut q, &mut heap, (at + later).saturating_sub(6));
                }
            }
            assert_eq!(q.len(), heap.len());
        }
        assert!(heap.is_empty() && q.is_empty() && q.peek_at().is_none());
        assert!(popped > 30);
    }
}
