//! The physical SMMUv3 driver a hypervisor uses: probe, reset and enable in
//! the architecture's order, a linear or 2-level stream table, the command
//! queue (batched, bounded waits, CERROR handling) and the event queue.
//!
//! One driver per physical SMMU; the domains on that SMMU share it. Every
//! method takes `&self`: the command queue and the stream table are each
//! behind a lock, so concurrent submission is safe.

use alloc::vec::Vec;

use smmuv3::bringup::{self, ResetBus};
use smmuv3::cmd::{CmdCfgiSte, CmdCfgiSteRange, CmdSync, CmdSyncCs, Command};
use smmuv3::evt::Event;
use smmuv3::locate::{Lookup, StreamTable};
use smmuv3::queue::{GlobalErrors, Queue, COMMAND_BYTES, EVENT_BYTES, MAX_LOG2SIZE};
use smmuv3::regs::*;
use smmuv3::structs::{L1std, Ste, SteConfig};
use smmuv3::IdRegisters;
use smmuv3::{Register, RegisterType};

use crate::error::{Error, Wait};
use crate::lock::SpinLock;
use crate::ste_writer::{write_ste, EntryWriter, Steps, QWORDS};
use crate::transport::{DmaFault, DmaMemory, RegisterAccess};

/// Why a physical SMMU cannot serve nested guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Stage 1 or stage 2 is missing.
    NoNesting,
    /// AArch64 translation tables are not supported.
    NoAArch64,
    /// A part with a known nesting erratum (identified by IIDR).
    Erratum {
        product: u16,
        variant: u8,
        revision: u8,
    },
    /// Preset tables/queues or REL: this driver places its own structures.
    Preset,
    /// An ACK register did not follow its control register in time.
    AckTimeout(Register),
    /// The initial invalidations did not complete.
    Hardware(Error),
}

/// Arm parts whose nesting Linux refuses (its IIDR probe): implementer Arm
/// (0x43B), product, and the first variant without the erratum.
const NESTING_ERRATA: &[(u16, u8)] = &[
    // MMU-700 r0: erratum 2812531 and friends make nested translation unsafe.
    (0x487, 1),
];

/// Where the driver puts its structures in DMA memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverLayout {
    pub strtab: u64,
    /// log2 of the StreamIDs covered (at most the SMMU's SIDSIZE).
    pub sid_bits: u32,
    /// Use a 2-level stream table (L2 tables of 256 STEs from `l2_pool`).
    pub two_level: bool,
    pub l2_pool: u64,
    /// Bytes of the pool: a StreamID whose L2 table would not fit is refused.
    pub l2_pool_size: u64,
    pub cmdq: u64,
    pub cmdq_log2: u32,
    pub evtq: u64,
    pub evtq_log2: u32,
    /// Enable the SMMU's event-queue and GERROR interrupts. Off for a
    /// hypervisor that drains events itself, or whose guest owns those lines.
    pub irqs: bool,
}

/// StreamID bits one level-2 stream table resolves (the driver's SPLIT):
/// 256 STEs, 16 KiB.
pub const L2_SPLIT: u32 = 8;

/// How long to wait for the SMMU, in register polls.
pub const POLL_LIMIT: u32 = 100_000;

struct Cmdq {
    prod: u32,
    /// CONS as last read: space is known without a register read until the
    /// queue looks full.
    cons: u32,
    /// Commands refused with CERROR_ILL (reported and skipped).
    illegal: u64,
    /// Commands ever queued: the sequence number of the next one. A
    /// [`Ticket`] is one of these.
    pushed: u64,
    /// Sequence number of the latest command refused with CERROR_ILL.
    last_refused: Option<u64>,
}

/// The sequence number of the first command of a submission: a later
/// [`SmmuDriver::sync_since`] says whether any command from it on was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Level-2 tables handed out so far (the rest of the pool is free).
struct L2Pool {
    next: u64,
}

/// Counters for the hypervisor's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    pub commands: u64,
    pub syncs: u64,
    pub illegal: u64,
    pub event_overflows: u64,
}

