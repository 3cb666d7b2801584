//! Event forwarding end to end: a Linux guest brings the vSMMU up and
//! attaches a device, the hardware layer reports physical events, and the
//! guest reads what its stage-1-only SMMU would have recorded.

use smmuv3::cmd::{CmdSync, CmdSyncCs, Command};
use smmuv3::evt::*;
use smmuv3::regs::{Cr0, EventqIrqCfg0, EventqIrqCfg1, EventqProd, IrqCtrl};
use smmuv3::structs::Ste;
use smmuv3::Register;
use vsmmu::testing::{FakePlatform, GuestLayout, LinuxGuest};
use vsmmu::*;

const RAM: u64 = 0x4000_0000;
const SMMU: SmmuId = SmmuId(0);
/// vSID 8 is pSID 0x108, vSID 16 is pSID 0x110.
const VSID: u32 = 8;
const PSID: u32 = 0x108;
const OTHER_VSID: u32 = 16;
const OTHER_PSID: u32 = 0x110;
const ASID: u16 = 0x42;
/// An interrupt controller doorbell: not guest RAM.
const DOORBELL: u64 = 0x0802_0040;
/// What a physical address in a hardware record looks like: never guest-visible.
const PHYS_ADDR: u64 = 0x8_8765_4000;

/// A domain with VMID 5 owning vSID 8 -> pSID 0x108 and vSID 16 -> pSID
/// 0x110, not yet brought up.
fn fresh(msi: bool, edit: impl FnOnce(&mut GuestLayout)) -> LinuxGuest {
    fresh_with(msi, &[], edit)
}

/// [`fresh`] with more streams (a vSID above 255 makes Linux pick a
/// 2-level stream table).
fn fresh_with(msi: bool, more: &[(u32, u32)], edit: impl FnOnce(&mut GuestLayout)) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    let base = [(VSID, PSID), (OTHER_VSID, OTHER_PSID)];
    for &(vsid, psid) in base.iter().chain(more) {
        map.add_device(
            &mut owners,
            DomainId(1),
            vsid,
            PhysStream { smmu: SMMU, psid },
        )
        .unwrap();
    }
    let mut cfg = VsmmuConfig::new(DomainId(1), 5, 40);
    cfg.msi = msi;
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::at(RAM);
    layout.msi_poll = msi;
    edit(&mut layout);
    LinuxGuest::new(v, p, layout)
}

/// Brought up, with vSID 8 attached to a stage-1 context.
fn attached(msi: bool) -> LinuxGuest {
    let mut g = fresh(msi, |_| {});
    g.bring_up().unwrap();
    g.attach(VSID, ASID, RAM + 0x50_0000).unwrap();
    g.platform.irq.raised.clear();
    g.platform.irq.msis.clear();
    g
}

fn deliver_from(g: &mut LinuxGuest, smmu: SmmuId, event: Event) -> EventOutcome {
    let mut ports = g.platform.ports();
    g.vsmmu.deliver_event(&mut ports, PhysEvent { smmu, event })
}

fn deliver(g: &mut LinuxGuest, event: Event) -> EventOutcome {
    deliver_from(g, SMMU, event)
}

/// Delivers one event and returns the single record the guest then reads.
fn forwarded(g: &mut LinuxGuest, event: Event) -> Event {
    assert_eq!(deliver(g, event), EventOutcome::Forwarded, "{event}");
    let evs = g.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    evs[0]
}

fn eventq_prod(g: &mut LinuxGuest) -> u32 {
    EventqProd(g.read(Register::EVENTQ_PROD) as u32).wr()
}

/// Writes commands into the guest's queue at its PROD (no CMD_SYNC added),
/// publishes PROD, and plays the hypervisor until no deferred work is left.
fn submit(g: &mut LinuxGuest, cmds: &[Command]) {
    let size = 1u32 << g.layout.cmdq_log2;
    let mask = (size << 1) - 1;
    for c in cmds {
        let at = g.layout.cmdq + 16 * u64::from(g.prod & (size - 1));
        g.platform.ram.write_words(at, &c.encode());
        g.prod = (g.prod + 1) & mask;
    }
    g.write(Register::CMDQ_PROD, u64::from(g.prod));
    for _ in 0..1000 {
        if !g.platform.defer.pending {
            break;
        }
        g.run_deferred();
    }
}

/// The fields every translation fault shares, as the guest sees them.
struct Seen {
    name: &'static str,
    stream_id: u32,
    ssv: bool,
    ssid: u32,
    input_addr: u64,
    rn_w: bool,
    class: u8,
    s2: bool,
    ipa: u64,
}

