//! The hostile guest (`bash hyp/run --guest hostile`): a bare-metal EL1
//! payload, entered by vsmmu-hyp where Linux would be, that does to the
//! vSMMU what a malicious kernel would (a command flood through a small
//! queue, every ILLEGAL command, wild queue and table bases, random STEs and
//! CDs, GERRORN games and CR0 toggles mid-flight, edu DMA faults against a
//! tiny event queue), then brings the vSMMU up correctly, attaches edu with
//! its own stage-1 tables and checks that an edu DMA lands the right bytes.
//! Progress lines start with `HOSTILE`; hyp/run checks them.
#![no_std]
#![no_main]

mod edu;
mod rt;
mod smmu;

use smmuv3::cmd::{
    CmdCfgiCd, CmdCfgiCdAll, CmdCfgiSteRange, CmdSync, CmdSyncCs, CmdTlbiEl2All, CmdTlbiEl2Asid,
    CmdTlbiEl2Va, CmdTlbiEl3All, CmdTlbiNhAsid, CmdTlbiNhVa, CmdTlbiNsnhAll, CmdTlbiS12Vmall,
    CmdTlbiS2Ipa, Command,
};
use smmuv3::regs::{
    CmdqCons, EventqBase, Idr0, Idr0StLevel, Idr1, StrtabBase, StrtabBaseCfg, StrtabBaseCfgFmt,
    StrtabBaseCfgSplit,
};
use smmuv3::structs::{
    Cd, CdIps, CdIr0, CdOr0, CdSh0, CdTg0, L1std, Ste, SteConfig, SteS1Fmt, SteS1cir, SteS1cor,
    SteS1csh, SteS1dss, SteStrw, TtS1BlockPage, TtS1BlockPageAp, TtS1BlockPageSh, TtTable,
};
use smmuv3::Register;

use rt::{now_us, rd64, wr64, zero, Rng};
use smmu::{cr0, r32, w32, w64, Cmdq, Errors, CMDQEN, EVENTQEN, SMMUEN};

/// Guest commands in the flood (scaled from 10^6 by hyp/run's time budget:
/// see FLOOD in book/src/hypervisor.md).
const FLOOD: u32 = 1_000_000;

// The payload's memory (guest RAM, IPA = PA with the MMU off).
const STRTAB: u64 = 0x4400_0000; // 512 linear STEs (32 KiB)
const L1STD: u64 = 0x4401_0000;
const L2STE: u64 = 0x4402_0000;
const CMDQ: u64 = 0x4403_0000;
const EVTQ: u64 = 0x4404_0000;
const CD: u64 = 0x4405_0000;
const PT_L1: u64 = 0x4406_0000;
const PT_L2: u64 = 0x4406_1000;
const PT_L3A: u64 = 0x4406_2000;
const PT_L3B: u64 = 0x4406_3000;
const EMPTY_PT: u64 = 0x4406_4000;
const GARBAGE: u64 = 0x4500_0000; // random CDs (64 KiB)
const SRC_IPA: u64 = 0x4410_0000;
const DST_IPA: u64 = 0x4420_0000;
const SRC_IOVA: u64 = 0x0100_0000;
const DST_IOVA: u64 = 0x0200_0000;
const SID_LOG2: u8 = 9;
const HYP_MEM: u64 = 0x7fe0_0000;

/// Wild addresses: outside RAM, the hypervisor's 2 MiB, MMIO (UART, GIC,
/// the SMMU frame itself), beyond the IPA space, the DTB, unaligned.
const WILD: [u64; 10] = [
    0,
    HYP_MEM,
    0x7fff_f000,
    0x0900_0000,
    0x0800_0000,
    0x0905_0000,
    0x00ff_ffff_f000,
    0xffff_ffff_ffff_ffc0,
    0x4000_0000,
    0x8000_0000,
];

