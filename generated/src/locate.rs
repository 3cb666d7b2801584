//! Finding a StreamID's STE (§3.3, §5.1, §6.3.25) and a SubstreamID's CD
//! (§3.4, §5.4), written once for every SMMU in the project: the vSMMU
//! reading a guest's table, the software model reading the hypervisor's,
//! and the drivers building theirs.
//!
//! A lookup is at most two steps: the L1STD (2-level tables only), then the
//! STE. The validity rules are the architecture's C_BAD_STREAMID conditions
//! (§7.3, event 0x02): StreamID beyond LOG2SIZE (capped at SIDSIZE), Span 0
//! or Reserved (12-31), Span beyond SPLIT + 1, and a StreamID beyond the
//! level-2 array the Span describes.

use crate::regs::{Idr0, Idr0StLevel, Idr1, StrtabBase, StrtabBaseCfg, StrtabBaseCfgFmt};
use crate::structs::{Cd, L1cd, L1std, Ste, SteS1Fmt};

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

    /// For software building a 2-level table: the bytes of one level-2
    /// array covering a whole SPLIT (2^SPLIT STEs).
    pub fn l2_bytes(&self) -> u64 {
        STE_BYTES << self.split
    }

    /// The L1STD that points at a level-2 array of [`Self::l2_bytes`] at
    /// `l2`: Span SPLIT + 1, every StreamID of its group valid.
    pub fn full_l1std(&self, l2: u64) -> L1std {
        L1std::new()
            .with_span((self.split + 1) as u8)
            .with_l2_ptr(l2)
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

/// Bytes of one CD and one L1CD.
const CD_BYTES: u64 = (Cd::WORDS * 8) as u64;
const L1CD_BYTES: u64 = (L1cd::WORDS * 8) as u64;

/// A stream's Context Descriptor table, as its STE describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdTable {
    base: u64,
    /// log2 of the CDs one level-2 table holds; None for a linear table.
    split: Option<u32>,
    /// S1CDMax: log2 of the number of CDs (0: one CD, no substreams).
    cdmax: u32,
}

/// The first read of a CD lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdLookup {
    /// The CD is here.
    Cd(u64),
    /// A 2-level table: read the L1CD here, then call [`CdTable::cd_in_l2`].
    L1cd(u64),
}

impl CdTable {
    /// The table of `ste` (its S1ContextPtr, S1Fmt and S1CDMax), on an SMMU
    /// whose IDR1.SSIDSIZE is `ssidsize` and whose IDR0.CD2L says whether
    /// 2-level tables exist. Without substreams (SSIDSIZE 0 or S1CDMax 0)
    /// the pointer is the single CD and S1Fmt is ignored; a 2-level format
    /// without CD2L, or a Reserved one, behaves as linear.
    pub fn new(ste: &Ste, idr0: Idr0, ssidsize: u8) -> Self {
        let cdmax = if ssidsize == 0 {
            0
        } else {
            u32::from(ste.s1cd_max())
        };
        // A level-2 table is one 4 KiB or 64 KiB leaf of CDs.
        let leaf = |bytes: u64| Some((bytes / CD_BYTES).trailing_zeros());
        let split = match ste.s1_fmt() {
            _ if cdmax == 0 || !idr0.cd2l() => None,
            SteS1Fmt::TWO_LEVEL_4KB => leaf(4 << 10),
            SteS1Fmt::TWO_LEVEL_64KB => leaf(64 << 10),
            _ => None,
        };
        CdTable {
            base: ste.s1_context_ptr(),
            split,
            cdmax,
        }
    }

    /// S1CDMax as it takes effect (0 when the stream has no substreams).
    pub fn cdmax(&self) -> u32 {
        self.cdmax
    }

    /// Whether the SubstreamID is within the table (2^S1CDMax CDs).
    pub fn in_range(&self, ssid: u32) -> bool {
        self.cdmax >= 32 || ssid >> self.cdmax == 0
    }

    /// Where the lookup of CD `index` starts, or None when it is beyond the
    /// table.
    pub fn lookup(&self, index: u32) -> Option<CdLookup> {
        if !self.in_range(index) {
            return None;
        }
        Some(match self.split {
            Some(split) => CdLookup::L1cd(
                self.base
                    .wrapping_add(u64::from(index >> split) * L1CD_BYTES),
            ),
            None => CdLookup::Cd(self.base.wrapping_add(u64::from(index) * CD_BYTES)),
        })
    }

    /// The CD `index` in the level-2 table `l1` points at, or None when the
    /// descriptor is invalid (V=0: C_BAD_SUBSTREAMID). L2Ptr is aligned to
    /// the level-2 table's size.
    pub fn cd_in_l2(&self, l1: L1cd, index: u32) -> Option<u64> {
        let split = self.split?;
        if !l1.v() {
            return None;
        }
        let l2 = l1.l2_ptr() & !((CD_BYTES << split) - 1);
        Some(l2.wrapping_add(u64::from(index & ((1 << split) - 1)) * CD_BYTES))
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
    fn a_full_level_2_array_holds_every_stream_of_its_group() {
        let t = table(8, 16);
        assert_eq!(t.l2_bytes(), 256 * 64);
        let l1 = t.full_l1std(0x4_0000);
        assert_eq!(t.ste_in_l2(l1, 0x1200), Some(0x4_0000));
        assert_eq!(t.ste_in_l2(l1, 0x12ff), Some(0x4_0000 + 255 * 64));
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

    fn cd_ste(fmt: SteS1Fmt, cdmax: u8) -> Ste {
        Ste::new()
            .with_s1_context_ptr(0x10_0000)
            .with_s1_fmt(fmt)
            .with_s1cd_max(cdmax)
    }

    #[test]
    fn a_cd_table_is_one_cd_without_substreams_and_two_levels_with_cd2l() {
        let cd2l = Idr0(0).with_cd2l(true);
        let single = CdTable::new(&cd_ste(SteS1Fmt::TWO_LEVEL_4KB, 0), cd2l, 20);
        assert_eq!(single.lookup(0), Some(CdLookup::Cd(0x10_0000)));
        assert_eq!(single.lookup(1), None);
        let no_ssids = CdTable::new(&cd_ste(SteS1Fmt::LINEAR, 8), cd2l, 0);
        assert_eq!(no_ssids.cdmax(), 0, "SSIDSIZE 0: S1CDMax has no effect");
        let two = CdTable::new(&cd_ste(SteS1Fmt::TWO_LEVEL_4KB, 10), cd2l, 20);
        // 64 CDs per 4 KiB leaf: CD 130 is entry 2 of leaf 2.
        assert_eq!(two.lookup(130), Some(CdLookup::L1cd(0x10_0000 + 2 * 8)));
        let l1 = L1cd::new().with_v(true).with_l2_ptr(0x20_0040);
        assert_eq!(two.cd_in_l2(l1, 130), Some(0x20_0000 + 2 * 64));
        assert_eq!(two.cd_in_l2(L1cd::new().with_l2_ptr(0x20_0000), 130), None);
        assert_eq!(two.lookup(1 << 10), None, "beyond 2^S1CDMax");
        let big = CdTable::new(&cd_ste(SteS1Fmt::TWO_LEVEL_64KB, 12), cd2l, 20);
        assert_eq!(big.lookup(1025), Some(CdLookup::L1cd(0x10_0000 + 8)));
        let no_cd2l = CdTable::new(&cd_ste(SteS1Fmt::TWO_LEVEL_4KB, 10), Idr0(0), 20);
        assert_eq!(no_cd2l.lookup(3), Some(CdLookup::Cd(0x10_0000 + 3 * 64)));
    }
}
