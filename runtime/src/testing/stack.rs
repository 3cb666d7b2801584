//! Measuring the stack the vSMMU's entry points use: a hypervisor's stacks
//! are small (Xen's is 32 KiB per CPU, shared with everything else on it),
//! so each entry point has a budget ([`ENTRY_POINT_BUDGET`]) and tests check
//! it by running real scenarios through [`measured`]
//! (set as [`super::LinuxGuest::around_call`]).
//!
//! The method is the usual stack painting: fill the unused stack below the
//! caller with a pattern, run the call, and find the deepest word that
//! changed. That reads and writes memory no Rust object owns: this is test
//! support for the host the tests run on, not something a hypervisor links.

use core::hint::black_box;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The stack one entry point call (`mmio_read`, `mmio_write`,
/// `run_deferred`, `deliver_event`) may use in an optimised build, the
/// hardware layer's own frames included when it is this crate's recording
/// fake. The whole stack with the driver and the software model (which a
/// hypervisor does not run in the call) has its own budget in the testbed.
pub const ENTRY_POINT_BUDGET: usize = 8 * 1024;

/// How far below the caller the painting reaches, in words, and how much
/// room is left just below it (the caller's own red zone).
const WORDS: usize = 64 * 1024 / 8;
const MARGIN: usize = 512;
const PAINT: u64 = 0xa5a5_5a5a_a5a5_5a5a;

/// Stack used by `f`, measured from the caller's frame.
#[inline(never)]
pub fn stack_of(f: &mut dyn FnMut()) -> usize {
    let here = 0u64;
    let top = black_box(&here as *const u64 as usize) - MARGIN;
    let bottom = (top - 8 * WORDS) as *mut u64;
    // SAFETY: the words below this frame are the unused part of the
    // thread's stack (test threads have megabytes); nothing else lives
    // there until `f` runs.
    for i in 0..WORDS {
        unsafe { ptr::write_volatile(bottom.add(i), PAINT) };
    }
    f();
    let mut i = 0;
    // SAFETY: as above; read as plain integers.
    while i < WORDS && unsafe { ptr::read_volatile(bottom.add(i)) } == PAINT {
        i += 1;
    }
    8 * (WORDS - i) + MARGIN
}

/// The deepest call measured so far (by any thread of the test binary).
static DEEPEST: AtomicUsize = AtomicUsize::new(0);

/// An `around_call` that measures every call and keeps the deepest.
pub fn measured(f: &mut dyn FnMut()) {
    DEEPEST.fetch_max(stack_of(f), Ordering::Relaxed);
}

/// The deepest call [`measured`] so far.
pub fn deepest() -> usize {
    DEEPEST.load(Ordering::Relaxed)
}
