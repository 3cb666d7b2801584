//! The generated MMIO dispatch, driven the way a guest driver drives an SMMU:
//! by offset and access size, through `mmio_read`/`mmio_write`.

use smmuv3::mmio::{decode_access, mmio_read, mmio_write};
use smmuv3::properties::Bank;
use smmuv3::regs::{Cr0, Gbpa, Idr0, StrtabBase};
use smmuv3::{Access, Half, Register, WriteEffect, REGISTERS};

/// The frame offset of a register (page 1 at 0x10000), from the spec.
fn at(reg: Register) -> (u32, u32) {
    (reg.info().page as u32, reg.info().offset)
}

/// QEMU virt's nested SMMUv3: IDR0 0x0d44101b (no MSI, no ATOS, no PRI).
fn qemu_like() -> Bank {
    Bank::new(&[
        (Register::IDR0, 0x0d44_101b),
        (Register::IDR1, 0x0273_0010),
        (Register::IDR5, 0x74),
    ])
}

fn read32(b: &Bank, reg: Register) -> u64 {
    let (p, o) = at(reg);
    mmio_read(b, p, o, 4)
}

fn write32(b: &mut Bank, reg: Register, v: u64) -> WriteEffect {
    let (p, o) = at(reg);
    mmio_write(b, p, o, 4, v)
}

#[test]
fn a_cr0_write_calls_its_handler_and_is_mirrored_into_cr0ack() {
    let mut b = qemu_like();
    let v = Cr0::RESET.with_smmuen(true).with_cmdqen(true).0 as u64;
    assert_eq!(write32(&mut b, Register::CR0, v), WriteEffect::Stored);
    assert_eq!(b.last_handler, Some(("write_cr0", 0, v)));
    assert_eq!(read32(&b, Register::CR0ACK), v);
    // CR0ACK itself is read-only.
    assert_eq!(write32(&mut b, Register::CR0ACK, 0), WriteEffect::Ignored);
    assert_eq!(read32(&b, Register::CR0ACK), v);
}

#[test]
fn id_registers_read_what_the_runtime_presents_and_ignore_writes() {
    let mut b = qemu_like();
    let idr0 = Idr0(read32(&b, Register::IDR0) as u32);
    assert!(idr0.s1p() && idr0.s2p() && !idr0.msi());
    assert_eq!(write32(&mut b, Register::IDR0, 0), WriteEffect::Ignored);
    assert_eq!(read32(&b, Register::IDR0), 0x0d44_101b);
}

#[test]
fn sixty_four_bit_registers_take_both_halves_and_whole_accesses() {
    let mut b = qemu_like();
    let (p, o) = at(Register::STRTAB_BASE);
    mmio_write(&mut b, p, o, 4, 0x4000_0000);
    mmio_write(&mut b, p, o + 4, 4, 0x0000_0001);
    assert_eq!(mmio_read(&b, p, o, 8), 0x1_4000_0000);
    assert_eq!(mmio_read(&b, p, o + 4, 4), 0x1);
    let ra = StrtabBase(0).with_ra(true).0;
    mmio_write(&mut b, p, o, 8, ra | 0x8000_0040);
    assert_eq!(mmio_read(&b, p, o, 8), ra | 0x8000_0040);
    // Bits below ADDR[6] and RES0 bits are not stored.
    mmio_write(&mut b, p, o, 8, 0x8000_0007);
    assert_eq!(mmio_read(&b, p, o, 8), 0x8000_0000);
}

#[test]
fn wrong_sizes_unaligned_and_reserved_offsets_are_raz_wi() {
    let mut b = qemu_like();
    let (p, o) = at(Register::CR0);
    // A 64-bit access to a 32-bit register, byte and halfword accesses, unaligned.
    for (off, size) in [(o, 8), (o, 1), (o, 2), (o + 1, 4), (o + 2, 4)] {
        assert_eq!(
            decode_access(p, off, size),
            Access::RazWi,
            "{off:#x}/{size}"
        );
        assert_eq!(
            mmio_write(&mut b, p, off, size, 0xffff_ffff),
            WriteEffect::Ignored
        );
    }
    assert_eq!(read32(&b, Register::CR0), 0);
    // An offset no register occupies, on either page, and the Secure page.
    for (page, off) in [(0, 0x38), (0, 0xe00), (1, 0x0), (1, 0x20), (0, 0x8000)] {
        assert_eq!(decode_access(page, off, 4), Access::RazWi);
        assert_eq!(mmio_read(&b, page, off, 4), 0);
    }
    // The page-0 slots of the page-1 queue pointers are RAZ/WI here.
    let (p1, eprod) = at(Register::EVENTQ_PROD);
    assert_eq!(p1, 1);
    assert_eq!(decode_access(0, eprod, 4), Access::RazWi);
}

