//! The per-domain budget of physical commands (Observation 5).
//!
//! A token bucket refilled at the domain's fair share of the physical SMMU
//! (`hw_refill_per_ms`): a domain within its share never waits, and one
//! that floods is held to its share, never below it. The penalty for
//! flooding "over a longer period" is the burst: a domain that keeps its
//! bucket exhausted for `hw_penalty_after_ms` loses its burst allowance
//! (the bucket shrinks to one millisecond of its share, and never below one
//! STE installation) until it has
//! stayed within its share as long, so a sustained flooder cannot add
//! bursts on top of its share.
//!
//! Time comes from the hypervisor and is not trusted to be sane: a clock
//! that goes back counts as no time passed, and one that jumps far ahead
//! earns at most a full bucket.

use crate::policy::Policy;
use crate::ports::INSTALL_MAX_COMMANDS;

#[derive(Clone, Debug)]
pub struct HwBudget {
    tokens: u64,
    /// Work done beyond the tokens there were (charged after the fact):
    /// repaid before any new token is earned.
    debt: u64,
    /// The bucket's size now, and while the domain behaves.
    capacity: u64,
    burst: u64,
    rate_per_ms: u64,
    penalty_ns: u64,
    /// Time up to which refills have been credited.
    last_ns: u64,
    /// The latest time the hypervisor told us.
    now_ns: u64,
    /// When the domain first found its bucket exhausted in the current flood.
    flooding_since: Option<u64>,
    /// When the domain last found its bucket exhausted.
    last_exhausted_ns: u64,
}

const NS_PER_MS: u64 = 1_000_000;

impl HwBudget {
    pub fn new(p: &Policy) -> Self {
        let burst = u64::from(p.hw_burst.max(INSTALL_MAX_COMMANDS));
        HwBudget {
            tokens: burst,
            debt: 0,
            capacity: burst,
            burst,
            rate_per_ms: u64::from(p.hw_refill_per_ms.max(1)),
            penalty_ns: u64::from(p.hw_penalty_after_ms).saturating_mul(NS_PER_MS),
            last_ns: 0,
            now_ns: 0,
            flooding_since: None,
            last_exhausted_ns: 0,
        }
    }

    /// Adds what the time since the last refill earned.
    pub fn refill(&mut self, now_ns: u64) {
        if now_ns < self.now_ns {
            // The clock went back: no time passed, and count from here.
            self.last_ns = now_ns;
        }
        self.now_ns = now_ns;
        self.forgive();
        let missing = self
            .capacity
            .saturating_sub(self.tokens)
            .saturating_add(self.debt);
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let earned = elapsed.saturating_mul(self.rate_per_ms) / NS_PER_MS;
        if earned >= missing {
            // Full: time beyond that earns nothing (a jump ahead cannot bank).
            self.tokens = self.capacity;
            self.debt = 0;
            self.last_ns = now_ns;
        } else if earned > 0 {
            let repaid = earned.min(self.debt);
            self.debt -= repaid;
            self.tokens += earned - repaid;
            // Only the time that earned whole tokens is consumed.
            self.last_ns += earned * NS_PER_MS / self.rate_per_ms;
        }
    }

    /// Ends the penalty of a domain that stayed within its share long enough.
    fn forgive(&mut self) {
        if self.flooding_since.is_some()
            && self.now_ns.saturating_sub(self.last_exhausted_ns) >= self.penalty_ns
        {
            self.flooding_since = None;
            self.capacity = self.burst;
        }
    }

    /// Takes `n` tokens, or none and returns false (the domain is flooding).
    pub fn take(&mut self, n: u64) -> bool {
        if self.debt == 0 && self.tokens >= n {
            self.tokens -= n;
            return true;
        }
        let since = *self.flooding_since.get_or_insert(self.now_ns);
        self.last_exhausted_ns = self.now_ns;
        if self.now_ns.saturating_sub(since) >= self.penalty_ns {
            // Flooding for the whole period: no more bursts above the share.
            self.capacity = self.rate_per_ms.max(u64::from(INSTALL_MAX_COMMANDS));
            self.tokens = self.tokens.min(self.capacity);
        }
        false
    }

