//! The runtime's `PhysicalSmmu` for one domain: the domain's stage 2 merged
//! into every STE, commands to the drivers of the SMMUs the domain uses.

use alloc::sync::Arc;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;

use smmuv3::cmd::{CmdTlbiS12Vmall, Command};
use smmuv3::regs::{Idr0, Idr0StallModel, Idr1, Idr5};
use smmuv3::structs::Ste;
use vsmmu::{HwError, PhysCaps, PhysStream, PhysicalSmmu, SmmuId, StreamConfig};

use crate::driver::{SmmuDriver, Ticket};
use crate::ste::{self, S2Config};
use crate::transport::{DmaMemory, RegisterAccess};

/// What a domain needs of one physical SMMU's driver.
pub trait SmmuOps: Send + Sync {
    fn caps(&self) -> PhysCaps;
    /// Writes an STE hitlessly; the physical commands it took.
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, HwError>;
    /// Writes several STEs, each hitlessly; the physical commands it took.
    fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, HwError> {
        let mut commands = 0u32;
        for (sid, ste) in updates {
            commands = commands.saturating_add(self.write_ste(*sid, ste)?);
        }
        Ok(commands)
    }
    fn submit(&self, cmds: &[Command]) -> Result<Ticket, HwError>;
    /// Syncs; an error if a command from `since` on was refused.
    fn sync_since(&self, since: Ticket) -> Result<(), HwError>;
}

impl<R: RegisterAccess + Send + Sync, M: DmaMemory + Send + Sync> SmmuOps for SmmuDriver<R, M> {
    fn caps(&self) -> PhysCaps {
        SmmuDriver::caps(self)
    }
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, HwError> {
        SmmuDriver::write_ste(self, sid, ste)
    }
    fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, HwError> {
        SmmuDriver::write_stes(self, updates)
    }
    fn submit(&self, cmds: &[Command]) -> Result<Ticket, HwError> {
        SmmuDriver::submit(self, cmds)
    }
    fn sync_since(&self, since: Ticket) -> Result<(), HwError> {
        SmmuDriver::sync_since(self, since)
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
    /// Per SMMU, the first command sent since its last sync: the sync
    /// reports whether any of them was refused.
    unsynced: BTreeMap<SmmuId, Ticket>,
}

impl<'a> DomainHw<'a> {
    /// The physical STE for `config` on an SMMU with `caps`, or (as the
    /// error) the abort STE to write instead when the hardware cannot take it.
    fn target(&self, config: &StreamConfig, caps: &PhysCaps) -> Result<Ste, Ste> {
        let mut target = ste::make(config, &self.s2);
        // SSIDSIZE=0: S1CDMax is IGNORED by the architecture, but some
        // implementations refuse a non-zero value; never send one.
        if Idr1(caps.idr1).ssidsize() == 0 {
            target.set_s1cd_max(0);
        }
        // The guest is never presented stalls: on hardware where CDs may
        // choose to stall (STALL_MODEL 0b00), forbid it, or a faulting
        // transaction would wait for a CMD_RESUME nobody sends. Elsewhere
        // S1STALLD is ILLEGAL (§5.2).
        if matches!(config, StreamConfig::Nested(_)) {
            let stalls = Idr0(caps.idr0).stall_model() == Idr0StallModel::STALL_AND_TERM;
            target.set_s1stalld(stalls);
        }
        if check_ste(&target, caps).is_err() {
            return Err(ste::make(&StreamConfig::Abort { report: false }, &self.s2));
        }
        Ok(target)
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
    fn capabilities(&self, smmu: SmmuId) -> Option<PhysCaps> {
        self.smmu(smmu).ok().map(|d| d.caps())
    }

    fn install(&mut self, stream: PhysStream, config: &StreamConfig) -> Result<u32, HwError> {
        let d = self.smmu(stream.smmu)?;
        match self.target(config, &d.caps()) {
            Ok(target) => d.write_ste(stream.psid, &target),
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
        let caps = d.caps();
        let mut updates = Vec::with_capacity(installs.len());
        for (stream, config) in installs {
            if stream.smmu != first.smmu {
                return Err(HwError::NoSuchSmmu);
            }
            let target = self.target(config, &caps).map_err(|_| HwError::Refused)?;
            updates.push((stream.psid, target));
        }
        d.write_stes(&updates)
    }

    fn invalidate(&mut self, smmu: SmmuId, cmds: &[Command]) -> Result<(), HwError> {
        let ticket = self.smmu(smmu)?.submit(cmds)?;
        self.unsynced.entry(smmu).or_insert(ticket);
        Ok(())
    }

    fn sync(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        let since = self.unsynced.remove(&smmu).unwrap_or(Ticket(u64::MAX));
        self.smmu(smmu)?.sync_since(since)
    }

    /// Every TLB entry of the domain's VMID, both stages (§4.4.3), gone
    /// and confirmed.
    fn release(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        let d = self.smmu(smmu)?;
        let all = Command::TlbiS12Vmall(CmdTlbiS12Vmall::new().with_vmid(self.s2.vmid));
        let ticket = d.submit(&[all])?;
        self.unsynced.remove(&smmu);
        d.sync_since(ticket)
    }
}