pub struct SmmuDriver<R: RegisterAccess, M: DmaMemory> {
    regs: R,
    mem: M,
    ids: IdRegisters,
    layout: DriverLayout,
    cmdq: SpinLock<Cmdq>,
    /// The stream table as the SMMU walks it.
    table: StreamTable,
    l2_pool: SpinLock<L2Pool>,
    evt_cons: SpinLock<u32>,
    stats: SpinLock<DriverStats>,
}

fn off(r: Register) -> u32 {
    r.info().frame_offset()
}

/// The stream table's format as the driver lays it out.
fn strtab_cfg(l: &DriverLayout) -> StrtabBaseCfg {
    let cfg = StrtabBaseCfg(0).with_log2size(l.sid_bits as u8);
    if l.two_level {
        cfg.with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
            .with_split(StrtabBaseCfgSplit(L2_SPLIT as u8))
    } else {
        cfg.with_fmt(StrtabBaseCfgFmt::LINEAR)
    }
}

/// Reads the ID registers and refuses parts that cannot nest.
pub fn probe(regs: &impl RegisterAccess) -> Result<IdRegisters, ProbeError> {
    let ids = IdRegisters::read(|r| u64::from(regs.read32(off(r))));
    let idr0 = ids.idr0;
    if !idr0.s1p() || !idr0.s2p() {
        return Err(ProbeError::NoNesting);
    }
    if idr0.ttf().0 & 0b10 == 0 {
        return Err(ProbeError::NoAArch64);
    }
    let idr1 = ids.idr1;
    if idr1.tables_preset() || idr1.queues_preset() || idr1.rel() {
        return Err(ProbeError::Preset);
    }
    let iidr = ids.iidr;
    if iidr.implementer() == 0x43b {
        for (product, fixed) in NESTING_ERRATA {
            if iidr.product_id() == *product && iidr.variant() < *fixed {
                return Err(ProbeError::Erratum {
                    product: *product,
                    variant: iidr.variant(),
                    revision: iidr.revision(),
                });
            }
        }
    }
    Ok(ids)
}

impl<R: RegisterAccess, M: DmaMemory> SmmuDriver<R, M> {
    /// Probes, then resets and enables the SMMU in Linux's order
    /// (`arm_smmu_device_reset`), with every stream aborting.
    pub fn new(regs: R, mem: M, layout: DriverLayout) -> Result<Self, ProbeError> {
        let ids = probe(&regs)?;
        let sid_bits = layout.sid_bits.min(u32::from(ids.idr1.sidsize()));
        let layout = DriverLayout {
            sid_bits,
            cmdq_log2: layout.cmdq_log2.min(u32::from(ids.idr1.cmdqs())),
            evtq_log2: layout.evtq_log2.min(u32::from(ids.idr1.eventqs())),
            two_level: layout.two_level && ids.idr0.st_level().0 == 1,
            ..layout
        };
        let d = SmmuDriver {
            regs,
            mem,
            ids,
            layout,
            cmdq: SpinLock::new(Cmdq {
                prod: 0,
                cons: 0,
                illegal: 0,
                pushed: 0,
                last_refused: None,
            }),
            table: StreamTable::new(
                StrtabBase(0).with_addr(layout.strtab),
                strtab_cfg(&layout),
                ids.idr0,
                ids.idr1,
            ),
            l2_pool: SpinLock::new(L2Pool {
                next: layout.l2_pool,
            }),
            evt_cons: SpinLock::new(0),
            stats: SpinLock::new(DriverStats::default()),
        };
        d.reset()?;
        Ok(d)
    }

    /// The SMMU's identification registers, as probed.
    pub fn ids(&self) -> IdRegisters {
        self.ids
    }

    pub fn stats(&self) -> DriverStats {
        *self.stats.lock()
    }

    fn r32(&self, r: Register) -> u32 {
        self.regs.read32(off(r))
    }

    fn w32(&self, r: Register, v: u32) {
        self.regs.write32(off(r), v)
    }

    fn w64(&self, r: Register, v: u64) {
        self.regs.write64(off(r), v)
    }

    /// A register, as its value type (a 64-bit access for 64-bit ones).
    fn read<T: RegisterType>(&self) -> T {
        let r = T::REGISTER;
        if r.info().width == 64 {
            T::from_raw(self.regs.read64(off(r)))
        } else {
            T::from_raw(u64::from(self.r32(r)))
        }
    }

