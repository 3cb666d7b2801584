//! The runtime's `PhysicalSmmu` for one domain: the domain's stage 2 merged
//! into every STE, commands to the drivers of the SMMUs the domain uses.

use alloc::sync::Arc;
use alloc::vec::Vec;

use smmuv3::cmd::Command;
use smmuv3::regs::{Idr0, Idr1, Idr5};
use smmuv3::structs::Ste;
use vsmmu::{HwError, PhysCaps, PhysStream, PhysicalSmmu, SmmuId, StreamConfig};

use crate::driver::SmmuDriver;
use crate::ste::{self, S2Config};
use crate::transport::{DmaMemory, RegisterAccess};

/// What a domain needs of one physical SMMU's driver.
pub trait SmmuOps: Send + Sync {
    fn caps(&self) -> PhysCaps;
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<(), HwError>;
    fn submit(&self, cmds: &[Command]) -> Result<(), HwError>;
    fn sync(&self) -> Result<(), HwError>;
}

impl<R: RegisterAccess + Send + Sync, M: DmaMemory + Send + Sync> SmmuOps for SmmuDriver<R, M> {
    fn caps(&self) -> PhysCaps {
        SmmuDriver::caps(self)
    }
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<(), HwError> {
        SmmuDriver::write_ste(self, sid, ste)
    }
    fn submit(&self, cmds: &[Command]) -> Result<(), HwError> {
        SmmuDriver::submit(self, cmds)
    }
    fn sync(&self) -> Result<(), HwError> {
        SmmuDriver::sync(self)
    }
}

/// Why an STE was not sent to the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteRefusal {
    Granule,
    OutputSize,
    Vmid,
    Substreams,
}

/// Checks every field the driver writes against the probed capabilities:
/// some implementations (QEMU's among them) abort on STEs they cannot take.
pub fn check_ste(ste: &Ste, caps: &PhysCaps) -> Result<(), SteRefusal> {
    if !ste.v() {
        return Ok(());
    }
    let (idr0, idr1, idr5) = (Idr0(caps.idr0), Idr1(caps.idr1), Idr5(caps.idr5));
    if ste.config().0 & 0b110 == 0b110 {
        let ok = match ste.s2tg().0 {
            0 => idr5.gran4k(),
            1 => idr5.gran64k(),
            2 => idr5.gran16k(),
            _ => false,
        };
        if !ok || !ste.s2aa64() {
            return Err(SteRefusal::Granule);
        }
        if ste.s2ps().0 > idr5.oas().0 {
            return Err(SteRefusal::OutputSize);
        }
        if !idr0.vmid16() && ste.s2vmid() > 0xff {
            return Err(SteRefusal::Vmid);
        }
    }
    if ste.config().0 & 0b101 == 0b101 && ste.s1cd_max() > idr1.ssidsize() {
        return Err(SteRefusal::Substreams);
    }
    Ok(())
}

/// One domain's view of the physical SMMUs it uses.
pub struct DomainHw<'a> {
    pub smmus: Vec<(SmmuId, Arc<dyn SmmuOps + 'a>)>,
    pub s2: S2Config,
    /// STEs refused by `check_ste` (the stream was set to abort instead).
    pub refused: u64,
}

impl<'a> DomainHw<'a> {
    pub fn new(s2: S2Config, smmus: Vec<(SmmuId, Arc<dyn SmmuOps + 'a>)>) -> Self {
        DomainHw {
            smmus,
            s2,
            refused: 0,
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
    fn capabilities(&self, smmu: SmmuId) -> Option<PhysCaps> {
        self.smmu(smmu).ok().map(|d| d.caps())
    }

    fn install(&mut self, stream: PhysStream, config: &StreamConfig) -> Result<(), HwError> {
        let d = self.smmu(stream.smmu)?;
        let mut target = ste::make(config, &self.s2);
        let caps = d.caps();
        // SSIDSIZE=0: S1CDMax is IGNORED by the architecture, but some
        // implementations refuse a non-zero value; never send one.
        if Idr1(caps.idr1).ssidsize() == 0 {
            target.set_s1cd_max(0);
        }
        if check_ste(&target, &caps).is_err() {
            self.refused += 1;
            target = ste::make(&StreamConfig::Abort { report: false }, &self.s2);
            d.write_ste(stream.psid, &target)?;
            return Err(HwError::Refused);
        }
        d.write_ste(stream.psid, &target)
    }

    fn invalidate(&mut self, smmu: SmmuId, cmds: &[Command]) -> Result<(), HwError> {
        self.smmu(smmu)?.submit(cmds)
    }

    fn sync(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        self.smmu(smmu)?.sync()
    }
}
