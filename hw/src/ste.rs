//! Physical STEs for a domain: abort, the domain's stage 2 alone, or a
//! guest's stage 1 nested over it; and the check that an SMMU can take one.
//! Only fields the hardware layer owns or its caller validated are set.

use smmuv3::regs::Idr0StallModel;
use smmuv3::structs::*;
use smmuv3::IdRegisters;

/// A domain's stage 2, as the hypervisor built it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S2Config {
    pub vmid: u16,
    /// Input size: 64 - S2T0SZ bits of IPA.
    pub t0sz: u8,
    /// Starting level (S2SL0 encoding for the granule).
    pub sl0: u8,
    pub tg: SteS2tg,
    pub ps: SteS2ps,
    /// PA of the stage-2 root table.
    pub ttb: u64,
}

/// The attributes every stage-2 configuration shares: AArch64 tables,
/// write-back inner-shareable walks, record faults (S2R), protected table
/// walks (S2PTW), event merging (MEV: a flooding guest cannot fill the
/// physical event queue with identical records).
fn with_stage2(ste: Ste, s2: &S2Config) -> Ste {
    ste.with_s2vmid(s2.vmid)
        .with_s2t0sz(s2.t0sz)
        .with_s2sl0(s2.sl0)
        .with_s2ir0(SteS2ir0::WB_RA_WA)
        .with_s2or0(SteS2or0::WB_RA_WA)
        .with_s2sh0(SteS2sh0::INNER_SHAREABLE)
        .with_s2tg(s2.tg)
        .with_s2ps(s2.ps)
        .with_s2aa64(true)
        .with_s2ptw(true)
        .with_s2r(true)
        .with_s2ttb(s2.ttb)
        .with_shcfg(SteShcfg::USE_INCOMING)
        .with_mev(true)
}

/// The stage-1 fields of `s1` (the guest's CD table and its attributes)
/// on top of `ste`; nothing else of `s1` is taken.
fn with_stage1(ste: Ste, s1: &Ste) -> Ste {
    let mut s = ste
        .with_s1_fmt(s1.s1_fmt())
        .with_s1_context_ptr(s1.s1_context_ptr())
        .with_s1cd_max(s1.s1cd_max())
        .with_s1dss(s1.s1dss())
        .with_s1cir(s1.s1cir())
        .with_s1cor(s1.s1cor())
        .with_s1csh(s1.s1csh())
        .with_s1stalld(s1.s1stalld());
    if s.s1dss() == SteS1dss::BYPASS {
        s = s.with_shcfg(SteShcfg::USE_INCOMING);
    }
    s
}

/// A terminating STE. With `report`, an invalid one, so that the SMMU
/// records C_BAD_STE on use; without, a valid abort that records nothing.
pub fn abort(report: bool) -> Ste {
    if report {
        Ste::new()
    } else {
        Ste::new().with_v(true).with_config(SteConfig::ABORT)
    }
}

/// The domain's stage 2 alone.
pub fn stage2_only(s2: &S2Config) -> Ste {
    with_stage2(Ste::new().with_v(true).with_config(SteConfig::S2_TRANS), s2)
}

/// The stage-1 fields of `s1` nested over the domain's stage 2.
pub fn nested(s1: &Ste, s2: &S2Config) -> Ste {
    with_stage1(
        with_stage2(Ste::new().with_v(true).with_config(SteConfig::NESTED), s2),
        s1,
    )
}

/// Why an STE was not sent to the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteRefusal {
    Granule,
    OutputSize,
    Vmid,
    Substreams,
}

/// Checks every field the driver writes against the probed ID registers:
/// some implementations (QEMU's among them) abort on STEs they cannot take.
pub fn check(ste: &Ste, ids: &IdRegisters) -> Result<(), SteRefusal> {
    if !ste.v() {
        return Ok(());
    }
    let (idr0, idr1, idr5) = (ids.idr0, ids.idr1, ids.idr5);
    if ste.config().0 & 0b110 == 0b110 {
        let ok = match ste.s2tg().0 {
            0 => idr5.gran4k(),
            1 => idr5.gran64k(),
            2 => idr5.gran16k(),
            _ => false,
        };
        if !ok || !ste.s2aa64() {
            return Err(SteRefusal::Granule);
        }
        if ste.s2ps().0 > idr5.oas().0 {
            return Err(SteRefusal::OutputSize);
        }
        if !idr0.vmid16() && ste.s2vmid() > 0xff {
            return Err(SteRefusal::Vmid);
        }
    }
    if ste.config().0 & 0b101 == 0b101 && ste.s1cd_max() > idr1.ssidsize() {
        return Err(SteRefusal::Substreams);
    }
    Ok(())
}

