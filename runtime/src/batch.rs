//! Gathering guest invalidations before they reach the hardware
//! (Observation 4): identical ones collapse, ones a pending wider command
//! already covers are dropped, and many page invalidations become one
//! invalidation of everything the domain's VMID holds.
//!
//! What covers what is stated once, in [`coverer`]: a command is redundant
//! when it or the one command that covers it is pending. Coarsening only ever
//! replaces commands by one that covers them: TLBI_NH_ASID removes only the
//! non-global entries of its ASID, so it never stands in for a TLBI_NH_VA
//! (which also removes global entries for its address, §4.4.2).
//!
//! A batch never holds more than `MAX_PER_SMMU` commands per SMMU:
//! [`Batch::push`] refuses a command when the SMMU's list is full and the
//! caller sends the list first. Lookups are one probe of an index that is
//! never more than a quarter full.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use smmuv3::cmd::{CmdCfgiCdAll, CmdTlbiNhAll, Command};

use crate::ports::SmmuId;

/// The physical command queue batch size (one CMD_SYNC per batch).
pub const MAX_PER_SMMU: usize = 64;

/// The one command that makes `c` redundant besides `c` itself, if any.
///
/// - TLBI_NH_ALL of a VMID removes every stage-1 entry of that VMID, global
///   or not: it covers TLBI_NH_ASID, TLBI_NH_VA and TLBI_NH_VAA (§4.4.2).
/// - CFGI_CD_ALL of a StreamID covers CFGI_CD of any SubstreamID of it (§4.3).
///
/// Nothing else covers anything: in particular TLBI_NH_ASID does not cover
/// TLBI_NH_VA, and TLBI_NH_VAA is not assumed to cover TLBI_NH_VA.
pub fn coverer(c: &Command) -> Option<Command> {
    let all = |vmid| Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(vmid));
    match c {
        Command::TlbiNhAsid(a) => Some(all(a.vmid())),
        Command::TlbiNhVa(v) => Some(all(v.vmid())),
        Command::TlbiNhVaa(v) => Some(all(v.vmid())),
        Command::CfgiCd(cd) => Some(Command::CfgiCdAll(
            CmdCfgiCdAll::new().with_stream_id(cd.stream_id()),
        )),
        _ => None,
    }
}

/// Whether pending `wide` makes `narrow` redundant.
pub fn covers(wide: &Command, narrow: &Command) -> bool {
    wide == narrow || coverer(narrow).as_ref() == Some(wide)
}

/// Open-addressing set of the pending commands' positions, keyed by the
/// command's words, with no allocation after creation.
#[derive(Clone, Debug)]
struct Index {
    /// (key + 1, position); 0 marks an empty slot.
    slots: [(u64, u32); INDEX_SLOTS],
}

/// Four slots per command a list can hold: probes stay short.
const INDEX_SLOTS: usize = 4 * MAX_PER_SMMU;

impl Index {
    fn new() -> Box<Self> {
        Box::new(Index {
            slots: [(0, 0); INDEX_SLOTS],
        })
    }

    /// The slot of `key`, or the free slot where it would go. The table is
    /// at most a quarter full, so a free slot is always met.
    fn slot(&self, key: u64) -> usize {
        let h = key.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut i = (h >> 56) as usize % INDEX_SLOTS;
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

/// The index key of a command: its two words folded (collisions are
/// resolved by comparing the commands themselves).
fn fold(c: &Command) -> u64 {
    let [a, b] = c.encode();
    a ^ b.rotate_left(29)
}

fn is_page(c: &Command) -> bool {
    matches!(c, Command::TlbiNhVa(_) | Command::TlbiNhVaa(_))
}

/// One SMMU's pending commands with their index.
#[derive(Clone, Debug)]
pub struct Pending {
    cmds: Vec<Command>,
    index: Box<Index>,
    /// Pending page invalidations (TLBI_NH_VA and TLBI_NH_VAA).
    pages: u32,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            cmds: Vec::with_capacity(MAX_PER_SMMU),
            index: Index::new(),
            pages: 0,
        }
    }
}

impl Pending {
    fn has(&self, c: &Command) -> bool {
        self.index
            .get(fold(c))
            .and_then(|i| self.cmds.get(i as usize))
            .is_some_and(|p| p == c)
    }

