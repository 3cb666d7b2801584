//! Correct under pressure, on the whole stack: the guest's invalidations
//! really invalidate what a device reads, nothing a guest sends stops the
//! shared physical queue, acknowledgements mean the streams moved, the
//! hardware budget is charged what the hardware did, and a torn-down
//! domain leaves nothing a later owner of its VMID could use.

use smmuv3::cmd::*;
use smmuv3::evt::Event;
use smmuv3::regs::{Cr0, Gbpa};
use smmuv3::structs::{Cd, CdTg1};
use smmuv3::Register;
use vsmmu::testing::{GuestLayout, LinuxVersion};
use vsmmu::Policy;
use vsmmu_testbed::{Guest, Machine, GUEST_IPA};

const PT_POOL: u64 = GUEST_IPA + 0x40_0000;
const DATA: u64 = GUEST_IPA + 0x80_0000;
const IOVA: u64 = 0x1000_0000;

fn booted(m: &mut Machine, v: LinuxVersion, vmid: u16, devs: &[(u32, u32)]) -> (Guest, u64, u64) {
    let mut g = m
        .domain(vmid, devs, |l: &mut GuestLayout| l.version = v)
        .unwrap();
    g.linux.bring_up().unwrap();
    let mut pool = PT_POOL;
    let root = pool;
    pool += 0x1000;
    g.linux.attach(8, 1, root).unwrap();
    (g, root, pool)
}

fn a_global_leaf_is_gone_after_many_page_invalidations(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, &[(8, 0x108)]);
    g.write_ipa(DATA, b"old!");
    g.write_ipa(DATA + 0x1000, b"new!");
    g.map_global_page(root, &mut pool, IOVA, DATA);
    assert_eq!(m.dma_read(0x108, IOVA, 4).unwrap(), b"old!");
    g.map_global_page(root, &mut pool, IOVA, DATA + 0x1000);
    // More page invalidations of the ASID than the batch keeps: before, they
    // became a TLBI_NH_ASID, which leaves global entries in the TLB.
    let pages = 2 * u64::from(Policy::default().tlbi_coarsen_threshold);
    let cmds: Vec<Command> = (0..pages)
        .map(|i| {
            Command::TlbiNhVa(
                CmdTlbiNhVa::new()
                    .with_asid(1)
                    .with_addr(IOVA + (i << 12))
                    .with_leaf(true),
            )
        })
        .collect();
    g.linux.issue(&cmds).unwrap();
    assert_eq!(m.dma_read(0x108, IOVA, 4).unwrap(), b"new!");
}

fn nothing_a_guest_sends_stops_the_physical_queue(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, _root, _pool) = booted(&mut m, v, 1, &[(8, 0x108)]);
    let illegal = m.driver.stats().illegal;
    // SCALE bit 25 without IDR5.DS: RES0, which an SMMU may refuse.
    let bad = Command::TlbiNhVa(
        CmdTlbiNhVa::new()
            .with_asid(1)
            .with_tg(CmdTlbiNhVaTg::GRANULE_4KB)
            .with_ttl(3)
            .with_scale(32)
            .with_addr(IOVA),
    );
    // Linux would skip it and acknowledge; the guest's own queue says why.
    g.linux.issue(&[bad]).unwrap();
    assert!(
        g.linux.vsmmu.stats().cerror_ill > 0,
        "the guest got CERROR_ILL"
    );
    assert_eq!(
        m.driver.stats().illegal,
        illegal,
        "the physical queue did not"
    );
}

fn a_cd_with_tg1_reserved_and_ttb1_walks_enabled_is_c_bad_cd(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, &[(8, 0x108)]);
    g.map_page(root, &mut pool, IOVA, DATA, true);
    let at = g.linux.cd_table(8);
    let mut cd = Cd([0; 8]);
    for (i, w) in cd.0.iter_mut().enumerate() {
        *w = u64::from_le_bytes(g.read_ipa(at + 8 * i as u64, 8).try_into().unwrap());
    }
    // TG1 0b00 is Reserved: with EPD1 = 0 the CD is ILLEGAL (§5.4).
    let cd = cd.with_epd1(false).with_tg1(CdTg1(0));
    for (i, w) in cd.0.iter().enumerate() {
        g.write_ipa(at + 8 * i as u64, &w.to_le_bytes());
    }
    g.linux
        .issue(&[Command::CfgiCdAll(CmdCfgiCdAll::new().with_stream_id(8))])
        .unwrap();
    assert!(m.dma_read(0x108, IOVA, 4).is_err());
    m.route_events(&mut [&mut g]);
    let evs = g.linux.events();
    assert!(
        matches!(evs.first(), Some(Event::CBadCd(e)) if e.stream_id() == 8),
        "{evs:?}"
    );
}

