//! A guest-driver model: what the Linux `arm-smmu-v3` driver (6.1 or 6.12,
//! see [`LinuxVersion`]) does to an SMMUv3, through MMIO and guest memory
//! only, exactly as a guest would: the probe checks, `arm_smmu_device_reset`
//! in order with Linux's access sizes, STE/CD writes with their
//! invalidations, batched commands each closed by the issuer's CMD_SYNC,
//! time-based polls that give up after 1 s, the GERROR handler's
//! skip-and-acknowledge and the event queue thread.
//!
//! It plays the hypervisor's part too: a simulated clock advanced by every
//! poll, deferred work run once it is due, interrupts handed to the guest's
//! handlers while it polls.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use smmuv3::bringup::{self, ResetBus};
use smmuv3::cmd::*;
use smmuv3::evt::Event;
use smmuv3::locate::{Lookup, StreamTable};
use smmuv3::queue::{GlobalErrors, Queue, COMMAND_BYTES, EVENT_BYTES, MAX_LOG2SIZE};
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::IdRegisters;
use smmuv3::Register;

use super::linux::{self, Backoff, LinuxVersion, Probe, ProbeError, BATCH_ENTRIES};
use super::{CountingDeferrer, FakePlatform, RecordingIrq};
use crate::device::Vsmmu;
use crate::ports::{Ipa, Irq, Ports};

/// Deferred-work calls the host makes back to back in one step of a guest's
/// poll loop, at most.
const HOST_CALLS_PER_STEP: u32 = 4096;

/// Where the guest puts its structures, and which driver it runs.
#[derive(Clone, Copy, Debug)]
pub struct GuestLayout {
    pub strtab: u64,
    /// L2 stream tables, 256 STEs (16 KiB) each, allocated from here.
    pub l2_pool: u64,
    pub cmdq: u64,
    /// The largest queues the guest allocates (log2 entries). Linux takes
    /// IDR1's sizes up to its own maximum; a smaller cap here stands for an
    /// allocation that had to shrink. After bring-up: the sizes in use.
    pub cmdq_log2: u32,
    pub evtq: u64,
    pub evtq_log2: u32,
    /// CD tables, 64 bytes per CD, one page per stream.
    pub cds: u64,
    /// Firmware says the SMMU is coherent (and MSI polling is not disabled):
    /// with IDR0.MSI, CMD_SYNC completes by MSI-poll.
    pub msi_poll: bool,
    pub version: LinuxVersion,
}

impl GuestLayout {
    /// A layout in RAM at `base` (16 MiB are enough), for Linux 6.12.
    pub fn at(base: u64) -> Self {
        GuestLayout {
            strtab: base,
            l2_pool: base + 0x8_0000,
            cmdq: base + 0x10_0000,
            cmdq_log2: linux::CMDQ_MAX_LOG2,
            evtq: base + 0x20_0000,
            evtq_log2: 7,
            cds: base + 0x30_0000,
            msi_poll: false,
            version: LinuxVersion::V6_12,
        }
    }

    /// The same layout for a given driver generation.
    pub fn linux(base: u64, version: LinuxVersion) -> Self {
        GuestLayout {
            version,
            ..Self::at(base)
        }
    }
}

/// Why the guest gave up, as Linux would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestError {
    /// `arm_smmu_device_hw_probe` refused the SMMU.
    Probe(ProbeError),
    /// An ACK register did not match within 1 s ("failed to ... ").
    AckTimeout(Register),
    /// CMD_SYNC did not complete within 1 s ("CMD_SYNC timeout").
    SyncTimeout,
    /// The command queue stayed full for 1 s (Linux would spin on).
    CmdqFull,
}

/// How long the guest's waits take in simulated time, and how late the
/// hypervisor runs deferred work.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// One `cpu_relax()` spin.
    pub relax_ns: u64,
    /// One WFE: woken by the SMMU's SEV or else by the arch timer's event
    /// stream (10 kHz).
    pub wfe_ns: u64,
    /// One step of `readl_relaxed_poll_timeout*` (`udelay(1)` plus the read).
    pub reg_poll_ns: u64,
    /// The hypervisor runs requested deferred work this long after the
    /// request at the earliest (and never before the runtime's own hint).
    pub deferred_latency_ns: u64,
    /// `ARM_SMMU_POLL_TIMEOUT_US`.
    pub timeout_ns: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            relax_ns: 10,
            wfe_ns: 100_000,
            reg_poll_ns: 1_000,
            deferred_latency_ns: 0,
            timeout_ns: linux::POLL_TIMEOUT_NS,
        }
    }
}

/// One thing the guest did, in order (see [`LinuxGuest::trace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestOp {
    Read {
        off: u32,
        size: u32,
        value: u64,
    },
    Write {
        off: u32,
        size: u32,
        value: u64,
    },
    /// A command written into the queue (PROD publishes it later).
    Cmd([u64; 2]),
    /// A doubleword of a table (STE, CD, L1 descriptor) stored.
    Store {
        ipa: u64,
        value: u64,
    },
}

