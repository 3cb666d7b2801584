//! The hand-written vocabulary the generated code speaks: field tables,
//! decode errors, register descriptions and the formatting every value shares.
//! Nothing here knows a bit position: those all come from `spec/`.

use core::fmt;

/// One field of a value type, as the spec describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Spelled as the architecture spells it.
    pub name: &'static str,
    pub description: &'static str,
    /// 64-bit word index (0 for registers).
    pub word: u8,
    /// Lowest bit within the word.
    pub lo: u8,
    /// Width in bits.
    pub width: u8,
    /// The value is an address kept in place (not shifted down).
    pub address: bool,
    /// Values the architecture names.
    pub values: &'static [(&'static str, u64)],
}

impl FieldInfo {
    /// The field's bits within its word.
    pub const fn mask(&self) -> u64 {
        let ones = if self.width >= 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        ones << self.lo
    }

    /// The field's value in `words`: shifted down, or in place for addresses.
    /// A word index past the slice reads as zero.
    pub fn get(&self, words: &[u64]) -> u64 {
        let w = words.get(self.word as usize).copied().unwrap_or(0) & self.mask();
        if self.address {
            w
        } else {
            w >> self.lo
        }
    }

    /// The bits of `fields` in each of `N` words: the mask of several
    /// fields of one record (a field past the last word adds nothing).
    pub const fn mask_words<const N: usize>(fields: &[FieldInfo]) -> [u64; N] {
        let mut m = [0u64; N];
        let mut i = 0;
        while i < fields.len() {
            let f = &fields[i];
            if (f.word as usize) < N {
                m[f.word as usize] |= f.mask();
            }
            i += 1;
        }
        m
    }

    /// The architecture's name of `value`, if it has one.
    pub fn value_name(&self, value: u64) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(_, v)| *v == value)
            .map(|(n, _)| *n)
    }
}

/// A condition under which the architecture makes a command or structure ILLEGAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalRule {
    /// The condition as written in the spec.
    pub condition: &'static str,
    /// Why, in the architecture's terms.
    pub why: &'static str,
    /// Whether the condition reads ID registers (and so depends on the SMMU).
    pub uses_registers: bool,
}

impl fmt::Display for IllegalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ILLEGAL: {} ({})", self.why, self.condition)
    }
}

/// Why raw words are not a value of the expected kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No command has this opcode: CERROR_ILL.
    UnknownOpcode { opcode: u8 },
    /// No event record has this type.
    UnknownEvent { id: u8 },
    /// The words are a different command or event than the type decoded.
    WrongCode {
        name: &'static str,
        expected: u8,
        found: u8,
    },
    /// Bits that the architecture makes RES0 are set.
    Res0 {
        name: &'static str,
        word: usize,
        bits: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownOpcode { opcode } => {
                write!(f, "unknown command opcode {opcode:#04x}")
            }
            DecodeError::UnknownEvent { id } => write!(f, "unknown event type {id:#04x}"),
            DecodeError::WrongCode {
                name,
                expected,
                found,
            } => write!(
                f,
                "{name} has code {expected:#04x}, the words have {found:#04x}"
            ),
            DecodeError::Res0 { name, word, bits } => {
                write!(f, "{name}: RES0 bits {bits:#x} set in word {word}")
            }
        }
    }
}

/// A decoded value with a name, a field table and raw words.
pub trait Record {
    /// The architecture's name (an alias such as CMD_CFGI_ALL where one applies).
    fn name(&self) -> &'static str;
    fn fields(&self) -> &'static [FieldInfo];
    fn words(&self) -> &[u64];
}

/// Register values, as conditions (ILLEGAL rules, `present_if`) read them.
pub trait RegisterValues {
    fn value(&self, reg: crate::Register) -> u64;
}

/// Register values in a plain array, indexed by [`crate::Register::index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterBank {
    pub values: [u64; crate::Register::COUNT],
}

