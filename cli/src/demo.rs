//! `vsmmu demo`: a scripted Linux guest on the embedded model, end to end,
//! with a readable trace and a summary of what it cost.

use std::time::{Duration, Instant};

use smmuv3::cmd::{CmdTlbiNhVa, Command};
use smmuv3::Register;
use vsmmu_testbed::{Guest, HwOp, Machine, GUEST_IPA};

const PT_POOL: u64 = GUEST_IPA + 0x40_0000;
const DATA: u64 = GUEST_IPA + 0x80_0000;
const IOVA: u64 = 0x1000_0000;
/// (vSID, pSID, ASID) of the two devices.
const DEVICES: [(u32, u32, u16); 2] = [(8, 0x108, 1), (16, 0x110, 2)];

/// Guest commands written since `from` (the guest's CMDQ_PROD copy), decoded.
fn guest_commands(g: &mut Guest, from: &mut u32) -> Vec<String> {
    let q = g.linux.cmdq();
    let mut out = Vec::new();
    while !q.is_empty(g.linux.prod, *from) {
        let at = q.slot(*from);
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&g.read_ipa(at, 16));
        let words = [
            u64::from_le_bytes(raw[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(raw[8..].try_into().unwrap_or_default()),
        ];
        out.push(match Command::decode(words) {
            Ok(c) => c.to_string(),
            // Linux's MSI-poll: the completed CMD_SYNC wrote MSIData (0) over
            // the first word of its own slot, which the guest polled.
            Err(_) if words[0] as u32 == 0 => {
                "CMD_SYNC CS=SIG_IRQ (completed: MSIData written over its own slot)".into()
            }
            Err(e) => format!("(undecodable: {e})"),
        });
        *from = q.next(*from);
    }
    out
}

fn show_phase(title: &str, g: &mut Guest, m: &Machine, from: &mut u32) {
    println!("\n== {title}");
    for c in guest_commands(g, from) {
        println!("  guest    {c}");
    }
    for op in m.trace.take() {
        match op {
            HwOp::Ste { psid, ste, .. } => println!("  physical STE[{psid:#x}] <- {ste}"),
            HwOp::Commands { cmds, .. } => {
                for c in cmds {
                    println!("  physical {c}");
                }
            }
            HwOp::Sync { .. } => println!("  physical CMD_SYNC"),
        }
    }
}

struct Timer {
    rows: Vec<(&'static str, u64, Duration)>,
}

impl Timer {
    fn time<T>(&mut self, what: &'static str, n: u64, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.rows.push((what, n, t.elapsed()));
        r
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("demo takes no arguments, got `{a}`"));
    }
    let mut m = Machine::new();
    let mut t = Timer { rows: Vec::new() };
    let devices: Vec<(u32, u32)> = DEVICES.iter().map(|(v, p, _)| (*v, *p)).collect();
    let mut g = m
        .domain(1, &devices, |_| {})
        .map_err(|e| format!("domain: {e:?}"))?;
    let mut cursor = 0u32;
    println!(
        "vsmmu demo: a Linux guest (domain 1, VMID 1) with two devices behind a virtual SMMUv3,"
    );
    println!("on the embedded software SMMUv3 (QEMU virt's ID registers, nested stages).");
    m.trace.take();

    t.time("bring-up (arm_smmu_device_reset)", 1, || g.linux.bring_up())
        .map_err(|e| format!("bring-up: {e:?}"))?;
    show_phase(
        "bring-up: reset, stream table, queues, invalidate all, enable",
        &mut g,
        &m,
        &mut cursor,
    );

    let mut pool = PT_POOL;
    let mut roots = Vec::new();
    for (vsid, _, asid) in DEVICES {
        let root = pool;
        pool += 0x1000;
        roots.push(root);
        t.time("attach (CD + STE + CFGI_STE + SYNC)", 1, || {
            g.linux.attach(vsid, asid, root)
        })
        .map_err(|e| format!("attach: {e:?}"))?;
    }
    show_phase(
        "attach both devices: stage-1 CDs, nested STEs",
        &mut g,
        &m,
        &mut cursor,
    );

    println!("\n== map and DMA");
    for (i, (vsid, psid, _)) in DEVICES.iter().enumerate() {
        let data = DATA + 0x1000 * i as u64;
        g.map_page(roots[i], &mut pool, IOVA, data, true);
        let msg = format!("hello from domain 1, vSID {vsid}");
        g.write_ipa(data, msg.as_bytes());
        let got = t.time("device DMA read (nested walk)", 1, || {
            m.dma_read(*psid, IOVA, msg.len())
        });
        let got = got.map_err(|e| format!("DMA: {e:?}"))?;
        println!(
            "  device pSID {psid:#x} reads IOVA {IOVA:#x} -> IPA {data:#x}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    m.dma_write(DEVICES[1].1, IOVA + 0x100, b"written by the device")
        .map_err(|e| format!("DMA: {e:?}"))?;
    println!(
        "  device pSID {:#x} writes IOVA {:#x}; the guest finds at IPA {:#x}: {:?}",
        DEVICES[1].1,
        IOVA + 0x100,
        DATA + 0x1100,
        String::from_utf8_lossy(&g.read_ipa(DATA + 0x1100, 21))
    );

    g.unmap_page(roots[0], IOVA);
    let tlbi = Command::TlbiNhVa(
        CmdTlbiNhVa::new()
            .with_asid(DEVICES[0].2)
            .with_addr(IOVA)
            .with_leaf(true),
    );
    t.time("unmap (TLBI_NH_VA + SYNC)", 1, || g.linux.issue(&[tlbi]))
        .map_err(|e| format!("unmap: {e:?}"))?;
    show_phase(
        "unmap with invalidation (the vSMMU forces the domain's VMID)",
        &mut g,
        &m,
        &mut cursor,
    );

    println!(
        "\n== a fault: device pSID {:#x} reads the unmapped IOVA",
        DEVICES[0].1
    );
    let fault = m.dma_read(DEVICES[0].1, IOVA, 4);
    println!("  the physical SMMU terminates the access: {fault:?}");
    let outcomes = t.time("event delivery (pSID -> vSID)", 1, || {
        m.route_events(&mut [&mut g])
    });
    println!("  physical events routed: {outcomes:?}");
    for e in g.linux.events() {
        println!("  guest event queue: {e}");
    }

    // Register access cost through the vSMMU.
    let n = 10_000u64;
    t.time("register read (IDR0)", n, || {
        for _ in 0..n {
            std::hint::black_box(g.linux.read(Register::IDR0));
        }
    });
    t.time("register write (CR1 while enabled: ignored)", n, || {
        for _ in 0..n {
            g.linux.write(Register::CR1, 0);
        }
    });

    let s = g.linux.vsmmu.stats().clone();
    println!("\n== summary");
    println!("  {:<44} {:>10}", "what", "count");
    let mut kinds: Vec<(String, u64)> = (0..=255u8)
        .filter(|op| s.commands[usize::from(*op)] > 0)
        .map(|op| {
            let name = Command::decode([u64::from(op), 0])
                .map(|c| c.as_record().name())
                .unwrap_or("?");
            (format!("guest {name}"), s.commands[usize::from(op)])
        })
        .collect();
    kinds.push(("physical invalidations issued".into(), s.hw_commands));
    kinds.push(("physical syncs issued".into(), s.hw_syncs));
    kinds.push(("physical STE installs".into(), s.hw_installs));
    kinds.push(("guest invalidations merged".into(), s.merged));
    kinds.push(("events forwarded to the guest".into(), s.events_forwarded));
    kinds.push(("events dropped".into(), s.events_dropped));
    kinds.push((
        "stage-2 faults kept by the hypervisor".into(),
        s.stage2_faults,
    ));
    for (k, v) in kinds {
        println!("  {k:<44} {v:>10}");
    }
    println!("\n  {:<44} {:>10} {:>14}", "emulator time", "ops", "per op");
    for (what, n, d) in &t.rows {
        let per = d.as_nanos() / u128::from((*n).max(1));
        println!("  {what:<44} {n:>10} {:>11} ns", per);
    }
    Ok(())
}
