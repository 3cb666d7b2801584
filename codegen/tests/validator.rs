//! The validator on small specs: a good one expands, each broken one is
//! refused with an error naming the file and the entry.

use smmuv3_codegen::{expand_pretty, load_texts, SpecError};

const REGS: &str = r#"
register/IDR0:
  spec: "§6.3.1"
  description: Feature identification
  page: 0
  offset: 0x0
  width: 32
  access: ro
  reset: 0
  emulation: ident
  fields:
    - {name: S2P, bits: "0", description: Stage 2 implemented}
    - {name: S1P, bits: "1", description: Stage 1 implemented}
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
  on_write: write_cr0
  fields:
    - {name: SMMUEN, bits: "0", description: Enable}
    - {name: CMDQEN, bits: "3", description: Command queue enable}
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
    - {name: CMDQEN, bits: "3", description: Command queue enable}
register/STRTAB_BASE:
  spec: "§6.3.24"
  description: Stream table base
  page: 0
  offset: 0x80
  width: 64
  access: rw
  reset: unknown
  emulation: plain
  writable_if: "CR0.SMMUEN == 0 && CR0ACK.SMMUEN == 0"
  fields:
    - {name: ADDR, bits: "55:6", kind: address, description: Base address}
    - {name: RA, bits: "62", description: Read allocate hint}
"#;

const CMDS: &str = r#"
fragment/RANGE:
  spec: "§4.4.1.1"
  description: Range fields
  fields:
    - {name: NUM, word: 0, bits: "16:12", description: Number}
command/CMD_CFGI_STE:
  spec: "§4.3.1"
  description: Invalidate one STE
  opcode: 0x03
  fields:
    - {name: SSec, word: 0, bits: "10", description: Secure}
    - {name: SID, word: 0, bits: "63:32", description: StreamID}
    - {name: Leaf, word: 1, bits: "0", description: Leaf only}
  illegal:
    - {if: "SSec == 1", why: Secure from the NS queue}
command/CMD_TLBI_NH_VA:
  spec: "§4.4.2"
  description: Invalidate by VA
  opcode: 0x12
  include: [RANGE]
  fields:
    - {name: Address, word: 1, bits: "63:12", kind: address, description: VA}
  illegal:
    - {if: "IDR0.S1P == 0", why: no stage 1}
struct/L1STD:
  spec: "§5.1"
  description: Level-1 stream table descriptor
  words: 1
  fields:
    - {name: Span, word: 0, bits: "4:0", description: Span}
    - {name: L2Ptr, word: 0, bits: "55:6", kind: address, description: Level-2 table}
event/F_TRANSLATION:
  spec: "§7.3.12"
  description: Translation fault
  id: 0x10
  fields:
    - {name: StreamID, word: 0, bits: "63:32", description: StreamID}
"#;

fn files(regs: &str, cmds: &str) -> Vec<(String, String)> {
    vec![
        ("registers.yaml".to_string(), regs.to_string()),
        ("commands.yaml".to_string(), cmds.to_string()),
    ]
}

fn errors_of(regs: &str, cmds: &str) -> Vec<SpecError> {
    match load_texts(&files(regs, cmds)) {
        Ok(_) => panic!("the broken spec was accepted"),
        Err(e) => e,
    }
}

