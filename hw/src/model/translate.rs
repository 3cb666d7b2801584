//! One device access, end to end (§3.2, §3.4): global bypass, STE, CD,
//! TLB, stage 1 and stage 2 walks with permission checks, and the fault record.

use smmuv3::regs::*;
use smmuv3::structs::*;

use super::config::{s1_half, s2_params};
use super::evtq::{self, Txn};
use super::mem::PhysMem;
use super::tlb::{Regime, S1Perm, TlbEntry};
use super::walk::{
    s1_permits, s2_permits, walk, Direct, FaultType, ThroughS2, WalkError, WalkParams,
};
use super::{Access, FaultClass, FaultKind, SmmuModel};

/// A terminated access: what to return and the record to write, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub record: Option<[u64; 4]>,
}

/// A VA with bits [63:56] replaced by copies of bit 55 (TTB0/TTB1 selection
/// and TLB tagging ignore the top byte's value once the walk accepted it).
pub fn canonical_va(va: u64) -> u64 {
    (((va << 8) as i64) >> 8) as u64
}

fn mask_below(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Smallest translation granule: the unit `dma_read`/`dma_write` translate.
const MIN_PAGE: u64 = 4096;

/// The stage 1 context of a translation.
struct S1<'a> {
    cd: &'a Cd,
    asid: u16,
}

impl SmmuModel {
    /// Translates one access by StreamID `sid` (and SubstreamID `ssid`) to
    /// input address `iova`. A fault terminates the access and writes its
    /// record (if any) to the Event queue.
    pub fn dma(
        &mut self,
        mem: &mut dyn PhysMem,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        access: Access,
    ) -> Result<u64, FaultKind> {
        let t = Txn {
            sid,
            ssid,
            iova,
            access,
        };
        self.translate(mem, &t).map_err(|f| {
            if let Some(rec) = f.record {
                self.record_event(mem, rec);
            }
            f.kind
        })
    }

