//! What one trap costs: register accesses, command queue throughput into a
//! hardware layer that only counts, and CFGI_STE handling (guest STE read,
//! validated and installed).
//!
//! Every guest is a Linux guest model brought up with `LinuxGuest::bring_up`
//! (8 devices, vSIDs 0..8), under a policy that never throttles (huge per-call
//! allowances and hardware budget), so the numbers are the runtime's own cost.
//! Commands are always read from guest memory by the vSMMU.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smmuv3::cmd::{CmdCfgiSte, CmdSync, CmdSyncCs, CmdTlbiNhAsid, CmdTlbiNhVa, Command};
use smmuv3::regs::{CmdqCons, CmdqProd, Cr1, Cr1QueueSh, Cr1TableSh};
use smmuv3::structs::{Ste, SteConfig, SteS1Fmt, SteS1cir, SteS1cor, SteS1csh, SteS1dss};
use smmuv3::{Register, WriteEffect};
use vsmmu::testing::guest::offset;
use vsmmu::testing::{FakePlatform, GuestLayout, LinuxGuest};
use vsmmu::{DomainId, PhysStream, Policy, PsidOwners, SmmuId, StreamMap, Vsmmu, VsmmuConfig};

const RAM: u64 = 0x4000_0000;
const SMMU: SmmuId = SmmuId(0);
const DEVICES: u32 = 8;
/// log2 of the command queue in the throughput benches (4096 entries).
const BIG_QUEUE: u32 = 12;

/// Nothing throttles: every command and STE of a trap is handled in it.
fn unthrottled() -> Policy {
    Policy {
        commands_per_call: u32::MAX,
        stes_per_call: u32::MAX,
        hw_burst: u32::MAX,
        hw_refill_per_ms: u32::MAX,
        ..Policy::default()
    }
}

/// A vSMMU for 8 devices (vSID i -> pSID 0x100 + i) in reset state.
fn guest(cmdq_log2: u32) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    p.hw.count_only = true;
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    for i in 0..DEVICES {
        let s = PhysStream {
            smmu: SMMU,
            psid: 0x100 + i,
        };
        map.add_device(&mut owners, DomainId(1), i, s).unwrap();
    }
    let mut cfg = VsmmuConfig::new(DomainId(1), 5, 40);
    cfg.cmdqs = BIG_QUEUE;
    cfg.policy = unthrottled();
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::at(RAM);
    layout.cmdq_log2 = cmdq_log2;
    LinuxGuest::new(v, p, layout)
}

fn brought_up(cmdq_log2: u32) -> LinuxGuest {
    let mut g = guest(cmdq_log2);
    g.bring_up().unwrap();
    g
}

// ---- (a) register accesses ----

fn registers(c: &mut Criterion) {
    let mut grp = c.benchmark_group("register");
    let mut g = brought_up(8);

    grp.bench_function("read_IDR0", |b| {
        b.iter(|| black_box(g.read_raw(black_box(offset(Register::IDR0)), 4)))
    });
    grp.bench_function("read_CMDQ_CONS", |b| {
        b.iter(|| black_box(g.read_raw(black_box(offset(Register::CMDQ_CONS)), 4)))
    });

    // EVENTQ_CONS: stored, and its write handler does nothing else (what
    // Linux writes after draining the event queue).
    let cons = g.read(Register::EVENTQ_CONS);
    let write = |g: &mut LinuxGuest, reg: Register, value: u64| {
        let mut ports = g.platform.ports();
        g.vsmmu.mmio_write(&mut ports, offset(reg), 4, value)
    };
    assert_eq!(
        write(&mut g, Register::EVENTQ_CONS, cons),
        WriteEffect::Stored
    );
    grp.bench_function("write_EVENTQ_CONS_stored", |b| {
        b.iter(|| black_box(write(&mut g, Register::EVENTQ_CONS, black_box(cons))))
    });

    // CR1 once the SMMU is enabled: the access is decoded, its writability
    // condition evaluated, and the write ignored.
    let cr1 = u64::from(
        Cr1(0)
            .with_table_sh(Cr1TableSh(3))
            .with_queue_sh(Cr1QueueSh(3))
            .0,
    );
    assert_eq!(write(&mut g, Register::CR1, cr1), WriteEffect::Ignored);
    grp.bench_function("write_CR1_enabled_ignored", |b| {
        b.iter(|| black_box(write(&mut g, Register::CR1, black_box(cr1))))
    });

    // CR1 on an SMMU out of reset (the guest driver's first steps): stored.
    let mut fresh = guest(8);
    assert_eq!(write(&mut fresh, Register::CR1, cr1), WriteEffect::Stored);
    grp.bench_function("write_CR1_reset_stored", |b| {
        b.iter(|| black_box(write(&mut fresh, Register::CR1, black_box(cr1))))
    });
    grp.finish();
}

