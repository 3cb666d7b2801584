//! Replays the committed fuzz seeds through the same property checks the
//! fuzz targets run, so the properties hold on every `cargo test` (stable).

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn command_seeds_hold_the_decode_properties() {
    replay("decode_command", smmuv3::properties::command);
}

#[test]
fn event_seeds_hold_the_decode_properties() {
    replay("decode_event", smmuv3::properties::event);
}

#[test]
fn ste_seeds_hold_the_decode_properties() {
    replay("decode_ste", smmuv3::properties::ste);
}

#[test]
fn cd_seeds_hold_the_decode_properties() {
    replay("decode_cd", smmuv3::properties::cd);
}

#[test]
fn mmio_seeds_hold_the_dispatch_properties() {
    replay("mmio_dispatch", smmuv3::properties::mmio);
}
