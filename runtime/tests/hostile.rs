//! A hostile guest: everything the Security Considerations of the design
//! (Observations 1, 4, 5 and 6) say a guest may try, driven through MMIO and
//! guest RAM only. Every test checks that the vSMMU does not panic, does a
//! bounded amount of work per entry point call, answers with the
//! architecture's error where there is one, and never touches anything
//! outside the domain: physical streams other than the domain's own, SMMUs
//! it does not use, or TLB entries of another VMID.
//!
//! Nothing here hand-writes a register offset, bit position or opcode: all
//! come from the generated `smmuv3` crate.

use smmuv3::cmd::*;
use smmuv3::evt::{CBadSte, Event, FSteFetch, FTranslation, FTranslationClass};
use smmuv3::regs::*;
use smmuv3::structs::*;
use smmuv3::{DecodeError, Register};
use vsmmu::testing::{FakePlatform, GuestLayout, HwCall, LinuxGuest, RecordingSmmu};
use vsmmu::Refusal;
use vsmmu::*;

pub const RAM: u64 = 0x4000_0000;
pub const RAM_SIZE: usize = 16 << 20;
pub const SMMU: SmmuId = SmmuId(0);
/// An SMMU the platform has and the domain does not use.
pub const OTHER_SMMU: SmmuId = SmmuId(1);
pub const VMID: u16 = 5;
/// vSID 8 and vSID 16.
pub const DEV_A: PhysStream = PhysStream {
    smmu: SMMU,
    psid: 0x108,
};
pub const DEV_B: PhysStream = PhysStream {
    smmu: SMMU,
    psid: 0x110,
};
/// A stream between the domain's two, owned by another domain.
pub const FOREIGN: PhysStream = PhysStream {
    smmu: SMMU,
    psid: 0x109,
};
/// Far outside the domain's RAM (64 GiB), but a valid address for every base register.
pub const NOWHERE: u64 = 0x10_0000_0000;

/// Bytes of one queue entry or table entry, from the generated sizes.
const CMD_BYTES: u64 = (CmdSync::WORDS * 8) as u64;
const EVT_BYTES: u64 = (FTranslation::WORDS * 8) as u64;
const STE_BYTES: u64 = (Ste::WORDS * 8) as u64;

/// A domain with VMID 5 owning vSID 8 -> pSID 0x108 and vSID 16 -> pSID 0x110
/// on SMMU 0, on a platform with a second SMMU and another domain owning
/// pSID 0x109 (the `guest()` of linux_guest.rs, with a policy and a layout).
pub fn domain(policy: Policy, msi: bool, edit: impl FnOnce(&mut GuestLayout)) -> LinuxGuest {
    domain_with(policy, msi, false, edit)
}

/// A third stream of the domain, vSID 0x100: SIDSIZE 9, so Linux picks a
/// 2-level stream table.
pub const DEV_WIDE: PhysStream = PhysStream {
    smmu: SMMU,
    psid: 0x200,
};

