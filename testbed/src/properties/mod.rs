//! The properties the `vsmmu_ops` and `whole_stack` fuzz targets check, as a
//! library: the targets in `fuzz/` call [`vsmmu_ops::run`] and
//! [`whole_stack::run`], and `testbed/tests/fuzz_seeds.rs` replays the
//! committed seeds through the same functions on every `cargo test`.
//!
//! Each `run` takes raw fuzzer bytes and panics (the fuzzer's signal) when a
//! property does not hold. Commands come from the generated `Arbitrary`
//! (see [`input::Input::command`]).

pub mod input;
pub mod vsmmu_ops;
pub mod whole_stack;

use smmuv3::queue::Queue;
use smmuv3::regs::{CmdqBase, EventqBase, Idr1};
use smmuv3::Register;
use vsmmu::Vsmmu;

/// The guest's command queue, as its CMDQ_BASE and the presented CMDQS say.
pub fn command_queue(vsmmu: &Vsmmu) -> Queue {
    let base = CmdqBase(vsmmu.register(Register::CMDQ_BASE));
    let max = u32::from(Idr1(vsmmu.ident(Register::IDR1) as u32).cmdqs());
    Queue::command(base, max)
}

/// The guest's event queue, as its EVENTQ_BASE and the presented EVENTQS say.
pub fn event_queue(vsmmu: &Vsmmu) -> Queue {
    let base = EventqBase(vsmmu.register(Register::EVENTQ_BASE));
    let max = u32::from(Idr1(vsmmu.ident(Register::IDR1) as u32).eventqs());
    Queue::event(base, max)
}
