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

use alloc::vec::Vec;

use smmuv3::cmd::{CmdCfgiCdAll, CmdSyncCs, CmdTlbiNhAll, Command};
use smmuv3::evt::Event;
use smmuv3::mmio::{mmio_read, mmio_write, MmioHandlers};
use smmuv3::queue::{event_slot, EventSlot, GlobalErrors, Queue};
use smmuv3::regs::{
    CmdqBase, CmdqCons, CmdqConsErr, CmdqProd, Cr0, Cr2, Gbpa, Gbpmpam, Gerror, Gerrorn, Gmpam,
    Idr0, Idr0StallModel, Idr1, Idr5, IrqCtrl, StrtabBase, StrtabBaseCfg,
};
use smmuv3::{Register, RegisterBank, WriteEffect};

use crate::batch::{Batch, Pushed};
use crate::budget::HwBudget;
use crate::dirty::DirtyStreams;
use crate::events;
use crate::idregs::{self, Incompatible, Presentation};
use crate::policy::{Policy, PolicyError};
use crate::ports::{
    HwError, Ipa, Irq, MemFault, PhysCaps, PhysEvent, PhysStream, PhysicalSmmu, Ports, SmmuId,
    StreamConfig, INSTALL_MAX_COMMANDS,
};
use crate::stats::Stats;
use crate::stream_table::{self, GuestStream, Presented, Refusal};
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
    ident: RegisterBank,
    presented: Presented,
    streams: StreamMap,
    /// The physical SMMUs the domain uses, with their ID registers (every
    /// forwarded command is checked against them too).
    smmus: Vec<(SmmuId, RegisterBank)>,
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

