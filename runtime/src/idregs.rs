//! The identification registers the guest sees: derived from the physical
//! SMMUs the domain uses (what they all do, field by field), limited to
//! what makes sense for a nested guest, and shaped by the domain's IPA size.
//! The Xen series hard-coded these; a guest must see what the hardware does.

use smmuv3::regs::{
    Aidr, Idr0, Idr0StallModel, Idr0Ttendian, Idr1, Idr2, Idr3, Idr3Bbml, Idr4, Idr5, Idr5Oas, Iidr,
};
use smmuv3::IdRegisters;

/// What the hypervisor decides about the device it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// Bits of guest-physical address space (the domain's stage-2 input size).
    pub ipa_bits: u32,
    /// StreamID bits presented (enough for the highest vSID).
    pub sidsize: u32,
    /// Present MSI (Linux then completes CMD_SYNC by MSI-poll).
    pub msi: bool,
    /// Present SEV: the hypervisor can send the guest's CPUs an event.
    pub sev: bool,
    /// log2 of the largest command and event queues the guest may configure.
    pub cmdqs: u32,
    pub eventqs: u32,
}

/// The output sizes IDR5.OAS names, in encoding order (§6.3.6).
const OAS_BITS: [u32; 8] = [32, 36, 40, 42, 44, 48, 52, 56];

/// OAS encoding of the smallest size the architecture names that holds
/// `bits`: the guest must be able to reach all of its address space.
fn oas_for(bits: u32) -> Idr5Oas {
    let idx = OAS_BITS
        .iter()
        .position(|s| *s >= bits)
        .unwrap_or(OAS_BITS.len() - 1);
    Idr5Oas(idx as u8)
}

/// The size an OAS encoding names (Reserved encodings as the largest).
pub fn oas_bits(oas: Idr5Oas) -> u32 {
    OAS_BITS
        .get(usize::from(oas.0))
        .copied()
        .unwrap_or(OAS_BITS[OAS_BITS.len() - 1])
}

/// Why several physical SMMUs cannot be presented as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incompatible {
    /// One only walks little-endian tables, another only big-endian ones.
    Endianness,
}

/// Table endianness as the set it supports: (little, big).
fn endian_set(e: Idr0Ttendian) -> (bool, bool) {
    match e {
        Idr0Ttendian::LE => (true, false),
        Idr0Ttendian::BE => (false, true),
        _ => (true, true),
    }
}

/// What two SMMUs both do, field by field (§6.3.1-6.3.6): a feature flag
/// only if both have it, a size or level the smaller, a model the stricter
/// one (TERM_MODEL: abort only wins), an endianness both can walk.
fn both(a: IdRegisters, b: IdRegisters) -> Result<IdRegisters, Incompatible> {
    let (a0, b0) = (a.idr0, b.idr0);
    let (le_a, be_a) = endian_set(a0.ttendian());
    let (le_b, be_b) = endian_set(b0.ttendian());
    let ttendian = match (le_a && le_b, be_a && be_b) {
        (true, true) => Idr0Ttendian::MIXED,
        (true, false) => Idr0Ttendian::LE,
        (false, true) => Idr0Ttendian::BE,
        (false, false) => return Err(Incompatible::Endianness),
    };
    let idr0 = Idr0(a0.0 & b0.0)
        .with_st_level(a0.st_level().min(b0.st_level()))
        .with_term_model(a0.term_model().max(b0.term_model()))
        .with_ttendian(ttendian);
    let (a1, b1) = (a.idr1, b.idr1);
    let (a3, b3) = (a.idr3, b.idr3);
    let (a5, b5) = (a.idr5, b.idr5);
    Ok(IdRegisters {
        idr0,
        idr1: Idr1(0).with_ssidsize(a1.ssidsize().min(b1.ssidsize())),
        idr3: Idr3(a3.0 & b3.0).with_bbml(a3.bbml().min(b3.bbml())),
        idr5: Idr5(a5.0 & b5.0)
            .with_vax(a5.vax().min(b5.vax()))
            .with_oas(a5.oas().min(b5.oas())),
        iidr: Iidr(0),
        aidr: Aidr(a.aidr.0.min(b.aidr.0)),
        ..IdRegisters::RESET
    })
}

