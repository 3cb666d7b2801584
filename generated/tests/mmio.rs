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

// ---- fields that exist only with a feature (`present_if`) or are writable
// only in some state (`writable_if`) ----

/// A field of a register, by its architectural name (positions come from the spec).
fn field(reg: Register, name: &str) -> &'static smmuv3::FieldInfo {
    reg.info()
        .fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{} has no field {name}", reg.info().name))
}

/// Identification registers with the given fields set to the given values.
fn presenting(features: &[(Register, &str, u64)]) -> Bank {
    let mut b = Bank::new(&[]);
    for (reg, name, v) in features {
        let f = field(*reg, name);
        let old = b.ident.get(*reg);
        b.ident
            .set(*reg, (old & !f.mask()) | ((v << f.lo) & f.mask()));
    }
    b
}

/// Writes every field of `reg` with ones, through the guest's access path.
fn write_ones(b: &mut Bank, reg: Register) -> WriteEffect {
    let (p, o) = at(reg);
    let size = if reg.info().width == 64 { 8 } else { 4 };
    mmio_write(b, p, o, size, reg.info().write_mask)
}

fn read(b: &Bank, reg: Register) -> u64 {
    let (p, o) = at(reg);
    let size = if reg.info().width == 64 { 8 } else { 4 };
    mmio_read(b, p, o, size)
}

/// (register, field, the features it needs), from the §6.3 field descriptions.
type Gated = (
    Register,
    &'static str,
    &'static [(Register, &'static str, u64)],
);

const IDR0: Register = Register::IDR0;
const PRI: (Register, &str, u64) = (IDR0, "PRI", 1);
const MSI: (Register, &str, u64) = (IDR0, "MSI", 1);

/// Guest-writable fields that only exist with a feature.
const WRITABLE_GATED: &[Gated] = &[
    (Register::CR0, "PRIQEN", &[PRI]),
    (Register::CR0, "ATSCHK", &[(IDR0, "ATS", 1)]),
    (Register::CR0, "VMW", &[(IDR0, "VMW", 1)]),
    (Register::CR0, "DPT_WALK_EN", &[(Register::IDR3, "DPT", 1)]),
    (Register::CR2, "PTM", &[(IDR0, "BTM", 1)]),
    (Register::CR2, "E2H", &[(IDR0, "Hyp", 1)]),
    (Register::CR2, "REC_CFG_ATS", &[(IDR0, "ATSRECERR", 1)]),
    (Register::IRQ_CTRL, "PRIQ_IRQEN", &[PRI]),
    (Register::GERRORN, "MSI_GERROR_ABT_ERR", &[MSI]),
    (Register::GERRORN, "MSI_EVENTQ_ABT_ERR", &[MSI]),
    (Register::GERRORN, "MSI_CMDQ_ABT_ERR", &[MSI]),
    (Register::GERRORN, "MSI_PRIQ_ABT_ERR", &[MSI, PRI]),
    (Register::GERRORN, "PRIQ_ABT_ERR", &[PRI]),
    (Register::GERRORN, "DPT_ERR", &[(Register::IDR3, "DPT", 1)]),
    (
        Register::GERRORN,
        "CMDQP_ERR",
        &[(Register::IDR1, "ECMDQ", 1)],
    ),
    (Register::STRTAB_BASE_CFG, "FMT", &[(IDR0, "ST_LEVEL", 1)]),
    (Register::STRTAB_BASE_CFG, "SPLIT", &[(IDR0, "ST_LEVEL", 1)]),
    (
        Register::GATOS_SID,
        "SSID_VALID",
        &[(IDR0, "ATOS", 1), (Register::IDR1, "SSIDSIZE", 8)],
    ),
];

#[test]
fn a_field_reads_as_zero_and_ignores_writes_unless_its_feature_is_presented() {
    for (reg, name, features) in WRITABLE_GATED {
        let f = field(*reg, name);
        let with = presenting(features);
        // Without any one of the features (GATOS_SID itself needs ATOS).
        for missing in 0..features.len() {
            let mut without = with.clone();
            let (r, n, _) = features[missing];
            if (r, n) == (IDR0, "ATOS") {
                continue;
            }
            let idf = field(r, n);
            without.ident.set(r, without.ident.get(r) & !idf.mask());
            assert_eq!(write_ones(&mut without, *reg), WriteEffect::Stored);
            assert_eq!(
                read(&without, *reg) & f.mask(),
                0,
                "{reg:?}.{name} without {n}"
            );
            assert_eq!(
                without.regs.get(*reg) & f.mask(),
                0,
                "{reg:?}.{name} stored"
            );
            // The unconditional fields of the register are still written.
            let always = reg.info().fields.iter().find(|g| g.name != *name);
            if let Some(g) = always.filter(|g| reg.present_mask(&without.ident) & g.mask() != 0) {
                assert_eq!(
                    read(&without, *reg) & g.mask(),
                    g.mask(),
                    "{reg:?}.{}",
                    g.name
                );
            }
        }
        let mut with = with;
        assert_eq!(write_ones(&mut with, *reg), WriteEffect::Stored);
        assert_eq!(
            read(&with, *reg) & f.mask(),
            f.mask(),
            "{reg:?}.{name} with its feature"
        );
    }
}

