//! Pins the guest model to what Linux's arm-smmu-v3 driver does: command
//! words bit for bit (known encodings from the driver's FIELD_PREPs), the
//! STE install sequence of each generation, batching, skip-and-ack, the
//! stream table choice and the 1 s timeout.

use smmuv3::cmd::Command;
use smmuv3::platform::QEMU_VIRT;
use smmuv3::regs::{StrtabBaseCfg, StrtabBaseCfgFmt};
use smmuv3::Register;
use vsmmu::testing::linux::{self, probe};
use vsmmu::testing::{FakePlatform, GuestError, GuestLayout, GuestOp, LinuxGuest, LinuxVersion};
use vsmmu::*;

const RAM: u64 = 0x4000_0000;

/// vSIDs 8 and 16 (and 0x100 when `wide`) of a domain with VMID 5.
fn guest(version: LinuxVersion, msi: bool, wide: bool, policy: Policy) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    let mut devs = vec![(8, 0x108), (16, 0x110)];
    if wide {
        devs.push((0x100, 0x200));
    }
    for (vsid, psid) in devs {
        let stream = PhysStream {
            smmu: SmmuId(0),
            psid,
        };
        map.add_device(&mut owners, DomainId(1), vsid, stream)
            .unwrap();
    }
    let cfg = VsmmuConfig {
        msi,
        policy,
        ..VsmmuConfig::new(DomainId(1), 5, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut layout = GuestLayout::linux(RAM, version);
    layout.msi_poll = msi;
    LinuxGuest::new(v, p, layout)
}

fn up(version: LinuxVersion, msi: bool) -> LinuxGuest {
    let mut g = guest(version, msi, false, Policy::default());
    g.bring_up().unwrap();
    g.trace = Some(Vec::new());
    g
}

fn cmds(g: &LinuxGuest) -> Vec<[u64; 2]> {
    let t = g.trace.as_deref().unwrap_or_default();
    t.iter()
        .filter_map(|op| match op {
            GuestOp::Cmd(w) => Some(*w),
            _ => None,
        })
        .collect()
}

/// The trace as short names: stores by qword, commands by name, PROD writes.
fn steps(g: &LinuxGuest, table: u64) -> Vec<String> {
    let prod = vsmmu::testing::guest::offset(Register::CMDQ_PROD);
    let t = g.trace.as_deref().unwrap_or_default();
    t.iter()
        .filter_map(|op| match *op {
            GuestOp::Store { ipa, .. } if ipa >= table && ipa < table + 64 => {
                Some(format!("q{}", (ipa - table) / 8))
            }
            GuestOp::Store { .. } => Some("store".into()),
            GuestOp::Cmd(w) => Some(Command::decode(w).unwrap().as_record().name().into()),
            GuestOp::Write { off, .. } if off == prod => Some("PROD".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn cmd_sync_with_msi_poll_is_linux_s_word_for_word() {
    for v in LinuxVersion::ALL {
        let mut g = up(v, true);
        g.issue(&[]).unwrap();
        let sync = cmds(&g)[0];
        // Slot 4: after bring-up's CFGI_ALL+SYNC and TLBI_NSNH_ALL+SYNC.
        let slot = RAM + 0x10_0000 + 16 * 4;
        // CS=IRQ (1 << 12), MSH=ISH (3 << 22), MSIATTR=OIWB (0xf << 24), op 0x46;
        // MSIDATA 0; MSIADDR = the SYNC's own slot.
        assert_eq!(sync, [0x0fc0_1046, slot], "{v:?}");
        // The SMMU zeroed the first word: that is what Linux polls.
        assert_eq!(g.ram_u32(slot), 0);
    }
}

#[test]
fn cmd_sync_without_msi_signals_sev_with_msh_and_msiattr() {
    for v in LinuxVersion::ALL {
        let mut g = up(v, false);
        g.issue(&[]).unwrap();
        assert_eq!(cmds(&g), [[0x0fc0_2046, 0]], "{v:?}");
    }
}

#[test]
fn a_2mib_unmap_with_4k_granule_is_one_range_tlbi() {
    for v in LinuxVersion::ALL {
        let mut g = up(v, false);
        g.unmap(0x42, 0x1020_0000, 512).unwrap();
        let c = cmds(&g);
        // TLBI_NH_VA: ASID 0x42, VMID 0 (the guest's), SCALE 9, NUM 0;
        // LEAF, TTL 3 (level 3), TG 1 (4K); then the SYNC.
        assert_eq!(c.len(), 2, "{v:?}");
        assert_eq!(c[0], [0x0042_0000_0090_0012, 0x1020_0000 | 0x700 | 1]);
        assert_eq!(c[1][0] & 0xff, 0x46);
    }
}

#[test]
fn without_ril_linux_sends_one_tlbi_per_page() {
    let c = linux::tlbi_range(1, 0x1000_0000, 3 << 12, 1 << 12, true, false);
    assert_eq!(c.len(), 3);
    assert_eq!(c[2].encode(), [0x0001_0000_0000_0012, 0x1000_2001]);
}

#[test]
fn a_full_batch_is_64_commands_then_the_rest_with_the_sync() {
    let mut g = up(LinuxVersion::V6_12, false);
    let cfgi: Vec<Command> = (0..65).map(|s| linux::cfgi_ste(s % 8)).collect();
    g.issue(&cfgi[..64]).unwrap();
    let published: Vec<u64> = g
        .trace
        .as_deref()
        .unwrap()
        .iter()
        .filter_map(|op| match *op {
            GuestOp::Write { off, value, .. }
                if off == vsmmu::testing::guest::offset(Register::CMDQ_PROD) =>
            {
                Some(value)
            }
            _ => None,
        })
        .collect();
    // 64 commands + SYNC: one PROD write, 65 entries on.
    assert_eq!(published, [4 + 65]);
    g.trace = Some(Vec::new());
    g.issue(&cfgi).unwrap();
    let s = steps(&g, 0);
    let prods: Vec<usize> = s
        .iter()
        .enumerate()
        .filter(|(_, n)| *n == "PROD")
        .map(|(i, _)| i)
        .collect();
    // 65 commands: 64 published without a SYNC, then 1 + SYNC.
    assert_eq!(prods, [64, 67]);
    assert_eq!(s[66], "CMD_SYNC");
}

#[test]
fn linux_6_1_installs_an_ste_words_1_first_then_word_0_then_prefetches() {
    let mut g = up(LinuxVersion::V6_1, false);
    let ste = g.ste_addr(8);
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let cd = g.cd_table(8);
    let all = steps(&g, ste);
    let cd_steps = steps(&g, cd);
    // The CD: qwords 1-3, lone SYNC (the new domain has no device yet), qword 0, lone SYNC.
    assert_eq!(
        &cd_steps[..8],
        ["q1", "q2", "q3", "CMD_SYNC", "PROD", "q0", "CMD_SYNC", "PROD"]
    );
    assert_eq!(
        &all[8..],
        [
            "q1",
            "CMD_CFGI_STE",
            "CMD_SYNC",
            "PROD",
            "q0",
            "CMD_CFGI_STE",
            "CMD_SYNC",
            "PROD",
            "CMD_PREFETCH_CONFIG",
            "PROD"
        ]
    );
    // CFGI_STE Leaf=1 for vSID 8.
    let c = cmds(&g);
    assert_eq!(c[2], [0x0000_0008_0000_0003, 1]);
    assert_eq!(c[6], [0x0000_0008_0000_0001, 0]);
}

#[test]
fn linux_6_12_writes_cd_and_ste_hitlessly_with_cfgi_cd_and_cfgi_ste() {
    let mut g = up(LinuxVersion::V6_12, false);
    let ste = g.ste_addr(8);
    g.attach(8, 0x42, RAM + 0x50_0000).unwrap();
    let cd = g.cd_table(8);
    let cd_steps = steps(&g, cd);
    // CD V=0 -> valid: qwords 1 and 3 (2 stays 0), sync, then qword 0, sync.
    assert_eq!(
        &cd_steps[..10],
        [
            "q1",
            "q3",
            "CMD_CFGI_CD",
            "CMD_SYNC",
            "PROD",
            "q0",
            "CMD_CFGI_CD",
            "CMD_SYNC",
            "PROD",
            "store"
        ]
    );
    // STE abort -> S1: one critical qword (0): qword 1, sync, qword 0, sync.
    assert_eq!(
        &steps(&g, ste)[9..],
        [
            "q1",
            "CMD_CFGI_STE",
            "CMD_SYNC",
            "PROD",
            "q0",
            "CMD_CFGI_STE",
            "CMD_SYNC",
            "PROD",
            "CMD_PREFETCH_CONFIG",
            "PROD"
        ]
    );
    // CFGI_CD: SID 8, SSID 0, Leaf=1.
    assert_eq!(cmds(&g)[0], [0x0000_0008_0000_0005, 1]);
    // Re-attaching another ASID and table changes two CD qwords: V=0 first.
    g.trace = Some(Vec::new());
    g.attach(8, 0x43, RAM + 0x60_0000).unwrap();
    assert_eq!(
        &steps(&g, cd)[..4],
        ["q0", "CMD_CFGI_CD", "CMD_SYNC", "PROD"]
    );
}

#[test]
fn an_illegal_command_is_replaced_by_a_sync_and_gerror_acknowledged() {
    for v in LinuxVersion::ALL {
        for msi in [false, true] {
            let mut g = up(v, msi);
            let at = RAM + 0x10_0000 + 16 * u64::from(g.prod);
            // CMD_SYNC with CS=0b11: CERROR_ILL.
            let bad = smmuv3::cmd::CmdSync::new().with_cs(smmuv3::cmd::CmdSyncCs(3));
            assert_eq!(g.issue(&[Command::Sync(bad)]), Ok(()), "{v:?} msi={msi}");
            let g_err = g.read(Register::GERROR) ^ g.read(Register::GERRORN);
            assert_eq!(g_err, 0, "acknowledged");
            assert!(g.warnings.contains(&"skipping command in error state"));
            // The faulting slot now holds Linux's replacement: SYNC, CS=SEV.
            let words = [g.platform.ram.read_u64(at), g.platform.ram.read_u64(at + 8)];
            assert_eq!(words, [0x0fc0_2046, 0]);
        }
    }
}

#[test]
fn sidsize_8_is_linear_and_9_two_level() {
    for v in LinuxVersion::ALL {
        let idr = |sidsize: u32| {
            let i1 = QEMU_VIRT.idr1.with_sidsize(sidsize as u8);
            [QEMU_VIRT.idr0.0, i1.0, QEMU_VIRT.idr3.0, QEMU_VIRT.idr5.0]
        };
        assert!(!probe(v, idr(8), true).unwrap().two_level);
        assert!(probe(v, idr(9), true).unwrap().two_level);
        for wide in [false, true] {
            let mut g = guest(v, false, wide, Policy::default());
            g.bring_up().unwrap();
            let cfg = StrtabBaseCfg(g.read(Register::STRTAB_BASE_CFG) as u32);
            let want = if wide {
                StrtabBaseCfgFmt::TWO_LEVEL
            } else {
                StrtabBaseCfgFmt::LINEAR
            };
            assert_eq!(cfg.fmt(), want);
        }
    }
}

#[test]
fn linux_refuses_a_command_queue_of_64_entries() {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    let s = PhysStream {
        smmu: SmmuId(0),
        psid: 0x108,
    };
    map.add_device(&mut owners, DomainId(1), 8, s).unwrap();
    let cfg = VsmmuConfig {
        cmdqs: 6,
        ..VsmmuConfig::new(DomainId(1), 5, 40)
    };
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::at(RAM));
    assert_eq!(
        g.bring_up(),
        Err(GuestError::Probe(linux::ProbeError::CmdqTooSmall))
    );
}

#[test]
fn bring_up_writes_bases_and_irq_cfg0_with_64_bit_accesses_in_linux_order() {
    let mut g = guest(LinuxVersion::V6_12, false, false, Policy::default());
    g.trace = Some(Vec::new());
    g.bring_up().unwrap();
    let names: Vec<(String, u32)> = g
        .trace
        .as_deref()
        .unwrap()
        .iter()
        .filter_map(|op| match *op {
            GuestOp::Write { off, size, .. } => {
                let r = smmuv3::REGISTERS.iter().find(|r| r.frame_offset() == off)?;
                Some((r.name.to_string(), size))
            }
            _ => None,
        })
        .collect();
    let want = [
        ("CR0", 4),
        ("CR1", 4),
        ("CR2", 4),
        ("STRTAB_BASE", 8),
        ("STRTAB_BASE_CFG", 4),
        ("CMDQ_BASE", 8),
        ("CMDQ_PROD", 4),
        ("CMDQ_CONS", 4),
        ("CR0", 4),
        ("CMDQ_PROD", 4),
        ("CMDQ_PROD", 4),
        ("EVENTQ_BASE", 8),
        ("EVENTQ_PROD", 4),
        ("EVENTQ_CONS", 4),
        ("CR0", 4),
        ("IRQ_CTRL", 4),
        ("GERROR_IRQ_CFG0", 8),
        ("EVENTQ_IRQ_CFG0", 8),
        ("IRQ_CTRL", 4),
        ("CR0", 4),
    ];
    let got: Vec<(&str, u32)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    assert_eq!(got, want);
}

#[test]
fn a_deferred_worker_later_than_1s_makes_cmd_sync_time_out() {
    for v in LinuxVersion::ALL {
        for (latency, ok) in [(500_000_000, true), (2_000_000_000, false)] {
            // One command per trap: the SYNC needs the deferred work.
            let policy = Policy {
                commands_per_call: 1,
                ..Policy::default()
            };
            let mut g = guest(v, true, false, policy);
            g.timing.deferred_latency_ns = latency;
            let start = g.now_ns();
            let r = g.bring_up();
            if ok {
                assert_eq!(r, Ok(()), "{v:?}");
                assert!(g.now_ns() - start >= latency);
            } else {
                assert_eq!(r, Err(GuestError::SyncTimeout), "{v:?}");
                assert!(g.warnings.contains(&"CMD_SYNC timeout"));
            }
        }
    }
}