/// The revision to present: the lowest the SMMUs implement, but at least
/// SMMUv3.2 when a feature that revision introduced is presented (RIL and
/// BBML, §6.3.4), so that AIDR and IDR3 agree. QEMU's SMMUv3 reports
/// SMMUv3.1 with RIL and BBML1, and honours range invalidations.
fn consistent_aidr(a: Aidr, idr3: Idr3) -> Aidr {
    let v3_2 = Aidr(0).with_arch_minor_rev(smmuv3::regs::AidrArchMinorRev(2));
    let at_least_v3_2 = a.arch_major_rev().0 > 0 || a.arch_minor_rev().0 >= 2;
    if (idr3.ril() || idr3.bbml().0 != 0) && !at_least_v3_2 {
        v3_2
    } else {
        a
    }
}

/// The ID register values of the vSMMU.
pub fn presented(caps: &[IdRegisters], p: &Presentation) -> Result<IdRegisters, Incompatible> {
    let mut it = caps.iter().copied();
    let Some(first) = it.next() else {
        return Ok(IdRegisters::RESET);
    };
    let phys = it.try_fold(first, both)?;
    let (p0, p1, p3, p5) = (phys.idr0, phys.idr1, phys.idr3, phys.idr5);
    let idr0 = Idr0(0)
        .with_s1p(true)
        .with_st_level(p0.st_level())
        .with_term_model(p0.term_model())
        // Stalls are not forwarded: the guest sees an SMMU that never stalls.
        .with_stall_model(Idr0StallModel::TERM_ONLY)
        .with_ttendian(p0.ttendian())
        .with_cd2l(p0.cd2l())
        .with_asid16(p0.asid16())
        .with_ttf(p0.ttf())
        .with_cohacc(p0.cohacc())
        .with_msi(p.msi)
        // Linux waits in WFE when SEV is presented: only if it will come.
        .with_sev(p.sev);
    let idr1 = Idr1(0)
        .with_sidsize(p.sidsize.min(32) as u8)
        .with_ssidsize(p1.ssidsize())
        .with_cmdqs(p.cmdqs.min(19) as u8)
        .with_eventqs(p.eventqs.min(19) as u8);
    // BBML and RIL describe how TLBIs behave; the guest's ones reach the hardware.
    let idr3 = Idr3(0).with_ril(p3.ril()).with_bbml(Idr3Bbml(p3.bbml().0));
    let idr5 = Idr5(0)
        .with_vax(p5.vax())
        .with_gran4k(p5.gran4k())
        .with_gran16k(p5.gran16k())
        .with_gran64k(p5.gran64k())
        // Stage 1 outputs IPAs: the guest's output size is the domain's IPA size.
        .with_oas(oas_for(p.ipa_bits));
    Ok(IdRegisters {
        idr0,
        idr1,
        idr2: Idr2(0),
        idr3,
        idr4: Idr4(0),
        idr5,
        iidr: Iidr(0),
        aidr: consistent_aidr(phys.aidr, idr3),
        ..IdRegisters::RESET
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smmuv3::platform::QEMU_VIRT as QEMU;
    use smmuv3::regs::Idr0TermModel;
    use smmuv3::{Register, RegisterValues};

    #[test]
    fn a_nested_guest_sees_stage_1_only_with_the_hardware_s_formats() {
        let p = Presentation {
            ipa_bits: 40,
            sidsize: 8,
            msi: false,
            sev: false,
            cmdqs: 8,
            eventqs: 7,
        };
        let b = presented(&[QEMU], &p).unwrap();
        let idr0 = b.idr0;
        assert!(idr0.s1p() && !idr0.s2p() && !idr0.hyp() && !idr0.vmid16());
        assert_eq!(idr0.st_level().0, 1);
        assert_eq!(idr0.ttf().0, 0b10);
        assert!(idr0.cohacc() && idr0.asid16() && !idr0.msi() && !idr0.ats() && !idr0.pri());
        let idr1 = b.idr1;
        assert_eq!(
            (
                idr1.sidsize(),
                idr1.ssidsize(),
                idr1.cmdqs(),
                idr1.eventqs()
            ),
            (8, 0, 8, 7)
        );
        assert!(b.idr3.ril());
        let idr5 = b.idr5;
        assert_eq!(idr5.oas().0, 2, "40-bit IPA space");
        assert!(idr5.gran4k() && idr5.gran16k() && idr5.gran64k());
    }

    #[test]
    fn two_smmus_present_what_both_can_do() {
        let other = IdRegisters {
            idr0: QEMU.idr0.with_cohacc(false),
            idr5: Idr5(0x12),
            ..QEMU
        };
        let p = Presentation {
            ipa_bits: 48,
            sidsize: 16,
            msi: true,
            sev: false,
            cmdqs: 19,
            eventqs: 19,
        };
        let b = presented(&[QEMU, other], &p).unwrap();
        assert!(!b.idr0.cohacc());
        let idr5 = b.idr5;
        assert!(!idr5.gran16k() && !idr5.gran64k());
        assert_eq!(idr5.oas().0, 5, "48-bit IPA space");
    }

    fn p(ipa_bits: u32) -> Presentation {
        Presentation {
            ipa_bits,
            sidsize: 8,
            msi: true,
            sev: false,
            cmdqs: 8,
            eventqs: 7,
        }
    }

    #[test]
    fn the_output_size_holds_the_whole_ipa_space() {
        let oas =
            |bits| Idr5(presented(&[QEMU], &p(bits)).unwrap().value(Register::IDR5) as u32).oas();
        assert_eq!(oas_bits(oas(39)), 40, "rounds up, never down");
        assert_eq!(oas_bits(oas(40)), 40);
        assert_eq!(oas_bits(oas(33)), 36);
    }

    #[test]
    fn models_and_endianness_combine_as_what_both_smmus_can_do() {
        let le_abort = IdRegisters {
            idr0: QEMU
                .idr0
                .with_ttendian(Idr0Ttendian::LE)
                .with_term_model(Idr0TermModel::ABORT_ONLY),
            ..QEMU
        };
        let mixed = IdRegisters {
            idr0: QEMU
                .idr0
                .with_ttendian(Idr0Ttendian::MIXED)
                .with_term_model(Idr0TermModel::ABORT_OR_RAZWI),
            ..QEMU
        };
        let b = presented(&[mixed, le_abort], &p(40)).unwrap();
        let idr0 = b.idr0;
        assert_eq!(idr0.ttendian(), Idr0Ttendian::LE, "mixed and LE walk LE");
        assert_eq!(
            idr0.term_model(),
            Idr0TermModel::ABORT_ONLY,
            "the stricter model"
        );
        let be = IdRegisters {
            idr0: QEMU.idr0.with_ttendian(Idr0Ttendian::BE),
            ..QEMU
        };
        assert_eq!(
            presented(&[le_abort, be], &p(40)),
            Err(Incompatible::Endianness)
        );
        assert!(!idr0.sev(), "SEV only when the hypervisor can send it");
    }

    #[test]
    fn the_revision_presented_has_every_feature_presented() {
        let aidr = |c: &[IdRegisters]| presented(c, &p(40)).unwrap().value(Register::AIDR);
        assert_eq!(aidr(&[QEMU]), 2, "QEMU says 3.1 but has RIL: 3.2");
        let no_ril = IdRegisters {
            idr3: Idr3(0),
            ..QEMU
        };
        assert_eq!(aidr(&[no_ril]), 1);
        let v3_3 = IdRegisters {
            aidr: Aidr(3),
            ..QEMU
        };
        assert_eq!(aidr(&[v3_3, no_ril]), 1, "the lowest revision, no RIL");
    }
}