/// The hypervisor side the guest model drives: its clock, its deferred work
/// queue and what interrupts it delivered.
pub struct Host<'a> {
    pub now_ns: &'a mut u64,
    pub defer: &'a mut CountingDeferrer,
    pub irq: &'a RecordingIrq,
}

/// What the guest model needs of the platform it runs on.
pub trait GuestPlatform {
    fn ports(&mut self) -> Ports<'_>;
    /// A doubleword of guest memory (zero where there is none).
    fn guest_read_u64(&mut self, ipa: u64) -> u64;
    /// Writes a doubleword of guest memory (ignored where there is none).
    fn guest_write_u64(&mut self, ipa: u64, v: u64);
    fn host(&mut self) -> Host<'_>;
}

impl GuestPlatform for FakePlatform {
    fn ports(&mut self) -> Ports<'_> {
        FakePlatform::ports(self)
    }
    fn guest_read_u64(&mut self, ipa: u64) -> u64 {
        self.ram.read_u64(ipa)
    }
    fn guest_write_u64(&mut self, ipa: u64, v: u64) {
        self.ram.write_u64(ipa, v)
    }
    fn host(&mut self) -> Host<'_> {
        Host {
            now_ns: &mut self.now_ns,
            defer: &mut self.defer,
            irq: &self.irq,
        }
    }
}

/// The guest's driver state plus the platform it runs on.
pub struct LinuxGuest<P: GuestPlatform = FakePlatform> {
    pub vsmmu: Vsmmu,
    pub platform: P,
    pub layout: GuestLayout,
    /// What probe found (after [`LinuxGuest::bring_up`]).
    pub probe: Option<Probe>,
    /// The guest's copy of CMDQ_PROD.
    pub prod: u32,
    /// The guest's last view of CMDQ_CONS.
    pub cons: u32,
    /// The guest's copy of EVENTQ_CONS (with OVACKFLG).
    pub evt_cons: u32,
    pub timing: Timing,
    /// Everything the guest did, when set (start with `Some(Vec::new())`).
    pub trace: Option<Vec<GuestOp>>,
    /// Linux's non-fatal complaints ("CMD_SYNC timeout", "CMDQ error", ...).
    pub warnings: Vec<&'static str>,
    /// Runs every vSMMU entry point call the model makes (a test measuring
    /// them, their stack use say, sets it).
    pub around_call: Option<fn(&mut dyn FnMut())>,
    evt_prod_ovf: bool,
    /// The identification registers as the probe read them.
    ids: IdRegisters,
    next_l2: u64,
    deferral_since: Option<u64>,
    gerror_seen: usize,
    in_irq: bool,
    cd_tables: BTreeSet<u32>,
}

/// The 128 KiB-frame offset of a register.
pub fn offset(reg: Register) -> u32 {
    reg.info().frame_offset()
}

/// Linux writes 64-bit registers with `writeq`, the rest with `writel`.
fn access_size(reg: Register) -> u32 {
    if reg.info().width == 64 {
        8
    } else {
        4
    }
}

impl<P: GuestPlatform> LinuxGuest<P> {
    pub fn new(vsmmu: Vsmmu, platform: P, layout: GuestLayout) -> Self {
        LinuxGuest {
            vsmmu,
            platform,
            layout,
            probe: None,
            ids: IdRegisters::RESET,
            prod: 0,
            cons: 0,
            evt_cons: 0,
            timing: Timing::default(),
            trace: None,
            around_call: None,
            warnings: Vec::new(),
            evt_prod_ovf: false,
            next_l2: layout.l2_pool,
            deferral_since: None,
            gerror_seen: 0,
            in_irq: false,
            cd_tables: BTreeSet::new(),
        }
    }

    pub fn version(&self) -> LinuxVersion {
        self.layout.version
    }

    fn log(&mut self, op: GuestOp) {
        if let Some(t) = self.trace.as_mut() {
            t.push(op);
        }
    }

    pub fn read(&mut self, reg: Register) -> u64 {
        self.read_raw(offset(reg), access_size(reg))
    }

    pub fn write(&mut self, reg: Register, value: u64) {
        self.write_raw(offset(reg), access_size(reg), value);
    }

    /// Raw access at any offset and size (for hostile guests).
    pub fn write_raw(&mut self, off: u32, size: u32, value: u64) {
        self.log(GuestOp::Write { off, size, value });
        self.call(|v, ports| {
            v.mmio_write(ports, off, size, value);
        });
    }

    pub fn read_raw(&mut self, off: u32, size: u32) -> u64 {
        let mut value = 0;
        self.call(|v, ports| value = v.mmio_read(ports, off, size));
        self.log(GuestOp::Read { off, size, value });
        value
    }

