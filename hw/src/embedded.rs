//! The embedded default platform: the software SMMUv3 model and its RAM
//! behind one lock, reachable as a register transport (for the driver), as
//! DMA memory (for the driver's tables and queues) and as a device port (for
//! DMA through the SMMU).

use crate::lock::SpinLock;
use smmuv3::IdRegisters;

use crate::model::{Access, FaultKind, PhysMem, Ram, SmmuModel};
use crate::transport::{DmaFault, DmaMemory, RegisterAccess};

pub struct EmbeddedSmmu {
    inner: SpinLock<(SmmuModel, Ram)>,
}

impl EmbeddedSmmu {
    /// A model SMMU presenting `ids` over `size` bytes of RAM at `base`.
    pub fn new(ids: IdRegisters, base: u64, size: usize) -> Self {
        EmbeddedSmmu {
            inner: SpinLock::new((SmmuModel::new(ids), Ram::new(base, size))),
        }
    }

    /// A device with StreamID `sid` reads through the SMMU.
    pub fn dma_read(
        &self,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        buf: &mut [u8],
    ) -> Result<(), FaultKind> {
        let mut g = self.inner.lock();
        let (model, ram) = &mut *g;
        model.dma_read(ram, sid, ssid, iova, buf)
    }

    /// A device with StreamID `sid` writes through the SMMU.
    pub fn dma_write(
        &self,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        data: &[u8],
    ) -> Result<(), FaultKind> {
        let mut g = self.inner.lock();
        let (model, ram) = &mut *g;
        model.dma_write(ram, sid, ssid, iova, data)
    }

    /// Translates one access without moving data.
    pub fn translate(
        &self,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        access: Access,
    ) -> Result<u64, FaultKind> {
        let mut g = self.inner.lock();
        let (model, ram) = &mut *g;
        model.dma(ram, sid, ssid, iova, access)
    }

    /// Runs `f` on the model and its RAM (for inspection).
    pub fn with<T>(&self, f: impl FnOnce(&mut SmmuModel, &mut Ram) -> T) -> T {
        let mut g = self.inner.lock();
        let (model, ram) = &mut *g;
        f(model, ram)
    }
}

impl RegisterAccess for EmbeddedSmmu {
    fn read32(&self, offset: u32) -> u32 {
        self.with(|m, r| m.read(r, offset, 4) as u32)
    }
    fn write32(&self, offset: u32, value: u32) {
        self.with(|m, r| m.write(r, offset, 4, u64::from(value)))
    }
    fn read64(&self, offset: u32) -> u64 {
        self.with(|m, r| m.read(r, offset, 8))
    }
    fn write64(&self, offset: u32, value: u64) {
        self.with(|m, r| m.write(r, offset, 8, value))
    }
}

impl DmaMemory for EmbeddedSmmu {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.with(|_, r| r.read(pa, buf))
            .map_err(|()| DmaFault { pa })
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.with(|_, r| r.write(pa, data))
            .map_err(|()| DmaFault { pa })
    }
}

impl<T: RegisterAccess + ?Sized> RegisterAccess for &T {
    fn read32(&self, offset: u32) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: u32, value: u32) {
        (**self).write32(offset, value)
    }
    fn read64(&self, offset: u32) -> u64 {
        (**self).read64(offset)
    }
    fn write64(&self, offset: u32, value: u64) {
        (**self).write64(offset, value)
    }
}

impl<T: DmaMemory + ?Sized> DmaMemory for &T {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        (**self).read(pa, buf)
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        (**self).write(pa, data)
    }
}

impl<T: RegisterAccess + ?Sized> RegisterAccess for alloc::sync::Arc<T> {
    fn read32(&self, offset: u32) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: u32, value: u32) {
        (**self).write32(offset, value)
    }
    fn read64(&self, offset: u32) -> u64 {
        (**self).read64(offset)
    }
    fn write64(&self, offset: u32, value: u64) {
        (**self).write64(offset, value)
    }
}

impl<T: DmaMemory + ?Sized> DmaMemory for alloc::sync::Arc<T> {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        (**self).read(pa, buf)
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        (**self).write(pa, data)
    }
}
