//! Round trips and rejections over every command, event and structure the
//! spec defines, driven by the generated field tables (so a new YAML entry is
//! covered without editing this file).

use smmuv3::cmd::Command;
use smmuv3::evt::Event;
use smmuv3::structs::*;
use smmuv3::{DecodeError, FieldInfo};

/// Every opcode (or event type) that decodes with all fields zero.
fn known_codes(decode: impl Fn(u8) -> bool) -> Vec<u8> {
    (0..=255u8).filter(|c| decode(*c)).collect()
}

/// Words with every field at its maximum.
fn all_fields_set<const N: usize>(code: Option<u8>, fields: &[FieldInfo]) -> [u64; N] {
    let mut w = [0u64; N];
    for f in fields {
        w[f.word as usize] |= f.mask();
    }
    if let Some(c) = code {
        w[0] = (w[0] & !0xff) | c as u64;
    }
    w
}

fn res0_masks<const N: usize>(code: bool, fields: &[FieldInfo]) -> [u64; N] {
    let mut used = [0u64; N];
    if code {
        used[0] = 0xff;
    }
    for f in fields {
        used[f.word as usize] |= f.mask();
    }
    used.map(|u| !u)
}

/// Checks one kind: zero and all-ones fields round-trip, each field reads back
/// its maximum, and every single RES0 bit is refused with that bit named.
fn check_kind<const N: usize>(
    name: &str,
    code: Option<u8>,
    fields: &[FieldInfo],
    decode: impl Fn([u64; N]) -> Result<Vec<u64>, DecodeError>,
) {
    let mut zero = [0u64; N];
    if let Some(c) = code {
        zero[0] = c as u64;
    }
    assert_eq!(decode(zero).unwrap(), zero.to_vec(), "{name}: zero value");
    let full = all_fields_set::<N>(code, fields);
    assert_eq!(
        decode(full).unwrap(),
        full.to_vec(),
        "{name}: every field set"
    );
    for f in fields {
        let max = if f.address {
            f.mask()
        } else {
            f.mask() >> f.lo
        };
        assert_eq!(
            f.get(&full),
            max,
            "{name}.{} does not read back its maximum",
            f.name
        );
        assert_eq!(
            f.get(&zero),
            0,
            "{name}.{} is not zero in the zero value",
            f.name
        );
    }
    let res0 = res0_masks::<N>(code.is_some(), fields);
    for word in 0..N {
        for bit in 0..64 {
            if res0[word] & (1 << bit) == 0 {
                continue;
            }
            let mut w = full;
            w[word] |= 1 << bit;
            match decode(w) {
                Err(DecodeError::Res0 { word: ew, bits, .. }) => {
                    assert_eq!((ew, bits), (word, 1u64 << bit), "{name}: wrong RES0 report")
                }
                other => panic!("{name}: RES0 bit {bit} of word {word} accepted: {other:?}"),
            }
        }
    }
}

#[test]
fn every_command_round_trips_and_refuses_each_res0_bit() {
    let codes = known_codes(|c| Command::decode([c as u64, 0]).is_ok());
    assert!(codes.len() >= 25, "only {} commands", codes.len());
    for c in codes {
        let cmd = Command::decode([c as u64, 0]).unwrap();
        let rec = cmd.as_record();
        let name = rec.name();
        check_kind::<2>(name, Some(c), rec.fields(), |w| {
            Command::decode(w).map(|v| v.encode().to_vec())
        });
    }
}

#[test]
fn unknown_opcodes_are_refused_with_the_opcode() {
    for c in 0..=255u8 {
        match Command::decode([c as u64, 0]) {
            Ok(cmd) => assert_eq!(cmd.code(), c),
            Err(e) => assert_eq!(e, DecodeError::UnknownOpcode { opcode: c }),
        }
    }
    // Opcode 0 is Reserved (§4.1.3) and IMPLEMENTATION DEFINED 0x80-0x8F are not ours.
    assert!(Command::decode([0, 0]).is_err());
    assert!(Command::decode([0x80, 0]).is_err());
}

#[test]
fn every_event_round_trips_and_refuses_each_res0_bit() {
    let codes = known_codes(|c| Event::decode([c as u64, 0, 0, 0]).is_ok());
    assert!(codes.len() >= 19, "only {} events", codes.len());
    for c in codes {
        let evt = Event::decode([c as u64, 0, 0, 0]).unwrap();
        let rec = evt.as_record();
        check_kind::<4>(rec.name(), Some(c), rec.fields(), |w| {
            Event::decode(w).map(|v| v.encode().to_vec())
        });
    }
    assert_eq!(
        Event::decode([0xff, 0, 0, 0]),
        Err(DecodeError::UnknownEvent { id: 0xff })
    );
}

macro_rules! check_structs {
    ($($t:ty),* $(,)?) => {$(
        check_kind::<{ <$t>::WORDS }>(<$t>::NAME, None, <$t>::FIELDS, |w| {
            <$t>::decode(w).map(|v| v.encode().to_vec())
        });
    )*};
}

#[test]
fn every_structure_round_trips_and_refuses_each_res0_bit() {
    check_structs!(
        Ste,
        Cd,
        L1std,
        L1cd,
        PriqRecord,
        TtTable,
        TtS1BlockPage,
        TtS2BlockPage,
        TtS2Table
    );
}

#[test]
fn commands_of_the_wrong_kind_are_refused_by_typed_decoders() {
    use smmuv3::cmd::{CmdCfgiSte, CmdSync};
    let sync = CmdSync::new().encode();
    assert_eq!(
        CmdCfgiSte::decode(sync),
        Err(DecodeError::WrongCode {
            name: "CMD_CFGI_STE",
            expected: CmdCfgiSte::OPCODE,
            found: CmdSync::OPCODE
        })
    );
}

#[test]
fn bytes_and_words_agree() {
    let ste = Ste::new().with_v(true).with_s2vmid(0x1234);
    let bytes = ste.to_le_bytes();
    assert_eq!(Ste::from_le_bytes(&bytes), ste.encode());
    assert_eq!(bytes[0] & 1, 1, "V is bit 0 of the first byte");
}