/// [`domain`], with [`DEV_WIDE`] when `two_level`.
pub fn domain_with(
    policy: Policy,
    msi: bool,
    two_level: bool,
    edit: impl FnOnce(&mut GuestLayout),
) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, RAM_SIZE, 2);
    let mut owners = PsidOwners::new();
    let mut other = StreamMap::new();
    other
        .add_device(&mut owners, DomainId(2), 0, FOREIGN)
        .unwrap();
    let mut map = StreamMap::new();
    map.add_device(&mut owners, DomainId(1), 8, DEV_A).unwrap();
    map.add_device(&mut owners, DomainId(1), 16, DEV_B).unwrap();
    if two_level {
        map.add_device(&mut owners, DomainId(1), 0x100, DEV_WIDE)
            .unwrap();
    }
    let cfg = VsmmuConfig {
        msi,
        policy,
        ..VsmmuConfig::new(DomainId(1), VMID, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::at(RAM);
    layout.msi_poll = msi;
    edit(&mut layout);
    LinuxGuest::new(v, p, layout)
}

/// linux_guest.rs's helper.
pub fn guest(msi: bool, two_level: bool) -> LinuxGuest {
    domain_with(Policy::default(), msi, two_level, |_| {})
}

/// A guest that brought the SMMU up the Linux way and attached vSID 8.
fn attached(policy: Policy, msi: bool, edit: impl FnOnce(&mut GuestLayout)) -> LinuxGuest {
    let mut g = domain(policy, msi, edit);
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    assert!(matches!(
        g.vsmmu.installed(8).map(|i| i.config),
        Some(StreamConfig::Nested(_))
    ));
    g
}

// ---- bounded work ----

/// Guest-memory accesses one entry point call may make: each command read
/// and its MSI-poll write, an L1 descriptor and an STE per stream
/// re-evaluated, and an event record.
fn access_bound(p: &Policy) -> u64 {
    2 * u64::from(p.commands_per_call) + 2 * u64::from(p.stes_per_call) + 1
}

/// Runs one entry point call and checks it stayed within the policy.
fn checked<R>(g: &mut LinuxGuest, what: &str, f: impl FnOnce(&mut LinuxGuest) -> R) -> R {
    let policy = g.vsmmu.config().policy;
    let before = g.platform.ram.accesses;
    let r = f(g);
    assert!(
        g.vsmmu.last_call_commands() <= policy.commands_per_call,
        "{what}: {} commands in one call (policy {})",
        g.vsmmu.last_call_commands(),
        policy.commands_per_call
    );
    let accesses = g.platform.ram.accesses - before;
    assert!(
        accesses <= access_bound(&policy),
        "{what}: {accesses} guest-memory accesses in one call"
    );
    r
}

fn write(g: &mut LinuxGuest, reg: Register, value: u64) {
    checked(g, reg.info().name, |g| g.write(reg, value));
}

fn read(g: &mut LinuxGuest, reg: Register) -> u64 {
    checked(g, reg.info().name, |g| g.read(reg))
}

/// The hypervisor's deferred-work callback, if the vSMMU asked for it,
/// after the delay it asked for. Returns whether it ran.
fn deferred(g: &mut LinuxGuest) -> bool {
    if !g.platform.defer.pending {
        return false;
    }
    g.platform.defer.pending = false;
    g.platform.now_ns = g
        .platform
        .now_ns
        .saturating_add(g.platform.defer.last_after_ns.max(1_000));
    checked(g, "run_deferred", |g| {
        let mut ports = g.platform.ports();
        g.vsmmu.run_deferred(&mut ports);
    });
    true
}

/// A deferred-work call the hypervisor makes without being asked (a
/// spurious tasklet run must be harmless too).
fn deferred_anyway(g: &mut LinuxGuest) {
    g.platform.defer.pending = false;
    g.platform.now_ns += 1_000;
    checked(g, "run_deferred", |g| {
        let mut ports = g.platform.ports();
        g.vsmmu.run_deferred(&mut ports);
    });
}

/// Runs deferred work until the vSMMU asks for no more. Returns the calls made.
fn settle(g: &mut LinuxGuest) -> u32 {
    let mut calls = 0;
    while deferred(g) {
        calls += 1;
        assert!(calls < 1_000_000, "deferred work never finishes");
    }
    calls
}

fn deliver(g: &mut LinuxGuest, stream: PhysStream, event: Event) -> EventOutcome {
    checked(g, "deliver_event", |g| {
        let mut ports = g.platform.ports();
        g.vsmmu.deliver_event(
            &mut ports,
            PhysEvent {
                smmu: stream.smmu,
                event,
            },
        )
    })
}

/// A stage-1 translation fault the hardware recorded for a stream.
fn fault(stream: PhysStream, addr: u64) -> Event {
    Event::FTranslation(
        FTranslation::new()
            .with_stream_id(stream.psid)
            .with_class(FTranslationClass::IN)
            .with_input_addr(addr),
    )
}

fn bad_ste_event(stream: PhysStream) -> Event {
    Event::CBadSte(CBadSte::new().with_stream_id(stream.psid))
}

// ---- nothing outside the domain ----

/// Checks the hardware calls from index `from` on: only the domain's streams
/// and SMMU, only TLB invalidations of the domain's VMID. Returns the index
/// to continue from.
fn assert_confined(hw: &RecordingSmmu, from: usize) -> usize {
    for (i, call) in hw.calls.iter().enumerate().skip(from) {
        match call {
            HwCall::Install(stream, config) => {
                assert!(
                    [DEV_A, DEV_B, DEV_WIDE].contains(stream),
                    "call {i}: a configuration for {stream:?}, not the domain's"
                );
                // Exhaustive on purpose: a new kind of configuration (physical
                // bypass, say) must be looked at here before a guest can get it.
                let _kind = match config {
                    StreamConfig::Abort { .. } => "abort",
                    StreamConfig::Stage2Only => "the domain's stage 2",
                    StreamConfig::Nested(_) => "nested over the domain's stage 2",
                };
            }
            HwCall::Invalidate(smmu, cmds) => {
                assert_eq!(*smmu, SMMU, "call {i}: commands for another SMMU");
                assert!(!cmds.is_empty());
                for c in cmds {
                    assert_command_confined(c);
                }
            }
            HwCall::Sync(smmu) => assert_eq!(*smmu, SMMU, "call {i}: a sync of another SMMU"),
            HwCall::Release(smmu) => assert_eq!(*smmu, SMMU, "call {i}: another SMMU released"),
        }
    }
    hw.calls.len()
}

fn assert_command_confined(c: &Command) {
    let ours = |sid: u32| sid == DEV_A.psid || sid == DEV_B.psid;
    match c {
        Command::TlbiNhAll(x) => assert_eq!(x.vmid(), VMID, "{c}"),
        Command::TlbiNhAsid(x) => assert_eq!(x.vmid(), VMID, "{c}"),
        Command::TlbiNhVa(x) => assert_eq!(x.vmid(), VMID, "{c}"),
        Command::TlbiNhVaa(x) => assert_eq!(x.vmid(), VMID, "{c}"),
        Command::CfgiCd(x) => assert!(ours(x.stream_id()) && !x.s_sec(), "{c}"),
        Command::CfgiCdAll(x) => assert!(ours(x.stream_id()) && !x.s_sec(), "{c}"),
        other => panic!("{other} reached the physical SMMU on a guest's behalf"),
    }
}

/// Every vSID's installed configuration, and that nothing else is installed.
fn assert_streams_confined(g: &LinuxGuest) {
    for vsid in [0, 1, 7, 9, 15, 17, 0x108, 0x109, u32::MAX] {
        assert_eq!(
            g.vsmmu.installed(vsid),
            None,
            "vSID {vsid} is not the domain's"
        );
    }
    for vsid in [8, 16] {
        assert!(
            g.vsmmu.installed(vsid).is_some(),
            "vSID {vsid} has no configuration"
        );
    }
}

// ---- the command queue, by hand ----

/// Writes raw command words at the guest's PROD (without publishing it).
/// Returns the entry's pointer (index and wrap bit).
fn put(g: &mut LinuxGuest, words: [u64; 2]) -> u32 {
    let size = 1u32 << g.layout.cmdq_log2;
    let ptr = g.prod;
    let at = slot(g, ptr);
    g.platform.ram.write_words(at, &words);
    g.prod = (g.prod + 1) & ((size << 1) - 1);
    ptr
}

/// The guest address of the command queue entry `ptr` points at.
fn slot(g: &LinuxGuest, ptr: u32) -> u64 {
    let size = 1u32 << g.layout.cmdq_log2;
    g.layout.cmdq + CMD_BYTES * u64::from(ptr & (size - 1))
}

fn publish(g: &mut LinuxGuest) {
    let prod = CmdqProd(0).with_wr(g.prod);
    write(g, Register::CMDQ_PROD, u64::from(prod.0));
}

fn cons(g: &mut LinuxGuest) -> CmdqCons {
    CmdqCons(read(g, Register::CMDQ_CONS) as u32)
}

/// The global errors active (GERROR != GERRORN).
fn gerror_active(g: &mut LinuxGuest) -> Gerror {
    let e = read(g, Register::GERROR) ^ read(g, Register::GERRORN);
    Gerror(e as u32)
}

/// Acknowledges every active global error, as Linux's GERROR handler does.
fn ack_gerror(g: &mut LinuxGuest) {
    let e = read(g, Register::GERROR);
    write(g, Register::GERRORN, e);
}

fn gerror_irqs(g: &LinuxGuest) -> usize {
    let wired = g
        .platform
        .irq
        .raised
        .iter()
        .filter(|i| **i == Irq::Gerror)
        .count();
    let msis = g
        .platform
        .irq
        .msis
        .iter()
        .filter(|m| m.0 == Irq::Gerror)
        .count();
    wired + msis
}

fn sync() -> [u64; 2] {
    CmdSync::new().with_cs(CmdSyncCs::SIG_NONE).encode()
}

fn tlbi_asid(asid: u16) -> [u64; 2] {
    CmdTlbiNhAsid::new().with_asid(asid).encode()
}

/// Whether the hardware calls from `from` on invalidated `asid` (with the domain's VMID).
fn hw_saw_asid(g: &LinuxGuest, from: usize, asid: u16) -> bool {
    g.platform.hw.calls[from..].iter().any(|c| match c {
        HwCall::Invalidate(_, cmds) => cmds
            .iter()
            .any(|c| matches!(c, Command::TlbiNhAsid(a) if a.asid() == asid && a.vmid() == VMID)),
        _ => false,
    })
}

/// The core of every illegal-command test: a legal command, `bad`, a legal
/// command that must not run, and a CMD_SYNC. The queue must stop at `bad`
/// with CERROR_ILL, toggle GERROR.CMDQ_ERR and raise the GERROR interrupt,
/// stay stopped however the guest pokes it, and resume once the guest
/// overwrites the entry with a CMD_SYNC (arm_smmu_cmdq_skip_err) and
/// acknowledges the error.
fn refused_then_resumed(g: &mut LinuxGuest, what: &str, bad: [u64; 2]) {
    assert!(
        !gerror_active(g).cmdq_err(),
        "{what}: an error is already pending"
    );
    let stats = g.vsmmu.stats().clone();
    let gerror = read(g, Register::GERROR);
    let irqs = gerror_irqs(g);
    let calls = g.platform.hw.calls.len();
    let asid_op = usize::from(CmdTlbiNhAsid::OPCODE);

    put(g, tlbi_asid(0x55));
    let at = put(g, bad);
    put(g, tlbi_asid(0x66));
    put(g, sync());
    publish(g);
    settle(g);

    let c = cons(g);
    assert_eq!(c.rd(), at, "{what}: CONS points at the illegal entry");
    assert_eq!(c.err(), CmdqConsErr::CERROR_ILL, "{what}");
    let toggled = Gerror((read(g, Register::GERROR) ^ gerror) as u32);
    assert!(toggled.cmdq_err(), "{what}: GERROR.CMDQ_ERR toggled");
    assert!(gerror_active(g).cmdq_err(), "{what}");
    assert_eq!(gerror_irqs(g), irqs + 1, "{what}: one GERROR interrupt");
    let now = g.vsmmu.stats();
    assert_eq!(now.cerror_ill, stats.cerror_ill + 1, "{what}");
    assert_eq!(
        now.commands[asid_op],
        stats.commands[asid_op] + 1,
        "{what}: only the command before the illegal one ran"
    );
    assert!(!hw_saw_asid(g, calls, 0x66), "{what}: a later command ran");
    assert!(
        !g.platform.hw.calls[calls..]
            .iter()
            .any(|c| matches!(c, HwCall::Sync(_))),
        "{what}: the CMD_SYNC after the illegal command ran"
    );

    // Poking the stopped queue changes nothing.
    publish(g);
    deferred_anyway(g);
    settle(g);
    assert_eq!(cons(g).rd(), at, "{what}: the queue stays stopped");
    assert_eq!(gerror_irqs(g), irqs + 1, "{what}: no second interrupt");

    // Linux skips the entry: a CMD_SYNC in its place, then GERRORN = GERROR.
    let at_addr = slot(g, at);
    g.platform.ram.write_words(at_addr, &sync());
    ack_gerror(g);
    settle(g);
    assert!(!gerror_active(g).cmdq_err(), "{what}");
    assert_eq!(cons(g).rd(), g.prod, "{what}: the queue drained");
    assert!(hw_saw_asid(g, calls, 0x55), "{what}");
    assert!(hw_saw_asid(g, calls, 0x66), "{what}: processing resumed");
    assert_eq!(
        g.platform.hw.calls.last(),
        Some(&HwCall::Sync(SMMU)),
        "{what}"
    );
    assert_confined(&g.platform.hw, 0);
}

/// A command whose every field is zero has only its opcode set, in word 0:
/// the generated `new()` says so for every command. That makes raw words
/// for an opcode the generated crate does not know.
fn raw_opcode(op: u8) -> [u64; 2] {
    assert_eq!(CmdSync::new().encode(), [u64::from(CmdSync::OPCODE), 0]);
    assert_eq!(
        CmdCfgiSte::new().encode(),
        [u64::from(CmdCfgiSte::OPCODE), 0]
    );
    [u64::from(op), 0]
}

// ---- 1. illegal commands ----

#[test]
fn unknown_opcodes_stop_the_queue_with_cerror_ill_until_the_guest_skips_them() {
    let mut g = attached(Policy::default(), false, |_| {});
    let mut unknown = 0;
    for op in 0..=u8::MAX {
        let words = raw_opcode(op);
        if !matches!(
            Command::decode(words),
            Err(DecodeError::UnknownOpcode { .. })
        ) {
            continue;
        }
        unknown += 1;
        refused_then_resumed(&mut g, &format!("opcode {op:#04x}"), words);
    }
    assert!(unknown > 100, "only {unknown} unknown opcodes?");
}

#[test]
fn commands_with_res0_bits_set_are_illegal_and_the_queue_resumes_once_fixed() {
    let mut g = attached(Policy::default(), true, |_| {});
    let legal: [(&str, [u64; 2], [u64; 2]); 12] = [
        (
            CmdPrefetchConfig::NAME,
            CmdPrefetchConfig::new().with_stream_id(8).encode(),
            CmdPrefetchConfig::RES0,
        ),
        (
            CmdPrefetchAddr::NAME,
            CmdPrefetchAddr::new().with_stream_id(8).encode(),
            CmdPrefetchAddr::RES0,
        ),
        (
            CmdCfgiSte::NAME,
            CmdCfgiSte::new().with_stream_id(8).encode(),
            CmdCfgiSte::RES0,
        ),
        (
            CmdCfgiSteRange::NAME,
            CmdCfgiSteRange::new().with_range(31).encode(),
            CmdCfgiSteRange::RES0,
        ),
        (
            CmdCfgiCd::NAME,
            CmdCfgiCd::new().with_stream_id(8).encode(),
            CmdCfgiCd::RES0,
        ),
        (
            CmdCfgiCdAll::NAME,
            CmdCfgiCdAll::new().with_stream_id(8).encode(),
            CmdCfgiCdAll::RES0,
        ),
        (
            CmdTlbiNhAll::NAME,
            CmdTlbiNhAll::new().encode(),
            CmdTlbiNhAll::RES0,
        ),
        (
            CmdTlbiNhAsid::NAME,
            CmdTlbiNhAsid::new().with_asid(0x42).encode(),
            CmdTlbiNhAsid::RES0,
        ),
        (
            CmdTlbiNhVa::NAME,
            CmdTlbiNhVa::new()
                .with_asid(0x42)
                .with_addr(0x1000)
                .encode(),
            CmdTlbiNhVa::RES0,
        ),
        (
            CmdTlbiNhVaa::NAME,
            CmdTlbiNhVaa::new().with_addr(0x1000).encode(),
            CmdTlbiNhVaa::RES0,
        ),
        (
            CmdTlbiNsnhAll::NAME,
            CmdTlbiNsnhAll::new().encode(),
            CmdTlbiNsnhAll::RES0,
        ),
        (CmdSync::NAME, sync(), CmdSync::RES0),
    ];
    let mut cases = 0;
    for (name, words, res0) in legal {
        assert!(Command::decode(words).is_ok(), "{name} is legal as built");
        for w in 0..2 {
            for bit in 0..64 {
                let b = 1u64 << bit;
                if res0[w] & b == 0 {
                    continue;
                }
                let mut bad = words;
                bad[w] |= b;
                assert!(Command::decode(bad).is_err());
                cases += 1;
                refused_then_resumed(&mut g, &format!("{name} RES0 word {w} bit {bit}"), bad);
            }
        }
    }
    assert!(cases > 200, "{cases}");
}

#[test]
fn commands_with_ssec_set_are_illegal_on_the_non_secure_queue() {
    let mut g = attached(Policy::default(), false, |_| {});
    let cases: [(&str, [u64; 2]); 6] = [
        (
            CmdPrefetchConfig::NAME,
            CmdPrefetchConfig::new()
                .with_stream_id(8)
                .with_s_sec(true)
                .encode(),
        ),
        (
            CmdPrefetchAddr::NAME,
            CmdPrefetchAddr::new()
                .with_stream_id(8)
                .with_s_sec(true)
                .encode(),
        ),
        (
            CmdCfgiSte::NAME,
            CmdCfgiSte::new()
                .with_stream_id(8)
                .with_s_sec(true)
                .encode(),
        ),
        (
            CmdCfgiSteRange::NAME,
            CmdCfgiSteRange::new()
                .with_range(31)
                .with_s_sec(true)
                .encode(),
        ),
        (
            CmdCfgiCd::NAME,
            CmdCfgiCd::new().with_stream_id(8).with_s_sec(true).encode(),
        ),
        (
            CmdCfgiCdAll::NAME,
            CmdCfgiCdAll::new()
                .with_stream_id(8)
                .with_s_sec(true)
                .encode(),
        ),
    ];
    for (name, words) in cases {
        refused_then_resumed(&mut g, &format!("{name} SSec=1"), words);
    }
    // The STE was not re-read for the refused CFGI_STE: vSID 8 is as it was.
    assert!(matches!(
        g.platform.hw.installed(DEV_A),
        Some(StreamConfig::Nested(_))
    ));
}

#[test]
fn hypervisor_and_el3_tlb_invalidations_are_illegal_for_the_guest() {
    let mut g = attached(Policy::default(), false, |_| {});
    assert!(!Idr0(read(&mut g, Register::IDR0) as u32).hyp());
    let cases: [(&str, [u64; 2]); 6] = [
        (CmdTlbiEl2All::NAME, CmdTlbiEl2All::new().encode()),
        (
            CmdTlbiEl2Asid::NAME,
            CmdTlbiEl2Asid::new().with_asid(0x42).encode(),
        ),
        (
            CmdTlbiEl2Va::NAME,
            CmdTlbiEl2Va::new()
                .with_asid(0x42)
                .with_addr(0x1000)
                .encode(),
        ),
        (
            CmdTlbiEl2Vaa::NAME,
            CmdTlbiEl2Vaa::new().with_addr(0x1000).encode(),
        ),
        (CmdTlbiEl3All::NAME, CmdTlbiEl3All::new().encode()),
        (
            CmdTlbiEl3Va::NAME,
            CmdTlbiEl3Va::new().with_addr(0x1000).encode(),
        ),
    ];
    for (name, words) in cases {
        refused_then_resumed(&mut g, name, words);
    }
}

#[test]
fn stage_2_invalidations_are_illegal_on_a_stage_1_only_smmu() {
    let mut g = attached(Policy::default(), false, |_| {});
    assert!(!Idr0(read(&mut g, Register::IDR0) as u32).s2p());
    // Another domain's VMID, and the domain's own: both ILLEGAL.
    for vmid in [VMID, VMID + 1, u16::MAX] {
        refused_then_resumed(
            &mut g,
            &format!("CMD_TLBI_S12_VMALL VMID {vmid}"),
            CmdTlbiS12Vmall::new().with_vmid(vmid).encode(),
        );
        refused_then_resumed(
            &mut g,
            &format!("CMD_TLBI_S2_IPA VMID {vmid}"),
            CmdTlbiS2Ipa::new().with_vmid(vmid).with_addr(RAM).encode(),
        );
    }
}

#[test]
fn ats_pri_and_stall_commands_are_illegal_on_the_presented_smmu() {
    let mut g = attached(Policy::default(), false, |_| {});
    let idr0 = Idr0(read(&mut g, Register::IDR0) as u32);
    assert!(!idr0.ats() && !idr0.pri());
    assert_eq!(idr0.stall_model(), Idr0StallModel::TERM_ONLY);
    let cases: [(&str, [u64; 2]); 4] = [
        (CmdAtcInv::NAME, CmdAtcInv::new().with_stream_id(8).encode()),
        (
            CmdPriResp::NAME,
            CmdPriResp::new().with_stream_id(8).encode(),
        ),
        (CmdResume::NAME, CmdResume::new().with_stream_id(8).encode()),
        (
            CmdStallTerm::NAME,
            CmdStallTerm::new().with_stream_id(8).encode(),
        ),
    ];
    for (name, words) in cases {
        refused_then_resumed(&mut g, name, words);
    }
    // Not even for another domain's stream.
    refused_then_resumed(
        &mut g,
        "CMD_ATC_INV for pSID 0x109",
        CmdAtcInv::new().with_stream_id(FOREIGN.psid).encode(),
    );
}

#[test]
fn cmd_sync_with_the_reserved_completion_signal_is_illegal() {
    for msi in [false, true] {
        let mut g = attached(Policy::default(), msi, |_| {});
        // CS is two bits wide; 0b11 is the one value the architecture leaves Reserved.
        let reserved = CmdSyncCs(0b11);
        assert_eq!(reserved.name(), None);
        refused_then_resumed(
            &mut g,
            "CMD_SYNC CS=0b11",
            CmdSync::new().with_cs(reserved).encode(),
        );
        refused_then_resumed(
            &mut g,
            "CMD_SYNC CS=0b11 with an MSI address",
            CmdSync::new()
                .with_cs(reserved)
                .with_msi_address(RAM + 0x60_0000)
                .encode(),
        );
        assert_eq!(
            g.platform.ram.read_u64(RAM + 0x60_0000),
            0,
            "no MSI-poll write"
        );
    }
}

#[test]
fn secure_only_mpam_and_dpt_commands_are_illegal_on_the_non_secure_queue() {
    let mut g = attached(Policy::default(), false, |_| {});
    let cases: [(&str, [u64; 2]); 10] = [
        (CmdTlbiSEl2All::NAME, CmdTlbiSEl2All::new().encode()),
        (CmdTlbiSEl2Asid::NAME, CmdTlbiSEl2Asid::new().encode()),
        (CmdTlbiSEl2Va::NAME, CmdTlbiSEl2Va::new().encode()),
        (CmdTlbiSEl2Vaa::NAME, CmdTlbiSEl2Vaa::new().encode()),
        (CmdTlbiSS12Vmall::NAME, CmdTlbiSS12Vmall::new().encode()),
        (CmdTlbiSS2Ipa::NAME, CmdTlbiSS2Ipa::new().encode()),
        (CmdTlbiSnhAll::NAME, CmdTlbiSnhAll::new().encode()),
        (
            CmdCfgiVmsPidm::NAME,
            CmdCfgiVmsPidm::new().with_vmid(VMID).encode(),
        ),
        (CmdDptiAll::NAME, CmdDptiAll::new().encode()),
        (CmdDptiPa::NAME, CmdDptiPa::new().encode()),
    ];
    for (name, words) in cases {
        refused_then_resumed(&mut g, name, words);
    }
}

// ---- 2. STEs outside the allow-list ----

/// What `LinuxGuest::attach` writes for vSID 8.
fn good_ste(g: &LinuxGuest) -> Ste {
    Ste::new()
        .with_v(true)
        .with_config(SteConfig::S1_TRANS)
        .with_s1_fmt(SteS1Fmt::LINEAR)
        .with_s1_context_ptr(g.cd_table(8))
        .with_s1dss(SteS1dss::SUBSTREAM0)
        .with_s1cir(SteS1cir::WB_RA)
        .with_s1cor(SteS1cor::WB_RA)
        .with_s1csh(SteS1csh::INNER_SHAREABLE)
}

/// Installs the good STE, then `bad`: the stream must abort with C_BAD_STE
/// reporting, and a physical C_BAD_STE must reach the guest as C_BAD_STE
/// for vSID 8. vSID 16 is never touched.
fn refused_as_bad_ste(g: &mut LinuxGuest, what: &str, bad: Ste) {
    let other = g.vsmmu.installed(16);
    let good = good_ste(g);
    g.write_ste(8, good).unwrap();
    assert!(
        matches!(
            g.platform.hw.installed(DEV_A),
            Some(StreamConfig::Nested(_))
        ),
        "{what}: the good STE is nested"
    );
    let bad_stes = g.vsmmu.stats().bad_stes;
    g.write_ste(8, bad).unwrap();
    assert_eq!(
        g.platform.hw.installed(DEV_A),
        Some(StreamConfig::Abort { report: true }),
        "{what}"
    );
    assert_eq!(
        g.vsmmu.installed(8),
        Some(Installed {
            config: StreamConfig::Abort { report: true },
            refusal: Some(Refusal::BadSte),
        }),
        "{what}"
    );
    assert!(g.vsmmu.stats().bad_stes > bad_stes, "{what}");
    assert_eq!(g.vsmmu.installed(16), other, "{what}: vSID 16 untouched");
    assert_eq!(
        deliver(g, DEV_A, bad_ste_event(DEV_A)),
        EventOutcome::Forwarded,
        "{what}"
    );
    let evs = g.events();
    assert_eq!(evs.len(), 1, "{what}: {evs:?}");
    match evs[0] {
        Event::CBadSte(e) => assert_eq!(e.stream_id(), 8, "{what}"),
        ref e => panic!("{what}: {e}"),
    }
    assert_confined(&g.platform.hw, 0);
}

/// STE fields of words 0 and 1 a nested guest may set (Linux's nesting allow-list).
const ALLOWED: [&str; 12] = [
    "V",
    "Config",
    "S1Fmt",
    "S1ContextPtr",
    "S1CDMax",
    "S1DSS",
    "S1CIR",
    "S1COR",
    "S1CSH",
    "S1STALLD",
    // Allowed only with the values checked in the next test.
    "EATS",
    "SHCFG",
];

#[test]
fn every_ste_field_outside_the_allow_list_is_refused_as_c_bad_ste() {
    let mut g = attached(Policy::default(), false, |_| {});
    let good = good_ste(&g);
    let mut fields = 0;
    for f in Ste::FIELDS {
        // SW_RESERVED is software's: IGNORED, tested below.
        if f.word > 1 || ALLOWED.contains(&f.name) || f.name == "SW_RESERVED" {
            continue;
        }
        fields += 1;
        let mask = f.mask();
        // The field's lowest bit, and every bit of it.
        for value in [mask & mask.wrapping_neg(), mask] {
            let mut bad = good;
            bad.0[usize::from(f.word)] |= value;
            refused_as_bad_ste(&mut g, &format!("STE.{} = {value:#x}", f.name), bad);
        }
    }
    assert!(fields >= 20, "{fields} fields outside the allow-list");
    // Bits of words 0 and 1 that no field covers.
    for w in 0..2 {
        for bit in 0..64 {
            if Ste::RES0[w] & (1u64 << bit) != 0 {
                let mut bad = good;
                bad.0[w] |= 1u64 << bit;
                refused_as_bad_ste(&mut g, &format!("STE RES0 word {w} bit {bit}"), bad);
            }
        }
    }
}

#[test]
fn ste_configs_with_stage_2_ats_or_too_many_substreams_are_refused_as_c_bad_ste() {
    let mut g = attached(Policy::default(), false, |_| {});
    let good = good_ste(&g);
    for config in [SteConfig::S2_TRANS, SteConfig::NESTED] {
        refused_as_bad_ste(
            &mut g,
            &format!("Config {config:?}"),
            good.with_config(config),
        );
    }
    let ssidsize = Idr1(read(&mut g, Register::IDR1) as u32).ssidsize();
    if ssidsize > 0 {
        for cd_max in (ssidsize + 1)..=31 {
            refused_as_bad_ste(
                &mut g,
                &format!("S1CDMax {cd_max} with SSIDSIZE {ssidsize}"),
                good.with_s1cd_max(cd_max),
            );
        }
    }
    // The presented SMMU never stalls (STALL_MODEL 0b01): S1STALLD is ILLEGAL (§5.2).
    let idr0 = Idr0(read(&mut g, Register::IDR0) as u32);
    assert_eq!(idr0.stall_model(), Idr0StallModel::TERM_ONLY);
    refused_as_bad_ste(&mut g, "S1STALLD=1", good.with_s1stalld(true));
    // A CD table beyond the presented output size.
    let oas = Idr5(read(&mut g, Register::IDR5) as u32).oas();
    assert_eq!(oas, Idr5Oas::OAS_40_BIT);
    refused_as_bad_ste(
        &mut g,
        "S1ContextPtr beyond OAS",
        good.with_s1_context_ptr(1 << 40),
    );
    for shcfg in [SteShcfg::OUTER_SHAREABLE, SteShcfg::INNER_SHAREABLE] {
        refused_as_bad_ste(&mut g, &format!("SHCFG {shcfg:?}"), good.with_shcfg(shcfg));
    }
    // An invalid STE, and one with nothing but stage-2 words filled in.
    refused_as_bad_ste(&mut g, "V=0", good.with_v(false));
    let mut s2 = good;
    for w in 2..Ste::WORDS {
        s2.0[w] = u64::MAX;
    }
    // Words 2-7 are never copied: the stream stays nested with the guest's stage 1 only.
    g.write_ste(8, s2).unwrap();
    match g.platform.hw.installed(DEV_A) {
        Some(StreamConfig::Nested(s1)) => {
            assert_eq!(s1.s1_context_ptr, Ipa(g.cd_table(8)));
        }
        other => panic!("stage-2 words in the guest's STE: {other:?}"),
    }
    assert_confined(&g.platform.hw, 0);
}

#[test]
fn ste_fields_the_smmu_ignores_are_accepted_and_never_reach_the_hardware() {
    let mut g = attached(Policy::default(), false, |_| {});
    let good = good_ste(&g);
    g.write_ste(8, good).unwrap();
    let want = g.platform.hw.installed(DEV_A);
    assert!(matches!(want, Some(StreamConfig::Nested(_))));
    let idr0 = Idr0(read(&mut g, Register::IDR0) as u32);
    let idr1 = Idr1(read(&mut g, Register::IDR1) as u32);
    assert!(!idr0.ats() && idr1.ssidsize() == 0);
    let cases = [
        ("SW_RESERVED", good.with_sw_reserved(0xf)),
        // EATS is IGNORED without ATS, S1CDMax without substreams (§5.2).
        ("EATS without ATS", good.with_eats(SteEats::FULL_ATS)),
        (
            "EATS 0b11 without ATS",
            good.with_eats(SteEats::FULL_ATS_DPT),
        ),
        ("S1CDMax without substreams", good.with_s1cd_max(5)),
    ];
    for (what, ste) in cases {
        // (Linux 6.12 may pass through V=0 on the way: only the end counts.)
        g.write_ste(8, ste).unwrap();
        assert_eq!(g.vsmmu.installed(8).and_then(|i| i.refusal), None, "{what}");
        assert_eq!(
            g.platform.hw.installed(DEV_A),
            want,
            "{what}: the same physical stream"
        );
    }
    assert_confined(&g.platform.hw, 0);
}

// ---- 3. CMDQ_PROD beyond the queue ----

#[test]
fn cmdq_prod_far_beyond_the_queue_is_bounded() {
    let policy = Policy {
        commands_per_call: 16,
        ..Policy::default()
    };
    let mut g = attached(policy, false, |_| {});
    let size = 1u32 << g.layout.cmdq_log2;

    // Every slot holds a legal command: a PROD with every WR bit set is
    // PROD = 2 * size - 1 once the bits above the wrap bit are ignored, so
    // the vSMMU may consume (at most) two laps' worth, a bounded amount per call.
    for i in 0..size {
        let at = g.layout.cmdq + CMD_BYTES * u64::from(i);
        g.platform.ram.write_words(at, &tlbi_asid(i as u16));
    }
    let consumed = g.vsmmu.stats().commands_total();
    let far = CmdqProd(0).with_wr(u32::MAX);
    write(&mut g, Register::CMDQ_PROD, u64::from(far.0));
    let calls = settle(&mut g);
    let total = g.vsmmu.stats().commands_total() - consumed;
    assert!(
        total <= 2 * u64::from(size),
        "{total} commands for one PROD write"
    );
    assert!(u64::from(calls) >= (total / u64::from(policy.commands_per_call)).saturating_sub(1));
    let c = cons(&mut g);
    assert_eq!(c.err(), CmdqConsErr::CERROR_NONE);
    assert_eq!(c.rd(), far.wr() & ((size << 1) - 1), "CONS caught up");

    // Wider writes: a raw doubleword and a word of ones at CMDQ_PROD.
    let off = Register::CMDQ_PROD.info().frame_offset();
    for (size_bytes, value) in [(4, u64::from(u32::MAX)), (8, u64::MAX), (4, 0xdead_beef)] {
        checked(&mut g, "raw CMDQ_PROD", |g| {
            g.write_raw(off, size_bytes, value)
        });
        settle(&mut g);
    }
    // Zeroed slots are ILLEGAL: the same far PROD now stops the queue at once.
    for i in 0..size {
        let at = g.layout.cmdq + CMD_BYTES * u64::from(i);
        g.platform.ram.write_words(at, &[0, 0]);
    }
    let before = cons(&mut g).rd();
    assert_ne!(before, far.wr() & ((size << 1) - 1));
    write(&mut g, Register::CMDQ_PROD, u64::from(far.0));
    settle(&mut g);
    let c = cons(&mut g);
    assert_eq!((c.rd(), c.err()), (before, CmdqConsErr::CERROR_ILL));
    assert!(gerror_active(&mut g).cmdq_err());

    // The guest writes a sane PROD (where CONS is), acknowledges, and the queue works.
    g.prod = cons(&mut g).rd();
    publish(&mut g);
    ack_gerror(&mut g);
    settle(&mut g);
    assert!(!gerror_active(&mut g).cmdq_err());
    let calls = g.platform.hw.calls.len();
    g.issue(&[Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(0x4242))])
        .unwrap();
    assert!(hw_saw_asid(&g, calls, 0x4242));
    assert_confined(&g.platform.hw, 0);
    assert_streams_confined(&g);
}

