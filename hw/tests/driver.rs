//! The physical driver and a domain's `PhysicalSmmu`, on the embedded SMMUv3
//! model: reset, stage-2-only and nested streams carrying real DMA, hitless
//! updates, command errors and events.

use std::sync::Arc;

use smmuv3::cmd::{CmdTlbiEl2All, CmdTlbiNhAll, Command};
use smmuv3::evt::{Event, FTranslationClass};
use smmuv3::platform::QEMU_VIRT;
use smmuv3::regs::{Cr0, Iidr};
use smmuv3::structs::*;
use smmuv3::IdRegisters;
use smmuv3::Register;
use smmuv3_hw::domain::DomainHw;
use smmuv3_hw::driver::{probe, DriverLayout, ProbeError, SmmuDriver};
use smmuv3_hw::embedded::EmbeddedSmmu;
use smmuv3_hw::error::Error;
use smmuv3_hw::ops::SmmuOps;
use smmuv3_hw::s2pt::{FrameAlloc, S2PageTable, S2Perm};
use smmuv3_hw::transport::{DmaMemory, RegisterAccess};
use vsmmu::{Ipa, PhysStream, PhysicalSmmu, S1Context, SmmuId, StreamConfig};

const PA_BASE: u64 = 0x8000_0000;
const GUEST_IPA: u64 = 0x4000_0000;
const GUEST_PA: u64 = 0x8800_0000;
const GUEST_SIZE: u64 = 0x200_0000;

fn layout() -> DriverLayout {
    DriverLayout {
        strtab: PA_BASE,
        sid_bits: 16,
        two_level: true,
        l2_pool: PA_BASE + 0x10_0000,
        l2_pool_size: 0x30_0000,
        cmdq: PA_BASE + 0x20_0000,
        cmdq_log2: 8,
        evtq: PA_BASE + 0x30_0000,
        evtq_log2: 8,
        irqs: true,
    }
}

fn platform() -> EmbeddedSmmu {
    EmbeddedSmmu::new(QEMU_VIRT, PA_BASE, 0x1000_0000)
}

/// A domain whose guest RAM (32 MiB at IPA 0x4000_0000) is PA 0x8800_0000.
fn stage2(mem: &EmbeddedSmmu) -> S2PageTable {
    let alloc = FrameAlloc {
        next: PA_BASE + 0x100_0000,
        end: PA_BASE + 0x200_0000,
    };
    let mut s2 = S2PageTable::new(&mem, alloc, 40).unwrap();
    s2.map(&mem, GUEST_IPA, GUEST_PA, GUEST_SIZE, S2Perm::RW)
        .unwrap();
    s2
}

fn ipa_to_pa(ipa: u64) -> u64 {
    ipa - GUEST_IPA + GUEST_PA
}

/// The guest's stage-1 tables (4K granule, 48-bit VA) mapping one page
/// `iova` -> `ipa`, written in guest RAM; returns the root's IPA.
fn guest_s1(mem: &EmbeddedSmmu, iova: u64, ipa: u64, writable: bool) -> u64 {
    let tables = [
        GUEST_IPA + 0x10_0000,
        GUEST_IPA + 0x10_1000,
        GUEST_IPA + 0x10_2000,
        GUEST_IPA + 0x10_3000,
    ];
    for (level, t) in tables.iter().enumerate() {
        let idx = (iova >> (39 - 9 * level as u64)) & 0x1ff;
        let desc = if level < 3 {
            TtTable::new()
                .with_valid(true)
                .with_type_(true)
                .with_nlta(tables[level + 1])
                .0[0]
        } else {
            // Like Linux io-pgtable: accessible to unprivileged (device) accesses.
            let ap = if writable {
                TtS1BlockPageAp::ALL_RW
            } else {
                TtS1BlockPageAp::ALL_RO
            };
            TtS1BlockPage::new()
                .with_valid(true)
                .with_type_(true)
                .with_ap(ap)
                .with_sh(TtS1BlockPageSh::INNER_SHAREABLE)
                .with_af(true)
                .with_oa(ipa)
                .0[0]
        };
        mem.write_u64(ipa_to_pa(*t + 8 * idx), desc).unwrap();
    }
    tables[0]
}

/// A Linux-style CD at `cd_ipa` for `ttb0` (an IPA).
fn guest_cd(mem: &EmbeddedSmmu, cd_ipa: u64, asid: u16, ttb0: u64) {
    let cd = vsmmu::testing::linux_cd(asid, ttb0);
    for (i, w) in cd.0.iter().enumerate() {
        mem.write_u64(ipa_to_pa(cd_ipa) + 8 * i as u64, *w).unwrap();
    }
}

