/*
 * A secondary VM's guest with two vCPUs. vCPU 0 powers on vCPU 1 with PSCI
 * CPU_ON (SMC64, over HVC: target MPIDR 1, entry `second`, context 0x5eed)
 * and writes CPU_ON's result to 0x7000 (VMMIO: its VMM prints it); it then
 * waits, at most 2 s of its counter, for vCPU 1 to set `flag`, writes what
 * it found to 0x7008, tries CPU_ON of vCPU 1 again (which is on: vCPU 1
 * waits for `done`) and writes that result (ALREADY_ON) to 0x7018, then
 * writes 300 values of its own to ICC_SGI1R_EL1, ICC_ASGI1R_EL1 and
 * ICC_SGI0R_EL1 (every field, IRM and Aff1..3 among them: each write traps
 * to the hypervisor, which makes SGIs pending for the vCPUs they name) and
 * writes how many to 0x7020, sets `done` and calls SYSTEM_OFF. vCPU 1 starts at `second` with x0 the
 * context: it writes its MPIDR to 0x7010, sets `flag` to context + 1, waits
 * for `done` and calls CPU_OFF (whichever of CPU_OFF and SYSTEM_OFF comes
 * first, the VM ends powered off). Linked at 0x80000000; its MMU stays off.
 */
	.text
	.global _start
_start:
	movz	x20, #0x7000		/* VMMIO: what the VMM prints */
	movz	w0, #0xc400, lsl #16
	movk	w0, #0x0003		/* PSCI CPU_ON, SMC64 */
	mov	x1, #1			/* target MPIDR: vCPU 1 */
	adr	x2, second
	movz	x3, #0x5eed
	hvc	#0
	str	x0, [x20]
	mrs	x23, cntvct_el0
	mrs	x24, cntfrq_el0
	add	x23, x23, x24, lsl #1	/* 2 s from now */
	adr	x21, flag
1:	ldr	x22, [x21]
	cbnz	x22, 2f
	mrs	x24, cntvct_el0
	cmp	x24, x23
	b.lo	1b
2:	str	x22, [x20, #8]
	movz	w0, #0xc400, lsl #16
	movk	w0, #0x0003		/* CPU_ON again */
	mov	x1, #1
	adr	x2, second
	mov	x3, #0
	hvc	#0
	str	x0, [x20, #0x18]
	mov	x5, #0			/* SGI register writes */
	ldr	x6, =0x9e3779b97f4a7c15	/* a 64-bit odd constant: x5 times it scrambles */
4:	mul	x7, x5, x6
	msr	icc_sgi1r_el1, x7
	eor	x7, x7, x7, ror #17
	msr	icc_asgi1r_el1, x7
	eor	x7, x7, x7, ror #29
	msr	icc_sgi0r_el1, x7
	add	x5, x5, #3
	cmp	x5, #300
	b.lo	4b
	str	x5, [x20, #0x20]
	mov	x0, #1
	str	x0, [x21, #8]		/* done */
	dsb	sy
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.

second:
	movz	x20, #0x7000
	mrs	x1, mpidr_el1
	str	x1, [x20, #0x10]
	add	x0, x0, #1
	adr	x21, flag
	str	x0, [x21]
	dsb	sy
3:	ldr	x0, [x21, #8]		/* done */
	cbz	x0, 3b
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0002		/* PSCI CPU_OFF */
	hvc	#0
	b	.

	.balign	8
flag:	.quad	0
done:	.quad	0
