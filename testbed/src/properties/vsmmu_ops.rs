//! Two domains, each with its own vSMMU and guest RAM, sharing one physical
//! SMMU (distinct pSIDs, distinct VMIDs), driven by arbitrary sequences of
//! trapped register accesses, guest RAM writes, physical events, deferred
//! work and time. After every step: isolation (installs name only the
//! domain's own streams, invalidations carry its VMID and its pSIDs, only
//! forwardable command kinds reach the hardware, forwarded event records name
//! the right vSID and hold no stage-2 state) and bounded work per call.
//!
//! Input: an 8-byte header (the policy and guest layout), then operations,
//! each one header byte (`kind | flag << 5 | domain << 7`) and its operands,
//! little-endian. A missing byte reads as zero.

use smmuv3::cmd::*;
use smmuv3::evt::*;
use smmuv3::queue::Queue;
use smmuv3::regs::{CmdqProd, EventqProd, Idr1, StrtabBase};
use smmuv3::structs::Ste;
use smmuv3::Register;
use vsmmu::testing::internals::MAX_PER_SMMU;
use vsmmu::testing::{FakePlatform, GuestLayout, HwCall, LinuxGuest};
use vsmmu::*;

use super::input::{Aim, Input};
use super::{command_queue, event_queue};

const SMMU: SmmuId = SmmuId(0);
/// An SMMU neither domain uses (events naming it are never ours).
const OTHER_SMMU: SmmuId = SmmuId(1);
const RAM_SIZE: usize = 4 << 20;
const MAX_STEPS: usize = 256;
/// Guest RAM accesses a call may make beyond the per-command and per-STE
/// allowances: one command read that stops on the hardware budget and is
/// retried later, and one event record.
const ACCESS_SLACK: u64 = 4;

/// What a domain is made of.
struct Spec {
    id: u32,
    vmid: u16,
    ram: u64,
    /// (vSID base, pSID base, count) on `SMMU`.
    maps: &'static [(u32, u32, u32)],
}

/// Overlapping vSIDs in both domains, pSIDs disjoint; B presents SIDSIZE 9.
const SPECS: [Spec; 2] = [
    Spec {
        id: 1,
        vmid: 5,
        ram: 0x4000_0000,
        maps: &[
            (0, 0x100, 1),
            (8, 0x108, 1),
            (16, 0x110, 1),
            (0x20, 0x120, 8),
        ],
    },
    Spec {
        id: 2,
        vmid: 6,
        ram: 0x8000_0000,
        maps: &[(0, 0x200, 1), (8, 0x208, 1), (0x1ff, 0x2ff, 1)],
    },
];

struct Domain {
    guest: LinuxGuest,
    vmid: u16,
    policy: Policy,
    vsids: Vec<u32>,
    psids: Vec<u32>,
    ssidsize: u32,
    /// The hardware layer was told to fail at some point during the step.
    failed: bool,
}

impl Domain {
    fn new(s: &Spec, owners: &mut PsidOwners, policy: Policy, flags: u8) -> Domain {
        let msi = flags & 1 != 0;
        let mut map = StreamMap::new();
        for &(vsid, psid, n) in s.maps {
            map.add_range(owners, DomainId(s.id), vsid, SMMU, psid, n)
                .expect("disjoint maps");
        }
        let vsids: Vec<u32> = map.iter().map(|(v, _)| v).collect();
        let psids: Vec<u32> = map.iter().map(|(_, p)| p.psid).collect();
        let mut platform = FakePlatform::new(s.ram, RAM_SIZE, 1);
        let mut cfg = VsmmuConfig::new(DomainId(s.id), s.vmid, 40);
        cfg.msi = msi;
        cfg.policy = policy;
        let vsmmu = Vsmmu::new(cfg, map, &mut platform.hw).expect("QEMU caps nest");
        let ssidsize = u32::from(Idr1(vsmmu.ident(Register::IDR1) as u32).ssidsize());
        let mut layout = GuestLayout::at(s.ram);
        layout.msi_poll = msi;
        // The stream table format follows SIDSIZE, as Linux picks it.
        layout.cmdq_log2 = 5;
        layout.evtq_log2 = 4;
        let mut guest = LinuxGuest::new(vsmmu, platform, layout);
        // Give up after 32 us of polling: a fuzz case stays short.
        guest.timing.timeout_ns = 32_000;
        Domain {
            guest,
            vmid: s.vmid,
            policy,
            vsids,
            psids,
            ssidsize,
            failed: false,
        }
    }

    fn own(&self, s: PhysStream) -> bool {
        s.smmu == SMMU && self.psids.contains(&s.psid)
    }

