//! Physical STEs for what the runtime asks: abort, the domain's stage 2
//! alone, or the guest's stage 1 nested over it. Only fields the hardware
//! layer owns or the runtime validated are ever set.

use smmuv3::structs::*;
use vsmmu::{S1Context, StreamConfig};

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

fn with_stage1(ste: Ste, s1: &S1Context) -> Ste {
    let mut s = ste
        .with_s1_fmt(SteS1Fmt(s1.s1_fmt))
        .with_s1_context_ptr(s1.s1_context_ptr.0)
        .with_s1cd_max(s1.s1_cd_max)
        .with_s1dss(SteS1dss(s1.s1_dss))
        .with_s1cir(SteS1cir(s1.s1_cir))
        .with_s1cor(SteS1cor(s1.s1_cor))
        .with_s1csh(SteS1csh(s1.s1_csh))
        .with_s1stalld(s1.s1_stalld);
    if s.s1dss() == SteS1dss::BYPASS {
        s = s.with_shcfg(SteShcfg::USE_INCOMING);
    }
    s
}

/// The physical STE for a runtime request on a domain with stage 2 `s2`.
pub fn make(config: &StreamConfig, s2: &S2Config) -> Ste {
    match config {
        // An invalid STE terminates and makes the SMMU record C_BAD_STE.
        StreamConfig::Abort { report: true } => Ste::new(),
        StreamConfig::Abort { report: false } => {
            Ste::new().with_v(true).with_config(SteConfig::ABORT)
        }
        StreamConfig::Stage2Only => {
            with_stage2(Ste::new().with_v(true).with_config(SteConfig::S2_TRANS), s2)
        }
        StreamConfig::Nested(s1) => with_stage1(
            with_stage2(Ste::new().with_v(true).with_config(SteConfig::NESTED), s2),
            s1,
        ),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::ste_writer::{used_bits, write_ste, EntryWriter, Update, QWORDS};
    use std::vec::Vec;
    use vsmmu::Ipa;

    const S2: S2Config = S2Config {
        vmid: 5,
        t0sz: 24,
        sl0: 1,
        tg: SteS2tg::GRANULE_4KB,
        ps: SteS2ps::PS_44_BIT,
        ttb: 0x8_0000_0000,
    };

    fn s1(dss: SteS1dss, ptr: u64) -> S1Context {
        S1Context {
            s1_context_ptr: Ipa(ptr),
            s1_fmt: 0,
            s1_cd_max: 0,
            s1_dss: dss.0,
            s1_cir: 1,
            s1_cor: 1,
            s1_csh: 3,
            s1_stalld: false,
        }
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
        make(&StreamConfig::Abort { report: false }, &S2)
    }

    fn s2only() -> Ste {
        make(&StreamConfig::Stage2Only, &S2)
    }

    /// Linux's stage-2 STE of a plain (not nest-parent) domain, as the KUnit
    /// fixture builds it: no MEV, VMID 0.
    fn linux_s2() -> Ste {
        let plain = S2Config { vmid: 0, ..S2 };
        make(&StreamConfig::Stage2Only, &plain).with_mev(false)
    }

    fn nested(dss: SteS1dss) -> Ste {
        make(&StreamConfig::Nested(s1(dss, 0x4000_0000)), &S2)
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
            transition(
                nested(ssid0),
                make(&StreamConfig::Nested(s1(ssid0, 0x5000_0000)), &S2)
            ),
            (1, Hitless)
        );
        let invalid = make(&StreamConfig::Abort { report: true }, &S2);
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
        assert!(!make(&StreamConfig::Abort { report: true }, &S2).v());
    }
}
