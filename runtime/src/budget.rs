//! The per-domain budget of physical commands (Observation 5): a token
//! bucket whose refill rate halves each time a domain drains it and doubles
//! back, up to the nominal rate, each time it is found full again.

use crate::policy::Policy;

#[derive(Clone, Debug)]
pub struct HwBudget {
    tokens: u64,
    burst: u64,
    nominal_per_ms: u64,
    floor_per_ms: u64,
    rate_per_ms: u64,
    last_ns: u64,
}

const NS_PER_MS: u64 = 1_000_000;

impl HwBudget {
    pub fn new(p: &Policy) -> Self {
        let nominal = u64::from(p.hw_refill_per_ms.max(1));
        HwBudget {
            tokens: u64::from(p.hw_burst.max(1)),
            burst: u64::from(p.hw_burst.max(1)),
            nominal_per_ms: nominal,
            floor_per_ms: u64::from(p.hw_refill_floor_per_ms.clamp(1, p.hw_refill_per_ms.max(1))),
            rate_per_ms: nominal,
            last_ns: 0,
        }
    }

    /// Adds what the time since the last refill earned.
    pub fn refill(&mut self, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let earned = elapsed.saturating_mul(self.rate_per_ms) / NS_PER_MS;
        if earned == 0 {
            return;
        }
        // Only the time that earned whole tokens is consumed.
        self.last_ns = self
            .last_ns
            .saturating_add(earned.saturating_mul(NS_PER_MS) / self.rate_per_ms);
        let was_full = self.tokens >= self.burst;
        self.tokens = self.tokens.saturating_add(earned).min(self.burst);
        if was_full || self.tokens >= self.burst {
            // The domain stayed within its budget long enough: recover.
            self.rate_per_ms = (self.rate_per_ms * 2).min(self.nominal_per_ms);
        }
    }

    /// Takes `n` tokens, or none and returns false (and penalises the domain).
    pub fn take(&mut self, n: u64) -> bool {
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            self.rate_per_ms = (self.rate_per_ms / 2).max(self.floor_per_ms);
            false
        }
    }

    /// Nanoseconds until `n` tokens are available at the current rate.
    pub fn wait_ns(&self, n: u64) -> u64 {
        let missing = n.saturating_sub(self.tokens);
        missing.saturating_mul(NS_PER_MS).div_ceil(self.rate_per_ms)
    }

    pub fn rate_per_ms(&self) -> u64 {
        self.rate_per_ms
    }

    /// The most tokens the bucket holds.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_domain_gets_a_shrinking_budget_that_recovers_when_it_stops() {
        let p = Policy {
            hw_burst: 10,
            hw_refill_per_ms: 8,
            hw_refill_floor_per_ms: 1,
            ..Policy::default()
        };
        let mut b = HwBudget::new(&p);
        assert!(b.take(10));
        assert!(!b.take(1));
        assert_eq!(b.rate_per_ms(), 4);
        assert!(!b.take(1));
        assert!(!b.take(1));
        assert!(!b.take(1));
        assert_eq!(b.rate_per_ms(), 1, "never below the floor");
        // One millisecond earns one token at the floor rate.
        b.refill(1_000_000);
        assert_eq!(b.tokens(), 1);
        // Idle long enough to fill up: the rate recovers step by step.
        b.refill(100_000_000);
        assert_eq!(b.tokens(), 10);
        b.refill(200_000_000);
        b.refill(300_000_000);
        b.refill(400_000_000);
        assert_eq!(b.rate_per_ms(), 8);
    }

    #[test]
    fn wait_time_is_what_the_missing_tokens_take() {
        let p = Policy {
            hw_burst: 4,
            hw_refill_per_ms: 2,
            ..Policy::default()
        };
        let mut b = HwBudget::new(&p);
        assert!(b.take(4));
        assert_eq!(b.wait_ns(2), 1_000_000);
    }
}
