//! The hardware side: a physical SMMUv3 driver (bring-up, STEs and their
//! hitless update, commands, events), stage-2 tables, and the software
//! SMMUv3 model used as the embedded default.
//!
//! Nothing here depends on the vSMMU runtime except [`domain`], the
//! adapter that implements the runtime's `PhysicalSmmu` port (feature
//! `vsmmu`, on by default); a hypervisor that wants only the driver turns
//! default features off.
#![no_std]

extern crate alloc;

#[cfg(feature = "vsmmu")]
pub mod domain;
pub mod driver;
pub mod embedded;
pub mod error;
mod lock;
pub mod model;
pub mod ops;
pub mod s2pt;
pub mod ste;
pub mod ste_writer;
pub mod transport;

#[cfg(feature = "vsmmu")]
pub use vsmmu;