/// The one error expected, checked for its file, entry and message.
fn assert_refused(regs: &str, cmds: &str, file: &str, entry: &str, needle: &str) {
    let errs = errors_of(regs, cmds);
    assert!(
        errs.iter()
            .any(|e| e.file == file && e.entry == entry && e.message.contains(needle)),
        "expected {file}: {entry}: ...{needle}..., got:\n{}",
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_good_small_spec_expands_to_parseable_rust() {
    let spec = load_texts(&files(REGS, CMDS)).unwrap();
    assert_eq!(spec.registers.len(), 4);
    assert_eq!(spec.commands.len(), 2);
    let code = expand_pretty(&spec).unwrap();
    std::fs::write(std::env::temp_dir().join("mini_expanded.rs"), &code).unwrap();
    assert!(code.contains("pub struct CmdCfgiSte(pub [u64; 2])"));
    assert!(code.contains("pub const fn decode_access"));
    // The handler takes and returns typed values.
    assert!(code.contains("fn write_cr0("));
    assert!(code.contains("old: crate::regs::Cr0,"));
    assert!(code.contains(") -> crate::Written<crate::regs::Cr0>;"));
}

#[test]
fn errors_name_the_file_line_and_entry() {
    let broken = CMDS.replace(
        "bits: \"63:32\", description: StreamID}\n    - {name: Leaf",
        "bits: \"64:32\", description: StreamID}\n    - {name: Leaf",
    );
    let errs = errors_of(REGS, &broken);
    let text = errs[0].to_string();
    assert!(text.starts_with("spec/commands.yaml:"), "{text}");
    assert!(
        text.contains("command/CMD_CFGI_STE: field SID: bits 64:32 do not fit"),
        "{text}"
    );
}

#[test]
fn overlapping_fields_are_refused() {
    let broken = CMDS.replace(
        "bits: \"10\", description: Secure",
        "bits: \"40\", description: Secure",
    );
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "field SID: bits 63:32 overlap SSec",
    );
}

#[test]
fn a_field_over_the_opcode_byte_is_refused() {
    let broken = CMDS.replace(
        "bits: \"10\", description: Secure",
        "bits: \"7\", description: Secure",
    );
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "opcode/type byte",
    );
}

#[test]
fn duplicate_opcodes_are_refused() {
    let broken = CMDS.replace("opcode: 0x12", "opcode: 0x03");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_TLBI_NH_VA",
        "duplicate opcode 0x03",
    );
}

#[test]
fn duplicate_offsets_are_refused() {
    let broken = REGS.replace("offset: 0x24", "offset: 0x20");
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/CR0ACK",
        "overlaps register/CR0",
    );
}

#[test]
fn duplicate_names_across_files_are_refused() {
    let broken = format!("{CMDS}register/CR0:\n  spec: \"§1\"\n");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "register/CR0",
        "duplicate entry",
    );
}

#[test]
fn duplicate_field_names_are_refused() {
    let broken = REGS.replace(
        "{name: CMDQEN, bits: \"3\", description: Command queue enable}\nregister/CR0ACK",
        "{name: SMMUEN, bits: \"3\", description: Command queue enable}\nregister/CR0ACK",
    );
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "duplicate field name",
    );
}

#[test]
fn unknown_operands_in_conditions_are_refused() {
    let broken = CMDS.replace("IDR0.S1P == 0", "IDR0.S3P == 0");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_TLBI_NH_VA",
        "no field IDR0.S3P",
    );
    let broken = CMDS.replace("SSec == 1", "Secure == 1");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "no field Secure",
    );
}

#[test]
fn values_that_do_not_fit_are_refused() {
    let broken = CMDS.replace("SSec == 1", "SSec == 2");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "does not fit",
    );
    let broken = REGS.replace("description: Enable}\n    - {name: CMDQEN, bits: \"3\", description: Command queue enable}\nregister/CR0ACK",
        "description: Enable, values: {OFF: 0, ON: 2}}\n    - {name: CMDQEN, bits: \"3\", description: Command queue enable}\nregister/CR0ACK");
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "value ON = 0x2 does not fit",
    );
}

#[test]
fn reset_values_that_do_not_fit_are_refused() {
    let broken = REGS.replacen(
        "reset: 0\n  emulation: control",
        "reset: 0x4\n  emulation: control",
        1,
    );
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "reset 0x4 sets bits 0x4",
    );
}

#[test]
fn unknown_keys_and_classes_are_refused() {
    let broken = REGS.replace("emulation: plain", "emulation: magic");
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/STRTAB_BASE",
        "emulation `magic`",
    );
    let broken = REGS.replace("emulation: plain", "emulation: plain\n  colour: red");
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/STRTAB_BASE",
        "unknown field `colour`",
    );
}

#[test]
fn missing_includes_and_acks_are_refused() {
    let broken = CMDS.replace("include: [RANGE]", "include: [RANGES]");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_TLBI_NH_VA",
        "no fragment/RANGES",
    );
    let broken = REGS.replace("ack: CR0ACK", "ack: CR9ACK");
    assert_refused(
        &broken,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "ack: no register/CR9ACK",
    );
}

#[test]
fn bad_yaml_is_refused_with_its_line() {
    let broken = format!("{CMDS}\ncommand/CMD_X: [unclosed\n");
    let errs = errors_of(REGS, &broken);
    assert_eq!(errs[0].file, "commands.yaml");
    assert!(errs[0].line.is_some());
    assert!(errs[0].message.contains("not valid YAML"));
}

