//! Checks that make a spec mistake a compile error instead of wrong code.
//!
//! Every check reports every offender, not just the first, so that one build
//! shows everything to fix.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SpecError;
use crate::expr::{Cond, Operand};
use crate::model::*;
use crate::names;
use crate::parse::is_name;

pub fn validate(spec: &Spec) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let mut type_names: BTreeMap<String, String> = BTreeMap::new();
    for r in &spec.registers {
        check_register(spec, r, &mut errors);
        check_type_name(
            &names::type_name(&r.name),
            &r.origin,
            &mut type_names,
            &mut errors,
        );
    }
    check_register_layout(spec, &mut errors);
    for rec in spec
        .commands
        .iter()
        .chain(&spec.events)
        .chain(&spec.structs)
    {
        check_record(spec, rec, &mut errors);
        check_type_name(
            &names::record_type(rec),
            &rec.origin,
            &mut type_names,
            &mut errors,
        );
    }
    check_codes(&spec.commands, "opcode", &mut errors);
    check_queues(spec, &mut errors);
    check_enums(spec, &mut errors);
    check_codes(&spec.events, "event type", &mut errors);
    errors
}

fn check_type_name(
    ty: &str,
    origin: &Origin,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Vec<SpecError>,
) {
    if let Some(first) = seen.get(ty) {
        errors.push(SpecError::at(
            origin,
            format!("its Rust type name `{ty}` is already used by {first}"),
        ));
    } else {
        seen.insert(ty.to_string(), origin.key.clone());
    }
}

fn check_common(spec_ref: &str, description: &str, origin: &Origin, errors: &mut Vec<SpecError>) {
    if !spec_ref.contains('§') && !spec_ref.starts_with("Arm ARM") {
        errors.push(SpecError::at(
            origin,
            format!("spec: `{spec_ref}` does not name a section (`§N.N` or `Arm ARM ...`)"),
        ));
    }
    if description.trim().is_empty() || description.contains('\n') {
        errors.push(SpecError::at(
            origin,
            "description must be one non-empty line",
        ));
    }
}

/// Fields: names, ranges, overlaps and named values. `limit` is the width of a word.
fn check_fields(
    fields: &[Field],
    words: usize,
    limit: u32,
    reserved_low: bool,
    origin: &Origin,
    errors: &mut Vec<SpecError>,
) {
    let mut field_names = BTreeSet::new();
    let mut methods = BTreeSet::new();
    let mut used: BTreeMap<usize, Vec<(&str, u64)>> = BTreeMap::new();
    if reserved_low {
        used.entry(0)
            .or_default()
            .push(("the opcode/type byte [7:0]", 0xff));
    }
    for f in fields {
        let here = origin.with_line(f.line);
        let at = |m: String| SpecError::at(&here, format!("field {}: {m}", f.name));
        if !is_name(&f.name) {
            errors.push(at("name is not an identifier".into()));
        }
        if !field_names.insert(f.name.as_str()) {
            errors.push(at("duplicate field name".into()));
        } else if !methods.insert(names::method(&f.name)) {
            errors.push(at(format!(
                "its accessor name `{}` clashes with another field's",
                names::method(&f.name)
            )));
        }
        if f.description.trim().is_empty() || f.description.contains('\n') {
            errors.push(at("description must be one non-empty line".into()));
        }
        if f.word >= words {
            errors.push(at(format!(
                "word {} is past the last word ({})",
                f.word,
                words - 1
            )));
            continue;
        }
        if f.hi >= limit {
            errors.push(at(format!(
                "bits {} do not fit a {limit}-bit word",
                f.bits_text()
            )));
            continue;
        }
        let slot = used.entry(f.word).or_default();
        for (other, mask) in slot.iter() {
            if mask & f.mask() != 0 {
                errors.push(at(format!("bits {} overlap {other}", f.bits_text())));
            }
        }
        slot.push((f.name.as_str(), f.mask()));
        let mut vnames = BTreeSet::new();
        let mut vvals = BTreeSet::new();
        for (name, v) in &f.values {
            if !is_name(name) {
                errors.push(at(format!("value name `{name}` is not an identifier")));
            }
            if !vnames.insert(name.as_str()) {
                errors.push(at(format!("duplicate value name {name}")));
            }
            if !vvals.insert(*v) {
                errors.push(at(format!("value {v:#x} is named twice")));
            }
            if *v > f.max() {
                errors.push(at(format!(
                    "value {name} = {v:#x} does not fit {} bits",
                    f.width()
                )));
            }
        }
    }
}

