//! The stack of one entry point call on the whole stack: the vSMMU, the
//! hardware layer, the physical driver and (standing in for the hardware,
//! which a hypervisor does not run on its stack) the software SMMUv3 model.
//! Measured on the end-to-end scenario under both Linux generations; CI runs
//! it with `cargo test --release`, where the budget applies.

use smmuv3::cmd::{CmdTlbiNhVa, Command};
use vsmmu::testing::stack::{self, ENTRY_POINT_BUDGET};
use vsmmu::testing::LinuxVersion;
use vsmmu_testbed::{Machine, GUEST_IPA};

/// The vSMMU's budget plus what the driver and the model add.
const WHOLE_STACK_BUDGET: usize = 2 * ENTRY_POINT_BUDGET;

#[test]
#[cfg_attr(debug_assertions, ignore = "stack budgets are for optimised builds")]
fn the_whole_stack_stays_within_its_stack_budget() {
    for v in [LinuxVersion::V6_1, LinuxVersion::V6_12] {
        let mut m = Machine::new();
        let mut g = m
            .domain(1, &[(8, 0x108), (16, 0x110)], |l| l.version = v)
            .unwrap();
        g.linux.around_call = Some(stack::measured);
        g.linux.bring_up().unwrap();
        let root = GUEST_IPA + 0x40_0000;
        let mut pool = root + 0x1000;
        g.linux.attach(8, 1, root).unwrap();
        g.linux.attach(16, 2, root).unwrap();
        g.map_page(root, &mut pool, 0x1000_0000, GUEST_IPA + 0x80_0000, true);
        assert!(m.dma_read(0x108, 0x1000_0000, 4).is_ok());
        let pages: Vec<Command> = (0..100u64)
            .map(|i| Command::TlbiNhVa(CmdTlbiNhVa::new().with_asid(1).with_addr(i << 12)))
            .collect();
        g.linux.issue(&pages).unwrap();
        g.linux.unmap(1, 0x1000_0000, 16).unwrap();
        assert!(m.dma_read(0x108, 0x2000_0000, 4).is_err());
        m.route_events(&mut [&mut g]);
        g.linux.events();
    }
    let deepest = stack::deepest();
    eprintln!("deepest whole-stack call: {deepest} bytes (budget {WHOLE_STACK_BUDGET})");
    assert!(
        deepest > 0 && deepest <= WHOLE_STACK_BUDGET,
        "{deepest} bytes"
    );
}
