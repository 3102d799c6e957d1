/* The EL2 shim's entry points and vectors. QEMU starts vCPU 0 at _start at
 * EL2; a secondary starts at secondary_start (through QEMU's PSCI CPU_ON,
 * x0 = its index). Each gets a stack and goes to shim_main in C, which drops
 * it to EL1 through enter_el1. A synchronous exception from EL1 saves
 * x0..x30 on the stack and calls shim_trap with the frame; every other
 * vector is a fault. */
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
    vector  from_el1_sync   /* lower EL, AArch64 */
    vector  from_el1_other
    vector  from_el1_other
    vector  from_el1_other
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

    .section .bss.stacks, "aw", %nobits
    .balign 16
stacks:
    .space  SHIM_STACK * (SHIM_MAX_CPUS + 1)
