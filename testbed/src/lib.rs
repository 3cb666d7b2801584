//! The testbed: a platform with physical RAM and the software SMMUv3 model,
//! the physical driver on it, and a small hypervisor whose domains each get
//! stage-2 tables, a vSMMU wired to the driver, and a Linux guest-driver model.
//! Devices DMA through the model; events go from the physical event queue
//! to the owning domain's guest.

use std::sync::{Arc, Mutex};

use smmuv3::platform::QEMU_VIRT;
use smmuv3::structs::*;
use smmuv3_hw::domain::DomainHw;
use smmuv3_hw::driver::{DriverLayout, SmmuDriver, Ticket};
use smmuv3_hw::embedded::EmbeddedSmmu;
use smmuv3_hw::model::{FaultKind, SmmuModel};
use smmuv3_hw::ops::SmmuOps;
use smmuv3_hw::s2pt::{FrameAlloc, S2PageTable, S2Perm};
use smmuv3_hw::transport::DmaMemory;
use vsmmu::testing::{
    CountingDeferrer, GuestLayout, GuestPlatform, Host, LinuxGuest, RecordingIrq,
};
use vsmmu::*;

pub mod properties;

pub use smmuv3_hw;
pub use vsmmu;

/// Physical memory map of the testbed: the driver's structures in the first
/// 16 MiB, then per domain 4 MiB of stage-2 tables and its guest RAM
/// ([`Machine::compact`] packs the same things into less).
pub const PA_BASE: u64 = 0x8_0000_0000;

/// Where the machine puts the driver's structures and each domain's
/// stage-2 tables (offsets from `PA_BASE`, sizes in bytes).
#[derive(Clone, Copy, Debug)]
struct MemoryMap {
    driver_area: u64,
    l2_pool: u64,
    l2_pool_size: u64,
    cmdq: u64,
    evtq: u64,
    table_area: u64,
}

impl MemoryMap {
    const STANDARD: MemoryMap = MemoryMap {
        driver_area: 0x100_0000,
        l2_pool: 0x10_0000,
        l2_pool_size: 0x30_0000,
        cmdq: 0x40_0000,
        evtq: 0x50_0000,
        table_area: 0x40_0000,
    };
    /// Room for four level-2 stream tables and 64 KiB of stage-2 tables
    /// per domain: enough for guests of a few MiB with a few devices.
    const COMPACT: MemoryMap = MemoryMap {
        driver_area: 0x4_0000,
        l2_pool: 0x1_0000,
        l2_pool_size: 0x1_0000,
        cmdq: 0x2_0000,
        evtq: 0x3_0000,
        table_area: 0x1_0000,
    };
}
/// Where each domain's guest RAM starts in IPA space, and its default size.
pub const GUEST_IPA: u64 = 0x4000_0000;
pub const GUEST_SIZE: u64 = 0x100_0000;
/// The one physical SMMU.
pub const SMMU: SmmuId = SmmuId(0);

pub type Driver = SmmuDriver<Arc<EmbeddedSmmu>, Arc<EmbeddedSmmu>>;

/// The machine: RAM, the model SMMU and the hypervisor's driver for it.
pub struct Machine {
    pub smmu: Arc<EmbeddedSmmu>,
    pub driver: Arc<Driver>,
    /// What the domains asked of the driver, in order.
    pub trace: Arc<HwTrace>,
    pub owners: PsidOwners,
    /// The policy new domains get.
    pub policy: Policy,
    next_domain: u32,
    guest_ipa: u64,
    guest_size: u64,
    max_domains: u32,
    map: MemoryMap,
    layout: DriverLayout,
}

impl Machine {
    /// Four domains of 16 MiB guest RAM each, at IPA `GUEST_IPA`.
    pub fn new() -> Self {
        Self::with_guest_ram(GUEST_IPA, GUEST_SIZE, 4)
    }

    /// Room for `domains` domains of `guest_size` bytes of guest RAM each,
    /// at IPA `guest_ipa` (2 MiB aligned) in every domain.
    pub fn with_guest_ram(guest_ipa: u64, guest_size: u64, domains: u32) -> Self {
        Self::build(guest_ipa, guest_size, domains, MemoryMap::STANDARD)
    }

