//! The whole stack: two domains on the testbed machine (software SMMUv3
//! model, physical driver, per-domain stage 2, vSMMU and Linux guest-driver
//! model), driven by arbitrary guest operations (trapped register accesses,
//! guest RAM writes, driver steps) and device DMA by any pSID.
//!
//! After every step:
//! 1. every DMA by a domain's device stays in that domain's guest RAM: a
//!    successful read never returns the other domain's marker words (guest
//!    RAM is seeded with a per-domain, per-offset marker), the pages it
//!    translated to lie in the domain's RAM and hold the bytes moved, and no
//!    DMA (faulting or not) changes memory the domain does not own (the
//!    other domain's RAM, both stage-2 tables, the driver's stream table
//!    and command queue); a DMA by a pSID nobody owns never succeeds;
//! 2. what reached the physical driver names only the domain's own pSIDs,
//!    carries its VMID, and installs only ABORT / invalid / S2_TRANS /
//!    NESTED STEs whose stage 2 is the domain's own;
//! 3. nothing panics.
//!
//! Input: one header byte (guest layout flags), then operations, each one
//! header byte (`kind | flag << 6 | domain << 7`) and its operands,
//! little-endian. A missing byte reads as zero.

use std::cell::RefCell;
use std::sync::OnceLock;

use smmuv3::cmd::Command;
use smmuv3::queue::Queue;
use smmuv3::regs::{CmdqBase, CmdqProd, StrtabBase, StrtabBaseCfg};
use smmuv3::regs::{Gbpa, StrtabBaseCfgFmt};
use smmuv3::structs::{Cd, CdTg0, L1std, Ste, SteConfig};
use smmuv3::Register;
use vsmmu::testing::GuestPlatform;
use vsmmu::DomainId;

use super::input::{Aim, Entry, Input};
use super::{command_queue, event_queue};
use crate::smmuv3_hw::model::Access;
use crate::smmuv3_hw::transport::RegisterAccess;
use crate::{Guest, HwOp, Machine, GUEST_IPA};

/// Guest RAM per domain: small, so that seeding and checking it is cheap.
const RAM: u64 = 0x20_0000;
const MAX_STEPS: usize = 64;
const PAGE: u64 = 0x1000;

/// The guest's layout inside its 2 MiB (offsets from `GUEST_IPA`).
const L2_POOL: u64 = 0x1_0000;
const CMDQ: u64 = 0x4_0000;
const EVTQ: u64 = 0x5_0000;
/// Two stage-1 roots, then the table pool.
const PT_POOL: u64 = 0x6_0000;
const PT_END: u64 = 0xa_0000;
const DATA: u64 = 0xa_0000;
const DATA_PAGES: u64 = (0x10_0000 - DATA) / PAGE;
const CDS: u64 = 0x10_0000;
/// Where the guests map their DMA buffers.
const IOVA_BASE: u64 = 0x1000_0000;

/// Per-domain marker: every 8-byte word of guest RAM starts out as
/// `MAGIC << 32 | offset` (offsets are 8-aligned, so these are invalid
/// descriptors).
const MAGIC: [u32; 2] = [0xa1a1_a1a0, 0xb2b2_b2b0];

struct Domain {
    guest: Guest,
    id: DomainId,
    vmid: u16,
    vsids: Vec<u32>,
    psids: Vec<u32>,
    magic: u32,
    /// PA and size of guest RAM.
    ram_pa: u64,
    ram_size: u64,
    /// The two stage-1 roots (IPAs) and the table pool bump pointer.
    roots: [u64; 2],
    pool: u64,
}

