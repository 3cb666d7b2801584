//! VMSAv8-64 translation table walks (Arm ARM D8), for stage 1 (CD.TTBx) and
//! stage 2 (STE.S2TTB): 4KB, 16KB and 64KB granules, Table/Block/Page
//! descriptors, the Access flag and the address size checks. Descriptors are
//! read through [`TableMem`], so a stage 1 walk under nesting translates each
//! table access through stage 2. Every loop is bounded by the four levels.

use smmuv3::structs::{
    TtS1BlockPage, TtS1BlockPageAp, TtS2BlockPage, TtS2BlockPageS2ap, TtS2BlockPageXn, TtS2Table,
    TtTable, TtTableApTable,
};

use super::mem::{read_u64, write_u64, PhysMem};
use super::Access;

/// The kind of a translation-related fault (§7.3.12-§7.3.16, F_WALK_EABT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultType {
    Translation,
    AddrSize,
    Access,
    Permission,
    WalkEabt,
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A fault of the stage being walked. `pa` is the descriptor's PA for
    /// WalkEabt.
    Fault { kind: FaultType, pa: u64 },
    /// A stage 2 fault on a stage 1 table access, at the descriptor's IPA.
    S2 { kind: FaultType, ipa: u64, pa: u64 },
}

impl WalkError {
    pub const fn fault(kind: FaultType) -> Self {
        WalkError::Fault { kind, pa: 0 }
    }
}

/// One translation regime's walk configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkParams {
    /// 12, 14 or 16.
    pub granule_bits: u32,
    /// Input address size in bits (64 - TxSZ).
    pub ia_bits: u32,
    /// First level walked, 0-3.
    pub start_level: u32,
    /// Base of the first-level table.
    pub ttb: u64,
    /// Output (and next-level table) address size in bits.
    pub oa_bits: u32,
    pub stage2: bool,
    /// Hardware update of the Access flag.
    pub ha: bool,
    /// Access flag faults disabled (STE.S2AFFD, CD.AFFD).
    pub affd: bool,
    /// Hierarchical attributes disabled (stage 1 CD.HADx).
    pub had: bool,
}

impl WalkParams {
    fn stride(&self) -> u32 {
        self.granule_bits - 3
    }

    /// Address bits below the entries of `level`.
    pub fn shift(&self, level: u32) -> u32 {
        self.granule_bits + self.stride() * (3 - level.min(3))
    }

    /// Index bits at the start level (more than the stride when stage 2
    /// concatenates tables).
    pub fn start_bits(&self) -> u32 {
        self.ia_bits.saturating_sub(self.shift(self.start_level))
    }

    /// Whether the start level is consistent with the input size: at least one
    /// index bit, and at most 16 concatenated tables (stage 2) or one table.
    pub fn consistent(&self) -> bool {
        let max = self.stride() + if self.stage2 { 4 } else { 0 };
        self.start_level <= 3 && self.start_bits() >= 1 && self.start_bits() <= max
    }

    /// Start level for an input size when it is not configured (stage 1).
    pub fn start_level_for(granule_bits: u32, ia_bits: u32) -> u32 {
        let stride = granule_bits - 3;
        let levels = ia_bits.saturating_sub(granule_bits).div_ceil(stride);
        4u32.saturating_sub(levels.clamp(1, 4))
    }

    /// Whether a Block descriptor is allowed at `level` (no 52-bit support).
    fn block_allowed(&self, level: u32) -> bool {
        match self.granule_bits {
            12 => level == 1 || level == 2,
            _ => level == 2,
        }
    }
}

/// Hierarchical attributes collected from stage 1 Table descriptors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableAttrs {
    /// An APTable removed write access.
    pub no_write: bool,
    /// An APTable removed unprivileged access.
    pub no_unpriv: bool,
    pub pxn_table: bool,
    pub uxn_table: bool,
}

/// The final descriptor of a successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub desc: u64,
    /// Output address of the walked input address.
    pub out: u64,
    /// log2 of the page or block size.
    pub size_log2: u32,
    pub attrs: TableAttrs,
}

