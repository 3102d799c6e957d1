/*
 * A guest written without this project's header, as anyone would: it asks
 * for the vendor hypervisor's call UID and for hypervisor_identify with its
 * own inline assembly and reports through BRK #0:
 * 0 Gunyah API v1, 1 not Gunyah, 3 Gunyah with another API.
 */
typedef unsigned long long uint64_t;
typedef unsigned int uint32_t;

static void hvc4(uint64_t fn, uint64_t out[4])
{
	register uint64_t r0 __asm__("x0") = fn;
	register uint64_t r1 __asm__("x1") = 0;
	register uint64_t r2 __asm__("x2") = 0;
	register uint64_t r3 __asm__("x3") = 0;
	__asm__ volatile("hvc #0" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3) : : "memory");
	out[0] = r0;
	out[1] = r1;
	out[2] = r2;
	out[3] = r3;
}

static void stop(uint64_t status)
{
	register uint64_t r0 __asm__("x0") = status;
	__asm__ volatile("brk #0" : : "r"(r0));
	for (;;) {
	}
}

void _start(void)
{
	static const uint32_t gunyah[4] = { 0xcd8fd5c1u, 0xdb5f53a4u, 0x36ce6592u, 0x145f3d67u };
	uint64_t r[4];
	hvc4(0x8600ff01u, r);
	for (int i = 0; i < 4; i++)
		if ((uint32_t)r[i] != gunyah[i])
			stop(1);
	hvc4(0xc6008000u, r);
	stop((r[0] & 0x3fff) == 1 ? 0 : 3);
}
