//! The per-domain hardware budget under load, in simulated time
//! (`cargo run --release -p vsmmu --example fairness`): a Linux guest
//! unmapping in strict mode (one TLBI + CMD_SYNC per unmap, waiting for
//! each) at several offered rates, alone and next to a domain that floods
//! its command queue; the flooder's physical commands per millisecond, when
//! it is held to its share, and when it loses its burst. The numbers go
//! into book/src/performance.md.

use smmuv3::cmd::{CmdTlbiNhAsid, Command};
use smmuv3::Register;
use vsmmu::testing::{FakePlatform, GuestLayout, LinuxGuest, LinuxVersion};
use vsmmu::{DomainId, PhysStream, Policy, PsidOwners, SmmuId, StreamMap, Vsmmu, VsmmuConfig};

const RAM: u64 = 0x4000_0000;
const MS: u64 = 1_000_000;
const RUN_MS: u64 = 1_000;

fn domain(id: u32, psid: u32) -> LinuxGuest {
    let mut p = FakePlatform::new(RAM, 16 << 20, 1);
    p.hw.count_only = true;
    let mut owners = PsidOwners::new();
    let mut map = StreamMap::new();
    let dev = PhysStream {
        smmu: SmmuId(0),
        psid,
    };
    map.add_device(&mut owners, DomainId(id), 8, dev).unwrap();
    let cfg = VsmmuConfig::new(DomainId(id), id as u16, 40);
    let v = Vsmmu::new(cfg, map, &mut p.hw).unwrap();
    let mut g = LinuxGuest::new(v, p, GuestLayout::linux(RAM, LinuxVersion::V6_12));
    g.bring_up().unwrap();
    g.attach(8, 1, RAM + 0x50_0000).unwrap();
    g
}

/// The flooder: fills its queue with TLBI_NH_ASID of distinct ASIDs (none
/// merge) and rings the doorbell every `step` ns; the hypervisor runs its
/// deferred work when the budget says it can progress.
struct Flooder {
    guest: LinuxGuest,
    next_asid: u16,
    /// (ms, physical commands issued in that ms)
    per_ms: Vec<u64>,
}

impl Flooder {
    fn run_until(&mut self, t: u64) {
        let size = 1u32 << self.guest.layout.cmdq_log2;
        let mask = (size << 1) - 1;
        while self.guest.platform.now_ns < t {
            let cons = self.guest.read(Register::CMDQ_CONS) as u32 & mask;
            let used = self.guest.prod.wrapping_sub(cons) & mask;
            for _ in 0..(size - used) {
                let c = Command::TlbiNhAsid(CmdTlbiNhAsid::new().with_asid(self.next_asid));
                self.next_asid = self.next_asid.wrapping_add(1);
                let at = self.guest.layout.cmdq + 16 * u64::from(self.guest.prod & (size - 1));
                self.guest.write_words(at, &c.encode());
                self.guest.prod = (self.guest.prod + 1) & mask;
            }
            let before = self.guest.platform.hw.commands + self.guest.platform.hw.syncs;
            self.guest
                .write(Register::CMDQ_PROD, u64::from(self.guest.prod));
            if self.guest.platform.defer.pending
                && self.guest.platform.defer.last_after_ns <= 10_000
            {
                self.guest.platform.defer.pending = false;
                let mut ports = self.guest.platform.ports();
                self.guest.vsmmu.run_deferred(&mut ports);
            }
            let ms = (self.guest.platform.now_ns / MS) as usize;
            if self.per_ms.len() <= ms {
                self.per_ms.resize(ms + 1, 0);
            }
            self.per_ms[ms] +=
                self.guest.platform.hw.commands + self.guest.platform.hw.syncs - before;
            self.guest.platform.now_ns += 10_000;
            if self.guest.platform.defer.pending {
                self.guest.platform.defer.last_after_ns = self
                    .guest
                    .platform
                    .defer
                    .last_after_ns
                    .saturating_sub(10_000);
            }
        }
    }
}

/// Strict-mode unmaps offered at `rate` per second for RUN_MS, with a
/// flooder running alongside when given; the unmaps completed per second.
fn unmaps(rate: u64, mut flood: Option<&mut Flooder>) -> u64 {
    let mut g = domain(1, 0x108);
    let start = g.now_ns();
    let end = start + RUN_MS * MS;
    let period = 1_000_000_000 / rate;
    let mut next = start;
    let mut done = 0u64;
    while g.now_ns() < end {
        if g.now_ns() < next {
            let wait = next - g.now_ns();
            g.advance(wait);
        }
        if let Some(f) = flood.as_deref_mut() {
            f.run_until(g.now_ns() - start);
        }
        if g.unmap(1, 0x1000_0000 + ((done % 512) << 12), 1).is_ok() {
            done += 1;
        }
        next += period;
    }
    done * 1000 / RUN_MS
}

fn flooder() -> Flooder {
    let mut g = domain(2, 0x208);
    g.platform.now_ns = 0;
    Flooder {
        guest: g,
        next_asid: 0,
        per_ms: Vec::new(),
    }
}

fn main() {
    let p = Policy::default();
    println!(
        "policy: share {} physical commands/ms, burst {}, penalty after {} ms",
        p.hw_refill_per_ms, p.hw_burst, p.hw_penalty_after_ms
    );
    println!("strict-mode unmaps (offered/s -> completed/s): alone | next to a flooder");
    for rate in [10_000u64, 25_000, 33_000, 50_000] {
        let alone = unmaps(rate, None);
        let mut f = flooder();
        let shared = unmaps(rate, Some(&mut f));
        println!("  {rate:>6} -> {alone:>6} | {shared:>6}");
    }
    let mut f = flooder();
    f.run_until(300 * MS);
    let share = u64::from(p.hw_refill_per_ms);
    let held = f.per_ms.iter().position(|n| *n <= share + 8).unwrap_or(0);
    let first: u64 = f.per_ms.first().copied().unwrap_or(0);
    let avg = |r: core::ops::Range<usize>| {
        let s: u64 = f.per_ms[r.clone()].iter().sum();
        s / r.len() as u64
    };
    println!(
        "flooder: {first} physical commands in its first ms (the burst), held to its share from {held} ms on"
    );
    println!(
        "flooder: {} /ms over 1-100 ms, {} /ms over 200-300 ms (share {share}); burst lost: {}",
        avg(1..100),
        avg(200..300),
        f.guest.vsmmu.budget().penalised()
    );
}
