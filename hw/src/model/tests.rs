//! The model driven as a driver would: registers, queues and tables in RAM,
//! every structure built with the generated types.

extern crate std;

use std::vec::Vec;

use smmuv3::cmd::*;
use smmuv3::evt::*;
use smmuv3::platform::QEMU_VIRT;
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::{IdRegisters, Register};

use super::mem::{read_words, write_words};
use super::*;

const RAM_SIZE: usize = 0x200_0000;
const STRTAB: u64 = 0x1_0000;
const CMDQ: u64 = 0x2_0000;
const EVTQ: u64 = 0x3_0000;
/// Page tables and CDs are allocated from here, 64 KiB each.
const ALLOC: u64 = 0x10_0000;
const SID: u32 = 8;
const STE_BYTES: u64 = Ste::WORDS as u64 * 8;
const VMID: u16 = 5;
const ASID: u16 = 3;

struct Bed {
    m: SmmuModel,
    ram: Ram,
    next: u64,
}

impl Bed {
    fn new() -> Self {
        Bed {
            m: SmmuModel::new(QEMU_VIRT),
            ram: Ram::new(0, RAM_SIZE),
            next: ALLOC,
        }
    }

    fn alloc(&mut self) -> u64 {
        let a = self.next;
        self.next += 0x1_0000;
        a
    }

    fn write(&mut self, reg: Register, v: u64) {
        let info = reg.info();
        let size = u32::from(info.width / 8);
        self.m.write(&mut self.ram, info.frame_offset(), size, v);
    }

    fn read(&mut self, reg: Register) -> u64 {
        let info = reg.info();
        let size = u32::from(info.width / 8);
        self.m.read(&mut self.ram, info.frame_offset(), size)
    }

    /// Linear Stream table of 256 STEs, Command queue of 256, Event queue of
    /// 2^evtq_log2, then SMMUEN.
    fn enable(&mut self, evtq_log2: u8) {
        self.write(Register::STRTAB_BASE, StrtabBase(0).with_addr(STRTAB).0);
        let cfg = StrtabBaseCfg(0)
            .with_fmt(StrtabBaseCfgFmt::LINEAR)
            .with_log2size(8);
        self.write(Register::STRTAB_BASE_CFG, u64::from(cfg.0));
        let cq = CmdqBase(0).with_addr(CMDQ).with_log2size(8);
        self.write(Register::CMDQ_BASE, cq.0);
        let eq = EventqBase(0).with_addr(EVTQ).with_log2size(evtq_log2);
        self.write(Register::EVENTQ_BASE, eq.0);
        let cr0 = Cr0(0).with_cmdqen(true).with_eventqen(true);
        self.write(Register::CR0, u64::from(cr0.0));
        self.write(Register::CR0, u64::from(cr0.with_smmuen(true).0));
        assert_eq!(
            self.read(Register::CR0ACK),
            u64::from(cr0.with_smmuen(true).0)
        );
    }

    /// Queues one command and moves CMDQ_PROD.
    fn cmd(&mut self, words: [u64; 2]) {
        let prod = CmdqProd(self.read(Register::CMDQ_PROD) as u32).wr();
        let slot = CMDQ + u64::from(prod & 0xff) * (CmdSync::WORDS as u64 * 8);
        write_words(&mut self.ram, slot, &words).unwrap();
        let next = CmdqProd(0).with_wr((prod + 1) & 0x1ff);
        self.write(Register::CMDQ_PROD, u64::from(next.0));
    }

    fn sync(&mut self) {
        self.cmd(CmdSync::new().encode());
    }

    fn set_ste(&mut self, sid: u32, ste: Ste) {
        write_words(&mut self.ram, STRTAB + u64::from(sid) * 64, &ste.encode()).unwrap();
        self.cmd(
            CmdCfgiSte::new()
                .with_stream_id(sid)
                .with_leaf(true)
                .encode(),
        );
        self.sync();
    }

    /// Consumes every pending event record.
    fn events(&mut self) -> Vec<Event> {
        let base = EventqBase(self.read(Register::EVENTQ_BASE));
        let n = 1u32 << base.log2size();
        let mut out = Vec::new();
        for _ in 0..=n {
            let prod = EventqProd(self.read(Register::EVENTQ_PROD) as u32);
            let cons = EventqCons(self.read(Register::EVENTQ_CONS) as u32);
            if prod.wr() == cons.rd() {
                break;
            }
            let slot = EVTQ + u64::from(cons.rd() & (n - 1)) * (FTranslation::WORDS as u64 * 8);
            let w = read_words::<4>(&mut self.ram, slot).unwrap();
            out.push(Event::decode(w).unwrap());
            let next = cons.with_rd((cons.rd() + 1) & (2 * n - 1));
            self.write(Register::EVENTQ_CONS, u64::from(next.0));
        }
        out
    }

