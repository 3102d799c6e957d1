/* The EL2 shim's entry points and vectors. QEMU starts vCPU 0 at _start at
 * EL2; a secondary starts at secondary_start (through QEMU's PSCI CPU_ON,
 * x0 = its index). Each gets a stack and goes to shim_main in C, which drops
 * it to EL1 through enter_el1. A synchronous exception from EL1 saves
 * x0..x30 on the stack and calls shim_trap with the frame; every other
 * vector is a fault.
 * The world switch (docs/boot.md section 12): while a secondary VM's vCPU
 * runs, TPIDR_EL2 holds its struct vcpu_context (0 while the primary runs),
 * and every exception from the lower EL (a trap, or the host's IRQ, FIQ or
 * SError, which HCR_EL2 routes here only then) ends its run: guest_exit
 * saves its registers and returns from world_switch. The FP/SIMD registers
 * are switched here, eagerly, since the C code is built without them. */
#include "layout.h"   /* generated from gunyah/boot/layout.py */

    .section .text.start, "ax"
    .global _start
_start:
    mov     x0, #0
    b       enter

    .global secondary_start
secondary_start:
    /* x0: this vCPU's index, from the CPU_ON context */
enter:
    adrp    x1, stacks
    add     x1, x1, :lo12:stacks
    add     x2, x0, #1
    mov     x3, #SHIM_STACK
    madd    x1, x2, x3, x1          /* top of stacks[index] */
    mov     sp, x1
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el2, x1
    msr     tpidr_el2, xzr          /* the primary runs */
    isb
    bl      shim_main               /* does not return */
1:  wfe
    b       1b

.macro save_frame
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
.endm

.macro vector handler
    .balign 0x80
    save_frame
    mov     x0, sp
    b       \handler
.endm

/* From the lower EL: a secondary's exit when one runs, else the primary's */
.macro lower kind, handler
    .balign 0x80
    save_frame
    mrs     x0, tpidr_el2
    mov     x1, #\kind
    cbnz    x0, guest_exit
    mov     x0, sp
    b       \handler
.endm

    .section .text.vectors, "ax"
    .balign 0x800
vectors:
    vector  from_el2        /* current EL, SP_EL0 */
    vector  from_el2
    vector  from_el2
    vector  from_el2
    vector  from_el2        /* current EL, SP_ELx */
    vector  from_el2
    vector  from_el2
    vector  from_el2
    lower   EXIT_SYNC, from_el1_sync     /* lower EL, AArch64 */
    lower   EXIT_IRQ, from_el1_other
    lower   EXIT_FIQ, from_el1_other
    lower   EXIT_SERROR, from_el1_other
    vector  from_el1_other  /* lower EL, AArch32 */
    vector  from_el1_other
    vector  from_el1_other
    vector  from_el1_other

from_el1_sync:
    bl      shim_trap
    /* restore and return to EL1 */
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #FRAME_SIZE
    eret

from_el1_other:
    mov     x1, #0
    bl      shim_fault
from_el2:
    mov     x1, #1
    bl      shim_fault

/* enter_el1(entry, x0): to EL1h at entry with DAIF masked, x0 as given and
 * every other general-purpose register, SP_EL0 and SP_EL1 zero: nothing of
 * the shim's (its stack, its addresses) reaches the guest. */
    .global enter_el1
enter_el1:
    msr     elr_el2, x0
    mov     x2, #0x3c5              /* EL1h, D A I F masked */
    msr     spsr_el2, x2
    msr     sp_el0, xzr
    msr     sp_el1, xzr
    mov     x0, x1
    mov     x1, #0
    mov     x2, #0
    mov     x3, #0
    mov     x4, #0
    mov     x5, #0
    mov     x6, #0
    mov     x7, #0
    mov     x8, #0
    mov     x9, #0
    mov     x10, #0
    mov     x11, #0
    mov     x12, #0
    mov     x13, #0
    mov     x14, #0
    mov     x15, #0
    mov     x16, #0
    mov     x17, #0
    mov     x18, #0
    mov     x19, #0
    mov     x20, #0
    mov     x21, #0
    mov     x22, #0
    mov     x23, #0
    mov     x24, #0
    mov     x25, #0
    mov     x26, #0
    mov     x27, #0
    mov     x28, #0
    mov     x29, #0
    mov     x30, #0
    isb
    eret

