//! The whole stack on the embedded model: guest command -> vSMMU -> driver ->
//! model, and device DMA translation.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use smmuv3::cmd::{CmdTlbiNhVa, Command};
use smmuv3::structs::{Ste, SteConfig, SteS1Fmt, SteS1dss};
use smmuv3_hw::model::Access;
use vsmmu_testbed::{Guest, Machine, GUEST_IPA};

const IOVA: u64 = 0x1000_0000;

fn booted() -> (Machine, Guest, u64) {
    let mut m = Machine::new();
    // Measure the path, not the hostile-guest throttle.
    m.policy.hw_burst = u32::MAX;
    m.policy.hw_refill_per_ms = u32::MAX;
    let mut g = m.domain(1, &[(8, 0x108)], |_| {}).expect("domain");
    g.linux.bring_up().expect("bring-up");
    let mut pool = GUEST_IPA + 0x40_0000;
    let root = pool;
    pool += 0x1000;
    g.linux.attach(8, 1, root).expect("attach");
    g.map_page(root, &mut pool, IOVA, GUEST_IPA + 0x80_0000, true);
    (m, g, root)
}

fn stack(c: &mut Criterion) {
    let (m, mut g, _) = booted();
    m.trace.set_enabled(false);
    let mut grp = c.benchmark_group("stack");
    // A guest STE change: STE written in guest memory, CFGI_STE + CMD_SYNC
    // (MSI-poll), the vSMMU reads and validates it, the driver writes the
    // physical STE hitlessly on the model with its own CFGI_STE + CMD_SYNCs.
    let cd = [g.linux.cd_table(8), g.linux.cd_table(8) + 0x40];
    let mut i = 0usize;
    grp.bench_function("cfgi_ste_to_physical_ste_synced", |b| {
        b.iter(|| {
            i += 1;
            let ste = Ste::new()
                .with_v(true)
                .with_config(SteConfig::S1_TRANS)
                .with_s1_fmt(SteS1Fmt::LINEAR)
                .with_s1_context_ptr(cd[i % 2])
                .with_s1dss(SteS1dss::SUBSTREAM0);
            g.linux.write_ste(8, ste).expect("cfgi");
        })
    });
    // Linux's dma_unmap of one page: TLBI_NH_VA + CMD_SYNC, through to the model.
    grp.bench_function("dma_unmap_tlbi_nh_va_sync", |b| {
        b.iter(|| {
            let tlbi = Command::TlbiNhVa(
                CmdTlbiNhVa::new()
                    .with_asid(1)
                    .with_addr(IOVA)
                    .with_leaf(true),
            );
            g.linux.issue(&[tlbi]).expect("unmap");
        })
    });
    // Put the CD back so that translation works, then warm the TLB.
    let ste = Ste::new()
        .with_v(true)
        .with_config(SteConfig::S1_TRANS)
        .with_s1_fmt(SteS1Fmt::LINEAR)
        .with_s1_context_ptr(cd[0])
        .with_s1dss(SteS1dss::SUBSTREAM0);
    g.linux.write_ste(8, ste).expect("cfgi");
    m.smmu
        .translate(0x108, None, IOVA, Access::READ)
        .expect("translates");
    grp.bench_function("dma_translate_warm_tlb", |b| {
        b.iter(|| black_box(m.smmu.translate(0x108, None, black_box(IOVA), Access::READ)))
    });
    grp.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
