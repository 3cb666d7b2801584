//! The stack every entry point uses, measured on the Linux guest-model
//! scenarios (bring-up, attach, unmap, full batches, a CFGI_ALL over a
//! large domain, SMMUEN and GBPA toggles, event delivery, a command flood)
//! under both driver generations. The budget,
//! `vsmmu::testing::stack::ENTRY_POINT_BUDGET`, is for an optimised build:
//! CI runs this file with `cargo test --release`; unoptimised frames are
//! several times larger (and painting them slow), so a debug build skips it.

use smmuv3::cmd::*;
use smmuv3::evt::{Event, FTranslation};
use smmuv3::regs::{Cr0, Gbpa};
use smmuv3::Register;
use vsmmu::testing::stack::{self, ENTRY_POINT_BUDGET};
use vsmmu::testing::{FakePlatform, GuestLayout, LinuxGuest, LinuxVersion};
use vsmmu::*;

const RAM: u64 = 0x4000_0000;

fn guest(version: LinuxVersion, vsids: u32) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    p.hw.count_only = true;
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    map.add_range(&mut owners, DomainId(1), 0, SmmuId(0), 0x1000, vsids)
        .unwrap();
    let cfg = VsmmuConfig::new(DomainId(1), 5, 40);
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::linux(RAM, version));
    g.around_call = Some(stack::measured);
    g
}

fn scenario(version: LinuxVersion) {
    let mut g = guest(version, 4096);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    g.attach(9, 0x43, RAM + 0x50_0000).unwrap();
    g.unmap(0x42, 0x1000_0000, 512).unwrap();
    let batch: Vec<Command> = (0..64u16)
        .map(|a| Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(a)))
        .collect();
    g.issue(&batch).unwrap();
    let pages: Vec<Command> = (0..200u64)
        .map(|i| Command::TlbiNhVa(CmdTlbiNhVa::new().with_asid(1).with_addr(i << 12)))
        .collect();
    g.issue(&pages).unwrap();
    g.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])
        .unwrap();
    g.write(
        Register::GBPA,
        u64::from(Gbpa(0).with_abort(true).with_update(true).0),
    );
    g.write(Register::CR0, 0);
    g.write(
        Register::CR0,
        u64::from(
            Cr0(0)
                .with_smmuen(true)
                .with_cmdqen(true)
                .with_eventqen(true)
                .0,
        ),
    );
    while g.platform.defer.pending {
        g.run_deferred();
    }
    for i in 0..300u64 {
        let ev = PhysEvent {
            smmu: SmmuId(0),
            event: Event::FTranslation(
                FTranslation::new()
                    .with_stream_id(0x1008)
                    .with_input_addr(i << 12),
            ),
        };
        let mut ports = g.platform.ports();
        let v = &mut g.vsmmu;
        stack::measured(&mut || {
            v.deliver_event(&mut ports, ev);
        });
    }
    g.events();
}

#[test]
#[cfg_attr(debug_assertions, ignore = "stack budgets are for optimised builds")]
fn every_entry_point_stays_within_its_stack_budget() {
    for v in [LinuxVersion::V6_1, LinuxVersion::V6_12] {
        scenario(v);
    }
    let deepest = stack::deepest();
    eprintln!("deepest entry point call: {deepest} bytes (budget {ENTRY_POINT_BUDGET})");
    assert!(deepest > 0, "the measurement measured something");
    assert!(deepest <= ENTRY_POINT_BUDGET, "{deepest} bytes");
}

#[test]
fn the_probe_sees_a_kilobyte() {
    #[inline(never)]
    fn kb() {
        let mut a = [0u8; 1024];
        std::hint::black_box(&mut a);
    }
    let used = stack::stack_of(&mut kb);
    assert!((1024..4096).contains(&used), "{used}");
}
