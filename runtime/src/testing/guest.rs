//! A guest-driver model: what the Linux `arm-smmu-v3` driver does to an
//! SMMUv3 (bring-up in `arm_smmu_device_reset` order, stream table and CD
//! setup on attach, batched commands each closed by a CMD_SYNC), performed
//! through MMIO and guest memory only, exactly as a guest would.
//!
//! It plays the hypervisor's part too: it runs deferred work when the vSMMU
//! asks for it while the guest polls.

use alloc::vec::Vec;

use smmuv3::cmd::*;
use smmuv3::evt::Event;
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::Register;

use super::FakePlatform;
use crate::device::Vsmmu;
use crate::ports::Ipa;
use crate::ports::Ports;

/// Where the guest puts its structures, and how it talks to the SMMU.
#[derive(Clone, Copy, Debug)]
pub struct GuestLayout {
    pub strtab: u64,
    /// Two-level stream table (Linux does this when SIDSIZE > 8).
    pub two_level: bool,
    /// L2 tables, 256 STEs (16 KiB) each, allocated from here.
    pub l2_pool: u64,
    pub cmdq: u64,
    pub cmdq_log2: u32,
    pub evtq: u64,
    pub evtq_log2: u32,
    /// CD tables, 64 bytes per CD, one page per stream.
    pub cds: u64,
    /// Complete CMD_SYNC by MSI-poll (needs IDR0.MSI) instead of polling CONS.
    pub msi_poll: bool,
}

impl GuestLayout {
    /// A layout in RAM at `base` (16 MiB are enough).
    pub fn at(base: u64) -> Self {
        GuestLayout {
            strtab: base,
            two_level: false,
            l2_pool: base + 0x8_0000,
            cmdq: base + 0x10_0000,
            cmdq_log2: 8,
            evtq: base + 0x20_0000,
            evtq_log2: 7,
            cds: base + 0x30_0000,
            msi_poll: false,
        }
    }
}

/// Why the guest gave up, as Linux would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestError {
    /// An ACK register never matched (Linux: "failed to ... ack").
    AckTimeout(Register),
    /// CMD_SYNC did not complete within the polling budget.
    SyncTimeout,
    /// The queue stopped on a command error (CONS.ERR).
    CommandError(u8),
}

/// What the guest model needs of the platform it runs on: the ports for a
/// call into the vSMMU, its own memory by IPA, and the hypervisor's deferred
/// work queue.
pub trait GuestPlatform {
    fn ports(&mut self) -> Ports<'_>;
    /// A doubleword of guest memory (zero where there is none).
    fn guest_read_u64(&mut self, ipa: u64) -> u64;
    /// Writes a doubleword of guest memory (ignored where there is none).
    fn guest_write_u64(&mut self, ipa: u64, v: u64);
    /// Takes a pending deferred-work request and lets the time it asked for pass.
    fn take_deferral(&mut self) -> bool;
}

impl GuestPlatform for FakePlatform {
    fn ports(&mut self) -> Ports<'_> {
        FakePlatform::ports(self)
    }
    fn guest_read_u64(&mut self, ipa: u64) -> u64 {
        self.ram.read_u64(ipa)
    }
    fn guest_write_u64(&mut self, ipa: u64, v: u64) {
        self.ram.write_u64(ipa, v)
    }
    fn take_deferral(&mut self) -> bool {
        if !self.defer.pending {
            return false;
        }
        self.defer.pending = false;
        self.now_ns = self
            .now_ns
            .saturating_add(self.defer.last_after_ns.max(1_000));
        true
    }
}

/// The guest's driver state plus the platform it runs on.
pub struct LinuxGuest<P: GuestPlatform = FakePlatform> {
    pub v: Vsmmu,
    pub p: P,
    pub layout: GuestLayout,
    /// The guest's copy of CMDQ_PROD.
    pub prod: u32,
    /// The guest's copy of EVENTQ_CONS.
    pub evt_cons: u32,
    /// Polls before a wait is a timeout (Linux: 1 s of polling).
    pub poll_limit: u32,
    next_l2: u64,
}

