//! The guest's command queue (§4): consuming commands between CONS and
//! PROD within the call's allowance, executing them, command errors, and
//! the continuation that carries on where a call stopped.

use smmuv3::cmd::{CmdSyncCs, CmdTlbiNhAll, Command};
use smmuv3::queue::Queue;
use smmuv3::regs::{CmdqBase, CmdqCons, CmdqConsErr, CmdqProd, Gerror, StrtabBaseCfg};

use crate::ports::{Ipa, Irq, Ports};
use crate::stream_table;

use super::{msi_write, Allowance, Stop, Vsmmu};

impl Vsmmu {
    fn cmdq(&self) -> Queue {
        let base = self.regs.read::<CmdqBase>();
        let max = u32::from(self.ident.idr1.cmdqs());
        Queue::command(base, max)
    }

    /// Stops the queue on a command error (§7.1).
    pub(super) fn command_error(&mut self, ports: &mut Ports<'_>, err: CmdqConsErr) {
        let cons = self.regs.read::<CmdqCons>().with_err(err);
        self.regs.write(cons);
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
        let prod = self.regs.read::<CmdqProd>().wr();
        loop {
            let cons_reg = self.regs.read::<CmdqCons>();
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
            self.regs.write(next);
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
        use smmuv3::cmd::Command::*;
        let vmid = self.cfg.vmid;
        match cmd {
            CfgiSte(c) => {
                let sid = c.stream_id();
                // Leaf=0 also invalidates the L1STD: every vSID it locates (§4.3.1).
                let (lo, hi) = if c.leaf() {
                    (sid, sid)
                } else {
                    let cfg = self.regs.read::<StrtabBaseCfg>();
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
    pub(super) fn pump(&mut self, ports: &mut Ports<'_>) {
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
        self.regs.write(ack);
        let gbpa = self.gbpa().with_update(false);
        self.regs.write(gbpa);
    }

    fn defer(&mut self, ports: &mut Ports<'_>, after_ns: u64) {
        self.stats.deferrals += 1;
        ports.defer.schedule(after_ns);
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
