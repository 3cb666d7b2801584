//! Decoding a mixed command stream, as the vSMMU's command queue does it.
//!
//! The stream mirrors what a Linux guest sends during map/unmap: mostly
//! TLBI_NH_VA, with CFGI_STE, CFGI_CD, TLBI_NH_ASID and CMD_SYNC mixed in.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use smmuv3::cmd::{CmdCfgiCd, CmdCfgiSte, CmdSync, CmdTlbiNhAsid, CmdTlbiNhVa, Command};

fn stream() -> Vec<[u64; 2]> {
    let mut out = Vec::new();
    for i in 0..256u64 {
        let c = match i % 8 {
            0 => CmdCfgiSte::new()
                .with_stream_id(i as u32)
                .with_leaf(true)
                .encode(),
            1 => CmdCfgiCd::new()
                .with_stream_id(i as u32)
                .with_leaf(true)
                .encode(),
            2 => CmdTlbiNhAsid::new().with_asid(7).with_vmid(1).encode(),
            7 => CmdSync::new().encode(),
            _ => CmdTlbiNhVa::new()
                .with_asid(7)
                .with_vmid(1)
                .with_addr(0x4000_0000 + (i << 12))
                .with_leaf(true)
                .encode(),
        };
        out.push(c);
    }
    out
}

fn decode_stream(c: &mut Criterion) {
    let words = stream();
    let mut g = c.benchmark_group("command_decode");
    g.throughput(Throughput::Elements(words.len() as u64));
    g.bench_function("mixed_stream_256", |b| {
        b.iter(|| {
            let mut ok = 0u32;
            for w in black_box(&words) {
                if let Ok(cmd) = Command::decode(*w) {
                    ok += cmd.code() as u32;
                }
            }
            black_box(ok)
        })
    });
    g.finish();
}

criterion_group!(benches, decode_stream);
criterion_main!(benches);