/* Q0..Q31 to or from the 512 bytes at \base */
.macro fp_save base
    stp     q0, q1, [\base, #0]
    stp     q2, q3, [\base, #32]
    stp     q4, q5, [\base, #64]
    stp     q6, q7, [\base, #96]
    stp     q8, q9, [\base, #128]
    stp     q10, q11, [\base, #160]
    stp     q12, q13, [\base, #192]
    stp     q14, q15, [\base, #224]
    stp     q16, q17, [\base, #256]
    stp     q18, q19, [\base, #288]
    stp     q20, q21, [\base, #320]
    stp     q22, q23, [\base, #352]
    stp     q24, q25, [\base, #384]
    stp     q26, q27, [\base, #416]
    stp     q28, q29, [\base, #448]
    stp     q30, q31, [\base, #480]
.endm

.macro fp_load base
    ldp     q0, q1, [\base, #0]
    ldp     q2, q3, [\base, #32]
    ldp     q4, q5, [\base, #64]
    ldp     q6, q7, [\base, #96]
    ldp     q8, q9, [\base, #128]
    ldp     q10, q11, [\base, #160]
    ldp     q12, q13, [\base, #192]
    ldp     q14, q15, [\base, #224]
    ldp     q16, q17, [\base, #256]
    ldp     q18, q19, [\base, #288]
    ldp     q20, q21, [\base, #320]
    ldp     q22, q23, [\base, #352]
    ldp     q24, q25, [\base, #384]
    ldp     q26, q27, [\base, #416]
    ldp     q28, q29, [\base, #448]
    ldp     q30, q31, [\base, #480]
.endm

#define SWITCH_FRAME (96 + 528)     /* x19..x30, then the primary's FP state */

    .arch_extension fp
    .arch_extension simd

/* uint64_t world_switch(struct vcpu_context *ctx): run the secondary's vCPU
 * from ctx (x0..x30, PC, PSTATE, FP; the caller has loaded its EL1 and EL2
 * registers) until its next exception from the lower EL; returns that
 * vector's EXIT_* with the vCPU's registers saved back in ctx. The primary's
 * callee-saved registers and FP state wait on this stack meanwhile: nothing
 * of them is left in a register the secondary sees. */
    .global world_switch
world_switch:
    sub     sp, sp, #SWITCH_FRAME
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    add     x1, sp, #96
    fp_save x1
    mrs     x2, fpcr
    mrs     x3, fpsr
    add     x4, sp, #96 + 512
    stp     x2, x3, [x4]
    add     x1, x0, #CTX_Q
    fp_load x1
    ldr     x2, [x0, #CTX_FPCR]
    msr     fpcr, x2
    ldr     x2, [x0, #CTX_FPCR + 8]
    msr     fpsr, x2
    ldr     x2, [x0, #CTX_PC]
    msr     elr_el2, x2
    ldr     x2, [x0, #CTX_PSTATE]
    msr     spsr_el2, x2
    msr     tpidr_el2, x0
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    isb
    eret

/* x0: the running vcpu_context, x1: the vector's EXIT_*, sp: the frame the
 * vector saved, just below world_switch's. */
    .global guest_exit
guest_exit:
    ldp     x2, x3, [sp, #0]
    stp     x2, x3, [x0, #0]
    ldp     x2, x3, [sp, #16]
    stp     x2, x3, [x0, #16]
    ldp     x2, x3, [sp, #32]
    stp     x2, x3, [x0, #32]
    ldp     x2, x3, [sp, #48]
    stp     x2, x3, [x0, #48]
    ldp     x2, x3, [sp, #64]
    stp     x2, x3, [x0, #64]
    ldp     x2, x3, [sp, #80]
    stp     x2, x3, [x0, #80]
    ldp     x2, x3, [sp, #96]
    stp     x2, x3, [x0, #96]
    ldp     x2, x3, [sp, #112]
    stp     x2, x3, [x0, #112]
    ldp     x2, x3, [sp, #128]
    stp     x2, x3, [x0, #128]
    ldp     x2, x3, [sp, #144]
    stp     x2, x3, [x0, #144]
    ldp     x2, x3, [sp, #160]
    stp     x2, x3, [x0, #160]
    ldp     x2, x3, [sp, #176]
    stp     x2, x3, [x0, #176]
    ldp     x2, x3, [sp, #192]
    stp     x2, x3, [x0, #192]
    ldp     x2, x3, [sp, #208]
    stp     x2, x3, [x0, #208]
    ldp     x2, x3, [sp, #224]
    stp     x2, x3, [x0, #224]
    ldr     x2, [sp, #240]
    str     x2, [x0, #240]
    mrs     x2, elr_el2
    str     x2, [x0, #CTX_PC]
    mrs     x2, spsr_el2
    str     x2, [x0, #CTX_PSTATE]
    str     x1, [x0, #CTX_EXIT]
    add     x2, x0, #CTX_Q
    fp_save x2
    mrs     x3, fpcr
    str     x3, [x0, #CTX_FPCR]
    mrs     x3, fpsr
    str     x3, [x0, #CTX_FPCR + 8]
    msr     tpidr_el2, xzr          /* the primary's again */
    add     sp, sp, #FRAME_SIZE     /* world_switch's frame */
    add     x2, sp, #96
    fp_load x2
    add     x4, sp, #96 + 512
    ldp     x2, x3, [x4]
    msr     fpcr, x2
    msr     fpsr, x3
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #SWITCH_FRAME
    mov     x0, x1
    ret
    .global world_switch_end
world_switch_end:                   /* the only FP/SIMD code is above, to world_switch */

    .section .bss.stacks, "aw", %nobits
    .balign 16
stacks:
    .space  SHIM_STACK * (SHIM_MAX_CPUS + 1)