    /// Gives back tokens taken for work that turned out smaller.
    pub fn refund(&mut self, n: u64) {
        self.tokens = self.tokens.saturating_add(n).min(self.capacity);
    }

    /// Charges work that turned out larger than what was taken for it;
    /// what the tokens do not cover is a debt, repaid from later refills.
    pub fn charge(&mut self, n: u64) {
        let covered = n.min(self.tokens);
        self.tokens -= covered;
        self.debt = self.debt.saturating_add(n - covered);
    }

    /// Settles work for which `taken` tokens were taken and `cost` was spent.
    pub fn settle(&mut self, taken: u64, cost: u64) {
        if cost <= taken {
            self.refund(taken - cost);
        } else {
            self.charge(cost - taken);
        }
    }

    /// Nanoseconds until `n` tokens are available.
    pub fn wait_ns(&self, n: u64) -> u64 {
        let missing = n
            .min(self.capacity)
            .saturating_add(self.debt)
            .saturating_sub(self.tokens);
        missing.saturating_mul(NS_PER_MS).div_ceil(self.rate_per_ms)
    }

    pub fn rate_per_ms(&self) -> u64 {
        self.rate_per_ms
    }

    /// The most tokens the bucket holds now.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the domain is held to its share without bursts.
    pub fn penalised(&self) -> bool {
        self.capacity < self.burst
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            hw_burst: 10,
            hw_refill_per_ms: 8,
            hw_penalty_after_ms: 5,
            ..Policy::default()
        }
    }

    #[test]
    fn a_domain_within_its_share_never_waits() {
        let mut b = HwBudget::new(&policy());
        for ms in 1..1000u64 {
            b.refill(ms * NS_PER_MS);
            assert!(b.take(8), "8 per ms is the share");
        }
        assert!(!b.penalised());
    }

    #[test]
    fn a_flooder_is_held_to_its_share_and_loses_its_burst_after_the_period() {
        let mut b = HwBudget::new(&policy());
        let mut taken = 0;
        for ms in 0..20u64 {
            b.refill(ms * NS_PER_MS);
            while b.take(1) {
                taken += 1;
            }
        }
        // The burst, then the share: never below it.
        assert_eq!(taken, 10 + 19 * 8);
        assert!(b.penalised());
        assert_eq!(b.capacity(), 8, "one millisecond of its share");
        // Within its share for the period: the burst comes back.
        b.refill(30 * NS_PER_MS);
        assert!(!b.penalised());
        b.refill(40 * NS_PER_MS);
        assert_eq!(b.tokens(), 10);
    }

    #[test]
    fn a_clock_that_jumps_or_goes_back_does_not_wedge_the_budget() {
        let mut b = HwBudget::new(&policy());
        assert!(b.take(10));
        b.refill(u64::MAX / 2);
        assert_eq!(b.tokens(), 10, "a jump earns a full bucket, no more");
        assert!(b.take(10));
        b.refill(NS_PER_MS);
        assert!(b.take(0));
        b.refill(2 * NS_PER_MS);
        assert_eq!(b.tokens(), 8, "after going back, time counts again");
        assert_eq!(
            b.wait_ns(u64::MAX),
            250_000,
            "never waits for more than a bucket"
        );
    }

    #[test]
    fn work_beyond_the_tokens_is_a_debt_repaid_before_new_work() {
        let mut b = HwBudget::new(&policy());
        assert!(b.take(8));
        b.settle(8, 15);
        assert_eq!(b.tokens(), 0);
        assert!(!b.take(1), "5 tokens owed");
        b.refill(NS_PER_MS);
        assert!(!b.take(4), "8 earned: 5 repay the debt, 3 left");
        assert!(b.take(3));
    }
}
