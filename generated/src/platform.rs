//! The identification registers of SMMUv3 implementations the project
//! runs against, written field by field with the generated setters.

use crate::regs::*;
use crate::IdRegisters;

/// QEMU's SMMUv3 on the `virt` machine (QEMU 10.0, `hw/arm/smmuv3.c`, with
/// `iommu=smmuv3`): stage 1 and stage 2 (nesting), AArch64 tables, 2-level
/// stream tables, 16-bit VMIDs and ASIDs, terminate-only faults, no MSI,
/// ATS, PRI or HTTU, 16-bit StreamIDs and no SubstreamIDs, queues of 2^19
/// entries, range invalidation and BBML2, all three granules, a 44-bit
/// output size, and SMMUv3.1 in AIDR.
pub const QEMU_VIRT: IdRegisters = IdRegisters {
    idr0: Idr0::RESET
        .with_st_level(Idr0StLevel::TWO_LEVEL)
        .with_term_model(Idr0TermModel::ABORT_ONLY)
        .with_stall_model(Idr0StallModel::TERM_ONLY)
        .with_ttendian(Idr0Ttendian::LE)
        .with_vmid16(true)
        .with_asid16(true)
        .with_cohacc(true)
        .with_ttf(Idr0Ttf::AARCH64)
        .with_s1p(true)
        .with_s2p(true),
    idr1: Idr1::RESET.with_cmdqs(19).with_eventqs(19).with_sidsize(16),
    idr3: Idr3::RESET
        .with_bbml(Idr3Bbml::BBML2)
        .with_ril(true)
        .with_xnx(true)
        .with_had(true),
    idr5: Idr5::RESET
        .with_gran64k(true)
        .with_gran16k(true)
        .with_gran4k(true)
        .with_oas(Idr5Oas::OAS_44_BIT),
    aidr: Aidr::RESET.with_arch_minor_rev(AidrArchMinorRev::SMMUV3_1),
    ..IdRegisters::RESET
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_virt_reads_as_qemu_reports_it() {
        // The values QEMU 10.0's SMMUv3 returns (read through its frame).
        assert_eq!(QEMU_VIRT.idr0.0, 0x0d44_101b);
        assert_eq!(QEMU_VIRT.idr1.0, 0x0273_0010);
        assert_eq!(QEMU_VIRT.idr3.0, 0x1414);
        assert_eq!(QEMU_VIRT.idr5.0, 0x74);
        assert_eq!(QEMU_VIRT.aidr.0, 1);
        assert_eq!(QEMU_VIRT.iidr.0, 0);
    }
}
