//! Encodings seen in the wild (QEMU's virt SMMUv3, the Linux driver) decode
//! to the fields the reference sheets give.

use smmuv3::cmd::{CmdCfgiSte, CmdSync, CmdSyncCs, CmdTlbiNhVa, Command};
use smmuv3::evt::{Event, FTranslationClass};
use smmuv3::regs::{Idr0, Idr0StLevel, Idr1, Idr5};
use smmuv3::structs::{Cd, CdTg0, Ste, SteConfig, SteS1Fmt};
use smmuv3::{Register, RegisterBank};

/// QEMU 10's virt SMMUv3 in nested mode (reference sheet).
fn qemu_virt() -> RegisterBank {
    let mut b = RegisterBank::at_reset();
    b.set(Register::IDR0, 0x0d44_101b);
    b.set(Register::IDR1, 0x0273_0010);
    b.set(Register::IDR3, 0x1414);
    b.set(Register::IDR5, 0x74);
    b
}

#[test]
fn qemu_virt_id_registers_decode_as_the_sheet_says() {
    let idr0 = Idr0(0x0d44_101b);
    assert!(idr0.s1p() && idr0.s2p(), "S1P+S2P");
    assert!(idr0.cohacc() && idr0.asid16() && idr0.vmid16());
    assert!(!idr0.msi() && !idr0.sev() && !idr0.ats() && !idr0.pri() && !idr0.hyp());
    assert_eq!(idr0.st_level(), Idr0StLevel::TWO_LEVEL);
    assert_eq!(idr0.ttf().0, 0b10, "AArch64 tables only");
    assert_eq!(idr0.stall_model().0, 0b01, "no stall");
    let idr1 = Idr1(0x0273_0010);
    assert_eq!((idr1.sidsize(), idr1.ssidsize()), (16, 0));
    assert_eq!((idr1.cmdqs(), idr1.eventqs()), (19, 19));
    let idr5 = Idr5(0x74);
    assert!(idr5.gran4k() && idr5.gran16k() && idr5.gran64k());
    assert_eq!(idr5.oas().0, 4, "44-bit OAS");
}

#[test]
fn qemu_translation_fault_record_decodes() {
    // Unmapped IOVA 0x0dead000 read by SID 8, as QEMU records it (32-bit words
    // 00000010 00000008 00000000 00000208 0dead000 0 0 0).
    let words = [0x0000_0008_0000_0010, 0x0000_0208_0000_0000, 0x0dea_d000, 0];
    let Ok(Event::FTranslation(e)) = Event::decode(words) else {
        panic!("not F_TRANSLATION: {:?}", Event::decode(words));
    };
    assert_eq!(e.stream_id(), 8);
    assert!(e.rn_w(), "a read");
    assert!(!e.s2() && !e.stall());
    assert_eq!(e.class(), FTranslationClass::IN);
    assert_eq!(e.input_addr(), 0x0dea_d000);
    assert_eq!(
        e.to_string(),
        "F_TRANSLATION StreamID=0x8 RnW=1 CLASS=IN InputAddr=0xdead000"
    );
}

#[test]
fn the_issue_example_tlbi_displays_in_architecture_terms() {
    let c = CmdTlbiNhVa::new()
        .with_vmid(7)
        .with_asid(0x42)
        .with_addr(0xabc_0000)
        .with_leaf(true);
    assert_eq!(
        c.to_string(),
        "CMD_TLBI_NH_VA VMID=0x7 ASID=0x42 Addr=0xabc0000 Leaf=1"
    );
    assert_eq!(Command::decode(c.encode()), Ok(Command::TlbiNhVa(c)));
    assert_eq!(c.encode(), [0x0042_0007_0000_0012, 0xabc_0001]);
    assert!(c.illegal(&qemu_virt()).is_none());
}

#[test]
fn cfgi_all_is_shown_by_its_own_name() {
    let words = [0x04, 31];
    let c = Command::decode(words).unwrap();
    assert_eq!(c.to_string(), "CMD_CFGI_ALL Range=0x1f");
    assert_eq!(
        CmdCfgiSte::new()
            .with_stream_id(0x1234)
            .with_leaf(true)
            .encode(),
        [0x0000_1234_0000_0003, 1]
    );
}

