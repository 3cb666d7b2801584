// The fuzz input reader and access picker shared by the vsmmu_ops and
// whole_stack targets.

/// Operand bytes, zero once exhausted.
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.u8())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

/// A trapped access: half aimed at real registers (either half of a 64-bit
/// one, at its natural size or not), half at any offset and size.
fn pick_access(inp: &mut In<'_>) -> (u32, u32, Option<&'static smmuv3::RegInfo>) {
    let sel = inp.u8();
    let size_sel = (sel >> 2) & 3;
    if sel & 1 == 0 {
        let info = &REGISTERS[usize::from(inp.u8()) % REGISTERS.len()];
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
        let off = inp.u32();
        let off = if sel & 2 == 0 { off & 0x1_ffff } else { off };
        let size = match size_sel {
            0 => 4,
            1 => 8,
            2 => u32::from(inp.u8() % 17),
            _ => inp.u32(),
        };
        (off, size, None)
    }
}