    fn dma(&mut self, iova: u64, access: Access) -> Result<u64, FaultKind> {
        self.m.dma(&mut self.ram, SID, None, iova, access)
    }
}

/// A VMSAv8-64 table builder. `tr` maps a table address (an IPA for stage 1
/// under nesting) to the PA where the test writes it.
struct Pt {
    granule_bits: u32,
    start_level: u32,
    stage2: bool,
    root: u64,
}

impl Pt {
    fn shift(&self, level: u32) -> u32 {
        self.granule_bits + (self.granule_bits - 3) * (3 - level)
    }

    fn index(&self, level: u32, va: u64) -> u64 {
        (va >> self.shift(level)) & ((1 << (self.granule_bits - 3)) - 1)
    }

    fn table_desc(&self, next: u64) -> u64 {
        if self.stage2 {
            TtS2Table::new()
                .with_valid(true)
                .with_type_(true)
                .with_nlta(next)
                .0[0]
        } else {
            TtTable::new()
                .with_valid(true)
                .with_type_(true)
                .with_nlta(next)
                .0[0]
        }
    }

    /// Writes `leaf` for `va` at `level`, creating tables from `alloc` (table
    /// addresses) as needed. Returns the address of the leaf descriptor.
    fn map(
        &self,
        bed: &mut Bed,
        tr: &dyn Fn(u64) -> u64,
        alloc: &mut dyn FnMut(&mut Bed) -> u64,
        va: u64,
        level: u32,
        leaf: u64,
    ) -> u64 {
        let mut table = self.root;
        for l in self.start_level..level {
            let da = table + self.index(l, va) * 8;
            let d = bed.ram.read_u64(tr(da)).unwrap();
            table = if TtTable([d]).valid() {
                TtTable([d]).nlta()
            } else {
                let next = alloc(bed);
                bed.ram.write_u64(tr(da), self.table_desc(next)).unwrap();
                next
            };
        }
        let da = table + self.index(level, va) * 8;
        bed.ram.write_u64(tr(da), leaf).unwrap();
        da
    }
}

fn s1_leaf(pa: u64, level: u32, ap: TtS1BlockPageAp) -> u64 {
    TtS1BlockPage::new()
        .with_valid(true)
        .with_type_(level == 3)
        .with_af(true)
        .with_n_g(true)
        .with_ap(ap)
        .with_oa(pa)
        .0[0]
}

fn s2_leaf(pa: u64, level: u32, s2ap: TtS2BlockPageS2ap) -> u64 {
    TtS2BlockPage::new()
        .with_valid(true)
        .with_type_(level == 3)
        .with_af(true)
        .with_s2ap(s2ap)
        .with_oa(pa)
        .0[0]
}

fn cd(ttb0: u64, tg0: CdTg0) -> Cd {
    Cd::new()
        .with_v(true)
        .with_t0sz(16)
        .with_tg0(tg0)
        .with_epd1(true)
        .with_ips(CdIps::PS_44_BIT)
        .with_aa64(true)
        .with_r(true)
        .with_a(true)
        .with_asid(ASID)
        .with_ttb0(ttb0)
}

fn s1_ste(cd_ptr: u64) -> Ste {
    Ste::new()
        .with_v(true)
        .with_config(SteConfig::S1_TRANS)
        .with_s1_context_ptr(cd_ptr)
}

/// Stage 2 with a 4KB granule, 39-bit IPA from level 1.
fn nested_ste(cd_ipa: u64, s2ttb: u64) -> Ste {
    s1_ste(cd_ipa)
        .with_config(SteConfig::NESTED)
        .with_s2vmid(VMID)
        .with_s2t0sz(25)
        .with_s2sl0(1)
        .with_s2tg(SteS2tg::GRANULE_4KB)
        .with_s2ps(SteS2ps::PS_44_BIT)
        .with_s2aa64(true)
        .with_s2r(true)
        .with_s2ttb(s2ttb)
}

