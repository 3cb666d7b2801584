//! Configuration: STE fetch from the linear or 2-level Stream table (§3.3),
//! CD fetch from the CD table (through stage 2 when nested), the validity
//! checks that make them ILLEGAL (§5.2.2, §5.4.2), and the configuration cache
//! that only CMD_CFGI_* empties.

use alloc::collections::BTreeMap;

use smmuv3::locate::{CdLookup, CdTable, Lookup, StreamTable};
use smmuv3::regs::*;
use smmuv3::structs::*;

use super::evtq::{self, Txn};
use super::mem::{read_u64, read_words, PhysMem};
use super::regs::{ps_bits, Regs};
use super::translate::Fault;
use super::walk::{s2_permits, walk, Direct, FaultType, WalkError, WalkParams};
use super::{Access, FaultClass, FaultKind, SmmuModel};

/// Most STEs or CDs kept; the cache is emptied when full.
const CAPACITY: usize = 4096;

#[derive(Clone, Debug, Default)]
pub struct ConfigCache {
    stes: BTreeMap<u32, Ste>,
    cds: BTreeMap<(u32, u32), Cd>,
}

impl ConfigCache {
    /// CMD_CFGI_STE: the STE and the CDs fetched through it.
    pub fn invalidate_ste(&mut self, sid: u32) {
        self.stes.remove(&sid);
        self.invalidate_cd_all(sid);
    }

    /// CMD_CFGI_STE_RANGE (CMD_CFGI_ALL when the range covers everything).
    pub fn invalidate_ste_range(&mut self, start: u64, n: u64) {
        let hit = |sid: u32| u64::from(sid).wrapping_sub(start) < n;
        self.stes.retain(|sid, _| !hit(*sid));
        self.cds.retain(|(sid, _), _| !hit(*sid));
    }

    /// CMD_CFGI_CD.
    pub fn invalidate_cd(&mut self, sid: u32, ssid: u32) {
        self.cds.remove(&(sid, ssid));
    }

    /// CMD_CFGI_CD_ALL.
    pub fn invalidate_cd_all(&mut self, sid: u32) {
        self.cds.retain(|(s, _), _| *s != sid);
    }

    fn insert_ste(&mut self, sid: u32, ste: Ste) {
        if self.stes.len() >= CAPACITY {
            self.stes.clear();
        }
        self.stes.insert(sid, ste);
    }

    fn insert_cd(&mut self, key: (u32, u32), cd: Cd) {
        if self.cds.len() >= CAPACITY {
            self.cds.clear();
        }
        self.cds.insert(key, cd);
    }
}

fn beyond(addr: u64, bits: u32) -> bool {
    bits < 64 && addr >> bits != 0
}

fn fault(kind: FaultKind, record: [u64; 4]) -> Fault {
    Fault {
        kind,
        record: Some(record),
    }
}

/// Largest valid TxSZ (S2T0SZ, T0SZ): 39, or 48/47 with small tables.
fn txsz_max(regs: &Regs, granule_bits: u32) -> u32 {
    match (regs.idr3().stt(), granule_bits) {
        (false, _) => 39,
        (true, 16) => 47,
        (true, _) => 48,
    }
}

/// The stage 2 walk an STE configures, or `None` if its fields are
/// inconsistent (ILLEGAL).
pub fn s2_params(regs: &Regs, ste: &Ste) -> Option<WalkParams> {
    let idr5 = regs.idr5();
    let g = match ste.s2tg() {
        SteS2tg::GRANULE_4KB if idr5.gran4k() => 12,
        SteS2tg::GRANULE_16KB if idr5.gran16k() => 14,
        SteS2tg::GRANULE_64KB if idr5.gran64k() => 16,
        _ => return None,
    };
    let oas = regs.oas_bits();
    let t0sz = u32::from(ste.s2t0sz());
    // IAS is OAS with AArch64-only tables, at least 40 with AArch32 LPAE.
    let ias = if regs.idr0().ttf() == Idr0Ttf::AARCH64 {
        oas
    } else {
        oas.max(40)
    };
    if t0sz < 64u32.saturating_sub(ias).max(16) || t0sz > txsz_max(regs, g) {
        return None;
    }
    let start_level = match (g, ste.s2sl0()) {
        (12, 0) => 2,
        (12, 1) => 1,
        (12, 2) => 0,
        (14 | 16, 0) => 3,
        (14 | 16, 1) => 2,
        (14 | 16, 2) => 1,
        _ => return None,
    };
    let ps = ps_bits(ste.s2ps().0).min(oas);
    let p = WalkParams {
        granule_bits: g,
        ia_bits: 64 - t0sz,
        start_level,
        ttb: ste.s2ttb(),
        oa_bits: ps,
        stage2: true,
        ha: ste.s2ha(),
        affd: ste.s2affd(),
        had: false,
    };
    (p.consistent() && !beyond(p.ttb, ps)).then_some(p)
}

