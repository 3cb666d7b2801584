//! Reading a fuzz input: operands as little-endian integers (a missing byte
//! reads as zero), and the values both properties build from them: trapped
//! register accesses, commands (from the generated `Arbitrary`) and guest
//! STEs.

use arbitrary::{Arbitrary, Unstructured};
use smmuv3::cmd::Command;
use smmuv3::structs::SteShcfg;
use smmuv3::structs::{Ste, SteConfig, SteEats, SteS1Fmt, SteS1cir, SteS1cor, SteS1csh, SteS1dss};
use smmuv3::REGISTERS;

/// The operand bytes of a fuzz input.
pub struct Input<'a>(Unstructured<'a>);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input(Unstructured::new(data))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Any value the generated (or a standard) `Arbitrary` builds; `None`
    /// when the bytes do not make one.
    pub fn arbitrary<T: Arbitrary<'a>>(&mut self) -> Option<T> {
        T::arbitrary(&mut self.0).ok()
    }

    /// `Arbitrary` for integers reads little-endian and pads with zeros.
    fn int<T: Arbitrary<'a> + Default>(&mut self) -> T {
        self.arbitrary().unwrap_or_default()
    }

    pub fn u8(&mut self) -> u8 {
        self.int()
    }
    pub fn u16(&mut self) -> u16 {
        self.int()
    }
    pub fn u32(&mut self) -> u32 {
        self.int()
    }
    pub fn u64(&mut self) -> u64 {
        self.int()
    }
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.u8())
    }

    /// A trapped access `(offset, size, register)`: half aimed at real
    /// registers (either half of a 64-bit one, at its natural size or not),
    /// half at any offset and size.
    pub fn access(&mut self) -> (u32, u32, Option<&'static smmuv3::RegInfo>) {
        let sel = self.u8();
        let size_sel = (sel >> 2) & 3;
        if sel & 1 == 0 {
            let info = &REGISTERS[usize::from(self.u8()) % REGISTERS.len()];
            let natural = u32::from(info.width) / 8;
            let high = sel & 2 != 0 && info.width == 64;
            let off = info.frame_offset() + if high { natural / 2 } else { 0 };
            let size = match size_sel {
                0 | 1 if high => natural / 2,
                0 | 1 => natural,
                2 => 4,
                _ => [1, 2, 8, 16][usize::from(sel >> 6)],
            };
            (off, size, Some(info))
        } else {
            let off = self.u32();
            let off = if sel & 2 == 0 { off & 0x1_ffff } else { off };
            let size = match size_sel {
                0 => 4,
                1 => 8,
                2 => u32::from(self.u8() % 17),
                _ => self.u32(),
            };
            (off, size, None)
        }
    }

    /// A command-queue entry: raw words (selector bit 7), or a command of
    /// any kind with every field from the generated `Arbitrary`, aimed at
    /// the domain unless selector bit 6 is set (see [`Aim`]).
    pub fn command(&mut self, aim: impl FnOnce(&mut Self) -> Aim) -> Entry {
        let sel = self.u8();
        if sel & 0x80 != 0 {
            return Entry::Raw([self.u64(), self.u64()]);
        }
        let aim = (sel & 0x40 == 0).then(|| aim(self));
        match self.arbitrary::<Command>() {
            Some(cmd) => Entry::Typed(aim.map_or(cmd, |a| a.apply(cmd))),
            // Out of bytes: the zero words (an invalid opcode).
            None => Entry::Raw([0; 2]),
        }
    }

    /// An STE as a guest writes one for `cd_table`: raw words (bit 7 of the
    /// first byte), or the fields Linux sets, each from the input.
    pub fn guest_ste(&mut self, cd_table: u64) -> Ste {
        let (a, b) = (self.u8(), self.u8());
        if a & 0x80 != 0 {
            return Ste(core::array::from_fn(|_| self.u64()));
        }
        Ste::new()
            .with_v(a & 1 != 0)
            .with_config(SteConfig((a >> 1) & 7))
            .with_s1_fmt(SteS1Fmt((a >> 4) & 3))
            .with_s1cd_max(b & 0x1f)
            .with_s1_context_ptr(cd_table ^ (u64::from(self.u16()) << 6))
            .with_s1dss(SteS1dss(b >> 5 & 3))
            .with_s1cir(SteS1cir(1))
            .with_s1cor(SteS1cor(1))
            .with_s1csh(SteS1csh(3))
            .with_s1stalld(b & 0x80 != 0)
            .with_eats(SteEats(a >> 6 & 1))
            .with_shcfg(SteShcfg::USE_INCOMING)
    }
}

/// A command the guest puts in its queue.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    /// A command of a known kind.
    Typed(Command),
    /// Any 16 bytes (they may not decode).
    Raw([u64; 2]),
}

impl Entry {
    pub fn words(&self) -> [u64; 2] {
        match self {
            Entry::Typed(c) => c.encode(),
            Entry::Raw(w) => *w,
        }
    }

    /// The entry as it lies in the queue.
    pub fn bytes(&self) -> [u8; 16] {
        let [lo, hi] = self.words();
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&lo.to_le_bytes());
        raw[8..].copy_from_slice(&hi.to_le_bytes());
        raw
    }
}

/// What makes an arbitrary command about the domain: a random StreamID or
/// address almost never names one of its streams or pages, so the fields
/// that do are replaced (every other field stays arbitrary).
#[derive(Clone, Copy, Debug)]
pub struct Aim {
    /// For every StreamID field.
    pub sid: u32,
    /// For the address of a TLBI by VA or a prefetch.
    pub va: u64,
    /// For the MSI address of a CMD_SYNC.
    pub msi: u64,
}

impl Aim {
    pub fn apply(&self, cmd: Command) -> Command {
        let Aim { sid, va, msi } = *self;
        match cmd {
            Command::PrefetchConfig(c) => Command::PrefetchConfig(c.with_stream_id(sid)),
            Command::PrefetchAddr(c) => Command::PrefetchAddr(c.with_stream_id(sid).with_addr(va)),
            Command::CfgiSte(c) => Command::CfgiSte(c.with_stream_id(sid)),
            Command::CfgiSteRange(c) => Command::CfgiSteRange(c.with_stream_id(sid)),
            Command::CfgiCd(c) => Command::CfgiCd(c.with_stream_id(sid)),
            Command::CfgiCdAll(c) => Command::CfgiCdAll(c.with_stream_id(sid)),
            Command::AtcInv(c) => Command::AtcInv(c.with_stream_id(sid)),
            Command::PriResp(c) => Command::PriResp(c.with_stream_id(sid)),
            Command::Resume(c) => Command::Resume(c.with_stream_id(sid)),
            Command::StallTerm(c) => Command::StallTerm(c.with_stream_id(sid)),
            Command::TlbiNhVa(c) => Command::TlbiNhVa(c.with_addr(va)),
            Command::TlbiNhVaa(c) => Command::TlbiNhVaa(c.with_addr(va)),
            Command::Sync(c) => Command::Sync(c.with_msi_address(msi)),
            other => other,
        }
    }
}
