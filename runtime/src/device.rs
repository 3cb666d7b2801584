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
//! guest STE reads) and asks for deferred work for the rest. The calls it
//! makes into the hardware layer ([`PhysicalSmmu`]) are the only ones that
//! may wait, and they wait on the physical SMMU, bounded by that layer's
//! timeouts.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use smmuv3::cmd::{CmdCfgiCdAll, CmdSyncCs, CmdTlbiNhAll, Command};
use smmuv3::evt::Event;
use smmuv3::mmio::{mmio_read, mmio_write, MmioHandlers};
use smmuv3::regs::{
    CmdqBase, CmdqCons, CmdqConsErr, CmdqProd, Cr0, Gbpa, Gbpmpam, Gerror, Gmpam, Idr0, Idr1,
    IrqCtrl, StrtabBase, StrtabBaseCfg,
};
use smmuv3::{Register, RegisterBank, WriteEffect};

use crate::batch::{Batch, Pushed, MAX_PER_SMMU};
use crate::budget::HwBudget;
use crate::events;
use crate::idregs::{self, Presentation};
use crate::policy::Policy;
use crate::ports::{
    Ipa, Irq, PhysCaps, PhysEvent, PhysStream, PhysicalSmmu, Ports, SmmuId, StreamConfig,
};
use crate::queue::Queue;
use crate::stats::Stats;
use crate::stream_table::{self, GuestStream, Presented, Refusal};
use crate::vsid::{DomainId, StreamMap};

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
    /// log2 of the largest queues the guest may configure (at most 19).
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
    /// For the guest, but dropped (pending limit, queue disabled, full or unreachable).
    Dropped,
    /// Kept by the hypervisor: a stage-2 fault on a final access, or an event
    /// the guest's view has no place for. Counted in the stats.
    Hypervisor,
    /// The stream does not belong to this domain.
    NotOurs,
}

/// Why command processing stopped in a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Nothing (more) to do.
    Idle,
    /// The per-call budget ran out: continue as deferred work.
    Budget,
    /// The hardware budget ran out: continue after this many nanoseconds.
    Hardware(u64),
    /// The queue is stopped on an error until the guest acknowledges it.
    Error,
}

/// Per-call allowances (Observation 4).
struct Allowance {
    commands: u32,
    stes: u32,
}