/// The 128 KiB-frame offset of a register.
pub fn offset(reg: Register) -> u32 {
    reg.info().frame_offset()
}

impl<P: GuestPlatform> LinuxGuest<P> {
    pub fn new(v: Vsmmu, p: P, layout: GuestLayout) -> Self {
        let next_l2 = layout.l2_pool;
        LinuxGuest {
            v,
            p,
            layout,
            prod: 0,
            evt_cons: 0,
            poll_limit: 10_000,
            next_l2,
        }
    }

    pub fn read(&mut self, reg: Register) -> u64 {
        let size = if reg.info().width == 64 { 8 } else { 4 };
        let mut ports = self.p.ports();
        self.v.mmio_read(&mut ports, offset(reg), size)
    }

    pub fn write(&mut self, reg: Register, value: u64) {
        let size = if reg.info().width == 64 { 8 } else { 4 };
        let mut ports = self.p.ports();
        self.v.mmio_write(&mut ports, offset(reg), size, value);
    }

    /// Raw access at any offset and size (for hostile guests).
    pub fn write_raw(&mut self, off: u32, size: u32, value: u64) {
        let mut ports = self.p.ports();
        self.v.mmio_write(&mut ports, off, size, value);
    }

    pub fn read_raw(&mut self, off: u32, size: u32) -> u64 {
        let mut ports = self.p.ports();
        self.v.mmio_read(&mut ports, off, size)
    }

    /// What a hypervisor does between guest polls: run deferred work if asked.
    pub fn run_deferred(&mut self) {
        if self.p.take_deferral() {
            let mut ports = self.p.ports();
            self.v.run_deferred(&mut ports);
        }
    }

    /// Writes a register and polls its ACK register until it matches.
    fn write_acked(&mut self, reg: Register, ack: Register, value: u64) -> Result<(), GuestError> {
        self.write(reg, value);
        for _ in 0..self.poll_limit {
            if self.read(ack) == value {
                return Ok(());
            }
            self.run_deferred();
        }
        Err(GuestError::AckTimeout(ack))
    }

