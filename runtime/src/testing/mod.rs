//! Fakes of every port, for tests, fuzzing, benchmarks and integrators'
//! own tests: guest RAM in a vector, a hardware layer that records what it
//! is asked, an interrupt sink and a deferrer that count.

use alloc::vec;
use alloc::vec::Vec;

use smmuv3::cmd::Command;
use smmuv3::platform::QEMU_VIRT;

use crate::ports::*;

pub mod guest;
pub mod linux;
pub mod stack;
pub use guest::{
    linux_cd, linux_cd_for, GuestError, GuestLayout, GuestOp, GuestPlatform, Host, LinuxGuest,
    Timing,
};
pub use linux::{LinuxVersion, Probe, ProbeError};

/// The internals the fuzz properties check against, and nothing else of them.
pub mod internals {
    /// The most commands the vSMMU sends the hardware in one batch.
    pub use crate::batch::MAX_PER_SMMU;
}

/// Guest RAM: `size` bytes at IPA `base`; everything else faults.
#[derive(Clone, Debug)]
pub struct GuestRam {
    pub base: u64,
    pub bytes: Vec<u8>,
    /// Reads and writes performed (a measure of work).
    pub accesses: u64,
}

impl GuestRam {
    pub fn new(base: u64, size: usize) -> Self {
        GuestRam {
            base,
            bytes: vec![0; size],
            accesses: 0,
        }
    }

    fn range(&self, ipa: Ipa, len: usize) -> Option<core::ops::Range<usize>> {
        let off = ipa.0.checked_sub(self.base)?;
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }

    /// A doubleword of RAM; zero outside RAM.
    pub fn read_u64(&self, ipa: u64) -> u64 {
        let mut b = [0u8; 8];
        if let Some(src) = self.range(Ipa(ipa), 8).and_then(|r| self.bytes.get(r)) {
            b.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }

    /// Writes a doubleword of RAM; ignored outside RAM.
    pub fn write_u64(&mut self, ipa: u64, v: u64) {
        if let Some(dst) = self.range(Ipa(ipa), 8).and_then(|r| self.bytes.get_mut(r)) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    pub fn write_words(&mut self, ipa: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.write_u64(ipa + 8 * i as u64, *w);
        }
    }

    pub fn read_words<const N: usize>(&self, ipa: u64) -> [u64; N] {
        core::array::from_fn(|i| self.read_u64(ipa + 8 * i as u64))
    }
}

impl GuestMemory for GuestRam {
    fn read(&mut self, ipa: Ipa, buf: &mut [u8]) -> Result<(), MemFault> {
        self.accesses += 1;
        let src = self
            .range(ipa, buf.len())
            .and_then(|r| self.bytes.get(r))
            .ok_or(MemFault { ipa })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, ipa: Ipa, data: &[u8]) -> Result<(), MemFault> {
        self.accesses += 1;
        let dst = self
            .range(ipa, data.len())
            .and_then(|r| self.bytes.get_mut(r))
            .ok_or(MemFault { ipa })?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn is_backed(&self, ipa: Ipa, len: u64) -> bool {
        usize::try_from(len)
            .ok()
            .and_then(|l| self.range(ipa, l))
            .is_some()
    }
}

/// One thing the runtime asked of the hardware layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwCall {
    Install(PhysStream, StreamConfig),
    Invalidate(SmmuId, Vec<Command>),
    Sync(SmmuId),
    Release(SmmuId),
}

/// A hardware layer that records every call and succeeds (or fails, when told to).
#[derive(Clone, Debug, Default)]
pub struct RecordingSmmu {
    pub caps: Vec<(SmmuId, IdRegisters)>,
    pub calls: Vec<HwCall>,
    pub fail: bool,
    /// Fail only syncs (the hardware does not confirm invalidations).
    pub fail_syncs: bool,
    /// Keep only counts (for long floods and benchmarks).
    pub count_only: bool,
    pub installs: u64,
    pub commands: u64,
    pub syncs: u64,
}

impl RecordingSmmu {
    /// SMMUs `0..n`, each with QEMU virt's ID registers.
    pub fn qemu_virt(n: u16) -> Self {
        RecordingSmmu {
            caps: (0..n).map(|i| (SmmuId(i), QEMU_VIRT)).collect(),
            ..Default::default()
        }
    }

