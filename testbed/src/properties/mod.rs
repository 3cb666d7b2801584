//! The properties the `vsmmu_ops` and `whole_stack` fuzz targets check, as a
//! library: the targets in `fuzz/` call [`vsmmu_ops::run`] and
//! [`whole_stack::run`], and `testbed/tests/fuzz_seeds.rs` replays the
//! committed seeds through the same functions on every `cargo test`.
//!
//! Each `run` takes raw fuzzer bytes and panics (the fuzzer's signal) when a
//! property does not hold. Commands come from the generated `Arbitrary`
//! (see [`input::Input::command`]).

pub mod input;
pub mod vsmmu_ops;
pub mod whole_stack;
