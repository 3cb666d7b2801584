//! One virtual SMMUv3: the register file, the entry points a hypervisor
//! calls, and the glue between the generated MMIO dispatch and the queues.
//!
//! # Concurrency contract
//!
//! A hypervisor may call one instance from any physical CPU, but calls to
//! the same instance must be serialized (a per-domain lock held across one
//! entry point call; `Vsmmu` is `Send`, not `Sync`). Different instances are
//! independent. The runtime never blocks or spins on guest-controlled state:
//! every entry point does a bounded amount of work (at most
//! `Policy::commands_per_call` guest commands and `Policy::stes_per_call`
//! guest STE reads, whatever the size of the domain) and asks for deferred
//! work for the rest. The calls it makes into the hardware layer
//! ([`PhysicalSmmu`]) are the only ones that may wait, and they wait on the
//! physical SMMU, bounded by that layer's timeouts.
//!
//! # Nothing is acknowledged before it took effect
//!
//! CR0ACK.SMMUEN and GBPA.Update complete only once every stream the change
//! affects is installed on the hardware (the guest polls them, as Linux
//! does); a guest CMD_SYNC completes only once the hardware confirmed every
//! invalidation before it. When the hardware does not confirm, the SYNC stays
//! pending and is retried with backoff; after `Policy::hw_retry_limit`
//! failures in a row the domain's streams are made to abort (so nothing can
//! use a translation the guest asked to remove) until the hardware confirms
//! again, when they get the guest's configuration back. The guest is never
//! told something completed that did not: a Linux guest reports
//! `CMD_SYNC timeout`, as on a broken SMMU.

mod cmdq;
mod evtq;
mod install;
mod invalidate;

use alloc::vec::Vec;

use smmuv3::mmio::{mmio_read, mmio_write, MmioHandlers};
use smmuv3::queue::GlobalErrors;
use smmuv3::regs::{
    CmdqCons, CmdqConsErr, CmdqProd, Cr0, Cr0ack, EventqCons, Gbpa, Gbpmpam, Gerror, Gerrorn,
    Gmpam, Idr0StallModel, IrqCtrlack,
};
use smmuv3::{IdRegisters, Register, RegisterBank, RegisterValues, WriteEffect, Written};

use crate::batch::Batch;
use crate::budget::HwBudget;
use crate::dirty::DirtyStreams;
use crate::idregs::{self, Incompatible, Presentation};
use crate::policy::{Policy, PolicyError};
use crate::ports::{
    HwError, Ipa, Irq, MemFault, PhysStream, PhysicalSmmu, Ports, SmmuId, StreamConfig,
};
use crate::stats::Stats;
use crate::stream_table::{Presented, Refusal};
use crate::vsid::{DomainId, PsidOwners, StreamMap};

/// How the hypervisor sets up one vSMMU.
#[derive(Clone, Debug)]
pub struct VsmmuConfig {
    pub domain: DomainId,
    /// The domain's VMID: forced into every invalidation the guest sends.
    pub vmid: u16,
    /// Bits of the domain's guest-physical address space.
    pub ipa_bits: u32,
    /// Present MSI support (CMD_SYNC by MSI-poll, MSI configuration registers).
    pub msi: bool,
    /// Present SEV: the hypervisor implements [`crate::IrqSink::sev`].
    pub sev: bool,
    /// log2 of the largest queues the guest may configure (at most 19; the
    /// event queue is further capped by `Policy::pending_event_limit`).
    pub cmdqs: u32,
    pub eventqs: u32,
    pub policy: Policy,
}

impl VsmmuConfig {
    pub fn new(domain: DomainId, vmid: u16, ipa_bits: u32) -> Self {
        VsmmuConfig {
            domain,
            vmid,
            ipa_bits,
            msi: true,
            sev: false,
            cmdqs: 8,
            eventqs: 8,
            policy: Policy::default(),
        }
    }
}

