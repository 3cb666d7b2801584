//! Gathering guest invalidations before they reach the hardware
//! (Observation 4): identical ones collapse, ones another already covers are
//! dropped, many page invalidations of one ASID become one ASID-wide
//! invalidation, and repeated CFGI_STE of one StreamID are applied once.
//!
//! A batch never grows past `MAX_PER_SMMU` commands per SMMU: the command
//! queue flushes it first, so a guest that never syncs cannot make the host
//! hold unbounded state. Lookups are indexed (no scan of the pending list per
//! command): the common case, a page invalidation, costs a few set lookups.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use smmuv3::cmd::{CmdTlbiNhAsid, Command};

use crate::ports::SmmuId;

/// The physical command queue batch size (one CMD_SYNC per batch).
pub const MAX_PER_SMMU: usize = 64;

/// A pending command that makes narrower ones redundant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wide {
    All,
    Asid(u16),
    CdAll(u32),
}

fn wide_of(c: &Command) -> Option<Wide> {
    match c {
        Command::TlbiNhAll(_) => Some(Wide::All),
        Command::TlbiNhAsid(a) => Some(Wide::Asid(a.asid())),
        Command::CfgiCdAll(a) => Some(Wide::CdAll(a.stream_id())),
        _ => None,
    }
}

/// Whether a pending wide command covers `c`.
fn covered_by(w: Wide, c: &Command) -> bool {
    match (w, c) {
        (Wide::All, Command::TlbiNhAsid(_) | Command::TlbiNhVa(_) | Command::TlbiNhVaa(_)) => true,
        (Wide::Asid(a), Command::TlbiNhVa(v)) => a == v.asid(),
        (Wide::CdAll(s), Command::CfgiCd(c)) => s == c.stream_id(),
        _ => false,
    }
}

/// Open-addressing index of at most `MAX_PER_SMMU` keys, with no allocation
/// after creation: the batch does this bookkeeping for every guest command.
#[derive(Clone, Debug)]
struct Index {
    /// (key + 1, value); 0 marks an empty slot.
    slots: [(u64, u32); INDEX_SLOTS],
}

const INDEX_SLOTS: usize = 4 * MAX_PER_SMMU;

impl Default for Index {
    fn default() -> Self {
        Index {
            slots: [(0, 0); INDEX_SLOTS],
        }
    }
}

impl Index {
    fn slot(&self, key: u64) -> usize {
        let h = (key.wrapping_add(1)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut i = (h >> 56) as usize % INDEX_SLOTS;
        // Fewer keys than slots: a free or matching slot is always found.
        for _ in 0..INDEX_SLOTS {
            match self.slots.get(i) {
                Some((k, _)) if *k == 0 || *k == key.wrapping_add(1) => return i,
                _ => i = (i + 1) % INDEX_SLOTS,
            }
        }
        0
    }

    fn get(&self, key: u64) -> Option<u32> {
        match self.slots.get(self.slot(key)) {
            Some((k, v)) if *k != 0 => Some(*v),
            _ => None,
        }
    }

    fn set(&mut self, key: u64, value: u32) {
        let i = self.slot(key);
        if let Some(s) = self.slots.get_mut(i) {
            *s = (key.wrapping_add(1), value);
        }
    }

    fn clear(&mut self) {
        self.slots = [(0, 0); INDEX_SLOTS];
    }
}

/// The duplicate key of a command: its two words folded (collisions are
/// resolved by comparing the commands themselves).
fn fold(c: &Command) -> u64 {
    let [a, b] = c.encode();
    a ^ b.rotate_left(29)
}

/// One SMMU's pending commands with their indexes.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    pub cmds: Vec<Command>,
    /// Folded command -> position in `cmds` (of one command with that fold).
    words: Index,
    /// Pending wide commands (few: each makes many others redundant).
    wide: Vec<Wide>,
    /// Page invalidations per ASID.
    pages: Index,
}

impl Pending {
    fn is_covered(&self, c: &Command) -> bool {
        let dup = self
            .words
            .get(fold(c))
            .and_then(|i| self.cmds.get(i as usize))
            .is_some_and(|p| p == c);
        if dup {
            return true;
        }
        if self.wide.is_empty() {
            return false;
        }
        match c {
            Command::TlbiNhVa(v) => self
                .wide
                .iter()
                .any(|w| matches!(w, Wide::All) || *w == Wide::Asid(v.asid())),
            Command::TlbiNhVaa(_) | Command::TlbiNhAsid(_) => self.wide.contains(&Wide::All),
            Command::CfgiCd(cd) => self.wide.contains(&Wide::CdAll(cd.stream_id())),
            _ => false,
        }
    }

    fn pages(&self, asid: u16) -> u32 {
        self.pages.get(u64::from(asid)).unwrap_or(0)
    }

