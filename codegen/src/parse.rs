//! YAML text -> model, entry by entry, collecting every problem with the file
//! and entry it belongs to.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

use crate::error::SpecError;
use crate::expr::{self, Cond};
use crate::model::*;

/// An integer written as a YAML number or as `0x`/`0b` text.
#[derive(Clone, Copy, Debug)]
struct Num(u64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64().map(Num).ok_or_else(|| {
                serde::de::Error::custom(format!("{n} is not a non-negative integer"))
            }),
            Value::String(s) => expr::parse_int(&s)
                .map(Num)
                .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an integer"))),
            other => Err(serde::de::Error::custom(format!(
                "expected an integer, found {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(default)]
    word: Option<usize>,
    bits: Value,
    description: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    values: Option<serde_yaml::Mapping>,
    #[serde(default)]
    spec: Option<String>,
    #[serde(default)]
    present_if: Option<String>,
    #[serde(default)]
    writable_if: Option<String>,
    /// The name of an `enum/NAME` entry whose values the field takes.
    #[serde(default, rename = "enum")]
    enum_name: Option<String>,
    /// An array: `count` fields named `NAME{n}`, `stride` bits apart.
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    stride: Option<u32>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIllegal {
    #[serde(rename = "if")]
    cond: String,
    why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    name: String,
    #[serde(rename = "if")]
    cond: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    spec: String,
    description: String,
    #[serde(default)]
    opcode: Option<Num>,
    #[serde(default)]
    id: Option<Num>,
    #[serde(default)]
    words: Option<usize>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    illegal: Vec<RawIllegal>,
    #[serde(default)]
    aliases: Vec<RawAlias>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    spec: String,
    description: String,
    page: u32,
    offset: Num,
    width: u32,
    access: String,
    reset: Value,
    emulation: String,
    #[serde(default)]
    ack: Option<String>,
    #[serde(default)]
    layout: Option<String>,
    #[serde(default)]
    on_write: Option<String>,
    #[serde(default)]
    writable_if: Option<String>,
    #[serde(default)]
    present_if: Option<String>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    fields: Vec<RawField>,
}

/// One entry as found, before fragments are resolved.
struct Entry {
    origin: Origin,
    kind: String,
    name: String,
    value: Value,
    /// Line of each field's `name:`, for errors that point at the field.
    field_lines: BTreeMap<String, usize>,
}

/// The 1-based line of each `name: X` in the entry that starts at `entry_line`
/// (block `- name: X` or flow `- {name: X, ...}`), up to the next top-level key.
/// serde_yaml values carry no positions, so the text is scanned.
fn field_lines(text: &str, entry_line: Option<usize>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Some(start) = entry_line else {
        return out;
    };
    for (i, line) in text.lines().enumerate().skip(start) {
        if line.starts_with(|c: char| !c.is_whitespace() && c != '#') {
            break;
        }
        let t = line.trim_start();
        let t = t.strip_prefix('-').unwrap_or(t).trim_start();
        let t = t.strip_prefix('{').unwrap_or(t).trim_start();
        if let Some(rest) = t.strip_prefix("name:") {
            let name = rest.split([',', '}']).next().unwrap_or("");
            out.entry(name.trim().trim_matches('"').to_string())
                .or_insert(i + 1);
        }
    }
    out
}

fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_end();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
                || l.strip_prefix(&format!("\"{key}\""))
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|n| n + 1)
}

fn yaml_error_line(e: &serde_yaml::Error) -> Option<usize> {
    e.location().map(|l| l.line())
}

const KINDS: [&str; 6] = ["register", "command", "event", "struct", "fragment", "enum"];

fn split_entries(file: &str, text: &str, errors: &mut Vec<SpecError>) -> Vec<Entry> {
    let map: serde_yaml::Mapping = match serde_yaml::from_str(text) {
        Ok(Value::Mapping(m)) => m,
        Ok(Value::Null) => return Vec::new(),
        Ok(_) => {
            errors.push(SpecError::file(
                file,
                None,
                "the top level must be a mapping of `kind/NAME` entries",
            ));
            return Vec::new();
        }
        Err(e) => {
            errors.push(SpecError::file(
                file,
                yaml_error_line(&e),
                format!("not valid YAML: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str().map(str::to_string) else {
            errors.push(SpecError::file(
                file,
                None,
                format!("entry key {k:?} is not a string"),
            ));
            continue;
        };
        let origin = Origin {
            file: file.to_string(),
            line: line_of(text, &key),
            key: key.clone(),
        };
        match key.split_once('/') {
            Some((kind, name)) if KINDS.contains(&kind) && is_name(name) => out.push(Entry {
                field_lines: field_lines(text, origin.line),
                origin,
                kind: kind.to_string(),
                name: name.to_string(),
                value: v,
            }),
            _ => errors.push(SpecError::at(
                &origin,
                format!(
                    "key must be `KIND/NAME` with KIND one of {KINDS:?} and NAME an identifier"
                ),
            )),
        }
    }
    out
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn parse_bits(v: &Value) -> Result<(u32, u32), String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(format!("bits must be \"hi:lo\" or \"n\", found {v:?}")),
    };
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("bits `{text}`: `{s}` is not a bit number"))
    };
    let (hi, lo) = match text.split_once(':') {
        Some((h, l)) => (num(h)?, num(l)?),
        None => {
            let n = num(&text)?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(format!("bits `{text}`: high bit below low bit"));
    }
    Ok((hi, lo))
}

/// What a field needs from the rest of the spec while it is built.
struct FieldCtx<'a> {
    origin: &'a Origin,
    /// `name:` lines of the entry's fields (see [`field_lines`]).
    lines: &'a BTreeMap<String, usize>,
    enums: &'a Enums,
    /// `Some(0)` for registers (which have no `word`), `None` for records.
    default_word: Option<usize>,
}

/// A field as written, expanded: one field, or `count` fields of an array.
fn build_fields(raw: RawField, cx: &FieldCtx, errors: &mut Vec<SpecError>) -> Vec<Field> {
    let origin = cx.origin.with_line(cx.lines.get(&raw.name).copied());
    let ctx = |m: String| SpecError::at(&origin, format!("field {}: {m}", raw.name));
    let Some(one) = build_field(&raw, cx, &origin, errors) else {
        return Vec::new();
    };
    let (count, stride) = match (raw.count, raw.stride) {
        (None, None) => return vec![one],
        (None, Some(_)) => {
            errors.push(ctx("`stride` without `count`".into()));
            return vec![one];
        }
        (Some(n), stride) => (n, stride.unwrap_or(one.width())),
    };
    if !raw.name.contains("{n}") {
        errors.push(ctx("an array's name must contain `{n}`".into()));
        return Vec::new();
    }
    // Element n is the first one moved up by n strides, `{n}` spelled out.
    (0..count)
        .map(|n| Field {
            name: raw.name.replace("{n}", &n.to_string()),
            description: raw.description.replace("{n}", &n.to_string()),
            hi: one.hi + n * stride,
            lo: one.lo + n * stride,
            ..one.clone()
        })
        .collect()
}

fn build_field(
    raw: &RawField,
    cx: &FieldCtx,
    origin: &Origin,
    errors: &mut Vec<SpecError>,
) -> Option<Field> {
    let ctx = |m: String| SpecError::at(origin, format!("field {}: {m}", raw.name));
    let (hi, lo) = match parse_bits(&raw.bits) {
        Ok(b) => b,
        Err(e) => {
            errors.push(ctx(e));
            return None;
        }
    };
    let word = match (raw.word, cx.default_word) {
        (Some(w), None) => w,
        (None, Some(w)) => w,
        (Some(_), Some(_)) => {
            errors.push(ctx("registers have no `word`".into()));
            return None;
        }
        (None, None) => {
            errors.push(ctx("missing `word`".into()));
            return None;
        }
    };
    let address = match raw.kind.as_deref() {
        None => false,
        Some("address") => true,
        Some(k) => {
            errors.push(ctx(format!("unknown kind `{k}` (only `address`)")));
            false
        }
    };
    let _ = &raw.spec;
    let (values, values_of) = field_values(raw, cx.enums, &ctx, errors);
    // Field conditions belong to registers (default_word is Some only there).
    let mut cond = |text: &Option<String>, what: &str| {
        let text = text.as_ref()?;
        if cx.default_word.is_none() {
            errors.push(ctx(format!("{what}: only register fields have one")));
            return None;
        }
        build_cond(text, &format!("field {}: {what}", raw.name), origin, errors)
            .map(|c| (c, text.clone()))
    };
    let present_if = cond(&raw.present_if, "present_if");
    let writable_if = cond(&raw.writable_if, "writable_if");
    Some(Field {
        name: raw.name.clone(),
        description: raw.description.clone(),
        line: origin.line,
        word,
        hi,
        lo,
        address,
        values,
        values_of,
        present_if,
        writable_if,
    })
}

/// The named values of a field: its own `values:` list, or those of the
/// `enum/NAME` it names (never both).
fn field_values(
    raw: &RawField,
    enums: &Enums,
    ctx: &dyn Fn(String) -> SpecError,
    errors: &mut Vec<SpecError>,
) -> (Vec<(String, u64)>, Option<ValuesOf>) {
    match (&raw.values, &raw.enum_name) {
        (Some(_), Some(e)) => {
            errors.push(ctx(format!("has both `values` and `enum: {e}`")));
            (Vec::new(), None)
        }
        (None, Some(e)) => match enums.get(e) {
            Some(named) => (named.values.clone(), Some(ValuesOf::Enum(e.clone()))),
            None => {
                errors.push(ctx(format!("enum: no enum/{e}")));
                (Vec::new(), None)
            }
        },
        (Some(map), None) => {
            let (values, problems) = value_list(map);
            errors.extend(problems.into_iter().map(ctx));
            (values, None)
        }
        (None, None) => (Vec::new(), None),
    }
}

/// `NAME: integer` pairs, in the order written, and the problems found.
fn value_list(map: &serde_yaml::Mapping) -> (Vec<(String, u64)>, Vec<String>) {
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for (k, v) in map {
        let name = k
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{k:?}"));
        match serde_yaml::from_value::<Num>(v.clone()) {
            Ok(Num(n)) => values.push((name, n)),
            Err(e) => problems.push(format!("value {name}: {e}")),
        }
    }
    (values, problems)
}

fn build_cond(
    text: &str,
    what: &str,
    origin: &Origin,
    errors: &mut Vec<SpecError>,
) -> Option<Cond> {
    match expr::parse(text) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(SpecError::at(origin, format!("{what} `{text}`: {e}")));
            None
        }
    }
}

