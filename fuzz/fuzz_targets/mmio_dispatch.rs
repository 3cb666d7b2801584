//! Any sequence of trapped accesses: no panic, RAZ/WI holds, RES0 stays clear.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smmuv3::properties::mmio(data));