impl Domain {
    fn new(machine: &mut Machine, i: usize, flags: u8) -> Domain {
        let vmid = 1 + i as u16;
        let mut devices = vec![
            (8, 0x108 + 0x100 * i as u32),
            (16, 0x110 + 0x100 * i as u32),
        ];
        if flags & 1 != 0 {
            // SIDSIZE 9: Linux picks a 2-level stream table.
            devices.push((0x100, 0x120 + 0x100 * i as u32));
        }
        let mut guest = machine
            .domain(vmid, &devices, |l| {
                l.strtab = GUEST_IPA;
                l.l2_pool = GUEST_IPA + L2_POOL;
                l.cmdq = GUEST_IPA + CMDQ;
                l.cmdq_log2 = 8;
                l.evtq = GUEST_IPA + EVTQ;
                l.evtq_log2 = 7;
                l.cds = GUEST_IPA + CDS;
                l.msi_poll = flags & 2 == 0;
            })
            .expect("disjoint pSIDs");
        // Give up after 32 us of polling: a fuzz case stays short.
        guest.linux.timing.timeout_ns = 32_000;
        // The machine numbers its domains from 1, in creation order.
        let id = DomainId(1 + i as u32);
        Domain {
            ram_pa: guest.linux.platform.guest_pa,
            ram_size: guest.linux.platform.guest_size,
            guest,
            id,
            vmid,
            vsids: devices.iter().map(|(v, _)| *v).collect(),
            psids: devices.iter().map(|(_, p)| *p).collect(),
            magic: MAGIC[i],
            roots: [GUEST_IPA + PT_POOL, GUEST_IPA + PT_POOL + PAGE],
            pool: GUEST_IPA + PT_POOL + 2 * PAGE,
        }
    }

    /// Fills guest RAM with the domain's marker words.
    fn seed(&self, i: usize) {
        static PATTERNS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
        let patterns = PATTERNS.get_or_init(|| {
            MAGIC.map(|magic| {
                (0..RAM / 8)
                    .flat_map(|k| ((u64::from(magic) << 32) | (k * 8)).to_le_bytes())
                    .collect()
            })
        });
        let pattern = &patterns[i];
        let (pa, size) = (self.ram_pa, self.ram_size as usize);
        assert_eq!(size, pattern.len());
        self.guest.linux.platform.smmu.with(|_, ram| {
            let off = (pa - ram.base) as usize;
            ram.bytes[off..off + size].copy_from_slice(pattern);
        });
    }

    fn reg(&self, r: Register) -> u64 {
        self.guest.linux.vsmmu.register(r)
    }

    fn cmdq(&self) -> Queue {
        command_queue(&self.guest.linux.vsmmu)
    }

    fn evtq(&self) -> Queue {
        event_queue(&self.guest.linux.vsmmu)
    }

    /// Writes bytes into guest RAM as the guest's CPU would; what falls
    /// outside RAM is dropped.
    fn poke(&self, ipa: u64, data: &[u8]) {
        let Some(off) = ipa.checked_sub(GUEST_IPA) else {
            return;
        };
        if off >= self.ram_size {
            return;
        }
        let n = (data.len() as u64).min(self.ram_size - off) as usize;
        self.guest.write_ipa(ipa, &data[..n]);
    }
}

/// A vSID: mostly one of the domain's, sometimes any.
fn pick_vsid(inp: &mut Input<'_>, mine: &[u32]) -> u32 {
    let s = inp.u8();
    match s >> 6 {
        0..=2 => mine[usize::from(s) % mine.len()],
        _ => u32::from(inp.u16()) | (u32::from(s & 1) << 16),
    }
}

/// A pSID: the domain's, the other domain's, a neighbour, or any.
fn pick_psid(inp: &mut Input<'_>, mine: &[u32], theirs: &[u32]) -> u32 {
    let s = inp.u8();
    match s >> 6 {
        0 | 1 => mine[usize::from(s) % mine.len()],
        2 => {
            if s & 0x20 == 0 {
                theirs[usize::from(s) % theirs.len()]
            } else {
                mine[usize::from(s) % mine.len()]
                    .wrapping_add(u32::from(s & 1) * 2)
                    .wrapping_sub(1)
            }
        }
        _ => inp.u32(),
    }
}

