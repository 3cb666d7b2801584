//! Installing the domain's streams on the physical SMMUs: what each vSID
//! should do now (the guest's STE, GBPA, or containment), applied in
//! rounds with shared invalidations, bounded per call.

use alloc::vec::Vec;

use smmuv3::cmd::{CmdCfgiCdAll, Command};
use smmuv3::regs::{StrtabBase, StrtabBaseCfg};

use crate::ports::{PhysStream, PhysicalSmmu, Ports, StreamConfig, INSTALL_MAX_COMMANDS};
use crate::stream_table;
use crate::stream_table::GuestStream;

use super::{Allowance, Installed, Stop, Vsmmu};

impl Vsmmu {
    /// What a stream does while the SMMU is disabled (GBPA), or while the
    /// hardware cannot confirm invalidations.
    pub(super) fn disabled(&self) -> Installed {
        let config = if self.contained || self.gbpa().abort() {
            StreamConfig::Abort { report: false }
        } else {
            StreamConfig::Stage2Only
        };
        Installed {
            config,
            refusal: None,
        }
    }

    /// What the vSID's stream should do now: decided by CR0.SMMUEN, the
    /// state being moved to (CR0ACK follows once every stream is there).
    fn desired(&mut self, ports: &mut Ports<'_>, vsid: u32) -> Installed {
        if self.contained || !self.cr0().smmuen() {
            return self.disabled();
        }
        let base = self.regs.read::<StrtabBase>();
        let cfg = self.regs.read::<StrtabBaseCfg>();
        let outcome = match stream_table::read_ste(ports.mem, base, cfg, vsid, &self.presented) {
            Ok(ste) => stream_table::interpret(&ste, &self.presented),
            Err(r) => GuestStream::Refused(r),
        };
        match outcome {
            GuestStream::Config(config) => Installed {
                config,
                refusal: None,
            },
            GuestStream::Refused(r) => {
                self.stats.bad_stes += 1;
                Installed {
                    config: StreamConfig::Abort { report: true },
                    refusal: Some(r),
                }
            }
        }
    }

    /// Installs `want` for the vSID's physical stream unless it is there
    /// already, and returns the physical commands that took. On a failure
    /// the stream is left terminating rather than in an unknown state.
    fn apply(&mut self, hw: &mut dyn PhysicalSmmu, vsid: u32, want: Installed) -> u32 {
        let Some(stream) = self.streams.physical(vsid) else {
            return 0;
        };
        if self.installed(vsid) == Some(want) {
            return 0;
        }
        self.stats.hw_installs += 1;
        match hw.install(stream, &want.config) {
            Ok(n) => {
                self.set_installed(vsid, Some(want));
                n
            }
            Err(_) => {
                self.stats.hw_errors += 1;
                let abort = Installed {
                    config: StreamConfig::Abort { report: false },
                    refusal: None,
                };
                match hw.install(stream, &abort.config) {
                    Ok(n) => {
                        self.set_installed(vsid, Some(abort));
                        INSTALL_MAX_COMMANDS + n
                    }
                    Err(_) => {
                        self.set_installed(vsid, None);
                        2 * INSTALL_MAX_COMMANDS
                    }
                }
            }
        }
    }

    /// Installs what changed, all at once where the hardware layer can
    /// share invalidations among them; one by one when that fails.
    pub(super) fn apply_all(
        &mut self,
        hw: &mut dyn PhysicalSmmu,
        changes: &[(u32, PhysStream, Installed)],
    ) -> u32 {
        if let [(vsid, _, want)] = changes {
            return self.apply(hw, *vsid, *want);
        }
        let installs: Vec<(PhysStream, StreamConfig)> =
            changes.iter().map(|(_, s, w)| (*s, w.config)).collect();
        self.stats.hw_installs += changes.len() as u64;
        match hw.install_many(&installs) {
            Ok(n) => {
                for (vsid, _, want) in changes {
                    self.set_installed(*vsid, Some(*want));
                }
                n
            }
            Err(_) => {
                // Some may be in place, some not: each on its own.
                self.stats.hw_installs -= changes.len() as u64;
                let mut cost = INSTALL_MAX_COMMANDS;
                for (vsid, _, want) in changes {
                    self.set_installed(*vsid, None);
                    cost = cost.saturating_add(self.apply(hw, *vsid, *want));
                }
                cost
            }
        }
    }

    fn set_installed(&mut self, vsid: u32, what: Option<Installed>) {
        let slot = self
            .streams
            .index(vsid)
            .and_then(|i| self.installed.get_mut(i));
        if let Some(slot) = slot {
            *slot = what;
        }
    }

    /// Makes sure every SMMU's pending list has room for one more command.
    fn make_room(&mut self, ports: &mut Ports<'_>) -> Result<(), Stop> {
        if self.smmus.iter().any(|(s, _)| self.batch.is_full(*s)) {
            self.flush_invalidations(ports)?;
        }
        Ok(())
    }

    /// Installs dirty streams, bounded by the per-call STE allowance and the
    /// hardware budget, which is charged what the installs really cost.
    pub(super) fn flush_streams(
        &mut self,
        ports: &mut Ports<'_>,
        allow: &mut Allowance,
    ) -> Result<(), Stop> {
        let worst = u64::from(INSTALL_MAX_COMMANDS);
        while !self.dirty.is_empty() {
            if allow.stes == 0 {
                return Err(Stop::Budget);
            }
            self.make_room(ports)?;
            if !self.budget.take(worst) {
                self.stats.hw_budget_exhausted += 1;
                return Err(Stop::Hardware(self.budget.wait_ns(worst)));
            }
            let before = allow.stes;
            let cost = u64::from(self.install_round(ports, allow));
            self.stats.hw_install_commands += cost;
            self.budget.settle(worst, cost);
            if allow.stes == before {
                // Nothing taken (a full list first): let the next call go on.
                return Err(Stop::Budget);
            }
        }
        Ok(())
    }

    /// Reads the next dirty streams of one SMMU (as many as the allowance
    /// lets) and installs those that changed together. An unchanged nested
    /// stream gets a CFGI_CD_ALL: the guest's CFGI_STE also invalidates the
    /// CDs cached through the STE. Returns the physical commands it took.
    fn install_round(&mut self, ports: &mut Ports<'_>, allow: &mut Allowance) -> u32 {
        let mut changes: Vec<(u32, PhysStream, Installed)> = Vec::new();
        while let Some(vsid) = self.dirty.first() {
            let Some(stream) = self.streams.physical(vsid) else {
                self.dirty.pop_first(&self.streams);
                continue;
            };
            let other_smmu = changes
                .first()
                .is_some_and(|(_, s, _)| s.smmu != stream.smmu);
            if allow.stes == 0 || other_smmu || self.batch.is_full(stream.smmu) {
                break;
            }
            self.dirty.pop_first(&self.streams);
            allow.stes -= 1;
            let want = self.desired(ports, vsid);
            if self.installed(vsid) != Some(want) {
                changes.push((vsid, stream, want));
            } else if matches!(want.config, StreamConfig::Nested(_)) {
                let c = Command::CfgiCdAll(CmdCfgiCdAll::new().with_stream_id(stream.psid));
                // There is room (checked above).
                self.queue(stream.smmu, c);
            }
        }
        self.apply_all(ports.hw, &changes)
    }
}
