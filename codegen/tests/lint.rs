//! `vsmmu spec lint`: silent on the committed spec, and each finding on a
//! small spec made to have it.

use std::path::Path;

use smmuv3_codegen::lint::lint;
use smmuv3_codegen::{load, load_texts};

#[test]
fn the_committed_spec_has_no_findings() {
    let spec = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec")).unwrap();
    let findings: Vec<String> = lint(&spec).iter().map(|f| f.to_string()).collect();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

const SPEC: &str = r#"
register/IDR0:
  spec: "§6.3.1"
  description: Features
  page: 0
  offset: 0x0
  width: 32
  access: ro
  reset: 0
  emulation: ident
  fields:
    - {name: ATS, bits: "10", description: ATS}
register/CR0:
  spec: "§6.3.9"
  description: Global control
  page: 0
  offset: 0x20
  width: 32
  access: rw
  reset: 0
  emulation: control
  ack: CR0ACK
  fields:
    - {name: SMMUEN, bits: "0", description: Enable}
    - {name: ATSCHK, bits: "4", description: ATS check; RES0 unless IDR0.ATS == 1, values: {FAST: 0, SAFE: 1}}
register/CR0ACK:
  spec: "§6.3.10"
  description: Global control acknowledge
  page: 0
  offset: 0x24
  width: 32
  access: ro
  reset: 0
  emulation: ack
  fields:
    - {name: SMMUEN, bits: "0", description: Enable}
    - {name: ATSCHK, bits: "4", description: ATS check, values: {FAST: 0, SAFE: 1}}
fragment/UNUSED:
  spec: "§4.4"
  description: Nobody includes this
  fields:
    - {name: X, word: 0, bits: "9", description: X}
enum/SPARE:
  spec: "§5.2"
  description: Nobody uses this
  values: {A: 0, B: 1}
"#;

#[test]
fn each_kind_of_finding_is_reported() {
    let spec = load_texts(&[("registers.yaml".to_string(), SPEC.to_string())]).unwrap();
    let text: Vec<String> = lint(&spec).iter().map(|f| f.to_string()).collect();
    let has = |needle: &str| {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "no `{needle}` in:\n{}",
            text.join("\n")
        )
    };
    has("register/CR0: field ATSCHK: the same values are listed by");
    has("fragment/UNUSED: no entry includes it");
    has("enum/SPARE: no field uses it");
    has("register/CR0ACK: repeats the fields of CR0; say `layout: CR0`");
    has("register/CR0: field ATSCHK: the description says \"res0 unless ...\"");
    // Findings point at the field's line.
    let line = SPEC
        .lines()
        .position(|l| l.contains("name: ATSCHK"))
        .unwrap()
        + 1;
    has(&format!(
        "spec/registers.yaml:{line}: register/CR0: field ATSCHK"
    ));
}
