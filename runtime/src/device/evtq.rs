//! The guest's event queue (§7): physical events translated to the
//! guest's view and recorded with the architecture's overflow and abort
//! rules.

use smmuv3::evt::Event;
use smmuv3::queue::{event_slot, EventSlot, Queue};
use smmuv3::regs::{Cr2, EventqBase, EventqCons, EventqProd, Gerror, IrqCtrlack};

use crate::events;
use crate::ports::{Ipa, Irq, PhysEvent, PhysStream, Ports};

use super::{EventOutcome, Vsmmu};

impl Vsmmu {
    /// An event the hardware recorded for one of this domain's streams: into
    /// the guest's event queue as a stage-1-only SMMU would have recorded it.
    pub fn deliver_event(&mut self, ports: &mut Ports<'_>, ev: PhysEvent) -> EventOutcome {
        self.last_call_commands = 0;
        let psid = ev.event.stream_id();
        let Some(vsid) = self.streams.virtual_of(PhysStream {
            smmu: ev.smmu,
            psid,
        }) else {
            return EventOutcome::NotOurs;
        };
        let refusal = self.installed(vsid).and_then(|i| i.refusal);
        let recinvsid = self.regs.read::<Cr2>().recinvsid();
        let out = match events::translate(ev.event, vsid, refusal, recinvsid) {
            events::Translated::Guest(e) => e,
            events::Translated::Stage2Fault => {
                self.stats.stage2_faults += 1;
                return EventOutcome::Hypervisor;
            }
            events::Translated::Host => return EventOutcome::Hypervisor,
        };
        self.record_event(ports, out)
    }

    /// Writes an event record to the guest's queue (§7.2, §7.4): discarded
    /// only when the queue is disabled, in error or full, and when full the
    /// loss is flagged with OVFLG.
    fn record_event(&mut self, ports: &mut Ports<'_>, e: Event) -> EventOutcome {
        if !self.cr0ack().eventqen() || self.gerror_active(Gerror(0).with_eventq_abt_err(true).0) {
            self.stats.events_dropped += 1;
            return EventOutcome::Dropped;
        }
        let base = self.regs.read::<EventqBase>();
        let max = u32::from(self.ident.idr1.eventqs());
        let q = Queue::event(base, max);
        let prod = self.regs.read::<EventqProd>();
        let cons = self.regs.read::<EventqCons>();
        let (at, next) = match event_slot(&q, prod, cons) {
            EventSlot::Write { at, next } => (at, next),
            EventSlot::Overflow { flag } => {
                if let Some(p) = flag {
                    self.regs.write(p);
                }
                self.stats.events_dropped += 1;
                return EventOutcome::Dropped;
            }
        };
        let mut raw = [0u8; 32];
        for (chunk, w) in raw.chunks_exact_mut(8).zip(e.encode()) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        if ports.mem.write(Ipa(at), &raw).is_err() {
            self.stats.events_dropped += 1;
            self.raise_gerror(ports, Gerror(0).with_eventq_abt_err(true).0);
            return EventOutcome::Dropped;
        }
        self.regs.write(next);
        self.stats.events_forwarded += 1;
        if self.regs.read::<IrqCtrlack>().eventq_irqen() {
            self.signal(ports, Irq::Eventq);
        }
        EventOutcome::Forwarded
    }
}
