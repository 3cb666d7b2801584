//! Guest StreamIDs (vSIDs) and the physical streams behind them.
//!
//! Per domain, a vSID names exactly one physical stream: an SMMU and a
//! StreamID on it (StreamID spaces of different SMMUs overlap, so the SMMU is
//! part of the key both ways). Platform devices get one vSID each; a PCI root
//! complex gets a contiguous range derived from its RID space. A physical
//! stream belongs to at most one domain: [`PsidOwners`] is the hypervisor-wide
//! record of that, consulted when a domain is given a device.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::ports::{PhysStream, SmmuId};

/// A domain identifier, as the hypervisor numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The vSID is already mapped in this domain.
    VsidInUse { vsid: u32 },
    /// The physical stream already belongs to a domain (maybe this one).
    PsidOwned { stream: PhysStream, owner: DomainId },
    /// A range whose length is zero or that wraps past u32::MAX.
    BadRange,
    /// The vSID does not fit the StreamID size the vSMMU presents.
    VsidTooLarge { vsid: u32 },
}

/// Hypervisor-wide ownership of physical streams.
#[derive(Clone, Debug, Default)]
pub struct PsidOwners {
    owners: BTreeMap<PhysStream, DomainId>,
}

impl PsidOwners {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn owner(&self, stream: PhysStream) -> Option<DomainId> {
        self.owners.get(&stream).copied()
    }

    /// Claims every stream for `domain`, or none of them.
    fn claim(&mut self, domain: DomainId, streams: &[PhysStream]) -> Result<(), MapError> {
        for s in streams {
            if let Some(owner) = self.owner(*s) {
                return Err(MapError::PsidOwned { stream: *s, owner });
            }
        }
        for s in streams {
            self.owners.insert(*s, domain);
        }
        Ok(())
    }

    /// Gives a domain's streams back (when the domain is destroyed).
    pub fn release_domain(&mut self, domain: DomainId) {
        self.owners.retain(|_, d| *d != domain);
    }
}

/// A run of vSIDs mapped to consecutive StreamIDs of one SMMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    vsid: u32,
    stream: PhysStream,
    len: u32,
    /// Dense index of the run's first stream (see [`StreamMap::index`]).
    index: usize,
}

impl Run {
    fn last_vsid(&self) -> u32 {
        self.vsid + (self.len - 1)
    }

    fn at(&self, offset: u32) -> (u32, PhysStream) {
        let stream = PhysStream {
            smmu: self.stream.smmu,
            psid: self.stream.psid + offset,
        };
        (self.vsid + offset, stream)
    }
}

/// One domain's vSID map, kept as runs (a root complex of 65,536 RIDs is
/// one entry), so that every lookup costs the same whatever the domain's
/// size.
#[derive(Clone, Debug, Default)]
pub struct StreamMap {
    /// First vSID of a run -> the run.
    forward: BTreeMap<u32, Run>,
    /// First physical stream of a run -> the run's first vSID.
    reverse: BTreeMap<PhysStream, u32>,
    len: usize,
}