/// Why a vSMMU could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The hardware layer does not know an SMMU the stream map uses.
    UnknownSmmu(SmmuId),
    /// A physical SMMU cannot nest (no stage 1 or no stage 2).
    NoNesting(SmmuId),
    /// A physical SMMU stalls every faulting transaction (STALL_MODEL
    /// 0b10): a guest's faults would stall with nobody to resume them.
    StallForced(SmmuId),
    /// The physical SMMUs cannot be presented as one.
    Incompatible(Incompatible),
    /// A policy value would stop the vSMMU from making progress.
    Policy(PolicyError),
}

/// What is installed for a vSID, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    pub config: StreamConfig,
    /// Set when the stream terminates because of the guest's configuration:
    /// the event the device's next access causes is rewritten to match.
    pub refusal: Option<Refusal>,
}

/// What became of a physical event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Written to the guest's event queue.
    Forwarded,
    /// For the guest, but discarded: its event queue is disabled, full (then
    /// OVFLG says so) or unreachable.
    Dropped,
    /// Kept by the hypervisor: a stage-2 fault on a final access, an event
    /// the guest's view has no place for, or one the guest's configuration
    /// says not to record (C_BAD_STREAMID without CR2.RECINVSID).
    Hypervisor,
    /// The stream does not belong to this domain.
    NotOurs,
}

/// Why command processing stopped in a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Nothing (more) to do.
    Idle,
    /// The per-call allowance ran out: continue as deferred work.
    Budget,
    /// The hardware budget ran out, or the hardware failed: continue after
    /// this many nanoseconds.
    Hardware(u64),
    /// The queue is stopped on an error until the guest acknowledges it.
    Error,
}

/// Per-call allowances (Observation 4).
struct Allowance {
    commands: u32,
    stes: u32,
}

/// The first retry after a hardware failure waits this long; each further
/// one twice as long.
const RETRY_NS: u64 = 1_000_000;

/// One domain's virtual SMMUv3.
pub struct Vsmmu {
    cfg: VsmmuConfig,
    regs: RegisterBank,
    ident: IdRegisters,
    presented: Presented,
    streams: StreamMap,
    /// The physical SMMUs the domain uses, with their ID registers (every
    /// forwarded command is checked against them too).
    smmus: Vec<(SmmuId, IdRegisters)>,
    /// What is installed, per stream (by `StreamMap::index`).
    installed: Vec<Option<Installed>>,
    batch: Batch,
    /// Streams whose guest STE must be read and installed again.
    dirty: DirtyStreams,
    budget: HwBudget,
    stats: Stats,
    /// Hardware failures to confirm since the last confirmation.
    hw_failures: u32,
    /// The streams abort because the hardware kept failing.
    contained: bool,
    /// Guest commands consumed by the last entry point call.
    last_call_commands: u32,
}

/// The largest k with 2^k <= n (n > 0).
fn log2_floor(n: u32) -> u32 {
    31 - n.max(1).leading_zeros()
}