    /// Every invalidation command sent, in order, with its SMMU.
    pub fn commands(&self) -> Vec<(SmmuId, Command)> {
        self.calls
            .iter()
            .flat_map(|c| match c {
                HwCall::Invalidate(s, cmds) => cmds.iter().map(|c| (*s, *c)).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The last configuration installed for a stream.
    pub fn installed(&self, stream: PhysStream) -> Option<StreamConfig> {
        self.calls.iter().rev().find_map(|c| match c {
            HwCall::Install(s, cfg) if *s == stream => Some(*cfg),
            _ => None,
        })
    }
}

impl PhysicalSmmu for RecordingSmmu {
    fn capabilities(&self, smmu: SmmuId) -> Option<IdRegisters> {
        self.caps.iter().find(|(s, _)| *s == smmu).map(|(_, c)| *c)
    }

    /// An install is an STE write, a CMD_CFGI_STE and a CMD_SYNC.
    fn install(&mut self, stream: PhysStream, config: &StreamConfig) -> Result<u32, HwError> {
        self.installs += 1;
        if !self.count_only {
            self.calls.push(HwCall::Install(stream, *config));
        }
        if self.fail {
            Err(HwError::Refused)
        } else {
            Ok(2)
        }
    }

    fn invalidate(&mut self, smmu: SmmuId, cmds: &[Command]) -> Result<(), HwError> {
        self.commands += cmds.len() as u64;
        if !self.count_only {
            self.calls.push(HwCall::Invalidate(smmu, cmds.to_vec()));
        }
        if self.fail {
            Err(HwError::Timeout)
        } else {
            Ok(())
        }
    }

    fn sync(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        self.syncs += 1;
        if !self.count_only {
            self.calls.push(HwCall::Sync(smmu));
        }
        if self.fail || self.fail_syncs {
            Err(HwError::Timeout)
        } else {
            Ok(())
        }
    }

    fn release(&mut self, smmu: SmmuId) -> Result<(), HwError> {
        self.calls.push(HwCall::Release(smmu));
        if self.fail {
            Err(HwError::Timeout)
        } else {
            Ok(())
        }
    }
}

/// Interrupts raised and MSIs written, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingIrq {
    pub raised: Vec<Irq>,
    pub msis: Vec<(Irq, Ipa, u32)>,
    /// Events sent to the guest's CPUs (SEV).
    pub sevs: u64,
}

impl IrqSink for RecordingIrq {
    fn raise(&mut self, irq: Irq) {
        self.raised.push(irq);
    }
    fn msi(&mut self, irq: Irq, address: Ipa, data: u32) {
        self.msis.push((irq, address, data));
    }
    fn sev(&mut self) {
        self.sevs += 1;
    }
}

/// Counts deferral requests; the test runs the deferred work itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountingDeferrer {
    pub requests: u64,
    pub pending: bool,
    pub last_after_ns: u64,
}

impl Deferrer for CountingDeferrer {
    fn schedule(&mut self, after_ns: u64) {
        self.requests += 1;
        self.pending = true;
        self.last_after_ns = after_ns;
    }
}

/// All the fakes together, lending [`Ports`] to each call.
#[derive(Clone, Debug)]
pub struct FakePlatform {
    pub ram: GuestRam,
    pub hw: RecordingSmmu,
    pub irq: RecordingIrq,
    pub defer: CountingDeferrer,
    pub now_ns: u64,
}

impl FakePlatform {
    pub fn new(ram_base: u64, ram_size: usize, smmus: u16) -> Self {
        FakePlatform {
            ram: GuestRam::new(ram_base, ram_size),
            hw: RecordingSmmu::qemu_virt(smmus),
            irq: RecordingIrq::default(),
            defer: CountingDeferrer::default(),
            now_ns: 0,
        }
    }

    pub fn ports(&mut self) -> Ports<'_> {
        Ports {
            mem: &mut self.ram,
            hw: &mut self.hw,
            irq: &mut self.irq,
            defer: &mut self.defer,
            now_ns: self.now_ns,
        }
    }
}