#[test]
fn the_driver_resets_and_enables_the_smmu_in_linux_s_order() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    let ack = Cr0(p.read32(Register::CR0ACK.info().frame_offset()));
    assert!(ack.smmuen() && ack.cmdqen() && ack.eventqen());
    assert!(
        d.stats().syncs >= 1,
        "CFGI_ALL and TLBI_NSNH_ALL were synced"
    );
    // Every stream aborts until configured.
    assert!(p.dma_read(8, None, 0x1000, &mut [0u8; 4]).is_err());
}

#[test]
fn parts_with_a_nesting_erratum_or_without_stage_2_are_refused() {
    let mmu700_r0 = Iidr(0)
        .with_implementer(0x43b)
        .with_product_id(0x487)
        .with_variant(0);
    let p = EmbeddedSmmu::new(
        IdRegisters {
            iidr: mmu700_r0,
            ..QEMU_VIRT
        },
        PA_BASE,
        0x10_0000,
    );
    assert!(matches!(
        probe(&p),
        Err(ProbeError::Erratum { product: 0x487, .. })
    ));
    let s1_only = EmbeddedSmmu::new(
        IdRegisters {
            idr0: QEMU_VIRT.idr0.with_s2p(false),
            ..QEMU_VIRT
        },
        PA_BASE,
        0x10_0000,
    );
    assert_eq!(probe(&s1_only), Err(ProbeError::NoNesting));
}

#[test]
fn a_stage_2_only_stream_carries_dma_to_the_domain_s_memory() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    let s2 = stage2(&p);
    let mut hw = DomainHw::new(
        s2.config(1, 44),
        vec![(SmmuId(0), d.clone() as Arc<dyn SmmuOps>)],
    );
    let stream = PhysStream {
        smmu: SmmuId(0),
        psid: 8,
    };
    hw.install(stream, &StreamConfig::Stage2Only).unwrap();
    p.dma_write(8, None, GUEST_IPA + 0x1230, b"hello").unwrap();
    let mut got = [0u8; 5];
    p.read(GUEST_PA + 0x1230, &mut got).unwrap();
    assert_eq!(&got, b"hello");
    // Outside the domain's stage 2: a fault, and the event names the pSID.
    assert!(p.dma_read(8, None, 0x10_0000, &mut [0u8; 4]).is_err());
    let evs = d.drain_events(16);
    assert!(
        matches!(evs.first(), Some(Event::FTranslation(e)) if e.stream_id() == 8 && e.s2() && e.class() == FTranslationClass::IN),
        "{evs:?}"
    );
}

#[test]
fn a_nested_stream_translates_through_the_guest_s_stage_1_and_the_domain_s_stage_2() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    let s2 = stage2(&p);
    let mut hw = DomainHw::new(
        s2.config(1, 44),
        vec![(SmmuId(0), d.clone() as Arc<dyn SmmuOps>)],
    );
    let (iova, ipa) = (0x1000_0000, GUEST_IPA + 0x20_0000);
    let root = guest_s1(&p, iova, ipa, true);
    let cd_ipa = GUEST_IPA + 0x8000;
    guest_cd(&p, cd_ipa, 7, root);
    let s1 = S1Context {
        s1_context_ptr: Ipa(cd_ipa),
        s1_fmt: 0,
        s1_cd_max: 0,
        s1_dss: SteS1dss::SUBSTREAM0.0,
        s1_cir: 1,
        s1_cor: 1,
        s1_csh: 3,
        s1_stalld: false,
    };
    let stream = PhysStream {
        smmu: SmmuId(0),
        psid: 0x108,
    };
    hw.install(stream, &StreamConfig::Stage2Only).unwrap();
    let syncs = d.stats().syncs;
    hw.install(stream, &StreamConfig::Nested(s1)).unwrap();
    assert!(
        d.stats().syncs - syncs <= 3,
        "a hitless update takes at most three syncs"
    );
    p.write(ipa_to_pa(ipa) + 0x40, b"nested!").unwrap();
    let mut got = [0u8; 7];
    p.dma_read(0x108, None, iova + 0x40, &mut got).unwrap();
    assert_eq!(&got, b"nested!");
    // Back to abort: the device is cut off.
    hw.install(stream, &StreamConfig::Abort { report: false })
        .unwrap();
    assert!(p.dma_read(0x108, None, iova, &mut [0u8; 4]).is_err());
}

#[test]
fn an_illegal_command_is_reported_and_skipped_and_the_queue_goes_on() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    // QEMU virt has no Hyp: TLBI_EL2_ALL is ILLEGAL.
    let cmds = [
        Command::TlbiEl2All(CmdTlbiEl2All::new()),
        Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(1)),
    ];
    let ticket = d.submit(&cmds).unwrap();
    // The sync completes, and says that not everything took effect.
    assert_eq!(d.sync_since(ticket), Err(Error::Refused));
    assert_eq!(d.stats().illegal, 1);
    let later = d
        .submit(&[Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(1))])
        .unwrap();
    d.sync_since(later).unwrap();
}

