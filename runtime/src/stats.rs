//! Per-domain counters, for the hypervisor's logs and monitoring.

/// What one vSMMU instance has done since it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Guest commands consumed, by opcode.
    pub commands: [u64; 256],
    /// Guest commands refused with CERROR_ILL.
    pub cerror_ill: u64,
    /// Guest command fetches that faulted (CERROR_ABT).
    pub cerror_abt: u64,
    /// Physical invalidation commands issued.
    pub hw_commands: u64,
    /// Physical syncs issued.
    pub hw_syncs: u64,
    /// Physical stream configurations installed.
    pub hw_installs: u64,
    /// Physical commands (syncs included) the installs took.
    pub hw_install_commands: u64,
    /// Times the streams were made to abort because the hardware kept
    /// failing to confirm invalidations.
    pub containments: u64,
    /// Hardware-layer failures.
    pub hw_errors: u64,
    /// Guest invalidations merged away by batching.
    pub merged: u64,
    /// Events written to the guest's event queue.
    pub events_forwarded: u64,
    /// Events discarded (guest queue disabled, full or unreachable).
    pub events_dropped: u64,
    /// Stage-2 faults on final accesses kept by the hypervisor.
    pub stage2_faults: u64,
    /// Calls that stopped because the per-call command budget ran out.
    pub budget_exhausted: u64,
    /// Calls that stopped because the domain's physical command budget ran out.
    pub hw_budget_exhausted: u64,
    /// Deferred-work requests made.
    pub deferrals: u64,
    /// Guest STEs refused (C_BAD_STE installed).
    pub bad_stes: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            commands: [0; 256],
            cerror_ill: 0,
            cerror_abt: 0,
            hw_commands: 0,
            hw_syncs: 0,
            hw_installs: 0,
            hw_install_commands: 0,
            containments: 0,
            hw_errors: 0,
            merged: 0,
            events_forwarded: 0,
            events_dropped: 0,
            stage2_faults: 0,
            budget_exhausted: 0,
            hw_budget_exhausted: 0,
            deferrals: 0,
            bad_stes: 0,
        }
    }
}

impl Stats {
    /// Guest commands consumed in all.
    pub fn commands_total(&self) -> u64 {
        self.commands.iter().sum()
    }
}
