//! A Linux guest's life with the vSMMU: bring-up, attach, map/unmap, faults,
//! with linear and 2-level stream tables and both ways of completing CMD_SYNC.

use smmuv3::cmd::Command;
use smmuv3::evt::{Event, FTranslation, FTranslationClass};
use smmuv3::regs::Cr0;
use smmuv3::Register;
use vsmmu::testing::{FakePlatform, GuestLayout, HwCall, LinuxGuest};
use vsmmu::*;

pub const RAM: u64 = 0x4000_0000;
pub const SMMU: SmmuId = SmmuId(0);

/// A domain with VMID 5 owning vSID 8 -> pSID 0x108 and vSID 16 -> pSID 0x110.
pub fn guest(msi: bool, two_level: bool) -> LinuxGuest {
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
    let mut cfg = VsmmuConfig::new(DomainId(1), 5, 40);
    cfg.msi = msi;
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::at(RAM);
    layout.msi_poll = msi;
    layout.two_level = two_level;
    LinuxGuest::new(v, p, layout)
}

fn s1(g: &LinuxGuest, vsid: u32) -> S1Context {
    match g.p.hw.installed(PhysStream {
        smmu: SMMU,
        psid: 0x100 + vsid,
    }) {
        Some(StreamConfig::Nested(s1)) => s1,
        other => panic!("vSID {vsid}: {other:?}"),
    }
}

fn bring_up_and_attach(msi: bool, two_level: bool) {
    let mut g = guest(msi, two_level);
    // Before the guest driver runs: the domain's stage 2 only (GBPA resets to bypass).
    assert_eq!(
        g.p.hw.installed(PhysStream {
            smmu: SMMU,
            psid: 0x108
        }),
        Some(StreamConfig::Stage2Only)
    );
    g.bring_up().unwrap();
    assert!(Cr0(g.read(Register::CR0ACK) as u32).smmuen());
    // Enabled with every STE aborting (in a 2-level table the L1 descriptor
    // is still invalid: the device would see C_BAD_STREAMID).
    assert_eq!(
        g.p.hw.installed(PhysStream {
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
        g.p.hw.installed(PhysStream {
            smmu: SMMU,
            psid: 0x110
        }),
        Some(StreamConfig::Abort { report: two_level })
    );
    // Unmap three pages: three TLBI_NH_VA with the domain's VMID, one sync.
    g.p.hw.calls.clear();
    g.unmap(0x42, 0x1000_0000, 3).unwrap();
    let cmds = g.p.hw.commands();
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    for (i, (s, c)) in cmds.iter().enumerate() {
        let Command::TlbiNhVa(va) = c else {
            panic!("{c}")
        };
        assert_eq!(
            (*s, va.vmid(), va.asid(), va.addr()),
            (SMMU, 5, 0x42, 0x1000_0000 + ((i as u64) << 12))
        );
    }
    assert_eq!(
        g.p.hw
            .calls
            .iter()
            .filter(|c| matches!(c, HwCall::Sync(_)))
            .count(),
        1
    );
    assert_eq!(g.p.hw.calls.last(), Some(&HwCall::Sync(SMMU)));
}

#[test]
fn linux_brings_up_a_linear_table_and_polls_cons() {
    bring_up_and_attach(false, false);
}

#[test]
fn linux_brings_up_a_two_level_table_and_polls_cons() {
    bring_up_and_attach(false, true);
}

#[test]
fn linux_brings_up_with_msi_poll_sync() {
    bring_up_and_attach(true, false);
}

#[test]
fn linux_brings_up_a_two_level_table_with_msi_poll() {
    bring_up_and_attach(true, true);
}

#[test]
fn a_stage1_fault_reaches_the_guest_with_its_vsid() {
    let mut g = guest(false, false);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let fault = FTranslation::new()
        .with_stream_id(0x108)
        .with_rn_w(true)
        .with_class(FTranslationClass::IN)
        .with_input_addr(0x0dea_d000);
    let mut ports = g.p.ports();
    let out = g.v.deliver_event(
        &mut ports,
        PhysEvent {
            smmu: SMMU,
            event: Event::FTranslation(fault),
        },
    );
    assert_eq!(out, EventOutcome::Forwarded);
    assert!(g.p.irq.raised.contains(&Irq::Eventq));
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
