//! Correct under pressure: invalidations that really invalidate, work per
//! call independent of the domain's size, nothing acknowledged before it
//! took effect, events lost only with OVFLG, and a domain that can be torn
//! down. Driven the Linux way (both driver generations where the sequence
//! differs) through MMIO and guest memory, against the recording hardware
//! layer; `tests/tests/pressure.rs` runs the DMA side on the model.

use smmuv3::cmd::*;
use smmuv3::evt::{Event, FTranslation};
use smmuv3::platform::QEMU_VIRT;
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::Register;
use vsmmu::testing::{
    linux, FakePlatform, GuestError, GuestLayout, HwCall, LinuxGuest, LinuxVersion,
};
use vsmmu::Refusal;
use vsmmu::*;

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: usize = 16 << 20;
const SMMU: SmmuId = SmmuId(0);
const VMID: u16 = 5;
const DEV: PhysStream = PhysStream {
    smmu: SMMU,
    psid: 0x108,
};

/// A domain whose vSIDs `vsids` map to pSIDs `0x1000 + vsid`, plus vSID 8
/// -> pSID 0x108 when it is not among them.
fn domain(version: LinuxVersion, vsids: core::ops::Range<u32>, policy: Policy) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, RAM_SIZE, 1);
    p.hw.count_only = vsids.len() > 1024;
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    if !vsids.contains(&8) {
        map.add_device(&mut owners, DomainId(1), 8, DEV).unwrap();
    }
    if !vsids.is_empty() {
        let len = vsids.end - vsids.start;
        map.add_range(
            &mut owners,
            DomainId(1),
            vsids.start,
            SMMU,
            0x1000 + vsids.start,
            len,
        )
        .unwrap();
    }
    let cfg = VsmmuConfig {
        policy,
        ..VsmmuConfig::new(DomainId(1), VMID, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    LinuxGuest::new(v, p, GuestLayout::linux(RAM, version))
}

fn attached(version: LinuxVersion) -> LinuxGuest {
    let mut g = domain(version, 0..0, Policy::default());
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    g
}

/// Runs deferred work until the vSMMU asks for none.
fn settle(g: &mut LinuxGuest) {
    for _ in 0..1_000_000 {
        if !g.platform.defer.pending {
            return;
        }
        g.run_deferred();
    }
    panic!("deferred work never ends");
}

/// Puts raw command words on the queue and publishes them (one trap).
fn publish(g: &mut LinuxGuest, cmds: &[[u64; 2]]) {
    let size = 1u32 << g.layout.cmdq_log2;
    for w in cmds {
        let at = g.layout.cmdq + 16 * u64::from(g.prod & (size - 1));
        g.write_words(at, w);
        g.prod = (g.prod + 1) & ((size << 1) - 1);
    }
    g.write(Register::CMDQ_PROD, u64::from(g.prod));
}

fn cons(g: &mut LinuxGuest) -> CmdqCons {
    CmdqCons(g.read(Register::CMDQ_CONS) as u32)
}

fn sync() -> [u64; 2] {
    CmdSync::new().with_cs(CmdSyncCs::SIG_SEV).encode()
}

fn physical_commands(g: &mut LinuxGuest) -> Vec<Command> {
    let cmds = g
        .platform
        .hw
        .commands()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    g.platform.hw.calls.clear();
    cmds
}

// ---- 1. invalidations ----

#[test]
fn many_page_invalidations_become_one_that_also_covers_global_entries() {
    let mut g = attached(LinuxVersion::V6_12);
    physical_commands(&mut g);
    let n = 2 * Policy::default().tlbi_coarsen_threshold as u64;
    let mut raw: Vec<[u64; 2]> = (0..n)
        .map(|i| {
            CmdTlbiNhVa::new()
                .with_asid(0x42)
                .with_addr(0x1000_0000 + (i << 12))
                .with_leaf(true)
                .encode()
        })
        .collect();
    raw.push(sync());
    publish(&mut g, &raw);
    settle(&mut g);
    let sent = physical_commands(&mut g);
    // A TLBI_NH_ASID would leave global entries of those pages in the TLB.
    assert!(
        !sent.iter().any(|c| matches!(c, Command::TlbiNhAsid(_))),
        "{sent:?}"
    );
    assert!(sent
        .iter()
        .any(|c| matches!(c, Command::TlbiNhAll(a) if a.vmid() == VMID)));
    assert!(sent.len() <= Policy::default().tlbi_coarsen_threshold as usize + 1);
}

#[test]
fn a_range_tlbi_with_scale_bit_25_is_refused_on_the_guest_queue_only() {
    let mut g = attached(LinuxVersion::V6_12);
    assert!(!Idr5(g.read(Register::IDR5) as u32).ds());
    physical_commands(&mut g);
    let bad = CmdTlbiNhVa::new()
        .with_asid(0x42)
        .with_tg(CmdTlbiNhVaTg::GRANULE_4KB)
        .with_ttl(3)
        .with_scale(32)
        .with_addr(0x1000_0000)
        .encode();
    let start = cons(&mut g).rd();
    publish(&mut g, &[bad, sync()]);
    let c = cons(&mut g);
    assert_eq!((c.rd(), c.err()), (start, CmdqConsErr::CERROR_ILL));
    assert!(Gerror(g.read(Register::GERROR) as u32).cmdq_err());
    assert!(
        physical_commands(&mut g).is_empty(),
        "nothing reached the hardware"
    );
    // Linux skips it (replaced by a CMD_SYNC) and acknowledges; the queue goes on.
    g.gerror_handler();
    settle(&mut g);
    assert_eq!(cons(&mut g).rd(), g.prod);
}

#[test]
fn a_guest_sync_never_completes_while_the_hardware_does_not_confirm() {
    let mut g = attached(LinuxVersion::V6_12);
    g.platform.hw.fail_syncs = true;
    let unmap = g.unmap(0x42, 0x1000_0000, 1);
    assert_eq!(unmap, Err(GuestError::SyncTimeout), "Linux times out");
    // The SYNC is still there, unconsumed; the streams abort meanwhile.
    assert_ne!(cons(&mut g).rd(), g.prod);
    assert!(g.vsmmu.contained());
    assert_eq!(g.vsmmu.stats().containments, 1);
    assert_eq!(
        g.platform.hw.installed(DEV),
        Some(StreamConfig::Abort { report: false })
    );
    // The hardware recovers: the SYNC completes and the stream comes back.
    g.platform.hw.fail_syncs = false;
    g.platform.now_ns += 1_000_000_000;
    settle(&mut g);
    assert_eq!(cons(&mut g).rd(), g.prod);
    assert!(!g.vsmmu.contained());
    assert!(matches!(
        g.platform.hw.installed(DEV),
        Some(StreamConfig::Nested(_))
    ));
    // What was sent before the failure was covered again.
    let sent = physical_commands(&mut g);
    assert!(sent
        .iter()
        .any(|c| matches!(c, Command::TlbiNhAll(a) if a.vmid() == VMID)));
}

// ---- 2. bounded work ----

/// Guest-memory accesses one call may make (see hostile.rs).
fn access_bound(p: &Policy) -> u64 {
    2 * u64::from(p.commands_per_call) + 2 * u64::from(p.stes_per_call) + 1
}

/// A policy whose hardware budget is out of the way (the per-call bounds are
/// what is tested).
fn roomy() -> Policy {
    Policy {
        hw_burst: 1 << 30,
        hw_refill_per_ms: 1 << 30,
        ..Policy::default()
    }
}

#[test]
fn one_trap_does_the_same_bounded_work_for_65536_vsids_as_for_64() {
    for n in [64u32, 65_536] {
        let policy = roomy();
        let mut g = domain(LinuxVersion::V6_12, 0..n, policy);
        g.bring_up().unwrap();
        settle(&mut g);
        let before = g.platform.ram.accesses;
        let cfgi_all = CmdCfgiSteRange::new().with_range(31).encode();
        let mut raw = vec![cfgi_all; 64];
        raw.push(sync());
        publish(&mut g, &raw);
        let accesses = g.platform.ram.accesses - before;
        assert!(accesses <= access_bound(&policy), "{n}: {accesses}");
        assert!(g.vsmmu.last_call_commands() <= policy.commands_per_call);
        // A GBPA write marks every stream at once: one range, not n entries.
        let before = g.platform.ram.accesses;
        g.write(
            Register::GBPA,
            u64::from(Gbpa(0).with_update(true).with_abort(true).0),
        );
        assert!(g.platform.ram.accesses - before <= access_bound(&policy));
        // Each deferred call is bounded too, and the hardware sees batches
        // of at most 64 commands.
        while g.platform.defer.pending {
            let before = g.platform.ram.accesses;
            g.run_deferred();
            assert!(
                g.platform.ram.accesses - before <= access_bound(&policy),
                "{n}"
            );
        }
        assert_eq!(cons(&mut g).rd(), g.prod);
    }
}

#[test]
fn an_install_is_charged_what_it_cost_the_hardware() {
    let policy = Policy {
        hw_burst: 64,
        hw_refill_per_ms: 8,
        ..Policy::default()
    };
    let mut g = domain(LinuxVersion::V6_12, 0..0, policy);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    settle(&mut g);
    let start = g.platform.now_ns;
    let spent =
        |g: &LinuxGuest| 2 * g.platform.hw.installs + g.platform.hw.commands + g.platform.hw.syncs;
    let before = spent(&g);
    // 200 breaking updates: each CD table move is a new nested STE.
    for i in 0..200u64 {
        let cd = g.cd_table(8);
        let mut ste = g.s1_ste(cd);
        ste.set_s1_context_ptr(if i % 2 == 0 { cd + 0x40 } else { cd });
        let at = g.ste_addr(8);
        g.write_words(at, &ste.0);
        publish(
            &mut g,
            &[CmdCfgiSte::new().with_stream_id(8).encode(), sync()],
        );
        settle(&mut g);
    }
    let elapsed_ms = (g.platform.now_ns - start) / 1_000_000;
    let allowed = u64::from(policy.hw_burst) + elapsed_ms * u64::from(policy.hw_refill_per_ms) + 8;
    assert!(
        spent(&g) - before <= allowed,
        "{} physical commands in {elapsed_ms} ms",
        spent(&g) - before
    );
}

fn a_full_linux_batch_completes_in_the_trap_that_publishes_it(v: LinuxVersion) {
    let mut g = domain(v, 0..0, Policy::default());
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    settle(&mut g);
    // A hypervisor that runs deferred work 2 s late.
    g.timing.deferred_latency_ns = 2_000_000_000;
    let requests = g.platform.defer.requests;
    let start = g.now_ns();
    let cmds: Vec<Command> = (0..64u16)
        .map(|a| Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(a)))
        .collect();
    g.issue(&cmds).unwrap();
    assert_eq!(
        g.platform.defer.requests, requests,
        "no deferred work needed"
    );
    assert!(g.now_ns() - start < 1_000_000, "completed at once");
}

