//! The vSMMU in the hypervisor: one `vsmmu::Vsmmu` for the guest, over
//! QEMU's SMMUv3 driven by `smmuv3-hw` through volatile MMIO, with the four
//! ports implemented here:
//! - `GuestMemory`: guest RAM by IPA (identity, minus the hypervisor's 2 MiB);
//! - `PhysicalSmmu`: `DomainHw`, whose stage 2 is the CPU's own tables;
//! - `IrqSink`: the SPI the guest's DT names, made pending in the GIC
//!   distributor (the guest owns the GIC; the physical SMMU's own interrupt
//!   outputs stay disabled);
//! - `Deferrer`: the vCPU that caused the work is held at EL2 until the
//!   continuation ran (see `hold_until_done`).
//!
//! Locking: one spin lock around the domain, held for one entry-point call
//! (the runtime's concurrency contract); never held while waiting for a
//! deferral's due time.

use alloc::sync::Arc;
use alloc::vec;

use aarch64_cpu::registers::*;
use smmuv3::structs::{SteS2ps, SteS2tg};
use smmuv3::Register;
use smmuv3_hw::domain::DomainHw;
use smmuv3_hw::driver::{DriverLayout, SmmuDriver};
use smmuv3_hw::ops::SmmuOps;
use smmuv3_hw::ste::S2Config;
use smmuv3_hw::transport::{DmaFault, DmaMemory, MmioRegisters};
use vsmmu::{
    Deferrer, DomainId, GuestMemory, Ipa, Irq, IrqSink, MemFault, PhysEvent, Ports, PsidOwners,
    SmmuId, StreamMap, Vsmmu, VsmmuConfig,
};

use crate::counters::*;
use crate::layout;
use crate::mmio::MmioHandler;

const SMMU: SmmuId = SmmuId(0);
const DOMAIN: DomainId = DomainId(1);
/// PCIe RIDs of bus 0 are the physical StreamIDs (QEMU's iommu-map); the
/// guest sees them offset (its DT's iommu-map is rewritten to match).
pub const VSID_OFFSET: u32 = 0x100;
pub const RID_COUNT: u32 = 0x100;
const EVENTS_PER_DRAIN: usize = 64;

// ---- physical SMMU memory -------------------------------------------------

/// The physical stream table (256 linear STEs) and queues, in hypervisor
/// memory, which stage 2 hides from the guest.
const STRTAB_OFF: u64 = 0;
const CMDQ_OFF: u64 = 0x4000;
const CMDQ_LOG2: u32 = 8;
const EVTQ_OFF: u64 = 0x5000;
const EVTQ_LOG2: u32 = 7;
const DMA_SIZE: usize = 0x8000;

#[repr(C, align(0x8000))]
struct DmaArea([u8; DMA_SIZE]);
static mut DMA_AREA: DmaArea = DmaArea([0; DMA_SIZE]);

/// The SMMU's tables: identity-mapped hypervisor memory, bounds-checked.
pub struct HypDma {
    base: u64,
}

impl HypDma {
    fn span(&self, pa: u64, len: usize) -> Result<*mut u8, DmaFault> {
        let off = pa.checked_sub(self.base).ok_or(DmaFault { pa })?;
        let end = off.checked_add(len as u64).ok_or(DmaFault { pa })?;
        if end > DMA_SIZE as u64 {
            return Err(DmaFault { pa });
        }
        Ok(pa as *mut u8)
    }
}

impl DmaMemory for HypDma {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let p = self.span(pa, buf.len())?;
        // SAFETY: inside DMA_AREA (checked); the SMMU writes it concurrently
        // only in the event queue, which the driver reads after PROD.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaFault> {
        let p = self.span(pa, data.len())?;
        // SAFETY: inside DMA_AREA (checked).
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }
}

// ---- guest memory -----------------------------------------------------------

/// Guest RAM by IPA: stage 2 is an identity map of RAM below the hypervisor.
pub struct GuestRam;

fn guest_span(ipa: Ipa, len: usize) -> Result<*mut u8, MemFault> {
    let end = ipa.0.checked_add(len as u64).ok_or(MemFault { ipa })?;
    if ipa.0 < layout::RAM_BASE || end > layout::HYP_BASE {
        return Err(MemFault { ipa });
    }
    Ok(ipa.0 as *mut u8)
}

