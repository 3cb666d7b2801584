//! The Command queue (§4), consumed synchronously when software moves
//! CMDQ_PROD (or enables the queue, or acknowledges CMDQ_ERR).

use smmuv3::cmd::*;
use smmuv3::queue::Queue;
use smmuv3::regs::*;

use super::mem::{read_words, PhysMem};
use super::tlb::Span;
use super::translate::canonical_va;
use super::SmmuModel;

/// The address span of a TLBI: one address, or the §4.4.1.1 range
/// (NUM+1) * 2^SCALE granules when TG selects a granule.
fn span(addr: u64, tg: u8, num: u8, scale: u8) -> Span {
    let g = match CmdTlbiNhVaTg(tg) {
        CmdTlbiNhVaTg::GRANULE_4KB => 12,
        CmdTlbiNhVaTg::GRANULE_16KB => 14,
        CmdTlbiNhVaTg::GRANULE_64KB => 16,
        _ => {
            return Span {
                start: addr,
                len: 1,
            }
        }
    };
    let len = (u128::from(num) + 1) << (u32::from(scale.min(39)) + g);
    Span {
        start: addr,
        len: u64::try_from(len).unwrap_or(u64::MAX),
    }
}

impl SmmuModel {
    /// Consumes commands from CONS up to PROD while the queue is enabled and no
    /// command error is pending. At most one pass over the queue.
    pub(super) fn consume_cmdq(&mut self, mem: &mut dyn PhysMem) {
        let base = self.regs.read::<CmdqBase>();
        let q = Queue::command(base, u32::from(self.regs.idr1().cmdqs()));
        for _ in 0..=q.entries() {
            if !self.regs.cr0().cmdqen() || self.regs.cmdq_err_active() {
                return;
            }
            let prod = self.regs.read::<CmdqProd>().wr();
            let cons = self.regs.read::<CmdqCons>();
            if q.is_empty(prod, cons.rd()) {
                return;
            }
            let Ok(words) = read_words::<2>(mem, q.slot(cons.rd())) else {
                self.command_error(mem, cons, CmdqConsErr::CERROR_ABT);
                return;
            };
            let legal = match Command::decode(words) {
                Ok(cmd) if cmd.illegal(&self.regs.bank).is_none() => {
                    self.execute(mem, &cmd);
                    true
                }
                _ => false,
            };
            if !legal {
                self.command_error(mem, cons, CmdqConsErr::CERROR_ILL);
                return;
            }
            let next = cons.with_rd(q.next(cons.rd()));
            self.regs.write(next);
        }
    }

    /// Stops consumption at CONS with `err`, raising GERROR.CMDQ_ERR.
    fn command_error(&mut self, mem: &mut dyn PhysMem, cons: CmdqCons, err: CmdqConsErr) {
        self.regs.write(cons.with_err(err));
        self.raise_gerror(mem, Gerror(0).with_cmdq_err(true));
    }

    fn execute(&mut self, mem: &mut dyn PhysMem, cmd: &Command) {
        match cmd {
            Command::CfgiSte(c) => self.cfg.invalidate_ste(c.stream_id()),
            Command::CfgiSteRange(c) => {
                let n = 2u64 << c.range().min(31);
                let start = u64::from(c.stream_id()) & !(n - 1);
                self.cfg.invalidate_ste_range(start, n);
            }
            Command::CfgiCd(c) => self.cfg.invalidate_cd(c.stream_id(), c.substream_id()),
            Command::CfgiCdAll(c) => self.cfg.invalidate_cd_all(c.stream_id()),
            Command::TlbiNhAll(c) => self.tlb.nh_all(c.vmid()),
            Command::TlbiNhAsid(c) => self.tlb.nh_asid(c.vmid(), c.asid()),
            Command::TlbiNhVa(c) => {
                let s = span(canonical_va(c.addr()), c.tg().0, c.num(), c.scale());
                self.tlb.nh_va(c.vmid(), Some(c.asid()), s);
            }
            Command::TlbiNhVaa(c) => {
                let s = span(canonical_va(c.addr()), c.tg().0, c.num(), c.scale());
                self.tlb.nh_va(c.vmid(), None, s);
            }
            Command::TlbiS12Vmall(c) => self.tlb.s12_vmall(c.vmid()),
            Command::TlbiS2Ipa(c) => {
                let s = span(c.addr(), c.tg().0, c.num(), c.scale());
                self.tlb.s2_ipa(c.vmid(), s);
            }
            Command::TlbiNsnhAll(_) => self.tlb.clear(),
            Command::Sync(c) => self.sync(mem, c),
            // Prefetches are hints; EL2 regimes, ATS, PRI, stalls and DPT are
            // not modelled, so there is nothing cached for the rest to act on.
            _ => {}
        }
    }

    /// CMD_SYNC: every earlier command has completed already. CS=SIG_IRQ
    /// signals completion: an MSI write of MSIData to MSIAddress when the SMMU
    /// has MSIs, otherwise the wired interrupt (counted).
    fn sync(&mut self, mem: &mut dyn PhysMem, c: &CmdSync) {
        if c.cs() != CmdSyncCs::SIG_IRQ {
            return;
        }
        self.irqs.cmdq_sync += 1;
        if self.regs.idr0().msi()
            && mem
                .write(c.msi_address(), &c.msi_data().to_le_bytes())
                .is_err()
        {
            self.raise_gerror(mem, Gerror(0).with_msi_cmdq_abt_err(true));
        }
    }
}
