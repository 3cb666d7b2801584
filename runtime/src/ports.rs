//! The boundaries: small traits the hypervisor implements, handed to every
//! entry point as [`Ports`]. Every one is fallible where the world can fail;
//! none is expected to block.

use smmuv3::cmd::Command;
use smmuv3::evt::Event;
pub use smmuv3::IdRegisters;

/// A guest physical address (IPA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipa(pub u64);

/// A guest memory access that failed (unbacked IPA, or the hypervisor refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFault {
    pub ipa: Ipa,
}

/// The guest's memory, as the vSMMU reads its queues and tables.
pub trait GuestMemory {
    /// Fills `buf` from guest memory at `ipa`.
    fn read(&mut self, ipa: Ipa, buf: &mut [u8]) -> Result<(), MemFault>;
    /// Writes `data` to guest memory at `ipa`.
    fn write(&mut self, ipa: Ipa, data: &[u8]) -> Result<(), MemFault>;
    /// Whether `len` bytes at `ipa` are guest RAM.
    fn is_backed(&self, ipa: Ipa, len: u64) -> bool;
}

/// Which physical SMMU (a hypervisor may have several, with overlapping
/// StreamID spaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SmmuId(pub u16);

/// A physical stream: the SMMU and the StreamID on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysStream {
    pub smmu: SmmuId,
    pub psid: u32,
}

/// The guest's stage-1 context for a nested STE; every address is an IPA
/// that the hardware reaches through the domain's stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Context {
    /// IPA of the CD table (or L1 CD table).
    pub s1_context_ptr: Ipa,
    pub s1_fmt: u8,
    pub s1_cd_max: u8,
    pub s1_dss: u8,
    pub s1_cir: u8,
    pub s1_cor: u8,
    pub s1_csh: u8,
    pub s1_stalld: bool,
}

/// What the runtime asks the hardware layer to install for a physical stream.
/// The hardware layer merges it with the domain's stage 2 and writes it
/// hitlessly (never a half-applied configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamConfig {
    /// Terminate every transaction. With `report`, the installed STE makes the
    /// SMMU record an event on use (an invalid STE: C_BAD_STE), which the
    /// runtime turns into what the guest's configuration would have caused.
    Abort { report: bool },
    /// The domain's stage 2 only (the guest's view: bypass).
    Stage2Only,
    /// The guest's stage 1 nested over the domain's stage 2.
    Nested(S1Context),
}

/// A hardware-layer failure (the physical queue timed out, a command was
/// refused). The runtime never tells the guest that an invalidation
/// completed which the hardware did not confirm: it retries, and makes the
/// domain's streams abort while the hardware keeps failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwError {
    Timeout,
    Refused,
    NoSuchSmmu,
}

/// The most physical commands one [`PhysicalSmmu::install`] may issue: a
/// hitless STE update takes at most three steps, each an STE write followed
/// by CMD_CFGI_STE and CMD_SYNC, and a stream's first install in a 2-level
/// table one more pair for its new level-1 descriptor. The domain's budget
/// is charged this much before an install and refunded what was not used.
pub const INSTALL_MAX_COMMANDS: u32 = 8;

/// The hardware layer, bound to one domain (it knows the domain's stage 2
/// and VMID).
pub trait PhysicalSmmu {
    /// The physical ID registers of an SMMU the domain uses.
    fn capabilities(&self, smmu: SmmuId) -> Option<IdRegisters>;
    /// Installs a stream configuration (hitlessly) and says how many
    /// physical commands (syncs included) that took: at most
    /// [`INSTALL_MAX_COMMANDS`].
    fn install(&mut self, stream: PhysStream, config: &StreamConfig) -> Result<u32, HwError>;
    /// Installs several configurations (each hitlessly) and says how many
    /// physical commands that took in all. A hardware layer may share the
    /// invalidations and syncs among them (one per step for a run of
    /// neighbouring streams); each stream still never sees a half-written
    /// configuration. On an error some may be installed and some not: the
    /// runtime then installs each on its own. By default, one `install` each.
    fn install_many(&mut self, installs: &[(PhysStream, StreamConfig)]) -> Result<u32, HwError> {
        let mut commands = 0u32;
        for (stream, config) in installs {
            commands = commands.saturating_add(self.install(*stream, config)?);
        }
        Ok(commands)
    }
    /// Queues invalidation commands (already rewritten for the physical SMMU:
    /// VMID forced, pSIDs in place of vSIDs). No CMD_SYNC among them.
    fn invalidate(&mut self, smmu: SmmuId, cmds: &[Command]) -> Result<(), HwError>;
    /// Waits until everything queued on `smmu` has completed (one CMD_SYNC).
    /// An error means some of it may not have taken effect: a command was
    /// refused, or the SMMU did not answer.
    fn sync(&mut self, smmu: SmmuId) -> Result<(), HwError>;
    /// Removes every trace the domain left on `smmu`: all TLB entries of its
    /// VMID (stage 1 and stage 2), confirmed by a sync. Called when the
    /// domain is torn down, after its streams were set to abort.
    fn release(&mut self, smmu: SmmuId) -> Result<(), HwError>;
}

/// The vSMMU's interrupt outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    Eventq,
    Priq,
    CmdSync,
    Gerror,
}

/// Interrupt delivery to the guest.
pub trait IrqSink {
    /// Raises a wired (edge) interrupt line.
    fn raise(&mut self, irq: Irq);
    /// Performs an MSI write the guest configured (to its interrupt
    /// controller's doorbell, not guest RAM).
    fn msi(&mut self, irq: Irq, address: Ipa, data: u32);
    /// Sends an event to the guest's CPUs (what SEV does), for a guest
    /// waiting in WFE. Only called when the vSMMU presents SEV
    /// (`VsmmuConfig::sev`), which the hypervisor sets when it can do this.
    fn sev(&mut self) {}
}

/// Asks the hypervisor to call [`crate::Vsmmu::run_deferred`] later, outside
/// the trap (a tasklet in Xen, a task in a Rust VMM).
pub trait Deferrer {
    /// `after_ns` is a hint: 0 for as soon as possible, else how long until
    /// the domain's hardware budget allows progress.
    fn schedule(&mut self, after_ns: u64);
}

/// Everything an entry point may use, borrowed for the duration of the call.
pub struct Ports<'a> {
    pub mem: &'a mut dyn GuestMemory,
    pub hw: &'a mut dyn PhysicalSmmu,
    pub irq: &'a mut dyn IrqSink,
    pub defer: &'a mut dyn Deferrer,
    /// Monotonic time in nanoseconds, for the per-domain command budget.
    pub now_ns: u64,
}

/// An event the hardware layer recorded for a physical stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysEvent {
    pub smmu: SmmuId,
    pub event: Event,
}