// ---- 4. bases outside guest RAM ----

/// Turns the command queue off, acknowledges any global error, points the
/// queue at `base`, and turns it back on.
fn move_cmdq(g: &mut LinuxGuest, base: u64, log2size: u8) {
    let cr0 = Cr0(read(g, Register::CR0ACK) as u32);
    write(g, Register::CR0, u64::from(cr0.with_cmdqen(false).0));
    assert!(!Cr0(read(g, Register::CR0ACK) as u32).cmdqen());
    // (Acknowledging with the queue still on would restart it at the same
    // entry and fault again, as the architecture says.)
    ack_gerror(g);
    let b = CmdqBase(0)
        .with_ra(true)
        .with_addr(base)
        .with_log2size(log2size);
    write(g, Register::CMDQ_BASE, b.0);
    write(g, Register::CMDQ_PROD, 0);
    write(g, Register::CMDQ_CONS, 0);
    g.prod = 0;
    g.layout.cmdq = base;
    g.layout.cmdq_log2 = u32::from(log2size);
    write(g, Register::CR0, u64::from(cr0.with_cmdqen(true).0));
    assert!(Cr0(read(g, Register::CR0ACK) as u32).cmdqen());
}

#[test]
fn a_command_queue_outside_guest_ram_stops_with_cerror_abt() {
    let mut g = attached(Policy::default(), false, |_| {});
    let home = (g.layout.cmdq, g.layout.cmdq_log2 as u8);
    for (what, base, good_entries) in [
        ("outside RAM", NOWHERE, 0),
        // The first four entries are RAM, the fifth is past its end.
        (
            "straddling the end of RAM",
            RAM + RAM_SIZE as u64 - 4 * CMD_BYTES,
            4,
        ),
    ] {
        move_cmdq(&mut g, base, 8);
        let irqs = gerror_irqs(&g);
        let abt = g.vsmmu.stats().cerror_abt;
        for i in 0..(good_entries + 2) {
            put(&mut g, tlbi_asid(0x100 + i as u16));
        }
        publish(&mut g);
        settle(&mut g);
        let c = cons(&mut g);
        assert_eq!(
            c.rd(),
            good_entries,
            "{what}: CONS at the entry that faulted"
        );
        assert_eq!(c.err(), CmdqConsErr::CERROR_ABT, "{what}");
        assert!(gerror_active(&mut g).cmdq_err(), "{what}");
        assert_eq!(gerror_irqs(&g), irqs + 1, "{what}");
        assert_eq!(g.vsmmu.stats().cerror_abt, abt + 1, "{what}");
        // Stays stopped, costs nothing more.
        publish(&mut g);
        deferred_anyway(&mut g);
        assert_eq!(g.vsmmu.stats().cerror_abt, abt + 1, "{what}");
        // Recovery: queue off, error acknowledged, queue back in RAM.
        move_cmdq(&mut g, home.0, home.1);
        assert!(!gerror_active(&mut g).cmdq_err());
        let calls = g.platform.hw.calls.len();
        g.issue(&[Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(0x77))])
            .unwrap();
        assert!(hw_saw_asid(&g, calls, 0x77), "{what}");
    }
    assert_confined(&g.platform.hw, 0);
}