fn seen(e: &Event) -> Seen {
    macro_rules! of {
        ($x:expr, $name:expr) => {
            Seen {
                name: $name,
                stream_id: $x.stream_id(),
                ssv: $x.ssv(),
                ssid: $x.substream_id(),
                input_addr: $x.input_addr(),
                rn_w: $x.rn_w(),
                class: $x.class().0,
                s2: $x.s2(),
                ipa: $x.ipa(),
            }
        };
    }
    match e {
        Event::FTranslation(x) => of!(x, FTranslation::NAME),
        Event::FAddrSize(x) => of!(x, FAddrSize::NAME),
        Event::FAccess(x) => of!(x, FAccess::NAME),
        Event::FPermission(x) => of!(x, FPermission::NAME),
        other => panic!("not a translation fault: {other}"),
    }
}

/// The four translation faults for pSID 0x108, SSID 3, at `input`, with S2,
/// CLASS and IPA as given.
fn faults(s2: bool, class: FTranslationClass, ipa: u64, input: u64) -> [Event; 4] {
    [
        Event::FTranslation(
            FTranslation::new()
                .with_stream_id(PSID)
                .with_ssv(true)
                .with_substream_id(3)
                .with_rn_w(true)
                .with_s2(s2)
                .with_class(class)
                .with_input_addr(input)
                .with_ipa(ipa),
        ),
        Event::FAddrSize(
            FAddrSize::new()
                .with_stream_id(PSID)
                .with_ssv(true)
                .with_substream_id(3)
                .with_rn_w(true)
                .with_s2(s2)
                .with_class(FAddrSizeClass(class.0))
                .with_input_addr(input)
                .with_ipa(ipa),
        ),
        Event::FAccess(
            FAccess::new()
                .with_stream_id(PSID)
                .with_ssv(true)
                .with_substream_id(3)
                .with_rn_w(true)
                .with_s2(s2)
                .with_class(FAccessClass(class.0))
                .with_input_addr(input)
                .with_ipa(ipa),
        ),
        Event::FPermission(
            FPermission::new()
                .with_stream_id(PSID)
                .with_ssv(true)
                .with_substream_id(3)
                .with_rn_w(true)
                .with_s2(s2)
                .with_class(FPermissionClass(class.0))
                .with_input_addr(input)
                .with_ipa(ipa),
        ),
    ]
}

#[test]
fn stage_1_faults_arrive_with_the_vsid_the_access_and_the_class_but_no_ipa() {
    let mut g = attached(false);
    for class in [FTranslationClass::TTD, FTranslationClass::IN] {
        for fault in faults(false, class, PHYS_ADDR, 0x0dea_d000) {
            let got = forwarded(&mut g, fault);
            let (want, e) = (seen(&fault), seen(&got));
            assert_eq!(e.name, want.name, "{got}");
            assert_eq!(
                (e.stream_id, e.ssv, e.ssid, e.input_addr, e.rn_w, e.class),
                (VSID, true, 3, 0x0dea_d000, true, class.0),
                "{got}"
            );
            assert!(!e.s2, "{got}");
            assert_eq!(e.ipa, 0, "the IPA field is UNKNOWN for stage 1: {got}");
        }
    }
    assert_eq!(g.vsmmu.stats().events_forwarded, 8);
}

#[test]
fn configuration_errors_of_the_guest_s_cds_are_forwarded_with_the_vsid() {
    let mut g = attached(false);
    let evs = [
        Event::CBadSubstreamid(
            CBadSubstreamid::new()
                .with_stream_id(PSID)
                .with_substream_id(9),
        ),
        Event::CBadCd(
            CBadCd::new()
                .with_stream_id(PSID)
                .with_ssv(true)
                .with_substream_id(2),
        ),
        Event::FStreamDisabled(FStreamDisabled::new().with_stream_id(PSID)),
    ];
    for ev in evs {
        let got = forwarded(&mut g, ev);
        match (ev, got) {
            (Event::CBadSubstreamid(_), Event::CBadSubstreamid(x)) => {
                assert_eq!((x.stream_id(), x.substream_id()), (VSID, 9))
            }
            (Event::CBadCd(_), Event::CBadCd(x)) => {
                assert_eq!((x.stream_id(), x.ssv(), x.substream_id()), (VSID, true, 2))
            }
            (Event::FStreamDisabled(_), Event::FStreamDisabled(x)) => {
                assert_eq!(x.stream_id(), VSID)
            }
            (sent, got) => panic!("{sent} arrived as {got}"),
        }
    }
}

