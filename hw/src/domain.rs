//! The adapter to the vSMMU runtime (the one module of this crate that
//! knows `vsmmu`, behind the `vsmmu` feature): the runtime's
//! `PhysicalSmmu` for one domain, the domain's stage 2 merged into every
//! STE, commands to the drivers of the SMMUs the domain uses.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use smmuv3::cmd::{CmdTlbiS12Vmall, Command};
use smmuv3::structs::{Ste, SteS1Fmt, SteS1cir, SteS1cor, SteS1csh, SteS1dss};
use smmuv3::IdRegisters;
use vsmmu::{HwError, PhysStream, PhysicalSmmu, S1Context, SmmuId, StreamConfig};

use crate::driver::Ticket;
use crate::error::Error;
use crate::ops::SmmuOps;
use crate::ste::{self, S2Config};

/// A hardware failure as the runtime sees it: whatever the reason, the
/// runtime retries and contains; the detail is for the hypervisor's log.
impl From<Error> for HwError {
    fn from(e: Error) -> Self {
        match e {
            Error::Timeout(_) => HwError::Timeout,
            _ => HwError::Refused,
        }
    }
}

/// The guest's stage-1 context as STE fields.
fn stage1(s1: &S1Context) -> Ste {
    Ste::new()
        .with_s1_fmt(SteS1Fmt(s1.s1_fmt))
        .with_s1_context_ptr(s1.s1_context_ptr.0)
        .with_s1cd_max(s1.s1_cd_max)
        .with_s1dss(SteS1dss(s1.s1_dss))
        .with_s1cir(SteS1cir(s1.s1_cir))
        .with_s1cor(SteS1cor(s1.s1_cor))
        .with_s1csh(SteS1csh(s1.s1_csh))
        .with_s1stalld(s1.s1_stalld)
}

/// The physical STE for a runtime request on a domain with stage 2 `s2`.
pub fn physical_ste(config: &StreamConfig, s2: &S2Config) -> Ste {
    match config {
        StreamConfig::Abort { report } => ste::abort(*report),
        StreamConfig::Stage2Only => ste::stage2_only(s2),
        StreamConfig::Nested(s1) => ste::nested(&stage1(s1), s2),
    }
}

/// One domain's view of the physical SMMUs it uses.
pub struct DomainHw<'a> {
    pub smmus: Vec<(SmmuId, Arc<dyn SmmuOps + 'a>)>,
    pub s2: S2Config,
    /// STEs the hardware could not take (`ste::fit`; the stream was set to abort instead).
    pub refused: u64,
    /// Per SMMU, the first command sent since its last sync: the sync
    /// reports whether any of them was refused.
    unsynced: BTreeMap<SmmuId, Ticket>,
}

impl<'a> DomainHw<'a> {
    /// The physical STE for `config` on an SMMU with `ids`, or (as the
    /// error) the abort STE to write instead when the hardware cannot take it.
    fn target(&self, config: &StreamConfig, ids: &IdRegisters) -> Result<Ste, Ste> {
        ste::fit(physical_ste(config, &self.s2), ids).map_err(|_| ste::abort(false))
    }

    pub fn new(s2: S2Config, smmus: Vec<(SmmuId, Arc<dyn SmmuOps + 'a>)>) -> Self {
        DomainHw {
            smmus,
            s2,
            refused: 0,
            unsynced: BTreeMap::new(),
        }
    }

    fn smmu(&self, id: SmmuId) -> Result<Arc<dyn SmmuOps + 'a>, HwError> {
        self.smmus
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, d)| d.clone())
            .ok_or(HwError::NoSuchSmmu)
    }
}

impl PhysicalSmmu for DomainHw<'_> {
    fn capabilities(&self, smmu: SmmuId) -> Option<IdRegisters> {
        self.smmu(smmu).ok().map(|d| d.ids())
    }

    fn install(&mut self, stream: PhysStream, config: &StreamConfig) -> Result<u32, HwError> {
        let d = self.smmu(stream.smmu)?;
        match self.target(config, &d.ids()) {
            Ok(target) => Ok(d.write_ste(stream.psid, &target)?),
            Err(abort) => {
                self.refused += 1;
                d.write_ste(stream.psid, &abort)?;
                Err(HwError::Refused)
            }
        }
    }

    /// All on one SMMU and all acceptable: written in lockstep; otherwise
    /// (nothing written yet) an error, and the runtime installs each alone.
    fn install_many(&mut self, installs: &[(PhysStream, StreamConfig)]) -> Result<u32, HwError> {
        let Some((first, _)) = installs.first() else {
            return Ok(0);
        };
        let d = self.smmu(first.smmu)?;
        let ids = d.ids();
        let mut updates = Vec::with_capacity(installs.len());
        for (stream, config) in installs {
            if stream.smmu != first.smmu {
                return Err(HwError::NoSuchSmmu);
            }
            let target = self.target(config, &ids).map_err(|_| HwError::Refused)?;
            updates.push((stream.psid, target));
        }
        Ok(d.write_stes(&updates)?)
    }

    fn invalidate(&mut self, smmu: SmmuId, cmds: &[Command]) -> Result<(), HwError> {
        let ticket = self.smmu(smmu)?.submit(cmds)?;
        self.unsynced.entry(smmu).or_insert(ticket);
        Ok(())
    }

    fn sync(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        let since = self.unsynced.remove(&smmu).unwrap_or(Ticket(u64::MAX));
        Ok(self.smmu(smmu)?.sync_since(since)?)
    }

    /// Every TLB entry of the domain's VMID, both stages (§4.4.3), gone
    /// and confirmed.
    fn release(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        let d = self.smmu(smmu)?;
        let all = Command::TlbiS12Vmall(CmdTlbiS12Vmall::new().with_vmid(self.s2.vmid));
        let ticket = d.submit(&[all])?;
        self.unsynced.remove(&smmu);
        Ok(d.sync_since(ticket)?)
    }
}
