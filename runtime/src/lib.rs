//! The virtual SMMUv3 a hypervisor links in.
//!
//! A guest that owns devices runs the stock Linux `arm-smmu-v3` driver
//! against a [`Vsmmu`] and programs stage 1 itself; the hypervisor keeps
//! stage 2. The runtime emulates the SMMUv3 programming interface (through
//! the generated MMIO dispatch of the `smmuv3` crate), maps guest StreamIDs to
//! physical ones ([`StreamMap`]), asks the hardware layer ([`ports::PhysicalSmmu`])
//! for nested stream configurations and invalidations, and forwards stage-1
//! faults into the guest's event queue.
//!
//! Every value read from the guest is untrusted: no guest value reaches an
//! `unwrap`, an index or unchecked arithmetic, every loop over guest data is
//! bounded by the [`Policy`], and work beyond the per-call budget is resumed
//! through deferred work. See [`device`] for the concurrency contract.
//!
//! The public API is what a hypervisor uses: [`Vsmmu`] and its
//! configuration, the [`ports`] it implements, the stream map and the policy.
//! Tests, benchmarks and fuzzing turn on the `testing` feature for
//! [`testing`]: fakes of every port, a Linux guest-driver model and the
//! standard scenario; a hypervisor's build never contains them.
#![no_std]

extern crate alloc;

mod batch;
mod budget;
pub mod device;
mod dirty;
mod events;
mod idregs;
mod policy;
pub mod ports;
mod stats;
mod stream_table;
#[cfg(feature = "testing")]
pub mod testing;
mod vsid;

pub use budget::HwBudget;
pub use device::{EventOutcome, Installed, SetupError, Vsmmu, VsmmuConfig};
pub use idregs::Incompatible;
pub use policy::{Policy, PolicyError};
pub use ports::*;
pub use stats::Stats;
pub use stream_table::Refusal;
pub use vsid::{DomainId, MapError, PsidOwners, StreamMap};

pub use smmuv3;