impl GuestMemory for GuestRam {
    fn read(&mut self, ipa: Ipa, buf: &mut [u8]) -> Result<(), MemFault> {
        let p = guest_span(ipa, buf.len())?;
        // SAFETY: guest RAM, mapped Normal at EL2; the guest may change it
        // concurrently, which the runtime treats as untrusted input anyway.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn write(&mut self, ipa: Ipa, data: &[u8]) -> Result<(), MemFault> {
        let p = guest_span(ipa, data.len())?;
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }
    fn is_backed(&self, ipa: Ipa, len: u64) -> bool {
        ipa.0 >= layout::RAM_BASE
            && ipa
                .0
                .checked_add(len)
                .is_some_and(|e| e <= layout::HYP_BASE)
    }
}

// ---- interrupts -------------------------------------------------------------

/// The vSMMU's SPIs (GIC INTIDs), from the guest's DT node.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spis {
    pub eventq: Option<u32>,
    pub priq: Option<u32>,
    pub cmdq_sync: Option<u32>,
    pub gerror: Option<u32>,
}

/// GICv3 distributor: GICD_ISPENDR<n> sets SPI n's pending bit (write 1).
const GICD_BASE: u64 = 0x0800_0000;
const GICD_ISPENDR: u64 = 0x200;

pub struct GicIrqs {
    spis: Spis,
}

impl IrqSink for GicIrqs {
    fn raise(&mut self, irq: Irq) {
        let intid = match irq {
            Irq::Eventq => self.spis.eventq,
            Irq::Priq => self.spis.priq,
            Irq::CmdSync => self.spis.cmdq_sync,
            Irq::Gerror => self.spis.gerror,
        };
        let Some(intid) = intid.filter(|i| (32..1020).contains(i)) else {
            return;
        };
        VIRQS.inc();
        let reg = GICD_BASE + GICD_ISPENDR + 4 * u64::from(intid / 32);
        // SAFETY: the GIC distributor is mapped as Device memory at EL2;
        // ISPENDR is write-1-to-set, so other SPIs are untouched.
        unsafe { core::ptr::write_volatile(reg as *mut u32, 1 << (intid % 32)) };
    }

    fn msi(&mut self, _irq: Irq, _address: Ipa, _data: u32) {
        // The guest's DT gives the vSMMU no msi-parent, so Linux configures
        // no MSIs (MSI-poll writes to RAM are done by the runtime itself).
        MSI_DROPPED.inc();
    }
}

// ---- deferral ---------------------------------------------------------------

/// When the runtime wants `run_deferred` (ns, monotonic).
#[derive(Default)]
pub struct Defer {
    due: Option<u64>,
}

impl Deferrer for Defer {
    fn schedule(&mut self, after_ns: u64) {
        let at = now_ns().saturating_add(after_ns);
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }
}

pub fn now_ns() -> u64 {
    let freq = u128::from(CNTFRQ_EL0.get()).max(1);
    (u128::from(CNTPCT_EL0.get()) * 1_000_000_000 / freq) as u64
}

// ---- the domain ---------------------------------------------------------------

type Driver = SmmuDriver<MmioRegisters, HypDma>;

struct Domain {
    vsmmu: Vsmmu,
    hw: DomainHw<'static>,
    driver: Arc<Driver>,
    irqs: GicIrqs,
}

/// The policy's bound on guest commands per call, for the report (hyp/run
/// checks `max_guest_cmds_per_trap` against it).
static COMMANDS_PER_CALL: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

static DOMAIN_LOCK: spin::Mutex<Option<Domain>> = spin::Mutex::new(None);

/// Printed (with Debug) in the boot log.
#[derive(Debug)]
#[allow(dead_code)]
pub enum SetupError {
    Probe(smmuv3_hw::driver::ProbeError),
    Map(vsmmu::MapError),
    Vsmmu(vsmmu::SetupError),
}

fn smmu_regs() -> MmioRegisters {
    // SAFETY: the SMMU frame is identity-mapped as Device memory at EL2 for
    // the hypervisor's lifetime, and stage 2 hides it from the guest.
    unsafe { MmioRegisters::new(layout::SMMU_BASE as *mut u8) }
}

