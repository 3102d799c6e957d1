/* A bare-metal test kernel whose only CPU turns itself off: nothing is left
 * to run, and `gunyah boot` ends it as halted at once, not at its timeout. */
typedef unsigned long u64;
char stack[4096] __attribute__((aligned(16)));

__asm__(
    "   .section .text.start, \"ax\"\n"
    "   .global _start\n"
    "_start:\n"
    "   adrp    x1, stack\n"
    "   add     x1, x1, :lo12:stack\n"
    "   add     sp, x1, #4096\n"
    "   bl      main\n"
    "1: wfi\n"
    "   b       1b\n");

void main(void)
{
    const char *s = "cpu-off: turning the last CPU off\n";
    while (*s)
        *(volatile unsigned int *)0x09000000 = (unsigned int)*s++;
    register u64 x0 __asm__("x0") = 0x84000002UL;  /* PSCI CPU_OFF */
    __asm__ volatile("hvc #0" : "+r"(x0) : : "memory");
}