/// One TTBx half of a CD: walk, TBI and whether walks are disabled (EPDx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Half {
    pub params: Option<WalkParams>,
    pub tbi: bool,
    pub epd: bool,
}

/// The stage 1 walk for the TTB0 (`upper` false) or TTB1 half of a CD;
/// `params` is `None` when the half's fields are invalid.
pub fn s1_half(regs: &Regs, cd: &Cd, upper: bool) -> S1Half {
    let idr5 = regs.idr5();
    let (g, txsz, ttb, tbi, epd, had) = if upper {
        let g = match cd.tg1() {
            CdTg1::GRANULE_4KB if idr5.gran4k() => Some(12),
            CdTg1::GRANULE_16KB if idr5.gran16k() => Some(14),
            CdTg1::GRANULE_64KB if idr5.gran64k() => Some(16),
            _ => None,
        };
        (g, cd.t1sz(), cd.ttb1(), cd.tbi1(), cd.epd1(), cd.had1())
    } else {
        let g = match cd.tg0() {
            CdTg0::GRANULE_4KB if idr5.gran4k() => Some(12),
            CdTg0::GRANULE_16KB if idr5.gran16k() => Some(14),
            CdTg0::GRANULE_64KB if idr5.gran64k() => Some(16),
            _ => None,
        };
        (g, cd.t0sz(), cd.ttb0(), cd.tbi0(), cd.epd0(), cd.had0())
    };
    let oa_bits = ps_bits(cd.ips().0).min(regs.oas_bits());
    let params = g.and_then(|g| {
        let txsz = u32::from(txsz);
        if !(16..=txsz_max(regs, g)).contains(&txsz) || beyond(ttb, oa_bits) {
            return None;
        }
        let ia_bits = 64 - txsz;
        Some(WalkParams {
            granule_bits: g,
            ia_bits,
            start_level: WalkParams::start_level_for(g, ia_bits),
            ttb,
            oa_bits,
            stage2: false,
            ha: cd.ha(),
            affd: cd.affd(),
            had: had && regs.idr3().had(),
        })
    });
    S1Half { params, tbi, epd }
}

fn ste_illegal(regs: &Regs, ste: &Ste) -> bool {
    if ste.illegal(&regs.bank).is_some() {
        return true;
    }
    let config = ste.config();
    let s1 = config == SteConfig::S1_TRANS || config == SteConfig::NESTED;
    let s2 = config == SteConfig::S2_TRANS || config == SteConfig::NESTED;
    let ssidsize = regs.idr1().ssidsize();
    if s1 && ssidsize != 0 && ste.s1cd_max() > ssidsize {
        return true;
    }
    if s2 {
        if !regs.idr0().vmid16() && ste.s2vmid() > u16::from(u8::MAX) {
            return true;
        }
        if s2_params(regs, ste).is_none() {
            return true;
        }
    }
    s1 && beyond(ste.s1_context_ptr(), regs.oas_bits())
}

fn cd_illegal(regs: &Regs, cd: &Cd) -> bool {
    if cd.illegal(&regs.bank).is_some() {
        return true;
    }
    if !regs.idr0().asid16() && cd.asid() > u16::from(u8::MAX) {
        return true;
    }
    [false, true].iter().any(|&upper| {
        let h = s1_half(regs, cd, upper);
        !h.epd && h.params.is_none()
    })
}

impl SmmuModel {
    /// The STE of the transaction's StreamID, from the cache or memory.
    pub(super) fn fetch_ste(&mut self, mem: &mut dyn PhysMem, t: &Txn) -> Result<Ste, Fault> {
        if let Some(ste) = self.cfg.stes.get(&t.sid) {
            return Ok(*ste);
        }
        let regs = &self.regs;
        let table = StreamTable::new(
            regs.read::<StrtabBase>(),
            regs.read::<StrtabBaseCfg>(),
            regs.idr0(),
            regs.idr1(),
        );
        let bad_sid = || fault(FaultKind::BadStreamId, evtq::bad_streamid(t));
        let addr = match table.lookup(t.sid) {
            None => return Err(bad_sid()),
            Some(Lookup::Ste(addr)) => addr,
            Some(Lookup::L1std(l1_addr)) => {
                let Ok(d) = read_u64(mem, l1_addr) else {
                    return Err(fault(FaultKind::SteFetch, evtq::ste_fetch(t, l1_addr)));
                };
                table.ste_in_l2(L1std([d]), t.sid).ok_or_else(bad_sid)?
            }
        };
        let Ok(words) = read_words::<8>(mem, addr) else {
            return Err(fault(FaultKind::SteFetch, evtq::ste_fetch(t, addr)));
        };
        let ste = Ste(words);
        if ste_illegal(&self.regs, &ste) {
            return Err(fault(FaultKind::BadSte, evtq::bad_ste(t)));
        }
        self.cfg.insert_ste(t.sid, ste);
        Ok(ste)
    }