#[no_mangle]
extern "C" fn hostile_main(dtb: u64) -> ! {
    let t0 = now_us();
    say!("start, DTB at {dtb:#x}");
    let idr0 = r32(Register::IDR0);
    let idr1 = r32(Register::IDR1);
    say!("IDR0 {idr0:#x} IDR1 {idr1:#x}");
    let edu = edu::find();
    match &edu {
        Some(d) => say!(
            "edu at RID {:#x}, vSID {:#x}, BAR0 {:#x}",
            d.rid,
            d.vsid,
            d.bar
        ),
        None => say!("no edu found"),
    }
    let mut rng = Rng(0x5eed_1234_dead_beef);
    let mut e = Errors::default();
    zero(STRTAB, 512 * 64);

    phase(1, "flood", || flood(&mut rng));
    phase(2, "illegal", || illegal(&mut e));
    phase(3, "wild bases", || wild(&mut rng));
    phase(4, "random STEs and CDs", || {
        random_tables(&mut rng, edu.as_ref())
    });
    phase(5, "GERRORN games and CR0 toggles", || games(&mut rng));
    if let Some(d) = &edu {
        phase(6, "edu faults, tiny event queue", || faults(d));
    }
    let ok = edu.as_ref().is_some_and(|d| {
        let mut ok = false;
        phase(7, "correct bring-up and edu DMA", || ok = good(d));
        ok
    });
    say!("CHECK dma {}", if ok { "ok" } else { "FAILED" });
    say!("DONE in {} ms of guest time", (now_us() - t0) / 1000);
    rt::system_off()
}

fn phase(n: u32, name: &str, f: impl FnOnce()) {
    let t = now_us();
    say!("phase {n} {name}");
    f();
    say!("phase {n} done in {} ms", (now_us() - t) / 1000);
}

/// Everything off, every global error acknowledged, a fresh queue.
fn reset(q: &mut Cmdq) {
    let mut e = Errors::default();
    if !cr0(0) {
        say!("note: CR0ACK did not reach 0");
    }
    smmu::ack_gerror(None, &mut e);
    q.program();
}

fn linear_strtab(base: u64) {
    w64(Register::STRTAB_BASE, StrtabBase(0).with_addr(base).0);
    w32(
        Register::STRTAB_BASE_CFG,
        StrtabBaseCfg(0)
            .with_fmt(StrtabBaseCfgFmt::LINEAR)
            .with_log2size(SID_LOG2)
            .0,
    );
}

fn small_q(log2: u32) -> Cmdq {
    let cmdqs = u32::from(Idr1(r32(Register::IDR1)).cmdqs());
    Cmdq::new(CMDQ, log2.min(cmdqs))
}

// ---- 1. the flood ---------------------------------------------------------

fn flood(rng: &mut Rng) {
    let mut q = small_q(4);
    reset(&mut q);
    linear_strtab(STRTAB);
    cr0(CMDQEN | SMMUEN);
    let mut e = Errors::default();
    let (mut sent, mut rings, mut reads, mut timeouts) = (0u32, 0u32, 0u32, 0u32);
    let mut cons = 0;
    let t = now_us();
    while sent < FLOOD {
        let free = q.size() - q.used(cons);
        if free == 0 {
            cons = r32(Register::CMDQ_CONS);
            reads += 1;
            if smmu::cons_error(cons) && smmu::ack_gerror(Some(&q), &mut e) {
                continue;
            }
            if reads > 4 * (sent / q.size() + 16) + 4 * POLLS_SLACK {
                timeouts += 1;
                break;
            }
            continue;
        }
        for _ in 0..free.min(FLOOD - sent) {
            let r = rng.next();
            let cmd = match sent % 16 {
                15 => CmdSync::new().encode(),
                7 => smmu::cfgi_ste((r as u32) & ((1 << SID_LOG2) - 1)),
                11 => CmdTlbiNhAsid::new().with_asid(r as u16).encode(),
                _ => CmdTlbiNhVa::new()
                    .with_asid(r as u16)
                    .with_addr((r >> 16) & 0xffff_ffff_f000)
                    .encode(),
            };
            q.push(cmd);
            sent += 1;
        }
        q.ring();
        rings += 1;
    }
    let drained = q.drain(&mut e);
    let us = (now_us() - t).max(1);
    say!(
        "flood {sent} commands, {rings} PROD writes, {reads} CONS reads, {} commands/s, drained {drained}, errors ill {} abt {}, stuck {timeouts}",
        u64::from(sent) * 1_000_000 / us,
        e.ill,
        e.abt
    );
}

/// CONS reads allowed beyond the ideal one per ring before the flood gives
/// up (the vSMMU may hold the vCPU, not stall it).
const POLLS_SLACK: u32 = 1000;

// ---- 2. ILLEGAL and undefined commands --------------------------------------