#[test]
fn a_section_reference_is_required() {
    let broken = CMDS.replace("spec: \"§4.3.1\"", "spec: \"somewhere\"");
    assert_refused(
        REGS,
        &broken,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "does not name a section",
    );
}

#[test]
fn the_macro_reports_every_problem_as_a_compile_error() {
    let broken = CMDS
        .replace("opcode: 0x12", "opcode: 0x03")
        .replace("SSec == 1", "Secure == 1");
    let errs = errors_of(REGS, &broken);
    assert!(
        errs.len() >= 2,
        "every problem, not just the first: {errs:?}"
    );
    let tokens = smmuv3_codegen::compile_errors(&errs, proc_macro2::Span::call_site()).to_string();
    assert_eq!(tokens.matches("compile_error").count(), errs.len());
    assert!(tokens.contains("spec/commands.yaml"));
    assert!(tokens.contains("command/CMD_TLBI_NH_VA: duplicate opcode 0x03"));
}

/// REGS with a feature-dependent field in CR0 and CR0ACK and a field of
/// STRTAB_BASE guarded on its own.
fn regs_with_field_conditions() -> String {
    REGS.replace(
        "    - {name: SMMUEN, bits: \"0\", description: Enable}\n",
        "    - {name: PRIQEN, bits: \"1\", description: PRI queue enable, present_if: \"IDR0.S2P == 1\"}\n    - {name: SMMUEN, bits: \"0\", description: Enable}\n",
    )
    .replace(
        "{name: RA, bits: \"62\", description: Read allocate hint}",
        "{name: RA, bits: \"62\", description: Read allocate hint, writable_if: \"CR0.CMDQEN == 0\"}",
    )
}

#[test]
fn field_conditions_expand_to_mask_functions() {
    let spec = load_texts(&files(&regs_with_field_conditions(), CMDS)).unwrap();
    let cr0 = spec.register("CR0").unwrap();
    assert!(cr0.fields.iter().any(|f| f.present_if.is_some()));
    let code = expand_pretty(&spec).unwrap();
    assert!(code.contains("pub fn present_mask(ident: &impl crate::RegisterValues) -> u32"));
    assert!(code.contains("pub fn writable_mask(regs: &impl crate::RegisterValues) -> u64"));
    assert!(code.contains("pub fn present_mask(self, ident: &impl crate::RegisterValues) -> u64"));
}

/// A broken field condition, refused with the file, line, entry and field.
fn assert_field_cond_refused(from: &str, to: &str, entry: &str, needle: &str) {
    let good = regs_with_field_conditions();
    let broken = good.replacen(from, to, 1);
    assert_ne!(broken, good, "`{from}` is not in the small spec");
    assert_refused(&broken, CMDS, "registers.yaml", entry, needle);
    let errs = errors_of(&broken, CMDS);
    let text = errs[0].to_string();
    let line = errs[0].line.expect("the entry's line");
    assert!(
        text.starts_with(&format!("spec/registers.yaml:{line}: {entry}: field ")),
        "{text}"
    );
}

#[test]
fn bad_field_conditions_are_refused() {
    let cr0 = "register/CR0";
    let present = "present_if: \"IDR0.S2P == 1\"";
    // An operand that does not exist, a value that does not fit, bad syntax.
    assert_field_cond_refused(
        present,
        "present_if: \"IDR0.S3P == 1\"",
        cr0,
        "field PRIQEN: present_if `IDR0.S3P == 1`: no field IDR0.S3P",
    );
    assert_field_cond_refused(
        present,
        "present_if: \"IDR9.S2P == 1\"",
        cr0,
        "no register/IDR9",
    );
    assert_field_cond_refused(
        present,
        "present_if: \"IDR0.S2P == 2\"",
        cr0,
        "does not fit",
    );
    assert_field_cond_refused(
        present,
        "present_if: \"IDR0.S2P = 1\"",
        cr0,
        "field PRIQEN: present_if `IDR0.S2P = 1`",
    );
    // A field of the entry itself, and a register that is not an ID register.
    assert_field_cond_refused(present, "present_if: \"S2P == 1\"", cr0, "REGISTER.FIELD");
    assert_field_cond_refused(
        present,
        "present_if: \"CR0ACK.SMMUEN == 0\"",
        cr0,
        "not an identification register",
    );
    let writable = "writable_if: \"CR0.CMDQEN == 0\"";
    assert_field_cond_refused(
        writable,
        "writable_if: \"CR0.CMDQ == 0\"",
        "register/STRTAB_BASE",
        "field RA: writable_if `CR0.CMDQ == 0`: no field CR0.CMDQ",
    );
}

