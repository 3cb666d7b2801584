//! Two domains' guests on two threads at once, flooding commands into the
//! shared physical SMMU: each keeps working, neither reaches the other.

use std::thread;

use smmuv3::cmd::{CmdTlbiNhVa, Command};
use vsmmu_testbed::{Machine, GUEST_IPA};

const IOVA: u64 = 0x1000_0000;

#[test]
fn two_guests_on_two_threads_flood_the_shared_smmu_and_stay_isolated() {
    let mut m = Machine::new();
    let mut guests = Vec::new();
    for (vmid, psid) in [(1u16, 0x108u32), (2, 0x208)] {
        let mut g = m.domain(vmid, &[(8, psid)], |_| {}).unwrap();
        g.linux.bring_up().unwrap();
        let mut pool = GUEST_IPA + 0x40_0000;
        let root = pool;
        pool += 0x1000;
        g.linux.attach(8, 1, root).unwrap();
        let data = GUEST_IPA + 0x80_0000;
        g.map_page(root, &mut pool, IOVA, data, true);
        g.write_ipa(data, &[vmid as u8; 4]);
        guests.push((g, psid));
    }
    let m = std::sync::Arc::new(m);
    let handles: Vec<_> = guests
        .into_iter()
        .map(|(mut g, psid)| {
            let m = m.clone();
            thread::spawn(move || {
                let vmid = g.linux.vsmmu.config().vmid;
                for round in 0..200u64 {
                    // A burst of invalidations, closed by a sync.
                    let cmds: Vec<Command> = (0..32)
                        .map(|i| {
                            Command::TlbiNhVa(
                                CmdTlbiNhVa::new()
                                    .with_asid(1)
                                    .with_addr(IOVA + ((round * 32 + i) << 12))
                                    .with_leaf(true),
                            )
                        })
                        .collect();
                    g.linux.issue(&cmds).unwrap();
                    // Every DMA sees this domain's own bytes.
                    assert_eq!(m.dma_read(psid, IOVA, 4).unwrap(), [vmid as u8; 4]);
                }
                g
            })
        })
        .collect();
    for h in handles {
        let g = h.join().expect("a guest thread panicked");
        let s = g.linux.vsmmu.stats();
        assert!(s.hw_commands > 0 && s.cerror_ill == 0);
    }
    // Every physical request carried its own domain's VMID.
    for op in m.trace.take() {
        if let vsmmu_testbed::HwOp::Commands { domain, cmds } = op {
            for c in cmds {
                if let Command::TlbiNhVa(v) = c {
                    assert_eq!(
                        u32::from(v.vmid()),
                        domain.0,
                        "a domain's TLBI carried another VMID"
                    );
                }
            }
        }
    }
}
