//! Work per trap against the size of the domain (issue: "per-trap work
//! independent of domain size"): one CMDQ_PROD trap holding 64 CFGI_ALL and
//! a CMD_SYNC, one GBPA write while the SMMU is disabled, and one deferred
//! call of a CFGI_ALL + CMD_SYNC drain, each with 64 and with 65,536 vSIDs
//! (a PCI root complex). The default per-call policy applies; the hardware
//! budget is out of the way (it is what the pressure tests check) and the
//! hardware layer only counts. Only the trap or the call is timed; the
//! deferred work each one leaves is done outside the measurement.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use smmuv3::cmd::{CmdCfgiSteRange, CmdSync, CmdSyncCs};
use smmuv3::regs::{Cr0, Gbpa};
use smmuv3::Register;
use vsmmu::testing::{FakePlatform, GuestLayout, LinuxGuest, LinuxVersion};
use vsmmu::{DomainId, Policy, PsidOwners, SmmuId, StreamMap, Vsmmu, VsmmuConfig};

const RAM: u64 = 0x4000_0000;
const SIZES: [u32; 2] = [64, 65_536];

fn guest(vsids: u32) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    p.hw.count_only = true;
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_range(&mut owners, DomainId(1), 0, SmmuId(0), 0, vsids)
        .unwrap();
    let cfg = VsmmuConfig {
        policy: Policy {
            hw_burst: u32::MAX,
            hw_refill_per_ms: u32::MAX,
            ..Policy::default()
        },
        ..VsmmuConfig::new(DomainId(1), 5, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::linux(RAM, LinuxVersion::V6_12));
    g.bring_up().unwrap();
    settle(&mut g);
    g
}

fn settle(g: &mut LinuxGuest) {
    while g.platform.defer.pending {
        g.run_deferred();
    }
}

/// Writes commands into the queue without publishing them.
fn enqueue(g: &mut LinuxGuest, cmds: &[[u64; 2]]) {
    let size = 1u32 << g.layout.cmdq_log2;
    for w in cmds {
        let at = g.layout.cmdq + 16 * u64::from(g.prod & (size - 1));
        g.write_words(at, w);
        g.prod = (g.prod + 1) & ((size << 1) - 1);
    }
}

fn cfgi_all_and_sync(n: usize) -> Vec<[u64; 2]> {
    let mut v = vec![CmdCfgiSteRange::new().with_range(31).encode(); n];
    v.push(CmdSync::new().with_cs(CmdSyncCs::SIG_SEV).encode());
    v
}

/// Times `trap` only, `iters` times, with `prepare` and the deferred work
/// left behind outside the measurement.
fn timed(
    g: &mut LinuxGuest,
    iters: u64,
    mut prepare: impl FnMut(&mut LinuxGuest),
    mut trap: impl FnMut(&mut LinuxGuest),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        prepare(g);
        let t = Instant::now();
        trap(g);
        total += t.elapsed();
        settle(g);
    }
    total
}

fn per_trap(c: &mut Criterion) {
    let mut grp = c.benchmark_group("trap");
    grp.sample_size(20);
    for n in SIZES {
        let mut g = guest(n);
        grp.bench_function(BenchmarkId::new("cmdq_prod_64_cfgi_all_sync", n), |b| {
            b.iter_custom(|iters| {
                timed(
                    &mut g,
                    iters,
                    |g| enqueue(g, &cfgi_all_and_sync(64)),
                    |g| g.write(Register::CMDQ_PROD, u64::from(g.prod)),
                )
            })
        });
        let mut g = guest(n);
        g.write(Register::CR0, u64::from(Cr0(0).with_cmdqen(true).0));
        settle(&mut g);
        grp.bench_function(BenchmarkId::new("gbpa_write", n), |b| {
            b.iter_custom(|iters| {
                timed(
                    &mut g,
                    iters,
                    |_| {},
                    |g| {
                        // Toggle ABORT: every stream changes.
                        let abort = !Gbpa(g.read(Register::GBPA) as u32).abort();
                        let v = Gbpa(0).with_abort(abort).with_update(true);
                        g.write(Register::GBPA, u64::from(v.0));
                    },
                )
            })
        });
        let mut g = guest(n);
        grp.bench_function(BenchmarkId::new("deferred_cfgi_all_sync", n), |b| {
            b.iter_custom(|iters| {
                timed(
                    &mut g,
                    iters,
                    |g| {
                        enqueue(g, &cfgi_all_and_sync(1));
                        g.write(Register::CMDQ_PROD, u64::from(g.prod));
                    },
                    |g| g.run_deferred(),
                )
            })
        });
    }
    grp.finish();
}

criterion_group!(benches, per_trap);
criterion_main!(benches);
