//! Gathering guest invalidations before they reach the hardware
//! (Observation 4): identical ones collapse, ones another already covers are
//! dropped, many page invalidations of one ASID become one ASID-wide
//! invalidation, and repeated CFGI_STE of one StreamID are applied once.
//!
//! A batch never grows past `MAX_PER_SMMU` commands per SMMU: the command
//! queue flushes it first, so a guest that never syncs cannot make the host
//! hold unbounded state.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use smmuv3::cmd::{CmdTlbiNhAsid, Command};

use crate::ports::SmmuId;

/// The physical command queue batch size (one CMD_SYNC per batch).
pub const MAX_PER_SMMU: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Pending physical invalidations per SMMU, in guest order.
    pub cmds: BTreeMap<SmmuId, Vec<Command>>,
    /// Page invalidations per (SMMU, ASID) in the pending commands.
    pages: BTreeMap<(SmmuId, u16), u32>,
    /// vSIDs whose guest STE must be read and installed.
    pub dirty: BTreeSet<u32>,
    /// SMMUs that were sent invalidations since their last sync.
    pub unsynced: BTreeSet<SmmuId>,
}

/// What pushing a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Merged into (or made redundant by) a pending command.
    Merged,
}

fn covers(pending: &Command, new: &Command) -> bool {
    use Command::*;
    match (pending, new) {
        (a, b) if a == b => true,
        (TlbiNhAll(_), TlbiNhAsid(_) | TlbiNhVa(_) | TlbiNhVaa(_)) => true,
        (TlbiNhAsid(a), TlbiNhVa(v)) => a.asid() == v.asid(),
        (CfgiCdAll(a), CfgiCd(c)) => a.stream_id() == c.stream_id(),
        _ => false,
    }
}

impl Batch {
    pub fn len(&self, smmu: SmmuId) -> usize {
        self.cmds.get(&smmu).map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.cmds.values().all(Vec::is_empty)
    }

    /// Whether any SMMU's pending commands reached the batch size.
    pub fn full(&self) -> bool {
        self.cmds.values().any(|v| v.len() >= MAX_PER_SMMU)
    }

    /// Adds a physical invalidation for `smmu`, merging where it can.
    pub fn push(&mut self, smmu: SmmuId, cmd: Command, asid_threshold: u32) -> Pushed {
        let list = self.cmds.entry(smmu).or_default();
        if list.iter().any(|p| covers(p, &cmd)) {
            return Pushed::Merged;
        }
        let before = list.len();
        // A wider invalidation makes the narrower pending ones redundant.
        list.retain(|p| !covers(&cmd, p));
        if before != list.len() {
            self.recount(smmu);
        }
        if let Command::TlbiNhVa(v) = cmd {
            let n = self.pages.entry((smmu, v.asid())).or_insert(0);
            *n += 1;
            if *n > asid_threshold {
                let wide = Command::TlbiNhAsid(
                    CmdTlbiNhAsid::new().with_vmid(v.vmid()).with_asid(v.asid()),
                );
                return self.push(smmu, wide, asid_threshold);
            }
        }
        if let Some(list) = self.cmds.get_mut(&smmu) {
            list.push(cmd);
        }
        Pushed::Queued
    }

    fn recount(&mut self, smmu: SmmuId) {
        self.pages.retain(|(s, _), _| *s != smmu);
        for c in self.cmds.get(&smmu).into_iter().flatten() {
            if let Command::TlbiNhVa(v) = c {
                *self.pages.entry((smmu, v.asid())).or_insert(0) += 1;
            }
        }
    }

    /// Takes an SMMU's pending commands (to send them).
    pub fn take(&mut self, smmu: SmmuId) -> Vec<Command> {
        self.pages.retain(|(s, _), _| *s != smmu);
        self.cmds.remove(&smmu).unwrap_or_default()
    }

    /// Puts commands back at the front (the hardware budget ran out).
    pub fn put_back(&mut self, smmu: SmmuId, mut cmds: Vec<Command>) {
        let rest = self.cmds.remove(&smmu).unwrap_or_default();
        cmds.extend(rest);
        self.cmds.insert(smmu, cmds);
        self.recount(smmu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smmuv3::cmd::{CmdTlbiNhAll, CmdTlbiNhVa};

    fn va(asid: u16, addr: u64) -> Command {
        Command::TlbiNhVa(
            CmdTlbiNhVa::new()
                .with_vmid(3)
                .with_asid(asid)
                .with_addr(addr)
                .with_leaf(true),
        )
    }

    #[test]
    fn many_pages_of_one_asid_become_one_asid_invalidation() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        for i in 0..4 {
            b.push(s, va(7, i << 12), 3);
        }
        b.push(s, va(8, 0), 3);
        let cmds = b.take(s);
        assert_eq!(cmds.len(), 2, "{cmds:?}");
        assert!(matches!(cmds[0], Command::TlbiNhAsid(a) if a.asid() == 7 && a.vmid() == 3));
        assert!(matches!(cmds[1], Command::TlbiNhVa(v) if v.asid() == 8));
    }

    #[test]
    fn duplicates_and_covered_invalidations_collapse() {
        let mut b = Batch::default();
        let s = SmmuId(1);
        assert_eq!(b.push(s, va(1, 0x1000), 32), Pushed::Queued);
        assert_eq!(b.push(s, va(1, 0x1000), 32), Pushed::Merged);
        let all = Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(3));
        b.push(s, all, 32);
        assert_eq!(b.push(s, va(2, 0x2000), 32), Pushed::Merged);
        assert_eq!(b.take(s), [all]);
    }
}
