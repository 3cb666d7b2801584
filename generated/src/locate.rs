//! Finding a StreamID's STE (§3.3, §5.1, §6.3.25), written once for every
//! SMMU in the project: the vSMMU reading a guest's table, the software
//! model reading the hypervisor's, and the drivers building theirs.
//!
//! A lookup is at most two steps: the L1STD (2-level tables only), then the
//! STE. The validity rules are the architecture's C_BAD_STREAMID conditions
//! (§7.3, event 0x02): StreamID beyond LOG2SIZE (capped at SIDSIZE), Span 0
//! or Reserved (12-31), Span beyond SPLIT + 1, and a StreamID beyond the
//! level-2 array the Span describes.

use crate::regs::{Idr0, Idr0StLevel, Idr1, StrtabBase, StrtabBaseCfg, StrtabBaseCfgFmt};
use crate::structs::{L1std, Ste};

/// Bytes of one STE and one L1STD.
const STE_BYTES: u64 = (Ste::WORDS * 8) as u64;
const L1STD_BYTES: u64 = (L1std::WORDS * 8) as u64;

/// The largest Span that is not Reserved (§5.1).
const MAX_SPAN: u32 = 11;

/// A stream table as its base registers (and the SMMU's ID registers) describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTable {
    base: u64,
    two_level: bool,
    split: u32,
    log2size: u32,
}

/// The first read of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A linear table: the STE is here.
    Ste(u64),
    /// A 2-level table: read the L1STD here, then call [`StreamTable::ste_in_l2`].
    L1std(u64),
}

impl StreamTable {
    pub fn new(base: StrtabBase, cfg: StrtabBaseCfg, idr0: Idr0, idr1: Idr1) -> Self {
        // FMT is RES0 without 2-level support; its Reserved values behave as linear.
        let two_level =
            idr0.st_level() != Idr0StLevel(0) && cfg.fmt() == StrtabBaseCfgFmt::TWO_LEVEL;
        // SPLIT values other than 6, 8 and 10 are Reserved and behave as 6.
        let split = match cfg.split().0 {
            s @ (6 | 8 | 10) => u32::from(s),
            _ => 6,
        };
        StreamTable {
            base: base.addr(),
            two_level,
            split,
            log2size: u32::from(cfg.log2size()).min(u32::from(idr1.sidsize())),
        }
    }

    pub fn is_two_level(&self) -> bool {
        self.two_level
    }

    /// Whether the StreamID is below 2^LOG2SIZE (the effective size).
    pub fn in_range(&self, sid: u32) -> bool {
        self.log2size >= 32 || sid >> self.log2size == 0
    }

    /// Where a lookup for `sid` starts, or None when the StreamID is out of range.
    pub fn lookup(&self, sid: u32) -> Option<Lookup> {
        if !self.in_range(sid) {
            return None;
        }
        Some(if self.two_level {
            Lookup::L1std(
                self.base
                    .wrapping_add(u64::from(sid >> self.split) * L1STD_BYTES),
            )
        } else {
            Lookup::Ste(self.base.wrapping_add(u64::from(sid) * STE_BYTES))
        })
    }

    /// The STE of `sid` in the level-2 array `l1` describes, or None when
    /// the descriptor makes the StreamID invalid. L2Ptr is aligned to the
    /// array's size (its low bits are treated as 0).
    pub fn ste_in_l2(&self, l1: L1std, sid: u32) -> Option<u64> {
        let span = u32::from(l1.span());
        if span == 0 || span > MAX_SPAN || span > self.split + 1 {
            return None;
        }
        let index = sid & ((1u32 << self.split) - 1);
        if index >> (span - 1) != 0 {
            return None;
        }
        let array_bytes = STE_BYTES << (span - 1);
        let l2 = l1.l2_ptr() & !(array_bytes - 1);
        Some(l2.wrapping_add(u64::from(index) * STE_BYTES))
    }

    /// The StreamIDs located through the same L1STD as `sid` (a non-leaf
    /// CMD_CFGI_STE invalidates that descriptor for all of them, §4.3.1);
    /// just `sid` in a linear table.
    pub fn sharing_l1std(&self, sid: u32) -> (u32, u32) {
        if !self.two_level {
            return (sid, sid);
        }
        let low = (1u32 << self.split) - 1;
        (sid & !low, sid | low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::StrtabBaseCfgSplit;

    fn table(split: u8, log2size: u8) -> StreamTable {
        let cfg = StrtabBaseCfg(0)
            .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
            .with_split(StrtabBaseCfgSplit(split))
            .with_log2size(log2size);
        let idr0 = Idr0(0).with_st_level(Idr0StLevel(1));
        let idr1 = Idr1(0).with_sidsize(16);
        StreamTable::new(StrtabBase(0).with_addr(0x1000), cfg, idr0, idr1)
    }

    fn l1(span: u8, l2: u64) -> L1std {
        L1std::new().with_span(span).with_l2_ptr(l2)
    }

    #[test]
    fn span_is_bounded_by_the_split_point_and_the_reserved_values() {
        let t = table(6, 16);
        assert_eq!(t.lookup(0x85), Some(Lookup::L1std(0x1000 + 2 * 8)));
        assert_eq!(t.ste_in_l2(l1(7, 0x8000), 0x85), Some(0x8000 + 5 * 64));
        assert_eq!(t.ste_in_l2(l1(8, 0x8000), 0x85), None, "Span > SPLIT + 1");
        assert_eq!(t.ste_in_l2(l1(0, 0x8000), 0x85), None);
        assert_eq!(
            t.ste_in_l2(l1(3, 0x8000), 0x85),
            None,
            "index 5 beyond 4 STEs"
        );
        assert_eq!(table(10, 16).ste_in_l2(l1(12, 0x8000), 0), None, "Reserved");
        // The array is aligned to its size: 4 STEs are 256 bytes.
        assert_eq!(t.ste_in_l2(l1(3, 0x8040), 0x81), Some(0x8000 + 64));
    }

    #[test]
    fn reserved_formats_and_sizes_behave_as_the_architecture_says() {
        assert!(
            !table(6, 20).in_range(1 << 16),
            "LOG2SIZE is capped at SIDSIZE"
        );
        assert_eq!(table(7, 16).split, 6, "Reserved SPLIT behaves as 6");
        let linear = StreamTable::new(
            StrtabBase(0),
            StrtabBaseCfg(0)
                .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
                .with_log2size(4),
            Idr0(0),
            Idr1(0).with_sidsize(4),
        );
        assert_eq!(
            linear.lookup(3),
            Some(Lookup::Ste(3 * 64)),
            "no 2-level support"
        );
        assert_eq!(table(8, 16).sharing_l1std(0x1234), (0x1200, 0x12ff));
    }
}
