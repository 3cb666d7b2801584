//! The SMMU front end every side of the interface shares: circular-queue
//! pointers (§3.5), the event-queue producer's decision (§7.4) and global
//! errors (§7.5). The vSMMU, the software model, the physical driver and the
//! guest model all call these, so the architecture's rules live once.
//!
//! Everything here is pure arithmetic on register values: reading and
//! writing the queues' memory stays with the caller, whose memory it is.

use crate::regs::{CmdqBase, EventqBase, EventqCons, EventqProd, Gerror, Gerrorn};

/// Bytes of one command-queue entry.
pub const COMMAND_BYTES: u64 = (crate::cmd::CmdSync::WORDS * 8) as u64;
/// Bytes of one event record.
pub const EVENT_BYTES: u64 = (crate::evt::FTranslation::WORDS * 8) as u64;
/// The largest LOG2SIZE any queue may have: IDR1's CMDQS and EVENTQS are at
/// most 19 (§6.3.2).
pub const MAX_LOG2SIZE: u32 = 19;

/// A circular queue's geometry. A queue pointer holds an index of LOG2SIZE
/// bits and, just above it, a wrap bit that toggles each time the index
/// wraps; bits above the wrap bit are ignored. The queue is empty when
/// both pointers are equal and full when the indexes are equal and the wrap
/// bits differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    base: u64,
    log2size: u32,
    entry_bytes: u64,
}

impl Queue {
    /// A queue at `base` of 2^`log2size` entries, LOG2SIZE capped at
    /// `max_log2` (a larger value behaves as the largest the SMMU supports,
    /// §6.3.25) and at [`MAX_LOG2SIZE`].
    pub fn new(base: u64, log2size: u32, max_log2: u32, entry_bytes: u64) -> Self {
        Queue {
            base,
            log2size: log2size.min(max_log2).min(MAX_LOG2SIZE),
            entry_bytes,
        }
    }

    /// The command queue SMMU_CMDQ_BASE describes, on an SMMU whose
    /// IDR1.CMDQS is `max_log2`.
    pub fn command(base: CmdqBase, max_log2: u32) -> Self {
        Queue::new(
            base.addr(),
            u32::from(base.log2size()),
            max_log2,
            COMMAND_BYTES,
        )
    }

