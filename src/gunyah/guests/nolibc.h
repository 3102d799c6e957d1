/*
 * A static AArch64 Linux program with no C library: its entry (_start calls
 * the program's `entry` with the initial stack, argc first), its system
 * calls, and the memset and memcpy the compiler's struct zeroing and copying
 * call. Included by our VMM (src/gunyah/vmm/vmm.c) and the tests' hostile
 * VMM; the toolchain puts this directory on every build's include path.
 */
#ifndef GUNYAH_NOLIBC_H
#define GUNYAH_NOLIBC_H

__asm__(".globl _start\n"
        "_start:\n"
        "  mov x0, sp\n"
        "  and sp, x0, #~15\n"
        "  bl entry\n");

void *memset(void *d, int c, unsigned long n)
{
	volatile unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	volatile unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

/* System call n with up to six arguments: its result, or -errno. */
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

#endif