impl Vsmmu {
    /// A vSMMU in its reset state for the domain's streams. Every stream gets
    /// what GBPA says for a disabled SMMU (the domain's stage 2 by default;
    /// never physical bypass).
    pub fn new(
        cfg: VsmmuConfig,
        streams: StreamMap,
        hw: &mut dyn PhysicalSmmu,
    ) -> Result<Self, SetupError> {
        cfg.policy.check().map_err(SetupError::Policy)?;
        let mut caps: Vec<IdRegisters> = Vec::new();
        let mut smmus = Vec::new();
        for s in streams.smmus() {
            let c = hw.capabilities(s).ok_or(SetupError::UnknownSmmu(s))?;
            let idr0 = c.idr0;
            if !idr0.s1p() || !idr0.s2p() {
                return Err(SetupError::NoNesting(s));
            }
            if idr0.stall_model() == Idr0StallModel::STALL_FORCED {
                return Err(SetupError::StallForced(s));
            }
            caps.push(c);
            smmus.push((s, c));
        }
        let max_vsid = streams.max_vsid().unwrap_or(0);
        let p = Presentation {
            ipa_bits: cfg.ipa_bits,
            sidsize: (32 - max_vsid.leading_zeros()).max(1),
            msi: cfg.msi,
            sev: cfg.sev,
            cmdqs: cfg.cmdqs,
            // The event queue is full where forwarding must stop (Observation 6).
            eventqs: cfg.eventqs.min(log2_floor(cfg.policy.pending_event_limit)),
        };
        let ident = idregs::presented(&caps, &p).map_err(SetupError::Incompatible)?;
        let presented = Presented {
            idr0: ident.idr0,
            idr1: ident.idr1,
            oas_bits: idregs::oas_bits(ident.idr5.oas()),
        };
        let budget = HwBudget::new(&cfg.policy);
        let streams_len = streams.len();
        let mut v = Vsmmu {
            cfg,
            regs: RegisterBank::at_reset(),
            ident,
            presented,
            streams,
            smmus,
            installed: alloc::vec![None; streams_len],
            batch: Batch::default(),
            dirty: DirtyStreams::default(),
            budget,
            stats: Stats::default(),
            hw_failures: 0,
            contained: false,
            last_call_commands: 0,
        };
        v.install_reset_state(hw);
        Ok(v)
    }

