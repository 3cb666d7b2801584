//! The guest's stream table: find a vSID's STE (linear or 2-level, bounded by
//! STRTAB_BASE_CFG), read it, and turn it into what the physical stream
//! should do, as a stage-1-only SMMU would interpret it.

use smmuv3::locate::{Lookup, StreamTable};
use smmuv3::regs::{Idr0, Idr0StallModel, Idr1, StrtabBase, StrtabBaseCfg};
use smmuv3::structs::{L1std, Ste, SteConfig};

use crate::ports::{GuestMemory, Ipa, S1Context, StreamConfig};

/// Why a stream ends up terminating, so that the event the device's next
/// access causes is the one a real SMMU would have recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// STE.V=0 or a field the vSMMU does not allow: C_BAD_STE.
    BadSte,
    /// The vSID is outside the stream table (or its L1 descriptor is
    /// invalid): C_BAD_STREAMID.
    BadStreamId,
    /// Reading the L1 descriptor or the STE faulted: F_STE_FETCH at this IPA.
    FetchFault(Ipa),
}

/// The outcome of reading a vSID's STE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestStream {
    Config(StreamConfig),
    Refused(Refusal),
}

/// What the vSMMU presents, as far as stream table lookups and STE
/// validation need it.
#[derive(Clone, Copy, Debug)]
pub struct Presented {
    pub idr0: Idr0,
    pub idr1: Idr1,
    /// Bits of output address the presented IDR5.OAS names.
    pub oas_bits: u32,
}

impl Presented {
    fn ssidsize(&self) -> u32 {
        u32::from(self.idr1.ssidsize())
    }
}

/// Where the vSID's STE is, or why there is none.
fn locate(
    mem: &mut dyn GuestMemory,
    base: StrtabBase,
    cfg: StrtabBaseCfg,
    vsid: u32,
    p: &Presented,
) -> Result<Ipa, Refusal> {
    let table = StreamTable::new(base, cfg, p.idr0, p.idr1);
    match table.lookup(vsid) {
        None => Err(Refusal::BadStreamId),
        Some(Lookup::Ste(addr)) => Ok(Ipa(addr)),
        Some(Lookup::L1std(addr)) => {
            let mut raw = [0u8; 8];
            mem.read(Ipa(addr), &mut raw)
                .map_err(|_| Refusal::FetchFault(Ipa(addr)))?;
            let l1 = L1std([u64::from_le_bytes(raw)]);
            table
                .ste_in_l2(l1, vsid)
                .map(Ipa)
                .ok_or(Refusal::BadStreamId)
        }
    }
}

/// The vSIDs a non-leaf CMD_CFGI_STE of `vsid` reaches (all those located
/// through the same level-1 descriptor).
pub fn sharing_l1std(cfg: StrtabBaseCfg, vsid: u32, p: &Presented) -> (u32, u32) {
    StreamTable::new(StrtabBase(0), cfg, p.idr0, p.idr1).sharing_l1std(vsid)
}

/// Reads the vSID's STE from guest memory.
pub fn read_ste(
    mem: &mut dyn GuestMemory,
    base: StrtabBase,
    cfg: StrtabBaseCfg,
    vsid: u32,
    p: &Presented,
) -> Result<Ste, Refusal> {
    let addr = locate(mem, base, cfg, vsid, p)?;
    let mut raw = [0u8; 64];
    mem.read(addr, &mut raw)
        .map_err(|_| Refusal::FetchFault(addr))?;
    Ok(Ste(Ste::from_le_bytes(&raw)))
}

/// STE fields a nested guest may set (Linux's nesting allow-list), word 0
/// and word 1. Words 2-7 hold stage-2 and other fields that a stage-1-only
/// SMMU ignores for the configurations we accept; they are never copied.
fn allowed() -> [u64; 2] {
    let w0 = Ste::new()
        .with_v(true)
        .with_config(SteConfig(0b111))
        .with_s1_fmt(smmuv3::structs::SteS1Fmt(0b11))
        .with_s1_context_ptr(u64::MAX)
        .with_s1cd_max(u8::MAX);
    let w1 = Ste::new()
        .with_s1dss(smmuv3::structs::SteS1dss(0b11))
        .with_s1cir(smmuv3::structs::SteS1cir(0b11))
        .with_s1cor(smmuv3::structs::SteS1cor(0b11))
        .with_s1csh(smmuv3::structs::SteS1csh(0b11))
        .with_s1stalld(true)
        .with_eats(smmuv3::structs::SteEats(0b11))
        // Linux sets SHCFG=INCOMING in some stage-1 and bypass STEs; it only
        // overrides attributes, and the physical STE takes the host's value.
        .with_shcfg(smmuv3::structs::SteShcfg::USE_INCOMING);
    [w0.0[0], w1.0[1]]
}

/// Clears what the architecture says the SMMU ignores in this STE, given
/// what is presented: SW_RESERVED always, EATS without ATS, S1CDMax without
/// substreams (§5.2). None of it ever reaches the physical STE.
fn without_ignored(ste: &Ste, p: &Presented) -> Ste {
    let mut ste = ste.with_sw_reserved(0);
    if !p.idr0.ats() {
        ste = ste.with_eats(smmuv3::structs::SteEats::NO_ATS);
    }
    if p.ssidsize() == 0 {
        ste = ste.with_s1cd_max(0);
    }
    ste
}

/// What a stage-1-only SMMU with the presented features makes of an STE.
pub fn interpret(ste: &Ste, p: &Presented) -> GuestStream {
    if !ste.v() {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let ste = &without_ignored(ste, p);
    let [a0, a1] = allowed();
    if ste.0[0] & !a0 != 0 || ste.0[1] & !a1 != 0 {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let config = ste.config();
    if config == SteConfig::BYPASS {
        return GuestStream::Config(StreamConfig::Stage2Only);
    }
    if config.0 & 0b100 == 0 {
        // 0b000 abort, 0b0xx Reserved behaves as abort (§5.2).
        return GuestStream::Config(StreamConfig::Abort { report: false });
    }
    if config != SteConfig::S1_TRANS {
        // Stage 2 is not presented: Config 0b11x is ILLEGAL.
        return GuestStream::Refused(Refusal::BadSte);
    }
    // S1STALLD is ILLEGAL unless the stall model lets CDs choose (§5.2).
    if ste.s1stalld() && p.idr0.stall_model() != Idr0StallModel::STALL_AND_TERM {
        return GuestStream::Refused(Refusal::BadSte);
    }
    // The CD table pointer must be within the presented output size.
    if p.oas_bits < 64 && ste.s1_context_ptr() >> p.oas_bits != 0 {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let cd_max = u32::from(ste.s1cd_max());
    if cd_max > p.ssidsize() {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let fmt = ste.s1_fmt().0;
    if cd_max != 0 && fmt != 0 && (!p.idr0.cd2l() || fmt == 0b11) {
        return GuestStream::Refused(Refusal::BadSte);
    }
    GuestStream::Config(StreamConfig::Nested(S1Context {
        s1_context_ptr: Ipa(ste.s1_context_ptr()),
        s1_fmt: if cd_max == 0 { 0 } else { fmt },
        s1_cd_max: cd_max as u8,
        s1_dss: ste.s1dss().0,
        s1_cir: ste.s1cir().0,
        s1_cor: ste.s1cor().0,
        s1_csh: ste.s1csh().0,
        s1_stalld: ste.s1stalld(),
    }))
}
