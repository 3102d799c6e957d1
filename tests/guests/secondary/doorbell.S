/*
 * A secondary VM's guest that waits for the interrupt its owner sends it: the
 * doorbell the RM made for its `doorbell` vdevice, bound to the first of the
 * VM's own virqs, interrupt ID 960 (quic/gunyah-resource-manager
 * src/irq_manager/irq_manager.c: a VM's virqs from 960; its tree's
 * /hypervisor/qcom,doorbell@0 says so too). It wakes its redistributor, puts
 * ID 960 in Group 1 and enables it, turns on GICD_CTLR.EnableGrp1,
 * ICC_PMR_EL1 and ICC_IGRPEN1_EL1. Then it writes and reads where its VMM
 * bound ioeventfds (GH_FN_IOEVENTFD, tests/vmms/irqfd.c): at 0x7100 (a
 * 4-byte handler of value 0x55 and a 1-byte one of value 1, both with
 * DATAMATCH) the 4-byte value, another value, 0, a read, 2 bytes, 1 byte
 * of a register holding 0x101 (whose low byte is 1) and 1 byte of 1; at 0x7200 (no DATAMATCH: any length) 4 bytes, 1 byte of 0, a
 * read; at 0x7300 (its handler removed) 4 bytes. It stores 0 to 0x7000
 * (ready: its VMM may ring it now) and waits in WFI with IRQs masked (a
 * pending interrupt still ends the wait), taking the interrupt after each
 * WFI, at most 64 times. Its IRQ vector acknowledges (ICC_IAR1_EL1), stores
 * the INTID to 0x7008 and ends the interrupt (ICC_EOIR1_EL1). No interrupt
 * in 64 waits: it stores 0 to 0x7008. Then PSCI SYSTEM_OFF.
 * Linked at 0x80000000.
 */
#include "vgic.h" /* VGIC_TAKE_SPI */

	.text
	.global _start
_start:
	mov	x19, #0x7000		/* its VMMIO reports */
	adr	x1, vectors
	msr	vbar_el1, x1
	isb
	VGIC_TAKE_SPI 30, 0		/* ID 960: bit 0 of word 30 */
	mov	x10, #0			/* the IRQ vector sets it */
	mov	x11, #64		/* waits left */
	mov	x20, #0x7100		/* the ioeventfds' addresses */
	mov	w1, #0x55
	str	w1, [x20]		/* the datamatch value */
	mov	w1, #0x66
	str	w1, [x20]		/* another value, not 0 */
	str	wzr, [x20]		/* 0 */
	ldr	w1, [x20]		/* a read */
	mov	w1, #0x55
	strh	w1, [x20]		/* a length no handler has */
	mov	x1, #0x101
	strb	w1, [x20]		/* byte 0 is 1, but the register is 0x101 */
	mov	x1, #1
	strb	w1, [x20]		/* 1 */
	mov	x20, #0x7200
	mov	w1, #1
	str	w1, [x20]		/* 4 bytes */
	strb	wzr, [x20]		/* 1 byte of 0 */
	ldr	x1, [x20]		/* a read */
	mov	x20, #0x7300
	str	wzr, [x20]		/* where a handler was, and was removed */
	str	xzr, [x19]		/* 0x7000: ready */
1:	cbnz	x10, 2f
	cbz	x11, 3f
	sub	x11, x11, #1
	wfi				/* traps: its owner's vcpu_run says it expects a wake-up */
	msr	daifclr, #2		/* take it */
	isb
	msr	daifset, #2
	b	1b
3:	str	xzr, [x19, #8]		/* 0x7008: no interrupt came */
2:	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.

	.balign	0x800
vectors:
	.space	0x280
	/* IRQ, current EL with SP_ELx (vectors + 0x280) */
	mrs	x9, icc_iar1_el1
	str	x9, [x19, #8]		/* 0x7008: the INTID */
	msr	icc_eoir1_el1, x9
	mov	x10, #1
	eret
	.ltorg