    fn write<T: RegisterType>(&self, v: T) {
        let r = T::REGISTER;
        if r.info().width == 64 {
            self.w64(r, v.raw())
        } else {
            self.w32(r, v.raw() as u32)
        }
    }

    fn write_acked(&self, reg: Register, ack: Register, v: u32) -> Result<(), ProbeError> {
        self.w32(reg, v);
        for _ in 0..POLL_LIMIT {
            if self.r32(ack) == v {
                return Ok(());
            }
        }
        Err(ProbeError::AckTimeout(ack))
    }

    /// Linux's `arm_smmu_device_reset` (the shared [`bringup`]), except
    /// that incoming transactions abort from the start while translation is
    /// off, and the interrupts are enabled only when the layout asks.
    fn reset(&self) -> Result<(), ProbeError> {
        let l = self.layout;
        self.init_stream_table();
        let irqs = if l.irqs {
            IrqCtrl(0).with_eventq_irqen(true).with_gerror_irqen(true)
        } else {
            IrqCtrl(0)
        };
        let setup = bringup::Setup {
            strtab: bringup::stream_table_base(l.strtab),
            strtab_cfg: strtab_cfg(&l),
            cmdq: bringup::command_queue_base(l.cmdq, l.cmdq_log2),
            evtq: bringup::event_queue_base(l.evtq, l.evtq_log2),
            cr1: bringup::WRITE_BACK_CR1,
            cr2: Cr2(0).with_recinvsid(true),
            hyp: self.ids.idr0.hyp(),
            ats_check: false,
            pri: false,
            irqs,
            abort_while_disabled: true,
        };
        let mut bus = Resetting {
            drv: self,
            irqs_failed: false,
        };
        bringup::device_reset(&mut bus, &setup)??;
        if bus.irqs_failed {
            return Err(ProbeError::AckTimeout(Register::IRQ_CTRLACK));
        }
        Ok(())
    }

    /// Every STE aborting (linear), or every L1 descriptor invalid (2-level).
    fn init_stream_table(&self) {
        let l = self.layout;
        let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
        let step = if l.two_level { 1u64 << L2_SPLIT } else { 1 };
        for sid in (0..1u64 << l.sid_bits).step_by(step as usize) {
            let _ = match self.table.lookup(sid as u32) {
                Some(Lookup::L1std(at)) => self.mem.write_u64(at, 0),
                Some(Lookup::Ste(at)) => self.write_words(at, &abort.0),
                None => Ok(()),
            };
        }
    }

    fn write_words(&self, at: u64, words: &[u64]) -> Result<(), DmaFault> {
        for (i, w) in words.iter().enumerate() {
            self.mem.write_u64(at + 8 * i as u64, *w)?;
        }
        Ok(())
    }

    /// PA of a StreamID's STE, creating its level-2 table on first use
    /// (every STE aborting), and the physical commands that took.
    fn ste_pa(&self, sid: u32) -> Result<(u64, u32), Error> {
        let l1_addr = match self.table.lookup(sid) {
            None => return Err(Error::StreamOutOfRange { sid }),
            Some(Lookup::Ste(at)) => return Ok((at, 0)),
            Some(Lookup::L1std(at)) => at,
        };
        let mut pool = self.l2_pool.lock();
        let l1 = L1std([self.mem.read_u64(l1_addr)?]);
        if let Some(at) = self.table.ste_in_l2(l1, sid) {
            return Ok((at, 0));
        }
        let l = self.layout;
        let (l2, bytes) = (pool.next, self.table.l2_bytes());
        if l2.saturating_add(bytes) > l.l2_pool.saturating_add(l.l2_pool_size) {
            return Err(Error::PoolExhausted { sid });
        }
        pool.next += bytes;
        let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
        let ste_bytes = (Ste::WORDS * 8) as u64;
        for at in (l2..l2 + bytes).step_by(ste_bytes as usize) {
            self.write_words(at, &abort.0)?;
        }
        let desc = self.table.full_l1std(l2);
        self.mem.write_u64(l1_addr, desc.0[0])?;
        drop(pool);
        // The SMMU may have cached the invalid descriptor.
        let t = self.submit(&[Command::CfgiSte(CmdCfgiSte::new().with_stream_id(sid))])?;
        self.sync_since(t)?;
        let at = self.table.ste_in_l2(desc, sid);
        Ok((at.ok_or(Error::StreamOutOfRange { sid })?, 2))
    }

