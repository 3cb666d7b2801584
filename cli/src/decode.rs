//! `vsmmu decode`: words from a log -> the architecture's names for them.

use serde_json::{json, Map, Value};
use smmuv3::cmd::Command;
use smmuv3::evt::Event;
use smmuv3::structs::{Cd, L1cd, L1std, PriqRecord, Ste};
use smmuv3::{DecodeError, FieldInfo, Record, Register};

/// One hex number, with or without `0x`, `_` separators allowed.
fn parse_hex(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(&t);
    if digits.is_empty() || digits.len() > 16 {
        return Err(format!("`{text}` is not a 64-bit hex word"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| format!("`{text}` is not a hex number"))
}

/// Words from arguments; an argument may hold several, separated by spaces or commas.
fn parse_words(args: &[&str]) -> Result<Vec<u64>, String> {
    args.iter()
        .flat_map(|a| a.split([' ', ',', '\t']).filter(|s| !s.is_empty()))
        .map(parse_hex)
        .collect()
}

fn exact<const N: usize>(kind: &str, words: &[u64]) -> Result<[u64; N], String> {
    words.try_into().map_err(|_| {
        format!(
            "{kind} takes {N} 64-bit word{}, got {}",
            if N == 1 { "" } else { "s" },
            words.len()
        )
    })
}

fn field_json(fields: &[FieldInfo], words: &[u64]) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| (f.name.to_string(), json!(f.get(words))))
        .collect()
}

fn print(record: &dyn Record, json_out: bool) {
    if json_out {
        let v =
            json!({"name": record.name(), "fields": field_json(record.fields(), record.words())});
        println!("{v}");
    } else {
        println!("{}", Shown(record));
    }
}

/// Display of a `&dyn Record` through the generated field tables.
struct Shown<'a>(&'a dyn Record);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        smmuv3::display_fields(f, self.0.name(), self.0.fields(), self.0.words())
    }
}

fn err(e: DecodeError) -> String {
    e.to_string()
}

/// Decodes, prints, and refuses what the architecture makes ILLEGAL whatever
/// the SMMU (rules that read ID registers need an SMMU, so they are not applied).
fn show<T: Record>(
    decoded: Result<T, DecodeError>,
    illegal: impl Fn(&T) -> Option<&'static smmuv3::IllegalRule>,
    json_out: bool,
) -> Result<(), String> {
    let v = decoded.map_err(err)?;
    print(&v, json_out);
    match illegal(&v) {
        Some(rule) => Err(format!("{}: {rule}", v.name())),
        None => Ok(()),
    }
}

/// `Command`/`Event` as records, so they go through the same printing.
struct Dyn<'a>(&'a dyn Record);

impl Record for Dyn<'_> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn fields(&self) -> &'static [FieldInfo] {
        self.0.fields()
    }
    fn words(&self) -> &[u64] {
        self.0.words()
    }
}

fn decode_reg(args: &[&str], json_out: bool) -> Result<(), String> {
    let [which, value] = args else {
        return Err("reg takes a register name or offset, then a value".into());
    };
    let reg = match parse_hex(which) {
        Ok(off) if which.starts_with("0x") || which.chars().all(|c| c.is_ascii_digit()) => {
            u32::try_from(off)
                .ok()
                .and_then(Register::at_frame_offset)
                .ok_or_else(|| format!("no register starts at offset {off:#x}"))?
        }
        _ => Register::by_name(which).ok_or_else(|| format!("no register named `{which}`"))?,
    };
    let info = reg.info();
    let value = parse_hex(value)?;
    let width_mask = if info.width == 64 {
        u64::MAX
    } else {
        0xffff_ffff
    };
    if value & !width_mask != 0 {
        return Err(format!(
            "{} is a {}-bit register, {value:#x} does not fit",
            info.name, info.width
        ));
    }
    let words = [value];
    if json_out {
        println!(
            "{}",
            json!({"name": info.name, "fields": field_json(info.fields, &words)})
        );
    } else {
        println!("{}", RegShown(info.name, info.fields, &words));
    }
    let res0 = value & !info.write_mask & width_mask;
    if res0 != 0 {
        return Err(format!("{}: RES0 bits {res0:#x} set", info.name));
    }
    Ok(())
}

struct RegShown<'a>(&'a str, &'static [FieldInfo], &'a [u64]);

impl std::fmt::Display for RegShown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        smmuv3::display_fields(f, self.0, self.1, self.2)
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let json_out = args.iter().any(|a| a == "--json");
    let rest: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--json")
        .collect();
    let Some((kind, words)) = rest.split_first() else {
        return Err("decode needs a kind: cmd, evt, ste, cd, l1std, l1cd, pri or reg".into());
    };
    if *kind == "reg" {
        return decode_reg(words, json_out);
    }
    let w = parse_words(words)?;
    match *kind {
        "cmd" => {
            let c = Command::decode(exact::<2>("cmd", &w)?).map_err(err)?;
            show(Ok(Dyn(c.as_record())), |_| c.illegal_local(), json_out)
        }
        "evt" => {
            let e = Event::decode(exact::<4>("evt", &w)?).map_err(err)?;
            show(Ok(Dyn(e.as_record())), |_| e.illegal_local(), json_out)
        }
        "ste" => show(
            Ste::decode(exact::<8>("ste", &w)?),
            |v| v.illegal_local(),
            json_out,
        ),
        "cd" => show(
            Cd::decode(exact::<8>("cd", &w)?),
            |v| v.illegal_local(),
            json_out,
        ),
        "l1std" => show(
            L1std::decode(exact::<1>("l1std", &w)?),
            |v| v.illegal_local(),
            json_out,
        ),
        "l1cd" => show(
            L1cd::decode(exact::<1>("l1cd", &w)?),
            |v| v.illegal_local(),
            json_out,
        ),
        "pri" => show(
            PriqRecord::decode(exact::<2>("pri", &w)?),
            |v| v.illegal_local(),
            json_out,
        ),
        k => Err(format!(
            "unknown kind `{k}`: cmd, evt, ste, cd, l1std, l1cd, pri or reg"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_words_parse_with_and_without_prefix() {
        assert_eq!(
            parse_words(&["0x10", "ff", "0x0000_0001 2"]).unwrap(),
            vec![0x10, 0xff, 1, 2]
        );
        assert!(parse_words(&["0xzz"]).is_err());
        assert!(parse_words(&["0x11112222333344445"]).is_err());
        assert!(parse_words(&["0x"]).is_err());
    }
}
