//! The guest's stream table: find a vSID's STE (linear or 2-level, bounded by
//! STRTAB_BASE_CFG), read it, and turn it into what the physical stream
//! should do, as a stage-1-only SMMU would interpret it.

use smmuv3::regs::{StrtabBase, StrtabBaseCfg, StrtabBaseCfgFmt};
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

/// What the vSMMU presents, as far as STE validation needs it.
#[derive(Clone, Copy, Debug)]
pub struct Presented {
    pub sidsize: u32,
    pub ssidsize: u32,
    pub ats: bool,
    /// CD2L: 2-level CD tables allowed.
    pub cd2l: bool,
}

/// The SPLIT values the architecture defines; others behave as 6 (§6.3.26).
fn split(cfg: StrtabBaseCfg) -> u32 {
    match cfg.split().0 {
        s @ (6 | 8 | 10) => u32::from(s),
        _ => 6,
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
    let log2size = u32::from(cfg.log2size()).min(p.sidsize);
    if log2size < 32 && vsid >> log2size != 0 {
        return Err(Refusal::BadStreamId);
    }
    let ste_bytes = (Ste::WORDS * 8) as u64;
    if cfg.fmt() != StrtabBaseCfgFmt::TWO_LEVEL {
        // Linear (and the Reserved formats, which we treat as linear).
        return Ok(Ipa(base.addr().wrapping_add(u64::from(vsid) * ste_bytes)));
    }
    let split = split(cfg);
    let l1_addr = Ipa(base.addr().wrapping_add(u64::from(vsid >> split) * 8));
    let mut raw = [0u8; 8];
    mem.read(l1_addr, &mut raw)
        .map_err(|_| Refusal::FetchFault(l1_addr))?;
    let l1 = match L1std::decode([u64::from_le_bytes(raw)]) {
        Ok(l1) => l1,
        Err(_) => return Err(Refusal::BadStreamId),
    };
    let span = u32::from(l1.span());
    // Span 0 is invalid; Span above SPLIT+1 is Reserved (treated as invalid).
    if span == 0 || span > split + 1 {
        return Err(Refusal::BadStreamId);
    }
    let low = vsid & ((1u32 << split) - 1);
    if low >> (span - 1) != 0 {
        return Err(Refusal::BadStreamId);
    }
    Ok(Ipa(l1.l2_ptr().wrapping_add(u64::from(low) * ste_bytes)))
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

/// What a stage-1-only SMMU with the presented features makes of an STE.
pub fn interpret(ste: &Ste, p: &Presented) -> GuestStream {
    if !ste.v() {
        return GuestStream::Refused(Refusal::BadSte);
    }
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
    if ste.eats().0 != 0 && !p.ats {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let cd_max = u32::from(ste.s1cd_max());
    if cd_max > p.ssidsize {
        return GuestStream::Refused(Refusal::BadSte);
    }
    let fmt = ste.s1_fmt().0;
    if cd_max != 0 && fmt != 0 && (!p.cd2l || fmt == 0b11) {
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