    /// One vSMMU entry point call, through `around_call` when set.
    fn call(&mut self, mut f: impl FnMut(&mut Vsmmu, &mut Ports<'_>)) {
        let mut ports = self.platform.ports();
        let vsmmu = &mut self.vsmmu;
        let mut run = || f(vsmmu, &mut ports);
        match self.around_call {
            Some(around) => around(&mut run),
            None => run(),
        }
    }

    /// Simulated time now.
    pub fn now_ns(&mut self) -> u64 {
        *self.platform.host().now_ns
    }

    /// Lets simulated time pass.
    pub fn advance(&mut self, ns: u64) {
        let h = self.platform.host();
        *h.now_ns = h.now_ns.saturating_add(ns);
    }

    /// What a test-driven hypervisor does: run pending deferred work now,
    /// letting the time it asked for pass.
    pub fn run_deferred(&mut self) {
        let h = self.platform.host();
        if !h.defer.pending {
            return;
        }
        h.defer.pending = false;
        let wait = h.defer.last_after_ns.max(1_000);
        *h.now_ns = h.now_ns.saturating_add(wait);
        self.deferral_since = None;
        self.call(|v, ports| v.run_deferred(ports));
    }

    /// What the hypervisor and the interrupt controller do while the guest
    /// waits: run deferred work once due (back to back while it asks for
    /// more at once, as a tasklet that reschedules itself does), deliver a
    /// GERROR interrupt.
    fn host_step(&mut self) {
        for _ in 0..HOST_CALLS_PER_STEP {
            if !self.deferred_due() {
                break;
            }
            let h = self.platform.host();
            h.defer.pending = false;
            self.deferral_since = None;
            self.call(|v, ports| v.run_deferred(ports));
        }
        self.take_gerror_irq();
    }

    /// Whether requested deferred work is due now (and notes when a new
    /// request was first seen).
    fn deferred_due(&mut self) -> bool {
        let latency = self.timing.deferred_latency_ns;
        let since = self.deferral_since;
        let h = self.platform.host();
        if !h.defer.pending {
            return false;
        }
        let now = *h.now_ns;
        let from = since.unwrap_or(now);
        if since.is_none() {
            self.deferral_since = Some(now);
        }
        now >= from.saturating_add(latency.max(h.defer.last_after_ns))
    }

    /// One wait of a poll loop: time passes, the host acts.
    fn wait(&mut self, ns: u64) {
        self.advance(ns);
        self.host_step();
    }

    /// `arm_smmu_write_reg_sync`: write, then poll the ACK register every
    /// microsecond for up to 1 s.
    fn write_acked(&mut self, reg: Register, ack: Register, value: u64) -> Result<(), GuestError> {
        self.write(reg, value);
        self.poll_reg(ack, |v| v == value)
            .map_err(|_| GuestError::AckTimeout(ack))
    }

    /// `readl_relaxed_poll_timeout`: true once `ok` holds, re-reading once
    /// after the deadline.
    fn poll_reg(&mut self, reg: Register, ok: impl Fn(u64) -> bool) -> Result<(), ()> {
        let deadline = self.now_ns().saturating_add(self.timing.timeout_ns);
        loop {
            if ok(self.read(reg)) {
                return Ok(());
            }
            if self.now_ns() > deadline {
                return if ok(self.read(reg)) { Ok(()) } else { Err(()) };
            }
            self.wait(self.timing.reg_poll_ns);
        }
    }

    /// Probe and `arm_smmu_device_reset`, step by step. Linux carries on
    /// after a CMD_SYNC timeout here (it only logs it); the model does too
    /// but then reports the first one.
    pub fn bring_up(&mut self) -> Result<(), GuestError> {
        let p = self.hw_probe()?;
        self.init_structures(&p);
        let setup = self.reset_setup(&p);
        bringup::device_reset(self, &setup)?
    }

    /// What Linux programs at reset: its structures, the attributes of its
    /// table and queue accesses (write-back, inner shareable), private TLB
    /// maintenance (CR2.PTM), invalid StreamIDs recorded, and wired
    /// event-queue and GERROR interrupts.
    fn reset_setup(&self, p: &Probe) -> bringup::Setup {
        let l = self.layout;
        bringup::Setup {
            strtab: bringup::stream_table_base(l.strtab),
            strtab_cfg: linux::strtab_base_cfg(p),
            cmdq: bringup::command_queue_base(l.cmdq, l.cmdq_log2),
            evtq: bringup::event_queue_base(l.evtq, l.evtq_log2),
            cr1: bringup::WRITE_BACK_CR1,
            cr2: Cr2(0).with_ptm(true).with_recinvsid(true),
            hyp: p.hyp,
            ats_check: p.ats,
            pri: p.pri,
            irqs: IrqCtrl(0).with_eventq_irqen(true).with_gerror_irqen(true),
            abort_while_disabled: false,
        }
    }

    /// `arm_smmu_device_hw_probe`: the ID registers, in Linux's order.
    fn hw_probe(&mut self) -> Result<Probe, GuestError> {
        let idr0 = self.read(Register::IDR0) as u32;
        let idr1 = self.read(Register::IDR1) as u32;
        let idr3 = self.read(Register::IDR3) as u32;
        let idr5 = self.read(Register::IDR5) as u32;
        // arm_smmu_device_iidr_probe: errata by implementer and product.
        self.read(Register::IIDR);
        let p = linux::probe(
            self.version(),
            [idr0, idr1, idr3, idr5],
            self.layout.msi_poll,
        )
        .map_err(GuestError::Probe)?;
        self.ids = IdRegisters {
            idr0: Idr0(idr0),
            idr1: Idr1(idr1),
            idr3: Idr3(idr3),
            idr5: Idr5(idr5),
            ..IdRegisters::RESET
        };
        self.layout.cmdq_log2 = self.layout.cmdq_log2.min(p.cmdq_log2);
        self.layout.evtq_log2 = self.layout.evtq_log2.min(p.evtq_log2);
        self.probe = Some(p);
        Ok(p)
    }

    /// `arm_smmu_init_structures`: zeroed queues, the stream table with every
    /// STE aborting (2-level: every L1 descriptor invalid). Not yet visible
    /// to the SMMU, so no invalidation.
    fn init_structures(&mut self, p: &Probe) {
        let l = self.layout;
        if p.two_level {
            let l1 = 1u64 << p.sid_bits.saturating_sub(linux::STRTAB_SPLIT);
            for i in 0..l1.min(1 << linux::STRTAB_L1_MAX_LOG2) {
                self.platform.guest_write_u64(l.strtab + 8 * i, 0);
            }
        } else {
            let abort = self.initial_ste();
            for sid in 0..(1u64 << p.sid_bits) {
                self.write_words(l.strtab + 64 * sid, &abort.0);
            }
        }
        for i in 0..self.cmdq().bytes() / 8 {
            self.platform.guest_write_u64(l.cmdq + 8 * i, 0);
        }
        self.next_l2 = l.l2_pool;
        self.cd_tables.clear();
    }

    /// The STE of an unused stream (`disable_bypass`): abort; 6.1 also sets
    /// SHCFG=incoming (`arm_smmu_init_bypass_stes`).
    fn initial_ste(&self) -> Ste {
        let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
        match self.version() {
            LinuxVersion::V6_1 => abort.with_shcfg(SteShcfg::USE_INCOMING),
            LinuxVersion::V6_12 => abort,
        }
    }

    /// `arm_smmu_update_gbpa(GBPA_ABORT, 0)`: wait for UPDATE to clear,
    /// set ABORT with UPDATE, wait again. Failure is only logged.
    fn update_gbpa_abort(&mut self) {
        let idle = |v: u64| !Gbpa(v as u32).update();
        if self.poll_reg(Register::GBPA, idle).is_err() {
            self.warnings.push("GBPA not responding to update");
            return;
        }
        let cur = Gbpa(self.read(Register::GBPA) as u32);
        let v = cur.with_abort(true).with_update(true);
        self.write(Register::GBPA, u64::from(v.0));
        if self.poll_reg(Register::GBPA, idle).is_err() {
            self.warnings.push("GBPA not responding to update");
        }
    }

    // ---- the command queue ----

    /// The command queue as the guest allocated it.
    pub fn cmdq(&self) -> Queue {
        let l = &self.layout;
        Queue::new(l.cmdq, l.cmdq_log2, MAX_LOG2SIZE, COMMAND_BYTES)
    }

    fn slot(&self, ptr: u32) -> u64 {
        self.cmdq().slot(ptr)
    }

    /// `queue_inc_prod_n`: index plus wrap bit, modulo twice the size.
    fn inc(&self, ptr: u32, n: u32) -> u32 {
        self.cmdq().advance(ptr, n)
    }

    /// `queue_has_space` on the guest's view of CONS.
    fn has_space(&self, n: u32) -> bool {
        self.cmdq().free(self.prod, self.cons) >= n
    }

    /// `queue_consumed`: CONS has moved past the entry at `ptr`.
    fn consumed(&self, ptr: u32) -> bool {
        self.cmdq().consumed(self.cons, ptr)
    }

    fn read_cons(&mut self) -> CmdqCons {
        let c = CmdqCons(self.read(Register::CMDQ_CONS) as u32);
        self.cons = c.rd();
        c
    }

    /// `arm_smmu_cmdq_issue_cmdlist` on one CPU: room for all of them, the
    /// commands, our CMD_SYNC, one PROD write, then wait for the SYNC.
    fn issue_cmdlist(&mut self, cmds: &[[u64; 2]], sync: bool) -> Result<(), GuestError> {
        let n = cmds.len() as u32 + u32::from(sync);
        self.wait_for_space(n)?;
        let start = self.prod;
        for (i, c) in cmds.iter().enumerate() {
            let at = self.slot(self.inc(start, i as u32));
            self.put_cmd(at, *c);
        }
        let sync_ptr = self.inc(start, cmds.len() as u32);
        if sync {
            let msi = self.msi_poll().then(|| self.slot(sync_ptr));
            self.put_cmd(self.slot(sync_ptr), linux::sync_cmd(msi).encode());
        }
        self.prod = self.inc(start, n);
        self.write(Register::CMDQ_PROD, u64::from(self.prod));
        if !sync {
            return Ok(());
        }
        let r = self.poll_until_sync(sync_ptr);
        if r.is_err() {
            self.warnings.push("CMD_SYNC timeout");
        }
        r
    }

    fn msi_poll(&self) -> bool {
        self.probe.is_some_and(|p| p.msi_poll)
    }

    fn put_cmd(&mut self, at: u64, words: [u64; 2]) {
        self.log(GuestOp::Cmd(words));
        self.platform.guest_write_u64(at, words[0]);
        self.platform.guest_write_u64(at + 8, words[1]);
    }

    /// `arm_smmu_cmdq_poll_until_not_full`, uncontended: re-read CONS until
    /// the commands fit. Linux spins here without a deadline; the model
    /// gives up after the usual second.
    fn wait_for_space(&mut self, n: u32) -> Result<(), GuestError> {
        let deadline = self.now_ns().saturating_add(self.timing.timeout_ns);
        while !self.has_space(n) {
            if self.now_ns() > deadline {
                return Err(GuestError::CmdqFull);
            }
            self.read_cons();
            if !self.has_space(n) {
                self.wait(self.timing.relax_ns);
            }
        }
        Ok(())
    }

    /// `arm_smmu_cmdq_poll_until_sync`: MSI-poll watches the first word of
    /// the SYNC's slot for the SMMU's zero write (never reading CONS);
    /// otherwise CONS is polled until it passes the SYNC.
    fn poll_until_sync(&mut self, sync_ptr: u32) -> Result<(), GuestError> {
        let msi = self.msi_poll();
        let wfe = !msi && self.probe.is_some_and(|p| p.sev);
        let mut backoff = Backoff::new(wfe);
        let deadline = self.now_ns().saturating_add(self.timing.timeout_ns);
        let slot = self.slot(sync_ptr);
        loop {
            let done = if msi {
                self.platform.guest_read_u64(slot) as u32 == 0
            } else {
                self.consumed(sync_ptr)
            };
            if done {
                if msi {
                    self.cons = self.inc(sync_ptr, 1);
                }
                return Ok(());
            }
            if self.now_ns() > deadline {
                return Err(GuestError::SyncTimeout);
            }
            let ns = backoff.next_ns(self.timing.wfe_ns, self.timing.relax_ns);
            self.wait(ns);
            if !msi {
                self.read_cons();
            }
        }
    }

    /// `arm_smmu_cmdq_issue_cmd_with_sync`.
    pub fn issue_cmd_with_sync(&mut self, cmd: Command) -> Result<(), GuestError> {
        self.issue_cmdlist(&[cmd.encode()], true)
    }

    /// `arm_smmu_cmdq_issue_cmd`: published without a SYNC, not waited for.
    pub fn issue_cmd(&mut self, cmd: Command) -> Result<(), GuestError> {
        self.issue_cmdlist(&[cmd.encode()], false)
    }

    /// A batch (`arm_smmu_cmdq_batch_add` / `_submit`): every 64 commands
    /// are published without a SYNC; the rest go with the issuer's SYNC.
    pub fn issue(&mut self, cmds: &[Command]) -> Result<(), GuestError> {
        let words: Vec<[u64; 2]> = cmds.iter().map(Command::encode).collect();
        let mut rest = words.as_slice();
        while rest.len() > BATCH_ENTRIES {
            let (full, tail) = rest.split_at(BATCH_ENTRIES);
            self.issue_cmdlist(full, false)?;
            rest = tail;
        }
        self.issue_cmdlist(rest, true)
    }

    // ---- interrupts ----

    /// Runs the GERROR handler once per GERROR interrupt delivered.
    fn take_gerror_irq(&mut self) {
        if self.in_irq {
            return;
        }
        let h = self.platform.host();
        let count = count_irq(h.irq, Irq::Gerror);
        if count == self.gerror_seen {
            return;
        }
        self.gerror_seen = count;
        self.in_irq = true;
        self.gerror_handler();
        self.in_irq = false;
    }

    /// `arm_smmu_gerror_handler`: the active errors, the command queue's
    /// skipped, all acknowledged by writing GERROR to GERRORN.
    pub fn gerror_handler(&mut self) {
        let errors = GlobalErrors::new(
            Gerror(self.read(Register::GERROR) as u32),
            Gerrorn(self.read(Register::GERRORN) as u32),
        );
        let active = errors.active();
        if active.0 == 0 {
            return;
        }
        self.warnings.push("unexpected global error reported");
        if active.sfm_err() {
            self.warnings
                .push("device has entered Service Failure Mode!");
            let _ = self.write_acked(Register::CR0, Register::CR0ACK, 0);
        }
        if active.cmdq_err() {
            self.cmdq_skip_err();
        }
        self.write(Register::GERRORN, u64::from(errors.acknowledge_all().0));
    }

    /// `arm_smmu_cmdq_skip_err`: an illegal (or unknown) command is
    /// overwritten by a CMD_SYNC without MSI; a fetch abort is retried and an
    /// ATC invalidation timeout re-runs its SYNC, both as they are.
    fn cmdq_skip_err(&mut self) {
        let cons = CmdqCons(self.read(Register::CMDQ_CONS) as u32);
        self.warnings.push("CMDQ error");
        let err = cons.err();
        if matches!(
            err,
            CmdqConsErr::CERROR_NONE | CmdqConsErr::CERROR_ABT | CmdqConsErr::CERROR_ATC_INV_SYNC
        ) {
            return;
        }
        self.warnings.push("skipping command in error state");
        let at = self.slot(cons.rd());
        self.put_cmd(at, linux::sync_cmd(None).encode());
    }

    // ---- stream table and context descriptors ----

    /// Where the STE of `sid` lives, allocating its L2 table (256 STEs,
    /// Span=9, every STE aborting) the way Linux does on first use. A
    /// StreamID beyond the table gets the address a linear table would give
    /// it (tests use that to probe the vSMMU's range checks).
    pub fn ste_addr(&mut self, sid: u32) -> u64 {
        let l = self.layout;
        let ste_bytes = (Ste::WORDS * 8) as u64;
        let Some(p) = self.probe else {
            return l.strtab + ste_bytes * u64::from(sid);
        };
        let strtab = StrtabBase(0).with_addr(l.strtab);
        let table = StreamTable::new(
            strtab,
            linux::strtab_base_cfg(&p),
            self.ids.idr0,
            self.ids.idr1,
        );
        let l1_addr = match table.lookup(sid) {
            Some(Lookup::L1std(at)) => at,
            Some(Lookup::Ste(at)) => return at,
            None => return l.strtab + ste_bytes * u64::from(sid),
        };
        let mut l1 = L1std([self.platform.guest_read_u64(l1_addr)]);
        if l1.span() == 0 {
            let l2 = self.next_l2;
            self.next_l2 += table.l2_bytes();
            let ste = self.initial_ste();
            for at in (l2..l2 + table.l2_bytes()).step_by(ste_bytes as usize) {
                self.write_words(at, &ste.0);
            }
            l1 = table.full_l1std(l2);
            self.store(l1_addr, l1.0[0]);
        }
        // A descriptor Linux did not write (a test's) counts from its base.
        table.ste_in_l2(l1, sid).unwrap_or(l1.l2_ptr())
    }

    /// A table doubleword, as the driver stores it.
    fn store(&mut self, ipa: u64, value: u64) {
        self.log(GuestOp::Store { ipa, value });
        self.platform.guest_write_u64(ipa, value);
    }

    fn read_entry(&mut self, at: u64) -> [u64; 8] {
        core::array::from_fn(|i| self.platform.guest_read_u64(at + 8 * i as u64))
    }

    /// The stage-1 STE `arm_smmu_write_strtab_ent` (6.1) or
    /// `arm_smmu_make_cdtable_ste` (6.12) builds for a one-CD table.
    pub fn s1_ste(&self, cd_table: u64) -> Ste {
        let stalls = self.probe.is_some_and(|p| p.stalls);
        Ste::new()
            .with_v(true)
            .with_config(SteConfig::S1_TRANS)
            .with_s1_fmt(SteS1Fmt::LINEAR)
            .with_s1_context_ptr(cd_table)
            .with_s1dss(SteS1dss::SUBSTREAM0)
            .with_s1cir(SteS1cir::WB_RA)
            .with_s1cor(SteS1cor::WB_RA)
            .with_s1csh(SteS1csh::INNER_SHAREABLE)
            .with_s1stalld(stalls)
            .with_strw(SteStrw::EL1)
    }

    /// `arm_smmu_attach_dev` of a stage-1 DMA domain with one CD at SSID 0.
    pub fn attach(&mut self, sid: u32, asid: u16, ttb0: u64) -> Result<(), GuestError> {
        let oas = self.probe.map_or(48, |p| p.oas);
        let cd = linux_cd_for(asid, ttb0, linux::ips_for(oas));
        let table = self.cd_table(sid);
        match self.version() {
            LinuxVersion::V6_1 => {
                self.detach_6_1(sid)?;
                self.write_ctx_desc_6_1(table, &cd)?;
            }
            LinuxVersion::V6_12 => {
                if self.cd_tables.insert(sid) {
                    self.write_words(table, &[0; 8]);
                }
                self.write_cd_6_12(sid, table, &cd)?;
            }
        }
        let ste = self.s1_ste(table);
        self.write_ste(sid, ste)
    }

    /// 6.1 `arm_smmu_detach_dev` of an attached stream: the abort STE
    /// (words 0-2, then one sync).
    fn detach_6_1(&mut self, sid: u32) -> Result<(), GuestError> {
        let at = self.ste_addr(sid);
        let cur = Ste(self.read_entry(at));
        if !(cur.v() && is_translating(cur.config())) {
            return Ok(());
        }
        let abort = self.initial_ste();
        for i in 0..3 {
            self.store(at + 8 * i as u64, abort.0[i]);
        }
        self.issue_cmd_with_sync(linux::cfgi_ste(sid))
    }

    /// 6.1 `arm_smmu_write_ctx_desc` of a fresh CD: qwords 1-3, sync, qword
    /// 0, sync. The new domain has no device yet: each sync is a lone
    /// CMD_SYNC (an empty batch still submits its SYNC).
    fn write_ctx_desc_6_1(&mut self, table: u64, cd: &Cd) -> Result<(), GuestError> {
        // A new domain's CD table: freshly allocated, zeroed memory.
        self.write_words(table, &[0; 8]);
        for i in 1..4 {
            self.store(table + 8 * i as u64, cd.0[i]);
        }
        self.issue(&[])?;
        self.store(table, cd.0[0]);
        self.issue(&[])
    }

    /// 6.12 `arm_smmu_write_cd_entry`: the used-bits steps, each followed
    /// by CFGI_CD(SSID 0, leaf) for the stream and a SYNC.
    fn write_cd_6_12(&mut self, sid: u32, at: u64, cd: &Cd) -> Result<(), GuestError> {
        let cur = self.read_entry(at);
        let plan = linux::write_entry_plan(cur, cd.0, |e| linux::cd_used(&Cd(*e)));
        for step in plan {
            for (i, v) in step.stores {
                self.store(at + 8 * i as u64, v);
            }
            self.issue(&[linux::cfgi_cd(sid, 0, true)])?;
        }
        Ok(())
    }

    /// The IPA of a stream's CD table.
    pub fn cd_table(&self, sid: u32) -> u64 {
        self.layout.cds + 0x1000 * u64::from(sid & 0xff)
    }

    /// Writes the stream's CD at SSID 0 (see [`linux_cd`]) without any
    /// invalidation (for tests that arrange memory themselves).
    pub fn write_cd(&mut self, sid: u32, asid: u16, ttb0: u64) {
        let cd = linux_cd(asid, ttb0);
        let at = self.cd_table(sid);
        self.write_words(at, &cd.0);
    }

    /// Installs an STE the way the driver generation does, then
    /// PREFETCH_CFG (published, not waited for).
    pub fn write_ste(&mut self, sid: u32, ste: Ste) -> Result<(), GuestError> {
        let prefetch = match self.version() {
            LinuxVersion::V6_1 => self.write_strtab_ent_6_1(sid, &ste)?,
            LinuxVersion::V6_12 => self.write_ste_6_12(sid, &ste)?,
        };
        if prefetch {
            self.issue_cmd(linux::prefetch_cfg(sid))?;
        }
        Ok(())
    }

    /// 6.1 `arm_smmu_write_strtab_ent`: abort/bypass in one go and one sync;
    /// a translating STE after detaching a live one: qwords 1.. first, sync,
    /// qword 0, sync. True when PREFETCH_CFG follows.
    fn write_strtab_ent_6_1(&mut self, sid: u32, ste: &Ste) -> Result<bool, GuestError> {
        let at = self.ste_addr(sid);
        if !(ste.v() && is_translating(ste.config())) {
            let cur = self.read_entry(at);
            for (i, (c, t)) in cur.iter().zip(ste.0).enumerate() {
                if i < 3 || *c != t {
                    self.store(at + 8 * i as u64, t);
                }
            }
            self.issue_cmd_with_sync(linux::cfgi_ste(sid))?;
            return Ok(false);
        }
        self.detach_6_1(sid)?;
        let cur = self.read_entry(at);
        let s2 = ste.config() != SteConfig::S1_TRANS;
        for (i, (c, t)) in cur.iter().zip(ste.0).enumerate().skip(1) {
            if i == 1 || (s2 && i <= 3) || *c != t {
                self.store(at + 8 * i as u64, t);
            }
        }
        self.issue_cmd_with_sync(linux::cfgi_ste(sid))?;
        self.store(at, ste.0[0]);
        self.issue_cmd_with_sync(linux::cfgi_ste(sid))?;
        Ok(true)
    }

    /// 6.12 `arm_smmu_write_ste`: `arm_smmu_write_entry`'s steps, each
    /// followed by CFGI_STE(leaf) and a SYNC.
    fn write_ste_6_12(&mut self, sid: u32, ste: &Ste) -> Result<bool, GuestError> {
        let at = self.ste_addr(sid);
        let cur = self.read_entry(at);
        let plan = linux::write_entry_plan(cur, ste.0, |e| linux::ste_used(&Ste(*e)));
        for step in plan {
            for (i, v) in step.stores {
                self.store(at + 8 * i as u64, v);
            }
            self.issue_cmd_with_sync(linux::cfgi_ste(sid))?;
        }
        Ok(true)
    }

    /// `arm_smmu_tlb_inv_range_domain` after unmapping `pages` 4K pages of a
    /// stage-1 domain: leaf TLBIs (ranges when IDR3.RIL), batched.
    pub fn unmap(&mut self, asid: u16, iova: u64, pages: u64) -> Result<(), GuestError> {
        let ril = self.probe.is_some_and(|p| p.range_inv);
        let size = pages.saturating_mul(1 << linux::PAGE_SHIFT);
        let cmds = linux::tlbi_range(asid, iova, size, 1 << linux::PAGE_SHIFT, true, ril);
        self.issue(&cmds)
    }

    // ---- the event queue ----

    /// `arm_smmu_evtq_thread`: read each record between CONS and PROD,
    /// writing CONS after each, re-read PROD until nothing is left, then
    /// acknowledge an overflow by copying OVFLG into CONS.
    pub fn events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut prod = self.evt_cons & !EventqCons(0).with_ovackflg(true).0;
        loop {
            while !self.evtq_empty(prod) {
                out.extend(self.pop_event());
            }
            let p = EventqProd(self.read(Register::EVENTQ_PROD) as u32);
            if p.ovflg() != self.evt_prod_ovf {
                self.warnings.push("EVTQ overflow detected -- events lost");
            }
            self.evt_prod_ovf = p.ovflg();
            prod = p.wr();
            if self.evtq_empty(prod) {
                break;
            }
        }
        if EventqCons(self.evt_cons).ovackflg() != self.evt_prod_ovf {
            self.evt_cons = EventqCons(self.evt_cons).with_ovackflg(self.evt_prod_ovf).0;
            self.write(Register::EVENTQ_CONS, u64::from(self.evt_cons));
        }
        out
    }

