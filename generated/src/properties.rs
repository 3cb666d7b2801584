//! Properties of the generated decoders, checked by the fuzz targets and, on
//! stable, by `cargo test` replaying the committed seed corpus.
//!
//! Each function takes raw fuzzer bytes and panics (the fuzzer's signal) when
//! a property does not hold. They are not for production paths.

use core::fmt::Write;

use crate::cmd::Command;
use crate::evt::Event;
use crate::mmio::{mmio_read, mmio_write, MmioHandlers};
use crate::regs::{CmdqProd, Cr0, EventqCons, Gbpa, Gbpmpam, Gerrorn, Gmpam};
use crate::structs::{Cd, Ste};
use crate::{
    DecodeError, FieldInfo, Half, Record, Register, RegisterBank, RegisterType, WriteEffect,
    Written,
};

/// Words from the first `N * 8` bytes (missing bytes read as zero).
fn words<const N: usize>(data: &[u8]) -> [u64; N] {
    let mut w = [0u64; N];
    for (i, b) in data.iter().take(N * 8).enumerate() {
        w[i / 8] |= (*b as u64) << ((i % 8) * 8);
    }
    w
}

/// A sink for `Display`: formatting must never panic, whatever the value.
struct Sink(usize);

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn shows(v: &impl core::fmt::Display, d: &impl core::fmt::Debug) {
    let mut s = Sink(0);
    let _ = write!(s, "{v} {d:?} {v:#}");
    assert!(s.0 > 0);
}

/// Every field reads back what was written to it, and writing a field's
/// current value changes nothing.
fn fields_round_trip(fields: &[FieldInfo], w: &[u64]) {
    for f in fields {
        let v = f.get(w);
        let placed = if f.address { v } else { v << f.lo };
        assert_eq!(placed & !f.mask(), 0, "{} reads outside its bits", f.name);
        let word = w.get(f.word as usize).copied().unwrap_or(0);
        assert_eq!(word & f.mask(), placed, "{} does not read back", f.name);
    }
}

/// A RES0 rejection must name bits that are really set and really RES0.
fn res0_is_real(err: DecodeError, w: &[u64], res0: &[u64]) {
    if let DecodeError::Res0 { word, bits, .. } = err {
        assert_ne!(bits, 0, "RES0 error without bits");
        assert_eq!(w[word] & bits, bits, "RES0 bits reported but not set");
        assert_eq!(res0[word] & bits, bits, "reported bits are not RES0");
        for (i, (wi, ri)) in w.iter().zip(res0).enumerate().take(word) {
            assert_eq!(wi & ri, 0, "an earlier word {i} had RES0 bits set");
        }
    }
}

