//! The validated description of the architecture: what every emitter reads.
//!
//! Everything here has passed `validate`: fields fit their words and do not
//! overlap, names are unique, conditions name fields that exist.

use crate::expr::Cond;

/// Where an entry came from, for error messages and the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Path of the YAML file, as given to the loader (relative to the spec folder).
    pub file: String,
    /// The entry key, `kind/NAME`.
    pub key: String,
    /// 1-based line of the key in the file, when found.
    pub line: Option<usize>,
}

impl Origin {
    /// The same entry, at a more precise line (a field's) when one is known.
    pub fn with_line(&self, line: Option<usize>) -> Origin {
        Origin {
            line: line.or(self.line),
            ..self.clone()
        }
    }
}

/// Where a field's named values are defined when not by the field itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuesOf {
    /// An `enum/NAME` entry.
    Enum(String),
    /// A field of another register, whose layout this register shares.
    Field(String, String),
}

/// A value list named once (`enum/NAME`) and referenced by fields (`enum: NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedEnum {
    pub name: String,
    pub spec: String,
    pub description: String,
    pub origin: Origin,
    pub values: Vec<(String, u64)>,
}

/// One named bit range of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub description: String,
    /// 1-based line of the field's `name:` in its file, when found.
    pub line: Option<usize>,
    /// Index of the 64-bit word (always 0 for registers).
    pub word: usize,
    pub hi: u32,
    pub lo: u32,
    /// The value is an address kept in place: getters and setters do not shift.
    pub address: bool,
    /// Named values, in spec order (the field's own, or those of `values_of`).
    pub values: Vec<(String, u64)>,
    /// Set when the values are defined elsewhere (a named enum, a shared layout).
    pub values_of: Option<ValuesOf>,
    /// Registers only: the feature condition without which the field is RES0
    /// (reads as zero, writes have no effect).
    pub present_if: Option<(Cond, String)>,
    /// Registers only: the state in which a write may change the field
    /// (read-only otherwise).
    pub writable_if: Option<(Cond, String)>,
}

impl Field {
    pub fn width(&self) -> u32 {
        self.hi - self.lo + 1
    }

    /// The field's bits within its word.
    pub fn mask(&self) -> u64 {
        let ones = if self.width() == 64 {
            u64::MAX
        } else {
            (1u64 << self.width()) - 1
        };
        ones << self.lo
    }

    /// Largest raw value the field holds (unshifted).
    pub fn max(&self) -> u64 {
        self.mask() >> self.lo
    }

    /// Whether a write or read of the field depends on a condition.
    pub fn is_gated(&self) -> bool {
        self.present_if.is_some() || self.writable_if.is_some()
    }

    pub fn bits_text(&self) -> String {
        if self.hi == self.lo {
            format!("{}", self.lo)
        } else {
            format!("{}:{}", self.hi, self.lo)
        }
    }
}

/// A condition with the reason the architecture gives for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Illegal {
    pub cond: Cond,
    pub text: String,
    pub why: String,
}

/// Another architectural name for a form of a command (CMD_CFGI_ALL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub cond: Cond,
}

/// What a multi-word value is: a command, an event record or a structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Command,
    Event,
    Struct,
}

/// A command, an event record or an in-memory structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub name: String,
    pub spec: String,
    pub description: String,
    pub origin: Origin,
    pub words: usize,
    /// Opcode (commands) or event type (events): bits [7:0] of word 0.
    pub code: Option<u8>,
    pub fields: Vec<Field>,
    pub illegal: Vec<Illegal>,
    pub aliases: Vec<Alias>,
    /// The fragments whose fields (and rules) come first, in order.
    pub includes: Vec<String>,
}

impl Record {
    /// Bits of `word` that no field covers (and that are not the opcode).
    pub fn res0(&self, word: usize) -> u64 {
        let mut used = 0u64;
        if word == 0 && self.code.is_some() {
            used |= 0xff;
        }
        for f in self.fields.iter().filter(|f| f.word == word) {
            used |= f.mask();
        }
        !used
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Emulation {
    Ident,
    Plain,
    Control,
    Ack,
    Status,
    Gerror,
    Gerrorn,
    QueueBase,
    QueuePointer,
}

impl Emulation {
    pub const ALL: [(&'static str, Emulation); 9] = [
        ("ident", Emulation::Ident),
        ("plain", Emulation::Plain),
        ("control", Emulation::Control),
        ("ack", Emulation::Ack),
        ("status", Emulation::Status),
        ("gerror", Emulation::Gerror),
        ("gerrorn", Emulation::Gerrorn),
        ("queue_base", Emulation::QueueBase),
        ("queue_pointer", Emulation::QueuePointer),
    ];

    pub fn yaml_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map(|(n, _)| *n)
            .unwrap_or("plain")
    }

    /// Whether a guest write can change the stored value.
    pub fn takes_writes(self) -> bool {
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
pub enum Role {
    Prod,
    Cons,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    pub name: String,
    pub spec: String,
    pub description: String,
    pub origin: Origin,
    pub page: u32,
    pub offset: u32,
    pub width: u32,
    pub access: Access,
    /// None where the architecture says UNKNOWN (the model resets it to 0).
    pub reset: Option<u64>,
    pub emulation: Emulation,
    pub ack: Option<String>,
    /// The register whose fields this one has (an ACK register's control register).
    pub layout: Option<String>,
    pub on_write: Option<String>,
    pub writable_if: Option<(Cond, String)>,
    pub present_if: Option<(Cond, String)>,
    pub queue: Option<String>,
    pub role: Option<Role>,
    pub fields: Vec<Field>,
}

impl Register {
    /// The union of the register's fields: what a write can change.
    pub fn field_mask(&self) -> u64 {
        self.fields.iter().fold(0, |m, f| m | f.mask())
    }

    /// Whether some field has a `present_if` (reads of the register hide it).
    pub fn has_field_presence(&self) -> bool {
        self.fields.iter().any(|f| f.present_if.is_some())
    }

    /// Whether a write needs a mask computed at run time.
    pub fn has_gated_fields(&self) -> bool {
        self.fields.iter().any(Field::is_gated)
    }
}

/// The whole architecture description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// (path relative to the spec folder, file contents) for every YAML file read.
    pub files: Vec<(String, String)>,
    /// Sorted by page, then offset.
    pub registers: Vec<Register>,
    /// Sorted by opcode.
    pub commands: Vec<Record>,
    /// Sorted by event type.
    pub events: Vec<Record>,
    /// Sorted by name.
    pub structs: Vec<Record>,
    /// Named value lists, sorted by name.
    pub enums: Vec<NamedEnum>,
    /// Names of the `fragment/NAME` entries (their fields live in the includers).
    pub fragments: Vec<String>,
}

impl Spec {
    pub fn register(&self, name: &str) -> Option<&Register> {
        self.registers.iter().find(|r| r.name == name)
    }

    /// (owner, field) for every field whose values are `enum/NAME`'s.
    pub fn enum_users<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a Field)> {
        let regs = self
            .registers
            .iter()
            .flat_map(|r| r.fields.iter().map(move |f| (r.name.as_str(), f)));
        let recs = self
            .records()
            .flat_map(|r| r.fields.iter().map(move |f| (r.name.as_str(), f)));
        regs.chain(recs)
            .filter(move |(_, f)| matches!(&f.values_of, Some(ValuesOf::Enum(n)) if n == name))
    }

    /// Every command, event and structure.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.commands
            .iter()
            .chain(&self.events)
            .chain(&self.structs)
    }
}
