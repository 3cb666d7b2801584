//! Replays the committed seeds of the vSMMU and whole-stack fuzz targets
//! through the same operations and checks the fuzzers run, on stable, so the
//! isolation and bounded-work properties hold on every `cargo test`.

use std::path::Path;

use vsmmu_testbed::properties::{vsmmu_ops, whole_stack};

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        run(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn vsmmu_fuzz_seeds_keep_domains_isolated_and_work_bounded() {
    replay("vsmmu_ops", vsmmu_ops::run);
}

#[test]
fn whole_stack_fuzz_seeds_keep_domains_isolated() {
    replay("whole_stack", whole_stack::run);
}