    /// The event queue as the guest allocated it.
    fn evtq(&self) -> Queue {
        let l = &self.layout;
        Queue::new(l.evtq, l.evtq_log2, MAX_LOG2SIZE, EVENT_BYTES)
    }

    fn evtq_empty(&self, prod: u32) -> bool {
        self.evtq().is_empty(prod, EventqCons(self.evt_cons).rd())
    }

    /// `queue_remove_raw`: one record, then CONS written.
    fn pop_event(&mut self) -> Option<Event> {
        let q = self.evtq();
        let c = EventqCons(self.evt_cons);
        let at = q.slot(c.rd());
        let words =
            core::array::from_fn::<u64, 4, _>(|i| self.platform.guest_read_u64(at + 8 * i as u64));
        self.evt_cons = c.with_rd(q.next(c.rd())).0;
        self.write(Register::EVENTQ_CONS, u64::from(self.evt_cons));
        Event::decode(words).ok()
    }

    /// Writes doublewords of guest memory (not traced: allocation, setup).
    pub fn write_words(&mut self, ipa: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.platform.guest_write_u64(ipa + 8 * i as u64, *w);
        }
    }

    /// A word of guest memory (for checking MSI writes).
    pub fn ram_u32(&mut self, ipa: u64) -> u32 {
        self.platform.guest_read_u64(ipa) as u32
    }
}

