//! Things a valid spec should still not do (`vsmmu spec lint`): say the same
//! thing twice, keep what nothing uses, or state in prose a condition the
//! generated code cannot see.

use std::collections::BTreeMap;

use crate::model::*;

/// One finding, with the place it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: Option<usize>,
    pub entry: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec/{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}: {}", self.entry, self.message)
    }
}

fn finding(origin: &Origin, line: Option<usize>, message: String) -> Finding {
    Finding {
        file: origin.file.clone(),
        line: line.or(origin.line),
        entry: origin.key.clone(),
        message,
    }
}

/// Every finding, sorted by file and line.
pub fn lint(spec: &Spec) -> Vec<Finding> {
    let mut out = Vec::new();
    repeated_value_lists(spec, &mut out);
    unused_fragments(spec, &mut out);
    unused_enums(spec, &mut out);
    ack_layout_drift(spec, &mut out);
    prose_conditions(spec, &mut out);
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

/// Every field with its owner's origin.
fn all_fields(spec: &Spec) -> impl Iterator<Item = (&Origin, &Field)> {
    let regs = spec
        .registers
        .iter()
        .flat_map(|r| r.fields.iter().map(move |f| (&r.origin, f)));
    let recs = spec
        .records()
        .flat_map(|r| r.fields.iter().map(move |f| (&r.origin, f)));
    regs.chain(recs)
}

/// A value list as a comparable key: (value, name) pairs, sorted.
type ListKey = Vec<(u64, String)>;

fn list_key(values: &[(String, u64)]) -> ListKey {
    let mut k: Vec<(u64, String)> = values.iter().map(|(n, v)| (*v, n.clone())).collect();
    k.sort();
    k
}

/// A field's own value list that another field, or a named enum, also spells out.
fn repeated_value_lists(spec: &Spec, out: &mut Vec<Finding>) {
    let named: BTreeMap<_, &str> = spec
        .enums
        .iter()
        .map(|e| (list_key(&e.values), e.name.as_str()))
        .collect();
    let mut own: BTreeMap<ListKey, Vec<(&Origin, &Field)>> = BTreeMap::new();
    // Fragment fields appear once per includer: count each place once.
    let mut seen = std::collections::BTreeSet::new();
    for (origin, f) in all_fields(spec) {
        if f.values.is_empty()
            || f.values_of.is_some()
            || !seen.insert((f.line, &f.name, &origin.file))
        {
            continue;
        }
        own.entry(list_key(&f.values))
            .or_default()
            .push((origin, f));
    }
    for (key, users) in own {
        if let Some(e) = named.get(&key) {
            for (origin, f) in &users {
                let m = format!(
                    "field {}: lists the values of enum/{e}; say `enum: {e}`",
                    f.name
                );
                out.push(finding(origin, f.line, m));
            }
        } else if users.len() > 1 {
            let names: Vec<String> = users
                .iter()
                .map(|(o, f)| format!("{}.{}", o.key, f.name))
                .collect();
            let (origin, f) = users[0];
            let m = format!(
                "field {}: the same values are listed by {}; name them once (enum/NAME)",
                f.name,
                names.join(", ")
            );
            out.push(finding(origin, f.line, m));
        }
    }
}

fn unused_fragments(spec: &Spec, out: &mut Vec<Finding>) {
    for name in &spec.fragments {
        if !spec.records().any(|r| r.includes.contains(name)) {
            let origin = fragment_origin(spec, name);
            out.push(finding(&origin, None, "no entry includes it".into()));
        }
    }
}

/// A fragment's place, found in the file texts (the model keeps only its name).
fn fragment_origin(spec: &Spec, name: &str) -> Origin {
    let key = format!("fragment/{name}");
    let (file, line) = spec
        .files
        .iter()
        .find_map(|(file, text)| {
            text.lines()
                .position(|l| l.trim_end() == format!("{key}:"))
                .map(|n| (file.clone(), Some(n + 1)))
        })
        .unwrap_or_default();
    Origin { file, key, line }
}

fn unused_enums(spec: &Spec, out: &mut Vec<Finding>) {
    for e in &spec.enums {
        if spec.enum_users(&e.name).next().is_none() {
            out.push(finding(&e.origin, None, "no field uses it".into()));
        }
    }
}

/// An ACK register that lists fields of its own instead of `layout: CONTROL`.
fn ack_layout_drift(spec: &Spec, out: &mut Vec<Finding>) {
    for control in spec.registers.iter().filter(|r| r.ack.is_some()) {
        let Some(ack) = control.ack.as_deref().and_then(|a| spec.register(a)) else {
            continue;
        };
        if ack.layout.is_some() {
            continue;
        }
        let differs: Vec<&str> = control
            .fields
            .iter()
            .filter(|f| {
                !ack.fields
                    .iter()
                    .any(|g| g.name == f.name && g.mask() == f.mask())
            })
            .map(|f| f.name.as_str())
            .collect();
        let m = if differs.is_empty() {
            format!(
                "repeats the fields of {}; say `layout: {}`",
                control.name, control.name
            )
        } else {
            format!(
                "its fields drift from {}'s (missing or moved: {}); say `layout: {}`",
                control.name,
                differs.join(", "),
                control.name
            )
        };
        out.push(finding(&ack.origin, None, m));
    }
}

/// Phrases that state, in a description, a condition under which a field is
/// RES0 or reserved.
const PROSE_CONDITIONS: &[&str] = &[
    "res0 unless",
    "res0 when",
    "res0 if",
    "res0 without",
    "reserved when",
    "reserved unless",
    "reserved if",
    "raz/wi unless",
    "raz/wi when",
];

/// Whether the clause before a phrase names bits of the field ("bit [53] is
/// RES0 unless ..."): conditions are per field, so a rule for part of one stays
/// prose (and code in the walker).
fn about_some_bits(before: &str) -> bool {
    let clause = before.rsplit([';', '(', ',']).next().unwrap_or(before);
    clause.contains("bit [") || clause.contains("bits [")
}

/// A register field whose description gives such a condition but that has no
/// `present_if`/`writable_if`; a record field whose condition no `illegal` rule tests.
fn prose_conditions(spec: &Spec, out: &mut Vec<Finding>) {
    let says = |f: &Field| {
        let d = f.description.to_ascii_lowercase();
        PROSE_CONDITIONS
            .iter()
            .find(|p| d.find(*p).is_some_and(|at| !about_some_bits(&d[..at])))
            .copied()
    };
    for r in &spec.registers {
        for f in r
            .fields
            .iter()
            .filter(|f| !f.is_gated() && r.present_if.is_none())
        {
            if let Some(p) = says(f) {
                let m = format!("field {}: the description says \"{p} ...\" but the field has no present_if/writable_if", f.name);
                out.push(finding(&r.origin, f.line, m));
            }
        }
    }
    for rec in spec.records() {
        for f in &rec.fields {
            let tested = rec.illegal.iter().any(|i| {
                i.cond
                    .terms
                    .iter()
                    .any(|t| matches!(&t.operand, crate::expr::Operand::Local(n) if *n == f.name))
            });
            if let (Some(p), false) = (says(f), tested) {
                let m = format!("field {}: the description says \"{p} ...\" but no `illegal` rule tests the field", f.name);
                out.push(finding(&rec.origin, f.line, m));
            }
        }
    }
}
