//! The whole stack: a Linux guest programs its vSMMU, the runtime programs
//! the physical SMMU (the model) through the driver, a device DMAs, and the
//! bytes or the fault come out right. Every test runs under both Linux
//! driver generations.

use smmuv3::cmd::Command;
use smmuv3::evt::Event;
use smmuv3::structs::{Cd, CdTg0};
use vsmmu::testing::LinuxVersion;
use vsmmu::EventOutcome;
use vsmmu_testbed::{Guest, Machine, GUEST_IPA};

const PT_POOL: u64 = GUEST_IPA + 0x40_0000;
const DATA: u64 = GUEST_IPA + 0x80_0000;
const IOVA: u64 = 0x1000_0000;

/// A booted guest with vSID 8 attached (ASID 1) and its page-table root.
fn booted(m: &mut Machine, v: LinuxVersion, vmid: u16, psid: u32) -> (Guest, u64, u64) {
    let mut g = m
        .domain(vmid, &[(8, psid), (16, psid + 8)], |l| l.version = v)
        .unwrap();
    g.linux.bring_up().unwrap();
    let mut pool = PT_POOL;
    let root = pool;
    pool += 0x1000;
    g.linux.attach(8, 1, root).unwrap();
    (g, root, pool)
}

fn dma_reads_and_writes_land_at_the_right_bytes_through_nested_translation(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, 0x108);
    g.map_page(root, &mut pool, IOVA, DATA, true);
    g.write_ipa(DATA + 0x10, b"from the guest");
    assert_eq!(
        m.dma_read(0x108, IOVA + 0x10, 14).unwrap(),
        b"from the guest"
    );
    m.dma_write(0x108, IOVA + 0x100, b"from the device")
        .unwrap();
    assert_eq!(g.read_ipa(DATA + 0x100, 15), b"from the device");
}

fn a_stage_1_fault_reaches_the_guest_with_its_vsid(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, _root, _pool) = booted(&mut m, v, 1, 0x108);
    assert!(m.dma_read(0x108, 0x2000_0000, 4).is_err());
    let outcomes = m.route_events(&mut [&mut g]);
    assert!(outcomes.contains(&EventOutcome::Forwarded), "{outcomes:?}");
    let evs = g.linux.events();
    let Some(Event::FTranslation(e)) = evs.first() else {
        panic!("{evs:?}")
    };
    assert_eq!(
        (e.stream_id(), e.input_addr(), e.s2()),
        (8, 0x2000_0000, false)
    );
}

fn a_stage_2_fault_on_the_final_access_stays_with_the_hypervisor(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, 0x108);
    // The guest maps an IPA it does not own.
    g.map_page(root, &mut pool, IOVA, 0x7000_0000, true);
    assert!(m.dma_read(0x108, IOVA, 4).is_err());
    let outcomes = m.route_events(&mut [&mut g]);
    assert!(
        !outcomes.is_empty() && outcomes.iter().all(|o| *o == EventOutcome::Hypervisor),
        "{outcomes:?}"
    );
    assert!(g.linux.events().is_empty());
    assert!(g.linux.vsmmu.stats().stage2_faults > 0);
}

fn a_stage_2_fault_on_the_guest_s_table_walk_reaches_it_as_f_walk_eabt(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, _root, _pool) = booted(&mut m, v, 1, 0x108);
    // Re-point the CD's TTB0 at an IPA outside guest RAM, and invalidate.
    let cd_at = g.linux.cd_table(8);
    let mut cd = Cd([0; 8]);
    for i in 0..8 {
        cd.0[i] = u64::from_le_bytes(g.read_ipa(cd_at + 8 * i as u64, 8).try_into().unwrap());
    }
    assert_eq!(cd.tg0(), CdTg0::GRANULE_4KB);
    let cd = cd.with_ttb0(0x7000_0000);
    for (i, w) in cd.0.iter().enumerate() {
        g.write_ipa(cd_at + 8 * i as u64, &w.to_le_bytes());
    }
    g.linux
        .issue(&[Command::CfgiCdAll(
            smmuv3::cmd::CmdCfgiCdAll::new().with_stream_id(8),
        )])
        .unwrap();
    assert!(m.dma_read(0x108, IOVA, 4).is_err());
    m.route_events(&mut [&mut g]);
    let evs = g.linux.events();
    let Some(Event::FWalkEabt(e)) = evs.first() else {
        panic!("{evs:?}")
    };
    assert_eq!(e.stream_id(), 8);
    assert_eq!(e.fetch_addr() & !0xfff, 0x7000_0000 & !0xfff);
}

