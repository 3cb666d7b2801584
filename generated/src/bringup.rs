//! Bringing an SMMU up in the order Linux's `arm_smmu_device_reset` does
//! it, written once: the physical driver runs it over MMIO, the Linux guest
//! model runs it over the vSMMU (and its trace of register accesses is
//! pinned to Linux's).
//!
//! The caller has placed its stream table and queues in memory (every STE
//! aborting, every level-1 descriptor invalid) before calling.

use crate::cmd::{CmdCfgiSteRange, CmdTlbiEl2All, CmdTlbiNsnhAll, Command};
use crate::regs::{
    CmdqBase, Cr0, Cr0Atschk, Cr1, Cr1QueueIc, Cr1QueueOc, Cr1QueueSh, Cr1TableIc, Cr1TableOc,
    Cr1TableSh, Cr2, EventqBase, IrqCtrl, StrtabBase, StrtabBaseCfg,
};
use crate::Register;

/// What software programs: where its structures are and what it enables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub strtab: StrtabBase,
    pub strtab_cfg: StrtabBaseCfg,
    pub cmdq: CmdqBase,
    pub evtq: EventqBase,
    pub cr1: Cr1,
    pub cr2: Cr2,
    /// The SMMU has EL2 translation (IDR0.HYP): its TLB entries are
    /// invalidated too.
    pub hyp: bool,
    /// Enable ATS checking after the event queue.
    pub ats_check: bool,
    /// The SMMU has a PRI queue whose MSI address is cleared.
    pub pri: bool,
    /// The interrupts to enable; none leaves them off (a hypervisor that
    /// drains events itself, or whose guest owns the SMMU's lines).
    pub irqs: IrqCtrl,
    /// Make incoming transactions abort while the SMMU is disabled, before
    /// anything else (a hypervisor's choice). Linux does it only when it
    /// finds the SMMU enabled.
    pub abort_while_disabled: bool,
}

/// CR1 for tables and queues in inner-shareable write-back memory: what
/// Linux programs on a coherent SMMU, and what a hypervisor's own
/// structures in normal memory need.
pub const WRITE_BACK_CR1: Cr1 = Cr1(0)
    .with_table_sh(Cr1TableSh::ISH)
    .with_table_oc(Cr1TableOc::WB)
    .with_table_ic(Cr1TableIc::WB)
    .with_queue_sh(Cr1QueueSh::ISH)
    .with_queue_oc(Cr1QueueOc::WB)
    .with_queue_ic(Cr1QueueIc::WB);

/// The base registers of structures in normal memory, with the allocation
/// hints Linux gives: the stream table and the command queue are read
/// (RA), the event queue is written (WA).
pub fn stream_table_base(addr: u64) -> StrtabBase {
    StrtabBase(0).with_ra(true).with_addr(addr)
}

pub fn command_queue_base(addr: u64, log2size: u32) -> CmdqBase {
    CmdqBase(0)
        .with_ra(true)
        .with_addr(addr)
        .with_log2size(log2size as u8)
}

pub fn event_queue_base(addr: u64, log2size: u32) -> EventqBase {
    EventqBase(0)
        .with_wa(true)
        .with_addr(addr)
        .with_log2size(log2size as u8)
}

/// The register and command-queue operations a bring-up needs.
pub trait ResetBus {
    type Error;
    fn read(&mut self, reg: Register) -> u64;
    fn write(&mut self, reg: Register, value: u64);
    /// Writes `value` to `reg` and waits until `ack` reads the same.
    fn write_acked(&mut self, reg: Register, ack: Register, value: u64) -> Result<(), Self::Error>;
    /// Sets GBPA.ABORT through an update (Linux's `arm_smmu_update_gbpa`).
    fn update_gbpa_abort(&mut self);
    /// The SMMU was found enabled (Linux warns).
    fn found_enabled(&mut self) {}
    /// CMDQ_PROD and CMDQ_CONS were just set to 0 (software's copies follow).
    fn cmdq_reset(&mut self) {}
    /// EVENTQ_PROD and EVENTQ_CONS were just set to 0.
    fn evtq_reset(&mut self) {}
    /// Issues `cmd` followed by a CMD_SYNC and waits for the sync.
    fn issue_with_sync(&mut self, cmd: Command) -> Result<(), Self::Error>;
    /// The interrupts could not be enabled (Linux warns and goes on).
    fn irqs_failed(&mut self) {}
}

