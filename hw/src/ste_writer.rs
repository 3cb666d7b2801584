//! Hitless STE updates (the algorithm of Linux's `arm_smmu_write_entry`).
//!
//! An STE is 8 qwords that the SMMU may read at any time, and a 64-bit write
//! is the only atomic step. To go from one configuration to another without
//! the SMMU ever seeing a mixture, the writer looks at which bits each
//! configuration *uses*:
//!
//! - bits the current configuration does not use can change freely;
//! - if the used bits of only one qword must change (the critical qword),
//!   write everything else first, then that qword, then tidy up: hitless;
//! - otherwise clear V first, write qwords 1-7, then qword 0: the stream
//!   briefly terminates, but never sees a half-written configuration.
//!
//! Each step that changes memory is followed by a sync (CFGI_STE + CMD_SYNC).

use smmuv3::structs::{ste, Ste, SteConfig, SteS1dss};
use smmuv3::FieldInfo;

pub const QWORDS: usize = Ste::WORDS;

const fn mask(fields: &[FieldInfo]) -> [u64; QWORDS] {
    FieldInfo::mask_words(fields)
}

const VALID: [u64; QWORDS] = mask(&[ste::V]);
const ALWAYS: [u64; QWORDS] = mask(&[ste::V, ste::CONFIG]);
const SHCFG: [u64; QWORDS] = mask(&[ste::SHCFG]);
const S1: [u64; QWORDS] = mask(&[
    ste::S1_FMT,
    ste::S1_CONTEXT_PTR,
    ste::S1CD_MAX,
    ste::S1DSS,
    ste::S1CIR,
    ste::S1COR,
    ste::S1CSH,
    ste::S1STALLD,
    ste::STRW,
    ste::EATS,
    ste::MEV,
    ste::S2VMID,
]);
const S2: [u64; QWORDS] = mask(&[
    ste::S2FWB,
    ste::EATS,
    ste::SHCFG,
    ste::MEV,
    ste::S2VMID,
    ste::S2T0SZ,
    ste::S2SL0,
    ste::S2IR0,
    ste::S2OR0,
    ste::S2SH0,
    ste::S2TG,
    ste::S2PS,
    ste::S2AA64,
    ste::S2ENDI,
    ste::S2PTW,
    ste::S2S,
    ste::S2R,
    ste::S2TTB,
]);

/// The bits an SMMU reads in this STE.
pub fn used_bits(ste: &Ste) -> [u64; QWORDS] {
    if !ste.v() {
        return VALID;
    }
    let mut used = ALWAYS;
    let add = |used: &mut [u64; QWORDS], m: [u64; QWORDS]| {
        for (u, x) in used.iter_mut().zip(m) {
            *u |= x;
        }
    };
    let cfg = ste.config();
    if cfg == SteConfig::BYPASS {
        add(&mut used, SHCFG);
    }
    if cfg == SteConfig::S1_TRANS || cfg == SteConfig::NESTED {
        add(&mut used, S1);
        if ste.s1dss() == SteS1dss::BYPASS {
            add(&mut used, SHCFG);
        }
    }
    if cfg == SteConfig::S2_TRANS || cfg == SteConfig::NESTED {
        add(&mut used, S2);
    }
    used
}

/// Where the writer puts qwords and how it syncs them.
pub trait EntryWriter {
    /// Writes one qword of the live STE (a single 64-bit store).
    fn write_qword(&mut self, index: usize, value: u64);
    /// Makes the SMMU see what was written (CFGI_STE + CMD_SYNC).
    fn sync(&mut self);
}

/// The steps of one update, recorded instead of performed: the qword
/// writes between syncs. Several STEs' steps can then be performed in
/// lockstep, one invalidation and one sync per step for all of them.
#[derive(Clone, Debug, Default)]
pub struct Steps {
    pub steps: alloc::vec::Vec<alloc::vec::Vec<(usize, u64)>>,
    current: alloc::vec::Vec<(usize, u64)>,
}

impl EntryWriter for Steps {
    fn write_qword(&mut self, index: usize, value: u64) {
        self.current.push((index, value));
    }
    fn sync(&mut self) {
        self.steps.push(core::mem::take(&mut self.current));
    }
}

/// Writes `target[range]` over `entry`, syncing if anything changed.
fn entry_set(
    w: &mut dyn EntryWriter,
    entry: &mut [u64; QWORDS],
    target: &[u64; QWORDS],
    start: usize,
    len: usize,
) -> bool {
    let mut changed = false;
    for i in start..(start + len).min(QWORDS) {
        if entry[i] != target[i] {
            entry[i] = target[i];
            w.write_qword(i, target[i]);
            changed = true;
        }
    }
    if changed {
        w.sync();
    }
    changed
}

/// Whether an update went without the stream ever terminating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    Hitless,
    /// V was cleared for the update.
    Breaking,
}

/// Updates the live `entry` to `target`, hitlessly where possible.
pub fn write_ste(
    w: &mut dyn EntryWriter,
    entry: &mut [u64; QWORDS],
    target: &[u64; QWORDS],
) -> Update {
    let cur_used = used_bits(&Ste(*entry));
    let tgt_used = used_bits(&Ste(*target));
    let mut unused_update = [0u64; QWORDS];
    let mut critical = 0u32;
    for i in 0..QWORDS {
        // What the entry would be if every bit the current STE ignores took
        // its target value now.
        unused_update[i] = (entry[i] & cur_used[i]) | (target[i] & !cur_used[i]);
        // A qword is critical when bits the target uses still differ.
        if (unused_update[i] & tgt_used[i]) != (target[i] & tgt_used[i]) {
            critical |= 1 << i;
        }
    }
    match critical.count_ones() {
        0 => {
            entry_set(w, entry, target, 0, QWORDS);
            Update::Hitless
        }
        1 => {
            let c = critical.trailing_zeros() as usize;
            unused_update[c] = entry[c];
            entry_set(w, entry, &unused_update, 0, QWORDS);
            entry_set(w, entry, target, c, 1);
            entry_set(w, entry, target, 0, QWORDS);
            Update::Hitless
        }
        _ => {
            unused_update[0] = 0;
            entry_set(w, entry, &unused_update, 0, 1);
            entry_set(w, entry, target, 1, QWORDS - 1);
            entry_set(w, entry, target, 0, 1);
            Update::Breaking
        }
    }
}
