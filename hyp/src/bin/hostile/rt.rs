//! The payload's runtime: entry (stack, bss, FP, vectors), the PL011, the
//! counter, PSCI SYSTEM_OFF, and exceptions (printed, then power-off).

use core::fmt::{self, Write};

core::arch::global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    ldr x1, =__stack_top
    mov sp, x1
    mov x19, x0
    ldr x1, =__bss_start
    ldr x2, =__bss_end
1:  cmp x1, x2
    b.hs 2f
    str xzr, [x1], #8
    b 1b
2:  mov x1, #(3 << 20)
    msr cpacr_el1, x1
    adr x1, hostile_vectors
    msr vbar_el1, x1
    isb
    mov x0, x19
    bl hostile_main
3:  b 3b

.macro vec n
.balign 0x80
    mov x0, #\n
    b hostile_exception_entry
.endm
.balign 0x800
hostile_vectors:
    vec 0
    vec 1
    vec 2
    vec 3
    vec 4
    vec 5
    vec 6
    vec 7
    vec 8
    vec 9
    vec 10
    vec 11
    vec 12
    vec 13
    vec 14
    vec 15
hostile_exception_entry:
    mrs x1, esr_el1
    mrs x2, elr_el1
    mrs x3, far_el1
    bl hostile_exception
4:  b 4b
"#
);

const UART: usize = 0x0900_0000;

pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

fn put(b: u8) {
    // SAFETY: the PL011 is identity-mapped by stage 2; MMU off, Device memory.
    unsafe {
        while core::ptr::read_volatile((UART + 0x18) as *const u32) & (1 << 5) != 0 {}
        core::ptr::write_volatile(UART as *mut u32, u32::from(b));
    }
}

#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::rt::Uart, "HOSTILE {}\n", format_args!($($arg)*));
    }};
}

/// The virtual counter, in microseconds.
pub fn now_us() -> u64 {
    let (cnt, freq): (u64, u64);
    // SAFETY: reads of EL1-accessible counter registers.
    unsafe {
        core::arch::asm!("isb", "mrs {c}, cntvct_el0", "mrs {f}, cntfrq_el0", c = out(reg) cnt, f = out(reg) freq)
    };
    (u128::from(cnt) * 1_000_000 / u128::from(freq.max(1))) as u64
}

pub fn system_off() -> ! {
    // SAFETY: PSCI SYSTEM_OFF through the hypervisor (HCR_EL2.TSC).
    unsafe {
        core::arch::asm!("smc #0", inout("x0") 0x8400_0008u64 => _, out("x1") _, out("x2") _, out("x3") _)
    };
    loop {
        core::hint::spin_loop();
    }
}

#[no_mangle]
extern "C" fn hostile_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    say!("FAIL exception {kind} ESR {esr:#x} ELR {elr:#x} FAR {far:#x}");
    system_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("FAIL panic {info}");
    system_off()
}

/// xorshift64*: reproducible garbage.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Guest RAM by physical address (MMU off: VA = IPA).
pub fn wr64(pa: u64, v: u64) {
    // SAFETY: callers pass addresses in the payload's own RAM areas.
    unsafe { core::ptr::write_volatile(pa as *mut u64, v) }
}

pub fn rd64(pa: u64) -> u64 {
    // SAFETY: as in `wr64`.
    unsafe { core::ptr::read_volatile(pa as *const u64) }
}

pub fn zero(pa: u64, len: u64) {
    for i in (0..len).step_by(8) {
        wr64(pa + i, 0);
    }
}