/// `ste` as the SMMU with `ids` should get it, or why it cannot take it.
pub fn fit(mut ste: Ste, ids: &IdRegisters) -> Result<Ste, SteRefusal> {
    // SSIDSIZE=0: S1CDMax is IGNORED by the architecture, but some
    // implementations refuse a non-zero value; never send one.
    if ids.idr1.ssidsize() == 0 {
        ste.set_s1cd_max(0);
    }
    // A guest is never presented stalls: on hardware where CDs may choose
    // to stall (STALL_MODEL 0b00), forbid it, or a faulting transaction
    // would wait for a CMD_RESUME nobody sends. Elsewhere S1STALLD is
    // ILLEGAL (§5.2).
    if ste.v() && ste.config() == SteConfig::NESTED {
        ste.set_s1stalld(ids.idr0.stall_model() == Idr0StallModel::STALL_AND_TERM);
    }
    check(&ste, ids)?;
    Ok(ste)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::ste_writer::{used_bits, write_ste, EntryWriter, Update, QWORDS};
    use std::vec::Vec;

    const S2: S2Config = S2Config {
        vmid: 5,
        t0sz: 24,
        sl0: 1,
        tg: SteS2tg::GRANULE_4KB,
        ps: SteS2ps::PS_44_BIT,
        ttb: 0x8_0000_0000,
    };

    fn s1(dss: SteS1dss, ptr: u64) -> Ste {
        Ste::new()
            .with_s1_context_ptr(ptr)
            .with_s1dss(dss)
            .with_s1cir(SteS1cir(1))
            .with_s1cor(SteS1cor(1))
            .with_s1csh(SteS1csh(3))
    }

    /// Linux's stage-1-only STE (arm_smmu_make_cdtable_ste), for the KUnit cases.
    fn cdtable(dss: SteS1dss, ptr: u64) -> Ste {
        with_stage1(
            Ste::new().with_v(true).with_config(SteConfig::S1_TRANS),
            &s1(dss, ptr),
        )
    }

    fn bypass() -> Ste {
        Ste::new()
            .with_v(true)
            .with_config(SteConfig::BYPASS)
            .with_shcfg(SteShcfg::USE_INCOMING)
    }

    fn abort() -> Ste {
        super::abort(false)
    }

    fn s2only() -> Ste {
        stage2_only(&S2)
    }

    /// Linux's stage-2 STE of a plain (not nest-parent) domain, as the KUnit
    /// fixture builds it: no MEV, VMID 0.
    fn linux_s2() -> Ste {
        let plain = S2Config { vmid: 0, ..S2 };
        stage2_only(&plain).with_mev(false)
    }

    fn nested(dss: SteS1dss) -> Ste {
        super::nested(&s1(dss, 0x4000_0000), &S2)
    }

    /// Records every state the SMMU could observe between syncs, and checks
    /// that each behaves as the old or the new STE (or, for a breaking
    /// update, as an invalid one).
    struct Observer {
        live: [u64; QWORDS],
        syncs: u32,
        seen: Vec<[u64; QWORDS]>,
    }

    impl EntryWriter for Observer {
        fn write_qword(&mut self, i: usize, v: u64) {
            self.live[i] = v;
            self.seen.push(self.live);
        }
        fn sync(&mut self) {
            self.syncs += 1;
        }
    }

    fn behaves_as(state: &[u64; QWORDS], ste: &Ste) -> bool {
        let used = used_bits(ste);
        (0..QWORDS).all(|i| state[i] & used[i] == ste.0[i] & used[i])
            && used_bits(&Ste(*state)) == used
    }

    fn transition(from: Ste, to: Ste) -> (u32, Update) {
        let mut w = Observer {
            live: from.0,
            syncs: 0,
            seen: Vec::new(),
        };
        let mut entry = from.0;
        let kind = write_ste(&mut w, &mut entry, &to.0);
        assert_eq!(entry, to.0, "the final entry is the target");
        assert_eq!(w.live, to.0);
        for state in &w.seen {
            let ok = behaves_as(state, &from)
                || behaves_as(state, &to)
                || (kind == Update::Breaking && !Ste(*state).v());
            assert!(
                ok,
                "intermediate state {state:x?} is neither {from:?} nor {to:?}"
            );
        }
        (w.syncs, kind)
    }

    /// The sync counts of Linux's arm-smmu-v3 KUnit tests (arm-smmu-v3-test.c),
    /// with fixtures shaped like theirs.
    #[test]
    fn updates_take_the_syncs_linux_s_kunit_tests_expect() {
        use Update::*;
        let ssid0 = SteS1dss::SUBSTREAM0;
        let byp = SteS1dss::BYPASS;
        let cases: [(&str, Ste, Ste, u32, Update); 14] = [
            ("bypass -> abort", bypass(), abort(), 2, Hitless),
            ("abort -> bypass", abort(), bypass(), 2, Hitless),
            (
                "cdtable -> abort",
                cdtable(ssid0, 0x1000),
                abort(),
                2,
                Hitless,
            ),
            (
                "abort -> cdtable",
                abort(),
                cdtable(ssid0, 0x1000),
                2,
                Hitless,
            ),
            (
                "cdtable -> bypass",
                cdtable(ssid0, 0x1000),
                bypass(),
                3,
                Hitless,
            ),
            (
                "bypass -> cdtable",
                bypass(),
                cdtable(ssid0, 0x1000),
                3,
                Hitless,
            ),
            (
                "S1DSS flip",
                cdtable(ssid0, 0x1000),
                cdtable(byp, 0x1000),
                1,
                Hitless,
            ),
            ("S2 -> abort", s2only(), abort(), 2, Hitless),
            ("abort -> S2", abort(), s2only(), 2, Hitless),
            ("S2 -> bypass", linux_s2(), bypass(), 2, Hitless),
            (
                "cdtable -> S2",
                cdtable(ssid0, 0x1000),
                linux_s2(),
                3,
                Hitless,
            ),
            (
                "CD pointer and S1DSS change",
                cdtable(ssid0, 0x1000),
                cdtable(byp, 0x2000),
                3,
                Breaking,
            ),
            (
                "S1DSS bypass -> STE bypass",
                cdtable(byp, 0x1000),
                bypass(),
                2,
                Hitless,
            ),
            (
                "STE bypass -> S1DSS bypass",
                bypass(),
                cdtable(byp, 0x1000),
                2,
                Hitless,
            ),
        ];
        for (name, from, to, syncs, kind) in cases {
            assert_eq!(transition(from, to), (syncs, kind), "{name}");
        }
        // Nested (newer Linux KUnit cases; our S2 STE carries MEV like a nest parent's).
        assert_eq!(
            transition(s2only(), nested(byp)),
            (2, Hitless),
            "S2 -> nested s1dss-bypass"
        );
        assert_eq!(
            transition(nested(byp), s2only()),
            (2, Hitless),
            "nested s1dss-bypass -> S2"
        );
        assert_eq!(
            transition(linux_s2(), cdtable(ssid0, 0x1000)),
            (3, Hitless),
            "S2 -> cdtable"
        );
        // What this layer does on top: nested <-> nested with a new CD table is
        // one qword (hitless), and a refused guest STE (V=0) breaks.
        assert_eq!(
            transition(nested(ssid0), super::nested(&s1(ssid0, 0x5000_0000), &S2)),
            (1, Hitless)
        );
        let invalid = super::abort(true);
        assert_eq!(transition(nested(ssid0), invalid).1, Hitless);
        assert_eq!(transition(invalid, nested(ssid0)), (2, Hitless));
    }

    #[test]
    fn nested_stes_carry_the_guest_s_stage_1_and_the_domain_s_stage_2() {
        let s = nested(SteS1dss::SUBSTREAM0);
        assert_eq!(s.config(), SteConfig::NESTED);
        assert_eq!(s.s1_context_ptr(), 0x4000_0000);
        assert_eq!(
            (s.s2vmid(), s.s2ttb(), s.s2aa64(), s.mev()),
            (5, 0x8_0000_0000, true, true)
        );
        assert!(!super::abort(true).v());
    }
}
