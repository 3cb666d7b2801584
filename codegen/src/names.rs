//! How spec names become Rust names, in one place so that the emitters, the
//! validator and the book agree.

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::model::{Record, RecordKind};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// `CR0` -> `Cr0`, `CMD_TLBI_NH_VA` -> `CmdTlbiNhVa`, `STE` -> `Ste`.
pub fn type_name(spec_name: &str) -> String {
    spec_name.to_upper_camel_case()
}

/// The value type of a command, event or structure.
pub fn record_type(rec: &Record) -> String {
    type_name(&rec.name)
}

/// The `Command`/`Event` variant: `CMD_TLBI_NH_VA` -> `TlbiNhVa`, `F_TRANSLATION` -> `FTranslation`.
pub fn variant(rec: &Record) -> String {
    match rec.kind {
        RecordKind::Command => type_name(rec.name.strip_prefix("CMD_").unwrap_or(&rec.name)),
        _ => type_name(&rec.name),
    }
}

/// Getter name of a field: `S1ContextPtr` -> `s1_context_ptr`; keywords get a `_` suffix.
pub fn method(field: &str) -> String {
    let s = field.to_snake_case();
    if KEYWORDS.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

/// The enum type of a field with named values: `SteConfig`, `CmdSyncCs`.
pub fn enum_type(owner: &str, field: &str) -> String {
    format!("{}{}", type_name(owner), type_name(field))
}

/// A tock-registers enum value name: `S1_TRANS` -> `S1Trans`.
pub fn tock_value(value: &str) -> String {
    let v = value.to_upper_camel_case();
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{v}")
    } else {
        v
    }
}
