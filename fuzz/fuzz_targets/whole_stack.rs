//! The whole stack: two domains on the testbed machine, arbitrary guest
//! operations and device DMA by any pSID (the properties and the input format:
//! `vsmmu_testbed::properties::whole_stack`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vsmmu_testbed::properties::whole_stack::run(data));
