//! What the Linux `arm-smmu-v3` driver decides, as pure functions: probe
//! checks, the commands it builds, range invalidations and the 6.12
//! used-bits STE/CD update plan. Facts taken from Debian's 6.1.x and 6.12.x
//! `drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.{c,h}`; the code is ours.

use alloc::vec::Vec;

use smmuv3::cmd::*;
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::FieldInfo;

/// Which driver generation the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinuxVersion {
    /// Debian 12's kernel: STEs written words 1.. then word 0, CDs by
    /// `arm_smmu_write_ctx_desc`.
    V6_1,
    /// Debian 12 backports / Debian 13: `arm_smmu_write_entry` (used bits,
    /// hitless where possible) for STEs and CDs.
    V6_12,
}

impl LinuxVersion {
    pub const ALL: [LinuxVersion; 2] = [LinuxVersion::V6_1, LinuxVersion::V6_12];
}

/// `ARM_SMMU_POLL_TIMEOUT_US`: every poll in the driver gives up after 1 s.
pub const POLL_TIMEOUT_NS: u64 = 1_000_000_000;
/// `ARM_SMMU_POLL_SPIN_COUNT`: `cpu_relax` spins before `udelay` backoff.
pub const POLL_SPIN_COUNT: u32 = 10;
/// `CMDQ_BATCH_ENTRIES` = `BITS_PER_LONG` on arm64.
pub const BATCH_ENTRIES: usize = 64;
/// `STRTAB_SPLIT`: SID bits resolved by one L2 stream table.
pub const STRTAB_SPLIT: u32 = 8;
/// `STRTAB_L1_SZ_SHIFT` allows at most 2^17 L1 descriptors.
pub const STRTAB_L1_MAX_LOG2: u32 = 17;
/// `CMDQ_MAX_SZ_SHIFT` / `EVTQ_MAX_SZ_SHIFT` with Debian's arm64 config (4K
/// pages, `CONFIG_CMA_ALIGNMENT=8`: 1 MiB queues at most).
pub const CMDQ_MAX_LOG2: u32 = 16;
pub const EVTQ_MAX_LOG2: u32 = 15;
/// `CMDQ_TLBI_RANGE_NUM_MAX`: NUM+1 chunks per range command.
pub const RANGE_NUM_MAX: u64 = 31;
/// The io-pgtable leaf granule of a 4K-page kernel (log2).
pub const PAGE_SHIFT: u32 = 12;

/// Why `arm_smmu_device_hw_probe` refuses the SMMU (-ENXIO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// "unknown/unsupported TT endianness!" (a little-endian kernel).
    TtEndianness,
    /// "no translation support!": neither S1P nor S2P.
    NoTranslation,
    /// "AArch64 table format not supported!"
    NoAArch64,
    /// "embedded implementation not supported": TABLES/QUEUES_PRESET or REL.
    Embedded,
    /// "command queue size <= 64 entries not supported".
    CmdqTooSmall,
}

/// What the driver learnt from the ID registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub two_level: bool,
    pub sid_bits: u32,
    pub cmdq_log2: u32,
    pub evtq_log2: u32,
    /// `ARM_SMMU_OPT_MSIPOLL`: IDR0.MSI on a coherent SMMU.
    pub msi_poll: bool,
    /// `ARM_SMMU_FEAT_SEV`: polls of CONS wait with WFE.
    pub sev: bool,
    /// `ARM_SMMU_FEAT_HYP`: TLBI_EL2_ALL at reset.
    pub hyp: bool,
    /// `ARM_SMMU_FEAT_RANGE_INV`: IDR3.RIL.
    pub range_inv: bool,
    /// `ARM_SMMU_FEAT_STALLS`: S1STALLD in every stage-1 STE.
    pub stalls: bool,
    /// `ARM_SMMU_FEAT_ATTR_TYPES_OVR` (6.12 reads it): SHCFG=incoming in bypass STEs.
    pub attr_types_ovr: bool,
    pub pri: bool,
    pub ats: bool,
    /// Output address size in bits (IDR5.OAS; unknown values read as 48).
    pub oas: u32,
}

