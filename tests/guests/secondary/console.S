/*
 * A secondary VM's guest that writes "hi vm\n" a byte at a time to the data
 * register of a PL011 at 0x9000000 (in the VMMIO window: each store is a
 * vcpu_run exit its VMM emulates), then calls PSCI SYSTEM_OFF over HVC.
 * Linked at 0x80000000.
 */
	.text
	.global _start
_start:
	movz	x20, #0x900, lsl #16	/* the PL011 at 0x9000000 */
	adr	x21, text
1:	ldrb	w0, [x21], #1
	cbz	w0, 2f
	str	w0, [x20]		/* UARTDR */
	b	1b
2:	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.
text:
	.asciz	"hi vm\n"
