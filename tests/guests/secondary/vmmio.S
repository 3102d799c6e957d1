/*
 * A secondary VM's guest doing exactly the sequence measured on the real
 * Gunyah (docs/real-gunyah.md section 13): identify; its x0, x1 and entry x0
 * stored to the VMMIO window; a 64-bit load stored back; a 32-bit load
 * stored back; one byte of x21 stored; PSCI SYSTEM_OFF over HVC.
 * Linked at 0x80000000, entered with x0 = its device tree's address.
 */
	.text
	.global _start
_start:
	mov	x19, x0
	hvc	#0x6000			/* hypervisor_identify */
	mov	x20, #0x6000
	str	x0, [x20]		/* 0x6000 */
	str	x1, [x20, #8]		/* 0x6008 */
	str	x19, [x20, #16]		/* 0x6010 */
	ldr	x21, [x20, #24]		/* 0x6018 */
	str	x21, [x20, #32]		/* 0x6020 */
	ldr	w22, [x20, #40]		/* 0x6028 */
	str	w22, [x20, #44]		/* 0x602c */
	strb	w21, [x20, #48]		/* 0x6030 */
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.