/// `arm_smmu_device_hw_probe` on the four ID registers it reads.
pub fn probe(
    version: LinuxVersion,
    [idr0, idr1, idr3, idr5]: [u32; 4],
    coherent: bool,
) -> Result<Probe, ProbeError> {
    let (i0, i1) = (Idr0(idr0), Idr1(idr1));
    if !matches!(i0.ttendian(), Idr0Ttendian::MIXED | Idr0Ttendian::LE) {
        return Err(ProbeError::TtEndianness);
    }
    if !i0.s1p() && !i0.s2p() {
        return Err(ProbeError::NoTranslation);
    }
    if !matches!(i0.ttf(), Idr0Ttf::AARCH64 | Idr0Ttf::AARCH32_64) {
        return Err(ProbeError::NoAArch64);
    }
    if i1.tables_preset() || i1.queues_preset() || i1.rel() {
        return Err(ProbeError::Embedded);
    }
    let cmdq_log2 = u32::from(i1.cmdqs()).min(CMDQ_MAX_LOG2);
    if cmdq_log2 <= BATCH_ENTRIES.ilog2() {
        return Err(ProbeError::CmdqTooSmall);
    }
    let sid_bits = u32::from(i1.sidsize());
    Ok(Probe {
        // A table smaller than one L2 table is linear.
        two_level: i0.st_level() == Idr0StLevel::TWO_LEVEL && sid_bits > STRTAB_SPLIT,
        sid_bits,
        cmdq_log2,
        evtq_log2: u32::from(i1.eventqs()).min(EVTQ_MAX_LOG2),
        msi_poll: i0.msi() && coherent,
        sev: i0.sev(),
        hyp: i0.hyp(),
        range_inv: Idr3(idr3).ril(),
        stalls: matches!(
            i0.stall_model(),
            Idr0StallModel::STALL_AND_TERM | Idr0StallModel::STALL_FORCED
        ),
        attr_types_ovr: version == LinuxVersion::V6_12 && i1.attr_types_ovr(),
        pri: i0.pri(),
        ats: i0.ats(),
        oas: oas_bits(Idr5(idr5).oas()),
    })
}

fn oas_bits(oas: Idr5Oas) -> u32 {
    match oas {
        Idr5Oas::OAS_32_BIT => 32,
        Idr5Oas::OAS_36_BIT => 36,
        Idr5Oas::OAS_40_BIT => 40,
        Idr5Oas::OAS_42_BIT => 42,
        Idr5Oas::OAS_44_BIT => 44,
        Idr5Oas::OAS_52_BIT => 52,
        _ => 48,
    }
}

/// The CD.IPS io-pgtable derives from an output size.
pub fn ips_for(oas: u32) -> CdIps {
    match oas {
        0..=32 => CdIps::PS_32_BIT,
        33..=36 => CdIps::PS_36_BIT,
        37..=40 => CdIps::PS_40_BIT,
        41..=42 => CdIps::PS_42_BIT,
        43..=44 => CdIps::PS_44_BIT,
        45..=48 => CdIps::PS_48_BIT,
        _ => CdIps::PS_52_BIT,
    }
}

/// STRTAB_BASE_CFG for the table `arm_smmu_init_strtab_*` allocated.
pub fn strtab_base_cfg(p: &Probe) -> StrtabBaseCfg {
    if p.two_level {
        let l1_log2 = p
            .sid_bits
            .saturating_sub(STRTAB_SPLIT)
            .min(STRTAB_L1_MAX_LOG2);
        StrtabBaseCfg(0)
            .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
            .with_split(StrtabBaseCfgSplit(STRTAB_SPLIT as u8))
            .with_log2size((l1_log2 + STRTAB_SPLIT) as u8)
    } else {
        StrtabBaseCfg(0)
            .with_fmt(StrtabBaseCfgFmt::LINEAR)
            .with_log2size(p.sid_bits as u8)
    }
}

/// `arm_smmu_cmdq_build_cmd` for CMD_SYNC: MSI-poll writes the SYNC's own
/// slot (CS=IRQ, MSIData 0), else CS=SEV; both with MSH=ISH, MSIAttr=OIWB.
pub fn sync_cmd(msi_addr: Option<u64>) -> CmdSync {
    let c = CmdSync::new()
        .with_msh(CmdSyncMsh::ISH)
        .with_msi_attr(MEMATTR_OIWB);
    match msi_addr {
        Some(a) => c.with_cs(CmdSyncCs::SIG_IRQ).with_msi_address(a),
        None => c.with_cs(CmdSyncCs::SIG_SEV),
    }
}

/// `ARM_SMMU_MEMATTR_OIWB`: Normal, inner+outer write-back (the MemAttr encoding).
pub const MEMATTR_OIWB: u8 = 0xf;

