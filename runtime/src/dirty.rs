//! Streams whose guest STE must be read and installed again, kept as ranges
//! of vSIDs with a cursor rather than one entry per vSID: a CFGI_ALL or an
//! SMMUEN toggle over a root complex of 65,536 vSIDs is one range, and each
//! call takes the next few streams from its front.
//!
//! Every range starts and ends at a mapped vSID (a range is trimmed to the
//! domain's streams when it is marked), so the ranges never outnumber the
//! domain's streams and finding the next stream is one map lookup.

use alloc::collections::BTreeMap;

use crate::vsid::StreamMap;

#[derive(Clone, Debug, Default)]
pub struct DirtyStreams {
    /// First vSID -> last vSID (inclusive); disjoint and not adjacent.
    ranges: BTreeMap<u32, u32>,
}

impl DirtyStreams {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Marks the domain's streams in `lo..=hi`.
    pub fn mark(&mut self, streams: &StreamMap, lo: u32, hi: u32) {
        let mut inside = streams.in_range(lo, hi);
        let Some((first, _)) = inside.next() else {
            return;
        };
        let last = inside.next_back().map_or(first, |(v, _)| v);
        self.insert(first, last);
    }

    /// Marks every stream of the domain.
    pub fn mark_all(&mut self, streams: &StreamMap) {
        self.mark(streams, 0, u32::MAX);
    }

    /// Adds `lo..=hi`, merging with the ranges it overlaps or touches.
    fn insert(&mut self, mut lo: u32, mut hi: u32) {
        // A range starting at or before `lo` that reaches it.
        if let Some((&s, &e)) = self.ranges.range(..=lo).next_back() {
            if e.saturating_add(1) >= lo {
                lo = s;
                hi = hi.max(e);
                self.ranges.remove(&s);
            }
        }
        // Ranges starting inside (or just after) the new one.
        while let Some((&s, &e)) = self.ranges.range(lo..).next() {
            if s > hi.saturating_add(1) {
                break;
            }
            hi = hi.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(lo, hi);
    }

    /// The lowest marked vSID.
    pub fn first(&self) -> Option<u32> {
        self.ranges.keys().next().copied()
    }

    /// Unmarks the lowest marked vSID (after it was installed), moving its
    /// range's start to the next mapped vSID.
    pub fn pop_first(&mut self, streams: &StreamMap) {
        let Some((lo, hi)) = self.ranges.pop_first() else {
            return;
        };
        if lo < hi {
            if let Some((next, _)) = streams.in_range(lo + 1, hi).next() {
                self.ranges.insert(next, hi);
            }
        }
    }

    /// How many ranges are held (bounded by the domain's streams).
    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SmmuId;
    use crate::vsid::{DomainId, PsidOwners};

    fn map() -> StreamMap {
        let mut m = StreamMap::new();
        let mut o = PsidOwners::new();
        m.add_range(&mut o, DomainId(1), 0x100, SmmuId(0), 0, 16)
            .unwrap();
        m.add_range(&mut o, DomainId(1), 0x200, SmmuId(0), 0x100, 4)
            .unwrap();
        m
    }

    fn drain(d: &mut DirtyStreams, m: &StreamMap) -> alloc::vec::Vec<u32> {
        let mut out = alloc::vec::Vec::new();
        while let Some(v) = d.first() {
            out.push(v);
            d.pop_first(m);
        }
        out
    }

    #[test]
    fn ranges_are_trimmed_to_mapped_streams_and_merge() {
        let m = map();
        let mut d = DirtyStreams::default();
        d.mark(&m, 0, 0xff);
        assert!(d.is_empty(), "no stream there");
        d.mark(&m, 0x10e, 0x1ff);
        d.mark(&m, 0x100, 0x101);
        d.mark(&m, 0x200, 0x200);
        assert_eq!(d.ranges(), 3);
        d.mark_all(&m);
        assert_eq!(d.ranges(), 1);
        assert_eq!(drain(&mut d, &m).len(), 20);
    }

    #[test]
    fn the_cursor_skips_unmapped_vsids() {
        let m = map();
        let mut d = DirtyStreams::default();
        d.mark(&m, 0x10f, 0x201);
        assert_eq!(drain(&mut d, &m), [0x10f, 0x200, 0x201]);
    }
}
