//! The addresses of QEMU virt (-m 1G) and of what hyp/run loads into it.

pub const RAM_BASE: u64 = 0x4000_0000;
/// The hypervisor's own 2 MiB at the top of RAM (link.ld).
pub const HYP_BASE: u64 = 0x7fe0_0000;
pub const HYP_SIZE: u64 = 0x20_0000;
/// QEMU writes the DTB at the RAM base when the ELF lies above it.
pub const DTB_BASE: u64 = RAM_BASE;
/// QEMU's DTB ROM blob is 1 MiB; the rewritten tree must fit there.
pub const DTB_MAX: usize = 0x10_0000;
/// The arm64 Image, 2 MiB aligned, text_offset 0.
pub const KERNEL_BASE: u64 = 0x4020_0000;
/// The initramfs, loaded by `-device loader`.
pub const INITRD_BASE: u64 = 0x4800_0000;
/// The boot-info page hyp/run writes: magic, the initramfs size, flags.
pub const BOOTINFO: u64 = 0x7fff_f000;
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"VSMMUHYP");
/// The SMMUv3 register frame (two 64 KiB pages) from QEMU's DT.
pub const SMMU_BASE: u64 = 0x0905_0000;
pub const SMMU_SIZE: u64 = smmuv3::FRAME_SIZE as u64;
/// Boot-info flag: forward the SMMU frame to the physical SMMU instead of
/// emulating it (the unisolated stepping stone, kept for comparisons).
pub const BOOTINFO_FORWARD: u64 = 1;
/// Boot-info flag: the vSMMU's small policy (8 guest commands and 8 STEs per
/// call), so that most of Linux's batches are continued by deferred work.
pub const BOOTINFO_SMALL_POLICY: u64 = 2;
/// The counter-snapshot doorbell, in the boot-info page: a 32-bit write of
/// a label prints one `snapshot LABEL name=value ...` line (hyp/run turns the
/// differences between two into per-operation figures). Only the first
/// `SNAPSHOT_LIMIT` are honoured; later ones are aborts like any other access
/// to the hypervisor's memory, so a guest cannot flood the console.
pub const SNAPSHOT: u64 = BOOTINFO + 0x100;
pub const SNAPSHOT_LIMIT: u64 = 16;