impl RegisterBank {
    /// Every register at its reset value (UNKNOWN resets as zero).
    pub fn at_reset() -> Self {
        let mut values = [0; crate::Register::COUNT];
        for (v, info) in values.iter_mut().zip(crate::REGISTERS.iter()) {
            *v = info.reset;
        }
        RegisterBank { values }
    }

    #[inline]
    pub fn get(&self, reg: crate::Register) -> u64 {
        self.values[reg.index()]
    }

    pub fn set(&mut self, reg: crate::Register, value: u64) {
        self.values[reg.index()] = value;
    }

    /// The register `T` is the value type of, as that type.
    #[inline]
    pub fn read<T: RegisterType>(&self) -> T {
        T::from_raw(self.get(T::REGISTER))
    }

    /// Stores a register value in its register.
    #[inline]
    pub fn write<T: RegisterType>(&mut self, value: T) {
        self.set(T::REGISTER, value.raw())
    }
}

/// A register's value type (`Cr0`, `CmdqProd`, ...): it knows its register
/// and converts to and from the raw word, so that no caller pairs a word
/// with a type by hand.
pub trait RegisterType: Copy {
    const REGISTER: crate::Register;
    /// The value of a raw word (bits above the register's width dropped).
    fn from_raw(raw: u64) -> Self;
    fn raw(self) -> u64;
}

/// What a write handler of a register with an ACK register decides: the
/// value the register keeps and the value its ACK register shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written<T> {
    pub value: T,
    pub ack: T,
}

impl<T: Copy> Written<T> {
    /// Kept as written and acknowledged at once.
    pub fn mirrored(value: T) -> Self {
        Written { value, ack: value }
    }
}

impl RegisterValues for RegisterBank {
    fn value(&self, reg: crate::Register) -> u64 {
        self.get(reg)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegAccess {
    ReadOnly,
    ReadWrite,
}

/// How the generated MMIO dispatch treats a register (`emulation:` in the spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Emulation {
    /// Read-only identification value presented by the implementation.
    Ident,
    /// Stored; a write stores the masked value and calls `on_write` if any.
    Plain,
    /// Stored; a write calls its handler, then is mirrored into its ACK register.
    Control,
    /// The ACK mirror of a control register; read-only.
    Ack,
    /// Read-only state the implementation updates.
    Status,
    /// GERROR: read-only, toggled by the implementation to raise an error.
    Gerror,
    /// GERRORN: written by software to acknowledge errors.
    Gerrorn,
    /// A queue base register.
    QueueBase,
    /// A queue PROD or CONS pointer.
    QueuePointer,
}

impl Emulation {
    /// Whether a guest write can change the stored value.
    pub const fn takes_writes(self) -> bool {
        matches!(
            self,
            Emulation::Plain
                | Emulation::Control
                | Emulation::Gerrorn
                | Emulation::QueueBase
                | Emulation::QueuePointer
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRole {
    Prod,
    Cons,
}

/// A register as the spec describes it.
#[derive(Clone, Copy, Debug)]
pub struct RegInfo {
    /// Name without the `SMMU_` prefix.
    pub name: &'static str,
    pub spec: &'static str,
    pub description: &'static str,
    pub page: u8,
    pub offset: u32,
    /// 32 or 64.
    pub width: u8,
    pub access: RegAccess,
    pub reset: u64,
    /// False where the architecture says the reset value is UNKNOWN.
    pub reset_known: bool,
    /// Union of the fields.
    pub write_mask: u64,
    pub emulation: Emulation,
    pub ack: Option<crate::Register>,
    pub on_write: Option<&'static str>,
    pub queue: Option<&'static str>,
    pub role: Option<QueueRole>,
    pub writable_if: Option<&'static str>,
    pub present_if: Option<&'static str>,
    pub fields: &'static [FieldInfo],
}

/// Bytes of one page of the SMMU's register frame (§6.1: 64 KiB pages).
pub const PAGE_SIZE: u32 = 0x1_0000;
/// Bytes of the register frame: page 0 and page 1.
pub const FRAME_SIZE: u32 = 2 * PAGE_SIZE;

/// A frame offset as (page, offset within the page), as
/// [`crate::mmio::decode_access`] takes it.
pub const fn split_frame_offset(offset: u32) -> (u32, u32) {
    (offset / PAGE_SIZE, offset % PAGE_SIZE)
}

impl RegInfo {
    /// Offset within the frame.
    pub const fn frame_offset(&self) -> u32 {
        self.page as u32 * PAGE_SIZE + self.offset
    }
}

impl crate::Register {
    /// The register of this name (without `SMMU_`), case-insensitively.
    pub fn by_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("SMMU_").unwrap_or(name);
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.info().name.eq_ignore_ascii_case(name))
    }

    /// The register that starts at this offset of the 128 KiB frame.
    pub fn at_frame_offset(offset: u32) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.info().frame_offset() == offset)
    }
}