    /// As [`Self::with_guest_ram`], with the driver's structures and the
    /// stage-2 tables packed (a few level-2 stream tables, 64 KiB of tables
    /// per domain): less memory to [`Self::reset`].
    pub fn compact(guest_ipa: u64, guest_size: u64, domains: u32) -> Self {
        Self::build(guest_ipa, guest_size, domains, MemoryMap::COMPACT)
    }

    fn build(guest_ipa: u64, guest_size: u64, domains: u32, map: MemoryMap) -> Self {
        let guest_size = guest_size.next_multiple_of(0x20_0000);
        let pa_size = map.driver_area + u64::from(domains) * (map.table_area + guest_size);
        let smmu = Arc::new(EmbeddedSmmu::new(QEMU_VIRT, PA_BASE, pa_size as usize));
        let layout = DriverLayout {
            strtab: PA_BASE,
            sid_bits: 16,
            two_level: true,
            l2_pool: PA_BASE + map.l2_pool,
            l2_pool_size: map.l2_pool_size,
            cmdq: PA_BASE + map.cmdq,
            cmdq_log2: 8,
            evtq: PA_BASE + map.evtq,
            evtq_log2: 10,
            irqs: true,
        };
        let driver =
            Arc::new(SmmuDriver::new(smmu.clone(), smmu.clone(), layout).expect("the model nests"));
        Machine {
            smmu,
            driver,
            trace: Arc::new(HwTrace::default()),
            owners: PsidOwners::new(),
            policy: Policy::default(),
            next_domain: 1,
            guest_ipa,
            guest_size,
            max_domains: domains,
            map,
            layout,
        }
    }

    /// The machine as built, without building it again: the model SMMU at
    /// reset, every byte of RAM zero, a new driver brought up on it, no
    /// domains, an empty trace (the policy stays). The domains built before
    /// must not be used any more. A fuzz target resets one machine per input
    /// instead of allocating and faulting in its RAM each time.
    pub fn reset(&mut self) {
        self.smmu.with(|model, ram| {
            *model = SmmuModel::new(QEMU_VIRT);
            ram.bytes.fill(0);
        });
        self.driver = Arc::new(
            SmmuDriver::new(self.smmu.clone(), self.smmu.clone(), self.layout)
                .expect("the model nests"),
        );
        self.trace = Arc::new(HwTrace::default());
        self.owners = PsidOwners::new();
        self.next_domain = 1;
    }

    /// A domain with VMID `vmid`, its guest RAM at a PA of its own, and the
    /// devices `(vsid, psid)`; the guest model is ready to boot.
    pub fn domain(
        &mut self,
        vmid: u16,
        devices: &[(u32, u32)],
        layout_tweak: impl FnOnce(&mut GuestLayout),
    ) -> Result<Guest, MapError> {
        let id = DomainId(self.next_domain);
        assert!(
            id.0 <= self.max_domains,
            "the machine was built for {} domains",
            self.max_domains
        );
        self.next_domain += 1;
        // Stage-2 tables, then guest RAM, in the domain's own slice.
        let map = self.map;
        let slice =
            PA_BASE + map.driver_area + u64::from(id.0 - 1) * (map.table_area + self.guest_size);
        let tables = FrameAlloc {
            next: slice,
            end: slice + map.table_area,
        };
        let guest_pa = slice + map.table_area;
        let mut s2 = S2PageTable::new(&*self.smmu, tables, 40).expect("table memory");
        s2.map(
            &*self.smmu,
            self.guest_ipa,
            guest_pa,
            self.guest_size,
            S2Perm::RW,
        )
        .expect("guest RAM maps");
        let mut map = StreamMap::new();
        for (vsid, psid) in devices {
            map.add_device(
                &mut self.owners,
                id,
                *vsid,
                PhysStream {
                    smmu: SMMU,
                    psid: *psid,
                },
            )?;
        }
        let traced: Arc<dyn SmmuOps> = Arc::new(Traced {
            inner: self.driver.clone(),
            trace: self.trace.clone(),
            domain: id,
        });
        let mut platform = DomainPlatform {
            smmu: self.smmu.clone(),
            view: GuestView {
                smmu: self.smmu.clone(),
                guest_pa,
                guest_ipa: self.guest_ipa,
                guest_size: self.guest_size,
            },
            hw: DomainHw::new(s2.config(vmid, 44), vec![(SMMU, traced)]),
            guest_pa,
            guest_ipa: self.guest_ipa,
            guest_size: self.guest_size,
            irq: RecordingIrq::default(),
            defer: CountingDeferrer::default(),
            now_ns: 0,
        };
        let mut cfg = VsmmuConfig::new(id, vmid, 40);
        cfg.msi = true;
        cfg.policy = self.policy;
        let vsmmu = Vsmmu::new(cfg, map, &mut platform.hw).expect("the domain's SMMU is known");
        let mut layout = GuestLayout::at(self.guest_ipa);
        layout.msi_poll = true;
        layout_tweak(&mut layout);
        Ok(Guest {
            linux: LinuxGuest::new(vsmmu, platform, layout),
            s2,
        })
    }