fn de<T: for<'de> Deserialize<'de>>(entry: &Entry, errors: &mut Vec<SpecError>) -> Option<T> {
    match serde_yaml::from_value(entry.value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(SpecError::at(&entry.origin, e.to_string()));
            None
        }
    }
}

fn build_record(
    entry: &Entry,
    raw: RawRecord,
    fragments: &Fragments,
    enums: &Enums,
    errors: &mut Vec<SpecError>,
) -> Option<Record> {
    let origin = &entry.origin;
    let kind = match entry.kind.as_str() {
        "command" => RecordKind::Command,
        "event" => RecordKind::Event,
        _ => RecordKind::Struct,
    };
    let (words, code) = match kind {
        RecordKind::Command => {
            if raw.id.is_some() || raw.words.is_some() {
                errors.push(SpecError::at(
                    origin,
                    "a command has `opcode`, not `id` or `words`",
                ));
            }
            (2, raw.opcode.map(|n| n.0))
        }
        RecordKind::Event => {
            if raw.opcode.is_some() || raw.words.is_some() {
                errors.push(SpecError::at(
                    origin,
                    "an event has `id`, not `opcode` or `words`",
                ));
            }
            (4, raw.id.map(|n| n.0))
        }
        RecordKind::Struct => {
            if raw.opcode.is_some() || raw.id.is_some() {
                errors.push(SpecError::at(
                    origin,
                    "a struct has `words`, not `opcode` or `id`",
                ));
            }
            match raw.words {
                Some(w) if (1..=16).contains(&w) => (w, None),
                Some(w) => {
                    errors.push(SpecError::at(
                        origin,
                        format!("words: {w} is not in 1..=16"),
                    ));
                    return None;
                }
                None => {
                    errors.push(SpecError::at(origin, "missing `words`"));
                    return None;
                }
            }
        }
    };
    let code = match (kind, code) {
        (RecordKind::Struct, _) => None,
        (_, Some(c)) if c <= 0xff => Some(c as u8),
        (_, Some(c)) => {
            errors.push(SpecError::at(
                origin,
                format!("code {c:#x} does not fit bits [7:0]"),
            ));
            return None;
        }
        (_, None) => {
            errors.push(SpecError::at(
                origin,
                if kind == RecordKind::Command {
                    "missing `opcode`"
                } else {
                    "missing `id`"
                },
            ));
            return None;
        }
    };
    let mut fields = Vec::new();
    let mut shared_rules = Vec::new();
    let included = raw
        .include
        .iter()
        .filter_map(|inc| match fragments.get(inc) {
            Some(frag) => Some(frag),
            None => {
                errors.push(SpecError::at(origin, format!("include: no fragment/{inc}")));
                None
            }
        });
    // A fragment brings its rules with its fields: each includer gets both.
    #[allow(clippy::needless_collect)]
    for frag in included.collect::<Vec<_>>() {
        let cx = FieldCtx {
            origin: &frag.origin,
            lines: &frag.field_lines,
            enums,
            default_word: None,
        };
        for f in &frag.fields {
            fields.extend(build_fields(f.clone(), &cx, errors));
        }
        shared_rules.extend(build_illegal(&frag.illegal, &frag.origin, errors));
    }
    let cx = FieldCtx {
        origin,
        lines: &entry.field_lines,
        enums,
        default_word: None,
    };
    for f in raw.fields {
        fields.extend(build_fields(f, &cx, errors));
    }
    // The entry's own rules first: the first rule that holds is the reason given.
    let mut illegal = build_illegal(&raw.illegal, origin, errors);
    illegal.extend(shared_rules);
    let aliases = raw
        .aliases
        .into_iter()
        .filter_map(|a| {
            build_cond(&a.cond, "alias", origin, errors).map(|cond| Alias { name: a.name, cond })
        })
        .collect();
    Some(Record {
        kind,
        name: entry.name.clone(),
        spec: raw.spec,
        description: raw.description,
        origin: origin.clone(),
        words,
        code,
        fields,
        illegal,
        aliases,
        includes: raw.include,
    })
}

