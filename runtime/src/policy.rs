//! Every number that bounds what one guest can make the host do. Each has a
//! default chosen for a Linux guest on a busy host; all can be changed per
//! domain, and [`Policy::check`] refuses values that would stop progress.

/// The hostile-guest policy of one vSMMU instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Guest commands consumed per trap or deferred-work call before the rest
    /// is deferred (Observation 4). Default 65: Linux publishes at most 64
    /// commands and their CMD_SYNC at once, and such a batch completes in
    /// the trap that publishes it.
    pub commands_per_call: u32,
    /// Guest STEs read (and installed) per call before the rest is
    /// continued in the next call. Default 64.
    pub stes_per_call: u32,
    /// Page invalidations (TLBI_NH_VA, TLBI_NH_VAA) gathered for one SMMU
    /// before they are replaced by one TLBI_NH_ALL of the domain's VMID,
    /// which covers them (Observation 4). Default 32.
    pub tlbi_coarsen_threshold: u32,
    /// Physical commands the domain may issue in a burst (Observation 5).
    /// Default 512: a full Linux batch of STE updates, each costing at most
    /// `INSTALL_MAX_COMMANDS`, fits.
    pub hw_burst: u32,
    /// The domain's fair share of the physical SMMU, in physical commands
    /// per millisecond: the rate its budget refills at. A domain within it
    /// never waits; one beyond it is held to it. Default 64.
    pub hw_refill_per_ms: u32,
    /// How long a domain must keep its budget exhausted before it loses its
    /// burst allowance (and how long it must then stay within its share to
    /// get it back): the "longer period" of Observation 5. Default 100 ms.
    pub hw_penalty_after_ms: u32,
    /// Events the guest's event queue may hold: the presented EVENTQS is
    /// capped so that the queue is full, and further events are discarded
    /// with OVFLG as the architecture says, at this many (rounded down to a
    /// power of two; Observation 6). Default 128.
    pub pending_event_limit: u32,
    /// Consecutive failures of the physical SMMU to confirm an invalidation
    /// before the domain's streams are made to abort until it does. Default 4.
    pub hw_retry_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            commands_per_call: 65,
            stes_per_call: 64,
            tlbi_coarsen_threshold: 32,
            hw_burst: 512,
            hw_refill_per_ms: 64,
            hw_penalty_after_ms: 100,
            pending_event_limit: 128,
            hw_retry_limit: 4,
        }
    }
}

/// A policy value that would stop the vSMMU from making progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// This field must not be zero.
    Zero(&'static str),
    /// `hw_burst` cannot hold one STE installation.
    BurstBelowInstall,
}

impl Policy {
    /// Refuses values with which some work could never be done.
    pub fn check(&self) -> Result<(), PolicyError> {
        let nonzero = [
            ("commands_per_call", self.commands_per_call),
            ("stes_per_call", self.stes_per_call),
            ("tlbi_coarsen_threshold", self.tlbi_coarsen_threshold),
            ("hw_burst", self.hw_burst),
            ("hw_refill_per_ms", self.hw_refill_per_ms),
            ("pending_event_limit", self.pending_event_limit),
            ("hw_retry_limit", self.hw_retry_limit),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(PolicyError::Zero(name));
        }
        if self.hw_burst < crate::ports::INSTALL_MAX_COMMANDS {
            return Err(PolicyError::BurstBelowInstall);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_that_stops_progress_is_refused() {
        assert_eq!(Policy::default().check(), Ok(()));
        let zero = Policy {
            commands_per_call: 0,
            ..Policy::default()
        };
        assert_eq!(zero.check(), Err(PolicyError::Zero("commands_per_call")));
        let tiny = Policy {
            hw_burst: 2,
            ..Policy::default()
        };
        assert_eq!(tiny.check(), Err(PolicyError::BurstBelowInstall));
    }
}