/// Brings up the physical SMMU and the guest's vSMMU over it.
/// `small_policy`: 1 guest command and 4 STEs per call (the rest of the
/// policy default). Linux publishes one or two commands per CMDQ_PROD write
/// (a TLBI and its CMD_SYNC), so with one per call most of its batches are
/// continued by deferred work.
pub fn setup(s2_root: u64, vmid: u16, spis: Spis, small_policy: bool) -> Result<(), SetupError> {
    let dma_base = core::ptr::addr_of!(DMA_AREA) as u64;
    let layout = DriverLayout {
        strtab: dma_base + STRTAB_OFF,
        sid_bits: 8,
        two_level: false,
        l2_pool: 0,
        l2_pool_size: 0,
        cmdq: dma_base + CMDQ_OFF,
        cmdq_log2: CMDQ_LOG2,
        evtq: dma_base + EVTQ_OFF,
        evtq_log2: EVTQ_LOG2,
        // The guest owns the SPIs of QEMU's SMMU node; events are drained
        // on traps and WFI instead.
        irqs: false,
    };
    let driver = Arc::new(
        SmmuDriver::new(smmu_regs(), HypDma { base: dma_base }, layout)
            .map_err(SetupError::Probe)?,
    );
    let s2 = S2Config {
        vmid,
        t0sz: 24,
        sl0: 2, // level 0 start, as VTCR_EL2.SL0: no concatenated tables
        tg: SteS2tg::GRANULE_4KB,
        ps: SteS2ps::PS_40_BIT,
        ttb: s2_root,
    };
    let ops: Arc<dyn SmmuOps> = driver.clone();
    let mut hw = DomainHw::new(s2, vec![(SMMU, ops)]);
    let mut owners = PsidOwners::new();
    let mut streams = StreamMap::new();
    streams
        .add_range(&mut owners, DOMAIN, VSID_OFFSET, SMMU, 0, RID_COUNT)
        .map_err(SetupError::Map)?;
    let mut cfg = VsmmuConfig::new(DOMAIN, vmid, 40);
    if small_policy {
        cfg.policy.commands_per_call = 1;
        cfg.policy.stes_per_call = 4;
    }
    COMMANDS_PER_CALL.store(
        cfg.policy.commands_per_call,
        core::sync::atomic::Ordering::Relaxed,
    );
    let vsmmu = Vsmmu::new(cfg, streams, &mut hw).map_err(SetupError::Vsmmu)?;
    *DOMAIN_LOCK.lock() = Some(Domain {
        vsmmu,
        hw,
        driver,
        irqs: GicIrqs { spis },
    });
    Ok(())
}