/// An IOVA: mostly in the guests' buffer window, sometimes anywhere.
fn pick_iova(inp: &mut Input<'_>) -> u64 {
    let s = inp.u8();
    let page = IOVA_BASE + (u64::from(s & 0x3f) << 12);
    match s >> 6 {
        0 => page,
        1 => page + u64::from(inp.u16() & 0xfff),
        2 => page + u64::from(inp.u16()),
        _ => inp.u64(),
    }
}

/// An IPA for a mapping: a data page, any RAM page (the guest's own
/// structures), outside RAM, the other domain's RAM by PA, or anything.
fn pick_ipa(inp: &mut Input<'_>, other_pa: u64) -> u64 {
    let s = inp.u8();
    match s >> 5 {
        0..=3 => GUEST_IPA + DATA + (u64::from(s) % DATA_PAGES) * PAGE,
        4 => GUEST_IPA + (u64::from(inp.u16()) * PAGE) % RAM,
        5 => GUEST_IPA + RAM + u64::from(s & 0xf) * PAGE,
        6 => other_pa + (u64::from(inp.u16()) * PAGE) % RAM,
        _ => inp.u64() & 0xffff_ffff_f000,
    }
}

/// Aims a command at the domain: mostly its own vSIDs, the guests' IOVA
/// window, and an MSI address in its RAM (the queue slot, say).
fn aim(inp: &mut Input<'_>, d: &Domain, slot: u64) -> Aim {
    Aim {
        sid: pick_vsid(inp, &d.vsids),
        va: IOVA_BASE + (u64::from(inp.u8()) << 12),
        msi: match inp.u8() & 3 {
            0 => 0,
            1 => slot,
            2 => inp.u64(),
            _ => GUEST_IPA + (u64::from(inp.u16()) << 4),
        },
    }
}

/// Checks what the domains asked of the physical driver since the last step.
fn check_trace(machine: &Machine, doms: &[Domain; 2], step: usize) {
    for op in machine.trace.take() {
        let (domain, what) = match &op {
            HwOp::Ste { domain, .. } | HwOp::Commands { domain, .. } | HwOp::Sync { domain } => {
                (*domain, &op)
            }
        };
        let d = doms
            .iter()
            .find(|d| d.id == domain)
            .unwrap_or_else(|| panic!("step {step}: {what:?} from an unknown domain"));
        match what {
            HwOp::Ste { psid, ste, .. } => check_ste(d, step, *psid, ste),
            HwOp::Commands { cmds, .. } => {
                for c in cmds {
                    check_command(d, step, c);
                }
            }
            HwOp::Sync { .. } => {}
        }
    }
}

fn check_ste(d: &Domain, step: usize, psid: u32, ste: &Ste) {
    assert!(
        d.psids.contains(&psid),
        "step {step}: domain {:?} wrote the STE of foreign pSID {psid:#x}: {ste:?}",
        d.id
    );
    if !ste.v() {
        return;
    }
    let c = ste.config();
    if c == SteConfig::ABORT {
        return;
    }
    assert!(
        c == SteConfig::S2_TRANS || c == SteConfig::NESTED,
        "step {step}: pSID {psid:#x} of domain {:?} got Config={c:?} without the domain's stage 2: {ste:?}",
        d.id
    );
    let s2 = &d.guest.linux.platform.hw.s2;
    assert_eq!(
        ste.s2vmid(),
        d.vmid,
        "step {step}: pSID {psid:#x} STE with a foreign S2VMID: {ste:?}"
    );
    assert_eq!(
        (
            ste.s2ttb(),
            ste.s2t0sz(),
            ste.s2sl0(),
            ste.s2tg(),
            ste.s2ps()
        ),
        (d.guest.s2.root, s2.t0sz, s2.sl0, s2.tg, s2.ps),
        "step {step}: pSID {psid:#x} STE with a stage 2 not the domain's: {ste:?}"
    );
}

