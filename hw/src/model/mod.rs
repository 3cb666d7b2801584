//! A register-level software SMMUv3 (Arm IHI 0070, Non-secure interface), so
//! that a driver written against the register frame and DMA memory runs on it
//! unchanged.
//!
//! - [`SmmuModel::read`]/[`SmmuModel::write`]: the 128 KiB frame, through the
//!   generated [`smmuv3::mmio`] dispatch ([`regs`]). Writes to CMDQ_PROD
//!   consume the Command queue synchronously ([`cmdq`]).
//! - [`SmmuModel::dma`]: one device access, translated through the Stream
//!   table and CDs ([`config`], cached until CFGI), the table walks ([`walk`])
//!   and the TLB ([`tlb`], until TLBI); faults are recorded in the Event queue
//!   ([`evtq`]). Stalling is not modelled (STALL_MODEL 0b01): faults terminate.
//!
//! Everything read from memory is untrusted: no panics, bounded loops.
#![allow(clippy::result_unit_err)]

mod cmdq;
mod config;
mod evtq;
mod mem;
mod regs;
mod tlb;
mod translate;
mod walk;

#[cfg(test)]
mod tests;

pub use mem::{read_u64, write_u64, PhysMem, Ram};
pub use walk::FaultType;

use smmuv3::{mmio, IdRegisters, Register, RegisterBank, RegisterValues};

use config::ConfigCache;
use regs::{Pending, Regs};
use tlb::Tlb;

/// One device access: its direction and attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    /// Instruction fetch (reads only).
    pub exec: bool,
    pub privileged: bool,
}

impl Access {
    pub const READ: Access = Access {
        write: false,
        exec: false,
        privileged: false,
    };
    pub const WRITE: Access = Access {
        write: true,
        exec: false,
        privileged: false,
    };
}

/// What was being accessed when a translation fault arose (event CLASS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultClass {
    /// The CD fetch (stage 2 only).
    Cd,
    /// A stage 1 table walk access (stage 2 only).
    Tt,
    /// The input address.
    In,
}

/// Why a DMA access was terminated. Each variant except the two aborts and
/// `Bus` corresponds to the event record of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SMMUEN == 0 and GBPA.ABORT == 1: no record.
    GlobalAbort,
    /// STE.Config == abort: no record.
    SteAbort,
    BadStreamId,
    SteFetch,
    BadSte,
    StreamDisabled,
    BadSubstreamId,
    CdFetch,
    BadCd,
    /// F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION or F_WALK_EABT.
    Translation {
        kind: FaultType,
        s2: bool,
        class: FaultClass,
    },
    /// The translated access itself aborted in memory (`dma_read`/`dma_write`).
    Bus {
        pa: u64,
    },
}

/// Interrupts raised (wired interrupts are counted; MSIs are also written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqCounts {
    pub eventq: u64,
    pub gerror: u64,
    pub cmdq_sync: u64,
}

/// The software SMMUv3.
#[derive(Clone, Debug)]
pub struct SmmuModel {
    regs: Regs,
    cfg: ConfigCache,
    tlb: Tlb,
    /// Interrupts signalled so far.
    pub irqs: IrqCounts,
}

/// Size of the register frame (pages 0 and 1).
pub use smmuv3::FRAME_SIZE;
use smmuv3::PAGE_SIZE;

impl SmmuModel {
    /// A model SMMU presenting `ids` (for example `smmuv3::platform::QEMU_VIRT`).
    pub fn new(ids: IdRegisters) -> Self {
        let mut bank = RegisterBank::at_reset();
        for &reg in IdRegisters::REGISTERS {
            bank.set(reg, ids.value(reg));
        }
        SmmuModel {
            regs: Regs {
                bank,
                pending: Pending::default(),
            },
            cfg: ConfigCache::default(),
            tlb: Tlb::default(),
            irqs: IrqCounts::default(),
        }
    }

    /// A register access of `size` bytes at `offset` in the frame.
    pub fn read(&mut self, mem: &mut dyn PhysMem, offset: u32, size: u32) -> u64 {
        let _ = mem;
        if offset >= FRAME_SIZE {
            return 0;
        }
        mmio::mmio_read(&self.regs, offset / PAGE_SIZE, offset % PAGE_SIZE, size)
    }

    /// A register write; CMDQ_PROD, CR0 and GERRORN writes may consume commands.
    pub fn write(&mut self, mem: &mut dyn PhysMem, offset: u32, size: u32, value: u64) {
        if offset >= FRAME_SIZE {
            return;
        }
        mmio::mmio_write(
            &mut self.regs,
            offset / PAGE_SIZE,
            offset % PAGE_SIZE,
            size,
            value,
        );
        if core::mem::take(&mut self.regs.pending.cmdq) {
            self.consume_cmdq(mem);
        }
    }

    /// The current value of a register (identification registers included).
    pub fn register(&self, reg: Register) -> u64 {
        self.regs.get(reg)
    }

    /// The register values ILLEGAL rules are evaluated against.
    pub fn id_registers(&self) -> &RegisterBank {
        &self.regs.bank
    }

    /// Number of cached translations (for tests and statistics).
    pub fn tlb_len(&self) -> usize {
        self.tlb.len()
    }
}