#[test]
fn a_stream_table_outside_guest_ram_becomes_f_ste_fetch() {
    for two_level in [false, true] {
        let mut g = domain_with(Policy::default(), false, two_level, |l| {
            l.strtab = NOWHERE;
        });
        g.bring_up().unwrap();
        for (vsid, stream) in [(8, DEV_A), (16, DEV_B)] {
            let fetch = if two_level {
                // The L1 descriptor of both vSIDs.
                NOWHERE
            } else {
                NOWHERE + STE_BYTES * u64::from(vsid)
            };
            assert_eq!(
                g.vsmmu.installed(vsid),
                Some(Installed {
                    config: StreamConfig::Abort { report: true },
                    refusal: Some(Refusal::FetchFault(Ipa(fetch))),
                }),
                "vSID {vsid}"
            );
            assert_eq!(
                g.platform.hw.installed(stream),
                Some(StreamConfig::Abort { report: true })
            );
            assert_eq!(
                deliver(&mut g, stream, bad_ste_event(stream)),
                EventOutcome::Forwarded
            );
            let evs = g.events();
            assert_eq!(evs.len(), 1, "{evs:?}");
            match evs[0] {
                Event::FSteFetch(e) => {
                    assert_eq!((e.stream_id(), e.fetch_addr()), (vsid, fetch))
                }
                ref e => panic!("vSID {vsid}: {e}"),
            }
        }
        assert_confined(&g.platform.hw, 0);
        assert_streams_confined(&g);
    }
}

