//! The memory the SMMU reads and writes: its tables and queues, and where
//! device DMA lands.

use alloc::vec;
use alloc::vec::Vec;

/// Physical memory as the SMMU sees it. An `Err` is an external abort.
pub trait PhysMem {
    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), ()>;
    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), ()>;
}

/// A flat RAM region at `base`; accesses outside it abort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ram {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl Ram {
    /// `size` zeroed bytes at `base`.
    pub fn new(base: u64, size: usize) -> Self {
        Ram {
            base,
            bytes: vec![0; size],
        }
    }

    fn range(&self, pa: u64, len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(pa.checked_sub(self.base)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }

    /// Little-endian u64 at `pa`, for tests and tools.
    pub fn read_u64(&mut self, pa: u64) -> Result<u64, ()> {
        read_u64(self, pa)
    }

    /// Little-endian u64 to `pa`, for tests and tools.
    pub fn write_u64(&mut self, pa: u64, v: u64) -> Result<(), ()> {
        write_u64(self, pa, v)
    }
}

impl PhysMem for Ram {
    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), ()> {
        let r = self.range(pa, buf.len()).ok_or(())?;
        buf.copy_from_slice(self.bytes.get(r).ok_or(())?);
        Ok(())
    }

    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), ()> {
        let r = self.range(pa, data.len()).ok_or(())?;
        self.bytes.get_mut(r).ok_or(())?.copy_from_slice(data);
        Ok(())
    }
}

/// Reads one little-endian 64-bit word.
pub fn read_u64(mem: &mut (impl PhysMem + ?Sized), pa: u64) -> Result<u64, ()> {
    let mut b = [0u8; 8];
    mem.read(pa, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes one little-endian 64-bit word.
pub fn write_u64(mem: &mut (impl PhysMem + ?Sized), pa: u64, v: u64) -> Result<(), ()> {
    mem.write(pa, &v.to_le_bytes())
}

/// Reads `N` consecutive little-endian words.
pub fn read_words<const N: usize>(
    mem: &mut (impl PhysMem + ?Sized),
    pa: u64,
) -> Result<[u64; N], ()> {
    let mut w = [0u64; N];
    for (i, word) in w.iter_mut().enumerate() {
        let off = (i as u64).checked_mul(8).ok_or(())?;
        *word = read_u64(mem, pa.checked_add(off).ok_or(())?)?;
    }
    Ok(w)
}

/// Writes consecutive little-endian words.
pub fn write_words(mem: &mut (impl PhysMem + ?Sized), pa: u64, w: &[u64]) -> Result<(), ()> {
    for (i, word) in w.iter().enumerate() {
        let off = (i as u64).checked_mul(8).ok_or(())?;
        write_u64(mem, pa.checked_add(off).ok_or(())?, *word)?;
    }
    Ok(())
}