/// Which half of a 64-bit register an access reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// The whole register (a 32-bit register, or a 64-bit access).
    Full,
    /// Bits [31:0] of a 64-bit register.
    Low,
    /// Bits [63:32] of a 64-bit register (at offset + 4).
    High,
}

impl Half {
    /// What a read of this half returns from the whole register value.
    pub const fn extract(self, value: u64) -> u64 {
        match self {
            Half::Full => value,
            Half::Low => value & 0xffff_ffff,
            Half::High => value >> 32,
        }
    }

    /// The whole register after writing `value` to this half of `old`.
    pub const fn merge(self, old: u64, value: u64) -> u64 {
        match self {
            Half::Full => value,
            Half::Low => (old & !0xffff_ffff) | (value & 0xffff_ffff),
            Half::High => (old & 0xffff_ffff) | (value << 32),
        }
    }
}

/// Where a trapped access goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Register {
        reg: crate::Register,
        half: Half,
    },
    /// Reads as zero, writes ignored.
    RazWi,
}

/// Whether a trapped write changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteEffect {
    Stored,
    /// RAZ/WI offset or size, read-only register, absent register, or a
    /// register the architecture makes read-only in the current state.
    Ignored,
}

fn write_value(f: &mut fmt::Formatter<'_>, info: &FieldInfo, v: u64) -> fmt::Result {
    match info.value_name(v) {
        Some(n) => f.write_str(n),
        None if info.width == 1 && !info.address => write!(f, "{v}"),
        None => write!(f, "{v:#x}"),
    }
}

/// `NAME FIELD=value ...`: the fields that are not zero (every field with `{:#}`).
pub fn display_fields(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    fields: &[FieldInfo],
    words: &[u64],
) -> fmt::Result {
    f.write_str(name)?;
    let all = f.alternate();
    for info in fields {
        let v = info.get(words);
        if v != 0 || all {
            write!(f, " {}=", info.name)?;
            write_value(f, info, v)?;
        }
    }
    Ok(())
}

/// `NAME { FIELD: value, ... }` with every field.
pub fn debug_fields(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    fields: &[FieldInfo],
    words: &[u64],
) -> fmt::Result {
    write!(f, "{name} {{")?;
    for (i, info) in fields.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        write!(f, "{sep}{}: ", info.name)?;
        write_value(f, info, info.get(words))?;
    }
    f.write_str(" }")
}

/// Words from little-endian bytes (`N` words of 8 bytes each).
pub fn words_from_le<const B: usize, const N: usize>(b: &[u8; B]) -> [u64; N] {
    let mut w = [0u64; N];
    for (word, chunk) in w.iter_mut().zip(b.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
    }
    w
}

/// Little-endian bytes of words.
pub fn words_to_le<const B: usize, const N: usize>(w: &[u64; N]) -> [u8; B] {
    let mut b = [0u8; B];
    for (chunk, word) in b.chunks_exact_mut(8).zip(w.iter()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    b
}