    /// A device with physical StreamID `psid` reads memory through the SMMU.
    pub fn dma_read(&self, psid: u32, iova: u64, len: usize) -> Result<Vec<u8>, FaultKind> {
        let mut buf = vec![0u8; len];
        self.smmu.dma_read(psid, None, iova, &mut buf)?;
        Ok(buf)
    }

    /// A device with physical StreamID `psid` writes memory through the SMMU.
    pub fn dma_write(&self, psid: u32, iova: u64, data: &[u8]) -> Result<(), FaultKind> {
        self.smmu.dma_write(psid, None, iova, data)
    }

    /// Drains the physical event queue and hands each event to the guest
    /// that owns its stream; returns what happened to each.
    pub fn route_events(&self, guests: &mut [&mut Guest]) -> Vec<EventOutcome> {
        let mut out = Vec::new();
        for e in self.driver.drain_events(1024) {
            let ev = PhysEvent {
                smmu: SMMU,
                event: e,
            };
            let mut outcome = EventOutcome::NotOurs;
            for g in guests.iter_mut() {
                let mut ports = g.linux.platform.ports();
                outcome = g.linux.vsmmu.deliver_event(&mut ports, ev);
                if outcome != EventOutcome::NotOurs {
                    break;
                }
            }
            out.push(outcome);
        }
        out
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

/// One thing a domain asked of the physical SMMU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwOp {
    Ste {
        domain: DomainId,
        psid: u32,
        ste: Ste,
    },
    Commands {
        domain: DomainId,
        cmds: Vec<smmuv3::cmd::Command>,
    },
    Sync {
        domain: DomainId,
    },
}

/// The physical operations of every domain, in order (while `enabled`).
#[derive(Debug)]
pub struct HwTrace {
    pub ops: Mutex<Vec<HwOp>>,
    pub enabled: std::sync::atomic::AtomicBool,
}

impl Default for HwTrace {
    fn default() -> Self {
        HwTrace {
            ops: Mutex::new(Vec::new()),
            enabled: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl HwTrace {
    /// Takes what was recorded so far.
    pub fn take(&self) -> Vec<HwOp> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Stops (or resumes) recording, e.g. for benchmarks.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn push(&self, op: HwOp) {
        if !self.enabled.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }
}

/// The driver as a domain sees it, with every request recorded.
struct Traced {
    inner: Arc<Driver>,
    trace: Arc<HwTrace>,
    domain: DomainId,
}

impl SmmuOps for Traced {
    fn ids(&self) -> smmuv3::IdRegisters {
        self.inner.ids()
    }
    fn write_ste(&self, sid: u32, ste: &Ste) -> Result<u32, smmuv3_hw::error::Error> {
        self.trace.push(HwOp::Ste {
            domain: self.domain,
            psid: sid,
            ste: *ste,
        });
        self.inner.write_ste(sid, ste)
    }
    fn write_stes(&self, updates: &[(u32, Ste)]) -> Result<u32, smmuv3_hw::error::Error> {
        for (sid, ste) in updates {
            self.trace.push(HwOp::Ste {
                domain: self.domain,
                psid: *sid,
                ste: *ste,
            });
        }
        self.inner.write_stes(updates)
    }
    fn submit(&self, cmds: &[smmuv3::cmd::Command]) -> Result<Ticket, smmuv3_hw::error::Error> {
        self.trace.push(HwOp::Commands {
            domain: self.domain,
            cmds: cmds.to_vec(),
        });
        self.inner.submit(cmds)
    }
    fn sync_since(&self, since: Ticket) -> Result<(), smmuv3_hw::error::Error> {
        self.trace.push(HwOp::Sync {
            domain: self.domain,
        });
        self.inner.sync_since(since)
    }
}

/// A domain's side of the machine, as its vSMMU and guest model see it.
pub struct DomainPlatform {
    pub smmu: Arc<EmbeddedSmmu>,
    view: GuestView,
    pub hw: DomainHw<'static>,
    /// PA of guest RAM (at IPA `guest_ipa`).
    pub guest_pa: u64,
    pub guest_ipa: u64,
    pub guest_size: u64,
    pub irq: RecordingIrq,
    pub defer: CountingDeferrer,
    pub now_ns: u64,
}

impl DomainPlatform {
    /// The PA behind a guest IPA, if it is guest RAM.
    pub fn pa(&self, ipa: u64, len: u64) -> Option<u64> {
        let off = ipa.checked_sub(self.guest_ipa)?;
        (off.checked_add(len)? <= self.guest_size).then_some(self.guest_pa + off)
    }
}

/// Guest memory: the domain's RAM window of physical memory.
struct GuestView {
    smmu: Arc<EmbeddedSmmu>,
    guest_pa: u64,
    guest_ipa: u64,
    guest_size: u64,
}

impl GuestView {
    fn pa(&self, ipa: Ipa, len: usize) -> Result<u64, MemFault> {
        let off = ipa.0.checked_sub(self.guest_ipa).ok_or(MemFault { ipa })?;
        match off.checked_add(len as u64) {
            Some(end) if end <= self.guest_size => Ok(self.guest_pa + off),
            _ => Err(MemFault { ipa }),
        }
    }
}

impl GuestMemory for GuestView {
    fn read(&mut self, ipa: Ipa, buf: &mut [u8]) -> Result<(), MemFault> {
        let pa = self.pa(ipa, buf.len())?;
        self.smmu.read(pa, buf).map_err(|_| MemFault { ipa })
    }
    fn write(&mut self, ipa: Ipa, data: &[u8]) -> Result<(), MemFault> {
        let pa = self.pa(ipa, data.len())?;
        self.smmu.write(pa, data).map_err(|_| MemFault { ipa })
    }
    fn is_backed(&self, ipa: Ipa, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|l| self.pa(ipa, l).is_ok())
    }
}

impl GuestPlatform for DomainPlatform {
    fn ports(&mut self) -> Ports<'_> {
        Ports {
            mem: &mut self.view,
            hw: &mut self.hw,
            irq: &mut self.irq,
            defer: &mut self.defer,
            now_ns: self.now_ns,
        }
    }
    fn guest_read_u64(&mut self, ipa: u64) -> u64 {
        self.pa(ipa, 8)
            .and_then(|pa| self.smmu.read_u64(pa).ok())
            .unwrap_or(0)
    }
    fn guest_write_u64(&mut self, ipa: u64, v: u64) {
        if let Some(pa) = self.pa(ipa, 8) {
            let _ = self.smmu.write_u64(pa, v);
        }
    }
    fn host(&mut self) -> Host<'_> {
        Host {
            now_ns: &mut self.now_ns,
            defer: &mut self.defer,
            irq: &self.irq,
        }
    }
}

/// A domain: its guest (vSMMU + Linux model) and its stage-2 tables.
pub struct Guest {
    /// The Linux guest-driver model, with the domain's vSMMU and platform.
    pub linux: LinuxGuest<DomainPlatform>,
    pub s2: S2PageTable,
}

impl Guest {
    /// The guest maps one 4K page `iova -> ipa` in its stage-1 tables rooted
    /// at `root` (allocating tables from `pool`, an IPA bump pointer).
    pub fn map_page(&mut self, root: u64, pool: &mut u64, iova: u64, ipa: u64, writable: bool) {
        // Not global: like Linux's io-pgtable, entries belong to the ASID.
        self.map_leaf(root, pool, iova, ipa, writable, true);
    }