    /// Guest RAM accesses one entry point call may make: every guest command
    /// is one read, plus one write for a CMD_SYNC completed by MSI-poll; every
    /// STE is at most an L1 descriptor and the STE itself.
    fn access_bound(&self) -> u64 {
        2 * u64::from(self.policy.commands_per_call)
            + 2 * u64::from(self.policy.stes_per_call)
            + ACCESS_SLACK
    }

    /// One entry point call, with the per-call work bounds checked.
    fn call<R>(&mut self, what: &str, f: impl FnOnce(&mut Vsmmu, &mut Ports<'_>) -> R) -> R {
        let before = self.guest.platform.ram.accesses;
        let r = {
            let mut ports = self.guest.platform.ports();
            f(&mut self.guest.vsmmu, &mut ports)
        };
        let used = self.guest.platform.ram.accesses - before;
        let n = self.guest.vsmmu.last_call_commands();
        assert!(
            n <= self.policy.commands_per_call,
            "{what}: {n} commands in one call, policy allows {}",
            self.policy.commands_per_call
        );
        assert!(
            used <= self.access_bound(),
            "{what}: {used} guest RAM accesses in one call, bound {} ({:?})",
            self.access_bound(),
            self.policy
        );
        r
    }

    fn reg(&self, r: Register) -> u64 {
        self.guest.vsmmu.register(r)
    }

    fn cmdq(&self) -> Queue {
        command_queue(&self.guest.vsmmu)
    }

    fn evtq(&self) -> Queue {
        event_queue(&self.guest.vsmmu)
    }

    /// Writes bytes into guest RAM as the guest would (not through the
    /// vSMMU's accesses); whatever falls outside RAM is dropped.
    fn poke(&mut self, ipa: u64, data: &[u8]) {
        let ram = &mut self.guest.platform.ram;
        let Some(off) = ipa.checked_sub(ram.base) else {
            return;
        };
        let Ok(off) = usize::try_from(off) else {
            return;
        };
        if off >= ram.bytes.len() {
            return;
        }
        let n = data.len().min(ram.bytes.len() - off);
        ram.bytes[off..off + n].copy_from_slice(&data[..n]);
    }

    /// The isolation invariants over what the hardware layer was asked since
    /// the last step; then forgets it.
    fn check_hw(&mut self, step: usize) {
        let calls = core::mem::take(&mut self.guest.platform.hw.calls);
        let mut last_install: Vec<(PhysStream, StreamConfig)> = Vec::new();
        for c in &calls {
            match c {
                HwCall::Install(s, cfg) => {
                    assert!(
                        self.own(*s),
                        "step {step}: install on a foreign stream {s:?}"
                    );
                    // Exhaustive on purpose: a new variant (a physical bypass)
                    // must be looked at here.
                    match cfg {
                        StreamConfig::Abort { .. } | StreamConfig::Stage2Only => {}
                        StreamConfig::Nested(ctx) => {
                            assert!(
                                u32::from(ctx.s1_cd_max) <= self.ssidsize,
                                "step {step}: S1CDMax {} above SSIDSIZE {}",
                                ctx.s1_cd_max,
                                self.ssidsize
                            );
                            assert!(
                                ctx.s1_cd_max != 0 || ctx.s1_fmt == 0,
                                "step {step}: S1Fmt {} with a single CD",
                                ctx.s1_fmt
                            );
                        }
                    }
                    last_install.retain(|(st, _)| st != s);
                    last_install.push((*s, *cfg));
                }
                HwCall::Invalidate(smmu, cmds) => {
                    assert_eq!(*smmu, SMMU, "step {step}: invalidation on a foreign SMMU");
                    assert!(
                        !cmds.is_empty() && cmds.len() <= MAX_PER_SMMU,
                        "step {step}: batch of {}",
                        cmds.len()
                    );
                    for cmd in cmds {
                        self.check_command(step, cmd);
                    }
                }
                HwCall::Sync(smmu) | HwCall::Release(smmu) => {
                    assert_eq!(*smmu, SMMU, "step {step}: sync on a foreign SMMU");
                }
            }
        }
        // Without hardware failures, what the vSMMU believes is installed is
        // what it last installed.
        if !self.failed && !self.guest.platform.hw.fail {
            for (s, cfg) in last_install {
                let vsid = self
                    .guest
                    .vsmmu
                    .streams()
                    .virtual_of(s)
                    .expect("own stream");
                assert_eq!(
                    self.guest.vsmmu.installed(vsid).map(|i| i.config),
                    Some(cfg),
                    "step {step}: vSID {vsid} believed installed differs from the last install"
                );
            }
        }
        self.failed = self.guest.platform.hw.fail;
    }

    fn check_command(&self, step: usize, cmd: &Command) {
        let own_sid = |sid: u32| {
            assert!(
                self.own(PhysStream {
                    smmu: SMMU,
                    psid: sid
                }),
                "step {step}: {cmd} names a foreign pSID {sid:#x}"
            )
        };
        let vmid = |v: u16| {
            assert_eq!(v, self.vmid, "step {step}: {cmd} carries a foreign VMID");
        };
        match cmd {
            Command::CfgiCd(c) => own_sid(c.stream_id()),
            Command::CfgiCdAll(c) => own_sid(c.stream_id()),
            Command::AtcInv(c) => own_sid(c.stream_id()),
            Command::TlbiNhAll(c) => vmid(c.vmid()),
            Command::TlbiNhAsid(c) => vmid(c.vmid()),
            Command::TlbiNhVa(c) => vmid(c.vmid()),
            Command::TlbiNhVaa(c) => vmid(c.vmid()),
            other => panic!("step {step}: forbidden command reached the hardware: {other}"),
        }
    }
}

/// A vSID: mostly one of the domain's, sometimes the other domain's or any.
fn pick_vsid(inp: &mut Input<'_>, mine: &[u32], theirs: &[u32]) -> u32 {
    let s = inp.u8();
    match s >> 6 {
        0 | 1 => mine[usize::from(s) % mine.len()],
        2 => theirs[usize::from(s) % theirs.len()],
        _ => u32::from(inp.u16()) | (u32::from(s & 1) << 16),
    }
}

/// A pSID: the domain's, the other domain's, a neighbour, or any.
fn pick_psid(inp: &mut Input<'_>, mine: &[u32], theirs: &[u32]) -> u32 {
    let s = inp.u8();
    match s >> 6 {
        0 => mine[usize::from(s) % mine.len()],
        1 => theirs[usize::from(s) % theirs.len()],
        2 => mine[usize::from(s) % mine.len()]
            .wrapping_add(u32::from(s & 1) * 2)
            .wrapping_sub(1),
        _ => inp.u32(),
    }
}

/// An event record for a chosen pSID, typed or from raw words.
fn pick_event(inp: &mut Input<'_>, psid: u32) -> Option<Event> {
    let k = inp.u8();
    let x = inp.u8();
    let ssid = u32::from(inp.u16());
    let ev = match k % 12 {
        0 | 1 => Event::FTranslation(
            FTranslation::new()
                .with_stream_id(psid)
                .with_s2(x & 1 != 0)
                .with_class(FTranslationClass((x >> 1) & 3))
                .with_ssv(x & 8 != 0)
                .with_substream_id(ssid)
                .with_rn_w(x & 16 != 0)
                .with_stall(x & 32 != 0)
                .with_input_addr(inp.u64())
                .with_ipa(inp.u64()),
        ),
        2 => Event::CBadSte(CBadSte::new().with_stream_id(psid)),
        3 => Event::CBadCd(
            CBadCd::new()
                .with_stream_id(psid)
                .with_ssv(x & 1 != 0)
                .with_substream_id(ssid),
        ),
        4 => Event::CBadSubstreamid(
            CBadSubstreamid::new()
                .with_stream_id(psid)
                .with_substream_id(ssid),
        ),
        5 => Event::FStreamDisabled(FStreamDisabled::new().with_stream_id(psid)),
        6 => Event::FWalkEabt(
            FWalkEabt::new()
                .with_stream_id(psid)
                .with_s2(x & 1 != 0)
                .with_class(FWalkEabtClass((x >> 1) & 3))
                .with_input_addr(inp.u64())
                .with_fetch_addr(inp.u64()),
        ),
        7 => Event::FCdFetch(
            FCdFetch::new()
                .with_stream_id(psid)
                .with_fetch_addr(inp.u64()),
        ),
        8 => Event::FPermission(
            FPermission::new()
                .with_stream_id(psid)
                .with_s2(x & 1 != 0)
                .with_ipa(inp.u64()),
        ),
        9 => Event::FAccess(
            FAccess::new()
                .with_stream_id(psid)
                .with_s2(x & 1 != 0)
                .with_ipa(inp.u64()),
        ),
        10 => Event::FAddrSize(
            FAddrSize::new()
                .with_stream_id(psid)
                .with_s2(x & 1 != 0)
                .with_ipa(inp.u64()),
        ),
        // Any record type, its StreamID field replaced.
        _ => {
            let e = Event::decode([inp.u64(), inp.u64(), inp.u64(), inp.u64()]).ok()?;
            e.with_stream_id(psid)
        }
    };
    Some(ev)
}

/// Checks one physical event delivery.
fn deliver(d: &mut Domain, step: usize, smmu: SmmuId, event: Event) {
    let psid = event.stream_id();
    let ours = d
        .guest
        .vsmmu
        .streams()
        .virtual_of(PhysStream { smmu, psid });
    let prod_before = EventqProd(d.reg(Register::EVENTQ_PROD) as u32);
    let irqs_before = (
        d.guest.platform.irq.raised.len(),
        d.guest.platform.irq.msis.len(),
    );
    let acc_before = d.guest.platform.ram.accesses;
    let q = d.evtq();
    let out = d.call("deliver_event", |v, p| {
        v.deliver_event(p, PhysEvent { smmu, event })
    });
    let prod_after = EventqProd(d.reg(Register::EVENTQ_PROD) as u32);
    let Some(vsid) = ours else {
        assert_eq!(
            out,
            EventOutcome::NotOurs,
            "step {step}: {event} for another domain"
        );
        assert_eq!(
            d.guest.platform.ram.accesses, acc_before,
            "step {step}: foreign event touched RAM"
        );
        assert_eq!(
            prod_after.0, prod_before.0,
            "step {step}: foreign event moved PROD"
        );
        assert_eq!(
            (
                d.guest.platform.irq.raised.len(),
                d.guest.platform.irq.msis.len()
            ),
            irqs_before,
            "step {step}: foreign event signalled"
        );
        return;
    };
    assert_ne!(
        out,
        EventOutcome::NotOurs,
        "step {step}: own event {event} refused"
    );
    if out != EventOutcome::Forwarded {
        assert_eq!(
            prod_after.wr(),
            prod_before.wr(),
            "step {step}: {out:?} event moved PROD"
        );
        return;
    }
    assert_eq!(
        prod_after.wr(),
        q.next(prod_before.wr()),
        "step {step}: PROD"
    );
    let words = d
        .guest
        .platform
        .ram
        .read_words::<4>(q.slot(prod_before.wr()));
    let rec = Event::decode(words)
        .unwrap_or_else(|e| panic!("step {step}: forwarded record does not decode: {e}"));
    assert_eq!(
        rec.stream_id(),
        vsid,
        "step {step}: {event} forwarded as {rec}"
    );
    // The guest sees a stage-1-only SMMU that never stalls: no stage-2
    // state, no physical IPA, no stall tag.
    let r = rec.as_record();
    for f in r.fields() {
        if matches!(f.name, "S2" | "IPA" | "NSIPA" | "STAG" | "Stall") {
            assert_eq!(
                f.get(r.words()),
                0,
                "step {step}: {event} forwarded as {rec} with {} set",
                f.name
            );
        }
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let h: [u8; 8] = inp.bytes();
    let policy = Policy {
        commands_per_call: 1 + u32::from(h[0] % 64),
        stes_per_call: 1 + u32::from(h[1] % 32),
        tlbi_coarsen_threshold: 1 + u32::from(h[2] % 48),
        hw_burst: vsmmu::INSTALL_MAX_COMMANDS + 2 * u32::from(h[3]),
        hw_refill_per_ms: 1 + u32::from(h[4] % 128),
        hw_penalty_after_ms: u32::from(h[5]),
        pending_event_limit: 1 + u32::from(h[6] % 32),
        hw_retry_limit: 1 + u32::from(h[6] >> 5),
    };
    let mut owners = PsidOwners::new();
    let mut doms = [
        Domain::new(&SPECS[0], &mut owners, policy, h[7]),
        Domain::new(&SPECS[1], &mut owners, policy, h[7] >> 2),
    ];
    for d in doms.iter_mut() {
        d.check_hw(0);
    }
    let mut step = 0;
    while !inp.is_empty() && step < MAX_STEPS {
        step += 1;
        let op = inp.u8();
        let flag = op & 0x20 != 0;
        let which = usize::from(op >> 7);
        let kind = (op & 0x1f) % 14;
        if kind == 6 {
            // Time passes, for one domain or for both.
            let dt = u64::from(inp.u16()) * 1_000;
            for (i, d) in doms.iter_mut().enumerate() {
                if flag || i == which {
                    d.guest.platform.now_ns = d.guest.platform.now_ns.saturating_add(dt);
                }
            }
            continue;
        }
        let theirs = doms[1 - which].vsids.clone();
        let their_psids = doms[1 - which].psids.clone();
        let d = &mut doms[which];
        match kind {
            0 => {
                let (off, size, info) = inp.access();
                let mut value = inp.u64();
                if let (true, Some(info)) = (flag, info) {
                    value &= info.write_mask;
                }
                d.call("mmio_write", |v, p| v.mmio_write(p, off, size, value));
            }
            1 => {
                let (off, size, _) = inp.access();
                d.call("mmio_read", |v, p| v.mmio_read(p, off, size));
            }
            2 => {
                let region = inp.u8();
                let idx = u64::from(inp.u16());
                let len = usize::from(inp.u8() % 65);
                let bytes: Vec<u8> = (0..len).map(|_| inp.u8()).collect();
                let strtab = StrtabBase(d.reg(Register::STRTAB_BASE)).addr();
                let l = d.guest.layout;
                let at = match region % 7 {
                    0 => strtab.wrapping_add(idx * (Ste::WORDS as u64 * 8)),
                    1 => strtab.wrapping_add(idx * 8),
                    2 => l.l2_pool + idx * (Ste::WORDS as u64 * 8),
                    3 => d.cmdq().slot(u32::from(idx as u16)),
                    4 => d.evtq().slot(u32::from(idx as u16)),
                    5 => l.cds + idx * 8,
                    _ => d.guest.platform.ram.base + (idx << 6),
                };
                d.poke(at, &bytes);
            }
            3 => {
                let smmu = if flag { OTHER_SMMU } else { SMMU };
                if let Ok(ev) = Event::decode([inp.u64(), inp.u64(), inp.u64(), inp.u64()]) {
                    deliver(d, step, smmu, ev);
                }
            }
            4 => {
                let smmu = if flag { OTHER_SMMU } else { SMMU };
                let psid = pick_psid(&mut inp, &d.psids, &their_psids);
                if let Some(ev) = pick_event(&mut inp, psid) {
                    deliver(d, step, smmu, ev);
                }
            }
            5 => {
                // A hypervisor runs deferred work when asked; a careless one
                // (the flag) at any time.
                if flag || d.guest.platform.defer.pending {
                    d.guest.platform.defer.pending = false;
                    d.call("run_deferred", |v, p| v.run_deferred(p));
                }
            }
            7 => {
                let n = 1 + inp.u8() % 8;
                for _ in 0..n {
                    let q = d.cmdq();
                    let slot = q.slot(d.guest.prod);
                    let ram = d.guest.platform.ram.base;
                    let entry = inp
                        .command(|inp| Aim {
                            sid: pick_vsid(inp, &d.vsids, &theirs),
                            va: u64::from(inp.u16()) << 12,
                            msi: match inp.u8() & 3 {
                                0 => 0,
                                1 => slot,
                                2 => inp.u64(),
                                _ => ram + (u64::from(inp.u16()) << 4),
                            },
                        })
                        .bytes();
                    d.poke(slot, &entry);
                    d.guest.prod = q.next(d.guest.prod);
                }
                if !flag {
                    let prod = u64::from(CmdqProd(0).with_wr(d.guest.prod).0);
                    let off = Register::CMDQ_PROD.info().frame_offset();
                    d.call("CMDQ_PROD write", |v, p| v.mmio_write(p, off, 4, prod));
                }
            }
            8 => {
                let _ = d.guest.bring_up();
            }
            9 => {
                let sid = pick_vsid(&mut inp, &d.vsids, &theirs);
                let asid = inp.u16();
                let ttb0 = d.guest.platform.ram.base + (u64::from(inp.u16()) << 12);
                let _ = d.guest.attach(sid, asid, ttb0);
            }
            10 => {
                let _ = d.guest.events();
            }
            11 => {
                d.guest.platform.hw.fail = flag;
                d.failed |= flag;
            }
            12 => {
                let sid = pick_vsid(&mut inp, &d.vsids, &theirs);
                let ste = inp.guest_ste(d.guest.cd_table(sid));
                if flag {
                    let at = d.guest.ste_addr(sid);
                    d.guest.platform.ram.write_words(at, &ste.0);
                } else {
                    let _ = d.guest.write_ste(sid, ste);
                }
            }
            _ => {
                let asid = inp.u16();
                // Page-aligned and far from the top (the guest model adds pages).
                let iova = u64::from(inp.u32()) << 12;
                let pages = u64::from(inp.u8() % 80);
                let _ = d.guest.unmap(asid, iova, pages);
            }
        }
        // The guest-driver steps make many calls: the last one is bounded
        // like any other.
        let n = d.guest.vsmmu.last_call_commands();
        assert!(n <= d.policy.commands_per_call, "step {step}: {n} commands");
        for d in doms.iter_mut() {
            d.check_hw(step);
        }
    }
}
