//! Upload pacing: a token bucket at `upload_bytes_per_sec`.
//!
//! Invariants: tokens never exceed the capacity; with rate 0 nothing is ever allowed;
//! `wait_ms` is the exact time until `n` bytes are allowed (so the engine can sleep
//! until then instead of polling).

use crate::types::Instant;

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