fn count_irq(irq: &RecordingIrq, which: Irq) -> usize {
    irq.raised.iter().filter(|i| **i == which).count()
        + irq.msis.iter().filter(|(i, _, _)| *i == which).count()
}

fn is_translating(c: SteConfig) -> bool {
    matches!(
        c,
        SteConfig::S1_TRANS | SteConfig::S2_TRANS | SteConfig::NESTED
    )
}

impl LinuxGuest<FakePlatform> {
    pub fn ipa(&self, off: u64) -> Ipa {
        Ipa(self.platform.ram.base + off)
    }
}

/// A Linux stage-1 CD (`arm_smmu_make_s1_cd`, 6.1's `arm_smmu_write_ctx_desc`):
/// 48-bit VA, 4K granule, write-back walks, inner shareable, AArch64, 44-bit IPS.
pub fn linux_cd(asid: u16, ttb0: u64) -> Cd {
    linux_cd_for(asid, ttb0, CdIps::PS_44_BIT)
}

/// [`linux_cd`] with the IPS io-pgtable derives from the SMMU's OAS.
pub fn linux_cd_for(asid: u16, ttb0: u64, ips: CdIps) -> Cd {
    Cd::new()
        .with_t0sz(16)
        .with_tg0(CdTg0::GRANULE_4KB)
        .with_ir0(CdIr0::WB_RA_WA)
        .with_or0(CdOr0::WB_RA_WA)
        .with_sh0(CdSh0::INNER_SHAREABLE)
        .with_epd1(true)
        .with_v(true)
        .with_ips(ips)
        .with_aa64(true)
        .with_r(true)
        .with_a(true)
        .with_aset(true)
        .with_asid(asid)
        .with_ttb0(ttb0)
        .with_mair0(0x0044_ff04)
}