#[test]
fn a_stage_2_fault_on_a_cd_fetch_arrives_as_f_cd_fetch_at_the_ipa() {
    let mut g = attached(false);
    let cd_ipa = g.cd_table(VSID);
    for fault in faults(true, FTranslationClass::CD, cd_ipa, 0x0dea_d000) {
        let got = forwarded(&mut g, fault);
        let Event::FCdFetch(x) = got else {
            panic!("{fault} arrived as {got}")
        };
        assert_eq!(
            (x.stream_id(), x.ssv(), x.substream_id(), x.fetch_addr()),
            (VSID, true, 3, cd_ipa),
            "{got}"
        );
    }
    assert_eq!(g.vsmmu.stats().stage2_faults, 0);
}

#[test]
fn a_stage_2_fault_on_a_stage_1_table_walk_arrives_as_f_walk_eabt_at_the_ipa() {
    let mut g = attached(false);
    let table_ipa = RAM + 0x50_0000;
    for fault in faults(true, FTranslationClass::TTD, table_ipa, 0x0dea_d000) {
        let got = forwarded(&mut g, fault);
        let Event::FWalkEabt(x) = got else {
            panic!("{fault} arrived as {got}")
        };
        assert_eq!(
            (
                x.stream_id(),
                x.ssv(),
                x.substream_id(),
                x.input_addr(),
                x.rn_w(),
                x.class().0,
                x.fetch_addr()
            ),
            (
                VSID,
                true,
                3,
                0x0dea_d000,
                true,
                FTranslationClass::TTD.0,
                table_ipa
            ),
            "{got}"
        );
        assert!(!x.s2(), "the guest has no stage 2: {got}");
    }
}

#[test]
fn a_stage_2_fault_on_the_final_access_stays_with_the_hypervisor() {
    let mut g = attached(false);
    let prod = eventq_prod(&mut g);
    for (i, fault) in faults(true, FTranslationClass::IN, PHYS_ADDR, 0x0dea_d000)
        .into_iter()
        .enumerate()
    {
        assert_eq!(deliver(&mut g, fault), EventOutcome::Hypervisor, "{fault}");
        assert_eq!(g.vsmmu.stats().stage2_faults, i as u64 + 1);
    }
    assert_eq!(eventq_prod(&mut g), prod);
    assert!(g.events().is_empty());
    assert_eq!(g.vsmmu.stats().events_forwarded, 0);
    assert!(g.platform.irq.raised.is_empty() && g.platform.irq.msis.is_empty());
}

#[test]
fn events_for_a_stream_the_domain_does_not_own_are_not_ours_and_write_nothing() {
    let mut g = attached(false);
    // Another domain owns pSID 0x120 on the same SMMU.
    let mut owners = PsidOwners::new();
    let mut theirs = StreamMap::new();
    theirs
        .add_device(
            &mut owners,
            DomainId(2),
            8,
            PhysStream {
                smmu: SMMU,
                psid: 0x120,
            },
        )
        .unwrap();
    assert_eq!(
        theirs.virtual_of(PhysStream {
            smmu: SMMU,
            psid: 0x120
        }),
        Some(8)
    );
    let prod = eventq_prod(&mut g);
    let ram = g.platform.ram.bytes.clone();
    let cases = [
        (SMMU, 0x120),
        (SMMU, 0xffff_ffff),
        (SMMU, 0),
        // Our pSID, but on an SMMU the domain does not use.
        (SmmuId(1), PSID),
    ];
    for (smmu, psid) in cases {
        for ev in [
            Event::FTranslation(FTranslation::new().with_stream_id(psid)),
            Event::CBadSte(CBadSte::new().with_stream_id(psid)),
            Event::FWalkEabt(FWalkEabt::new().with_stream_id(psid)),
        ] {
            assert_eq!(
                deliver_from(&mut g, smmu, ev),
                EventOutcome::NotOurs,
                "{ev}"
            );
        }
    }
    assert_eq!(eventq_prod(&mut g), prod);
    assert!(g.platform.ram.bytes == ram, "guest memory changed");
    assert_eq!(g.vsmmu.stats().events_forwarded, 0);
    assert!(g.platform.irq.raised.is_empty() && g.platform.irq.msis.is_empty());
}