fn build_illegal(raw: &[RawIllegal], origin: &Origin, errors: &mut Vec<SpecError>) -> Vec<Illegal> {
    raw.iter()
        .filter_map(|i| {
            build_cond(&i.cond, "illegal", origin, errors).map(|cond| Illegal {
                cond,
                text: i.cond.clone(),
                why: i.why.clone(),
            })
        })
        .collect()
}

/// A fragment is kept raw so that each includer builds (and reports) its
/// fields and rules.
struct Fragment {
    origin: Origin,
    field_lines: BTreeMap<String, usize>,
    fields: Vec<RawField>,
    illegal: Vec<RawIllegal>,
}

type Fragments = BTreeMap<String, Fragment>;

/// Named value lists (`enum/NAME`), by name.
type Enums = BTreeMap<String, NamedEnum>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnum {
    spec: String,
    description: String,
    values: serde_yaml::Mapping,
}

fn build_enum(entry: &Entry, raw: RawEnum, errors: &mut Vec<SpecError>) -> NamedEnum {
    let (values, problems) = value_list(&raw.values);
    errors.extend(
        problems
            .into_iter()
            .map(|m| SpecError::at(&entry.origin, m)),
    );
    NamedEnum {
        name: entry.name.clone(),
        spec: raw.spec,
        description: raw.description,
        origin: entry.origin.clone(),
        values,
    }
}

