//! The lower-EL synchronous exception handler: stage-2 data aborts (the
//! emulated SMMU frame, or an abort injected into the guest), SMCs (PSCI,
//! forwarded), WFI/WFE.

use aarch64_cpu::registers::*;

use crate::counters::*;
use crate::{layout, mmio, psci};

/// The frame `lower_sync` in boot.S saves: x0-x30, ELR_EL2, SPSR_EL2, then
/// the FP/SIMD registers (which handlers never touch by name).
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
    _fp: [u128; 32],
    _fpcr_fpsr: [u64; 2],
}

impl Frame {
    /// Register `n` as an instruction operand: 31 is XZR here (loads and
    /// stores that trap never use SP as their data register).
    pub fn reg(&self, n: usize) -> u64 {
        self.x.get(n).copied().unwrap_or(0)
    }
    pub fn set_reg(&mut self, n: usize, v: u64) {
        if let Some(r) = self.x.get_mut(n) {
            *r = v;
        }
    }
}

/// ESR_EL2 exception classes handled here.
const EC_WFX: u64 = 0x01;
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_DABT_LOWER: u64 = 0x24;

fn ticks() -> u64 {
    CNTPCT_EL0.get()
}

#[no_mangle]
extern "C" fn hyp_trap(frame: &mut Frame) {
    let start = ticks();
    TRAPS.inc();
    let esr = ESR_EL2.get();
    match ESR_EL2.read(ESR_EL2::EC) {
        // A WFI waits for the guest's own interrupt: not the trap's cost.
        EC_WFX => return wfx(frame, esr),
        EC_DABT_LOWER => data_abort(frame, esr),
        EC_SMC64 => psci::smc(frame),
        // No hypervisor calls are offered: SMCCC's NOT_SUPPORTED (ELR is
        // already past the HVC).
        EC_HVC64 => {
            OTHER_TRAPS.inc();
            frame.set_reg(0, u64::MAX);
        }
        _ => {
            // Nothing else is trapped as HCR_EL2 is programmed; never stop
            // on the guest's account: an Unknown-reason exception (EC 0, IL).
            OTHER_TRAPS.inc();
            inject(frame, 1 << 25, FAR_EL2.get());
        }
    }
    MAX_TRAP_TICKS.max(ticks().wrapping_sub(start));
}

/// WFI is waited at EL2 (an interrupt routed to EL1 wakes it), WFE is a
/// yield; either way the instruction completes.
fn wfx(frame: &mut Frame, esr: u64) {
    WFI.inc();
    // ISS bit 0 (TI): 0 for WFI, 1 for WFE.
    if esr & 1 == 0 {
        crate::vsmmu_port::idle();
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
        aarch64_cpu::asm::wfi();
    }
    frame.elr = frame.elr.wrapping_add(4);
}

/// The data-abort ISS, as the Arm ARM (D24.2.40, ESR_EL2 ISS encoding for a
/// Data Abort) lays it out.
#[derive(Clone, Copy, Debug)]
pub struct DataAbort {
    pub isv: bool,
    /// Access size in bytes.
    pub size: u32,
    pub sign_extend: bool,
    pub srt: usize,
    pub sixty_four: bool,
    pub write: bool,
}

impl DataAbort {
    pub fn decode(esr: u64) -> Self {
        let bit = |n: u32| (esr >> n) & 1 == 1;
        DataAbort {
            isv: bit(24),
            size: 1 << ((esr >> 22) & 3),
            sign_extend: bit(21),
            srt: ((esr >> 16) & 0x1f) as usize,
            sixty_four: bit(15),
            write: bit(6),
        }
    }
}

fn fault_ipa() -> u64 {
    (HPFAR_EL2.read(HPFAR_EL2::FIPA) << 12) | (FAR_EL2.get() & 0xfff)
}

fn data_abort(frame: &mut Frame, esr: u64) {
    let ipa = fault_ipa();
    let abort = DataAbort::decode(esr);
    if ipa == layout::SNAPSHOT && abort.isv && abort.write && snapshot(frame.reg(abort.srt)) {
        frame.elr = frame.elr.wrapping_add(4);
        return;
    }
    let offset = ipa.wrapping_sub(layout::SMMU_BASE);
    if !abort.isv || offset >= layout::SMMU_SIZE {
        inject_abort(frame, esr, FAR_EL2.get());
        return;
    }
    let offset = offset as u32;
    if abort.write {
        SMMU_WRITES.inc();
        let mut v = frame.reg(abort.srt);
        if abort.size < 8 {
            v &= (1u64 << (abort.size * 8)) - 1;
        }
        mmio::write(offset, abort.size, v);
    } else {
        SMMU_READS.inc();
        let v = mmio::read(offset, abort.size);
        frame.set_reg(abort.srt, load_result(v, &abort));
    }
    frame.elr = frame.elr.wrapping_add(4);
}

/// The snapshot doorbell (`layout::SNAPSHOT`): false once the limit is
/// reached, when the access is treated as any other to hypervisor memory.
fn snapshot(label: u64) -> bool {
    if SNAPSHOTS.get() >= layout::SNAPSHOT_LIMIT {
        return false;
    }
    SNAPSHOTS.inc();
    crate::vsmmu_port::print_snapshot(label & 0xffff_ffff);
    true
}

/// What a load writes to Xt: sign-extended if SSE, upper half zeroed for a
/// W register (SF=0).
fn load_result(v: u64, a: &DataAbort) -> u64 {
    let bits = a.size * 8;
    let mut v = if bits < 64 {
        v & ((1u64 << bits) - 1)
    } else {
        v
    };
    if a.sign_extend && bits < 64 && (v >> (bits - 1)) & 1 == 1 {
        v |= !0u64 << bits;
    }
    if !a.sixty_four {
        v &= 0xffff_ffff;
    }
    v
}

/// Injects a synchronous external abort at the guest's current instruction,
/// as the guest's own MMU would have reported it (data abort, DFSC 0x10).
pub fn inject_abort(frame: &mut Frame, esr: u64, far: u64) {
    INJECTED_ABORTS.inc();
    let from_el0 = frame.spsr & 0xf == 0;
    // EC 0x24 (from a lower EL) or 0x25 (same EL), IL=1, WnR kept, DFSC=SEA.
    let ec: u64 = if from_el0 { 0x24 } else { 0x25 };
    let wnr = esr & (1 << 6);
    inject(frame, (ec << 26) | (1 << 25) | wnr | 0x10, far);
}

/// Takes a synchronous exception to the guest's EL1 with syndrome `esr_el1`.
fn inject(frame: &mut Frame, esr_el1: u64, far: u64) {
    ESR_EL1.set(esr_el1);
    FAR_EL1.set(far);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    // Vector offset: 0x400 from AArch64 EL0, 0x200 from EL1h, 0 from EL1t.
    let vector = match frame.spsr & 0xf {
        0 => 0x400,
        0b0101 => 0x200,
        _ => 0,
    };
    frame.elr = VBAR_EL1.get().wrapping_add(vector);
    frame.spsr = 0x3c5;
}

#[no_mangle]
extern "C" fn hyp_unexpected(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    crate::uart::print_unlocked(format_args!(
        "vsmmu-hyp: unexpected exception {kind} at EL2: ESR {esr:#x} ELR {elr:#x} FAR {far:#x}\n"
    ));
    psci::system_off()
}
