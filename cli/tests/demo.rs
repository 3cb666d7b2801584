//! `vsmmu demo` runs the whole stack on the embedded model with no setup.

use std::process::Command;

#[test]
fn the_demo_shows_dma_through_nested_translation_and_the_guest_s_fault() {
    let out = Command::new(env!("CARGO_BIN_EXE_vsmmu"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "guest    CMD_CFGI_ALL Range=0x1f",
        "physical CMD_TLBI_NH_ALL VMID=0x1",
        "Config=NESTED",
        "\"hello from domain 1, vSID 8\"",
        "\"hello from domain 1, vSID 16\"",
        "the guest finds at IPA 0x40801100: \"written by the device\"",
        "physical CMD_TLBI_NH_VA VMID=0x1 ASID=0x1 Addr=0x10000000 Leaf=1",
        "guest event queue: F_TRANSLATION StreamID=0x8 RnW=1 CLASS=IN InputAddr=0x10000000",
        "register read (IDR0)",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}
