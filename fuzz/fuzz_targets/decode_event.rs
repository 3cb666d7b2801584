//! Raw words -> decode: re-encodes to the same words, rejections are real.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smmuv3::properties::event(data));
