//! The guest's stage 2, shared by the CPU (VTTBR_EL2) and, for nested STEs,
//! the SMMU: a 40-bit IPA space starting at level 0 (T0SZ=24, SL0=0b10 for
//! the 4K granule), so that neither walker needs concatenated tables.
//! Identity map of everything the guest may touch except the hypervisor's
//! 2 MiB and the SMMU frame, which the hypervisor emulates.

use smmuv3::structs::{
    TtS2BlockPage, TtS2BlockPageS2ap, TtS2BlockPageSh, TtS2BlockPageXn, TtS2Table,
};

use crate::layout;

const ENTRIES: usize = 512;
const PAGE: u64 = 1 << 12;
const L2_BLOCK: u64 = 1 << 21;
const L1_BLOCK: u64 = 1 << 30;
/// Stage-2 MemAttr: Normal inner/outer write-back, and Device-nGnRE.
const MEMATTR_NORMAL_WB: u8 = 0b1111;
const MEMATTR_DEVICE_NGNRE: u8 = 0b0001;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

const EMPTY: Table = Table([0; ENTRIES]);

/// Level 0 root, two level-1 tables (IPA 0-512 GiB and the 64-bit PCIe
/// window 512 GiB-1 TiB), level 2 for MMIO and RAM, level 3 around the SMMU.
struct Tables {
    l0: Table,
    l1_low: Table,
    l1_high: Table,
    l2_mmio: Table,
    l2_ram: Table,
    l3_smmu: Table,
}

static mut TABLES: Tables = Tables {
    l0: EMPTY,
    l1_low: EMPTY,
    l1_high: EMPTY,
    l2_mmio: EMPTY,
    l2_ram: EMPTY,
    l3_smmu: EMPTY,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ram,
    Device,
}

fn leaf(pa: u64, kind: Kind, page: bool) -> u64 {
    let (attr, sh, xn) = match kind {
        Kind::Ram => (
            MEMATTR_NORMAL_WB,
            TtS2BlockPageSh::INNER_SHAREABLE,
            TtS2BlockPageXn::EXEC_ALL,
        ),
        Kind::Device => (
            MEMATTR_DEVICE_NGNRE,
            TtS2BlockPageSh::NON_SHAREABLE,
            TtS2BlockPageXn::EXEC_NONE,
        ),
    };
    TtS2BlockPage::new()
        .with_valid(true)
        // Level-3 pages have Type=1, blocks Type=0.
        .with_type_(page)
        .with_mem_attr(attr)
        .with_s2ap(TtS2BlockPageS2ap::RW)
        .with_sh(sh)
        .with_af(true)
        .with_xn(xn)
        .with_oa(pa)
        .0[0]
}

fn table(next: &Table) -> u64 {
    TtS2Table::new()
        .with_valid(true)
        .with_type_(true)
        .with_nlta(next as *const Table as u64)
        .0[0]
}

fn in_smmu(pa: u64) -> bool {
    (layout::SMMU_BASE..layout::SMMU_BASE + layout::SMMU_SIZE).contains(&pa)
}

/// Fills the tables once, on the primary CPU, and returns the root's PA.
pub fn build() -> u64 {
    // SAFETY: called once on the primary CPU before any CPU uses stage 2.
    let t = unsafe { &mut *core::ptr::addr_of_mut!(TABLES) };
    let smmu_block = layout::SMMU_BASE & !(L2_BLOCK - 1);
    for (i, e) in t.l3_smmu.0.iter_mut().enumerate() {
        let pa = smmu_block + i as u64 * PAGE;
        *e = if in_smmu(pa) {
            0
        } else {
            leaf(pa, Kind::Device, true)
        };
    }
    for (i, e) in t.l2_mmio.0.iter_mut().enumerate() {
        let pa = i as u64 * L2_BLOCK;
        *e = if pa == smmu_block {
            table(&t.l3_smmu)
        } else {
            leaf(pa, Kind::Device, false)
        };
    }
    for (i, e) in t.l2_ram.0.iter_mut().enumerate() {
        let pa = layout::RAM_BASE + i as u64 * L2_BLOCK;
        *e = if pa == layout::HYP_BASE {
            0
        } else {
            leaf(pa, Kind::Ram, false)
        };
    }
    t.l1_low.0[0] = table(&t.l2_mmio);
    t.l1_low.0[1] = table(&t.l2_ram);
    // 0x40_0000_0000: the GiB holding the PCIe ECAM (0x40_1000_0000).
    t.l1_low.0[256] = leaf(256 * L1_BLOCK, Kind::Device, false);
    // 0x80_0000_0000-0xff_ffff_ffff: the 64-bit PCIe MMIO window.
    for (i, e) in t.l1_high.0.iter_mut().enumerate() {
        *e = leaf((ENTRIES + i) as u64 * L1_BLOCK, Kind::Device, false);
    }
    t.l0.0[0] = table(&t.l1_low);
    t.l0.0[1] = table(&t.l1_high);
    &t.l0 as *const Table as u64
}
