//! Counters printed at SYSTEM_OFF (and by hyp/run in its JSON line).

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
);