impl StreamMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// A platform device: one vSID for one physical stream.
    pub fn add_device(
        &mut self,
        owners: &mut PsidOwners,
        domain: DomainId,
        vsid: u32,
        stream: PhysStream,
    ) -> Result<(), MapError> {
        self.add_range(owners, domain, vsid, stream.smmu, stream.psid, 1)
    }

    /// A PCI root complex: RIDs `rid_base..rid_base+len` on `smmu` (whose
    /// StreamID is `psid_base + (rid - rid_base)`) appear as vSIDs
    /// `vsid_base..vsid_base+len` (the guest's `iommu-map`).
    pub fn add_range(
        &mut self,
        owners: &mut PsidOwners,
        domain: DomainId,
        vsid_base: u32,
        smmu: SmmuId,
        psid_base: u32,
        len: u32,
    ) -> Result<(), MapError> {
        if len == 0
            || vsid_base.checked_add(len - 1).is_none()
            || psid_base.checked_add(len - 1).is_none()
        {
            return Err(MapError::BadRange);
        }
        if let Some((vsid, _)) = self.in_range(vsid_base, vsid_base + (len - 1)).next() {
            return Err(MapError::VsidInUse { vsid });
        }
        let streams: Vec<PhysStream> = (0..len)
            .map(|i| PhysStream {
                smmu,
                psid: psid_base + i,
            })
            .collect();
        owners.claim(domain, &streams)?;
        let stream = PhysStream {
            smmu,
            psid: psid_base,
        };
        let run = Run {
            vsid: vsid_base,
            stream,
            len,
            index: self.len,
        };
        self.forward.insert(vsid_base, run);
        self.reverse.insert(stream, vsid_base);
        self.len += len as usize;
        Ok(())
    }

    /// The run holding `vsid`.
    fn run_of(&self, vsid: u32) -> Option<&Run> {
        let (_, run) = self.forward.range(..=vsid).next_back()?;
        (vsid <= run.last_vsid()).then_some(run)
    }

    /// The physical stream behind a vSID.
    pub fn physical(&self, vsid: u32) -> Option<PhysStream> {
        let run = self.run_of(vsid)?;
        Some(run.at(vsid - run.vsid).1)
    }

    /// A dense index of the vSID among the domain's streams (below
    /// [`Self::len`]), for per-stream state kept in a vector.
    pub fn index(&self, vsid: u32) -> Option<usize> {
        let run = self.run_of(vsid)?;
        Some(run.index + (vsid - run.vsid) as usize)
    }

    /// The vSID of a physical stream of this domain.
    pub fn virtual_of(&self, stream: PhysStream) -> Option<u32> {
        let (first, vsid) = self.reverse.range(..=stream).next_back()?;
        let run = self.forward.get(vsid)?;
        let offset = stream.psid.checked_sub(first.psid)?;
        (first.smmu == stream.smmu && offset < run.len).then(|| run.vsid + offset)
    }

    /// Every (vSID, physical stream), in vSID order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, PhysStream)> + '_ {
        self.in_range(0, u32::MAX)
    }

    /// vSIDs in `lo..=hi`, in order.
    pub fn in_range(
        &self,
        lo: u32,
        hi: u32,
    ) -> impl DoubleEndedIterator<Item = (u32, PhysStream)> + '_ {
        // The run holding `lo`, if it starts below it, and those starting inside.
        let first = self.run_of(lo).map_or(lo, |r| r.vsid);
        let runs = if lo <= hi {
            self.forward.range(first..=hi)
        } else {
            self.forward.range(1..1)
        };
        runs.flat_map(move |(_, run)| {
            let from = lo.max(run.vsid) - run.vsid;
            let to = hi.min(run.last_vsid()) - run.vsid;
            (from..=to).map(move |o| run.at(o))
        })
    }

    /// The SMMUs this domain uses, each once.
    pub fn smmus(&self) -> Vec<SmmuId> {
        let mut s: Vec<SmmuId> = self.forward.values().map(|r| r.stream.smmu).collect();
        s.sort();
        s.dedup();
        s
    }

    /// The highest vSID mapped.
    pub fn max_vsid(&self) -> Option<u32> {
        self.forward.values().next_back().map(Run::last_vsid)
    }

    /// How many streams the domain has.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SmmuId = SmmuId(0);
    const B: SmmuId = SmmuId(1);

    #[test]
    fn overlapping_stream_ids_on_two_smmus_are_distinct_streams() {
        let mut owners = PsidOwners::new();
        let mut m = StreamMap::new();
        m.add_device(&mut owners, DomainId(1), 8, PhysStream { smmu: A, psid: 8 })
            .unwrap();
        m.add_device(&mut owners, DomainId(1), 9, PhysStream { smmu: B, psid: 8 })
            .unwrap();
        assert_eq!(m.virtual_of(PhysStream { smmu: B, psid: 8 }), Some(9));
        assert_eq!(m.smmus(), [A, B]);
    }

    #[test]
    fn a_physical_stream_belongs_to_one_domain() {
        let mut owners = PsidOwners::new();
        let (mut m1, mut m2) = (StreamMap::new(), StreamMap::new());
        let s = PhysStream { smmu: A, psid: 3 };
        m1.add_device(&mut owners, DomainId(1), 0, s).unwrap();
        assert_eq!(
            m2.add_device(&mut owners, DomainId(2), 0, s),
            Err(MapError::PsidOwned {
                stream: s,
                owner: DomainId(1)
            })
        );
        assert_eq!(
            m1.add_device(&mut owners, DomainId(1), 1, s),
            Err(MapError::PsidOwned {
                stream: s,
                owner: DomainId(1)
            })
        );
    }

    #[test]
    fn vsids_are_unique_and_pci_ranges_are_all_or_nothing() {
        let mut owners = PsidOwners::new();
        let mut m = StreamMap::new();
        m.add_range(&mut owners, DomainId(1), 0x100, A, 0x800, 16)
            .unwrap();
        assert_eq!(
            m.physical(0x10f),
            Some(PhysStream {
                smmu: A,
                psid: 0x80f
            })
        );
        assert_eq!(
            m.add_device(
                &mut owners,
                DomainId(1),
                0x105,
                PhysStream { smmu: B, psid: 1 }
            ),
            Err(MapError::VsidInUse { vsid: 0x105 })
        );
        // A range that collides with an owned stream claims nothing.
        let err = m.add_range(&mut owners, DomainId(1), 0x200, A, 0x7f8, 16);
        assert!(matches!(err, Err(MapError::PsidOwned { .. })));
        assert_eq!(
            owners.owner(PhysStream {
                smmu: A,
                psid: 0x7f8
            }),
            None
        );
        assert_eq!(
            m.add_range(&mut owners, DomainId(1), u32::MAX, A, 0, 2),
            Err(MapError::BadRange)
        );
        assert_eq!(
            m.add_range(&mut owners, DomainId(1), 0, A, 0, 0),
            Err(MapError::BadRange)
        );
    }

    #[test]
    fn runs_answer_like_one_entry_per_vsid() {
        let mut owners = PsidOwners::new();
        let mut m = StreamMap::new();
        m.add_range(&mut owners, DomainId(1), 0x100, A, 0x800, 16)
            .unwrap();
        m.add_device(
            &mut owners,
            DomainId(1),
            8,
            PhysStream {
                smmu: B,
                psid: 0x805,
            },
        )
        .unwrap();
        assert_eq!(m.len(), 17);
        assert_eq!(m.max_vsid(), Some(0x10f));
        let got: Vec<u32> = m.in_range(0x10e, 0x200).map(|(v, _)| v).collect();
        assert_eq!(got, [0x10e, 0x10f]);
        let back: Vec<u32> = m.in_range(0, 0x101).rev().map(|(v, _)| v).collect();
        assert_eq!(back, [0x101, 0x100, 8]);
        assert_eq!(m.in_range(9, 0xff).count(), 0);
        assert_eq!(
            m.virtual_of(PhysStream {
                smmu: A,
                psid: 0x805
            }),
            Some(0x105)
        );
        assert_eq!(
            m.virtual_of(PhysStream {
                smmu: B,
                psid: 0x805
            }),
            Some(8)
        );
        assert_eq!(
            m.virtual_of(PhysStream {
                smmu: A,
                psid: 0x810
            }),
            None
        );
        assert_eq!(
            m.virtual_of(PhysStream {
                smmu: B,
                psid: 0x804
            }),
            None
        );
        assert_eq!(m.index(0x100), Some(0));
        assert_eq!(m.index(8), Some(16));
        assert_eq!(m.index(0x110), None);
        assert_eq!(m.iter().count(), 17);
    }
}
