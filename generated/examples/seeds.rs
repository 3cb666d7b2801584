//! Writes the fuzz seed corpus (`fuzz/seeds/<target>/`) from the generated
//! types: for every command, event and structure kind a valid encoding with
//! every field set, and one with a RES0 bit set; for the MMIO target, a
//! Linux-like bring-up sequence. Run: `cargo run -p smmuv3 --example seeds`.

use std::path::Path;

use smmuv3::cmd::Command;
use smmuv3::evt::Event;
use smmuv3::structs::{Cd, Ste};
use smmuv3::{FieldInfo, Register};

fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn full<const N: usize>(code: Option<u8>, fields: &[FieldInfo]) -> [u64; N] {
    let mut w = [0u64; N];
    for f in fields {
        w[f.word as usize] |= f.mask();
    }
    if let Some(c) = code {
        w[0] = (w[0] & !0xff) | c as u64;
    }
    w
}

/// The first RES0 bit of the words, set.
fn with_res0<const N: usize>(
    mut w: [u64; N],
    code: bool,
    fields: &[FieldInfo],
) -> Option<[u64; N]> {
    for word in 0..N {
        let mut used = if code && word == 0 { 0xff } else { 0 };
        for f in fields.iter().filter(|f| f.word as usize == word) {
            used |= f.mask();
        }
        if used != u64::MAX {
            w[word] |= 1 << (!used).trailing_zeros();
            return Some(w);
        }
    }
    None
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(name), data).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let dirs = [
        "decode_command",
        "decode_event",
        "decode_ste",
        "decode_cd",
        "mmio_dispatch",
        "typed_round_trip",
    ];
    for d in dirs {
        let _ = std::fs::remove_dir_all(root.join(d));
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for c in 0..=255u8 {
        if let Ok(cmd) = Command::decode([c as u64, 0]) {
            let rec = cmd.as_record();
            let f = full::<2>(Some(c), rec.fields());
            let dir = root.join("decode_command");
            write(&dir, &format!("{c:02x}-zero"), &bytes(&[c as u64, 0]));
            write(&dir, &format!("{c:02x}-full"), &bytes(&f));
            if let Some(bad) = with_res0(f, true, rec.fields()) {
                write(&dir, &format!("{c:02x}-res0"), &bytes(&bad));
            }
        }
        if let Ok(evt) = Event::decode([c as u64, 0, 0, 0]) {
            let rec = evt.as_record();
            let f = full::<4>(Some(c), rec.fields());
            let dir = root.join("decode_event");
            write(&dir, &format!("{c:02x}-full"), &bytes(&f));
            if let Some(bad) = with_res0(f, true, rec.fields()) {
                write(&dir, &format!("{c:02x}-res0"), &bytes(&bad));
            }
        }
    }
    write(
        &root.join("decode_command"),
        "unknown-opcode",
        &bytes(&[0x0b, 0]),
    );
    for (dir, fields) in [("decode_ste", Ste::FIELDS), ("decode_cd", Cd::FIELDS)] {
        let f = full::<8>(None, fields);
        write(&root.join(dir), "zero", &[0u8; 64]);
        write(&root.join(dir), "full", &bytes(&f));
        if let Some(bad) = with_res0(f, false, fields) {
            write(&root.join(dir), "res0", &bytes(&bad));
        }
    }
    // MMIO: each op is 14 bytes: page, offset (2, LE), offset low bits,
    // size code (0..3 = 1,2,4,8), value (8, LE), read(0)/write(1).
    let op = |reg: Register, size_code: u8, value: u64, write: bool| {
        let info = reg.info();
        let mut v = vec![
            info.page,
            info.offset as u8,
            (info.offset >> 8) as u8,
            0,
            size_code,
        ];
        v.extend_from_slice(&value.to_le_bytes());
        v.push(write as u8);
        v
    };
    let bring_up: Vec<u8> = [
        op(Register::CR0, 2, 0, true),
        op(Register::CR0ACK, 2, 0, false),
        op(Register::CR1, 2, 0xd75, true),
        op(Register::CR2, 2, 0x6, true),
        op(Register::STRTAB_BASE, 3, 0x4000_0000, true),
        op(Register::STRTAB_BASE_CFG, 2, 0x1_0210, true),
        op(Register::CMDQ_BASE, 3, 0x4001_0000 | 8, true),
        op(Register::CMDQ_PROD, 2, 0, true),
        op(Register::CMDQ_CONS, 2, 0, true),
        op(Register::CR0, 2, 0x8, true),
        op(Register::CMDQ_PROD, 2, 2, true),
        op(Register::GBPA, 2, 0x8010_0000, true),
        op(Register::GERRORN, 2, 1, true),
        op(Register::EVENTQ_CONS, 2, 0x8000_0000, true),
        op(Register::CR0, 2, 0xd, true),
        op(Register::STRTAB_BASE, 2, 0, true),
    ]
    .concat();
    write(&root.join("mmio_dispatch"), "linux-bring-up", &bring_up);
    write(&root.join("typed_round_trip"), "zeros", &[0u8; 512]);
    write(&root.join("typed_round_trip"), "ones", &[0xffu8; 512]);
    println!("wrote seeds under {}", root.display());
}
