//! Conditions: `TERM && TERM ...` where a term is `OPERAND == N`,
//! `OPERAND != N` or `OPERAND > N` (a range check: a value wider than a
//! feature allows), or the single word `true`.
//!
//! An operand is a field of the entry itself (`SSec`) or a register field
//! (`IDR0.S1P`). The parser only checks the shape; `validate` checks that the
//! operands exist and that N fits the field.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A field of the entry the condition belongs to.
    Local(String),
    /// `REGISTER.FIELD`.
    Register(String, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub operand: Operand,
    pub op: Op,
    pub value: u64,
}

/// A conjunction of terms; no terms means `true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub terms: Vec<Term>,
}

pub fn parse_int(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        u64::from_str_radix(b, 2).ok()
    } else {
        t.parse().ok()
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn parse(text: &str) -> Result<Cond, String> {
    let text = text.trim();
    if text == "true" {
        return Ok(Cond { terms: Vec::new() });
    }
    let mut terms = Vec::new();
    for part in text.split("&&") {
        let part = part.trim();
        let (lhs, op, rhs) = if let Some((l, r)) = part.split_once("==") {
            (l, Op::Eq, r)
        } else if let Some((l, r)) = part.split_once("!=") {
            (l, Op::Ne, r)
        } else if let Some((l, r)) = part.split_once('>') {
            (l, Op::Gt, r)
        } else {
            return Err(format!(
                "`{part}` is not `OPERAND == N`, `OPERAND != N` or `OPERAND > N`"
            ));
        };
        let lhs = lhs.trim();
        let value = parse_int(rhs).ok_or_else(|| format!("`{}` is not an integer", rhs.trim()))?;
        let operand = match lhs.split_once('.') {
            Some((reg, field)) if is_ident(reg) && is_ident(field) => {
                Operand::Register(reg.to_string(), field.to_string())
            }
            None if is_ident(lhs) => Operand::Local(lhs.to_string()),
            _ => return Err(format!("`{lhs}` is not FIELD or REGISTER.FIELD")),
        };
        terms.push(Term { operand, op, value });
    }
    Ok(Cond { terms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conjunctions_of_register_and_local_terms() {
        let c = parse("IDR0.S1P == 0 && SSec != 0b1").unwrap();
        assert_eq!(
            c.terms,
            vec![
                Term {
                    operand: Operand::Register("IDR0".into(), "S1P".into()),
                    op: Op::Eq,
                    value: 0
                },
                Term {
                    operand: Operand::Local("SSec".into()),
                    op: Op::Ne,
                    value: 1
                },
            ]
        );
        assert!(parse("true").unwrap().terms.is_empty());
        assert_eq!(parse("SCALE > 31").unwrap().terms[0].op, Op::Gt);
    }

    #[test]
    fn rejects_what_is_not_a_comparison() {
        assert!(parse("SSec = 1").is_err());
        assert!(parse("SSec == x").is_err());
        assert!(parse("a.b.c == 1").is_err());
        assert!(parse("SSec == 1 || Leaf == 0").is_err());
    }
}