/// `arm_smmu_sync_ste_for_sid` / the 6.12 STE writer's sync: CFGI_STE, Leaf=1.
pub fn cfgi_ste(sid: u32) -> Command {
    Command::CfgiSte(CmdCfgiSte::new().with_stream_id(sid).with_leaf(true))
}

/// `arm_smmu_sync_cd`: CFGI_CD for one stream.
pub fn cfgi_cd(sid: u32, ssid: u32, leaf: bool) -> Command {
    Command::CfgiCd(
        CmdCfgiCd::new()
            .with_stream_id(sid)
            .with_substream_id(ssid)
            .with_leaf(leaf),
    )
}

/// "It's likely that we'll want to use the new STE soon."
pub fn prefetch_cfg(sid: u32) -> Command {
    Command::PrefetchConfig(CmdPrefetchConfig::new().with_stream_id(sid))
}

/// `CMDQ_OP_CFGI_ALL`: CFGI_STE_RANGE over the whole SID space.
pub fn cfgi_all() -> Command {
    Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))
}

/// `__arm_smmu_tlb_inv_range` for a stage-1 domain (TLBI_NH_VA, VMID 0)
/// with the 4K io-pgtable: with RIL, range commands (TG, TTL, SCALE, NUM),
/// else one command per `granule`.
pub fn tlbi_range(
    asid: u16,
    iova: u64,
    size: u64,
    granule: u64,
    leaf: bool,
    range_inv: bool,
) -> Vec<Command> {
    let mut out = Vec::new();
    let base = CmdTlbiNhVa::new().with_asid(asid).with_leaf(leaf);
    let end = iova.saturating_add(size);
    if size == 0 || granule == 0 {
        return out;
    }
    if !range_inv {
        let mut at = iova;
        while at < end {
            out.push(Command::TlbiNhVa(base.with_addr(at)));
            at = at.saturating_add(granule);
        }
        return out;
    }
    let tg = PAGE_SHIFT;
    let mut num_pages = size >> tg;
    let mut cmd = base.with_tg(CmdTlbiNhVaTg(((tg - 10) / 2) as u8));
    if leaf {
        // The level the leaf granule sits at, in io-pgtable's terms.
        cmd = cmd.with_ttl((4 - (granule.ilog2() - 3) / (tg - 3)) as u8);
    } else if num_pages & RANGE_NUM_MAX == 1 {
        // Avoid SCALE=NUM=0, which some SMMUs mishandle.
        num_pages += 1;
    }
    let mut at = iova;
    while at < end && num_pages != 0 {
        let scale = num_pages.trailing_zeros();
        let num = (num_pages >> scale) & RANGE_NUM_MAX;
        out.push(Command::TlbiNhVa(
            cmd.with_scale(scale as u8)
                .with_num((num - 1) as u8)
                .with_addr(at),
        ));
        at = at.saturating_add(num << (scale + tg));
        num_pages -= num << scale;
    }
    out
}

fn or_into(a: &mut [u64; 8], b: [u64; 8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x |= y;
    }
}

/// The STE fields the SMMU reads whatever the configuration, and what each
/// kind of configuration adds (`arm_smmu_get_ste_used`).
const STE_VALID: [u64; 8] = FieldInfo::mask_words(&[ste::V]);
const STE_CONFIG: [u64; 8] = FieldInfo::mask_words(&[ste::CONFIG]);
const STE_SHCFG: [u64; 8] = FieldInfo::mask_words(&[ste::SHCFG]);
const STE_S1: [u64; 8] = FieldInfo::mask_words(&[
    ste::S1_FMT,
    ste::S1_CONTEXT_PTR,
    ste::S1CD_MAX,
    ste::S1DSS,
    ste::S1CIR,
    ste::S1COR,
    ste::S1CSH,
    ste::S1STALLD,
    ste::STRW,
    ste::EATS,
    ste::S2VMID,
]);
const STE_S2: [u64; 8] = FieldInfo::mask_words(&[
    ste::EATS,
    ste::SHCFG,
    ste::S2VMID,
    ste::S2T0SZ,
    ste::S2SL0,
    ste::S2IR0,
    ste::S2OR0,
    ste::S2SH0,
    ste::S2TG,
    ste::S2PS,
    ste::S2AA64,
    ste::S2ENDI,
    ste::S2PTW,
    ste::S2S,
    ste::S2R,
    ste::S2TTB,
]);

