/*
 * Secondary guests for vcpu_run's tests, one case per entry x0 (its low
 * byte; bit 8 set: install the vector table first). Linked at 0x80000000.
 * The vector table's synchronous handlers store ESR_EL1, ELR_EL1, FAR_EL1
 * and SPSR_EL1 to 0x7000..0x7018 of the VMMIO window, then power off.
 */
	.text
	.global _start
_start:
	tbz	x0, #8, 1f
	adr	x9, vectors
	msr	vbar_el1, x9
	isb
1:	and	x10, x0, #0xff
	mov	x20, #0x6000
	movz	x1, #0x1122, lsl #48
	movk	x1, #0x3344, lsl #32
	movk	x1, #0x5566, lsl #16
	movk	x1, #0x7788
	adr	x11, table
	ldr	x12, [x11, x10, lsl #3]
	br	x12

	.balign	8
table:
	.quad	pair, outside, exclusive, writeback, wait, spin, garbage, flood
	.quad	everywhere, extend, reset, reset2, zero, own, udf_in_vector, forms
	.quad	cpu_on

pair:		/* 0: a pair: no valid ISS */
	stp	x1, x1, [x20]
	b	off
outside:	/* 1: neither the VM's memory nor its window */
	movz	x2, #0x4000, lsl #16
	str	x1, [x2]
	b	off
exclusive:	/* 2 */
	ldxr	x3, [x20]
	b	off
writeback:	/* 3: post-indexed */
	str	x1, [x20], #8
	b	off
wait:		/* 4 */
	wfi
	str	x1, [x20, #0x40]
	b	off
spin:		/* 5 */
	b	.
garbage:	/* 6 */
	.inst	0x00000000
	b	off
flood:		/* 7 */
	str	x1, [x20]
	b	flood
everywhere:	/* 8: its own memory, the window, then past its memory's end */
	movz	x2, #0x8010, lsl #16
	movz	x3, #0x8020, lsl #16
2:	str	x1, [x2]
	add	x2, x2, #1, lsl #12
	cmp	x2, x3
	b.lo	2b
	mov	x2, #0
	movz	x3, #0x4000, lsl #16
	movz	x4, #0x1000, lsl #16
3:	str	x1, [x2]
	add	x2, x2, x4
	cmp	x2, x3
	b.lo	3b
	movz	x2, #0x8020, lsl #16
	str	x1, [x2]
	b	off
extend:		/* 9: loads of every width and sign, each stored back whole */
	ldrsb	x3, [x20, #0x50]
	str	x3, [x20, #0x58]
	ldrsh	w4, [x20, #0x60]
	str	x4, [x20, #0x68]
	ldrb	w5, [x20, #0x70]
	str	x5, [x20, #0x78]
	ldrsw	x6, [x20, #0x80]
	str	x6, [x20, #0x88]
	ldrh	w7, [x20, #0x90]
	str	x7, [x20, #0x98]
	ldr	xzr, [x20, #0xa0]
	b	off
reset:		/* 10: PSCI SYSTEM_RESET */
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0009
	hvc	#0
	b	.
reset2:		/* 11: PSCI SYSTEM_RESET2, 64-bit, vendor type 0x80000001, cookie */
	movz	x0, #0xc400, lsl #16
	movk	x0, #0x0012
	movz	x1, #0x8000, lsl #16
	movk	x1, #0x0001
	movz	x2, #0xc00c, lsl #48
	movk	x2, #0x1e
	hvc	#0
	b	.
zero:		/* 12: a store of XZR */
	str	xzr, [x20]
	b	off
own:		/* 13: its own memory, read back through the window */
	movz	x2, #0x8010, lsl #16
	str	x1, [x2]
	ldr	x3, [x2]
	str	x3, [x20, #0x10]
	b	off
udf_in_vector:	/* 14: an abort whose handler itself aborts */
	movz	x2, #0x4000, lsl #16
	str	x1, [x2]
	b	off
forms:		/* 15: a register offset, an unscaled offset, a store-release */
	mov	x8, #0x100
	str	w1, [x20, x8]
	stur	x1, [x20, #-8]
	stlrh	w1, [x20]
	ldar	x9, [x20]
	str	x9, [x20, #0x8]
	b	off
cpu_on:		/* 16: PSCI CPU_ON for vCPU 1 at `second` with context 0x42 */
	movz	x0, #0xc400, lsl #16
	movk	x0, #0x0003
	mov	x1, #1
	adr	x2, second
	mov	x3, #0x42
	hvc	#0
	str	x0, [x20]
	b	.
second:		/* a vCPU starts with x0 its context, the rest zero */
	mov	x20, #0x6000
	str	x0, [x20, #0x200]
	b	off

off:		/* PSCI SYSTEM_OFF */
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008
	hvc	#0
	b	.

	.balign	2048
vectors:
	.rept	4			/* current EL with SP0 */
	.balign	0x80
	b	report
	.endr
	.balign	0x80			/* current EL with SPx: synchronous */
	cmp	x10, #14
	b.ne	report
	movz	x2, #0x4000, lsl #16	/* case 14: abort again, from the vector */
	str	x1, [x2]
	b	.
	.rept	3
	.balign	0x80
	b	report
	.endr
	.rept	8
	.balign	0x80
	b	.
	.endr

report:
	mov	x20, #0x7000
	mrs	x1, esr_el1
	str	x1, [x20]
	mrs	x1, elr_el1
	str	x1, [x20, #8]
	mrs	x1, far_el1
	str	x1, [x20, #16]
	mrs	x1, spsr_el1
	str	x1, [x20, #24]
	b	off