/// Check a condition's operands: local fields of `local`, register fields of the spec.
fn check_cond(
    spec: &Spec,
    cond: &Cond,
    text: &str,
    local: Option<&[Field]>,
    origin: &Origin,
    errors: &mut Vec<SpecError>,
) {
    for t in &cond.terms {
        let field = match &t.operand {
            Operand::Local(name) => match local {
                None => {
                    errors.push(SpecError::at(
                        origin,
                        format!("`{text}`: `{name}` must be written REGISTER.FIELD here"),
                    ));
                    continue;
                }
                Some(fields) => fields.iter().find(|f| &f.name == name),
            },
            Operand::Register(reg, name) => match spec.register(reg) {
                None => {
                    errors.push(SpecError::at(
                        origin,
                        format!("`{text}`: no register/{reg}"),
                    ));
                    continue;
                }
                Some(r) => r.fields.iter().find(|f| &f.name == name),
            },
        };
        match field {
            None => errors.push(SpecError::at(
                origin,
                format!("`{text}`: no field {}", operand_text(&t.operand)),
            )),
            Some(f) if t.value > f.max() => errors.push(SpecError::at(
                origin,
                format!(
                    "`{text}`: {:#x} does not fit the {}-bit field {}",
                    t.value,
                    f.width(),
                    f.name
                ),
            )),
            Some(_) => {}
        }
    }
}

pub(crate) fn operand_text(o: &Operand) -> String {
    match o {
        Operand::Local(n) => n.clone(),
        Operand::Register(r, f) => format!("{r}.{f}"),
    }
}

fn check_record(spec: &Spec, rec: &Record, errors: &mut Vec<SpecError>) {
    check_common(&rec.spec, &rec.description, &rec.origin, errors);
    check_fields(
        &rec.fields,
        rec.words,
        64,
        rec.code.is_some(),
        &rec.origin,
        errors,
    );
    for i in &rec.illegal {
        check_cond(
            spec,
            &i.cond,
            &i.text,
            Some(&rec.fields),
            &rec.origin,
            errors,
        );
        if i.why.trim().is_empty() {
            errors.push(SpecError::at(
                &rec.origin,
                format!("illegal `{}`: empty why", i.text),
            ));
        }
    }
    for a in &rec.aliases {
        if !is_name(&a.name) {
            errors.push(SpecError::at(
                &rec.origin,
                format!("alias `{}` is not a name", a.name),
            ));
        }
        check_cond(
            spec,
            &a.cond,
            &a.name,
            Some(&rec.fields),
            &rec.origin,
            errors,
        );
        if a.cond
            .terms
            .iter()
            .any(|t| matches!(t.operand, Operand::Register(..)))
        {
            errors.push(SpecError::at(
                &rec.origin,
                format!(
                    "alias {}: only the entry's own fields may be tested",
                    a.name
                ),
            ));
        }
    }
}

fn check_codes(recs: &[Record], what: &str, errors: &mut Vec<SpecError>) {
    let mut seen: BTreeMap<u8, &str> = BTreeMap::new();
    for r in recs {
        if let Some(c) = r.code {
            if let Some(first) = seen.insert(c, &r.origin.key) {
                errors.push(SpecError::at(
                    &r.origin,
                    format!("duplicate {what} {c:#04x}, also used by {first}"),
                ));
            }
        }
    }
}

