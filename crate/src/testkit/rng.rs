//! Seeded randomness for the simulator and the tests: SplitMix64 streams derived from a
//! scenario seed.
//!
//! Invariants: every draw is a pure function of the seed and the order of calls; streams
//! for independent purposes are derived with `derive` so that adding draws to one purpose
//! does not shift another (the baseline and the Shoal run see the same world).

/// One step of SplitMix64 over a bare state: the next draw, the state advanced.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5348_4f41_4c53_494d)
    }

    /// A new stream for `purpose`, independent of how much this one was used.
    pub fn derive(seed: u64, purpose: u64) -> Self {
        let mut r = Rng::new(seed);
        let a = r.next_u64();
        Rng::new(a ^ purpose.wrapping_mul(0xA24B_AED4_963E_E407))
    }

    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [a, b] (a when b <= a).
    pub fn range_f64(&mut self, a: f64, b: f64) -> f64 {
        if b <= a {
            a
        } else {
            a + (b - a) * self.f64()
        }
    }

    /// Uniform integer in [a, b].
    pub fn range_u64(&mut self, a: u64, b: u64) -> u64 {
        if b <= a {
            a
        } else {
            a + self.next_u64() % (b - a + 1)
        }
    }

    /// Uniform index below `n` (0 when n == 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| Rng::derive(7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::derive(7, 1).next_u64(), Rng::derive(7, 2).next_u64());
        assert_ne!(Rng::derive(7, 1).next_u64(), Rng::derive(8, 1).next_u64());
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            assert!(r.range_u64(5, 9) >= 5 && r.range_u64(5, 9) <= 9);
        }
    }
}