    /// The CD for the transaction, or `None` when STE.S1DSS bypasses stage 1
    /// for a transaction without a SubstreamID. `s2` translates CD addresses
    /// (IPAs) when nested.
    pub(super) fn fetch_cd(
        &mut self,
        mem: &mut dyn PhysMem,
        t: &Txn,
        ste: &Ste,
        s2: Option<&WalkParams>,
    ) -> Result<Option<Cd>, Fault> {
        let table = CdTable::new(ste, self.regs.idr0(), self.regs.idr1().ssidsize());
        let bad_ssid = || fault(FaultKind::BadSubstreamId, evtq::bad_substreamid(t));
        let disabled = || fault(FaultKind::StreamDisabled, evtq::stream_disabled(t));
        let substreams = table.cdmax() != 0;
        let index = match t.ssid {
            Some(ssid) => {
                if !substreams || !table.in_range(ssid) {
                    return Err(bad_ssid());
                }
                if ssid == 0 && ste.s1dss() == SteS1dss::SUBSTREAM0 {
                    return Err(disabled());
                }
                ssid
            }
            None if !substreams => 0,
            None => match ste.s1dss() {
                SteS1dss::BYPASS => return Ok(None),
                SteS1dss::SUBSTREAM0 => 0,
                _ => return Err(disabled()),
            },
        };
        if let Some(cd) = self.cfg.cds.get(&(t.sid, index)) {
            return Ok(Some(*cd));
        }
        let addr = match table.lookup(index) {
            Some(CdLookup::Cd(addr)) => addr,
            Some(CdLookup::L1cd(l1_addr)) => {
                let pa = self.cfg_pa(mem, t, s2, l1_addr, ste.s2r())?;
                let Ok(d) = read_u64(mem, pa) else {
                    return Err(fault(FaultKind::CdFetch, evtq::cd_fetch(t, pa)));
                };
                table.cd_in_l2(L1cd([d]), index).ok_or_else(bad_ssid)?
            }
            None => return Err(bad_ssid()),
        };
        let pa = self.cfg_pa(mem, t, s2, addr, ste.s2r())?;
        let Ok(words) = read_words::<8>(mem, pa) else {
            return Err(fault(FaultKind::CdFetch, evtq::cd_fetch(t, pa)));
        };
        let cd = Cd(words);
        if cd_illegal(&self.regs, &cd) {
            return Err(fault(FaultKind::BadCd, evtq::bad_cd(t)));
        }
        self.cfg.insert_cd((t.sid, index), cd);
        Ok(Some(cd))
    }

    /// The PA of a configuration structure at `addr`: itself, or translated by
    /// stage 2 (faults reported with S2=1, CLASS=CD, IPA=`addr`; recorded
    /// when STE.S2R is set).
    fn cfg_pa(
        &mut self,
        mem: &mut dyn PhysMem,
        t: &Txn,
        s2: Option<&WalkParams>,
        addr: u64,
        record: bool,
    ) -> Result<u64, Fault> {
        let Some(p) = s2 else {
            return Ok(addr);
        };
        let xnx = self.regs.idr3().xnx();
        let read = Access {
            write: false,
            exec: false,
            privileged: true,
        };
        let res = walk(p, addr, &mut Direct(mem)).and_then(|leaf| {
            if s2_permits(leaf.desc, read, xnx) {
                Ok(leaf.out)
            } else {
                Err(WalkError::fault(FaultType::Permission))
            }
        });
        res.map_err(|e| {
            let (kind, pa) = match e {
                WalkError::Fault { kind, pa } | WalkError::S2 { kind, pa, .. } => (kind, pa),
            };
            let class = FaultClass::Cd;
            Fault {
                kind: FaultKind::Translation {
                    kind,
                    s2: true,
                    class,
                },
                record: (record || kind == FaultType::WalkEabt)
                    .then(|| evtq::translation(kind, t, true, class, addr, pa)),
            }
        })
    }
}
