//! The platform simulation and end-to-end scenarios (a later issue).

pub use smmuv3_hw;