fn check_command(d: &Domain, step: usize, cmd: &Command) {
    let sid = |s: u32| {
        assert!(
            d.psids.contains(&s),
            "step {step}: domain {:?} sent {cmd} naming a foreign pSID {s:#x}",
            d.id
        )
    };
    let vmid = |v: u16| {
        assert_eq!(
            v, d.vmid,
            "step {step}: domain {:?} sent {cmd} with a foreign VMID",
            d.id
        )
    };
    match cmd {
        Command::CfgiSte(c) => sid(c.stream_id()),
        Command::CfgiSteRange(c) => {
            let n = 2u64 << c.range().min(31);
            let first = u64::from(c.stream_id()) & !(n - 1);
            assert!(
                n <= 64,
                "step {step}: domain {:?} sent {cmd} over {n} streams",
                d.id
            );
            for s in first..first + n {
                sid(s as u32);
            }
        }
        Command::CfgiCd(c) => sid(c.stream_id()),
        Command::CfgiCdAll(c) => sid(c.stream_id()),
        Command::AtcInv(c) => sid(c.stream_id()),
        Command::PrefetchConfig(c) => sid(c.stream_id()),
        Command::StallTerm(c) => sid(c.stream_id()),
        Command::TlbiNhAll(c) => vmid(c.vmid()),
        Command::TlbiNhAsid(c) => vmid(c.vmid()),
        Command::TlbiNhVa(c) => vmid(c.vmid()),
        Command::TlbiNhVaa(c) => vmid(c.vmid()),
        Command::TlbiS12Vmall(c) => vmid(c.vmid()),
        Command::TlbiS2Ipa(c) => vmid(c.vmid()),
        Command::Sync(_) => {}
        other => panic!(
            "step {step}: domain {:?} sent a command not scoped to it: {other}",
            d.id
        ),
    }
}

/// Physical memory a DMA by a device of `owner` (None: nobody's) must not
/// change: the other domains' RAM, every stage-2 table, the driver's stream
/// table and command queue.
fn protected(machine: &Machine, doms: &[Domain; 2], owner: Option<usize>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (i, d) in doms.iter().enumerate() {
        if Some(i) != owner {
            out.push((d.ram_pa, d.ram_size));
        }
        // The stage-2 tables are allocated from the root on.
        out.push((d.guest.s2.root, 0x1_0000));
    }
    let reg = |r: Register| {
        let off = r.info().frame_offset();
        if r.info().width == 64 {
            machine.smmu.read64(off)
        } else {
            u64::from(machine.smmu.read32(off))
        }
    };
    let strtab = StrtabBase(reg(Register::STRTAB_BASE)).addr();
    let cfg = StrtabBaseCfg(reg(Register::STRTAB_BASE_CFG) as u32);
    let cmdq = CmdqBase(reg(Register::CMDQ_BASE));
    out.push((cmdq.addr(), 16u64 << cmdq.log2size().min(12)));
    if cfg.fmt() == StrtabBaseCfgFmt::TWO_LEVEL {
        out.push((strtab, 0x1000));
        for d in doms {
            for p in &d.psids {
                let l1 = machine
                    .smmu
                    .with(|_, ram| ram.read_u64(strtab + 8 * u64::from(p >> 8)));
                if let Ok(l1) = l1 {
                    let l1 = L1std([l1]);
                    if l1.span() != 0 {
                        out.push((l1.l2_ptr(), 256 * 64));
                    }
                }
            }
        }
    } else {
        out.push((strtab, 64u64 << cfg.log2size().min(16)));
    }
    out
}

/// Copies the regions' bytes into `buf`.
fn snapshot(machine: &Machine, regions: &[(u64, u64)], buf: &mut Vec<u8>) {
    buf.clear();
    machine.smmu.with(|_, ram| {
        for &(pa, len) in regions {
            if let Some(r) = ram_range(ram.base, ram.bytes.len(), pa, len) {
                buf.extend_from_slice(&ram.bytes[r]);
            }
        }
    });
}