fn res0_variants(cmd: Command) -> [Option<[u64; 2]>; 2] {
    let w = cmd.encode();
    let fields = cmd.as_record().fields();
    let mut out = [None, None];
    for (word, o) in out.iter_mut().enumerate() {
        let mut used = if word == 0 { 0xff } else { 0 };
        for f in fields.iter().filter(|f| f.word as usize == word) {
            used |= f.mask();
        }
        if used != u64::MAX {
            let mut v = w;
            v[word] |= 1 << (!used).trailing_zeros();
            *o = Some(v);
        }
    }
    out
}

fn illegal(e: &mut Errors) {
    let mut q = small_q(3);
    reset(&mut q);
    linear_strtab(STRTAB);
    cr0(CMDQEN);
    let mut list: heapless_list::List = heapless_list::List::new();
    for op in 0..=255u8 {
        match Command::decode([u64::from(op), 0]) {
            Err(_) => list.push([u64::from(op), 0]),
            Ok(cmd) => {
                for v in res0_variants(cmd).into_iter().flatten() {
                    list.push(v);
                }
                // SSec=1 wherever the command has it (found by the field's
                // generated name, the same in every command that has one).
                let ssec = smmuv3::cmd::cmd_cfgi_ste::S_SEC.name;
                if let Some(f) = cmd.as_record().fields().iter().find(|f| f.name == ssec) {
                    let mut v = cmd.encode();
                    v[f.word as usize] |= f.mask();
                    list.push(v);
                }
            }
        }
    }
    for c in [
        CmdTlbiEl2All::new().encode(),
        CmdTlbiEl2Asid::new().with_asid(1).encode(),
        CmdTlbiEl2Va::new().with_addr(0x1000).encode(),
        CmdTlbiEl3All::new().encode(),
        CmdTlbiS12Vmall::new().with_vmid(1).encode(),
        CmdTlbiS2Ipa::new().with_vmid(1).with_addr(HYP_MEM).encode(),
        CmdTlbiNhVa::new().with_scale(0x20).encode(),
        CmdTlbiNhVa::new().with_scale(0x3f).with_num(0x1f).encode(),
        // Legal but hostile: MSI-signalled syncs aimed at the hypervisor,
        // the UART and the SMMU frame; ranges and SIDs beyond the table.
        CmdSync::new()
            .with_cs(CmdSyncCs::SIG_IRQ)
            .with_msi_address(HYP_MEM)
            .with_msi_data(0xdead)
            .encode(),
        CmdSync::new()
            .with_cs(CmdSyncCs::SIG_IRQ)
            .with_msi_address(0x0900_0000)
            .with_msi_data(0x41)
            .encode(),
        CmdSync::new()
            .with_cs(CmdSyncCs::SIG_IRQ)
            .with_msi_address(0x0905_0000 + 0x20)
            .with_msi_data(0)
            .encode(),
        CmdCfgiSteRange::new().with_range(31).encode(),
        smmu::cfgi_ste(u32::MAX),
        CmdCfgiCd::new()
            .with_stream_id(u32::MAX)
            .with_substream_id(0xfffff)
            .encode(),
        CmdCfgiCdAll::new().with_stream_id(0x1ff).encode(),
        CmdTlbiNsnhAll::new().encode(),
    ] {
        list.push(c);
    }
    let (mut accepted_expected_ill, mut timeouts) = (0u32, 0u32);
    let before = *e;
    for c in list.iter() {
        let expect_ill = match Command::decode(*c) {
            Err(_) => true,
            Ok(cmd) => cmd.illegal_local().is_some(),
        };
        let ill_before = e.ill;
        q.push(*c);
        q.ring();
        if !q.drain(e) {
            timeouts += 1;
            reset(&mut q);
            cr0(CMDQEN);
        }
        if expect_ill && e.ill == ill_before {
            accepted_expected_ill += 1;
            say!("note: accepted {:#018x} {:#018x}", c[0], c[1]);
        }
    }
    say!(
        "illegal {} commands sent, CERROR_ILL {}, CERROR_ABT {}, other {}, GERRORN acks {}, ILLEGAL but accepted {accepted_expected_ill}, stuck {timeouts}",
        list.len,
        e.ill - before.ill,
        e.abt - before.abt,
        e.other - before.other,
        e.gerror_acks - before.gerror_acks
    );
}