// ---- (b) command queue throughput ----

/// A brought-up guest whose whole command queue holds `cmd(i)` at index i.
fn filled(cmd: impl Fn(u64) -> Command) -> LinuxGuest {
    let mut g = brought_up(BIG_QUEUE);
    let base = g.layout.cmdq;
    for i in 0..(1u64 << BIG_QUEUE) {
        g.platform.ram.write_words(base + 16 * i, &cmd(i).encode());
    }
    g
}

/// One full lap of the queue: PROD moves a whole queue ahead of CONS and a
/// single trap consumes every entry.
fn lap(g: &mut LinuxGuest) {
    let size = 1u32 << BIG_QUEUE;
    g.prod = (g.prod + size) & ((size << 1) - 1);
    g.platform.now_ns += 1_000_000;
    let prod = u64::from(CmdqProd(0).with_wr(g.prod).0);
    let mut ports = g.platform.ports();
    g.vsmmu
        .mmio_write(&mut ports, offset(Register::CMDQ_PROD), 4, prod);
}

fn queue_bench(c: &mut Criterion, name: &str, what: &str, cmd: impl Fn(u64) -> Command) {
    let mut g = filled(cmd);
    let size = 1u64 << BIG_QUEUE;
    // One lap outside the measurement: everything consumed, no error, and
    // how much reaches the hardware.
    lap(&mut g);
    let (cmds, syncs) = (g.platform.hw.commands, g.platform.hw.syncs);
    lap(&mut g);
    let cons = CmdqCons(g.vsmmu.register(Register::CMDQ_CONS) as u32);
    assert_eq!(cons.rd(), g.prod, "{name}: queue not drained");
    assert_eq!(cons.err().0, 0, "{name}: command error");
    eprintln!(
        "cmdq/{name}: {what}; per lap of {size} guest commands: {} physical commands, {} syncs",
        g.platform.hw.commands - cmds,
        g.platform.hw.syncs - syncs
    );
    let mut grp = c.benchmark_group("cmdq");
    grp.throughput(Throughput::Elements(size));
    grp.bench_function(BenchmarkId::new(name, size), |b| b.iter(|| lap(&mut g)));
    grp.finish();
}

fn va(asid: u64, i: u64) -> Command {
    Command::TlbiNhVa(
        CmdTlbiNhVa::new()
            .with_asid(asid as u16)
            .with_addr(0x1000_0000 + (i << 12))
            .with_leaf(true),
    )
}

fn sev_sync() -> Command {
    Command::Sync(CmdSync::new().with_cs(CmdSyncCs::SIG_SEV))
}

fn command_queue(c: &mut Criterion) {
    queue_bench(
        c,
        "tlbi_nh_asid_distinct",
        "TLBI_NH_ASID, a different ASID each: nothing merges, a physical batch every 64",
        |i| Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(i as u16)),
    );
    queue_bench(
        c,
        "tlbi_nh_va_pages",
        "TLBI_NH_VA pages: past the coarsening threshold one TLBI_NH_ALL of the VMID covers the rest",
        |i| va(i, i),
    );
    queue_bench(
        c,
        "linux_unmap_63va_sync",
        "Linux unmap batches: 63 TLBI_NH_VA of one ASID then CMD_SYNC(SEV)",
        |i| {
            if i % 64 == 63 {
                sev_sync()
            } else {
                va(i / 64, i)
            }
        },
    );
    queue_bench(c, "cmd_sync_sev", "CMD_SYNC CS=SEV", |_| sev_sync());
    queue_bench(
        c,
        "cmd_sync_msi_poll",
        "CMD_SYNC CS=IRQ with an MSI address in guest RAM (MSI-poll: one RAM write each)",
        |_| {
            Command::Sync(
                CmdSync::new()
                    .with_cs(CmdSyncCs::SIG_IRQ)
                    .with_msi_address(RAM + 0x60_0000)
                    .with_msi_data(0),
            )
        },
    );
}