/// Where descriptors are read from.
pub trait TableMem {
    /// The descriptor at `addr` in the walk's table address space.
    fn read_desc(&mut self, addr: u64) -> Result<u64, WalkError>;
    /// Writes back a descriptor (hardware Access flag update).
    fn write_desc(&mut self, addr: u64, v: u64) -> Result<(), WalkError>;
}

/// Tables addressed by PA.
pub struct Direct<'a>(pub &'a mut dyn PhysMem);

impl TableMem for Direct<'_> {
    fn read_desc(&mut self, addr: u64) -> Result<u64, WalkError> {
        read_u64(self.0, addr).map_err(|()| WalkError::Fault {
            kind: FaultType::WalkEabt,
            pa: addr,
        })
    }

    fn write_desc(&mut self, addr: u64, v: u64) -> Result<(), WalkError> {
        write_u64(self.0, addr, v).map_err(|()| WalkError::Fault {
            kind: FaultType::WalkEabt,
            pa: addr,
        })
    }
}

/// Stage 1 tables addressed by IPA: every access is translated by stage 2.
pub struct ThroughS2<'a> {
    pub mem: &'a mut dyn PhysMem,
    pub s2: &'a WalkParams,
    pub xnx: bool,
}

impl ThroughS2<'_> {
    fn pa(&mut self, ipa: u64, write: bool) -> Result<u64, WalkError> {
        let acc = Access {
            write,
            exec: false,
            privileged: true,
        };
        let s2 = *self.s2;
        let leaf = walk(&s2, ipa, &mut Direct(&mut *self.mem)).map_err(|e| match e {
            WalkError::Fault { kind, pa } | WalkError::S2 { kind, pa, .. } => {
                WalkError::S2 { kind, ipa, pa }
            }
        })?;
        if !s2_permits(leaf.desc, acc, self.xnx) {
            return Err(WalkError::S2 {
                kind: FaultType::Permission,
                ipa,
                pa: 0,
            });
        }
        Ok(leaf.out)
    }
}

impl TableMem for ThroughS2<'_> {
    fn read_desc(&mut self, addr: u64) -> Result<u64, WalkError> {
        let pa = self.pa(addr, false)?;
        read_u64(self.mem, pa).map_err(|()| WalkError::Fault {
            kind: FaultType::WalkEabt,
            pa,
        })
    }

    fn write_desc(&mut self, addr: u64, v: u64) -> Result<(), WalkError> {
        let pa = self.pa(addr, true)?;
        write_u64(self.mem, pa, v).map_err(|()| WalkError::Fault {
            kind: FaultType::WalkEabt,
            pa,
        })
    }
}

