//! The TLB: final translations tagged by regime, VMID and ASID. Only TLBI
//! commands remove entries (apart from capacity eviction), so a missing
//! invalidation shows up as a stale translation.

use alloc::vec::Vec;

use super::walk::TableAttrs;

/// Most entries kept; the oldest is evicted first.
const CAPACITY: usize = 512;

/// Which stages produced an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    S1Only,
    S2Only,
    Nested,
}

impl Regime {
    fn has_s1(self) -> bool {
        self != Regime::S2Only
    }
}

/// Stage 1 leaf permissions kept with an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Perm {
    pub desc: u64,
    pub attrs: TableAttrs,
    pub wxn: bool,
}

/// One cached translation of an aligned input range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub regime: Regime,
    pub vmid: u16,
    /// `None` for global (nG == 0) stage 1 entries and stage 2-only entries.
    pub asid: Option<u16>,
    /// Input address of the start of the range.
    pub base: u64,
    pub size_log2: u32,
    /// Output PA of `base`.
    pub out: u64,
    /// IPA of `base` (the stage 2 input).
    pub ipa: u64,
    pub s1: Option<S1Perm>,
    /// Stage 2 leaf descriptor, for its permissions.
    pub s2: Option<u64>,
}

impl TlbEntry {
    fn size(&self) -> u64 {
        1u64 << self.size_log2.min(63)
    }

    fn contains(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.base) < self.size()
    }

    fn overlaps(base: u64, size: u64, start: u64, len: u64) -> bool {
        let end = base.saturating_add(size);
        let rend = start.saturating_add(len);
        base < rend && start < end
    }
}

/// An address range of an invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Tlb {
    entries: Vec<TlbEntry>,
}

impl Tlb {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn lookup(&self, regime: Regime, vmid: u16, asid: u16, addr: u64) -> Option<TlbEntry> {
        self.entries
            .iter()
            .find(|e| {
                e.regime == regime
                    && e.vmid == vmid
                    && (e.asid.is_none() || e.asid == Some(asid))
                    && e.contains(addr)
            })
            .copied()
    }

    pub fn insert(&mut self, e: TlbEntry) {
        if self.entries.len() >= CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push(e);
    }

    /// CMD_TLBI_NSNH_ALL.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// CMD_TLBI_NH_ALL: every stage 1 entry of the VMID.
    pub fn nh_all(&mut self, vmid: u16) {
        self.entries
            .retain(|e| !(e.regime.has_s1() && e.vmid == vmid));
    }

    /// CMD_TLBI_NH_ASID: the non-global stage 1 entries of one ASID.
    pub fn nh_asid(&mut self, vmid: u16, asid: u16) {
        self.entries
            .retain(|e| !(e.regime.has_s1() && e.vmid == vmid && e.asid == Some(asid)));
    }

    /// CMD_TLBI_NH_VA (`asid` given: that ASID and global entries) and
    /// CMD_TLBI_NH_VAA (`asid` None: every ASID).
    pub fn nh_va(&mut self, vmid: u16, asid: Option<u16>, span: Span) {
        self.entries.retain(|e| {
            let hit = e.regime.has_s1()
                && e.vmid == vmid
                && (asid.is_none() || e.asid.is_none() || e.asid == asid)
                && TlbEntry::overlaps(e.base, e.size(), span.start, span.len);
            !hit
        });
    }

    /// CMD_TLBI_S12_VMALL: every entry of the VMID, at every stage.
    pub fn s12_vmall(&mut self, vmid: u16) {
        self.entries.retain(|e| e.vmid != vmid);
    }

    /// CMD_TLBI_S2_IPA: stage 2-only entries of the VMID by IPA. Combined
    /// stage 1 and stage 2 entries need not be removed and are not (§4.4.3.1:
    /// software pairs it with CMD_TLBI_NH_ALL or CMD_TLBI_NH_VAA).
    pub fn s2_ipa(&mut self, vmid: u16, span: Span) {
        self.entries.retain(|e| {
            let hit = e.regime == Regime::S2Only
                && e.vmid == vmid
                && TlbEntry::overlaps(e.ipa, e.size(), span.start, span.len);
            !hit
        });
    }
}
