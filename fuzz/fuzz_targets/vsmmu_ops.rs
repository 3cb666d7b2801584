//! Two domains, each with its own vSMMU and guest RAM, sharing one physical
//! SMMU (distinct pSIDs, distinct VMIDs), driven by arbitrary sequences of
//! trapped register accesses, guest RAM writes, physical events, deferred
//! work and time. After every step: isolation (installs name only the
//! domain's own streams, invalidations carry its VMID and its pSIDs, only
//! forwardable command kinds reach the hardware, forwarded event records name
//! the right vSID and hold no stage-2 state) and bounded work per call.
//!
//! Input: an 8-byte header (the policy and guest layout), then operations,
//! each one header byte (`kind | flag << 5 | domain << 7`) and its operands,
//! little-endian. A missing byte reads as zero.
#![no_main]

include!("props/vsmmu_ops.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