fn mask_below(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn beyond(addr: u64, bits: u32) -> bool {
    bits < 64 && addr >> bits != 0
}

/// Walks the tables of `p` for input address `ia`.
pub fn walk(p: &WalkParams, ia: u64, mem: &mut dyn TableMem) -> Result<Leaf, WalkError> {
    if beyond(ia, p.ia_bits) || !p.consistent() {
        return Err(WalkError::fault(FaultType::Translation));
    }
    let granule = 1u64 << p.granule_bits;
    // The first table is aligned to its size.
    let mut table = p.ttb & !mask_below(3 + p.start_bits());
    let mut attrs = TableAttrs::default();
    let mut level = p.start_level;
    for _ in 0..4 {
        let shift = p.shift(level);
        let bits = if level == p.start_level {
            p.start_bits()
        } else {
            p.stride()
        };
        let idx = (ia >> shift) & mask_below(bits);
        let daddr = table.wrapping_add(idx * 8);
        let d = mem.read_desc(daddr)?;
        let t = TtTable([d]);
        if !t.valid() {
            return Err(WalkError::fault(FaultType::Translation));
        }
        if level < 3 && t.type_() {
            let next = if p.stage2 {
                TtS2Table([d]).nlta()
            } else {
                t.nlta()
            } & !(granule - 1);
            if beyond(next, p.oa_bits) {
                return Err(WalkError::fault(FaultType::AddrSize));
            }
            if !p.stage2 && !p.had {
                let apt = t.ap_table();
                attrs.no_write |=
                    apt == TtTableApTable::NO_WRITE || apt == TtTableApTable::NO_WRITE_NO_UNPRIV;
                attrs.no_unpriv |=
                    apt == TtTableApTable::NO_UNPRIV || apt == TtTableApTable::NO_WRITE_NO_UNPRIV;
                attrs.pxn_table |= t.pxn_table();
                attrs.uxn_table |= t.uxn_table();
            }
            table = next;
            level += 1;
            continue;
        }
        if (level == 3 && !t.type_()) || (level < 3 && !p.block_allowed(level)) {
            return Err(WalkError::fault(FaultType::Translation));
        }
        let (oa, af) = if p.stage2 {
            let l = TtS2BlockPage([d]);
            (l.oa(), l.af())
        } else {
            let l = TtS1BlockPage([d]);
            (l.oa(), l.af())
        };
        let oa = oa & !mask_below(shift);
        if beyond(oa, p.oa_bits) {
            return Err(WalkError::fault(FaultType::AddrSize));
        }
        let mut desc = d;
        if !af {
            if p.ha {
                desc = if p.stage2 {
                    TtS2BlockPage([d]).with_af(true).0[0]
                } else {
                    TtS1BlockPage([d]).with_af(true).0[0]
                };
                mem.write_desc(daddr, desc)?;
            } else if !p.affd {
                return Err(WalkError::fault(FaultType::Access));
            }
        }
        return Ok(Leaf {
            desc,
            out: oa | (ia & mask_below(shift)),
            size_log2: shift,
            attrs,
        });
    }
    Err(WalkError::fault(FaultType::Translation))
}

/// Stage 1 permission check (direct permissions, Arm ARM D8.4): AP[2:1]
/// limited by APTable, PXN/UXN with PXNTable/UXNTable, WXN, and no privileged
/// execution of memory writable at EL0. An instruction fetch also needs read
/// permission.
pub fn s1_permits(desc: u64, attrs: TableAttrs, access: Access, wxn: bool) -> bool {
    let l = TtS1BlockPage([desc]);
    let ap = l.ap();
    let read_only =
        ap == TtS1BlockPageAp::PRIV_RO || ap == TtS1BlockPageAp::ALL_RO || attrs.no_write;
    let el0 = (ap == TtS1BlockPageAp::ALL_RW || ap == TtS1BlockPageAp::ALL_RO) && !attrs.no_unpriv;
    if !access.privileged && !el0 {
        return false;
    }
    if access.write {
        return !read_only;
    }
    if access.exec {
        let writable = !read_only;
        let xn = if access.privileged {
            l.pxn() || attrs.pxn_table || (el0 && writable)
        } else {
            l.uxn() || attrs.uxn_table
        };
        if xn || (wxn && writable) {
            return false;
        }
    }
    true
}

/// Stage 2 permission check: S2AP, and XN (both bits with FEAT_XNX).
pub fn s2_permits(desc: u64, access: Access, xnx: bool) -> bool {
    let l = TtS2BlockPage([desc]);
    let s2ap = l.s2ap();
    let ok = if access.write {
        s2ap == TtS2BlockPageS2ap::WO || s2ap == TtS2BlockPageS2ap::RW
    } else {
        s2ap == TtS2BlockPageS2ap::RO || s2ap == TtS2BlockPageS2ap::RW
    };
    if !ok {
        return false;
    }
    if access.exec && !access.write {
        let xn = l.xn();
        let forbidden = if xnx {
            xn == TtS2BlockPageXn::EXEC_NONE
                || (access.privileged && xn == TtS2BlockPageXn::EXEC_EL0_ONLY)
                || (!access.privileged && xn == TtS2BlockPageXn::EXEC_EL1_ONLY)
        } else {
            // Without FEAT_XNX only XN[1] exists.
            xn == TtS2BlockPageXn::EXEC_NONE || xn == TtS2BlockPageXn::EXEC_EL1_ONLY
        };
        if forbidden {
            return false;
        }
    }
    true
}
