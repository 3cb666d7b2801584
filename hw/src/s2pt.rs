//! Stage-2 translation tables for a domain (the hypervisor's side): 4K
//! granule, IPA ranges mapped to PA with permissions, 1 GiB and 2 MiB blocks
//! where both addresses and the length allow.

use smmuv3::structs::{
    SteS2ps, SteS2tg, TtS2BlockPage, TtS2BlockPageS2ap, TtS2BlockPageSh, TtS2BlockPageXn, TtS2Table,
};

use crate::ste::S2Config;
use crate::transport::{DmaFault, DmaMemory};

const GRANULE: u64 = 4096;
const ENTRIES: u64 = 512;

/// Where table pages come from: a PA range the hypervisor sets aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAlloc {
    pub next: u64,
    pub end: u64,
}

impl FrameAlloc {
    fn page(&mut self) -> Option<u64> {
        let p = self.next;
        let end = p.checked_add(GRANULE)?;
        (end <= self.end).then(|| {
            self.next = end;
            p
        })
    }
}

/// What a stage-2 mapping allows the device to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S2Perm {
    pub read: bool,
    pub write: bool,
}

impl S2Perm {
    pub const RW: S2Perm = S2Perm {
        read: true,
        write: true,
    };
    pub const RO: S2Perm = S2Perm {
        read: true,
        write: false,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S2Error {
    /// Not aligned to 4 KiB, or beyond the IPA size.
    BadRange,
    OutOfTables,
    Dma(DmaFault),
}

impl From<DmaFault> for S2Error {
    fn from(f: DmaFault) -> Self {
        S2Error::Dma(f)
    }
}

/// One domain's stage-2 tables.
#[derive(Clone, Debug)]
pub struct S2PageTable {
    pub root: u64,
    pub ipa_bits: u32,
    start_level: u32,
    alloc: FrameAlloc,
}

fn shift(level: u32) -> u32 {
    12 + 9 * (3 - level)
}

impl S2PageTable {
    /// Empty tables for an IPA space of `ipa_bits` (32..=48): level 0 start
    /// above 39 bits, level 1 otherwise (no concatenated tables).
    pub fn new(
        mem: &impl DmaMemory,
        mut alloc: FrameAlloc,
        ipa_bits: u32,
    ) -> Result<Self, S2Error> {
        let ipa_bits = ipa_bits.clamp(32, 48);
        let root = alloc.page().ok_or(S2Error::OutOfTables)?;
        mem.write(root, &[0u8; GRANULE as usize])?;
        let start_level = if ipa_bits > 39 { 0 } else { 1 };
        Ok(S2PageTable {
            root,
            ipa_bits,
            start_level,
            alloc,
        })
    }

    /// The STE's stage-2 fields for this table.
    pub fn config(&self, vmid: u16, pa_bits: u32) -> S2Config {
        let ps = [32, 36, 40, 42, 44, 48, 52]
            .iter()
            .rposition(|b| *b <= pa_bits)
            .unwrap_or(0);
        S2Config {
            vmid,
            t0sz: (64 - self.ipa_bits) as u8,
            // 4K granule: SL0=2 starts at level 0, SL0=1 at level 1.
            sl0: if self.start_level == 0 { 2 } else { 1 },
            tg: SteS2tg::GRANULE_4KB,
            ps: SteS2ps(ps as u8),
            ttb: self.root,
        }
    }

    fn leaf(pa: u64, perm: S2Perm, level: u32) -> u64 {
        let ap = match (perm.read, perm.write) {
            (true, true) => TtS2BlockPageS2ap::RW,
            (true, false) => TtS2BlockPageS2ap::RO,
            (false, true) => TtS2BlockPageS2ap::WO,
            (false, false) => TtS2BlockPageS2ap::NONE,
        };
        TtS2BlockPage::new()
            .with_valid(true)
            // Pages (level 3) have Type=1; blocks (levels 1-2) Type=0.
            .with_type_(level == 3)
            // Normal memory, inner and outer write-back.
            .with_mem_attr(0xf)
            .with_s2ap(ap)
            .with_sh(TtS2BlockPageSh::INNER_SHAREABLE)
            .with_af(true)
            .with_xn(TtS2BlockPageXn::EXEC_NONE)
            .with_oa(pa)
            .0[0]
    }

    /// The table one level down from the entry at `at`, created if missing.
    fn next_table(&mut self, mem: &impl DmaMemory, at: u64) -> Result<u64, S2Error> {
        let d = TtS2Table([mem.read_u64(at)?]);
        if d.valid() && d.type_() {
            return Ok(d.nlta());
        }
        let t = self.alloc.page().ok_or(S2Error::OutOfTables)?;
        mem.write(t, &[0u8; GRANULE as usize])?;
        mem.write_u64(
            at,
            TtS2Table::new()
                .with_valid(true)
                .with_type_(true)
                .with_nlta(t)
                .0[0],
        )?;
        Ok(t)
    }

    /// Maps `len` bytes of IPA at `ipa` to PA at `pa`.
    pub fn map(
        &mut self,
        mem: &impl DmaMemory,
        ipa: u64,
        pa: u64,
        len: u64,
        perm: S2Perm,
    ) -> Result<(), S2Error> {
        self.check(ipa, len)?;
        if !pa.is_multiple_of(GRANULE) {
            return Err(S2Error::BadRange);
        }
        let mut done = 0;
        while done < len {
            let (i, p) = (ipa + done, pa + done);
            // The largest block that fits here (levels 1 and 2), else a page.
            let level = (1..=3)
                .find(|l| {
                    let size = 1u64 << shift(*l);
                    *l >= self.start_level.max(1)
                        && i.is_multiple_of(size)
                        && p.is_multiple_of(size)
                        && len - done >= size
                })
                .unwrap_or(3);
            self.set(mem, i, level, Self::leaf(p, perm, level))?;
            done += 1 << shift(level);
        }
        Ok(())
    }

    /// Unmaps `len` bytes at `ipa` (which must follow the mapping's blocks).
    pub fn unmap(&mut self, mem: &impl DmaMemory, ipa: u64, len: u64) -> Result<(), S2Error> {
        self.check(ipa, len)?;
        let mut done = 0;
        while done < len {
            let level = self.clear(mem, ipa + done)?;
            done += 1 << shift(level);
        }
        Ok(())
    }

    fn check(&self, ipa: u64, len: u64) -> Result<(), S2Error> {
        let end = ipa.checked_add(len).ok_or(S2Error::BadRange)?;
        if !ipa.is_multiple_of(GRANULE)
            || !len.is_multiple_of(GRANULE)
            || end > (1u64 << self.ipa_bits)
        {
            return Err(S2Error::BadRange);
        }
        Ok(())
    }

    fn index(ipa: u64, level: u32) -> u64 {
        (ipa >> shift(level)) & (ENTRIES - 1)
    }

    fn set(
        &mut self,
        mem: &impl DmaMemory,
        ipa: u64,
        level: u32,
        desc: u64,
    ) -> Result<(), S2Error> {
        let mut table = self.root;
        for l in self.start_level..level {
            table = self.next_table(mem, table + 8 * Self::index(ipa, l))?;
        }
        mem.write_u64(table + 8 * Self::index(ipa, level), desc)?;
        Ok(())
    }

    /// Clears the leaf that maps `ipa`; returns its level.
    fn clear(&mut self, mem: &impl DmaMemory, ipa: u64) -> Result<u32, S2Error> {
        let mut table = self.root;
        for l in self.start_level..=3 {
            let at = table + 8 * Self::index(ipa, l);
            let d = TtS2Table([mem.read_u64(at)?]);
            if !d.valid() {
                return Ok(3);
            }
            if l == 3 || !d.type_() {
                mem.write_u64(at, 0)?;
                return Ok(l);
            }
            table = d.nlta();
        }
        Ok(3)
    }
}
