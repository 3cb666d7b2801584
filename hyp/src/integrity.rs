//! Proof that the guest wrote nothing into the hypervisor: a checksum of the
//! hypervisor's code and read-only data and of the boot-info page (the two
//! places the hostile payload aims wild queue and table bases at) taken at
//! boot and compared at SYSTEM_OFF. Stage 2 never maps them for the guest or
//! its devices, and the vSMMU's guest-memory port refuses them; this checks
//! that from the outside.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::layout;

extern "C" {
    static __hyp_start: u8;
    static __ro_end: u8;
}

static AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// FNV-1a over the protected bytes.
fn checksum() -> u64 {
    // SAFETY: both ranges are the hypervisor's own, mapped and never written
    // after boot (code and read-only data; the boot-info page is only read).
    let (code, info) = unsafe {
        let start = core::ptr::addr_of!(__hyp_start);
        let end = core::ptr::addr_of!(__ro_end);
        (
            core::slice::from_raw_parts(start, end as usize - start as usize),
            core::slice::from_raw_parts(layout::BOOTINFO as *const u8, 4096),
        )
    };
    code.iter()
        .chain(info)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Called once at boot, before the guest runs.
pub fn record() {
    AT_BOOT.store(checksum(), Relaxed);
}

/// 1 when the protected bytes are as they were at boot.
pub fn intact() -> u64 {
    u64::from(checksum() == AT_BOOT.load(Relaxed))
}