    fn is_covered(&self, c: &Command) -> bool {
        self.has(c) || coverer(c).is_some_and(|w| self.has(&w))
    }

    fn index(&mut self, pos: usize) {
        if let Some(c) = self.cmds.get(pos) {
            self.index.set(fold(c), pos as u32);
            self.pages += u32::from(is_page(c));
        }
    }

    fn rebuild(&mut self) {
        self.index.clear();
        self.pages = 0;
        for pos in 0..self.cmds.len() {
            self.index(pos);
        }
    }

    fn add(&mut self, c: Command) {
        // A wider command makes the narrower pending ones redundant (only
        // the two kinds that cover anything need the scan).
        if matches!(c, Command::TlbiNhAll(_) | Command::CfgiCdAll(_)) {
            let before = self.cmds.len();
            self.cmds.retain(|p| !covers(&c, p));
            if self.cmds.len() != before {
                self.rebuild();
            }
        }
        self.cmds.push(c);
        self.index(self.cmds.len() - 1);
    }

    fn clear(&mut self) {
        self.cmds.clear();
        self.index.clear();
        self.pages = 0;
    }
}

/// What pushing a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Merged into (or made redundant by) a pending command.
    Merged,
    /// The SMMU's list is full: send it, then push again.
    Full,
}

#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Pending physical invalidations per SMMU, in guest order.
    cmds: BTreeMap<SmmuId, Pending>,
    /// SMMUs that were sent invalidations since their last sync.
    pub unsynced: BTreeSet<SmmuId>,
    /// A command to send ahead of an SMMU's next list (see [`Batch::cover`]).
    covers: BTreeMap<SmmuId, Command>,
}

impl Batch {
    pub fn len(&self, smmu: SmmuId) -> usize {
        self.cmds.get(&smmu).map_or(0, |p| p.cmds.len())
    }