/// Commands: decode -> encode is the identity; rejections are justified.
pub fn command(data: &[u8]) {
    let w = words::<2>(data);
    match Command::decode(w) {
        Ok(c) => {
            assert_eq!(c.encode(), w, "decode/encode is not the identity");
            assert_eq!(c.code() as u64, w[0] & 0xff);
            fields_round_trip(c.as_record().fields(), &w);
            shows(&c, &c);
            let _ = c.illegal_local();
            let _ = c.illegal(&RegisterBank::at_reset());
        }
        Err(DecodeError::UnknownOpcode { opcode }) => {
            assert_eq!(opcode as u64, w[0] & 0xff);
            // Any command of this opcode would have decoded (RES0 errors aside).
            assert!(
                Command::decode([w[0] & 0xff, 0]).is_err(),
                "opcode {opcode:#x} is known after all"
            );
        }
        Err(e @ DecodeError::Res0 { .. }) => {
            let clean =
                Command::decode([w[0] & 0xff, 0]).expect("a known opcode with zero fields decodes");
            let res0 = res0_of(clean.as_record());
            res0_is_real(e, &w, &res0);
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// The RES0 masks of a record kind: bits that no field (nor the code byte) covers.
fn res0_of(r: &dyn Record) -> [u64; 8] {
    let mut used = [0u64; 8];
    used[0] = 0xff;
    for f in r.fields() {
        if let Some(u) = used.get_mut(f.word as usize) {
            *u |= f.mask();
        }
    }
    used.map(|u| !u)
}

/// Event records: as for commands.
pub fn event(data: &[u8]) {
    let w = words::<4>(data);
    match Event::decode(w) {
        Ok(e) => {
            assert_eq!(e.encode(), w);
            fields_round_trip(e.as_record().fields(), &w);
            shows(&e, &e);
        }
        Err(DecodeError::UnknownEvent { id }) => {
            assert_eq!(id as u64, w[0] & 0xff);
            assert!(Event::decode([w[0] & 0xff, 0, 0, 0]).is_err());
        }
        Err(e @ DecodeError::Res0 { .. }) => {
            let clean = Event::decode([w[0] & 0xff, 0, 0, 0])
                .expect("a known type with zero fields decodes");
            res0_is_real(e, &w, &res0_of(clean.as_record()));
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Structures: decode -> encode is the identity, setters write back in place.
fn structure<T: Record + Copy + core::fmt::Display + core::fmt::Debug>(
    w: [u64; 8],
    decoded: Result<T, DecodeError>,
    res0: [u64; 8],
) {
    match decoded {
        Ok(v) => {
            assert_eq!(v.words(), &w[..]);
            fields_round_trip(v.fields(), &w);
            shows(&v, &v);
        }
        Err(e @ DecodeError::Res0 { .. }) => res0_is_real(e, &w, &res0),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

pub fn ste(data: &[u8]) {
    let w = words::<8>(data);
    structure(w, Ste::decode(w), Ste::RES0);
    if let Ok(s) = Ste::decode(w) {
        let _ = s.illegal(&RegisterBank::at_reset());
        // Rewriting every field with its own value changes nothing.
        let mut t = s;
        t.set_config(s.config());
        t.set_s1_context_ptr(s.s1_context_ptr());
        t.set_s2vmid(s.s2vmid());
        assert_eq!(t, s);
    }
}

pub fn cd(data: &[u8]) {
    let w = words::<8>(data);
    structure(w, Cd::decode(w), Cd::RES0);
    if let Ok(c) = Cd::decode(w) {
        let mut t = c;
        t.set_asid(c.asid());
        t.set_ttb0(c.ttb0());
        assert_eq!(t, c);
    }
}

/// A register file for tests and fuzzing: stored values, presented
/// identification values, and a record of the handlers called. Update
/// handshakes (GBPA, GMPAM, GBPMPAM) complete at once.
#[derive(Clone, Debug)]
pub struct Bank {
    pub regs: RegisterBank,
    pub ident: RegisterBank,
    pub handler_calls: usize,
    /// The last handler called, with the old and new register values.
    pub last_handler: Option<(&'static str, u64, u64)>,
}

impl Bank {
    /// Reset values everywhere; identification registers as given.
    pub fn new(ident: &[(Register, u64)]) -> Self {
        let mut b = Bank {
            regs: RegisterBank::at_reset(),
            ident: RegisterBank::at_reset(),
            handler_calls: 0,
            last_handler: None,
        };
        for (r, v) in ident {
            b.ident.set(*r, *v);
        }
        b
    }

    fn called(&mut self, name: &'static str, old: u64, new: u64) {
        self.handler_calls += 1;
        self.last_handler = Some((name, old, new));
    }
}

impl MmioHandlers for Bank {
    fn ident(&self, reg: Register) -> u64 {
        self.ident.get(reg)
    }
    fn load(&self, reg: Register) -> u64 {
        self.regs.get(reg)
    }
    fn store(&mut self, reg: Register, value: u64) {
        self.regs.set(reg, value)
    }
    fn write_cr0(&mut self, old: Cr0, new: Cr0) -> Written<Cr0> {
        self.called("write_cr0", old.raw(), new.raw());
        Written::mirrored(new)
    }
    // Update handshakes complete at once: the field reads back 0.
    fn write_gbpa(&mut self, old: Gbpa, new: Gbpa) -> Gbpa {
        self.called("write_gbpa", old.raw(), new.raw());
        new.with_update(false)
    }
    fn write_gmpam(&mut self, old: Gmpam, new: Gmpam) -> Gmpam {
        self.called("write_gmpam", old.raw(), new.raw());
        new.with_update(false)
    }
    fn write_gbpmpam(&mut self, old: Gbpmpam, new: Gbpmpam) -> Gbpmpam {
        self.called("write_gbpmpam", old.raw(), new.raw());
        new.with_update(false)
    }
    fn write_gerrorn(&mut self, old: Gerrorn, new: Gerrorn) -> Gerrorn {
        self.called("write_gerrorn", old.raw(), new.raw());
        new
    }
    fn write_cmdq_prod(&mut self, old: CmdqProd, new: CmdqProd) -> CmdqProd {
        self.called("write_cmdq_prod", old.raw(), new.raw());
        new
    }
    fn write_eventq_cons(&mut self, old: EventqCons, new: EventqCons) -> EventqCons {
        self.called("write_eventq_cons", old.raw(), new.raw());
        new
    }
}

/// MMIO: any sequence of accesses never panics, RAZ/WI is RAZ/WI, stored
/// values stay within the write mask, identification registers never change.
pub fn mmio(data: &[u8]) {
    let mut bank = Bank::new(&[]);
    // Present every optional register, so that all paths are reachable.
    for r in Register::ALL {
        if r.info().emulation == crate::Emulation::Ident {
            bank.ident.set(r, r.info().write_mask);
        }
    }
    for op in data.chunks_exact(14) {
        let page = (op[0] & 1) as u32;
        let offset = (u32::from_le_bytes([op[1], op[2], 0, 0]) & 0xfffc) | (op[3] & 3) as u32;
        let size = [1, 2, 4, 8][(op[4] & 3) as usize];
        let mut v = [0u8; 8];
        v.copy_from_slice(&op[5..13]);
        let value = u64::from_le_bytes(v);
        let access = crate::mmio::decode_access(page, offset, size);
        if op[13] & 1 == 0 {
            let got = mmio_read(&bank, page, offset, size);
            match access {
                crate::Access::RazWi => assert_eq!(got, 0, "RAZ offset {offset:#x} read non-zero"),
                crate::Access::Register { reg, half } => {
                    let info = reg.info();
                    assert_eq!(info.page as u32, page);
                    if half != Half::Full || info.width == 32 {
                        assert!(got <= 0xffff_ffff);
                    }
                }
            }
        } else {
            let before = bank.regs.clone();
            let effect = mmio_write(&mut bank, page, offset, size, value);
            match access {
                crate::Access::RazWi => {
                    assert_eq!(effect, WriteEffect::Ignored);
                    assert_eq!(bank.regs, before, "RAZ/WI write changed state");
                }
                crate::Access::Register { reg, .. } => {
                    if effect == WriteEffect::Ignored {
                        assert_eq!(bank.regs, before, "ignored write changed state");
                    } else {
                        assert!(reg.info().emulation.takes_writes());
                    }
                }
            }
        }
        for r in Register::ALL {
            let v = bank.regs.get(r);
            assert_eq!(
                v & !r.info().write_mask & !r.info().reset,
                0,
                "{} holds RES0 bits",
                r.info().name
            );
        }
    }
    let _ = bank.handler_calls;
}