    /// Reads `buf.len()` bytes of device memory at `iova`, page by page.
    pub fn dma_read(
        &mut self,
        mem: &mut dyn PhysMem,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        buf: &mut [u8],
    ) -> Result<(), FaultKind> {
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let va = iova.wrapping_add(done as u64);
            let n = chunk(va, rest.len());
            let pa = self.dma(mem, sid, ssid, va, Access::READ)?;
            let dst = rest.get_mut(..n).ok_or(FaultKind::Bus { pa })?;
            mem.read(pa, dst).map_err(|()| FaultKind::Bus { pa })?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` to device memory at `iova`, page by page.
    pub fn dma_write(
        &mut self,
        mem: &mut dyn PhysMem,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        data: &[u8],
    ) -> Result<(), FaultKind> {
        let mut done = 0usize;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            let va = iova.wrapping_add(done as u64);
            let n = chunk(va, rest.len());
            let pa = self.dma(mem, sid, ssid, va, Access::WRITE)?;
            let src = rest.get(..n).ok_or(FaultKind::Bus { pa })?;
            mem.write(pa, src).map_err(|()| FaultKind::Bus { pa })?;
            done += n;
        }
        Ok(())
    }

    fn translate(&mut self, mem: &mut dyn PhysMem, t: &Txn) -> Result<u64, Fault> {
        if !self.regs.cr0().smmuen() {
            let gbpa = self.regs.read::<Gbpa>();
            return if gbpa.abort() {
                Err(Fault {
                    kind: FaultKind::GlobalAbort,
                    record: None,
                })
            } else {
                Ok(t.iova)
            };
        }
        let ste = self.fetch_ste(mem, t)?;
        let t = &override_attrs(&ste, t);
        let config = ste.config();
        let has_s1 = config == SteConfig::S1_TRANS || config == SteConfig::NESTED;
        let has_s2 = config == SteConfig::S2_TRANS || config == SteConfig::NESTED;
        if config != SteConfig::BYPASS && !has_s1 && !has_s2 {
            return Err(Fault {
                kind: FaultKind::SteAbort,
                record: None,
            });
        }
        let bad_ste = Fault {
            kind: FaultKind::BadSte,
            record: Some(evtq::bad_ste(t)),
        };
        let s2 = if has_s2 {
            Some(s2_params(&self.regs, &ste).ok_or(bad_ste)?)
        } else {
            None
        };
        let cd = if has_s1 {
            self.fetch_cd(mem, t, &ste, s2.as_ref())?
        } else {
            if t.ssid.is_some() {
                return Err(Fault {
                    kind: FaultKind::BadSubstreamId,
                    record: Some(evtq::bad_substreamid(t)),
                });
            }
            None
        };
        let vmid = if self.regs.idr0().s2p() {
            ste.s2vmid()
        } else {
            0
        };
        let regime = match (cd.is_some(), s2.is_some()) {
            (true, true) => Regime::Nested,
            (true, false) => Regime::S1Only,
            (false, true) => Regime::S2Only,
            (false, false) => return self.bypass(t),
        };
        let s1 = cd.as_ref().map(|cd| S1 {
            cd,
            asid: cd.asid(),
        });
        let addr = if s1.is_some() {
            canonical_va(t.iova)
        } else {
            t.iova
        };
        let asid = s1.as_ref().map_or(0, |s| s.asid);
        if let Some(e) = self.tlb.lookup(regime, vmid, asid, addr) {
            return self.hit(t, &ste, s1.as_ref(), &e, addr);
        }
        self.miss(mem, t, &ste, s1.as_ref(), s2.as_ref(), regime, vmid, addr)
    }

    /// Full bypass: the input address must fit the output size.
    fn bypass(&self, t: &Txn) -> Result<u64, Fault> {
        let oas = self.regs.oas_bits();
        if oas < 64 && t.iova >> oas != 0 {
            return Err(self.translation_fault(t, FaultType::AddrSize, false, 0, 0, true));
        }
        Ok(t.iova)
    }

    fn hit(
        &self,
        t: &Txn,
        ste: &Ste,
        s1: Option<&S1>,
        e: &TlbEntry,
        addr: u64,
    ) -> Result<u64, Fault> {
        let off = addr.wrapping_sub(e.base);
        if let (Some(p), Some(s1)) = (e.s1, s1) {
            if !s1_permits(p.desc, p.attrs, t.access, p.wxn) {
                let rec = s1.cd.r();
                return Err(self.translation_fault(t, FaultType::Permission, false, 0, 0, rec));
            }
        }
        if let Some(d) = e.s2 {
            if !s2_permits(d, t.access, self.regs.idr3().xnx()) {
                let ipa = e.ipa.wrapping_add(off);
                return Err(self.translation_fault(
                    t,
                    FaultType::Permission,
                    true,
                    ipa,
                    0,
                    ste.s2r(),
                ));
            }
        }
        Ok(e.out.wrapping_add(off))
    }

    #[allow(clippy::too_many_arguments)]
    fn miss(
        &mut self,
        mem: &mut dyn PhysMem,
        t: &Txn,
        ste: &Ste,
        s1: Option<&S1>,
        s2: Option<&WalkParams>,
        regime: Regime,
        vmid: u16,
        addr: u64,
    ) -> Result<u64, Fault> {
        let xnx = self.regs.idr3().xnx();
        let mut size_log2 = 63;
        let mut s1_perm = None;
        let mut global = true;
        let ipa = match s1 {
            None => addr,
            Some(s1) => {
                let rec = s1.cd.r();
                let fault = |m: &Self, kind| m.translation_fault(t, kind, false, 0, 0, rec);
                // VA[55] selects TTB0 or TTB1; the other top bits must match it
                // (bits [63:56] too unless TBI).
                let upper = addr >> 55 & 1 != 0;
                let half = s1_half(&self.regs, s1.cd, upper);
                let p = match half.params {
                    Some(p) if !half.epd => p,
                    _ => return Err(fault(self, FaultType::Translation)),
                };
                let top = if half.tbi { addr } else { t.iova };
                let expect = if upper { u64::MAX } else { 0 };
                if (top ^ expect) & !mask_below(p.ia_bits) != 0 {
                    return Err(fault(self, FaultType::Translation));
                }
                let ia = addr & mask_below(p.ia_bits);
                let res = match s2 {
                    Some(p2) => walk(
                        &p,
                        ia,
                        &mut ThroughS2 {
                            mem: &mut *mem,
                            s2: p2,
                            xnx,
                        },
                    ),
                    None => walk(&p, ia, &mut Direct(&mut *mem)),
                };
                let leaf = match res {
                    Ok(leaf) => leaf,
                    Err(WalkError::Fault { kind, pa }) => {
                        let rec = rec || kind == FaultType::WalkEabt;
                        let class = if kind == FaultType::WalkEabt {
                            FaultClass::Tt
                        } else {
                            FaultClass::In
                        };
                        return Err(self.fault_at(t, kind, false, class, 0, pa, rec));
                    }
                    Err(WalkError::S2 { kind, ipa, pa }) => {
                        let rec = ste.s2r() || kind == FaultType::WalkEabt;
                        return Err(self.fault_at(t, kind, true, FaultClass::Tt, ipa, pa, rec));
                    }
                };
                let perm = S1Perm {
                    desc: leaf.desc,
                    attrs: leaf.attrs,
                    wxn: s1.cd.wxn(),
                };
                if !s1_permits(perm.desc, perm.attrs, t.access, perm.wxn) {
                    return Err(fault(self, FaultType::Permission));
                }
                global = !TtS1BlockPage([leaf.desc]).n_g();
                s1_perm = Some(perm);
                size_log2 = leaf.size_log2;
                leaf.out
            }
        };
        let mut s2_desc = None;
        let pa = match s2 {
            None => ipa,
            Some(p2) => {
                let rec = ste.s2r();
                let leaf = walk(p2, ipa, &mut Direct(&mut *mem)).map_err(|e| match e {
                    WalkError::Fault { kind, pa } | WalkError::S2 { kind, pa, .. } => {
                        let rec = rec || kind == FaultType::WalkEabt;
                        self.translation_fault(t, kind, true, ipa, pa, rec)
                    }
                })?;
                if !s2_permits(leaf.desc, t.access, xnx) {
                    return Err(self.translation_fault(
                        t,
                        FaultType::Permission,
                        true,
                        ipa,
                        0,
                        rec,
                    ));
                }
                s2_desc = Some(leaf.desc);
                size_log2 = size_log2.min(leaf.size_log2);
                leaf.out
            }
        };
        let keep = !mask_below(size_log2);
        self.tlb.insert(TlbEntry {
            regime,
            vmid,
            asid: (s1.is_some() && !global).then(|| s1.map_or(0, |s| s.asid)),
            base: addr & keep,
            size_log2,
            out: pa & keep,
            ipa: ipa & keep,
            s1: s1_perm,
            s2: s2_desc,
        });
        Ok(pa)
    }

    /// A fault on the input address (CLASS=IN).
    fn translation_fault(
        &self,
        t: &Txn,
        kind: FaultType,
        s2: bool,
        ipa: u64,
        pa: u64,
        record: bool,
    ) -> Fault {
        self.fault_at(t, kind, s2, FaultClass::In, ipa, pa, record)
    }

    #[allow(clippy::too_many_arguments)]
    fn fault_at(
        &self,
        t: &Txn,
        kind: FaultType,
        s2: bool,
        class: FaultClass,
        ipa: u64,
        pa: u64,
        record: bool,
    ) -> Fault {
        Fault {
            kind: FaultKind::Translation { kind, s2, class },
            record: record.then(|| evtq::translation(kind, t, s2, class, ipa, pa)),
        }
    }
}

/// Bytes of an access at `va` that stay within one smallest page.
fn chunk(va: u64, len: usize) -> usize {
    let room = MIN_PAGE - (va & (MIN_PAGE - 1));
    usize::try_from(room).map_or(len, |r| r.min(len))
}

/// STE.PRIVCFG and STE.INSTCFG overrides of the incoming attributes.
fn override_attrs(ste: &Ste, t: &Txn) -> Txn {
    let mut a = t.access;
    match ste.privcfg() {
        StePrivcfg::UNPRIVILEGED => a.privileged = false,
        StePrivcfg::PRIVILEGED => a.privileged = true,
        _ => {}
    }
    match ste.instcfg() {
        SteInstcfg::DATA => a.exec = false,
        SteInstcfg::INSTRUCTION => a.exec = !a.write,
        _ => {}
    }
    Txn { access: a, ..*t }
}
