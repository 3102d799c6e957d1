/*
 * A bare-metal test kernel after kvm-unit-tests' arm/selftest.c, for
 * `gunyah boot --smp 4`: each check prints "selftest: NAME PASS|FAIL", then
 * "selftest: SUMMARY N tests, M failures", then SYSTEM_OFF.
 *
 *   undef          an undefined instruction: EC 0x00 at our own vector
 *   svc            SVC #0: EC 0x15, no hypervisor involved
 *   prefetch-abort a branch just past the end of the guest's RAM (the
 *                  shim's memory): an instruction abort, EC 0x21
 *   smp            CPUs 1..3 brought up with PSCI CPU_ON each say they ran
 */
#include "bare.h"

#define PREFIX "selftest: "

#define RAM_END SHIM_BASE        /* the guest's RAM ends where the shim begins */
#define CPUS 4

char stacks[CPUS][4096] __attribute__((aligned(16)));
static volatile u64 last_ec, taken, ran[CPUS];

__asm__(
    "   .section .text.start, \"ax\"\n"
    "   .global _start\n"
    "_start:\n"
    "   mov     x0, #0\n"
    "secondary:\n"
    "   adrp    x1, stacks\n"
    "   add     x1, x1, :lo12:stacks\n"
    "   add     x2, x0, #1\n"
    "   lsl     x2, x2, #12\n"
    "   add     sp, x1, x2\n"
    "   adrp    x1, vectors\n"
    "   add     x1, x1, :lo12:vectors\n"
    "   msr     vbar_el1, x1\n"
    "   isb\n"
    "   bl      cpu_main\n"
    "1: wfi\n"
    "   b       1b\n"
    "   .balign 0x800\n"
    "vectors:\n"
    "   .skip   0x200\n"            /* current EL with SP_ELx, synchronous */
    "   sub     sp, sp, #32\n"
    "   stp     x0, x1, [sp]\n"
    "   str     x30, [sp, #16]\n"
    "   mov     x0, sp\n"
    "   bl      on_sync\n"
    "   ldp     x0, x1, [sp]\n"
    "   ldr     x30, [sp, #16]\n"
    "   add     sp, sp, #32\n"
    "   eret\n"
    "   .balign 0x80\n"
    "   .skip   0x580\n"
    "   .text\n");

extern char secondary[];

#define sysreg_read(r) ({ u64 v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((u64)(v)))

/* An instruction abort returns to the caller (x30, which the vector saved
 * in frame[2]); anything else resumes after the instruction that trapped. */
void on_sync(u64 *frame)
{
    u64 ec = sysreg_read(esr_el1) >> 26;
    last_ec = ec;
    taken++;
    if (ec == 0x21)
        sysreg_write(elr_el1, frame[2]);
    else if (ec != 0x15)            /* an SVC's ELR is already past it */
        sysreg_write(elr_el1, sysreg_read(elr_el1) + 4);
}

static int expect(u64 ec)
{
    int ok = taken == 1 && last_ec == ec;
    taken = last_ec = 0;
    return ok;
}

void cpu_main(u64 index)
{
    if (index) {
        ran[index] = 1;
        barrier();
        return;
    }
    __asm__ volatile("udf #0");
    bare_report(PREFIX, "undef", expect(0x00));
    __asm__ volatile("svc #0");
    bare_report(PREFIX, "svc", expect(0x15));
    ((void (*)(void))RAM_END)();
    bare_report(PREFIX, "prefetch-abort", expect(0x21));

    int up = 1;
    for (u64 cpu = 1; cpu < CPUS; cpu++)
        up &= psci(PSCI_CPU_ON, cpu, (u64)secondary, cpu) == 0;
    for (u64 until = bare_deadline(10); bare_before(until) && !(ran[1] && ran[2] && ran[3]);)
        barrier();
    bare_report(PREFIX, "smp", up && ran[1] && ran[2] && ran[3]);

    bare_summary_and_off(PREFIX);
}