    /// The event queue SMMU_EVENTQ_BASE describes, on an SMMU whose
    /// IDR1.EVENTQS is `max_log2`.
    pub fn event(base: EventqBase, max_log2: u32) -> Self {
        Queue::new(
            base.addr(),
            u32::from(base.log2size()),
            max_log2,
            EVENT_BYTES,
        )
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn log2size(&self) -> u32 {
        self.log2size
    }

    /// Number of entries (also a bound for loops over the queue).
    pub fn entries(&self) -> u32 {
        1u32 << self.log2size
    }

    /// Bytes the queue occupies in memory.
    pub fn bytes(&self) -> u64 {
        u64::from(self.entries()) * self.entry_bytes
    }

    /// The index and wrap bits of a pointer.
    pub fn ptr_mask(&self) -> u32 {
        (2u32 << self.log2size) - 1
    }

    /// `p` with everything above the wrap bit dropped.
    pub fn ptr(&self, p: u32) -> u32 {
        p & self.ptr_mask()
    }

    pub fn index(&self, p: u32) -> u32 {
        p & (self.entries() - 1)
    }

    pub fn wrap(&self, p: u32) -> bool {
        p & self.entries() != 0
    }

    /// The pointer after `p`: the index wraps and the wrap bit toggles.
    pub fn next(&self, p: u32) -> u32 {
        self.advance(p, 1)
    }

    /// The pointer `n` entries after `p`.
    pub fn advance(&self, p: u32, n: u32) -> u32 {
        self.ptr(p.wrapping_add(n))
    }

    pub fn is_empty(&self, prod: u32, cons: u32) -> bool {
        self.ptr(prod) == self.ptr(cons)
    }

    pub fn is_full(&self, prod: u32, cons: u32) -> bool {
        self.index(prod) == self.index(cons) && self.wrap(prod) != self.wrap(cons)
    }

    /// Entries between `cons` and `prod`.
    pub fn used(&self, prod: u32, cons: u32) -> u32 {
        prod.wrapping_sub(cons) & self.ptr_mask()
    }

    /// Entries the producer may still add.
    pub fn free(&self, prod: u32, cons: u32) -> u32 {
        self.entries().saturating_sub(self.used(prod, cons))
    }

    /// Entries from `p` to the end of the queue's memory (before the index
    /// wraps to 0).
    pub fn to_end(&self, p: u32) -> u32 {
        self.entries() - self.index(p)
    }

    /// Whether a consumer at `cons` has consumed the entry at `at`, given
    /// that `at` was produced at most one queue length ago.
    pub fn consumed(&self, cons: u32, at: u32) -> bool {
        self.used(cons, self.next(at)) < self.entries()
    }

    /// Address of the entry `p` selects. Cannot overflow for any base: the
    /// index is below 2^19 and the product is added with wrapping.
    pub fn slot(&self, p: u32) -> u64 {
        self.base
            .wrapping_add(u64::from(self.index(p)).wrapping_mul(self.entry_bytes))
    }
}

/// What the event-queue producer does with one record (§7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventSlot {
    /// Write the record at `at`, then set EVENTQ_PROD to `next`.
    Write { at: u64, next: EventqProd },
    /// The queue is full: the record is lost. `flag` is the EVENTQ_PROD
    /// value with OVFLG toggled when no overflow is flagged yet (OVFLG
    /// equal to EVENTQ_CONS.OVACKFLG), None when one is flagged already.
    Overflow { flag: Option<EventqProd> },
}

/// Where the next event record goes, from the queue and its two pointers.
/// The caller checks beforehand that the queue is enabled and not in
/// EVENTQ_ABT_ERR, and raises EVENTQ_ABT_ERR if writing the record aborts.
pub fn event_slot(q: &Queue, prod: EventqProd, cons: EventqCons) -> EventSlot {
    if q.is_full(prod.wr(), cons.rd()) {
        let flag = (prod.ovflg() == cons.ovackflg()).then(|| prod.with_ovflg(!prod.ovflg()));
        return EventSlot::Overflow { flag };
    }
    EventSlot::Write {
        at: q.slot(prod.wr()),
        next: prod.with_wr(q.next(prod.wr())),
    }
}

/// The global error registers (§7.5): an error is active while its GERROR
/// bit differs from the same bit of GERRORN. The SMMU toggles GERROR to
/// raise; software writes GERRORN to acknowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalErrors {
    pub gerror: Gerror,
    pub gerrorn: Gerrorn,
}

impl GlobalErrors {
    pub fn new(gerror: Gerror, gerrorn: Gerrorn) -> Self {
        GlobalErrors { gerror, gerrorn }
    }

    /// The active errors, as GERROR bits.
    pub fn active(&self) -> Gerror {
        Gerror((self.gerror.0 ^ self.gerrorn.0) & Gerror::WRITE_MASK)
    }

    /// Whether any of `errors` is active.
    pub fn any_active(&self, errors: Gerror) -> bool {
        self.active().0 & errors.0 != 0
    }

    /// The GERROR value raising `errors`, or None when all of them are
    /// active already (an active error is not raised again, and signals no
    /// interrupt).
    pub fn raise(&self, errors: Gerror) -> Option<Gerror> {
        let fresh = errors.0 & !self.active().0 & Gerror::WRITE_MASK;
        (fresh != 0).then_some(Gerror(self.gerror.0 ^ fresh))
    }

