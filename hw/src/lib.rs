//! The hardware side: physical SMMUv3 STEs and their hitless update, and the
//! software SMMUv3 model used as the embedded default.
#![no_std]

extern crate alloc;

pub mod domain;
pub mod driver;
pub mod embedded;
mod lock;
pub mod model;
pub mod s2pt;
pub mod ste;
pub mod ste_writer;
pub mod transport;

pub use vsmmu;