    /// Writes `target` into the live STE of `sid` hitlessly: after every step
    /// that changes memory, CFGI_STE + CMD_SYNC. Returns the physical
    /// commands issued (at most `vsmmu::INSTALL_MAX_COMMANDS`).
    pub fn write_ste(&self, sid: u32, target: &Ste) -> Result<u32, Error> {
        let (at, mut cur, mut commands) = self.read_ste(sid)?;
        let mut w = StepWriter {
            drv: self,
            at,
            sid,
            err: None,
            commands: 0,
        };
        write_ste(&mut w, &mut cur, &target.0);
        commands += w.commands;
        w.err.map_or(Ok(commands), Err)
    }

    /// The live STE of `sid` and where it is.
    fn read_ste(&self, sid: u32) -> Result<(u64, [u64; QWORDS], u32), Error> {
        let (at, commands) = self.ste_pa(sid)?;
        let mut cur = [0u64; QWORDS];
        for (q, w) in cur.iter_mut().enumerate() {
            *w = self.mem.read_u64(at + 8 * q as u64).map_err(Error::Dma)?;
        }
        Ok((at, cur, commands))
    }

    /// Writes several STEs, each hitlessly, in lockstep: every STE's first
    /// step, then one invalidation covering them all and one sync, then
    /// every STE's second step, and so on (at most three steps). A run of
    /// neighbouring StreamIDs (a root complex) costs two commands a step
    /// whatever its length. Returns the physical commands issued.
    pub fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, Error> {
        let mut commands = 0;
        let mut plans = Vec::with_capacity(updates.len());
        for (sid, target) in updates {
            let (at, mut cur, c) = self.read_ste(*sid)?;
            commands += c;
            let mut steps = Steps::default();
            write_ste(&mut steps, &mut cur, &target.0);
            plans.push((*sid, at, steps.steps));
        }
        let rounds = plans.iter().map(|p| p.2.len()).max().unwrap_or(0);
        for round in 0..rounds {
            let mut sids = Vec::new();
            for (sid, at, steps) in &plans {
                let Some(step) = steps.get(round) else {
                    continue;
                };
                for (q, v) in step {
                    self.mem
                        .write_u64(at + 8 * *q as u64, *v)
                        .map_err(Error::Dma)?;
                }
                sids.push(*sid);
            }
            let cfgi = covering_cfgi(&mut sids);
            let ticket = self.submit(&cfgi)?;
            self.sync_since(ticket)?;
            commands += cfgi.len() as u32 + 1;
        }
        Ok(commands)
    }

    // ---- command queue ----

    fn cmdq_geometry(&self) -> Queue {
        let l = &self.layout;
        Queue::new(l.cmdq, l.cmdq_log2, MAX_LOG2SIZE, COMMAND_BYTES)
    }

    fn evtq_geometry(&self) -> Queue {
        let l = &self.layout;
        Queue::new(l.evtq, l.evtq_log2, MAX_LOG2SIZE, EVENT_BYTES)
    }

    /// Queues commands (no sync), waiting boundedly for space. The ticket
    /// names the first of them for [`Self::sync_since`].
    pub fn submit(&self, cmds: &[Command]) -> Result<Ticket, Error> {
        let mut q = self.cmdq.lock();
        let ticket = Ticket(q.pushed);
        for c in cmds {
            self.push(&mut q, c.encode())?;
        }
        self.w32(Register::CMDQ_PROD, q.prod);
        self.stats.lock().commands += cmds.len() as u64;
        Ok(ticket)
    }