fn build_register(
    entry: &Entry,
    raw: RawRegister,
    enums: &Enums,
    errors: &mut Vec<SpecError>,
) -> Option<Register> {
    let origin = &entry.origin;
    let err = |errors: &mut Vec<SpecError>, m: String| errors.push(SpecError::at(origin, m));
    let access = match raw.access.as_str() {
        "ro" => Access::ReadOnly,
        "rw" => Access::ReadWrite,
        a => {
            err(errors, format!("access `{a}` is not `ro` or `rw`"));
            return None;
        }
    };
    let emulation = match Emulation::ALL.iter().find(|(n, _)| *n == raw.emulation) {
        Some((_, e)) => *e,
        None => {
            let names: Vec<_> = Emulation::ALL.iter().map(|(n, _)| *n).collect();
            err(
                errors,
                format!("emulation `{}` is not one of {names:?}", raw.emulation),
            );
            return None;
        }
    };
    let reset = match &raw.reset {
        Value::String(s) if s == "unknown" => None,
        v => match serde_yaml::from_value::<Num>(v.clone()) {
            Ok(Num(n)) => Some(n),
            Err(e) => {
                err(errors, format!("reset: {e} (or `unknown`)"));
                return None;
            }
        },
    };
    let role = match raw.role.as_deref() {
        None => None,
        Some("prod") => Some(Role::Prod),
        Some("cons") => Some(Role::Cons),
        Some(r) => {
            err(errors, format!("role `{r}` is not `prod` or `cons`"));
            None
        }
    };
    let cond = |t: &Option<String>, what: &str, errors: &mut Vec<SpecError>| {
        t.as_ref()
            .and_then(|t| build_cond(t, what, origin, errors).map(|c| (c, t.clone())))
    };
    let writable_if = cond(&raw.writable_if, "writable_if", errors);
    let present_if = cond(&raw.present_if, "present_if", errors);
    let cx = FieldCtx {
        origin,
        lines: &entry.field_lines,
        enums,
        default_word: Some(0),
    };
    if raw.layout.is_some() && !raw.fields.is_empty() {
        err(
            errors,
            "has both `layout` and `fields`: a shared layout is listed once".into(),
        );
    }
    let fields = raw
        .fields
        .into_iter()
        .flat_map(|f| build_fields(f, &cx, errors))
        .collect();
    Some(Register {
        name: entry.name.clone(),
        spec: raw.spec,
        description: raw.description,
        origin: origin.clone(),
        page: raw.page,
        offset: raw.offset.0 as u32,
        width: raw.width,
        access,
        reset,
        emulation,
        ack: raw.ack,
        layout: raw.layout,
        on_write: raw.on_write,
        writable_if,
        present_if,
        queue: raw.queue,
        role,
        fields,
    })
}