fn check_register(spec: &Spec, r: &Register, errors: &mut Vec<SpecError>) {
    let err = |errors: &mut Vec<SpecError>, m: String| errors.push(SpecError::at(&r.origin, m));
    check_common(&r.spec, &r.description, &r.origin, errors);
    if r.page > 1 {
        err(errors, format!("page {} is not 0 or 1", r.page));
    }
    if r.width != 32 && r.width != 64 {
        err(errors, format!("width {} is not 32 or 64", r.width));
        return;
    }
    if !r.offset.is_multiple_of(r.width / 8) || r.offset >= 0x1_0000 {
        err(
            errors,
            format!(
                "offset {:#x} is not an aligned offset within the 64 KiB page",
                r.offset
            ),
        );
    }
    check_fields(&r.fields, 1, r.width, false, &r.origin, errors);
    if let Some(reset) = r.reset {
        if reset & !r.field_mask() != 0 {
            err(
                errors,
                format!(
                    "reset {reset:#x} sets bits {:#x} that no field covers",
                    reset & !r.field_mask()
                ),
            );
        }
    }
    let writes = r.emulation.takes_writes();
    match (r.access, writes) {
        (Access::ReadOnly, true) => err(
            errors,
            format!(
                "access ro with emulation {} (which takes writes)",
                r.emulation.yaml_name()
            ),
        ),
        (Access::ReadWrite, false) => err(
            errors,
            format!(
                "access rw with emulation {} (which ignores writes)",
                r.emulation.yaml_name()
            ),
        ),
        _ => {}
    }
    if let Some(h) = &r.on_write {
        if !writes {
            err(
                errors,
                format!("on_write {h} on a register that ignores writes"),
            );
        }
        let snake = h
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake || !h.starts_with("write_") {
            err(
                errors,
                format!("on_write `{h}` must be a snake_case name starting with write_"),
            );
        }
        let users = spec
            .registers
            .iter()
            .filter(|o| o.on_write.as_ref() == Some(h))
            .count();
        if users > 1 {
            err(errors, format!("on_write {h} is used by {users} registers"));
        }
    }
    match r.emulation {
        Emulation::Control => match r.ack.as_deref().map(|a| (a, spec.register(a))) {
            None => err(errors, "a control register needs ack".into()),
            Some((a, None)) => err(errors, format!("ack: no register/{a}")),
            Some((a, Some(ack))) if ack.emulation != Emulation::Ack => {
                err(errors, format!("ack: {a} is not of emulation ack"))
            }
            Some((a, Some(ack))) if ack.width != r.width => {
                err(errors, format!("ack: {a} is not as wide as {}", r.name))
            }
            _ => {}
        },
        _ if r.ack.is_some() => err(errors, "only a control register has ack".into()),
        _ => {}
    }
    match r.emulation {
        Emulation::QueueBase | Emulation::QueuePointer
            if r.queue.as_deref().is_none_or(|q| !is_name(q)) =>
        {
            err(errors, "a queue register needs `queue: NAME`".into());
        }
        Emulation::QueueBase | Emulation::QueuePointer => {}
        _ if r.queue.is_some() => err(errors, "only queue registers have `queue`".into()),
        _ => {}
    }
    if (r.emulation == Emulation::QueuePointer) != r.role.is_some() {
        err(
            errors,
            "`role` is required on queue_pointer registers and only there".into(),
        );
    }
    for (c, text) in r.writable_if.iter().chain(&r.present_if) {
        check_cond(spec, c, text, None, &r.origin, errors);
    }
    if let Some((c, text)) = &r.present_if {
        check_ident_operands(spec, c, text, &r.origin, errors);
    }
    for f in &r.fields {
        check_field_conds(spec, r, f, errors);
    }
    check_ack_fields(spec, r, errors);
    check_layout(spec, r, errors);
}

/// Only an ACK register shares a layout, and only its control register's.
fn check_layout(spec: &Spec, r: &Register, errors: &mut Vec<SpecError>) {
    let Some(source) = &r.layout else { return };
    let control = spec
        .registers
        .iter()
        .find(|c| c.ack.as_deref() == Some(r.name.as_str()));
    match control {
        _ if r.emulation != Emulation::Ack => errors.push(SpecError::at(
            &r.origin,
            format!("layout: {source}: only an ack register shares its control register's layout"),
        )),
        Some(c) if &c.name != source => errors.push(SpecError::at(
            &r.origin,
            format!(
                "layout: {source} is not {}, whose ack this register is",
                c.name
            ),
        )),
        _ => {}
    }
}

/// A field's `present_if` and `writable_if`, reported as `field NAME: ...`.
fn check_field_conds(spec: &Spec, r: &Register, f: &Field, errors: &mut Vec<SpecError>) {
    let mut found = Vec::new();
    if let Some((c, text)) = &f.present_if {
        if r.emulation == Emulation::Ident {
            // Conditions read identification registers raw: a condition on one of
            // their fields would make the raw and the guest-visible values differ.
            found.push(SpecError::at(
                &r.origin,
                format!("`{text}`: identification registers present what the runtime gives them"),
            ));
        }
        check_cond(spec, c, text, None, &r.origin, &mut found);
        check_ident_operands(spec, c, text, &r.origin, &mut found);
        prefix(&mut found, &format!("field {}: present_if ", f.name));
        errors.append(&mut found);
    }
    if let Some((c, text)) = &f.writable_if {
        check_cond(spec, c, text, None, &r.origin, &mut found);
        if !r.emulation.takes_writes() {
            found.push(SpecError::at(
                &r.origin,
                format!(
                    "`{text}`: emulation {} ignores every write",
                    r.emulation.yaml_name()
                ),
            ));
        }
        prefix(&mut found, &format!("field {}: writable_if ", f.name));
        errors.append(&mut found);
    }
}

fn prefix(errors: &mut [SpecError], what: &str) {
    for e in errors {
        e.message.insert_str(0, what);
    }
}