fn s1_pt(root: u64) -> Pt {
    Pt {
        granule_bits: 12,
        start_level: 0,
        stage2: false,
        root,
    }
}

fn s2_pt(root: u64) -> Pt {
    Pt {
        granule_bits: 12,
        start_level: 1,
        stage2: true,
        root,
    }
}

fn ident(a: u64) -> u64 {
    a
}

/// Stage 1 only, 4KB: `va` -> `pa` with `ap`.
fn s1_setup(bed: &mut Bed, va: u64, pa: u64, ap: TtS1BlockPageAp) -> (Pt, u64) {
    bed.enable(4);
    let root = bed.alloc();
    let cd_addr = bed.alloc();
    write_words(
        &mut bed.ram,
        cd_addr,
        &cd(root, CdTg0::GRANULE_4KB).encode(),
    )
    .unwrap();
    let pt = s1_pt(root);
    let leaf = pt.map(bed, &ident, &mut |b| b.alloc(), va, 3, s1_leaf(pa, 3, ap));
    bed.set_ste(SID, s1_ste(cd_addr));
    (pt, leaf)
}

/// Nested: stage 2 maps IPA window [IPA_TABLES, +1 MiB) (the CD and stage 1
/// tables) to PA [PA_TABLES, ...), and `ipa` -> `pa`; stage 1 maps `va` ->
/// `ipa`. Returns the stage 1 builder and the IPA -> PA map of the tables.
const IPA_TABLES: u64 = 0x4000_0000;
const PA_TABLES: u64 = 0x100_0000;

fn tables_pa(ipa: u64) -> u64 {
    ipa - IPA_TABLES + PA_TABLES
}

struct Nested {
    s1: Pt,
    s2: Pt,
    next_ipa: u64,
}

fn nested_setup(bed: &mut Bed, va: u64, ipa: u64, pa: u64, map_final: bool) -> Nested {
    bed.enable(4);
    let s2 = s2_pt(bed.alloc());
    // Stage 2 maps the tables window page by page.
    for off in (0..0x10_0000).step_by(0x1000) {
        let leaf = s2_leaf(PA_TABLES + off, 3, TtS2BlockPageS2ap::RW);
        s2.map(bed, &ident, &mut |b| b.alloc(), IPA_TABLES + off, 3, leaf);
    }
    if map_final {
        let leaf = s2_leaf(pa, 3, TtS2BlockPageS2ap::RW);
        s2.map(bed, &ident, &mut |b| b.alloc(), ipa, 3, leaf);
    }
    let cd_ipa = IPA_TABLES;
    let s1_root = IPA_TABLES + 0x1000;
    let cd = cd(s1_root, CdTg0::GRANULE_4KB);
    write_words(&mut bed.ram, tables_pa(cd_ipa), &cd.encode()).unwrap();
    let s1 = s1_pt(s1_root);
    let mut next_ipa = IPA_TABLES + 0x2000;
    let mut alloc = |_: &mut Bed| {
        let a = next_ipa;
        next_ipa += 0x1000;
        a
    };
    let leaf = s1_leaf(ipa, 3, TtS1BlockPageAp::ALL_RW);
    s1.map(bed, &tables_pa, &mut alloc, va, 3, leaf);
    bed.set_ste(SID, nested_ste(cd_ipa, s2.root));
    Nested { s1, s2, next_ipa }
}

fn translation_fault(kind: FaultType, s2: bool, class: FaultClass) -> FaultKind {
    FaultKind::Translation { kind, s2, class }
}

#[test]
fn gbpa_bypass_then_abort() {
    let mut bed = Bed::new();
    assert_eq!(bed.dma(0x1234_5678, Access::READ), Ok(0x1234_5678));
    let gbpa = Gbpa(bed.read(Register::GBPA) as u32)
        .with_abort(true)
        .with_update(true);
    bed.write(Register::GBPA, u64::from(gbpa.0));
    let now = Gbpa(bed.read(Register::GBPA) as u32);
    assert!(!now.update(), "the update completes at once");
    assert!(now.abort());
    assert_eq!(
        bed.dma(0x1234_5678, Access::READ),
        Err(FaultKind::GlobalAbort)
    );
}