#[test]
fn misplaced_field_conditions_are_refused() {
    let good = regs_with_field_conditions();
    // CR0ACK mirrors CR0: its PRIQEN needs the same condition.
    let at = good.find("register/CR0ACK").unwrap();
    let ack_differs = format!(
        "{}{}",
        &good[..at],
        good[at..].replacen("IDR0.S2P == 1", "IDR0.S1P == 1", 1)
    );
    assert_refused(
        &ack_differs,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "differs from CR0ACK.PRIQEN",
    );
    // An ACK field is a control field, bit for bit.
    let moved = format!(
        "{}{}",
        &good[..at],
        good[at..].replacen(
            "{name: CMDQEN, bits: \"3\"",
            "{name: CMDQEN, bits: \"4\"",
            1
        )
    );
    assert_refused(
        &moved,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "CR0ACK.CMDQEN mirrors no field of CR0 with the same bits",
    );
    // A read-only register has nothing to guard.
    let ro = good.replacen(
        "description: Command queue enable}\nregister/STRTAB_BASE",
        "description: Command queue enable, writable_if: \"CR0.SMMUEN == 0\"}\nregister/STRTAB_BASE",
        1,
    );
    assert_refused(
        &ro,
        CMDS,
        "registers.yaml",
        "register/CR0ACK",
        "ignores every write",
    );
    // Identification registers present what the runtime gives them.
    let ident = good.replacen(
        "description: Stage 1 implemented}",
        "description: Stage 1 implemented, present_if: \"IDR0.S2P == 1\"}",
        1,
    );
    assert_refused(
        &ident,
        CMDS,
        "registers.yaml",
        "register/IDR0",
        "identification registers",
    );
    // Commands, events and structures have no field conditions.
    let cmd = CMDS.replace(
        "description: Leaf only}",
        "description: Leaf only, present_if: \"IDR0.S1P == 1\"}",
    );
    assert_refused(
        &good,
        &cmd,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "only register fields have one",
    );
}

#[test]
fn field_errors_name_the_field_line() {
    let broken = CMDS.replace(
        "bits: \"63:32\", description: StreamID}",
        "bits: \"64:32\", description: StreamID}",
    );
    let errs = errors_of(REGS, &broken);
    let line = broken
        .lines()
        .position(|l| l.contains("name: SID"))
        .unwrap()
        + 1;
    assert_eq!(errs[0].line, Some(line), "{}", errs[0]);
}

#[test]
fn an_ack_register_shares_its_control_layout() {
    let shared = REGS.replace(
        "  emulation: ack\n  fields:\n    - {name: SMMUEN, bits: \"0\", description: Enable}\n    - {name: CMDQEN, bits: \"3\", description: Command queue enable}\n",
        "  emulation: ack\n  layout: CR0\n",
    );
    let spec = load_texts(&files(&shared, CMDS)).unwrap();
    let ack = spec.register("CR0ACK").unwrap();
    assert_eq!(ack.fields, spec.register("CR0").unwrap().fields);
    let both = shared.replace(
        "  layout: CR0\n",
        "  layout: CR0\n  fields:\n    - {name: SMMUEN, bits: \"0\", description: Enable}\n",
    );
    assert_refused(
        &both,
        CMDS,
        "registers.yaml",
        "register/CR0ACK",
        "has both `layout` and `fields`",
    );
    let not_ack = shared.replace(
        "  writable_if: \"CR0.SMMUEN",
        "  layout: CR0\n  writable_if: \"CR0.SMMUEN",
    );
    let not_ack = not_ack.replace(
        "  fields:\n    - {name: ADDR",
        "  xfields:\n    - {name: ADDR",
    );
    let not_ack = not_ack.replace("  xfields:\n    - {name: ADDR, bits: \"55:6\", kind: address, description: Base address}\n    - {name: RA, bits: \"62\", description: Read allocate hint}\n", "");
    assert_refused(
        &not_ack,
        CMDS,
        "registers.yaml",
        "register/STRTAB_BASE",
        "only an ack register shares",
    );
    let missing = shared.replace("layout: CR0", "layout: CR9");
    assert_refused(
        &missing,
        CMDS,
        "registers.yaml",
        "register/CR0ACK",
        "layout: no register/CR9",
    );
}