    /// `arm_smmu_device_reset`, step by step.
    pub fn bring_up(&mut self) -> Result<(), GuestError> {
        let l = self.layout;
        // 1. An SMMU left enabled: abort incoming traffic while we reset it.
        if Cr0(self.read(Register::CR0ACK) as u32).smmuen() {
            self.write(
                Register::GBPA,
                u64::from(Gbpa(0).with_update(true).with_abort(true).0),
            );
            for _ in 0..self.poll_limit {
                if !Gbpa(self.read(Register::GBPA) as u32).update() {
                    break;
                }
            }
        }
        // 2. Everything off.
        self.write_acked(Register::CR0, Register::CR0ACK, 0)?;
        // 3. Table and queue attributes: inner-shareable write-back.
        let wb = 1;
        let cr1 = Cr1(0)
            .with_table_sh(Cr1TableSh(3))
            .with_table_oc(Cr1TableOc(wb))
            .with_table_ic(Cr1TableIc(wb))
            .with_queue_sh(Cr1QueueSh(3))
            .with_queue_oc(Cr1QueueOc(wb))
            .with_queue_ic(Cr1QueueIc(wb));
        self.write(Register::CR1, u64::from(cr1.0));
        // 4. CR2: PTM and RECINVSID.
        self.write(
            Register::CR2,
            u64::from(Cr2(0).with_ptm(true).with_recinvsid(true).0),
        );
        // 5. Stream table.
        let sidsize = u32::from(Idr1(self.read(Register::IDR1) as u32).sidsize());
        let cfg = if l.two_level {
            StrtabBaseCfg(0)
                .with_fmt(StrtabBaseCfgFmt::TWO_LEVEL)
                .with_split(StrtabBaseCfgSplit(8))
                .with_log2size(sidsize as u8)
        } else {
            StrtabBaseCfg(0)
                .with_fmt(StrtabBaseCfgFmt::LINEAR)
                .with_log2size(sidsize as u8)
        };
        self.init_stream_table(sidsize);
        self.write(
            Register::STRTAB_BASE,
            StrtabBase(0).with_ra(true).with_addr(l.strtab).0,
        );
        self.write(Register::STRTAB_BASE_CFG, u64::from(cfg.0));
        // 6. Command queue.
        self.write(
            Register::CMDQ_BASE,
            CmdqBase(0)
                .with_ra(true)
                .with_addr(l.cmdq)
                .with_log2size(l.cmdq_log2 as u8)
                .0,
        );
        self.write(Register::CMDQ_PROD, 0);
        self.write(Register::CMDQ_CONS, 0);
        self.prod = 0;
        // 7. Enable the command queue.
        let mut cr0 = Cr0(0).with_cmdqen(true);
        self.write_acked(Register::CR0, Register::CR0ACK, u64::from(cr0.0))?;
        // 8. Invalidate cached configuration and TLBs.
        self.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])?;
        self.issue(&[Command::TlbiNsnhAll(CmdTlbiNsnhAll::new())])?;
        // 9. Event queue.
        self.write(
            Register::EVENTQ_BASE,
            EventqBase(0)
                .with_wa(true)
                .with_addr(l.evtq)
                .with_log2size(l.evtq_log2 as u8)
                .0,
        );
        self.write(Register::EVENTQ_PROD, 0);
        self.write(Register::EVENTQ_CONS, 0);
        self.evt_cons = 0;
        cr0 = cr0.with_eventqen(true);
        self.write_acked(Register::CR0, Register::CR0ACK, u64::from(cr0.0))?;
        // 12. Interrupts: off, MSI configuration, then event queue and GERROR on.
        self.write_acked(Register::IRQ_CTRL, Register::IRQ_CTRLACK, 0)?;
        if Idr0(self.read(Register::IDR0) as u32).msi() {
            self.write(Register::GERROR_IRQ_CFG0, 0);
            self.write(Register::EVENTQ_IRQ_CFG0, 0);
        }
        let irq = IrqCtrl(0).with_eventq_irqen(true).with_gerror_irqen(true);
        self.write_acked(Register::IRQ_CTRL, Register::IRQ_CTRLACK, u64::from(irq.0))?;
        // 14. Enable translation.
        cr0 = cr0.with_smmuen(true);
        self.write_acked(Register::CR0, Register::CR0ACK, u64::from(cr0.0))
    }

    /// Every STE aborting (V=1, Config=ABORT), as Linux initialises them; a
    /// two-level table starts with every L1 descriptor invalid.
    fn init_stream_table(&mut self, sidsize: u32) {
        let l = self.layout;
        let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
        if l.two_level {
            let l1_entries = 1u64 << sidsize.saturating_sub(8);
            for i in 0..l1_entries {
                self.p.guest_write_u64(l.strtab + 8 * i, 0);
            }
        } else {
            for sid in 0..(1u64 << sidsize) {
                self.write_words(l.strtab + 64 * sid, &abort.0);
            }
        }
    }

    /// Where the STE of `sid` lives, allocating its L2 table (256 STEs,
    /// Span=9) the way Linux does on first use.
    pub fn ste_addr(&mut self, sid: u32) -> u64 {
        let l = self.layout;
        if !l.two_level {
            return l.strtab + 64 * u64::from(sid);
        }
        let l1_addr = l.strtab + 8 * u64::from(sid >> 8);
        let mut l1 = L1std([self.p.guest_read_u64(l1_addr)]);
        if l1.span() == 0 {
            let l2 = self.next_l2;
            self.next_l2 += 256 * 64;
            let abort = Ste::new().with_v(true).with_config(SteConfig::ABORT);
            for i in 0..256 {
                self.write_words(l2 + 64 * i, &abort.0);
            }
            l1 = L1std::new().with_span(9).with_l2_ptr(l2);
            self.p.guest_write_u64(l1_addr, l1.0[0]);
        }
        l1.l2_ptr() + 64 * u64::from(sid & 0xff)
    }

    /// Writes commands into the queue, then a CMD_SYNC, publishes PROD and
    /// waits for the SYNC to complete (by MSI-poll or by polling CONS).
    pub fn issue(&mut self, cmds: &[Command]) -> Result<(), GuestError> {
        let l = self.layout;
        let size = 1u32 << l.cmdq_log2;
        let mask = (size << 1) - 1;
        for c in cmds {
            self.push_cmd(c.encode(), size, mask)?;
        }
        let slot = l.cmdq + 16 * u64::from(self.prod & (size - 1));
        let sync = if l.msi_poll {
            CmdSync::new()
                .with_cs(CmdSyncCs::SIG_IRQ)
                .with_msi_address(slot)
                .with_msi_data(0)
        } else {
            CmdSync::new().with_cs(CmdSyncCs::SIG_SEV)
        };
        let sync_ptr = self.prod;
        self.push_cmd(sync.encode(), size, mask)?;
        self.write(Register::CMDQ_PROD, u64::from(self.prod));
        for _ in 0..self.poll_limit {
            let cons = CmdqCons(self.read(Register::CMDQ_CONS) as u32);
            if cons.err() != CmdqConsErr::CERROR_NONE && self.gerror_pending() {
                return Err(GuestError::CommandError(cons.err().0));
            }
            let done = if l.msi_poll {
                self.p.guest_read_u64(slot) as u32 == 0
            } else {
                passed(cons.rd(), sync_ptr, l.cmdq_log2)
            };
            if done {
                return Ok(());
            }
            self.run_deferred();
        }
        Err(GuestError::SyncTimeout)
    }

    fn gerror_pending(&mut self) -> bool {
        let g = self.read(Register::GERROR) ^ self.read(Register::GERRORN);
        Gerror(g as u32).cmdq_err()
    }

    /// Writes one command at PROD, waiting for space as Linux does.
    fn push_cmd(&mut self, words: [u64; 2], size: u32, mask: u32) -> Result<(), GuestError> {
        for _ in 0..self.poll_limit {
            let cons = CmdqCons(self.read(Register::CMDQ_CONS) as u32).rd();
            let full = (self.prod & (size - 1)) == (cons & (size - 1))
                && (self.prod & size) != (cons & size);
            if !full {
                let at = self.layout.cmdq + 16 * u64::from(self.prod & (size - 1));
                self.write_words(at, &words);
                self.prod = (self.prod + 1) & mask;
                return Ok(());
            }
            // Publish what we have so the SMMU makes room.
            self.write(Register::CMDQ_PROD, u64::from(self.prod));
            self.run_deferred();
        }
        Err(GuestError::SyncTimeout)
    }

    /// Writes the stream's CD table (one CD at SSID 0) and a stage-1 STE
    /// pointing at it, then CFGI_STE + SYNC: `arm_smmu_attach_dev`.
    pub fn attach(&mut self, sid: u32, asid: u16, ttb0: u64) -> Result<(), GuestError> {
        let cd_table = self.cd_table(sid);
        self.write_cd(sid, asid, ttb0);
        let ste = Ste::new()
            .with_v(true)
            .with_config(SteConfig::S1_TRANS)
            .with_s1_fmt(SteS1Fmt::LINEAR)
            .with_s1_context_ptr(cd_table)
            .with_s1dss(SteS1dss::SUBSTREAM0)
            .with_s1cir(SteS1cir::WB_RA)
            .with_s1cor(SteS1cor::WB_RA)
            .with_s1csh(SteS1csh::INNER_SHAREABLE);
        self.write_ste(sid, ste)
    }

    /// The IPA of a stream's CD table.
    pub fn cd_table(&self, sid: u32) -> u64 {
        self.layout.cds + 0x1000 * u64::from(sid & 0xff)
    }

    /// Writes the stream's CD at SSID 0 (see [`linux_cd`]).
    pub fn write_cd(&mut self, sid: u32, asid: u16, ttb0: u64) {
        let cd = linux_cd(asid, ttb0);
        let at = self.cd_table(sid);
        self.write_words(at, &cd.0);
    }

    /// Writes an STE and invalidates it.
    pub fn write_ste(&mut self, sid: u32, ste: Ste) -> Result<(), GuestError> {
        let at = self.ste_addr(sid);
        self.write_words(at, &ste.0);
        self.issue(&[Command::CfgiSte(
            CmdCfgiSte::new().with_stream_id(sid).with_leaf(true),
        )])
    }

    /// `arm_smmu_tlb_inv_range` without RIL: one TLBI_NH_VA per page.
    pub fn unmap(&mut self, asid: u16, iova: u64, pages: u64) -> Result<(), GuestError> {
        let cmds: Vec<Command> = (0..pages)
            .map(|i| {
                Command::TlbiNhVa(
                    CmdTlbiNhVa::new()
                        .with_asid(asid)
                        .with_addr(iova.wrapping_add(i << 12))
                        .with_leaf(true),
                )
            })
            .collect();
        for chunk in cmds.chunks(63) {
            self.issue(chunk)?;
        }
        Ok(())
    }

    /// Consumes the event queue: every record between CONS and PROD.
    pub fn events(&mut self) -> Vec<Event> {
        let l = self.layout;
        let size = 1u32 << l.evtq_log2;
        let mask = (size << 1) - 1;
        let mut out = Vec::new();
        let prod = EventqProd(self.read(Register::EVENTQ_PROD) as u32);
        while self.evt_cons & mask != prod.wr() & mask {
            let at = l.evtq + 32 * u64::from(self.evt_cons & (size - 1));
            let words =
                core::array::from_fn::<u64, 4, _>(|i| self.p.guest_read_u64(at + 8 * i as u64));
            if let Ok(e) = Event::decode(words) {
                out.push(e);
            }
            self.evt_cons = (self.evt_cons + 1) & mask;
        }
        // Acknowledge an overflow the way Linux does: copy OVFLG into CONS.
        let cons = EventqCons(self.evt_cons).with_ovackflg(prod.ovflg());
        self.write(Register::EVENTQ_CONS, u64::from(cons.0));
        out
    }

    /// Writes doublewords of guest memory.
    pub fn write_words(&mut self, ipa: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.p.guest_write_u64(ipa + 8 * i as u64, *w);
        }
    }

    /// A word of guest memory (for checking MSI writes).
    pub fn ram_u32(&mut self, ipa: u64) -> u32 {
        self.p.guest_read_u64(ipa) as u32
    }
}

