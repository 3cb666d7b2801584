//! The committed spec validates and expands.

#[test]
fn the_committed_spec_validates_and_expands() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let spec = match smmuv3_codegen::load(&dir) {
        Ok(s) => s,
        Err(errs) => panic!(
            "{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert!(!spec.registers.is_empty());
    smmuv3_codegen::expand_pretty(&spec).unwrap();
}