    /// As [`Self::map_page`], with a global leaf (nG = 0): an entry every
    /// ASID matches, as an OS other than Linux may write.
    pub fn map_global_page(&mut self, root: u64, pool: &mut u64, iova: u64, ipa: u64) {
        self.map_leaf(root, pool, iova, ipa, true, false);
    }

    fn map_leaf(
        &mut self,
        root: u64,
        pool: &mut u64,
        iova: u64,
        ipa: u64,
        writable: bool,
        not_global: bool,
    ) {
        let mut table = root;
        for level in 0..3u64 {
            let at = table + 8 * ((iova >> (39 - 9 * level)) & 0x1ff);
            let d = TtTable([self.linux.platform.guest_read_u64(at)]);
            table = if d.valid() {
                d.nlta()
            } else {
                let t = *pool;
                *pool += 0x1000;
                for i in 0..512 {
                    self.linux.platform.guest_write_u64(t + 8 * i, 0);
                }
                self.linux.platform.guest_write_u64(
                    at,
                    TtTable::new()
                        .with_valid(true)
                        .with_type_(true)
                        .with_nlta(t)
                        .0[0],
                );
                t
            };
        }
        let ap = if writable {
            TtS1BlockPageAp::ALL_RW
        } else {
            TtS1BlockPageAp::ALL_RO
        };
        let leaf = TtS1BlockPage::new()
            .with_valid(true)
            .with_type_(true)
            .with_ap(ap)
            .with_sh(TtS1BlockPageSh::INNER_SHAREABLE)
            .with_af(true)
            .with_n_g(not_global)
            .with_oa(ipa);
        self.linux
            .platform
            .guest_write_u64(table + 8 * ((iova >> 12) & 0x1ff), leaf.0[0]);
    }