/// A fixed-capacity list of commands (no allocator in the payload).
mod heapless_list {
    pub struct List {
        pub items: [[u64; 2]; 1024],
        pub len: usize,
    }
    impl List {
        pub fn new() -> Self {
            List {
                items: [[0; 2]; 1024],
                len: 0,
            }
        }
        pub fn push(&mut self, c: [u64; 2]) {
            if self.len < self.items.len() {
                self.items[self.len] = c;
                self.len += 1;
            }
        }
        pub fn iter(&self) -> core::slice::Iter<'_, [u64; 2]> {
            self.items[..self.len].iter()
        }
    }
}

// ---- 3. wild queue bases and PROD values ------------------------------------

fn wild(rng: &mut Rng) {
    let mut e = Errors::default();
    let (mut consumed, mut stuck) = (0u32, 0u32);
    for (i, &base) in WILD.iter().enumerate() {
        let mut q = Cmdq::new(base, [4, 31, 0, 19][i % 4]);
        reset(&mut q);
        cr0(CMDQEN);
        for prod in [1u32, 0x7fff_ffff, 0x00ff_ffff, rng.next() as u32, 0] {
            w32(Register::CMDQ_PROD, prod);
            let c = r32(Register::CMDQ_CONS);
            if c & 0xff_ffff != 0 {
                consumed += 1;
            }
            smmu::ack_gerror(None, &mut e);
        }
        // The queue base again, with CMDQEN on (must be ignored).
        w64(Register::CMDQ_BASE, CMDQ | 4);
        if !cr0(0) {
            stuck += 1;
        }
    }
    // Wild stream-table bases, each followed by invalidations of everything.
    let mut q = small_q(4);
    for &base in WILD.iter() {
        reset(&mut q);
        w64(Register::STRTAB_BASE, StrtabBase(0).with_addr(base).0);
        w32(
            Register::STRTAB_BASE_CFG,
            (rng.next() as u32) & 0x3_ffff | [0, 1 << 16][base as usize & 1],
        );
        cr0(CMDQEN | SMMUEN);
        if !q.run(
            &[
                CmdCfgiSteRange::new().with_range(31).encode(),
                smmu::cfgi_ste(0x118),
            ],
            &mut e,
        ) {
            stuck += 1;
        }
    }
    // A good queue, PROD far beyond it.
    reset(&mut q);
    cr0(CMDQEN);
    for _ in 0..64 {
        let p = rng.next() as u32;
        w32(Register::CMDQ_PROD, p);
        smmu::ack_gerror(Some(&q), &mut e);
    }
    say!(
        "wild {} queue bases, {} table bases, consumed from wild bases {consumed}, errors ill {} abt {} other {}, stuck {stuck}",
        WILD.len(),
        WILD.len(),
        e.ill,
        e.abt,
        e.other
    );
}

// ---- 4. random STEs and CDs ------------------------------------------------