#[test]
fn a_full_linux_batch_completes_in_the_trap_that_publishes_it_6_1() {
    a_full_linux_batch_completes_in_the_trap_that_publishes_it(LinuxVersion::V6_1);
}

#[test]
fn a_full_linux_batch_completes_in_the_trap_that_publishes_it_6_12() {
    a_full_linux_batch_completes_in_the_trap_that_publishes_it(LinuxVersion::V6_12);
}

#[test]
fn a_policy_that_stops_progress_is_refused_at_setup() {
    let mut p = FakePlatform::new(RAM, RAM_SIZE, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_device(&mut owners, DomainId(1), 8, DEV).unwrap();
    let zeros = Policy {
        commands_per_call: 0,
        stes_per_call: 0,
        tlbi_coarsen_threshold: 0,
        hw_burst: 0,
        hw_refill_per_ms: 0,
        hw_penalty_after_ms: 0,
        pending_event_limit: 0,
        hw_retry_limit: 0,
    };
    let cfg = VsmmuConfig {
        policy: zeros,
        ..VsmmuConfig::new(DomainId(1), VMID, 40)
    };
    assert!(matches!(
        Vsmmu::new(cfg, map.clone(), &mut p.hw),
        Err(SetupError::Policy(PolicyError::Zero(_)))
    ));
    // Hardware that stalls every fault cannot be given to a guest.
    p.hw.caps[0].1.idr0 = QEMU_VIRT
        .idr0
        .with_stall_model(Idr0StallModel::STALL_FORCED);
    let cfg = VsmmuConfig::new(DomainId(1), VMID, 40);
    assert!(matches!(
        Vsmmu::new(cfg, map, &mut p.hw),
        Err(SetupError::StallForced(SMMU))
    ));
}

#[test]
fn a_clock_that_jumps_years_ahead_and_back_does_not_wedge_the_domain() {
    let mut g = attached(LinuxVersion::V6_12);
    g.platform.now_ns = u64::MAX / 2;
    g.unmap(0x42, 0x1000_0000, 1).unwrap();
    g.platform.now_ns = 1_000_000_000;
    for i in 0..1000u64 {
        g.unmap(0x42, 0x1000_0000 + (i << 12), 1).unwrap();
    }
}

// ---- 3. acknowledged once in effect ----

#[test]
fn cr0ack_and_gbpa_update_complete_only_once_every_stream_is_installed() {
    let policy = Policy {
        stes_per_call: 8,
        ..roomy()
    };
    let mut g = domain(LinuxVersion::V6_12, 0x100..0x200, policy);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    settle(&mut g);
    // Linux's shutdown: GBPA abort with Update, then SMMUEN=0.
    g.write(
        Register::GBPA,
        u64::from(Gbpa(0).with_abort(true).with_update(true).0),
    );
    g.write(Register::CR0, 0);
    let ack = Cr0(g.read(Register::CR0ACK) as u32);
    assert!(ack.smmuen(), "256 streams are not moved in one call");
    let last = g.vsmmu.streams().physical(0x1ff).unwrap();
    assert_ne!(
        g.platform.hw.installed(last),
        Some(StreamConfig::Abort { report: false }),
        "the last stream is still what the guest had"
    );
    let mut polls = 0;
    while Cr0(g.read(Register::CR0ACK) as u32).smmuen() {
        polls += 1;
        g.run_deferred();
    }
    assert!(polls > 1);
    // Once CR0ACK says so, every stream aborts (GBPA.ABORT).
    for (_, stream) in g.vsmmu.streams().iter() {
        assert_eq!(
            g.platform.hw.installed(stream),
            Some(StreamConfig::Abort { report: false }),
            "{stream:?}"
        );
    }
    assert!(!Gbpa(g.read(Register::GBPA) as u32).update());
    // And back on: CR0ACK says SMMUEN=1 only once every stream has the
    // guest's configuration again (vSID 8 nested, the others as its table says).
    let on = Cr0(0)
        .with_smmuen(true)
        .with_cmdqen(true)
        .with_eventqen(true);
    g.write(Register::CR0, u64::from(on.0));
    assert!(!Cr0(g.read(Register::CR0ACK) as u32).smmuen(), "not yet");
    while !Cr0(g.read(Register::CR0ACK) as u32).smmuen() {
        g.run_deferred();
    }
    assert!(matches!(
        g.platform.hw.installed(DEV),
        Some(StreamConfig::Nested(_))
    ));
    for (vsid, stream) in g.vsmmu.streams().iter() {
        let want = g.vsmmu.installed(vsid).map(|i| i.config);
        assert_eq!(g.platform.hw.installed(stream), want, "vSID {vsid:#x}");
        assert_ne!(
            want,
            Some(StreamConfig::Abort { report: false }),
            "vSID {vsid:#x}"
        );
    }
}

#[test]
fn gbpa_update_stays_set_until_the_streams_follow_and_writes_meanwhile_are_ignored() {
    let policy = Policy {
        stes_per_call: 8,
        ..roomy()
    };
    let mut g = domain(LinuxVersion::V6_12, 0x100..0x200, policy);
    let abort = Gbpa(0).with_abort(true).with_update(true);
    g.write(Register::GBPA, u64::from(abort.0));
    assert!(Gbpa(g.read(Register::GBPA) as u32).update());
    // A write while Update is 1 is ignored.
    g.write(Register::GBPA, u64::from(Gbpa(0).with_update(true).0));
    assert!(Gbpa(g.read(Register::GBPA) as u32).abort());
    settle(&mut g);
    let gbpa = Gbpa(g.read(Register::GBPA) as u32);
    assert!(gbpa.abort() && !gbpa.update());
    assert_eq!(
        g.platform.hw.installed(DEV),
        Some(StreamConfig::Abort { report: false })
    );
}

// ---- 4. events and errors ----

fn fault(stream: PhysStream) -> PhysEvent {
    PhysEvent {
        smmu: stream.smmu,
        event: Event::FTranslation(FTranslation::new().with_stream_id(stream.psid)),
    }
}

fn deliver(g: &mut LinuxGuest, ev: PhysEvent) -> EventOutcome {
    let mut ports = g.platform.ports();
    g.vsmmu.deliver_event(&mut ports, ev)
}

#[test]
fn eventq_and_gerror_msis_to_guest_ram_are_written_there() {
    let mut g = attached(LinuxVersion::V6_12);
    let (evt_word, gerr_word) = (RAM + 0x60_0000, RAM + 0x60_0040);
    // The IRQ_CFG registers are guarded by the interrupt enables.
    let irqs = g.read(Register::IRQ_CTRL);
    g.write(Register::IRQ_CTRL, 0);
    g.write(Register::EVENTQ_IRQ_CFG0, evt_word);
    g.write(Register::EVENTQ_IRQ_CFG1, 0xe1);
    g.write(Register::GERROR_IRQ_CFG0, gerr_word);
    g.write(Register::GERROR_IRQ_CFG1, 0x6e);
    g.write(Register::IRQ_CTRL, irqs);
    assert_eq!(deliver(&mut g, fault(DEV)), EventOutcome::Forwarded);
    assert_eq!(g.ram_u32(evt_word), 0xe1);
    // A command error raises GERROR: its MSI lands in RAM too.
    publish(&mut g, &[[0xff, 0]]);
    assert_eq!(g.ram_u32(gerr_word), 0x6e);
    assert!(
        g.platform.irq.msis.is_empty(),
        "nothing went to the doorbell"
    );
}

#[test]
fn c_bad_streamid_is_recorded_only_when_cr2_recinvsid_is_set() {
    let mut g = attached(LinuxVersion::V6_12);
    // The guest shrinks its stream table below vSID 8 (SMMUEN=0 to do it).
    let cfg = StrtabBaseCfg(g.read(Register::STRTAB_BASE_CFG) as u32);
    g.write(Register::CR0, 0);
    settle(&mut g);
    g.write(Register::STRTAB_BASE_CFG, u64::from(cfg.with_log2size(3).0));
    for recinvsid in [false, true] {
        g.write(Register::CR0, 0);
        settle(&mut g);
        g.write(Register::CR2, u64::from(Cr2(0).with_recinvsid(recinvsid).0));
        g.write(
            Register::CR0,
            u64::from(
                Cr0(0)
                    .with_smmuen(true)
                    .with_cmdqen(true)
                    .with_eventqen(true)
                    .0,
            ),
        );
        settle(&mut g);
        assert_eq!(
            g.vsmmu.installed(8).and_then(|i| i.refusal),
            Some(Refusal::BadStreamId)
        );
        let bad_ste = PhysEvent {
            smmu: SMMU,
            event: Event::CBadSte(smmuv3::evt::CBadSte::new().with_stream_id(DEV.psid)),
        };
        let want = if recinvsid {
            EventOutcome::Forwarded
        } else {
            EventOutcome::Hypervisor
        };
        assert_eq!(deliver(&mut g, bad_ste), want, "RECINVSID {recinvsid}");
    }
    let evs = g.events();
    assert!(matches!(evs.as_slice(), [Event::CBadStreamid(e)] if e.stream_id() == 8));
}

#[test]
fn a_non_leaf_cfgi_ste_refreshes_every_stream_under_the_l1_descriptor() {
    let mut g = domain(LinuxVersion::V6_12, 0x100..0x140, roomy());
    g.bring_up().unwrap();
    let table = g.layout.strtab;
    assert_eq!(
        StrtabBaseCfg(g.read(Register::STRTAB_BASE_CFG) as u32).fmt(),
        StrtabBaseCfgFmt::TWO_LEVEL
    );
    // Valid (bypass) STEs for 0x100 and 0x101 in their level-2 table.
    let bypass = Ste::new().with_v(true).with_config(SteConfig::BYPASS);
    for sid in [0x100, 0x101] {
        let at = g.ste_addr(sid);
        g.write_words(at, &bypass.0);
    }
    let split = u32::from(
        StrtabBaseCfg(g.read(Register::STRTAB_BASE_CFG) as u32)
            .split()
            .0,
    );
    let l1_at = table + 8 * u64::from(0x100u32 >> split);
    let l1 = L1std([g.platform.ram.read_u64(l1_at)]);
    // Span 1: only the first StreamID of the span is valid.
    g.platform.ram.write_u64(l1_at, l1.with_span(1).0[0]);
    g.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])
        .unwrap();
    settle(&mut g);
    assert_eq!(
        g.vsmmu.installed(0x100).map(|i| i.config),
        Some(StreamConfig::Stage2Only)
    );
    assert_eq!(
        g.vsmmu.installed(0x101).and_then(|i| i.refusal),
        Some(Refusal::BadStreamId)
    );
    // The full Span back, and the non-leaf CFGI_STE Linux would send for 0x100.
    g.platform.ram.write_u64(l1_at, l1.0[0]);
    g.issue(&[Command::CfgiSte(CmdCfgiSte::new().with_stream_id(0x100))])
        .unwrap();
    settle(&mut g);
    assert_eq!(
        g.vsmmu.installed(0x101).map(|i| i.config),
        Some(StreamConfig::Stage2Only),
        "the L1STD was invalidated for every StreamID it locates"
    );
}