    /// The guest clears the leaf for `iova` (no TLBI: the caller decides).
    pub fn unmap_page(&mut self, root: u64, iova: u64) {
        let mut table = root;
        for level in 0..3u64 {
            let d = TtTable([self
                .linux
                .platform
                .guest_read_u64(table + 8 * ((iova >> (39 - 9 * level)) & 0x1ff))]);
            if !d.valid() {
                return;
            }
            table = d.nlta();
        }
        self.linux
            .platform
            .guest_write_u64(table + 8 * ((iova >> 12) & 0x1ff), 0);
    }

    /// Bytes of guest memory at an IPA.
    pub fn read_ipa(&self, ipa: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        if let Some(pa) = self.linux.platform.pa(ipa, len as u64) {
            let _ = self.linux.platform.smmu.read(pa, &mut buf);
        }
        buf
    }

    /// Writes guest memory at an IPA.
    pub fn write_ipa(&self, ipa: u64, data: &[u8]) {
        if let Some(pa) = self.linux.platform.pa(ipa, data.len() as u64) {
            let _ = self.linux.platform.smmu.write(pa, data);
        }
    }
}

/// One test per Linux driver generation for each scenario function named
/// (each takes a `vsmmu::testing::LinuxVersion`): `name::linux_6_1` and
/// `name::linux_6_12`.
#[macro_export]
macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn linux_6_1() {
                super::$name(vsmmu::testing::LinuxVersion::V6_1)
            }
            #[test]
            fn linux_6_12() {
                super::$name(vsmmu::testing::LinuxVersion::V6_12)
            }
        }
    )*};
}