    fn push(&self, q: &mut Cmdq, words: [u64; 2]) -> Result<(), Error> {
        let geometry = self.cmdq_geometry();
        for _ in 0..POLL_LIMIT {
            if geometry.is_full(q.prod, q.cons) {
                // Make room: publish what is queued, then see how far the SMMU got.
                self.w32(Register::CMDQ_PROD, q.prod);
                q.cons = self.handle_cmdq_error(q)?;
                continue;
            }
            let at = geometry.slot(q.prod);
            let mut entry = [0u8; 16];
            entry[..8].copy_from_slice(&words[0].to_le_bytes());
            entry[8..].copy_from_slice(&words[1].to_le_bytes());
            self.mem.write(at, &entry).map_err(Error::Dma)?;
            q.prod = geometry.next(q.prod);
            q.pushed += 1;
            return Ok(());
        }
        Err(Error::Timeout(Wait::QueueSpace))
    }

    /// Reads CONS; on CERROR_ILL replaces the bad entry with a CMD_SYNC (so the
    /// rest of the batch still runs), counts it, and acknowledges the error.
    fn handle_cmdq_error(&self, q: &mut Cmdq) -> Result<u32, Error> {
        let cons = self.read::<CmdqCons>();
        let errors = GlobalErrors::new(self.read::<Gerror>(), self.read::<Gerrorn>());
        let cmdq_err = Gerror(0).with_cmdq_err(true);
        if !errors.any_active(cmdq_err) {
            return Ok(cons.rd());
        }
        let geometry = self.cmdq_geometry();
        let at = geometry.slot(cons.rd());
        if cons.err() == CmdqConsErr::CERROR_ILL {
            q.illegal += 1;
            // The refused entry is the oldest of those not yet consumed.
            let waiting = geometry.used(q.prod, cons.rd());
            q.last_refused = Some(q.pushed.saturating_sub(u64::from(waiting)));
            self.stats.lock().illegal += 1;
            let sync = CmdSync::new().encode();
            self.mem.write_u64(at, sync[0]).map_err(Error::Dma)?;
            self.mem.write_u64(at + 8, sync[1]).map_err(Error::Dma)?;
        }
        // CERROR_ABT: the entry is retried as it is once acknowledged.
        self.w32(Register::GERRORN, errors.acknowledge(cmdq_err).0);
        Ok(cons.rd())
    }

    /// Appends a CMD_SYNC and waits (boundedly) until the SMMU consumed it.
    pub fn sync(&self) -> Result<(), Error> {
        self.sync_since(Ticket(u64::MAX))
    }

    /// Like [`Self::sync`], and an error if a command queued from `since`
    /// on was refused: what was asked did not all take effect. (A refusal
    /// of another user's command after `since` also counts: a false alarm
    /// only costs a retry.)
    pub fn sync_since(&self, since: Ticket) -> Result<(), Error> {
        let mut q = self.cmdq.lock();
        let sync_at = q.prod;
        self.push(&mut q, CmdSync::new().with_cs(CmdSyncCs::SIG_NONE).encode())?;
        self.w32(Register::CMDQ_PROD, q.prod);
        self.stats.lock().syncs += 1;
        let geometry = self.cmdq_geometry();
        let passed = |cons: u32| geometry.consumed(cons, sync_at);
        let refused = |q: &Cmdq| q.last_refused.is_some_and(|r| r >= since.0);
        for _ in 0..POLL_LIMIT {
            let cons = self.read::<CmdqCons>().rd();
            if passed(cons) {
                q.cons = cons;
                return if refused(&q) {
                    Err(Error::Refused)
                } else {
                    Ok(())
                };
            }
            // Not there yet: a command error may be what stops it.
            q.cons = self.handle_cmdq_error(&mut q)?;
            if passed(q.cons) {
                return if refused(&q) {
                    Err(Error::Refused)
                } else {
                    Ok(())
                };
            }
        }
        Err(Error::Timeout(Wait::Sync))
    }

    // ---- event queue ----

    /// Takes up to `max` events from the event queue; an overflow is counted
    /// and acknowledged.
    pub fn drain_events(&self, max: usize) -> Vec<Event> {
        let mut cons = self.evt_cons.lock();
        let geometry = self.evtq_geometry();
        let prod = self.read::<EventqProd>();
        let mut out = Vec::new();
        while !geometry.is_empty(prod.wr(), *cons) && out.len() < max {
            let at = geometry.slot(*cons);
            let mut w = [0u64; 4];
            for (i, x) in w.iter_mut().enumerate() {
                *x = self.mem.read_u64(at + 8 * i as u64).unwrap_or(0);
            }
            if let Ok(e) = Event::decode(w) {
                out.push(e);
            }
            *cons = geometry.next(*cons);
        }
        let mut c = EventqCons(*cons);
        let old = self.read::<EventqCons>();
        if prod.ovflg() != old.ovackflg() {
            self.stats.lock().event_overflows += 1;
        }
        c = c.with_ovackflg(prod.ovflg());
        self.write(c);
        out
    }
}