#[test]
fn an_ste_the_hardware_cannot_take_is_never_sent() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    let s2 = stage2(&p);
    // An output size beyond the SMMU's OAS (44 bits) would be refused.
    let mut cfg = s2.config(1, 44);
    cfg.ps = SteS2ps::PS_52_BIT;
    let mut hw = DomainHw::new(cfg, vec![(SmmuId(0), d.clone() as Arc<dyn SmmuOps>)]);
    let stream = PhysStream {
        smmu: SmmuId(0),
        psid: 9,
    };
    assert!(hw.install(stream, &StreamConfig::Stage2Only).is_err());
    assert_eq!(hw.refused, 1);
    assert!(p.dma_read(9, None, GUEST_IPA, &mut [0u8; 4]).is_err());
}

#[test]
fn stage_2_unmap_cuts_off_dma_after_invalidation() {
    let p = platform();
    let d = Arc::new(SmmuDriver::new(&p, &p, layout()).unwrap());
    let mut s2 = stage2(&p);
    let mut hw = DomainHw::new(
        s2.config(1, 44),
        vec![(SmmuId(0), d.clone() as Arc<dyn SmmuOps>)],
    );
    hw.install(
        PhysStream {
            smmu: SmmuId(0),
            psid: 8,
        },
        &StreamConfig::Stage2Only,
    )
    .unwrap();
    p.dma_read(8, None, GUEST_IPA + 0x1000, &mut [0u8; 4])
        .unwrap();
    s2.unmap(&p, GUEST_IPA, GUEST_SIZE).unwrap();
    d.submit(&[Command::TlbiS12Vmall(
        smmuv3::cmd::CmdTlbiS12Vmall::new().with_vmid(1),
    )])
    .unwrap();
    d.sync().unwrap();
    assert!(p
        .dma_read(8, None, GUEST_IPA + 0x1000, &mut [0u8; 4])
        .is_err());
}

/// An SmmuOps that keeps the STEs written, with the ID registers it is given.
struct StoredStes {
    ids: IdRegisters,
    written: std::sync::Mutex<Vec<(u32, Ste)>>,
}

impl SmmuOps for StoredStes {
    fn ids(&self) -> IdRegisters {
        self.ids
    }
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, Error> {
        self.written.lock().unwrap().push((sid, *ste));
        Ok(2)
    }
    fn submit(&self, _: &[Command]) -> Result<smmuv3_hw::driver::Ticket, Error> {
        Ok(smmuv3_hw::driver::Ticket(0))
    }
    fn sync_since(&self, _: smmuv3_hw::driver::Ticket) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn a_nested_ste_forbids_stalls_where_the_hardware_lets_cds_stall() {
    use smmuv3::regs::Idr0StallModel;
    let p = platform();
    let s2 = stage2(&p).config(1, 44);
    let nested = StreamConfig::Nested(S1Context {
        s1_context_ptr: Ipa(GUEST_IPA),
        s1_fmt: 0,
        s1_cd_max: 0,
        s1_dss: 0,
        s1_cir: 1,
        s1_cor: 1,
        s1_csh: 3,
        s1_stalld: false,
    });
    for (model, stalld) in [
        (Idr0StallModel::STALL_AND_TERM, true),
        (Idr0StallModel::TERM_ONLY, false),
    ] {
        let ops = Arc::new(StoredStes {
            ids: IdRegisters {
                idr0: QEMU_VIRT.idr0.with_stall_model(model),
                ..QEMU_VIRT
            },
            written: Default::default(),
        });
        let mut hw = DomainHw::new(s2, vec![(SmmuId(0), ops.clone())]);
        let stream = PhysStream {
            smmu: SmmuId(0),
            psid: 3,
        };
        hw.install(stream, &nested).unwrap();
        let (_, ste) = ops.written.lock().unwrap()[0];
        assert_eq!(ste.s1stalld(), stalld, "{model:?}");
    }
}

#[test]
fn a_level_2_table_beyond_the_pool_is_refused_not_written_over_the_queues() {
    let p = platform();
    let one_table = DriverLayout {
        l2_pool_size: 256 * 64,
        ..layout()
    };
    let d = SmmuDriver::new(&p, &p, one_table).unwrap();
    let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
    assert!(d.write_ste(0x05, &abort).is_ok());
    assert_eq!(
        d.write_ste(0x105, &abort),
        Err(Error::PoolExhausted { sid: 0x105 })
    );
}