#[test]
fn a_control_register_may_have_no_handler() {
    let spec = load_texts(&files(&REGS.replace("  on_write: write_cr0\n", ""), CMDS)).unwrap();
    assert_eq!(spec.register("CR0").unwrap().on_write, None);
}

const ENUM: &str =
    "enum/SWITCH:\n  spec: \"§6.3.9\"\n  description: Off or on\n  values: {OFF: 0, ON: 1}\n";

#[test]
fn fields_take_named_value_lists() {
    let regs = format!(
        "{ENUM}{}",
        REGS.replace(
            "description: Command queue enable}",
            "description: Command queue enable, enum: SWITCH}"
        )
    );
    let spec = load_texts(&files(&regs, CMDS)).unwrap();
    let f = &spec.register("CR0").unwrap().fields[1];
    assert_eq!(
        f.values,
        vec![("OFF".to_string(), 0), ("ON".to_string(), 1)]
    );
    let code = expand_pretty(&spec).unwrap();
    assert!(code.contains("pub struct Switch(pub u8)"), "{code}");
    assert!(
        code.contains("pub use crate::values::Switch as Cr0Cmdqen;"),
        "{code}"
    );
    let unknown = regs.replace("enum: SWITCH}", "enum: SWITCHES}");
    assert_refused(
        &unknown,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "field CMDQEN: enum: no enum/SWITCHES",
    );
    let both = regs.replace("enum: SWITCH}", "enum: SWITCH, values: {OFF: 0}}");
    assert_refused(
        &both,
        CMDS,
        "registers.yaml",
        "register/CR0",
        "has both `values` and `enum: SWITCH`",
    );
    let widths = regs.replace(
        "{name: RA, bits: \"62\", description: Read allocate hint}",
        "{name: RA, bits: \"63:62\", description: Read allocate hint, enum: SWITCH}",
    );
    assert_refused(
        &widths,
        CMDS,
        "registers.yaml",
        "enum/SWITCH",
        "different widths",
    );
}

#[test]
fn arrays_of_fields_expand_with_their_stride() {
    let cmds = CMDS.replace(
        "    - {name: Leaf, word: 1, bits: \"0\", description: Leaf only}\n",
        "    - {name: \"P{n}\", word: 1, bits: \"5:4\", count: 3, stride: 4, description: \"Slot {n}\"}\n",
    );
    let spec = load_texts(&files(REGS, &cmds)).unwrap();
    let cmd = spec
        .commands
        .iter()
        .find(|c| c.name == "CMD_CFGI_STE")
        .unwrap();
    let slots: Vec<_> = cmd
        .fields
        .iter()
        .filter(|f| f.name.starts_with('P'))
        .map(|f| (f.name.as_str(), f.hi, f.lo, f.description.as_str()))
        .collect();
    assert_eq!(
        slots,
        [
            ("P0", 5, 4, "Slot 0"),
            ("P1", 9, 8, "Slot 1"),
            ("P2", 13, 12, "Slot 2")
        ]
    );
    let no_n = cmds.replace("name: \"P{n}\"", "name: P");
    assert_refused(
        REGS,
        &no_n,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "must contain `{n}`",
    );
    let too_far = cmds.replace("count: 3", "count: 16");
    assert_refused(
        REGS,
        &too_far,
        "commands.yaml",
        "command/CMD_CFGI_STE",
        "field P15: bits 65:64 do not fit",
    );
}

#[test]
fn a_fragment_brings_its_rules_after_the_includer_s_own() {
    let cmds = CMDS.replace(
        "    - {name: NUM, word: 0, bits: \"16:12\", description: Number}\n",
        "    - {name: NUM, word: 0, bits: \"16:12\", description: Number}\n  illegal:\n    - {if: \"NUM == 31\", why: too many}\n",
    );
    let spec = load_texts(&files(REGS, &cmds)).unwrap();
    let va = spec
        .commands
        .iter()
        .find(|c| c.name == "CMD_TLBI_NH_VA")
        .unwrap();
    let whys: Vec<_> = va.illegal.iter().map(|i| i.why.as_str()).collect();
    assert_eq!(whys, ["no stage 1", "too many"]);
}
