//! Per-peer measurements (EWMA throughput and RTT) and the score used to choose among
//! peers that hold a segment.
//!
//! Invariants: every value is finite and non-negative; a peer never measured gets an
//! optimistic prior so new peers are tried; strikes halve the score each.

/// Exponentially weighted moving average. `None` until the first sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma {
    value: Option<f64>,
}

impl Ewma {
    /// Weight of a new sample.
    const ALPHA: f64 = 0.3;

    pub fn sample(&mut self, x: f64) {
        if !x.is_finite() || x < 0.0 {
            return;
        }
        self.value = Some(match self.value {
            None => x,
            Some(v) => v + Self::ALPHA * (x - v),
        });
    }

    pub fn get(&self) -> Option<f64> {
        self.value
    }

    pub fn get_or(&self, prior: f64) -> f64 {
        self.value.unwrap_or(prior)
    }
}

/// Throughput assumed for a peer we have not measured yet (bytes/s): high enough that a
/// fresh peer is tried, low enough that a measured good peer wins.
pub const THROUGHPUT_PRIOR: f64 = 1_000_000.0;
/// RTT assumed before the first Pong (ms).
pub const RTT_PRIOR_MS: f64 = 100.0;

/// Higher is better. Throughput dominates (it decides whether a segment arrives in time);
/// RTT matters for small requests; each strike halves the score.
pub fn score(throughput: Option<f64>, rtt_ms: Option<f64>, strikes: u32) -> f64 {
    let tp = throughput.unwrap_or(THROUGHPUT_PRIOR).max(0.0);
    let rtt = rtt_ms.unwrap_or(RTT_PRIOR_MS).max(0.0);
    let penalty = 0.5f64.powi(strikes.min(30) as i32);
    tp / (1.0 + rtt / 200.0) * penalty
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_moves_toward_samples_and_ignores_garbage() {
        let mut e = Ewma::default();
        assert_eq!(e.get(), None);
        e.sample(100.0);
        assert_eq!(e.get(), Some(100.0));
        e.sample(200.0);
        let v = e.get().unwrap_or(0.0);
        assert!(v > 100.0 && v < 200.0, "{v}");
        e.sample(f64::NAN);
        e.sample(-5.0);
        assert_eq!(e.get(), Some(v));
    }

    #[test]
    fn score_prefers_fast_low_rtt_unstruck_peers() {
        let fast = score(Some(2e6), Some(50.0), 0);
        let slow = score(Some(2e5), Some(50.0), 0);
        let far = score(Some(2e6), Some(800.0), 0);
        let struck = score(Some(2e6), Some(50.0), 1);
        assert!(fast > slow);
        assert!(fast > far);
        assert!(fast > struck);
        assert!((struck - fast / 2.0).abs() < 1e-6);
        // An unmeasured peer beats a measured slow one, loses to a measured fast one.
        let fresh = score(None, None, 0);
        assert!(fresh > slow && fresh < score(Some(5e6), Some(20.0), 0));
    }
}
