//! Queue pointer arithmetic (§3.5): an index of LOG2SIZE bits and a wrap bit
//! just above it. Pure functions over the register values, so that the
//! command and event queues share them and unit tests can pin them down.

use crate::ports::Ipa;

/// A queue as its base register describes it, LOG2SIZE already capped at
/// the size the vSMMU advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    pub base: Ipa,
    pub log2size: u32,
    /// Bytes per entry (16 for commands, 32 for events).
    pub entry_bytes: u64,
}

impl Queue {
    /// From a base register's ADDR (in place) and LOG2SIZE; LOG2SIZE above
    /// `max_log2` behaves as `max_log2` (§6.3.25).
    pub fn new(addr: u64, log2size: u32, max_log2: u32, entry_bytes: u64) -> Self {
        Queue {
            base: Ipa(addr),
            log2size: log2size.min(max_log2),
            entry_bytes,
        }
    }

    /// Index and wrap bits of a pointer: everything above is ignored.
    pub fn ptr_mask(&self) -> u32 {
        (2u32 << self.log2size) - 1
    }

    pub fn index(&self, ptr: u32) -> u32 {
        ptr & ((1u32 << self.log2size) - 1)
    }

    pub fn wrap(&self, ptr: u32) -> bool {
        (ptr >> self.log2size) & 1 != 0
    }

    pub fn is_empty(&self, prod: u32, cons: u32) -> bool {
        prod & self.ptr_mask() == cons & self.ptr_mask()
    }

    pub fn is_full(&self, prod: u32, cons: u32) -> bool {
        self.index(prod) == self.index(cons) && self.wrap(prod) != self.wrap(cons)
    }

    /// Entries between `cons` and `prod`.
    pub fn used(&self, prod: u32, cons: u32) -> u32 {
        let size = 1u32 << self.log2size;
        let (pi, ci) = (self.index(prod), self.index(cons));
        if self.wrap(prod) == self.wrap(cons) {
            pi.wrapping_sub(ci) & (2 * size - 1)
        } else {
            size - ci + pi
        }
    }

    /// The pointer after `ptr`, wrapping the index and toggling the wrap bit.
    pub fn next(&self, ptr: u32) -> u32 {
        (ptr & self.ptr_mask()).wrapping_add(1) & self.ptr_mask()
    }

    /// Guest address of the entry `ptr` points at. Cannot overflow: the index
    /// is below 2^20 and entries are at most 32 bytes.
    pub fn entry(&self, ptr: u32) -> Ipa {
        Ipa(self
            .base
            .0
            .wrapping_add(u64::from(self.index(ptr)) * self.entry_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_wrap_and_toggle_the_wrap_bit() {
        let q = Queue::new(0x1000, 2, 19, 16);
        assert_eq!(q.next(3), 4, "index 3 -> index 0 with wrap set");
        assert!(q.wrap(4) && q.index(4) == 0);
        assert_eq!(q.next(7), 0);
        assert!(q.is_full(4, 0));
        assert!(q.is_empty(5, 5));
        assert_eq!(q.used(6, 3), 3);
        assert_eq!(q.used(1, 7), 2);
        assert_eq!(q.entry(6), Ipa(0x1000 + 2 * 16));
    }

    #[test]
    fn an_oversized_log2size_behaves_as_the_advertised_maximum() {
        let q = Queue::new(0, 31, 8, 16);
        assert_eq!(q.log2size, 8);
        // Bits above the wrap bit are ignored, wherever the guest put them.
        assert_eq!(q.next(0xfff_ffff), 0);
        assert!(q.is_empty(0x200, 0));
    }
}