/// Whether the regions still hold the bytes in `buf`.
fn unchanged(machine: &Machine, regions: &[(u64, u64)], buf: &[u8]) -> bool {
    machine.smmu.with(|_, ram| {
        let mut at = 0;
        for &(pa, len) in regions {
            if let Some(r) = ram_range(ram.base, ram.bytes.len(), pa, len) {
                let n = r.len();
                if buf.get(at..at + n) != Some(&ram.bytes[r]) {
                    return false;
                }
                at += n;
            }
        }
        at == buf.len()
    })
}

/// The part of `pa..pa + len` inside RAM, as indices.
fn ram_range(base: u64, size: usize, pa: u64, len: u64) -> Option<core::ops::Range<usize>> {
    let off = usize::try_from(pa.checked_sub(base)?).ok()?;
    let end = off.saturating_add(len as usize).min(size);
    (off < end).then_some(off..end)
}

fn ram_bytes(machine: &Machine, pa: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    machine.smmu.with(|_, ram| {
        let off = (pa - ram.base) as usize;
        buf.copy_from_slice(&ram.bytes[off..off + len]);
    });
    buf
}

/// Whether `word` is in the domain's RAM at an 8-aligned offset with the
/// given offset in its page.
fn ram_has_word(machine: &Machine, d: &Domain, in_page: u64, word: u64) -> bool {
    machine.smmu.with(|_, ram| {
        let base = (d.ram_pa - ram.base) as usize;
        (0..d.ram_size / PAGE).any(|p| {
            let o = base + (p * PAGE + in_page) as usize;
            u64::from_le_bytes(ram.bytes[o..o + 8].try_into().unwrap()) == word
        })
    })
}

/// A copy of the memory a domain's DMA must leave alone, valid while only
/// that domain's devices DMA.
struct Guard<'a> {
    owner: Option<Option<usize>>,
    buf: &'a mut Vec<u8>,
}

