// Entry, stacks and the EL2 exception vector of vsmmu-hyp.

.equ STACK_SIZE, 0x10000
.equ MAX_CPUS, 2
// The trap frame: x0-x30, ELR_EL2, SPSR_EL2, pad, then q0-q31, FPCR, FPSR.
.equ FRAME_GPRS, 34 * 8
.equ FRAME_SIZE, FRAME_GPRS + 32 * 16 + 16

.section .text.boot, "ax"
.global _start
_start:
    // The primary CPU, at EL2, MMU off. QEMU zero-fills the ELF's bss, but
    // clear it anyway: nothing here may rely on a loader's kindness.
    adrp x1, __bss_start
    add x1, x1, :lo12:__bss_start
    adrp x2, __bss_end
    add x2, x2, :lo12:__bss_end
1:  cmp x1, x2
    b.hs 2f
    str xzr, [x1], #8
    b 1b
2:  mov x19, #0
    b common_entry

// Secondary CPUs, started by the hypervisor's own PSCI CPU_ON at EL2 with
// x0 = their CPU index.
.global hyp_secondary_entry
hyp_secondary_entry:
    mov x19, x0
common_entry:
    cmp x19, #MAX_CPUS
    b.hs park
    // FP/SIMD untrapped at EL2 before any Rust code runs (CPTR_EL2 RES1 bits
    // 13:12 and 9:0, TFP=0): compiled code may use the vector registers.
    mov x1, #0x33ff
    msr cptr_el2, x1
    isb
    adrp x1, hyp_stacks
    add x1, x1, :lo12:hyp_stacks
    add x2, x19, #1
    mov x3, #STACK_SIZE
    mul x2, x2, x3
    add x1, x1, x2
    mov sp, x1
    adrp x1, hyp_vectors
    add x1, x1, :lo12:hyp_vectors
    msr vbar_el2, x1
    isb
    mov x0, x19
    bl hyp_main
park:
    wfe
    b park

// enter_guest(entry, x0, stack_top): ERET to EL1 with a fresh EL2 stack.
.global enter_guest
enter_guest:
    msr elr_el2, x0
    mov x0, #0x3c5
    msr spsr_el2, x0
    mov sp, x2
    mov x0, x1
    mov x1, xzr
    mov x2, xzr
    mov x3, xzr
    eret

.macro SAVE_FRAME
    sub sp, sp, #FRAME_SIZE
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x0, elr_el2
    stp x30, x0, [sp, #240]
    mrs x0, spsr_el2
    str x0, [sp, #256]
    add x0, sp, #FRAME_GPRS
    stp q0, q1, [x0, #0]
    stp q2, q3, [x0, #32]
    stp q4, q5, [x0, #64]
    stp q6, q7, [x0, #96]
    stp q8, q9, [x0, #128]
    stp q10, q11, [x0, #160]
    stp q12, q13, [x0, #192]
    stp q14, q15, [x0, #224]
    stp q16, q17, [x0, #256]
    stp q18, q19, [x0, #288]
    stp q20, q21, [x0, #320]
    stp q22, q23, [x0, #352]
    stp q24, q25, [x0, #384]
    stp q26, q27, [x0, #416]
    stp q28, q29, [x0, #448]
    stp q30, q31, [x0, #480]
    mrs x1, fpcr
    mrs x2, fpsr
    add x3, x0, #512
    stp x1, x2, [x3]
.endm

.macro RESTORE_FRAME
    add x0, sp, #FRAME_GPRS
    add x3, x0, #512
    ldp x1, x2, [x3]
    msr fpcr, x1
    msr fpsr, x2
    ldp q0, q1, [x0, #0]
    ldp q2, q3, [x0, #32]
    ldp q4, q5, [x0, #64]
    ldp q6, q7, [x0, #96]
    ldp q8, q9, [x0, #128]
    ldp q10, q11, [x0, #160]
    ldp q12, q13, [x0, #192]
    ldp q14, q15, [x0, #224]
    ldp q16, q17, [x0, #256]
    ldp q18, q19, [x0, #288]
    ldp q20, q21, [x0, #320]
    ldp q22, q23, [x0, #352]
    ldp q24, q25, [x0, #384]
    ldp q26, q27, [x0, #416]
    ldp q28, q29, [x0, #448]
    ldp q30, q31, [x0, #480]
    ldp x30, x0, [sp, #240]
    msr elr_el2, x0
    ldr x0, [sp, #256]
    msr spsr_el2, x0
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    add sp, sp, #FRAME_SIZE
.endm

.macro UNEXPECTED kind
    .balign 0x80
    mov x0, #\kind
    mrs x1, esr_el2
    mrs x2, elr_el2
    mrs x3, far_el2
    b hyp_unexpected
.endm

.section .text
.balign 0x800
.global hyp_vectors
hyp_vectors:
    UNEXPECTED 0    // current EL, SP_EL0: sync
    UNEXPECTED 1
    UNEXPECTED 2
    UNEXPECTED 3
    UNEXPECTED 4    // current EL, SP_ELx: sync
    UNEXPECTED 5
    UNEXPECTED 6
    UNEXPECTED 7
    .balign 0x80    // lower EL, AArch64: sync (the guest's traps)
    b lower_sync
    UNEXPECTED 9
    UNEXPECTED 10
    UNEXPECTED 11
    UNEXPECTED 12   // lower EL, AArch32
    UNEXPECTED 13
    UNEXPECTED 14
    UNEXPECTED 15

lower_sync:
    SAVE_FRAME
    mov x0, sp
    bl hyp_trap
    RESTORE_FRAME
    eret
