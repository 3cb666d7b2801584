//! Counters printed at SYSTEM_OFF (and by hyp/run in its JSON line): plain
//! ones as `counter NAME VALUE`, named ones (by register, by command kind)
//! as `counter GROUP.NAME VALUE`.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn max(&self, v: u64) {
        self.0.fetch_max(v, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One counter per SMMU register (`smmuv3::Register::index`).
pub struct ByRegister([Counter; smmuv3::Register::COUNT]);

impl ByRegister {
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const ZERO: Counter = Counter::new();
        ByRegister([ZERO; smmuv3::Register::COUNT])
    }
    pub fn inc(&self, reg: smmuv3::Register) {
        self.0[reg.index()].inc();
    }
    /// Prints the registers that were accessed, as `counter GROUP.NAME VALUE`.
    pub fn print(&self, group: &str) {
        for reg in smmuv3::Register::ALL {
            let n = self.0[reg.index()].get();
            if n != 0 {
                crate::println!("counter {group}.{} {n}", reg.info().name);
            }
        }
    }
}

/// Trapped vSMMU accesses by register (the frame's RAZ/WI offsets apart).
pub static SMMU_READS_BY_REG: ByRegister = ByRegister::new();
pub static SMMU_WRITES_BY_REG: ByRegister = ByRegister::new();

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        $(pub static $name: Counter = Counter::new();)*
        /// Prints every counter as `counter NAME VALUE` (hyp/run parses these).
        pub fn print_all() {
            $(crate::println!("counter {} {}", stringify!($name).to_ascii_lowercase(), $name.get());)*
        }
    };
}

counters!(
    TRAPS,
    SMMU_READS,
    SMMU_WRITES,
    SMC,
    PSCI_CPU_ON,
    WFI,
    INJECTED_ABORTS,
    OTHER_TRAPS,
    MAX_TRAP_TICKS,
    VIRQS,
    MSI_DROPPED,
    EVENTS_DRAINED,
    EVENTS_AT_IDLE,
    DEFERRED_RUNS,
    MAX_GUEST_CMDS_PER_TRAP,
    MAX_CALL_TICKS,
    SNAPSHOTS,
);
