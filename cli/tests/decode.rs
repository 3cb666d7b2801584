//! `vsmmu decode` as a driver developer runs it: words from a log in, the
//! architecture's names out; mistakes are one-line errors with exit status 1.

use std::process::Command;

fn vsmmu(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vsmmu"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_command_from_a_log_decodes_to_its_fields() {
    let (code, out, _) = vsmmu(&["decode", "cmd", "0x0000123400000003", "0x1"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "CMD_CFGI_STE StreamID=0x1234 Leaf=1");
}

#[test]
fn json_output_lists_every_field_in_spec_order() {
    let (code, out, _) = vsmmu(&["decode", "--json", "cmd", "0x0000123400000003", "0x1"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        r#"{"name":"CMD_CFGI_STE","fields":{"SSec":0,"StreamID":4660,"Leaf":1}}"#
    );
}

#[test]
fn events_structures_and_registers_decode() {
    let (code, out, _) = vsmmu(&[
        "decode",
        "evt",
        "0x0000000800000010 0x0000020800000000",
        "0xdead000",
        "0",
    ]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "F_TRANSLATION StreamID=0x8 RnW=1 CLASS=IN InputAddr=0xdead000"
        )
    );
    let (code, out, _) = vsmmu(&["decode", "ste", "0xb", "0", "0", "0", "0", "0", "0", "0"]);
    assert_eq!((code, out.trim()), (0, "STE V=1 Config=S1_TRANS"));
    let (code, out, _) = vsmmu(&["decode", "l1std", "0x40001008"]);
    assert_eq!((code, out.trim()), (0, "L1STD Span=0x8 L2Ptr=0x40001000"));
    let (code, out, _) = vsmmu(&["decode", "reg", "CR0", "0xd"]);
    assert_eq!((code, out.trim()), (0, "CR0 CMDQEN=1 EVENTQEN=1 SMMUEN=1"));
    let (code, out, _) = vsmmu(&["decode", "reg", "0x100a8", "0x80000003"]);
    assert_eq!((code, out.trim()), (0, "EVENTQ_PROD OVFLG=1 WR=0x3"));
    let (code, out, _) = vsmmu(&["decode", "--json", "reg", "IDR5", "0x74"]);
    assert_eq!(code, 0);
    assert!(out.contains(r#""OAS":4"#), "{out}");
}

/// Each mistake: exit 1, nothing on stdout, one line on stderr saying what.
fn refused(args: &[&str], says: &str) {
    let (code, out, err) = vsmmu(args);
    assert_eq!(code, 1, "{args:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(says), "{args:?}: {err}");
    let _ = out;
}

#[test]
fn mistakes_are_one_line_errors_with_status_1() {
    refused(&["decode", "cmd", "0x3"], "cmd takes 2 64-bit words, got 1");
    refused(&["decode", "cmd", "0x3", "0x1", "0x2"], "got 3");
    refused(
        &["decode", "cmd", "0xzz", "0"],
        "`0xzz` is not a hex number",
    );
    refused(
        &["decode", "cmd", "0x0", "0"],
        "unknown command opcode 0x00",
    );
    refused(
        &["decode", "evt", "0xff", "0", "0", "0"],
        "unknown event type 0xff",
    );
    refused(
        &["decode", "cmd", "0x103", "0"],
        "CMD_CFGI_STE: RES0 bits 0x100 set in word 0",
    );
    refused(&["decode", "cmd", "0x403", "0"], "ILLEGAL");
    refused(&["decode", "reg", "CR9", "0"], "no register named `CR9`");
    refused(&["decode", "reg", "CR0", "0x100000000"], "does not fit");
    refused(&["decode", "widget", "0"], "unknown kind `widget`");
    refused(&["frobnicate"], "expected a subcommand");
}
