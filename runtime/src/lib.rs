//! The virtual SMMUv3 a hypervisor links in.
//!
//! A guest that owns devices runs the stock Linux `arm-smmu-v3` driver
//! against a [`Vsmmu`] and programs stage 1 itself; the hypervisor keeps
//! stage 2. The runtime emulates the SMMUv3 programming interface (through
//! the generated MMIO dispatch of the `smmuv3` crate), maps guest StreamIDs to
//! physical ones ([`vsid`]), asks the hardware layer ([`ports::PhysicalSmmu`])
//! for nested stream configurations and invalidations, and forwards stage-1
//! faults into the guest's event queue.
//!
//! Every value read from the guest is untrusted: no guest value reaches an
//! `unwrap`, an index or unchecked arithmetic, every loop over guest data is
//! bounded by the [`Policy`], and work beyond the per-call budget is resumed
//! through deferred work. See [`device`] for the concurrency contract.
#![no_std]

extern crate alloc;

pub mod batch;
pub mod budget;
pub mod device;
pub mod dirty;
pub mod events;
pub mod idregs;
pub mod policy;
pub mod ports;
pub mod stats;
pub mod stream_table;
pub mod testing;
pub mod vsid;

pub use device::{EventOutcome, Installed, SetupError, Vsmmu, VsmmuConfig};
pub use policy::{Policy, PolicyError};
pub use ports::*;
pub use stats::Stats;
pub use vsid::{DomainId, MapError, PsidOwners, StreamMap};

pub use smmuv3;