#[test]
fn linux_msi_poll_sync_decodes() {
    // arm_smmu_cmdq_build_sync_cmd in MSI-poll mode: CS=IRQ, MSH=ISH,
    // MSIATTR=OIWB (0xf), MSIDATA=0, MSIADDR = the SYNC slot itself.
    let slot = 0x4001_0040u64;
    let words = [(1 << 12) | (3 << 22) | (0xf << 24) | 0x46, slot];
    let Ok(Command::Sync(s)) = Command::decode(words) else {
        panic!()
    };
    assert_eq!(s.cs(), CmdSyncCs::SIG_IRQ);
    assert_eq!(s.msi_address(), slot);
    assert_eq!(s.msi_data(), 0);
    assert!(s.illegal(&qemu_virt()).is_none());
    // CS=0b11 is ILLEGAL whatever the SMMU.
    let bad = CmdSync::new().with_cs(CmdSyncCs(3));
    assert!(bad.illegal_local().is_some());
}

#[test]
fn commands_gated_by_features_are_illegal_on_qemu_virt() {
    use smmuv3::cmd::{CmdAtcInv, CmdResume, CmdTlbiEl2All, CmdTlbiEl3All, CmdTlbiNsnhAll};
    let regs = qemu_virt();
    assert!(CmdTlbiEl2All::new().illegal(&regs).is_some(), "no Hyp");
    assert!(
        CmdTlbiEl3All::new().illegal(&regs).is_some(),
        "never on the NS queue"
    );
    assert!(CmdAtcInv::new().illegal(&regs).is_some(), "no ATS");
    assert!(
        CmdResume::new().illegal(&regs).is_some(),
        "STALL_MODEL=0b01"
    );
    assert!(
        CmdTlbiNsnhAll::new().illegal(&regs).is_none(),
        "always valid"
    );
    // Feature-gated rules need an SMMU: without one they are not applied.
    assert!(CmdTlbiEl2All::new().illegal_local().is_none());
}

/// What Linux writes for a guest stage-1 STE (arm_smmu_make_cdtable_ste):
/// V, Config=S1_TRANS, linear CD table, S1DSS=SSID0, WBRA/WBRA/ISH.
fn linux_cdtable_ste(cd_table: u64) -> Ste {
    let mut s = Ste::new();
    s.0[0] = 1 | (0b101 << 1) | cd_table;
    s.0[1] = 0b10 | (1 << 2) | (1 << 4) | (3 << 6);
    s
}

#[test]
fn a_linux_stage1_ste_decodes_and_is_legal_on_qemu_virt() {
    let s = Ste::decode(linux_cdtable_ste(0x4123_4000).encode()).unwrap();
    assert!(s.v());
    assert_eq!(s.config(), SteConfig::S1_TRANS);
    assert_eq!(s.s1_fmt(), SteS1Fmt::LINEAR);
    assert_eq!(s.s1_context_ptr(), 0x4123_4000);
    assert_eq!(s.s1cd_max(), 0);
    assert_eq!(s.s1dss().name(), Some("SUBSTREAM0"));
    assert_eq!(s.s1csh().name(), Some("INNER_SHAREABLE"));
    assert_eq!(s.illegal(&qemu_virt()), None);
}

#[test]
fn a_nested_ste_needs_both_stages() {
    let mut s = linux_cdtable_ste(0x4123_4000).with_config(SteConfig::NESTED);
    s.set_s2vmid(1);
    s.set_s2aa64(true);
    let mut s1_only = qemu_virt();
    s1_only.set(Register::IDR0, Idr0(0x0d44_101b).with_s2p(false).0 as u64);
    assert!(s.illegal(&s1_only).is_some(), "Config=NESTED without S2P");
    let _ = &mut s;
}

#[test]
fn a_linux_cd_decodes() {
    // arm_smmu_make_s1_cd: T0SZ=16 (48-bit VA), 4K granule, WBWA walks, ISH,
    // EPD1, V, IPS=44 bits, AA64, R, A, ASET, ASID 1; TTB0; MAIR.
    let mut cd = Cd::new();
    cd.0[0] = 16
        | (1 << 8)
        | (1 << 10)
        | (3 << 12)
        | (1 << 30)
        | (1 << 31)
        | (4 << 32)
        | (1 << 41)
        | (1 << 45)
        | (1 << 46)
        | (1 << 47)
        | (1 << 48);
    cd.0[1] = 0x4555_0000;
    cd.0[3] = 0x0000_0000_0044_ff04;
    let cd = Cd::decode(cd.encode()).unwrap();
    assert!(cd.v() && cd.aa64() && cd.epd1() && cd.r() && cd.a() && cd.aset());
    assert_eq!(cd.t0sz(), 16);
    assert_eq!(cd.tg0(), CdTg0::GRANULE_4KB);
    assert_eq!(cd.asid(), 1);
    assert_eq!(cd.ttb0(), 0x4555_0000);
    assert_eq!(cd.mair0(), 0x0044_ff04);
    assert_eq!(cd.ips().name(), Some("PS_44_BIT"));
}
