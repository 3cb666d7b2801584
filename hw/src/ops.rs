//! What a domain needs of one physical SMMU's driver, as a trait: several
//! domains share one driver, and tests put a recording one in its place.

use smmuv3::cmd::Command;
use smmuv3::structs::Ste;
use smmuv3::IdRegisters;

use crate::driver::{SmmuDriver, Ticket};
use crate::error::Error;
use crate::transport::{DmaMemory, RegisterAccess};

pub trait SmmuOps: Send + Sync {
    /// The SMMU's identification registers.
    fn ids(&self) -> IdRegisters;
    /// Writes an STE hitlessly; the physical commands it took.
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, Error>;
    /// Writes several STEs, each hitlessly; the physical commands it took.
    fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, Error> {
        let mut commands = 0u32;
        for (sid, ste) in updates {
            commands = commands.saturating_add(self.write_ste(*sid, ste)?);
        }
        Ok(commands)
    }
    fn submit(&self, cmds: &[Command]) -> Result<Ticket, Error>;
    /// Syncs; an error if a command from `since` on was refused.
    fn sync_since(&self, since: Ticket) -> Result<(), Error>;
}

impl<R: RegisterAccess + Send + Sync, M: DmaMemory + Send + Sync> SmmuOps for SmmuDriver<R, M> {
    fn ids(&self) -> IdRegisters {
        SmmuDriver::ids(self)
    }
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, Error> {
        SmmuDriver::write_ste(self, sid, ste)
    }
    fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, Error> {
        SmmuDriver::write_stes(self, updates)
    }
    fn submit(&self, cmds: &[Command]) -> Result<Ticket, Error> {
        SmmuDriver::submit(self, cmds)
    }
    fn sync_since(&self, since: Ticket) -> Result<(), Error> {
        SmmuDriver::sync_since(self, since)
    }
}