/// One domain's virtual SMMUv3.
pub struct Vsmmu {
    cfg: VsmmuConfig,
    regs: RegisterBank,
    ident: RegisterBank,
    presented: Presented,
    streams: StreamMap,
    smmus: Vec<SmmuId>,
    installed: BTreeMap<u32, Installed>,
    batch: Batch,
    budget: HwBudget,
    stats: Stats,
    /// Guest commands consumed by the last entry point call.
    last_call_commands: u32,
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
        let smmus = streams.smmus();
        let mut caps: Vec<PhysCaps> = Vec::new();
        for s in &smmus {
            let c = hw.capabilities(*s).ok_or(SetupError::UnknownSmmu(*s))?;
            let idr0 = Idr0(c.idr0);
            if !idr0.s1p() || !idr0.s2p() {
                return Err(SetupError::NoNesting(*s));
            }
            caps.push(c);
        }
        let max_vsid = streams.max_vsid().unwrap_or(0);
        let sidsize = (32 - max_vsid.leading_zeros()).max(1);
        let p = Presentation {
            ipa_bits: cfg.ipa_bits,
            sidsize,
            msi: cfg.msi,
            cmdqs: cfg.cmdqs,
            eventqs: cfg.eventqs,
        };
        let ident = idregs::presented(&caps, &p);
        let idr0 = Idr0(ident.get(Register::IDR0) as u32);
        let idr1 = Idr1(ident.get(Register::IDR1) as u32);
        let presented = Presented {
            sidsize: u32::from(idr1.sidsize()),
            ssidsize: u32::from(idr1.ssidsize()),
            ats: idr0.ats(),
            cd2l: idr0.cd2l(),
        };
        let budget = HwBudget::new(&cfg.policy);
        let mut v = Vsmmu {
            cfg,
            regs: RegisterBank::at_reset(),
            ident,
            presented,
            streams,
            smmus,
            installed: BTreeMap::new(),
            batch: Batch::default(),
            budget,
            stats: Stats::default(),
            last_call_commands: 0,
        };
        let all: Vec<u32> = v.streams.iter().map(|(vsid, _)| vsid).collect();
        for vsid in all {
            v.install(hw, vsid, false);
        }
        Ok(v)
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
        self.installed.get(&vsid).copied()
    }

    /// Guest commands consumed by the last entry point call (bounded by the policy).
    pub fn last_call_commands(&self) -> u32 {
        self.last_call_commands
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

    fn reg<T>(&self, reg: Register, wrap: impl Fn(u64) -> T) -> T {
        wrap(self.regs.get(reg))
    }

    fn cr0ack(&self) -> Cr0 {
        self.reg(Register::CR0ACK, |v| Cr0(v as u32))
    }

    fn gerror_active(&self, mask: u32) -> bool {
        let g = self.regs.get(Register::GERROR) ^ self.regs.get(Register::GERRORN);
        g & u64::from(mask) != 0
    }

    /// Raises a global error (§7.5): toggles GERROR unless the error is
    /// already active, and signals the GERROR interrupt if enabled.
    fn raise_gerror(&mut self, ports: &mut Ports<'_>, mask: u32) {
        if self.gerror_active(mask) {
            return;
        }
        let g = self.regs.get(Register::GERROR) ^ u64::from(mask);
        self.regs.set(Register::GERROR, g);
        if self
            .reg(Register::IRQ_CTRLACK, |v| IrqCtrl(v as u32))
            .gerror_irqen()
        {
            self.signal(
                ports,
                Irq::Gerror,
                Register::GERROR_IRQ_CFG0,
                Register::GERROR_IRQ_CFG1,
            );
        }
    }

    /// An interrupt: an MSI where MSI is presented and configured, else the wired line.
    fn signal(&mut self, ports: &mut Ports<'_>, irq: Irq, cfg0: Register, cfg1: Register) {
        let addr = smmuv3::regs::GerrorIrqCfg0(self.regs.get(cfg0)).addr();
        if self.cfg.msi && addr != 0 {
            ports.irq.msi(irq, Ipa(addr), self.regs.get(cfg1) as u32);
        } else {
            ports.irq.raise(irq);
        }
    }

    // ---- streams ----

    /// What the vSID's stream should do now.
    fn desired(&mut self, ports: &mut Ports<'_>, vsid: u32) -> Installed {
        if !self.cr0ack().smmuen() {
            let abort = self.reg(Register::GBPA, |v| Gbpa(v as u32)).abort();
            let config = if abort {
                StreamConfig::Abort { report: false }
            } else {
                StreamConfig::Stage2Only
            };
            return Installed {
                config,
                refusal: None,
            };
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
    /// already. A guest CFGI_STE also invalidates the CDs cached through the
    /// STE, so an unchanged nested stream gets a CFGI_CD_ALL.
    fn apply(&mut self, hw: &mut dyn PhysicalSmmu, vsid: u32, want: Installed, from_cfgi: bool) {
        let Some(stream) = self.streams.physical(vsid) else {
            return;
        };
        if self.installed.get(&vsid) == Some(&want) {
            if from_cfgi && matches!(want.config, StreamConfig::Nested(_)) {
                let c = Command::CfgiCdAll(CmdCfgiCdAll::new().with_stream_id(stream.psid));
                self.push(stream.smmu, c);
            }
            return;
        }
        self.stats.hw_installs += 1;
        match hw.install(stream, &want.config) {
            Ok(()) => {
                self.installed.insert(vsid, want);
            }
            Err(_) => {
                self.stats.hw_errors += 1;
                // Leave the stream terminating rather than in an unknown state.
                let abort = Installed {
                    config: StreamConfig::Abort { report: false },
                    refusal: None,
                };
                if hw.install(stream, &abort.config).is_ok() {
                    self.installed.insert(vsid, abort);
                } else {
                    self.installed.remove(&vsid);
                }
            }
        }
    }

    /// Reset-time install, before any guest configuration exists.
    fn install(&mut self, hw: &mut dyn PhysicalSmmu, vsid: u32, from_cfgi: bool) {
        let abort = self.reg(Register::GBPA, |v| Gbpa(v as u32)).abort();
        let config = if abort {
            StreamConfig::Abort { report: false }
        } else {
            StreamConfig::Stage2Only
        };
        self.apply(
            hw,
            vsid,
            Installed {
                config,
                refusal: None,
            },
            from_cfgi,
        );
    }

    /// Marks every stream for re-evaluation (SMMUEN or GBPA changed).
    fn all_dirty(&mut self) {
        let all: Vec<u32> = self.streams.iter().map(|(v, _)| v).collect();
        self.batch.dirty.extend(all);
    }

    /// Installs dirty streams, bounded by the per-call STE allowance and the
    /// hardware budget.
    fn flush_streams(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> Result<(), Stop> {
        while let Some(vsid) = self.batch.dirty.first().copied() {
            if allow.stes == 0 {
                return Err(Stop::Budget);
            }
            if !self.budget.take(1) {
                self.stats.hw_budget_exhausted += 1;
                return Err(Stop::Hardware(self.budget.wait_ns(1)));
            }
            self.batch.dirty.remove(&vsid);
            allow.stes -= 1;
            let want = self.desired(ports, vsid);
            self.apply(ports.hw, vsid, want, true);
        }
        Ok(())
    }

    // ---- invalidations ----

    fn push(&mut self, smmu: SmmuId, cmd: Command) {
        if self
            .batch
            .push(smmu, cmd, self.cfg.policy.tlbi_asid_threshold)
            == Pushed::Merged
        {
            self.stats.merged += 1;
        }
    }

    /// Pushes one command to every SMMU the domain uses.
    fn push_all(&mut self, cmd: Command) {
        for i in 0..self.smmus.len() {
            let s = self.smmus[i];
            self.push(s, cmd);
        }
    }

    /// Sends pending invalidations to the hardware, as far as the budget
    /// allows, in pieces the budget can always hold (so a small burst only
    /// delays completion, never blocks it).
    fn flush_invalidations(&mut self, ports: &mut Ports<'_>) -> Result<(), Stop> {
        let piece = (self.budget.burst() as usize).clamp(1, MAX_PER_SMMU);
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
                if ports.hw.invalidate(smmu, &cmds).is_err() {
                    self.stats.hw_errors += 1;
                }
                self.stats.hw_commands += n as u64;
                self.batch.unsynced.insert(smmu);
                cmds = rest;
            }
        }
        Ok(())
    }

    /// Everything before a guest CMD_SYNC, done and synced on the hardware:
    /// at most one physical sync per SMMU.
    fn sync_all(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> Result<(), Stop> {
        self.flush_streams(ports, allow)?;
        self.flush_invalidations(ports)?;
        while let Some(smmu) = self.batch.unsynced.first().copied() {
            if !self.budget.take(1) {
                self.stats.hw_budget_exhausted += 1;
                return Err(Stop::Hardware(self.budget.wait_ns(1)));
            }
            self.batch.unsynced.remove(&smmu);
            self.stats.hw_syncs += 1;
            if ports.hw.sync(smmu).is_err() {
                self.stats.hw_errors += 1;
            }
        }
        Ok(())
    }

    // ---- the command queue ----

    fn cmdq(&self) -> Queue {
        let base = CmdqBase(self.regs.get(Register::CMDQ_BASE));
        let max = u32::from(Idr1(self.ident.get(Register::IDR1) as u32).cmdqs());
        Queue::new(base.addr(), u32::from(base.log2size()), max, 16)
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
        if self.batch.full() {
            self.flush_invalidations(ports)?;
        }
        let vmid = self.cfg.vmid;
        match cmd {
            CfgiSte(c) if self.streams.physical(c.stream_id()).is_some() => {
                self.batch.dirty.insert(c.stream_id());
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
                let hit: Vec<u32> = self.streams.in_range(lo, hi).map(|(v, _)| v).collect();
                self.batch.dirty.extend(hit);
            }
            CfgiCd(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.push(p.smmu, CfgiCd(c.with_stream_id(p.psid)));
                }
            }
            CfgiCdAll(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.push(p.smmu, CfgiCdAll(c.with_stream_id(p.psid)));
                }
            }
            AtcInv(c) => {
                if let Some(p) = self.streams.physical(c.stream_id()) {
                    self.push(p.smmu, AtcInv(c.with_stream_id(p.psid)));
                }
            }
            TlbiNhAll(c) => self.push_all(TlbiNhAll(c.with_vmid(vmid))),
            TlbiNhAsid(c) => self.push_all(TlbiNhAsid(c.with_vmid(vmid))),
            TlbiNhVa(c) => self.push_all(TlbiNhVa(c.with_vmid(vmid))),
            TlbiNhVaa(c) => self.push_all(TlbiNhVaa(c.with_vmid(vmid))),
            // Non-secure, non-hyp: on our SMMU that is this domain's VMID only.
            TlbiNsnhAll(_) => self.push_all(TlbiNhAll(CmdTlbiNhAll::new().with_vmid(vmid))),
            Sync(s) => {
                if !self.batch.is_settled() {
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
        if s.cs() != CmdSyncCs::SIG_IRQ {
            return;
        }
        let addr = s.msi_address();
        if self.cfg.msi && addr != 0 {
            let ipa = Ipa(addr);
            if ports.mem.is_backed(ipa, 4) {
                // MSI-poll: the guest polls this word (Linux: the SYNC slot).
                if ports.mem.write(ipa, &s.msi_data().to_le_bytes()).is_err() {
                    self.raise_gerror(ports, Gerror(0).with_msi_cmdq_abt_err(true).0);
                }
            } else {
                ports.irq.msi(Irq::CmdSync, ipa, s.msi_data());
            }
        } else {
            ports.irq.raise(Irq::CmdSync);
        }
    }

    /// One call's worth of work: streams to re-evaluate, then commands, then
    /// whatever must reach the hardware before the guest could depend on it.
    /// Anything left is deferred.
    fn pump(&mut self, ports: &mut Ports<'_>) {
        self.budget.refill(ports.now_ns);
        let mut allow = Allowance {
            commands: self.cfg.policy.commands_per_call,
            stes: self.cfg.policy.stes_per_call,
        };
        let mut stop = match self.flush_streams(ports, &mut allow) {
            Ok(()) => self.process_commands(ports, &mut allow),
            Err(s) => s,
        };
        if stop == Stop::Idle && self.batch.full() {
            if let Err(s) = self.flush_invalidations(ports) {
                stop = s;
            }
        }
        match stop {
            Stop::Budget => self.defer(ports, 0),
            Stop::Hardware(wait) => self.defer(ports, wait),
            Stop::Idle if !self.batch.dirty.is_empty() => self.defer(ports, 0),
            _ => {}
        }
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
        let refusal = self.installed.get(&vsid).and_then(|i| i.refusal);
        let out = match events::translate(ev.event, vsid, refusal) {
            events::Translated::Guest(e) => e,
            events::Translated::Stage2Fault => {
                self.stats.stage2_faults += 1;
                return EventOutcome::Hypervisor;
            }
            events::Translated::Host => return EventOutcome::Hypervisor,
        };
        self.record_event(ports, out)
    }

    /// Writes an event record to the guest's queue (§7.2, §7.4).
    fn record_event(&mut self, ports: &mut Ports<'_>, e: Event) -> EventOutcome {
        if !self.cr0ack().eventqen() || self.gerror_active(Gerror(0).with_eventq_abt_err(true).0) {
            self.stats.events_dropped += 1;
            return EventOutcome::Dropped;
        }
        let base = smmuv3::regs::EventqBase(self.regs.get(Register::EVENTQ_BASE));
        let max = u32::from(Idr1(self.ident.get(Register::IDR1) as u32).eventqs());
        let q = Queue::new(base.addr(), u32::from(base.log2size()), max, 32);
        let prod_reg = smmuv3::regs::EventqProd(self.regs.get(Register::EVENTQ_PROD) as u32);
        let cons_reg = smmuv3::regs::EventqCons(self.regs.get(Register::EVENTQ_CONS) as u32);
        let (prod, cons) = (prod_reg.wr(), cons_reg.rd());
        if q.is_full(prod, cons) {
            // Overflow: flag it unless an unacknowledged overflow is already flagged.
            if prod_reg.ovflg() == cons_reg.ovackflg() {
                let p = prod_reg.with_ovflg(!prod_reg.ovflg());
                self.regs.set(Register::EVENTQ_PROD, u64::from(p.0));
            }
            self.stats.events_dropped += 1;
            return EventOutcome::Dropped;
        }
        if q.used(prod, cons) >= self.cfg.policy.pending_event_limit {
            self.stats.events_dropped += 1;
            return EventOutcome::Dropped;
        }
        let mut raw = [0u8; 32];
        for (chunk, w) in raw.chunks_exact_mut(8).zip(e.encode()) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        if ports.mem.write(q.entry(prod), &raw).is_err() {
            self.stats.events_dropped += 1;
            self.raise_gerror(ports, Gerror(0).with_eventq_abt_err(true).0);
            return EventOutcome::Dropped;
        }
        let p = prod_reg.with_wr(q.next(prod));
        self.regs.set(Register::EVENTQ_PROD, u64::from(p.0));
        self.stats.events_forwarded += 1;
        if self
            .reg(Register::IRQ_CTRLACK, |v| IrqCtrl(v as u32))
            .eventq_irqen()
        {
            self.signal(
                ports,
                Irq::Eventq,
                Register::EVENTQ_IRQ_CFG0,
                Register::EVENTQ_IRQ_CFG1,
            );
        }
        EventOutcome::Forwarded
    }

    // ---- register side effects ----

    fn on_cr0(&mut self, ports: &mut Ports<'_>, old: u64, new: u64) {
        // Only what we present can be enabled: no PRI queue, ATS checks, VMW or DPT.
        let allowed = Cr0(0)
            .with_smmuen(true)
            .with_cmdqen(true)
            .with_eventqen(true)
            .0;
        let new = Cr0(new as u32 & allowed);
        self.regs.set(Register::CR0, u64::from(new.0));
        let old = Cr0(old as u32);
        let ack = self.cr0ack();
        // The ACK register is updated by the generated dispatch after this
        // returns; until then, CR0ACK still holds the old value, so make the
        // decisions below against the new one.
        self.regs.set(Register::CR0ACK, u64::from(new.0));
        if new.smmuen() != ack.smmuen() || new.smmuen() != old.smmuen() {
            self.all_dirty();
        }
        if new.cmdqen() && !ack.cmdqen() {
            // A freshly enabled queue starts with no error pending in CONS.ERR.
            let c = CmdqCons(self.regs.get(Register::CMDQ_CONS) as u32)
                .with_err(CmdqConsErr::CERROR_NONE);
            self.regs.set(Register::CMDQ_CONS, u64::from(c.0));
        }
        self.pump(ports);
    }

    fn on_gbpa(&mut self, old: u64, new: u64) {
        // A write must request the update (Update=1); one that does not is
        // ignored, as SMMUv3.2 and later behave.
        if !Gbpa(new as u32).update() {
            self.regs.set(Register::GBPA, old);
            return;
        }
        // The update completes at once; it matters only while SMMUEN=0.
        let g = Gbpa(new as u32).with_update(false);
        self.regs.set(Register::GBPA, u64::from(g.0));
        if !self.cr0ack().smmuen() {
            self.all_dirty();
        }
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
        let size = 1u32 << q.log2size;
        let to_end = size - q.index(cons);
        let n = q
            .used(prod, cons)
            .min(to_end)
            .min(allowance)
            .clamp(1, READ_AHEAD as u32);
        let mut raw = [0u8; 16 * READ_AHEAD];
        let bytes = raw.get_mut(..16 * n as usize)?;
        if ports.mem.read(q.entry(cons), bytes).is_err() {
            // Find out whether this entry itself faults.
            let mut one = [0u8; 16];
            ports.mem.read(q.entry(cons), &mut one).ok()?;
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
    fn write_irq_ctrl(&mut self, _old: u64, new: u64) {
        // PRI is not presented: its interrupt cannot be enabled.
        let allowed = IrqCtrl(0).with_gerror_irqen(true).with_eventq_irqen(true).0;
        self.v
            .regs
            .set(Register::IRQ_CTRL, new & u64::from(allowed));
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
