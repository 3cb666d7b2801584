//! Circular queue index arithmetic shared by the Command and Event queues:
//! an index below LOG2SIZE and a wrap bit just above it (§3.5).

/// A queue's geometry, from its *_BASE register capped by SMMU_IDR1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    pub base: u64,
    pub log2: u32,
    /// Bytes per entry.
    pub entry: u64,
}

impl Queue {
    pub fn new(base: u64, log2size: u8, max_log2: u8, entry: u64) -> Self {
        Queue {
            base,
            log2: u32::from(log2size.min(max_log2).min(19)),
            entry,
        }
    }

    fn idx_mask(&self) -> u32 {
        (1u32 << self.log2) - 1
    }

    fn ptr_mask(&self) -> u32 {
        (2u32 << self.log2) - 1
    }

    /// Index and wrap bit of a pointer value (higher bits dropped).
    pub fn ptr(&self, p: u32) -> u32 {
        p & self.ptr_mask()
    }

    pub fn index(&self, p: u32) -> u32 {
        p & self.idx_mask()
    }

    pub fn next(&self, p: u32) -> u32 {
        self.ptr(p.wrapping_add(1))
    }

    pub fn is_empty(&self, prod: u32, cons: u32) -> bool {
        self.ptr(prod) == self.ptr(cons)
    }

    pub fn is_full(&self, prod: u32, cons: u32) -> bool {
        self.index(prod) == self.index(cons) && self.ptr(prod) != self.ptr(cons)
    }

    /// Address of the entry a pointer selects.
    pub fn slot(&self, p: u32) -> u64 {
        self.base
            .wrapping_add(u64::from(self.index(p)).wrapping_mul(self.entry))
    }

    /// Number of entries: a bound for loops over the queue.
    pub fn len(&self) -> u32 {
        1u32 << self.log2
    }
}
