/*
 * A bare-metal guest that tries the shim's walls from EL1 and prints what it
 * saw on the PL011, one "shim-probe: NAME key=value..." line a check, then
 * makes one ordinary call and powers off through PSCI:
 *
 *   entry      which of x1..x30, SP_EL0 were nonzero when it was entered
 *   write-shim a write into the shim's mailboxes (outside the stage-2 map)
 *   read-shim  a read of the shim's first word
 *   exec-shim  a branch to the shim's code: past the end of the guest's RAM
 *   fw-cfg     a read of QEMU's fw_cfg, which the guest is not given
 *   semihosting an Arm semihosting call (SYS_OPEN of the path below)
 *   uid        VENDOR_HYP_CALL_UID afterwards: the shim still answers
 *
 * Each exception is caught by its own EL1 vector, which records ESR, FAR
 * and ELR and resumes after the faulting instruction (after the branch, for
 * the instruction abort).
 */
#include "layout.h"   /* the boot's layout: built with -I the shim's directory */

typedef unsigned long u64;
typedef unsigned int u32;

#define UART_DR ((volatile u32 *)UART_BASE)
#ifndef SEMIHOSTING_PATH
#define SEMIHOSTING_PATH "/tmp/gunyah-shim-probe-semihosting"
#endif

u64 entry_regs[32];                 /* x0..x30, SP_EL0: written by _head */
static volatile u64 last_esr, last_far, last_elr, taken;

__asm__(
    "   .section .text.head, \"ax\"\n"
    "   .global _head\n"
    "_head:\n"
    "   b       entry\n"                    /* code0 */
    "   .long   0\n"                        /* code1 */
    "   .quad   0\n"                        /* text_offset */
    "   .quad   __image_size\n"
    "   .quad   0xa\n"                      /* flags: LE, 4K pages, anywhere */
    "   .quad   0, 0, 0\n"
    "   .ascii  \"ARM\\x64\"\n"
    "   .long   0\n"
    "entry:\n"
    "   msr     tpidr_el1, x0\n"
    "   adrp    x0, entry_regs\n"
    "   add     x0, x0, :lo12:entry_regs\n"
    "   stp     xzr, x1, [x0, #0]\n"
    "   stp     x2, x3, [x0, #16]\n"
    "   stp     x4, x5, [x0, #32]\n"
    "   stp     x6, x7, [x0, #48]\n"
    "   stp     x8, x9, [x0, #64]\n"
    "   stp     x10, x11, [x0, #80]\n"
    "   stp     x12, x13, [x0, #96]\n"
    "   stp     x14, x15, [x0, #112]\n"
    "   stp     x16, x17, [x0, #128]\n"
    "   stp     x18, x19, [x0, #144]\n"
    "   stp     x20, x21, [x0, #160]\n"
    "   stp     x22, x23, [x0, #176]\n"
    "   stp     x24, x25, [x0, #192]\n"
    "   stp     x26, x27, [x0, #208]\n"
    "   stp     x28, x29, [x0, #224]\n"
    "   mrs     x1, sp_el0\n"
    "   stp     x30, x1, [x0, #240]\n"
    "   adrp    x0, stack_top\n"
    "   add     x0, x0, :lo12:stack_top\n"
    "   mov     sp, x0\n"
    "   adrp    x0, vectors\n"
    "   add     x0, x0, :lo12:vectors\n"
    "   msr     vbar_el1, x0\n"
    "   isb\n"
    "   bl      probe_main\n"
    "1: wfi\n"
    "   b       1b\n"
    "   .section .text.vectors, \"ax\"\n"
    "   .balign 0x800\n"
    "vectors:\n"
    "   .skip   0x200\n"
    "   sub     sp, sp, #256\n"             /* current EL with SP_ELx, synchronous */
    "   stp     x0, x1, [sp, #0]\n"
    "   stp     x2, x3, [sp, #16]\n"
    "   stp     x4, x5, [sp, #32]\n"
    "   stp     x6, x7, [sp, #48]\n"
    "   stp     x8, x9, [sp, #64]\n"
    "   stp     x10, x11, [sp, #80]\n"
    "   stp     x12, x13, [sp, #96]\n"
    "   stp     x14, x15, [sp, #112]\n"
    "   stp     x16, x17, [sp, #128]\n"
    "   stp     x18, x30, [sp, #144]\n"
    "   mov     x0, sp\n"
    "   bl      on_sync\n"
    "   ldp     x0, x1, [sp, #0]\n"
    "   ldp     x2, x3, [sp, #16]\n"
    "   ldp     x4, x5, [sp, #32]\n"
    "   ldp     x6, x7, [sp, #48]\n"
    "   ldp     x8, x9, [sp, #64]\n"
    "   ldp     x10, x11, [sp, #80]\n"
    "   ldp     x12, x13, [sp, #96]\n"
    "   ldp     x14, x15, [sp, #112]\n"
    "   ldp     x16, x17, [sp, #128]\n"
    "   ldp     x18, x30, [sp, #144]\n"
    "   add     sp, sp, #256\n"
    "   eret\n"
    "   .balign 0x80\n"
    "   .skip   0x580\n"
    "   .text\n");