/// One DMA, with invariant 1 checked.
#[allow(clippy::too_many_arguments)]
fn dma(
    machine: &Machine,
    doms: &[Domain; 2],
    guard: &mut Guard<'_>,
    step: usize,
    psid: u32,
    iova: u64,
    write: Option<Vec<u8>>,
    len: usize,
) {
    let owner = doms.iter().position(|d| d.psids.contains(&psid));
    let regions = protected(machine, doms, owner);
    if guard.owner != Some(owner) {
        snapshot(machine, &regions, guard.buf);
        guard.owner = Some(owner);
    }
    let r = match &write {
        Some(data) => machine.dma_write(psid, iova, data).map(|()| Vec::new()),
        None => machine.dma_read(psid, iova, len),
    };
    assert!(
        unchanged(machine, &regions, guard.buf),
        "step {step}: DMA {} by pSID {psid:#x} (domain {owner:?}) at {iova:#x} len {} ({r:?}) \
         changed memory outside its guest RAM",
        if write.is_some() { "write" } else { "read" },
        write.as_ref().map_or(len, Vec::len),
    );
    let Some(a) = owner else {
        assert!(
            r.is_err(),
            "step {step}: DMA by unowned pSID {psid:#x} at {iova:#x} succeeded"
        );
        return;
    };
    let Ok(read) = r else {
        return;
    };
    let d = &doms[a];
    let other = &doms[1 - a];
    let bytes: &[u8] = write.as_deref().unwrap_or(&read);
    // Where each page went: in the domain's RAM, holding the bytes moved.
    let mut done = 0usize;
    let mut spans: Vec<(u64, usize, usize)> = Vec::new();
    while done < bytes.len() {
        let va = iova.wrapping_add(done as u64);
        let n = ((PAGE - (va & (PAGE - 1))) as usize).min(bytes.len() - done);
        let access = if write.is_some() {
            Access::WRITE
        } else {
            Access::READ
        };
        if let Ok(pa) = machine.smmu.translate(psid, None, va, access) {
            assert!(
                pa >= d.ram_pa && pa + n as u64 <= d.ram_pa + d.ram_size,
                "step {step}: pSID {psid:#x} of domain {:?} reached PA {pa:#x} (IOVA {va:#x}) \
                 outside its RAM {:#x}+{:#x}",
                d.id,
                d.ram_pa,
                d.ram_size
            );
            spans.push((pa, done, n));
        }
        done += n;
    }
    // Aliased pages: a later chunk of a write may overwrite an earlier one.
    let aliased = spans.iter().enumerate().any(|(i, &(p, _, n))| {
        spans[i + 1..]
            .iter()
            .any(|&(q, _, k)| p < q + k as u64 && q < p + n as u64)
    });
    if !aliased {
        for &(pa, at, n) in &spans {
            assert_eq!(
                ram_bytes(machine, pa, n),
                &bytes[at..at + n],
                "step {step}: DMA by pSID {psid:#x} at {:#x}: the bytes are not at PA {pa:#x}",
                iova.wrapping_add(at as u64)
            );
        }
    }
    if write.is_some() {
        return;
    }
    // The other domain's markers (unless this domain's RAM holds the same
    // word at that place in a page: the guest may copy anything).
    let first = ((8 - (iova & 7)) & 7) as usize;
    let mut i = first;
    while i + 8 <= read.len() {
        let w = u64::from_le_bytes(read[i..i + 8].try_into().unwrap());
        if (w >> 32) as u32 == other.magic {
            let in_page = iova.wrapping_add(i as u64) & (PAGE - 1);
            assert!(
                ram_has_word(machine, d, in_page, w),
                "step {step}: DMA read by pSID {psid:#x} of domain {:?} at {:#x} returned the \
                 other domain's marker {w:#x}",
                d.id,
                iova.wrapping_add(i as u64)
            );
        }
        i += 8;
    }
}

thread_local! {
    /// The machine every input runs on and the buffer for the memory a DMA
    /// must not change, made once per thread: allocating them (and faulting
    /// their pages in) costs more than most inputs.
    static FIXTURE: RefCell<Option<(Machine, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Runs one input on the thread's machine, [`Machine::reset`] first: the
/// same start as a machine built for the input.
pub fn run(data: &[u8]) {
    FIXTURE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (machine, buf) = cell.get_or_insert_with(|| {
            (
                Machine::compact(GUEST_IPA, RAM, 2),
                Vec::with_capacity(4 * RAM as usize),
            )
        });
        machine.reset();
        run_on(machine, buf, data);
    });
}

