//! The identification registers the guest sees: derived from the physical
//! SMMUs the domain uses (the intersection of what they all do), limited to
//! what makes sense for a nested guest, and shaped by the domain's IPA size.
//! The Xen series hard-coded these; a guest must see what the hardware does.

use smmuv3::regs::{Idr0, Idr0StallModel, Idr1, Idr3, Idr3Bbml, Idr5, Idr5Oas};
use smmuv3::{Register, RegisterBank};

use crate::ports::PhysCaps;

/// What the hypervisor decides about the device it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// Bits of guest-physical address space (the domain's stage-2 input size).
    pub ipa_bits: u32,
    /// StreamID bits presented (enough for the highest vSID).
    pub sidsize: u32,
    /// Present MSI (Linux then completes CMD_SYNC by MSI-poll).
    pub msi: bool,
    /// log2 of the largest command and event queues the guest may configure.
    pub cmdqs: u32,
    pub eventqs: u32,
}

/// OAS encoding of an address size, rounded down to a size the
/// architecture names (32, 36, 40, 42, 44, 48, 52, 56 bits).
fn oas_for(bits: u32) -> Idr5Oas {
    let sizes = [32, 36, 40, 42, 44, 48, 52, 56];
    let idx = sizes.iter().rposition(|s| *s <= bits).unwrap_or(0);
    Idr5Oas(idx as u8)
}

/// The intersection of several SMMUs' ID registers, field by field: a flag
/// is presented only if every SMMU has it, a size is the smallest.
fn common(caps: &[PhysCaps]) -> Option<PhysCaps> {
    let mut it = caps.iter();
    let first = *it.next()?;
    Some(it.fold(first, |a, b| {
        PhysCaps {
            idr0: a.idr0 & b.idr0,
            idr1: Idr1(a.idr1)
                .with_ssidsize(Idr1(a.idr1).ssidsize().min(Idr1(b.idr1).ssidsize()))
                .0,
            idr3: a.idr3 & b.idr3,
            idr5: Idr5(a.idr5 & b.idr5)
                .with_oas(Idr5Oas(Idr5(a.idr5).oas().0.min(Idr5(b.idr5).oas().0)))
                .0,
            iidr: a.iidr,
            aidr: a.aidr.min(b.aidr),
        }
    }))
}

/// The ID register values of the vSMMU.
pub fn presented(caps: &[PhysCaps], p: &Presentation) -> RegisterBank {
    let mut bank = RegisterBank::at_reset();
    let phys = common(caps).unwrap_or(PhysCaps {
        idr0: 0,
        idr1: 0,
        idr3: 0,
        idr5: 0,
        iidr: 0,
        aidr: 0,
    });
    let (p0, p1, p3, p5) = (
        Idr0(phys.idr0),
        Idr1(phys.idr1),
        Idr3(phys.idr3),
        Idr5(phys.idr5),
    );
    let idr0 = Idr0(0)
        .with_s1p(true)
        .with_st_level(p0.st_level())
        .with_term_model(p0.term_model())
        // Stalls are not forwarded: the guest sees an SMMU that never stalls.
        .with_stall_model(Idr0StallModel(0b01))
        .with_ttendian(p0.ttendian())
        .with_cd2l(p0.cd2l())
        .with_asid16(p0.asid16())
        .with_ttf(p0.ttf())
        .with_cohacc(p0.cohacc())
        .with_msi(p.msi)
        .with_sev(true);
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
    bank.set(Register::IDR0, u64::from(idr0.0));
    bank.set(Register::IDR1, u64::from(idr1.0));
    bank.set(Register::IDR2, 0);
    bank.set(Register::IDR3, u64::from(idr3.0));
    bank.set(Register::IDR4, 0);
    bank.set(Register::IDR5, u64::from(idr5.0));
    bank.set(Register::IIDR, 0);
    bank.set(Register::AIDR, u64::from(phys.aidr));
    bank
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: PhysCaps = PhysCaps {
        idr0: 0x0d44_101b,
        idr1: 0x0273_0010,
        idr3: 0x1414,
        idr5: 0x74,
        iidr: 0,
        aidr: 1,
    };

    #[test]
    fn a_nested_guest_sees_stage_1_only_with_the_hardware_s_formats() {
        let p = Presentation {
            ipa_bits: 40,
            sidsize: 8,
            msi: false,
            cmdqs: 8,
            eventqs: 7,
        };
        let b = presented(&[QEMU], &p);
        let idr0 = Idr0(b.get(Register::IDR0) as u32);
        assert!(idr0.s1p() && !idr0.s2p() && !idr0.hyp() && !idr0.vmid16());
        assert_eq!(idr0.st_level().0, 1);
        assert_eq!(idr0.ttf().0, 0b10);
        assert!(idr0.cohacc() && idr0.asid16() && !idr0.msi() && !idr0.ats() && !idr0.pri());
        let idr1 = Idr1(b.get(Register::IDR1) as u32);
        assert_eq!(
            (
                idr1.sidsize(),
                idr1.ssidsize(),
                idr1.cmdqs(),
                idr1.eventqs()
            ),
            (8, 0, 8, 7)
        );
        assert!(Idr3(b.get(Register::IDR3) as u32).ril());
        let idr5 = Idr5(b.get(Register::IDR5) as u32);
        assert_eq!(idr5.oas().0, 2, "40-bit IPA space");
        assert!(idr5.gran4k() && idr5.gran16k() && idr5.gran64k());
    }

    #[test]
    fn two_smmus_present_what_both_can_do() {
        let other = PhysCaps {
            idr0: Idr0(0x0d44_101b).with_cohacc(false).0,
            idr5: 0x12,
            ..QEMU
        };
        let p = Presentation {
            ipa_bits: 48,
            sidsize: 16,
            msi: true,
            cmdqs: 19,
            eventqs: 19,
        };
        let b = presented(&[QEMU, other], &p);
        assert!(!Idr0(b.get(Register::IDR0) as u32).cohacc());
        let idr5 = Idr5(b.get(Register::IDR5) as u32);
        assert!(!idr5.gran16k() && !idr5.gran64k());
        assert_eq!(idr5.oas().0, 5, "48-bit IPA space");
    }
}
