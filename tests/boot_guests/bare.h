/*
 * What the bare-metal test kernels (bare.ld) share: the PL011 console, PSCI
 * over HVC, a barrier, and the entry of a kernel with one CPU and one stack.
 */
#ifndef BARE_H
#define BARE_H

#include "layout.h"   /* the boot's layout: built with -I the shim's directory */

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef long s64;

#define UART_DR ((volatile u32 *)UART_BASE)

/* _start for one CPU: a 4 KiB stack, then main() */
#define BARE_ONE_CPU_START                                                     \
	char stack[4096] __attribute__((aligned(16)));                         \
	__asm__("   .section .text.start, \"ax\"\n"                            \
		"   .global _start\n"                                           \
		"_start:\n"                                                     \
		"   adrp    x1, stack\n"                                        \
		"   add     x1, x1, :lo12:stack\n"                              \
		"   add     sp, x1, #4096\n"                                    \
		"   bl      main\n"                                             \
		"1: wfi\n"                                                      \
		"   b       1b\n"                                               \
		"   .text\n")

/* _start for CPU 0 and `secondary` for the others, which CPU_ON starts with
 * their index as context: each gets a 4 KiB stack, then cpu_main(index);
 * CPU 0's index is 0. (Entered with D, A, I and F masked.) */
#define BARE_SMP_START(CPUS)                                                   \
	char stacks[CPUS][4096] __attribute__((aligned(16)));                  \
	__asm__("   .section .text.start, \"ax\"\n"                            \
		"   .global _start\n"                                           \
		"_start:\n"                                                     \
		"   mov     x0, #0\n"                                           \
		"secondary:\n"                                                  \
		"   adrp    x1, stacks\n"                                       \
		"   add     x1, x1, :lo12:stacks\n"                             \
		"   add     x2, x0, #1\n"                                       \
		"   lsl     x2, x2, #12\n"                                      \
		"   add     sp, x1, x2\n"                                       \
		"   bl      cpu_main\n"                                         \
		"1: wfi\n"                                                      \
		"   b       1b\n"                                               \
		"   .text\n");                                                  \
	extern char secondary[]

static inline void put(const char *s)
{
	while (*s)
		*UART_DR = (u32)*s++;
}

static inline void put_dec(u64 v)
{
	char buf[21];
	int n = 20;
	buf[n] = 0;
	do
		buf[--n] = (char)('0' + v % 10);
	while (v /= 10);
	put(buf + n);
}

static inline s64 psci(u64 fn, u64 a1, u64 a2, u64 a3)
{
	register u64 x0 __asm__("x0") = fn;
	register u64 x1 __asm__("x1") = a1;
	register u64 x2 __asm__("x2") = a2;
	register u64 x3 __asm__("x3") = a3;
	__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
	return (s64)x0;
}

static inline void barrier(void)
{
	__asm__ volatile("dsb sy" ::: "memory");
}

/* The counter's reading `seconds` from now: waits for other vCPUs are bounded
 * in time, not in loop turns, which a loaded host makes arbitrarily short. */
static inline u64 bare_deadline(u64 seconds)
{
	u64 now, hz;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(now));
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
	return now + seconds * hz;
}

static inline int bare_before(u64 deadline)
{
	u64 now;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(now));
	return now < deadline;
}

#define PSCI_SYSTEM_OFF 0x84000008UL

/* A test kernel's verdicts: "PREFIX: NAME PASS|FAIL" per check, then
 * "PREFIX: SUMMARY N tests, M failures" and SYSTEM_OFF. */
static int bare_tests, bare_failures;

static inline void bare_report(const char *prefix, const char *name, int pass)
{
	bare_tests++;
	bare_failures += !pass;
	put(prefix);
	put(name);
	put(pass ? " PASS\n" : " FAIL\n");
}

static inline void bare_summary_and_off(const char *prefix)
{
	put(prefix);
	put("SUMMARY ");
	put_dec((u64)bare_tests);
	put(" tests, ");
	put_dec((u64)bare_failures);
	put(" failures\n");
	psci(PSCI_SYSTEM_OFF, 0, 0, 0);
}

#define PSCI_CPU_OFF 0x84000002UL
#define PSCI_CPU_ON 0xc4000003UL
#define PSCI_AFFINITY_INFO 0xc4000004UL

#endif
