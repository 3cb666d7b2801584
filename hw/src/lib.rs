//! The physical SMMUv3 driver and the software SMMUv3 model (a later issue).
#![no_std]

pub use vsmmu;