#[test]
fn events_are_dropped_and_counted_while_the_event_queue_is_disabled() {
    let fault = Event::FTranslation(
        FTranslation::new()
            .with_stream_id(PSID)
            .with_class(FTranslationClass::IN),
    );
    // Before the driver has enabled anything.
    let mut g = fresh(false, |_| {});
    assert_eq!(deliver(&mut g, fault), EventOutcome::Dropped);
    assert_eq!(g.vsmmu.stats().events_dropped, 1);

    // Enabled, then EVENTQEN cleared again while translation stays on.
    let mut g = attached(false);
    let cr0 = Cr0(g.read(Register::CR0) as u32).with_eventqen(false);
    g.write(Register::CR0, u64::from(cr0.0));
    assert!(!Cr0(g.read(Register::CR0ACK) as u32).eventqen());
    let prod = eventq_prod(&mut g);
    assert_eq!(deliver(&mut g, fault), EventOutcome::Dropped);
    assert_eq!(deliver(&mut g, fault), EventOutcome::Dropped);
    assert_eq!(g.vsmmu.stats().events_dropped, 2);
    assert_eq!(g.vsmmu.stats().events_forwarded, 0);
    assert_eq!(eventq_prod(&mut g), prod);
    assert!(
        g.platform.irq.raised.is_empty(),
        "{:?}",
        g.platform.irq.raised
    );

    // Enabled again: forwarded.
    g.write(Register::CR0, u64::from(cr0.with_eventqen(true).0));
    assert_eq!(deliver(&mut g, fault), EventOutcome::Forwarded);
    assert_eq!(g.events().len(), 1);
}

#[test]
fn the_event_queue_interrupt_is_raised_only_when_irq_ctrl_enables_it() {
    let mut g = attached(false);
    let fault = Event::FTranslation(FTranslation::new().with_stream_id(PSID));
    let gerror_only = IrqCtrl(0).with_gerror_irqen(true);
    g.write(Register::IRQ_CTRL, u64::from(gerror_only.0));
    assert_eq!(g.read(Register::IRQ_CTRLACK), u64::from(gerror_only.0));
    assert_eq!(deliver(&mut g, fault), EventOutcome::Forwarded);
    assert!(
        g.platform.irq.raised.is_empty(),
        "{:?}",
        g.platform.irq.raised
    );
    assert!(g.platform.irq.msis.is_empty());

    let both = gerror_only.with_eventq_irqen(true);
    g.write(Register::IRQ_CTRL, u64::from(both.0));
    assert_eq!(deliver(&mut g, fault), EventOutcome::Forwarded);
    assert_eq!(g.platform.irq.raised, [Irq::Eventq]);
    assert_eq!(g.events().len(), 2);
}

#[test]
fn with_msi_presented_and_configured_the_event_queue_interrupt_is_an_msi() {
    let mut g = attached(true);
    // The MSI configuration is writable only with the interrupt disabled.
    let on = IrqCtrl(g.read(Register::IRQ_CTRLACK) as u32);
    assert!(on.eventq_irqen());
    g.write(Register::IRQ_CTRL, u64::from(on.with_eventq_irqen(false).0));
    g.write(
        Register::EVENTQ_IRQ_CFG0,
        EventqIrqCfg0(0).with_addr(DOORBELL).0,
    );
    g.write(
        Register::EVENTQ_IRQ_CFG1,
        u64::from(EventqIrqCfg1(0).with_data(0x1234).0),
    );
    g.write(Register::IRQ_CTRL, u64::from(on.0));
    assert_eq!(
        EventqIrqCfg0(g.read(Register::EVENTQ_IRQ_CFG0)).addr(),
        DOORBELL
    );

    let fault = Event::FTranslation(FTranslation::new().with_stream_id(PSID));
    assert_eq!(deliver(&mut g, fault), EventOutcome::Forwarded);
    assert_eq!(g.platform.irq.msis, [(Irq::Eventq, Ipa(DOORBELL), 0x1234)]);
    assert!(
        !g.platform.irq.raised.contains(&Irq::Eventq),
        "{:?}",
        g.platform.irq.raised
    );
}

#[test]
fn with_msi_presented_but_no_doorbell_programmed_the_wired_line_is_used() {
    // Linux writes EVENTQ_IRQ_CFG0 = 0 when it has no MSI domain.
    let mut g = attached(true);
    let fault = Event::FTranslation(FTranslation::new().with_stream_id(PSID));
    assert_eq!(deliver(&mut g, fault), EventOutcome::Forwarded);
    assert_eq!(g.platform.irq.raised, [Irq::Eventq]);
    assert!(g.platform.irq.msis.is_empty());
}

