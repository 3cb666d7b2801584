//! The register file: a [`RegisterBank`] behind the generated MMIO dispatch.
//! Handlers only update registers and note what the model must do next
//! (consume the Command queue); the model does the memory work afterwards.

use smmuv3::queue::GlobalErrors;
use smmuv3::regs::*;
use smmuv3::{mmio::MmioHandlers, Register, RegisterBank, RegisterType, Written};

/// Work a register write leaves for the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The Command queue may have commands to consume.
    pub cmdq: bool,
}

/// Register state of the model. Identification registers live in the bank too,
/// so that ILLEGAL rules read them through the same [`RegisterBank`].
#[derive(Clone, Debug)]
pub struct Regs {
    pub bank: RegisterBank,
    pub pending: Pending,
}

impl Regs {
    pub fn get(&self, reg: Register) -> u64 {
        self.bank.get(reg)
    }

    pub fn read<T: RegisterType>(&self) -> T {
        self.bank.read()
    }

    pub fn write<T: RegisterType>(&mut self, v: T) {
        self.bank.write(v)
    }

    pub fn idr0(&self) -> Idr0 {
        self.read::<Idr0>()
    }

    pub fn idr1(&self) -> Idr1 {
        self.read::<Idr1>()
    }

    pub fn idr3(&self) -> Idr3 {
        self.read::<Idr3>()
    }

    pub fn idr5(&self) -> Idr5 {
        self.read::<Idr5>()
    }

    pub fn cr0(&self) -> Cr0 {
        self.read::<Cr0>()
    }

    pub fn irq_ctrl(&self) -> IrqCtrl {
        self.read::<IrqCtrl>()
    }

    pub fn global_errors(&self) -> GlobalErrors {
        GlobalErrors::new(self.read(), self.read())
    }

    /// Whether GERROR.CMDQ_ERR is active (differs from GERRORN).
    pub fn cmdq_err_active(&self) -> bool {
        self.global_errors()
            .any_active(Gerror(0).with_cmdq_err(true))
    }

    /// Whether GERROR.EVENTQ_ABT_ERR is active.
    pub fn eventq_abt_active(&self) -> bool {
        self.global_errors()
            .any_active(Gerror(0).with_eventq_abt_err(true))
    }

    /// Output address size in bits (SMMU_IDR5.OAS).
    pub fn oas_bits(&self) -> u32 {
        ps_bits(self.idr5().oas().0)
    }
}

/// Bits of a 3-bit PS/IPS/OAS encoding (reserved values as the largest).
pub fn ps_bits(enc: u8) -> u32 {
    match enc {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        _ => 56,
    }
}

impl MmioHandlers for Regs {
    fn ident(&self, reg: Register) -> u64 {
        self.bank.get(reg)
    }

    fn load(&self, reg: Register) -> u64 {
        self.bank.get(reg)
    }

    fn store(&mut self, reg: Register, value: u64) {
        self.bank.set(reg, value);
    }

    fn write_cr0(&mut self, old: Cr0, new: Cr0) -> Written<Cr0> {
        // Updates complete at once: CR0ACK follows.
        if !old.cmdqen() && new.cmdqen() {
            self.pending.cmdq = true;
        }
        Written::mirrored(new)
    }

    fn write_gbpa(&mut self, _old: Gbpa, new: Gbpa) -> Gbpa {
        // The update completes immediately: Update reads back as 0.
        new.with_update(false)
    }

    fn write_gerrorn(&mut self, _old: Gerrorn, new: Gerrorn) -> Gerrorn {
        new
    }

    fn write_cmdq_prod(&mut self, _old: CmdqProd, new: CmdqProd) -> CmdqProd {
        self.pending.cmdq = true;
        new
    }

    fn write_gmpam(&mut self, _old: Gmpam, new: Gmpam) -> Gmpam {
        new
    }

    fn write_gbpmpam(&mut self, _old: Gbpmpam, new: Gbpmpam) -> Gbpmpam {
        new
    }

    fn write_eventq_cons(&mut self, _old: EventqCons, new: EventqCons) -> EventqCons {
        new
    }

    fn written(&mut self, reg: Register) {
        // Acknowledging CMDQ_ERR lets consumption resume.
        if reg == Register::GERRORN && !self.cmdq_err_active() {
            self.pending.cmdq = true;
        }
    }
}
