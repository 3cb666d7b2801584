//! `vsmmu`: the project's command-line tool.
//!
//! - `vsmmu demo` runs a scripted guest on the embedded model;
//! - `vsmmu decode KIND WORD...` decodes SMMUv3 words copied from a log;
//! - `vsmmu regen [--check]` rewrites (or checks) what is generated from spec/;
//! - `vsmmu spec fmt [--check]` / `vsmmu spec lint` keep spec/ canonical and
//!   saying each thing once.

mod decode;
mod demo;
mod regen;
mod replay;
mod spec;

use std::process::ExitCode;

const USAGE: &str = "\
usage:
  vsmmu demo
      a scripted Linux guest on the embedded SMMUv3 model: bring-up, attach,
      map, DMA, unmap, a fault; prints the trace and a summary
  vsmmu replay FILE
      run a guest trace (JSON: ram, devices, ops) against the vSMMU on the
      testbed; one JSON line per op that returns something
  vsmmu decode cmd|evt|ste|cd|l1std|l1cd|pri [--json] WORD...
      64-bit words in memory order, hex with or without 0x
      (e.g. vsmmu decode cmd 0x0000123400000003 0x1)
  vsmmu decode reg [--json] NAME|OFFSET VALUE
      a register by name (CR0) or offset in the 128 KiB frame (0x20, 0x100a8)
  vsmmu regen [--check] [--root DIR]
      write generated/expanded.rs and book/src/reference/ from spec/;
      --check exits 1 when what is committed is stale
  vsmmu spec fmt [--check] [--root DIR]
      rewrite spec/*.yaml in the canonical layout (key order, indentation,
      quoting; comments kept); --check exits 1 and names the files that differ
  vsmmu spec lint [--root DIR]
      report repeated value lists, unused fragments and enums, ACK registers
      that repeat their control register, and prose conditions without data";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("decode") => decode::run(&args[1..]),
        Some("regen") => regen::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("replay") => replay::run(&args[1..]),
        Some("spec") => spec::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(
            "expected a subcommand: demo, replay, decode, regen or spec (see `vsmmu --help`)"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vsmmu: {e}");
            ExitCode::from(1)
        }
    }
}
