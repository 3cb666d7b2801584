//! QEMU's edu device (reference sheet §5): found on bus 0 through the PCIe
//! ECAM, BAR0 assigned here (nothing enumerated the bus), memory space and
//! bus mastering enabled. Its DMA engine: src 0x80, dst 0x88, count 0x90,
//! cmd 0x98 (bit 0 run, bit 1 edu -> RAM); the buffer is at 0x40000 in
//! edu's own address space, DMA addresses are masked to 28 bits, and a
//! transfer completes 100 ms (virtual) after it was started.

use crate::rt::now_us;

/// QEMU virt's high ECAM (bus 0 at 0x40_1000_0000), from its DT.
const ECAM: u64 = 0x40_1000_0000;
const EDU_ID: u32 = 0x11e8_1234;
/// A free spot in the 32-bit PCI MMIO window (edu's BAR0 is 1 MiB).
const BAR0: u64 = 0x1000_0000;
/// vsmmu-hyp's rewritten iommu-map: vSID = RID + 0x100.
const VSID_OFFSET: u32 = 0x100;

pub struct Edu {
    pub rid: u32,
    pub vsid: u32,
    pub bar: u64,
}

fn cfg_r32(a: u64) -> u32 {
    // SAFETY: ECAM is mapped by stage 2 as Device memory.
    unsafe { core::ptr::read_volatile(a as *const u32) }
}
fn cfg_w32(a: u64, v: u32) {
    // SAFETY: as in `cfg_r32`.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

pub fn find() -> Option<Edu> {
    let dev = (0..32u64).find(|d| cfg_r32(ECAM + (d << 15)) == EDU_ID)?;
    let cfg = ECAM + (dev << 15);
    cfg_w32(cfg + 0x10, BAR0 as u32);
    cfg_w32(cfg + 0x04, 0x6);
    let rid = (dev as u32) << 3;
    let edu = Edu {
        rid,
        vsid: rid + VSID_OFFSET,
        bar: u64::from(cfg_r32(cfg + 0x10) & !0xf),
    };
    let ident = edu.r32(0);
    crate::say!("edu ident {ident:#x}");
    Some(edu)
}

impl Edu {
    fn r32(&self, off: u64) -> u32 {
        // SAFETY: BAR0, mapped by stage 2 as Device memory.
        unsafe { core::ptr::read_volatile((self.bar + off) as *const u32) }
    }
    fn w64(&self, off: u64, v: u64) {
        // SAFETY: as in `r32`.
        unsafe { core::ptr::write_volatile((self.bar + off) as *mut u64, v) }
    }
    fn r64(&self, off: u64) -> u64 {
        // SAFETY: as in `r32`.
        unsafe { core::ptr::read_volatile((self.bar + off) as *const u64) }
    }
    /// Starts a transfer (`to_ram`: edu's buffer to `dst`; else `src` to
    /// the buffer). Waits for a previous one first.
    pub fn dma(&self, src: u64, dst: u64, count: u64, to_ram: bool) {
        self.wait();
        self.w64(0x80, src);
        self.w64(0x88, dst);
        self.w64(0x90, count);
        self.w64(0x98, if to_ram { 3 } else { 1 });
    }
    /// Waits (at most 2 s) for the transfer to finish.
    pub fn wait(&self) -> bool {
        let t = now_us();
        while self.r64(0x98) & 1 != 0 {
            if now_us() - t > 2_000_000 {
                return false;
            }
        }
        true
    }
}