fn a_changed_mapping_is_stale_without_tlbi_and_fresh_with_the_guest_s_tlbi(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut g, root, mut pool) = booted(&mut m, v, 1, 0x108);
    g.write_ipa(DATA, b"old!");
    g.write_ipa(DATA + 0x1000, b"new!");
    g.map_page(root, &mut pool, IOVA, DATA, true);
    assert_eq!(m.dma_read(0x108, IOVA, 4).unwrap(), b"old!");
    // The guest re-points the page without invalidating: the SMMU's TLB still has it.
    g.map_page(root, &mut pool, IOVA, DATA + 0x1000, true);
    assert_eq!(
        m.dma_read(0x108, IOVA, 4).unwrap(),
        b"old!",
        "stale without TLBI"
    );
    // Now the TLBI Linux sends for one page (a range TLBI where RIL is
    // presented), forwarded by the vSMMU with the domain's VMID.
    g.linux.unmap(1, IOVA, 1).unwrap();
    assert_eq!(
        m.dma_read(0x108, IOVA, 4).unwrap(),
        b"new!",
        "fresh after TLBI"
    );
}

fn two_domains_reach_only_their_own_memory_and_streams(v: LinuxVersion) {
    let mut m = Machine::new();
    let (mut a, a_root, mut a_pool) = booted(&mut m, v, 1, 0x108);
    let (mut b, b_root, mut b_pool) = booted(&mut m, v, 2, 0x208);
    a.write_ipa(DATA, b"AAAA");
    b.write_ipa(DATA, b"BBBB");
    a.map_page(a_root, &mut a_pool, IOVA, DATA, true);
    b.map_page(b_root, &mut b_pool, IOVA, DATA, true);
    // Same IOVA, same IPA, different domains: different bytes.
    assert_eq!(m.dma_read(0x108, IOVA, 4).unwrap(), b"AAAA");
    assert_eq!(m.dma_read(0x208, IOVA, 4).unwrap(), b"BBBB");
    // B's guest maps an IPA where A's RAM would be in PA terms: stage 2 stops it.
    b.map_page(
        b_root,
        &mut b_pool,
        IOVA + 0x1000,
        a.linux.platform.guest_pa,
        true,
    );
    assert!(m.dma_read(0x208, IOVA + 0x1000, 4).is_err());
    // Events go to the owner only.
    let outcomes = m.route_events(&mut [&mut a, &mut b]);
    assert!(outcomes.iter().all(|o| *o != EventOutcome::NotOurs));
    assert!(a.linux.events().is_empty());
    // A domain cannot claim another's stream.
    assert!(m.domain(3, &[(8, 0x108)], |_| {}).is_err());
}

// Each scenario as one test per driver generation.
vsmmu_testbed::both_versions!(
    dma_reads_and_writes_land_at_the_right_bytes_through_nested_translation,
    a_stage_1_fault_reaches_the_guest_with_its_vsid,
    a_stage_2_fault_on_the_final_access_stays_with_the_hypervisor,
    a_stage_2_fault_on_the_guest_s_table_walk_reaches_it_as_f_walk_eabt,
    a_changed_mapping_is_stale_without_tlbi_and_fresh_with_the_guest_s_tlbi,
    two_domains_reach_only_their_own_memory_and_streams
);