#[test]
fn sev_is_presented_only_when_the_hypervisor_can_send_it() {
    let mut g = attached(LinuxVersion::V6_12);
    assert!(!Idr0(g.read(Register::IDR0) as u32).sev());
    let mut p = FakePlatform::new(RAM, RAM_SIZE, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_device(&mut owners, DomainId(1), 8, DEV).unwrap();
    let cfg = VsmmuConfig {
        sev: true,
        ..VsmmuConfig::new(DomainId(1), VMID, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::linux(RAM, LinuxVersion::V6_12));
    assert!(Idr0(g.read(Register::IDR0) as u32).sev());
    g.bring_up().unwrap();
    assert!(g.platform.irq.sevs > 0, "Linux waits in WFE for these");
}

// ---- 5. teardown ----

#[test]
fn a_torn_down_domain_leaves_aborting_streams_and_its_psids_free() {
    let mut g = attached(LinuxVersion::V6_12);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_device(&mut owners, DomainId(1), 8, DEV).unwrap();
    assert_eq!(owners.owner(DEV), Some(DomainId(1)));
    g.platform.hw.calls.clear();
    g.vsmmu.teardown(&mut g.platform.hw, &mut owners).unwrap();
    assert_eq!(
        g.platform.hw.calls,
        [
            HwCall::Install(DEV, StreamConfig::Abort { report: false }),
            HwCall::Release(SMMU)
        ]
    );
    assert_eq!(owners.owner(DEV), None);
    // Failing hardware: nothing is released.
    map.add_device(
        &mut owners,
        DomainId(1),
        9,
        PhysStream {
            smmu: SMMU,
            psid: 0x109,
        },
    )
    .unwrap();
    g.platform.hw.fail = true;
    assert!(g.vsmmu.teardown(&mut g.platform.hw, &mut owners).is_err());
    assert!(owners
        .owner(PhysStream {
            smmu: SMMU,
            psid: 0x109
        })
        .is_some());
    let _ = linux::POLL_TIMEOUT_NS;
}

#[test]
fn a_16_bit_asid_on_an_smmu_with_8_bit_asids_is_refused_not_forwarded() {
    let mut p = FakePlatform::new(RAM, RAM_SIZE, 1);
    p.hw.caps[0].1.idr0 = QEMU_VIRT.idr0.with_asid16(false);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_device(&mut owners, DomainId(1), 8, DEV).unwrap();
    let v = Vsmmu::new(VsmmuConfig::new(DomainId(1), VMID, 40), map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::linux(RAM, LinuxVersion::V6_12));
    g.bring_up().unwrap();
    assert!(!Idr0(g.read(Register::IDR0) as u32).asid16());
    physical_commands(&mut g);
    let ok = CmdTlbiNhAsid::new().with_asid(0xff).encode();
    publish(&mut g, &[ok, sync()]);
    assert_eq!(cons(&mut g).err(), CmdqConsErr::CERROR_NONE);
    let start = cons(&mut g).rd();
    let wide = CmdTlbiNhAsid::new().with_asid(0x100).encode();
    publish(&mut g, &[wide, sync()]);
    let c = cons(&mut g);
    assert_eq!((c.rd(), c.err()), (start, CmdqConsErr::CERROR_ILL));
    let sent = physical_commands(&mut g);
    assert!(
        sent.iter()
            .all(|c| !matches!(c, Command::TlbiNhAsid(a) if a.asid() > 0xff)),
        "{sent:?}"
    );
}

/// Guest memory whose writes to one word fail (the hypervisor refused them).
struct RefusingWrites<'a> {
    ram: &'a mut vsmmu::testing::GuestRam,
    refused: u64,
}

impl GuestMemory for RefusingWrites<'_> {
    fn read(&mut self, ipa: Ipa, buf: &mut [u8]) -> Result<(), MemFault> {
        self.ram.read(ipa, buf)
    }
    fn write(&mut self, ipa: Ipa, data: &[u8]) -> Result<(), MemFault> {
        if ipa.0 == self.refused {
            return Err(MemFault { ipa });
        }
        self.ram.write(ipa, data)
    }
    fn is_backed(&self, ipa: Ipa, len: u64) -> bool {
        self.ram.is_backed(ipa, len)
    }
}

#[test]
fn an_eventq_msi_that_cannot_be_written_raises_msi_eventq_abt_err() {
    let mut g = attached(LinuxVersion::V6_12);
    let word = RAM + 0x60_0000;
    let irqs = g.read(Register::IRQ_CTRL);
    g.write(Register::IRQ_CTRL, 0);
    g.write(Register::EVENTQ_IRQ_CFG0, word);
    g.write(Register::IRQ_CTRL, irqs);
    let p = &mut g.platform;
    let mut mem = RefusingWrites {
        ram: &mut p.ram,
        refused: word,
    };
    let mut ports = Ports {
        mem: &mut mem,
        hw: &mut p.hw,
        irq: &mut p.irq,
        defer: &mut p.defer,
        now_ns: p.now_ns,
    };
    assert_eq!(
        g.vsmmu.deliver_event(&mut ports, fault(DEV)),
        EventOutcome::Forwarded
    );
    let active =
        Gerror(g.read(Register::GERROR) as u32).0 ^ Gerror(g.read(Register::GERRORN) as u32).0;
    assert!(Gerror(active).msi_eventq_abt_err(), "{active:#x}");
}