fn random_tables(rng: &mut Rng, edu: Option<&edu::Edu>) {
    let mut e = Errors::default();
    let mut q = small_q(6);
    reset(&mut q);
    linear_strtab(STRTAB);
    cr0(CMDQEN | SMMUEN);
    for i in 0..64 * 8 {
        wr64(GARBAGE + i * 8, rng.next());
    }
    let mut stuck = 0;
    for round in 0..16u64 {
        let mut cmds = [[0u64; 2]; 33];
        for c in cmds.iter_mut().take(32) {
            let sid = if rng.below(2) == 0 {
                0x100 + rng.below(0x100)
            } else {
                rng.below(1 << SID_LOG2)
            } as u32;
            let mut ste = [0u64; 8];
            for w in ste.iter_mut() {
                *w = rng.next();
            }
            let ptr = match rng.below(4) {
                0 => WILD[rng.below(WILD.len() as u64) as usize],
                _ => GARBAGE + rng.below(64) * 64,
            };
            let s = Ste(ste)
                .with_v(true)
                .with_config(SteConfig(rng.below(8) as u8))
                .with_s1_context_ptr(ptr);
            for (k, w) in s.0.iter().enumerate() {
                wr64(STRTAB + u64::from(sid) * 64 + k as u64 * 8, *w);
            }
            *c = smmu::cfgi_ste(sid);
        }
        cmds[32] = CmdCfgiCdAll::new().with_stream_id(0x118).encode();
        if !q.run(&cmds, &mut e) {
            stuck += 1;
            reset(&mut q);
            linear_strtab(STRTAB);
            cr0(CMDQEN | SMMUEN);
        }
        // Now and then edu DMAs through whatever its STE has become.
        if round % 5 == 0 {
            if let Some(d) = edu {
                d.dma(SRC_IOVA, 0x40000, 64, false);
            }
        }
    }
    // Two-level tables with wild L1 descriptors.
    let two_level = Idr0(r32(Register::IDR0)).st_level() == Idr0StLevel::TWO_LEVEL;
    if two_level {
        for i in 0..(1u64 << (SID_LOG2 - 8)) * 2 {
            let l2 = match rng.below(3) {
                0 => WILD[rng.below(WILD.len() as u64) as usize],
                1 => L2STE,
                _ => rng.next(),
            };
            let d = L1std::new().with_span(rng.below(32) as u8).with_l2_ptr(l2);
            wr64(L1STD + i * 8, d.0[0]);
        }
        for i in 0..256 * 8 {
            wr64(L2STE + i * 8, rng.next() | 1);
        }
        reset(&mut q);
        w64(Register::STRTAB_BASE, StrtabBase(0).with_addr(L1STD).0);
        w32(
            Register::STRTAB_BASE_CFG,
            StrtabBaseCfg(0)
                .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
                .with_split(StrtabBaseCfgSplit::SPLIT_4KB)
                .with_log2size(SID_LOG2 + 1)
                .0,
        );
        cr0(CMDQEN | SMMUEN);
        let mut cmds = [[0u64; 2]; 34];
        cmds[0] = CmdCfgiSteRange::new().with_range(31).encode();
        for (i, c) in cmds.iter_mut().enumerate().skip(1) {
            *c = smmu::cfgi_ste(0x100 + (i as u32) * 7);
        }
        cmds[33] = smmu::cfgi_ste(0x118);
        if !q.run(&cmds, &mut e) {
            stuck += 1;
        }
        if let Some(d) = edu {
            d.dma(SRC_IOVA, 0x40000, 64, false);
        }
    }
    say!(
        "random 512 STEs, 2-level {two_level}, errors ill {} abt {} other {}, stuck {stuck}",
        e.ill,
        e.abt,
        e.other
    );
}

// ---- 5. GERRORN games, CR0 toggles mid-flight --------------------------------

fn games(rng: &mut Rng) {
    let mut e = Errors::default();
    let mut q = small_q(4);
    reset(&mut q);
    linear_strtab(STRTAB);
    zero(STRTAB, 512 * 64);
    cr0(CMDQEN | EVENTQEN | SMMUEN);
    w64(
        Register::EVENTQ_BASE,
        EventqBase(0).with_addr(EVTQ).with_log2size(1).0,
    );
    for i in 0..400u32 {
        // Commands in flight, then a random register poke without waiting.
        for _ in 0..rng.below(16) {
            if q.used(r32(Register::CMDQ_CONS)) < q.size() {
                q.push(CmdTlbiNhVa::new().with_asid(i as u16).encode());
            }
        }
        q.ring();
        match rng.below(6) {
            0 => w32(Register::GERRORN, rng.next() as u32),
            1 => w32(Register::CR0, (rng.next() as u32) & 0xf),
            2 => w32(Register::CR0, CMDQEN | EVENTQEN | SMMUEN),
            3 => w32(Register::CMDQ_CONS, rng.next() as u32),
            4 => {
                let _ = r32(Register::GERROR);
                smmu::ack_gerror(Some(&q), &mut e);
            }
            _ => w32(Register::CMDQ_PROD, q.prod ^ q.size()),
        }
        // Queue state is garbage after those: resynchronise from CONS.
        q.prod = q.q.ptr(CmdqCons(r32(Register::CMDQ_CONS)).rd());
        w32(Register::CMDQ_PROD, q.prod);
    }
    let ok = {
        reset(&mut q);
        cr0(CMDQEN) && q.run(&[CmdTlbiNsnhAll::new().encode()], &mut e)
    };
    say!(
        "games 400 rounds, errors ill {} abt {} other {}, queue usable afterwards {ok}",
        e.ill,
        e.abt,
        e.other
    );
}