#[test]
fn an_event_queue_outside_guest_ram_raises_eventq_abt_err() {
    let mut g = attached(Policy::default(), false, |l| l.evtq = NOWHERE);
    let irqs = gerror_irqs(&g);
    let dropped = g.vsmmu.stats().events_dropped;
    assert_eq!(
        deliver(&mut g, DEV_A, fault(DEV_A, 0x1000)),
        EventOutcome::Dropped
    );
    assert!(gerror_active(&mut g).eventq_abt_err());
    assert!(!gerror_active(&mut g).cmdq_err());
    assert_eq!(gerror_irqs(&g), irqs + 1);
    // While the error is active, more events are dropped without touching
    // memory or raising more interrupts.
    let accesses = g.platform.ram.accesses;
    for i in 0..100 {
        assert_eq!(
            deliver(&mut g, DEV_A, fault(DEV_A, i << 12)),
            EventOutcome::Dropped
        );
    }
    assert_eq!(g.platform.ram.accesses, accesses);
    assert_eq!(gerror_irqs(&g), irqs + 1);
    assert_eq!(g.vsmmu.stats().events_dropped, dropped + 101);
    // The command queue is unaffected.
    g.issue(&[Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(1))])
        .unwrap();
    // A foreign stream's event is not ours whatever state the queue is in.
    assert_eq!(
        deliver(&mut g, FOREIGN, fault(FOREIGN, 0)),
        EventOutcome::NotOurs
    );
    assert_eq!(
        deliver(
            &mut g,
            PhysStream {
                smmu: OTHER_SMMU,
                psid: DEV_A.psid
            },
            fault(DEV_A, 0)
        ),
        EventOutcome::NotOurs
    );
    assert_confined(&g.platform.hw, 0);
}

// ---- 5. LOG2SIZE beyond the advertised maximum ----