/// Presence is a matter of features: it may only read identification registers,
/// which do not change while the guest runs (so a mask computed once stays right).
fn check_ident_operands(
    spec: &Spec,
    cond: &Cond,
    text: &str,
    origin: &Origin,
    errors: &mut Vec<SpecError>,
) {
    for t in &cond.terms {
        if let Operand::Register(reg, _) = &t.operand {
            if spec
                .register(reg)
                .is_some_and(|r| r.emulation != Emulation::Ident)
            {
                errors.push(SpecError::at(
                    origin,
                    format!("`{text}`: {reg} is not an identification register (emulation ident)"),
                ));
            }
        }
    }
}

/// An ACK register mirrors its control register, so a field present in one is
/// present in the other under the same condition.
fn check_ack_fields(spec: &Spec, r: &Register, errors: &mut Vec<SpecError>) {
    let Some(ack) = r.ack.as_deref().and_then(|a| spec.register(a)) else {
        return;
    };
    for g in &ack.fields {
        let Some(f) = r
            .fields
            .iter()
            .find(|f| f.name == g.name && f.mask() == g.mask())
        else {
            errors.push(SpecError::at(
                &r.origin,
                format!(
                    "{}.{} mirrors no field of {} with the same bits",
                    ack.name, g.name, r.name
                ),
            ));
            continue;
        };
        let cond = |x: &Field| x.present_if.as_ref().map(|(c, _)| c.clone());
        let text = |x: &Field| x.present_if.as_ref().map(|(_, t)| t.clone());
        if cond(f) != cond(g) {
            errors.push(SpecError::at(
                &r.origin,
                format!(
                    "field {}: present_if {:?} differs from {}.{}'s {:?}",
                    f.name,
                    text(f),
                    ack.name,
                    g.name,
                    text(g)
                ),
            ));
        }
    }
}

/// Registers of one page must not overlap each other.
fn check_register_layout(spec: &Spec, errors: &mut Vec<SpecError>) {
    for (i, a) in spec.registers.iter().enumerate() {
        for b in &spec.registers[i + 1..] {
            let a_end = a.offset + a.width / 8;
            let b_end = b.offset + b.width / 8;
            if a.page == b.page && a.offset < b_end && b.offset < a_end {
                errors.push(SpecError::at(
                    &b.origin,
                    format!(
                        "page {} offset {:#x} overlaps register/{} at {:#x}",
                        b.page, b.offset, a.name, a.offset
                    ),
                ));
            }
        }
    }
    let acks: BTreeSet<&str> = spec
        .registers
        .iter()
        .filter_map(|r| r.ack.as_deref())
        .collect();
    for r in spec
        .registers
        .iter()
        .filter(|r| r.emulation == Emulation::Ack)
    {
        if !acks.contains(r.name.as_str()) {
            errors.push(SpecError::at(
                &r.origin,
                "no control register names it as its ack",
            ));
        }
    }
}

/// Each queue named by `queue:` has one base register and one register of each role.
fn check_queues(spec: &Spec, errors: &mut Vec<SpecError>) {
    let names: BTreeSet<&str> = spec
        .registers
        .iter()
        .filter_map(|r| r.queue.as_deref())
        .collect();
    for q in names {
        let of = |e: Emulation, role: Option<Role>| {
            spec.registers
                .iter()
                .filter(|r| r.queue.as_deref() == Some(q) && r.emulation == e && r.role == role)
                .count()
        };
        let first = spec
            .registers
            .iter()
            .find(|r| r.queue.as_deref() == Some(q))
            .expect("a queue named by a register");
        for (what, n) in [
            ("queue_base", of(Emulation::QueueBase, None)),
            ("prod", of(Emulation::QueuePointer, Some(Role::Prod))),
            ("cons", of(Emulation::QueuePointer, Some(Role::Cons))),
        ] {
            if n != 1 {
                errors.push(SpecError::at(
                    &first.origin,
                    format!("queue {q} has {n} {what} registers, not one"),
                ));
            }
        }
    }
}

/// A named value list: identifiers, and one width for every field that uses it
/// (the generated type holds the raw field).
fn check_enums(spec: &Spec, errors: &mut Vec<SpecError>) {
    let mut types = BTreeSet::new();
    for e in &spec.enums {
        check_common(&e.spec, &e.description, &e.origin, errors);
        if !types.insert(names::type_name(&e.name)) {
            errors.push(SpecError::at(
                &e.origin,
                format!(
                    "its Rust type name `{}` is already used",
                    names::type_name(&e.name)
                ),
            ));
        }
        if e.values.is_empty() {
            errors.push(SpecError::at(&e.origin, "no values"));
        }
        let widths: BTreeSet<u32> = spec.enum_users(&e.name).map(|(_, f)| f.width()).collect();
        if widths.len() > 1 {
            errors.push(SpecError::at(
                &e.origin,
                format!("its fields have different widths {widths:?}"),
            ));
        }
    }
}