// ---- 6. edu faults against a tiny event queue ------------------------------

fn faults(d: &edu::Edu) {
    let mut e = Errors::default();
    let mut q = small_q(4);
    reset(&mut q);
    zero(STRTAB, 512 * 64);
    zero(EMPTY_PT, 4096);
    linear_strtab(STRTAB);
    write_cd(EMPTY_PT);
    write_edu_ste(d.vsid);
    w64(
        Register::EVENTQ_BASE,
        EventqBase(0).with_addr(EVTQ).with_log2size(1).0,
    );
    w32(Register::EVENTQ_PROD, 0);
    w32(Register::EVENTQ_CONS, 0);
    cr0(CMDQEN | EVENTQEN | SMMUEN);
    q.run(&[smmu::cfgi_ste(d.vsid)], &mut e);
    let (mut events, mut wrong_sid, mut overflows) = (0u32, 0u32, 0u32);
    let mut cons = 0u32;
    for i in 0..6 {
        d.dma(0x40000, 0x0dea_d000, 32, true);
        d.wait();
        let prod = r32(Register::EVENTQ_PROD);
        if (prod ^ cons) >> 31 != 0 {
            overflows += 1;
        }
        // Consume only every other time: the queue overflows meanwhile.
        if i % 2 == 1 {
            while (cons ^ prod) & 0x3 != 0 {
                let slot = u64::from(cons & 1);
                let w0 = rd64(EVTQ + slot * 32);
                events += 1;
                if (w0 >> 32) as u32 != d.vsid || w0 & 0xff != 0x10 {
                    wrong_sid += 1;
                }
                cons = (cons + 1) & 0x3;
            }
            cons |= prod & (1 << 31);
            w32(Register::EVENTQ_CONS, cons);
        }
    }
    // The event queue in the hypervisor's memory, then at the UART.
    for base in [HYP_MEM, 0x0900_0000] {
        say!("event queue at {base:#x}");
        cr0(CMDQEN | SMMUEN);
        w64(
            Register::EVENTQ_BASE,
            EventqBase(0).with_addr(base).with_log2size(3).0,
        );
        cr0(CMDQEN | EVENTQEN | SMMUEN);
        d.dma(0x40000, 0x0dea_d000, 8, true);
        d.wait();
        let _ = r32(Register::EVENTQ_PROD);
        smmu::ack_gerror(Some(&q), &mut e);
    }
    say!(
        "faults 8 DMAs, {events} events read, not edu's vSID/F_TRANSLATION {wrong_sid}, overflows seen {overflows}, GERROR acks {}",
        e.gerror_acks
    );
}

// ---- 7. a correct bring-up, attach and DMA -------------------------------------

fn write_cd(ttb0: u64) {
    let cd = Cd::new()
        .with_t0sz(25)
        .with_tg0(CdTg0::GRANULE_4KB)
        .with_ir0(CdIr0::WB_RA_WA)
        .with_or0(CdOr0::WB_RA_WA)
        .with_sh0(CdSh0::INNER_SHAREABLE)
        .with_epd1(true)
        .with_v(true)
        .with_ips(CdIps::PS_40_BIT)
        .with_aa64(true)
        .with_r(true)
        .with_a(true)
        .with_aset(true)
        .with_asid(1)
        .with_ttb0(ttb0)
        .with_mair0(0x0004_44ff);
    for (k, w) in cd.0.iter().enumerate() {
        wr64(CD + k as u64 * 8, *w);
    }
}

fn write_edu_ste(vsid: u32) {
    let ste = Ste::new()
        .with_v(true)
        .with_config(SteConfig::S1_TRANS)
        .with_s1_fmt(SteS1Fmt::LINEAR)
        .with_s1_context_ptr(CD)
        .with_s1dss(SteS1dss::SUBSTREAM0)
        .with_s1cir(SteS1cir::WB_RA)
        .with_s1cor(SteS1cor::WB_RA)
        .with_s1csh(SteS1csh::INNER_SHAREABLE)
        .with_strw(SteStrw::EL1);
    for (k, w) in ste.0.iter().enumerate() {
        wr64(STRTAB + u64::from(vsid) * 64 + k as u64 * 8, *w);
    }
}