unsigned char stack[16384] __attribute__((aligned(16)));
__asm__(".set stack_top, stack + 16384");

#define sysreg_read(r) ({ u64 v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((u64)(v)))

/* frame: x0..x18 then x30 at word 19 */
void on_sync(u64 *frame)
{
    u64 esr = sysreg_read(esr_el1), elr = sysreg_read(elr_el1);
    last_esr = esr;
    last_far = sysreg_read(far_el1);
    last_elr = elr;
    taken++;
    u64 ec = esr >> 26;
    if (ec == 0x20 || ec == 0x21)
        sysreg_write(elr_el1, frame[19]);   /* back to after the branch */
    else
        sysreg_write(elr_el1, elr + 4);
}

static void putc_(char c) { *UART_DR = (u32)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void hex(u64 v)
{
    puts_("0x");
    for (int i = 60; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 0xf]);
}

static void report(const char *name)
{
    puts_("shim-probe: ");
    puts_(name);
    puts_(" taken=");
    hex(taken);
    puts_(" esr=");
    hex(last_esr);
    puts_(" far=");
    hex(last_far);
    puts_(" elr=");
    hex(last_elr);
    puts_("\n");
    taken = last_esr = last_far = last_elr = 0;
}

static u64 hvc(u64 fn, u64 *x1)
{
    register u64 r0 __asm__("x0") = fn;
    register u64 r1 __asm__("x1") = 0;
    __asm__ volatile("hvc #0" : "+r"(r0), "+r"(r1) : : "x2", "x3", "memory");
    *x1 = r1;
    return r0;
}

void probe_main(void)
{
    u64 nonzero = 0;
    for (int i = 1; i < 32; i++)
        if (entry_regs[i])
            nonzero |= 1UL << i;
    puts_("shim-probe: entry nonzero=");
    hex(nonzero);
    puts_("\n");
    report("quiet");

    *(volatile u64 *)SHIM_MAILBOXES = 0xdeadbeef;
    report("write-shim");
    (void)*(volatile u64 *)SHIM_BASE;
    report("read-shim");
    ((void (*)(void))SHIM_BASE)();
    report("exec-shim");
    (void)*(volatile u32 *)FW_CFG_PAGE;
    report("fw-cfg");

    static const char path[] = SEMIHOSTING_PATH;
    u64 block[3] = {(u64)path, 4 /* "w" */, sizeof path - 1};
    register u64 op __asm__("x0") = 0x01;           /* SYS_OPEN */
    register u64 arg __asm__("x1") = (u64)block;
    __asm__ volatile("hlt #0xf000" : "+r"(op) : "r"(arg) : "memory");
    report("semihosting");

    u64 x1;
    u64 x0 = hvc(0x8600ff01, &x1);
    puts_("shim-probe: uid x0=");
    hex(x0);
    puts_(" x1=");
    hex(x1);
    puts_("\n");
    hvc(0x84000008, &x1);                           /* PSCI SYSTEM_OFF */
}