/// The driver as the shared bring-up's bus.
struct Resetting<'a, R: RegisterAccess, M: DmaMemory> {
    drv: &'a SmmuDriver<R, M>,
    irqs_failed: bool,
}

impl<R: RegisterAccess, M: DmaMemory> ResetBus for Resetting<'_, R, M> {
    type Error = ProbeError;
    fn read(&mut self, reg: Register) -> u64 {
        u64::from(self.drv.r32(reg))
    }
    fn write(&mut self, reg: Register, value: u64) {
        if reg.info().width == 64 {
            self.drv.w64(reg, value)
        } else {
            self.drv.w32(reg, value as u32)
        }
    }
    fn write_acked(&mut self, reg: Register, ack: Register, value: u64) -> Result<(), ProbeError> {
        self.drv.write_acked(reg, ack, value as u32)
    }
    /// Waits for a pending update, requests abort, waits for it to apply.
    fn update_gbpa_abort(&mut self) {
        let idle = |d: &SmmuDriver<R, M>| (0..POLL_LIMIT).any(|_| !d.read::<Gbpa>().update());
        idle(self.drv);
        let abort = self.drv.read::<Gbpa>().with_abort(true).with_update(true);
        self.drv.write(abort);
        idle(self.drv);
    }
    fn issue_with_sync(&mut self, cmd: Command) -> Result<(), ProbeError> {
        let ticket = self.drv.submit(&[cmd]).map_err(ProbeError::Hardware)?;
        self.drv.sync_since(ticket).map_err(ProbeError::Hardware)
    }
    fn irqs_failed(&mut self) {
        self.irqs_failed = true;
    }
}

/// Applies each hitless-update step to the live STE, then CFGI_STE + SYNC.
struct StepWriter<'a, R: RegisterAccess, M: DmaMemory> {
    drv: &'a SmmuDriver<R, M>,
    at: u64,
    sid: u32,
    err: Option<Error>,
    commands: u32,
}

impl<R: RegisterAccess, M: DmaMemory> EntryWriter for StepWriter<'_, R, M> {
    fn write_qword(&mut self, index: usize, value: u64) {
        if let Err(f) = self.drv.mem.write_u64(self.at + 8 * index as u64, value) {
            self.err = Some(Error::Dma(f));
        }
    }
    fn sync(&mut self) {
        let cfgi = Command::CfgiSte(CmdCfgiSte::new().with_stream_id(self.sid).with_leaf(true));
        self.commands += 2;
        if let Err(e) = self
            .drv
            .submit(&[cfgi])
            .and_then(|t| self.drv.sync_since(t))
        {
            self.err = Some(e);
        }
    }
}

/// Configuration invalidations covering `sids`: one CMD_CFGI_STE_RANGE
/// over the aligned power-of-two range holding them when they fill at least
/// a quarter of it (invalidating neighbours' cached STEs is harmless), else
/// one CMD_CFGI_STE each.
fn covering_cfgi(sids: &mut [u32]) -> Vec<Command> {
    sids.sort_unstable();
    let (Some(&lo), Some(&hi)) = (sids.first(), sids.last()) else {
        return Vec::new();
    };
    // Range r covers 2^(r+1) StreamIDs aligned to that size (§4.3.2).
    let range = (0..31u32)
        .find(|r| lo >> (r + 1) == hi >> (r + 1))
        .unwrap_or(31);
    let span = 2u64 << range;
    if sids.len() > 1 && span <= 4 * sids.len() as u64 {
        let c = CmdCfgiSteRange::new()
            .with_stream_id(lo)
            .with_range(range as u8);
        return alloc::vec![Command::CfgiSteRange(c)];
    }
    sids.iter()
        .map(|s| Command::CfgiSte(CmdCfgiSte::new().with_stream_id(*s).with_leaf(true)))
        .collect()
}
