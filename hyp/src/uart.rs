//! The PL011 console at QEMU virt's 0x09000000, shared with the guest (the
//! hypervisor only writes, a line at a time under a lock).

use core::fmt::{self, Write};

const UART_BASE: usize = 0x0900_0000;
/// PL011 data register and flag register (TXFF, transmit FIFO full).
const UARTDR: usize = 0x00;
const UARTFR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

struct Pl011;

impl Pl011 {
    fn put(&mut self, b: u8) {
        // SAFETY: the UART frame is identity-mapped as Device memory at EL2.
        unsafe {
            while core::ptr::read_volatile((UART_BASE + UARTFR) as *const u32) & FR_TXFF != 0 {}
            core::ptr::write_volatile((UART_BASE + UARTDR) as *mut u32, u32::from(b));
        }
    }
}

impl Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

pub fn print(args: fmt::Arguments<'_>) {
    let _guard = LOCK.lock();
    let _ = Pl011.write_fmt(args);
}

/// Prints without taking the lock: for the panic path, which may have
/// interrupted a print.
pub fn print_unlocked(args: fmt::Arguments<'_>) {
    let _ = Pl011.write_fmt(args);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::uart::print(format_args!("vsmmu-hyp: {}\n", format_args!($($arg)*)))
    };
}