    /// The GERRORN value acknowledging every active error.
    pub fn acknowledge_all(&self) -> Gerrorn {
        Gerrorn(self.gerror.0 & Gerror::WRITE_MASK)
    }

    /// The GERRORN value acknowledging `errors` only.
    pub fn acknowledge(&self, errors: Gerror) -> Gerrorn {
        let keep = self.gerrorn.0 & !errors.0;
        Gerrorn(keep | (self.gerror.0 & errors.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_wrap_and_toggle_the_wrap_bit() {
        let q = Queue::new(0x1000, 2, 19, 16);
        assert_eq!(q.next(3), 4, "index 3 -> index 0 with wrap set");
        assert!(q.wrap(4) && q.index(4) == 0);
        assert_eq!(q.next(7), 0);
        assert!(q.is_full(4, 0));
        assert!(q.is_empty(5, 5));
        assert_eq!(q.used(6, 3), 3);
        assert_eq!(q.used(1, 7), 2);
        assert_eq!(q.free(1, 7), 2);
        assert_eq!(q.slot(6), 0x1000 + 2 * 16);
        assert_eq!(q.to_end(6), 2);
    }

    #[test]
    fn an_oversized_log2size_behaves_as_the_advertised_maximum() {
        let q = Queue::new(0, 31, 8, 16);
        assert_eq!(q.log2size(), 8);
        // Bits above the wrap bit are ignored, wherever the guest put them.
        assert_eq!(q.next(0xfff_ffff), 0);
        assert!(q.is_empty(0x200, 0));
        assert_eq!(Queue::new(0, 31, 31, 16).log2size(), MAX_LOG2SIZE);
    }

    #[test]
    fn an_entry_is_consumed_once_cons_is_past_it() {
        let q = Queue::new(0, 2, 19, 16);
        // The entry at 3 (index 3, wrap 0); CONS at 4 (index 0, wrap 1).
        assert!(!q.consumed(3, 3));
        assert!(q.consumed(4, 3));
        assert!(q.consumed(6, 3));
        // Across the wrap of the whole pointer.
        assert!(!q.consumed(7, 7));
        assert!(q.consumed(0, 7));
    }

    #[test]
    fn a_full_event_queue_flags_the_overflow_once() {
        let q = Queue::new(0x8000, 1, 19, EVENT_BYTES);
        let cons = EventqCons(0);
        let slot = event_slot(&q, EventqProd(0).with_wr(1), cons);
        assert_eq!(
            slot,
            EventSlot::Write {
                at: 0x8000 + EVENT_BYTES,
                next: EventqProd(0).with_wr(2)
            }
        );
        let full = EventqProd(0).with_wr(2);
        let EventSlot::Overflow {
            flag: Some(flagged),
        } = event_slot(&q, full, cons)
        else {
            panic!("a full queue overflows");
        };
        assert!(flagged.ovflg());
        assert_eq!(
            event_slot(&q, flagged, cons),
            EventSlot::Overflow { flag: None },
            "an unacknowledged overflow is not flagged again"
        );
    }

    #[test]
    fn an_active_error_is_not_raised_again_and_acknowledges_alone() {
        let cmdq = Gerror(0).with_cmdq_err(true);
        let abt = Gerror(0).with_eventq_abt_err(true);
        let none = GlobalErrors::new(Gerror(0), Gerrorn(0));
        let raised = none.raise(cmdq).expect("raised");
        let g = GlobalErrors::new(raised, Gerrorn(0));
        assert!(g.any_active(cmdq));
        assert_eq!(g.raise(cmdq), None);
        let both = GlobalErrors::new(g.raise(abt).expect("raised"), Gerrorn(0));
        let acked = GlobalErrors::new(both.gerror, both.acknowledge(cmdq));
        assert!(!acked.any_active(cmdq) && acked.any_active(abt));
        let all = GlobalErrors::new(both.gerror, both.acknowledge_all());
        assert_eq!(all.active().0, 0);
    }
}
