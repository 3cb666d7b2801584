//! A Linux guest's life with the vSMMU: bring-up, attach, map/unmap, faults,
//! with linear and 2-level stream tables and both ways of completing CMD_SYNC,
//! under both driver generations (6.1 and 6.12).

use smmuv3::cmd::Command;
use smmuv3::evt::{Event, FTranslation, FTranslationClass};
use smmuv3::regs::Cr0;
use smmuv3::Register;
use vsmmu::testing::{FakePlatform, GuestLayout, HwCall, LinuxGuest, LinuxVersion};
use vsmmu::*;

pub const RAM: u64 = 0x4000_0000;
pub const SMMU: SmmuId = SmmuId(0);

/// A domain with VMID 5 owning vSID 8 -> pSID 0x108 and vSID 16 -> pSID
/// 0x110; with `two_level`, also vSID 0x100 -> pSID 0x200, so that SIDSIZE
/// is 9 and Linux picks a 2-level stream table.
pub fn guest(version: LinuxVersion, msi: bool, two_level: bool) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_device(
        &mut owners,
        DomainId(1),
        8,
        PhysStream {
            smmu: SMMU,
            psid: 0x108,
        },
    )
    .unwrap();
    map.add_device(
        &mut owners,
        DomainId(1),
        16,
        PhysStream {
            smmu: SMMU,
            psid: 0x110,
        },
    )
    .unwrap();
    if two_level {
        map.add_device(
            &mut owners,
            DomainId(1),
            0x100,
            PhysStream {
                smmu: SMMU,
                psid: 0x200,
            },
        )
        .unwrap();
    }
    let mut cfg = VsmmuConfig::new(DomainId(1), 5, 40);
    cfg.msi = msi;
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::linux(RAM, version);
    layout.msi_poll = msi;
    LinuxGuest::new(v, p, layout)
}

fn s1(g: &LinuxGuest, vsid: u32) -> S1Context {
    match g.platform.hw.installed(PhysStream {
        smmu: SMMU,
        psid: 0x100 + vsid,
    }) {
        Some(StreamConfig::Nested(s1)) => s1,
        other => panic!("vSID {vsid}: {other:?}"),
    }
}

/// One test per driver generation.
macro_rules! both_versions {
    ($(fn $name:ident($v:ident) $body:block)*) => {$(
        mod $name {
            use super::*;
            fn run($v: LinuxVersion) $body
            #[test]
            fn linux_6_1() {
                run(LinuxVersion::V6_1)
            }
            #[test]
            fn linux_6_12() {
                run(LinuxVersion::V6_12)
            }
        }
    )*};
}

fn bring_up_and_attach(version: LinuxVersion, msi: bool, two_level: bool) {
    let mut g = guest(version, msi, two_level);
    // Before the guest driver runs: the domain's stage 2 only (GBPA resets to bypass).
    assert_eq!(
        g.platform.hw.installed(PhysStream {
            smmu: SMMU,
            psid: 0x108
        }),
        Some(StreamConfig::Stage2Only)
    );
    g.bring_up().unwrap();
    assert!(Cr0(g.read(Register::CR0ACK) as u32).smmuen());
    assert_eq!(g.probe.unwrap().two_level, two_level);
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    // Enabled with every STE aborting (in a 2-level table the L1 descriptor
    // is still invalid: the device would see C_BAD_STREAMID).
    assert_eq!(
        g.platform.hw.installed(PhysStream {
            smmu: SMMU,
            psid: 0x108
        }),
        Some(StreamConfig::Abort { report: two_level })
    );
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let ctx = s1(&g, 8);
    assert_eq!(ctx.s1_context_ptr, Ipa(g.cd_table(8)));
    assert_eq!((ctx.s1_dss, ctx.s1_csh), (0b10, 0b11));
    // The other device is untouched.
    assert_eq!(
        g.platform.hw.installed(PhysStream {
            smmu: SMMU,
            psid: 0x110
        }),
        Some(StreamConfig::Abort { report: two_level })
    );
    // Unmap three pages: QEMU's SMMU has RIL, so Linux sends one range
    // TLBI_NH_VA (NUM=2: three 4K pages), with the domain's VMID forced.
    g.platform.hw.calls.clear();
    g.unmap(0x42, 0x1000_0000, 3).unwrap();
    let cmds = g.platform.hw.commands();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let (s, Command::TlbiNhVa(va)) = cmds[0] else {
        panic!("{}", cmds[0].1)
    };
    assert_eq!(
        (s, va.vmid(), va.asid(), va.addr(), va.num(), va.scale()),
        (SMMU, 5, 0x42, 0x1000_0000, 2, 0)
    );
    assert_eq!(
        g.platform
            .hw
            .calls
            .iter()
            .filter(|c| matches!(c, HwCall::Sync(_)))
            .count(),
        1
    );
    assert_eq!(g.platform.hw.calls.last(), Some(&HwCall::Sync(SMMU)));
}

both_versions! {
    fn linux_brings_up_a_linear_table_and_polls_cons(v) {
        bring_up_and_attach(v, false, false);
    }

    fn linux_brings_up_a_two_level_table_and_polls_cons(v) {
        bring_up_and_attach(v, false, true);
    }

    fn linux_brings_up_with_msi_poll_sync(v) {
        bring_up_and_attach(v, true, false);
    }

    fn linux_brings_up_a_two_level_table_with_msi_poll(v) {
        bring_up_and_attach(v, true, true);
    }

    fn a_stage1_fault_reaches_the_guest_with_its_vsid(v) {
        stage1_fault(v);
    }
}

fn stage1_fault(version: LinuxVersion) {
    let mut g = guest(version, false, false);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let fault = FTranslation::new()
        .with_stream_id(0x108)
        .with_rn_w(true)
        .with_class(FTranslationClass::IN)
        .with_input_addr(0x0dea_d000);
    let mut ports = g.platform.ports();
    let out = g.vsmmu.deliver_event(
        &mut ports,
        PhysEvent {
            smmu: SMMU,
            event: Event::FTranslation(fault),
        },
    );
    assert_eq!(out, EventOutcome::Forwarded);
    assert!(g.platform.irq.raised.contains(&Irq::Eventq));
    let evs = g.events();
    assert_eq!(evs.len(), 1);
    let Event::FTranslation(e) = evs[0] else {
        panic!("{}", evs[0])
    };
    assert_eq!(
        (e.stream_id(), e.input_addr(), e.rn_w(), e.s2()),
        (8, 0x0dea_d000, true, false)
    );
}
