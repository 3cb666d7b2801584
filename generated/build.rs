// The proc macro reads ../spec at compile time and emits `include_str!` for
// every YAML file it read; watching the folder as well makes a *new* file in
// spec/ rebuild this crate.
fn main() {
    println!("cargo:rerun-if-changed=../spec");
    println!("cargo:rerun-if-changed=build.rs");
}