fn a_linux_shutdown_stops_dma_once_cr0ack_says_so(v: LinuxVersion) {
    let mut m = Machine::new();
    m.policy.stes_per_call = 1;
    let devs: Vec<(u32, u32)> = (0..8).map(|i| (8 + i, 0x108 + i)).collect();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, &devs);
    for i in 1..8 {
        g.linux.attach(8 + i, 1, root).unwrap();
    }
    g.map_page(root, &mut pool, IOVA, DATA, true);
    for (_, psid) in &devs {
        assert!(m.dma_read(*psid, IOVA, 4).is_ok());
    }
    // arm_smmu_device_disable after GBPA abort: write, poll the ACK.
    let poll = |g: &mut Guest, done: &dyn Fn(&mut Guest) -> bool| {
        for _ in 0..1000 {
            if done(g) {
                return;
            }
            g.linux.run_deferred();
        }
        panic!("never acknowledged");
    };
    let abort = Gbpa(0).with_abort(true).with_update(true);
    g.linux.write(Register::GBPA, u64::from(abort.0));
    poll(&mut g, &|g| {
        !Gbpa(g.linux.read(Register::GBPA) as u32).update()
    });
    g.linux.write(Register::CR0, 0);
    assert!(
        Cr0(g.linux.read(Register::CR0ACK) as u32).smmuen(),
        "not yet"
    );
    poll(&mut g, &|g| {
        !Cr0(g.linux.read(Register::CR0ACK) as u32).smmuen()
    });
    for (_, psid) in &devs {
        assert!(
            m.dma_read(*psid, IOVA, 4).is_err(),
            "pSID {psid:#x} still translates"
        );
    }
}

fn breaking_ste_updates_are_charged_what_the_driver_issued(v: LinuxVersion) {
    let mut m = Machine::new();
    m.policy = Policy {
        hw_burst: 64,
        hw_refill_per_ms: 8,
        ..Policy::default()
    };
    let (mut g, root, _pool) = booted(&mut m, v, 1, &[(8, 0x108)]);
    let before = m.driver.stats();
    let start = g.linux.now_ns();
    // 100 re-attachments with a new ASID: each a breaking STE/CD update.
    for i in 0..100u16 {
        g.linux.attach(8, 2 + i, root).unwrap();
    }
    let after = m.driver.stats();
    let spent = (after.commands - before.commands) + (after.syncs - before.syncs);
    let elapsed_ms = (g.linux.now_ns() - start) / 1_000_000;
    let allowed = 64 + 8 * elapsed_ms + u64::from(vsmmu::INSTALL_MAX_COMMANDS);
    assert!(
        spent <= allowed,
        "{spent} physical commands in {elapsed_ms} ms"
    );
}

fn a_vmid_reused_after_teardown_finds_no_stale_translation(v: LinuxVersion) {
    let mut m = Machine::new();
    // Before its guest enables the vSMMU, a device DMAs through the domain's
    // stage 2 only (GBPA bypass): the SMMU caches IPA -> PA for VMID 7.
    let mut a = m.domain(7, &[(8, 0x108)], |l| l.version = v).unwrap();
    a.write_ipa(DATA, b"AAAA");
    assert_eq!(m.dma_read(0x108, DATA, 4).unwrap(), b"AAAA");
    a.linux
        .vsmmu
        .teardown(&mut a.linux.platform.hw, &mut m.owners)
        .unwrap();
    assert!(m.dma_read(0x108, DATA, 4).is_err(), "the stream aborts");
    // A new domain gets the same VMID and device, with its RAM elsewhere.
    let b = m.domain(7, &[(8, 0x108)], |l| l.version = v).unwrap();
    b.write_ipa(DATA, b"BBBB");
    assert_ne!(a.linux.platform.guest_pa, b.linux.platform.guest_pa);
    assert_eq!(
        m.dma_read(0x108, DATA, 4).unwrap(),
        b"BBBB",
        "no stage-2 entry of the old domain"
    );
    // And through nested translation once its guest is up.
    let (mut b, b_root, mut b_pool) = (b, PT_POOL, PT_POOL + 0x1000);
    b.linux.bring_up().unwrap();
    b.linux.attach(8, 1, b_root).unwrap();
    b.map_page(b_root, &mut b_pool, IOVA, DATA, true);
    assert_eq!(m.dma_read(0x108, IOVA, 4).unwrap(), b"BBBB");
}

fn a_root_complex_of_16384_streams_is_enabled_within_linux_s_timeout(v: LinuxVersion) {
    // Every stream's STE changes when the guest enables its SMMU; at the
    // default budget one CFGI_STE + CMD_SYNC per stream would take 0.5 s of
    // budget alone. Installed in lockstep, a run of neighbouring streams
    // costs a few commands per step.
    let mut m = Machine::new();
    let devs: Vec<(u32, u32)> = (0..16_384).map(|i| (i, 0x4000 + i)).collect();
    let mut g = m.domain(1, &devs, |l| l.version = v).unwrap();
    let before = m.driver.stats();
    let start = g.linux.now_ns();
    g.linux.bring_up().unwrap();
    let after = m.driver.stats();
    let spent = (after.commands - before.commands) + (after.syncs - before.syncs);
    assert!(
        spent < 16_384 / 4,
        "{spent} physical commands for 16,384 streams"
    );
    assert!(g.linux.now_ns() - start < 1_000_000_000);
    assert!(!g.linux.vsmmu.streams_pending());
}

vsmmu_testbed::both_versions!(
    a_global_leaf_is_gone_after_many_page_invalidations,
    nothing_a_guest_sends_stops_the_physical_queue,
    a_cd_with_tg1_reserved_and_ttb1_walks_enabled_is_c_bad_cd,
    a_linux_shutdown_stops_dma_once_cr0ack_says_so,
    breaking_ste_updates_are_charged_what_the_driver_issued,
    a_vmid_reused_after_teardown_finds_no_stale_translation,
    a_root_complex_of_16384_streams_is_enabled_within_linux_s_timeout,
);