#[test]
fn oversized_log2size_values_behave_as_the_advertised_maximum() {
    let policy = Policy {
        pending_event_limit: 10_000,
        ..Policy::default()
    };
    let mut g = attached(policy, false, |_| {});
    let idr1 = Idr1(read(&mut g, Register::IDR1) as u32);
    let (cmdqs, eventqs, sidsize) = (idr1.cmdqs(), idr1.eventqs(), idr1.sidsize());

    // Command queue: LOG2SIZE 31 is a queue of 2^CMDQS entries. A poisoned
    // entry just past it is never read.
    let base = g.layout.cmdq;
    move_cmdq(&mut g, base, 31);
    g.layout.cmdq_log2 = u32::from(cmdqs);
    let past = base + CMD_BYTES * (1u64 << cmdqs);
    assert!(Command::decode(raw_opcode(0)).is_err());
    g.platform.ram.write_words(past, &raw_opcode(0));
    let calls = g.platform.hw.calls.len();
    for round in 0..5u16 {
        let cmds: Vec<Command> = (0..60u16)
            .map(|i| Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(round * 60 + i)))
            .collect();
        g.issue(&cmds).unwrap();
    }
    assert!(hw_saw_asid(&g, calls, 299));
    assert_eq!(cons(&mut g).err(), CmdqConsErr::CERROR_NONE);
    assert!(!gerror_active(&mut g).cmdq_err());

    // Event queue: LOG2SIZE 31 is a queue of 2^EVENTQS entries: it fills,
    // overflows, and nothing past it is written.
    let cr0 = Cr0(read(&mut g, Register::CR0ACK) as u32);
    write(&mut g, Register::CR0, u64::from(cr0.with_eventqen(false).0));
    let eb = EventqBase(0)
        .with_wa(true)
        .with_addr(g.layout.evtq)
        .with_log2size(31);
    write(&mut g, Register::EVENTQ_BASE, eb.0);
    write(&mut g, Register::EVENTQ_PROD, 0);
    write(&mut g, Register::EVENTQ_CONS, 0);
    g.evt_cons = 0;
    write(&mut g, Register::CR0, u64::from(cr0.0));
    let entries = 1u64 << eventqs;
    let past = g.layout.evtq + EVT_BYTES * entries;
    let canary = [0x5a5a_5a5a_5a5a_5a5a; 4];
    g.platform.ram.write_words(past, &canary);
    let mut forwarded = 0;
    for i in 0..(entries + 50) {
        if deliver(&mut g, DEV_A, fault(DEV_A, i << 12)) == EventOutcome::Forwarded {
            forwarded += 1;
        }
    }
    assert_eq!(forwarded, entries);
    assert_eq!(g.platform.ram.read_words::<4>(past), canary);
    let prod = EventqProd(read(&mut g, Register::EVENTQ_PROD) as u32);
    let evcons = EventqCons(read(&mut g, Register::EVENTQ_CONS) as u32);
    assert_ne!(prod.ovflg(), evcons.ovackflg(), "overflow flagged");
    g.layout.evtq_log2 = u32::from(eventqs);
    assert_eq!(g.events().len() as u64, entries);

    // Stream table: LOG2SIZE 63 is SIDSIZE bits; the domain's two STEs are
    // all a CFGI_ALL reads.
    let cr0 = Cr0(read(&mut g, Register::CR0ACK) as u32);
    write(&mut g, Register::CR0, u64::from(cr0.with_smmuen(false).0));
    settle(&mut g);
    let cfg = StrtabBaseCfg(0)
        .with_fmt(StrtabBaseCfgFmt::LINEAR)
        .with_log2size(63);
    write(&mut g, Register::STRTAB_BASE_CFG, u64::from(cfg.0));
    assert_eq!(
        StrtabBaseCfg(read(&mut g, Register::STRTAB_BASE_CFG) as u32).log2size(),
        63
    );
    write(&mut g, Register::CR0, u64::from(cr0.0));
    settle(&mut g);
    assert!(matches!(
        g.platform.hw.installed(DEV_A),
        Some(StreamConfig::Nested(_))
    ));
    assert!(sidsize < 63);
    let accesses = g.platform.ram.accesses;
    g.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])
        .unwrap();
    // Two commands, the guest's own polling does not touch RAM, two STEs.
    assert!(g.platform.ram.accesses - accesses <= 2 + 2 + 2 * 2);
    assert_confined(&g.platform.hw, 0);
    assert_streams_confined(&g);
}

// ---- 6. two-level stream tables pointing anywhere ----

#[test]
fn two_level_descriptors_pointing_anywhere_are_refused_without_panic() {
    let mut g = domain_with(Policy::default(), false, true, |_| {});
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let split = u32::from(
        StrtabBaseCfg(read(&mut g, Register::STRTAB_BASE_CFG) as u32)
            .split()
            .0,
    );
    // Both vSIDs share the first L1 descriptor; the guest model's L2 table.
    let l1_addr = g.layout.strtab;
    let good = L1std([g.platform.ram.read_u64(l1_addr)]);
    assert_eq!(u32::from(good.span()), split + 1);
    let l2 = good.l2_ptr();
    // A garbage L2 table in RAM.
    let garbage = RAM + 0x70_0000;
    let mut rng = Rng(0x1234_5678);
    for i in 0..(1u64 << split) * (STE_BYTES / 8) {
        g.platform.ram.write_u64(garbage + 8 * i, rng.next());
    }
    let ones = RAM + 0x78_0000;
    for i in 0..(1u64 << split) * (STE_BYTES / 8) {
        g.platform.ram.write_u64(ones + 8 * i, u64::MAX);
    }

    type Want = fn(u32, u64) -> Option<Refusal>;
    let bad_sid: Want = |_, _| Some(Refusal::BadStreamId);
    // The L2 array is aligned to its size (L2Ptr's low bits read as 0, §5.1);
    // the guest model uses a 16 KiB one (SPLIT 8, Span 9), as Linux does.
    assert_eq!(split, 8);
    let fetch: Want = |vsid, l2| {
        let aligned = l2 & !((STE_BYTES << 8) - 1);
        Some(Refusal::FetchFault(Ipa(
            aligned.wrapping_add(STE_BYTES * u64::from(vsid))
        )))
    };
    let cases: Vec<(&str, L1std, Option<Want>)> = vec![
        ("Span 0", L1std::new().with_l2_ptr(l2), Some(bad_sid)),
        (
            "Span SPLIT+2",
            L1std::new().with_span(split as u8 + 2).with_l2_ptr(l2),
            Some(bad_sid),
        ),
        (
            "Span 31",
            L1std::new().with_span(31).with_l2_ptr(l2),
            Some(bad_sid),
        ),
        (
            "Span 1 (only StreamID 0 of the span)",
            L1std::new().with_span(1).with_l2_ptr(l2),
            Some(bad_sid),
        ),
        (
            "L2Ptr outside RAM",
            L1std::new().with_span(split as u8 + 1).with_l2_ptr(NOWHERE),
            Some(fetch),
        ),
        (
            "L2Ptr at the top of the address space",
            L1std::new()
                .with_span(split as u8 + 1)
                .with_l2_ptr(u64::MAX),
            Some(fetch),
        ),
        (
            "L2Ptr just past the end of RAM",
            L1std::new()
                .with_span(split as u8 + 1)
                .with_l2_ptr(RAM + RAM_SIZE as u64),
            Some(fetch),
        ),
        (
            "L2Ptr to RAM full of ones",
            L1std::new().with_span(split as u8 + 1).with_l2_ptr(ones),
            Some(|_, _| Some(Refusal::BadSte)),
        ),
        (
            "L2Ptr to RAM garbage",
            L1std::new().with_span(split as u8 + 1).with_l2_ptr(garbage),
            None,
        ),
        (
            "L2Ptr to the L1 table itself",
            L1std::new().with_span(split as u8 + 1).with_l2_ptr(l1_addr),
            None,
        ),
        ("every bit set", L1std([u64::MAX]), None),
    ];
    for (what, l1, want) in cases {
        g.platform.ram.write_u64(l1_addr, l1.0[0]);
        g.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])
            .unwrap();
        for (vsid, stream) in [(8, DEV_A), (16, DEV_B)] {
            let got = g.vsmmu.installed(vsid).unwrap();
            if let Some(want) = want {
                assert_eq!(got.refusal, want(vsid, l1.l2_ptr()), "{what}, vSID {vsid}");
            }
            if got.refusal.is_some() {
                assert_eq!(got.config, StreamConfig::Abort { report: true }, "{what}");
            }
            assert_eq!(g.platform.hw.installed(stream), Some(got.config), "{what}");
            // The device's next access: what the guest sees matches the refusal.
            let out = deliver(&mut g, stream, bad_ste_event(stream));
            let evs = g.events();
            match got.refusal {
                None => assert!(evs.is_empty(), "{what}: {evs:?}"),
                Some(r) => {
                    assert_eq!(out, EventOutcome::Forwarded, "{what}");
                    assert_eq!(evs.len(), 1, "{what}: {evs:?}");
                    match (r, evs[0]) {
                        (Refusal::BadStreamId, Event::CBadStreamid(e)) => {
                            assert_eq!(e.stream_id(), vsid)
                        }
                        (Refusal::BadSte, Event::CBadSte(e)) => assert_eq!(e.stream_id(), vsid),
                        (Refusal::FetchFault(ipa), Event::FSteFetch(e)) => {
                            // As much of the address as the record holds.
                            let held = FSteFetch::new().with_fetch_addr(ipa.0).fetch_addr();
                            assert_eq!((e.stream_id(), e.fetch_addr()), (vsid, held))
                        }
                        (r, e) => panic!("{what}: {r:?} reported as {e}"),
                    }
                }
            }
        }
        assert_confined(&g.platform.hw, 0);
        assert_streams_confined(&g);
    }
    // A Span that covers vSID 8 but not vSID 16.
    let span = L1std::new().with_span(5).with_l2_ptr(l2);
    assert!(8 < 1 << (span.span() - 1) && 16 >= 1 << (span.span() - 1));
    g.platform.ram.write_u64(l1_addr, span.0[0]);
    g.issue(&[Command::CfgiSteRange(CmdCfgiSteRange::new().with_range(31))])
        .unwrap();
    assert!(matches!(
        g.vsmmu.installed(8).unwrap().config,
        StreamConfig::Nested(_)
    ));
    assert_eq!(
        g.vsmmu.installed(16).unwrap().refusal,
        Some(Refusal::BadStreamId)
    );
    // The L1 table itself outside RAM.
    let cr0 = Cr0(read(&mut g, Register::CR0ACK) as u32);
    write(&mut g, Register::CR0, u64::from(cr0.with_smmuen(false).0));
    let sb = StrtabBase(0).with_ra(true).with_addr(NOWHERE);
    write(&mut g, Register::STRTAB_BASE, sb.0);
    write(&mut g, Register::CR0, u64::from(cr0.0));
    settle(&mut g);
    for vsid in [8, 16] {
        assert_eq!(
            g.vsmmu.installed(vsid).unwrap().refusal,
            Some(Refusal::FetchFault(Ipa(NOWHERE)))
        );
    }
    assert_confined(&g.platform.hw, 0);
}

// ---- 7. CR0 changes with commands in flight ----