/// The bring-up as Linux runs it, through the guest's register accesses
/// and command queue (traced like every other access).
impl<P: GuestPlatform> ResetBus for LinuxGuest<P> {
    type Error = GuestError;
    fn read(&mut self, reg: Register) -> u64 {
        LinuxGuest::<P>::read(self, reg)
    }
    fn write(&mut self, reg: Register, value: u64) {
        LinuxGuest::<P>::write(self, reg, value)
    }
    fn write_acked(&mut self, reg: Register, ack: Register, value: u64) -> Result<(), GuestError> {
        LinuxGuest::<P>::write_acked(self, reg, ack, value)
    }
    fn update_gbpa_abort(&mut self) {
        LinuxGuest::<P>::update_gbpa_abort(self)
    }
    fn found_enabled(&mut self) {
        self.warnings.push("SMMU currently enabled! Resetting...");
    }
    fn cmdq_reset(&mut self) {
        (self.prod, self.cons) = (0, 0);
    }
    fn evtq_reset(&mut self) {
        self.evt_cons = 0;
        self.evt_prod_ovf = false;
    }
    fn issue_with_sync(&mut self, cmd: Command) -> Result<(), GuestError> {
        self.issue_cmd_with_sync(cmd)
    }
    fn irqs_failed(&mut self) {
        self.warnings.push("failed to enable irqs");
    }
}