    /// Every stream as a disabled SMMU leaves it, installed in rounds of
    /// neighbouring streams on one SMMU (each round's steps share their
    /// invalidations and syncs).
    fn install_reset_state(&mut self, hw: &mut dyn PhysicalSmmu) {
        let want = self.disabled();
        let all: Vec<(u32, PhysStream)> = self.streams.iter().collect();
        let mut round: Vec<(u32, PhysStream, Installed)> = Vec::new();
        for (vsid, stream) in all {
            let other_smmu = round.first().is_some_and(|(_, s, _)| s.smmu != stream.smmu);
            if other_smmu || round.len() >= crate::batch::MAX_PER_SMMU {
                self.apply_all(hw, &round);
                round.clear();
            }
            round.push((vsid, stream, want));
        }
        self.apply_all(hw, &round);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn config(&self) -> &VsmmuConfig {
        &self.cfg
    }

    pub fn streams(&self) -> &StreamMap {
        &self.streams
    }

    /// What is installed for a vSID.
    pub fn installed(&self, vsid: u32) -> Option<Installed> {
        let i = self.streams.index(vsid)?;
        self.installed.get(i).copied().flatten()
    }

    /// Guest commands consumed by the last entry point call (bounded by the policy).
    pub fn last_call_commands(&self) -> u32 {
        self.last_call_commands
    }

    /// Whether streams wait to be read and installed (deferred work will do it).
    pub fn streams_pending(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Whether the domain's streams abort because the hardware kept failing.
    pub fn contained(&self) -> bool {
        self.contained
    }

    /// The domain's budget of physical commands.
    pub fn budget(&self) -> &HwBudget {
        &self.budget
    }

    /// The value of an ID register as the guest sees it.
    pub fn ident(&self, reg: Register) -> u64 {
        self.ident.value(reg)
    }

    /// A register's current value (for inspection and tests).
    pub fn register(&self, reg: Register) -> u64 {
        match reg.info().emulation {
            smmuv3::Emulation::Ident => self.ident.value(reg),
            _ => self.regs.get(reg),
        }
    }

    /// A trapped read at `offset` in the 128 KiB frame (page 1 at 0x10000).
    pub fn mmio_read(&mut self, ports: &mut Ports<'_>, offset: u32, size: u32) -> u64 {
        self.last_call_commands = 0;
        let (page, off) = smmuv3::split_frame_offset(offset);
        if page > 1 {
            return 0;
        }
        let ctx = Ctx { v: self, ports };
        mmio_read(&ctx, page, off, size)
    }

    /// A trapped write at `offset` in the 128 KiB frame.
    pub fn mmio_write(
        &mut self,
        ports: &mut Ports<'_>,
        offset: u32,
        size: u32,
        value: u64,
    ) -> WriteEffect {
        self.last_call_commands = 0;
        let (page, off) = smmuv3::split_frame_offset(offset);
        if page > 1 {
            return WriteEffect::Ignored;
        }
        let mut ctx = Ctx { v: self, ports };
        mmio_write(&mut ctx, page, off, size, value)
    }

    /// The deferred-work callback: continues what a trap left for later.
    pub fn run_deferred(&mut self, ports: &mut Ports<'_>) {
        self.last_call_commands = 0;
        self.pump(ports);
    }

    /// Tears the domain down: every stream aborts, the domain's TLB entries
    /// are gone from every SMMU it used (confirmed by the hardware), and only
    /// then are its physical streams given back to `owners`, so that a later
    /// owner of the streams, the VMID or the stage-2 pages finds nothing of
    /// it. On an error nothing is released and the call can be repeated.
    pub fn teardown(
        &mut self,
        hw: &mut dyn PhysicalSmmu,
        owners: &mut PsidOwners,
    ) -> Result<(), HwError> {
        let abort = StreamConfig::Abort { report: false };
        let mut result = Ok(());
        for (_, stream) in self.streams.iter() {
            if let Err(e) = hw.install(stream, &abort) {
                result = Err(e);
            }
        }
        self.installed.iter_mut().for_each(|i| *i = None);
        for (smmu, _) in &self.smmus {
            if let Err(e) = hw.release(*smmu) {
                result = Err(e);
            }
        }
        if result.is_ok() {
            owners.release_domain(self.cfg.domain);
        }
        result
    }

    fn cr0(&self) -> Cr0 {
        self.regs.read()
    }

    fn cr0ack(&self) -> Cr0ack {
        self.regs.read()
    }

    fn gbpa(&self) -> Gbpa {
        self.regs.read()
    }

    fn global_errors(&self) -> GlobalErrors {
        GlobalErrors::new(self.regs.read(), self.regs.read())
    }

    fn gerror_active(&self, mask: u32) -> bool {
        self.global_errors().any_active(Gerror(mask))
    }

    /// Raises a global error (§7.5): toggles GERROR unless the error is
    /// already active, and signals the GERROR interrupt if enabled.
    fn raise_gerror(&mut self, ports: &mut Ports<'_>, mask: u32) {
        let Some(g) = self.global_errors().raise(Gerror(mask)) else {
            return;
        };
        self.regs.write(g);
        // A failed GERROR MSI is recorded without another GERROR MSI.
        let gerror_msi_failed = Gerror(0).with_msi_gerror_abt_err(true).0;
        if mask != gerror_msi_failed && self.regs.read::<IrqCtrlack>().gerror_irqen() {
            self.signal(ports, Irq::Gerror);
        }
    }

    /// An interrupt: an MSI where MSI is presented and configured, else the
    /// wired line. An MSI that fails raises its MSI_*_ABT_ERR.
    fn signal(&mut self, ports: &mut Ports<'_>, irq: Irq) {
        let (cfg0, cfg1, abt) = match irq {
            Irq::Eventq => (
                Register::EVENTQ_IRQ_CFG0,
                Register::EVENTQ_IRQ_CFG1,
                Gerror(0).with_msi_eventq_abt_err(true),
            ),
            _ => (
                Register::GERROR_IRQ_CFG0,
                Register::GERROR_IRQ_CFG1,
                Gerror(0).with_msi_gerror_abt_err(true),
            ),
        };
        let addr = smmuv3::regs::GerrorIrqCfg0(self.regs.get(cfg0)).addr();
        if self.cfg.msi && addr != 0 {
            let data = self.regs.get(cfg1) as u32;
            if msi_write(ports, irq, Ipa(addr), data).is_err() {
                self.raise_gerror(ports, abt.0);
            }
        } else {
            ports.irq.raise(irq);
        }
    }

    // ---- register side effects ----

    /// CR0 as the guest's write makes it (only the fields the presented
    /// features have: no PRI queue, ATS checks, VMW or DPT walks).
    fn on_cr0(&mut self, old: Cr0, new: Cr0) -> Written<Cr0> {
        let ack = self.cr0ack();
        if new.smmuen() != ack.smmuen() || new.smmuen() != old.smmuen() {
            self.dirty.mark_all(&self.streams);
        }
        if new.cmdqen() && !ack.cmdqen() {
            // A freshly enabled queue starts with no error pending in CONS.ERR.
            let c = self
                .regs
                .read::<CmdqCons>()
                .with_err(CmdqConsErr::CERROR_NONE);
            self.regs.write(c);
        }
        // The queue enables are acknowledged at once (the commands run
        // against them); SMMUEN once its streams are installed
        // (`settle_acks`).
        Written {
            value: new,
            ack: new.with_smmuen(ack.smmuen()),
        }
    }

    fn on_gbpa(&mut self, old: Gbpa, new: Gbpa) -> Gbpa {
        // A write must request the update (Update=1); one that does not is
        // ignored, as SMMUv3.2 and later behave. While Update is 1, the
        // generated dispatch ignores writes.
        if !new.update() {
            return old;
        }
        // Update stays 1 until the streams follow (settle_acks); GBPA only
        // matters while the SMMU is (being) disabled.
        if !self.cr0().smmuen() {
            self.dirty.mark_all(&self.streams);
        }
        new
    }
}

/// An MSI the guest configured: a write to guest RAM where the address is
/// RAM (an MSI-poll word), else to its interrupt controller's doorbell.
fn msi_write(ports: &mut Ports<'_>, irq: Irq, ipa: Ipa, data: u32) -> Result<(), MemFault> {
    if ports.mem.is_backed(ipa, 4) {
        ports.mem.write(ipa, &data.to_le_bytes())
    } else {
        ports.irq.msi(irq, ipa, data);
        Ok(())
    }
}

/// The vSMMU plus the ports of the current call, as the generated dispatch sees it.
struct Ctx<'v, 'p, 'a> {
    v: &'v mut Vsmmu,
    ports: &'p mut Ports<'a>,
}

impl MmioHandlers for Ctx<'_, '_, '_> {
    fn ident(&self, reg: Register) -> u64 {
        self.v.ident.value(reg)
    }
    fn load(&self, reg: Register) -> u64 {
        self.v.regs.get(reg)
    }
    fn store(&mut self, reg: Register, value: u64) {
        self.v.regs.set(reg, value)
    }
    fn write_cr0(&mut self, old: Cr0, new: Cr0) -> Written<Cr0> {
        self.v.on_cr0(old, new)
    }
    fn write_gbpa(&mut self, old: Gbpa, new: Gbpa) -> Gbpa {
        self.v.on_gbpa(old, new)
    }
    // Not presented (no MPAM): the registers are absent. Complete the
    // handshakes anyway should they ever be reached.
    fn write_gmpam(&mut self, _old: Gmpam, new: Gmpam) -> Gmpam {
        new.with_update(false)
    }
    fn write_gbpmpam(&mut self, _old: Gbpmpam, new: Gbpmpam) -> Gbpmpam {
        new.with_update(false)
    }
    fn write_gerrorn(&mut self, _old: Gerrorn, new: Gerrorn) -> Gerrorn {
        new
    }
    fn write_cmdq_prod(&mut self, _old: CmdqProd, new: CmdqProd) -> CmdqProd {
        new
    }
    fn write_eventq_cons(&mut self, _old: EventqCons, new: EventqCons) -> EventqCons {
        new
    }
    /// A new configuration, new commands, or an acknowledged CMDQ_ERR (which
    /// restarts the command queue, §7.1): the queue and the streams move.
    fn written(&mut self, reg: Register) {
        if matches!(
            reg,
            Register::CR0 | Register::GBPA | Register::GERRORN | Register::CMDQ_PROD
        ) {
            self.v.pump(self.ports);
        }
    }
}