/// `arm_smmu_get_ste_used` (6.12): the STE bits the SMMU reads for this config.
pub fn ste_used(ste: &Ste) -> [u64; 8] {
    let mut used = STE_VALID;
    if !ste.v() {
        return used;
    }
    or_into(&mut used, STE_CONFIG);
    let cfg = ste.config();
    if matches!(cfg, SteConfig::S1_TRANS | SteConfig::NESTED) {
        or_into(&mut used, STE_S1);
        if ste.s1dss() == SteS1dss::BYPASS {
            or_into(&mut used, STE_SHCFG);
        }
    }
    if matches!(cfg, SteConfig::S2_TRANS | SteConfig::NESTED) {
        or_into(&mut used, STE_S2);
    }
    if cfg == SteConfig::BYPASS {
        or_into(&mut used, STE_SHCFG);
    }
    used
}

/// The TTB0 walk fields of a CD, which EPD0 disables.
const CD_TTB0_WALK: [u64; 8] =
    FieldInfo::mask_words(&[cd::T0SZ, cd::TG0, cd::IR0, cd::OR0, cd::SH0, cd::TTB0]);

/// `arm_smmu_get_cd_used` (6.12): everything of a valid CD, less the TTB0
/// walk fields when EPD0 disables it.
pub fn cd_used(cd: &Cd) -> [u64; 8] {
    if !cd.v() {
        return FieldInfo::mask_words(&[cd::V]);
    }
    let mut used = [u64::MAX; 8];
    if cd.epd0() {
        for (u, w) in used.iter_mut().zip(CD_TTB0_WALK) {
            *u &= !w;
        }
    }
    used
}

/// One step of `arm_smmu_write_entry`: store these qwords, then sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryStep {
    /// (qword index, value), in store order; only qwords that change.
    pub stores: Vec<(usize, u64)>,
}

/// `arm_smmu_write_entry`: the steps from `cur` to `target`, each followed
/// by a sync. One critical qword: hitless (unused bits, the critical qword,
/// then the rest); more: V=0, qwords 1.., then qword 0.
pub fn write_entry_plan(
    cur: [u64; 8],
    target: [u64; 8],
    used: impl Fn(&[u64; 8]) -> [u64; 8],
) -> Vec<EntryStep> {
    let (cur_used, tgt_used) = (used(&cur), used(&target));
    let mut unused_update = [0u64; 8];
    let mut critical = Vec::new();
    for i in 0..8 {
        unused_update[i] = (cur[i] & cur_used[i]) | (target[i] & !cur_used[i]);
        if unused_update[i] & tgt_used[i] != target[i] {
            critical.push(i);
        }
    }
    let mut entry = cur;
    let mut steps = Vec::new();
    let mut set = |from: &[u64; 8], range: core::ops::Range<usize>| {
        let stores: Vec<(usize, u64)> = range
            .filter(|&i| entry[i] != from[i])
            .map(|i| (i, from[i]))
            .collect();
        for &(i, v) in &stores {
            entry[i] = v;
        }
        if !stores.is_empty() {
            steps.push(EntryStep { stores });
        }
    };
    match critical.as_slice() {
        [] => set(&target, 0..8),
        [c] => {
            unused_update[*c] = cur[*c];
            set(&unused_update, 0..8);
            set(&target, *c..*c + 1);
            set(&target, 0..8);
        }
        _ => {
            unused_update[0] = 0;
            set(&unused_update, 0..1);
            set(&target, 1..8);
            set(&target, 0..1);
        }
    }
    steps
}

/// `queue_poll`'s backoff: WFE where the SMMU sends events (not for
/// MSI-poll), else `cpu_relax` spins and then a doubling `udelay`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    wfe: bool,
    spins: u32,
    delay_us: u64,
}

impl Backoff {
    pub fn new(wfe: bool) -> Self {
        Backoff {
            wfe,
            spins: 0,
            delay_us: 1,
        }
    }

    /// How long the next wait lasts, given what a WFE and a `cpu_relax` cost.
    pub fn next_ns(&mut self, wfe_ns: u64, relax_ns: u64) -> u64 {
        if self.wfe {
            return wfe_ns;
        }
        self.spins += 1;
        if self.spins < POLL_SPIN_COUNT {
            return relax_ns;
        }
        self.spins = 0;
        let d = self.delay_us.saturating_mul(1_000);
        self.delay_us = self.delay_us.saturating_mul(2);
        d
    }
}
