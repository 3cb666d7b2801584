//! SMCs from the guest (HCR_EL2.TSC): PSCI, forwarded to QEMU's firmware,
//! except CPU_ON (the secondary must start in the hypervisor, at EL2, to
//! get its stage 2) and SYSTEM_OFF/RESET (the counters are printed first).

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::counters::*;
use crate::trap::Frame;

const PSCI_CPU_ON_32: u64 = 0x8400_0003;
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;
/// PSCI return codes.
const INVALID_PARAMETERS: u64 = -2i64 as u64;

pub const MAX_CPUS: usize = 2;

/// Where each secondary enters the guest, as its CPU_ON asked.
struct Boot {
    entry: AtomicU64,
    context: AtomicU64,
}

static BOOT: [Boot; MAX_CPUS] = [const {
    Boot {
        entry: AtomicU64::new(0),
        context: AtomicU64::new(0),
    }
}; MAX_CPUS];

extern "C" {
    fn hyp_secondary_entry();
}

/// One SMC to the firmware with x0-x3, returning x0.
fn call(x0: u64, x1: u64, x2: u64, x3: u64) -> u64 {
    let ret;
    // SAFETY: SMCCC: the firmware preserves everything above x17 and the
    // stack; x0-x17 are declared clobbered.
    unsafe {
        asm!("smc #0",
            inlateout("x0") x0 => ret, inlateout("x1") x1 => _,
            inlateout("x2") x2 => _, inlateout("x3") x3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack));
    }
    ret
}

pub fn smc(frame: &mut Frame) {
    SMC.inc();
    // ELR points at the SMC itself (unlike HVC): step over it.
    frame.elr = frame.elr.wrapping_add(4);
    let fid = frame.reg(0);
    let ret = match fid {
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(frame.reg(1), frame.reg(2), frame.reg(3)),
        PSCI_SYSTEM_OFF | PSCI_SYSTEM_RESET => {
            crate::report();
            call(fid, 0, 0, 0)
        }
        _ => call(fid, frame.reg(1), frame.reg(2), frame.reg(3)),
    };
    frame.set_reg(0, ret);
}

/// CPU_ON(target, entry, context): the target starts in the hypervisor,
/// which then enters the guest at `entry` with x0 = `context`.
fn cpu_on(target: u64, entry: u64, context: u64) -> u64 {
    PSCI_CPU_ON.inc();
    // QEMU virt numbers CPUs by Aff0 (MPIDR 0, 1, ...).
    let idx = (target & 0xff) as usize;
    let Some(boot) = BOOT.get(idx).filter(|_| target & !0xff == 0) else {
        return INVALID_PARAMETERS;
    };
    boot.entry.store(entry, Ordering::Relaxed);
    boot.context.store(context, Ordering::Release);
    call(
        PSCI_CPU_ON_64,
        target,
        hyp_secondary_entry as *const () as u64,
        idx as u64,
    )
}

/// Where the secondary `cpu` enters the guest, and its x0.
pub fn secondary_boot(cpu: usize) -> (u64, u64) {
    BOOT.get(cpu).map_or((0, 0), |b| {
        let ctx = b.context.load(Ordering::Acquire);
        (b.entry.load(Ordering::Relaxed), ctx)
    })
}

pub fn system_off() -> ! {
    call(PSCI_SYSTEM_OFF, 0, 0, 0);
    loop {
        aarch64_cpu::asm::wfe();
    }
}
