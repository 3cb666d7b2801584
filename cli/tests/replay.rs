//! `vsmmu replay`: guest traces against the vSMMU on the testbed, with the
//! exact output format bug reports and conformance cases rely on.

use std::process::Command;

fn replay(trace: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vsmmu"))
        .args(["replay", trace])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn trace(name: &str) -> String {
    format!("{}/tests/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_issue_s_example_trace_replays_in_the_documented_format() {
    let (code, out, err) = replay(&trace("issue_example.json"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"i": 2, "value": "0x0"}"#,
            r#"{"i": 3, "value": "0x0"}"#,
            r#"{"i": 5, "hex": "0000000000000000000000000000000000000000000000000000000000000000"}"#,
            // SMMUEN=0 with GBPA bypass: stage 2 only, and IOVA 0xabc0000 is no guest RAM.
            r#"{"i": 6, "ok": false}"#,
            r#"{"i": 7, "ok": false}"#,
        ]
    );
}

#[test]
fn with_the_smmu_disabled_gbpa_decides_between_stage_2_and_abort() {
    let (code, out, err) = replay(&trace("bypass_dma.json"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"i": 0, "value": "0x1000"}"#,
            r#"{"i": 2, "ok": true, "hex": "41424344"}"#,
            r#"{"i": 3, "ok": true}"#,
            r#"{"i": 4, "hex": "414243444546"}"#,
            r#"{"i": 6, "ok": false}"#,
            r#"{"i": 7, "value": "0x100000"}"#,
            r#"{"i": 8, "value": "0x0"}"#,
        ]
    );
}

#[test]
fn a_malformed_trace_names_the_op_and_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("vsmmu-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (body, says) in [
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "read32", "offset": "0x0"}, {"op": "frob"}]}"#,
            "op 1: unknown op `frob`",
        ),
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "dma_read", "vsid": 9, "iova": 0, "len": 4}]}"#,
            "op 0: vsid 9 is not a device",
        ),
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "dma_read", "vsid": 8, "iova": 0, "len": 5000}]}"#,
            "op 0: len 5000 is not 1 to 4096",
        ),
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "mem_read", "addr": "0x10", "len": 4}]}"#,
            "op 0: addr 0x10 (+4) is outside ram",
        ),
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "write32", "offset": "0x30000", "value": 1}]}"#,
            "op 0: offset 0x30000 is outside the 128 KiB frame",
        ),
        (
            r#"{"ram": {"base": "0x40000000", "size": "0x100000"}, "ops": [{"op": "mem_write", "addr": "0x40000000", "hex": "xyz"}]}"#,
            "op 0: `hex` is not a string of hex bytes",
        ),
        (r#"{"ops": []}"#, "the trace has no `ram`"),
    ] {
        let path = dir.join("t.json");
        std::fs::write(&path, body).unwrap();
        let (code, out, err) = replay(path.to_str().unwrap());
        assert_eq!(code, 1, "{body}");
        assert!(out.is_empty(), "nothing replayed for a malformed trace");
        assert!(err.contains(says), "{body}: {err}");
    }
}