#[test]
fn toggling_cmdqen_with_commands_in_flight_only_consumes_while_enabled() {
    let policy = Policy {
        commands_per_call: 4,
        stes_per_call: 1,
        ..Policy::default()
    };
    let mut g = attached(policy, false, |_| {});
    for i in 0..200u16 {
        put(&mut g, tlbi_asid(0x1000 + i));
        if i % 50 == 49 {
            put(&mut g, sync());
        }
    }
    publish(&mut g);
    let mut toggles = 0;
    loop {
        let on = Cr0(read(&mut g, Register::CR0ACK) as u32);
        assert!(on.cmdqen());
        // A couple of calls' worth while enabled.
        deferred(&mut g);
        deferred(&mut g);
        let off = on.with_cmdqen(false);
        write(&mut g, Register::CR0, u64::from(off.0));
        assert!(!Cr0(read(&mut g, Register::CR0ACK) as u32).cmdqen());
        let stopped = cons(&mut g);
        let consumed = g.vsmmu.stats().commands_total();
        // Nothing moves while CMDQEN=0: not deferred work, not PROD writes.
        settle(&mut g);
        deferred_anyway(&mut g);
        publish(&mut g);
        deferred_anyway(&mut g);
        assert_eq!(cons(&mut g), stopped);
        assert_eq!(g.vsmmu.stats().commands_total(), consumed);
        write(&mut g, Register::CR0, u64::from(on.0));
        toggles += 1;
        if stopped.rd() == g.prod {
            break;
        }
        assert!(toggles < 200, "the queue never drains");
    }
    assert!(toggles > 5);
    settle(&mut g);
    assert_eq!(cons(&mut g).rd(), g.prod);
    assert_eq!(cons(&mut g).err(), CmdqConsErr::CERROR_NONE);
    assert!(hw_saw_asid(&g, 0, 0x1000 + 199));
    assert_confined(&g.platform.hw, 0);
}

#[test]
fn disabling_smmuen_with_commands_in_flight_falls_back_to_what_gbpa_says() {
    let policy = Policy {
        commands_per_call: 4,
        stes_per_call: 1,
        ..Policy::default()
    };
    let mut g = attached(policy, false, |_| {});
    let on = Cr0(read(&mut g, Register::CR0ACK) as u32);
    for round in 0..3 {
        for i in 0..100u16 {
            put(&mut g, tlbi_asid(i));
            put(
                &mut g,
                CmdCfgiSte::new().with_stream_id(8).with_leaf(true).encode(),
            );
        }
        put(&mut g, sync());
        publish(&mut g);
        deferred(&mut g);

        // SMMUEN off mid-flood: GBPA (at reset: not aborting) says the domain's stage 2.
        write(&mut g, Register::CR0, u64::from(on.with_smmuen(false).0));
        deferred(&mut g);
        settle(&mut g);
        for (vsid, stream) in [(8, DEV_A), (16, DEV_B)] {
            assert_eq!(
                g.vsmmu.installed(vsid).map(|i| i.config),
                Some(StreamConfig::Stage2Only),
                "round {round}"
            );
            assert_eq!(
                g.platform.hw.installed(stream),
                Some(StreamConfig::Stage2Only)
            );
        }
        // GBPA.ABORT with Update: every stream aborts, and the update completes.
        let abort = Gbpa(0).with_abort(true).with_update(true);
        write(&mut g, Register::GBPA, u64::from(abort.0));
        settle(&mut g);
        assert!(!Gbpa(read(&mut g, Register::GBPA) as u32).update());
        for (vsid, stream) in [(8, DEV_A), (16, DEV_B)] {
            assert_eq!(
                g.vsmmu.installed(vsid).map(|i| i.config),
                Some(StreamConfig::Abort { report: false })
            );
            assert_eq!(
                g.platform.hw.installed(stream),
                Some(StreamConfig::Abort { report: false })
            );
        }
        // The queue still runs with SMMUEN=0 (CFGI_STE re-reads nothing that matters).
        settle(&mut g);
        assert_eq!(cons(&mut g).rd(), g.prod, "round {round}");
        for stream in [DEV_A, DEV_B] {
            assert_eq!(
                g.platform.hw.installed(stream),
                Some(StreamConfig::Abort { report: false })
            );
        }
        // GBPA back to "bypass", which is the domain's stage 2; never physical bypass.
        let bypass = Gbpa(0).with_update(true);
        write(&mut g, Register::GBPA, u64::from(bypass.0));
        settle(&mut g);
        assert_eq!(
            g.platform.hw.installed(DEV_A),
            Some(StreamConfig::Stage2Only)
        );
        // SMMUEN back on: the guest's stream table again.
        write(&mut g, Register::CR0, u64::from(on.0));
        settle(&mut g);
        assert!(matches!(
            g.platform.hw.installed(DEV_A),
            Some(StreamConfig::Nested(_))
        ));
        assert_eq!(
            g.platform.hw.installed(DEV_B),
            Some(StreamConfig::Abort { report: false })
        );
    }
    assert_confined(&g.platform.hw, 0);
    assert_streams_confined(&g);
}

// ---- 8. a flood of commands ----

/// A deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The n-th command of the flood: invalidations that do not merge much
/// (distinct ASIDs), page invalidations that do, CD and STE invalidations,
/// and a CMD_SYNC only every 1024 commands.
fn flood_command(n: u64) -> [u64; 2] {
    if n % 1024 == 1023 {
        return sync();
    }
    let k = n / 8;
    match n % 8 {
        0..=3 => tlbi_asid((4 * k + n % 8) as u16),
        4 => CmdTlbiNhVa::new()
            .with_asid(0x42)
            .with_addr((k & 0xf_ffff) << 12)
            .with_leaf(true)
            .encode(),
        5 => CmdCfgiCd::new().with_stream_id(8).encode(),
        6 => CmdTlbiNhVaa::new().with_addr((k & 0xf_ffff) << 12).encode(),
        _ => CmdCfgiSte::new().with_stream_id(8).with_leaf(true).encode(),
    }
}

#[test]
fn a_flood_of_a_million_commands_is_bounded_per_call_and_by_the_hardware_budget() {
    const FLOOD: u64 = 1_000_000;
    let policy = Policy {
        hw_burst: 32,
        hw_refill_per_ms: 16,
        ..Policy::default()
    };
    // A small queue, but twice the per-call allowance, so that traps run out of it.
    let mut g = domain(policy, false, |l| l.cmdq_log2 = 7);
    // Installs at creation are the reset state, not paid from the budget.
    let free_installs = g.platform.hw.installs;
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    settle(&mut g);
    g.platform.hw.count_only = true;
    g.platform.hw.calls.clear();

    let size = 1u32 << g.layout.cmdq_log2;
    let mask = (size << 1) - 1;
    let start = g.vsmmu.stats().commands_total();
    let requests = g.platform.defer.requests;
    let mut sent = 0u64;
    let mut rounds = 0u64;
    let budget_holds = |g: &LinuxGuest| {
        let hw = &g.platform.hw;
        // Each install is an STE write, a CFGI_STE and a CMD_SYNC.
        let spent = hw.commands + hw.syncs + 2 * (hw.installs - free_installs);
        let allowed = u64::from(policy.hw_burst)
            + g.platform.now_ns * u64::from(policy.hw_refill_per_ms) / 1_000_000;
        assert!(
            spent <= allowed,
            "{spent} physical commands by {} ns",
            g.platform.now_ns
        );
    };
    while g.vsmmu.stats().commands_total() - start < FLOOD {
        rounds += 1;
        assert!(rounds < 10 * FLOOD, "the flood never drains");
        // The guest fills whatever space there is and rings the doorbell.
        let used = g.prod.wrapping_sub(cons(&mut g).rd()) & mask;
        let n = u64::from(size - used).min(FLOOD - sent);
        for _ in 0..n {
            put(&mut g, flood_command(sent));
            sent += 1;
        }
        if n > 0 {
            publish(&mut g);
        }
        g.platform.now_ns += 1_000;
        // The hypervisor runs what was deferred, a few calls per guest round.
        for _ in 0..4 {
            if !deferred(&mut g) {
                break;
            }
        }
        budget_holds(&g);
    }
    settle(&mut g);
    budget_holds(&g);
    let s = g.vsmmu.stats();
    eprintln!(
        "DBG now {} hw {} {} {} rounds {rounds} defer {} {:?}",
        g.platform.now_ns,
        g.platform.hw.commands,
        g.platform.hw.syncs,
        g.platform.hw.installs,
        g.platform.defer.requests,
        s
    );
    assert_eq!(s.commands_total() - start, FLOOD);
    assert_eq!(s.cerror_ill + s.cerror_abt, 0);
    assert!(g.platform.defer.requests > requests, "deferral requests");
    assert!(s.budget_exhausted > 0);
    assert!(s.hw_budget_exhausted > 0, "{s:?}");
    assert!(s.merged > 0);
    // The per-call bound and the hardware budget were checked on every call.
    assert!(g.platform.hw.commands > 0 && g.platform.hw.syncs > 0);
}

// ---- 9. a flood of faults ----

