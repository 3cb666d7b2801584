//! Every number that bounds what one guest can make the host do. Each has a
//! default chosen for a Linux guest on a busy host; all can be changed per
//! domain.

/// The hostile-guest policy of one vSMMU instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Guest commands consumed per trap or deferred-work call before the rest
    /// is deferred (Observation 4). Default 64: a Linux batch plus its SYNC.
    pub commands_per_call: u32,
    /// Guest STEs read per call by CFGI_STE_RANGE/CFGI_ALL before the command
    /// is continued in the next call. Default 64.
    pub stes_per_call: u32,
    /// Page invalidations of one (VMID, ASID) gathered in a batch before they
    /// are replaced by one TLBI_NH_ASID (Observation 4). Default 32.
    pub tlbi_asid_threshold: u32,
    /// Physical commands the domain may issue in a burst (Observation 5).
    /// Default 256.
    pub hw_burst: u32,
    /// Physical commands per millisecond the budget refills at while the
    /// domain behaves. Default 64.
    pub hw_refill_per_ms: u32,
    /// The refill rate never shrinks below this. Default 4.
    pub hw_refill_floor_per_ms: u32,
    /// Events written to the guest's queue and not yet consumed before
    /// forwarding stops (Observation 6). Default 128.
    pub pending_event_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            commands_per_call: 64,
            stes_per_call: 64,
            tlbi_asid_threshold: 32,
            hw_burst: 256,
            hw_refill_per_ms: 64,
            hw_refill_floor_per_ms: 4,
            pending_event_limit: 128,
        }
    }
}