// ---- (c) CFGI_STE ----

/// The stage-1 STE Linux writes on attach, pointing at one of two CD tables.
fn s1_ste(g: &LinuxGuest, sid: u32, alt: bool) -> Ste {
    let ctx = g.cd_table(sid) + if alt { 0x800 } else { 0 };
    Ste::new()
        .with_v(true)
        .with_config(SteConfig::S1_TRANS)
        .with_s1_fmt(SteS1Fmt::LINEAR)
        .with_s1_context_ptr(ctx)
        .with_s1dss(SteS1dss::SUBSTREAM0)
        .with_s1cir(SteS1cir::WB_RA)
        .with_s1cor(SteS1cor::WB_RA)
        .with_s1csh(SteS1csh::INNER_SHAREABLE)
}

/// Queues CFGI_STE for every device then one CMD_SYNC, as a guest does
/// (commands written to guest RAM, PROD not yet published).
fn queue_cfgi(g: &mut LinuxGuest) -> u64 {
    let size = 1u32 << g.layout.cmdq_log2;
    let mask = (size << 1) - 1;
    let mut cmds: Vec<Command> = (0..DEVICES)
        .map(|sid| Command::CfgiSte(CmdCfgiSte::new().with_stream_id(sid).with_leaf(true)))
        .collect();
    cmds.push(sev_sync());
    for c in cmds {
        let at = g.layout.cmdq + 16 * u64::from(g.prod & (size - 1));
        g.platform.ram.write_words(at, &c.encode());
        g.prod = (g.prod + 1) & mask;
    }
    u64::from(CmdqProd(0).with_wr(g.prod).0)
}

fn cfgi_ste(c: &mut Criterion) {
    let mut grp = c.benchmark_group("cfgi_ste");
    grp.throughput(Throughput::Elements(u64::from(DEVICES)));
    for changed in [true, false] {
        let mut g = brought_up(8);
        for sid in 0..DEVICES {
            g.attach(sid, 0x40 + sid as u16, RAM + 0x80_0000).unwrap();
        }
        let mut alt = false;
        // Each iteration: (untimed) the guest rewrites every STE (when
        // `changed`) and queues CFGI_STE x8 + CMD_SYNC; (timed) the
        // CMDQ_PROD trap that reads, validates and installs them.
        let mut round = |g: &mut LinuxGuest| -> Duration {
            if changed {
                alt = !alt;
                for sid in 0..DEVICES {
                    let ste = s1_ste(g, sid, alt);
                    let at = g.ste_addr(sid);
                    g.platform.ram.write_words(at, &ste.0);
                }
            }
            let prod = queue_cfgi(g);
            let off = offset(Register::CMDQ_PROD);
            let t = Instant::now();
            {
                let mut ports = g.platform.ports();
                g.vsmmu.mmio_write(&mut ports, off, 4, prod);
            }
            t.elapsed()
        };
        let installs = g.platform.hw.installs;
        let cmds = g.platform.hw.commands;
        round(&mut g);
        let cons = CmdqCons(g.vsmmu.register(Register::CMDQ_CONS) as u32);
        assert_eq!((cons.rd(), cons.err().0), (g.prod, 0));
        let name = if changed {
            "changed_ste_installed"
        } else {
            "unchanged_ste_skipped"
        };
        eprintln!(
            "cfgi_ste/{name}: per {DEVICES} CFGI_STE + 1 CMD_SYNC: {} installs, {} physical commands",
            g.platform.hw.installs - installs,
            g.platform.hw.commands - cmds
        );
        grp.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(&mut g)).sum())
        });
    }
    grp.finish();
}

criterion_group!(benches, registers, command_queue, cfgi_ste);
criterion_main!(benches);
