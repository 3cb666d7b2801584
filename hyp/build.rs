//! Links the hypervisor at its fixed load address with `link.ld`, and the
//! hostile guest (`src/bin/hostile`) where the Linux Image goes, with
//! `hostile.ld`.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rustc-link-arg-bin=vsmmu-hyp=-T{dir}/link.ld");
    println!("cargo:rustc-link-arg-bin=hostile=-T{dir}/hostile.ld");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=hostile.ld");
}