impl LinuxGuest<FakePlatform> {
    pub fn ipa(&self, off: u64) -> Ipa {
        Ipa(self.p.ram.base + off)
    }
}

/// A Linux stage-1 CD (`arm_smmu_make_s1_cd`): 48-bit VA, 4K granule,
/// write-back walks, inner shareable, AArch64, 44-bit IPS.
pub fn linux_cd(asid: u16, ttb0: u64) -> Cd {
    Cd::new()
        .with_t0sz(16)
        .with_tg0(CdTg0::GRANULE_4KB)
        .with_ir0(CdIr0::WB_RA_WA)
        .with_or0(CdOr0::WB_RA_WA)
        .with_sh0(CdSh0::INNER_SHAREABLE)
        .with_epd1(true)
        .with_v(true)
        .with_ips(CdIps::PS_44_BIT)
        .with_aa64(true)
        .with_r(true)
        .with_a(true)
        .with_aset(true)
        .with_asid(asid)
        .with_ttb0(ttb0)
        .with_mair0(0x0044_ff04)
}

/// Whether CONS has moved past the entry at `ptr` (index plus wrap bit).
fn passed(cons: u32, ptr: u32, log2: u32) -> bool {
    let mask = (2u32 << log2) - 1;
    // CONS points at the next entry to consume: it has passed `ptr` once it
    // is `ptr + 1` or beyond, modulo the wrap bit.
    let dist = cons.wrapping_sub(ptr.wrapping_add(1)) & mask;
    dist < (1u32 << log2)
}
