//! The virtual SMMUv3 that a hypervisor links in.
//!
//! Nothing here yet: the register emulation, queues, vSID mapping and nested
//! configuration arrive with the runtime issue. The crate exists so that the
//! workspace has its final shape and the dependency direction
//! (generated <- runtime <- hw <- testbed <- cli) is fixed from the start.
#![no_std]

pub use smmuv3;