/// `layout: OTHER` gives a register OTHER's fields (an ACK register has its
/// control register's). Write conditions stay with OTHER: the register that
/// shares the layout takes no writes of its own through them.
fn share_layouts(registers: &mut [Register], errors: &mut Vec<SpecError>) {
    for i in 0..registers.len() {
        let Some(source) = registers[i].layout.clone() else {
            continue;
        };
        let Some(from) = registers.iter().find(|r| r.name == source) else {
            errors.push(SpecError::at(
                &registers[i].origin,
                format!("layout: no register/{source}"),
            ));
            continue;
        };
        if from.layout.is_some() {
            errors.push(SpecError::at(
                &registers[i].origin,
                format!("layout: {source} itself borrows a layout"),
            ));
            continue;
        }
        let fields = from
            .fields
            .iter()
            .map(|f| Field {
                writable_if: None,
                values_of: shared_values(&source, f),
                ..f.clone()
            })
            .collect();
        registers[i].fields = fields;
    }
}

/// Where a borrowed field's named values are defined: where the lender's are.
fn shared_values(owner: &str, f: &Field) -> Option<ValuesOf> {
    if f.values.is_empty() {
        return None;
    }
    let own = || ValuesOf::Field(owner.to_string(), f.name.clone());
    Some(f.values_of.clone().unwrap_or_else(own))
}

/// Parse every file; the result still has to be validated.
pub fn parse(files: &[(String, String)]) -> (Spec, Vec<SpecError>) {
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    for (file, text) in files {
        entries.extend(split_entries(file, text, &mut errors));
    }
    // Duplicate keys across files (serde_yaml already refuses them within one).
    let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
    for e in &entries {
        if let Some(first) = seen.get(&e.origin.key) {
            errors.push(SpecError::at(
                &e.origin,
                format!("duplicate entry, first defined in {}", first.file),
            ));
        } else {
            seen.insert(e.origin.key.clone(), e.origin.clone());
        }
    }
    let mut fragments = Fragments::new();
    let mut enums = Enums::new();
    for e in &entries {
        match e.kind.as_str() {
            "fragment" => {
                if let Some(raw) = de::<RawRecord>(e, &mut errors) {
                    let fragment = Fragment {
                        origin: e.origin.clone(),
                        field_lines: e.field_lines.clone(),
                        fields: raw.fields,
                        illegal: raw.illegal,
                    };
                    fragments.insert(e.name.clone(), fragment);
                }
            }
            "enum" => {
                if let Some(raw) = de::<RawEnum>(e, &mut errors) {
                    enums.insert(e.name.clone(), build_enum(e, raw, &mut errors));
                }
            }
            _ => {}
        }
    }
    let mut spec = Spec {
        files: files.to_vec(),
        ..Spec::default()
    };
    for e in &entries {
        match e.kind.as_str() {
            "register" => {
                if let Some(r) = de::<RawRegister>(e, &mut errors)
                    .and_then(|raw| build_register(e, raw, &enums, &mut errors))
                {
                    spec.registers.push(r);
                }
            }
            "command" | "event" | "struct" => {
                if let Some(r) = de::<RawRecord>(e, &mut errors)
                    .and_then(|raw| build_record(e, raw, &fragments, &enums, &mut errors))
                {
                    match r.kind {
                        RecordKind::Command => spec.commands.push(r),
                        RecordKind::Event => spec.events.push(r),
                        RecordKind::Struct => spec.structs.push(r),
                    }
                }
            }
            _ => {}
        }
    }
    share_layouts(&mut spec.registers, &mut errors);
    spec.enums = enums.into_values().collect();
    spec.fragments = fragments.into_keys().collect();
    spec.registers.sort_by_key(|r| (r.page, r.offset));
    spec.commands.sort_by_key(|r| r.code);
    spec.events.sort_by_key(|r| r.code);
    spec.structs.sort_by(|a, b| a.name.cmp(&b.name));
    (spec, errors)
}