/// The physical ID registers as a register bank (for ILLEGAL checks).
fn phys_bank(c: &PhysCaps) -> RegisterBank {
    let mut bank = RegisterBank::at_reset();
    bank.set(Register::IDR0, u64::from(c.idr0));
    bank.set(Register::IDR1, u64::from(c.idr1));
    bank.set(Register::IDR3, u64::from(c.idr3));
    bank.set(Register::IDR5, u64::from(c.idr5));
    bank.set(Register::IIDR, u64::from(c.iidr));
    bank.set(Register::AIDR, u64::from(c.aidr));
    bank
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
        let mut caps: Vec<PhysCaps> = Vec::new();
        let mut smmus = Vec::new();
        for s in streams.smmus() {
            let c = hw.capabilities(s).ok_or(SetupError::UnknownSmmu(s))?;
            let idr0 = Idr0(c.idr0);
            if !idr0.s1p() || !idr0.s2p() {
                return Err(SetupError::NoNesting(s));
            }
            if idr0.stall_model() == Idr0StallModel::STALL_FORCED {
                return Err(SetupError::StallForced(s));
            }
            caps.push(c);
            smmus.push((s, phys_bank(&c)));
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
            idr0: Idr0(ident.get(Register::IDR0) as u32),
            idr1: Idr1(ident.get(Register::IDR1) as u32),
            oas_bits: idregs::oas_bits(Idr5(ident.get(Register::IDR5) as u32).oas()),
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
        self.ident.get(reg)
    }

    /// A register's current value (for inspection and tests).
    pub fn register(&self, reg: Register) -> u64 {
        match reg.info().emulation {
            smmuv3::Emulation::Ident => self.ident.get(reg),
            _ => self.regs.get(reg),
        }
    }

    /// A trapped read at `offset` in the 128 KiB frame (page 1 at 0x10000).
    pub fn mmio_read(&mut self, ports: &mut Ports<'_>, offset: u32, size: u32) -> u64 {
        self.last_call_commands = 0;
        let (page, off) = (offset >> 16, offset & 0xffff);
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
        let (page, off) = (offset >> 16, offset & 0xffff);
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

    fn reg<T>(&self, reg: Register, wrap: impl Fn(u64) -> T) -> T {
        wrap(self.regs.get(reg))
    }

    fn cr0(&self) -> Cr0 {
        self.reg(Register::CR0, |v| Cr0(v as u32))
    }

    fn cr0ack(&self) -> Cr0 {
        self.reg(Register::CR0ACK, |v| Cr0(v as u32))
    }

    fn gbpa(&self) -> Gbpa {
        self.reg(Register::GBPA, |v| Gbpa(v as u32))
    }

    fn global_errors(&self) -> GlobalErrors {
        GlobalErrors::new(
            Gerror(self.regs.get(Register::GERROR) as u32),
            Gerrorn(self.regs.get(Register::GERRORN) as u32),
        )
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
        self.regs.set(Register::GERROR, u64::from(g.0));
        // A failed GERROR MSI is recorded without another GERROR MSI.
        let gerror_msi_failed = Gerror(0).with_msi_gerror_abt_err(true).0;
        if mask != gerror_msi_failed
            && self
                .reg(Register::IRQ_CTRLACK, |v| IrqCtrl(v as u32))
                .gerror_irqen()
        {
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

    // ---- streams ----

    /// What a stream does while the SMMU is disabled (GBPA), or while the
    /// hardware cannot confirm invalidations.
    fn disabled(&self) -> Installed {
        let config = if self.contained || self.gbpa().abort() {
            StreamConfig::Abort { report: false }
        } else {
            StreamConfig::Stage2Only
        };
        Installed {
            config,
            refusal: None,
        }
    }

    /// What the vSID's stream should do now: decided by CR0.SMMUEN, the
    /// state being moved to (CR0ACK follows once every stream is there).
    fn desired(&mut self, ports: &mut Ports<'_>, vsid: u32) -> Installed {
        if self.contained || !self.cr0().smmuen() {
            return self.disabled();
        }
        let base = StrtabBase(self.regs.get(Register::STRTAB_BASE));
        let cfg = StrtabBaseCfg(self.regs.get(Register::STRTAB_BASE_CFG) as u32);
        let outcome = match stream_table::read_ste(ports.mem, base, cfg, vsid, &self.presented) {
            Ok(ste) => stream_table::interpret(&ste, &self.presented),
            Err(r) => GuestStream::Refused(r),
        };
        match outcome {
            GuestStream::Config(config) => Installed {
                config,
                refusal: None,
            },
            GuestStream::Refused(r) => {
                self.stats.bad_stes += 1;
                Installed {
                    config: StreamConfig::Abort { report: true },
                    refusal: Some(r),
                }
            }
        }
    }

    /// Installs `want` for the vSID's physical stream unless it is there
    /// already, and returns the physical commands that took. On a failure
    /// the stream is left terminating rather than in an unknown state.
    fn apply(&mut self, hw: &mut dyn PhysicalSmmu, vsid: u32, want: Installed) -> u32 {
        let Some(stream) = self.streams.physical(vsid) else {
            return 0;
        };
        if self.installed(vsid) == Some(want) {
            return 0;
        }
        self.stats.hw_installs += 1;
        match hw.install(stream, &want.config) {
            Ok(n) => {
                self.set_installed(vsid, Some(want));
                n
            }
            Err(_) => {
                self.stats.hw_errors += 1;
                let abort = Installed {
                    config: StreamConfig::Abort { report: false },
                    refusal: None,
                };
                match hw.install(stream, &abort.config) {
                    Ok(n) => {
                        self.set_installed(vsid, Some(abort));
                        INSTALL_MAX_COMMANDS + n
                    }
                    Err(_) => {
                        self.set_installed(vsid, None);
                        2 * INSTALL_MAX_COMMANDS
                    }
                }
            }
        }
    }

    /// Installs what changed, all at once where the hardware layer can
    /// share invalidations among them; one by one when that fails.
    fn apply_all(
        &mut self,
        hw: &mut dyn PhysicalSmmu,
        changes: &[(u32, PhysStream, Installed)],
    ) -> u32 {
        if let [(vsid, _, want)] = changes {
            return self.apply(hw, *vsid, *want);
        }
        let installs: Vec<(PhysStream, StreamConfig)> =
            changes.iter().map(|(_, s, w)| (*s, w.config)).collect();
        self.stats.hw_installs += changes.len() as u64;
        match hw.install_many(&installs) {
            Ok(n) => {
                for (vsid, _, want) in changes {
                    self.set_installed(*vsid, Some(*want));
                }
                n
            }
            Err(_) => {
                // Some may be in place, some not: each on its own.
                self.stats.hw_installs -= changes.len() as u64;
                let mut cost = INSTALL_MAX_COMMANDS;
                for (vsid, _, want) in changes {
                    self.set_installed(*vsid, None);
                    cost = cost.saturating_add(self.apply(hw, *vsid, *want));
                }
                cost
            }
        }
    }

    fn set_installed(&mut self, vsid: u32, what: Option<Installed>) {
        let slot = self
            .streams
            .index(vsid)
            .and_then(|i| self.installed.get_mut(i));
        if let Some(slot) = slot {
            *slot = what;
        }
    }

    /// Makes sure every SMMU's pending list has room for one more command.
    fn make_room(&mut self, ports: &mut Ports<'_>) -> Result<(), Stop> {
        if self.smmus.iter().any(|(s, _)| self.batch.is_full(*s)) {
            self.flush_invalidations(ports)?;
        }
        Ok(())
    }

    /// Installs dirty streams, bounded by the per-call STE allowance and the
    /// hardware budget, which is charged what the installs really cost.
    fn flush_streams(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> Result<(), Stop> {
        let worst = u64::from(INSTALL_MAX_COMMANDS);
        while !self.dirty.is_empty() {
            if allow.stes == 0 {
                return Err(Stop::Budget);
            }
            self.make_room(ports)?;
            if !self.budget.take(worst) {
                self.stats.hw_budget_exhausted += 1;
                return Err(Stop::Hardware(self.budget.wait_ns(worst)));
            }
            let before = allow.stes;
            let cost = u64::from(self.install_round(ports, allow));
            self.stats.hw_install_commands += cost;
            self.budget.settle(worst, cost);
            if allow.stes == before {
                // Nothing taken (a full list first): let the next call go on.
                return Err(Stop::Budget);
            }
        }
        Ok(())
    }

    /// Reads the next dirty streams of one SMMU (as many as the allowance
    /// lets) and installs those that changed together. An unchanged nested
    /// stream gets a CFGI_CD_ALL: the guest's CFGI_STE also invalidates the
    /// CDs cached through the STE. Returns the physical commands it took.
    fn install_round(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> u32 {
        let mut changes: Vec<(u32, PhysStream, Installed)> = Vec::new();
        while let Some(vsid) = self.dirty.first() {
            let Some(stream) = self.streams.physical(vsid) else {
                self.dirty.pop_first(&self.streams);
                continue;
            };
            let other_smmu = changes
                .first()
                .is_some_and(|(_, s, _)| s.smmu != stream.smmu);
            if allow.stes == 0 || other_smmu || self.batch.is_full(stream.smmu) {
                break;
            }
            self.dirty.pop_first(&self.streams);
            allow.stes -= 1;
            let want = self.desired(ports, vsid);
            if self.installed(vsid) != Some(want) {
                changes.push((vsid, stream, want));
            } else if matches!(want.config, StreamConfig::Nested(_)) {
                let c = Command::CfgiCdAll(CmdCfgiCdAll::new().with_stream_id(stream.psid));
                // There is room (checked above).
                self.queue(stream.smmu, c);
            }
        }
        self.apply_all(ports.hw, &changes)
    }

    // ---- invalidations ----

    fn queue(&mut self, smmu: SmmuId, cmd: Command) -> Pushed {
        let pushed = self
            .batch
            .push(smmu, cmd, self.cfg.policy.tlbi_coarsen_threshold);
        if pushed == Pushed::Merged {
            self.stats.merged += 1;
        }
        pushed
    }

    /// Whether the hardware would take `cmd` (already rewritten for it):
    /// nothing a guest sends may stop the shared physical queue with
    /// CERROR_ILL.
    fn legal_on(&self, smmu: SmmuId, cmd: &Command) -> bool {
        self.smmus
            .iter()
            .find(|(s, _)| *s == smmu)
            .is_some_and(|(_, ids)| cmd.illegal(ids).is_none())
    }

    /// Forwards a guest command, rewritten, to one SMMU.
    fn forward(&mut self, ports: &mut Ports<'_>, smmu: SmmuId, cmd: Command) -> Result<(), Stop> {
        if !self.legal_on(smmu, &cmd) {
            return Err(self.refuse(ports));
        }
        self.queue_room(ports, smmu, cmd)
    }

    /// Forwards a guest command, rewritten, to every SMMU the domain uses
    /// (checked on all of them before any is sent).
    fn forward_all(&mut self, ports: &mut Ports<'_>, cmd: Command) -> Result<(), Stop> {
        if !self.smmus.iter().all(|(_, ids)| cmd.illegal(ids).is_none()) {
            return Err(self.refuse(ports));
        }
        for i in 0..self.smmus.len() {
            if let Some(&(smmu, _)) = self.smmus.get(i) {
                self.queue_room(ports, smmu, cmd)?;
            }
        }
        Ok(())
    }

    /// A command the hardware would refuse: CERROR_ILL on the guest's queue.
    fn refuse(&mut self, ports: &mut Ports<'_>) -> Stop {
        self.command_error(ports, CmdqConsErr::CERROR_ILL);
        Stop::Error
    }

    /// Queues `cmd` for `smmu`, sending its list first when it is full.
    fn queue_room(
        &mut self,
        ports: &mut Ports<'_>,
        smmu: SmmuId,
        cmd: Command,
    ) -> Result<(), Stop> {
        if self.batch.is_full(smmu) {
            self.flush_invalidations(ports)?;
        }
        if self.queue(smmu, cmd) == Pushed::Full {
            // Only if the flush above could not empty the list.
            return Err(Stop::Budget);
        }
        Ok(())
    }

    /// Sends pending invalidations to the hardware, as far as the budget
    /// allows, in pieces the budget can always hold (so a small burst only
    /// delays completion, never blocks it).
    fn flush_invalidations(&mut self, ports: &mut Ports<'_>) -> Result<(), Stop> {
        let piece = usize::try_from(self.budget.capacity())
            .unwrap_or(usize::MAX)
            .clamp(1, crate::batch::MAX_PER_SMMU);
        while let Some(smmu) = self.batch.next_pending() {
            let mut cmds = self.batch.take(smmu);
            while !cmds.is_empty() {
                let n = cmds.len().min(piece);
                if !self.budget.take(n as u64) {
                    self.stats.hw_budget_exhausted += 1;
                    let wait = self.budget.wait_ns(n as u64);
                    self.batch.put_back(smmu, cmds);
                    return Err(Stop::Hardware(wait));
                }
                let rest = cmds.split_off(n);
                self.stats.hw_commands += n as u64;
                // Some may have been sent: the next sync must cover them.
                self.batch.unsynced.insert(smmu);
                if ports.hw.invalidate(smmu, &cmds).is_err() {
                    cmds.extend(rest);
                    self.batch.put_back(smmu, cmds);
                    return Err(self.hw_failed(smmu));
                }
                cmds = rest;
            }
        }
        Ok(())
    }

    /// Everything before a guest CMD_SYNC, installed, sent and confirmed by
    /// the hardware: at most one physical sync per SMMU.
    fn sync_all(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> Result<(), Stop> {
        // A confirmation that ends a containment re-installs the streams,
        // which must be done (and confirmed) before the guest's SYNC too.
        for _ in 0..2 {
            self.flush_streams(ports, allow)?;
            self.flush_invalidations(ports)?;
            while let Some(smmu) = self.batch.unsynced.first().copied() {
                if !self.budget.take(1) {
                    self.stats.hw_budget_exhausted += 1;
                    return Err(Stop::Hardware(self.budget.wait_ns(1)));
                }
                self.stats.hw_syncs += 1;
                if ports.hw.sync(smmu).is_err() {
                    return Err(self.hw_failed(smmu));
                }
                self.batch.unsynced.remove(&smmu);
            }
            // Every SMMU of the domain confirmed.
            self.hw_confirmed();
            if self.dirty.is_empty() {
                return Ok(());
            }
        }
        Err(Stop::Budget)
    }

    /// The hardware did not confirm what was sent to `smmu`: send a command
    /// that covers all of it again (every stage-1 entry of the VMID, and
    /// every CD cached through a nested stream, by re-reading the streams),
    /// and make the streams abort once it has failed too often. Returns
    /// when to retry.
    fn hw_failed(&mut self, smmu: SmmuId) -> Stop {
        self.stats.hw_errors += 1;
        self.hw_failures = self.hw_failures.saturating_add(1);
        let all = Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(self.cfg.vmid));
        self.batch.cover(smmu, all);
        self.batch.unsynced.insert(smmu);
        self.dirty.mark_all(&self.streams);
        if self.hw_failures >= self.cfg.policy.hw_retry_limit && !self.contained {
            self.contained = true;
            self.stats.containments += 1;
        }
        Stop::Hardware(RETRY_NS << self.hw_failures.min(10))
    }

    /// The hardware confirmed: a containment ends (the streams get the
    /// guest's configuration back).
    fn hw_confirmed(&mut self) {
        self.hw_failures = 0;
        if self.contained {
            self.contained = false;
            self.dirty.mark_all(&self.streams);
        }
    }

    // ---- the command queue ----

    fn cmdq(&self) -> Queue {
        let base = CmdqBase(self.regs.get(Register::CMDQ_BASE));
        let max = u32::from(Idr1(self.ident.get(Register::IDR1) as u32).cmdqs());
        Queue::command(base, max)
    }

    /// Stops the queue on a command error (§7.1).
    fn command_error(&mut self, ports: &mut Ports<'_>, err: CmdqConsErr) {
        let cons = CmdqCons(self.regs.get(Register::CMDQ_CONS) as u32).with_err(err);
        self.regs.set(Register::CMDQ_CONS, u64::from(cons.0));
        if err == CmdqConsErr::CERROR_ABT {
            self.stats.cerror_abt += 1;
        } else {
            self.stats.cerror_ill += 1;
        }
        self.raise_gerror(ports, Gerror(0).with_cmdq_err(true).0);
    }

    /// Consumes guest commands until the queue is empty, stopped, or the
    /// call's allowance or the hardware budget runs out.
    fn process_commands(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> Stop {
        let ack = self.cr0ack();
        if !ack.cmdqen() {
            return Stop::Idle;
        }
        if self.gerror_active(Gerror(0).with_cmdq_err(true).0) {
            return Stop::Error;
        }
        let q = self.cmdq();
        let mut ahead = ReadAhead::default();
        // PROD cannot change during this call: the guest's writes are
        // serialized with it (the concurrency contract).
        let prod = CmdqProd(self.regs.get(Register::CMDQ_PROD) as u32).wr();
        loop {
            let cons_reg = CmdqCons(self.regs.get(Register::CMDQ_CONS) as u32);
            let cons = cons_reg.rd();
            if q.is_empty(prod, cons) {
                return Stop::Idle;
            }
            if allow.commands == 0 {
                self.stats.budget_exhausted += 1;
                return Stop::Budget;
            }
            let Some(raw) = ahead.entry(ports, &q, cons, prod, allow.commands) else {
                self.command_error(ports, CmdqConsErr::CERROR_ABT);
                return Stop::Error;
            };
            let cmd = match Command::decode(words_le(&raw)) {
                Ok(c) if c.illegal(&self.ident).is_none() => c,
                _ => {
                    self.command_error(ports, CmdqConsErr::CERROR_ILL);
                    return Stop::Error;
                }
            };
            if let Err(stop) = self.execute(ports, allow, cmd) {
                return stop;
            }
            let next = cons_reg.with_rd(q.next(cons));
            self.regs.set(Register::CMDQ_CONS, u64::from(next.0));
            self.stats.commands[usize::from(cmd.code())] += 1;
            allow.commands -= 1;
            self.last_call_commands += 1;
        }
    }

    /// Carries out one legal guest command, or says why it cannot complete yet
    /// (it is then retried, not consumed).
    fn execute(
        &mut self,
        ports: &mut Ports<'_>,
        allow: &mut Allowance,
        cmd: Command,
    ) -> Result<(), Stop> {
        use Command::*;
        let vmid = self.cfg.vmid;
        match cmd {
            CfgiSte(c) => {
                let sid = c.stream_id();
                // Leaf=0 also invalidates the L1STD: every vSID it locates (§4.3.1).
                let (lo, hi) = if c.leaf() {
                    (sid, sid)
                } else {
                    let cfg = StrtabBaseCfg(self.regs.get(Register::STRTAB_BASE_CFG) as u32);
                    stream_table::sharing_l1std(cfg, sid, &self.presented)
                };
                self.dirty.mark(&self.streams, lo, hi);
            }
            CfgiSteRange(c) => {
                let range = u32::from(c.range());
                let (lo, hi) = if range >= 31 {
                    (0, u32::MAX)
                } else {
                    let span = 2u64 << range;
                    let lo = u64::from(c.stream_id()) & !(span - 1);
                    (lo as u32, (lo + span - 1).min(u64::from(u32::MAX)) as u32)
                };
                self.dirty.mark(&self.streams, lo, hi);
            }
            CfgiCd(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.forward(ports, p.smmu, CfgiCd(c.with_stream_id(p.psid)))?;
                }
            }
            CfgiCdAll(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.forward(ports, p.smmu, CfgiCdAll(c.with_stream_id(p.psid)))?;
                }
            }
            AtcInv(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.forward(ports, p.smmu, AtcInv(c.with_stream_id(p.psid)))?;
                }
            }
            TlbiNhAll(c) => self.forward_all(ports, TlbiNhAll(c.with_vmid(vmid)))?,
            TlbiNhAsid(c) => self.forward_all(ports, TlbiNhAsid(c.with_vmid(vmid)))?,
            TlbiNhVa(c) => self.forward_all(ports, TlbiNhVa(c.with_vmid(vmid)))?,
            TlbiNhVaa(c) => self.forward_all(ports, TlbiNhVaa(c.with_vmid(vmid)))?,
            // Non-secure, non-hyp: on our SMMU that is this domain's VMID only.
            TlbiNsnhAll(_) => {
                self.forward_all(ports, TlbiNhAll(CmdTlbiNhAll::new().with_vmid(vmid)))?
            }
            Sync(s) => {
                if !self.batch.is_settled() || !self.dirty.is_empty() {
                    self.sync_all(ports, allow)?;
                }
                self.complete_sync(ports, s);
            }
            // PREFETCH_* are hints; everything else that is legal on the SMMU
            // we present has no effect to forward.
            _ => {}
        }
        Ok(())
    }

    /// Signals a completed CMD_SYNC as its CS field asks.
    fn complete_sync(&mut self, ports: &mut Ports<'_>, s: smmuv3::cmd::CmdSync) {
        match s.cs() {
            CmdSyncCs::SIG_IRQ => {
                let addr = s.msi_address();
                if self.cfg.msi && addr != 0 {
                    // MSI-poll: Linux polls this word (the SYNC's own slot).
                    if msi_write(ports, Irq::CmdSync, Ipa(addr), s.msi_data()).is_err() {
                        self.raise_gerror(ports, Gerror(0).with_msi_cmdq_abt_err(true).0);
                    }
                } else {
                    ports.irq.raise(Irq::CmdSync);
                }
            }
            CmdSyncCs::SIG_SEV if self.cfg.sev => ports.irq.sev(),
            _ => {}
        }
    }

    /// One call's worth of work: streams to re-evaluate, then commands, then
    /// the acknowledgements that waited for them. Anything left is deferred.
    fn pump(&mut self, ports: &mut Ports<'_>) {
        self.budget.refill(ports.now_ns);
        let mut allow = Allowance {
            commands: self.cfg.policy.commands_per_call,
            stes: self.cfg.policy.stes_per_call,
        };
        let stop = match self.flush_streams(ports, &mut allow) {
            Ok(()) => self.process_commands(ports, &mut allow),
            Err(s) => s,
        };
        self.settle_acks();
        if self.cfg.sev && self.last_call_commands > 0 {
            // The command queue has room again: a guest may wait in WFE for it.
            ports.irq.sev();
        }
        match stop {
            Stop::Budget => self.defer(ports, 0),
            Stop::Hardware(wait) => self.defer(ports, wait),
            _ if !self.dirty.is_empty() => self.defer(ports, 0),
            _ => {}
        }
    }

    /// Completes the SMMUEN and GBPA changes whose streams are all installed.
    fn settle_acks(&mut self) {
        if !self.dirty.is_empty() {
            return;
        }
        let ack = self.cr0ack().with_smmuen(self.cr0().smmuen());
        self.regs.set(Register::CR0ACK, u64::from(ack.0));
        let gbpa = self.gbpa().with_update(false);
        self.regs.set(Register::GBPA, u64::from(gbpa.0));
    }

    /// The CR0ACK value the generated dispatch mirrors from CR0: SMMUEN keeps
    /// its acknowledged value while streams still move to the new state.
    fn cr0ack_for(&self, mirrored: u64) -> u64 {
        if self.dirty.is_empty() {
            return mirrored;
        }
        u64::from(Cr0(mirrored as u32).with_smmuen(self.cr0ack().smmuen()).0)
    }

    fn defer(&mut self, ports: &mut Ports<'_>, after_ns: u64) {
        self.stats.deferrals += 1;
        ports.defer.schedule(after_ns);
    }

    // ---- events ----

    /// An event the hardware recorded for one of this domain's streams: into
    /// the guest's event queue as a stage-1-only SMMU would have recorded it.
    pub fn deliver_event(&mut self, ports: &mut Ports<'_>, ev: PhysEvent) -> EventOutcome {
        self.last_call_commands = 0;
        let psid = events::stream_id(&ev.event);
        let Some(vsid) = self.streams.virtual_of(PhysStream {
            smmu: ev.smmu,
            psid,
        }) else {
            return EventOutcome::NotOurs;
        };
        let refusal = self.installed(vsid).and_then(|i| i.refusal);
        let recinvsid = self.reg(Register::CR2, |v| Cr2(v as u32)).recinvsid();
        let out = match events::translate(ev.event, vsid, refusal, recinvsid) {
            events::Translated::Guest(e) => e,
            events::Translated::Stage2Fault => {
                self.stats.stage2_faults += 1;
                return EventOutcome::Hypervisor;
            }
            events::Translated::Host => return EventOutcome::Hypervisor,
        };
        self.record_event(ports, out)
    }

    /// Writes an event record to the guest's queue (§7.2, §7.4): discarded
    /// only when the queue is disabled, in error or full, and when full the
    /// loss is flagged with OVFLG.
    fn record_event(&mut self, ports: &mut Ports<'_>, e: Event) -> EventOutcome {
        if !self.cr0ack().eventqen() || self.gerror_active(Gerror(0).with_eventq_abt_err(true).0) {
            self.stats.events_dropped += 1;
            return EventOutcome::Dropped;
        }
        let base = smmuv3::regs::EventqBase(self.regs.get(Register::EVENTQ_BASE));
        let max = u32::from(Idr1(self.ident.get(Register::IDR1) as u32).eventqs());
        let q = Queue::event(base, max);
        let prod = smmuv3::regs::EventqProd(self.regs.get(Register::EVENTQ_PROD) as u32);
        let cons = smmuv3::regs::EventqCons(self.regs.get(Register::EVENTQ_CONS) as u32);
        let (at, next) = match event_slot(&q, prod, cons) {
            EventSlot::Write { at, next } => (at, next),
            EventSlot::Overflow { flag } => {
                if let Some(p) = flag {
                    self.regs.set(Register::EVENTQ_PROD, u64::from(p.0));
                }
                self.stats.events_dropped += 1;
                return EventOutcome::Dropped;
            }
        };
        let mut raw = [0u8; 32];
        for (chunk, w) in raw.chunks_exact_mut(8).zip(e.encode()) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        if ports.mem.write(Ipa(at), &raw).is_err() {
            self.stats.events_dropped += 1;
            self.raise_gerror(ports, Gerror(0).with_eventq_abt_err(true).0);
            return EventOutcome::Dropped;
        }
        self.regs.set(Register::EVENTQ_PROD, u64::from(next.0));
        self.stats.events_forwarded += 1;
        if self
            .reg(Register::IRQ_CTRLACK, |v| IrqCtrl(v as u32))
            .eventq_irqen()
        {
            self.signal(ports, Irq::Eventq);
        }
        EventOutcome::Forwarded
    }

    // ---- register side effects ----

    fn on_cr0(&mut self, ports: &mut Ports<'_>, old: u64, new: u64) {
        // The generated dispatch stored only the fields the presented
        // features have (no PRI queue, ATS checks, VMW or DPT walks).
        let new = Cr0(new as u32);
        let old = Cr0(old as u32);
        let ack = self.cr0ack();
        if new.smmuen() != ack.smmuen() || new.smmuen() != old.smmuen() {
            self.dirty.mark_all(&self.streams);
        }
        if new.cmdqen() && !ack.cmdqen() {
            // A freshly enabled queue starts with no error pending in CONS.ERR.
            let c = CmdqCons(self.regs.get(Register::CMDQ_CONS) as u32)
                .with_err(CmdqConsErr::CERROR_NONE);
            self.regs.set(Register::CMDQ_CONS, u64::from(c.0));
        }
        // The queue enables are acknowledged at once (the commands below run
        // against them); SMMUEN once its streams are installed.
        let now = new.with_smmuen(ack.smmuen());
        self.regs.set(Register::CR0ACK, u64::from(now.0));
        self.pump(ports);
    }

    fn on_gbpa(&mut self, old: u64, new: u64) {
        // A write must request the update (Update=1); one that does not is
        // ignored, as SMMUv3.2 and later behave. While Update is 1, the
        // generated dispatch ignores writes.
        if !Gbpa(new as u32).update() {
            self.regs.set(Register::GBPA, old);
            return;
        }
        // Update stays 1 until the streams follow (settle_acks); GBPA only
        // matters while the SMMU is (being) disabled.
        if !self.cr0().smmuen() {
            self.dirty.mark_all(&self.streams);
        }
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

/// Command entries read ahead in one guest-memory access: the entries
/// between CONS and PROD belong to the SMMU, which may read them early.
#[derive(Default)]
struct ReadAhead {
    buf: [[u8; 16]; READ_AHEAD],
    /// Queue pointer of `buf[0]`, and how many entries are valid.
    first: u32,
    len: u32,
}

const READ_AHEAD: usize = 16;

impl ReadAhead {
    /// The entry at `cons`, reading up to `READ_AHEAD` entries (not past
    /// PROD, the end of the queue, or the call's allowance) when it is not
    /// buffered. None when guest memory faults at that entry.
    fn entry(
        &mut self,
        ports: &mut Ports<'_>,
        q: &Queue,
        cons: u32,
        prod: u32,
        allowance: u32,
    ) -> Option<[u8; 16]> {
        let offset = cons.wrapping_sub(self.first) & q.ptr_mask();
        if offset < self.len {
            return self.buf.get(offset as usize).copied();
        }
        let to_end = q.to_end(cons);
        let n = q
            .used(prod, cons)
            .min(to_end)
            .min(allowance)
            .clamp(1, READ_AHEAD as u32);
        let mut raw = [0u8; 16 * READ_AHEAD];
        let bytes = raw.get_mut(..16 * n as usize)?;
        if ports.mem.read(Ipa(q.slot(cons)), bytes).is_err() {
            // Find out whether this entry itself faults.
            let mut one = [0u8; 16];
            ports.mem.read(Ipa(q.slot(cons)), &mut one).ok()?;
            self.first = cons;
            self.len = 1;
            self.buf[0] = one;
            return Some(one);
        }
        for (slot, chunk) in self.buf.iter_mut().zip(bytes.chunks_exact(16)) {
            slot.copy_from_slice(chunk);
        }
        self.first = cons;
        self.len = n;
        self.buf.first().copied()
    }
}

/// Little-endian bytes of a queue entry as 64-bit words.
fn words_le<const N: usize>(raw: &[u8]) -> [u64; N] {
    let mut w = [0u64; N];
    for (word, chunk) in w.iter_mut().zip(raw.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    w
}

/// The vSMMU plus the ports of the current call, as the generated dispatch sees it.
struct Ctx<'v, 'p, 'a> {
    v: &'v mut Vsmmu,
    ports: &'p mut Ports<'a>,
}

impl MmioHandlers for Ctx<'_, '_, '_> {
    fn ident(&self, reg: Register) -> u64 {
        self.v.ident.get(reg)
    }
    fn load(&self, reg: Register) -> u64 {
        self.v.regs.get(reg)
    }
    fn store(&mut self, reg: Register, value: u64) {
        let value = if reg == Register::CR0ACK {
            self.v.cr0ack_for(value)
        } else {
            value
        };
        self.v.regs.set(reg, value)
    }
    fn write_cr0(&mut self, old: u64, new: u64) {
        self.v.on_cr0(self.ports, old, new);
    }
    fn write_gbpa(&mut self, old: u64, new: u64) {
        self.v.on_gbpa(old, new);
        self.v.pump(self.ports);
    }
    fn write_gmpam(&mut self, _old: u64, new: u64) {
        // Not presented (no MPAM): the register is absent. Complete the
        // handshake anyway should it ever be reached.
        self.v.regs.set(
            Register::GMPAM,
            u64::from(Gmpam(new as u32).with_update(false).0),
        );
    }
    fn write_gbpmpam(&mut self, _old: u64, new: u64) {
        self.v.regs.set(
            Register::GBPMPAM,
            u64::from(Gbpmpam(new as u32).with_update(false).0),
        );
    }
    fn write_irq_ctrl(&mut self, _old: u64, _new: u64) {
        // PRIQ_IRQEN is absent without PRI: the dispatch already dropped it.
    }
    fn write_gerrorn(&mut self, _old: u64, _new: u64) {
        // Acknowledging CMDQ_ERR restarts the command queue (§7.1).
        self.v.pump(self.ports);
    }
    fn write_cmdq_prod(&mut self, _old: u64, _new: u64) {
        self.v.pump(self.ports);
    }
    fn write_gatos_ctrl(&mut self, _old: u64, _new: u64) {}
    fn write_eventq_cons(&mut self, _old: u64, _new: u64) {}
    fn write_priq_cons(&mut self, _old: u64, _new: u64) {}
}