#[test]
fn every_register_is_reachable_at_its_offset() {
    for info in REGISTERS.iter() {
        let reg = Register::by_name(info.name).unwrap();
        let size = if info.width == 64 { 8 } else { 4 };
        assert_eq!(
            decode_access(info.page as u32, info.offset, size),
            Access::Register {
                reg,
                half: Half::Full
            },
            "{}",
            info.name
        );
        assert_eq!(Register::at_frame_offset(info.frame_offset()), Some(reg));
    }
}

#[test]
fn stream_table_base_ignores_writes_while_the_smmu_is_enabled() {
    let mut b = qemu_like();
    write32(&mut b, Register::CR0, Cr0(0).with_smmuen(true).0 as u64);
    let (p, o) = at(Register::STRTAB_BASE);
    assert_eq!(
        mmio_write(&mut b, p, o, 8, 0x4000_0000),
        WriteEffect::Ignored
    );
    assert_eq!(mmio_read(&b, p, o, 8), 0);
    write32(&mut b, Register::CR0, 0);
    assert_eq!(
        mmio_write(&mut b, p, o, 8, 0x4000_0000),
        WriteEffect::Stored
    );
}

#[test]
fn gbpa_update_handshake_completes_through_its_handler() {
    let mut b = qemu_like();
    assert_eq!(read32(&b, Register::GBPA), Gbpa::RESET.0 as u64);
    let v = Gbpa(0).with_update(true).with_abort(true).0 as u64;
    assert_eq!(write32(&mut b, Register::GBPA, v), WriteEffect::Stored);
    let now = Gbpa(read32(&b, Register::GBPA) as u32);
    assert!(now.abort() && !now.update());
}

#[test]
fn msi_configuration_registers_are_absent_without_msi() {
    let mut b = qemu_like();
    assert_eq!(
        write32(&mut b, Register::GERROR_IRQ_CFG1, 0x1234),
        WriteEffect::Ignored
    );
    assert_eq!(read32(&b, Register::GERROR_IRQ_CFG1), 0);
    let mut with_msi = Bank::new(&[(Register::IDR0, Idr0(0x0d44_101b).with_msi(true).0 as u64)]);
    assert_eq!(
        write32(&mut with_msi, Register::GERROR_IRQ_CFG1, 0x1234),
        WriteEffect::Stored
    );
    assert_eq!(read32(&with_msi, Register::GERROR_IRQ_CFG1), 0x1234);
}

#[test]
fn queue_pointer_writes_reach_their_handlers_on_the_right_page() {
    let mut b = qemu_like();
    assert_eq!(write32(&mut b, Register::CMDQ_PROD, 5), WriteEffect::Stored);
    assert_eq!(b.last_handler, Some(("write_cmdq_prod", 0, 5)));
    let (p, o) = at(Register::EVENTQ_CONS);
    assert_eq!(p, 1);
    assert_eq!(mmio_write(&mut b, 1, o, 4, 3), WriteEffect::Stored);
    assert_eq!(b.last_handler, Some(("write_eventq_cons", 0, 3)));
}

#[test]
fn gerror_is_read_only_and_gerrorn_reaches_its_handler() {
    let mut b = qemu_like();
    assert_eq!(write32(&mut b, Register::GERROR, 1), WriteEffect::Ignored);
    assert_eq!(write32(&mut b, Register::GERRORN, 1), WriteEffect::Stored);
    assert_eq!(b.last_handler, Some(("write_gerrorn", 0, 1)));
}

#[test]
fn the_tock_register_layouts_put_every_register_at_its_offset() {
    use core::mem::offset_of;
    use smmuv3::tock::{Page0, Page1};
    assert_eq!(core::mem::size_of::<Page0>(), 0x1_0000);
    assert_eq!(core::mem::size_of::<Page1>(), 0x1_0000);
    assert_eq!(offset_of!(Page0, cr0) as u32, Register::CR0.info().offset);
    assert_eq!(
        offset_of!(Page0, strtab_base) as u32,
        Register::STRTAB_BASE.info().offset
    );
    assert_eq!(
        offset_of!(Page0, cmdq_prod) as u32,
        Register::CMDQ_PROD.info().offset
    );
    assert_eq!(
        offset_of!(Page1, eventq_prod) as u32,
        Register::EVENTQ_PROD.info().offset
    );
    assert_eq!(
        offset_of!(Page1, priq_cons) as u32,
        Register::PRIQ_CONS.info().offset
    );
}