#[test]
fn a_fault_flood_stops_where_the_guest_queue_is_full_and_flags_the_loss() {
    let policy = Policy {
        pending_event_limit: 32,
        ..Policy::default()
    };
    // The limit caps the event queue the vSMMU presents; the guest sizes its
    // queue from IDR1.EVENTQS, as Linux does.
    let mut g = attached(policy, false, |l| l.evtq_log2 = 5);
    let presented = Idr1(g.vsmmu.ident(Register::IDR1) as u32).eventqs();
    assert_eq!(1u32 << presented, policy.pending_event_limit);
    let log2 = g.layout.evtq_log2;
    let pending = |g: &mut LinuxGuest| {
        let prod = EventqProd(read(g, Register::EVENTQ_PROD) as u32).wr();
        let cons = EventqCons(read(g, Register::EVENTQ_CONS) as u32).rd();
        prod.wrapping_sub(cons) & ((2 << log2) - 1)
    };
    let base = g.vsmmu.stats().clone();
    let irqs = g.platform.irq.raised.len();
    let mut forwarded = 0u64;
    for i in 0..10_000u64 {
        let stream = if i % 2 == 0 { DEV_A } else { DEV_B };
        match deliver(&mut g, stream, fault(stream, i << 12)) {
            EventOutcome::Forwarded => forwarded += 1,
            EventOutcome::Dropped => {}
            other => panic!("{other:?}"),
        }
        assert!(pending(&mut g) <= policy.pending_event_limit);
    }
    let s = g.vsmmu.stats();
    assert_eq!(forwarded, u64::from(policy.pending_event_limit));
    assert_eq!(s.events_forwarded - base.events_forwarded, forwarded);
    assert_eq!(s.events_dropped - base.events_dropped, 10_000 - forwarded);
    assert!(g.platform.irq.raised.len() - irqs <= forwarded as usize);
    // Every loss is flagged: the queue overflowed (§7.4).
    let prod = EventqProd(read(&mut g, Register::EVENTQ_PROD) as u32);
    assert!(prod.ovflg());
    // The guest consumes: all faults it got name its own vSIDs, and forwarding resumes.
    let evs = g.events();
    assert_eq!(evs.len(), policy.pending_event_limit as usize);
    for e in &evs {
        match e {
            Event::FTranslation(f) => assert!(f.stream_id() == 8 || f.stream_id() == 16),
            e => panic!("{e}"),
        }
    }
    assert_eq!(
        deliver(&mut g, DEV_A, fault(DEV_A, 0)),
        EventOutcome::Forwarded
    );
    assert_eq!(pending(&mut g), 1);
    assert_confined(&g.platform.hw, 0);
}

#[test]
fn a_tiny_event_queue_overflows_with_ovflg_and_recovers_after_the_guest_consumes() {
    let policy = Policy::default();
    let mut g = attached(policy, false, |l| l.evtq_log2 = 2);
    let entries = 1u32 << g.layout.evtq_log2;
    assert!(policy.pending_event_limit > entries);
    let past = g.layout.evtq + EVT_BYTES * u64::from(entries);
    let canary = [0xa5a5_a5a5_a5a5_a5a5; 4];
    g.platform.ram.write_words(past, &canary);
    for round in 0..3 {
        let mut forwarded = 0;
        for i in 0..1_000u64 {
            if deliver(&mut g, DEV_A, fault(DEV_A, i << 12)) == EventOutcome::Forwarded {
                forwarded += 1;
            }
        }
        assert_eq!(forwarded, entries, "round {round}");
        let prod = EventqProd(read(&mut g, Register::EVENTQ_PROD) as u32);
        let cons = EventqCons(read(&mut g, Register::EVENTQ_CONS) as u32);
        assert_ne!(prod.ovflg(), cons.ovackflg(), "round {round}: OVFLG set");
        assert_eq!(g.platform.ram.read_words::<4>(past), canary);
        // Consuming acknowledges the overflow (Linux copies OVFLG into OVACKFLG).
        let evs = g.events();
        assert_eq!(evs.len() as u32, entries);
        let prod = EventqProd(read(&mut g, Register::EVENTQ_PROD) as u32);
        let cons = EventqCons(read(&mut g, Register::EVENTQ_CONS) as u32);
        assert_eq!(prod.ovflg(), cons.ovackflg());
        assert_eq!(
            deliver(&mut g, DEV_A, fault(DEV_A, 0)),
            EventOutcome::Forwarded,
            "round {round}: forwarding resumes"
        );
        assert_eq!(g.events().len(), 1);
    }
    assert_confined(&g.platform.hw, 0);
}

// ---- 10. random register writes ----

/// A value a fuzzer would try: random, small, all ones, or an address in RAM.
fn register_value(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 | 1 => rng.next(),
        2 => rng.below(0x40),
        3 => u64::MAX,
        4 => 0,
        5 | 6 => (RAM + rng.below(RAM_SIZE as u64)) | rng.below(32),
        _ => 1u64 << rng.below(64),
    }
}

#[test]
fn random_register_writes_at_every_offset_never_escape_the_domain() {
    let mut g = attached(Policy::default(), true, |_| {});
    g.attach(16, 0x43, RAM + 0x60_0000).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Some of RAM is command-shaped garbage, some is legal commands.
    for i in 0..4096u64 {
        let words = if i % 2 == 0 {
            [rng.next(), rng.next()]
        } else {
            flood_command(rng.next())
        };
        g.platform
            .ram
            .write_words(RAM + 0x10_0000 + CMD_BYTES * i, &words);
    }
    // Page 1 holds the highest register: the frame ends at the next power of two.
    let end = Register::EVENTQ_PROD
        .info()
        .frame_offset()
        .next_power_of_two();
    assert_eq!(end, 0x2_0000, "both pages");
    let mut checked_calls = 0;
    let mut step = |g: &mut LinuxGuest, rng: &mut Rng, off: u32, size: u32| {
        let value = register_value(rng);
        checked(g, "random write", |g| g.write_raw(off, size, value));
        checked(g, "random read", |g| g.read_raw(off, size));
        match rng.below(16) {
            0 => {
                deferred(g);
            }
            1 => {
                let stream = [DEV_A, DEV_B, FOREIGN][rng.below(3) as usize];
                let e = if rng.below(2) == 0 {
                    fault(stream, rng.next())
                } else {
                    bad_ste_event(stream)
                };
                let out = deliver(g, stream, e);
                assert_eq!(out == EventOutcome::NotOurs, stream == FOREIGN);
            }
            2 => {
                g.evt_cons = EventqCons(g.read(Register::EVENTQ_CONS) as u32).rd();
            }
            _ => {}
        }
        checked_calls = assert_confined(&g.platform.hw, checked_calls);
    };
    // Every offset of both pages, every size, in order ...
    for off in (0..end).step_by(4) {
        for size in [1, 2, 4, 8] {
            step(&mut g, &mut rng, off, size);
        }
    }
    // ... and again in a random order, with unaligned offsets and beyond the frame.
    for _ in 0..50_000 {
        let off = match rng.below(8) {
            0 => rng.next() as u32,
            1 => rng.below(u64::from(end)) as u32,
            _ => (rng.below(u64::from(end)) as u32) & !3,
        };
        let size = [1, 2, 4, 8, 3, 16, 0][rng.below(7) as usize];
        step(&mut g, &mut rng, off, size);
    }
    settle(&mut g);
    assert_confined(&g.platform.hw, 0);
    assert_streams_confined(&g);
    // What is installed is what the hardware was last told.
    for (vsid, stream) in [(8, DEV_A), (16, DEV_B)] {
        assert_eq!(
            g.platform.hw.installed(stream),
            g.vsmmu.installed(vsid).map(|i| i.config)
        );
    }
    // And Linux can still take the device over: queues off, what is pending
    // acknowledged (with the queue on, a garbage queue would just fault
    // again), then the reset and an attach.
    write(&mut g, Register::CR0, 0);
    settle(&mut g);
    ack_gerror(&mut g);
    assert_eq!(gerror_active(&mut g), Gerror(0));
    g.bring_up().unwrap();
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    assert!(matches!(
        g.platform.hw.installed(DEV_A),
        Some(StreamConfig::Nested(_))
    ));
}

#[test]
fn cr0ack_and_irq_ctrlack_never_acknowledge_features_that_are_not_presented() {
    let mut g = attached(Policy::default(), false, |_| {});
    let idr0 = Idr0(read(&mut g, Register::IDR0) as u32);
    assert!(!idr0.pri() && !idr0.ats() && !idr0.vmw());
    let cr0 = Cr0(read(&mut g, Register::CR0ACK) as u32);
    // PRIQEN, ATSCHK and VMW are RES0 on an SMMU without PRI, ATS and VMID wildcards.
    let ghosts = cr0
        .with_priqen(true)
        .with_atschk(Cr0Atschk::SAFE)
        .with_vmw(Cr0Vmw::IGNORE_1);
    write(&mut g, Register::CR0, u64::from(ghosts.0));
    let (now, ack) = (read(&mut g, Register::CR0), read(&mut g, Register::CR0ACK));
    assert_eq!(now, u64::from(cr0.0), "CR0 keeps only what is presented");
    assert_eq!(ack, now, "CR0ACK acknowledges CR0 as it is");
    // With a ghost PRIQEN acknowledged, CR1 would stay read-only.
    let irq = IrqCtrl(read(&mut g, Register::IRQ_CTRLACK) as u32);
    write(
        &mut g,
        Register::IRQ_CTRL,
        u64::from(irq.with_priq_irqen(true).0),
    );
    let (now, ack) = (
        read(&mut g, Register::IRQ_CTRL),
        read(&mut g, Register::IRQ_CTRLACK),
    );
    assert_eq!(
        now,
        u64::from(irq.0),
        "IRQ_CTRL keeps only what is presented"
    );
    assert_eq!(ack, now, "IRQ_CTRLACK acknowledges IRQ_CTRL as it is");
}