/// Runs `f` on the domain with fresh ports, then routes physical events;
/// returns when deferred work is due, if any was asked for.
fn call<T>(f: impl FnOnce(&mut Vsmmu, &mut Ports<'_>) -> T) -> Option<(T, Option<u64>)> {
    call_counted(f).map(|(out, due, _)| (out, due))
}

/// `call`, also returning how many physical events it routed.
fn call_counted<T>(
    f: impl FnOnce(&mut Vsmmu, &mut Ports<'_>) -> T,
) -> Option<(T, Option<u64>, u64)> {
    let mut guard = DOMAIN_LOCK.lock();
    let d = guard.as_mut()?;
    // One entry-point call and its event routing, lock held: the work the
    // policy bounds (a trap's ticks also count holding the vCPU).
    let start = CNTPCT_EL0.get();
    let mut defer = Defer::default();
    let mut mem = GuestRam;
    let mut ports = Ports {
        mem: &mut mem,
        hw: &mut d.hw,
        irq: &mut d.irqs,
        defer: &mut defer,
        now_ns: now_ns(),
    };
    let out = f(&mut d.vsmmu, &mut ports);
    let mut drained = 0;
    for event in d.driver.drain_events(EVENTS_PER_DRAIN) {
        EVENTS_DRAINED.inc();
        drained += 1;
        d.vsmmu
            .deliver_event(&mut ports, PhysEvent { smmu: SMMU, event });
    }
    MAX_GUEST_CMDS_PER_TRAP.max(u64::from(d.vsmmu.last_call_commands()));
    MAX_CALL_TICKS.max(CNTPCT_EL0.get().wrapping_sub(start));
    Some((out, defer.due, drained))
}

/// Holds this vCPU at EL2 until the continuation has nothing left to do: the
/// guest waits for what it published (CMD_SYNC, CR0ACK) as it would on a
/// slow SMMU, and other vCPUs run on. The lock is free while waiting.
fn hold_until_done(mut due: Option<u64>) {
    while let Some(at) = due {
        while now_ns() < at {
            core::hint::spin_loop();
        }
        DEFERRED_RUNS.inc();
        due = call(|v, p| v.run_deferred(p)).and_then(|(_, d)| d);
    }
}

/// Called when a vCPU idles (WFI): physical events reach the guest, and any
/// continuation runs. This is what delivers a device's fault: Linux reads
/// the vSMMU's EVENTQ_PROD only in its event interrupt handler, which runs
/// once the vSMMU raised the SPI, so a drain on vSMMU accesses alone would
/// wait for unrelated commands. A guest that waits for anything idles.
pub fn idle() {
    if let Some(((), due, drained)) = call_counted(|_, _| ()) {
        EVENTS_AT_IDLE.add(drained);
        hold_until_done(due);
    }
}

/// The 128 KiB frame the guest sees, served by the vSMMU.
pub struct VsmmuFrame;

/// The register a trapped access is to, if it is one.
fn register_at(offset: u32, size: u32) -> Option<Register> {
    let (page, offset) = smmuv3::split_frame_offset(offset);
    match smmuv3::mmio::decode_access(page, offset, size) {
        smmuv3::Access::Register { reg, .. } => Some(reg),
        smmuv3::Access::RazWi => None,
    }
}

impl MmioHandler for VsmmuFrame {
    fn read(&self, offset: u32, size: u32) -> u64 {
        if let Some(reg) = register_at(offset, size) {
            SMMU_READS_BY_REG.inc(reg);
        }
        let r = call(|v, p| v.mmio_read(p, offset, size));
        let (value, due) = r.unwrap_or((0, None));
        hold_until_done(due);
        value
    }

    fn write(&self, offset: u32, size: u32, value: u64) {
        if let Some(reg) = register_at(offset, size) {
            SMMU_WRITES_BY_REG.inc(reg);
        }
        let due = call(|v, p| v.mmio_write(p, offset, size, value)).and_then(|(_, d)| d);
        hold_until_done(due);
    }
}

/// The runtime's and the driver's counters, for the report, as
/// `counter GROUP.NAME VALUE` lines.
pub fn print_stats() {
    let guard = DOMAIN_LOCK.lock();
    let Some(d) = guard.as_ref() else { return };
    let st = d.vsmmu.stats();
    for (op, &n) in st.commands.iter().enumerate() {
        if n != 0 {
            crate::println!("counter guest_commands.{} {n}", command_name(op as u8));
        }
    }
    let ds = d.driver.stats();
    for (name, n) in [
        ("guest_commands.cerror_ill", st.cerror_ill),
        ("guest_commands.cerror_abt", st.cerror_abt),
        ("guest_commands.merged", st.merged),
        ("physical.commands", st.hw_commands),
        ("physical.syncs", st.hw_syncs),
        ("physical.ste_installs", st.hw_installs),
        ("physical.install_commands", st.hw_install_commands),
        ("physical.driver_commands", ds.commands),
        ("physical.driver_syncs", ds.syncs),
        ("physical.driver_illegal", ds.illegal),
        ("physical.event_overflows", ds.event_overflows),
        ("physical.errors", st.hw_errors),
        ("physical.containments", st.containments),
        ("events.forwarded", st.events_forwarded),
        ("events.dropped", st.events_dropped),
        ("events.kept", st.stage2_faults),
        ("deferral.requests", st.deferrals),
        ("deferral.command_budget_exhausted", st.budget_exhausted),
        ("deferral.hw_budget_exhausted", st.hw_budget_exhausted),
        ("guest_stes.refused", st.bad_stes),
        (
            "policy.commands_per_call",
            u64::from(COMMANDS_PER_CALL.load(core::sync::atomic::Ordering::Relaxed)),
        ),
    ] {
        crate::println!("counter {name} {n}");
    }
}

/// One `snapshot LABEL name=value ...` line: the counters whose differences
/// give traps and commands per guest operation (hyp/run computes them).
pub fn print_snapshot(label: u64) {
    use smmuv3::cmd::{CmdSync, CmdTlbiNhAsid, CmdTlbiNhVa};
    let guard = DOMAIN_LOCK.lock();
    let Some(d) = guard.as_ref() else { return };
    let st = d.vsmmu.stats();
    let by_op = |op: u8| st.commands.get(usize::from(op)).copied().unwrap_or(0);
    let guest: u64 = st.commands.iter().sum();
    crate::println!(
        "snapshot {label} traps={} wfi={} smmu_reads={} smmu_writes={} guest_commands={guest} \
         tlbi_nh_va={} tlbi_nh_asid={} cmd_sync={} physical_commands={} physical_syncs={} \
         deferred_runs={}",
        TRAPS.get(),
        WFI.get(),
        SMMU_READS.get(),
        SMMU_WRITES.get(),
        by_op(CmdTlbiNhVa::OPCODE),
        by_op(CmdTlbiNhAsid::OPCODE),
        by_op(CmdSync::OPCODE),
        st.hw_commands,
        st.hw_syncs,
        DEFERRED_RUNS.get(),
    );
}

/// A guest command's architectural name, from the generated command types
/// (an opcode with no command type prints as `opcode_0xNN`).
fn command_name(op: u8) -> alloc::string::String {
    use alloc::string::ToString;
    match smmuv3::cmd::Command::decode([u64::from(op), 0]) {
        // Display starts with the name, then ` FIELD=value` for set fields.
        Ok(cmd) => {
            let text = alloc::format!("{cmd}");
            text.split(' ').next().unwrap_or("").to_string()
        }
        Err(_) => alloc::format!("opcode_{op:#04x}"),
    }
}
