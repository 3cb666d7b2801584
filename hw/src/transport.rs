//! The two things the driver does not own: the SMMU's register frame and the
//! physical memory it reads (stream table, queues). Transports: volatile MMIO
//! for real hardware (here), the in-process model, and QEMU over qtest.

/// 32/64-bit accesses at an offset of the 128 KiB register frame.
pub trait RegisterAccess {
    fn read32(&self, offset: u32) -> u32;
    fn write32(&self, offset: u32, value: u32);
    fn read64(&self, offset: u32) -> u64;
    fn write64(&self, offset: u32, value: u64);
}

/// A DMA memory access that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaFault {
    pub pa: u64,
}

/// The physical memory the SMMU reads and the driver writes.
pub trait DmaMemory {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault>;

    fn read_u64(&self, pa: u64) -> Result<u64, DmaFault> {
        let mut b = [0u8; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn write_u64(&self, pa: u64, v: u64) -> Result<(), DmaFault> {
        self.write(pa, &v.to_le_bytes())
    }
}

/// The register frame of a real SMMU, mapped at `base`.
pub struct MmioRegisters {
    base: *mut u8,
}

// SAFETY: the frame is device memory; accesses are single volatile loads
// and stores, which the SMMU accepts from any CPU.
unsafe impl Send for MmioRegisters {}
unsafe impl Sync for MmioRegisters {}

impl MmioRegisters {
    /// # Safety
    /// `base` must map the SMMU's whole 128 KiB register frame as device
    /// memory for as long as this value lives.
    pub unsafe fn new(base: *mut u8) -> Self {
        MmioRegisters { base }
    }

    fn at<T>(&self, offset: u32) -> *mut T {
        // Offsets come from the generated register table, all inside the frame.
        self.base.wrapping_add(offset as usize & 0x1_ffff).cast()
    }
}

impl RegisterAccess for MmioRegisters {
    fn read32(&self, offset: u32) -> u32 {
        // SAFETY: inside the mapped frame (see `new`), aligned by the register table.
        unsafe { core::ptr::read_volatile(self.at::<u32>(offset)) }
    }
    fn write32(&self, offset: u32, value: u32) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(self.at::<u32>(offset), value) }
    }
    fn read64(&self, offset: u32) -> u64 {
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(self.at::<u64>(offset)) }
    }
    fn write64(&self, offset: u32, value: u64) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(self.at::<u64>(offset), value) }
    }
}