fn run_on(machine: &mut Machine, buf: &mut Vec<u8>, data: &[u8]) {
    let mut inp = Input::new(data);
    let h = inp.u8();
    let mut doms = [Domain::new(machine, 0, h), Domain::new(machine, 1, h >> 2)];
    for d in doms.iter_mut() {
        d.seed(usize::from(d.id.0 as u8 - 1));
        let _ = d.guest.linux.bring_up();
        if h & 0x10 == 0 {
            let root = d.roots[0];
            let _ = d.guest.linux.attach(8, 1, root);
        }
    }
    check_trace(machine, &doms, 0);
    let mut guard = Guard { owner: None, buf };
    let mut step = 0;
    while !inp.is_empty() && step < MAX_STEPS {
        step += 1;
        let op = inp.u8();
        let flag = op & 0x40 != 0;
        let which = usize::from(op >> 7);
        let kind = (op & 0x3f) % 20;
        if !matches!(kind, 10..=13) {
            guard.owner = None;
        }
        let other_pa = doms[1 - which].ram_pa;
        let their_psids = doms[1 - which].psids.clone();
        match kind {
            0 => {
                let d = &mut doms[which];
                let (off, size, info) = inp.access();
                let mut value = inp.u64();
                if let (true, Some(info)) = (flag, info) {
                    value &= info.write_mask;
                }
                d.guest.linux.write_raw(off, size, value);
            }
            1 => {
                let d = &mut doms[which];
                let (off, size, _) = inp.access();
                d.guest.linux.read_raw(off, size);
            }
            2 => {
                let d = &mut doms[which];
                let region = inp.u8();
                let idx = u64::from(inp.u16());
                let len = usize::from(inp.u8() % 65);
                let bytes: Vec<u8> = (0..len).map(|_| inp.u8()).collect();
                let strtab = StrtabBase(d.reg(Register::STRTAB_BASE)).addr();
                let l = d.guest.linux.layout;
                let at = match region % 9 {
                    0 => strtab.wrapping_add(idx * (Ste::WORDS as u64 * 8)),
                    1 => strtab.wrapping_add(idx * 8),
                    2 => l.l2_pool + idx * (Ste::WORDS as u64 * 8),
                    3 => d.cmdq().slot(u32::from(idx as u16)),
                    4 => d.evtq().slot(u32::from(idx as u16)),
                    5 => l.cds + idx * 8,
                    6 => GUEST_IPA + PT_POOL + idx * 8,
                    7 => GUEST_IPA + DATA + idx * 8,
                    _ => GUEST_IPA + (idx << 5),
                };
                d.poke(at, &bytes);
            }
            3 => {
                let d = &mut doms[which];
                let root = d.roots[usize::from(flag)];
                let iova = pick_iova(&mut inp) & !(PAGE - 1);
                let ipa = pick_ipa(&mut inp, other_pa);
                let writable = inp.u8() & 1 == 0;
                // Up to three new tables.
                if d.pool + 3 * PAGE <= GUEST_IPA + PT_END {
                    d.guest.map_page(root, &mut d.pool, iova, ipa, writable);
                }
            }
            4 => {
                let d = &mut doms[which];
                let root = d.roots[usize::from(flag)];
                let iova = pick_iova(&mut inp);
                d.guest.unmap_page(root, iova);
            }
            5 => {
                let d = &mut doms[which];
                let n = 1 + inp.u8() % 4;
                let slot = d.cmdq().slot(d.guest.linux.prod);
                let cmds: Vec<Command> = (0..n)
                    .filter_map(|_| match inp.command(|inp| aim(inp, d, slot)) {
                        Entry::Typed(cmd) => Some(cmd),
                        Entry::Raw(words) => Command::decode(words).ok(),
                    })
                    .collect();
                let _ = d.guest.linux.issue(&cmds);
            }
            6 => {
                let d = &mut doms[which];
                let sid = pick_vsid(&mut inp, &d.vsids);
                let asid = inp.u16() & 0xf;
                let s = inp.u8();
                let ttb0 = match s >> 6 {
                    0 | 1 => d.roots[usize::from(s & 1)],
                    2 => GUEST_IPA + (u64::from(inp.u16()) * PAGE) % RAM,
                    _ => inp.u64() & 0xffff_ffff_f000,
                };
                let _ = d.guest.linux.attach(sid, asid, ttb0);
            }
            7 => {
                let _ = doms[which].guest.linux.events();
            }
            8 => {
                let d = &mut doms[which];
                let n = 1 + inp.u8() % 8;
                for _ in 0..n {
                    let q = d.cmdq();
                    let slot = q.slot(d.guest.linux.prod);
                    let entry = inp.command(|inp| aim(inp, d, slot)).bytes();
                    d.poke(slot, &entry);
                    d.guest.linux.prod = q.next(d.guest.linux.prod);
                }
                if !flag {
                    let prod = u64::from(CmdqProd(0).with_wr(d.guest.linux.prod).0);
                    d.guest.linux.write(Register::CMDQ_PROD, prod);
                }
            }
            9 => {
                let d = &mut doms[which];
                let sid = pick_vsid(&mut inp, &d.vsids);
                let ste = inp.guest_ste(d.guest.linux.cd_table(sid));
                if flag {
                    let at = d.guest.linux.ste_addr(sid);
                    d.guest.linux.write_words(at, &ste.0);
                } else {
                    let _ = d.guest.linux.write_ste(sid, ste);
                }
            }
            10..=13 => {
                let psid = pick_psid(&mut inp, &doms[which].psids, &their_psids);
                let iova = pick_iova(&mut inp);
                let l = inp.u8();
                let len = if flag {
                    1 + usize::from(inp.u16() % 0x2000)
                } else {
                    1 + usize::from(l)
                };
                let write = (kind >= 12).then(|| {
                    let fill = inp.u8();
                    let head: [u8; 8] = inp.bytes();
                    (0..len)
                        .map(|i| head.get(i).copied().unwrap_or(fill.wrapping_add(i as u8)))
                        .collect::<Vec<u8>>()
                });
                dma(machine, &doms, &mut guard, step, psid, iova, write, len);
            }
            14 => {
                let [a, b] = &mut doms;
                let _ = machine.route_events(&mut [&mut a.guest, &mut b.guest]);
            }
            15 => {
                let d = &mut doms[which];
                if flag {
                    // A careless hypervisor runs deferred work at any time.
                    d.guest.linux.platform.defer.pending = false;
                    let linux = &mut d.guest.linux;
                    let mut ports = GuestPlatform::ports(&mut linux.platform);
                    linux.vsmmu.run_deferred(&mut ports);
                } else {
                    d.guest.linux.run_deferred();
                }
            }
            16 => {
                let d = &mut doms[which];
                let asid = inp.u16() & 0xf;
                let iova = pick_iova(&mut inp) & !(PAGE - 1);
                let pages = u64::from(inp.u8() % 80);
                let _ = d.guest.linux.unmap(asid, iova, pages);
            }
            17 => {
                let dt = u64::from(inp.u16()) * 1_000;
                for (i, d) in doms.iter_mut().enumerate() {
                    if flag || i == which {
                        d.guest.linux.platform.now_ns =
                            d.guest.linux.platform.now_ns.saturating_add(dt);
                    }
                }
            }
            18 => {
                let d = &mut doms[which];
                if flag {
                    // A guest that leaves the SMMU and turns global bypass on.
                    let gbpa = Gbpa(0).with_update(true).with_abort(false);
                    d.guest.linux.write(Register::GBPA, u64::from(gbpa.0));
                    d.guest.linux.write(Register::CR0, 0);
                } else {
                    let _ = d.guest.linux.bring_up();
                }
            }
            _ => {
                let d = &mut doms[which];
                let sid = pick_vsid(&mut inp, &d.vsids);
                let asid = inp.u16() & 0xf;
                let s = inp.u8();
                let ttb0 = match s >> 6 {
                    0..=2 => d.roots[usize::from(s & 1)],
                    _ => inp.u64() & 0xffff_ffff_f000,
                };
                if s & 0x20 != 0 {
                    // A CD with a different granule.
                    let at = d.guest.linux.cd_table(sid);
                    let mut cd = Cd([0; 8]);
                    for (i, w) in cd.0.iter_mut().enumerate() {
                        let b = d.guest.read_ipa(at + 8 * i as u64, 8);
                        *w = u64::from_le_bytes(b.try_into().unwrap());
                    }
                    let cd = cd.with_tg0(CdTg0(s & 3)).with_ttb0(ttb0);
                    d.guest.linux.write_words(at, &cd.0);
                } else {
                    d.guest.linux.write_cd(sid, asid, ttb0);
                }
            }
        }
        check_trace(machine, &doms, step);
    }
}
