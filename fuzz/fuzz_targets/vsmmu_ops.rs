//! Two domains' vSMMUs on fakes, sharing one physical SMMU, driven by
//! arbitrary register accesses, guest memory, physical events, deferred work
//! and time (the properties and the input format:
//! `vsmmu_testbed::properties::vsmmu_ops`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vsmmu_testbed::properties::vsmmu_ops::run(data));
