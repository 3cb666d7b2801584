//! The vSMMU frame as a hostile guest drives it: register accessors, a
//! command queue that handles CMDQ_ERR as Linux does, CR0 with CR0ACK,
//! all with bounded polling (the payload never hangs on the vSMMU).

use smmuv3::cmd::{CmdCfgiSte, CmdSync};
use smmuv3::queue::{GlobalErrors, Queue, COMMAND_BYTES};
use smmuv3::regs::{CmdqBase, CmdqCons, CmdqConsErr, Cr0, Gerror, Gerrorn, Idr1};
use smmuv3::Register;

use crate::rt::wr64;

pub const BASE: u64 = 0x0905_0000;
/// Polls (each a trapped register read) before giving up on a wait.
pub const POLLS: u32 = 2000;

fn at(r: Register) -> u64 {
    BASE + u64::from(r.info().frame_offset())
}

pub fn r32(r: Register) -> u32 {
    // SAFETY: the vSMMU frame; every access traps to the hypervisor.
    unsafe { core::ptr::read_volatile(at(r) as *const u32) }
}
pub fn w32(r: Register, v: u32) {
    // SAFETY: as in `r32`.
    unsafe { core::ptr::write_volatile(at(r) as *mut u32, v) }
}
pub fn w64(r: Register, v: u64) {
    // SAFETY: as in `r32`.
    unsafe { core::ptr::write_volatile(at(r) as *mut u64, v) }
}

pub const CMDQEN: u32 = Cr0(0).with_cmdqen(true).0;
pub const EVENTQEN: u32 = Cr0(0).with_eventqen(true).0;
pub const SMMUEN: u32 = Cr0(0).with_smmuen(true).0;

/// Writes CR0 and waits for CR0ACK to match.
pub fn cr0(v: u32) -> bool {
    w32(Register::CR0, v);
    (0..POLLS).any(|_| r32(Register::CR0ACK) == v)
}

/// What the error handling saw.
#[derive(Default, Clone, Copy)]
pub struct Errors {
    pub ill: u32,
    pub abt: u32,
    pub other: u32,
    pub gerror_acks: u32,
}

/// Acknowledges every active global error as Linux's handler does: for
/// CMDQ_ERR with CERROR_ILL the offending entry is replaced by a CMD_SYNC.
pub fn ack_gerror(q: Option<&Cmdq>, e: &mut Errors) -> bool {
    let errors = GlobalErrors::new(
        Gerror(r32(Register::GERROR)),
        Gerrorn(r32(Register::GERRORN)),
    );
    if errors.active().0 == 0 {
        return false;
    }
    if errors.any_active(Gerror(0).with_cmdq_err(true)) {
        let cons = CmdqCons(r32(Register::CMDQ_CONS));
        match cons.err() {
            CmdqConsErr::CERROR_ILL => {
                e.ill += 1;
                if let Some(q) = q {
                    q.put(cons.rd(), CmdSync::new().encode());
                }
            }
            CmdqConsErr::CERROR_ABT => e.abt += 1,
            _ => e.other += 1,
        }
    }
    e.gerror_acks += 1;
    w32(Register::GERRORN, errors.acknowledge_all().0);
    true
}

/// Whether CONS reports a command error.
pub fn cons_error(cons: u32) -> bool {
    CmdqCons(cons).err() != CmdqConsErr::CERROR_NONE
}

pub struct Cmdq {
    pub base: u64,
    /// LOG2SIZE as programmed (wild values included).
    pub log2: u32,
    pub prod: u32,
    /// The geometry the SMMU uses: LOG2SIZE capped at IDR1.CMDQS.
    pub q: Queue,
}

impl Cmdq {
    pub fn new(base: u64, log2: u32) -> Self {
        let cmdqs = u32::from(Idr1(r32(Register::IDR1)).cmdqs());
        Cmdq {
            base,
            log2,
            prod: 0,
            q: Queue::new(base, log2, cmdqs, COMMAND_BYTES),
        }
    }
    pub fn size(&self) -> u32 {
        self.q.entries()
    }
    /// Writes an entry at the queue position `pos` (index bits only).
    pub fn put(&self, pos: u32, cmd: [u64; 2]) {
        let at = self.q.slot(pos);
        wr64(at, cmd[0]);
        wr64(at + 8, cmd[1]);
    }
    /// Programs the queue (CMDQEN must be off) and resets both indices.
    pub fn program(&mut self) {
        let b = CmdqBase(0)
            .with_addr(self.base)
            .with_log2size(self.log2 as u8);
        w64(Register::CMDQ_BASE, b.0);
        w32(Register::CMDQ_PROD, 0);
        w32(Register::CMDQ_CONS, 0);
        self.prod = 0;
    }
    /// Entries in use as of `cons`.
    pub fn used(&self, cons: u32) -> u32 {
        self.q.used(self.prod, cons)
    }
    /// Appends without ringing; the caller checked the space.
    pub fn push(&mut self, cmd: [u64; 2]) {
        self.put(self.prod, cmd);
        self.prod = self.q.next(self.prod);
    }
    pub fn ring(&self) {
        w32(Register::CMDQ_PROD, self.prod);
    }
    /// Waits until the queue is empty, handling errors; false on timeout.
    pub fn drain(&self, e: &mut Errors) -> bool {
        for _ in 0..POLLS {
            let cons = r32(Register::CMDQ_CONS);
            if self.used(cons) == 0 {
                return true;
            }
            if cons_error(cons) || ack_gerror(Some(self), e) {
                ack_gerror(Some(self), e);
            }
        }
        false
    }
    /// Waits for room for `n` entries.
    pub fn room(&self, n: u32, e: &mut Errors) -> bool {
        for _ in 0..POLLS {
            let cons = r32(Register::CMDQ_CONS);
            if self.size() - self.used(cons) >= n {
                return true;
            }
            ack_gerror(Some(self), e);
        }
        false
    }
    /// Submits commands and a CMD_SYNC, and waits for them.
    pub fn run(&mut self, cmds: &[[u64; 2]], e: &mut Errors) -> bool {
        for c in cmds.iter().chain([&CmdSync::new().encode()]) {
            if self.used(r32(Register::CMDQ_CONS)) == self.size() {
                self.ring();
                if !self.room(1, e) {
                    return false;
                }
            }
            self.push(*c);
        }
        self.ring();
        self.drain(e)
    }
}

pub fn cfgi_ste(sid: u32) -> [u64; 2] {
    CmdCfgiSte::new()
        .with_stream_id(sid)
        .with_leaf(true)
        .encode()
}