fn page(pa: u64) -> u64 {
    TtS1BlockPage::new()
        .with_valid(true)
        .with_type_(true)
        .with_attr_indx(0)
        .with_ap(TtS1BlockPageAp::ALL_RW)
        .with_sh(TtS1BlockPageSh::INNER_SHAREABLE)
        .with_af(true)
        .with_oa(pa)
        .0[0]
}

fn table(pa: u64) -> u64 {
    TtTable::new()
        .with_valid(true)
        .with_type_(true)
        .with_nlta(pa)
        .0[0]
}

fn good(d: &edu::Edu) -> bool {
    let mut e = Errors::default();
    // Linux's order: everything off, tables and queues, CMDQ on, invalidate
    // all, event queue on, then SMMUEN.
    let mut q = small_q(8);
    if !cr0(0) {
        say!("bring-up: CR0ACK did not reach 0");
        return false;
    }
    smmu::ack_gerror(None, &mut e);
    w32(Register::CR1, 0xd75);
    w32(Register::CR2, 0x6);
    zero(STRTAB, 512 * 64);
    linear_strtab(STRTAB);
    q.program();
    if !cr0(CMDQEN) {
        say!("bring-up: CMDQEN not acknowledged");
        return false;
    }
    if !q.run(
        &[
            CmdCfgiSteRange::new().with_range(31).encode(),
            CmdTlbiNsnhAll::new().encode(),
        ],
        &mut e,
    ) {
        say!("bring-up: invalidate-all did not complete");
        return false;
    }
    zero(EVTQ, 0x1000);
    w64(
        Register::EVENTQ_BASE,
        EventqBase(0).with_addr(EVTQ).with_log2size(7).0,
    );
    w32(Register::EVENTQ_PROD, 0);
    w32(Register::EVENTQ_CONS, 0);
    if !cr0(CMDQEN | EVENTQEN) || !cr0(CMDQEN | EVENTQEN | SMMUEN) {
        say!("bring-up: EVENTQEN/SMMUEN not acknowledged");
        return false;
    }
    // edu's stage 1: IOVA SRC_IOVA -> SRC_IPA, DST_IOVA -> DST_IPA.
    for t in [PT_L1, PT_L2, PT_L3A, PT_L3B] {
        zero(t, 4096);
    }
    wr64(PT_L1, table(PT_L2));
    wr64(PT_L2 + ((SRC_IOVA >> 21) & 511) * 8, table(PT_L3A));
    wr64(PT_L2 + ((DST_IOVA >> 21) & 511) * 8, table(PT_L3B));
    wr64(PT_L3A + ((SRC_IOVA >> 12) & 511) * 8, page(SRC_IPA));
    wr64(PT_L3B + ((DST_IOVA >> 12) & 511) * 8, page(DST_IPA));
    let mut rng = Rng(0x1234_5678);
    let pattern: [u64; 32] = core::array::from_fn(|_| rng.next());
    for (i, w) in pattern.iter().enumerate() {
        wr64(SRC_IPA + i as u64 * 8, *w);
    }
    zero(DST_IPA, 4096);
    write_cd(PT_L1);
    write_edu_ste(d.vsid);
    if !q.run(
        &[
            CmdCfgiCd::new()
                .with_stream_id(d.vsid)
                .with_leaf(true)
                .encode(),
            smmu::cfgi_ste(d.vsid),
            CmdTlbiNhAsid::new().with_asid(1).encode(),
        ],
        &mut e,
    ) {
        say!("attach: commands did not complete");
        return false;
    }
    // RAM -> edu from SRC_IOVA, then edu -> RAM to DST_IOVA.
    d.dma(SRC_IOVA, 0x40000, 256, false);
    let a = d.wait();
    d.dma(0x40000, DST_IOVA, 256, true);
    let b = d.wait();
    let landed = pattern
        .iter()
        .enumerate()
        .all(|(i, w)| rd64(DST_IPA + i as u64 * 8) == *w);
    let spill = rd64(DST_IPA + 256) != 0;
    let events = r32(Register::EVENTQ_PROD) & 0xff;
    say!(
        "dma edu completed {a}/{b}, bytes at IPA {DST_IPA:#x} right {landed}, beyond untouched {}, events {events}, errors ill {} abt {}",
        !spill,
        e.ill,
        e.abt
    );
    a && b && landed && !spill && events == 0 && e.ill == 0 && e.abt == 0
}
