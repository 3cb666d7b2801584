//! What can go wrong with a physical SMMU, with the context to say so in a
//! log: what the driver waited for, which address its memory refused,
//! which StreamID did not fit.

use smmuv3::Register;

use crate::transport::DmaFault;

/// What the driver was waiting for when it gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Room in the command queue (CMDQ_CONS did not move).
    QueueSpace,
    /// A CMD_SYNC to be consumed.
    Sync,
    /// An acknowledgement register to follow its control register.
    Ack(Register),
}

/// A physical SMMU operation that did not take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The SMMU did not answer within the driver's poll limit.
    Timeout(Wait),
    /// The SMMU refused a command of this submission (CERROR_ILL): it was
    /// skipped, so what was asked did not all happen.
    Refused,
    /// The memory holding the driver's tables or queues refused an access.
    Dma(DmaFault),
    /// The StreamID is beyond the stream table the driver set up.
    StreamOutOfRange { sid: u32 },
    /// No room left in the level-2 table pool for this StreamID's table.
    PoolExhausted { sid: u32 },
}

impl From<DmaFault> for Error {
    fn from(f: DmaFault) -> Self {
        Error::Dma(f)
    }
}