/// The whole reset, ending with the SMMU enabled. A failed acknowledgement
/// stops it (`Err`); a failed invalidation does not (Linux logs it and goes
/// on): the inner result reports the first one.
pub fn device_reset<B: ResetBus>(bus: &mut B, s: &Setup) -> Result<Result<(), B::Error>, B::Error> {
    let mut enables = reset_to_cmdq(bus, s)?;
    let invalidated = invalidate_all(bus, s);
    enable_evtq(bus, s, &mut enables)?;
    setup_irqs(bus, s)?;
    enables = enables.with_smmuen(true);
    bus.write_acked(Register::CR0, Register::CR0ACK, u64::from(enables.0))?;
    Ok(invalidated)
}

/// Disable, program the tables and the command queue, enable the queue.
fn reset_to_cmdq<B: ResetBus>(bus: &mut B, s: &Setup) -> Result<Cr0, B::Error> {
    if s.abort_while_disabled {
        bus.update_gbpa_abort();
    } else if Cr0(bus.read(Register::CR0) as u32).smmuen() {
        bus.found_enabled();
        bus.update_gbpa_abort();
    }
    bus.write_acked(Register::CR0, Register::CR0ACK, 0)?;
    bus.write(Register::CR1, u64::from(s.cr1.0));
    bus.write(Register::CR2, u64::from(s.cr2.0));
    bus.write(Register::STRTAB_BASE, s.strtab.0);
    bus.write(Register::STRTAB_BASE_CFG, u64::from(s.strtab_cfg.0));
    bus.write(Register::CMDQ_BASE, s.cmdq.0);
    bus.write(Register::CMDQ_PROD, 0);
    bus.write(Register::CMDQ_CONS, 0);
    bus.cmdq_reset();
    let enables = Cr0(0).with_cmdqen(true);
    bus.write_acked(Register::CR0, Register::CR0ACK, u64::from(enables.0))?;
    Ok(enables)
}

/// Cached configuration and TLBs, each with its own sync; every one is
/// issued even when an earlier one failed.
fn invalidate_all<B: ResetBus>(bus: &mut B, s: &Setup) -> Result<(), B::Error> {
    // CFGI_ALL: CFGI_STE_RANGE with Range 31.
    let cfgi_all = Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31));
    let mut first = bus.issue_with_sync(cfgi_all);
    if s.hyp {
        let r = bus.issue_with_sync(Command::TlbiEl2All(CmdTlbiEl2All::new()));
        first = first.and(r);
    }
    let r = bus.issue_with_sync(Command::TlbiNsnhAll(CmdTlbiNsnhAll::new()));
    first.and(r)
}

/// The event queue, then ATS checking if asked for.
fn enable_evtq<B: ResetBus>(bus: &mut B, s: &Setup, enables: &mut Cr0) -> Result<(), B::Error> {
    bus.write(Register::EVENTQ_BASE, s.evtq.0);
    bus.write(Register::EVENTQ_PROD, 0);
    bus.write(Register::EVENTQ_CONS, 0);
    bus.evtq_reset();
    *enables = enables.with_eventqen(true);
    bus.write_acked(Register::CR0, Register::CR0ACK, u64::from(enables.0))?;
    if s.ats_check {
        *enables = enables.with_atschk(Cr0Atschk::SAFE);
        bus.write_acked(Register::CR0, Register::CR0ACK, u64::from(enables.0))?;
    }
    Ok(())
}

/// `arm_smmu_setup_irqs` with wired interrupts: off, MSI addresses
/// cleared, then the ones asked for on.
fn setup_irqs<B: ResetBus>(bus: &mut B, s: &Setup) -> Result<(), B::Error> {
    bus.write_acked(Register::IRQ_CTRL, Register::IRQ_CTRLACK, 0)?;
    bus.write(Register::GERROR_IRQ_CFG0, 0);
    bus.write(Register::EVENTQ_IRQ_CFG0, 0);
    if s.pri {
        bus.write(Register::PRIQ_IRQ_CFG0, 0);
    }
    if s.irqs.0 != 0 {
        let on = bus.write_acked(
            Register::IRQ_CTRL,
            Register::IRQ_CTRLACK,
            u64::from(s.irqs.0),
        );
        if on.is_err() {
            bus.irqs_failed();
        }
    }
    Ok(())
}