#[test]
fn f_walk_eabt_and_f_cd_fetch_from_the_hardware_never_leak_a_physical_fetch_address() {
    let mut g = attached(false);
    let walk = Event::FWalkEabt(
        FWalkEabt::new()
            .with_stream_id(PSID)
            .with_input_addr(0x0dea_d000)
            .with_rn_w(true)
            .with_class(FWalkEabtClass(FTranslationClass::TTD.0))
            .with_fetch_addr(PHYS_ADDR),
    );
    let Event::FWalkEabt(x) = forwarded(&mut g, walk) else {
        panic!("F_WALK_EABT changed kind")
    };
    assert_eq!(
        (x.stream_id(), x.input_addr(), x.rn_w(), x.fetch_addr()),
        (VSID, 0x0dea_d000, true, 0)
    );

    let cd = Event::FCdFetch(
        FCdFetch::new()
            .with_stream_id(PSID)
            .with_ssv(true)
            .with_substream_id(1)
            .with_fetch_addr(PHYS_ADDR),
    );
    let Event::FCdFetch(x) = forwarded(&mut g, cd) else {
        panic!("F_CD_FETCH changed kind")
    };
    assert_eq!(
        (x.stream_id(), x.ssv(), x.substream_id(), x.fetch_addr()),
        (VSID, true, 1, 0)
    );
}

#[test]
fn events_about_the_hypervisor_s_own_stream_table_stay_with_the_hypervisor() {
    let mut g = attached(false);
    let prod = eventq_prod(&mut g);
    for ev in [
        Event::FSteFetch(
            FSteFetch::new()
                .with_stream_id(PSID)
                .with_fetch_addr(PHYS_ADDR),
        ),
        Event::CBadStreamid(CBadStreamid::new().with_stream_id(PSID)),
        Event::FUut(FUut::new().with_stream_id(PSID)),
    ] {
        assert_eq!(deliver(&mut g, ev), EventOutcome::Hypervisor, "{ev}");
    }
    assert_eq!(eventq_prod(&mut g), prod);
}

#[test]
fn c_bad_ste_from_the_hardware_for_a_stream_whose_guest_ste_was_fine_is_not_forwarded() {
    let mut g = attached(false);
    assert_eq!(g.vsmmu.installed(VSID).unwrap().refusal, None);
    // The other stream has Linux's initial STE: valid and aborting.
    assert_eq!(
        g.vsmmu.installed(OTHER_VSID),
        Some(Installed {
            config: StreamConfig::Abort { report: false },
            refusal: None
        })
    );
    let prod = eventq_prod(&mut g);
    for psid in [PSID, OTHER_PSID] {
        let ev = Event::CBadSte(CBadSte::new().with_stream_id(psid));
        assert_eq!(deliver(&mut g, ev), EventOutcome::Hypervisor);
    }
    assert_eq!(eventq_prod(&mut g), prod);
    assert!(g.platform.irq.raised.is_empty());
}

#[test]
fn c_bad_ste_from_the_hardware_for_an_invalid_guest_ste_arrives_as_c_bad_ste() {
    let mut g = attached(false);
    g.write_ste(VSID, Ste::new()).unwrap();
    assert_eq!(
        g.vsmmu.installed(VSID),
        Some(Installed {
            config: StreamConfig::Abort { report: true },
            refusal: Some(Refusal::BadSte)
        })
    );
    let got = forwarded(&mut g, Event::CBadSte(CBadSte::new().with_stream_id(PSID)));
    let Event::CBadSte(x) = got else {
        panic!("{got}")
    };
    assert_eq!(x.stream_id(), VSID);
}

#[test]
fn c_bad_ste_for_a_vsid_without_an_l2_table_arrives_as_c_bad_streamid() {
    // A two-level table whose L1 descriptors Linux has not filled yet.
    let mut g = fresh_with(false, &[(0x100, 0x200)], |_| {});
    g.bring_up().unwrap();
    assert!(g.probe.unwrap().two_level);
    assert_eq!(
        g.vsmmu.installed(VSID).unwrap().refusal,
        Some(Refusal::BadStreamId)
    );
    let got = forwarded(&mut g, Event::CBadSte(CBadSte::new().with_stream_id(PSID)));
    let Event::CBadStreamid(x) = got else {
        panic!("{got}")
    };
    assert_eq!(x.stream_id(), VSID);
}

