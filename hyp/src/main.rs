//! vsmmu-hyp: a minimal EL2 hypervisor for QEMU virt that runs one Linux
//! guest at EL1 with its SMMUv3 frame emulated.
#![no_std]
#![no_main]

extern crate alloc;

mod counters;
mod dtb;
mod integrity;
mod layout;
mod mmio;
mod mmu;
mod psci;
mod s2;
mod trap;
mod uart;
mod vsmmu_port;

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use linked_list_allocator::LockedHeap;

core::arch::global_asm!(include_str!("boot.S"));

const STACK_SIZE: usize = 0x1_0000;

#[repr(C, align(16))]
struct Stacks([u8; STACK_SIZE * psci::MAX_CPUS]);

#[no_mangle]
static mut hyp_stacks: Stacks = Stacks([0; STACK_SIZE * psci::MAX_CPUS]);

const HEAP_SIZE: usize = 0x8_0000;
#[repr(C, align(4096))]
struct Heap([u8; HEAP_SIZE]);
static mut HEAP: Heap = Heap([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// The stage-2 root, built by the primary and shared by every vCPU.
static S2_ROOT: AtomicU64 = AtomicU64::new(0);
const VMID: u64 = 1;

extern "C" {
    fn enter_guest(entry: u64, x0: u64, stack_top: u64) -> !;
}

fn stack_top(cpu: usize) -> u64 {
    core::ptr::addr_of!(hyp_stacks) as u64 + ((cpu + 1) * STACK_SIZE) as u64
}

#[no_mangle]
extern "C" fn hyp_main(cpu: usize) -> ! {
    if cpu == 0 {
        mmu::build();
    }
    mmu::enable();
    if cpu == 0 {
        primary()
    }
    let (entry, ctx) = psci::secondary_boot(cpu);
    setup_el2_for_guest(S2_ROOT.load(Ordering::Acquire));
    // SAFETY: entry is where the guest asked this CPU to start.
    unsafe { enter_guest(entry, ctx, stack_top(cpu)) }
}

fn primary() -> ! {
    // SAFETY: the heap is handed to the allocator once, here.
    unsafe {
        ALLOCATOR
            .lock()
            .init(core::ptr::addr_of_mut!(HEAP) as *mut u8, HEAP_SIZE)
    };
    println!(
        "EL{} MMU on, {} KiB heap",
        CurrentEL.read(CurrentEL::EL),
        HEAP_SIZE / 1024
    );
    integrity::record();
    let boot = bootinfo();
    let initrd = boot.initrd;
    let spis = dtb::original()
        .map(|f| dtb::smmu_spis(&f))
        .unwrap_or_default();
    println!("vSMMU SPIs (INTIDs): {spis:?}");
    // Forwarding hands the guest the physical SMMU: its StreamIDs must stay
    // the physical ones.
    let forward = boot.flags & layout::BOOTINFO_FORWARD != 0;
    let vsid_offset = if forward { 0 } else { vsmmu_port::VSID_OFFSET };
    match dtb::rewrite(&dtb::Additions {
        initrd,
        vsid_offset,
    }) {
        Ok(size) => println!(
            "DTB rewritten at {:#x} ({} bytes), initrd {:x?}",
            layout::DTB_BASE,
            size,
            initrd
        ),
        Err(e) => {
            println!("DTB: {e:?}; cannot boot the guest");
            psci::system_off()
        }
    }
    let root = s2::build();
    S2_ROOT.store(root, Ordering::Release);
    install_smmu_frame(root, spis, boot.flags);
    setup_el2_for_guest(root);
    println!(
        "entering Linux at {:#x} (HCR_EL2 {:#x}, VTCR_EL2 {:#x})",
        layout::KERNEL_BASE,
        HCR_EL2.get(),
        VTCR_EL2.get()
    );
    // SAFETY: the Image was loaded at KERNEL_BASE by QEMU's loader.
    unsafe { enter_guest(layout::KERNEL_BASE, layout::DTB_BASE, stack_top(0)) }
}

/// What hyp/run put in the boot-info page (magic, initramfs size, flags).
#[derive(Clone, Copy, Debug, Default)]
struct BootInfo {
    initrd: Option<(u64, u64)>,
    flags: u64,
}

fn bootinfo() -> BootInfo {
    let page = layout::BOOTINFO as *const u64;
    // SAFETY: the boot-info page is RAM in the hypervisor's own 2 MiB.
    let [magic, size, flags] = unsafe { [0, 1, 2].map(|i| page.add(i).read_volatile()) };
    if magic != layout::BOOTINFO_MAGIC {
        return BootInfo::default();
    }
    let fits = size > 0 && size < layout::HYP_BASE - layout::INITRD_BASE;
    BootInfo {
        initrd: fits.then_some((layout::INITRD_BASE, layout::INITRD_BASE + size)),
        flags,
    }
}

/// Serves the SMMU frame: the vSMMU, or (flag) plain forwarding.
fn install_smmu_frame(root: u64, spis: vsmmu_port::Spis, flags: u64) {
    if flags & layout::BOOTINFO_FORWARD != 0 {
        static FORWARD: mmio::Forward = mmio::Forward {
            base: layout::SMMU_BASE,
        };
        mmio::install(&FORWARD);
        println!("SMMU frame forwarded to the physical SMMU (no isolation)");
        return;
    }
    let small = flags & layout::BOOTINFO_SMALL_POLICY != 0;
    match vsmmu_port::setup(root, VMID as u16, spis, small) {
        Ok(()) => {
            static FRAME: vsmmu_port::VsmmuFrame = vsmmu_port::VsmmuFrame;
            mmio::install(&FRAME);
            println!(
                "vSMMU at {:#x} over the physical SMMU (smmuv3-hw), vSID = RID + {:#x}, {} policy",
                layout::SMMU_BASE,
                vsmmu_port::VSID_OFFSET,
                if small { "small" } else { "default" }
            );
        }
        // The frame then reads as zero: the guest finds no SMMU, and its
        // devices stay behind the physical SMMU's abort STEs.
        Err(e) => println!("vSMMU setup failed: {e:?}"),
    }
}

/// The EL2 state each CPU needs before its first ERET to the guest.
fn setup_el2_for_guest(s2_root: u64) {
    HCR_EL2.write(
        HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
            + HCR_EL2::SWIO::SET
            + HCR_EL2::TWI::SET
            + HCR_EL2::VM::Enable,
    );
    VTCR_EL2.write(
        VTCR_EL2::RES1.val(1)
            + VTCR_EL2::PS.val(0b010) // 40-bit output
            + VTCR_EL2::TG0.val(0b00) // 4 KiB granule
            + VTCR_EL2::SH0.val(0b11) // inner shareable walks
            + VTCR_EL2::ORGN0.val(0b01) // write-back walks
            + VTCR_EL2::IRGN0.val(0b01)
            + VTCR_EL2::SL0.val(0b10) // start at level 0 (4 KiB granule)
            + VTCR_EL2::T0SZ.val(24), // 40-bit IPA
    );
    VTTBR_EL2.write(VTTBR_EL2::VMID.val(VMID) + VTTBR_EL2::BADDR.val(s2_root >> 1));
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(0);
    CNTHP_CTL_EL2.set(0);
    ICC_SRE_EL2.modify(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
    ICH_HCR_EL2.set(0);
    VMPIDR_EL2.set(MPIDR_EL1.get());
    // SCTLR_EL1: RES1 bits only (MMU and caches off, little-endian).
    SCTLR_EL1.set(0x30d0_0800);
    misc_el2_registers();
    barrier::isb(barrier::SY);
}

/// The EL2 registers aarch64-cpu does not name: HSTR_EL2 (no CP15 traps),
/// VPIDR_EL2 (the guest reads the real MIDR), MDCR_EL2.HPMN (every PMU
/// counter to EL1, as PMCR_EL0.N says).
fn misc_el2_registers() {
    // SAFETY: plain system-register moves at EL2, no memory is touched.
    unsafe {
        core::arch::asm!(
            "msr hstr_el2, xzr",
            "mrs {t}, midr_el1",
            "msr vpidr_el2, {t}",
            "mrs {t}, pmcr_el0",
            "ubfx {t}, {t}, #11, #5",
            "msr mdcr_el2, {t}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            t = out(reg) _,
        );
    }
}

/// Printed at SYSTEM_OFF.
pub fn report() {
    counters::print_all();
    counters::SMMU_READS_BY_REG.print("smmu_reads_by_register");
    counters::SMMU_WRITES_BY_REG.print("smmu_writes_by_register");
    vsmmu_port::print_stats();
    println!("counter hyp_memory_intact {}", integrity::intact());
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    uart::print_unlocked(format_args!("vsmmu-hyp: panic: {info}\n"));
    psci::system_off()
}