#[test]
fn an_ack_register_shows_only_the_fields_presented() {
    let mut b = presenting(&[]);
    write_ones(&mut b, Register::CR0);
    let cr0ack = read(&b, Register::CR0ACK);
    assert_eq!(cr0ack, Register::CR0.present_mask(&b.ident));
    assert_eq!(cr0ack & field(Register::CR0ACK, "PRIQEN").mask(), 0);
    assert_ne!(cr0ack & field(Register::CR0ACK, "SMMUEN").mask(), 0);
    let mut b = presenting(&[PRI]);
    write_ones(&mut b, Register::IRQ_CTRL);
    let priq_irqen = field(Register::IRQ_CTRLACK, "PRIQ_IRQEN").mask();
    assert_eq!(read(&b, Register::IRQ_CTRLACK) & priq_irqen, priq_irqen);
}

#[test]
fn gerror_bits_the_runtime_raises_for_absent_features_read_as_zero() {
    let mut b = presenting(&[MSI]);
    b.regs
        .set(Register::GERROR, Register::GERROR.info().write_mask);
    let got = read(&b, Register::GERROR);
    for name in ["MSI_CMDQ_ABT_ERR", "CMDQ_ERR", "SFM_ERR", "EVENTQ_ABT_ERR"] {
        let m = field(Register::GERROR, name).mask();
        assert_eq!(got & m, m, "{name}");
    }
    for name in ["MSI_PRIQ_ABT_ERR", "PRIQ_ABT_ERR", "DPT_ERR", "CMDQP_ERR"] {
        assert_eq!(got & field(Register::GERROR, name).mask(), 0, "{name}");
    }
}

#[test]
fn statusr_dormant_is_a_hint_only_with_dormhint() {
    for (hint, expect) in [(0, 0), (1, 1)] {
        let mut b = presenting(&[(IDR0, "DORMHINT", hint)]);
        let m = field(Register::STATUSR, "DORMANT").mask();
        b.regs.set(Register::STATUSR, m);
        assert_eq!(read(&b, Register::STATUSR), m * expect);
    }
}

/// CR0 and CR0ACK as if the given enables had been written and acknowledged.
fn enabled(b: &mut Bank, cr0: &[&str], cr0ack: &[&str]) {
    let bits =
        |reg: Register, names: &[&str]| names.iter().fold(0, |m, n| m | field(reg, n).mask());
    b.regs.set(Register::CR0, bits(Register::CR0, cr0));
    b.regs.set(Register::CR0ACK, bits(Register::CR0ACK, cr0ack));
}

#[test]
fn cr1_table_and_queue_fields_are_guarded_separately() {
    let table = ["TABLE_SH", "TABLE_OC", "TABLE_IC"]
        .iter()
        .fold(0, |m, n| m | field(Register::CR1, n).mask());
    let queue = ["QUEUE_SH", "QUEUE_OC", "QUEUE_IC"]
        .iter()
        .fold(0, |m, n| m | field(Register::CR1, n).mask());
    assert_eq!(table | queue, Register::CR1.info().write_mask);
    let cases: &[(&[&str], &[&str], u64)] = &[
        (&[], &[], table | queue),
        // SMMUEN guards TABLE_*, in CR0 or still in CR0ACK (§6.3.11).
        (&["SMMUEN"], &["SMMUEN"], queue),
        (&[], &["SMMUEN"], queue),
        // The queue enables guard QUEUE_*.
        (&["CMDQEN"], &["CMDQEN"], table),
        (&["EVENTQEN"], &[], table),
        (&[], &["EVENTQEN"], table),
        (&["PRIQEN"], &["PRIQEN"], table),
    ];
    for (cr0, cr0ack, writable) in cases {
        let mut b = presenting(&[PRI]);
        enabled(&mut b, cr0, cr0ack);
        assert_eq!(write_ones(&mut b, Register::CR1), WriteEffect::Stored);
        assert_eq!(
            read(&b, Register::CR1),
            *writable,
            "CR0 {cr0:?}, CR0ACK {cr0ack:?}"
        );
        // A later write changes only what is writable and keeps the rest.
        let (p, o) = at(Register::CR1);
        mmio_write(&mut b, p, o, 4, 0);
        assert_eq!(read(&b, Register::CR1), 0, "CR0 {cr0:?}, CR0ACK {cr0ack:?}");
    }
    // Both groups read-only: the write is ignored as a whole.
    let mut b = presenting(&[]);
    enabled(&mut b, &["SMMUEN", "CMDQEN"], &["SMMUEN", "CMDQEN"]);
    assert_eq!(write_ones(&mut b, Register::CR1), WriteEffect::Ignored);
    assert_eq!(read(&b, Register::CR1), 0);
}

#[test]
fn present_mask_gives_the_runtime_the_fields_it_presents() {
    use smmuv3::regs::{Cr0, IrqCtrl};
    // What the vSMMU presents today: no PRI, ATS, VMW, DPT or MSI.
    let ident = presenting(&[]).ident;
    let cr0 = Cr0(0)
        .with_smmuen(true)
        .with_cmdqen(true)
        .with_eventqen(true);
    assert_eq!(Register::CR0.present_mask(&ident), cr0.0 as u64);
    assert_eq!(Cr0::present_mask(&ident), cr0.0);
    let irq = IrqCtrl(0).with_gerror_irqen(true).with_eventq_irqen(true);
    assert_eq!(IrqCtrl::present_mask(&ident), irq.0);
    // An absent register has no fields; a register without conditions has all.
    assert_eq!(Register::GERROR_IRQ_CFG0.present_mask(&ident), 0);
    assert_eq!(
        Register::CMDQ_BASE.present_mask(&ident),
        Register::CMDQ_BASE.info().write_mask
    );
    let with_pri = presenting(&[PRI]).ident;
    assert_eq!(
        Cr0::present_mask(&with_pri),
        cr0.with_priqen(true).0,
        "PRIQEN with PRI"
    );
}
