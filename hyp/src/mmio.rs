//! Where trapped accesses to the SMMU frame go: the `MmioHandler` the
//! hypervisor installed at boot.

use spin::Once;

/// An emulated 128 KiB SMMU frame. Accesses arrive decoded (offset in the
/// frame, size in bytes, a write's value already truncated to the size).
pub trait MmioHandler: Sync {
    fn read(&self, offset: u32, size: u32) -> u64;
    fn write(&self, offset: u32, size: u32, value: u64);
}

static HANDLER: Once<&'static dyn MmioHandler> = Once::new();

pub fn install(h: &'static dyn MmioHandler) {
    HANDLER.call_once(|| h);
}

/// Reads as zero when nothing is installed (RAZ/WI, never a stop).
pub fn read(offset: u32, size: u32) -> u64 {
    HANDLER.get().map_or(0, |h| h.read(offset, size))
}

pub fn write(offset: u32, size: u32, value: u64) {
    if let Some(h) = HANDLER.get() {
        h.write(offset, size, value);
    }
}

/// The stepping stone: every access forwarded to QEMU's SMMU at the same
/// PA. It isolates nothing (the guest programs the real SMMU with IPAs);
/// the vSMMU replaces it.
pub struct Forward {
    pub base: u64,
}

impl Forward {
    fn at(&self, offset: u32) -> usize {
        (self.base + u64::from(offset & 0x1_ffff)) as usize
    }
}

impl MmioHandler for Forward {
    fn read(&self, offset: u32, size: u32) -> u64 {
        let a = self.at(offset);
        // SAFETY: the SMMU frame is mapped as Device memory at EL2; the
        // offset is masked into it, and QEMU accepts any size there.
        unsafe {
            match size {
                8 => core::ptr::read_volatile(a as *const u64),
                4 => u64::from(core::ptr::read_volatile(a as *const u32)),
                _ => 0,
            }
        }
    }

    fn write(&self, offset: u32, size: u32, value: u64) {
        let a = self.at(offset);
        // SAFETY: as in `read`.
        unsafe {
            match size {
                8 => core::ptr::write_volatile(a as *mut u64, value),
                4 => core::ptr::write_volatile(a as *mut u32, value as u32),
                _ => {}
            }
        }
    }
}
