//! The Event queue (§7): fault and configuration-error records, overflow
//! (§7.4: EVENTQ_PROD.OVFLG toggles when a record is discarded on a full queue
//! and no overflow is already pending), interrupts and global errors.

use smmuv3::evt::*;
use smmuv3::queue::{event_slot, EventSlot, Queue};
use smmuv3::regs::*;

use super::mem::{write_words, PhysMem};
use super::walk::FaultType;
use super::{Access, FaultClass, SmmuModel};

/// The transaction a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Txn {
    pub sid: u32,
    pub ssid: Option<u32>,
    pub iova: u64,
    pub access: Access,
}

impl Txn {
    fn ssv(&self) -> bool {
        self.ssid.is_some()
    }

    fn ssid(&self) -> u32 {
        self.ssid.unwrap_or(0)
    }

    fn rnw(&self) -> bool {
        !self.access.write
    }

    fn ind(&self) -> bool {
        self.access.exec && !self.access.write
    }
}

/// Which interrupt to signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    Eventq,
    Gerror,
}

macro_rules! header {
    ($ty:ident, $t:expr) => {
        $ty::new()
            .with_stream_id($t.sid)
            .with_ssv($t.ssv())
            .with_substream_id($t.ssid())
    };
}

macro_rules! translation_record {
    ($ty:ident, $class:ident, $t:expr, $s2:expr, $c:expr, $ipa:expr) => {
        header!($ty, $t)
            .with_pn_u($t.access.privileged)
            .with_in_d($t.ind())
            .with_rn_w($t.rnw())
            .with_s2($s2)
            .with_class(match $c {
                FaultClass::Cd => $class::CD,
                FaultClass::Tt => $class::TTD,
                FaultClass::In => $class::IN,
            })
            .with_input_addr($t.iova)
            .with_ipa(if $s2 { $ipa } else { 0 })
            .encode()
    };
}

/// C_BAD_STREAMID.
pub fn bad_streamid(t: &Txn) -> [u64; 4] {
    header!(CBadStreamid, t).encode()
}

/// F_STE_FETCH at `fetch`.
pub fn ste_fetch(t: &Txn, fetch: u64) -> [u64; 4] {
    header!(FSteFetch, t).with_fetch_addr(fetch).encode()
}

/// C_BAD_STE.
pub fn bad_ste(t: &Txn) -> [u64; 4] {
    header!(CBadSte, t).encode()
}

/// C_BAD_SUBSTREAMID (its SubstreamID is always valid).
pub fn bad_substreamid(t: &Txn) -> [u64; 4] {
    CBadSubstreamid::new()
        .with_stream_id(t.sid)
        .with_substream_id(t.ssid())
        .encode()
}

/// F_STREAM_DISABLED.
pub fn stream_disabled(t: &Txn) -> [u64; 4] {
    FStreamDisabled::new().with_stream_id(t.sid).encode()
}

/// F_CD_FETCH at `fetch` (a PA).
pub fn cd_fetch(t: &Txn, fetch: u64) -> [u64; 4] {
    header!(FCdFetch, t).with_fetch_addr(fetch).encode()
}

/// C_BAD_CD.
pub fn bad_cd(t: &Txn) -> [u64; 4] {
    header!(CBadCd, t).encode()
}

/// A translation-related fault record. `ipa` is reported when `s2` (for
/// CLASS CD/TT it is the address of the CD or descriptor); `pa` is the
/// FetchAddr of F_WALK_EABT.
pub fn translation(
    kind: FaultType,
    t: &Txn,
    s2: bool,
    class: FaultClass,
    ipa: u64,
    pa: u64,
) -> [u64; 4] {
    match kind {
        FaultType::Translation => {
            translation_record!(FTranslation, FTranslationClass, t, s2, class, ipa)
        }
        FaultType::AddrSize => translation_record!(FAddrSize, FAddrSizeClass, t, s2, class, ipa),
        FaultType::Access => translation_record!(FAccess, FAccessClass, t, s2, class, ipa),
        FaultType::Permission => {
            let mut w = translation_record!(FPermission, FPermissionClass, t, s2, class, ipa);
            if class == FaultClass::Tt {
                // Descriptor reads are what the walk does.
                w = FPermission(w).with_tt_rn_w(true).encode();
            }
            w
        }
        FaultType::WalkEabt => header!(FWalkEabt, t)
            .with_pn_u(t.access.privileged)
            .with_in_d(t.ind())
            .with_rn_w(t.rnw())
            .with_s2(s2)
            .with_class(match class {
                FaultClass::Cd => FWalkEabtClass::CD,
                FaultClass::Tt => FWalkEabtClass::TTD,
                FaultClass::In => FWalkEabtClass::IN,
            })
            .with_input_addr(t.iova)
            .with_fetch_addr(pa)
            .encode(),
    }
}

impl SmmuModel {
    /// Writes a record to the Event queue, or discards it (queue disabled, in
    /// EVENTQ_ABT_ERR, or full: then the overflow flag toggles).
    pub(super) fn record_event(&mut self, mem: &mut dyn PhysMem, rec: [u64; 4]) {
        let r = &self.regs;
        if !r.cr0().eventqen() || r.eventq_abt_active() {
            return;
        }
        let base = r.read::<EventqBase>();
        let q = Queue::event(base, u32::from(r.idr1().eventqs()));
        let prod = r.read::<EventqProd>();
        let cons = r.read::<EventqCons>();
        match event_slot(&q, prod, cons) {
            EventSlot::Overflow { flag } => {
                if let Some(p) = flag {
                    self.regs.write(p);
                }
            }
            EventSlot::Write { at, next } => {
                if write_words(mem, at, &rec).is_err() {
                    self.raise_gerror(mem, Gerror(0).with_eventq_abt_err(true));
                    return;
                }
                self.regs.write(next);
                self.signal(mem, Irq::Eventq);
            }
        }
    }

    /// Raises global errors (§7.5) unless they are active already, with
    /// the GERROR interrupt.
    pub(super) fn raise_gerror(&mut self, mem: &mut dyn PhysMem, errors: Gerror) {
        let Some(g) = self.regs.global_errors().raise(errors) else {
            return;
        };
        self.regs.write(g);
        self.signal(mem, Irq::Gerror);
    }

    /// Signals an interrupt if enabled in IRQ_CTRL: counted, and written as
    /// an MSI when the SMMU has MSIs and an address is programmed.
    pub(super) fn signal(&mut self, mem: &mut dyn PhysMem, irq: Irq) {
        let ctrl = self.regs.irq_ctrl();
        let (enabled, addr, data) = match irq {
            Irq::Eventq => (
                ctrl.eventq_irqen(),
                self.regs.read::<EventqIrqCfg0>().addr(),
                self.regs.read::<EventqIrqCfg1>().data(),
            ),
            Irq::Gerror => (
                ctrl.gerror_irqen(),
                self.regs.read::<GerrorIrqCfg0>().addr(),
                self.regs.read::<GerrorIrqCfg1>().data(),
            ),
        };
        if !enabled {
            return;
        }
        match irq {
            Irq::Eventq => self.irqs.eventq += 1,
            Irq::Gerror => self.irqs.gerror += 1,
        }
        if self.regs.idr0().msi() && addr != 0 {
            // An abort of the MSI write itself is not modelled.
            let _ = mem.write(addr, &data.to_le_bytes());
        }
    }
}
