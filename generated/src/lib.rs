//! The SMMUv3 architecture (Arm IHI 0070, Non-secure interface) as typed Rust,
//! generated at compile time from the YAML in `spec/`.
//!
//! - [`regs`]: one value type per register, with `RESET`, `WRITE_MASK` and
//!   const getters/setters per field;
//! - [`cmd`], [`evt`], [`structs`]: commands, event records, STE/CD and other
//!   in-memory structures, each with `decode` (opcode/type and RES0 checks),
//!   `encode`, `Debug` and `Display` in architecture terms;
//! - [`mmio`]: the register map, [`mmio::decode_access`] and
//!   [`mmio::mmio_read`]/[`mmio::mmio_write`] over the [`mmio::MmioHandlers`]
//!   a runtime implements;
//! - [`tock`]: tock-registers bitfields and page layouts for real MMIO.
//!
//! `generated/expanded.rs` holds the same code pretty-printed for review
//! (`vsmmu regen` writes it).
#![no_std]
#![recursion_limit = "512"]
#![allow(clippy::identity_op, clippy::eq_op, clippy::bad_bit_mask)]

pub mod bringup;
pub mod locate;
pub mod platform;
#[cfg(feature = "testing")]
pub mod properties;
pub mod queue;
mod support;

pub use support::*;

smmuv3_codegen_macro::generate!("../spec");