    /// No invalidation waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.covers.is_empty() && self.cmds.values().all(|p| p.cmds.is_empty())
    }

    /// Nothing to send or sync.
    pub fn is_settled(&self) -> bool {
        self.unsynced.is_empty() && self.is_empty()
    }

    /// Whether `smmu`'s list has reached the batch size.
    pub fn is_full(&self, smmu: SmmuId) -> bool {
        self.len(smmu) >= MAX_PER_SMMU
    }

    /// Adds a physical invalidation for `smmu`, merging where it can. Past
    /// `coarsen_at` pending page invalidations, they all become one
    /// TLBI_NH_ALL of the VMID (which covers them, global entries included).
    pub fn push(&mut self, smmu: SmmuId, cmd: Command, coarsen_at: u32) -> Pushed {
        let p = self.cmds.entry(smmu).or_default();
        if p.is_covered(&cmd) {
            return Pushed::Merged;
        }
        if is_page(&cmd) && p.pages >= coarsen_at {
            if let Some(all) = coverer(&cmd) {
                p.add(all);
                return Pushed::Merged;
            }
        }
        // A command that covers pending ones replaces them, so it fits.
        if p.cmds.len() >= MAX_PER_SMMU && !p.cmds.iter().any(|q| covers(&cmd, q)) {
            return Pushed::Full;
        }
        p.add(cmd);
        Pushed::Queued
    }

    /// Makes the next list sent to `smmu` start with `cmd` (a command that
    /// covers what an earlier, unconfirmed list held), whatever else is
    /// pending.
    pub fn cover(&mut self, smmu: SmmuId, cmd: Command) {
        self.covers.insert(smmu, cmd);
    }

    /// Takes an SMMU's pending commands (to send them), its cover first;
    /// the SMMU's entry stays, emptied, so the next batch reuses its index.
    pub fn take(&mut self, smmu: SmmuId) -> Vec<Command> {
        let mut cmds = match self.cmds.get_mut(&smmu) {
            Some(p) => {
                let cmds = core::mem::replace(&mut p.cmds, Vec::with_capacity(MAX_PER_SMMU));
                p.clear();
                cmds
            }
            None => Vec::new(),
        };
        if let Some(c) = self.covers.remove(&smmu) {
            cmds.insert(0, c);
        }
        cmds
    }

    /// The first SMMU with pending commands.
    pub fn next_pending(&self) -> Option<SmmuId> {
        let listed = self
            .cmds
            .iter()
            .find(|(_, p)| !p.cmds.is_empty())
            .map(|(s, _)| *s);
        listed.or_else(|| self.covers.keys().next().copied())
    }

    /// Puts commands back at the front (they could not be sent yet). The
    /// list was taken whole and nothing was pushed since: it holds at most
    /// the batch size and a cover, which the index has room for.
    pub fn put_back(&mut self, smmu: SmmuId, mut cmds: Vec<Command>) {
        let p = self.cmds.entry(smmu).or_default();
        cmds.append(&mut p.cmds);
        p.cmds = cmds;
        p.rebuild();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smmuv3::cmd::{CmdCfgiCd, CmdTlbiNhAsid, CmdTlbiNhVa};

    fn va(asid: u16, addr: u64) -> Command {
        Command::TlbiNhVa(
            CmdTlbiNhVa::new()
                .with_vmid(3)
                .with_asid(asid)
                .with_addr(addr)
                .with_leaf(true),
        )
    }

    fn all() -> Command {
        Command::TlbiNhAll(CmdTlbiNhAll::new().with_vmid(3))
    }

    #[test]
    fn many_pages_become_one_invalidation_of_the_whole_vmid() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        for i in 0..4 {
            b.push(s, va(7, i << 12), 3);
        }
        b.push(s, va(8, 0), 3);
        assert_eq!(b.take(s), [all()]);
    }

    #[test]
    fn an_asid_invalidation_does_not_cover_a_page_invalidation() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        let asid = Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_vmid(3).with_asid(7));
        assert_eq!(b.push(s, asid, 32), Pushed::Queued);
        assert_eq!(b.push(s, va(7, 0x1000), 32), Pushed::Queued);
        assert_eq!(b.take(s), [asid, va(7, 0x1000)]);
    }

    #[test]
    fn duplicates_and_covered_invalidations_collapse() {
        let mut b = Batch::default();
        let s = SmmuId(1);
        assert_eq!(b.push(s, va(1, 0x1000), 32), Pushed::Queued);
        assert_eq!(b.push(s, va(1, 0x1000), 32), Pushed::Merged);
        b.push(s, all(), 32);
        assert_eq!(b.push(s, va(2, 0x2000), 32), Pushed::Merged);
        assert_eq!(b.take(s), [all()]);
        let cd = |ssid| Command::CfgiCd(CmdCfgiCd::new().with_stream_id(9).with_substream_id(ssid));
        let cd_all = Command::CfgiCdAll(CmdCfgiCdAll::new().with_stream_id(9));
        b.push(s, cd(1), 32);
        b.push(s, cd_all, 32);
        assert_eq!(b.push(s, cd(2), 32), Pushed::Merged);
        assert_eq!(b.take(s), [cd_all]);
    }

    #[test]
    fn a_full_list_refuses_more_until_it_is_sent() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        for i in 0..MAX_PER_SMMU as u16 {
            assert!(!b.is_full(s));
            let c = Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_vmid(3).with_asid(i));
            assert_eq!(b.push(s, c, 1000), Pushed::Queued);
        }
        assert!(b.is_full(s));
        assert_eq!(b.push(s, va(1000, 0), 1000), Pushed::Full);
        assert_eq!(b.take(s).len(), MAX_PER_SMMU);
        assert!(!b.is_full(s));
    }

    #[test]
    fn a_cover_goes_first_and_a_covering_command_fits_a_full_list() {
        let mut b = Batch::default();
        let s = SmmuId(0);
        for i in 0..MAX_PER_SMMU as u16 {
            let c = Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_vmid(3).with_asid(i));
            b.push(s, c, 1000);
        }
        assert_eq!(
            b.push(s, all(), 1000),
            Pushed::Queued,
            "it replaces them all"
        );
        b.cover(s, all());
        assert!(!b.is_empty());
        assert_eq!(b.take(s), [all(), all()]);
        assert!(b.is_empty());
        b.cover(s, all());
        assert_eq!(b.next_pending(), Some(s));
    }
}
