//! The EL2 stage-1 translation: an identity map of the first 2 GiB, Device
//! memory below RAM (GIC, UART, SMMU, PCIe windows) and Normal write-back for
//! RAM (guest RAM, which the vSMMU reads, and the hypervisor itself).

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use smmuv3::structs::{TtS1BlockPage, TtS1BlockPageAp, TtS1BlockPageSh};

/// MAIR_EL2 indices.
const ATTR_DEVICE: u8 = 0;
const ATTR_NORMAL: u8 = 1;
const GIB: u64 = 1 << 30;
/// Where QEMU virt's RAM starts: everything below is MMIO.
pub const RAM_BASE: u64 = 0x4000_0000;

/// A level-1 table: 512 GiB of VA in 1 GiB blocks (T0SZ=25, start level 1).
#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut EL2_L1: Table = Table([0; 512]);

fn block(pa: u64, attr: u8) -> u64 {
    let normal = attr == ATTR_NORMAL;
    TtS1BlockPage::new()
        .with_valid(true)
        .with_type_(false)
        .with_attr_indx(attr)
        // AP[1] is RES1 in the EL2 regime: "ALL_RW" is EL2 read/write.
        .with_ap(TtS1BlockPageAp::ALL_RW)
        .with_sh(if normal {
            TtS1BlockPageSh::INNER_SHAREABLE
        } else {
            TtS1BlockPageSh::NON_SHAREABLE
        })
        .with_af(true)
        // UXN is XN at EL2: never execute from device space.
        .with_uxn(!normal)
        .with_oa(pa)
        .0[0]
}

/// Fills the table once, on the primary CPU, before any CPU enables it.
pub fn build() {
    // SAFETY: called once on the primary CPU before the secondaries start.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(EL2_L1) };
    table.0[0] = block(0, ATTR_DEVICE);
    table.0[1] = block(RAM_BASE, ATTR_NORMAL);
}

/// Turns the EL2 MMU and caches on for this CPU.
pub fn enable() {
    MAIR_EL2.write(
        MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    TCR_EL2.write(
        TCR_EL2::T0SZ.val(25)
            + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::SH0::Inner
            + TCR_EL2::TG0::KiB_4
            + TCR_EL2::PS::Bits_40,
    );
    TTBR0_EL2.set(core::ptr::addr_of!(EL2_L1) as u64);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: invalidates this CPU's EL2 TLB entries; no memory is touched.
    unsafe { core::arch::asm!("tlbi alle2", "dsb nsh", "isb") };
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable);
    barrier::isb(barrier::SY);
    let _ = GIB;
}