#[test]
fn stage1_4k_page_and_bytes() {
    let mut bed = Bed::new();
    let (va, pa) = (0x1234_5000, 0x60_3000);
    s1_setup(&mut bed, va, pa, TtS1BlockPageAp::ALL_RW);
    assert_eq!(bed.dma(va + 0x123, Access::READ), Ok(pa + 0x123));
    bed.m
        .dma_write(&mut bed.ram, SID, None, va + 0xffe, b"hi")
        .unwrap();
    assert_eq!(
        &bed.ram.bytes[pa as usize + 0xffe..pa as usize + 0x1000],
        b"hi"
    );
    let mut back = [0u8; 2];
    bed.m
        .dma_read(&mut bed.ram, SID, None, va + 0xffe, &mut back)
        .unwrap();
    assert_eq!(&back, b"hi");
    // Crossing into the unmapped next page faults.
    assert!(bed
        .m
        .dma_write(&mut bed.ram, SID, None, va + 0xfff, b"xy")
        .is_err());
    assert!(bed.events().len() == 1);
}

#[test]
fn nested_translation_lands_at_stage2_pa() {
    let mut bed = Bed::new();
    let (va, ipa, pa) = (0x7_1234_5000, 0x30_0000, 0x50_0000);
    nested_setup(&mut bed, va, ipa, pa, true);
    assert_eq!(bed.dma(va + 0x10, Access::WRITE), Ok(pa + 0x10));
    bed.m
        .dma_write(&mut bed.ram, SID, None, va + 0x20, &[0xab; 4])
        .unwrap();
    assert_eq!(bed.ram.bytes[pa as usize + 0x20], 0xab);
    // The CD and stage 1 tables are only reachable through stage 2: their
    // IPAs are outside RAM.
    assert!(RAM_SIZE as u64 <= IPA_TABLES);
    assert!(bed.events().is_empty());
}

#[test]
fn stage1_64k_granule() {
    let mut bed = Bed::new();
    bed.enable(4);
    let root = bed.alloc();
    let cd_addr = bed.alloc();
    write_words(
        &mut bed.ram,
        cd_addr,
        &cd(root, CdTg0::GRANULE_64KB).encode(),
    )
    .unwrap();
    // 48-bit VA with 64KB pages: levels 1-3.
    let pt = Pt {
        granule_bits: 16,
        start_level: 1,
        stage2: false,
        root,
    };
    let (va, pa) = (0x8000_1234_0000, 0x70_0000);
    pt.map(
        &mut bed,
        &ident,
        &mut |b| b.alloc(),
        va,
        3,
        s1_leaf(pa, 3, TtS1BlockPageAp::ALL_RW),
    );
    bed.set_ste(SID, s1_ste(cd_addr));
    assert_eq!(bed.dma(va + 0xfedc, Access::READ), Ok(pa + 0xfedc));
    assert!(bed.events().is_empty());
}

#[test]
fn stage1_2m_block() {
    let mut bed = Bed::new();
    bed.enable(4);
    let root = bed.alloc();
    let cd_addr = bed.alloc();
    write_words(
        &mut bed.ram,
        cd_addr,
        &cd(root, CdTg0::GRANULE_4KB).encode(),
    )
    .unwrap();
    let pt = s1_pt(root);
    let (va, pa) = (0x4020_0000, 0x60_0000);
    let leaf = s1_leaf(pa, 2, TtS1BlockPageAp::ALL_RW);
    pt.map(&mut bed, &ident, &mut |b| b.alloc(), va, 2, leaf);
    bed.set_ste(SID, s1_ste(cd_addr));
    assert_eq!(bed.dma(va + 0x1_2345, Access::READ), Ok(pa + 0x1_2345));
    assert_eq!(bed.dma(va + 0x1f_fff0, Access::WRITE), Ok(pa + 0x1f_fff0));
}

#[test]
fn unmapped_iova_records_f_translation() {
    let mut bed = Bed::new();
    s1_setup(&mut bed, 0x1000, 0x60_0000, TtS1BlockPageAp::ALL_RW);
    let iova = 0x0dea_d000;
    assert_eq!(
        bed.dma(iova, Access::READ),
        Err(translation_fault(
            FaultType::Translation,
            false,
            FaultClass::In
        ))
    );
    let ev = bed.events();
    assert_eq!(ev.len(), 1);
    let Event::FTranslation(f) = ev[0] else {
        panic!("{:?}", ev[0]);
    };
    assert_eq!(f.stream_id(), SID);
    assert_eq!(f.input_addr(), iova);
    assert!(f.rn_w());
    assert!(!f.s2());
    assert!(!f.ssv());
    assert_eq!(f.class(), FTranslationClass::IN);
}

