//! Forwarding invalidations: batching per physical SMMU, the physical
//! ILLEGAL check, syncing, and failing closed when the hardware does not
//! confirm (a guest CMD_SYNC completes only after every SMMU confirmed).

use smmuv3::cmd::{CmdTlbiNhAll, Command};
use smmuv3::regs::CmdqConsErr;

use crate::batch::Pushed;
use crate::ports::{Ports, SmmuId};

use super::{Allowance, Stop, Vsmmu, RETRY_NS};

impl Vsmmu {
    pub(super) fn queue(&mut self, smmu: SmmuId, cmd: Command) -> Pushed {
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
    pub(super) fn forward(
        &mut self,
        ports: &mut Ports<'_>,
        smmu: SmmuId,
        cmd: Command,
    ) -> Result<(), Stop> {
        if !self.legal_on(smmu, &cmd) {
            return Err(self.refuse(ports));
        }
        self.queue_room(ports, smmu, cmd)
    }

    /// Forwards a guest command, rewritten, to every SMMU the domain uses
    /// (checked on all of them before any is sent).
    pub(super) fn forward_all(&mut self, ports: &mut Ports<'_>, cmd: Command) -> Result<(), Stop> {
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
    pub(super) fn flush_invalidations(&mut self, ports: &mut Ports<'_>) -> Result<(), Stop> {
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
    pub(super) fn sync_all(
        &mut self,
        ports: &mut Ports<'_>,
        allow: &mut Allowance,
    ) -> Result<(), Stop> {
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
}