#[test]
fn c_bad_ste_for_a_guest_ste_that_cannot_be_fetched_arrives_as_f_ste_fetch_at_its_ipa() {
    let mut g = attached(false);
    // Move the stream table out of guest RAM (SMMUEN off, new base, SMMUEN on).
    let cr0 = Cr0(g.read(Register::CR0) as u32);
    g.write(Register::CR0, u64::from(cr0.with_smmuen(false).0));
    let base = smmuv3::regs::StrtabBase(g.read(Register::STRTAB_BASE));
    let gone = RAM + (64 << 20);
    g.write(Register::STRTAB_BASE, base.with_addr(gone).0);
    g.write(Register::CR0, u64::from(cr0.0));
    for _ in 0..100 {
        g.run_deferred();
    }
    let refusal = g.vsmmu.installed(VSID).unwrap().refusal;
    let ste_ipa = gone + 64 * u64::from(VSID);
    assert_eq!(refusal, Some(Refusal::FetchFault(Ipa(ste_ipa))));
    let got = forwarded(&mut g, Event::CBadSte(CBadSte::new().with_stream_id(PSID)));
    let Event::FSteFetch(x) = got else {
        panic!("{got}")
    };
    assert_eq!((x.stream_id(), x.fetch_addr()), (VSID, ste_ipa));
}

#[test]
fn cmd_sync_with_cs_irq_and_an_msi_address_outside_guest_ram_performs_an_msi() {
    let mut g = attached(true);
    let sync = CmdSync::new()
        .with_cs(CmdSyncCs::SIG_IRQ)
        .with_msi_address(DOORBELL)
        .with_msi_data(0xabcd);
    submit(&mut g, &[Command::Sync(sync)]);
    assert_eq!(g.platform.irq.msis, [(Irq::CmdSync, Ipa(DOORBELL), 0xabcd)]);
    assert!(!g.platform.irq.raised.contains(&Irq::CmdSync));
    // Consumed.
    let cons = smmuv3::regs::CmdqCons(g.read(Register::CMDQ_CONS) as u32);
    assert_eq!(cons.rd(), g.prod);
}

#[test]
fn cmd_sync_with_cs_irq_and_an_msi_address_in_guest_ram_writes_the_data_there() {
    let mut g = attached(true);
    let slot = RAM + 0x60_0000;
    g.platform.ram.write_u64(slot, 0xffff_ffff_ffff_ffff);
    let sync = CmdSync::new()
        .with_cs(CmdSyncCs::SIG_IRQ)
        .with_msi_address(slot)
        .with_msi_data(0x5a5a_0001);
    submit(&mut g, &[Command::Sync(sync)]);
    assert_eq!(g.ram_u32(slot), 0x5a5a_0001);
    assert!(g.platform.irq.msis.is_empty() && g.platform.irq.raised.is_empty());
}

#[test]
fn cmd_sync_with_cs_irq_without_msi_presented_raises_the_cmd_sync_line() {
    let mut g = attached(false);
    let sync = CmdSync::new().with_cs(CmdSyncCs::SIG_IRQ);
    submit(&mut g, &[Command::Sync(sync)]);
    assert_eq!(g.platform.irq.raised, [Irq::CmdSync]);
    assert!(g.platform.irq.msis.is_empty());
    // CS=SEV and CS=NONE signal nothing.
    g.platform.irq.raised.clear();
    submit(
        &mut g,
        &[
            Command::Sync(CmdSync::new().with_cs(CmdSyncCs::SIG_SEV)),
            Command::Sync(CmdSync::new().with_cs(CmdSyncCs::SIG_NONE)),
        ],
    );
    assert!(g.platform.irq.raised.is_empty() && g.platform.irq.msis.is_empty());
}

#[test]
fn a_stream_reconfigured_by_the_guest_keeps_forwarding_to_the_same_vsid() {
    let mut g = attached(false);
    g.attach(OTHER_VSID, 0x43, RAM + 0x58_0000).unwrap();
    let a = Event::FPermission(
        FPermission::new()
            .with_stream_id(PSID)
            .with_input_addr(0x1000),
    );
    let b = Event::FPermission(
        FPermission::new()
            .with_stream_id(OTHER_PSID)
            .with_input_addr(0x2000),
    );
    assert_eq!(deliver(&mut g, a), EventOutcome::Forwarded);
    assert_eq!(deliver(&mut g, b), EventOutcome::Forwarded);
    let got: Vec<(u32, u64)> = g
        .events()
        .iter()
        .map(|e| match e {
            Event::FPermission(x) => (x.stream_id(), x.input_addr()),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(got, [(VSID, 0x1000), (OTHER_VSID, 0x2000)]);
}