#[test]
fn stage2_fault_on_final_access() {
    let mut bed = Bed::new();
    let (va, ipa) = (0x2000_0000, 0x31_0000);
    nested_setup(&mut bed, va, ipa, 0, false);
    assert_eq!(
        bed.dma(va + 0x44, Access::WRITE),
        Err(translation_fault(
            FaultType::Translation,
            true,
            FaultClass::In
        ))
    );
    let ev = bed.events();
    let [Event::FTranslation(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(f.s2());
    assert_eq!(f.class(), FTranslationClass::IN);
    assert_eq!(f.ipa(), ipa);
    assert_eq!(f.input_addr(), va + 0x44);
    assert!(!f.rn_w());
}

#[test]
fn stage2_fault_on_stage1_walk() {
    let mut bed = Bed::new();
    let (va, ipa, pa) = (0x2000_0000, 0x31_0000, 0x50_0000);
    let n = nested_setup(&mut bed, va, ipa, pa, true);
    // A second VA whose level 1 entry points at a level 2 table at an IPA
    // that stage 2 does not map.
    let va2 = 0x80_0000_0000 - 0x4000_0000; // level 0 index 0, level 1 index 0x1ff
    let hole = 0x7000_0000;
    let l0 = bed.ram.read_u64(tables_pa(n.s1.root)).unwrap();
    let l1 = TtTable([l0]).nlta();
    let da = l1 + n.s1.index(1, va2) * 8;
    bed.ram
        .write_u64(tables_pa(da), n.s1.table_desc(hole))
        .unwrap();
    assert_eq!(
        bed.dma(va2, Access::READ),
        Err(translation_fault(
            FaultType::Translation,
            true,
            FaultClass::Tt
        ))
    );
    let ev = bed.events();
    let [Event::FTranslation(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(f.s2(), "a stage 2 fault on a stage 1 walk has S2=1");
    assert_eq!(f.class(), FTranslationClass::TTD);
    assert_eq!(f.ipa(), hole + n.s1.index(2, va2) * 8);
    assert_eq!(f.input_addr(), va2);
    let _ = (n.s2.root, n.next_ipa);
}

#[test]
fn write_to_read_only_page_is_f_permission() {
    let mut bed = Bed::new();
    let (va, pa) = (0x5000, 0x60_5000);
    s1_setup(&mut bed, va, pa, TtS1BlockPageAp::ALL_RO);
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    assert_eq!(
        bed.dma(va + 8, Access::WRITE),
        Err(translation_fault(
            FaultType::Permission,
            false,
            FaultClass::In
        ))
    );
    let ev = bed.events();
    let [Event::FPermission(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(!f.rn_w());
    assert!(!f.s2());
    assert_eq!(f.input_addr(), va + 8);
}

#[test]
fn access_flag_clear_is_f_access() {
    let mut bed = Bed::new();
    let (va, pa) = (0x5000, 0x60_5000);
    let (_, leaf) = s1_setup(&mut bed, va, pa, TtS1BlockPageAp::ALL_RW);
    let d = bed.ram.read_u64(leaf).unwrap();
    bed.ram
        .write_u64(leaf, TtS1BlockPage([d]).with_af(false).0[0])
        .unwrap();
    assert_eq!(
        bed.dma(va, Access::READ),
        Err(translation_fault(FaultType::Access, false, FaultClass::In))
    );
    assert!(matches!(bed.events()[..], [Event::FAccess(_)]));
}

#[test]
fn invalid_ste_is_c_bad_ste() {
    let mut bed = Bed::new();
    bed.enable(4);
    bed.set_ste(SID, Ste::new().with_config(SteConfig::BYPASS));
    assert_eq!(bed.dma(0x1000, Access::READ), Err(FaultKind::BadSte));
    let ev = bed.events();
    let [Event::CBadSte(e)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(e.stream_id(), SID);
    // Valid bypass and abort STEs.
    bed.set_ste(SID, Ste::new().with_v(true).with_config(SteConfig::BYPASS));
    assert_eq!(bed.dma(0x1000, Access::READ), Ok(0x1000));
    bed.set_ste(SID, Ste::new().with_v(true).with_config(SteConfig::ABORT));
    assert_eq!(bed.dma(0x1000, Access::READ), Err(FaultKind::SteAbort));
    assert!(bed.events().is_empty());
}

#[test]
fn streamid_beyond_table_is_c_bad_streamid() {
    let mut bed = Bed::new();
    bed.enable(4);
    assert_eq!(
        bed.m.dma(&mut bed.ram, 0x100, None, 0, Access::READ),
        Err(FaultKind::BadStreamId)
    );
    assert!(matches!(bed.events()[..], [Event::CBadStreamid(_)]));
}

#[test]
fn two_level_stream_table() {
    let mut bed = Bed::new();
    bed.enable(4);
    bed.write(Register::CR0, 0);
    let l1 = bed.alloc();
    let l2 = bed.alloc();
    bed.write(Register::STRTAB_BASE, StrtabBase(0).with_addr(l1).0);
    let cfg = StrtabBaseCfg(0)
        .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
        .with_split(StrtabBaseCfgSplit::SPLIT_4KB)
        .with_log2size(16);
    bed.write(Register::STRTAB_BASE_CFG, u64::from(cfg.0));
    let cr0 = Cr0(0)
        .with_cmdqen(true)
        .with_eventqen(true)
        .with_smmuen(true);
    bed.write(Register::CR0, u64::from(cr0.0));
    // SID 0x1234: L1 index 0x48, L2 index 0x34; Span 7 covers 64 STEs.
    let sid = 0x1234;
    let desc = L1std::new().with_span(7).with_l2_ptr(l2);
    bed.ram.write_u64(l1 + 0x48 * 8, desc.0[0]).unwrap();
    let ste = Ste::new().with_v(true).with_config(SteConfig::BYPASS);
    write_words(&mut bed.ram, l2 + 0x34 * STE_BYTES, &ste.encode()).unwrap();
    assert_eq!(
        bed.m.dma(&mut bed.ram, sid, None, 0x42, Access::READ),
        Ok(0x42)
    );
    // An invalid L1 descriptor: C_BAD_STREAMID.
    assert_eq!(
        bed.m.dma(&mut bed.ram, 0x40, None, 0x42, Access::READ),
        Err(FaultKind::BadStreamId)
    );
    // An L2 pointer outside memory: F_STE_FETCH with the address.
    let far = 0x4000_0000;
    let desc = L1std::new().with_span(7).with_l2_ptr(far);
    bed.ram.write_u64(l1 + 0x49 * 8, desc.0[0]).unwrap();
    assert_eq!(
        bed.m.dma(&mut bed.ram, 0x1240, None, 0, Access::READ),
        Err(FaultKind::SteFetch)
    );
    let ev = bed.events();
    let [Event::CBadStreamid(_), Event::FSteFetch(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(f.fetch_addr(), far);
}

#[test]
fn stale_tlb_until_tlbi_nh_va() {
    let mut bed = Bed::new();
    let (va, pa, pa2) = (0x9000, 0x60_9000, 0x61_0000);
    let (_, leaf) = s1_setup(&mut bed, va, pa, TtS1BlockPageAp::ALL_RW);
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    bed.ram
        .write_u64(leaf, s1_leaf(pa2, 3, TtS1BlockPageAp::ALL_RW))
        .unwrap();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa), "stale without TLBI");
    // A TLBI for another ASID or address leaves it.
    bed.cmd(
        CmdTlbiNhVa::new()
            .with_asid(ASID + 1)
            .with_addr(va)
            .encode(),
    );
    bed.cmd(
        CmdTlbiNhVa::new()
            .with_asid(ASID)
            .with_addr(va + 0x1000)
            .encode(),
    );
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    bed.cmd(CmdTlbiNhVa::new().with_asid(ASID).with_addr(va).encode());
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa2), "fresh after TLBI_NH_VA");
}

#[test]
fn stale_cd_until_cfgi_cd() {
    let mut bed = Bed::new();
    let (va, pa) = (0x9000, 0x60_9000);
    s1_setup(&mut bed, va, pa, TtS1BlockPageAp::ALL_RW);
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    let ste = Ste(read_words::<8>(&mut bed.ram, STRTAB + u64::from(SID) * STE_BYTES).unwrap());
    let cd_addr = ste.s1_context_ptr();
    let old = Cd(read_words::<8>(&mut bed.ram, cd_addr).unwrap());
    write_words(&mut bed.ram, cd_addr, &old.with_v(false).encode()).unwrap();
    bed.cmd(CmdTlbiNhAll::new().encode());
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa), "CD still cached");
    bed.cmd(CmdCfgiCd::new().with_stream_id(SID).encode());
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Err(FaultKind::BadCd));
}

#[test]
fn s2_ipa_alone_leaves_combined_entries() {
    let mut bed = Bed::new();
    let (va, ipa, pa) = (0x2000_0000, 0x31_0000, 0x50_0000);
    let n = nested_setup(&mut bed, va, ipa, pa, true);
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    let pa2 = 0x52_0000;
    let leaf = s2_leaf(pa2, 3, TtS2BlockPageS2ap::RW);
    n.s2.map(&mut bed, &ident, &mut |b| b.alloc(), ipa, 3, leaf);
    bed.cmd(CmdTlbiS2Ipa::new().with_vmid(VMID).with_addr(ipa).encode());
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    bed.cmd(CmdTlbiS12Vmall::new().with_vmid(VMID).encode());
    bed.sync();
    assert_eq!(bed.dma(va, Access::READ), Ok(pa2));
}

#[test]
fn unknown_opcode_is_cerror_ill_until_gerrorn() {
    let mut bed = Bed::new();
    bed.enable(4);
    let bad = [0u64, 0];
    assert!(Command::decode(bad).is_err());
    bed.sync();
    bed.cmd(bad);
    bed.sync();
    let cons = CmdqCons(bed.read(Register::CMDQ_CONS) as u32);
    assert_eq!(cons.err(), CmdqConsErr::CERROR_ILL);
    assert_eq!(cons.rd(), 1, "consumption stops at the bad command");
    let gerror = Gerror(bed.read(Register::GERROR) as u32);
    assert!(gerror.cmdq_err());
    // More commands wait.
    bed.sync();
    assert_eq!(CmdqCons(bed.read(Register::CMDQ_CONS) as u32).rd(), 1);
    // Fix the entry, acknowledge: the rest is consumed.
    write_words(
        &mut bed.ram,
        CMDQ + CmdSync::WORDS as u64 * 8,
        &CmdSync::new().encode(),
    )
    .unwrap();
    bed.write(Register::GERRORN, u64::from(gerror.0));
    let cons = CmdqCons(bed.read(Register::CMDQ_CONS) as u32);
    assert_eq!(
        cons.rd(),
        CmdqProd(bed.read(Register::CMDQ_PROD) as u32).wr()
    );
    // An ILLEGAL command by the spec's rules: SSec=1.
    bed.cmd(CmdCfgiSte::new().with_s_sec(true).encode());
    let g2 = Gerror(bed.read(Register::GERROR) as u32);
    assert_ne!(g2.cmdq_err(), gerror.cmdq_err());
    // TLBI_EL2_ALL is ILLEGAL without IDR0.Hyp.
    bed.write(Register::GERRORN, u64::from(g2.0));
    bed.cmd(CmdTlbiEl2All::new().encode());
    assert_eq!(
        CmdqCons(bed.read(Register::CMDQ_CONS) as u32).err(),
        CmdqConsErr::CERROR_ILL
    );
}

#[test]
fn command_queue_read_abort_is_cerror_abt() {
    let mut bed = Bed::new();
    bed.enable(4);
    bed.write(Register::CR0, 0);
    let cq = CmdqBase(0).with_addr(0x4000_0000).with_log2size(4);
    bed.write(Register::CMDQ_BASE, cq.0);
    bed.write(Register::CR0, u64::from(Cr0(0).with_cmdqen(true).0));
    bed.write(Register::CMDQ_PROD, 1);
    let cons = CmdqCons(bed.read(Register::CMDQ_CONS) as u32);
    assert_eq!(cons.err(), CmdqConsErr::CERROR_ABT);
    assert!(Gerror(bed.read(Register::GERROR) as u32).cmdq_err());
}

#[test]
fn cmd_sync_msi_when_msi_implemented() {
    let config = IdRegisters {
        idr0: QEMU_VIRT.idr0.with_msi(true),
        ..QEMU_VIRT
    };
    let mut bed = Bed::new();
    bed.m = SmmuModel::new(config);
    bed.enable(4);
    let addr = 0x8_0000;
    bed.cmd(
        CmdSync::new()
            .with_cs(CmdSyncCs::SIG_IRQ)
            .with_msi_address(addr)
            .with_msi_data(0xfeed_beef)
            .encode(),
    );
    assert_eq!(bed.ram.read_u64(addr).unwrap() as u32, 0xfeed_beef);
    assert_eq!(bed.m.irqs.cmdq_sync, 1);
}

#[test]
fn event_queue_overflow_sets_ovflg() {
    let mut bed = Bed::new();
    s1_setup(&mut bed, 0x1000, 0x60_0000, TtS1BlockPageAp::ALL_RW);
    bed.write(Register::CR0, 0);
    let eq = EventqBase(0).with_addr(EVTQ).with_log2size(1);
    bed.write(Register::EVENTQ_BASE, eq.0);
    let cr0 = Cr0(0)
        .with_cmdqen(true)
        .with_eventqen(true)
        .with_smmuen(true);
    bed.write(Register::CR0, u64::from(cr0.0));
    for i in 0..2 {
        assert!(bed.dma(0x100_0000 + i * 0x1000, Access::READ).is_err());
    }
    let prod = EventqProd(bed.read(Register::EVENTQ_PROD) as u32);
    assert!(!prod.ovflg(), "two records fit");
    assert!(bed.dma(0x100_3000, Access::READ).is_err());
    let prod = EventqProd(bed.read(Register::EVENTQ_PROD) as u32);
    assert!(prod.ovflg(), "the discarded record sets the overflow flag");
    assert!(!Gerror(bed.read(Register::GERROR) as u32).eventq_abt_err());
    // A second discard while the overflow is unacknowledged changes nothing.
    assert!(bed.dma(0x100_4000, Access::READ).is_err());
    assert!(EventqProd(bed.read(Register::EVENTQ_PROD) as u32).ovflg());
    let ev = bed.events();
    assert_eq!(ev.len(), 2);
    let Event::FTranslation(f) = ev[0] else {
        panic!()
    };
    assert_eq!(f.input_addr(), 0x100_0000);
}

#[test]
fn hostile_tables_do_not_panic() {
    let mut bed = Bed::new();
    bed.enable(4);
    // Garbage everywhere the model might look.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..(0x4_0000 / 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bed.ram.write_u64(STRTAB + i * 8, x).unwrap();
    }
    bed.write(Register::CMDQ_PROD, 0xff);
    for sid in 0..256 {
        let _ = bed.m.dma(
            &mut bed.ram,
            sid,
            Some(sid),
            x.rotate_left(sid),
            Access::READ,
        );
        let _ = bed
            .m
            .dma(&mut bed.ram, sid, None, x.rotate_right(sid), Access::WRITE);
    }
}

#[test]
fn substream_on_smmu_without_ssids_is_c_bad_substreamid() {
    let mut bed = Bed::new();
    s1_setup(&mut bed, 0x1000, 0x60_0000, TtS1BlockPageAp::ALL_RW);
    assert_eq!(
        bed.m.dma(&mut bed.ram, SID, Some(1), 0x1000, Access::READ),
        Err(FaultKind::BadSubstreamId)
    );
    let ev = bed.events();
    let [Event::CBadSubstreamid(e)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!((e.stream_id(), e.substream_id()), (SID, 1));
}

#[test]
fn cd_outside_memory_is_f_cd_fetch() {
    let mut bed = Bed::new();
    bed.enable(4);
    let far = 0x4000_0000;
    bed.set_ste(SID, s1_ste(far));
    assert_eq!(bed.dma(0x1000, Access::READ), Err(FaultKind::CdFetch));
    let ev = bed.events();
    let [Event::FCdFetch(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(f.fetch_addr(), far);
}

#[test]
fn stage2_read_only_page_write_is_s2_permission() {
    let mut bed = Bed::new();
    let (va, ipa, pa) = (0x2000_0000, 0x31_0000, 0x50_0000);
    let n = nested_setup(&mut bed, va, ipa, pa, true);
    let leaf = s2_leaf(pa, 3, TtS2BlockPageS2ap::RO);
    n.s2.map(&mut bed, &ident, &mut |b| b.alloc(), ipa, 3, leaf);
    assert_eq!(bed.dma(va, Access::READ), Ok(pa));
    assert_eq!(
        bed.dma(va + 4, Access::WRITE),
        Err(translation_fault(
            FaultType::Permission,
            true,
            FaultClass::In
        ))
    );
    let ev = bed.events();
    let [Event::FPermission(f)] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(f.s2());
    assert_eq!(f.ipa(), ipa);
    assert_eq!(f.class(), FPermissionClass::IN);
}
