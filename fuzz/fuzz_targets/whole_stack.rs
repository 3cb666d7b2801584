//! The whole stack: two domains on the testbed machine (software SMMUv3
//! model, physical driver, per-domain stage 2, vSMMU and Linux guest-driver
//! model), driven by arbitrary guest operations (trapped register accesses,
//! guest RAM writes, driver steps) and device DMA by any pSID.
//!
//! After every step:
//! 1. every DMA by a domain's device stays in that domain's guest RAM: a
//!    successful read never returns the other domain's marker words (guest
//!    RAM is seeded with a per-domain, per-offset marker), the pages it
//!    translated to lie in the domain's RAM and hold the bytes moved, and no
//!    DMA (faulting or not) changes memory the domain does not own (the
//!    other domain's RAM, both stage-2 tables, the driver's stream table
//!    and command queue); a DMA by a pSID nobody owns never succeeds;
//! 2. what reached the physical driver names only the domain's own pSIDs,
//!    carries its VMID, and installs only ABORT / invalid / S2_TRANS /
//!    NESTED STEs whose stage 2 is the domain's own;
//! 3. nothing panics.
//!
//! Input: one header byte (guest layout flags), then operations, each one
//! header byte (`kind | flag << 6 | domain << 7`) and its operands,
//! little-endian. A missing byte reads as zero.
#![no_main]

include!("props/whole_stack.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