    fn index(&mut self, pos: usize) {
        if let Some(c) = self.cmds.get(pos).copied() {
            self.words.set(fold(&c), pos as u32);
            if let Command::TlbiNhVa(v) = c {
                let n = self.pages(v.asid());
                self.pages.set(u64::from(v.asid()), n + 1);
            }
            if let Some(w) = wide_of(&c) {
                self.wide.push(w);
            }
        }
    }

    fn rebuild(&mut self) {
        self.words.clear();
        self.pages.clear();
        self.wide.clear();
        for pos in 0..self.cmds.len() {
            self.index(pos);
        }
    }

    fn add(&mut self, c: Command) {
        if let Some(w) = wide_of(&c) {
            // A wider invalidation makes the narrower pending ones redundant.
            let before = self.cmds.len();
            self.cmds.retain(|p| !covered_by(w, p));
            if self.cmds.len() != before {
                self.rebuild();
            }
        }
        self.cmds.push(c);
        self.index(self.cmds.len() - 1);
    }

    fn clear(&mut self) {
        self.cmds.clear();
        self.words.clear();
        self.pages.clear();
        self.wide.clear();
    }
}

#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Pending physical invalidations per SMMU, in guest order.
    pub cmds: BTreeMap<SmmuId, Pending>,
    /// vSIDs whose guest STE must be read and installed.
    pub dirty: BTreeSet<u32>,
    /// SMMUs that were sent invalidations since their last sync.
    pub unsynced: BTreeSet<SmmuId>,
    /// Whether some SMMU's pending list reached the batch size.
    full: bool,
}

/// What pushing a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Merged into (or made redundant by) a pending command.
    Merged,
}

impl Batch {
    pub fn len(&self, smmu: SmmuId) -> usize {
        self.cmds.get(&smmu).map_or(0, |p| p.cmds.len())
    }

    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.cmds.values().all(|p| p.cmds.is_empty())
    }

    /// Nothing to install, send or sync: a guest CMD_SYNC completes at once.
    pub fn is_settled(&self) -> bool {
        self.unsynced.is_empty() && self.is_empty()
    }

    /// Whether any SMMU's pending commands reached the batch size.
    pub fn full(&self) -> bool {
        self.full
    }

    /// Adds a physical invalidation for `smmu`, merging where it can.
    pub fn push(&mut self, smmu: SmmuId, cmd: Command, asid_threshold: u32) -> Pushed {
        let p = self.cmds.entry(smmu).or_default();
        if p.is_covered(&cmd) {
            return Pushed::Merged;
        }
        if let Command::TlbiNhVa(v) = cmd {
            if p.pages(v.asid()) >= asid_threshold {
                let wide = Command::TlbiNhAsid(
                    CmdTlbiNhAsid::new().with_vmid(v.vmid()).with_asid(v.asid()),
                );
                p.add(wide);
                self.full |= p.cmds.len() >= MAX_PER_SMMU;
                return Pushed::Merged;
            }
        }
        p.add(cmd);
        self.full |= p.cmds.len() >= MAX_PER_SMMU;
        Pushed::Queued
    }

    /// Takes an SMMU's pending commands (to send them); the SMMU's entry
    /// stays, emptied, so the next batch reuses its storage.
    pub fn take(&mut self, smmu: SmmuId) -> Vec<Command> {
        let cmds = match self.cmds.get_mut(&smmu) {
            Some(p) => {
                let cmds = core::mem::take(&mut p.cmds);
                p.clear();
                cmds
            }
            None => Vec::new(),
        };
        self.full = self.cmds.values().any(|p| p.cmds.len() >= MAX_PER_SMMU);
        cmds
    }

    /// The first SMMU with pending commands.
    pub fn next_pending(&self) -> Option<SmmuId> {
        self.cmds
            .iter()
            .find(|(_, p)| !p.cmds.is_empty())
            .map(|(s, _)| *s)
    }

    /// Puts commands back at the front (the hardware budget ran out).
    pub fn put_back(&mut self, smmu: SmmuId, mut cmds: Vec<Command>) {
        let rest = self.cmds.remove(&smmu).map(|p| p.cmds).unwrap_or_default();
        cmds.extend(rest);
        let mut p = Pending {
            cmds,
            ..Pending::default()
        };
        p.rebuild();
        self.full |= p.cmds.len() >= MAX_PER_SMMU;
        self.cmds.insert(smmu, p);
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

    #[test]
    fn the_batch_reports_full_at_the_physical_batch_size() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        for i in 0..MAX_PER_SMMU as u64 {
            assert!(!b.full());
            b.push(s, va(i as u16, 0), 1000);
        }
        assert!(b.full());
        b.take(s);
        assert!(!b.full());
    }
}
